"""Terminal output of the writing commands: per-endpoint lines, a progress bar, tables."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

import click
from tabulate import tabulate

from migrate.core import outcomes as oc
from migrate.core.outcomes import Result
from migrate.rollout.pacing import Reporter
from migrate.store import journal as jr


class ConsoleReporter(Reporter):
    """One line per endpoint on stdout; a progress bar with ETA on stderr when it is a terminal."""

    def __init__(self, execute: bool, verb: str = "apply") -> None:
        self.execute = execute
        self.verb = verb
        self._bar: Any = None
        self._tty = sys.stderr.isatty()

    def _line(self, text: str) -> None:
        if self._bar is not None:
            sys.stderr.write("\r\033[K")  # clear the bar; it redraws on the next update
        click.echo(text)

    def note(self, text: str) -> None:
        self._line(text)

    def stage_started(self, number: int, name: str, count: int) -> None:
        self.close()
        self._line(f"stage {number} ({name}): {count} endpoint(s)")
        if self.execute and self._tty and count:
            self._bar = click.progressbar(
                length=count, label=f"stage {number}", file=sys.stderr, show_eta=True
            )
            self._bar.__enter__()

    def result(self, result: Result) -> None:
        arrow = ""
        if result.bundle_after:
            arrow = f"  {result.bundle_before} -> {result.bundle_after}"
        detail = f"  ({result.detail})" if result.detail else ""
        self._line(f"  {result.outcome:<24} {result.endpoint_name}{arrow}{detail}")
        if self._bar is not None:
            self._bar.update(1)

    def preview(self, result: Result, diff_text: str) -> None:
        if result.outcome in ("would-apply", "would-roll-back"):
            target = "(new)" if result.outcome == "would-apply" else result.bundle_after
            self._line(
                f"  {result.outcome:<24} {result.endpoint_name}  {result.bundle_before} -> {target}"
            )
            if result.detail:
                self._line(f"      note: {result.detail}")
        else:
            self._line(f"  {result.outcome:<24} {result.endpoint_name}  ({result.detail})")
        for line in diff_text.splitlines():
            self._line("      " + line)

    def paused(self, path: Path) -> None:
        self._line(f"paused: {path} exists; remove it to go on")

    def resumed(self) -> None:
        self._line("resumed")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None

    def summary(self, counts: Counter[str], run_id: str | None) -> None:
        total = sum(counts.values())
        parts = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "nothing to do"
        head = f"run {run_id}: " if run_id else ("summary: " if not self.execute else "")
        click.echo(f"{head}{total} endpoint(s); {parts}")
        retry = counts[oc.SKIPPED_BUSY] + counts[oc.SKIPPED_NOT_READY] + counts[oc.FAILED]
        if self.execute and retry and self.verb == "apply":
            click.echo(f"{retry} endpoint(s) to retry: run the same command again later")
        if counts[oc.ROLLBACK_SKIPPED_DRIFTED]:
            click.echo(
                "endpoints changed since the run were left alone; --force restores them anyway"
            )
        if counts[oc.ROLLBACK_SKIPPED_NOT_READY]:
            click.echo(
                "endpoints model engine is updating (not READY) were left alone: roll back "
                "again once they are READY, or --force"
            )


def _when(value: Any) -> str:
    return "-" if value is None else f"{value:%Y-%m-%d %H:%M:%S}"


def _counts(outcomes: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))


def render_status(doc: dict[str, Any]) -> str:
    if "runs" in doc:
        if not doc["runs"]:
            return "no runs yet\n"
        rows = []
        for run in doc["runs"]:
            stages = "; ".join(f"stage {s}: {_counts(o)}" for s, o in sorted(run["stages"].items()))
            rows.append(
                [
                    run["run_id"],
                    run["kind"],
                    run.get("schema") or "-",
                    run["status"],
                    _when(run["started_at"]),
                    _when(run["finished_at"]),
                    f"{run['operator']}@{run['host']}",
                    (run["plan_digest"] or "-").removeprefix("sha256:")[:12],
                    stages or "-",
                ]
            )
        headers = [
            "run",
            "kind",
            "schema",
            "status",
            "started",
            "finished",
            "by",
            "plan",
            "outcomes",
        ]
        return tabulate(rows, headers) + "\n"
    if "changes" in doc:
        run = doc["run"]
        head = (
            f"run {run['run_id']} ({run['kind']} on {jr.run_schema(run)}, {run['status']}), "
            f"started {_when(run['started_at'])} "
            f"by {run['operator']}@{run['host']}\n"
        )
        rows = [
            [
                c["stage"],
                c["endpoint_name"],
                c["outcome"],
                c["bundle_before"] or "-",
                c["bundle_after"] or "-",
                "yes" if c["reverted_by"] else "",
                c["detail"] or "",
            ]
            for c in doc["changes"]
        ]
        headers = [
            "stage",
            "endpoint",
            "outcome",
            "bundle before",
            "bundle after",
            "reverted",
            "detail",
        ]
        return head + tabulate(rows, headers) + "\n"
    rows = [
        [
            s["stage"],
            s["name"],
            s["endpoints"],
            s["done"],
            "yes" if s["complete"] else "no",
            _counts(s["outcomes"]),
        ]
        for s in doc["stages"]
    ]
    return (
        f"plan {doc['plan']}\n"
        + tabulate(rows, ["stage", "name", "endpoints", "done", "complete", "outcomes"])
        + "\n"
    )

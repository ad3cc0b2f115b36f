"""What apply and rollback show while they run: lines for a log, a live view for a person, JSON.

- text, not a terminal: one line per endpoint outcome, and one per change of an
  endpoint's phase (writing, redeploying, waiting, settling, rolling back), so a
  CI log tells the story in order;
- text on a terminal: the same outcome lines scroll above a live view (rich)
  that redraws four times a second: the stage's progress with rate and ETA, a
  paused or throttled state, and each endpoint in flight with its last
  observation;
- json: nothing but notes on stderr while it runs, then one document on stdout.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import click

from migrate.core import outcomes as oc
from migrate.core.documents import FORMAT_VERSION, json_default
from migrate.core.outcomes import Result
from migrate.rollout.pacing import Reporter


class LineReporter(Reporter):
    """Plain lines on stdout: outcomes, phase changes, notes, diffs."""

    def __init__(self, execute: bool, verb: str = "apply") -> None:
        self.execute = execute
        self.verb = verb
        self._lock = threading.Lock()
        self._phases: dict[str, str] = {}

    def _line(self, text: str) -> None:
        with self._lock:
            click.echo(text)

    def note(self, text: str) -> None:
        self._line(text)

    def stage_started(self, number: int, name: str, count: int) -> None:
        self._line(f"stage {number} ({name}): {count} endpoint(s)")

    def phase(self, endpoint: str, phase: str, detail: str) -> None:
        with self._lock:
            if self._phases.get(endpoint) == phase:
                return
            self._phases[endpoint] = phase
        self._line(f"    {endpoint}: {phase}" + (f" ({detail})" if detail else ""))

    def result(self, result: Result) -> None:
        arrow = f"  {result.bundle_before} -> {result.bundle_after}" if result.bundle_after else ""
        detail = f"  ({result.detail})" if result.detail else ""
        self._line(f"  {result.outcome:<24} {result.endpoint_name}{arrow}{detail}")

    def preview(self, result: Result, diff_text: str) -> None:
        if result.outcome in (oc.WOULD_APPLY, oc.WOULD_ROLL_BACK):
            target = "(new)" if result.outcome == oc.WOULD_APPLY else result.bundle_after
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
        pass

    def summary(self, counts: Counter[str], run_id: str | None) -> None:
        total = sum(counts.values())
        parts = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "nothing to do"
        head = f"run {run_id}: " if run_id else ("summary: " if not self.execute else "")
        click.echo(f"{head}{total} endpoint(s); {parts}")
        retry = counts[oc.SKIPPED_BUSY] + counts[oc.SKIPPED_NOT_READY]
        if self.execute and retry and self.verb == "apply":
            click.echo(f"{retry} endpoint(s) busy or not READY: run the same command later")
        if self.execute and counts[oc.FAILED]:
            click.echo(f"{counts[oc.FAILED]} endpoint(s) failed: see their lines above")
        if counts[oc.ROLLBACK_SKIPPED_DRIFTED]:
            click.echo(
                "endpoints changed since the run were left alone; --force restores them anyway"
            )
        if counts[oc.ROLLBACK_SKIPPED_NOT_READY]:
            click.echo(
                "endpoints model engine is updating were left alone: roll back again once "
                "they are READY, or --force"
            )


class LiveReporter(LineReporter):
    """Outcome lines above a live view of the stage and the endpoints in flight."""

    def __init__(self, execute: bool, verb: str = "apply", console: Any = None) -> None:
        super().__init__(execute, verb)
        from rich.console import Console

        self._console = console or Console(highlight=False)
        self._live: Any = None
        self._progress: Any = None
        self._task: Any = None
        # Guards only the view's state, and is never held while calling rich: rich's
        # refresh thread holds the Live's lock while it asks _render for the view, so
        # printing under a lock _render needs would deadlock the two threads.
        self._view_lock = threading.Lock()
        self._flight: dict[str, tuple[str, str, float]] = {}
        self._state = ""

    def _line(self, text: str) -> None:
        live = self._live
        if live is not None:
            live.console.print(text, markup=False, soft_wrap=True)  # rich serialises prints
        else:
            super()._line(text)

    def stage_started(self, number: int, name: str, count: int) -> None:
        self.close()
        super().stage_started(number, name, count)
        if not self.execute or not count:
            return
        from rich.live import Live
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn(f"stage {number} ({name})"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self._console,
        )
        self._task = self._progress.add_task("stage", total=count, rate="")
        self._started = time.monotonic()
        self._flight.clear()
        self._live = Live(
            get_renderable=self._render,
            console=self._console,
            refresh_per_second=4,
            transient=True,
        )
        self._live.start()

    def _render(self) -> Any:
        from rich.console import Group
        from rich.table import Table

        table = Table(box=None, show_header=bool(self._flight), pad_edge=False)
        table.add_column("endpoint", no_wrap=True, overflow="ellipsis", max_width=40)
        table.add_column("phase", no_wrap=True)
        table.add_column("for", justify="right", no_wrap=True)
        table.add_column("last seen", overflow="ellipsis", no_wrap=True)
        now = time.monotonic()
        with self._view_lock:
            flight = sorted(self._flight.items(), key=lambda kv: kv[1][2])
            state = self._state
        for name, (phase, detail, since) in flight:
            table.add_row(name, phase, f"{now - since:.0f}s", detail)
        parts: list[Any] = [self._progress]
        if state:
            parts.append(state)
        parts.append(table)
        return Group(*parts)

    def phase(self, endpoint: str, phase: str, detail: str) -> None:
        with self._view_lock:
            _, _, since = self._flight.get(endpoint, ("", "", time.monotonic()))
            self._flight[endpoint] = (phase, detail, since)

    def result(self, result: Result) -> None:
        with self._view_lock:
            self._flight.pop(result.endpoint_name, None)
        if self._progress is not None:
            done = self._progress.tasks[0].completed + 1
            elapsed = max(time.monotonic() - self._started, 1e-6)
            self._progress.update(self._task, advance=1, rate=f"{done / elapsed * 60:.1f}/min")
        if self._live is not None:
            self._live.refresh()  # the line goes above a view that already counts it
        super().result(result)

    def paused(self, path: Path) -> None:
        with self._view_lock:
            self._state = f"PAUSED: {path} exists; remove it to go on"
        if self._live is None:
            super().paused(path)

    def resumed(self) -> None:
        with self._view_lock:
            self._state = ""
        if self._live is None:
            super().resumed()

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None


class JsonReporter(LineReporter):
    """Notes on stderr; outcomes and diffs kept for the document."""

    def __init__(self, execute: bool, verb: str = "apply") -> None:
        super().__init__(execute, verb)
        self.diffs: dict[str, str] = {}

    def _line(self, text: str) -> None:
        with self._lock:
            click.echo(text, err=True)

    def result(self, result: Result) -> None:
        pass

    def phase(self, endpoint: str, phase: str, detail: str) -> None:
        pass

    def preview(self, result: Result, diff_text: str) -> None:
        if diff_text:
            self.diffs[result.endpoint_id] = diff_text


def make_reporter(fmt: str, *, execute: bool, verb: str = "apply") -> LineReporter:
    if fmt == "json":
        return JsonReporter(execute, verb)
    if sys.stdout.isatty() and sys.stderr.isatty():
        return LiveReporter(execute, verb)
    return LineReporter(execute, verb)


def write_run_json(
    kind: str,
    plan_digest: str | None,
    database: str,
    execute: bool,
    deploy: Any,
    summary: Any,
    exit_status: int,
    diffs: dict[str, str] | None = None,
) -> None:
    """The apply/rollback document: who ran what, every endpoint's outcome, the summary."""
    diffs = diffs or {}
    results = []
    for r in summary.results:
        entry = {
            "endpoint_id": r.endpoint_id,
            "endpoint_name": r.endpoint_name,
            "stage": r.stage,
            "outcome": r.outcome,
            "detail": r.detail or None,
            "bundle_before": r.bundle_before,
            "bundle_after": r.bundle_after,
            "deploy_state": r.deploy_state,
        }
        if r.endpoint_id in diffs:
            entry["diff"] = diffs[r.endpoint_id]
        results.append(entry)
    doc = {
        "format_version": FORMAT_VERSION,
        kind: {
            "plan_digest": plan_digest,
            "database": database,
            "execute": execute,
            "run_id": summary.run_id,
            "redeploy": None
            if deploy is None
            else {
                "api_url": deploy.client.base_url,
                "mode": deploy.mode,
                "on_failure": deploy.on_failure,
                "parallel": deploy.parallel,
            },
        },
        "results": results,
        "summary": {
            "endpoints": len(results),
            "outcomes": dict(sorted(summary.counts.items())),
            "failures": summary.failures,
            "stopped": getattr(summary, "stopped", None),
            "undone": getattr(summary, "undone", 0),
            "aborted_plans": getattr(summary, "aborted_plans", []),
            "exit_status": exit_status,
        },
    }
    click.echo(json.dumps(doc, indent=2, default=json_default))

"""Applying a plan: stage after stage, one endpoint transaction at a time.

The journal is the cursor (as in maintenance_tasks or gh-ost's resume): what a
killed run committed is there, and a rerun of the same plan skips it, so
nothing is done twice. A dry run goes through the very same checks in one
READ ONLY transaction and writes nothing, not even the journal schema.
"""

from __future__ import annotations

import getpass
import socket
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Connection, Engine

from migrate import change, diff
from migrate import journal as jr
from migrate.db import DatabaseError, read_only
from migrate.identity import database_identity
from migrate.lock import MigrationLock
from migrate.plan import Plan, PlanItem, identity_differences
from migrate.xid import new_run_id

WOULD_APPLY = "would-apply"
# A stage is complete when each endpoint is done or can never be done by this
# plan; busy, not-ready and failed endpoints are retried by the next run.
DONE = frozenset(
    {jr.APPLIED, jr.SKIPPED_ALREADY_APPLIED, jr.SKIPPED_DRIFTED, jr.SKIPPED_ROLLED_BACK}
)
DEPLOY_NOTE = (
    "Writing a bundle row does not restart any pod: model engine deploys the new bundle "
    "on the endpoint's next build."
)


class PlanMismatch(DatabaseError):
    """The plan was made against another database or schema."""


def operator() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"


def check_target(conn: Connection, plan: Plan) -> None:
    diffs = identity_differences(plan.database, database_identity(conn))
    if diffs:
        raise PlanMismatch(
            "this plan was made against another database; refusing to apply it here ("
            + "; ".join(diffs)
            + ")"
        )


def stage_progress(plan: Plan, outcomes: dict[str, str]) -> dict[int, tuple[int, int]]:
    """Per stage: (endpoints done, endpoints planned)."""
    progress = {}
    for stage in plan.stages:
        items = plan.stage_items(stage.number)
        done = sum(1 for i in items if outcomes.get(i.endpoint_id) in DONE)
        progress[stage.number] = (done, len(items))
    return progress


def select_stages(
    plan: Plan, outcomes: dict[str, str], stage: int | None, all_stages: bool
) -> tuple[list[int], list[str]]:
    """The stages to work on and notes for the operator. Pure.

    Default: the first stage not yet complete, never more, so a bare
    `apply --execute` cannot roll the whole fleet at once.
    """
    progress = stage_progress(plan, outcomes)
    incomplete = [n for n, (done, total) in progress.items() if done < total]
    notes: list[str] = []
    if stage is not None:
        if stage not in progress:
            raise PlanMismatch(f"the plan has stages 1..{len(plan.stages)}, not {stage}")
        earlier = [n for n in incomplete if n < stage]
        if earlier:
            notes.append(f"warning: earlier stage(s) {', '.join(map(str, earlier))} not complete")
        return [stage], notes
    if not incomplete:
        notes.append("every stage of this plan is complete; nothing to do")
        return [], notes
    if all_stages:
        return incomplete, notes
    first = incomplete[0]
    name = plan.stages[first - 1].name
    notes.append(
        f"working on stage {first} ({name}) only, the first not complete; "
        "--stage N or --all-stages to choose"
    )
    return [first], notes


class Reporter:
    """What a run tells its operator; the CLI prints, tests may collect."""

    def note(self, text: str) -> None: ...

    def stage_started(self, number: int, name: str, count: int) -> None: ...

    def result(self, result: change.Result) -> None: ...

    def preview(self, result: change.Result, diff_text: str) -> None: ...

    def paused(self, path: Path) -> None: ...

    def resumed(self) -> None: ...


@dataclass
class Pacer:
    """--max-per-minute and --pause-file, with an injectable clock for tests."""

    max_per_minute: float | None = None
    pause_file: Path | None = None
    poll_s: float = 1.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _last: float | None = None

    def wait_while_paused(self, reporter: Reporter) -> None:
        if self.pause_file is None or not self.pause_file.exists():
            return
        reporter.paused(self.pause_file)
        while self.pause_file.exists():
            self.sleep(self.poll_s)
        reporter.resumed()

    def throttle(self) -> None:
        if self.max_per_minute:
            interval = 60.0 / self.max_per_minute
            if self._last is not None:
                wait = self._last + interval - self.clock()
                if wait > 0:
                    self.sleep(wait)
        self._last = self.clock()


@dataclass
class ApplyOptions:
    settings: change.Settings
    execute: bool = False
    stage: int | None = None
    all_stages: bool = False
    max_failures: int = 0
    pacer: Pacer = field(default_factory=Pacer)
    plan_path: str | None = None


@dataclass
class Summary:
    run_id: str | None = None
    stages: list[int] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    stopped: str | None = None

    @property
    def failures(self) -> int:
        return self.counts[jr.FAILED]


def _options_doc(options: ApplyOptions) -> dict[str, Any]:
    return {
        "schema": options.settings.schema,
        "plan_path": options.plan_path,
        "stage": options.stage,
        "all_stages": options.all_stages,
        "max_failures": options.max_failures,
        "max_per_minute": options.pacer.max_per_minute,
        "pause_file": str(options.pacer.pause_file) if options.pacer.pause_file else None,
    }


def run_apply(
    engine: Engine,
    plan: Plan,
    options: ApplyOptions,
    reporter: Reporter | None = None,
    hook: change.Hook | None = None,
) -> Summary:
    reporter = reporter or Reporter()
    if not options.execute:
        return dry_run(engine, plan, options, reporter)
    with MigrationLock(engine, plan.schema) as lock:
        with engine.begin() as conn:
            check_target(conn, plan)
            for name in jr.install(conn):
                reporter.note(f"created journal {jr.SCHEMA} ({name})")
            orphaned = jr.close_orphaned_runs(conn)
            stages, notes = select_stages(
                plan, jr.plan_outcomes(conn, plan.digest), options.stage, options.all_stages
            )
            # A run with nothing to do leaves no run row: the history stays readable.
            run_id = new_run_id() if stages else None
            if run_id:
                jr.start_run(
                    conn,
                    run_id=run_id,
                    kind="apply",
                    plan_digest=plan.digest,
                    operator=operator(),
                    host=socket.gethostname(),
                    options=_options_doc(options),
                )
        for run in orphaned:
            reporter.note(f"run {run} had died without finishing; marked interrupted")
        for text in notes:
            reporter.note(text)
        summary = Summary(run_id=run_id, stages=stages)
        if run_id is None:
            return summary
        status = "failed"
        try:
            _execute(engine, plan, options, reporter, hook, lock, summary)
            status = "failed" if summary.failures or summary.stopped else "finished"
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        finally:
            _finish(engine, run_id, status)
    return summary


def _finish(engine: Engine, run_id: str, status: str) -> None:
    try:
        with engine.begin() as conn:
            jr.finish_run(conn, run_id, status)
    except Exception:
        # The database is gone; the next run marks this one interrupted.
        pass


def _execute(
    engine: Engine,
    plan: Plan,
    options: ApplyOptions,
    reporter: Reporter,
    hook: change.Hook | None,
    lock: MigrationLock,
    summary: Summary,
) -> None:
    assert summary.run_id is not None
    for number in summary.stages:
        items = plan.stage_items(number)
        reporter.stage_started(number, plan.stages[number - 1].name, len(items))
        ctx = change.RunContext(summary.run_id, plan.digest, number)
        failures = 0
        for item in items:
            options.pacer.wait_while_paused(reporter)
            result = change.skip_if_done(engine, item, ctx)
            if result is None:
                options.pacer.throttle()
                lock.check()
                result = change.apply_item(engine, options.settings, item, ctx, hook)
            summary.counts[result.outcome] += 1
            reporter.result(result)
            if result.outcome == jr.FAILED:
                failures += 1
                if failures > options.max_failures:
                    summary.stopped = (
                        f"stopped in stage {number}: {failures} failure(s), more than "
                        f"--max-failures {options.max_failures}"
                    )
                    return


def dry_run(engine: Engine, plan: Plan, options: ApplyOptions, reporter: Reporter) -> Summary:
    summary = Summary()
    with read_only(engine, options.settings.statement_timeout_s) as conn:
        check_target(conn, plan)
        present = jr.exists(conn)
        outcomes = jr.plan_outcomes(conn, plan.digest) if present else {}
        summary.stages, notes = select_stages(plan, outcomes, options.stage, options.all_stages)
        for text in notes:
            reporter.note(text)
        for number in summary.stages:
            items = plan.stage_items(number)
            reporter.stage_started(number, plan.stages[number - 1].name, len(items))
            for item in items:
                result, text = _preview(conn, options.settings, plan, item, number, present)
                summary.counts[result.outcome] += 1
                reporter.preview(result, text)
    return summary


def _preview(
    conn: Connection,
    settings: change.Settings,
    plan: Plan,
    item: PlanItem,
    stage: int,
    journal: bool,
) -> tuple[change.Result, str]:
    _, record, verdict = change.inspect(
        conn, settings, item, plan.digest, lock=False, journal=journal
    )
    before = record.current_bundle_id if record else None
    outcome = verdict.outcome or WOULD_APPLY
    result = change.Result(
        item.endpoint_id, item.endpoint_name, stage, outcome, verdict.detail, before
    )
    if verdict.outcome is not None or record is None or record.bundle is None:
        return result, ""
    bundle = record.bundle
    assert bundle.command is not None and verdict.command_after is not None
    text = diff.unified(
        bundle.command[2],
        verdict.command_after[2],
        label_before=f"{before} runnable_image_command[2]",
        label_after="(new) runnable_image_command[2]",
    )
    if verdict.streaming_after is not None and bundle.streaming_command is not None:
        if bundle.streaming_command == bundle.command:
            text += "streaming command: the same change\n"
        else:
            text += diff.unified(
                bundle.streaming_command[2],
                verdict.streaming_after[2],
                label_before=f"{before} streaming command[2]",
                label_after="(new) streaming command[2]",
            )
    if item.args_after is not None:
        text += diff.args_diff(record.llm.get("vllm_additional_args"), item.args_after)
    return result, text

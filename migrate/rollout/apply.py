"""Applying a plan: stage after stage, one endpoint transaction at a time.

The journal is the cursor (as in maintenance_tasks or gh-ost's resume): what a
killed run committed is there, and a rerun of the same plan skips it, so
nothing is done twice. A dry run goes through the very same checks in one
READ ONLY transaction and writes nothing, not even the journal schema.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from migrate.core import outcomes as oc
from migrate.core.plan import Plan
from migrate.core.stage_gate import StageTally, select_stages
from migrate.rollout import actor, endpoint
from migrate.rollout.pacing import Pacer, Reporter
from migrate.rollout.preview import preview
from migrate.rollout.target import check_target
from migrate.rollout.transaction import Hook, Settings
from migrate.store import journal as jr
from migrate.store.connection import read_only
from migrate.store.ids import new_run_id
from migrate.store.lock import MigrationLock, holder

# Audit events (bundle-migrate --log-format json); extra fields become JSON keys.
log = logging.getLogger("bundle_migrate.apply")
DEPLOY_NOTE = (
    "Writing a bundle row does not restart any pod: model engine deploys the new bundle "
    "on the endpoint's next build."
)


@dataclass
class ApplyOptions:
    settings: Settings
    execute: bool = False
    stage: int | None = None
    all_stages: bool = False
    max_failures: int = 0
    pacer: Pacer = field(default_factory=Pacer)
    plan_path: str | None = None
    allow_other_address: bool = False


@dataclass
class Summary:
    run_id: str | None = None
    stages: list[int] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    stopped: str | None = None

    @property
    def failures(self) -> int:
        return self.counts[oc.FAILED]


def _options_doc(options: ApplyOptions) -> dict[str, Any]:
    return {
        "schema": options.settings.schema,
        "plan_path": options.plan_path,
        "stage": options.stage,
        "all_stages": options.all_stages,
        "max_failures": options.max_failures,
        "max_per_minute": options.pacer.max_per_minute,
        "pause_file": str(options.pacer.pause_file) if options.pacer.pause_file else None,
        "allow_other_address": options.allow_other_address,
    }


def run_apply(
    engine: Engine,
    plan: Plan,
    options: ApplyOptions,
    reporter: Reporter | None = None,
    hook: Hook | None = None,
) -> Summary:
    reporter = reporter or Reporter()
    if not options.execute:
        return dry_run(engine, plan, options, reporter)
    schema = options.settings.schema
    with MigrationLock(engine, schema) as lock:
        with engine.begin() as conn:
            notes = check_target(conn, plan, allow_other_address=options.allow_other_address)
            for name in jr.install(conn):
                reporter.note(f"created journal {jr.SCHEMA} ({name})")
            orphaned = jr.close_orphaned_runs(conn, schema)
            stages, stage_notes = select_stages(
                plan, jr.plan_outcomes(conn, plan.digest), options.stage, options.all_stages
            )
            # A run with nothing to do leaves no run row: the history stays readable.
            # Unless an earlier run of this plan was interrupted: a run with no changes
            # then records that the plan is complete, which resolves it (reconcile).
            closes = [] if stages else jr.interrupted_runs(conn, schema, "apply", plan.digest)
            run_id = new_run_id() if stages or closes else None
            if run_id:
                jr.start_run(
                    conn,
                    run_id=run_id,
                    kind="apply",
                    schema=schema,
                    plan_digest=plan.digest,
                    operator=actor.operator(),
                    host=actor.host(),
                    options={**_options_doc(options), **({"closes": closes} if closes else {})},
                )
        for run in orphaned:
            reporter.note(f"run {run} had died without finishing; marked interrupted")
        for run in closes:
            reporter.note(f"run {run} of this plan was interrupted; the plan is complete: closed")
        for text in notes + stage_notes:
            reporter.note(text)
        summary = Summary(run_id=run_id, stages=stages)
        if run_id is None:
            return summary
        log.info(
            "apply run started",
            extra={
                "event": "apply.run_started",
                "run_id": run_id,
                "plan_digest": plan.digest,
                "schema": schema,
                "stages": stages,
            },
        )
        status = "failed"
        try:
            _execute(engine, plan, options, reporter, hook, lock, summary)
            status = "failed" if summary.failures else "stopped" if summary.stopped else "finished"
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        finally:
            _finish(engine, run_id, status)
    return summary


def _finish(engine: Engine, run_id: str, status: str) -> None:
    log.info(
        f"apply run {status}",
        extra={"event": "apply.run_finished", "run_id": run_id, "status": status},
    )
    try:
        with engine.begin() as conn:
            jr.finish_run(conn, run_id, status)
    except Exception:
        # The database is gone; the next run marks this one interrupted.
        pass


def _next(summary: Summary, index: int) -> int | None:
    return summary.stages[index + 1] if index + 1 < len(summary.stages) else None


def _execute(
    engine: Engine,
    plan: Plan,
    options: ApplyOptions,
    reporter: Reporter,
    hook: Hook | None,
    lock: MigrationLock,
    summary: Summary,
) -> None:
    assert summary.run_id is not None
    for index, number in enumerate(summary.stages):
        items = plan.stage_items(number)
        reporter.stage_started(number, plan.stages[number - 1].name, len(items))
        ctx = endpoint.RunContext(summary.run_id, plan.digest, number)
        tally = StageTally(number, options.max_failures)
        for item in items:
            options.pacer.wait_while_paused(reporter)
            result = endpoint.skip_if_done(engine, item, ctx)
            if result is None:
                options.pacer.throttle()
                lock.check()
                result = endpoint.apply_item(engine, options.settings, item, ctx, hook)
            summary.counts[result.outcome] += 1
            reporter.result(result)
            log.info(result.outcome, extra={"event": "apply.endpoint", **vars(result)})
            summary.stopped = tally.add(result.outcome)
            if summary.stopped:
                return
        following = _next(summary, index)
        if following is not None:
            summary.stopped = tally.incomplete(following)
            if summary.stopped:
                return


def dry_run(engine: Engine, plan: Plan, options: ApplyOptions, reporter: Reporter) -> Summary:
    """The real run's checks and stops, in one READ ONLY transaction."""
    summary = Summary()
    with read_only(engine, options.settings.statement_timeout_s) as conn:
        notes = check_target(conn, plan, allow_other_address=options.allow_other_address)
        who = holder(conn, options.settings.schema)
        if who:
            notes.append(
                f"another run holds the lock on schema {options.settings.schema!r} ({who}): "
                "a real run now would be refused until it ends"
            )
        present = jr.exists(conn)
        outcomes = jr.plan_outcomes(conn, plan.digest) if present else {}
        summary.stages, stage_notes = select_stages(
            plan, outcomes, options.stage, options.all_stages
        )
        for text in notes + stage_notes:
            reporter.note(text)
        for index, number in enumerate(summary.stages):
            items = plan.stage_items(number)
            reporter.stage_started(number, plan.stages[number - 1].name, len(items))
            tally = StageTally(number, options.max_failures)
            for item in items:
                result, text = preview(conn, options.settings, plan, item, number, present)
                summary.counts[result.outcome] += 1
                reporter.preview(result, text)
                stop = tally.add(result.outcome)
                if stop:
                    summary.stopped = f"a real run would stop here: {stop}"
                    return summary
            following = _next(summary, index)
            stop = tally.incomplete(following) if following is not None else None
            if stop:
                summary.stopped = f"a real run would stop here: {stop}"
                return summary
    return summary

"""Applying a plan: stage after stage, each endpoint written, redeployed and watched.

The journal is the cursor (as in maintenance_tasks or gh-ost's resume): what a
killed run committed is there, and a rerun of the same plan picks each
endpoint up where it stopped, so nothing is done twice. A stage starts only
when the one before it is complete and healthy; a plan that a rollback undid
is aborted and refused until an operator says to go on (Argo's abort). A dry
run goes through the very same checks in one READ ONLY transaction and writes
nothing, not even the journal schema.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection, Engine

from migrate.core import outcomes as oc
from migrate.core.outcomes import Result
from migrate.core.plan import Plan
from migrate.core.stage_gate import StageTally, select_stages
from migrate.deploy.client import ApiError, Unauthorized, Unusable
from migrate.rollout import actor, change
from migrate.rollout.pacing import Pacer, Reporter
from migrate.rollout.preview import preview
from migrate.rollout.redeploy import BUSY, Redeploy, stopped_by_api
from migrate.rollout.stage_runner import run_stage
from migrate.rollout.target import check_target
from migrate.rollout.transaction import Hook, Settings
from migrate.scan.collector import rare_collections
from migrate.store import journal as jr
from migrate.store import redeploys, rows
from migrate.store.connection import DatabaseError, read_only
from migrate.store.ids import new_run_id
from migrate.store.lock import MigrationLock, holder

# Audit events (bundle-migrate --log-format json); extra fields become JSON keys.
log = logging.getLogger("bundle_migrate.apply")
ROWS_ONLY_NOTE = (
    "--no-redeploy: rows were written, no pod was restarted; model engine deploys the new "
    "bundle on the endpoint's next build (or rerun with --api-url to redeploy and watch it)."
)
CANARY = "canary"


class PlanAborted(DatabaseError):
    """A rollback aborted this plan; applying it again needs --retry-aborted."""


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
    # None: rows only (--no-redeploy); otherwise each write is redeployed and watched.
    redeploy: Redeploy | None = None
    ignore_incomplete_stages: bool = False
    retry_aborted: bool = False
    # Endpoints written at once within a stage when rows only are written (--no-redeploy).
    parallel: int = 1


@dataclass
class Summary:
    run_id: str | None = None
    stages: list[int] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    stopped: str | None = None
    results: list[Result] = field(default_factory=list)
    # Endpoints of the worked stages not done (busy, drifted, unhealthy, ...): exit 1.
    undone: int = 0

    @property
    def failures(self) -> int:
        return self.counts[oc.FAILED]


def _options_doc(options: ApplyOptions) -> dict[str, Any]:
    redeploy = options.redeploy
    return {
        "schema": options.settings.schema,
        "plan_path": options.plan_path,
        "stage": options.stage,
        "all_stages": options.all_stages,
        "max_failures": options.max_failures,
        "max_per_minute": options.pacer.max_per_minute,
        "pause_file": str(options.pacer.pause_file) if options.pacer.pause_file else None,
        "allow_other_address": options.allow_other_address,
        "ignore_incomplete_stages": options.ignore_incomplete_stages,
        "retry_aborted": options.retry_aborted,
        "redeploy": None
        if redeploy is None
        else {
            "api_url": redeploy.client.base_url,
            "mode": redeploy.mode,
            "on_failure": redeploy.on_failure,
            "parallel": redeploy.parallel,
            "poll_interval_s": redeploy.watch.poll_interval_s,
            "settle_s": redeploy.watch.settle_s,
            "health_timeout_s": redeploy.watch.timeout_s,
        },
    }


def _abort_refusal(conn: Connection, plan: Plan) -> str | None:
    abort = redeploys.open_abort(conn, plan.digest)
    if abort is None:
        return None
    return (
        f"plan {plan.short_digest} was aborted by run {abort['run_id']} at "
        f"{abort['aborted_at']:%Y-%m-%d %H:%M:%S %Z}: {abort['reason']}"
    )


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
    rows.forget_columns()  # the catalog is read afresh once per run
    with MigrationLock(engine, schema) as lock:
        with engine.begin() as conn:
            notes = check_target(conn, plan, allow_other_address=options.allow_other_address)
            for name in jr.install(conn):
                reporter.note(f"created journal {jr.SCHEMA} ({name})")
            aborted = _abort_refusal(conn, plan)
            if aborted and not options.retry_aborted:
                raise PlanAborted(
                    f"{aborted}. Make a new plan, or go on with this one: --retry-aborted"
                )
            orphaned = jr.close_orphaned_runs(conn, schema)
            outcomes = jr.plan_outcomes(conn, plan.digest, redeploy=options.redeploy is not None)
            stages, stage_notes = select_stages(
                plan,
                outcomes,
                options.stage,
                options.all_stages,
                ignore_incomplete=options.ignore_incomplete_stages,
            )
            # A run with nothing to do leaves no run row: the history stays readable.
            # Unless an earlier run of this plan was interrupted: a run with no changes
            # then records that the plan is complete, which resolves it (reconcile).
            closes = [] if stages else jr.interrupted_runs(conn, schema, "apply", plan.digest)
            run_id = new_run_id() if stages or closes or aborted else None
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
            if aborted and run_id:
                redeploys.clear_abort(conn, plan.digest, run_id)
        if aborted:
            reporter.note(f"WARNING: --retry-aborted: going on with an aborted plan ({aborted})")
        for run in orphaned:
            reporter.note(f"run {run} had died without finishing; marked interrupted")
        for run in closes:
            reporter.note(f"run {run} of this plan was interrupted; the plan is complete: closed")
        for text in notes + stage_notes:
            reporter.note(text)
        summary = Summary(run_id=run_id, stages=stages)
        if run_id is None or not stages:
            if run_id:
                _finish(engine, run_id, "finished")
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
            with rare_collections():
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


def _parallel(options: ApplyOptions, stage_name: str) -> int:
    if stage_name == CANARY:
        return 1  # the canary goes alone
    return options.redeploy.parallel if options.redeploy else options.parallel


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
    ctx = change.Context(
        engine=engine,
        settings=options.settings,
        run_id=summary.run_id,
        plan_digest=plan.digest,
        redeploy=options.redeploy,
        hook=hook,
        lock_check=lock.check,
        on_phase=reporter.phase,
        stop=threading.Event(),
    )

    def record(result: Result) -> None:
        summary.counts[result.outcome] += 1
        summary.results.append(result)
        reporter.result(result)
        log.info(result.outcome, extra={"event": "apply.endpoint", **vars(result)})

    for index, number in enumerate(summary.stages):
        stage = plan.stages[number - 1]
        items = plan.stage_items(number)
        reporter.stage_started(number, stage.name, len(items))
        tally = StageTally(number, options.max_failures)
        try:
            summary.stopped = run_stage(
                items,
                lambda item, n=number: change.apply_endpoint(ctx, item, n),
                parallel=_parallel(options, stage.name),
                pacer=options.pacer,
                reporter=reporter,
                tally=tally,
                stop=ctx.stop,
                on_result=record,
            )
        except Unusable as exc:
            message = stopped_by_api(exc)
            with engine.connect() as conn:
                if redeploys.open_abort(conn, plan.digest) is not None:
                    message += (
                        "; a rollback in this run also aborted the plan, so add "
                        "--retry-aborted once you have looked at it"
                    )
            raise DatabaseError(message) from None
        summary.undone += tally.undone
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
    redeploy = options.redeploy is not None
    with read_only(engine, options.settings.statement_timeout_s) as conn:
        notes = check_target(conn, plan, allow_other_address=options.allow_other_address)
        who = holder(conn, options.settings.schema)
        if who:
            notes.append(
                f"another run holds the lock on schema {options.settings.schema!r} ({who}): "
                "a real run now would be refused until it ends"
            )
        present = jr.exists(conn)
        aborted = _abort_refusal(conn, plan) if present else None
        if aborted:
            verdict = "goes on (--retry-aborted)" if options.retry_aborted else "would be refused"
            notes.append(f"{aborted}: a real run {verdict}")
        outcomes = jr.plan_outcomes(conn, plan.digest, redeploy=redeploy) if present else {}
        summary.stages, stage_notes = select_stages(
            plan,
            outcomes,
            options.stage,
            options.all_stages,
            ignore_incomplete=options.ignore_incomplete_stages,
        )
        for text in notes + stage_notes:
            reporter.note(text)
        for index, number in enumerate(summary.stages):
            items = plan.stage_items(number)
            reporter.stage_started(number, plan.stages[number - 1].name, len(items))
            tally = StageTally(number, options.max_failures)
            for item in items:
                result, text = preview(
                    conn, options.settings, plan, item, number, present, redeploy=redeploy
                )
                result = _preflight(options, result)
                summary.counts[result.outcome] += 1
                summary.results.append(result)
                reporter.preview(result, text)
                stop = tally.add(result.outcome)
                if stop:
                    summary.stopped = f"a real run would stop here: {stop}"
                    return summary
            summary.undone += tally.undone
            following = _next(summary, index)
            stop = tally.incomplete(following) if following is not None else None
            if stop:
                summary.stopped = f"a real run would stop here: {stop}"
                return summary
    return summary


def _preflight(options: ApplyOptions, result: Result) -> Result:
    """With an API URL, ask model engine about each endpoint a real run would redeploy.

    Read-only (GET): it finds credentials that cannot reach an owner's endpoints,
    and endpoints model engine is busy with, before anything is written.
    """
    redeploy = options.redeploy
    if redeploy is None or result.outcome not in (oc.WOULD_APPLY, oc.WOULD_REDEPLOY):
        return result
    try:
        state = redeploy.client.get(result.endpoint_name, result.owner)
    except Unusable as exc:
        if isinstance(exc, Unauthorized):
            raise DatabaseError(f"model engine refused the credentials: {exc}") from None
        raise DatabaseError(f"model engine's API cannot be used: {exc}") from None
    except ApiError as exc:
        return Result(
            result.endpoint_id,
            result.endpoint_name,
            result.stage,
            oc.FAILED,
            f"a real run would fail it: {exc}",
            result.bundle_before,
        )
    if state.status in BUSY:
        note = f"model engine is {state.status} with it now: a real run would wait before the PUT"
        detail = f"{result.detail}; {note}" if result.detail else note
        return Result(**{**vars(result), "detail": detail})
    return result

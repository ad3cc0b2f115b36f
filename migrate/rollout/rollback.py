"""Rolling back what runs applied: by plan or run, narrowed by stage or endpoint.

Changes are undone newest first, like an undo stack. An endpoint someone
touched since the run is left alone unless --force (a rollback that clobbers
a newer change is how Helm and Argo rollbacks leave systems degraded).
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
from migrate.core.stage_gate import StageTally
from migrate.rollout import actor, change, revert
from migrate.rollout.pacing import Pacer, Reporter
from migrate.rollout.redeploy import Redeploy
from migrate.rollout.stage_runner import run_stage
from migrate.rollout.target import check_target
from migrate.rollout.transaction import Hook, Settings
from migrate.store import journal as jr
from migrate.store import redeploys, rows
from migrate.store.connection import DatabaseError, read_only
from migrate.store.ids import new_run_id
from migrate.store.lock import MigrationLock, holder

# Audit events (bundle-migrate --log-format json); extra fields become JSON keys.
log = logging.getLogger("bundle_migrate.rollback")
ROWS_ONLY_NOTE = (
    "--no-redeploy: rows were restored, no pod was restarted; model engine deploys the "
    "restored bundle on the endpoint's next build (or rerun with --api-url to redeploy it)."
)


@dataclass
class RollbackOptions:
    settings: Settings
    plan: Plan | None = None
    run_id: str | None = None
    stage: int | None = None
    endpoints: tuple[str, ...] = ()
    execute: bool = False
    force: bool = False
    allow_other_address: bool = False
    # None: rows only (--no-redeploy); otherwise each restored endpoint is redeployed.
    redeploy: Redeploy | None = None


@dataclass
class RollbackSummary:
    run_id: str | None = None
    counts: Counter[str] = field(default_factory=Counter)
    results: list[Result] = field(default_factory=list)
    aborted_plans: list[str] = field(default_factory=list)

    @property
    def failures(self) -> int:
        return self.counts[oc.FAILED]


def run_schema(engine: Engine, run_id: str, statement_timeout_s: int) -> str | None:
    """The model engine schema an apply run worked on (None: no such run).

    `rollback --run` takes its schema from here, so that it locks and writes the
    schema the run changed, whatever --schema defaults to.
    """
    with read_only(engine, statement_timeout_s) as conn:
        if not jr.exists(conn):
            return None
        run = jr.run_row(conn, run_id)
    return jr.run_schema(run) if run is not None and run["kind"] == "apply" else None


def _select(
    conn: Connection, options: RollbackOptions, reporter: Reporter
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(applied changes to roll back, earlier rollbacks to finish redeploying)."""
    if options.plan is not None:
        notes = check_target(conn, options.plan, allow_other_address=options.allow_other_address)
        for text in notes:
            reporter.note(text)
    if options.run_id is not None:
        run = jr.run_row(conn, options.run_id)
        if run is None or run["kind"] != "apply":
            raise DatabaseError(f"no apply run {options.run_id} in the journal (see `status`)")
        recorded = jr.run_schema(run)
        if recorded != options.settings.schema:
            raise DatabaseError(
                f"run {options.run_id} changed schema {recorded!r}, not "
                f"{options.settings.schema!r}; roll it back on its own schema"
            )
    selection: dict[str, Any] = {
        "plan_digest": options.plan.digest if options.plan else None,
        "run_id": options.run_id,
        "stage": options.stage,
        "endpoint_names": options.endpoints,
    }
    changes = jr.live_applied_changes(conn, **selection)
    unfinished = jr.undeployed_rollbacks(conn, **selection) if options.redeploy else []
    found = {c["endpoint_name"] for c in changes + unfinished}
    for name in options.endpoints:
        if name not in found:
            reporter.note(f"{name}: no applied change to roll back in this selection")
    if unfinished:
        reporter.note(
            f"{len(unfinished)} endpoint(s) rolled back earlier but never redeployed healthy: "
            "redeploying them"
        )
    if not changes and not unfinished:
        reporter.note("nothing to roll back")
    return changes, unfinished


def _options_doc(options: RollbackOptions) -> dict[str, Any]:
    return {
        "schema": options.settings.schema,
        "run": options.run_id,
        "stage": options.stage,
        "endpoints": list(options.endpoints),
        "force": options.force,
        "allow_other_address": options.allow_other_address,
    }


def run_rollback(
    engine: Engine,
    options: RollbackOptions,
    reporter: Reporter | None = None,
    hook: Hook | None = None,
) -> RollbackSummary:
    reporter = reporter or Reporter()
    if not options.execute:
        return _dry_run(engine, options, reporter)
    summary = RollbackSummary()
    schema = options.settings.schema
    rows.forget_columns()  # the catalog is read afresh once per run
    with MigrationLock(engine, schema) as lock:
        with engine.begin() as conn:
            if not jr.exists(conn):
                reporter.note(f"no {jr.SCHEMA} journal in this database: nothing was applied")
                return summary
            jr.install(conn)  # bring an older journal up to this tool's version
            for run in jr.close_orphaned_runs(conn, schema):
                reporter.note(f"run {run} had died without finishing; marked interrupted")
            changes, unfinished = _select(conn, options, reporter)
            if not changes and not unfinished:
                return summary
            summary.run_id = new_run_id()
            jr.start_run(
                conn,
                run_id=summary.run_id,
                kind="rollback",
                schema=schema,
                plan_digest=options.plan.digest if options.plan else None,
                operator=actor.operator(),
                host=actor.host(),
                options=_options_doc(options),
            )
            # Argo's abort: a plan part of which is being undone is not applied again
            # until an operator says so (apply --retry-aborted).
            for digest in sorted({c["plan_digest"] for c in changes if c["plan_digest"]}):
                why = f"rolled back by run {summary.run_id} ({_what(options)})"
                if redeploys.abort_plan(conn, digest, summary.run_id, why):
                    summary.aborted_plans.append(digest)
        for digest in summary.aborted_plans:
            reporter.note(
                f"plan {digest.removeprefix('sha256:')[:12]} is now aborted: applying it again "
                "needs --retry-aborted"
            )
        log.info(
            "rollback run started",
            extra={
                "event": "rollback.run_started",
                "run_id": summary.run_id,
                "changes": len(changes),
                "schema": schema,
            },
        )
        status = "failed"
        try:
            _execute(engine, options, reporter, hook, lock, summary, changes, unfinished)
            status = "failed" if summary.failures else "finished"
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        finally:
            log.info(
                f"rollback run {status}",
                extra={
                    "event": "rollback.run_finished",
                    "run_id": summary.run_id,
                    "status": status,
                },
            )
            try:
                with engine.begin() as conn:
                    jr.finish_run(conn, summary.run_id, status)
            except Exception:
                pass  # database gone: the next run marks this one interrupted
    return summary


def _what(options: RollbackOptions) -> str:
    parts = [f"stage {options.stage}"] if options.stage is not None else []
    if options.endpoints:
        parts.append("endpoint(s) " + ", ".join(options.endpoints))
    return "; ".join(parts) or "all of it"


def _execute(
    engine: Engine,
    options: RollbackOptions,
    reporter: Reporter,
    hook: Hook | None,
    lock: MigrationLock,
    summary: RollbackSummary,
    changes: list[dict[str, Any]],
    unfinished: list[dict[str, Any]],
) -> None:
    assert summary.run_id is not None
    ctx = change.Context(
        engine=engine,
        settings=options.settings,
        run_id=summary.run_id,
        plan_digest=options.plan.digest if options.plan else "",
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
        log.info(result.outcome, extra={"event": "rollback.endpoint", **vars(result)})

    def work(row: dict[str, Any]) -> Result:
        if row["kind"] == "rollback":  # an earlier rollback left undeployed
            undone = Result(
                row["endpoint_id"],
                row["endpoint_name"],
                row["stage"],
                oc.ROLLED_BACK,
                "",
                row["bundle_before"],
                row["bundle_after"],
                change_id=row["id"],
                deploy_state=row.get("deploy_state"),
            )
            return change.finish_rollback(ctx, undone, multinode=False)
        return change.rollback_endpoint(ctx, row, force=options.force)

    parallel = options.redeploy.parallel if options.redeploy else 1
    # Newest change first, as an undo stack; never stopped by a failure: a rollback
    # that gives up halfway leaves a fleet in neither state.
    run_stage(
        changes + unfinished,
        work,
        parallel=parallel,
        pacer=Pacer(),
        reporter=reporter,
        tally=StageTally(0, max_failures=len(changes) + len(unfinished)),
        stop=ctx.stop,
        on_result=record,
    )


def _dry_run(engine: Engine, options: RollbackOptions, reporter: Reporter) -> RollbackSummary:
    summary = RollbackSummary()
    with read_only(engine, options.settings.statement_timeout_s) as conn:
        who = holder(conn, options.settings.schema)
        if who:
            reporter.note(
                f"another run holds the lock on schema {options.settings.schema!r} ({who}): "
                "a real rollback now would be refused until it ends"
            )
        if not jr.exists(conn):
            reporter.note(f"no {jr.SCHEMA} journal in this database: nothing was applied")
            return summary
        changes, unfinished = _select(conn, options, reporter)
        for c in unfinished:
            result = Result(
                c["endpoint_id"],
                c["endpoint_name"],
                c["stage"],
                oc.WOULD_REDEPLOY,
                f"rolled back by {c['run_id']}, redeploy stopped at "
                f"{c.get('deploy_state') or 'written (rows only)'}",
                c["bundle_before"],
                c["bundle_after"],
            )
            summary.counts[result.outcome] += 1
            summary.results.append(result)
            reporter.preview(result, "")
        for c in changes:
            endpoint, verdict = revert.read(
                conn, options.settings.schema, c, lock=False, force=options.force
            )
            now = endpoint.get("current_bundle_id") if endpoint else None
            outcome = verdict.outcome
            result = Result(
                c["endpoint_id"],
                c["endpoint_name"],
                c["stage"],
                outcome or oc.WOULD_ROLL_BACK,
                verdict.detail,
                now,
                None if outcome else c["bundle_before"],
            )
            summary.counts[result.outcome] += 1
            summary.results.append(result)
            reporter.preview(result, "")
    return summary

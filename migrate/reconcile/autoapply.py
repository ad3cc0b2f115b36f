"""`reconcile --apply`: migrate a few drifted endpoints through the ordinary apply path.

No second write path: the chosen decisions become an in-memory plan
(migrate.rollout.planning) that migrate.rollout.apply executes under the advisory lock, with
the same per-endpoint transaction, fingerprint check and journal rows as a
reviewed `apply --execute`. The plan never holds more than `max_changes` items,
so a run cannot change more than that, whatever happens during it; a schedule
converges the fleet a canary at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from migrate.core import outcomes as oc
from migrate.core.outcomes import Result
from migrate.core.records import Decision
from migrate.core.staging import goes_last, risk_order
from migrate.reconcile.findings import RECONCILE_SOURCE, UNFINISHED_RUN, judge_runs
from migrate.reconcile.queries import open_runs
from migrate.rollout import actor
from migrate.rollout.apply import ApplyOptions, run_apply
from migrate.rollout.audit import LOGGER, event
from migrate.rollout.pacing import Reporter
from migrate.rollout.planning import plan_from
from migrate.rollout.redeploy import Redeploy
from migrate.rollout.transaction import Settings
from migrate.store import journal as jr
from migrate.store.connection import DatabaseError
from migrate.store.ids import new_run_id
from migrate.store.lock import LockBusy, MigrationLock

DEFAULT_MAX_CHANGES = 1


def select(
    pending: Sequence[Decision],
    max_changes: int,
    include_large: bool = False,
    first: Collection[str] = (),
    hold: Mapping[str, str] | None = None,
    failed: Mapping[str, datetime] | None = None,
) -> tuple[list[Decision], list[tuple[Decision, str]]]:
    """(the endpoints to change now, in order; those held back and why). Pure.

    Endpoint ids in `first` (migrated once, reverted since) go before the rest:
    they already ran the new command, so they are the safest to change again.

    `hold` (endpoint id: why) are never chosen: an operator rolled them back, and
    a rollback is a decision a schedule must not undo. Not READY endpoints would
    only be skipped by apply and would take a slot every run, so they wait. Large,
    unknown-size and risk-flagged endpoints may run out of memory without eager:
    no unattended job changes them unless asked to (--include-large); a person
    follows the staged-rollout runbook.

    `failed` (endpoint id: when its latest apply attempt failed) go after every
    other endpoint, the longest-failed first: one endpoint that fails every run
    must not take the only slot forever, and it is still retried in its turn.
    """
    hold = hold or {}
    failed = failed or {}
    held: list[tuple[Decision, str]] = []
    eligible: list[Decision] = []
    for d in pending:
        if d.endpoint_id in hold:
            held.append((d, hold[d.endpoint_id]))
        elif d.endpoint_status != "READY":
            held.append((d, f"status {d.endpoint_status}, not READY"))
        elif goes_last(d) and not include_large:
            held.append((d, "large, unknown-size or risk-flagged: needs --include-large"))
        else:
            eligible.append(d)
    ordered = risk_order([d for d in eligible if not goes_last(d)])
    ordered += risk_order([d for d in eligible if goes_last(d)])
    # Stable sorts: risk order within each group.
    ordered.sort(key=lambda d: d.endpoint_id not in first)
    ordered.sort(key=lambda d: (d.endpoint_id in failed, failed.get(d.endpoint_id, _NEVER)))
    return ordered[:max_changes], held


_NEVER = datetime.min.replace(tzinfo=UTC)


class AuditReporter(Reporter):
    """Apply's reporter for an unattended run: audit events, and the results kept."""

    def __init__(self) -> None:
        self.results: list[Result] = []
        self.notes: list[str] = []
        self._log = logging.getLogger(f"{LOGGER}.reconcile")

    def note(self, text: str) -> None:
        self.notes.append(text)
        self._log.info(text, extra={"event": "reconcile.apply_note"})

    def result(self, result: Result) -> None:
        self.results.append(result)
        self._log.info(
            f"{result.outcome} {result.endpoint_name}",
            extra={
                "event": "reconcile.endpoint",
                "endpoint": result.endpoint_name,
                "endpoint_id": result.endpoint_id,
                "outcome": result.outcome,
                "bundle_before": result.bundle_before,
                "bundle_after": result.bundle_after,
                "detail": result.detail,
            },
        )

    def paused(self, path: Path) -> None:
        self._log.warning(f"paused: {path} exists", extra={"event": "reconcile.paused"})


@dataclass
class ApplyOutcome:
    max_changes: int
    run_id: str | None = None
    plan_digest: str | None = None
    results: list[Result] = field(default_factory=list)
    skipped: str | None = None
    closed: list[str] = field(default_factory=list)  # interrupted runs closed, nothing to do

    @property
    def applied(self) -> int:
        return sum(1 for r in self.results if r.outcome == oc.APPLIED)

    @property
    def failures(self) -> int:
        return sum(1 for r in self.results if r.outcome == oc.FAILED)

    def as_dict(self) -> dict[str, Any]:
        outcomes: dict[str, int] = {}
        for r in self.results:
            outcomes[r.outcome] = outcomes.get(r.outcome, 0) + 1
        return {
            "max_changes": self.max_changes,
            "run_id": self.run_id,
            "plan_digest": self.plan_digest,
            "applied": self.applied,
            "failures": self.failures,
            "outcomes": dict(sorted(outcomes.items())),
            "endpoints": [
                {
                    "endpoint_id": r.endpoint_id,
                    "endpoint_name": r.endpoint_name,
                    "outcome": r.outcome,
                    "bundle_before": r.bundle_before,
                    "bundle_after": r.bundle_after,
                    "detail": r.detail,
                }
                for r in self.results
            ],
            "skipped": self.skipped,
            "closed_runs": self.closed,
        }


def apply_some(
    engine: Engine,
    chosen: Sequence[Decision],
    *,
    max_changes: int,
    schema: str,
    policy: dict[str, Any],
    filters: dict[str, Any],
    overrides: str | None,
    statement_timeout_s: int,
    unfinished: Sequence[str] = (),
    redeploy: Redeploy | None = None,
) -> ApplyOutcome:
    """Apply the chosen endpoints; with none, close `unfinished` reconcile runs instead.

    `redeploy`: each change is redeployed and watched as `apply --execute` does
    (None: rows only, --no-redeploy).

    Nothing left to choose means no interrupted reconcile run has work left to
    resume: a run with no changes records that, and `reconcile` stops reporting them.
    """
    outcome = ApplyOutcome(max_changes=max_changes)
    if not chosen:
        if unfinished:
            try:
                outcome.closed = [
                    r
                    for r, _ in close_runs(
                        engine, schema, unfinished, "nothing left to change", strict=False
                    )
                ]
            except LockBusy as exc:
                outcome.skipped = str(exc)
        return outcome
    if len(chosen) > max_changes:
        raise ValueError("more endpoints chosen than --max-changes allows")
    plan = plan_from(
        engine,
        chosen,
        schema=schema,
        policy=policy,
        filters=filters,
        overrides=overrides,
        # One count stage holding all the chosen regular endpoints; large ones
        # (only with --include-large) get the plan's own last stage.
        stage_spec=str(max(1, len(chosen))),
        statement_timeout_s=statement_timeout_s,
    )
    outcome.plan_digest = plan.digest
    options = ApplyOptions(
        settings=Settings(schema=schema, statement_timeout_s=statement_timeout_s),
        execute=True,
        all_stages=True,
        max_failures=0,
        plan_path=RECONCILE_SOURCE,
        redeploy=redeploy,
    )
    reporter = AuditReporter()
    event(
        "reconcile.apply_started",
        f"applying {len(plan.items)} of the drifted endpoints",
        plan_digest=plan.digest,
        endpoints=[i.endpoint_name for i in plan.items],
        max_changes=max_changes,
    )
    try:
        summary = run_apply(engine, plan, options, reporter)
    except LockBusy as exc:
        # Another apply or rollback is running (a person mid-rollout): not an error
        # of this job, and the drift is still reported; the next schedule retries.
        outcome.skipped = str(exc)
        event("reconcile.apply_skipped", outcome.skipped, level=logging.WARNING, reason="lock-busy")
        return outcome
    finally:
        outcome.results = reporter.results
    outcome.run_id = summary.run_id
    event(
        "reconcile.apply_finished",
        f"applied {outcome.applied} endpoint(s)",
        run_id=summary.run_id,
        plan_digest=plan.digest,
        applied=outcome.applied,
        outcomes=dict(summary.counts),
        stopped=summary.stopped,
    )
    return outcome


def close_runs(
    engine: Engine, schema: str, run_ids: Sequence[str], reason: str, *, strict: bool = True
) -> list[tuple[str, str]]:
    """Close interrupted runs nobody will resume; (closed run, closing run) pairs.

    A closing run is a finished run of the same kind and work (plan, or run
    rolled back, or reconcile --apply) with no changes: the journal keeps what
    happened, and says why the work ended there. Under the run lock, so a run
    marked running is known dead (and marked interrupted) before it is closed.
    `strict`: a run that is not unfinished (any more) is an error, else skipped.
    """
    closed = []
    with MigrationLock(engine, schema):
        with engine.begin() as conn:
            if not jr.exists(conn):
                raise DatabaseError(f"no {jr.SCHEMA} journal in this database: no run to resolve")
            jr.install(conn)
            jr.close_orphaned_runs(conn, schema)
            open_now = judge_runs(open_runs(conn, schema), lock_held=False)
            unfinished = {f.run_id for f in open_now if f.kind == UNFINISHED_RUN}
            for run_id in run_ids:
                run = jr.run_row(conn, run_id)
                if run is None or jr.run_schema(run) != schema:
                    raise DatabaseError(f"no run {run_id} on schema {schema!r} in the journal")
                if run_id not in unfinished:
                    if not strict:
                        continue  # resolved since the check
                    how = "resolved by a later run" if run["status"] == "interrupted" else ""
                    raise DatabaseError(
                        f"run {run_id} is {how or run['status']}, not unfinished: "
                        "nothing to resolve"
                    )
                options = run["options"] if isinstance(run["options"], dict) else {}
                closing = new_run_id()
                jr.start_run(
                    conn,
                    run_id=closing,
                    kind=run["kind"],
                    schema=schema,
                    plan_digest=run["plan_digest"],
                    operator=actor.operator(),
                    host=actor.host(),
                    options={
                        "schema": schema,
                        "plan_path": options.get("plan_path"),
                        "run": options.get("run"),
                        "closes": [run_id],
                        "reason": reason,
                    },
                )
                jr.finish_run(conn, closing, "finished")
                closed.append((run_id, closing))
    for run_id, closing in closed:
        event(
            "reconcile.run_closed",
            f"run {run_id} closed by run {closing}: {reason}",
            closed_run=run_id,
            closing_run=closing,
        )
    return closed

"""`reconcile --apply`: migrate a few drifted endpoints through the ordinary apply path.

No second write path: the chosen decisions become an in-memory plan
(plan.build_plan) that apply.run_apply executes under the advisory lock, with
the same per-endpoint transaction, fingerprint check and journal rows as a
reviewed `apply --execute`. The plan never holds more than `max_changes` items,
so a run cannot change more than that, whatever happens during it; a schedule
converges the fleet a canary at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from migrate import auditlog
from migrate.apply import ApplyOptions, Reporter, operator, run_apply
from migrate.change import Result, Settings
from migrate.db import read_only
from migrate.identity import database_identity
from migrate.lock import LockBusy
from migrate.plan import Plan, build_plan, goes_last, risk_order
from migrate.reconcile import RECONCILE_SOURCE
from migrate.records import Decision

DEFAULT_MAX_CHANGES = 1


def select(
    pending: Sequence[Decision],
    max_changes: int,
    include_large: bool = False,
    first: Collection[str] = (),
) -> tuple[list[Decision], list[tuple[Decision, str]]]:
    """(the endpoints to change now, in order; those held back and why). Pure.

    Endpoint ids in `first` (migrated once, reverted since) go before the rest:
    they already ran the new command, so they are the safest to change again.

    Not READY endpoints would only be skipped by apply and would take a slot
    every run, so they wait. Large, unknown-size and risk-flagged endpoints may
    run out of memory without eager: no unattended job changes them unless
    asked to (--include-large); a person follows the staged-rollout runbook.
    """
    held: list[tuple[Decision, str]] = []
    eligible: list[Decision] = []
    for d in pending:
        if d.endpoint_status != "READY":
            held.append((d, f"status {d.endpoint_status}, not READY"))
        elif goes_last(d) and not include_large:
            held.append((d, "large, unknown-size or risk-flagged: needs --include-large"))
        else:
            eligible.append(d)
    ordered = risk_order([d for d in eligible if not goes_last(d)])
    ordered += risk_order([d for d in eligible if goes_last(d)])
    ordered.sort(key=lambda d: d.endpoint_id not in first)  # stable: risk order within
    return ordered[:max_changes], held


class AuditReporter(Reporter):
    """Apply's reporter for an unattended run: audit events, and the results kept."""

    def __init__(self) -> None:
        self.results: list[Result] = []
        self.notes: list[str] = []
        self._log = logging.getLogger(f"{auditlog.LOGGER}.reconcile")

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

    @property
    def applied(self) -> int:
        return sum(1 for r in self.results if r.outcome == "applied")

    def as_dict(self) -> dict[str, Any]:
        outcomes: dict[str, int] = {}
        for r in self.results:
            outcomes[r.outcome] = outcomes.get(r.outcome, 0) + 1
        return {
            "max_changes": self.max_changes,
            "run_id": self.run_id,
            "plan_digest": self.plan_digest,
            "applied": self.applied,
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
        }


def _tool_version() -> str:
    try:
        return version("bundle-migrate")
    except PackageNotFoundError:
        return "unknown"


def make_plan(
    engine: Engine,
    chosen: Sequence[Decision],
    *,
    schema: str,
    policy: dict[str, Any],
    filters: dict[str, Any],
    overrides: str | None,
    statement_timeout_s: int,
) -> Plan:
    with read_only(engine, statement_timeout_s) as conn:
        identity = database_identity(conn)
    return build_plan(
        chosen,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        created_by=operator(),
        tool_version=_tool_version(),
        database=identity,
        schema=schema,
        policy=policy,
        filters=filters,
        overrides=overrides,
        # One count stage holding all the chosen regular endpoints; large ones
        # (only with --include-large) get the plan's own last stage.
        stage_spec=str(max(1, len(chosen))),
    )


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
) -> ApplyOutcome:
    outcome = ApplyOutcome(max_changes=max_changes)
    if not chosen:
        return outcome
    if len(chosen) > max_changes:
        raise ValueError("more endpoints chosen than --max-changes allows")
    plan = make_plan(
        engine,
        chosen,
        schema=schema,
        policy=policy,
        filters=filters,
        overrides=overrides,
        statement_timeout_s=statement_timeout_s,
    )
    outcome.plan_digest = plan.digest
    options = ApplyOptions(
        settings=Settings(schema=schema, statement_timeout_s=statement_timeout_s),
        execute=True,
        all_stages=True,
        max_failures=0,
        plan_path=RECONCILE_SOURCE,
    )
    reporter = AuditReporter()
    auditlog.event(
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
        auditlog.event(
            "reconcile.apply_skipped", outcome.skipped, level=logging.WARNING, reason="lock-busy"
        )
        return outcome
    finally:
        outcome.results = reporter.results
    outcome.run_id = summary.run_id
    auditlog.event(
        "reconcile.apply_finished",
        f"applied {outcome.applied} endpoint(s)",
        run_id=summary.run_id,
        plan_digest=plan.digest,
        applied=outcome.applied,
        outcomes=dict(summary.counts),
        stopped=summary.stopped,
    )
    return outcome

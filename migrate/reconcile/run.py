"""One reconciliation, as `bundle-migrate reconcile` runs it: resolve, check, converge, report.

Resolving abandoned runs (--resolve-run), the scan-plus-journal check, the
bounded --apply through the journaled apply path and the check of what
remains, then the JSON document (the README's contract) that every renderer
and alert reads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from migrate.core.documents import FORMAT_VERSION
from migrate.core.overrides import Overrides
from migrate.core.policy import PolicyParams
from migrate.core.records import Decision
from migrate.reconcile.autoapply import ApplyOutcome, apply_some, close_runs, select
from migrate.reconcile.check import check
from migrate.reconcile.findings import DRIFT, PENDING, Check
from migrate.rollout.audit import LOGGER, event
from migrate.rollout.redeploy import Redeploy
from migrate.store import fleet

log = logging.getLogger(f"{LOGGER}.reconcile")


@dataclass(frozen=True)
class Request:
    """What the operator asked for, as library arguments."""

    schema: str
    filters: fleet.Filters
    filters_doc: dict[str, Any]
    params: PolicyParams
    overrides: Overrides | None
    overrides_path: str | None
    statement_timeout_s: int
    jobs: int = 1
    apply: bool = False
    max_changes: int = 1
    include_large: bool = False
    resolve_runs: Sequence[str] = ()
    redeploy: Redeploy | None = None


@dataclass
class Reconciliation:
    check: Check
    outcome: ApplyOutcome | None
    document: dict[str, Any]


def reconcile(
    engine: Engine,
    request: Request,
    meta: dict[str, Any],
    notify: Callable[[str], None] = lambda text: None,
) -> Reconciliation:
    """Run one reconciliation; `meta` heads the document, `notify` hears of resolved runs."""
    kwargs: dict[str, Any] = {
        "schema": request.schema,
        "filters": request.filters,
        "params": request.params,
        "overrides": request.overrides,
        "statement_timeout_s": request.statement_timeout_s,
        "jobs": request.jobs,
    }
    outcome = None
    if request.resolve_runs:
        for closed, closing in close_runs(
            engine, request.schema, request.resolve_runs, "resolved by reconcile --resolve-run"
        ):
            notify(f"run {closed} resolved (closed by run {closing})")
    result = check(engine, **kwargs)
    _audit(result, "before" if request.apply else "check")
    if request.apply:
        chosen, _ = choose(result, request.max_changes, request.include_large)
        outcome = apply_some(
            engine,
            chosen,
            max_changes=request.max_changes,
            schema=request.schema,
            policy=request.params.as_dict(),
            filters=request.filters_doc,
            overrides=request.overrides_path,
            statement_timeout_s=request.statement_timeout_s,
            unfinished=result.unfinished_reconcile,
            redeploy=request.redeploy,
        )
        if outcome.results or outcome.closed:
            result = check(engine, **kwargs)  # report what remains
            _audit(result, "after")
    doc = document(result, meta, outcome, request.max_changes, request.include_large)
    return Reconciliation(result, outcome, doc)


def document(
    result: Check,
    meta: dict[str, Any],
    outcome: ApplyOutcome | None,
    max_changes: int,
    include_large: bool,
) -> dict[str, Any]:
    """The JSON contract (README): stable keys; new keys may be added."""
    chosen, held = choose(result, max_changes, include_large)
    return {
        "format_version": FORMAT_VERSION,
        "reconcile": {**meta, "journal": result.journal},
        "status": "drift" if result.drift else "clean",
        "drift": result.drift,
        "counts": result.counts(),
        "findings": [f.as_dict() for f in result.findings],
        "scan": result.summary.as_dict(),
        "apply": outcome.as_dict() if outcome is not None else None,
        "next": {
            "max_changes": max_changes,
            "endpoints": [d.endpoint_name for d in chosen],
            "held_back": len(held),
        },
    }


def choose(
    result: Check, max_changes: int, include_large: bool
) -> tuple[list[Decision], list[tuple[Decision, str]]]:
    """What --apply picks from this check, and what it holds back."""
    return select(
        result.pending,
        max_changes,
        include_large,
        first=result.reverted_ids(),
        hold=result.held,
        failed=result.failed_at,
    )


def _audit(result: Check, phase: str) -> None:
    for f in result.findings:
        if f.kind != PENDING:  # pending changes are counted, not listed: fleets are large
            level = logging.WARNING if f.severity == DRIFT else logging.INFO
            log.log(
                level, f"{f.kind}: {f.detail}", extra={"event": "reconcile.finding", **_fields(f)}
            )
    event(
        "reconcile.checked",
        f"{phase}: {result.drift} drift finding(s)",
        phase=phase,
        drift=result.drift,
        counts={k: n for k, n in result.counts().items() if n},
        actions=dict(result.summary.actions),
    )


def _fields(f: Any) -> dict[str, Any]:
    d = f.as_dict()
    # `run_id` would rebind the log's run; the finding's run is a field of its own.
    d["finding_run_id"] = d.pop("run_id")
    d["endpoint"] = d.pop("endpoint_name")
    return d

"""One endpoint's change, in one transaction: read -> check -> write -> journal.

The check (`migrate.core.verdict`) is pure and the same one the dry run makes,
so a dry run reports exactly what the real run would do. The write copies the
current bundle row server-side (`INSERT ... SELECT`, every column the catalog
lists, on any schema version) with only the id, created_at, the commands and
a metadata mark changed, then points the endpoint at the copy. No existing
bundle row is ever updated or deleted. The journal row commits with the change.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.engine import Connection, Engine

from migrate.core import outcomes as oc
from migrate.core.fingerprint import command_digest
from migrate.core.outcomes import Result
from migrate.core.plan import PlanItem
from migrate.core.records import EndpointRecord
from migrate.core.verdict import Verdict, evaluate
from migrate.rollout.transaction import (
    COMMITTED_UNACKNOWLEDGED,
    Hook,
    Journal,
    Settings,
    Stop,
    begin_settings,
    in_transaction,
    record_outside,
)
from migrate.store import journal as jr
from migrate.store import rows


@dataclass(frozen=True)
class RunContext:
    run_id: str
    plan_digest: str
    stage: int


# `history` not given: read it from the journal (when there is one).
UNREAD: Any = object()


def read(
    conn: Connection,
    schema: str,
    item: PlanItem,
    plan_digest: str,
    *,
    lock: bool,
    journal: bool,
    history: dict[str, Any] | None = UNREAD,
) -> tuple[dict[str, Any] | None, EndpointRecord | None, Verdict]:
    """Read the endpoint (locking it when writing) and its history, and judge the item.

    A caller that read the history already passes it: under the run lock the
    journal's history of this plan cannot change in between.
    """
    endpoint = rows.read_endpoint(conn, schema, item.endpoint_id, lock=lock)
    if history is UNREAD:
        history = jr.apply_history(conn, plan_digest, item.endpoint_id) if journal else None
    record = None
    if endpoint is not None:
        bundle_id = endpoint.get("current_bundle_id")
        bundle = rows.read_bundle(conn, schema, bundle_id) if bundle_id else None
        record = rows.to_record(endpoint, bundle)
    return endpoint, record, evaluate(item, record, history)


def _apply(
    conn: Connection,
    settings: Settings,
    item: PlanItem,
    ctx: RunContext,
    hook: Hook | None,
    deploy_state: str | None,
    history: dict[str, Any] | None,
) -> Result:
    schema = settings.schema
    begin_settings(conn, settings)

    # Read and check, the row locked.
    endpoint, record, verdict = read(
        conn, schema, item, ctx.plan_digest, lock=True, journal=True, history=history
    )
    if hook:
        hook("locked", conn)
    before = record.current_bundle_id if record else None
    if verdict.outcome is not None:
        raise Stop(_result(item, ctx, verdict.outcome, verdict.detail, before))
    assert endpoint is not None and record is not None and record.bundle is not None
    assert verdict.command_after is not None and before is not None

    # Write: a copy of the bundle with the verified command, and the endpoint pointed at it.
    meta_before = endpoint[rows.METADATA_TEXT]
    new_id = rows.insert_bundle_copy(
        conn,
        schema,
        before,
        command=verdict.command_after,
        streaming=verdict.streaming_after,
        mark={"run_id": ctx.run_id, "plan_digest": ctx.plan_digest, "from_bundle": before},
    )
    if hook:
        hook("bundle-inserted", conn)
    meta_after = rows.point_endpoint(
        conn,
        schema,
        item.endpoint_id,
        new_id,
        args_after=verdict.args_after,
        touch="last_updated_at" in endpoint,
    )
    if hook:
        hook("endpoint-updated", conn)

    # Journal, in the same transaction.
    change_id = jr.record_change(
        conn,
        **_journal_fields(ctx, item),
        bundle_before=before,
        bundle_after=new_id,
        command_digest_before=command_digest(record.bundle.command),
        command_digest_after=command_digest(verdict.command_after),
        metadata_before=meta_before,
        metadata_after=meta_after,
        outcome=oc.APPLIED,
        detail=verdict.detail or None,
        deploy_state=deploy_state,
    )
    if hook:
        hook("before-commit", conn)
    result = _result(item, ctx, oc.APPLIED, verdict.detail, before, new_id)
    return replace(result, change_id=change_id, deploy_state=deploy_state)


def apply_item(
    engine: Engine,
    settings: Settings,
    item: PlanItem,
    ctx: RunContext,
    hook: Hook | None = None,
    *,
    deploy_state: str | None = None,
    history: dict[str, Any] | None = UNREAD,
) -> Result:
    """Apply one plan item in one transaction; skips and failures are journaled apart.

    `deploy_state`: `written` when a redeploy follows (None: rows only).
    `history`: this plan's applied change to the endpoint, when the caller read it.
    """
    return in_transaction(
        engine,
        lambda conn: _apply(conn, settings, item, ctx, hook, deploy_state, history),
        on_error=lambda outcome, detail: _result(item, ctx, outcome, detail, item.bundle_id),
        committed_anyway=lambda conn: _committed_anyway(conn, item, ctx),
        journal=journal_apart(ctx, item),
    )


def skip_if_done(engine: Engine, item: PlanItem, ctx: RunContext) -> Result | None:
    """On a rerun, endpoints this plan already changed are skipped without locking them.

    The journal row was committed with the endpoint's update, so it alone is
    proof; a busy row is then reported as already applied, not as busy.
    """
    with engine.connect() as conn:
        history = jr.apply_history(conn, ctx.plan_digest, item.endpoint_id)
    if history is None:
        return None
    verdict = evaluate(item, None, history)
    assert verdict.outcome is not None
    result = _result(
        item,
        ctx,
        verdict.outcome,
        verdict.detail,
        history["bundle_before"],
        history["bundle_after"],
    )
    return record_outside(engine, result, journal_apart(ctx, item))


def _result(
    item: PlanItem,
    ctx: RunContext,
    outcome: str,
    detail: str,
    before: str | None,
    after: str | None = None,
) -> Result:
    return Result(item.endpoint_id, item.endpoint_name, ctx.stage, outcome, detail, before, after)


def _journal_fields(ctx: RunContext, item: PlanItem) -> dict[str, Any]:
    return {
        "run_id": ctx.run_id,
        "kind": "apply",
        "stage": ctx.stage,
        "endpoint_id": item.endpoint_id,
        "endpoint_name": item.endpoint_name,
        "plan_digest": ctx.plan_digest,
    }


def journal_apart(ctx: RunContext, item: PlanItem) -> Journal:
    """How an apply's skip or failure is journaled, outside its own transaction."""
    return lambda conn, result: jr.record_change(
        conn,
        **_journal_fields(ctx, item),
        bundle_before=result.bundle_before,
        # None for a skip or failure here; the earlier run's bundle for one already applied.
        bundle_after=result.bundle_after,
        outcome=result.outcome,
        detail=result.detail or None,
    )


def _committed_anyway(conn: Connection, item: PlanItem, ctx: RunContext) -> Result | None:
    """After an error, whether this run's change committed all the same.

    A connection lost during COMMIT leaves the client unsure: the server may
    have committed. The journal row commits with the change, so it decides;
    journaling a failure without looking would leave `applied` and `failed`
    side by side for one endpoint.
    """
    history = jr.apply_history(conn, ctx.plan_digest, item.endpoint_id)
    if history is None or history["run_id"] != ctx.run_id:
        return None
    result = _result(
        item,
        ctx,
        oc.APPLIED,
        COMMITTED_UNACKNOWLEDGED,
        history["bundle_before"],
        history["bundle_after"],
    )
    return replace(result, change_id=history["id"], deploy_state=history.get("deploy_state"))

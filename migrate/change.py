"""One endpoint, one transaction: the write that apply makes.

The checks before it live in migrate.verdict, shared with the dry run, so a
dry run reports exactly what the real run would do. The write copies the current
bundle row server-side (`INSERT ... SELECT`) with the column list read from
the catalog, so every column, known or not, on any schema version, is copied
byte for byte; only the id, created_at, the commands and the metadata mark
differ. No existing bundle row is ever updated or deleted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from migrate import journal as jr
from migrate.db import scrub
from migrate.fingerprint import command_digest
from migrate.plan import PlanItem
from migrate.rows import column_type, insert_bundle_copy, metadata_text, qident
from migrate.verdict import evaluate, inspect

LOCK_NOT_AVAILABLE = "55P03"  # NOWAIT and lock_timeout both raise it

# A test seam: called with a step name and the endpoint's connection mid-transaction,
# so fault tests can kill the backend at a precise point.
Hook = Callable[[str, Connection], None]


@dataclass(frozen=True)
class Settings:
    schema: str
    statement_timeout_s: int = 60
    # Short: an endpoint someone else is writing is skipped as busy and retried
    # on the next run, rather than holding model engine's own writers up.
    lock_timeout_ms: int = 2000


@dataclass(frozen=True)
class Result:
    endpoint_id: str
    endpoint_name: str
    stage: int | None
    outcome: str
    detail: str = ""
    bundle_before: str | None = None
    bundle_after: str | None = None


class Stop(Exception):
    """Leave the transaction (rolled back) with this result."""

    def __init__(self, result: Result) -> None:
        super().__init__(result.outcome)
        self.result = result


COMMITTED_UNACKNOWLEDGED = "committed, though the connection was lost before the acknowledgement"

# Writes the journal row for a skip or failure, given the connection and the result.
Journal = Callable[[Connection, Result], Any]


def sqlstate(exc: BaseException) -> str | None:
    return getattr(getattr(exc, "orig", None), "sqlstate", None)


def begin_settings(conn: Connection, settings: Settings) -> None:
    for name, value in (
        ("lock_timeout", f"{settings.lock_timeout_ms}ms"),
        ("statement_timeout", f"{settings.statement_timeout_s * 1000}ms"),
        # If this process is stopped mid-transaction, free model engine's row soon.
        ("idle_in_transaction_session_timeout", f"{max(60, settings.statement_timeout_s)}s"),
    ):
        conn.execute(sa.text("SELECT set_config(:n, :v, true)"), {"n": name, "v": value})


@dataclass(frozen=True)
class RunContext:
    run_id: str
    plan_digest: str
    stage: int


def _write(
    conn: Connection, settings: Settings, item: PlanItem, ctx: RunContext, hook: Hook | None
) -> Result:
    schema = settings.schema
    begin_settings(conn, settings)
    endpoint, record, verdict = inspect(
        conn, settings.schema, item, ctx.plan_digest, lock=True, journal=True
    )
    if hook:
        hook("locked", conn)
    base = {
        "endpoint_id": item.endpoint_id,
        "endpoint_name": item.endpoint_name,
        "stage": ctx.stage,
    }
    before = record.current_bundle_id if record else None
    if verdict.outcome is not None:
        raise Stop(
            Result(**base, outcome=verdict.outcome, detail=verdict.detail, bundle_before=before)
        )
    assert endpoint is not None and record is not None and record.bundle is not None
    assert verdict.command_after is not None and before is not None
    meta_before = metadata_text(conn, schema, item.endpoint_id)
    mark = {"run_id": ctx.run_id, "plan_digest": ctx.plan_digest, "from_bundle": before}
    new_id = insert_bundle_copy(
        conn,
        schema,
        before,
        command=verdict.command_after,
        streaming=verdict.streaming_after,
        mark=mark,
    )
    if hook:
        hook("bundle-inserted", conn)
    sets = ["current_bundle_id = :new_id"]
    params: dict[str, Any] = {"new_id": new_id, "id": item.endpoint_id}
    if "last_updated_at" in endpoint:
        sets.append("last_updated_at = now()")
    if item.args_after is not None:
        # Model engine's own later recreation obeys this dict, so it must agree.
        meta_type = column_type(conn, schema, "endpoints", "endpoint_metadata")
        sets.append(
            f"endpoint_metadata = CAST(jsonb_set(CAST(endpoint_metadata AS jsonb), "
            f"CAST(:path AS text[]), CAST(:args AS jsonb), true) AS {meta_type})"
        )
        params.update(path=["_llm", "vllm_additional_args"], args=json.dumps(item.args_after))
    meta_after = conn.execute(
        sa.text(
            f"UPDATE {qident(schema)}.endpoints SET {', '.join(sets)} WHERE id = :id "
            "RETURNING CAST(CAST(endpoint_metadata AS jsonb) AS text)"
        ),
        params,
    ).scalar_one()
    if hook:
        hook("endpoint-updated", conn)
    jr.record_change(
        conn,
        **_journal_fields(ctx, item, "apply"),
        bundle_before=before,
        bundle_after=new_id,
        command_digest_before=command_digest(record.bundle.command),
        command_digest_after=command_digest(verdict.command_after),
        metadata_before=meta_before,
        metadata_after=meta_after,
        outcome=jr.APPLIED,
        detail=verdict.detail or None,
    )
    if hook:
        hook("before-commit", conn)
    return Result(
        **base, outcome=jr.APPLIED, detail=verdict.detail, bundle_before=before, bundle_after=new_id
    )


def _journal_fields(ctx: RunContext, item: PlanItem, kind: str) -> dict[str, Any]:
    return {
        "run_id": ctx.run_id,
        "kind": kind,
        "stage": ctx.stage,
        "endpoint_id": item.endpoint_id,
        "endpoint_name": item.endpoint_name,
        "plan_digest": ctx.plan_digest,
    }


def db_failure(exc: sa.exc.DBAPIError, engine: Engine) -> tuple[str, str]:
    """(outcome, detail) for a database error during one endpoint's transaction."""
    if sqlstate(exc) == LOCK_NOT_AVAILABLE:
        return jr.SKIPPED_BUSY, "row locked by another transaction; retry on the next run"
    text = " ".join(str(getattr(exc, "orig", exc)).split())
    return jr.FAILED, scrub(f"database error, rolled back: {text}", engine.url)


def apply_item(
    engine: Engine, settings: Settings, item: PlanItem, ctx: RunContext, hook: Hook | None = None
) -> Result:
    """Apply one plan item in one transaction; skips and failures are journaled apart."""
    return in_transaction(
        engine,
        lambda conn: _write(conn, settings, item, ctx, hook),
        on_error=lambda outcome, detail: Result(
            item.endpoint_id, item.endpoint_name, ctx.stage, outcome, detail, item.bundle_id
        ),
        committed_anyway=lambda conn: _committed_anyway(conn, item, ctx),
        journal=_journal_apart(ctx, item),
    )


def _journal_apart(ctx: RunContext, item: PlanItem) -> Journal:
    """How an apply's skip or failure is journaled, outside its transaction."""
    return lambda conn, result: jr.record_change(
        conn,
        **_journal_fields(ctx, item, "apply"),
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
    return Result(
        item.endpoint_id,
        item.endpoint_name,
        ctx.stage,
        jr.APPLIED,
        COMMITTED_UNACKNOWLEDGED,
        history["bundle_before"],
        history["bundle_after"],
    )


def in_transaction(
    engine: Engine,
    body: Callable[[Connection], Result],
    *,
    on_error: Callable[[str, str], Result],
    committed_anyway: Callable[[Connection], Result | None],
    journal: Journal,
) -> Result:
    """One endpoint's transaction, and the journaling of whatever kept it from committing.

    `body` runs inside the transaction: it returns the result, committed with its
    own journal row, or raises Stop to leave rolled back with a skip. A database
    error becomes `on_error(outcome, detail)`, except that an error which may have
    hit COMMIT itself is first checked: `committed_anyway` looks in the journal on
    a fresh connection and returns the committed result (already journaled) or
    None. Skips and failures are journaled by `journal`, outside the transaction.
    """
    try:
        with engine.connect() as conn, conn.begin():
            return body(conn)
    except Stop as stop:
        result = stop.result
    except sa.exc.DBAPIError as exc:
        outcome, detail = db_failure(exc, engine)
        if outcome == jr.FAILED:
            try:
                with engine.connect() as conn:
                    committed = committed_anyway(conn)
            except sa.exc.DBAPIError:
                committed = None  # still unreachable: the failure is journaled if it can be
            if committed is not None:
                return committed
        result = on_error(outcome, detail)
    return record_outside(engine, result, journal)


def record_outside(engine: Engine, result: Result, journal: Journal) -> Result:
    """Journal a skip or failure in its own small transaction.

    If even that fails (the database went away), say so in the result rather
    than lose the outcome: the run stops on failures anyway.
    """
    try:
        with engine.begin() as conn:
            journal(conn, result)
    except sa.exc.DBAPIError as exc:
        text = " ".join(str(getattr(exc, "orig", exc)).split())
        note = scrub(f" (not journaled: {text})", engine.url)
        return replace(result, detail=result.detail + note)
    return result


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
    result = Result(
        item.endpoint_id,
        item.endpoint_name,
        ctx.stage,
        verdict.outcome,
        verdict.detail,
        history["bundle_before"],
        history["bundle_after"],
    )
    return record_outside(engine, result, _journal_apart(ctx, item))

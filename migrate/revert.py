"""One endpoint rolled back in one transaction: exactly the state before the change.

The journal row of the change holds the bundle the endpoint ran and its
metadata as jsonb; both are restored server-side from that row, so the
metadata comes back value for value. Nothing is deleted: the bundle the run
wrote stays, as model engine keeps every old bundle.

An endpoint that is not READY is in the middle of a model engine update:
re-pointing it then races model engine's own writer, so it is skipped (and
retried by rerunning) unless --force.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from migrate import journal as jr
from migrate.change import (
    COMMITTED_UNACKNOWLEDGED,
    Hook,
    Result,
    Settings,
    Stop,
    begin_settings,
    in_transaction,
)
from migrate.fingerprint import command_digest
from migrate.rows import column_type, metadata_text, qident, read_endpoint

J = jr.SCHEMA


def _change_row(conn: Connection, change_id: int, *, lock: bool) -> dict[str, Any]:
    suffix = " FOR UPDATE" if lock else ""
    return dict(
        conn.execute(
            sa.text(
                f"SELECT id, run_id, stage, plan_digest, endpoint_id, endpoint_name, "
                f"bundle_before, bundle_after, reverted_by, command_digest_before "
                f"FROM {J}.changes WHERE id = :id{suffix}"
            ),
            {"id": change_id},
        )
        .mappings()
        .one()
    )


def drift(
    conn: Connection, settings: Settings, change: dict[str, Any], endpoint: dict[str, Any]
) -> list[str]:
    """How the endpoint differs from what the change left it as (empty: untouched since)."""
    reasons = []
    if endpoint.get("current_bundle_id") != change["bundle_after"]:
        reasons.append(
            f"it now runs {endpoint.get('current_bundle_id')}, "
            f"the run gave it {change['bundle_after']}"
        )
    same_metadata = conn.execute(
        sa.text(
            f"SELECT CAST(e.endpoint_metadata AS jsonb) IS NOT DISTINCT FROM c.metadata_after "
            f"FROM {qident(settings.schema)}.endpoints e, {J}.changes c "
            "WHERE e.id = :e AND c.id = :c"
        ),
        {"e": change["endpoint_id"], "c": change["id"]},
    ).scalar_one()
    if not same_metadata:
        reasons.append("its metadata changed since the run")
    return reasons


def check(
    conn: Connection, settings: Settings, change: dict[str, Any], *, lock: bool, force: bool
) -> tuple[str | None, str, dict[str, Any] | None]:
    """(skip outcome or None, detail, endpoint row) for rolling this change back now."""
    current = _change_row(conn, change["id"], lock=lock)
    if current["reverted_by"] is not None:
        return (
            jr.ROLLBACK_SKIPPED_ALREADY,
            f"already rolled back by journal change {current['reverted_by']}",
            None,
        )
    endpoint = read_endpoint(conn, settings.schema, change["endpoint_id"], lock=lock)
    if endpoint is None:
        return jr.ROLLBACK_SKIPPED_DRIFTED, "the endpoint no longer exists", None
    reasons = drift(conn, settings, change, endpoint)
    status = endpoint.get("endpoint_status")
    if status is not None and status != "READY":
        if not force:
            also = ("; also changed since the run: " + "; ".join(reasons)) if reasons else ""
            return (
                jr.ROLLBACK_SKIPPED_NOT_READY,
                f"endpoint status is {status}, not READY: model engine is updating it{also}; "
                "rerun the rollback once it is READY (--force re-points it anyway)",
                endpoint,
            )
        reasons.append(f"endpoint status {status}, not READY")
    if reasons and not force:
        return (
            jr.ROLLBACK_SKIPPED_DRIFTED,
            "changed since the run: " + "; ".join(reasons) + " (--force restores it anyway)",
            endpoint,
        )
    restored = conn.execute(
        sa.text(f"SELECT count(*) FROM {qident(settings.schema)}.bundles WHERE id = :b"),
        {"b": change["bundle_before"]},
    ).scalar_one()
    if not restored:
        return jr.FAILED, f"the previous bundle {change['bundle_before']} is gone", endpoint
    detail = ("forced over: " + "; ".join(reasons)) if reasons else ""
    return None, detail, endpoint


def _bundle_command_digest(conn: Connection, schema: str, bundle_id: str | None) -> str | None:
    if bundle_id is None:
        return None
    value = conn.execute(
        sa.text(f"SELECT runnable_image_command FROM {qident(schema)}.bundles WHERE id = :b"),
        {"b": bundle_id},
    ).scalar()
    return command_digest(value)


def _revert(
    conn: Connection,
    settings: Settings,
    change: dict[str, Any],
    run_id: str,
    force: bool,
    hook: Hook | None,
) -> Result:
    schema = settings.schema
    begin_settings(conn, settings)
    outcome, detail, endpoint = check(conn, settings, change, lock=True, force=force)
    now_bundle = endpoint.get("current_bundle_id") if endpoint else None
    base = {"endpoint_id": change["endpoint_id"], "endpoint_name": change["endpoint_name"]}
    if outcome is not None:
        raise Stop(
            Result(
                **base,
                stage=change["stage"],
                outcome=outcome,
                detail=detail,
                bundle_before=now_bundle,
            )
        )
    assert endpoint is not None
    meta_before = metadata_text(conn, schema, change["endpoint_id"])
    meta_type = column_type(conn, schema, "endpoints", "endpoint_metadata")
    sets = [
        "current_bundle_id = c.bundle_before",
        f"endpoint_metadata = CAST(c.metadata_before AS {meta_type})",
    ]
    if "last_updated_at" in endpoint:  # as apply: older schemas may lack it
        sets.append("last_updated_at = now()")
    meta_after = conn.execute(
        sa.text(
            f"UPDATE {qident(schema)}.endpoints e SET {', '.join(sets)} "
            f"FROM {J}.changes c WHERE c.id = :c AND e.id = :e "
            "RETURNING CAST(CAST(e.endpoint_metadata AS jsonb) AS text)"
        ),
        {"c": change["id"], "e": change["endpoint_id"]},
    ).scalar_one()
    if hook:
        hook("endpoint-restored", conn)
    new_id = jr.record_change(
        conn,
        **_journal_fields(change, run_id),
        bundle_before=now_bundle,
        bundle_after=change["bundle_before"],
        command_digest_before=_bundle_command_digest(conn, schema, now_bundle),
        command_digest_after=_bundle_command_digest(conn, schema, change["bundle_before"]),
        metadata_before=meta_before,
        metadata_after=meta_after,
        outcome=jr.ROLLED_BACK,
        detail=detail or None,
    )
    conn.execute(
        sa.text(f"UPDATE {J}.changes SET reverted_by = :n WHERE id = :c AND reverted_by IS NULL"),
        {"n": new_id, "c": change["id"]},
    )
    if hook:
        hook("before-commit", conn)
    return Result(
        **base,
        stage=change["stage"],
        outcome=jr.ROLLED_BACK,
        detail=detail,
        bundle_before=now_bundle,
        bundle_after=change["bundle_before"],
    )


def _journal_fields(change: dict[str, Any], run_id: str) -> dict[str, Any]:
    """The journal columns every rollback row of this change shares."""
    same = ("stage", "endpoint_id", "endpoint_name", "plan_digest")
    return {"run_id": run_id, "kind": "rollback", **{key: change[key] for key in same}}


def revert_change(
    engine: Engine,
    settings: Settings,
    change: dict[str, Any],
    *,
    run_id: str,
    force: bool = False,
    hook: Hook | None = None,
) -> Result:
    return in_transaction(
        engine,
        lambda conn: _revert(conn, settings, change, run_id, force, hook),
        on_error=lambda outcome, detail: Result(
            change["endpoint_id"], change["endpoint_name"], change["stage"], outcome, detail
        ),
        committed_anyway=lambda conn: _committed_anyway(conn, change, run_id),
        # Only a rollback that happened names a bundle after; a skip or failure changed nothing.
        journal=lambda conn, result: jr.record_change(
            conn,
            **_journal_fields(change, run_id),
            bundle_before=result.bundle_before,
            outcome=result.outcome,
            detail=result.detail or None,
        ),
    )


def _committed_anyway(conn: Connection, change: dict[str, Any], run_id: str) -> Result | None:
    """After an error, whether this run's rollback of the change committed all the same.

    As in apply: a lost COMMIT acknowledgement must not leave a `failed` row
    beside the `rolled-back` one that did commit.
    """
    undo = jr.reverting_change(conn, change["id"])
    if undo is None or undo["run_id"] != run_id:
        return None
    return Result(
        change["endpoint_id"],
        change["endpoint_name"],
        change["stage"],
        jr.ROLLED_BACK,
        COMMITTED_UNACKNOWLEDGED,
        undo["bundle_before"],
        undo["bundle_after"],
    )

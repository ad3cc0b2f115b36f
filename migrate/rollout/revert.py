"""One endpoint rolled back in one transaction: read -> check -> restore -> journal.

The journal row of the change holds the bundle the endpoint ran and its
metadata as jsonb; both are restored server-side from that row, so the
metadata comes back value for value. Nothing is deleted: the bundle the run
wrote stays, as model engine keeps every old bundle. The check
(`migrate.core.verdict.judge_rollback`) is pure and shared with the dry run.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy.engine import Connection, Engine

from migrate.core import outcomes as oc
from migrate.core.fingerprint import command_digest
from migrate.core.outcomes import Result
from migrate.core.verdict import RollbackFacts, Verdict, judge_rollback
from migrate.rollout.transaction import (
    COMMITTED_UNACKNOWLEDGED,
    Hook,
    Settings,
    Stop,
    begin_settings,
    in_transaction,
)
from migrate.store import journal as jr
from migrate.store import rows


def read(
    conn: Connection, schema: str, change: dict[str, Any], *, lock: bool, force: bool
) -> tuple[dict[str, Any] | None, Verdict]:
    """Read the change and the endpoint (locking both when writing) and judge the rollback."""
    current = jr.change_row(conn, change["id"], lock=lock)
    if current["reverted_by"] is not None:
        return None, judge_rollback(
            change, RollbackFacts(current["reverted_by"], True), force=force
        )
    endpoint = rows.read_endpoint(conn, schema, change["endpoint_id"], lock=lock)
    if endpoint is None:
        return None, judge_rollback(change, RollbackFacts(None, False), force=force)
    now_bundle = endpoint.get("current_bundle_id")
    if now_bundle is not None and now_bundle == change.get("deployed_bundle"):
        # Model engine's recreation, asked for by the run: what the change left.
        now_bundle = change["bundle_after"]
    facts = RollbackFacts(
        reverted_by=None,
        endpoint_exists=True,
        current_bundle_id=now_bundle,
        status=endpoint.get("endpoint_status"),
        metadata_unchanged=jr.metadata_unchanged(conn, schema, change["endpoint_id"], change["id"]),
        previous_bundle_exists=rows.bundle_exists(conn, schema, change["bundle_before"]),
    )
    return endpoint, judge_rollback(change, facts, force=force)


def _revert(
    conn: Connection,
    settings: Settings,
    change: dict[str, Any],
    run_id: str,
    force: bool,
    hook: Hook | None,
    deploy_state: str | None,
) -> Result:
    schema = settings.schema
    begin_settings(conn, settings)

    # Read and check, the rows locked.
    endpoint, verdict = read(conn, schema, change, lock=True, force=force)
    now_bundle = endpoint.get("current_bundle_id") if endpoint else None
    if verdict.outcome is not None:
        raise Stop(_result(change, verdict.outcome, verdict.detail, now_bundle))
    assert endpoint is not None

    # Restore the endpoint as the change found it.
    meta_before = endpoint[rows.METADATA_TEXT]
    meta_after = jr.restore_endpoint(
        conn,
        schema,
        change["endpoint_id"],
        change["id"],
        touch="last_updated_at" in endpoint,
    )
    if hook:
        hook("endpoint-restored", conn)

    # Journal, in the same transaction, and mark the change reverted.
    new_id = jr.record_change(
        conn,
        **_journal_fields(change, run_id),
        bundle_before=now_bundle,
        bundle_after=change["bundle_before"],
        command_digest_before=(
            command_digest(rows.bundle_command(conn, schema, now_bundle)) if now_bundle else None
        ),
        command_digest_after=command_digest(
            rows.bundle_command(conn, schema, change["bundle_before"])
        ),
        metadata_before=meta_before,
        metadata_after=meta_after,
        outcome=oc.ROLLED_BACK,
        detail=verdict.detail or None,
        deploy_state=deploy_state,
    )
    jr.mark_reverted(conn, change["id"], new_id)
    if hook:
        hook("before-commit", conn)
    result = _result(change, oc.ROLLED_BACK, verdict.detail, now_bundle, change["bundle_before"])
    return replace(result, change_id=new_id, deploy_state=deploy_state)


def revert_change(
    engine: Engine,
    settings: Settings,
    change: dict[str, Any],
    *,
    run_id: str,
    force: bool = False,
    hook: Hook | None = None,
    deploy_state: str | None = None,
) -> Result:
    """Roll one change back in one transaction; `deploy_state` `written` when a redeploy follows."""
    return in_transaction(
        engine,
        lambda conn: _revert(conn, settings, change, run_id, force, hook, deploy_state),
        on_error=lambda outcome, detail: _result(change, outcome, detail, None),
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


def _result(
    change: dict[str, Any], outcome: str, detail: str, before: str | None, after: str | None = None
) -> Result:
    return Result(
        change["endpoint_id"],
        change["endpoint_name"],
        change["stage"],
        outcome,
        detail,
        before,
        after,
    )


def _journal_fields(change: dict[str, Any], run_id: str) -> dict[str, Any]:
    """The journal columns every rollback row of this change shares."""
    same = ("stage", "endpoint_id", "endpoint_name", "plan_digest")
    return {"run_id": run_id, "kind": "rollback", **{key: change[key] for key in same}}


def _committed_anyway(conn: Connection, change: dict[str, Any], run_id: str) -> Result | None:
    """After an error, whether this run's rollback of the change committed all the same.

    As in apply: a lost COMMIT acknowledgement must not leave a `failed` row
    beside the `rolled-back` one that did commit.
    """
    undo = jr.reverting_change(conn, change["id"])
    if undo is None or undo["run_id"] != run_id:
        return None
    before, after = undo["bundle_before"], undo["bundle_after"]
    result = _result(change, oc.ROLLED_BACK, COMMITTED_UNACKNOWLEDGED, before, after)
    return replace(result, change_id=undo["id"], deploy_state=undo.get("deploy_state"))

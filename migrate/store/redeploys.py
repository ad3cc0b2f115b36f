"""The journal's record of redeploys: each written change's deploy state, and aborted plans.

Every state change commits on its own, before the step it announces (the PUT)
or right after the step it records (the answer, the verdict), so a run killed
at any point leaves the journal saying exactly how far each endpoint got.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from migrate.store.journal import SCHEMA
from migrate.store.rows import qident


def set_state(
    conn: Connection,
    change_id: int,
    state: str,
    *,
    detail: str | None = None,
    task: str | None = None,
) -> datetime:
    """Move a change's deploy state; when it moved, by the database's clock."""
    return conn.execute(
        sa.text(
            f"UPDATE {SCHEMA}.changes SET deploy_state = :s, deploy_detail = :d, "
            "deploy_task = COALESCE(:t, deploy_task), deploy_updated_at = clock_timestamp() "
            "WHERE id = :id RETURNING deploy_updated_at"
        ),
        {"s": state, "d": detail, "t": task, "id": change_id},
    ).scalar_one()


def capture_deployed(conn: Connection, change_id: int, schema: str, endpoint_id: str) -> None:
    """Record the bundle and metadata model engine's recreation left the endpoint with."""
    conn.execute(
        sa.text(
            f"UPDATE {SCHEMA}.changes c SET deployed_bundle = e.current_bundle_id, "
            "deployed_metadata = CAST(e.endpoint_metadata AS jsonb) "
            f"FROM {qident(schema)}.endpoints e WHERE c.id = :id AND e.id = :e"
        ),
        {"id": change_id, "e": endpoint_id},
    )


def change(conn: Connection, change_id: int) -> dict[str, Any]:
    row = (
        conn.execute(sa.text(f"SELECT * FROM {SCHEMA}.changes WHERE id = :id"), {"id": change_id})
        .mappings()
        .one()
    )
    return dict(row)


def touched_since(conn: Connection, schema: str, endpoint_id: str, since: datetime) -> bool:
    """Whether the endpoint's row was updated after `since`: model engine took a PUT.

    Model engine's ORM stamps last_updated_at on every update of the row, and a
    PUT sets UPDATE_PENDING; so a row touched after the PUT was announced tells
    a resumed run that the PUT whose answer it never saw did land.
    """
    value = conn.execute(
        sa.text(
            f"SELECT to_jsonb(e) ->> 'last_updated_at' FROM {qident(schema)}.endpoints e "
            "WHERE e.id = :e"
        ),
        {"e": endpoint_id},
    ).scalar()
    if value is None:
        return False
    touched = conn.execute(sa.text("SELECT CAST(:v AS timestamptz) > :s"), {"v": value, "s": since})
    return bool(touched.scalar_one())


# Aborted plans --------------------------------------------------------------------


def open_abort(conn: Connection, plan_digest: str) -> dict[str, Any] | None:
    if conn.execute(sa.text(f"SELECT to_regclass('{SCHEMA}.aborts')")).scalar() is None:
        return None  # a journal from before 003 (a dry run never upgrades it)
    row = (
        conn.execute(
            sa.text(f"SELECT * FROM {SCHEMA}.aborts WHERE plan_digest = :d AND cleared_at IS NULL"),
            {"d": plan_digest},
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def abort_plan(conn: Connection, plan_digest: str, run_id: str, reason: str) -> bool:
    """Mark the plan aborted (if it is not already); whether this call did it."""
    return bool(
        conn.execute(
            sa.text(
                f"INSERT INTO {SCHEMA}.aborts (plan_digest, run_id, reason) VALUES (:d, :r, :why) "
                "ON CONFLICT (plan_digest) WHERE cleared_at IS NULL DO NOTHING"
            ),
            {"d": plan_digest, "r": run_id, "why": reason},
        ).rowcount
    )


def clear_abort(conn: Connection, plan_digest: str, run_id: str) -> None:
    conn.execute(
        sa.text(
            f"UPDATE {SCHEMA}.aborts SET cleared_by = :r, cleared_at = now() "
            "WHERE plan_digest = :d AND cleared_at IS NULL"
        ),
        {"d": plan_digest, "r": run_id},
    )

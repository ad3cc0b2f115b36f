"""Refuse to apply or roll back a plan against any database but the one it was made on."""

from __future__ import annotations

from sqlalchemy.engine import Connection

from migrate.core.plan import Plan
from migrate.store import identity
from migrate.store.connection import DatabaseError


class PlanMismatch(DatabaseError):
    """The plan was made against another database or schema."""


def check_target(conn: Connection, plan: Plan, *, allow_other_address: bool = False) -> list[str]:
    """Refuse another database than the plan's; return notes the operator must see."""
    check = identity.compare(
        plan.database, identity.database_identity(conn), allow_other_address=allow_other_address
    )
    if check.refusals:
        raise PlanMismatch(
            "this plan was made against another database; refusing to apply it here ("
            + "; ".join(check.refusals)
            + ")"
        )
    return check.notes

"""Which database this is, so a plan cannot be applied to another one by mistake."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection


def database_identity(conn: Connection) -> dict[str, Any]:
    """Database name, server address and port, and the cluster's system identifier.

    pg_control_system() is restricted to privileged roles; checking the
    privilege first avoids an error that would abort the caller's transaction.
    The identifier is kept as text: it is a 64-bit number, beyond what some
    JSON readers hold exactly.
    """
    row = (
        conn.execute(
            sa.text(
                "SELECT current_database() AS database, "
                "host(inet_server_addr()) AS host, inet_server_port() AS port, "
                "has_function_privilege('pg_control_system()', 'EXECUTE') AS can_read"
            )
        )
        .mappings()
        .one()
    )
    system_identifier = None
    if row["can_read"]:
        value = conn.execute(sa.text("SELECT system_identifier FROM pg_control_system()")).scalar()
        system_identifier = None if value is None else str(value)
    return {
        "database": row["database"],
        "host": row["host"],
        "port": row["port"],
        "system_identifier": system_identifier,
    }

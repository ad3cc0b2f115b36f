"""Which database this is, so a plan cannot be applied to another one by mistake."""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class IdentityCheck:
    """refusals: why this is not the plan's database (empty: it is). notes: for the operator."""

    refusals: list[str]
    notes: list[str]


def address(identity: dict[str, Any]) -> str:
    host, port = identity.get("host"), identity.get("port")
    if host is None and port is None:
        return "a local socket (no server address)"
    return f"{host}:{port}"


def compare(
    planned: dict[str, Any], current: dict[str, Any], *, allow_other_address: bool = False
) -> IdentityCheck:
    """Whether `current` is the database the plan was made against.

    The database name must match, and the cluster system identifier when both
    sides could read it. The identifier alone is not enough: a physical clone
    (a restored backup, a promoted replica left running) shares it. So the
    server address and port must match too wherever both sides know them;
    after a failover the operator says so with allow_other_address. Without the
    identifier the address is the only evidence left, so it cannot be waived.
    """
    refusals: list[str] = []
    notes: list[str] = []
    if planned.get("database") != current.get("database"):
        refusals.append(
            f"database name: plan {planned.get('database')!r}, here {current.get('database')!r}"
        )
    ids = planned.get("system_identifier"), current.get("system_identifier")
    same_cluster = all(ids) and ids[0] == ids[1]
    if all(ids) and not same_cluster:
        refusals.append(f"cluster system identifier: plan {ids[0]!r}, here {ids[1]!r}")
    seen, here = address(planned), address(current)
    if seen == here:
        return IdentityCheck(refusals, notes)
    notes.append(f"server address: the plan saw {seen}, this connection reaches {here}")
    if not same_cluster:
        reason = f"server address: plan {seen}, here {here}"
        if allow_other_address:
            reason += (
                " (--allow-other-address needs the cluster system identifier on both sides, "
                "and this role cannot read it: pg_control_system() is not granted)"
            )
        refusals.append(reason)
        return IdentityCheck(refusals, notes)
    known_apart = [
        key
        for key in ("host", "port")
        if planned.get(key) is not None
        and current.get(key) is not None
        and planned.get(key) != current.get(key)
    ]
    if known_apart and not allow_other_address:
        refusals.append(
            f"server address: plan {seen}, here {here}; the same cluster identifier at "
            "another address is a failover or a physical clone: after a failover, "
            "rerun with --allow-other-address"
        )
    elif known_apart:
        notes.append("another address allowed by --allow-other-address (failover)")
    return IdentityCheck(refusals, notes)

"""Which database this is, so a plan cannot be applied to another one by mistake."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from migrate.store.connection import DatabaseError


class IdentityUnavailable(DatabaseError):
    """This role may not read the cluster's system identifier; the message names the grant."""


def _client_socket(conn: Connection) -> tuple[str | None, int | None]:
    """The Unix socket directory and port this connection went through, as libpq names them.

    The server cannot say which of its socket directories a client used, so the
    client's side does: two sandboxes on one machine differ only here.
    """
    info = getattr(conn.connection.dbapi_connection, "info", None)
    host = getattr(info, "host", None)
    port = getattr(info, "port", None)
    if not host or not (host.startswith("/") or host.startswith("@")):
        return None, None
    return host, int(port) if port else None


def database_identity(conn: Connection) -> dict[str, Any]:
    """Database name, server address and port, and the cluster's system identifier.

    The address is the server's IP and port over TCP, and the socket directory
    (with the port that names the socket file in it) over a Unix socket.

    The identifier is what tells one cluster from another, so a plan must
    carry it: a role that may not execute pg_control_system() (some managed
    services revoke it) gets IdentityUnavailable naming the GRANT, rather than
    a plan that any cluster would match. The privilege is checked first, so
    the caller's transaction is not aborted by an error. The identifier is kept
    as text: it is a 64-bit number, beyond what some JSON readers hold exactly.
    """
    row = (
        conn.execute(
            sa.text(
                "SELECT current_database() AS database, "
                "host(inet_server_addr()) AS host, inet_server_port() AS port, "
                "quote_ident(current_user) AS role, "
                "has_function_privilege('pg_catalog.pg_control_system()', 'EXECUTE') AS can_read"
            )
        )
        .mappings()
        .one()
    )
    if not row["can_read"]:
        raise IdentityUnavailable(
            f"role {row['role']} may not execute pg_control_system(), so this cluster's "
            "system identifier cannot be read and a plan cannot be tied to this cluster; "
            "have a superuser run: GRANT EXECUTE ON FUNCTION pg_catalog.pg_control_system() "
            f"TO {row['role']};"
        )
    value = conn.execute(sa.text("SELECT system_identifier FROM pg_control_system()")).scalar()
    host, port = row["host"], row["port"]
    if host is None:  # a Unix socket: no IP on either side
        host, port = _client_socket(conn)
    return {
        "database": row["database"],
        "host": host,
        "port": port,
        "system_identifier": None if value is None else str(value),
    }


@dataclass(frozen=True)
class IdentityCheck:
    """refusals: why this is not the plan's database (empty: it is). notes: for the operator."""

    refusals: list[str]
    notes: list[str]


def address(identity: dict[str, Any]) -> str:
    host, port = identity.get("host"), identity.get("port")
    if host is None and port is None:
        return "a local socket (no server address)"  # plans made before sockets were named
    if isinstance(host, str) and host.startswith(("/", "@")):
        return f"Unix socket {host}/.s.PGSQL.{port}"
    return f"{host}:{port}"


def compare(
    planned: dict[str, Any], current: dict[str, Any], *, allow_other_address: bool = False
) -> IdentityCheck:
    """Whether `current` is the database the plan was made against.

    The database name and the cluster system identifier must match, and the
    plan must have recorded the identifier: without it, nothing tells a
    cluster from another with a database of the same name. The identifier
    alone is not enough either: a physical clone (a restored backup, a
    promoted replica left running) shares it. So the address (IP and port, or
    socket path) must match too; after a failover the operator says so with
    allow_other_address, and both addresses are printed.
    """
    refusals: list[str] = []
    notes: list[str] = []
    if planned.get("database") != current.get("database"):
        refusals.append(
            f"database name: plan {planned.get('database')!r}, here {current.get('database')!r}"
        )
    seen_id, here_id = planned.get("system_identifier"), current.get("system_identifier")
    if not seen_id:
        refusals.append(
            "the plan records no cluster system identifier (the role that made it could not "
            "execute pg_control_system()), so nothing shows which cluster it belongs to; make "
            "a new plan with a role granted EXECUTE on pg_catalog.pg_control_system()"
        )
    elif not here_id:
        refusals.append("this connection cannot read the cluster system identifier")
    elif seen_id != here_id:
        refusals.append(f"cluster system identifier: plan {seen_id!r}, here {here_id!r}")
    seen, here = address(planned), address(current)
    if seen == here:
        return IdentityCheck(refusals, notes)
    notes.append(f"server address: the plan saw {seen}, this connection reaches {here}")
    if refusals:
        refusals.append(f"server address: plan {seen}, here {here}")
    elif not allow_other_address:
        refusals.append(
            f"server address: plan {seen}, here {here}; the same cluster identifier at "
            "another address is a failover or a physical clone: after a failover, "
            "rerun with --allow-other-address"
        )
    else:
        notes.append("another address allowed by --allow-other-address (failover)")
    return IdentityCheck(refusals, notes)

"""Which database a plan belongs to: names, identifiers and addresses compared."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from migrate.store.identity import IdentityUnavailable, compare, database_identity
from tests.support.plans import IDENTITY
from tests.support.roles import role_without_the_grant  # noqa: F401  (fixture)

SOCKET = {**IDENTITY, "host": "/run/pg-a", "port": 5432}


def test_identity_names_what_differs() -> None:
    same = compare(IDENTITY, dict(IDENTITY))
    assert same.refusals == [] and same.notes == []
    other = compare(IDENTITY, {**IDENTITY, "system_identifier": "999"})
    assert "system identifier" in other.refusals[0]
    assert "database name" in compare(IDENTITY, {**IDENTITY, "database": "x"}).refusals[0]


def test_a_plan_without_the_cluster_identifier_applies_nowhere() -> None:
    blind = {**IDENTITY, "system_identifier": None}
    for here in (dict(IDENTITY), dict(blind), {**IDENTITY, "host": "10.9.9.9"}):
        for allow in (False, True):
            check = compare(blind, here, allow_other_address=allow)
            assert check.refusals, (here, allow)
            assert "records no cluster system identifier" in check.refusals[0]
            assert "pg_control_system()" in check.refusals[0]
    unreadable = compare(IDENTITY, {**IDENTITY, "system_identifier": None})
    assert "cannot read the cluster system identifier" in unreadable.refusals[0]


def test_a_physical_clone_is_refused_unless_the_operator_says_failover() -> None:
    # A clone (restored backup, promoted replica) has the same name and cluster identifier.
    clone = {**IDENTITY, "host": "10.9.9.9"}
    check = compare(IDENTITY, clone)
    assert len(check.refusals) == 1 and "--allow-other-address" in check.refusals[0]
    assert "plan 10.0.0.5:5432, here 10.9.9.9:5432" in check.refusals[0]
    assert check.notes == [
        "server address: the plan saw 10.0.0.5:5432, this connection reaches 10.9.9.9:5432"
    ]
    assert compare(IDENTITY, {**IDENTITY, "port": 6432}).refusals  # port alone differs
    failover = compare(IDENTITY, clone, allow_other_address=True)
    assert failover.refusals == []
    assert "the plan saw 10.0.0.5:5432" in failover.notes[0]
    assert "--allow-other-address" in failover.notes[1]


def test_socket_paths_are_part_of_the_address() -> None:
    assert compare(SOCKET, dict(SOCKET)).refusals == []
    other = {**SOCKET, "host": "/run/pg-b"}
    check = compare(SOCKET, other)
    assert check.refusals == [
        "server address: plan Unix socket /run/pg-a/.s.PGSQL.5432, here Unix socket "
        "/run/pg-b/.s.PGSQL.5432; the same cluster identifier at another address is a "
        "failover or a physical clone: after a failover, rerun with --allow-other-address"
    ]
    assert compare(SOCKET, {**SOCKET, "port": 5433}).refusals
    assert compare(SOCKET, other, allow_other_address=True).refusals == []
    # A plan from before sockets were named, applied over a socket: not the same address.
    old = {**IDENTITY, "host": None, "port": None}
    assert "a local socket (no server address)" in compare(old, SOCKET).refusals[0]
    # Another cluster behind another socket is refused whatever the operator says.
    elsewhere = {**other, "system_identifier": "8888"}
    refused = compare(SOCKET, elsewhere, allow_other_address=True).refusals
    assert "cluster system identifier" in refused[0] and "Unix socket" in refused[1]


@pytest.mark.parametrize("schema_version", ["2026"])
def test_the_identity_read_over_a_socket_names_the_socket(me_db: Any) -> None:
    with me_db.engine.connect() as conn:
        identity = database_identity(conn)
        expected = conn.execute(sa.text("SELECT system_identifier FROM pg_control_system()"))
        assert identity["system_identifier"] == str(expected.scalar())
        over_tcp = conn.execute(sa.text("SELECT inet_server_addr() IS NOT NULL")).scalar()
    assert identity["database"] == make_url(me_db.url).database
    if over_tcp:
        assert identity["host"] and identity["port"]
    else:
        socket_dir = make_url(me_db.url).query.get("host")
        assert identity["host"] == socket_dir and identity["port"]


@pytest.mark.parametrize("schema_version", ["2026"])
def test_a_role_that_cannot_read_the_identifier_is_told_the_grant(
    role_without_the_grant: str,  # noqa: F811
) -> None:
    engine = sa.create_engine(role_without_the_grant)
    try:
        with engine.connect() as conn, pytest.raises(IdentityUnavailable) as err:
            database_identity(conn)
    finally:
        engine.dispose()
    role = make_url(role_without_the_grant).username
    assert str(err.value).endswith(
        f"GRANT EXECUTE ON FUNCTION pg_catalog.pg_control_system() TO {role};"
    )

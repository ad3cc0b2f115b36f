"""Database roles with less than a superuser's rights, for the refusals they must meet."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url


@contextmanager
def reader_without_the_identifier(engine: Engine, schema: str, password: str) -> Iterator[str]:
    """A login role that may read model engine's tables but not pg_control_system().

    EXECUTE is revoked from PUBLIC in this database only (each database has its
    own catalog), as some managed services do; put back, and the role dropped,
    on the way out. Yields the role's name.
    """
    role = f"bm_reader_{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'"))
        conn.execute(sa.text("REVOKE EXECUTE ON FUNCTION pg_control_system() FROM PUBLIC"))
        conn.execute(sa.text(f'GRANT USAGE ON SCHEMA "{schema}" TO {role}'))
        conn.execute(sa.text(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO {role}'))
    try:
        yield role
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("GRANT EXECUTE ON FUNCTION pg_control_system() TO PUBLIC"))
            conn.execute(sa.text(f"DROP OWNED BY {role}"))
            conn.execute(sa.text(f"DROP ROLE {role}"))


@pytest.fixture
def role_without_the_grant(me_db: Any) -> Iterator[str]:
    """The URL of a reader role that may not execute pg_control_system() (password reader-pw)."""
    with reader_without_the_identifier(me_db.engine, me_db.schema, "reader-pw") as role:
        url = make_url(me_db.url).set(username=role, password="reader-pw")
        yield url.render_as_string(hide_password=False)

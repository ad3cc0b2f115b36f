"""Database roles with less than a superuser's rights, for the refusals they must meet."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url


@pytest.fixture
def role_without_the_grant(me_db: Any) -> Iterator[str]:
    """A reader role in a database where pg_control_system() is not granted to PUBLIC."""
    role = f"bm_reader_{uuid.uuid4().hex[:8]}"
    with me_db.engine.begin() as conn:
        conn.execute(sa.text(f"CREATE ROLE {role} LOGIN PASSWORD 'reader-pw'"))
        conn.execute(sa.text("REVOKE EXECUTE ON FUNCTION pg_control_system() FROM PUBLIC"))
        conn.execute(sa.text(f'GRANT USAGE ON SCHEMA "{me_db.schema}" TO {role}'))
        conn.execute(sa.text(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{me_db.schema}" TO {role}'))
    url = make_url(me_db.url).set(username=role, password="reader-pw")
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with me_db.engine.begin() as conn:
            conn.execute(sa.text(f"DROP OWNED BY {role}"))
            conn.execute(sa.text(f"DROP ROLE {role}"))

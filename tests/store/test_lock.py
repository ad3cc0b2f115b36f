"""The run lock notices, before every write, that it is no longer this run's."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from migrate.store.connection import DatabaseError
from migrate.store.lock import MigrationLock, lock_keys


def test_check_notices_the_advisory_lock_was_released(db_engine: Any) -> None:
    with MigrationLock(db_engine, "some_schema") as lock:
        lock.check()
        conn = lock._conn  # the lock's own session; white-box on purpose
        assert conn is not None
        k1, k2 = lock_keys("some_schema")
        # Same session, same backend pid: only the lock itself is gone (an unlock by
        # mistake, a function that releases all advisory locks).
        released = conn.execute(sa.text("SELECT pg_advisory_unlock(:a, :b)"), {"a": k1, "b": k2})
        assert released.scalar_one() is True
        with pytest.raises(DatabaseError, match="the migration lock is no longer held"):
            lock.check()
        # Another run could take it now, which is exactly why this one must stop.
        with MigrationLock(db_engine, "some_schema") as other:
            other.check()


def test_check_without_the_lock(db_engine: Any) -> None:
    lock = MigrationLock(db_engine, "some_schema")
    with pytest.raises(DatabaseError, match="not held"):
        lock.check()

"""One writer at a time: a PostgreSQL session-level advisory lock.

Held on a dedicated autocommit connection for the whole run. The server drops
it when that session ends, so a killed process can never leave it stuck (the
classic Liquibase lock-row complaint); autocommit keeps the connection from
sitting idle in a transaction, holding back vacuum, for hours.
"""

from __future__ import annotations

import zlib
from types import TracebackType

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from migrate.db import DatabaseError

# The two-int form shows up in pg_locks as classid/objid, which lets us find the
# holder. The first half names the tool, the second the model engine schema, so
# two schemas in one database do not block each other.
LOCK_CLASS = 0x626D6967  # "bmig"


class LockBusy(DatabaseError):
    """Another apply or rollback holds the lock."""


def lock_keys(schema: str) -> tuple[int, int]:
    return LOCK_CLASS, zlib.crc32(schema.encode("utf-8")) & 0x7FFFFFFF


def holder(conn: Connection, schema: str) -> str | None:
    """Who holds the lock, in words, as far as this role may see (None: nobody)."""
    k1, k2 = lock_keys(schema)
    row = (
        conn.execute(
            sa.text(
                "SELECT l.pid, a.application_name, a.client_addr::text AS client, "
                "a.backend_start, a.usename "
                "FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :k1 "
                "AND l.objid = :k2 AND l.objsubid = 2 "
                "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ),
            {"k1": k1, "k2": k2},
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    parts = [f"PostgreSQL backend pid {row['pid']}"]
    if row["usename"]:
        parts.append(f"user {row['usename']}")
    if row["application_name"]:
        parts.append(f"application {row['application_name']}")
    if row["client"]:
        parts.append(f"client {row['client']}")
    if row["backend_start"]:
        parts.append(f"connected since {row['backend_start']:%Y-%m-%d %H:%M:%S %Z}")
    return ", ".join(parts)


class MigrationLock:
    def __init__(self, engine: Engine, schema: str) -> None:
        self._engine = engine
        self._schema = schema
        self._conn: Connection | None = None

    def acquire(self) -> MigrationLock:
        conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        k1, k2 = lock_keys(self._schema)
        try:
            got = conn.execute(
                sa.text("SELECT pg_try_advisory_lock(:k1, :k2)"), {"k1": k1, "k2": k2}
            ).scalar_one()
            if not got:
                who = holder(conn, self._schema) or "a session this role cannot see"
                raise LockBusy(
                    f"another bundle-migrate apply or rollback is running on schema "
                    f"{self._schema!r} ({who}); wait for it to finish. The lock is released "
                    "as soon as that session ends, so it cannot stay stuck."
                )
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return self

    def check(self) -> None:
        """Fail before writing if the lock session died: the run is no longer alone."""
        if self._conn is None:
            raise DatabaseError("the migration lock is not held")
        k1, k2 = lock_keys(self._schema)
        try:
            held = self._conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND "
                    "locktype = 'advisory' AND granted AND classid = :k1 AND objid = :k2 "
                    "AND objsubid = 2"
                ),
                {"k1": k1, "k2": k2},
            ).scalar_one()
        except sa.exc.DBAPIError as exc:
            raise DatabaseError(
                "lost the migration lock's connection; stopping so that no other run can "
                f"interleave with this one ({' '.join(str(exc.orig).split())})"
            ) from None
        if not held:
            raise DatabaseError("the migration lock is no longer held; stopping")

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        k1, k2 = lock_keys(self._schema)
        try:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:k1, :k2)"), {"k1": k1, "k2": k2})
        except sa.exc.SQLAlchemyError:
            pass  # the session is gone, and the server released the lock with it
        finally:
            conn.close()

    def __enter__(self) -> MigrationLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

"""One writer at a time: a PostgreSQL session-level advisory lock.

Held on a dedicated autocommit connection for the whole run. The server drops
it when that session ends, so a killed process can never leave it stuck (the
classic Liquibase lock-row complaint); autocommit keeps the connection from
sitting idle in a transaction, holding back vacuum, for hours.

A session ends only when the server notices: if the host running the tool
dies outright, no FIN ever arrives. TCP keepalives on the lock connection, set
on both ends, make the server give up on it after about a minute (30 s idle,
then 3 probes 10 s apart), and the lock goes with it.

A session lock needs a session: through a transaction pooler (pgbouncer with
pool_mode=transaction) the next statement may reach another server session,
and the lock stays behind in a pooled one. The backend pid is recorded when
the lock is taken and checked before every write.
"""

from __future__ import annotations

import threading
import zlib
from types import TracebackType

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

from migrate.store.connection import DatabaseError

# The two-int form shows up in pg_locks as classid/objid, which lets us find the
# holder. The first half names the tool, the second the model engine schema, so
# two schemas in one database do not block each other.
LOCK_CLASS = 0x626D6967  # "bmig"


POOLER_HINT = (
    "connect directly to PostgreSQL, not through a transaction pooler "
    "(pgbouncer pool_mode=transaction): the run lock belongs to one server session"
)
# libpq's side: the client notices a dead server instead of hanging in check().
CLIENT_KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}
# The server's side, the one that frees the lock when the client's host is gone.
# (PostgreSQL ignores these on a Unix socket, where a dead peer is seen at once.)
SERVER_KEEPALIVES = {
    "tcp_keepalives_idle": "30",
    "tcp_keepalives_interval": "10",
    "tcp_keepalives_count": "3",
}


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
        self._lock_engine: Engine | None = None
        self._conn: Connection | None = None
        self._pid: int | None = None
        # Endpoint workers of one run check the lock from several threads; the
        # lock's connection serves one statement at a time.
        self._checking = threading.Lock()

    @property
    def backend_pid(self) -> int | None:
        """The PostgreSQL backend that took the lock (None: not held)."""
        return self._pid

    def _connect(self) -> Connection:
        # Its own unpooled engine: keepalives are connection options, and closing
        # it must really end the session rather than park it, lock and all, in a pool.
        args = {**CLIENT_KEEPALIVES, "connect_timeout": 10, "application_name": "bundle-migrate"}
        self._lock_engine = sa.create_engine(
            self._engine.url, poolclass=NullPool, connect_args=args
        )
        conn = self._lock_engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        for name, value in SERVER_KEEPALIVES.items():
            conn.execute(sa.text("SELECT set_config(:n, :v, false)"), {"n": name, "v": value})
        return conn

    def acquire(self) -> MigrationLock:
        k1, k2 = lock_keys(self._schema)
        try:
            conn = self._conn = self._connect()
            row = conn.execute(
                sa.text("SELECT pg_try_advisory_lock(:k1, :k2) AS got, pg_backend_pid() AS pid"),
                {"k1": k1, "k2": k2},
            ).one()
            if not row.got:
                who = holder(conn, self._schema) or "a session this role cannot see"
                raise LockBusy(
                    f"another bundle-migrate apply or rollback is running on schema "
                    f"{self._schema!r} ({who}); wait for it to finish. The lock is released "
                    "as soon as that session ends, so it cannot stay stuck. If no run is "
                    "going on, a connection pooler may be keeping that session open: "
                    + POOLER_HINT
                    + "."
                )
            self._pid = row.pid
            # A pooler that hands the very next statement to another session shows at once.
            self.check()
        except BaseException:
            self._close()
            raise
        return self

    def check(self) -> None:
        """Fail before writing unless this session still holds the lock: the run is alone."""
        with self._checking:
            self._check()

    def _check(self) -> None:
        if self._conn is None or self._pid is None:
            raise DatabaseError("the migration lock is not held")
        k1, k2 = lock_keys(self._schema)
        try:
            row = self._conn.execute(
                sa.text(
                    "SELECT pg_backend_pid() AS pid, EXISTS (SELECT 1 FROM pg_locks WHERE "
                    "pid = pg_backend_pid() AND locktype = 'advisory' AND granted "
                    "AND classid = :k1 AND objid = :k2 AND objsubid = 2) AS held"
                ),
                {"k1": k1, "k2": k2},
            ).one()
        except sa.exc.DBAPIError as exc:
            raise DatabaseError(
                "lost the migration lock's connection; stopping so that no other run can "
                f"interleave with this one ({' '.join(str(exc.orig).split())})"
            ) from None
        if row.pid != self._pid:
            raise DatabaseError(
                f"the lock's connection now reaches PostgreSQL backend pid {row.pid}, not "
                f"{self._pid} that took the lock; stopping: {POOLER_HINT}"
            )
        if not row.held:
            raise DatabaseError("the migration lock is no longer held; stopping")

    def release(self) -> None:
        conn = self._conn
        if conn is not None and self._pid is not None:
            k1, k2 = lock_keys(self._schema)
            try:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k1, :k2)"), {"k1": k1, "k2": k2})
            except sa.exc.SQLAlchemyError:
                pass  # the session is gone, and the server released the lock with it
        self._close()

    def _close(self) -> None:
        conn, self._conn, self._pid = self._conn, None, None
        engine, self._lock_engine = self._lock_engine, None
        try:
            if conn is not None:
                conn.close()
        finally:
            if engine is not None:
                engine.dispose()

    def __enter__(self) -> MigrationLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

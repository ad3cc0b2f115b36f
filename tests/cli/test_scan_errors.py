"""Bad input to `scan`: one clear line on stderr, exit 1, no traceback, no password."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.engine import make_url

from migrate.cli import main
from migrate.sandbox.embedded import to_libpq_url
from tests.support.cli import assert_one_line_error, invoke

SECRET = "s3cr3t-Pa55word"


def run(*args: str, env: dict[str, str] | None = None):
    return invoke("scan", *args, env=env)


def assert_clean_failure(result, *fragments: str) -> None:
    assert_one_line_error(result, *fragments, secrets=(SECRET,))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_no_url_at_all() -> None:
    assert_clean_failure(run(), "BUNDLE_MIGRATE_DATABASE_URL")


def test_not_a_postgres_url() -> None:
    assert_clean_failure(run("--database-url", f"mysql://u:{SECRET}@h/db"), "not PostgreSQL")


def test_garbage_url() -> None:
    assert_clean_failure(run("--database-url", "not a url"), "not a valid URL")


def test_unreachable_server_from_env() -> None:
    url = f"postgresql://admin:{SECRET}@127.0.0.1:{free_port()}/llm"
    result = run(env={"BUNDLE_MIGRATE_DATABASE_URL": url})
    assert_clean_failure(result, "unreachable", "127.0.0.1")


def test_missing_tables(db_url: str) -> None:
    assert_clean_failure(run("--database-url", db_url), "no table", "--schema")


def test_bad_schema_name(db_url: str) -> None:
    assert_clean_failure(run("--database-url", db_url, "--schema", 'x"; drop'), "identifier")


def test_missing_database(pg_server_url: str) -> None:
    url = make_url(pg_server_url).set(database=f"nope_{uuid.uuid4().hex[:8]}")
    result = run("--database-url", url.render_as_string(hide_password=False))
    assert_clean_failure(result, "does not exist")


def test_wrong_password_is_reported_and_never_echoed(pg_server_url: str, db_url: str) -> None:
    """Needs password authentication for one role; set it up on the test server.

    Password checks need a pg_hba.conf rule; the test adds one at the top of the
    server's own file (readable when the server runs on this machine, as the
    embedded one does) and reloads; a remote server must already require passwords.
    """
    role = f"bm_pw_{uuid.uuid4().hex[:8]}"
    admin = to_libpq_url(pg_server_url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'right-password'")
        hba = Path(conn.execute("SHOW hba_file").fetchone()[0])
        original = hba.read_text() if hba.exists() else None
        if original is not None:
            rule = f"local all {role} scram-sha-256\nhost all {role} all scram-sha-256\n"
            hba.write_text(rule + original)
            conn.execute("SELECT pg_reload_conf()")
    try:
        bad = make_url(db_url).set(username=role, password=SECRET)
        result = run("--database-url", bad.render_as_string(hide_password=False))
        assert_clean_failure(result, "authentication failed")
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            if original is not None:
                hba.write_text(original)
                conn.execute("SELECT pg_reload_conf()")
            conn.execute(f"DROP ROLE {role}")


def test_bad_threshold(db_url: str) -> None:
    result = CliRunner().invoke(main, ["scan", "--database-url", db_url, "--threshold", "2"])
    assert result.exit_code == 1  # usage errors exit 1: 2 means changes pending
    assert "--threshold" in result.output


def test_overrides_file_missing(db_url: str, tmp_path: Path) -> None:
    result = run("--database-url", db_url, "--overrides", str(tmp_path / "none.toml"))
    assert_clean_failure(result, "none.toml")


def test_statement_timeout_applies(db_url: str) -> None:
    """The scan's transaction is read-only: a write inside it is refused by the server."""
    from migrate.store.connection import read_only

    engine = sa.create_engine(db_url)
    try:
        with read_only(engine, 1) as conn:
            assert conn.execute(sa.text("SHOW transaction_read_only")).scalar() == "on"
            assert conn.execute(sa.text("SHOW statement_timeout")).scalar() == "1s"
            with pytest.raises(sa.exc.OperationalError):
                conn.execute(sa.text("SELECT pg_sleep(3)"))
    finally:
        engine.dispose()


def test_output_to_a_device_writes_through_it(me_db, tmp_path: Path) -> None:
    """-o /dev/null must not replace the device with a file (we run as root in CI)."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()))
    reader.start()
    result = run("--database-url", me_db.url, "--format", "json", "--output", str(fifo))
    reader.join(timeout=30)
    assert fifo.is_fifo(), "the FIFO was replaced by a regular file"
    assert result.exit_code == 0, result.output  # an empty fleet: nothing to change
    assert '"summary"' in received[0]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".pipe.")]


def test_output_file_is_replaced_only_when_complete(db_url: str, tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("previous report")
    result = run("--database-url", db_url, "--format", "json", "--output", str(target))
    assert result.exit_code == 1
    assert target.read_text() == "previous report"


def test_password_in_the_query_string_is_masked_too(me_db) -> None:
    """libpq accepts ?password=...; reports echo the database URL, never the secret."""
    url = make_url(me_db.url).update_query_dict({"password": SECRET})
    result = run("--database-url", url.render_as_string(hide_password=False), "--format", "json")
    assert result.exit_code == 0, result.output
    assert SECRET not in result.stdout and SECRET not in result.stderr
    assert "password=%2A%2A%2A" in result.stdout or "password=***" in result.stdout

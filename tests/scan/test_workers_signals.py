"""A pooled scan and the signals an operator or a supervisor sends, in real processes.

The scan runs as a child process with the pool thresholds lowered and, where the
workers must be busy, a classification that sleeps (tests/support/pooled_cli.py).
The view sleeps on every row; PostgreSQL sorts them all before the first one comes,
so the read itself is over once the workers start.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from migrate.sandbox import synth
from migrate.sandbox.seed import seed_fleet
from tests.support.processes import children

pytestmark = pytest.mark.parametrize("schema_version", ["2026"])

ROOT = Path(__file__).resolve().parents[2]
POOLED_CLI = ROOT / "tests" / "support" / "pooled_cli.py"


@pytest.fixture
def slow_fleet(me_db):
    specs = list(synth.random_fleet(300, 9, schema_version=me_db.version))
    seed_fleet(me_db.url, specs, schema=me_db.schema, schema_version=me_db.version)
    with me_db.engine.begin() as conn:
        conn.execute(sa.text("CREATE SCHEMA slow"))
        conn.execute(
            sa.text(
                f"CREATE VIEW slow.endpoints AS SELECT e.* FROM {me_db.schema}.endpoints e "
                "WHERE length(e.name || pg_sleep(0.02)::text) >= 0"
            )
        )
        conn.execute(sa.text(f"CREATE VIEW slow.bundles AS SELECT * FROM {me_db.schema}.bundles"))
    return me_db


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _start_scan(me_db, *extra: str, slow: float = 0) -> tuple[subprocess.Popen[str], set[int]]:
    env = {**os.environ, "BUNDLE_MIGRATE_DATABASE_URL": me_db.url, "PYTHONPATH": str(ROOT)}
    env["BM_TEST_SLOW_CLASSIFY"] = str(slow)
    argv = [sys.executable, str(POOLED_CLI), "scan", "--schema", "slow", "--jobs", "2", *extra]
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    workers: set[int] = set()
    while time.monotonic() < deadline and len(workers) < 2:
        # Spawned workers are the children running python (the resource tracker is one too).
        workers = {p for p in children(proc.pid) if "spawn_main" in _cmdline(p)}
        time.sleep(0.1)
    assert len(workers) == 2, "the pool did not start"
    return proc, workers


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""


@pytest.mark.parametrize("busy", [False, True], ids=["idle", "busy"])
def test_sigterm_to_the_main_process_alone_leaves_no_worker(slow_fleet, busy: bool) -> None:
    # Busy workers are inside a classification when the main process goes.
    proc, workers = _start_scan(slow_fleet, slow=0.5 if busy else 0)
    os.kill(proc.pid, signal.SIGTERM)  # a supervisor that signals one PID, not the group
    proc.wait(timeout=30)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.1)
    assert not [w for w in workers if _alive(w)], "workers outlived the scan"


def test_ctrl_c_is_one_line_and_no_worker_traceback(slow_fleet) -> None:
    # Workers busy for seconds more, so the signal cannot come after the scan ended.
    proc, workers = _start_scan(slow_fleet, slow=0.05)
    os.killpg(proc.pid, signal.SIGINT)  # a terminal sends it to the whole group
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    assert "bundle-migrate: interrupted" in stderr
    assert not [w for w in workers if _alive(w)]


def test_a_statement_timeout_while_rows_stream_is_one_line(slow_fleet) -> None:
    env = {**os.environ, "BUNDLE_MIGRATE_DATABASE_URL": slow_fleet.url, "PYTHONPATH": str(ROOT)}
    argv = [
        sys.executable, "-m", "migrate", "plan", "--schema", "slow", "--statement-timeout", "1",
        "--jobs", "1", "--out", "-",
    ]  # fmt: skip
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.startswith("bundle-migrate: error: database error")
    assert "statement timeout" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr

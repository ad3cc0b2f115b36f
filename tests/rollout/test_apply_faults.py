"""apply under faults: SIGKILL mid-stage, a second process, dropped connections, a lost lock."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from migrate.core import outcomes as oc
from migrate.core.plan import Plan, to_json
from migrate.rollout.status import runs_overview
from migrate.store import journal as jr
from migrate.store.connection import DatabaseError
from migrate.store.lock import CLIENT_KEEPALIVES, MigrationLock, lock_keys
from tests.support.processes import Lines
from tests.support.rollout import apply, endpoints, journal_rows, make_plan, seed_random


def _cli(me_db: Any, *args: str) -> subprocess.Popen[str]:
    # Unbuffered, so a line is in the pipe as soon as the tool prints it.
    env = {**os.environ, "BUNDLE_MIGRATE_DATABASE_URL": me_db.url, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "migrate", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen[str], lines: Lines, timeout: float = 60.0) -> tuple[str, str]:
    proc.wait(timeout)
    assert proc.stderr is not None
    return lines.rest(), proc.stderr.read()


def _wait_for(condition: Any, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _count(me_db: Any, sql: str) -> int:
    with me_db.engine.connect() as conn:
        if conn.execute(sa.text(f"SELECT to_regclass('{jr.SCHEMA}.changes')")).scalar() is None:
            return 0
        return conn.execute(sa.text(sql)).scalar_one()


def _lock_free(me_db: Any) -> bool:
    k1, k2 = lock_keys(me_db.schema)
    return not _count(
        me_db,
        f"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = {k1} "
        f"AND objid = {k2} AND objsubid = 2",
    )


def _marked_bundles(me_db: Any) -> list[dict[str, Any]]:
    with me_db.engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT id, CAST(bundle_metadata AS jsonb) -> 'bundle_migrate' AS mark "
                f'FROM "{me_db.schema}".bundles '
                "WHERE CAST(bundle_metadata AS jsonb) ? 'bundle_migrate'"
            )
        ).mappings()
        return [dict(r) for r in rows]


def assert_consistent(me_db: Any, plan: Plan, before: dict[str, dict[str, Any]]) -> None:
    """Every endpoint fully old or fully new, the journal agreeing, no stray bundle."""
    now = endpoints(me_db)
    live = {
        r["endpoint_id"]: r
        for r in journal_rows(
            me_db, "kind = 'apply' AND outcome = 'applied' AND reverted_by IS NULL"
        )
    }
    for item in plan.items:
        endpoint, old = now[item.endpoint_id], before[item.endpoint_id]
        if item.endpoint_id in live:
            change = live[item.endpoint_id]
            assert endpoint["current_bundle_id"] == change["bundle_after"]
            assert json.loads(endpoint["meta"]) == change["metadata_after"]
            assert change["bundle_before"] == old["current_bundle_id"]
        else:
            assert endpoint["current_bundle_id"] == old["current_bundle_id"]
            assert endpoint["meta"] == old["meta"]
    marked = _marked_bundles(me_db)
    # Each bundle the tool wrote belongs to exactly one journaled change: none orphaned, none twice.
    assert sorted(b["id"] for b in marked) == sorted(r["bundle_after"] for r in live.values())
    assert len({b["mark"]["from_bundle"] for b in marked}) == len(marked)


@pytest.fixture
def big_plan(me_db: Any, tmp_path: Path) -> tuple[Any, Plan, Path, dict[str, Any]]:
    seed_random(me_db, 70, seed_value=5)
    plan = make_plan(me_db, stages="1,100%")
    path = tmp_path / "plan.json"
    path.write_text(to_json(plan))
    assert plan.stages[1].endpoints >= 12
    return me_db, plan, path, endpoints(me_db)


def test_sigkill_mid_stage_then_rerun_leaves_everything_consistent(
    big_plan: tuple[Any, Plan, Path, dict[str, Any]],
) -> None:
    me_db, plan, path, before = big_plan
    assert apply(me_db, plan, stage=1).counts[oc.APPLIED] == 1
    stage_two = plan.stages[1].endpoints
    # One write a second: once three are journaled, the stage has seconds left to go,
    # so the kill lands in its middle however slow the machine.
    proc = _cli(
        me_db,
        "apply",
        str(path),
        "--execute",
        "--no-redeploy",
        "--stage",
        "2",
        "--max-per-minute",
        "60",
    )
    applied = "SELECT count(*) FROM bundle_migration.changes WHERE outcome = 'applied'"
    _wait_for(lambda: _count(me_db, applied) >= 1 + 3, what="three endpoints of stage 2 applied")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    done = _count(me_db, applied) - 1
    assert 3 <= done < stage_two, "the kill must land in the middle of stage 2"
    _wait_for(lambda: _lock_free(me_db), what="the server to release the dead session's lock")
    assert_consistent(me_db, plan, before)
    with me_db.engine.connect() as conn:
        runs = runs_overview(conn)
    assert [r["status"] for r in runs] == ["interrupted?", "finished"]  # nobody holds the lock

    rerun = _cli(me_db, "apply", str(path), "--execute", "--no-redeploy", "--stage", "2")
    out, err = rerun.communicate(timeout=60)
    assert rerun.returncode == 0, err
    assert "had died without finishing; marked interrupted" in out
    assert_consistent(me_db, plan, before)
    outcomes = {r["endpoint_id"]: r["outcome"] for r in journal_rows(me_db, "kind = 'apply'")}
    for item in plan.stage_items(2):
        assert outcomes[item.endpoint_id] in (
            oc.APPLIED,
            oc.SKIPPED_ALREADY_APPLIED,
            oc.SKIPPED_NOT_READY,
        )
    with me_db.engine.connect() as conn:
        statuses = dict(
            conn.execute(sa.text("SELECT run_id, status FROM bundle_migration.runs")).all()
        )
    assert sorted(statuses.values()) == ["finished", "finished", "interrupted"]


@pytest.mark.parametrize("schema_version", ["2024"], indirect=True)
def test_a_second_process_is_refused_and_sigterm_marks_the_run_interrupted(
    big_plan: tuple[Any, Plan, Path, dict[str, Any]], tmp_path: Path
) -> None:
    me_db, plan, path, before = big_plan
    # The first run takes the lock, then waits on its pause file: it holds the lock
    # for as long as the test needs, whatever the machine's speed.
    pause = tmp_path / "PAUSE"
    pause.touch()
    first = _cli(
        me_db,
        "apply",
        str(path),
        "--execute",
        "--no-redeploy",
        "--all-stages",
        "--pause-file",
        str(pause),
    )
    assert first.stdout is not None
    lines = Lines(first.stdout)
    lines.wait_for("paused:")
    second = _cli(me_db, "apply", str(path), "--execute", "--no-redeploy", "--all-stages")
    out, err = second.communicate(timeout=60)
    assert second.returncode == 1
    assert "another bundle-migrate apply or rollback is running" in err
    assert "backend pid" in err and "application bundle-migrate" in err
    rollback = _cli(me_db, "rollback", "--plan", str(path), "--execute", "--no-redeploy")
    assert rollback.communicate(timeout=60)[1].count("another bundle-migrate") == 1
    first.send_signal(signal.SIGTERM)
    out, err = _finish(first, lines, timeout=30)
    assert first.returncode == 130, err
    with me_db.engine.connect() as conn:
        status = conn.execute(sa.text("SELECT status FROM bundle_migration.runs")).scalar_one()
    assert status == "interrupted"
    assert _count(me_db, "SELECT count(*) FROM bundle_migration.changes") == 0
    assert_consistent(me_db, plan, before)


def _terminate(me_db: Any, pid: int) -> None:
    with me_db.engine.connect() as admin:
        assert admin.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()


def test_a_dropped_connection_fails_one_endpoint_cleanly(
    big_plan: tuple[Any, Plan, Path, dict[str, Any]],
) -> None:
    me_db, plan, _, before = big_plan
    victims: list[str] = []

    def kill_own_backend(step: str, conn: Connection) -> None:
        # Once after the bundle insert, once just before the commit: neither may survive.
        if (step, len(victims)) in (("bundle-inserted", 0), ("before-commit", 1)):
            victims.append(step)
            _terminate(me_db, conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())

    summary = apply(
        me_db, plan, stage=2, hook=kill_own_backend, max_failures=2, ignore_incomplete=True
    )
    assert summary.counts[oc.FAILED] == 2 and not summary.stopped
    assert summary.counts[oc.APPLIED] >= 5
    failed = journal_rows(me_db, "outcome = 'failed'")
    assert len(failed) == 2 and all("rolled back" in r["detail"] for r in failed)
    for row in failed:
        assert endpoints(me_db)[row["endpoint_id"]] == before[row["endpoint_id"]]
    assert_consistent(me_db, plan, before)
    assert (
        apply(me_db, plan, stage=2, ignore_incomplete=True).counts[oc.APPLIED] == 2
    )  # the retry finishes them


def test_losing_the_lock_session_stops_the_run(
    big_plan: tuple[Any, Plan, Path, dict[str, Any]],
) -> None:
    me_db, plan, _, before = big_plan
    k1, k2 = lock_keys(me_db.schema)
    calls: list[int] = []

    def kill_lock_holder(step: str, conn: Connection) -> None:
        if step == "locked":
            calls.append(1)
            if len(calls) == 2:
                pid = conn.execute(
                    sa.text(
                        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' "
                        "AND classid = :a AND objid = :b"
                    ),
                    {"a": k1, "b": k2},
                ).scalar_one()
                _terminate(me_db, pid)

    with pytest.raises(DatabaseError, match="lost the migration lock"):
        apply(me_db, plan, stage=2, hook=kill_lock_holder, ignore_incomplete=True)
    assert len(calls) == 2  # the endpoint in flight finished; no third one was started
    assert_consistent(me_db, plan, before)
    with me_db.engine.connect() as conn:
        assert (
            conn.execute(sa.text("SELECT status FROM bundle_migration.runs")).scalar_one()
            == "failed"
        )


@pytest.mark.parametrize("schema_version", ["2026"], indirect=True)
def test_the_pause_file_holds_the_run_until_removed(
    big_plan: tuple[Any, Plan, Path, dict[str, Any]], tmp_path: Path
) -> None:
    me_db, plan, path, before = big_plan
    pause = tmp_path / "PAUSE"
    pause.touch()
    proc = _cli(me_db, "apply", str(path), "--execute", "--no-redeploy", "--pause-file", str(pause))
    assert proc.stdout is not None
    lines = Lines(proc.stdout)
    assert lines.wait_for("paused:") == f"paused: {pause} exists; remove it to go on\n"
    assert _count(me_db, "SELECT count(*) FROM bundle_migration.runs") == 1
    assert _count(me_db, "SELECT count(*) FROM bundle_migration.changes") == 0
    pause.unlink()
    lines.wait_for("resumed")
    out, err = _finish(proc, lines)
    assert proc.returncode == 0, err
    assert _count(me_db, "SELECT count(*) FROM bundle_migration.changes") == 1


def test_the_lock_connection_keeps_alive_and_notices_a_pooler(db_engine: Any) -> None:
    with MigrationLock(db_engine, "some_schema") as lock:
        conn = lock._conn  # the lock's own session; white-box on purpose
        assert conn is not None
        params = conn.connection.dbapi_connection.info.get_parameters()
        assert {k: params.get(k) for k in CLIENT_KEEPALIVES} == {
            k: str(v) for k, v in CLIENT_KEEPALIVES.items()
        }
        k1, k2 = lock_keys("some_schema")
        with db_engine.connect() as other:
            holder_pid = other.execute(
                sa.text(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = :a "
                    "AND objid = :b"
                ),
                {"a": k1, "b": k2},
            ).scalar_one()
            assert lock.backend_pid == holder_pid
            # What a transaction pooler does: the next statement reaches another session.
            lock._conn = other
            with pytest.raises(DatabaseError, match="not through a transaction pooler"):
                lock.check()
            lock._conn = conn
        lock.check()

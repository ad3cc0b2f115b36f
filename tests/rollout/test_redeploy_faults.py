"""A rollout killed at every point of a redeploy converges when it is run again.

The tool runs as a real process (`python -m migrate apply ... --execute`)
against the model engine stand-in in this process; the stand-in holds one
request open so the test can SIGKILL the tool at a precise point: after the
write, before the PUT; after the PUT, before health; with the PUT served but its
answer never seen. The rerun must leave the endpoint deployed and healthy,
with exactly one PUT ever served for it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from migrate.core import outcomes as oc
from migrate.core.plan import to_json
from migrate.reconcile.check import check
from migrate.reconcile.findings import UNDEPLOYED
from migrate.sandbox.standin.behaviour import Fault
from migrate.sandbox.synth import make_spec
from tests.support.rollout import journal_rows, make_plan, seed
from tests.support.standin import fast_behaviour, requests, standin

pytestmark = pytest.mark.parametrize("schema_version", ["2026"])

HANG = 60.0


def passes() -> Fault:
    return Fault(None, method="GET")  # served as usual: lets one GET through a hang behind it


def hang(method: str = "GET", **kw: Any) -> Fault:
    return Fault(None, method=method, delay_s=HANG, **kw)


def _tool(me_db: Any, url: str, *args: str) -> subprocess.Popen[str]:
    """`bundle-migrate ARGS --execute` against the stand-in, with fast health checks."""
    env = {
        **os.environ,
        "BUNDLE_MIGRATE_DATABASE_URL": me_db.url,
        "BUNDLE_MIGRATE_API_URL": url,
        "PYTHONUNBUFFERED": "1",
    }
    args += ("--execute", "--act-as-owner", "--poll-interval", "0.05", "--settle", "0.3")
    return subprocess.Popen(
        [sys.executable, "-m", "migrate", *args, "--health-timeout", "10"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _apply(me_db: Any, url: str, plan_path: Path) -> subprocess.Popen[str]:
    return _tool(me_db, url, "apply", str(plan_path))


def _rollback(me_db: Any, url: str, plan_path: Path) -> subprocess.Popen[str]:
    return _tool(me_db, url, "rollback", "--plan", str(plan_path))


def _wait_for(condition: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _change(me_db: Any) -> dict[str, Any] | None:
    try:
        rows = journal_rows(me_db, "outcome = 'applied'")
    except Exception:  # noqa: BLE001  (the journal schema does not exist yet)
        return None
    return rows[0] if rows else None


@pytest.mark.parametrize(
    "point, faults, reached",
    [
        # The preflight GET passes; the GET just before the PUT hangs.
        (
            "after the write, before the PUT",
            lambda: [passes(), hang()],
            lambda c: c["deploy_state"] == oc.WRITTEN,
        ),
        # Both GETs before the PUT pass, the PUT is answered; the first watch GET hangs.
        (
            "after the PUT, before health",
            lambda: [passes(), passes(), hang()],
            lambda c: c["deploy_state"] == oc.REDEPLOY_REQUESTED and c["deploy_task"],
        ),
        # Model engine takes the PUT; its answer never comes back.
        (
            "with the PUT served and unanswered",
            lambda: [hang("PUT", served=True)],
            lambda c: c["deploy_state"] == oc.REDEPLOY_REQUESTED and c["deploy_task"] is None,
        ),
    ],
)
def test_sigkill_at_every_point_of_a_redeploy_then_a_rerun_converges(
    me_db: Any, schema_version: str, tmp_path: Path, point: str, faults: Any, reached: Any
) -> None:
    (spec,) = seed(
        me_db,
        [
            make_spec(
                "F",
                provenance="injected",
                schema_version=me_db.version,
                name="ep-0",
                status="READY",
            )
        ],
    )
    plan = make_plan(me_db, stages="1")
    path = tmp_path / "plan.json"
    path.write_text(to_json(plan))
    with standin(me_db, fast_behaviour(faults=faults())) as server:
        proc = _apply(me_db, server.url, path)
        try:
            _wait_for(lambda: (c := _change(me_db)) is not None and reached(c), point)
            if point.startswith("with the PUT served"):
                # Served: the endpoint is UPDATE_PENDING while the answer hangs.
                _wait_for(lambda: _status(me_db) == "UPDATE_PENDING", "the PUT to land")
            time.sleep(0.3)  # the held request is in flight
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(30)
        killed = _change(me_db)
        assert killed is not None and killed["deploy_state"] != oc.HEALTHY, point
        # Until it is rerun, the scheduled check says the change never reached its pods.
        found = check(me_db.engine, schema=me_db.schema).findings
        assert [f.kind for f in found if f.endpoint_name == "ep-0"] == [UNDEPLOYED]

        rerun = _apply(me_db, server.url, path)
        out, err = rerun.communicate(timeout=90)
        assert rerun.returncode == 0, out + err
    change = _change(me_db)
    assert change is not None and change["deploy_state"] == oc.HEALTHY
    assert change["id"] == killed["id"]  # written once: the rerun resumed the same change
    assert server.service.pods["ep-0"].bundle == change["bundle_after"]
    puts = requests(server, "PUT", "ep-0")
    assert len(puts) == 1, (point, [(r.status, r.note) for r in puts])
    assert server.service.races == []
    assert "resumed" in out


def _status(me_db: Any) -> str:
    import sqlalchemy as sa

    with me_db.engine.connect() as conn:
        return conn.execute(
            sa.text(f'SELECT endpoint_status FROM "{me_db.schema}".endpoints WHERE name = :n'),
            {"n": "ep-0"},
        ).scalar_one()


def test_a_rollback_killed_before_its_redeploy_is_finished_by_the_next_rollback(
    me_db: Any, schema_version: str, tmp_path: Path
) -> None:
    (spec,) = seed(
        me_db,
        [
            make_spec(
                "F",
                provenance="injected",
                schema_version=me_db.version,
                name="ep-0",
                status="READY",
            )
        ],
    )
    plan = make_plan(me_db, stages="1")
    path = tmp_path / "plan.json"
    path.write_text(to_json(plan))
    with standin(me_db) as server:
        first = _apply(me_db, server.url, path)
        assert first.wait(90) == 0
        # The rollback's GET before its PUT hangs: killed between its write and its PUT.
        server.service.behaviour.add_fault(hang())
        proc = _rollback(me_db, server.url, path)
        try:
            _wait_for(lambda: bool(_rollbacks(me_db)), "the rollback's write")
            time.sleep(0.3)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(30)
        assert _rollbacks(me_db)[0]["deploy_state"] == oc.WRITTEN
        again = _rollback(me_db, server.url, path)
        out, err = again.communicate(timeout=90)
        assert again.returncode == 0, out + err
        assert "never redeployed healthy: redeploying them" in out
    (undo,) = _rollbacks(me_db)
    assert undo["deploy_state"] == oc.HEALTHY
    pods = server.service.pods["ep-0"]
    assert pods.bundle == spec.bundle_id and pods.eager  # the original command runs again
    assert [r.status for r in requests(server, "PUT")] == [200, 200]  # the apply's, the rollback's


def _rollbacks(me_db: Any) -> list[dict[str, Any]]:
    try:
        return journal_rows(me_db, "kind = 'rollback' AND outcome = 'rolled-back'")
    except Exception:  # noqa: BLE001
        return []

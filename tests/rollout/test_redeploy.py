"""Rolling out for real: every change redeployed through the model engine stand-in and watched.

A real PostgreSQL and a real HTTP server (the stand-in over the same database):
the rows the tool writes are the rows the stand-in deploys, and its simulated
pods say what each endpoint really runs.
"""

from __future__ import annotations

from typing import Any

import pytest

from migrate.core import outcomes as oc
from migrate.deploy.credentials import Credentials, Secret
from migrate.deploy.watch import WatchSettings
from migrate.rollout.apply import PlanAborted
from migrate.rollout.redeploy import RECREATE, STOP, Redeploy
from migrate.rollout.rollback import RollbackOptions, run_rollback
from migrate.rollout.transaction import Settings
from migrate.sandbox.standin.behaviour import Fault
from migrate.sandbox.standin.server import StandIn
from migrate.sandbox.synth import make_spec
from migrate.store import redeploys
from migrate.store.connection import DatabaseError
from tests.support.rollout import Collect, apply, journal_rows, make_plan, seed
from tests.support.standin import client, fast_behaviour, requests, standin

pytestmark = pytest.mark.parametrize("schema_version", ["2026"])

WATCH = WatchSettings(poll_interval_s=0.05, settle_s=0.3, timeout_s=4.0)


def fleet(me_db: Any, n: int = 6) -> list[Any]:
    """n plain 8B endpoints with an injected flag, READY, owned by two teams."""
    return seed(
        me_db,
        [
            make_spec(
                "F",
                provenance="injected",
                schema_version=me_db.version,
                index=i,
                seed=i,
                name=f"ep-{i}",
                owner=f"team-{i % 2}",
                status="READY",
            )
            for i in range(n)
        ],
    )


def redeploy(server: StandIn, credentials: Credentials | None = None, **kw: Any) -> Redeploy:
    return Redeploy(client=client(server, credentials), watch=WATCH, **kw)


def pods_of(server: StandIn, name: str) -> Any:
    return server.service.pods.get(name)


def test_every_change_is_redeployed_as_its_owner_and_comes_back_healthy(
    me_db: Any, schema_version: str
) -> None:
    specs = fleet(me_db)
    plan = make_plan(me_db, stages="1,100%")
    with standin(me_db) as server:
        summary = apply(me_db, plan, redeploy=redeploy(server, parallel=3))
    assert summary.counts == {oc.APPLIED: 6} and not summary.stopped and summary.undone == 0
    assert {r.deploy_state for r in summary.results} == {oc.HEALTHY}
    applied = {r["endpoint_name"]: r for r in journal_rows(me_db, "outcome = 'applied'")}
    for spec in specs:
        row = applied[spec.name]
        assert row["deploy_state"] == oc.HEALTHY and row["deploy_task"].startswith("task_")
        # What runs is the bundle the tool wrote, without --enforce-eager.
        pods = pods_of(server, spec.name)
        assert pods.bundle == row["bundle_after"] and pods.eager is False
        puts = requests(server, "PUT", spec.name)
        assert [(p.team, p.status) for p in puts] == [(spec.owner, 200)]  # once, as its owner
    assert server.service.races == []  # never a PUT over a running build


def test_a_crash_looping_canary_is_caught_rolled_back_and_nothing_else_starts(
    me_db: Any, schema_version: str
) -> None:
    fleet(me_db)
    plan = make_plan(me_db, stages="1,100%")
    canary = plan.stage_items(1)[0]
    behaviour = fast_behaviour(crashloop_without_eager=(canary.endpoint_name,))
    with standin(me_db, behaviour) as server:
        summary = apply(me_db, plan, redeploy=redeploy(server))
        assert summary.failures == 1 and summary.stopped is not None
        assert summary.stopped.startswith("stopped in stage 1: 1 failure(s)")
        (result,) = summary.results
        assert "READY but 1 worker(s) unavailable" in result.detail  # READY was not health
        assert "rolled back to" in result.detail and "healthy again" in result.detail
        # It runs its original command again, with --enforce-eager, and does not crash.
        pods = pods_of(server, canary.endpoint_name)
        assert pods.bundle == canary.bundle_id and pods.eager and not pods.crashloop
        assert {r["stage"] for r in journal_rows(me_db)} == {1}  # stage 2 never started
        with me_db.engine.connect() as conn:
            abort = redeploys.open_abort(conn, plan.digest)
        assert abort is not None and canary.endpoint_name in abort["reason"]
        with pytest.raises(PlanAborted, match="failed its health check"):
            apply(me_db, plan, redeploy=redeploy(server))
    (change,) = journal_rows(me_db, "kind = 'apply' AND outcome = 'applied'")
    (undo,) = journal_rows(me_db, "kind = 'rollback'")
    assert change["reverted_by"] == undo["id"] and change["deploy_state"] == oc.DEPLOY_ROLLED_BACK
    assert undo["deploy_state"] == oc.HEALTHY and undo["bundle_after"] == canary.bundle_id


def test_a_failed_build_is_reported_with_model_engines_reason(
    me_db: Any, schema_version: str
) -> None:
    fleet(me_db, 2)
    plan = make_plan(me_db, stages="1,100%")
    canary = plan.stage_items(1)[0]
    reason = "ImagePullBackOff: vllm:0.9.9 not found"
    behaviour = fast_behaviour(fail_builds={canary.endpoint_name: reason})
    with standin(me_db, behaviour) as server:
        summary = apply(me_db, plan, redeploy=redeploy(server))
    (result,) = summary.results
    assert result.outcome == oc.FAILED
    assert f"UPDATE_FAILED: {reason}" in result.detail and "healthy again" in result.detail


def test_on_failure_stop_leaves_the_endpoint_for_a_person(me_db: Any, schema_version: str) -> None:
    fleet(me_db, 2)
    plan = make_plan(me_db, stages="1,100%")
    canary = plan.stage_items(1)[0]
    behaviour = fast_behaviour(crashloop_without_eager=(canary.endpoint_name,))
    with standin(me_db, behaviour) as server:
        summary = apply(me_db, plan, redeploy=redeploy(server, on_failure=STOP))
        assert pods_of(server, canary.endpoint_name).crashloop  # left as it is
    (result,) = summary.results
    assert result.outcome == oc.FAILED and "--on-failure stop" in result.detail
    (change,) = journal_rows(me_db, "outcome = 'applied'")
    assert change["deploy_state"] == oc.UNHEALTHY and change["reverted_by"] is None


def test_transient_answers_do_not_fail_the_rollout(me_db: Any, schema_version: str) -> None:
    fleet(me_db, 3)
    plan = make_plan(me_db, stages="1,100%")
    faults = [
        Fault(429, method="PUT", retry_after="0"),
        Fault(503, method="GET", times=2),
        Fault(502, method="PUT", html=True),
        Fault(504, method="GET", html=True),
    ]
    with standin(me_db, fast_behaviour(faults=faults)) as server:
        summary = apply(me_db, plan, redeploy=redeploy(server))
    assert summary.counts == {oc.APPLIED: 3} and summary.failures == 0
    seen = {r.status for r in requests(server)}
    assert {429, 503, 502, 504} <= seen
    assert server.service.races == []


def test_refused_credentials_stop_the_run_before_anything_is_written(
    me_db: Any, schema_version: str
) -> None:
    fleet(me_db, 2)
    plan = make_plan(me_db, stages="1,100%")
    behaviour = fast_behaviour(keys={"good": "team-0"})
    with standin(me_db, behaviour) as server:
        bad = redeploy(server, Credentials(key=Secret("revoked-key-123")))
        with pytest.raises(DatabaseError, match="refused the credentials") as stopped:
            apply(me_db, plan, redeploy=bad)
    assert "revoked-key-123" not in str(stopped.value)
    assert journal_rows(me_db, "outcome = 'applied'") == []  # nothing was written
    assert [r.status for r in requests(server)] == [401]


def test_not_found_fails_that_endpoint_only(me_db: Any, schema_version: str) -> None:
    specs = fleet(me_db, 4)
    plan = make_plan(me_db, stages="1,100%")
    # team-1's key belongs to another team: its endpoints answer 404, team-0's work.
    keys = {"key-0": "team-0", "key-1": "someone-else"}
    credentials = Credentials(per_owner={"team-0": Secret("key-0"), "team-1": Secret("key-1")})
    with standin(me_db, fast_behaviour(keys=keys)) as server:
        summary = apply(
            me_db,
            plan,
            redeploy=redeploy(server, credentials),
            max_failures=10,
            ignore_incomplete=True,
            stage=2,
        )
    outcomes = {r.endpoint_name: r for r in summary.results}
    for spec in specs:
        if spec.name not in outcomes:
            continue  # the canary, in stage 1
        result = outcomes[spec.name]
        if spec.owner == "team-1":
            assert result.outcome == oc.FAILED
            assert "not found, or not owned by the credentials' team" in result.detail
        else:
            assert result.outcome == oc.APPLIED and result.deploy_state == oc.HEALTHY
    written = {r["endpoint_name"] for r in journal_rows(me_db, "outcome = 'applied'")}
    assert all(s.owner == "team-0" for s in specs if s.name in written)


def test_never_more_redeploys_in_flight_than_parallel(me_db: Any, schema_version: str) -> None:
    fleet(me_db, 9)
    plan = make_plan(me_db, stages="1,100%")
    with standin(me_db, fast_behaviour(start_seconds=0.4)) as server:
        summary = apply(me_db, plan, redeploy=redeploy(server, parallel=3))
    assert summary.counts == {oc.APPLIED: 9}
    # An endpoint is in flight from its PUT to its last health check.
    spans = []
    for name in {r.endpoint for r in requests(server, "PUT")}:
        own = requests(server, endpoint=name)
        put = min(r.at for r in own if r.method == "PUT")
        spans.append((put, max(r.at for r in own)))
    peak = max(sum(1 for a, b in spans if a <= t <= b) for t, _ in spans)
    assert 2 <= peak <= 3, spans
    # The canary went alone: no other PUT before its verdict.
    canary = plan.stage_items(1)[0].endpoint_name
    canary_done = max(r.at for r in requests(server, endpoint=canary))
    assert min(r.at for r in requests(server, "PUT") if r.endpoint != canary) > canary_done


def test_rollback_redeploys_the_original_command(me_db: Any, schema_version: str) -> None:
    specs = fleet(me_db, 3)
    plan = make_plan(me_db, stages="1,100%")
    with standin(me_db) as server:
        assert apply(me_db, plan, redeploy=redeploy(server)).counts == {oc.APPLIED: 3}
        options = RollbackOptions(
            settings=Settings(schema=me_db.schema),
            plan=plan,
            execute=True,
            redeploy=redeploy(server, parallel=2),
        )
        summary = run_rollback(me_db.engine, options, Collect())
        assert summary.counts == {oc.ROLLED_BACK: 3} and summary.failures == 0
        for spec in specs:
            pods = pods_of(server, spec.name)
            assert pods.bundle == spec.bundle_id and pods.eager  # the original, running
        assert summary.aborted_plans == [plan.digest]
    assert {r["deploy_state"] for r in journal_rows(me_db, "kind = 'rollback'")} == {oc.HEALTHY}


def test_recreate_lets_model_engine_rebuild_and_rollback_still_restores(
    me_db: Any, schema_version: str
) -> None:
    (spec,) = fleet(me_db, 1)
    plan = make_plan(me_db, stages="1")
    with standin(me_db) as server:
        summary = apply(me_db, plan, redeploy=redeploy(server, mode=RECREATE))
        assert summary.counts == {oc.APPLIED: 1}
        (change,) = journal_rows(me_db, "outcome = 'applied'")
        # Model engine built its own bundle from the corrected state: no eager in it.
        assert change["deployed_bundle"] not in (None, change["bundle_after"])
        pods = pods_of(server, spec.name)
        assert pods.bundle == change["deployed_bundle"] and pods.eager is False
        assert change["deployed_metadata"]["_llm"]["vllm_additional_args"]
        options = RollbackOptions(
            settings=Settings(schema=me_db.schema),
            plan=plan,
            execute=True,
            redeploy=redeploy(server),
        )
        assert run_rollback(me_db.engine, options, Collect()).counts == {oc.ROLLED_BACK: 1}
        assert pods_of(server, spec.name).bundle == spec.bundle_id


def test_an_endpoint_scaled_to_zero_is_judged_on_status_and_says_so(
    me_db: Any, schema_version: str
) -> None:
    fleet(me_db, 1)
    plan = make_plan(me_db, stages="1")
    with standin(me_db, fast_behaviour(scaled_to_zero=("ep-0",))) as server:
        (result,) = apply(me_db, plan, redeploy=redeploy(server)).results
    assert result.deploy_state == oc.HEALTHY and "scaled to zero" in result.detail


def test_a_multinode_endpoint_is_judged_on_status_and_says_so(
    me_db: Any, schema_version: str
) -> None:
    seed(
        me_db,
        [
            make_spec(
                "F",
                provenance="injected",
                schema_version=me_db.version,
                name="ep-0",
                status="READY",
                nodes_per_worker=2,
            )
        ],
    )
    plan = make_plan(me_db, stages="1")
    assert "multinode" in plan.items[0].flags
    with standin(me_db, fast_behaviour(multinode=("ep-0",))) as server:
        (result,) = apply(me_db, plan, redeploy=redeploy(server)).results
    assert result.deploy_state == oc.HEALTHY and "placeholders" in result.detail

"""Model engine as it really answers: stale reads, late worker counts, a broker's 503, an API
that stops answering, a recreation whose answer a killed run never saw.

Each case once promoted a crash loop, stranded an endpoint or rolled back a healthy
one; each test fails on the code before the fix.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from migrate.core import outcomes as oc
from migrate.core.landing import RowMark
from migrate.deploy.watch import WatchSettings
from migrate.rollout.redeploy import RECREATE
from migrate.sandbox.standin.behaviour import Fault
from migrate.store import redeploys
from migrate.store.connection import DatabaseError
from tests.support.rollout import apply, journal_rows, make_plan
from tests.support.standin import (
    client,
    fast_behaviour,
    fleet,
    pods_of,
    redeploy,
    requests,
    standin,
)

pytestmark = pytest.mark.parametrize("schema_version", ["2026"])

# A settle window shorter than model engine's lags: the lag alone must not pass for health.
SHORT = WatchSettings(poll_interval_s=0.05, settle_s=0.3, timeout_s=6.0)


def test_a_ready_with_no_worker_counts_yet_is_not_health(me_db: Any, schema_version: str) -> None:
    fleet(me_db, 2)
    plan = make_plan(me_db, stages="1,100%")
    canary = plan.stage_items(1)[0]
    # The builder's cache entry carries no counts for 1.5 s; the pods crash-loop.
    behaviour = fast_behaviour(
        crashloop_without_eager=(canary.endpoint_name,), counts_after_ready_s=1.5
    )
    with standin(me_db, behaviour) as server:
        summary = apply(me_db, plan, redeploy=redeploy(server, watch=SHORT))
    (result,) = summary.results
    assert result.outcome == oc.FAILED and "1 worker(s) unavailable" in result.detail
    assert "healthy again" in result.detail and summary.stopped is not None


def test_a_stale_ready_from_the_api_is_not_health(me_db: Any, schema_version: str) -> None:
    fleet(me_db, 2)
    plan = make_plan(me_db, stages="1,100%")
    canary = plan.stage_items(1)[0]
    # For 1.5 s after the PUT, GET answers READY with the old pods' counts.
    behaviour = fast_behaviour(
        crashloop_without_eager=(canary.endpoint_name,), stale_reads_s=1.5, build_seconds=1.0
    )
    with standin(me_db, behaviour) as server:
        summary = apply(me_db, plan, redeploy=redeploy(server, watch=SHORT))
    (result,) = summary.results
    assert result.outcome == oc.FAILED and "unavailable" in result.detail
    assert pods_of(server, canary.endpoint_name).eager  # rolled back to its eager command


def test_model_engines_broker_503_does_not_strand_the_endpoint_pending(
    me_db: Any, schema_version: str
) -> None:
    fleet(me_db, 2)
    plan = make_plan(me_db, stages="1,100%")
    canary = plan.stage_items(1)[0]
    faults = [Fault(503, method="PUT", leaves_pending=True)]
    with standin(me_db, fast_behaviour(faults=faults)) as server:
        summary = apply(me_db, plan, stage=1, redeploy=redeploy(server))
    (result,) = summary.results
    assert result.outcome == oc.APPLIED and result.deploy_state == oc.HEALTHY, result.detail
    assert [r.status for r in requests(server, "PUT")] == [503, 200]
    assert pods_of(server, canary.endpoint_name).bundle == result.bundle_after


def test_a_crash_loop_after_a_recreation_is_rolled_back_at_once(
    me_db: Any, schema_version: str
) -> None:
    fleet(me_db, 2)
    plan = make_plan(me_db, stages="1,100%")
    canary = plan.stage_items(1)[0]
    behaviour = fast_behaviour(crashloop_without_eager=(canary.endpoint_name,))
    with standin(me_db, behaviour) as server:
        summary = apply(me_db, plan, redeploy=redeploy(server, mode=RECREATE))
    (result,) = summary.results
    assert result.outcome == oc.FAILED and "rollback refused" not in result.detail
    assert "healthy again" in result.detail
    pods = pods_of(server, canary.endpoint_name)
    assert pods.bundle == canary.bundle_id and pods.eager and not pods.crashloop


def test_one_failed_poll_does_not_fail_a_healthy_endpoint(me_db: Any, schema_version: str) -> None:
    fleet(me_db, 2)
    plan = make_plan(me_db, stages="1,100%")
    # The third GET (inside the watch) answers 500, once.
    faults = [Fault(500, method="GET", times=1, after=2)]
    with standin(me_db, fast_behaviour(faults=faults)) as server:
        summary = apply(me_db, plan, redeploy=redeploy(server), all_stages=True)
    assert summary.counts == {oc.APPLIED: 2} and summary.failures == 0
    assert 500 in [r.status for r in requests(server, "GET")]
    assert journal_rows(me_db, "kind = 'rollback'") == []


def test_an_api_that_stops_answering_stops_the_run_resumably(
    me_db: Any, schema_version: str
) -> None:
    fleet(me_db, 2)
    plan = make_plan(me_db, stages="1,100%")
    # Every GET after the first two (preflight, quiet check) fails: the watch sees nothing.
    faults = [Fault(502, method="GET", html=True, times=10_000, after=2)]
    watch = WatchSettings(poll_interval_s=0.05, settle_s=0.2, timeout_s=1.0)
    with standin(me_db, fast_behaviour(faults=faults)) as server:
        with pytest.raises(DatabaseError, match="API could not be used.*resume"):
            apply(me_db, plan, stage=1, redeploy=redeploy(server, watch=watch))
    (row,) = journal_rows(me_db, "kind = 'apply'")
    assert row["outcome"] == oc.APPLIED and row["deploy_state"] == oc.REDEPLOY_REQUESTED
    assert journal_rows(me_db, "kind = 'rollback'") == []  # nobody saw it fail: not undone
    with standin(me_db) as server:
        again = apply(me_db, plan, stage=1, redeploy=redeploy(server))
    (result,) = again.results
    assert result.deploy_state == oc.HEALTHY and requests(server, "PUT") == []  # watched only


def killed_after_the_put(me_db: Any, server: Any, *, recreate: bool) -> tuple[Any, RowMark]:
    """As a run that wrote the canary, announced and sent its PUT, then died unanswered."""
    owners = {spec.name: spec.owner for spec in fleet(me_db, 2)}
    plan = make_plan(me_db, stages="1,100%")
    canary = plan.stage_items(1)[0]
    (written,) = apply(me_db, plan, stage=1).results  # rows only
    with me_db.engine.begin() as conn:
        mark = redeploys.row_mark(conn, me_db.schema, canary.endpoint_id)
        assert mark is not None
        redeploys.set_state(
            conn,
            written.change_id,
            oc.REDEPLOY_REQUESTED,
            detail="PUT sent",
            mark={**mark.to_json(), "counts": True},
        )
    with client(server) as c:
        c.redeploy(canary.endpoint_name, owners[canary.endpoint_name], recreate=recreate)
    return plan, mark


def test_a_recreation_a_killed_run_never_heard_back_from_is_watched_not_called_drift(
    me_db: Any, schema_version: str
) -> None:
    with standin(me_db) as server:
        plan, _ = killed_after_the_put(me_db, server, recreate=True)
        summary = apply(me_db, plan, stage=1, redeploy=redeploy(server, mode=RECREATE))
    (result,) = summary.results
    assert result.outcome == oc.APPLIED and result.deploy_state == oc.HEALTHY, result.detail
    assert len(requests(server, "PUT")) == 1  # not sent again
    (row,) = journal_rows(me_db, "kind = 'apply'")
    assert row["deployed_bundle"] not in (None, row["bundle_after"])  # model engine's own


def test_a_resumed_run_reads_model_engines_stamp_with_model_engines_clock(
    me_db: Any, schema_version: str
) -> None:
    with standin(me_db) as server:
        plan, mark = killed_after_the_put(me_db, server, recreate=False)
        canary = plan.stage_items(1)[0]
        # Model engine's host runs 30 s behind the database, so its stamp reads "older";
        # and it is the only witness (the task id as before the PUT).
        with me_db.engine.begin() as conn:
            conn.execute(
                sa.text(
                    f"UPDATE {me_db.schema}.endpoints SET creation_task_id = :t, "
                    "last_updated_at = clock_timestamp() - interval '30 seconds' WHERE id = :e"
                ),
                {"e": canary.endpoint_id, "t": mark.task},
            )
            now = redeploys.row_mark(conn, me_db.schema, canary.endpoint_id)
        assert now is not None and now.task == mark.task and now.touched != mark.touched
        summary = apply(me_db, plan, stage=1, redeploy=redeploy(server))
    (result,) = summary.results
    assert result.deploy_state == oc.HEALTHY and len(requests(server, "PUT")) == 1
    assert server.service.races == []


def test_a_slow_answer_that_spends_the_window_on_a_healthy_endpoint_is_not_a_failure(
    me_db: Any, schema_version: str
) -> None:
    fleet(me_db, 2)
    plan = make_plan(me_db, stages="1,100%")
    # The watch's first GET is retried through 4 slow 503s, past the 0.5 s timeout.
    faults = [Fault(503, method="GET", times=4, after=2, delay_s=0.2)]
    watch = WatchSettings(poll_interval_s=0.05, settle_s=0.3, timeout_s=0.5)
    with standin(me_db, fast_behaviour(faults=faults)) as server:
        summary = apply(me_db, plan, stage=1, redeploy=redeploy(server, watch=watch))
    (result,) = summary.results
    assert result.deploy_state == oc.HEALTHY, result.detail
    assert [r.status for r in requests(server, "GET")].count(503) == 4


def test_a_broker_outage_longer_than_the_retries_is_sent_again_by_the_next_run(
    me_db: Any, schema_version: str
) -> None:
    fleet(me_db, 2)
    plan = make_plan(me_db, stages="1,100%")
    canary = plan.stage_items(1)[0]
    attempts = 5  # FAST_RETRY's
    faults = [Fault(503, method="PUT", leaves_pending=True, times=attempts)]
    with standin(me_db, fast_behaviour(faults=faults)) as server:
        with pytest.raises(DatabaseError, match="retries exhausted.*503"):
            apply(me_db, plan, stage=1, redeploy=redeploy(server))
        (row,) = journal_rows(me_db, "kind = 'apply'")
        assert row["deploy_state"] == oc.REDEPLOY_REQUESTED and row["deploy_mark"]["refused"]
        # Model engine left it UPDATE_PENDING with nothing building; a rerun must not wait
        # for that build, nor take the stamped row for a PUT that landed.
        summary = apply(me_db, plan, stage=1, redeploy=redeploy(server))
    (result,) = summary.results
    assert result.deploy_state == oc.HEALTHY, result.detail
    assert [r.status for r in requests(server, "PUT")] == [503] * attempts + [200]
    assert pods_of(server, canary.endpoint_name).bundle == result.bundle_after


def test_a_500_before_the_put_or_while_a_lost_answer_is_looked_for_fails_nothing(
    me_db: Any, schema_version: str
) -> None:
    fleet(me_db, 2)
    plan = make_plan(me_db, stages="1,100%")
    faults = [
        Fault(500, method="GET", times=1, after=1),  # the check that model engine is quiet
        Fault(504, method="PUT", html=True),  # never reached model engine
        Fault(500, method="GET", times=1, after=1),  # inside the look for the lost PUT
    ]
    with standin(me_db, fast_behaviour(faults=faults)) as server:
        summary = apply(me_db, plan, stage=1, redeploy=redeploy(server))
    (result,) = summary.results
    assert result.deploy_state == oc.HEALTHY, result.detail
    assert [r.status for r in requests(server, "PUT")] == [504, 200]
    assert [r.status for r in requests(server, "GET")].count(500) == 2

"""The stage runner: N endpoints in flight, and a stop that counts every one of them."""

from __future__ import annotations

import threading

from migrate.core import outcomes as oc
from migrate.core.outcomes import Result
from migrate.core.stage_gate import StageTally
from migrate.rollout.pacing import Pacer
from migrate.rollout.stage_runner import run_stage
from tests.support.rollout import Collect


def test_failures_of_endpoints_in_flight_when_the_stage_stops_are_counted() -> None:
    started = threading.Barrier(3)

    def fail(name: str) -> Result:
        started.wait(timeout=10)  # all three in flight before any ends
        return Result(name, name, 1, oc.FAILED, "unhealthy", None)

    seen: list[Result] = []
    tally = StageTally(1, max_failures=0)
    stopped = run_stage(
        ["a", "b", "c", "d"],
        fail,
        parallel=3,
        pacer=Pacer(),
        reporter=Collect(),
        tally=tally,
        stop=threading.Event(),
        on_result=seen.append,
    )
    assert len(seen) == 3  # the fourth never started
    assert tally.counts[oc.FAILED] == 3
    assert stopped == "stopped in stage 1: 3 failure(s), more than --max-failures 0"

"""The stage gate: which stage a run works on, and when a stage is complete."""

from __future__ import annotations

from migrate.core.stage_gate import StageTally, select_stages
from tests.support.plans import decision, plan_of


def test_default_stage_is_the_first_incomplete_one_never_all() -> None:
    plan = plan_of([decision(f"e{i}") for i in range(10)], stage_spec="1,50%,100%")
    ids = [i.endpoint_id for i in plan.items]
    assert select_stages(plan, {}, None, False)[0] == [1]
    done = {ids[0]: "applied"}
    assert select_stages(plan, done, None, False)[0] == [2]
    busy = {ids[0]: "skipped-busy"}  # busy is retried: stage 1 is not complete
    assert select_stages(plan, busy, None, False)[0] == [1]
    assert select_stages(plan, done, None, True)[0] == [2, 3]
    stages, notes = select_stages(plan, {}, 3, False)
    assert stages == [3] and "not complete" in notes[0]
    everything = {i: "skipped-drifted" for i in ids}
    assert select_stages(plan, everything, None, True) == (
        [],
        ["every stage of this plan is complete; nothing to do"],
    )


def test_a_stage_is_complete_only_when_nothing_is_left_to_retry() -> None:
    tally = StageTally(1, max_failures=1)
    for outcome in ("applied", "skipped-drifted", "skipped-already-applied"):
        assert tally.add(outcome) is None
    assert tally.incomplete(2) is None
    for outcome in ("skipped-busy", "skipped-not-ready", "skipped-not-ready"):
        assert tally.add(outcome) is None
    assert tally.incomplete(2) == (
        "stage 1 incomplete (1 busy, 2 not ready): rerun to continue; "
        "stage 2 was not started (--stage 2 starts it regardless)"
    )
    assert tally.add("failed") is None  # within --max-failures: the stage goes on
    assert "1 failed" in (tally.incomplete(None) or "")
    assert tally.add("failed") == "stopped in stage 1: 2 failure(s), more than --max-failures 1"
    # A dry run's would-apply is the real run's applied.
    preview = StageTally(3, max_failures=0)
    preview.add("would-apply")
    assert preview.incomplete(4) is None

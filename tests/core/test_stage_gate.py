"""The stage gate: which stage a run works on, and when a stage is complete."""

from __future__ import annotations

import pytest

from migrate.core import outcomes as oc
from migrate.core.stage_gate import StageError, StageTally, select_stages
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
    everything = {i: "skipped-already-applied" for i in ids}
    assert select_stages(plan, everything, None, True) == (
        [],
        ["every stage of this plan is complete; nothing to do"],
    )


@pytest.mark.parametrize(
    "outcome, words",
    [
        (oc.SKIPPED_DRIFTED, "1 drifted"),
        (oc.SKIPPED_ROLLED_BACK, "1 rolled back"),
        (oc.FAILED, "1 failed"),
        (oc.DEPLOY_FAILED, "1 unhealthy"),
        (oc.NOT_DEPLOYED, "1 not redeployed"),
        (oc.SKIPPED_NOT_READY, "1 not ready"),
    ],
)
def test_a_later_stage_is_refused_while_an_earlier_one_is_incomplete(
    outcome: str, words: str
) -> None:
    """Abort means stop: --stage N never jumps an incomplete stage unless told to, loudly."""
    plan = plan_of([decision(f"e{i}") for i in range(10)], stage_spec="1,50%,100%")
    first = plan.items[0].endpoint_id
    with pytest.raises(StageError, match=f"earlier stage.* 1 not complete .stage 1: {words}"):
        select_stages(plan, {first: outcome}, 2, False)
    stages, notes = select_stages(plan, {first: outcome}, 2, False, ignore_incomplete=True)
    assert stages == [2] and notes[0].startswith("WARNING: --ignore-incomplete-stages")
    # A complete stage 1 opens stage 2 without any flag.
    assert select_stages(plan, {first: oc.APPLIED}, 2, False) == ([2], [])


def test_a_stage_is_complete_only_when_every_endpoint_is_done() -> None:
    tally = StageTally(1, max_failures=1)
    for outcome in ("applied", "skipped-already-applied"):
        assert tally.add(outcome) is None
    assert tally.incomplete(2) is None and tally.undone == 0
    tally.add("skipped-drifted")
    assert tally.incomplete(2) == (
        "stage 1 incomplete (1 drifted): it needs an operator; stage 2 was not started "
        "(--stage 2 --ignore-incomplete-stages starts it regardless)"
    )
    for outcome in ("skipped-busy", "skipped-not-ready", "skipped-not-ready"):
        assert tally.add(outcome) is None
    assert tally.incomplete(None) == (
        "stage 1 incomplete (1 drifted, 1 busy, 2 not ready): rerun to continue"
    )
    assert tally.add("failed") is None  # within --max-failures: the stage goes on
    assert "1 failed" in (tally.incomplete(None) or "") and tally.undone == 5
    assert tally.add("failed") == "stopped in stage 1: 2 failure(s), more than --max-failures 1"
    # A dry run's would-apply is the real run's applied, would-redeploy its resumed redeploy.
    preview = StageTally(3, max_failures=0)
    preview.add("would-apply")
    preview.add("would-redeploy")
    assert preview.incomplete(4) is None

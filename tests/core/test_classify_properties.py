"""Properties of the whole decision over generated endpoints (hypothesis).

Whatever the command generation, utilization, stored args and size, the
decision must agree with the rule table, the edit must carry exactly the flag
the decision says, and nothing outside the flag may change.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from migrate.core.classify import classify
from migrate.core.command import parse_script
from migrate.core.policy import PolicyParams, new_rule
from migrate.core.records import BundleRecord, EndpointRecord

LEGACY_ERA = datetime(2025, 3, 1, tzinfo=UTC)
ARGS_ERA = datetime(2026, 7, 1, tzinfo=UTC)
PREFIXES = (
    "s5cmd --numworkers 512 cp --concurrency 50 s3://b/m/* model_files",
    "azcopy copy --recursive https://acct.blob.core.windows.net/m/* ./model_files",
    'export CHAT_TEMPLATE=$(echo "e3sgbWVzc2FnZXMgfX0=" | base64 --decode)',
    "/workspace/init_ray.sh leader --ray_cluster_size=2 --own_address=$POD.$NS",
)
MODELS = ("llama-3-8b-instruct", "llama-3-1-70b-instruct", "deepseek-v3", "mixtral-8x7b")


@st.composite
def endpoints(draw: st.DrawFn) -> tuple[EndpointRecord, dict[str, Any]]:
    util = draw(st.one_of(st.none(), st.sampled_from(["0.8", "0.9", "0.95", "0.97"])))
    eager = draw(st.booleans())
    if util is None:
        util_args: list[str] = []
    else:
        util_args = ["--gpu-memory-utilization", util]
    middle = draw(
        st.lists(
            st.sampled_from(
                [
                    "--max-model-len 8192",
                    "--tokenizer-mode auto",
                    "--quantization awq",
                    "--rope-scaling {'type': 'linear', 'factor': 2.0}",
                    '--rope-scaling \'{"type":"linear","factor":2.0}\'',
                    "--trust-remote-code False",
                    '--chat-template "$CHAT_TEMPLATE"',
                    "--host '::'",
                    "--some-future-flag x y",
                ]
            ),
            max_size=4,
            unique=True,
        )
    )
    parts = ["--model model_files", "--port 5005", *middle]
    if eager:
        parts.insert(draw(st.integers(0, len(parts))), "--enforce-eager")
    if util_args:
        parts.insert(draw(st.integers(0, len(parts))), " ".join(util_args))
    module = draw(st.sampled_from(["vllm_server", "vllm_startup_wrapper"]))
    prefix = draw(st.lists(st.sampled_from(PREFIXES), max_size=3))
    script = ";".join([*prefix, f"python -m {module} " + " ".join(parts)])
    stored = draw(
        st.one_of(
            st.none(),
            st.fixed_dictionaries(
                {},
                optional={
                    "enforce_eager": st.booleans(),
                    "max_model_len": st.just(8192),
                    "gpu_memory_utilization": st.sampled_from([0.8, 0.9]),
                },
            ),
        )
    )
    llm: dict[str, Any] = {
        "model_name": draw(st.sampled_from(MODELS)),
        "inference_framework": "vllm",
    }
    if stored is not None:
        llm["vllm_additional_args"] = stored
    command = ["/bin/bash", "-c", script]
    bundle = BundleRecord("bun_x", "streaming_enhanced_runnable_image", command, command, None)
    record = EndpointRecord(
        id="end_x",
        name="ep",
        owner="o",
        status=draw(st.sampled_from(["READY", "UPDATE_FAILED"])),
        endpoint_type="streaming",
        metadata={"_llm": llm},
        current_bundle_id="bun_x",
        bundle=bundle,
        created_at=draw(st.sampled_from([LEGACY_ERA, ARGS_ERA])),
    )
    return record, {"eager": eager, "util": util, "stored": stored}


@settings(max_examples=300, deadline=None)
@given(endpoints(), st.sampled_from(["keep", "drop"]))
def test_decision_follows_the_rule_and_the_edit_follows_the_decision(
    case: tuple[EndpointRecord, dict[str, Any]], recorded: str
) -> None:
    record, facts = case
    d = classify(record, PolicyParams(recorded=recorded))
    assert d.action != "skip", d.reason
    assert d.eager_now == facts["eager"]
    util = None if facts["util"] is None else Decimal(facts["util"])
    stored = facts["stored"] or {}
    explicit = stored.get("enforce_eager")

    if explicit is False:
        assert d.eager_after is False
    elif explicit is True and not (d.provenance == "recorded" and recorded == "drop"):
        assert d.eager_after is True
    elif facts["eager"] and util is None:
        assert d.eager_after is True  # hand-added: the old rule always wrote both flags
    else:
        rule_util = util
        if rule_util is None and "gpu_memory_utilization" in stored:
            rule_util = Decimal(str(stored["gpu_memory_utilization"]))
        assert d.eager_after == new_rule(None, rule_util)

    expected_action = {
        (True, False): "drop-eager",
        (False, True): "add-eager",
        (True, True): "keep-eager",
        (False, False): "no-change",
    }[(d.eager_now, d.eager_after)]
    assert d.action == expected_action

    before = record.bundle.command[2]  # type: ignore[union-attr]
    if d.changes:
        after = parse_script(d.command_after)  # type: ignore[arg-type]
        assert after.enforce_eager == d.eager_after
        assert abs(len(d.command_after) - len(before)) == len(" --enforce-eager")  # type: ignore[arg-type]
        assert d.streaming_command_after == d.command_after
        assert parse_script(before).module == after.module
    else:
        assert d.command_after is None
    large_at_095 = d.param_count_b is not None and d.param_count_b >= 70
    large_at_095 = large_at_095 and util is not None and util >= Decimal("0.95")
    assert ("large-model-at-0.95" in d.flags) == large_at_095
    assert ("not-ready" in d.flags) == (record.status != "READY")
    stored_u = stored.get("gpu_memory_utilization")
    mismatch = stored_u is not None and (util is None or Decimal(str(stored_u)) != util)
    assert ("args-command-mismatch" in d.flags) == mismatch

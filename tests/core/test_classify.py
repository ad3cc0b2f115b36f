"""One endpoint's decision: action, reason, flags, evidence and the edited command."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from migrate.core.classify import classify
from migrate.core.overrides import parse_overrides
from migrate.core.policy import RECORDED_DROP, PolicyParams
from migrate.core.records import BundleRecord, EndpointRecord
from migrate.core.staging import goes_last

DL = "s5cmd --numworkers 512 cp --concurrency 10 s3://models/llama/* model_files"
OLD = datetime(2024, 10, 20, tzinfo=UTC)
NEW = datetime(2026, 7, 1, tzinfo=UTC)


def gen_c(util: str = "0.9", eager: bool = True, tp: int = 1) -> str:
    tail = f" --gpu-memory-utilization {util}" + (" --enforce-eager" if eager else "")
    return (
        f"{DL};python -m vllm_server --model model_files --tensor-parallel-size {tp} "
        f"--port 5005 --disable-log-requests{tail}"
    )


def gen_e(util: str = "0.9", eager: bool = True, extra: str = "") -> str:
    return (
        f"{DL};python -m vllm_server --model model_files --served-model-name m model_files "
        f"--port 5005 --max-model-len 8192{' --enforce-eager' if eager else ''} "
        f"--tensor-parallel-size 1{extra} --gpu-memory-utilization {util}"
    )


def endpoint(
    script: str | None,
    *,
    model: str = "llama-3-8b-instruct",
    framework: str = "vllm",
    args: dict[str, Any] | None = None,
    status: str = "READY",
    created: datetime = OLD,
    streaming: str | None | bool = True,
    worker: list[str] | None = None,
    flavor: str = "streaming_enhanced_runnable_image",
    checkpoint: str | None = None,
) -> EndpointRecord:
    llm: dict[str, Any] = {"model_name": model, "inference_framework": framework, "num_shards": 1}
    llm["checkpoint_path"] = checkpoint
    if args is not None:
        llm["vllm_additional_args"] = args
    command = None if script is None else ["/bin/bash", "-c", script]
    stream: list[str] | None
    if streaming is True:
        stream = command
    elif isinstance(streaming, str):
        stream = ["/bin/bash", "-c", streaming]
    else:
        stream = None
    bundle = BundleRecord(
        id="bun_cn4kq9q1f1fg00b0ds5g",
        flavor=flavor,
        command=command,
        streaming_command=stream,
        worker_command=worker,
    )
    return EndpointRecord(
        id="end_cn4kq9q1f1fg00b0ds60",
        name="ep",
        owner="team",
        status=status,
        endpoint_type="streaming",
        metadata={"_llm": llm},
        current_bundle_id=bundle.id,
        bundle=bundle,
        created_at=created,
        last_updated_at=created,
    )


def test_legacy_injected_flag_is_dropped_with_surgical_edit() -> None:
    script = gen_c()
    d = classify(endpoint(script))
    assert (d.action, d.eager_now, d.eager_after) == ("drop-eager", True, False)
    assert d.provenance == "injected"
    assert d.command_after == script.replace(" --enforce-eager", "")
    assert d.streaming_command_after == d.command_after
    assert d.gpu_memory_utilization == 0.9
    assert d.param_count_b == 8
    assert d.args_after is None
    assert "injected" in d.reason and "0.9 < 0.95" in d.reason


def test_large_model_at_095_keeps_eager_and_is_flagged() -> None:
    d = classify(endpoint(gen_c("0.95"), model="llama-3-70b-instruct"))
    assert d.action == "keep-eager" and d.command_after is None
    assert "large-model-at-0.95" in d.flags


def test_large_model_below_095_loses_eager_and_is_flagged() -> None:
    d = classify(endpoint(gen_c("0.9"), model="qwen2.5-72b-instruct"))
    assert d.action == "drop-eager"
    assert "large-model-loses-eager" in d.flags
    assert "large-model-at-0.95" not in d.flags


def test_unknown_size_losing_eager_is_flagged() -> None:
    d = classify(endpoint(gen_c("0.9"), model="acme-support-bot"))
    assert d.action == "drop-eager" and d.param_count_b is None
    assert {"unknown-model-size", "unknown-size-loses-eager"} <= set(d.flags)


def test_explicit_false_overridden_by_old_rule_is_dropped_even_at_095() -> None:
    d = classify(
        endpoint(
            gen_e("0.95"),
            model="llama-3-70b",
            args={"enforce_eager": False, "gpu_memory_utilization": 0.95},
            created=NEW,
        )
    )
    assert d.action == "drop-eager"
    assert {"explicit-false-overridden", "large-model-at-0.95", "large-model-loses-eager"} <= set(
        d.flags
    )


def test_explicit_true_request_is_kept() -> None:
    d = classify(endpoint(gen_e(), args={"enforce_eager": True}, created=NEW))
    assert d.action == "keep-eager" and d.provenance == "explicit-true"


def test_recorded_flag_kept_by_default_and_dropped_on_request() -> None:
    args = {"gpu_memory_utilization": 0.9, "max_model_len": 8192, "enforce_eager": True}
    rec = endpoint(gen_e(), args=args, created=OLD)
    kept = classify(rec)
    assert kept.action == "keep-eager" and kept.provenance == "recorded"
    assert "recorded-eager" in kept.flags
    dropped = classify(rec, PolicyParams(recorded=RECORDED_DROP))
    assert dropped.action == "drop-eager"
    # model engine's own recreation must not read the flag back as a request.
    assert dropped.args_after == {"gpu_memory_utilization": 0.9, "max_model_len": 8192}


def test_hand_added_flag_without_utilization_is_kept() -> None:
    script = f"{DL};python -m vllm_server --model model_files --port 5005 --enforce-eager"
    d = classify(endpoint(script))
    assert d.action == "keep-eager" and d.provenance == "hand-added"


def test_generation_a_without_flag_is_no_change() -> None:
    script = (
        f"{DL};python -m vllm_server --model model_files --tensor-parallel-size 2 "
        "--port 5005 --max-num-batched-tokens 4096"
    )
    d = classify(endpoint(script))
    assert d.action == "no-change" and d.gpu_memory_utilization is None


def test_high_utilization_without_flag_gets_one_added() -> None:
    d = classify(endpoint(gen_e("0.97", eager=False), created=NEW, args={"max_model_len": 8192}))
    assert d.action == "add-eager"
    assert d.command_after is not None
    assert d.command_after.endswith("--gpu-memory-utilization 0.97 --enforce-eager")


def test_threshold_parameter_changes_the_decision() -> None:
    d = classify(endpoint(gen_c("0.9")), PolicyParams(threshold=Decimal("0.9")))
    assert d.action == "keep-eager"


def test_other_frameworks_are_skipped_untouched() -> None:
    d = classify(endpoint(gen_c(), framework="sglang"))
    assert d.action == "skip" and d.command_after is None and "sglang" in d.reason


def test_unparseable_command_is_skipped_with_reason() -> None:
    d = classify(endpoint(f"{DL};echo 'unterminated"))
    assert d.action == "skip" and "unparseable-command" in d.flags


def test_missing_command_is_skipped() -> None:
    d = classify(endpoint(None, flavor="cloudpickle_artifact", streaming=None))
    assert d.action == "skip"


def test_not_ready_and_multinode_are_flagged() -> None:
    script = (
        f"{DL};/workspace/init_ray.sh leader --ray_cluster_size=2 --own_address=x;"
        "python -m vllm_server --model model_files --tensor-parallel-size 8 --port 5005 "
        "--pipeline-parallel-size 2 --gpu-memory-utilization 0.9 --enforce-eager"
    )
    d = classify(endpoint(script, status="UPDATE_FAILED", worker=["/bin/bash", "-c", "ray start"]))
    assert {"not-ready", "multinode"} <= set(d.flags)
    assert d.action == "drop-eager"


def test_streaming_command_that_differs_is_flagged_and_edited_separately() -> None:
    main = gen_c()
    other = main.replace("--port 5005", "--port 5006")
    d = classify(endpoint(main, streaming=other))
    assert "streaming-command-differs" in d.flags
    assert d.action == "drop-eager"
    assert d.streaming_command_after == other.replace(" --enforce-eager", "")


def test_streaming_command_disagreeing_on_the_flag_is_skipped() -> None:
    main = gen_c()
    d = classify(endpoint(main, streaming=gen_c(eager=False)))
    assert d.action == "skip" and "both or neither" in d.reason


def test_runnable_image_without_streaming_command() -> None:
    d = classify(endpoint(gen_c(), streaming=None, flavor="runnable_image"))
    assert d.action == "drop-eager" and d.streaming_command_after is None


@pytest.mark.parametrize(
    ("section", "action"), [("keep-eager", "keep-eager"), ("auto", "drop-eager")]
)
def test_overrides(section: str, action: str) -> None:
    overrides = parse_overrides(f'[{section}]\nmodels = ["llama-3-8b*"]\n', "o.toml")
    args = {"enforce_eager": True}
    rec = endpoint(gen_c(), args=args, created=NEW) if section == "auto" else endpoint(gen_c())
    d = classify(rec, overrides=overrides)
    assert d.action == action
    assert f"override-{section}" in d.flags
    assert any("o.toml" in e for e in d.evidence)


def test_args_mismatch_is_flagged() -> None:
    d = classify(endpoint(gen_e("0.9"), args={"gpu_memory_utilization": 0.8}, created=NEW))
    assert "args-command-mismatch" in d.flags


def test_fingerprints_track_what_the_decision_read() -> None:
    a = classify(endpoint(gen_c()))
    b = classify(endpoint(gen_c("0.8")))
    assert a.fingerprint != b.fingerprint and a.basis_fingerprint != b.basis_fingerprint
    assert a.fingerprint == classify(endpoint(gen_c())).fingerprint


def test_auto_override_adding_eager_clears_a_contradicting_stored_false() -> None:
    overrides = parse_overrides('[auto]\nendpoints = ["ep"]\n', "o.toml")
    args = {"enforce_eager": False, "max_model_len": 8192}
    d = classify(endpoint(gen_e("0.97", eager=False), args=args, created=NEW), overrides=overrides)
    assert d.action == "add-eager"
    assert d.args_after == {"max_model_len": 8192}


def test_only_changes_carry_fingerprints() -> None:
    assert classify(endpoint(gen_c("0.95"), model="llama-3-70b")).fingerprint is None
    assert classify(endpoint(gen_c())).fingerprint is not None


def test_a_decision_for_a_report_is_the_same_without_fingerprints() -> None:
    record = endpoint(gen_c())
    planned = classify(record)
    reported = classify(record, fingerprint=False)
    assert planned.changes and planned.fingerprint and planned.basis_fingerprint
    assert reported.fingerprint is None and reported.basis_fingerprint is None
    assert asdict(reported) == {**asdict(planned), "fingerprint": None, "basis_fingerprint": None}


# Stored booleans (issue 12 item 7): model engine's pydantic coercion, nothing else.


COERCED = [(v, "explicit-true") for v in (1, "yes", "1")]
COERCED += [(v, "explicit-false") for v in (0, "false", "off")]


@pytest.mark.parametrize(("raw", "kind"), COERCED)
def test_stored_enforce_eager_is_coerced_as_model_engine_does(raw: object, kind: str) -> None:
    d = classify(endpoint(gen_e(), args={"enforce_eager": raw, "max_model_len": 8192}, created=NEW))
    assert d.provenance == kind
    assert d.action == ("keep-eager" if kind == "explicit-true" else "drop-eager")
    assert "malformed-metadata" not in d.flags
    assert any(repr(raw) in e for e in d.evidence)


def test_stored_null_enforce_eager_is_no_preference() -> None:
    d = classify(endpoint(gen_e(), args={"enforce_eager": None, "max_model_len": 8192}))
    assert d.provenance == "injected" and d.action == "drop-eager"


@pytest.mark.parametrize("raw", ["maybe", 2, " true", "", [True], {"v": 1}, 0.5])
def test_stored_enforce_eager_model_engine_would_refuse_is_never_ignored(raw: object) -> None:
    d = classify(endpoint(gen_e(), args={"enforce_eager": raw, "max_model_len": 8192}, created=NEW))
    assert d.action == "skip" and d.command_after is None and d.args_after is None
    assert "malformed-metadata" in d.flags
    assert "enforce_eager" in d.reason and repr(raw) in d.reason


# Real sizes (issue 10 item 2): risk is judged on total parameters.


def test_mixture_of_experts_is_judged_on_its_total_size() -> None:
    d = classify(endpoint(gen_c("0.9"), model="qwen3-235b-a22b"))
    assert (d.param_count_b, d.model_engine_param_count_b) == (235, 22)
    assert d.action == "drop-eager"
    assert {"large-model-loses-eager", "size-disagrees-with-model-engine"} <= set(d.flags)
    # The evidence says why a 235B model ran at 0.9: model engine read it as 22B.
    assert any("22B" in e and "0.9" in e and "235B" in e for e in d.evidence)


def test_mixture_of_experts_at_095_is_a_large_model_at_095() -> None:
    d = classify(endpoint(gen_c("0.95"), model="llama-4-scout-17b-16e-instruct"))
    assert d.param_count_b == 109 and d.action == "keep-eager"
    assert "large-model-at-0.95" in d.flags


def test_small_mixture_of_experts_is_not_large() -> None:
    d = classify(endpoint(gen_c("0.9"), model="qwen3-30b-a3b"))
    assert d.param_count_b == 30 and d.model_engine_param_count_b == 3
    assert d.action == "drop-eager"
    assert not {f for f in d.flags if f.startswith(("large-", "unknown-"))}
    assert "size-disagrees-with-model-engine" in d.flags


def test_agreeing_sizes_carry_no_size_flag_or_evidence() -> None:
    d = classify(endpoint(gen_c("0.9"), model="llama-3-70b-instruct"))
    assert d.param_count_b == d.model_engine_param_count_b == 70
    assert "size-disagrees-with-model-engine" not in d.flags
    assert not any("model engine reads" in e for e in d.evidence)


def test_checkpoint_path_sizes_a_model_whose_name_says_nothing() -> None:
    path = "s3://scale-ml-models/hf-llm/deepseek-ai/DeepSeek-V3"
    d = classify(endpoint(gen_c("0.9"), model="support-bot", checkpoint=path))
    assert d.param_count_b == 671 and d.model_engine_param_count_b is None
    assert "large-model-loses-eager" in d.flags and "unknown-model-size" not in d.flags
    assert any("checkpoint path" in e for e in d.evidence)


# Flags on skipped endpoints (issue 10 item 3): whatever is known still shows.

UNPARSEABLE = f"{DL};echo 'unterminated"


def test_skipped_command_still_shows_a_large_model_at_095_from_its_args() -> None:
    args = {"gpu_memory_utilization": 0.95, "max_model_len": 8192}
    d = classify(endpoint(UNPARSEABLE, model="qwen3-235b-a22b", args=args, created=NEW))
    assert d.action == "skip" and "unparseable-command" in d.flags
    assert {"large-model-at-0.95", "size-disagrees-with-model-engine"} <= set(d.flags)
    assert d.gpu_memory_utilization == 0.95
    assert any("gpu_memory_utilization" in e for e in d.evidence)


@pytest.mark.parametrize(
    ("model", "args"),
    [
        ("llama-3-8b-instruct", {"gpu_memory_utilization": 0.95}),  # small
        ("llama-3-70b-instruct", {"gpu_memory_utilization": 0.9}),  # below 0.95
        ("llama-3-70b-instruct", {"max_model_len": 8192}),  # utilization unknown
        ("llama-3-70b-instruct", None),  # legacy: nothing stored
    ],
)
def test_skipped_endpoint_is_not_flagged_without_the_facts(
    model: str, args: dict[str, Any] | None
) -> None:
    d = classify(endpoint(UNPARSEABLE, model=model, args=args, created=NEW))
    assert d.action == "skip" and "large-model-at-0.95" not in d.flags


def test_skipped_for_malformed_metadata_keeps_its_size_flags() -> None:
    args = {"enforce_eager": "maybe", "gpu_memory_utilization": 0.95}
    d = classify(endpoint(gen_e("0.95"), model="deepseek-v3", args=args, created=NEW))
    assert d.action == "skip"
    assert {"malformed-metadata", "large-model-at-0.95"} <= set(d.flags)
    assert "size-disagrees-with-model-engine" in d.flags


def test_other_frameworks_keep_size_flags_but_no_vllm_utilization() -> None:
    args = {"gpu_memory_utilization": 0.95}
    d = classify(endpoint(gen_c("0.95"), model="deepseek-v3", framework="sglang", args=args))
    assert d.action == "skip" and d.param_count_b == 671
    assert "size-disagrees-with-model-engine" in d.flags
    assert "large-model-at-0.95" not in d.flags


@pytest.mark.parametrize(
    ("model", "last"),
    [
        ("qwen3-235b-a22b", True),  # model engine reads 22B; the GPUs hold 235B
        ("llama-4-scout-17b-16e-instruct", True),
        ("deepseek-v3", True),
        ("qwen3-30b-a3b", False),
        ("llama-3-8b-instruct", False),
    ],
)
def test_staging_puts_models_large_by_total_size_last(model: str, last: bool) -> None:
    d = classify(endpoint(gen_c("0.9"), model=model))
    assert d.action == "drop-eager"
    assert goes_last(d) is last

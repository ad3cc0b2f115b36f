"""One random bundle version of a vLLM endpoint, as its generation's builder made it.

Returns plain field dicts (not specs) so that a caller can still adjust an old
version (e.g. drop args that only the current bundle's metadata keeps) before
:class:`~migrate.sandbox.synth.spec.EndpointSpec` validates the result once.
"""

from __future__ import annotations

import random
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from migrate.sandbox.synth.catalog import (
    CHAT_TEMPLATES,
    EXPLICITABLE,
    IMAGE_TAGS,
    STARTUP_WRAPPER_FROM,
    USER_UTILIZATIONS,
    Model,
)
from migrate.sandbox.synth.spec import (
    CORE_ARGS,
    DEFAULT_UTILIZATION,
    EAGER_THRESHOLD,
    GENERATION_WINDOWS,
    GENERATIONS,
    LARGE_MODEL_UTILIZATION,
    default_gpu_memory_utilization,
    is_llama3_70b,
)


def window_for(generation: str, released: date) -> tuple[date, date] | None:
    start, end = GENERATION_WINDOWS[generation]
    start = max(start, released)
    return (start, end) if start <= end else None


def pick_num_shards(rng: random.Random, size: int | None) -> int:
    if size is None or size > 150:
        return 8
    if size <= 4:
        return 1
    if size <= 9:
        return rng.choice((1, 1, 1, 2))
    if size <= 20:
        return rng.choice((1, 2))
    if size <= 35:
        return rng.choice((2, 2, 4))
    if size <= 60:
        return rng.choice((2, 4))
    if size <= 80:
        return rng.choice((4, 4, 8))
    return 8


def pick_checkpoint(rng: random.Random, model: str, owner: str, storage: str) -> str:
    fine_tuned = rng.random() < 0.25
    suffix = f"fine_tuned_weights/{owner}/{model}-ft-{rng.getrandbits(24):06x}"
    if storage == "azure":
        base = "https://scalellmweights.blob.core.windows.net/models"
    elif storage == "gcs":
        base = "gs://scale-llm-weights"
    else:
        base = "s3://scale-ml-models"
    return f"{base}/{suffix}" if fine_tuned else f"{base}/hf-llm/{model}"


def random_server_args(
    rng: random.Random, gen: str, model: str, size: int | None
) -> dict[str, Any]:
    """vLLM args beyond the first-class fields, as the generation's builder would set them."""
    args: dict[str, Any] = {}
    if rng.random() < (0.6 if gen <= "B" else 0.8):
        args["disable_log_requests"] = True
    if gen <= "B":
        return args
    if "C" <= gen <= "F" and model.startswith("gemma-2"):
        args["attention_backend"] = "FLASHINFER"
    if gen == "C":
        return args
    if rng.random() < 0.4:
        args["max_model_len"] = rng.choice((4096, 8192, 16384, 32768, 131072))
    if rng.random() < 0.15:
        args["max_num_seqs"] = rng.choice((32, 64, 128, 256))
    if rng.random() < 0.08 or model.startswith(("phi-3", "deepseek", "kimi")):
        args["trust_remote_code"] = True
    elif gen == "D":
        args["trust_remote_code"] = False  # D printed it anyway: --trust-remote-code False
    if rng.random() < 0.05:
        args["rope_scaling"] = dict(
            rng.choice(
                (
                    {"type": "linear", "factor": 2.0},
                    {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768},
                )
            )
        )
    if rng.random() < 0.1:
        args["enable_prefix_caching"] = True
    if gen >= "E" and rng.random() < 0.06:
        args["tool_call_parser"] = "hermes" if model.startswith("qwen") else "llama3_json"
        args["enable_auto_tool_choice"] = True
    if gen >= "F" and "mistral" in model and rng.random() < 0.5:
        args["tokenizer_mode"] = "mistral"
        args["load_format"] = "mistral"
        args["config_format"] = "mistral"
    if rng.random() < 0.03:
        args["tokenizer"] = "/workspace/tokenizer"
    if gen == "E" and rng.random() < 0.03:
        args["kv_cache_dtype"] = "fp8"
        args["quantization_param_path"] = "/workspace/kv_cache_scales.json"
    if rng.random() < 0.05:
        args["max_num_batched_tokens"] = rng.choice((4096, 8192, 16384))
    if rng.random() < 0.02:
        args["seed"] = rng.randint(0, 9999)
    if rng.random() < 0.03:
        args["swap_space"] = rng.choice((4, 8, 16))
    if gen >= "G":
        if rng.random() < 0.05:
            args["enable_chunked_prefill"] = True
        if rng.random() < 0.03:
            args["max_seq_len_to_capture"] = rng.choice((8192, 32768))
        if rng.random() < 0.02:
            args["speculative_config"] = {"method": "ngram", "num_speculative_tokens": 4}
        if rng.random() < 0.02:
            args["compilation_config"] = {"cudagraph_capture_sizes": [1, 2, 4, 8, 16]}
    return args


def json_number(value: Decimal) -> float:
    return float(value)


def random_vllm_version(
    rng: random.Random,
    *,
    gen: str,
    model: Model,
    base: dict[str, Any],
    bundle_id: str,
    at: datetime,
    forced_provenance: str | None,
) -> dict[str, Any]:
    """Fields of one bundle version of a vLLM endpoint; provenance per the generation's rules."""
    server_args = random_server_args(rng, gen, model.name, model.total_b)
    default_util = default_gpu_memory_utilization(model.name)
    util: Decimal | None
    if gen == "A":
        util = None
    elif gen == "B":
        util = LARGE_MODEL_UTILIZATION if is_llama3_70b(model.name) else None
    elif gen == "C":
        util = default_util
    else:
        util = default_util if rng.random() < 0.9 else rng.choice(USER_UTILIZATIONS)

    args: dict[str, Any] | None = None
    provenance = forced_provenance
    if gen in ("A", "B"):
        if provenance is None:
            if gen == "B" and util is not None:
                provenance = "injected"
            else:
                provenance = "hand-added" if rng.random() < 0.05 else "none"
    elif gen in ("C", "D", "E", "F"):
        if provenance is None:
            # The rare "none" is a flag someone removed by hand since.
            provenance = "none" if rng.random() < 0.02 else "injected"
    else:
        if provenance is None:
            roll = rng.random()
            if roll < 0.08:
                provenance = "explicit-true"
            elif roll < 0.16 and gen == "G":
                provenance = "explicit-false"
            elif roll < 0.16:
                provenance = "none-explicit-false"  # H honours an explicit false
            else:
                provenance = "by-rule"
        gave_args = provenance in ("explicit-true", "explicit-false", "none-explicit-false") or (
            rng.random() < 0.5
        )
        if provenance == "explicit-true" and rng.random() < 0.25:
            # A caller who spelt out every argument, utilization included: the dict
            # copies the command as a recreation's parse-back would. Only the
            # creation time tells it is a request (created since args were stored).
            assert util is not None  # from C on every bundle has one
            args = {k: v for k, v in server_args.items() if k not in CORE_ARGS}
            args["gpu_memory_utilization"] = json_number(util)
        elif gave_args:
            chosen = [k for k in EXPLICITABLE if k in server_args and rng.random() < 0.6]
            if not chosen and "max_model_len" not in server_args:
                server_args["max_model_len"] = rng.choice((4096, 8192, 32768))
                chosen = ["max_model_len"]
            args = {k: server_args[k] for k in chosen}
            if rng.random() < 0.15:
                util = rng.choice(USER_UTILIZATIONS)
                args["gpu_memory_utilization"] = json_number(util)
        if provenance == "explicit-true":
            assert args is not None
            args["enforce_eager"] = True
        elif provenance in ("explicit-false", "none-explicit-false"):
            assert args is not None
            args["enforce_eager"] = False
            provenance = "explicit-false" if gen == "G" else "none"
        elif gen == "H":
            # H's builder follows the new policy; a forced injected/none picks a
            # utilization on the matching side of the threshold.
            assert util is not None
            if provenance == "injected" and util < EAGER_THRESHOLD:
                util = LARGE_MODEL_UTILIZATION
            elif provenance == "none" and util >= EAGER_THRESHOLD:
                util = DEFAULT_UTILIZATION
            if args is not None and "gpu_memory_utilization" in args:
                args["gpu_memory_utilization"] = json_number(util)
            provenance = "injected" if util >= EAGER_THRESHOLD else "none"
        elif provenance == "by-rule":
            provenance = "none" if rng.random() < 0.01 else "injected"
        if args == {}:
            args = None

    return {
        **base,
        "bundle_id": bundle_id,
        "generation": gen,
        "provenance": provenance,
        "created_at": at,
        "bundle_created_at": at,
        "last_updated_at": at,
        "model_name": model.name,
        "framework": "vllm",
        "framework_image_tag": rng.choice(IMAGE_TAGS[gen]),
        "gpu_memory_utilization": util,
        "vllm_additional_args": args,
        "server_args": tuple(server_args.items()),
        "chat_template": (
            rng.choice(CHAT_TEMPLATES) if gen >= "C" and rng.random() < 0.08 else None
        ),
        "module": (
            "vllm_startup_wrapper"
            if gen >= "F" and at.date() >= STARTUP_WRAPPER_FROM and rng.random() < 0.35
            else "vllm_server"
        ),
        "model_cache_enabled": gen >= "G" and rng.random() < 0.5,
    }


def recorded_from(
    rng: random.Random, legacy: dict[str, Any], gen: str, bundle_id: str, at: datetime
) -> dict[str, Any]:
    """Force-recreation of a legacy endpoint: args parsed back from its old command."""
    parsed: dict[str, Any] = {k: v for k, v in legacy["server_args"] if k not in CORE_ARGS}
    parsed["gpu_memory_utilization"] = json_number(legacy["gpu_memory_utilization"])
    parsed["enforce_eager"] = True
    server_args = tuple(
        (k, v) for k, v in parsed.items() if k not in ("gpu_memory_utilization", "enforce_eager")
    )
    return {
        **legacy,
        "bundle_id": bundle_id,
        "generation": gen,
        "provenance": "recorded",
        "created_at": legacy["created_at"],
        "bundle_created_at": at,
        "last_updated_at": at,
        "framework_image_tag": rng.choice(IMAGE_TAGS[gen]),
        "vllm_additional_args": parsed,
        "server_args": server_args,
        "module": "vllm_startup_wrapper" if rng.random() < 0.35 else "vllm_server",
        "model_cache_enabled": rng.random() < 0.5,
    }


def older_generations(current: str, model: Model, multinode: bool) -> list[str]:
    return [
        g
        for g in GENERATIONS
        if g <= current
        and (g != "B" or is_llama3_70b(model.name))
        and (g >= "C" or not multinode)  # LeaderWorkerSet support came with C
        and window_for(g, model.released) is not None
    ]


def legacy_provenance(fields: dict[str, Any]) -> str:
    """Provenance of a past bundle whose caller gave no args (the builder's rule alone)."""
    if fields["generation"] == "H":
        util = fields["gpu_memory_utilization"]
        return "injected" if util is not None and util >= EAGER_THRESHOLD else "none"
    return "injected"

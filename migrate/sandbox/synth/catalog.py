"""The catalogue random fleets draw from: models and release dates, weights, tags, names.

Proportions are meant to look like a late-2026 model engine fleet; they are data,
not rules (the rules live in :mod:`migrate.sandbox.synth.spec`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from migrate.sandbox.synth.spec import GENERATION_WINDOWS, STREAMING_FLAVOR, is_llama3_70b

# Shape change inside F, keyed by the bundle's creation date (drawn, not rendered:
# the module name is a spec field).
STARTUP_WRAPPER_FROM = date(2026, 1, 1)  # vllm_startup_wrapper appears in late F


@dataclass(frozen=True)
class Model:
    name: str
    released: date
    weight: float
    # Total parameters (billions) as the model's card gives them, written here by
    # hand: the scan's size must match this, so it must not come from the scanner.
    # Model engine's own figures where it special-cases a name (mixtral 47/140,
    # phi-3 4/8/15, deepseek-coder-v2 16/237). None: nothing says.
    total_b: int | None
    # The weights' name in the checkpoint path, for a model its team named itself.
    repo: str | None = None


MODELS: tuple[Model, ...] = (
    Model("llama-2-7b-chat", date(2023, 7, 18), 2, 7),
    Model("llama-2-13b-chat", date(2023, 7, 18), 1, 13),
    Model("llama-2-70b-chat", date(2023, 7, 18), 1.5, 70),
    Model("codellama-13b-instruct", date(2023, 8, 24), 0.7, 13),
    Model("codellama-34b-instruct", date(2023, 8, 24), 0.7, 34),
    Model("mistral-7b-instruct", date(2023, 9, 27), 2, 7),
    Model("mistral-7b-instruct-v0.3", date(2024, 5, 22), 1, 7),
    Model("mixtral-8x7b-instruct", date(2023, 12, 11), 1.5, 47),
    Model("mixtral-8x22b-instruct", date(2024, 4, 17), 0.8, 140),
    Model("dbrx-instruct", date(2024, 3, 27), 0.2, 132),
    Model("llama-3-8b", date(2024, 4, 18), 1, 8),
    Model("llama-3-8b-instruct", date(2024, 4, 18), 4, 8),
    Model("llama-3-70b", date(2024, 4, 18), 0.7, 70),
    Model("llama-3-70b-instruct", date(2024, 4, 18), 3, 70),
    Model("phi-3-mini-4k-instruct", date(2024, 4, 23), 1, 4),
    Model("phi-3-medium-4k-instruct", date(2024, 5, 21), 0.5, 15),
    Model("qwen2-72b-instruct", date(2024, 6, 7), 0.7, 72),
    Model("deepseek-coder-v2-lite-instruct", date(2024, 6, 17), 0.6, 16),
    Model("deepseek-coder-v2-instruct", date(2024, 6, 17), 0.3, 237),
    Model("gemma-2-9b-instruct", date(2024, 6, 27), 1, 9),
    Model("gemma-2-27b-instruct", date(2024, 6, 27), 0.8, 27),
    Model("llama-3-1-8b-instruct", date(2024, 7, 23), 5, 8),
    Model("llama-3-1-70b-instruct", date(2024, 7, 23), 4, 70),
    Model("llama-3-1-405b-instruct", date(2024, 7, 23), 1, 405),
    Model("mistral-large-instruct-2407", date(2024, 7, 24), 0.5, 123),
    Model("qwen2.5-7b-instruct", date(2024, 9, 19), 1.5, 7),
    Model("qwen2.5-72b-instruct", date(2024, 9, 19), 2, 72),
    Model("llama-3-2-1b-instruct", date(2024, 9, 25), 1, 1),
    Model("llama-3-2-3b-instruct", date(2024, 9, 25), 1.2, 3),
    Model("qwen2.5-coder-32b-instruct", date(2024, 11, 12), 1.2, 32),
    Model("llama-3-3-70b-instruct", date(2024, 12, 6), 4, 70),
    Model("deepseek-v3", date(2024, 12, 26), 1, 671),
    Model("deepseek-r1", date(2025, 1, 20), 1, 671),
    Model("deepseek-r1-distill-llama-70b", date(2025, 1, 20), 1.2, 70),
    Model("qwen3-8b", date(2025, 4, 29), 1.5, 8),
    Model("qwen3-32b", date(2025, 4, 29), 1.5, 32),
    Model("qwen3-30b-a3b", date(2025, 4, 29), 0.8, 30),
    Model("qwen3-235b-a22b", date(2025, 4, 29), 0.6, 235),
    Model("llama-4-scout-17b-16e-instruct", date(2025, 4, 5), 0.8, 109),
    Model("llama-4-maverick-17b-128e-instruct", date(2025, 4, 5), 0.3, 400),
    Model("kimi-k2-instruct", date(2025, 7, 11), 0.4, 1000),
    Model("qwen3-coder-480b-a35b-instruct", date(2025, 7, 22), 0.3, 480),
    Model("glm-4.5-air", date(2025, 7, 28), 0.3, 106),
    Model("gpt-oss-20b", date(2025, 8, 5), 1, 20),
    Model("gpt-oss-120b", date(2025, 8, 5), 1.5, 120),
    # Teams' own names: only the checkpoint path says what the weights are, or nothing does.
    Model("support-assistant", date(2025, 1, 15), 0.6, 70, repo="llama-3-3-70b-instruct"),
    Model("acme-assistant", date(2025, 3, 1), 0.4, None),
)


def total_params_b(model_name: str | None) -> int | None:
    """The catalogue's total size of a model it lists; None for one it does not."""
    return next((m.total_b for m in MODELS if m.name == model_name), None)


# Weights of each generation among surviving vLLM endpoints, per current bundle.
GENERATION_WEIGHTS: tuple[tuple[str, float], ...] = (
    ("A", 7),
    ("B", 2),
    ("C", 7),
    ("D", 1),
    ("E", 28),
    ("F", 27),
    ("G", 13),
    ("H", 15),
)
# Frameworks other than vLLM and the generations (dates) in which they were offered.
OTHER_FRAMEWORKS: tuple[tuple[str, str, float], ...] = (
    ("text_generation_inference", "ABCDEF", 4),
    ("sglang", "EFGH", 3),
    ("deepspeed", "A", 0.5),
    ("lightllm", "ABC", 1),
    ("tensorrt_llm", "BCDEF", 1.5),
)
OTHER_FRAMEWORK_WEIGHTS = tuple((f, w) for f, _, w in OTHER_FRAMEWORKS)
STATUS_WEIGHTS: tuple[tuple[str, float], ...] = (
    ("READY", 88),
    ("UPDATE_PENDING", 3),
    ("UPDATE_IN_PROGRESS", 2),
    ("UPDATE_FAILED", 5),
    ("DELETE_IN_PROGRESS", 2),
)
IMAGE_TAGS: dict[str, tuple[str, ...]] = {
    "A": ("0.2.7", "0.3.2", "0.4.0.post1", "0.4.2"),
    "B": ("0.4.2", "0.5.0.post1"),
    "C": ("0.5.3.post1", "0.6.1.post2"),
    "D": ("0.6.3",),
    "E": ("0.6.3.post1", "0.6.4.post1", "0.7.2", "0.8.3", "0.8.5"),
    "F": ("0.10.1", "0.10.2", "0.11.0"),
    "G": ("0.11.2", "0.12.0"),
    "H": ("0.12.0", "0.13.0"),
}
OTHER_IMAGE_TAGS: dict[str, tuple[str, ...]] = {
    "text_generation_inference": ("1.4.0", "2.0.4", "2.2.0", "3.0.1"),
    "sglang": ("0.3.6", "0.4.1", "0.4.6.post1", "0.5.2"),
    "deepspeed": ("0.12.6",),
    "lightllm": ("2.0.0", "2.1.0"),
    "tensorrt_llm": ("0.8.0", "0.10.0", "0.12.0"),
}
TEAMS: tuple[str, ...] = (
    "search",
    "evals",
    "gen-ai",
    "rlhf",
    "forge",
    "sgp",
    "data-eng",
    "safety",
    "donovan",
    "labeling",
)
CHAT_TEMPLATES: tuple[str, ...] = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}</s>\n"
    "{% endfor %}<|assistant|>\n",
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}[INST] {{ m['content'] }} "
    "[/INST]{% else %}{{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}",
    "{% for m in messages %}{{'<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>' + "
    "'\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
)
USER_UTILIZATIONS: tuple[Decimal, ...] = tuple(
    Decimal(v) for v in ("0.8", "0.85", "0.88", "0.92", "0.95", "0.97")
)
# Args that callers set explicitly and that the parse-back of a legacy command
# recovers (first-class fields such as tensor parallelism are not args).
EXPLICITABLE = (
    "max_model_len",
    "max_num_seqs",
    "trust_remote_code",
    "enable_prefix_caching",
    "rope_scaling",
    "tool_call_parser",
    "enable_auto_tool_choice",
    "max_num_batched_tokens",
    "enable_chunked_prefill",
    "kv_cache_dtype",
    "seed",
)


# Commands of endpoints that are not model engine LLM endpoints. The first one is
# a trap: a hand-rolled vLLM image with --enforce-eager, which must be left alone.
CUSTOM_COMMANDS: tuple[tuple[str, ...], ...] = (
    (
        "/bin/bash",
        "-c",
        "python -m vllm.entrypoints.openai.api_server --model /data/model --port 5005 "
        "--enforce-eager --max-model-len 4096",
    ),
    ("python", "-m", "app.server", "--port", "5005"),
    ("/bin/bash", "-c", "pip install -r requirements.txt;python serve.py --port 5005 --workers 2"),
    ("dumb-init", "--", "uvicorn", "main:app", "--host", "0.0.0.0", "--port", "5005"),
)
TRITON_COMMAND = (
    "/bin/bash",
    "-c",
    "python -m triton_forwarder --http-port 5005 --grpc-port 8001",
)


NON_LLM_FLAVOR_WEIGHTS: tuple[tuple[str, float], ...] = (
    ("runnable_image", 40),
    (STREAMING_FLAVOR, 5),
    ("triton_enhanced_runnable_image", 10),
    ("cloudpickle_artifact", 30),
    ("zip_artifact", 15),
)
STORAGE_WEIGHTS: tuple[tuple[str, float], ...] = (("s3", 75), ("azure", 15), ("gcs", 10))


@functools.cache
def models_for(generation: str) -> tuple[tuple[Model, float], ...]:
    """Models a vLLM endpoint of this generation can run, with their weights."""
    if generation == "B":
        return tuple((m, m.weight) for m in MODELS if is_llama3_70b(m.name))
    end = GENERATION_WINDOWS[generation][1]
    return tuple((m, m.weight) for m in MODELS if m.released <= end)


@functools.cache
def models_released_by(generation: str) -> tuple[tuple[Model, float], ...]:
    end = GENERATION_WINDOWS[generation][1]
    return tuple((m, m.weight) for m in MODELS if m.released <= end)

"""Synthetic model engine endpoints of every command generation (A-H), with known intent.

Pure: no database. Used by the tests, the sandbox command and benchmarks. Each
:class:`EndpointSpec` says how an endpoint was made (generation, model, how the
``--enforce-eager`` flag got into its command) and therefore what the documented
new policy means for it (:attr:`EndpointSpec.expected_action`). The builders
render the exact stored command of its generation, so a scanner can be checked
against the intent that produced the bytes it parses.

Generations (see shared/reference/model-engine-facts.md, section 3):
A Aug 2023 - Sep 2024 (and every non-llama-3-70b endpoint until C), B May - Sep 2024
(llama-3-70b only), C Sep - 14 Oct 2024, D 15 Oct 2024, E 16 Oct 2024 - Sep 2025,
F Sep 2025 - Apr 2026, G 1 May - 14 Jun 2026 (args recorded), H from 15 Jun 2026 (new policy).
"""

from __future__ import annotations

import base64
import functools
import itertools
import json
import random
import re
import shlex
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

__all__ = [
    "ACTIONS",
    "ARG_ORDER",
    "EAGER_THRESHOLD",
    "ENDPOINT_TYPES",
    "FLAVORS",
    "GENERATION_WINDOWS",
    "GENERATIONS",
    "LLM_FRAMEWORKS",
    "PROVENANCES",
    "RUNNABLE_FLAVORS",
    "SCHEMA_VERSIONS",
    "STATUSES",
    "STREAMING_DIFFERS_SUFFIX",
    "STREAMING_FLAVOR",
    "EndpointSpec",
    "build_command",
    "build_script",
    "build_streaming_command",
    "build_worker_command",
    "creation_task_id",
    "default_gpu_memory_utilization",
    "endpoint_metadata",
    "make_spec",
    "param_count_b",
    "random_fleet",
    "xid",
]

GENERATIONS: tuple[str, ...] = ("A", "B", "C", "D", "E", "F", "G", "H")
PROVENANCES: tuple[str, ...] = (
    "none",
    "injected",
    "explicit-true",
    "explicit-false",
    "recorded",
    "hand-added",
)
ACTIONS: tuple[str, ...] = ("drop-eager", "add-eager", "keep-eager", "no-change", "skip")
LLM_FRAMEWORKS: tuple[str, ...] = (
    "vllm",
    "sglang",
    "text_generation_inference",
    "deepspeed",
    "lightllm",
    "tensorrt_llm",
)
FLAVORS: tuple[str, ...] = (
    "runnable_image",
    "streaming_enhanced_runnable_image",
    "triton_enhanced_runnable_image",
    "cloudpickle_artifact",
    "zip_artifact",
)
RUNNABLE_FLAVORS: tuple[str, ...] = FLAVORS[:3]
STREAMING_FLAVOR = "streaming_enhanced_runnable_image"
STATUSES: tuple[str, ...] = (
    "READY",
    "UPDATE_PENDING",
    "UPDATE_IN_PROGRESS",
    "UPDATE_FAILED",
    "DELETE_IN_PROGRESS",
)
ENDPOINT_TYPES: tuple[str, ...] = ("sync", "async", "streaming")
SCHEMA_VERSIONS: tuple[str, ...] = ("2024", "2026")

EAGER_THRESHOLD = Decimal("0.95")
DEFAULT_UTILIZATION = Decimal("0.9")
LARGE_MODEL_UTILIZATION = Decimal("0.95")
LARGE_MODEL_PARAMS_B = 70

# Inclusive bundle creation windows. A runs until C because only llama-3-70b
# changed shape in May 2024 (that is B); every other endpoint kept A's shape.
GENERATION_WINDOWS: dict[str, tuple[date, date]] = {
    "A": (date(2023, 8, 1), date(2024, 9, 4)),
    "B": (date(2024, 5, 10), date(2024, 9, 4)),
    "C": (date(2024, 9, 5), date(2024, 10, 14)),
    "D": (date(2024, 10, 15), date(2024, 10, 15)),
    "E": (date(2024, 10, 16), date(2025, 9, 14)),
    "F": (date(2025, 9, 15), date(2026, 4, 30)),
    "G": (date(2026, 5, 1), date(2026, 6, 14)),
    "H": (date(2026, 6, 15), date(2026, 11, 15)),
}
# Shape changes inside a generation, keyed by the bundle's creation date.
_A_BATCHED_TOKENS_UNTIL = date(2023, 12, 31)  # A first carried --max-num-batched-tokens 4096
_F_DOUBLE_QUOTED_HOST_FROM = date(2026, 1, 15)  # F first printed --host '::', then "::"
_STARTUP_WRAPPER_FROM = date(2026, 1, 1)  # vllm_startup_wrapper appears in late F

MODEL_CACHE_ROOT = "/mnt/model-cache"

# Field order in which model engine printed vLLM arguments from D on. The
# unknown-to-a-parser future flags come last on purpose.
ARG_ORDER: tuple[str, ...] = (
    "attention_backend",
    "max_model_len",
    "max_num_seqs",
    "enforce_eager",
    "trust_remote_code",
    "pipeline_parallel_size",
    "tensor_parallel_size",
    "quantization",
    "disable_log_requests",
    "chat_template",
    "tool_call_parser",
    "enable_auto_tool_choice",
    "load_format",
    "config_format",
    "tokenizer_mode",
    "tokenizer",
    "enable_prefix_caching",
    "enable_chunked_prefill",
    "max_num_batched_tokens",
    "rope_scaling",
    "gpu_memory_utilization",
    "kv_cache_dtype",
    "quantization_param_path",
    "seed",
    "swap_space",
    "max_seq_len_to_capture",
    "speculative_config",
    "compilation_config",
)
_ARG_RANK = {name: i for i, name in enumerate(ARG_ORDER)}
# Arguments that come from first-class endpoint fields, not from the args dict.
_CORE_ARGS = frozenset(
    {"tensor_parallel_size", "pipeline_parallel_size", "quantization", "chat_template"}
)

# Special cases of model engine's size inference, checked in this order (the lite
# model must win over its big sibling).
_SIZE_SPECIAL_CASES: tuple[tuple[str, int], ...] = (
    ("mixtral-8x7b", 47),
    ("mixtral-8x22b", 140),
    ("phi-3-mini", 4),
    ("phi-3-small", 8),
    ("phi-3-medium", 15),
    ("deepseek-coder-v2-lite", 16),
    ("deepseek-coder-v2", 237),
)
_SIZE_PATTERN = re.compile(r"(\d+)b")


def param_count_b(model_name: str | None) -> int | None:
    """Billions of parameters as model engine infers them from the name; None if unknown."""
    if not model_name:
        return None
    name = model_name.lower()
    for key, size in _SIZE_SPECIAL_CASES:
        if key in name:
            return size
    found = _SIZE_PATTERN.findall(name)
    return int(found[-1]) if found else None


def default_gpu_memory_utilization(model_name: str | None) -> Decimal:
    """Model engine's inferred default. An unknown size is not >= 70, so it gets 0.9."""
    size = param_count_b(model_name)
    if size is not None and size >= LARGE_MODEL_PARAMS_B:
        return LARGE_MODEL_UTILIZATION
    return DEFAULT_UTILIZATION


_B32HEX = "0123456789abcdefghijklmnopqrstuv"
# Two base32hex digits per 10 bits: ten table look-ups per id instead of twenty steps.
_B32HEX_PAIRS = tuple(a + b for a in _B32HEX for b in _B32HEX)


def xid(at: datetime, machine: int, counter: int) -> str:
    """An xid-shaped id: 4-byte timestamp, 5 machine/pid bytes, 3-byte counter, base32hex.

    Same text as base64.b32hexencode of the 12 bytes, lowercased and unpadded,
    computed on an int because this runs for every row of a 100k fleet.
    """
    value = (
        (int(at.timestamp()) & 0xFFFFFFFF) << 64
        | (machine & 0xFF_FFFF_FFFF) << 24
        | (counter & 0xFFFFFF)
    ) << 4  # 96 bits padded to 100: twenty 5-bit digits
    pairs = _B32HEX_PAIRS
    return "".join(
        [pairs[(value >> shift) & 0x3FF] for shift in (90, 80, 70, 60, 50, 40, 30, 20, 10, 0)]
    )


@dataclass(frozen=True, slots=True)
class EndpointSpec:
    """One synthetic endpoint and the bundle it currently runs.

    ``superseded`` holds the endpoint as it was at each older bundle (oldest
    first): same endpoint id and name, their own bundle id, generation and dates.
    """

    endpoint_id: str
    bundle_id: str
    name: str
    owner: str
    generation: str
    provenance: str
    created_at: datetime
    bundle_created_at: datetime
    last_updated_at: datetime
    model_name: str | None = None
    # None: not an LLM endpoint (no `_llm` key in its metadata).
    framework: str | None = None
    framework_image_tag: str | None = None
    num_shards: int = 1
    gpu_memory_utilization: Decimal | None = None
    # `_llm.vllm_additional_args`; None means the key is absent (a legacy endpoint).
    vllm_additional_args: dict[str, Any] | None = None
    # vLLM arguments beyond the first-class fields, in any order (rendered in ARG_ORDER).
    server_args: tuple[tuple[str, Any], ...] = ()
    status: str = "READY"
    endpoint_type: str = "streaming"
    flavor: str = STREAMING_FLAVOR
    nodes_per_worker: int = 1
    chat_template: str | None = None
    quantize: str | None = None
    storage: str = "s3"
    checkpoint_path: str | None = None
    module: str = "vllm_server"
    model_cache_enabled: bool = False
    streaming_differs: bool = False
    # Commands of endpoints that are not model engine LLM endpoints.
    custom_command: tuple[str, ...] | None = None
    metadata_extra: tuple[tuple[str, Any], ...] = ()
    superseded: tuple[EndpointSpec, ...] = ()
    created_by: str | None = None

    def __post_init__(self) -> None:
        problem = _spec_problem(self)
        if problem:
            raise ValueError(f"inconsistent EndpointSpec {self.name!r}: {problem}")

    # --- what it is -------------------------------------------------------------
    @property
    def is_llm(self) -> bool:
        return self.framework is not None

    @property
    def is_vllm(self) -> bool:
        return self.framework == "vllm"

    @property
    def is_legacy(self) -> bool:
        """Created before model engine recorded vLLM arguments in the metadata."""
        return self.is_llm and self.vllm_additional_args is None

    @property
    def multinode(self) -> bool:
        return self.nodes_per_worker > 1

    @property
    def param_count_b(self) -> int | None:
        return param_count_b(self.model_name)

    @property
    def weights_folder(self) -> str:
        return _weights_folder(self)

    # --- the flag and the policy ------------------------------------------------------
    @property
    def eager_now(self) -> bool:
        """Whether the stored command carries ``--enforce-eager``."""
        return self.provenance != "none"

    @property
    def explicit_enforce_eager(self) -> bool | None:
        """The caller's own enforce_eager: from the args dict, or implied by a hand edit."""
        args = self.vllm_additional_args
        if args is not None and "enforce_eager" in args:
            return bool(args["enforce_eager"])
        if self.provenance == "hand-added":
            return True
        return None

    @property
    def eager_after(self) -> bool:
        """Whether the new policy wants the flag (explicit value wins, else utilization >= 0.95)."""
        explicit = self.explicit_enforce_eager
        if explicit is not None:
            return explicit
        util = self.gpu_memory_utilization
        return util is not None and util >= EAGER_THRESHOLD

    @property
    def expected_action(self) -> str:
        """drop-eager / add-eager / keep-eager / no-change, or skip for non-vLLM endpoints.

        Status is deliberately not considered: whether to touch an endpoint that is
        mid-update is the tool's call, not part of the intent.
        """
        if not self.is_vllm:
            return "skip"
        now, after = self.eager_now, self.eager_after
        if now and not after:
            return "drop-eager"
        if after and not now:
            return "add-eager"
        return "keep-eager" if now else "no-change"


def _spec_problem(spec: EndpointSpec) -> str | None:
    """Why a spec could not have come from model engine, or None."""
    if spec.generation not in GENERATIONS:
        return f"generation {spec.generation!r}"
    if spec.provenance not in PROVENANCES:
        return f"provenance {spec.provenance!r}"
    if spec.flavor not in FLAVORS:
        return f"flavor {spec.flavor!r}"
    if spec.status not in STATUSES:
        return f"status {spec.status!r}"
    if spec.endpoint_type not in ENDPOINT_TYPES:
        return f"endpoint_type {spec.endpoint_type!r}"
    if not spec.endpoint_id.startswith("end_") or not spec.bundle_id.startswith("bun_"):
        return "ids must start with end_ / bun_"
    if spec.framework is None:
        if spec.provenance not in ("none", "hand-added"):
            return "a non-LLM endpoint has no flag provenance beyond none/hand-added"
        if spec.flavor in RUNNABLE_FLAVORS and not spec.custom_command:
            return "a runnable non-LLM endpoint needs custom_command"
        return None
    if spec.framework not in LLM_FRAMEWORKS:
        return f"framework {spec.framework!r}"
    if not spec.model_name:
        return "an LLM endpoint needs model_name"
    if spec.flavor not in ("runnable_image", STREAMING_FLAVOR):
        return "LLM endpoints use runnable_image or streaming_enhanced_runnable_image"
    if spec.multinode and (spec.generation < "C" or not spec.is_vllm):
        return "multinode needs a vLLM endpoint of generation C or later"
    if not spec.is_vllm:
        if spec.provenance != "none" or spec.gpu_memory_utilization is not None:
            return "non-vLLM LLM endpoints carry no flag and no utilization"
        if spec.vllm_additional_args is not None:
            return "non-vLLM endpoints have no vllm_additional_args"
        return None

    gen, prov, util, args = (
        spec.generation,
        spec.provenance,
        spec.gpu_memory_utilization,
        spec.vllm_additional_args,
    )
    explicit = args.get("enforce_eager") if args is not None else None
    if args is not None and gen not in ("G", "H"):
        return "vllm_additional_args exist only from generation G on"
    if gen == "A" and (util is not None or prov not in ("none", "hand-added")):
        return "A has no utilization and only none/hand-added flags"
    if gen == "B":
        is_70b = _is_llama3_70b(spec.model_name)
        if prov == "injected" and not (is_70b and util == LARGE_MODEL_UTILIZATION):
            return "B injected the pair only for llama-3-70b, at 0.95"
        if prov != "injected" and (is_70b or util is not None):
            return "B always injected for llama-3-70b and never set utilization otherwise"
    if gen >= "C" and util is None:
        return "from C on every vLLM bundle has a utilization"
    if prov == "hand-added" and (gen not in ("A", "B") or util is not None):
        return "hand-added means a flag without --gpu-memory-utilization (A/B only)"
    if prov == "explicit-true" and (explicit is not True):
        return "explicit-true needs vllm_additional_args.enforce_eager == true"
    if prov == "explicit-false" and (explicit is not False or gen != "G"):
        return "explicit-false needs enforce_eager == false and generation G (old rule)"
    if prov == "recorded" and (explicit is not True or gen not in ("G", "H")):
        return "recorded needs enforce_eager == true parsed back, generation G/H"
    if prov == "injected" and explicit is not None:
        return "injected flags are not explicit"
    if prov == "none" and gen == "G" and explicit is not None:
        return "G's old rule always added the flag when the caller said anything"
    if gen == "H":
        wanted = (
            bool(explicit)
            if explicit is not None
            else (util is not None and util >= EAGER_THRESHOLD)
        )
        if wanted != (prov != "none"):
            return "H follows the new policy: flag iff explicit or utilization >= 0.95"
    if args is not None and "gpu_memory_utilization" in args:
        if Decimal(str(args["gpu_memory_utilization"])) != util:
            return "args utilization must match the command's"
    return None


def _is_llama3_70b(model_name: str | None) -> bool:
    return bool(model_name) and model_name.startswith("llama-3-70b")


# --- rendering ------------------------------------------------------------------------


def _weights_folder(spec: EndpointSpec) -> str:
    model = spec.model_name or ""
    if "C" <= spec.generation <= "F" and "mistral" in model:
        folder = "mistral_files"
    else:
        folder = "model_files"
    if spec.generation >= "G" and spec.model_cache_enabled:
        return f"{MODEL_CACHE_ROOT}/{folder}"
    return folder


def _download_steps(spec: EndpointSpec, folder: str) -> list[str]:
    source = (spec.checkpoint_path or "").rstrip("/")
    steps: list[str] = []
    if spec.storage == "azure":
        steps.append("export AZCOPY_AUTO_LOGIN_TYPE=WORKLOAD")
        copy = f'azcopy copy --recursive --exclude-pattern "optimizer*" "{source}/*" {folder}'
    elif spec.storage == "gcs":
        copy = f"gsutil -m cp -r {source}/* {folder}"
    else:
        s5cmd = "./s5cmd" if spec.generation <= "D" else "s5cmd"
        copy = (
            f'{s5cmd} --numworkers 512 cp --concurrency 10 --include "*.model" '
            f'--include "*.json" --include "*.safetensors" --exclude "optimizer*" '
            f"{source}/* {folder}"
        )
    if spec.generation >= "G" and spec.model_cache_enabled:
        # Several pods of one node share the cache; the lock keeps them from
        # downloading into the same folder at once.
        steps.append(f"mkdir -p {MODEL_CACHE_ROOT}")
        lock = f"{MODEL_CACHE_ROOT}/.{folder.rsplit('/', 1)[-1]}.lock"
        copy = f"flock {lock} {copy}"
    steps.append(copy)
    return steps


_RAY_OWN_ADDRESS = (
    "--own_address=$K8S_OWN_POD_NAME.$K8S_LWS_NAME.$K8S_OWN_NAMESPACE.svc.cluster.local"
)
RAY_LEADER_STEP = (
    f"/workspace/init_ray.sh leader --ray_cluster_size=$RAY_CLUSTER_SIZE {_RAY_OWN_ADDRESS}"
)
RAY_WORKER_STEP = (
    f"/workspace/init_ray.sh worker --ray_address=$LWS_LEADER_ADDRESS.svc.cluster.local "
    f"{_RAY_OWN_ADDRESS}"
)


def _render_arg(name: str, value: Any, generation: str) -> str | None:
    flag = "--" + name.replace("_", "-")
    quoted = generation >= "G"
    if name == "chat_template":
        return f'{flag} "$CHAT_TEMPLATE"'
    if isinstance(value, bool):
        if value:
            return flag
        # D printed every set field, false booleans with their value; later ones drop them.
        return f"{flag} False" if generation == "D" else None
    if isinstance(value, dict):
        if quoted:
            return f"{flag} {shlex.quote(json.dumps(value, separators=(',', ':')))}"
        return f"{flag} {value!r}"
    text = str(value)
    return f"{flag} {shlex.quote(text) if quoted else text}"


def _all_vllm_args(spec: EndpointSpec) -> dict[str, Any]:
    args: dict[str, Any] = dict(spec.server_args)
    args["tensor_parallel_size"] = spec.num_shards
    if spec.multinode:
        args["pipeline_parallel_size"] = spec.nodes_per_worker
    if spec.quantize:
        args["quantization"] = spec.quantize
    if spec.chat_template is not None:
        args["chat_template"] = spec.chat_template
    if spec.gpu_memory_utilization is not None:
        args["gpu_memory_utilization"] = spec.gpu_memory_utilization
    if spec.eager_now:
        args["enforce_eager"] = True
    return args


def _vllm_invocation(spec: EndpointSpec, folder: str) -> str:
    gen = spec.generation
    args = dict(spec.server_args)
    if gen in ("A", "B"):
        parts = [
            f"python -m vllm_server --model {folder} --tensor-parallel-size {spec.num_shards} "
            "--port 5005"
        ]
        if spec.bundle_created_at.date() <= _A_BATCHED_TOKENS_UNTIL:
            parts.append("--max-num-batched-tokens 4096")
        if spec.quantize:
            parts.append(f"--quantization {spec.quantize}")
        if args.get("disable_log_requests"):
            parts.append("--disable-log-requests")
        if spec.provenance == "injected":  # B's hard-coded pair, at the very end
            parts.append(f"--gpu-memory-utilization {spec.gpu_memory_utilization} --enforce-eager")
        elif spec.provenance == "hand-added":
            parts.append("--enforce-eager")
        return " ".join(parts)
    if gen == "C":
        parts = [
            f"python -m vllm_server --model {folder} --tensor-parallel-size {spec.num_shards} "
            "--port 5005"
        ]
        if spec.multinode:
            parts.append(f"--pipeline-parallel-size {spec.nodes_per_worker}")
        if spec.chat_template is not None:
            parts.append('--chat-template "$CHAT_TEMPLATE"')
        if spec.quantize:
            parts.append(f"--quantization {spec.quantize}")
        if args.get("disable_log_requests"):
            parts.append("--disable-log-requests")
        parts.append(f"--gpu-memory-utilization {spec.gpu_memory_utilization}")
        if spec.eager_now:
            parts.append("--enforce-eager")
        if args.get("attention_backend"):
            parts.append(f"--attention-backend {args['attention_backend']}")
        return " ".join(parts)

    model = spec.model_name or ""
    if gen == "D":
        head = f"python -m vllm_server --model {folder} --port 5005"
    elif gen == "E":
        head = (
            f"python -m vllm_server --model {folder} --served-model-name {model} {folder} "
            "--port 5005"
        )
    elif gen == "F":
        host = "'::'" if spec.bundle_created_at.date() < _F_DOUBLE_QUOTED_HOST_FROM else '"::"'
        head = (
            f"python -m {spec.module} --model {folder} --served-model-name {model} {folder} "
            f"--port 5005 --host {host}"
        )
    else:
        head = (
            f"python -m {spec.module} --model {folder} --served-model-name '{model}' '{folder}' "
            '--port 5005 --host "::"'
        )
    full = _all_vllm_args(spec)
    ordered = sorted(full.items(), key=lambda kv: (_ARG_RANK.get(kv[0], len(ARG_ORDER)), kv[0]))
    rendered = [r for k, v in ordered if (r := _render_arg(k, v, gen)) is not None]
    return " ".join([head, *rendered])


def _other_framework_invocation(spec: EndpointSpec, folder: str) -> str:
    n = spec.num_shards
    fw = spec.framework
    if fw == "sglang":
        return (
            f"python3 -m sglang.launch_server --model-path {folder} --served-model-name "
            f"{spec.model_name} --tp {n} --port 5005 --host '::'"
        )
    if fw == "text_generation_inference":
        return (
            f"text-generation-launcher --hostname :: --port 5005 --model-id {folder} "
            f"--num-shard {n} --max-input-length 2048 --max-total-tokens 4096"
        )
    if fw == "deepspeed":
        return f"deepspeed --num_gpus {n} /app/deepspeed_server.py --model {folder} --port 5005"
    if fw == "lightllm":
        return (
            f"python -m lightllm.server.api_server --model_dir {folder} --port 5005 --tp {n} "
            "--max_total_token_num 14000 --trust_remote_code"
        )
    if fw == "tensorrt_llm":
        return (
            f"python3 launch_triton_server.py --world_size {n} --model_repo {folder}/model_repo;"
            "python3 -m tensorrt_llm_forwarder --port 5005"
        )
    raise ValueError(f"no command shape for framework {fw!r}")


def build_script(spec: EndpointSpec) -> str:
    """The bash script (``runnable_image_command[2]``) of the spec's current bundle."""
    if not spec.is_llm:
        cmd = spec.custom_command
        if cmd and len(cmd) == 3 and cmd[0] == "/bin/bash" and cmd[1] == "-c":
            return cmd[2]
        raise ValueError(f"{spec.name}: not an LLM endpoint and no bash script")
    folder = _weights_folder(spec)
    steps = _download_steps(spec, folder)
    if not spec.is_vllm:
        steps.append(_other_framework_invocation(spec, folder))
        return ";".join(steps)
    if spec.chat_template is not None:
        encoded = base64.b64encode(spec.chat_template.encode("utf-8")).decode("ascii")
        steps.append(f'export CHAT_TEMPLATE=$(echo "{encoded}" | base64 --decode)')
    if spec.multinode:
        steps.append(RAY_LEADER_STEP)
    steps.append(_vllm_invocation(spec, folder))
    return ";".join(steps)


def build_command(spec: EndpointSpec) -> list[str] | None:
    """``runnable_image_command`` of the current bundle (None for artifact flavors)."""
    if spec.flavor not in RUNNABLE_FLAVORS:
        return None
    if not spec.is_llm:
        return list(spec.custom_command or ())
    return ["/bin/bash", "-c", build_script(spec)]


# Appended to the streaming command of a `streaming_differs` spec: someone once
# edited one of the two commands by hand, so they no longer match.
STREAMING_DIFFERS_SUFFIX = " --disable-log-stats"


def build_streaming_command(
    spec: EndpointSpec, command: list[str] | None = None
) -> list[str] | None:
    """``streaming_enhanced_runnable_image_streaming_command``: equal to the command.

    ``command`` saves rebuilding the script when the caller already has it.
    """
    if spec.flavor != STREAMING_FLAVOR:
        return None
    if command is None:
        command = build_command(spec)
    if command is None:
        return None
    if spec.streaming_differs and len(command) == 3:
        command = [command[0], command[1], command[2] + STREAMING_DIFFERS_SUFFIX]
    return command


def build_worker_command(spec: EndpointSpec) -> list[str] | None:
    """``runnable_image_worker_command`` of a multinode leader's bundle: download, then Ray."""
    if not spec.multinode:
        return None
    steps = _download_steps(spec, _weights_folder(spec))
    steps.append(RAY_WORKER_STEP)
    return ["/bin/bash", "-c", ";".join(steps)]


def endpoint_metadata(spec: EndpointSpec) -> dict[str, Any]:
    """``endpoints.endpoint_metadata`` as model engine would have stored it."""
    metadata: dict[str, Any] = dict(spec.metadata_extra)
    if not spec.is_llm:
        return metadata
    llm: dict[str, Any] = {
        "model_name": spec.model_name,
        "source": "hugging_face",
        "inference_framework": spec.framework,
        "inference_framework_image_tag": spec.framework_image_tag,
        "num_shards": spec.num_shards,
        "quantize": spec.quantize,
        "checkpoint_path": spec.checkpoint_path,
        "chat_template_override": spec.chat_template,
    }
    if spec.generation >= "G":
        llm["model_cache_enabled"] = spec.model_cache_enabled
        if spec.vllm_additional_args is not None:
            llm["vllm_additional_args"] = dict(spec.vllm_additional_args)
    metadata["_llm"] = llm
    return metadata


# --- random fleets -------------------------------------------------------------------


@dataclass(frozen=True)
class _Model:
    name: str
    released: date
    weight: float


_MODELS: tuple[_Model, ...] = (
    _Model("llama-2-7b-chat", date(2023, 7, 18), 2),
    _Model("llama-2-13b-chat", date(2023, 7, 18), 1),
    _Model("llama-2-70b-chat", date(2023, 7, 18), 1.5),
    _Model("codellama-13b-instruct", date(2023, 8, 24), 0.7),
    _Model("codellama-34b-instruct", date(2023, 8, 24), 0.7),
    _Model("mistral-7b-instruct", date(2023, 9, 27), 2),
    _Model("mistral-7b-instruct-v0.3", date(2024, 5, 22), 1),
    _Model("mixtral-8x7b-instruct", date(2023, 12, 11), 1.5),
    _Model("mixtral-8x22b-instruct", date(2024, 4, 17), 0.8),
    _Model("llama-3-8b", date(2024, 4, 18), 1),
    _Model("llama-3-8b-instruct", date(2024, 4, 18), 4),
    _Model("llama-3-70b", date(2024, 4, 18), 0.7),
    _Model("llama-3-70b-instruct", date(2024, 4, 18), 3),
    _Model("phi-3-mini-4k-instruct", date(2024, 4, 23), 1),
    _Model("phi-3-medium-4k-instruct", date(2024, 5, 21), 0.5),
    _Model("qwen2-72b-instruct", date(2024, 6, 7), 0.7),
    _Model("deepseek-coder-v2-lite-instruct", date(2024, 6, 17), 0.6),
    _Model("deepseek-coder-v2-instruct", date(2024, 6, 17), 0.3),
    _Model("gemma-2-9b-instruct", date(2024, 6, 27), 1),
    _Model("gemma-2-27b-instruct", date(2024, 6, 27), 0.8),
    _Model("llama-3-1-8b-instruct", date(2024, 7, 23), 5),
    _Model("llama-3-1-70b-instruct", date(2024, 7, 23), 4),
    _Model("llama-3-1-405b-instruct", date(2024, 7, 23), 1),
    _Model("mistral-large-instruct-2407", date(2024, 7, 24), 0.5),
    _Model("qwen2.5-7b-instruct", date(2024, 9, 19), 1.5),
    _Model("qwen2.5-72b-instruct", date(2024, 9, 19), 2),
    _Model("llama-3-2-1b-instruct", date(2024, 9, 25), 1),
    _Model("llama-3-2-3b-instruct", date(2024, 9, 25), 1.2),
    _Model("qwen2.5-coder-32b-instruct", date(2024, 11, 12), 1.2),
    _Model("llama-3-3-70b-instruct", date(2024, 12, 6), 4),
    _Model("deepseek-v3", date(2024, 12, 26), 1),
    _Model("deepseek-r1", date(2025, 1, 20), 1),
    _Model("deepseek-r1-distill-llama-70b", date(2025, 1, 20), 1.2),
    _Model("qwen3-8b", date(2025, 4, 29), 1.5),
    _Model("qwen3-32b", date(2025, 4, 29), 1.5),
    _Model("qwen3-235b-a22b", date(2025, 4, 29), 0.6),
    _Model("llama-4-scout-17b-16e-instruct", date(2025, 4, 5), 0.8),
    _Model("kimi-k2-instruct", date(2025, 7, 11), 0.4),
    _Model("gpt-oss-20b", date(2025, 8, 5), 1),
    _Model("gpt-oss-120b", date(2025, 8, 5), 1.5),
)

# Weights of each generation among surviving vLLM endpoints, per current bundle.
_GENERATION_WEIGHTS: tuple[tuple[str, float], ...] = (
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
_OTHER_FRAMEWORKS: tuple[tuple[str, str, float], ...] = (
    ("text_generation_inference", "ABCDEF", 4),
    ("sglang", "EFGH", 3),
    ("deepspeed", "A", 0.5),
    ("lightllm", "ABC", 1),
    ("tensorrt_llm", "BCDEF", 1.5),
)
_OTHER_FRAMEWORK_WEIGHTS = tuple((f, w) for f, _, w in _OTHER_FRAMEWORKS)
_STATUS_WEIGHTS: tuple[tuple[str, float], ...] = (
    ("READY", 88),
    ("UPDATE_PENDING", 3),
    ("UPDATE_IN_PROGRESS", 2),
    ("UPDATE_FAILED", 5),
    ("DELETE_IN_PROGRESS", 2),
)
_IMAGE_TAGS: dict[str, tuple[str, ...]] = {
    "A": ("0.2.7", "0.3.2", "0.4.0.post1", "0.4.2"),
    "B": ("0.4.2", "0.5.0.post1"),
    "C": ("0.5.3.post1", "0.6.1.post2"),
    "D": ("0.6.3",),
    "E": ("0.6.3.post1", "0.6.4.post1", "0.7.2", "0.8.3", "0.8.5"),
    "F": ("0.10.1", "0.10.2", "0.11.0"),
    "G": ("0.11.2", "0.12.0"),
    "H": ("0.12.0", "0.13.0"),
}
_OTHER_IMAGE_TAGS: dict[str, tuple[str, ...]] = {
    "text_generation_inference": ("1.4.0", "2.0.4", "2.2.0", "3.0.1"),
    "sglang": ("0.3.6", "0.4.1", "0.4.6.post1", "0.5.2"),
    "deepspeed": ("0.12.6",),
    "lightllm": ("2.0.0", "2.1.0"),
    "tensorrt_llm": ("0.8.0", "0.10.0", "0.12.0"),
}
_TEAMS: tuple[str, ...] = (
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
_CHAT_TEMPLATES: tuple[str, ...] = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}</s>\n"
    "{% endfor %}<|assistant|>\n",
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}[INST] {{ m['content'] }} "
    "[/INST]{% else %}{{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}",
    "{% for m in messages %}{{'<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>' + "
    "'\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
)
_USER_UTILIZATIONS: tuple[Decimal, ...] = tuple(
    Decimal(v) for v in ("0.8", "0.85", "0.88", "0.92", "0.95", "0.97")
)
# Args that callers set explicitly and that the parse-back of a legacy command
# recovers (first-class fields such as tensor parallelism are not args).
_EXPLICITABLE = (
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


_Weighted = tuple[tuple[Any, float], ...]
# Cumulative weights per weight table, keyed by identity: every table passed to
# _pick is a module-level constant (or cached), and hashing its contents on every
# draw would cost more than the draw.
_CUMULATIVE: dict[int, tuple[_Weighted, list[Any], list[float]]] = {}


def _pick(rng: random.Random, weighted: _Weighted) -> Any:
    """The same draw as rng.choices(weights=...), without rebuilding the lists each time."""
    entry = _CUMULATIVE.get(id(weighted))
    if entry is None or entry[0] is not weighted:
        keys = [k for k, _ in weighted]
        entry = (weighted, keys, list(itertools.accumulate(w for _, w in weighted)))
        _CUMULATIVE[id(weighted)] = entry
    return rng.choices(entry[1], cum_weights=entry[2])[0]


class _Ids:
    """Unique xid-shaped ids for one fleet: a random machine part, then a counter."""

    def __init__(self, rng: random.Random) -> None:
        self.machine = rng.getrandbits(40)
        self.counter = rng.getrandbits(24)

    def next(self, prefix: str, at: datetime) -> str:
        self.counter += 1
        return prefix + xid(at, self.machine, self.counter)


def _random_datetime(rng: random.Random, start: date, end: date) -> datetime:
    days = max(0, (end - start).days)
    day = start + timedelta(days=rng.randint(0, days))
    seconds = rng.randint(0, 86399)
    return datetime.combine(day, time(0, 0), tzinfo=UTC) + timedelta(seconds=seconds)


def _window_for(generation: str, released: date) -> tuple[date, date] | None:
    start, end = GENERATION_WINDOWS[generation]
    start = max(start, released)
    return (start, end) if start <= end else None


@functools.cache
def _models_for(generation: str) -> tuple[tuple[_Model, float], ...]:
    """Models a vLLM endpoint of this generation can run, with their weights."""
    if generation == "B":
        return tuple((m, m.weight) for m in _MODELS if _is_llama3_70b(m.name))
    end = GENERATION_WINDOWS[generation][1]
    return tuple((m, m.weight) for m in _MODELS if m.released <= end)


@functools.cache
def _models_released_by(generation: str) -> tuple[tuple[_Model, float], ...]:
    end = GENERATION_WINDOWS[generation][1]
    return tuple((m, m.weight) for m in _MODELS if m.released <= end)


def _num_shards(rng: random.Random, size: int | None) -> int:
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


def _checkpoint(rng: random.Random, model: str, owner: str, storage: str) -> str:
    fine_tuned = rng.random() < 0.25
    suffix = f"fine_tuned_weights/{owner}/{model}-ft-{rng.getrandbits(24):06x}"
    if storage == "azure":
        base = "https://scalellmweights.blob.core.windows.net/models"
    elif storage == "gcs":
        base = "gs://scale-llm-weights"
    else:
        base = "s3://scale-ml-models"
    return f"{base}/{suffix}" if fine_tuned else f"{base}/hf-llm/{model}"


def _server_args(rng: random.Random, gen: str, model: str, size: int | None) -> dict[str, Any]:
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


def _json_number(value: Decimal) -> float:
    return float(value)


def _random_vllm_version(
    rng: random.Random,
    *,
    gen: str,
    model: _Model,
    base: dict[str, Any],
    bundle_id: str,
    at: datetime,
    forced_provenance: str | None,
) -> dict[str, Any]:
    """Fields of one bundle version of a vLLM endpoint; provenance per the generation's rules."""
    size = param_count_b(model.name)
    server_args = _server_args(rng, gen, model.name, size)
    default_util = default_gpu_memory_utilization(model.name)
    util: Decimal | None
    if gen == "A":
        util = None
    elif gen == "B":
        util = LARGE_MODEL_UTILIZATION if _is_llama3_70b(model.name) else None
    elif gen == "C":
        util = default_util
    else:
        util = default_util if rng.random() < 0.9 else rng.choice(_USER_UTILIZATIONS)

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
        if gave_args:
            chosen = [k for k in _EXPLICITABLE if k in server_args and rng.random() < 0.6]
            if not chosen and "max_model_len" not in server_args:
                server_args["max_model_len"] = rng.choice((4096, 8192, 32768))
                chosen = ["max_model_len"]
            args = {k: server_args[k] for k in chosen}
            if rng.random() < 0.15:
                util = rng.choice(_USER_UTILIZATIONS)
                args["gpu_memory_utilization"] = _json_number(util)
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
                args["gpu_memory_utilization"] = _json_number(util)
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
        "framework_image_tag": rng.choice(_IMAGE_TAGS[gen]),
        "gpu_memory_utilization": util,
        "vllm_additional_args": args,
        "server_args": tuple(server_args.items()),
        "chat_template": (
            rng.choice(_CHAT_TEMPLATES) if gen >= "C" and rng.random() < 0.08 else None
        ),
        "module": (
            "vllm_startup_wrapper"
            if gen >= "F" and at.date() >= _STARTUP_WRAPPER_FROM and rng.random() < 0.35
            else "vllm_server"
        ),
        "model_cache_enabled": gen >= "G" and rng.random() < 0.5,
    }


def _recorded_from(
    rng: random.Random, legacy: dict[str, Any], gen: str, bundle_id: str, at: datetime
) -> dict[str, Any]:
    """Force-recreation of a legacy endpoint: args parsed back from its old command."""
    parsed: dict[str, Any] = {k: v for k, v in legacy["server_args"] if k not in _CORE_ARGS}
    parsed["gpu_memory_utilization"] = _json_number(legacy["gpu_memory_utilization"])
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
        "framework_image_tag": rng.choice(_IMAGE_TAGS[gen]),
        "vllm_additional_args": parsed,
        "server_args": server_args,
        "module": "vllm_startup_wrapper" if rng.random() < 0.35 else "vllm_server",
        "model_cache_enabled": rng.random() < 0.5,
    }


def _older_generations(current: str, model: _Model, multinode: bool) -> list[str]:
    return [
        g
        for g in GENERATIONS
        if g <= current
        and (g != "B" or _is_llama3_70b(model.name))
        and (g >= "C" or not multinode)  # LeaderWorkerSet support came with C
        and _window_for(g, model.released) is not None
    ]


def _legacy_provenance(fields: dict[str, Any]) -> str:
    """Provenance of a past bundle whose caller gave no args (the builder's rule alone)."""
    if fields["generation"] == "H":
        util = fields["gpu_memory_utilization"]
        return "injected" if util is not None and util >= EAGER_THRESHOLD else "none"
    return "injected"


# (current bundle fields, superseded bundle fields oldest first)
_Versions = tuple[dict[str, Any], list[dict[str, Any]]]


def _random_vllm_endpoint(
    rng: random.Random,
    ids: _Ids,
    base: dict[str, Any],
    schema_version: str,
    generation: str | None = None,
    model_name: str | None = None,
    provenance: str | None = None,
) -> _Versions:
    gen = generation or _pick(rng, _GENERATION_WEIGHTS)
    if model_name is not None:
        model = next((m for m in _MODELS if m.name == model_name), None) or _Model(
            model_name, date(2023, 1, 1), 1
        )
    else:
        model = _pick(rng, _models_for(gen))
    window = _window_for(gen, model.released) or GENERATION_WINDOWS[gen]
    at = _random_datetime(rng, *window)
    size = param_count_b(model.name)
    nodes = 1
    if (
        schema_version == "2026"
        and gen >= "C"
        and (size is None or size >= 200)
        and rng.random() < 0.4
    ):
        nodes = 2
    base = dict(base)
    base["num_shards"] = _num_shards(rng, size)
    base["nodes_per_worker"] = nodes
    base["quantize"] = "awq" if size is not None and size >= 7 and rng.random() < 0.06 else None
    base["checkpoint_path"] = _checkpoint(rng, model.name, base["owner"], base["storage"])
    if nodes > 1:
        base["flavor"] = STREAMING_FLAVOR
        base["endpoint_type"] = "streaming"

    recorded = provenance == "recorded" or (
        provenance is None and gen in ("G", "H") and rng.random() < 0.10
    )
    if recorded:
        old_gens = [g for g in ("C", "D", "E", "F") if _window_for(g, model.released)]
        if not old_gens and _is_llama3_70b(model.name):
            old_gens = ["B"]
        if old_gens:
            old_gen = rng.choice(old_gens)
            old_window = _window_for(old_gen, model.released)
            assert old_window is not None
            old_at = _random_datetime(rng, *old_window)
            legacy = _random_vllm_version(
                rng,
                gen=old_gen,
                model=model,
                base=base,
                bundle_id=ids.next("bun_", old_at),
                at=old_at,
                forced_provenance="injected",
            )
            return _recorded_from(rng, legacy, gen, ids.next("bun_", at), at), [legacy]
        if provenance == "recorded":
            raise ValueError(f"{model.name} has no legacy generation to be recorded from")

    current = _random_vllm_version(
        rng,
        gen=gen,
        model=model,
        base=base,
        bundle_id=ids.next("bun_", at),
        at=at,
        forced_provenance=provenance,
    )
    superseded: list[dict[str, Any]] = []
    if rng.random() < 0.2:
        older = _older_generations(gen, model, nodes > 1)
        for _ in range(rng.choice((1, 1, 2))):
            old_gen = rng.choice(older)
            old_window = _window_for(old_gen, model.released)
            assert old_window is not None
            old_at = _random_datetime(rng, old_window[0], min(old_window[1], at.date()))
            if old_at >= at:
                continue
            old = _random_vllm_version(
                rng,
                gen=old_gen,
                model=model,
                base=base,
                bundle_id=ids.next("bun_", old_at),
                at=old_at,
                forced_provenance=None,
            )
            if old["vllm_additional_args"] is not None:
                # Only the current bundle's args live on in the endpoint's metadata.
                old["vllm_additional_args"] = None
                old["provenance"] = _legacy_provenance(old)
            superseded.append(old)
        superseded.sort(key=lambda f: f["bundle_created_at"])
        if superseded:
            current["created_at"] = superseded[0]["bundle_created_at"]
    return current, superseded


def _random_other_llm(rng: random.Random, ids: _Ids, base: dict[str, Any]) -> _Versions:
    framework = _pick(rng, _OTHER_FRAMEWORK_WEIGHTS)
    gens = next(g for f, g, _ in _OTHER_FRAMEWORKS if f == framework)
    gen = rng.choice(gens)
    # Generation only dates these: other frameworks never had vLLM's B special case.
    model = _pick(rng, _models_released_by(gen))
    window = _window_for(gen, model.released) or GENERATION_WINDOWS[gen]
    at = _random_datetime(rng, *window)
    fields = {
        **base,
        "num_shards": _num_shards(rng, param_count_b(model.name)),
        "checkpoint_path": _checkpoint(rng, model.name, base["owner"], base["storage"]),
        "bundle_id": ids.next("bun_", at),
        "generation": gen,
        "provenance": "none",
        "created_at": at,
        "bundle_created_at": at,
        "last_updated_at": at,
        "model_name": model.name,
        "framework": framework,
        "framework_image_tag": rng.choice(_OTHER_IMAGE_TAGS[framework]),
        "model_cache_enabled": gen >= "G" and rng.random() < 0.3,
    }
    return fields, []


# Commands of endpoints that are not model engine LLM endpoints. The first one is
# a trap: a hand-rolled vLLM image with --enforce-eager, which must be left alone.
_CUSTOM_COMMANDS: tuple[tuple[str, ...], ...] = (
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
_TRITON_COMMAND = (
    "/bin/bash",
    "-c",
    "python -m triton_forwarder --http-port 5005 --grpc-port 8001",
)


_NON_LLM_FLAVOR_WEIGHTS: tuple[tuple[str, float], ...] = (
    ("runnable_image", 40),
    (STREAMING_FLAVOR, 5),
    ("triton_enhanced_runnable_image", 10),
    ("cloudpickle_artifact", 30),
    ("zip_artifact", 15),
)
_STORAGE_WEIGHTS: tuple[tuple[str, float], ...] = (("s3", 75), ("azure", 15), ("gcs", 10))


def _random_non_llm(rng: random.Random, ids: _Ids, base: dict[str, Any]) -> _Versions:
    flavor = _pick(rng, _NON_LLM_FLAVOR_WEIGHTS)
    gen = rng.choice(GENERATIONS)
    at = _random_datetime(rng, *GENERATION_WINDOWS[gen])
    command: tuple[str, ...] | None = None
    provenance = "none"
    if flavor == "triton_enhanced_runnable_image":
        command = _TRITON_COMMAND
    elif flavor in ("runnable_image", STREAMING_FLAVOR):
        command = rng.choice(_CUSTOM_COMMANDS)
        if "--enforce-eager" in command[-1]:
            provenance = "hand-added"
    fields = {
        **base,
        "flavor": flavor,
        "bundle_id": ids.next("bun_", at),
        "generation": gen,
        "provenance": provenance,
        "created_at": at,
        "bundle_created_at": at,
        "last_updated_at": at,
        "custom_command": command,
    }
    if flavor != STREAMING_FLAVOR:
        fields["endpoint_type"] = rng.choice(("sync", "async"))
    return fields, []


def _base_fields(rng: random.Random, owners: list[str]) -> dict[str, Any]:
    owner = rng.choice(owners)
    flavor = STREAMING_FLAVOR if rng.random() < 0.75 else "runnable_image"
    if flavor == STREAMING_FLAVOR:
        endpoint_type = "streaming" if rng.random() < 0.7 else "sync"
    else:
        endpoint_type = "sync" if rng.random() < 0.7 else "async"
    extra: tuple[tuple[str, Any], ...] = ()
    if rng.random() < 0.3:
        extra = (("team", rng.choice(_TEAMS)),)
    return {
        "owner": owner,
        "created_by": owner if rng.random() < 0.95 else rng.choice(owners),
        "status": _pick(rng, _STATUS_WEIGHTS),
        "endpoint_type": endpoint_type,
        "flavor": flavor,
        "storage": _pick(rng, _STORAGE_WEIGHTS),
        "metadata_extra": extra,
    }


def _endpoint_name(rng: random.Random, stem: str, index: int, schema_version: str) -> str:
    # The zero-padded index keeps names unique across any fleet size: no stem ends
    # in -NNNNN. 2024 databases name the bundle after the endpoint in varchar(50).
    suffix = f"-{index:05d}"
    prefix = f"{rng.choice(_TEAMS)}-" if rng.random() < 0.4 else ""
    name = f"{prefix}{stem}"
    if schema_version == "2026" and rng.random() < 0.03:
        name += "-production-canary-eu"  # a few long names, fine in text columns
    limit = 50 if schema_version == "2024" else 63
    return name[: limit - len(suffix)].rstrip("-.") + suffix


def _finish(
    versions: _Versions, rng: random.Random, ids: _Ids, index: int, schema_version: str
) -> EndpointSpec:
    """Name and id the endpoint, then build its specs (each validated once)."""
    current, superseded = versions
    stem = current.get("model_name") or (
        rng.choice(("embedder", "classifier", "reranker", "ocr", "asr")) + "-svc"
    )
    name = _endpoint_name(rng, stem, index, schema_version)
    created_at = superseded[0]["bundle_created_at"] if superseded else current["created_at"]
    endpoint_id = ids.next("end_", created_at)
    common = {"endpoint_id": endpoint_id, "name": name, "created_at": created_at}
    old = tuple(EndpointSpec(**{**f, **common}) for f in superseded)
    streaming_differs = (
        current.get("framework") == "vllm"
        and current["flavor"] == STREAMING_FLAVOR
        and rng.random() < 0.02
    )
    return EndpointSpec(
        **{
            **current,
            **common,
            "last_updated_at": current["bundle_created_at"]
            + timedelta(seconds=rng.randint(5, 600)),
            "streaming_differs": streaming_differs,
            "superseded": old,
        }
    )


_OWNER_POOL_SIZE = 300


def _owner_pool(seed: int) -> list[str]:
    # Separate stream: the pool must not depend on n, so a fleet of n is a prefix of
    # a larger fleet with the same seed.
    pool_rng = random.Random(f"owners-{seed}")
    return [pool_rng.getrandbits(96).to_bytes(12, "big").hex() for _ in range(_OWNER_POOL_SIZE)]


def random_fleet(n: int, seed: int, schema_version: str = "2026") -> Iterator[EndpointSpec]:
    """``n`` endpoints, deterministic for ``seed``; streamed, so memory stays flat.

    About 85 % vLLM endpoints (generations weighted as a late-2026 fleet),
    10 % other LLM frameworks, 5 % non-LLM endpoints. Multinode leaders only with
    ``schema_version="2026"`` (the 2024 tables have no worker command column).
    A fleet of n is the first n endpoints of any larger fleet with the same seed.
    """
    if schema_version not in SCHEMA_VERSIONS:
        raise ValueError(f"schema_version must be one of {SCHEMA_VERSIONS}")
    if n < 0:
        raise ValueError("n must be >= 0")
    rng = random.Random(seed)
    ids = _Ids(rng)
    owners = _owner_pool(seed)
    for index in range(n):
        roll = rng.random()
        base = _base_fields(rng, owners)
        if roll < 0.05:
            versions = _random_non_llm(rng, ids, base)
        elif roll < 0.15:
            versions = _random_other_llm(rng, ids, base)
        else:
            versions = _random_vllm_endpoint(rng, ids, base, schema_version)
        yield _finish(versions, rng, ids, index, schema_version)


def make_spec(
    generation: str,
    *,
    provenance: str | None = None,
    model_name: str = "llama-3-1-8b-instruct",
    framework: str = "vllm",
    seed: int = 0,
    schema_version: str = "2026",
    index: int = 0,
    **overrides: Any,
) -> EndpointSpec:
    """One endpoint of a chosen generation, for hand-written tests.

    Random details come from ``seed``. ``provenance`` is forced when given; for H,
    "injected"/"none" move the utilization to the matching side of 0.95 and
    "explicit-false" becomes "none" (H honours it). ``overrides`` are applied last
    and validated.
    """
    if generation not in GENERATIONS:
        raise ValueError(f"generation must be one of {GENERATIONS}")
    rng = random.Random(f"make_spec-{seed}-{generation}-{provenance}-{model_name}-{framework}")
    ids = _Ids(rng)
    base = _base_fields(rng, _owner_pool(seed))
    if framework == "vllm":
        versions = _random_vllm_endpoint(
            rng,
            ids,
            base,
            schema_version,
            generation=generation,
            model_name=model_name,
            provenance=provenance,
        )
    else:
        at = _random_datetime(rng, *GENERATION_WINDOWS[generation])
        fields = {
            **base,
            "checkpoint_path": f"s3://scale-ml-models/hf-llm/{model_name}",
            "bundle_id": ids.next("bun_", at),
            "generation": generation,
            "provenance": "none",
            "created_at": at,
            "bundle_created_at": at,
            "last_updated_at": at,
            "model_name": model_name,
            "framework": framework,
            "framework_image_tag": _OTHER_IMAGE_TAGS.get(framework, ("latest",))[0],
        }
        versions = (fields, [])
    spec = _finish(versions, rng, ids, index, schema_version)
    return replace(spec, **overrides) if overrides else spec


def creation_task_id(spec: EndpointSpec) -> str:
    """A stable celery-style task id for the endpoint (seeding needs one per row)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, spec.endpoint_id))

"""What a synthetic endpoint is, and what the new policy means for it.

The vocabulary (generations, provenances, flavors, statuses), model engine's
default utilization, and :class:`EndpointSpec` with its consistency rules and
expected action. Pure data and rules: rendering lives in
:mod:`migrate.sandbox.synth.commands`, random generation in :mod:`migrate.sandbox.synth.fleet`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from migrate.core import modelsize

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
LARGE_MODEL_PARAMS_B = modelsize.LARGE_MODEL_B

# Inclusive bundle creation windows. A runs until C because only llama-3-70b
# changed shape in May 2024 (that is B); every other endpoint kept A's shape.
GENERATION_WINDOWS: dict[str, tuple[date, date]] = {
    "A": (date(2023, 8, 1), date(2024, 9, 4)),
    "B": (date(2024, 5, 10), date(2024, 9, 4)),
    "C": (date(2024, 9, 5), date(2024, 10, 14)),
    "D": (date(2024, 10, 15), date(2024, 10, 15)),
    "E": (date(2024, 10, 16), date(2025, 9, 14)),
    "F": (date(2025, 9, 15), date(2026, 5, 6)),
    "G": (date(2026, 5, 7), date(2026, 6, 14)),
    "H": (date(2026, 6, 15), date(2026, 11, 15)),
}
MODEL_CACHE_ROOT = "/mnt/model-cache"
# The day model engine began storing the caller's vllm_additional_args: G starts here.
ARGS_STORED_FROM = GENERATION_WINDOWS["G"][0]

# Arguments that come from first-class endpoint fields, not from the args dict.
CORE_ARGS = frozenset(
    {"tensor_parallel_size", "pipeline_parallel_size", "quantization", "chat_template"}
)

# Total parameters as the scan estimates them (name, catalogue, checkpoint path).
param_count_b = modelsize.param_count_b


def default_gpu_memory_utilization(model_name: str | None) -> Decimal:
    """Model engine's inferred default, from its own reading of the name (facts, section 4).

    A name it cannot size is not >= 70 to it, so it gets 0.9: a 671B deepseek-v3
    or a 235B qwen3-235b-a22b ran at 0.9 because of that.
    """
    return modelsize.default_utilization(modelsize.model_engine_param_count_b(model_name))


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
        """Total parameters, read as the scan reads them (the checkpoint path included)."""
        return param_count_b(self.model_name, self.checkpoint_path)

    @property
    def weights_folder(self) -> str:
        return weights_folder_of(self)

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
        is_70b = is_llama3_70b(spec.model_name)
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


def is_llama3_70b(model_name: str | None) -> bool:
    return bool(model_name) and model_name.startswith("llama-3-70b")


def weights_folder_of(spec: EndpointSpec) -> str:
    model = spec.model_name or ""
    if "C" <= spec.generation <= "F" and "mistral" in model:
        folder = "mistral_files"
    else:
        folder = "model_files"
    if spec.generation >= "G" and spec.model_cache_enabled:
        return f"{MODEL_CACHE_ROOT}/{folder}"
    return folder

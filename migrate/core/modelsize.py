"""Model size: the best estimate of total parameters, and model engine's own reading.

Two numbers, for two different questions:

* **Total parameters** (`estimate().total_b`, `param_count_b`): what the GPUs
  hold, so what decides the out-of-memory risk of losing eager. Mixture-of-experts
  names give their total (`qwen3-235b-a22b` is 235B, not 22B), well-known
  models whose names carry no size or a misleading one come from a catalogue,
  and when the model name says nothing the checkpoint path's names are read.
  Every large-model flag and the risk-ordered staging use this.
* **Model engine's reading** (`model_engine_param_count_b`): its own rule, the
  last `<n>b` in the name with a few special cases. It is right for one purpose
  only: model engine picked the default `gpu_memory_utilization` from it (0.95
  at >= 70B), so it explains a stored utilization, nothing more.

Sizes are whole billions (the JSON contract's integer), rounded half up, at
least 1.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from urllib.parse import urlsplit

LARGE_MODEL_B = 70

# --- model engine's rule, exactly ------------------------------------------------------
# get_model_param_count_b in model engine's llm_model_endpoint_use_cases.py: these
# substrings in this order, else the last digits directly followed by "b",
# case-sensitive, on the model name as the caller gave it. No match raises there,
# and its default utilization then stays 0.9.
_MODEL_ENGINE_SPECIAL_CASES: tuple[tuple[str, int], ...] = (
    ("mixtral-8x7b", 47),
    ("mixtral-8x22b", 140),
    ("phi-3-mini", 4),
    ("phi-3-small", 8),
    ("phi-3-medium", 15),
    ("deepseek-coder-v2-lite", 16),
    ("deepseek-coder-v2", 237),
)
_MODEL_ENGINE_NUMBER_B = re.compile(r"(\d+)b")


def model_engine_param_count_b(model_name: str | None) -> int | None:
    """Billions of parameters as model engine reads the name; None where it cannot."""
    if not model_name:
        return None
    for marker, size in _MODEL_ENGINE_SPECIAL_CASES:
        if marker in model_name:
            return size
    numbers = _MODEL_ENGINE_NUMBER_B.findall(model_name)
    return int(numbers[-1]) if numbers else None


def default_utilization(model_engine_size: int | None) -> Decimal:
    """Model engine's inferred default gpu_memory_utilization, from its own size reading."""
    if model_engine_size is not None and model_engine_size >= LARGE_MODEL_B:
        return Decimal("0.95")
    return Decimal("0.9")


# --- the catalogue -------------------------------------------------------------------
# Well-known models whose names carry no size or a misleading one, as total
# parameters in billions from each model's own card on Hugging Face (the
# organisation/repository is named). Patterns run on the normalised name:
# lowercase, "_" and spaces read as "-", dots kept ("3.5" and "3-5" both occur).


@dataclass(frozen=True)
class _Known:
    pattern: re.Pattern[str]
    total_b: int
    source: str


def _known(pattern: str, total_b: int, source: str) -> _Known:
    return _Known(re.compile(pattern), total_b, source)


# The size in these names is not the total: checked before any number is read.
_MISLEADING: tuple[_Known, ...] = (
    # meta-llama/Llama-4-Scout-17B-16E-Instruct: 17B active, 109B total, 16 experts.
    _known(r"scout-17b-16e|llama-?4-scout", 109, "Llama 4 Scout: 17B active, 109B total"),
    # meta-llama/Llama-4-Maverick-17B-128E-Instruct: 17B active, 400B total.
    _known(r"maverick-17b-128e|llama-?4-maverick", 400, "Llama 4 Maverick: 17B active, 400B total"),
    # mistralai/Mixtral-8x7B-v0.1 (46.7B) and Mixtral-8x22B-v0.1 (141B); model
    # engine's own figures (47, 140) are kept so the two readings agree. Any
    # 8x7b/8x22b grid is a Mixtral derivative (WizardLM-2-8x22B, Nous-Hermes-2-Mixtral).
    _known(r"(?<![0-9])8x7b(?![a-z0-9])", 47, "Mixtral 8x7B grid: 47B total, 13B active"),
    _known(r"(?<![0-9])8x22b(?![a-z0-9])", 140, "Mixtral 8x22B grid: 140B total, 39B active"),
)

# Names without any size: checked only when the name carries no total size.
_UNSIZED: tuple[_Known, ...] = (
    # deepseek-ai/DeepSeek-V3 (and -0324, V3.1, V3.2): 671B total, 37B activated.
    _known(r"deepseek-v3", 671, "DeepSeek-V3: 671B total, 37B active"),
    # deepseek-ai/DeepSeek-R1: 671B total, 37B activated. Its distills carry their
    # own size (deepseek-r1-distill-llama-70b) and are read from it.
    _known(r"deepseek-r1(?!-distill)", 671, "DeepSeek-R1: 671B total, 37B active"),
    # deepseek-ai/DeepSeek-Coder-V2-Lite-Instruct 16B, DeepSeek-Coder-V2-Instruct 236B;
    # model engine's figures (16, 237).
    _known(r"deepseek-coder-v2-lite", 16, "DeepSeek-Coder-V2-Lite: 16B total"),
    _known(r"deepseek-coder-v2", 237, "DeepSeek-Coder-V2: 237B total, 21B active"),
    # deepseek-ai/DeepSeek-V2-Lite: 15.7B total; DeepSeek-V2 and V2.5: 236B total.
    _known(r"deepseek-v2-lite", 16, "DeepSeek-V2-Lite: 16B total"),
    _known(r"deepseek-v2", 236, "DeepSeek-V2: 236B total, 21B active"),
    # moonshotai/Kimi-K2-Instruct: 1 trillion total, 32B activated.
    _known(r"kimi-k2", 1000, "Kimi K2: 1T total, 32B active"),
    # databricks/dbrx-instruct: 132B total, 36B active.
    _known(r"dbrx", 132, "DBRX: 132B total, 36B active"),
    # zai-org/GLM-4.5-Air: 106B total, 12B active; GLM-4.5 and GLM-4.6: 355B total.
    _known(r"glm-4[.-][56]-air", 106, "GLM-4.5-Air: 106B total, 12B active"),
    _known(r"glm-4[.-][56](?![a-z0-9])", 355, "GLM-4.5: 355B total, 32B active"),
    # MiniMaxAI/MiniMax-M2: 230B total, 10B active.
    _known(r"minimax-m2", 230, "MiniMax-M2: 230B total, 10B active"),
    # ai21labs/AI21-Jamba-1.5-Large: 398B total; Jamba-1.5-Mini: 52B total.
    _known(r"jamba-1[.-]5-large", 398, "Jamba 1.5 Large: 398B total, 94B active"),
    _known(r"jamba-1[.-]5-mini", 52, "Jamba 1.5 Mini: 52B total, 12B active"),
    # mistralai/Mistral-Large-Instruct-2407 and -2411 (Mistral Large 2): 123B. Not
    # any "mistral-large": Mistral Large 3 is a 675B mixture of experts.
    _known(
        r"mistral-large(?:-instruct)?-(?:2407|2411)|mistral-large-2(?![0-9])",
        123,
        "Mistral Large 2: 123B",
    ),
    # mistralai/Mistral-Nemo-Instruct-2407: 12B; Mistral-Small-Instruct-2409: 22B.
    _known(r"mistral-nemo", 12, "Mistral NeMo: 12B"),
    _known(r"mistral-small-instruct-2409", 22, "Mistral Small 2409: 22B"),
    # CohereForAI/c4ai-command-r-plus: 104B; CohereLabs/c4ai-command-a-03-2025: 111B.
    _known(r"command-r-plus", 104, "Command R+: 104B"),
    _known(r"command-a(?![a-z0-9])", 111, "Command A: 111B"),
    # microsoft/Phi-3.5-MoE-instruct: 16x3.8B experts, 42B total, 6.6B active.
    _known(r"phi-3[.-]5-moe", 42, "Phi-3.5-MoE: 42B total, 6.6B active"),
    # microsoft/Phi-3-mini/-small/-medium, model engine's figures (3.8B, 7B, 14B on
    # the cards); Phi-3.5-mini and Phi-4-mini 3.8B; phi-4 14B.
    _known(r"phi-3[.-]?5?-mini|phi-4-mini", 4, "Phi-3/3.5/4 mini: 3.8B"),
    _known(r"phi-3-small", 8, "Phi-3-small: 7B"),
    _known(r"phi-3-medium", 15, "Phi-3-medium: 14B"),
    _known(r"phi-4(?![a-z0-9-])|phi-4-(?:reasoning|instruct)", 14, "Phi-4: 14B"),
)

# A size token stands alone in the name: "72b" in "qwen2.5-72b", not the "5b" of
# "0.5b", the "7b" of "8x7b", the "22b" of an active "-a22b" or the "4b" of "4bit".
_NUMBER = r"(\d+(?:\.\d+)?)"
_TOTAL = re.compile(rf"(?<![a-z0-9.]){_NUMBER}b(?![a-z0-9])")
_GRID = re.compile(rf"(?<![a-z0-9.])(\d+)x{_NUMBER}b(?![a-z0-9])")
# "<n>b-<e>e" (Llama 4 style): the <n>b is the active share; the total is unknown.
_EXPERT_COUNT = re.compile(r"-\d+e(?![a-z0-9])")
# No model is this large; a bigger "number" is an id (a fine-tune's hex suffix).
_MAX_PLAUSIBLE_B = 5000


@dataclass(frozen=True)
class SizeEstimate:
    """Both readings of one endpoint's model, and how the total was found."""

    total_b: int | None
    model_engine_b: int | None
    basis: str

    @property
    def disagrees(self) -> bool:
        """The two readings differ (one of them unknown counts as differing)."""
        return self.total_b != self.model_engine_b


def _billions(text: str) -> int:
    value = Decimal(text).to_integral_value(rounding=ROUND_HALF_UP)
    return max(1, int(value))


def _normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(" ", "-")


def _is_total(name: str, match: re.Match[str]) -> bool:
    number = match.group(1)
    if number[0] == "0" and not number.startswith("0."):
        return False  # "07b" is part of an id, not a size
    if Decimal(number) > _MAX_PLAUSIBLE_B:
        return False
    # An expert count after it marks the number as the active share.
    return not _EXPERT_COUNT.match(name, match.end())


# A fleet has few distinct model names: read each once (bounded, so a fleet of
# unique checkpoint folders cannot grow it).
@functools.lru_cache(maxsize=4096)
def _from_name(name: str) -> tuple[int, str] | None:
    """Total size and how one name gives it, or None when the name says nothing."""
    name = _normalise(name)
    if not name:
        return None
    for known in _MISLEADING:
        if known.pattern.search(name):
            return known.total_b, f"the catalogue ({known.source})"
    totals = [m for m in _TOTAL.finditer(name) if _is_total(name, m)]
    if totals:
        return _billions(totals[-1].group(1)), "its size"
    for known in _UNSIZED:
        if known.pattern.search(name):
            return known.total_b, f"the catalogue ({known.source})"
    grids = list(_GRID.finditer(name))
    if grids:
        experts, each = grids[-1].group(1), grids[-1].group(2)
        # Experts share attention and embeddings, so e x n overstates the total:
        # the safe side for out-of-memory risk.
        return _billions(
            str(int(experts) * Decimal(each))
        ), f"its expert grid {experts}x{each}b, an upper bound"
    return None


def _path_names(checkpoint_path: str) -> list[str]:
    """The path's components, innermost first: the repository name is usually last."""
    parts = urlsplit(checkpoint_path.strip())
    path = parts.path if parts.scheme else checkpoint_path
    return [p for p in reversed(path.split("/")) if p]


# Endpoints of one model share its name and often its checkpoint path: an estimate
# (immutable) is made once for each pair among the last ones asked for.
@functools.lru_cache(maxsize=4096)
def estimate(model_name: str | None, checkpoint_path: str | None = None) -> SizeEstimate:
    """Total parameters (best estimate) and model engine's reading of the same name."""
    engine = model_engine_param_count_b(model_name)
    found = _from_name(model_name) if model_name else None
    if found is not None:
        return SizeEstimate(found[0], engine, f"model name {model_name!r}, {found[1]}")
    for part in _path_names(checkpoint_path) if checkpoint_path else []:
        found = _from_name(part)
        if found is not None:
            return SizeEstimate(found[0], engine, f"checkpoint path's {part!r}, {found[1]}")
    return SizeEstimate(None, engine, "neither the model name nor the checkpoint path says")


def param_count_b(model_name: str | None, checkpoint_path: str | None = None) -> int | None:
    """Best estimate of total parameters in billions, or None when nothing says."""
    return estimate(model_name, checkpoint_path).total_b


def is_large_or_unknown(size: int | None) -> bool:
    """Unknown sizes are treated as possibly large: the safe side for OOM risk."""
    return size is None or size >= LARGE_MODEL_B

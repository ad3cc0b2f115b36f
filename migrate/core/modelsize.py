"""Model size as model engine infers it from the model name.

The migration must agree with model engine about which models are "large",
because model engine picks the default utilization (0.95 for >= 70B) from the
same inference; so this follows its rule rather than a better one.
"""

from __future__ import annotations

import re
from decimal import Decimal

LARGE_MODEL_B = 70

# Checked in order: the more specific names first, because they contain the
# shorter ones ("deepseek-coder-v2-lite" contains "deepseek-coder-v2").
_SPECIAL_CASES: tuple[tuple[str, int], ...] = (
    ("mixtral-8x7b", 47),
    ("mixtral-8x22b", 140),
    ("phi-3-mini", 4),
    ("phi-3-small", 8),
    ("phi-3-medium", 15),
    ("deepseek-coder-v2-lite", 16),
    ("deepseek-coder-v2", 237),
)

_NUMBER_B = re.compile(r"(\d+)b")


def param_count_b(model_name: str | None) -> int | None:
    """Billions of parameters, or None when the name does not say."""
    if not model_name:
        return None
    name = model_name.lower()
    for marker, size in _SPECIAL_CASES:
        if marker in name:
            return size
    matches = _NUMBER_B.findall(name)
    if not matches:
        return None
    return int(matches[-1])


def is_large_or_unknown(size: int | None) -> bool:
    """Unknown sizes are treated as possibly large: the safe side for OOM risk."""
    return size is None or size >= LARGE_MODEL_B


def default_utilization(size: int | None) -> Decimal:
    """Model engine's inferred default gpu_memory_utilization."""
    return Decimal("0.95") if size is not None and size >= LARGE_MODEL_B else Decimal("0.9")

"""The flags a decision carries, and which of them mean risk.

A flag names one fact a reviewer should see beside the action (see the
README's list). These groupings decide where a flagged endpoint is shown and
staged: the risk flags in every report's risk section, the last-stage ones in
a final stage of their own, after every regular endpoint.
"""

from __future__ import annotations

from collections.abc import Iterable

RISK_FLAGS = (
    "large-model-at-0.95",
    "large-model-loses-eager",
    "unknown-size-loses-eager",
    "explicit-false-overridden",
    "multinode",
    "not-ready",
    "streaming-command-differs",
    "recorded-eager",
    "args-command-mismatch",
    "unparseable-command",
    "indirect-arguments",
)

# Each is a reason a human should watch the endpoint come back up.
LAST_STAGE_FLAGS = frozenset(
    {
        "explicit-false-overridden",
        "multinode",
        "not-ready",
        "streaming-command-differs",
        "args-command-mismatch",
    }
)
LAST_STAGE_PREFIXES = ("large-model-", "unknown-size-")


def goes_last_by_flags(flags: Iterable[str]) -> bool:
    return any(f in LAST_STAGE_FLAGS or f.startswith(LAST_STAGE_PREFIXES) for f in flags)

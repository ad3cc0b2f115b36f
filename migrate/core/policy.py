"""The old and new `--enforce-eager` rules, and where a stored flag came from.

Pure functions over plain values: what a bundle builder would do, and the
evidence for who put a flag into a stored command.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

DEFAULT_THRESHOLD = Decimal("0.95")

# model engine started recording `vllm_additional_args` in May 2026; an endpoint
# created before then that has the dict got it from a recreation, not a caller.
ARGS_RECORDED_SINCE = datetime(2026, 5, 1, tzinfo=UTC)

# Provenance of the flag (or of its absence) in a stored command.
EXPLICIT_TRUE = "explicit-true"  # the caller asked for eager
EXPLICIT_FALSE = "explicit-false"  # the caller asked for no eager
HAND_ADDED = "hand-added"  # flag without utilization: the old rule never did that
RECORDED = "recorded"  # enforce_eager: true parsed back by a legacy recreation
INJECTED = "injected"  # flag put there by the old rule
ABSENT = "absent"  # no flag, and no caller preference

RECORDED_KEEP = "keep"
RECORDED_DROP = "drop"


@dataclass(frozen=True)
class PolicyParams:
    threshold: Decimal = DEFAULT_THRESHOLD
    # A recorded `enforce_eager: true` may be a real request that a recreation
    # preserved. Keeping eager is the status quo and cannot cause an OOM at
    # start-up, so it is the default; operators who know better choose "drop".
    recorded: str = RECORDED_KEEP

    def as_dict(self) -> dict[str, Any]:
        # A number in every document (plans made before this held the string "0.95").
        return {"threshold": float(self.threshold), "recorded": self.recorded}


def old_rule(explicit: bool | None, utilization: Decimal | None) -> bool:
    """Before June 2026: any utilization forced eager, overriding the caller."""
    if utilization is not None:
        return True
    return bool(explicit)


def new_rule(
    explicit: bool | None, utilization: Decimal | None, threshold: Decimal = DEFAULT_THRESHOLD
) -> bool:
    """Upstream PR 851: the caller's value wins; otherwise eager only at high utilization."""
    if explicit is not None:
        return explicit
    return utilization is not None and utilization >= threshold


def to_decimal(value: Any) -> Decimal | None:
    """A utilization from JSON or a command; None when it is not a plain number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def to_bool(value: Any) -> bool | None:
    """A stored boolean; strings are accepted because old metadata holds some."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


@dataclass(frozen=True)
class Provenance:
    kind: str
    explicit: bool | None  # the caller's value as the new rule should see it
    evidence: tuple[str, ...]


def _literal(text: str) -> Any:
    """A dict or list value as printed in a command: JSON (2026) or a Python repr (2024)."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None


def _same_value(stored: Any, texts: tuple[str, ...]) -> bool:
    if not texts:
        return stored is True
    if len(texts) > 1:
        return isinstance(stored, list) and [str(v) for v in stored] == list(texts)
    text = texts[0]
    if isinstance(stored, dict | list):
        return _literal(text) == stored
    if isinstance(stored, bool):
        return text.lower() == str(stored).lower()
    left, right = to_decimal(stored), to_decimal(text)
    if left is not None and right is not None:
        return left == right
    return str(stored) == text


def mirrored_keys(args: dict[str, Any], command_args: dict[str, tuple[str, ...]]) -> list[str]:
    """Keys of the stored dict whose value equals the same flag in the command."""
    return sorted(
        key
        for key, value in args.items()
        if key != "enforce_eager" and key in command_args and _same_value(value, command_args[key])
    )


# Flags model engine derives from the endpoint itself (weights, ports, shards,
# template, quantization): a legacy recreation does not record them as args.
DERIVED_FLAGS = frozenset(
    {
        "model",
        "served_model_name",
        "port",
        "host",
        "tensor_parallel_size",
        "pipeline_parallel_size",
        "quantization",
        "chat_template",
        "disable_log_requests",
        "enforce_eager",
    }
)


def _recorded_evidence(
    stored_args: dict[str, Any],
    command_args: dict[str, tuple[str, ...]],
    command_utilization: Decimal | None,
    endpoint_created_at: datetime | None,
) -> list[str]:
    """Why `enforce_eager: true` looks parsed back out of the command; [] if it does not.

    Recreating a legacy endpoint (one whose metadata had no args: created before
    May 2026, or later without any) parses the old command back into the dict:
    every tunable flag, the utilization the old rule paired with the flag
    included. A caller names the arguments they chose. The creation date only
    adds weight: the dict itself is the evidence.
    """
    stored_u = to_decimal(stored_args.get("gpu_memory_utilization"))
    if stored_u is None or command_utilization is None or stored_u != command_utilization:
        return []
    tunables = sorted(k for k in command_args if k not in DERIVED_FLAGS)
    mirrored = mirrored_keys(stored_args, command_args)
    if any(k not in mirrored for k in tunables):
        return []
    evidence = ["the dict copies every tunable flag of the command: " + ", ".join(tunables)]
    created = _aware(endpoint_created_at)
    if created is not None and created < ARGS_RECORDED_SINCE:
        evidence.append(
            f"endpoint created {created:%Y-%m-%d}, before model engine recorded "
            "requested args (May 2026): it was legacy"
        )
    return evidence


def _aware(value: datetime | None) -> datetime | None:
    """timestamptz columns give aware datetimes; a naive one is taken as UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def provenance(
    *,
    eager_now: bool,
    command_utilization: Decimal | None,
    command_args: dict[str, tuple[str, ...]],
    stored_args: dict[str, Any] | None,
    endpoint_created_at: datetime | None,
) -> Provenance:
    """Who put the flag there (or why it is absent), with the evidence for it."""
    evidence: list[str] = []
    if stored_args is None:
        evidence.append("no _llm.vllm_additional_args: legacy endpoint, nothing records a request")
        explicit_value = None
    else:
        raw = stored_args.get("enforce_eager")
        explicit_value = to_bool(raw)
        if "enforce_eager" in stored_args:
            evidence.append(f"_llm.vllm_additional_args.enforce_eager = {raw!r}")
        else:
            evidence.append("_llm.vllm_additional_args has no enforce_eager")

    if explicit_value is False:
        if eager_now:
            evidence.append("the command has --enforce-eager anyway: the old rule overrode it")
        return Provenance(EXPLICIT_FALSE, False, tuple(evidence))

    if explicit_value is True and stored_args is not None:
        recorded = _recorded_evidence(
            stored_args, command_args, command_utilization, endpoint_created_at
        )
        if recorded:
            evidence.extend(recorded)
            return Provenance(RECORDED, True, tuple(evidence))
        evidence.append("the dict is not a copy of the command: a caller's request")
        return Provenance(EXPLICIT_TRUE, True, tuple(evidence))

    if eager_now and command_utilization is None:
        evidence.append(
            "--enforce-eager without --gpu-memory-utilization: the old rule never wrote that"
        )
        return Provenance(HAND_ADDED, True, tuple(evidence))

    if eager_now:
        evidence.append(
            f"--enforce-eager next to --gpu-memory-utilization {command_utilization}: "
            "the old rule's signature"
        )
        return Provenance(INJECTED, None, tuple(evidence))

    return Provenance(ABSENT, None, tuple(evidence))

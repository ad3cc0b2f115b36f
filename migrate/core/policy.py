"""The old and new `--enforce-eager` rules, and where a stored flag came from.

Pure functions over plain values: what a bundle builder would do, and the
evidence for who put a flag into a stored command.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

DEFAULT_THRESHOLD = Decimal("0.95")

# Model engine began storing the caller's `vllm_additional_args` on 2026-05-07
# (upstream "Add persistent external model cache via PVC", #822). An endpoint
# created since holds its caller's request in that dict; one created before can
# only have got a dict from a recreation that parsed its old command back. An
# operator whose model engine took that release later moves the date
# (--args-recorded-since).
ARGS_RECORDED_SINCE = datetime(2026, 5, 7, tzinfo=UTC)

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
    args_recorded_since: datetime = ARGS_RECORDED_SINCE

    def as_dict(self) -> dict[str, Any]:
        # A number in every document (plans made before this held the string "0.95").
        return {
            "threshold": float(self.threshold),
            "recorded": self.recorded,
            "args_recorded_since": format_cut_over(self.args_recorded_since),
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> PolicyParams:
        """The policy a plan recorded; a key it lacks (an older plan) takes its default.

        Raises ValueError naming the value that cannot be read.
        """
        default = cls()
        threshold = to_decimal(doc.get("threshold", default.threshold))
        if threshold is None:
            raise ValueError(f"policy threshold {doc.get('threshold')!r} is not a number")
        recorded = doc.get("recorded", default.recorded)
        if recorded not in (RECORDED_KEEP, RECORDED_DROP):
            raise ValueError(f"policy recorded {recorded!r} is neither keep nor drop")
        since = doc.get("args_recorded_since")
        return cls(
            threshold=threshold,
            recorded=recorded,
            args_recorded_since=(
                default.args_recorded_since if since is None else parse_cut_over(str(since))
            ),
        )


def parse_cut_over(text: str) -> datetime:
    """A date (midnight UTC) or an ISO 8601 time; a time without a zone is UTC."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r} is not a date: expected YYYY-MM-DD or an ISO 8601 time"
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def format_cut_over(value: datetime) -> str:
    """The date alone when it is midnight UTC, as it is usually given; else the full time."""
    value = value.astimezone(UTC)
    return value.date().isoformat() if value.timetz() == time(tzinfo=UTC) else value.isoformat()


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


class MalformedValue(ValueError):
    """A stored value model engine's own validation would refuse; the message says which."""


# Model engine validates `vllm_additional_args` with pydantic 2 (2.12, lax mode),
# whose bool accepts exactly these words, ignoring ASCII case only, untrimmed.
_TRUE_WORDS = frozenset({"1", "t", "y", "on", "yes", "true"})
_FALSE_WORDS = frozenset({"0", "f", "n", "no", "off", "false"})


def _is_zero_or_one(number: int | float | Decimal) -> bool:
    # A signalling Decimal NaN raises on any comparison; no NaN is 0 or 1.
    if isinstance(number, Decimal) and not number.is_finite():
        return False
    return number in (0, 1)


def to_bool(value: Any) -> bool | None:
    """A stored boolean as model engine reads it; None for null (no preference).

    Raises MalformedValue for whatever model engine would refuse ("maybe", 2,
    " true"): guessing would either ignore a caller's request or invent one.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float | Decimal) and _is_zero_or_one(value):
        return value == 1
    if isinstance(value, str) and value.isascii():
        word = value.lower()
        if word in _TRUE_WORDS or word in _FALSE_WORDS:
            return word in _TRUE_WORDS
    raise MalformedValue(f"{value!r} is not a boolean model engine accepts")


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


def mirrored_keys(args: dict[str, Any], command_args: Mapping[str, tuple[str, ...]]) -> list[str]:
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


def _copies_the_command(
    stored_args: dict[str, Any],
    command_args: Mapping[str, tuple[str, ...]],
    command_utilization: Decimal | None,
) -> str | None:
    """How the dict copies the command, or None when it does not.

    Recreating a legacy endpoint (one whose metadata had no args) parses the old
    command back into the dict: every tunable flag, the utilization the old rule
    paired with the flag included. A caller names the arguments they chose.
    """
    stored_u = to_decimal(stored_args.get("gpu_memory_utilization"))
    if stored_u is None or command_utilization is None or stored_u != command_utilization:
        return None
    tunables = sorted(k for k in command_args if k not in DERIVED_FLAGS)
    mirrored = mirrored_keys(stored_args, command_args)
    if any(k not in mirrored for k in tunables):
        return None
    return "the dict copies every tunable flag of the command: " + ", ".join(tunables)


def _aware(value: datetime) -> datetime:
    """timestamptz columns give aware datetimes; a naive one is taken as UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def provenance(
    *,
    eager_now: bool,
    command_utilization: Decimal | None,
    command_args: Mapping[str, tuple[str, ...]],
    stored_args: dict[str, Any] | None,
    endpoint_created_at: datetime | None,
    args_recorded_since: datetime = ARGS_RECORDED_SINCE,
) -> Provenance:
    """Who put the flag there (or why it is absent), with the evidence for it.

    One evidence line starts "decided by": the fact that settled it. A stored
    enforce_eager must already be one model engine accepts (to_bool raises
    MalformedValue otherwise).
    """
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
        evidence.append(
            "decided by the dict: enforce_eager false is a caller's request "
            "(parsing a command back never yields false)"
        )
        if eager_now:
            evidence.append("the command has --enforce-eager anyway: the old rule overrode it")
        return Provenance(EXPLICIT_FALSE, False, tuple(evidence))

    if explicit_value is True and stored_args is not None:
        kind, said = _who_asked(
            _copies_the_command(stored_args, command_args, command_utilization),
            None if endpoint_created_at is None else _aware(endpoint_created_at),
            _aware(args_recorded_since),
        )
        evidence.extend(said)
        return Provenance(kind, True, tuple(evidence))

    if eager_now and command_utilization is None:
        evidence.append(
            "decided by the command: --enforce-eager without --gpu-memory-utilization, "
            "which the old rule never wrote"
        )
        return Provenance(HAND_ADDED, True, tuple(evidence))

    if eager_now:
        evidence.append(
            f"decided by the command: --enforce-eager next to --gpu-memory-utilization "
            f"{command_utilization}, the old rule's signature"
        )
        return Provenance(INJECTED, None, tuple(evidence))

    evidence.append("decided by the command: no --enforce-eager, and no stored preference")
    return Provenance(ABSENT, None, tuple(evidence))


def _who_asked(
    copy: str | None, created: datetime | None, since: datetime
) -> tuple[str, list[str]]:
    """A stored enforce_eager true: a caller's request, or a recreation's parse-back."""
    cut_over = format_cut_over(since)
    if created is not None and created >= since:
        said = [f"{copy}, as a recreation would, but:"] if copy else []
        said.append(
            f"decided by the creation time: endpoint created {created:%Y-%m-%d}, on or after "
            f"{cut_over} when model engine began storing the caller's args, so the dict is "
            "the caller's request"
        )
        return EXPLICIT_TRUE, said
    if created is None:
        when = "creation time unknown"
    else:
        when = f"endpoint created {created:%Y-%m-%d}, before {cut_over}: it was legacy"
    if copy:
        return RECORDED, [f"decided by the dict: {copy}; {when}"]
    return EXPLICIT_TRUE, [
        f"decided by the dict: it is not a copy of the command, so a caller asked; {when}"
    ]

"""Which change goes in which stage: a canary, then growing shares, the risky ones last. Pure.

The regular endpoints are ordered most common model first (its behaviour is
best known), then smaller, then by name, and cut into cumulative stages
(`--stages 1,10%,50%,100%`). Large models (>= 70B or unknown size) and
risk-flagged endpoints follow in a stage of their own, or are left out.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from migrate.core.flags import goes_last_by_flags
from migrate.core.modelsize import is_large_or_unknown

DEFAULT_STAGES = "1,10%,50%,100%"
LARGE_STAGE_NAME = "large-and-flagged"


class StageSpecError(ValueError):
    """A --stages value that cannot be read; the message says why."""


class Staged(Protocol):
    """What staging reads of a decision or a plan item."""

    @property
    def endpoint_id(self) -> str: ...
    @property
    def endpoint_name(self) -> str: ...
    @property
    def model_name(self) -> str | None: ...
    @property
    def param_count_b(self) -> int | None: ...
    @property
    def flags(self) -> Sequence[str]: ...


T = TypeVar("T", bound=Staged)


@dataclass(frozen=True)
class StageSpec:
    """One entry of --stages: a cumulative count or percentage of regular endpoints."""

    text: str
    count: int | None = None
    percent: float | None = None

    def target(self, total: int) -> int:
        if self.count is not None:
            return min(self.count, total)
        assert self.percent is not None
        # ceil: 10% of 7 endpoints is one endpoint, never zero.
        return min(total, math.ceil(total * self.percent / 100 - 1e-9))


_STAGE_TOKEN = re.compile(r"^(\d+(?:\.\d+)?)%$|^(\d+)$")


def parse_stages(text: str) -> list[StageSpec]:
    tokens = [t.strip() for t in text.split(",")]
    if not tokens or any(not t for t in tokens):
        raise StageSpecError(
            f"--stages {text!r}: expected a comma-separated list like {DEFAULT_STAGES}"
        )
    specs: list[StageSpec] = []
    for token in tokens:
        match = _STAGE_TOKEN.match(token)
        if not match:
            raise StageSpecError(
                f"--stages: {token!r} is neither a count (5) nor a percentage (10%)"
            )
        if match.group(1) is not None:
            percent = float(match.group(1))
            if not 0 < percent <= 100:
                raise StageSpecError(f"--stages: {token!r} must be above 0% and at most 100%")
            specs.append(StageSpec(token, percent=percent))
        else:
            count = int(match.group(2))
            if count < 1:
                raise StageSpecError(f"--stages: {token!r}: a stage needs at least one endpoint")
            specs.append(StageSpec(token, count=count))
    for kind in ("count", "percent"):
        values = [getattr(s, kind) for s in specs if getattr(s, kind) is not None]
        if values != sorted(set(values)):
            raise StageSpecError(f"--stages {text!r}: stages are cumulative, so they must grow")
    return specs


def goes_last(change: Staged) -> bool:
    """Large (>= 70B or unknown size) or risk-flagged: its own, final stage."""
    return goes_last_by(change.param_count_b, change.flags)


def goes_last_by(param_count_b: int | None, flags: Sequence[str]) -> bool:
    """goes_last, of a change's size and flags alone."""
    return is_large_or_unknown(param_count_b) or goes_last_by_flags(flags)


def model_rank(
    model_count: int, param_count_b: int | None, model_name: str | None
) -> tuple[int, float, str]:
    """Where a model's changes go in risk_order: most common model first (its behaviour is
    best known), then smaller; changes of the same rank go by name."""
    return (
        -model_count,
        param_count_b if param_count_b is not None else math.inf,
        model_name or "",
    )


def risk_order(changes: Sequence[T]) -> list[T]:
    """Most common model first (its behaviour is best known), then smaller, then by name."""
    counts = Counter(c.model_name for c in changes)
    return sorted(
        changes,
        key=lambda c: (
            *model_rank(counts[c.model_name], c.param_count_b, c.model_name),
            c.endpoint_name,
            c.endpoint_id,
        ),
    )


def stage_sizes(
    regular: int, last: int, specs: Sequence[StageSpec], exclude_large: bool
) -> list[tuple[str, int]]:
    """(stage name, how many changes) in order, for `regular` changes in risk order followed
    by the `last` ones (large or flagged); the `last` ones fill the final stage, unless left out.

    A stage that resolves to nothing is dropped, not left empty; what the spec
    did not reach goes into a last regular stage, never silently nowhere.
    """
    sizes: list[tuple[str, int]] = []
    done = 0
    for index, spec in enumerate(specs):
        target = max(done, spec.target(regular))
        name = "canary" if index == 0 and spec.count is not None else spec.text
        sizes.append((name, target - done))
        done = target
    sizes.append(("rest", regular - done))
    if not exclude_large:
        sizes.append((LARGE_STAGE_NAME, last))
    return [(name, size) for name, size in sizes if size]


def assign(
    changing: Sequence[T], specs: Sequence[StageSpec], exclude_large: bool
) -> tuple[list[tuple[str, list[T]]], list[T]]:
    """(stage name, its changes) in order, and the large or flagged ones left out (see
    stage_sizes)."""
    regular = risk_order([c for c in changing if not goes_last(c)])
    last = risk_order([c for c in changing if goes_last(c)])
    # The regular stages take every regular change, so the large stage starts where they end.
    ordered = regular if exclude_large else regular + last
    groups: list[tuple[str, list[T]]] = []
    done = 0
    for name, size in stage_sizes(len(regular), len(last), specs, exclude_large):
        groups.append((name, ordered[done : done + size]))
        done += size
    return groups, (last if exclude_large else [])

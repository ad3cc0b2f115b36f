"""Counts over a stream of decisions: what every report and check summarises."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from migrate.core.classify import ACTIONS


class Counted(Protocol):
    """What a summary counts of a decision (a Decision, or a report's line made of one)."""

    @property
    def action(self) -> str: ...
    @property
    def flags(self) -> Iterable[str]: ...
    @property
    def inference_framework(self) -> str | None: ...


@dataclass
class Summary:
    """Counts that grow as decisions stream past; never holds the decisions."""

    total: int = 0
    actions: Counter[str] = field(default_factory=Counter)
    flags: Counter[str] = field(default_factory=Counter)
    frameworks: Counter[str] = field(default_factory=Counter)

    def add(self, decision: Counted) -> None:
        self.total += 1
        self.actions[decision.action] += 1
        self.flags.update(decision.flags)
        self.frameworks[decision.inference_framework or "unknown"] += 1

    def merge(self, other: Summary) -> None:
        """Count what ``other`` counted (the summary of a chunk of the same stream)."""
        self.total += other.total
        self.actions.update(other.actions)
        self.flags.update(other.flags)
        self.frameworks.update(other.frameworks)

    @property
    def changes(self) -> int:
        return self.actions["drop-eager"] + self.actions["add-eager"]

    def as_dict(self) -> dict[str, Any]:
        return {
            "endpoints": self.total,
            "changes": self.changes,
            "actions": {a: self.actions[a] for a in ACTIONS},
            "flags": dict(sorted(self.flags.items())),
            "inference_frameworks": dict(sorted(self.frameworks.items())),
        }

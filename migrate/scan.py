"""The scan as a library call: stream the fleet, decide each endpoint."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from migrate import fleet
from migrate.classify import ACTIONS, classify
from migrate.db import DEFAULT_STATEMENT_TIMEOUT_S, read_only
from migrate.overrides import Overrides
from migrate.policy import PolicyParams
from migrate.records import Decision


@dataclass
class Summary:
    """Counts that grow as decisions stream past; never holds the decisions."""

    total: int = 0
    actions: Counter[str] = field(default_factory=Counter)
    flags: Counter[str] = field(default_factory=Counter)
    frameworks: Counter[str] = field(default_factory=Counter)

    def add(self, decision: Decision) -> None:
        self.total += 1
        self.actions[decision.action] += 1
        self.flags.update(decision.flags)
        self.frameworks[decision.inference_framework or "unknown"] += 1

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


def scan(
    engine: Engine,
    *,
    schema: str,
    filters: fleet.Filters | None = None,
    params: PolicyParams | None = None,
    overrides: Overrides | None = None,
    statement_timeout_s: int = DEFAULT_STATEMENT_TIMEOUT_S,
    on_total: Callable[[int], None] | None = None,
) -> Iterator[Decision]:
    """Decisions for every LLM endpoint, in name order, from one read-only snapshot."""
    params = params or PolicyParams()
    filters = filters or fleet.Filters()
    with read_only(engine, statement_timeout_s) as conn:
        query = fleet.endpoint_query(conn, schema, filters)
        if on_total is not None:
            on_total(fleet.count(conn, query))
        for record in fleet.stream(conn, query):
            yield classify(record, params, overrides)

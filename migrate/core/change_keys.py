"""What staging needs of every change, and nothing more: a plan's order in little memory. Pure.

A plan of 160,000 changes cannot hold 160,000 decisions (each carries whole
commands). Staging (migrate.core.staging) reads a change's model, size, flags,
name and id; of these, model, size and flags repeat across the fleet, so
changes are kept in buckets per (model, size, flags), each change one bytes
object: its name and id, escaped so that bytes order is (name, id) order,
and where its item's text was stored (or, for a change left out, when it
came). About 100 bytes a change, where a decision takes several kilobytes.

The order and the stages come out exactly as staging.assign gives them for
the same changes: the same rank per model (staging.model_rank), the same
cuts (staging.stage_sizes), ties broken by arrival as a stable sort does.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from migrate.core import staging
from migrate.core.staging import StageSpec

# (model name, total parameters, flags): what a bucket's changes share.
BucketKey = tuple[str | None, int | None, tuple[str, ...]]

_END = b"\0\0"
_PLACE_BYTES = 8


def _escaped(text: str) -> bytes:
    # UTF-8 keeps code point order (surrogatepass too: a lone surrogate sorts where its
    # code point does); NUL becomes \0\1, so the \0\0 after a field sorts before anything.
    return text.encode("utf-8", "surrogatepass").replace(b"\0", b"\0\1") + _END


def _unescaped(data: bytes) -> str:
    return data.replace(b"\0\1", b"\0").decode("utf-8", "surrogatepass")


def _record(name: str, endpoint_id: str, place: int) -> bytes:
    return _escaped(name) + _escaped(endpoint_id) + place.to_bytes(_PLACE_BYTES, "big")


def _place(record: bytes) -> int:
    return int.from_bytes(record[-_PLACE_BYTES:], "big")


def _name_and_id(record: bytes) -> tuple[str, str]:
    cut = record.index(_END)
    end = record.index(_END, cut + 2)
    return _unescaped(record[:cut]), _unescaped(record[cut + 2 : end])


@dataclass(frozen=True)
class Change:
    """One change as staging sees it (the Staged protocol), read back from its key."""

    endpoint_id: str
    endpoint_name: str
    model_name: str | None
    param_count_b: int | None
    flags: tuple[str, ...]


class ChangeKeys:
    """Every change of a plan, as little as staging needs, in arrival order until `finish`.

    `add` takes a change that becomes an item with `place`, where its text was
    stored (places must grow with arrival); a change that will be left out
    (--exclude-large) with None. After `finish`, `items()` yields each item's
    (stage number, place) in plan order, and `excluded()` the changes left out.
    """

    def __init__(self, specs: Sequence[StageSpec], exclude_large: bool) -> None:
        self._specs = list(specs)
        self._exclude_large = exclude_large
        self._buckets: dict[BucketKey, list[bytes]] = {}
        self._arrivals = 0  # what orders the changes left out, which have no place
        self._order: list[list[BucketKey]] = []
        self._sizes: list[tuple[str, int]] = []
        self._last = 0

    def left_out(self, param_count_b: int | None, flags: Sequence[str]) -> bool:
        """Whether a change of this size and these flags is left out of the plan."""
        return self._exclude_large and staging.goes_last_by(param_count_b, flags)

    def add(
        self,
        endpoint_id: str,
        endpoint_name: str,
        model_name: str | None,
        param_count_b: int | None,
        flags: Sequence[str],
        place: int | None,
    ) -> None:
        if place is None:
            place = self._arrivals
            self._arrivals += 1
        key = (model_name, param_count_b, tuple(flags))
        self._buckets.setdefault(key, []).append(_record(endpoint_name, endpoint_id, place))

    def finish(self) -> list[tuple[str, int]]:
        """Order the changes; (stage name, how many) of each stage, as staging.stage_sizes."""
        regular = [k for k in self._buckets if not staging.goes_last_by(k[1], k[2])]
        last = [k for k in self._buckets if staging.goes_last_by(k[1], k[2])]
        self._order = [*self._ranked(regular), *self._ranked(last)]
        for records in self._buckets.values():
            records.sort()  # bytes order is (name, id) order, then arrival
        regular_count = sum(len(self._buckets[k]) for k in regular)
        self._last = sum(len(self._buckets[k]) for k in last)
        self._sizes = staging.stage_sizes(
            regular_count, self._last, self._specs, self._exclude_large
        )
        return self._sizes

    def _ranked(self, keys: list[BucketKey]) -> list[list[BucketKey]]:
        """The buckets of one part (regular or last) in groups of equal rank, groups in order."""
        counts: Counter[str | None] = Counter()
        for key in keys:
            counts[key[0]] += len(self._buckets[key])
        groups: dict[tuple[int, float, str], list[BucketKey]] = {}
        for key in keys:
            groups.setdefault(staging.model_rank(counts[key[0]], key[1], key[0]), []).append(key)
        return [groups[rank] for rank in sorted(groups)]

    def _ordered(self) -> Iterator[tuple[bytes, BucketKey]]:
        """Every change in risk order (staging.risk_order), the last ones after the regular."""
        for group in self._order:
            if len(group) == 1:
                yield from self._bucket(group[0])
            else:  # changes of equal rank from several buckets go by name, then arrival
                yield from heapq.merge(*map(self._bucket, group))

    def _bucket(self, key: BucketKey) -> Iterator[tuple[bytes, BucketKey]]:
        for record in self._buckets[key]:
            yield record, key

    @property
    def planned(self) -> int:
        return sum(size for _, size in self._sizes)

    @property
    def left_out_count(self) -> int:
        return self._last if self._exclude_large else 0

    def items(self) -> Iterator[tuple[int, int]]:
        """(stage number, place) of every item, in plan order."""
        ordered = self._ordered()
        for number, (_, size) in enumerate(self._sizes, 1):
            for _ in range(size):
                record, _key = next(ordered)
                yield number, _place(record)

    def excluded(self) -> Iterator[Change]:
        """The changes left out (--exclude-large), in risk order."""
        if not self._exclude_large:
            return
        ordered = self._ordered()
        for _ in range(self.planned):
            next(ordered)
        for record, (model_name, param_count_b, flags) in ordered:
            name, endpoint_id = _name_and_id(record)
            yield Change(endpoint_id, name, model_name, param_count_b, flags)


def excluded_entry(change: Any) -> dict[str, Any]:
    """A left-out change as the plan's `excluded` lists it."""
    return {
        "endpoint_id": change.endpoint_id,
        "endpoint_name": change.endpoint_name,
        "reason": "large or flagged (--exclude-large): "
        + (", ".join(change.flags) or f"size {change.param_count_b or 'unknown'}"),
    }

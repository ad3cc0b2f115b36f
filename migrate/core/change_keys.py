"""A plan's order in eight bytes a change: what staging reads, without holding the changes. Pure.

A plan of 160,000 changes cannot hold 160,000 decisions (each carries whole
commands). Staging (migrate.core.staging) reads a change's model, size, flags,
name and id. Model, size and flags repeat across a fleet: changes are kept in
buckets per (model, size, flags), each change one number in an array, the
place its record was stored (places grow with arrival). Name and id stay in
that record; `finish` reads them back to sort each rank's changes, at most
CHUNK of them at a time, the sorted runs merged (an external sort), so what
is held never grows with the fleet beyond those eight bytes.
Changes that came in (name, id) order, as the scan reads them where the
database sorts names as Python does (C collation), need no reading back: within
a rank, their places are already in order, and the buckets are merged.

The order and the stages come out exactly as staging.assign gives them for
the same changes: the same rank per model (staging.model_rank), the same
cuts (staging.stage_sizes), ties broken by arrival as a stable sort does.
"""

from __future__ import annotations

import heapq
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence

from migrate.core import staging
from migrate.core.staging import StageSpec

# (model name, total parameters, flags): what a bucket's changes share.
BucketKey = tuple[str | None, int | None, tuple[str, ...]]
# A change's (name, id), read back from its place.
KeyOf = Callable[[int], Sequence[str]]

# The most (name, id) pairs held at once while sorting: a few megabytes.
CHUNK = 16_384


def _places() -> array[int]:
    return array("q")


def _keyed(places: Iterable[int], key_of: KeyOf) -> Iterator[tuple[str, str, int]]:
    for place in places:
        name, endpoint_id = key_of(place)
        yield name, endpoint_id, place


class ChangeKeys:
    """Every change of a plan, as little as staging needs.

    `add` each change with its place, in arrival order; `finish` once every
    change is in; then `items()` yields each item's (stage number, place) in
    plan order, and `excluded()` the places of the changes left out.
    """

    def __init__(self, specs: Sequence[StageSpec], exclude_large: bool) -> None:
        self._specs = list(specs)
        self._exclude_large = exclude_large
        self._buckets: dict[BucketKey, array[int]] = {}
        self._order = _places()
        self._sizes: list[tuple[str, int]] = []
        self._last = 0
        # The (name, id) of the last change added, while every change so far came in
        # plan order's (name, id) order; None once one did not, or came without its own.
        self._in_order: tuple[str, str] | None = ("", "")

    def left_out(self, param_count_b: int | None, flags: Sequence[str]) -> bool:
        """Whether a change of this size and these flags is left out of the plan."""
        return self._exclude_large and staging.goes_last_by(param_count_b, flags)

    def add(
        self,
        model_name: str | None,
        param_count_b: int | None,
        flags: Sequence[str],
        place: int,
        order: tuple[str, str] | None = None,
    ) -> None:
        """A change stored at `place`. `order`: its (name, id), when the caller knows them;
        changes that come sorted by those (the scan reads them so from PostgreSQL, when its
        collation sorts as Python does) are put in order without reading a name back."""
        if self._in_order is not None:
            self._in_order = order if order is not None and order >= self._in_order else None
        key = (model_name, param_count_b, tuple(flags))
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _places()
        bucket.append(place)

    def finish(self, key_of: KeyOf) -> list[tuple[str, int]]:
        """Put the changes in plan order; (stage name, how many) of each stage, as
        staging.stage_sizes gives them. `key_of` reads a change's (name, id) from its place."""
        regular = [k for k in self._buckets if not staging.goes_last_by(k[1], k[2])]
        last = [k for k in self._buckets if staging.goes_last_by(k[1], k[2])]
        regular_count = sum(len(self._buckets[k]) for k in regular)
        self._last = sum(len(self._buckets[k]) for k in last)
        for part in (regular, last):
            for group in self._ranked(part):
                self._order.extend(self._sorted(group, key_of))
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

    def _sorted(self, group: list[BucketKey], key_of: KeyOf) -> Iterator[int]:
        """The places of a rank's changes by (name, id), then arrival (staging.risk_order)."""
        if self._in_order is not None:
            # Places grow with arrival, here (name, id) order: each bucket is sorted already.
            return heapq.merge(*(self._buckets.pop(key) for key in group))
        places = _places()
        for key in group:
            places.extend(self._buckets.pop(key))  # each bucket is read once: let it go
        runs = []
        for start in range(0, len(places), CHUNK):
            run = sorted(_keyed(places[start : start + CHUNK], key_of))
            runs.append(array("q", (place for *_, place in run)))
        del places
        if len(runs) == 1:
            return iter(runs[0])
        merged = heapq.merge(*(_keyed(run, key_of) for run in runs))
        return (place for *_, place in merged)

    @property
    def planned(self) -> int:
        return sum(size for _, size in self._sizes)

    @property
    def left_out_count(self) -> int:
        return self._last if self._exclude_large else 0

    def items(self) -> Iterator[tuple[int, int]]:
        """(stage number, place) of every item, in plan order."""
        order = iter(self._order)
        for number, (_, size) in enumerate(self._sizes, 1):
            for _ in range(size):
                yield number, next(order)

    def excluded(self) -> Iterator[int]:
        """The places of the changes left out (--exclude-large), in risk order."""
        if self._exclude_large:
            yield from self._order[self.planned :]

"""Random draws shared by the synthetic fleet generator: weighted picks, dates, xid ids.

Everything here consumes one ``random.Random`` stream in a fixed order; changing
the order of draws changes every fleet of every seed.
"""

from __future__ import annotations

import itertools
import random
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

_B32HEX = "0123456789abcdefghijklmnopqrstuv"
# Two base32hex digits per 10 bits: ten table look-ups per id instead of twenty steps.
_B32HEX_PAIRS = tuple(a + b for a in _B32HEX for b in _B32HEX)


def xid(at: datetime, machine: int, counter: int) -> str:
    """An xid-shaped id: 4-byte timestamp, 5 machine/pid bytes, 3-byte counter, base32hex.

    Same text as base64.b32hexencode of the 12 bytes, lowercased and unpadded,
    computed on an int because this runs for every row of a 100k fleet.
    """
    value = (
        (int(at.timestamp()) & 0xFFFFFFFF) << 64
        | (machine & 0xFF_FFFF_FFFF) << 24
        | (counter & 0xFFFFFF)
    ) << 4  # 96 bits padded to 100: twenty 5-bit digits
    pairs = _B32HEX_PAIRS
    return "".join(
        [pairs[(value >> shift) & 0x3FF] for shift in (90, 80, 70, 60, 50, 40, 30, 20, 10, 0)]
    )


Weighted = tuple[tuple[Any, float], ...]
# Cumulative weights per weight table, keyed by identity: every table passed to
# pick is a module-level constant (or cached), and hashing its contents on every
# draw would cost more than the draw.
_CUMULATIVE: dict[int, tuple[Weighted, list[Any], list[float]]] = {}


def pick(rng: random.Random, weighted: Weighted) -> Any:
    """The same draw as rng.choices(weights=...), without rebuilding the lists each time."""
    entry = _CUMULATIVE.get(id(weighted))
    if entry is None or entry[0] is not weighted:
        keys = [k for k, _ in weighted]
        entry = (weighted, keys, list(itertools.accumulate(w for _, w in weighted)))
        _CUMULATIVE[id(weighted)] = entry
    return rng.choices(entry[1], cum_weights=entry[2])[0]


class Ids:
    """Unique xid-shaped ids for one fleet: a random machine part, then a counter."""

    def __init__(self, rng: random.Random) -> None:
        self.machine = rng.getrandbits(40)
        self.counter = rng.getrandbits(24)

    def next(self, prefix: str, at: datetime) -> str:
        self.counter += 1
        return prefix + xid(at, self.machine, self.counter)


def random_datetime(rng: random.Random, start: date, end: date) -> datetime:
    days = max(0, (end - start).days)
    day = start + timedelta(days=rng.randint(0, days))
    seconds = rng.randint(0, 86399)
    return datetime.combine(day, time(0, 0), tzinfo=UTC) + timedelta(seconds=seconds)

"""Strings stored as one record of bytes: their UTF-8 lengths, then their UTF-8 bytes. Pure.

What a plan's spill file (migrate.store.spill) holds of each change. The record
is made where the change is decided (a worker, for a big fleet): the process
that keeps the spill then only writes bytes, and a change comes back from a
worker as one bytes object, not as six strings to unpickle and encode.
Lone surrogates (stored JSON may hold them) are kept (surrogatepass), so what
comes back is what went in.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from functools import lru_cache


@lru_cache(maxsize=8)
def header(width: int) -> struct.Struct:
    """The record's head: the byte length of each of its `width` strings."""
    return struct.Struct(f"<{width}I")


def encode(parts: Sequence[str], errors: str = "surrogatepass") -> bytes:
    """The record of `parts`; ``errors="strict"`` refuses a lone surrogate (UnicodeEncodeError)."""
    blobs = [part.encode("utf-8", errors) for part in parts]
    return header(len(blobs)).pack(*map(len, blobs)) + b"".join(blobs)


def decode(record: bytes, width: int) -> list[str]:
    """The strings of a record `encode` made of `width` strings."""
    head = header(width)
    return strings(record, head.size, head.unpack_from(record))


def strings(data: bytes, at: int, lengths: Sequence[int]) -> list[str]:
    """The strings whose encoded `lengths` follow one another in `data` from `at` on."""
    return [str(part, "utf-8", "surrogatepass") for part in views(data, at, lengths)]


def views(data: bytes, at: int, lengths: Sequence[int]) -> list[memoryview]:
    """The same strings' bytes as they are stored: views into `data`, not copies."""
    whole = memoryview(data)
    parts = []
    for length in lengths:
        parts.append(whole[at : at + length])
        at += length
    return parts

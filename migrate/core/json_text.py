"""A document's JSON text, canonical (digests, signatures) or indented (files), whole or in pieces.

A plan of a large fleet is hundreds of megabytes as text: digesting, signing
and writing it piece by piece holds no copy of the whole. The pieces join to
exactly the text json.dumps gives, so digests made either way agree. A
top-level list may also be `Elements`: texts made on demand, each time the
document is digested or written, so that not even its values are held.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

# Bytes, or a view of some: what the UTF-8 forms below hand on without copying.
Buffer = bytes | bytearray | memoryview


@dataclass(frozen=True)
class Elements:
    """A top-level list given as its elements' texts, made anew on every pass.

    Each yields the list's text between its brackets as UTF-8, in pieces of any
    size (bytes stored elsewhere are then never decoded to be digested or
    written): `canonical()` the elements as canonical_json gives them, joined by
    ","; `indented()` as they stand in the indented document, each json.dumps(
    element, indent=2, sort_keys=True, ensure_ascii=False) with every line after
    the first indented four more spaces, joined by ",\n    ". Both in the same
    order. Pieces may be runs of many elements: a plan of 100,000 items digested
    and written a piece an element at a time spent most of its last half second
    handing pieces on.
    """

    canonical: Callable[[], Iterable[Buffer]]
    indented: Callable[[], Iterable[Buffer]]


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def indented_json(value: Any) -> str:
    """json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False), exactly.

    With ``indent`` json.dumps runs its pure-Python encoder (the C one only
    writes compact text): here the layout is written by hand, strings by the C
    encoder, and other scalars as json writes them.
    """
    try:
        return _indented(value, "\n")
    except _Unusual:
        return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


class _Unusual(Exception):
    """A value json.dumps lays out its own way (keys that are not strings, other types)."""


_string = json.encoder.encode_basestring  # ensure_ascii=False's (the C one where there is one)
_INF = float("inf")


def _indented(value: Any, newline: str) -> str:
    if type(value) is str:
        return _string(value)
    if isinstance(value, dict):
        if not value:
            return "{}"
        if not all(type(key) is str for key in value):
            raise _Unusual
        inner = newline + "  "
        return (
            "{"
            + inner
            + ("," + inner).join(
                _string(key) + ": " + _indented(value[key], inner) for key in sorted(value)
            )
            + newline
            + "}"
        )
    if isinstance(value, list | tuple):
        if not value:
            return "[]"
        inner = newline + "  "
        return "[" + inner + ("," + inner).join(_indented(v, inner) for v in value) + newline + "]"
    text = scalar_text(value)
    if text is None:
        raise _Unusual
    return text


def scalar_text(value: Any) -> str | None:
    """How json.dumps writes null, a boolean, an int or a float (NaN and the infinities
    as it does); None for any other value, subclasses included."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    kind = type(value)
    if kind is int:
        return int.__repr__(value)
    if kind is float:
        if value != value:
            return "NaN"
        if value in (_INF, -_INF):
            return "Infinity" if value > 0 else "-Infinity"
        return float.__repr__(value)
    return None


def canonical_pieces(doc: dict[str, Any]) -> Iterator[str]:
    """canonical_json(doc) in pieces, a top-level list's elements one at a time."""
    return _decoded(_canonical(doc))


def canonical_utf8_pieces(doc: dict[str, Any]) -> Iterator[Buffer]:
    """canonical_json(doc) as UTF-8, in pieces (Elements' bytes as they come)."""
    return _encoded(_canonical(doc))


def _canonical(doc: dict[str, Any]) -> Iterator[str | Buffer]:
    yield "{"
    for n, key in enumerate(sorted(doc)):
        yield ("," if n else "") + canonical_json(key) + ":"
        value = doc[key]
        if isinstance(value, list):
            yield "[" + ",".join(canonical_json(v) for v in value[:1])
            for element in value[1:]:
                yield "," + canonical_json(element)
            yield "]"
        elif isinstance(value, Elements):
            yield "["
            yield from value.canonical()
            yield "]"
        else:
            yield canonical_json(value)
    yield "}"


def indented_pieces(doc: dict[str, Any]) -> Iterator[str]:
    """json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) in pieces (see above).

    Re-indenting an element's text is safe: JSON writes no raw newline inside a string.
    """
    return _decoded(_indented_doc(doc))


def indented_utf8_pieces(doc: dict[str, Any]) -> Iterator[Buffer]:
    """indented_pieces(doc) as UTF-8 (Elements' bytes as they come)."""
    return _encoded(_indented_doc(doc))


def _indented_doc(doc: dict[str, Any]) -> Iterator[str | Buffer]:
    def dumps(value: Any, depth: int) -> str:
        return indented_json(value).replace("\n", "\n" + "  " * depth)

    yield "{"
    for n, key in enumerate(sorted(doc)):
        yield ("," if n else "") + "\n  " + json.dumps(key, ensure_ascii=False) + ": "
        value = doc[key]
        if isinstance(value, list) and value:
            yield "["
            for m, element in enumerate(value):
                yield ("," if m else "") + "\n    " + dumps(element, 2)
            yield "\n  ]"
        elif isinstance(value, Elements):
            # An empty list is "[]" on one line, as json.dumps writes it: known only at its end.
            empty = True
            for piece in value.indented():
                if empty and piece:
                    yield b"[\n    "
                    empty = False
                yield piece
            yield "[]" if empty else "\n  ]"
        else:
            yield dumps(value, 1)
    yield "\n}"


# The layouts above write their own text as str and pass Elements' bytes through:
# each form is made of those pieces by converting the other kind.


def _encoded(pieces: Iterator[str | Buffer]) -> Iterator[Buffer]:
    for piece in pieces:
        yield piece.encode("utf-8") if type(piece) is str else piece  # type: ignore[union-attr,misc]


def _decoded(pieces: Iterator[str | Buffer]) -> Iterator[str]:
    for piece in pieces:
        yield piece if type(piece) is str else str(piece, "utf-8")  # type: ignore[misc]


def hashed(doc: dict[str, Any], digest: Any) -> Any:
    """``digest`` (a hashlib or hmac object) fed canonical_json(doc), piece by piece."""
    for piece in canonical_utf8_pieces(doc):
        digest.update(piece)
    return digest

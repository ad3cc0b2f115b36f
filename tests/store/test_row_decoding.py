"""A row's JSON decodes to what json.loads makes of it: the same values, types and key order.

decode_row reads with msgspec and falls back to json.loads where msgspec refuses;
whichever reads it, a record (and the fingerprint made from it) must not change.
"""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from migrate.store.endpoint_rows import decode_row

# Lone surrogates (and halves of a pair), escaped (ensure_ascii) or as they are, which
# msgspec cannot encode; st.text() never draws them.
_SURROGATES = ["\ud800", "\udfff", "\ud83d", "\ude00", "\U0001f600"]
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()  # beyond 64 bits too: exact, never made floats
    | st.integers(-(2**200), 2**200)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | st.text(st.sampled_from(["a", "é", '"', "\\", "\n", *_SURROGATES]))
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=30,
)


def _same(a: Any, b: Any) -> bool:
    """Equal, of the same types all the way down, dicts' keys in the same order."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b) or (a != a and b != b)
    return a == b


@settings(max_examples=2000)
@given(_VALUES, st.booleans())
def test_any_json_value_decodes_as_json_loads_reads_it(value: Any, ascii_only: bool) -> None:
    text = json.dumps([value], ensure_ascii=ascii_only)
    assert _same(decode_row(text), json.loads(text))


@settings(max_examples=3000)
@given(
    st.from_regex(r"-?(0|[1-9][0-9]{0,30})(\.[0-9]{1,30})?([eE][+-]?[0-9]{1,3})?", fullmatch=True)
)
@example("1e400")  # a double's overflow: json.loads makes inf
@example("-1e400")
@example("2.4703282292062328e-324")  # halfway to the smallest subnormal
@example("123456789012345678901234567890")
def test_numbers_as_the_server_writes_them_read_alike(number: str) -> None:
    text = f'[{number}, {{"n": {number}}}]'
    assert _same(decode_row(text), json.loads(text))


@given(st.lists(st.sampled_from("abc"), min_size=1, max_size=8), st.integers(0, 99))
def test_an_object_with_a_key_twice_keeps_the_last_value_where_the_first_stood(
    keys: list[str], seed: int
) -> None:
    # A json column keeps its text as written, duplicate keys and all.
    text = "{" + ",".join(f'"{k}": {seed + n}' for n, k in enumerate(keys)) + "}"
    assert _same(decode_row(text), json.loads(text))


def _outcome(read: Any, text: str) -> Any:
    try:
        return read(text)
    except (ValueError, RecursionError) as err:
        return type(err)


def test_what_msgspec_refuses_is_read_by_json_loads() -> None:
    deep = 3000
    for text in (
        "[NaN, Infinity, -Infinity]",
        '["\\ud800", "\\udc00x"]',
        "[1e999]",
        '["\ud800", "\udfff"]',  # lone surrogates as they are, not escaped
        '["\ud800',
        "[" * 600 + "]" * 600,
        "[" * deep + "]" * deep,
        '{"a": [1, 2,]}',
        "",
    ):
        got, expected = _outcome(decode_row, text), _outcome(json.loads, text)
        assert repr(got) == repr(expected), text  # (repr: NaN is not equal to itself)

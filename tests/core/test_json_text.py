"""indented_json writes exactly what json.dumps(indent=2, sort_keys=True) writes."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from migrate.core.json_text import indented_json

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
)
_KEYS = st.text() | st.integers() | st.none() | st.booleans() | st.floats()
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(), inner, max_size=4)
    ),
    max_leaves=20,
)


def _dumps(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


@settings(max_examples=400, deadline=None)
@given(_VALUES)
def test_indented_json_is_json_dumps(value: Any) -> None:
    assert indented_json(value) == _dumps(value)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(_KEYS, _SCALARS, min_size=1, max_size=3))
def test_keys_that_are_not_strings_are_written_as_json_dumps_writes_them(value: Any) -> None:
    try:
        expected = _dumps(value)
    except TypeError:  # keys json.dumps cannot sort (mixed types): it refuses, so does this
        try:
            indented_json(value)
        except TypeError:
            return
        raise AssertionError("indented_json wrote what json.dumps refuses") from None
    assert indented_json(value) == expected


def test_a_plan_item_shape() -> None:
    item = {
        "args_after": {"gpu_memory_utilization": 0.9, "max_model_len": None},
        "command_after": 'set -e;python -m vllm_server --model "x\\ny" --port 5005 é',
        "flags": ["large-model-at-0.95", "multinode"],
        "evidence": [],
        "param_count_b": 70,
        "eager_after": False,
        "nested": {"a": {}, "b": [[], [1, 2.5, "\u2028"]]},
    }
    assert indented_json(item) == _dumps(item)
    assert indented_json([]) == "[]" and indented_json({}) == "{}"

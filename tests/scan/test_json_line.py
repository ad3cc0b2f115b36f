"""A scan's JSON line, written by hand, is exactly json.dumps(as_json(decision)); a chunk of
them is the lines write_json would write one by one, and the counts of every decision."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from migrate.core.records import Decision
from migrate.core.summary import Summary
from migrate.scan.report import as_json, json_chunk, json_text

# Text json escapes every way: quotes, backslashes, controls, non-ASCII, astral
# characters and lone surrogates (stored JSON may hold them).
_TEXT = st.text(st.characters(codec=None, categories=None), max_size=40) | st.sampled_from(
    ['"', "\\", "\n\t\r\x00\x1f\x7f", "é\u2028\U0001f600", "\ud800", "--enforce-eager"]
)
_MAYBE_TEXT = st.none() | _TEXT
_NUMBER = st.none() | st.integers() | st.floats(allow_nan=True, allow_infinity=True)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=6,
)


@st.composite
def decisions(draw: st.DrawFn) -> Decision:
    return Decision(
        endpoint_id=draw(_TEXT),
        endpoint_name=draw(_TEXT),
        owner=draw(_MAYBE_TEXT),
        model_name=draw(_MAYBE_TEXT),
        param_count_b=draw(st.none() | st.integers()),
        bundle_id=draw(_MAYBE_TEXT),
        endpoint_status=draw(_MAYBE_TEXT),
        gpu_memory_utilization=draw(_NUMBER),  # type: ignore[arg-type]
        eager_now=draw(st.booleans()),
        eager_after=draw(st.booleans()),
        action=draw(_TEXT),
        reason=draw(_TEXT),
        flags=draw(st.lists(_TEXT, max_size=4)),
        command_after=draw(_MAYBE_TEXT),
        model_engine_param_count_b=draw(st.none() | st.integers()),
        provenance=draw(_MAYBE_TEXT),
        evidence=draw(st.lists(_TEXT, max_size=3)),
        inference_framework=draw(_JSON),
    )


def _decision(**changes: Any) -> Decision:
    base = Decision("e", "n", None, None, None, None, None, None, False, False, "skip", "r")
    for name, value in changes.items():
        setattr(base, name, value)
    return base


@settings(max_examples=1500, deadline=None)
@given(decisions())
@example(_decision(gpu_memory_utilization=0.95, param_count_b=70, flags=[], evidence=[]))
@example(_decision(gpu_memory_utilization=float("nan"), inference_framework={"b": 1, "a": [1.0]}))
@example(_decision(param_count_b=True, gpu_memory_utilization=1e400, flags=("a",)))  # type: ignore[arg-type]
@example(_decision(command_after="set -e;python -m vllm_server --x \"::\" 'é'\n"))
def test_the_json_line_is_what_json_dumps_writes(decision: Decision) -> None:
    assert json_text(decision) == json.dumps(as_json(decision))


_ACTIONS = st.sampled_from(["drop-eager", "add-eager", "keep-eager", "no-change", "skip"])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.builds(
            lambda d, action, flags, framework: _decision(
                **{**vars(d), "action": action, "flags": flags, "inference_framework": framework}
            ),
            decisions(),
            _ACTIONS,
            st.lists(st.sampled_from(["multinode", "not-ready", "large-model-at-0.95"])),
            st.sampled_from([None, "vllm", "sglang"]),
        ),
        max_size=6,
    ),
    st.booleans(),
)
def test_a_chunk_is_its_shown_lines_and_the_counts_of_all(
    chunk: list[Decision], only_changes: bool
) -> None:
    made = json_chunk(chunk, only_changes)
    shown = [d for d in chunk if d.changes or not only_changes]
    assert made.text == ",\n  ".join(json.dumps(as_json(d)) for d in shown)
    counted = Summary()
    for d in chunk:
        counted.add(d)
    assert made.summary == counted
    assert made.summary.total == len(chunk)
    # Merged into a running summary, a chunk's counts add up as one by one.
    running, each = Summary(), Summary()
    for _ in range(2):
        running.merge(made.summary)
        for d in chunk:
            each.add(d)
    assert running == each

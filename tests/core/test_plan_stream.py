"""A plan made from a stream (its items kept out of memory) is build_plan's file, byte for byte."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from migrate.core import change_keys, plan_stream, text_record
from migrate.core.plan import (
    CHANGING_ACTIONS,
    PlanError,
    build_plan,
    parse_plan,
    sign,
    to_json,
)
from migrate.core.plan_stream import (
    RECORD_PARTS,
    item_text,
    planned,
    planned_chunk,
    stream_plan,
)
from migrate.core.plan_stream import sign as sign_streamed
from migrate.core.records import Decision
from migrate.core.staging import goes_last_by
from tests.support.plans import HEADER as PLAN_HEADER
from tests.support.plans import decision

KEY = b"k" * 32

HEADER: dict[str, Any] = {**PLAN_HEADER, "filters": {"owner": None}}


class Memory:
    """Texts kept in a list: the storage contract without a file."""

    def __init__(self) -> None:
        self.records: list[list[str]] = []

    def append_record(self, record: bytes) -> int:
        self.records.append(text_record.decode(record, RECORD_PARTS))
        return len(self.records) - 1

    def read(self, place: int, start: int = 0, stop: int | None = None) -> list[str]:
        return self.records[place][start:stop]

    def read_utf8(self, place: int, start: int = 0, stop: int | None = None) -> list[bytes]:
        return [part.encode("utf-8") for part in self.read(place, start, stop)]

    def flush(self) -> None:
        pass


def streamed_text(decisions: list[Decision], texts: Any, key: bytes | None, **kw: Any) -> str:
    plan = stream_plan(iter(decisions), texts, **HEADER, **kw)
    if key is not None:
        plan = sign_streamed(plan, key)
    text = "".join(plan.pieces())
    # What is written: the same text as UTF-8, the items' bytes as stored.
    assert b"".join(plan.utf8_pieces()) == text.encode("utf-8")
    return text


def whole_text(decisions: list[Decision], key: bytes | None, **kw: Any) -> str:
    plan = build_plan(decisions, **HEADER, **kw)
    return to_json(sign(plan, key) if key is not None else plan)


# Few names, models and sizes, so that ties, shared models and equal ranks are common.
names = st.sampled_from(["a", "b", "chat-1", "chat-10", "chat-2", "Z", "é", "a\0b", ""])
FLAGS = (
    "multinode",
    "recorded-eager",
    "not-ready",
    "large-model-loses-eager",
    "unknown-model-size",
)
flags = st.lists(
    st.sampled_from(FLAGS),
    max_size=2,
    unique=True,
)
json_leaves = st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=False)
json_values = st.recursive(
    json_leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@st.composite
def decisions(draw: st.DrawFn) -> Decision:
    name = draw(names)
    changing = draw(st.booleans())
    action = draw(
        st.sampled_from(CHANGING_ACTIONS if changing else ("keep-eager", "no-change", "skip"))
    )
    return decision(
        name,
        draw(st.sampled_from(["llama-3-8b", "mistral-7b", "", None, "qwen3-235b-a22b"])),
        draw(st.sampled_from([None, 0, 1, 8, 70, 235])),
        endpoint_id=draw(st.sampled_from([f"end_{name}", "end_same", "end_\U0001f600"])),
        action=action,
        flags=draw(flags),
        reason=draw(st.text(max_size=20)),
        command_after=draw(st.text(max_size=60)),
        streaming_command_after=draw(st.none() | st.text(max_size=20)),
        args_after=draw(st.none() | st.dictionaries(st.text(max_size=8), json_values, max_size=4)),
        provenance=draw(st.sampled_from([None, "injected", "recorded"])),
        basis_fingerprint=draw(st.sampled_from([None, "", "sha256:b"])),
    )


fleets = st.lists(decisions(), max_size=40)
stage_specs = st.sampled_from(["1,10%,50%,100%", "1", "2,3", "100%", "1,5,50%", "3,25%,30%"])


@settings(max_examples=300, deadline=None)
@given(fleets, stage_specs, st.booleans(), st.sampled_from([None, KEY]))
def test_a_streamed_plan_is_the_file_build_plan_writes(
    fleet: list[Decision], spec: str, exclude_large: bool, key: bytes | None
) -> None:
    kw = {"stage_spec": spec, "exclude_large": exclude_large}
    assert streamed_text(fleet, Memory(), key, **kw) == whole_text(fleet, key, **kw)


@settings(max_examples=200, deadline=None)
@given(fleets, stage_specs, st.booleans())
def test_ranks_sorted_in_chunks_and_merged_come_out_as_one_sort(
    fleet: list[Decision], spec: str, exclude_large: bool
) -> None:
    kw = {"stage_spec": spec, "exclude_large": exclude_large}
    with mock.patch.object(change_keys, "CHUNK", 3):
        assert streamed_text(fleet, Memory(), None, **kw) == whole_text(fleet, None, **kw)


@settings(max_examples=150, deadline=None)
@given(fleets, stage_specs, st.booleans(), st.sampled_from([None, KEY]), st.integers(1, 4000))
def test_items_passed_on_in_runs_of_any_size_make_the_same_file(
    fleet: list[Decision], spec: str, exclude_large: bool, key: bytes | None, run: int
) -> None:
    """The passes hand items on in runs of about _RUN bytes: a run of one item or of
    a few, cut anywhere, digests, signs and writes the same text."""
    kw = {"stage_spec": spec, "exclude_large": exclude_large}
    with mock.patch.object(plan_stream, "_RUN", run):
        assert streamed_text(fleet, Memory(), key, **kw) == whole_text(fleet, key, **kw)


def test_a_pass_hands_on_runs_not_items() -> None:
    fleet = [decision(f"e-{n:03}") for n in range(60)]
    plan = stream_plan(iter(fleet), Memory(), **HEADER)
    pieces = list(plan.utf8_pieces())
    # The head and tail of the document, and the items in one run (each is ~1 KB).
    assert len(pieces) < 60
    with mock.patch.object(plan_stream, "_RUN", 1):
        assert len(list(plan.utf8_pieces())) > 60


class CountingMemory(Memory):
    """Memory that counts the reads of a change's name and id (the sort's reads)."""

    def __init__(self) -> None:
        super().__init__()
        self.name_reads = 0

    def read(self, place: int, start: int = 0, stop: int | None = None) -> list[str]:
        self.name_reads += start == RECORD_PARTS - 2
        return super().read(place, start, stop)


@settings(max_examples=200, deadline=None)
@given(fleets, stage_specs, st.booleans())
def test_changes_that_come_by_name_are_put_in_order_without_reading_names(
    fleet: list[Decision], spec: str, exclude_large: bool
) -> None:
    """The scan's rows come ORDER BY name, id: where PostgreSQL sorts as Python does,
    the plan's order is the order of arrival within each rank."""
    kw = {"stage_spec": spec, "exclude_large": exclude_large}
    ordered = sorted(fleet, key=lambda d: (d.endpoint_name, d.endpoint_id))
    memory = CountingMemory()
    assert streamed_text(ordered, memory, None, **kw) == whole_text(ordered, None, **kw)
    assert memory.name_reads == 0
    # The first and the last change swapped: every name is read back to sort.
    changing = [i for i, d in enumerate(ordered) if d.changes]
    order = [(d.endpoint_name, d.endpoint_id) for d in ordered]
    if changing and order[changing[0]] != order[changing[-1]]:
        first, last = changing[0], changing[-1]
        ordered[first], ordered[last] = ordered[last], ordered[first]
        memory = CountingMemory()
        assert streamed_text(ordered, memory, None, **kw) == whole_text(ordered, None, **kw)
        assert memory.name_reads == len(changing)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleets, st.booleans(), st.sampled_from([None, KEY]))
def test_through_the_spill_file_too(
    fleet: list[Decision], exclude_large: bool, key: bytes | None
) -> None:
    from migrate.store.spill import Spill

    kw = {"exclude_large": exclude_large}
    with Spill(RECORD_PARTS) as spill:
        assert streamed_text(fleet, spill, key, **kw) == whole_text(fleet, key, **kw)


@settings(max_examples=200, deadline=None)
@given(fleets, st.booleans(), st.lists(st.integers(1, 7), max_size=12), st.data())
def test_chunks_rendered_apart_make_the_same_plan(
    fleet: list[Decision], exclude_large: bool, cuts: list[int], data: st.DataObject
) -> None:
    """As workers send a plan's changes: runs of decisions each made a PlannedChunk
    (none empty), or single decisions made Planned, mixed with decisions as they are."""
    kw = {"exclude_large": exclude_large}
    pieces: list[Any] = []
    rest = list(fleet)
    for cut in cuts:
        run, rest = rest[:cut], rest[cut:]
        if run:
            pieces.append(planned_chunk(run, exclude_large))
    for d in rest:
        pieces.append(data.draw(st.sampled_from([d, planned(d, exclude_large)])))
    plan = stream_plan(iter(pieces), Memory(), **HEADER, **kw)
    assert "".join(plan.pieces()) == whole_text(fleet, None, **kw)


def test_a_chunk_planned_for_another_exclude_large_is_refused() -> None:
    large = decision("a", "llama-3-70b", 70, flags=["large-model-loses-eager"])
    chunk = planned_chunk([large], exclude_large=True)
    with pytest.raises(PlanError, match="another --exclude-large"):
        stream_plan(iter([chunk]), Memory(), **HEADER, exclude_large=False)


def test_items_and_exclusions_read_back_as_the_plan_holds_them() -> None:
    fleet = [
        decision("a"),
        decision("b", "llama-3-70b", 70, flags=["large-model-loses-eager"]),
        decision("c", streaming_command_after="x", args_after={"k": [1, {"z": None}]}),
        decision("d", None, None),
    ]
    for exclude_large in (False, True):
        whole = build_plan(fleet, **HEADER, exclude_large=exclude_large)
        streamed = stream_plan(iter(fleet), Memory(), **HEADER, exclude_large=exclude_large)
        assert list(streamed.read_items()) == list(whole.items)
        assert list(streamed.read_excluded()) == list(whole.excluded)
        assert streamed.header.stages == whole.stages and streamed.planned == len(whole.items)
        assert parse_plan("".join(streamed.pieces())) == whole


@settings(max_examples=500, deadline=None)
@given(decisions().filter(lambda d: d.changes), st.sampled_from(["drawn", "same", "equal"]))
@example(
    decision("a", args_after={"stage": 3, "n": {"stage": [1]}}, streaming_command_after="s"),
    "drawn",
)
@example(decision("b", None, None, flags=[], command_after='é\n"\\\x00'), "same")
def test_every_item_text_is_json_dumps_of_its_dict(d: Decision, streaming: str) -> None:
    import json

    from migrate.core.json_text import canonical_json

    # The streaming command: as drawn, the command itself, or an equal copy of it.
    if streaming == "same":
        d.streaming_command_after = d.command_after
    elif streaming == "equal":
        d.streaming_command_after = "".join(list(d.command_after or ""))
    text = item_text(d)
    data = build_plan([d], **HEADER).items[0].to_dict()
    stage = str(data["stage"])
    assert text.canonical_prefix + stage + text.canonical_suffix == canonical_json(data)
    # As it stands in the file's list of items: its lines after the first four spaces in.
    indented = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False)
    assert text.indented_prefix + stage + text.indented_suffix == indented.replace("\n", "\n    ")


def test_bad_stages_and_policies_are_refused_before_the_scan() -> None:
    def never() -> Any:
        raise AssertionError("a decision was read")
        yield

    with pytest.raises(PlanError, match="--stages"):
        stream_plan(never(), Memory(), **HEADER, stage_spec="1,x")
    with pytest.raises(PlanError, match="policy.recorded"):
        stream_plan(never(), Memory(), **{**HEADER, "policy": {"threshold": 0.95}})


def test_a_change_apply_could_not_use_is_refused() -> None:
    with pytest.raises(PlanError, match="lacks bundle, command or fingerprint"):
        stream_plan(iter([decision("a", command_after=None)]), Memory(), **HEADER)


@settings(max_examples=100, deadline=None)
@given(fleets, st.booleans())
def test_the_size_floor_is_never_above_the_file(fleet: list[Decision], exclude_large: bool) -> None:
    plan = stream_plan(iter(fleet), Memory(), **HEADER, exclude_large=exclude_large)
    size = len("".join(plan.pieces()).encode("utf-8"))
    assert plan.size_floor <= size
    # It is the planned items' indented text: what apply's limit is first checked on.
    items = [
        item_text(d)
        for d in fleet
        if d.changes and not (exclude_large and goes_last_by(d.param_count_b, d.flags))
    ]
    assert plan.size_floor == sum(len(t.indented_prefix) + len(t.indented_suffix) for t in items)


def test_a_lone_surrogate_in_an_item_is_refused_naming_the_endpoint() -> None:
    """Stored JSON may hold one ("\\ud800"): a plan file, UTF-8, cannot."""
    bad = decision("odd-one", args_after={"note": "half \ud800 a pair"})
    with pytest.raises(PlanError, match="endpoint odd-one: .*lone surrogate"):
        planned(bad)
    with pytest.raises(PlanError, match="endpoint odd-one"):
        stream_plan(iter([decision("a"), bad]), Memory(), **HEADER)
    # Its model name too (also from stored JSON).
    with pytest.raises(PlanError, match="endpoint m: "):
        planned(decision("m", "llama-\udc00-8b"))
    # A plan made in memory (reconcile's) says the same.
    with pytest.raises(PlanError, match="endpoint odd-one: .*lone surrogate"):
        build_plan([decision("a"), bad], **HEADER)

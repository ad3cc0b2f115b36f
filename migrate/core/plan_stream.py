"""A plan made from a stream of decisions without holding its items: the same file. Pure.

build_plan (migrate.core.plan) holds every change; at 160,000 changes that is
gigabytes of decisions and items. Here each change's item is rendered as it
comes (in both JSON forms the file needs, with its stage left out: that is
known only when every change is in) and handed to `texts`, storage the shell
provides (migrate.store.spill: a temporary file), with the endpoint's name and
id; memory keeps eight bytes a change (migrate.core.change_keys), which reads
names back to put the changes in order. At the end the stages are cut, and the
digest, the signature and the file's text are made by reading the items back
in plan order, once for each, over exactly the text `to_json(build_plan(...))`
writes: a plan file is the same bytes whichever way it was made, and reads
back with parse_plan as any other.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields, replace
from operator import attrgetter
from typing import Any, NamedTuple, Protocol

from migrate.core import staging, text_record
from migrate.core.change_keys import ChangeKeys
from migrate.core.json_text import (
    Buffer,
    Elements,
    canonical_json,
    indented_json,
    scalar_text,
)
from migrate.core.plan import (
    CHANGING_ACTIONS,
    Plan,
    PlanError,
    PlanItem,
    Stage,
    check_change,
    compute_digest,
    excluded_entry,
    file_pieces,
    file_utf8_pieces,
    item_from_dict,
    lone_surrogate,
    plan_summary,
    read_policy,
    signature_of,
    stage_specs,
)
from migrate.core.records import Decision
from migrate.core.staging import DEFAULT_STAGES

# The one key of an item not known while the scan runs.
_STAGE = "stage"


class ItemText(NamedTuple):
    """An item's JSON text with its stage left out: prefix + str(stage) + suffix is the
    item as canonical_json writes it, and as it stands in the plan file's list of items:
    json.dumps(indent=2, sort_keys=True) of it, every line after the first indented
    four more spaces (json_text.Elements)."""

    canonical_prefix: str
    canonical_suffix: str
    indented_prefix: str
    indented_suffix: str


def item_text(d: Decision) -> ItemText:
    """The text of a change's plan item; PlanError when the decision lacks what apply needs.

    Written by hand: each value is encoded once for both forms, and a streaming
    command that is the command itself once for both keys (the commands are most
    of the text; canonical_json and indented_json of the item encoded each four
    times: 25 us a change, now 10). Objects are theirs, re-indented for the depth.
    """
    check_change(d)
    values = _item_values(d)  # item_of(d).to_dict()'s values, read off the decision
    canonical: list[str] = []
    indented: list[str] = []
    last: Any = None
    last_text = ""
    for (key, c_name, i_name), value in zip(_KEYS_WRITTEN, values, strict=True):
        if key == _BASIS:
            value = value or ""  # as item_of makes it
        kind = type(value)
        if kind is str:
            if value is not last:  # a streaming command is mostly the command itself
                last, last_text = value, _string(value)
            c_value = i_value = last_text
        elif (scalar := scalar_text(value)) is not None:
            c_value = i_value = scalar
        elif (kind is list or kind is tuple) and all(type(v) is str for v in value):
            texts = [_string(v) for v in value]
            c_value = "[" + ",".join(texts) + "]"
            i_value = f"[{_VALUE}" + f",{_VALUE}".join(texts) + f"{_KEY}]" if texts else "[]"
        else:
            c_value = canonical_json(value)
            i_value = indented_json(value).replace("\n", _KEY)
        canonical.append(c_name + c_value)
        indented.append(i_name + i_value)
    # Keys are written sorted: the stage goes between those before it and those after.
    # (Both sides of it have keys: see _HEAD.)
    return ItemText(
        "{" + ",".join(canonical[:_HEAD]) + f',"{_STAGE}":',
        "," + ",".join(canonical[_HEAD:]) + "}",
        "{" + _KEY + f",{_KEY}".join(indented[:_HEAD]) + f',{_KEY}"{_STAGE}": ',
        f",{_KEY}" + f",{_KEY}".join(indented[_HEAD:]) + _ITEM + "}",
    )


_string = json.encoder.encode_basestring  # as both forms write a string (ensure_ascii=False)
# Where the lines of an item in the file start: the item's own (its closing brace), its
# keys', and the values' of a list under a key. An item is an element of the file's
# "items" list, so its first line starts indented four spaces (json_text.Elements).
_ITEM = "\n    "
_KEY = _ITEM + "  "
# Between two items in the file's list; and how many bytes of items a piece of a pass
# over them holds (a piece an item: 0.5 s of a 100k plan's serial end went on pieces).
_ITEM_JOIN = ("," + _ITEM).encode()
_RUN = 256 * 1024
_VALUE = _KEY + "  "
_ITEM_KEYS = frozenset(f.name for f in fields(PlanItem)) - {_STAGE, "policy"}
# Each key with its name as the canonical and the indented form write it, sorted.
_KEYS_WRITTEN = tuple((key, _string(key) + ":", _string(key) + ": ") for key in sorted(_ITEM_KEYS))
# Each key's value is the decision's attribute of that name (flags a list for a tuple),
# but for a basis fingerprint that is None: "".
_item_values = attrgetter(*sorted(_ITEM_KEYS))
_BASIS = "basis_fingerprint"
_HEAD = sum(key < _STAGE for key in _ITEM_KEYS)
assert 0 < _HEAD < len(_ITEM_KEYS)


# What is stored of each change, in this order: for an item, its ItemText; for a change
# left out, its `excluded` entry as canonical text, "", indented text, ""; then, for
# both, the endpoint's name and id, which ChangeKeys sorts by.
RECORD_PARTS = len(ItemText._fields) + 2
_NAME = len(ItemText._fields)


class Planned(NamedTuple):
    """What stream_plan takes of one decision: made where the decision is made (the
    scan's render, in a worker for a big fleet), so that the main process only stores
    bytes. ``record``: the change's stored texts (see RECORD_PARTS) as
    text_record.encode makes them, None for no change; ``size_floor``: the characters
    of its item's indented text (0 for a change left out); ``order``: the endpoint's
    (name, id), which plan order sorts by."""

    action: str
    model_name: str | None
    param_count_b: int | None
    flags: tuple[str, ...]
    left_out: bool
    record: bytes | None
    size_floor: int = 0
    order: tuple[str, str] | None = None


def planned(d: Decision, exclude_large: bool = False) -> Planned:
    """The decision as stream_plan takes it; PlanError when a change lacks what apply needs."""
    flags = tuple(d.flags)
    if d.action not in CHANGING_ACTIONS:
        return Planned(d.action, d.model_name, d.param_count_b, flags, False, None)
    left_out = exclude_large and staging.goes_last_by(d.param_count_b, flags)
    if left_out:
        entry = excluded_entry(d)
        indented = indented_json(entry).replace("\n", _ITEM)
        texts: tuple[str, ...] = (canonical_json(entry), "", indented, "")
        floor = 0
    else:
        texts = item_text(d)
        floor = len(texts[2]) + len(texts[3])
    order = (d.endpoint_name, d.endpoint_id)
    try:
        record = text_record.encode((*texts, *order), errors="strict")
    except UnicodeEncodeError:
        raise lone_surrogate(d.endpoint_name) from None
    return Planned(d.action, d.model_name, d.param_count_b, flags, left_out, record, floor, order)


class PlannedChunk(NamedTuple):
    """Consecutive decisions as stream_plan takes them: each action counted, and the
    changes' Planned (a chunk rendered on a worker sends nothing else back)."""

    actions: Counter[str]
    changes: tuple[Planned, ...]


def planned_chunk(decisions: list[Decision], exclude_large: bool = False) -> PlannedChunk:
    """The decisions as stream_plan takes them, made where they are made (scan's render_chunk)."""
    return PlannedChunk(
        Counter(d.action for d in decisions),
        tuple(planned(d, exclude_large) for d in decisions if d.action in CHANGING_ACTIONS),
    )


class Texts(Protocol):
    """Where changes' records wait between the scan and the file (migrate.store.spill.Spill)."""

    def append_record(self, record: bytes) -> int: ...
    def read(self, place: int, start: int = 0, stop: int | None = None) -> list[str]: ...
    def read_utf8(self, place: int, start: int = 0, stop: int | None = None) -> list[Buffer]: ...
    def flush(self) -> None:
        """Every record stored where another process reading the storage finds it."""


@dataclass(frozen=True)
class StreamedPlan:
    """A plan whose items are read back from `texts` each time they are needed.

    `header` is the plan without items or excluded changes: its stages,
    summary, digest and signature are the whole plan's. `size_floor`: the
    items' indented text alone, in characters; the file has at least as many
    bytes, so a plan too large to write is known before it is written.
    """

    header: Plan
    keys: ChangeKeys
    texts: Texts
    size_floor: int = 0

    @property
    def planned(self) -> int:
        return self.keys.planned

    def body(self) -> dict[str, Any]:
        """Plan.body() of the whole plan, its lists made on demand (see json_text.Elements)."""
        doc = self.header.body()
        doc["items"] = Elements(
            lambda: _runs(self._items(0), b","), lambda: _runs(self._items(2), _ITEM_JOIN)
        )
        doc["excluded"] = Elements(
            lambda: _runs(self._excluded(0), b","), lambda: _runs(self._excluded(2), _ITEM_JOIN)
        )
        return doc

    def _items(self, start: int) -> Iterator[tuple[Buffer, ...]]:
        """Each item in plan order: parts start..start+1 of its record, its stage between."""
        read = self.texts.read_utf8
        stages = [b"%d" % (n + 1) for n in range(len(self.header.stages))]
        for stage, place in self.keys.items():
            prefix, suffix = read(place, start, start + 2)
            yield prefix, stages[stage - 1], suffix

    def _excluded(self, part: int) -> Iterator[list[Buffer]]:
        for place in self.keys.excluded():
            yield self.texts.read_utf8(place, part, part + 1)

    def read_items(self) -> Iterator[PlanItem]:
        """The items, in plan order, one at a time (for the ticket)."""
        policy = read_policy(self.header.policy, self.header.overrides)
        for n, parts in enumerate(self._items(0), 1):
            yield item_from_dict(json.loads(b"".join(parts)), n, policy)

    def read_excluded(self) -> Iterator[dict[str, Any]]:
        return (json.loads(bytes(entry)) for (entry,) in self._excluded(0))

    def pieces(self) -> Iterator[str]:
        """The file's text in pieces: to_json(build_plan(...)) of the same decisions."""
        return file_pieces(self.body(), self.header.digest, self.header.signature)

    def utf8_pieces(self) -> Iterator[Buffer]:
        """The file's UTF-8 bytes in pieces, the items' as the spill holds them."""
        return file_utf8_pieces(self.body(), self.header.digest, self.header.signature)


def _runs(elements: Iterable[Sequence[Buffer]], separator: bytes) -> Iterator[bytearray]:
    """The elements' parts joined, the elements by ``separator``, in runs of about _RUN
    bytes: what json_text.Elements yields."""
    run = bytearray()
    between = b""
    for parts in elements:
        run += between
        for part in parts:
            run += part
        between = separator
        if len(run) >= _RUN:
            yield run
            run = bytearray()
    if run:
        yield run


def seal(plan: StreamedPlan) -> StreamedPlan:
    """The plan with its digest computed (one pass over the items)."""
    return with_digest(plan, compute_digest(plan.body()))


def with_digest(plan: StreamedPlan, digest: str) -> StreamedPlan:
    """The plan with this digest (made elsewhere: migrate.rollout.digest_aside)."""
    return replace(plan, header=replace(plan.header, digest=digest))


def sign(plan: StreamedPlan, key: bytes) -> StreamedPlan:
    """The sealed plan with its HMAC, as migrate.core.plan.sign makes it (one more pass)."""
    signature = signature_of(plan.body(), plan.header.digest, key)
    return replace(plan, header=replace(plan.header, signature=signature))


def stream_plan(
    decisions: Iterable[Decision | Planned | PlannedChunk],
    texts: Texts,
    *,
    created_at: str,
    created_by: str,
    tool_version: str,
    database: dict[str, Any],
    schema: str,
    policy: dict[str, Any],
    filters: dict[str, Any],
    overrides: str | None,
    stage_spec: str = DEFAULT_STAGES,
    exclude_large: bool = False,
    sealed: bool = True,
) -> StreamedPlan:
    """build_plan's plan, sealed, with every item's text in `texts` rather than in memory.

    The stages and the policy are checked before the first decision is read.
    ``decisions`` may come as :func:`planned` (or :func:`planned_chunk`) made them with
    this ``exclude_large``. ``sealed=False``: its digest is left to the caller (""), who
    may make it while the file is written (migrate.rollout.digest_aside).
    """
    specs = stage_specs(stage_spec)
    read_policy(policy, overrides)
    keys = ChangeKeys(specs, exclude_large)
    actions: Counter[str] = Counter()
    size_floor = 0
    for d in decisions:
        if isinstance(d, PlannedChunk):
            actions.update(d.actions)
            changes: Iterable[Planned] = d.changes
        else:
            p = d if isinstance(d, Planned) else planned(d, exclude_large)
            actions[p.action] += 1
            changes = (p,)
        for p in changes:
            if p.record is None:
                continue
            if p.left_out != keys.left_out(p.param_count_b, p.flags):
                raise PlanError("a change was rendered for another --exclude-large than the plan's")
            size_floor += p.size_floor
            place = texts.append_record(p.record)
            keys.add(p.model_name, p.param_count_b, p.flags, place, p.order)
    sizes = keys.finish(lambda place: texts.read(place, _NAME, _NAME + 2))
    header = Plan(
        created_at=created_at,
        created_by=created_by,
        tool_version=tool_version,
        database=dict(database),
        schema=schema,
        policy=dict(policy),
        filters=dict(filters),
        overrides=overrides,
        stage_spec=stage_spec,
        exclude_large=exclude_large,
        summary=plan_summary(actions, keys.planned, keys.left_out_count),
        stages=tuple(Stage(n, name, size) for n, (name, size) in enumerate(sizes, 1)),
        items=(),
    )
    plan = StreamedPlan(header, keys, texts, size_floor)
    return seal(plan) if sealed else plan

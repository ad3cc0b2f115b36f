"""Endpoint rows as core records.

Pure (no driver, no SQLAlchemy), so a worker process that classifies rows sent
to it imports this and nothing heavier.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any, NamedTuple

import msgspec

from migrate.core.records import BundleRecord, EndpointRecord

# The JSON columns (labels of fleet.endpoint_query).
JSON_KEYS = ("e_endpoint_metadata", "b_bundle_metadata")
# Most bundles stream with their very command: sent whole, each row would carry
# it twice from the server, through pickle and the pipe (2-4 KB a copy).
COMMAND_KEY = "b_runnable_image_command"
STREAMING_KEY = "b_streaming_enhanced_runnable_image_streaming_command"

# Sent by the server for a streaming command equal to the command (never a real
# value: that is an array or null), so a row carries that command once.
SAME_AS_COMMAND = 0
# timestamptz columns, which JSON writes as ISO 8601 text with the session's offset.
TIME_KEYS = frozenset({"e_created_at", "e_last_updated_at", "b_created_at"})
_parse_time = datetime.fromisoformat
_decode = msgspec.json.Decoder().decode  # built once: decode_row

# Each record field's column label (fleet.endpoint_query), in the field order of the
# records' constructors; None: the bundle, made of the other table.
_BUNDLE_KEYS = (
    "b_id",
    "b_flavor",
    COMMAND_KEY,
    STREAMING_KEY,
    "b_runnable_image_worker_command",
    "b_created_at",
    "b_bundle_metadata",
)
_ENDPOINT_KEYS = (
    "e_id",
    "e_name",
    "e_owner",
    "e_endpoint_status",
    "e_endpoint_type",
    "e_endpoint_metadata",
    "e_current_bundle_id",
    None,
    "e_created_at",
    "e_last_updated_at",
)
_REQUIRED = ("e_id", "e_name")
_METADATA = _ENDPOINT_KEYS.index("e_endpoint_metadata")
_BUNDLE = _ENDPOINT_KEYS.index(None)


class _Layout(NamedTuple):
    """Where a row of these labels keeps what a record needs: indices into its values,
    where one past the row is the None that a column the row lacks reads as."""

    bundle_id: int
    bundle: Callable[[list[Any]], tuple[Any, ...]]
    endpoint: Callable[[list[Any]], tuple[Any, ...]]
    metadata: int
    # What a JSON row says otherwise than a typed one (record_from_json).
    streaming: int | None
    command: int | None
    times: tuple[int, ...]


@functools.lru_cache(maxsize=16)
def _layout(keys: tuple[str, ...]) -> _Layout:
    for key in _REQUIRED:
        if key not in keys:
            raise KeyError(key)
    absent = len(keys)
    index = {key: i for i, key in enumerate(keys)}
    return _Layout(
        index.get("b_id", absent),
        itemgetter(*(index.get(key, absent) for key in _BUNDLE_KEYS)),
        itemgetter(*(absent if key is None else index.get(key, absent) for key in _ENDPOINT_KEYS)),
        index.get("e_endpoint_metadata", absent),
        index.get(STREAMING_KEY),
        index.get(COMMAND_KEY),
        tuple(i for i, key in enumerate(keys) if key in TIME_KEYS),
    )


def _record(layout: _Layout, values: list[Any]) -> EndpointRecord:
    """The record of a row's values laid out as ``layout`` says (the list is extended)."""
    values.append(None)
    bundle = None
    if values[layout.bundle_id] is not None:
        bundle = BundleRecord(*layout.bundle(values))
    fields = list(layout.endpoint(values))
    if not isinstance(fields[_METADATA], dict):
        fields[_METADATA] = {}
    fields[_BUNDLE] = bundle
    return EndpointRecord(*fields)


def record_from_row(row: Mapping[str, Any]) -> EndpointRecord:
    """A record from a row whose JSON columns are decoded (labels as in fleet.endpoint_query)."""
    return _record(_layout(tuple(row)), list(row.values()))


@dataclass
class RowStream:
    """Rows as JSON texts, one array per row, its items in the order of ``keys``.

    The server builds them (see fleet.stream_rows): decoding one JSON text costs
    a fraction of what the driver takes to make sixteen typed values, and a text
    goes to another process nearly for free.
    """

    keys: tuple[str, ...]
    values: Iterator[str]

    def record(self, values: str) -> EndpointRecord:
        return record_from_json(self.keys, values)


def record_from_json(keys: tuple[str, ...], text: str) -> EndpointRecord:
    """The record of one row of fleet.stream_rows, as record_from_row makes from typed columns."""
    values = decode_row(text)
    if len(values) != len(keys):
        raise ValueError(f"a row of {len(values)} values for {len(keys)} columns")
    layout = _layout(keys)
    at = layout.streaming
    if at is not None and values[at] == SAME_AS_COMMAND:
        if layout.command is None:
            raise KeyError(COMMAND_KEY)  # the server sends the marker only beside the command
        values[at] = values[layout.command]
    for i in layout.times:
        value = values[i]
        if value is not None:
            values[i] = _parse_time(value)
    return _record(layout, values)


def decode_row(text: str) -> Any:
    """``json.loads(text)``: msgspec's decoder, which reads these rows in half the time
    (3.6 against 6.4 us a row of 1.4 KB, measured), or json.loads where msgspec refuses
    what Python's reads (NaN, a number beyond a double, a lone surrogate, escaped or
    not), or nests deeper than it goes: the same values, of the same types, or the same
    error. One difference is left: an array or object nested to within a few levels of
    Python's recursion limit, which json.loads gives up on, is read (a row of the scan
    used to stop it with RecursionError)."""
    try:
        return _decode(text)
    except (msgspec.MsgspecError, RecursionError, UnicodeEncodeError):
        return json.loads(text)

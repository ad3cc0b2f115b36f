"""Endpoint rows as core records.

Pure (no driver, no SQLAlchemy), so a worker process that classifies rows sent
to it imports this and nothing heavier.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from migrate.core.records import BundleRecord, EndpointRecord

# The JSON columns (labels of fleet.endpoint_query), sent as text by stream_rows.
JSON_KEYS = ("e_endpoint_metadata", "b_bundle_metadata")
# Most bundles stream with their very command: sent to a worker as it is, each
# row would carry it twice through pickle and the pipe (2-4 KB a copy).
_COMMAND = "b_runnable_image_command"
_STREAMING = "b_streaming_enhanced_runnable_image_streaming_command"
_SAME_AS_COMMAND = ("same as the command",)  # psycopg reads arrays as lists, never tuples


def record_from_row(row: Mapping[str, Any]) -> EndpointRecord:
    """A record from a row whose JSON columns are decoded (labels as in fleet.endpoint_query)."""
    bundle = None
    if row.get("b_id") is not None:
        bundle = BundleRecord(
            id=row["b_id"],
            flavor=row.get("b_flavor"),
            command=row.get("b_runnable_image_command"),
            streaming_command=row.get("b_streaming_enhanced_runnable_image_streaming_command"),
            worker_command=row.get("b_runnable_image_worker_command"),
            created_at=row.get("b_created_at"),
            bundle_metadata=row.get("b_bundle_metadata"),
        )
    metadata = row.get("e_endpoint_metadata")
    return EndpointRecord(
        id=row["e_id"],
        name=row["e_name"],
        owner=row.get("e_owner"),
        status=row.get("e_endpoint_status"),
        endpoint_type=row.get("e_endpoint_type"),
        metadata=metadata if isinstance(metadata, dict) else {},
        current_bundle_id=row.get("e_current_bundle_id"),
        bundle=bundle,
        created_at=row.get("e_created_at"),
        last_updated_at=row.get("e_last_updated_at"),
    )


@dataclass
class RowStream:
    """Rows as tuples under ``keys``, JSON columns as their text."""

    keys: tuple[str, ...]
    values: Iterator[tuple[Any, ...]]

    def record(self, values: tuple[Any, ...]) -> EndpointRecord:
        return record_from_values(self.keys, values)


def packed(keys: tuple[str, ...], chunk: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The rows to send another process, a streaming command equal to the command sent once.

    record_from_values reads them as it reads the rows themselves.
    """
    if _COMMAND not in keys or _STREAMING not in keys:
        return chunk
    c, s = keys.index(_COMMAND), keys.index(_STREAMING)
    out = []
    for values in chunk:
        streaming = values[s]
        if streaming is not None and streaming == values[c]:
            values = (*values[:s], _SAME_AS_COMMAND, *values[s + 1 :])
        out.append(values)
    return out


def record_from_values(keys: tuple[str, ...], values: tuple[Any, ...]) -> EndpointRecord:
    row = dict(zip(keys, values, strict=True))
    if row.get(_STREAMING) == _SAME_AS_COMMAND:
        row[_STREAMING] = row[_COMMAND]
    for key in JSON_KEYS:
        text = row.get(key)
        if text is not None:
            row[key] = json.loads(text)
    return record_from_row(row)

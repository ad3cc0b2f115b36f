"""Endpoint rows as core records.

Pure (no driver, no SQLAlchemy), so a worker process that classifies rows sent
to it imports this and nothing heavier.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from migrate.core.records import BundleRecord, EndpointRecord

# The JSON columns (labels of fleet.endpoint_query).
JSON_KEYS = ("e_endpoint_metadata", "b_bundle_metadata")
# Most bundles stream with their very command: sent whole, each row would carry
# it twice from the server, through pickle and the pipe (2-4 KB a copy).
COMMAND_KEY = "b_runnable_image_command"
STREAMING_KEY = "b_streaming_enhanced_runnable_image_streaming_command"


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
    """Rows as JSON texts, one array per row, its items in the order of ``keys``.

    The server builds them (see fleet.stream_rows): decoding one JSON text costs
    a fraction of what the driver takes to make sixteen typed values, and a text
    goes to another process nearly for free.
    """

    keys: tuple[str, ...]
    values: Iterator[str]

    def record(self, values: str) -> EndpointRecord:
        return record_from_json(self.keys, values)


# Sent by the server for a streaming command equal to the command (never a real
# value: that is an array or null), so a row carries that command once.
SAME_AS_COMMAND = 0
# timestamptz columns, which JSON writes as ISO 8601 text with the session's offset.
TIME_KEYS = frozenset({"e_created_at", "e_last_updated_at", "b_created_at"})
_parse_time = datetime.fromisoformat


def record_from_json(keys: tuple[str, ...], text: str) -> EndpointRecord:
    """The record of one row of fleet.stream_rows, as record_from_row makes from typed columns."""
    row = dict(zip(keys, json.loads(text), strict=True))
    if row.get(STREAMING_KEY) == SAME_AS_COMMAND:
        row[STREAMING_KEY] = row[COMMAND_KEY]
    for key in TIME_KEYS:
        value = row.get(key)
        if value is not None:
            row[key] = _parse_time(value)
    return record_from_row(row)

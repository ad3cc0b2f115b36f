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


def record_from_values(keys: tuple[str, ...], values: tuple[Any, ...]) -> EndpointRecord:
    row = dict(zip(keys, values, strict=True))
    for key in JSON_KEYS:
        text = row.get(key)
        if text is not None:
            row[key] = json.loads(text)
    return record_from_row(row)

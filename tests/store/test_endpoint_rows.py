"""Rows as records: each field from its own column, whichever columns a schema has.

The database tests (tests/scan/test_row_stream.py) check that the scan's JSON rows
and apply's typed rows make equal records; both go through the same layout, so
here each field is checked by name against the column it must come from.
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from migrate.core.records import BundleRecord, EndpointRecord
from migrate.store.endpoint_rows import (
    COMMAND_KEY,
    SAME_AS_COMMAND,
    STREAMING_KEY,
    record_from_json,
    record_from_row,
)

_WHEN = [datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), datetime(2025, 6, 7, 8, 9, 10, tzinfo=UTC)]


def _row() -> dict:
    return {
        "e_id": "end_1",
        "e_name": "llama-7b",
        "e_owner": "team-a",
        "e_endpoint_status": "READY",
        "e_endpoint_type": "streaming",
        "e_endpoint_metadata": {"_llm": {"model_name": "llama-2-7b"}},
        "e_current_bundle_id": "bun_1",
        "e_created_at": _WHEN[0],
        "e_last_updated_at": _WHEN[1],
        "b_id": "bun_1",
        "b_flavor": "streaming_enhanced_runnable_image",
        COMMAND_KEY: ["/bin/bash", "-c", "python -m vllm_server"],
        STREAMING_KEY: ["/bin/bash", "-c", "python -m vllm_server --x"],
        "b_runnable_image_worker_command": ["worker"],
        "b_created_at": _WHEN[1],
        "b_bundle_metadata": {"k": 1},
        "b_unused_column": "ignored",
    }


def test_every_field_comes_from_its_column() -> None:
    row = _row()
    assert record_from_row(row) == EndpointRecord(
        id="end_1",
        name="llama-7b",
        owner="team-a",
        status="READY",
        endpoint_type="streaming",
        metadata={"_llm": {"model_name": "llama-2-7b"}},
        current_bundle_id="bun_1",
        bundle=BundleRecord(
            id="bun_1",
            flavor="streaming_enhanced_runnable_image",
            command=row[COMMAND_KEY],
            streaming_command=row[STREAMING_KEY],
            worker_command=["worker"],
            created_at=_WHEN[1],
            bundle_metadata={"k": 1},
        ),
        created_at=_WHEN[0],
        last_updated_at=_WHEN[1],
    )


def test_missing_columns_read_as_none_and_a_row_needs_id_and_name() -> None:
    row = _row()
    for key in ("e_owner", "e_endpoint_type", "b_runnable_image_worker_command", "b_created_at"):
        del row[key]
    record = record_from_row(row)
    assert record.owner is None and record.endpoint_type is None
    assert record.bundle is not None
    assert record.bundle.worker_command is None and record.bundle.created_at is None
    assert record.name == "llama-7b" and record.bundle.flavor == row["b_flavor"]
    for required in ("e_id", "e_name"):
        with pytest.raises(KeyError):
            record_from_row({k: v for k, v in _row().items() if k != required})


def test_no_bundle_and_metadata_that_is_not_an_object() -> None:
    row = {**_row(), "b_id": None, "e_endpoint_metadata": ["not", "an", "object"]}
    record = record_from_row(row)
    assert record.bundle is None
    assert record.metadata == {}


def test_a_json_row_in_any_column_order_is_the_typed_row() -> None:
    rng = random.Random(7)
    typed = _row()
    for _ in range(50):
        keys = list(typed)
        rng.shuffle(keys)
        keys = keys[: rng.randint(2, len(keys))]
        for required in ("e_name", "e_id"):
            if required not in keys:
                keys.insert(rng.randint(0, len(keys)), required)
        values = [
            typed[k].isoformat() if isinstance(typed[k], datetime) else typed[k] for k in keys
        ]
        if STREAMING_KEY in keys and COMMAND_KEY in keys and rng.random() < 0.5:
            values[keys.index(STREAMING_KEY)] = SAME_AS_COMMAND
            expected_streaming = typed[COMMAND_KEY]
        else:
            expected_streaming = typed[STREAMING_KEY] if STREAMING_KEY in keys else None
        record = record_from_json(tuple(keys), json.dumps(values))
        expected = record_from_row({k: typed[k] for k in keys})
        if expected.bundle is not None:
            bundle = replace(expected.bundle, streaming_command=expected_streaming)
            expected = replace(expected, bundle=bundle)
        assert record == expected


def test_a_json_row_of_the_wrong_width_is_refused() -> None:
    with pytest.raises(ValueError):
        record_from_json(("e_id", "e_name"), json.dumps(["end_1"]))

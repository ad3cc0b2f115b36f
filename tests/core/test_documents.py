"""Timestamps and numbers as every JSON document writes them."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from migrate.core.documents import json_default, timestamp

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?\+00:00$")
zones = st.builds(lambda m: timezone(timedelta(minutes=m)), st.integers(-14 * 60, 14 * 60))


@given(st.datetimes(timezones=zones, min_value=datetime(1970, 1, 2)))
def test_aware_times_become_rfc3339_utc_and_keep_the_instant(value: datetime) -> None:
    text = timestamp(value)
    assert RFC3339.match(text), text
    assert datetime.fromisoformat(text) == value


@given(st.datetimes(min_value=datetime(1970, 1, 2)))
def test_naive_times_are_taken_as_utc(value: datetime) -> None:
    assert datetime.fromisoformat(timestamp(value)) == value.replace(tzinfo=UTC)


def test_json_default() -> None:
    doc = {"at": datetime(2026, 12, 2, 7, 57, 35, 792343, tzinfo=UTC), "t": Decimal("0.95")}
    assert json.loads(json.dumps(doc, default=json_default)) == {
        "at": "2026-12-02T07:57:35.792343+00:00",
        "t": 0.95,
    }
    with pytest.raises(TypeError, match="set is not part of any output contract"):
        json.dumps({"x": {1}}, default=json_default)

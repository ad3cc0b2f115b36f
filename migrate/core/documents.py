"""What every JSON document the tool writes shares: a format version and one timestamp form.

Machines read scan, plan, status and reconcile output (and their JSON Schemas,
shipped as migrate.schemas). `FORMAT_VERSION` is the version of those
contracts: new keys may be added within a version; a key that changes meaning
or type bumps it. Timestamps are RFC 3339 (`2026-12-02T07:56:54+00:00`,
fractions of a second where the source has them), always in UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

FORMAT_VERSION = 1


def timestamp(value: datetime) -> str:
    """RFC 3339 in UTC; a naive value is taken to be UTC already (as PostgreSQL's now())."""
    aware = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.isoformat()


def json_default(value: Any) -> Any:
    """`json.dumps(default=...)` for what documents hold beyond JSON's own types."""
    if isinstance(value, datetime):
        return timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)  # numbers stay numbers (a threshold is 0.95, not "0.95")
    raise TypeError(f"{type(value).__name__} is not part of any output contract")

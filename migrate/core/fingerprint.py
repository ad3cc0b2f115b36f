"""A digest of everything a decision was based on.

The plan stores it; apply recomputes it from the locked row and refuses to
write when they differ. It covers only what the decision read, so a change
elsewhere in the row (a new column, another endpoint) never marks it stale.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from migrate.core.records import EndpointRecord


def _plain(value: Any) -> Any:
    """JSON's stand-in for what it cannot write (called by the encoder, only for those)."""
    if isinstance(value, datetime):
        # The session's TimeZone decides the offset psycopg returns; the same
        # instant must digest the same for a plan and an apply run elsewhere.
        return (value.astimezone(UTC) if value.tzinfo else value).isoformat()
    return str(value)


# One C-encoder pass instead of rebuilding the document first: a scan digests
# every endpoint twice. Keys are strings (the documents come from JSON columns).
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=_plain)


def digest(value: Any) -> str:
    text = _ENCODER.encode(value)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def _basis(record: EndpointRecord) -> dict[str, Any]:
    bundle = record.bundle
    return {
        "endpoint_id": record.id,
        "current_bundle_id": record.current_bundle_id,
        "metadata": record.metadata,
        "command": bundle.command if bundle else None,
        "streaming_command": bundle.streaming_command if bundle else None,
    }


def endpoint_fingerprint(record: EndpointRecord) -> str:
    """The basis plus status and last_updated_at: any touch shows."""
    # The keys are those of the first release, so plans made by it still verify.
    return digest(
        {**_basis(record), "status": record.status, "last_updated_at": record.last_updated_at}
    )


def basis_fingerprint(record: EndpointRecord) -> str:
    """Only what the decision read from the rows.

    Status is left out: an endpoint planned while UPDATE_FAILED that came back
    READY with nothing else changed must not read as drifted forever. Apply
    gates on READY on its own, so a not-ready endpoint is still never written.
    When just last_updated_at moved (a no-op update), this matches too.
    """
    return digest(_basis(record))


def command_digest(command: list[str] | None) -> str | None:
    return None if command is None else digest(command)

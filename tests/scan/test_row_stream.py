"""The scan's rows come as one JSON text each (fleet.stream_rows): the records made
from them must be the records apply makes from the typed row it locks
(store/rows.py), or a plan's fingerprints would never match at apply time.
"""

from __future__ import annotations

import pickle

import pytest
import sqlalchemy as sa

from migrate.core.fingerprint import fingerprints
from migrate.sandbox import synth
from migrate.sandbox.seed import seed_fleet
from migrate.store import fleet, rows
from migrate.store.connection import read_only
from migrate.store.endpoint_rows import SAME_AS_COMMAND

STREAMING = rows.STREAMING
STREAMING_ROUTE = "streaming_enhanced_runnable_image_streaming_predict_route"


def _seeded(me_db, n: int = 40) -> list[str]:
    """The LLM endpoints' bundles, streaming ones first."""
    specs = list(synth.random_fleet(n, 11, schema_version=me_db.version))
    seed_fleet(me_db.url, specs, schema=me_db.schema, schema_version=me_db.version)
    with me_db.engine.connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    f"SELECT b.id FROM {me_db.schema}.endpoints e "
                    f"JOIN {me_db.schema}.bundles b ON b.id = e.current_bundle_id "
                    "WHERE CAST(e.endpoint_metadata AS jsonb) ? '_llm' "
                    "ORDER BY b.flavor = 'streaming_enhanced_runnable_image' DESC, e.name"
                )
            ).scalars()
        )


def _odd_rows(me_db, bundles: list[str]) -> None:
    """Values a driver and JSON might read differently, one bundle or endpoint each."""
    s = me_db.schema
    odd_text = 'tab\there "quoted" back\\slash\nnew line \u00e9 \u2603 \x01 \x7f'
    # A json column keeps its text: newlines and tabs between tokens, a repeated key,
    # escapes, numbers JSON and Python write differently.
    odd_json = (
        '{\n\t"k": 1,\n "k": 2, "s": "a\\\\b\\n\\u00e9\\"", '
        '"n": [1e400, -0.0, 0.950, 12345678901234567890]}'
    )
    array = '{/bin/bash,-c,"python -m x"}'
    updates = [
        # Streaming command: absent; the same as the command; equal but for array bounds.
        (
            f"UPDATE {s}.bundles SET {STREAMING} = NULL, {STREAMING_ROUTE} = NULL, "
            "flavor = 'runnable_image' WHERE id = :b",
            {},
        ),
        (f"UPDATE {s}.bundles SET {STREAMING} = runnable_image_command WHERE id = :b", {}),
        (
            f"UPDATE {s}.bundles SET {STREAMING} = CAST(:bounded AS text[]), "
            "runnable_image_command = CAST(:plain AS text[]) WHERE id = :b",
            {"bounded": "[0:2]=" + array, "plain": array},
        ),
        # Arrays with a NULL element and text JSON must escape; a nested array.
        (
            f"UPDATE {s}.bundles SET runnable_image_command = :v WHERE id = :b",
            {"v": ["/bin/bash", None, odd_text]},
        ),
        (
            f"UPDATE {s}.bundles SET runnable_image_command = CAST(:v AS text[]) WHERE id = :b",
            {"v": "{{a,b},{c,NULL}}"},
        ),
        (
            f"UPDATE {s}.bundles SET bundle_metadata = CAST(:v AS json) WHERE id = :b",
            {"v": odd_json},
        ),
        (f"UPDATE {s}.bundles SET bundle_metadata = NULL, created_at = NULL WHERE id = :b", {}),
        # Times far from now, with fractions, and none.
        (
            f"UPDATE {s}.bundles SET created_at = '1890-01-01 00:00:00.000001+00' WHERE id = :b",
            {},
        ),
        (
            f"UPDATE {s}.endpoints SET last_updated_at = NULL, "
            "created_at = '2026-05-07 00:00:00.5+02' WHERE current_bundle_id = :b",
            {},
        ),
        # An endpoint with no bundle (the outer join's empty side).
        (
            f"UPDATE {s}.endpoints SET current_bundle_id = NULL WHERE current_bundle_id = :b",
            {},
        ),
    ]
    with me_db.engine.begin() as conn:
        for bundle, (statement, values) in zip(bundles, updates, strict=False):
            assert conn.execute(sa.text(statement), {"b": bundle, **values}).rowcount == 1


def _both_readings(engine: sa.Engine, schema: str):
    """(record from the scan's JSON row, record apply reads) for every LLM endpoint."""
    with read_only(engine, 60) as conn:
        query = fleet.endpoint_query(conn, schema, fleet.Filters())
        streamed = fleet.stream_rows(conn, query, batch=7)
        texts = list(streamed.values)
        for text in texts:
            scanned = streamed.record(text)
            endpoint = rows.read_endpoint(conn, schema, scanned.id, lock=False)
            assert endpoint is not None
            bundle = rows.read_bundle(conn, schema, endpoint["current_bundle_id"])
            yield text, scanned, rows.to_record(endpoint, bundle)


@pytest.mark.parametrize("timezone", ["UTC", "Asia/Kolkata"])
def test_records_from_json_rows_are_the_records_apply_reads(me_db, timezone: str) -> None:
    bundles = _seeded(me_db)
    _odd_rows(me_db, bundles)
    engine = sa.create_engine(me_db.url, connect_args={"options": f"-c timezone={timezone}"})
    try:
        pairs = list(_both_readings(engine, me_db.schema))
    finally:
        engine.dispose()
    assert len(pairs) == len(bundles)
    for _, scanned, applied in pairs:
        assert scanned == applied
        assert fingerprints(scanned) == fingerprints(applied)
        # What a worker receives is what was sent.
        assert pickle.loads(pickle.dumps(scanned)) == scanned
    by_bundle = {applied.current_bundle_id: (text, applied) for text, _, applied in pairs}
    # The odd rows are really there, and read as the driver reads them.
    text, record = by_bundle[bundles[1]]
    assert f", {SAME_AS_COMMAND}, " in text
    assert record.bundle.streaming_command == record.bundle.command
    assert by_bundle[bundles[0]][1].bundle.streaming_command is None
    _, record = by_bundle[bundles[3]]
    assert record.bundle.command[1] is None and "\u2603" in record.bundle.command[2]
    assert by_bundle[bundles[4]][1].bundle.command == [["a", "b"], ["c", None]]
    assert by_bundle[bundles[5]][1].bundle.bundle_metadata["k"] == 2
    assert by_bundle[bundles[7]][1].bundle.created_at.year == 1890
    assert by_bundle[None][1].bundle is None
    offsets = {r.last_updated_at.utcoffset() for _, r in by_bundle.values() if r.last_updated_at}
    assert {str(o) for o in offsets} == {"0:00:00" if timezone == "UTC" else "5:30:00"}

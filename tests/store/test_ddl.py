"""Model engine's tables as the fixtures build them: columns per version, constraints that bite."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from migrate.sandbox.embedded import to_libpq_url
from migrate.store.ddl import (
    DEFAULT_SCHEMA,
    SCHEMA_VERSIONS,
    create_model_engine_tables,
    model_engine_ddl,
    quote_ident,
    split_statements,
)

ADDED_2026_BUNDLES = {
    "runnable_image_worker_command",
    "runnable_image_worker_env",
    "runnable_image_routes",
    "runnable_image_extra_routes",
    "runnable_image_forwarder_type",
}
ADDED_2026_ENDPOINTS = {"status_reason", "task_expires_seconds", "queue_message_timeout_seconds"}
JSON_COLUMNS = {
    "bundle_metadata",
    "requirements",
    "env_params",
    "app_config",
    "artifact_app_config",
    "runnable_image_env",
    "runnable_image_worker_env",
    "triton_enhanced_runnable_image_model_replicas",
}


def columns(engine: Engine, table: str, schema: str = DEFAULT_SCHEMA) -> dict[str, tuple[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT column_name, data_type, character_maximum_length "
                "FROM information_schema.columns WHERE table_schema = :s AND table_name = :t"
            ),
            {"s": schema, "t": table},
        )
        return {name: (kind, length) for name, kind, length in rows}


# --- DDL text, no database ----------------------------------------------------------


def test_unknown_version_is_refused() -> None:
    with pytest.raises(ValueError, match="2025"):
        model_engine_ddl("2025")


def test_schema_name_is_substituted_and_quoted() -> None:
    ddl = model_engine_ddl("2026", 'we"ird')
    assert "hosted_model_inference" not in ddl
    assert 'CREATE SCHEMA IF NOT EXISTS "we""ird";' in ddl
    assert 'REFERENCES "we""ird".bundles (id)' in ddl


def test_quote_ident_rejects_empty_and_nul() -> None:
    assert quote_ident("a") == '"a"'
    for bad in ("", "a\x00b"):
        with pytest.raises(ValueError):
            quote_ident(bad)


def test_split_statements_keeps_semicolons_in_strings_and_drops_comments() -> None:
    text = "-- a; comment\nCREATE TABLE t (x text DEFAULT 'a;b'); -- trailing;\nSELECT 1;\n"
    assert split_statements(text) == ["CREATE TABLE t (x text DEFAULT 'a;b')", "SELECT 1"]


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
def test_every_version_has_both_tables_and_the_constraints(version: str) -> None:
    statements = split_statements(model_engine_ddl(version))
    assert sum(s.startswith("CREATE TABLE") for s in statements) == 2
    ddl = "\n".join(statements)
    for name in (
        "bundles_flavor_check",
        "bundles_runnable_image_command_iff_flavor",
        "bundles_runnable_image_required",
        "bundles_streaming_command_iff_flavor",
        "bundles_streaming_predict_route_iff_flavor",
        "endpoint_name_llm_uc",
        "idx_endpoint_metadata",
    ):
        assert name in ddl


# --- against PostgreSQL ------------------------------------------------------------------


def test_tables_have_the_columns_of_their_version(me_db: Any) -> None:
    bundles = columns(me_db.engine, "bundles")
    endpoints = columns(me_db.engine, "endpoints")
    # The legacy columns a row copy must carry along, whatever the version.
    for legacy in (
        "location",
        "version",
        "requirements",
        "env_params",
        "packaging_type",
        "app_config",
        "artifact_location",
        "cloudpickle_artifact_load_predict_fn",
        "zip_artifact_load_model_fn_module_path",
        "triton_enhanced_runnable_image_num_cpu",
        "streaming_enhanced_runnable_image_streaming_command",
    ):
        assert legacy in bundles
    assert bundles["runnable_image_command"][0] == "ARRAY"
    assert bundles["bundle_metadata"][0] == "json"
    assert endpoints["endpoint_metadata"][0] == "jsonb"
    assert "public_inference" in endpoints
    if me_db.version == "2024":
        assert bundles["name"] == ("character varying", 50)
        assert not ADDED_2026_BUNDLES & bundles.keys()
        assert not ADDED_2026_ENDPOINTS & endpoints.keys()
    else:
        assert bundles["name"][0] == "text"
        assert ADDED_2026_BUNDLES <= bundles.keys()
        assert ADDED_2026_ENDPOINTS <= endpoints.keys()
    assert bundles["owner"] == ("character varying", 24)


def test_indexes_and_foreign_key(me_db: Any) -> None:
    with me_db.engine.connect() as conn:
        indexes = dict(
            conn.execute(
                sa.text("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = :s"),
                {"s": me_db.schema},
            ).all()
        )
        fk = conn.execute(
            sa.text(
                "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c "
                "JOIN pg_class t ON t.oid = c.conrelid WHERE t.relname = 'endpoints' "
                "AND c.contype = 'f'"
            )
        ).scalar_one()
    assert "USING gin (endpoint_metadata)" in indexes["idx_endpoint_metadata"]
    assert "UNIQUE" in indexes["endpoint_name_llm_uc"]
    assert "WHERE (endpoint_metadata ? '_llm'::text)" in indexes["endpoint_name_llm_uc"]
    assert fk.startswith("FOREIGN KEY (current_bundle_id) REFERENCES")


def _insert(conn: Connection, schema: str, table: str, row: dict[str, Any]) -> None:
    names = list(row)
    values = []
    for name in names:
        if name in JSON_COLUMNS or name == "endpoint_metadata":
            cast = "jsonb" if name == "endpoint_metadata" else "json"
            values.append(f"CAST(:{name} AS {cast})")
        else:
            values.append(f":{name}")
    params = {
        k: json.dumps(v) if (k in JSON_COLUMNS or k == "endpoint_metadata") and v is not None else v
        for k, v in row.items()
    }
    conn.execute(
        sa.text(
            f"INSERT INTO {quote_ident(schema)}.{table} ({', '.join(names)}) "
            f"VALUES ({', '.join(values)})"
        ),
        params,
    )


def runnable_bundle(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": f"bun_{uuid.uuid4().hex[:20]}",
        "name": "llama-3-8b-instruct",
        "owner": "0123456789abcdef01234567",
        "created_by": "0123456789abcdef01234567",
        "bundle_metadata": {},
        "flavor": "runnable_image",
        "runnable_image_repository": "vllm",
        "runnable_image_tag": "0.6.3",
        "runnable_image_command": ["/bin/bash", "-c", "python -m vllm_server --port 5005"],
        "runnable_image_predict_route": "/predict",
        "runnable_image_healthcheck_route": "/health",
        "runnable_image_env": {},
        "runnable_image_protocol": "http",
        "runnable_image_readiness_initial_delay_seconds": 10,
    }
    row.update(changes)
    return row


def streaming_bundle(**changes: Any) -> dict[str, Any]:
    row = runnable_bundle(
        flavor="streaming_enhanced_runnable_image",
        streaming_enhanced_runnable_image_streaming_command=[
            "/bin/bash",
            "-c",
            "python -m vllm_server --port 5005",
        ],
        streaming_enhanced_runnable_image_streaming_predict_route="/stream",
    )
    row.update(changes)
    return row


def artifact_bundle(flavor: str, **changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": f"bun_{uuid.uuid4().hex[:20]}",
        "name": "classifier",
        "owner": "0123456789abcdef01234567",
        "flavor": flavor,
        "location": "s3://bucket/bundle.pkl",
        "requirements": ["torch"],
        "env_params": {"framework_type": "pytorch"},
        "packaging_type": "cloudpickle" if flavor == "cloudpickle_artifact" else "zip",
        "artifact_requirements": ["torch"],
        "artifact_location": "s3://bucket/bundle.pkl",
        "artifact_framework_type": "pytorch",
    }
    if flavor == "cloudpickle_artifact":
        row["cloudpickle_artifact_load_predict_fn"] = "predict"
        row["cloudpickle_artifact_load_model_fn"] = "model"
    else:
        row["zip_artifact_load_predict_fn_module_path"] = "app.predict"
        row["zip_artifact_load_model_fn_module_path"] = "app.model"
    row.update(changes)
    return row


def triton_bundle(**changes: Any) -> dict[str, Any]:
    row = runnable_bundle(
        flavor="triton_enhanced_runnable_image",
        triton_enhanced_runnable_image_num_cpu=4,
        triton_enhanced_runnable_image_commit_tag="abc",
        triton_enhanced_runnable_image_readiness_initial_delay_seconds=300,
        triton_enhanced_runnable_image_model_replicas={"m": "1"},
    )
    row.update(changes)
    return row


def test_valid_rows_of_every_flavor_are_accepted(me_db: Any) -> None:
    with me_db.engine.begin() as conn:
        for row in (
            runnable_bundle(),
            streaming_bundle(),
            triton_bundle(),
            artifact_bundle("cloudpickle_artifact"),
            artifact_bundle("zip_artifact"),
        ):
            _insert(conn, me_db.schema, "bundles", row)
        count = conn.execute(sa.text(f"SELECT count(*) FROM {me_db.schema}.bundles")).scalar()
    assert count == 5


# (row, constraint that must reject it)
BAD_BUNDLES: list[tuple[str, dict[str, Any], str]] = [
    (
        "runnable flavor with null command",
        runnable_bundle(runnable_image_command=None),
        "bundles_runnable_image_command_iff_flavor",
    ),
    (
        "streaming flavor with null command",
        streaming_bundle(runnable_image_command=None),
        "bundles_runnable_image_command_iff_flavor",
    ),
    (
        "artifact flavor with a command",
        artifact_bundle("cloudpickle_artifact", runnable_image_command=["python"]),
        "bundles_runnable_image_command_iff_flavor",
    ),
    ("unknown flavor", runnable_bundle(flavor="docker_image"), "bundles_flavor_check"),
    (
        "runnable flavor without repository",
        runnable_bundle(runnable_image_repository=None),
        "bundles_runnable_image_required",
    ),
    (
        "runnable flavor without readiness delay",
        runnable_bundle(runnable_image_readiness_initial_delay_seconds=None),
        "bundles_runnable_image_required",
    ),
    (
        "runnable flavor without healthcheck route",
        runnable_bundle(runnable_image_healthcheck_route=None),
        "bundles_runnable_image_required",
    ),
    (
        "streaming flavor without streaming command",
        streaming_bundle(streaming_enhanced_runnable_image_streaming_command=None),
        "bundles_streaming_command_iff_flavor",
    ),
    (
        "streaming flavor without streaming predict route",
        streaming_bundle(streaming_enhanced_runnable_image_streaming_predict_route=None),
        "bundles_streaming_predict_route_iff_flavor",
    ),
    (
        "plain runnable flavor with a streaming command",
        runnable_bundle(streaming_enhanced_runnable_image_streaming_command=["x"]),
        "bundles_streaming_command_iff_flavor",
    ),
    (
        "triton flavor without cpu",
        triton_bundle(triton_enhanced_runnable_image_num_cpu=None),
        "bundles_triton_required_iff_flavor",
    ),
    (
        "zip flavor without module paths",
        artifact_bundle("zip_artifact", zip_artifact_load_predict_fn_module_path=None),
        "bundles_zip_iff_flavor",
    ),
    (
        "cloudpickle flavor without artifact location",
        artifact_bundle("cloudpickle_artifact", artifact_location=None),
        "bundles_artifact_required",
    ),
]


def test_constraints_reject_bad_bundles(me_db: Any) -> None:
    failures = []
    with me_db.engine.connect() as conn:
        for label, row, constraint in BAD_BUNDLES:
            savepoint = conn.begin_nested() if conn.in_transaction() else conn.begin()
            try:
                _insert(conn, me_db.schema, "bundles", row)
            except sa.exc.IntegrityError as exc:
                got = exc.orig.diag.constraint_name if exc.orig is not None else None
                if got != constraint:
                    failures.append(f"{label}: rejected by {got}, expected {constraint}")
            else:
                failures.append(f"{label}: accepted")
            savepoint.rollback()
        # NOT NULL and the primary key, which are not CHECK constraints.
        with pytest.raises(sa.exc.IntegrityError, match="owner"):
            with conn.begin_nested() if conn.in_transaction() else conn.begin():
                _insert(conn, me_db.schema, "bundles", runnable_bundle(owner=None))
    assert not failures, failures


def test_bundle_name_length_follows_the_version(me_db: Any) -> None:
    long_name = "x" * 51
    with me_db.engine.connect() as conn:
        if me_db.version == "2024":
            with pytest.raises(sa.exc.DataError):
                _insert(conn, me_db.schema, "bundles", runnable_bundle(name=long_name))
        else:
            _insert(conn, me_db.schema, "bundles", runnable_bundle(name=long_name))


def _endpoint(bundle_id: str, name: str, created_by: str, llm: bool) -> dict[str, Any]:
    metadata: dict[str, Any] = {"team": "evals"}
    if llm:
        metadata["_llm"] = {"model_name": "llama-3-8b", "inference_framework": "vllm"}
    return {
        "id": f"end_{uuid.uuid4().hex[:20]}",
        "name": name,
        "created_by": created_by,
        "owner": created_by,
        "current_bundle_id": bundle_id,
        "endpoint_metadata": metadata,
        "endpoint_type": "streaming",
        "endpoint_status": "READY",
    }


def test_endpoints_foreign_key_and_partial_unique_name(me_db: Any) -> None:
    bundle = runnable_bundle()
    alice, bob = "a" * 24, "b" * 24
    with me_db.engine.begin() as conn:
        _insert(conn, me_db.schema, "bundles", bundle)
        _insert(conn, me_db.schema, "endpoints", _endpoint(bundle["id"], "shared", alice, True))
        # Same name is fine for endpoints that are not LLM endpoints...
        _insert(conn, me_db.schema, "endpoints", _endpoint(bundle["id"], "shared", bob, False))
        _insert(conn, me_db.schema, "endpoints", _endpoint(bundle["id"], "other", alice, False))
        _insert(conn, me_db.schema, "endpoints", _endpoint(bundle["id"], "other", bob, False))

    cases = [
        # ...but two LLM endpoints never share a name, even across owners.
        (_endpoint(bundle["id"], "shared", "c" * 24, True), "endpoint_name_llm_uc"),
        (_endpoint(bundle["id"], "other", alice, False), "endpoint_name_created_by_uc"),
        (_endpoint("bun_missing", "third", alice, False), "endpoints_current_bundle_id_fkey"),
    ]
    for row, constraint in cases:
        with me_db.engine.connect() as conn:
            with pytest.raises(sa.exc.IntegrityError) as info:
                _insert(conn, me_db.schema, "endpoints", row)
            assert info.value.orig is not None
            assert info.value.orig.diag.constraint_name == constraint


def test_custom_schema_name(db_engine: Engine, schema_version: str) -> None:
    schema = 'Model "Engine"'
    with db_engine.begin() as conn:
        create_model_engine_tables(conn, schema_version, schema)
        _insert(conn, schema, "bundles", runnable_bundle())
    assert "bundles" in {t for t in sa.inspect(db_engine).get_table_names(schema=schema)}
    assert DEFAULT_SCHEMA not in sa.inspect(db_engine).get_schema_names()


def test_tables_are_created_inside_the_callers_transaction(db_engine: Engine) -> None:
    with db_engine.connect() as conn:
        create_model_engine_tables(conn, "2026")
        conn.rollback()
    assert DEFAULT_SCHEMA not in sa.inspect(db_engine).get_schema_names()


def test_per_test_database_overhead_stays_small(pg_server_url: str) -> None:
    """Keeps an eye on what the db_url/me_db fixtures cost every test."""
    rounds = 5
    with psycopg.connect(to_libpq_url(pg_server_url), autocommit=True) as admin:
        names = [f"bm_overhead_{uuid.uuid4().hex[:12]}" for _ in range(rounds)]
        t0 = time.perf_counter()
        for name in names:
            admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        t1 = time.perf_counter()
        tables = 0.0
        for name in names:
            url = sa.engine.make_url(pg_server_url).set(database=name)
            engine = sa.create_engine(url)
            start = time.perf_counter()
            with engine.begin() as conn:
                create_model_engine_tables(conn, "2026")
            tables += time.perf_counter() - start
            engine.dispose()
        t2 = time.perf_counter()
        for name in names:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        t3 = time.perf_counter()
    create, drop, ddl = (t1 - t0) / rounds, (t3 - t2) / rounds, tables / rounds
    print(f"\nper test: CREATE DATABASE {create:.3f}s, DROP {drop:.3f}s, tables {ddl:.3f}s")
    # Generous bounds: a loaded CI machine must not make this flaky, only a
    # regression to seconds per test should fail it.
    assert create + drop + ddl < 3.0

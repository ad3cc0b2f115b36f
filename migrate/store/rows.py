"""SQL on model engine's own rows: read them whole, copy a bundle whole.

Columns come from the database (`SELECT *`, the catalog), never from a list in
code, so the same statements work on every schema version and copy columns
this tool has never heard of.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from migrate.core.records import EndpointRecord
from migrate.store.endpoint_rows import record_from_row
from migrate.store.ids import new_bundle_id

STREAMING = "streaming_enhanced_runnable_image_streaming_command"


def qident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# The endpoint's metadata as jsonb text, read with the row, so a write needs no second query.
METADATA_TEXT = "__bundle_migrate_metadata_text"


def read_endpoint(
    conn: Connection, schema: str, endpoint_id: str, *, lock: bool
) -> dict[str, Any] | None:
    """The endpoint row whole, plus its metadata as exact jsonb text under METADATA_TEXT."""
    suffix = " FOR UPDATE NOWAIT" if lock else ""
    row = (
        conn.execute(
            sa.text(
                f"SELECT *, CAST(CAST(endpoint_metadata AS jsonb) AS text) AS {METADATA_TEXT} "
                f"FROM {qident(schema)}.endpoints WHERE id = :id{suffix}"
            ),
            {"id": endpoint_id},
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def read_bundle(conn: Connection, schema: str, bundle_id: str) -> dict[str, Any] | None:
    row = (
        conn.execute(
            sa.text(f"SELECT * FROM {qident(schema)}.bundles WHERE id = :id"), {"id": bundle_id}
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def to_record(endpoint: dict[str, Any], bundle: dict[str, Any] | None) -> EndpointRecord:
    """The same record the scan builds, so fingerprints are computed the same way."""
    row = {f"e_{k}": v for k, v in endpoint.items() if k != METADATA_TEXT}
    row.update({f"b_{k}": v for k, v in (bundle or {}).items()})
    return record_from_row(row)


# The catalog's answer per database, schema and table, for the length of a run:
# every endpoint's copy would otherwise ask it again. A run starts with forget_columns().
_COLUMNS: dict[tuple[str, str, str], list[tuple[str, str]]] = {}


def forget_columns() -> None:
    _COLUMNS.clear()


def copy_columns(conn: Connection, schema: str, table: str) -> list[tuple[str, str]]:
    """(name, SQL type) of every column an INSERT may set, from the catalog."""
    key = (conn.engine.url.render_as_string(hide_password=True), schema, table)
    if key not in _COLUMNS:
        _COLUMNS[key] = _catalog_columns(conn, schema, table)
    return _COLUMNS[key]


def _catalog_columns(conn: Connection, schema: str, table: str) -> list[tuple[str, str]]:
    rows = conn.execute(
        sa.text(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            "WHERE a.attrelid = CAST(:rel AS regclass) AND a.attnum > 0 AND NOT a.attisdropped "
            # Generated and identity columns get fresh values, as in any new row.
            "AND a.attgenerated = '' AND a.attidentity = '' ORDER BY a.attnum"
        ),
        {"rel": f"{qident(schema)}.{qident(table)}"},
    )
    return [(r[0], r[1]) for r in rows]


def insert_bundle_copy(
    conn: Connection,
    schema: str,
    old_id: str,
    *,
    command: list[str],
    streaming: list[str] | None,
    mark: dict[str, Any] | None,
) -> str:
    """Copy a bundle row whole under a new id, with new commands; its id.

    `mark` goes into bundle_metadata.bundle_migrate (None leaves the metadata as
    it was, as model engine's own rebuilds do).
    """
    new_id = new_bundle_id()
    params: dict[str, Any] = {"old": old_id, "new_id": new_id, "mark": json.dumps(mark)}
    exprs = []
    columns = copy_columns(conn, schema, "bundles")
    for name, sql_type in columns:
        column = qident(name)
        if name == "id":
            expr = f"CAST(:new_id AS {sql_type})"
        elif name == "created_at":
            expr = f"CAST(now() AS {sql_type})"
        elif name == "runnable_image_command":
            expr, params["command"] = f"CAST(:command AS {sql_type})", command
        elif name == STREAMING and streaming is not None:
            expr, params["streaming"] = f"CAST(:streaming AS {sql_type})", streaming
        elif name == "bundle_metadata" and mark is not None:
            # Merged server-side so the other keys keep their exact values.
            as_jsonb = f"CAST({column} AS jsonb)"
            expr = (
                f"CAST(CASE WHEN jsonb_typeof({as_jsonb}) = 'object' THEN {as_jsonb} "
                "ELSE CAST('{}' AS jsonb) END || jsonb_build_object('bundle_migrate', "
                f"CAST(:mark AS jsonb)) AS {sql_type})"
            )
        else:
            expr = column
        exprs.append(expr)
    names = ", ".join(qident(n) for n, _ in columns)
    table = f"{qident(schema)}.bundles"
    inserted = conn.execute(
        sa.text(
            f"INSERT INTO {table} ({names}) SELECT {', '.join(exprs)} FROM {table} WHERE id = :old"
        ),
        params,
    ).rowcount
    if inserted != 1:
        raise RuntimeError(f"copying bundle {old_id} inserted {inserted} rows")
    return new_id


def column_type(conn: Connection, schema: str, table: str, column: str) -> str:
    return dict(copy_columns(conn, schema, table))[column]


def point_endpoint(
    conn: Connection,
    schema: str,
    endpoint_id: str,
    bundle_id: str,
    *,
    args_after: dict[str, Any] | None,
    touch: bool,
) -> str:
    """Point the endpoint at a bundle (and set its recorded vLLM args); its metadata after.

    `touch` sets last_updated_at, which older schemas lack.
    """
    sets = ["current_bundle_id = :bundle"]
    params: dict[str, Any] = {"bundle": bundle_id, "id": endpoint_id}
    if touch:
        sets.append("last_updated_at = now()")
    if args_after is not None:
        # Model engine's own later recreation obeys this dict, so it must agree.
        meta_type = column_type(conn, schema, "endpoints", "endpoint_metadata")
        sets.append(
            f"endpoint_metadata = CAST(jsonb_set(CAST(endpoint_metadata AS jsonb), "
            f"CAST(:path AS text[]), CAST(:args AS jsonb), true) AS {meta_type})"
        )
        params.update(path=["_llm", "vllm_additional_args"], args=json.dumps(args_after))
    return conn.execute(
        sa.text(
            f"UPDATE {qident(schema)}.endpoints SET {', '.join(sets)} WHERE id = :id "
            "RETURNING CAST(CAST(endpoint_metadata AS jsonb) AS text)"
        ),
        params,
    ).scalar_one()


def bundle_exists(conn: Connection, schema: str, bundle_id: str) -> bool:
    return bool(
        conn.execute(
            sa.text(f"SELECT count(*) FROM {qident(schema)}.bundles WHERE id = :b"),
            {"b": bundle_id},
        ).scalar_one()
    )


def bundle_command(conn: Connection, schema: str, bundle_id: str) -> list[str] | None:
    return conn.execute(
        sa.text(f"SELECT runnable_image_command FROM {qident(schema)}.bundles WHERE id = :b"),
        {"b": bundle_id},
    ).scalar()

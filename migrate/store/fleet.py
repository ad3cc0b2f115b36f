"""Reading the fleet: LLM endpoints joined to their current bundle, streamed.

Rows come through a server-side cursor so memory stays flat however many
endpoints there are; only columns this database really has are selected,
because 2024-era schemas lack the multinode and routes columns.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass

import sqlalchemy as sa
from psycopg.types.string import TextLoader
from sqlalchemy.engine import Connection

from migrate.store.connection import DatabaseError, require_tables, table_columns
from migrate.store.endpoint_rows import (
    COMMAND_KEY,
    JSON_KEYS,
    SAME_AS_COMMAND,
    STREAMING_KEY,
    RowStream,
)

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
STREAM_BATCH = 500
_CURSORS = itertools.count(1)  # a name per cursor: two may be open in one transaction


def check_schema_name(schema: str) -> str:
    if not _IDENTIFIER.match(schema):
        raise DatabaseError(f"schema name {schema!r} is not a plain SQL identifier")
    return schema


@dataclass(frozen=True)
class Filters:
    """Globs use shell syntax (* and ?), as operators type them."""

    name: str | None = None
    owner: str | None = None
    model: str | None = None
    statuses: tuple[str, ...] = ()


def glob_to_like(pattern: str) -> str:
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


_ENDPOINT_COLUMNS = (
    "id",
    "name",
    "owner",
    "endpoint_status",
    "endpoint_type",
    "endpoint_metadata",
    "current_bundle_id",
    "created_at",
    "last_updated_at",
)
_BUNDLE_COLUMNS = (
    "id",
    "flavor",
    "runnable_image_command",
    "streaming_enhanced_runnable_image_streaming_command",
    "runnable_image_worker_command",
    "created_at",
    "bundle_metadata",
)


def endpoint_query(conn: Connection, schema: str, filters: Filters) -> sa.Select:
    check_schema_name(schema)
    require_tables(conn, schema, ("endpoints", "bundles"))
    have_e = set(table_columns(conn, schema, "endpoints"))
    have_b = set(table_columns(conn, schema, "bundles"))
    e = sa.table(
        "endpoints", *(sa.column(c) for c in _ENDPOINT_COLUMNS if c in have_e), schema=schema
    )
    b = sa.table("bundles", *(sa.column(c) for c in _BUNDLE_COLUMNS if c in have_b), schema=schema)
    cols = [e.c[c].label(f"e_{c}") for c in _ENDPOINT_COLUMNS if c in have_e]
    cols += [b.c[c].label(f"b_{c}") for c in _BUNDLE_COLUMNS if c in have_b]
    metadata = sa.cast(e.c.endpoint_metadata, sa.dialects.postgresql.JSONB)
    query = (
        sa.select(*cols)
        .select_from(e.outerjoin(b, b.c.id == e.c.current_bundle_id))
        .where(metadata.has_key("_llm"))
        .order_by(e.c.name, e.c.id)
    )
    if filters.name:
        query = query.where(e.c.name.like(glob_to_like(filters.name), escape="\\"))
    if filters.owner:
        query = query.where(e.c.owner == filters.owner)
    if filters.model:
        model = metadata["_llm"]["model_name"].astext
        query = query.where(model.like(glob_to_like(filters.model), escape="\\"))
    if filters.statuses:
        query = query.where(e.c.endpoint_status.in_(filters.statuses))
    return query


def stream_rows(conn: Connection, query: sa.Select, batch: int = STREAM_BATCH) -> RowStream:
    """The rows of ``query``, each as one JSON text the server builds (needs an open transaction).

    One JSON array a row, its items in the order of the query's columns: the
    driver hands over a string instead of making sixteen typed values (arrays,
    times, JSON) in the process that must also feed the workers, which decode it
    (RowStream.record) in one C call. A streaming command equal to the command
    comes as SAME_AS_COMMAND. Read through a server-side cursor, so memory stays
    flat and the statement timeout bounds each fetch, not the whole scan.
    """
    keys = tuple(column.key for column in query.selected_columns)
    by_key = {column.key: column.element for column in query.selected_columns}
    items = []
    for key in keys:
        item = by_key[key]
        if key in JSON_KEYS:
            item = sa.cast(item, sa.JSON)  # json or jsonb alike
        elif key == STREAMING_KEY and COMMAND_KEY in by_key:
            # COLLATE "C": equal byte for byte, as the two lists would compare.
            same = item.collate("C") == by_key[COMMAND_KEY]
            marker = sa.func.to_json(sa.literal_column(str(SAME_AS_COMMAND)))
            item = sa.case((same, marker), else_=sa.func.to_json(item))
        items.append(item)
    rows = query.with_only_columns(sa.func.json_build_array(*items), maintain_column_froms=True)
    # Expanded IN lists: the statement goes to psycopg, past SQLAlchemy's execution.
    compiled = rows.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    raw = conn.connection.driver_connection
    cursor = raw.cursor(name=f"bundle_migrate_fleet_{next(_CURSORS)}")
    cursor.adapters.register_loader("json", TextLoader)
    cursor.itersize = batch
    cursor.execute(str(compiled), compiled.params)

    def values() -> Iterator[str]:
        with cursor:
            for (text,) in cursor:
                yield text

    return RowStream(keys, values())


def count(conn: Connection, query: sa.Select) -> int:
    """For a progress bar: cheap next to the scan, and in the same snapshot."""
    inner = query.order_by(None).subquery()
    return conn.execute(sa.select(sa.func.count()).select_from(inner)).scalar_one()

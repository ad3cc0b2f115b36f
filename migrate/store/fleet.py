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
from typing import Any

import sqlalchemy as sa
from psycopg.types.string import TextLoader
from sqlalchemy.engine import Connection

from migrate.store.connection import DatabaseError, require_tables, table_columns
from migrate.store.endpoint_rows import RowStream

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
    """The rows as psycopg sends them, JSON columns undecoded (needs an open transaction).

    Cheap to pass to another process: decoding and building the records (see
    RowStream.record) is left to whoever classifies them.
    """
    # Expanded IN lists: the statement goes to psycopg, past SQLAlchemy's execution.
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    keys = tuple(column.key for column in query.selected_columns)
    raw = conn.connection.driver_connection
    cursor = raw.cursor(name=f"bundle_migrate_fleet_{next(_CURSORS)}")
    for json_type in ("json", "jsonb"):
        cursor.adapters.register_loader(json_type, TextLoader)
    cursor.itersize = batch
    cursor.execute(str(compiled), compiled.params)

    def values() -> Iterator[tuple[Any, ...]]:
        with cursor:
            yield from cursor

    return RowStream(keys, values())


def count(conn: Connection, query: sa.Select) -> int:
    """For a progress bar: cheap next to the scan, and in the same snapshot."""
    inner = query.order_by(None).subquery()
    return conn.execute(sa.select(sa.func.count()).select_from(inner)).scalar_one()

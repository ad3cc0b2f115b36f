"""Reading the fleet: LLM endpoints joined to their current bundle, streamed.

Rows come through a server-side cursor so memory stays flat however many
endpoints there are; only columns this database really has are selected,
because 2024-era schemas lack the multinode and routes columns.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from migrate.core.records import BundleRecord, EndpointRecord
from migrate.store.connection import DatabaseError, require_tables, table_columns

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
STREAM_BATCH = 500


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


def record_from_row(row: dict[str, Any]) -> EndpointRecord:
    bundle = None
    if row.get("b_id") is not None:
        bundle = BundleRecord(
            id=row["b_id"],
            flavor=row.get("b_flavor"),
            command=row.get("b_runnable_image_command"),
            streaming_command=row.get("b_streaming_enhanced_runnable_image_streaming_command"),
            worker_command=row.get("b_runnable_image_worker_command"),
            created_at=row.get("b_created_at"),
            bundle_metadata=row.get("b_bundle_metadata"),
        )
    metadata = row.get("e_endpoint_metadata")
    return EndpointRecord(
        id=row["e_id"],
        name=row["e_name"],
        owner=row.get("e_owner"),
        status=row.get("e_endpoint_status"),
        endpoint_type=row.get("e_endpoint_type"),
        metadata=metadata if isinstance(metadata, dict) else {},
        current_bundle_id=row.get("e_current_bundle_id"),
        bundle=bundle,
        created_at=row.get("e_created_at"),
        last_updated_at=row.get("e_last_updated_at"),
    )


def stream(
    conn: Connection, query: sa.Select, batch: int = STREAM_BATCH
) -> Iterator[EndpointRecord]:
    """Records one at a time from a server-side cursor (needs an open transaction)."""
    result = conn.execution_options(stream_results=True, yield_per=batch).execute(query)
    for row in result.mappings():
        yield record_from_row(dict(row))


def count(conn: Connection, query: sa.Select) -> int:
    """For a progress bar: cheap next to the scan, and in the same snapshot."""
    inner = query.order_by(None).subquery()
    return conn.execute(sa.select(sa.func.count()).select_from(inner)).scalar_one()

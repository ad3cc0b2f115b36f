"""Write synthetic endpoints (migrate.sandbox.synth) into model engine's tables, fast.

COPY through psycopg 3, streamed in chunks: per chunk, every bundle (superseded
versions first, then the current one), then the chunk's endpoints, so the
foreign key endpoints.current_bundle_id -> bundles.id holds at every point while
memory stays bounded by the chunk, whatever the fleet size. The row contents
live in migrate.sandbox.seed_rows.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import psycopg
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter
from sqlalchemy.engine import URL, Connection, Engine

from migrate.sandbox.embedded import to_libpq_url
from migrate.sandbox.seed_rows import (
    ARRAY_COLUMNS,
    BUNDLE_COLUMNS_2024,
    BUNDLE_COLUMNS_2026,
    COLUMNS,
    ENDPOINT_COLUMNS_2024,
    ENDPOINT_COLUMNS_2026,
    JSON_COLUMNS,
    bundle_row,
    endpoint_row,
    pg_text_array,
    row_values,
)
from migrate.sandbox.synth import EndpointSpec
from migrate.store.ddl import DEFAULT_SCHEMA, SCHEMA_VERSIONS

__all__ = [
    "BUNDLE_COLUMNS_2024",
    "BUNDLE_COLUMNS_2026",
    "DEFAULT_CHUNK_SIZE",
    "ENDPOINT_COLUMNS_2024",
    "ENDPOINT_COLUMNS_2026",
    "SeedStats",
    "bundle_row",
    "endpoint_row",
    "pg_text_array",
    "seed_fleet",
]

# Endpoints per COPY pair: bounds memory whatever the fleet size.
DEFAULT_CHUNK_SIZE = 2000


@dataclass
class SeedStats:
    """What one seed_fleet call wrote."""

    endpoints: int = 0
    bundles: int = 0
    superseded_bundles: int = 0
    llm_endpoints: int = 0
    vllm_endpoints: int = 0
    seconds: float = 0.0
    by_generation: Counter[str] = field(default_factory=Counter)
    by_expected_action: Counter[str] = field(default_factory=Counter)

    @property
    def endpoints_per_second(self) -> float:
        return self.endpoints / self.seconds if self.seconds > 0 else 0.0


@contextmanager
def _psycopg_connection(
    target: str | URL | Engine | Connection | psycopg.Connection[Any],
) -> Iterator[psycopg.Connection[Any]]:
    if isinstance(target, psycopg.Connection):
        yield target
    elif isinstance(target, Connection):
        # The caller's connection: work inside its session, leave closing to it.
        yield target.connection.driver_connection  # type: ignore[misc]
    elif isinstance(target, Engine):
        raw = target.raw_connection()
        try:
            yield raw.driver_connection  # type: ignore[misc]
        finally:
            raw.close()
    else:
        if isinstance(target, URL):
            target = target.render_as_string(hide_password=False)
        with psycopg.connect(to_libpq_url(target)) as conn:
            yield conn


def _chunks(specs: Iterable[EndpointSpec], size: int) -> Iterator[list[EndpointSpec]]:
    iterator = iter(specs)
    while chunk := list(islice(iterator, size)):
        yield chunk


def seed_fleet(
    conn_or_url: str | URL | Engine | Connection | psycopg.Connection[Any],
    specs: Iterable[EndpointSpec],
    schema: str = DEFAULT_SCHEMA,
    schema_version: str = "2026",
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> SeedStats:
    """Write every spec's bundles (superseded ones too) and endpoint; return what was written.

    ``conn_or_url``: a URL (``postgresql://`` or SQLAlchemy's ``postgresql+psycopg://``),
    a SQLAlchemy Engine or Connection, or a psycopg 3 connection. All rows go in one
    transaction (a savepoint when the connection is already in one, and then the
    caller commits). The tables must exist (migrate.schema.create_model_engine_tables).
    """
    if schema_version not in SCHEMA_VERSIONS:
        raise ValueError(f"schema_version must be one of {SCHEMA_VERSIONS}")
    bundle_columns, endpoint_columns = COLUMNS[schema_version]
    b_json = [i for i, c in enumerate(bundle_columns) if c in JSON_COLUMNS]
    b_array = [i for i, c in enumerate(bundle_columns) if c in ARRAY_COLUMNS]
    e_json = [i for i, c in enumerate(endpoint_columns) if c in JSON_COLUMNS]
    copy_bundles = sql.SQL("COPY {}.bundles ({}) FROM STDIN").format(
        sql.Identifier(schema), sql.SQL(", ").join(map(sql.Identifier, bundle_columns))
    )
    copy_endpoints = sql.SQL("COPY {}.endpoints ({}) FROM STDIN").format(
        sql.Identifier(schema), sql.SQL(", ").join(map(sql.Identifier, endpoint_columns))
    )
    stats = SeedStats()
    started = time.perf_counter()
    with _psycopg_connection(conn_or_url) as conn, conn.transaction(), conn.cursor() as cur:
        for chunk in _chunks(specs, chunk_size):
            # write_row formats in C (psycopg_binary) and buffers; JSON and arrays
            # arrive as ready text, the other values as plain Python values. The
            # queued writer sends from a thread, so building the next rows overlaps
            # the server ingesting these (about a third faster than sending inline).
            with cur.copy(copy_bundles, writer=QueuedLibpqWriter(cur)) as copy:
                for spec in chunk:
                    if spec.multinode and schema_version == "2024":
                        # The 2024 tables have nowhere to put the worker command.
                        raise ValueError(f"{spec.name}: multinode needs the 2026 schema")
                    for version in (*spec.superseded, spec):
                        copy.write_row(
                            row_values(bundle_row(version), bundle_columns, b_json, b_array)
                        )
                    stats.bundles += 1 + len(spec.superseded)
                    stats.superseded_bundles += len(spec.superseded)
            with cur.copy(copy_endpoints, writer=QueuedLibpqWriter(cur)) as copy:
                for spec in chunk:
                    copy.write_row(row_values(endpoint_row(spec), endpoint_columns, e_json, []))
                    stats.endpoints += 1
                    stats.llm_endpoints += spec.is_llm
                    stats.vllm_endpoints += spec.is_vllm
                    stats.by_generation[spec.generation] += 1
                    stats.by_expected_action[spec.expected_action] += 1
    stats.seconds = time.perf_counter() - started
    return stats

"""What the database must look like after any fault: no endpoint half-changed.

An endpoint is whole when it is either exactly as it was before the matrix
began (bundle and metadata), or exactly as the journal's live `applied` row
says a run left it. Anything else (new bundle with old metadata, old bundle
with new metadata, a bundle no journal row names) is half-changed. A bundle
the tool wrote that no journal row names is an orphan.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from migrate.store.lock import lock_keys

Snapshot = dict[str, tuple[str | None, Any]]


@dataclass
class Sandbox:
    """A seeded database the matrix may break, and where its files go."""

    url: str
    engine: Engine
    schema: str
    tmp: Path


def snapshot(sandbox: Sandbox) -> Snapshot:
    """Every endpoint's bundle and metadata, as the baseline of `half_changed`."""
    with sandbox.engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT id, current_bundle_id, CAST(endpoint_metadata AS jsonb) AS meta "
                f'FROM "{sandbox.schema}".endpoints'
            )
        )
        return {r.id: (r.current_bundle_id, r.meta) for r in rows}


def model_engine_digest(sandbox: Sandbox) -> str:
    """One md5 over both of model engine's tables: equal means not a byte written."""
    with sandbox.engine.connect() as conn:
        parts = [
            conn.execute(
                sa.text(
                    "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "
                    f'FROM "{sandbox.schema}".{table} t'
                )
            ).scalar_one()
            for table in ("endpoints", "bundles")
        ]
    return ":".join(parts)


@dataclass
class Consistency:
    half_changed: list[str] = field(default_factory=list)
    orphan_bundles: list[str] = field(default_factory=list)

    @property
    def whole(self) -> bool:
        return not self.half_changed and not self.orphan_bundles


def check(sandbox: Sandbox, before: Snapshot) -> Consistency:
    result = Consistency()
    now = snapshot(sandbox)
    with sandbox.engine.connect() as conn:
        journal = conn.execute(sa.text("SELECT to_regclass('bundle_migration.changes')")).scalar()
        applied: list[Any] = []
        if journal is not None:
            applied = list(
                conn.execute(
                    sa.text(
                        "SELECT endpoint_id, bundle_after, metadata_after, reverted_by "
                        "FROM bundle_migration.changes WHERE kind = 'apply' "
                        "AND outcome = 'applied' ORDER BY id"
                    )
                )
            )
        marked = set(
            conn.execute(
                sa.text(
                    f'SELECT id FROM "{sandbox.schema}".bundles '
                    "WHERE CAST(bundle_metadata AS jsonb) ? 'bundle_migrate'"
                )
            ).scalars()
        )
    live = {r.endpoint_id: r for r in applied if r.reverted_by is None}
    for endpoint_id, (bundle_id, meta) in before.items():
        current = now.get(endpoint_id)
        if current is None:
            continue  # deleted by someone else: not the tool's doing
        if endpoint_id in live:
            change = live[endpoint_id]
            expected = (change.bundle_after, change.metadata_after)
        else:
            expected = (bundle_id, meta)
        if _canonical(current) != _canonical(expected):
            result.half_changed.append(endpoint_id)
    result.orphan_bundles = sorted(marked - {r.bundle_after for r in applied})
    return result


def _canonical(state: tuple[str | None, Any]) -> str:
    return json.dumps([state[0], state[1]], sort_keys=True)


def wait_lock_free(sandbox: Sandbox, timeout_s: float = 60.0) -> bool:
    """Whether the run lock is free (a killed run's session is gone) within the time."""
    k1, k2 = lock_keys(sandbox.schema)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if lock_holder_pid(sandbox, k1, k2) is None:
            return True
        time.sleep(0.05)
    return False


def lock_holder_pid(sandbox: Sandbox, k1: int | None = None, k2: int | None = None) -> int | None:
    if k1 is None or k2 is None:
        k1, k2 = lock_keys(sandbox.schema)
    with sandbox.engine.connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND classid = :a AND objid = :b AND objsubid = 2 "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ),
            {"a": k1, "b": k2},
        ).scalar()

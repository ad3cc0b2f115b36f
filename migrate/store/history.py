"""Reading the journal's history for people: the latest runs, their counts, one run's changes."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from migrate.store.journal import SCHEMA as J


def latest_runs(conn: Connection, limit: int) -> list[dict[str, Any]]:
    """The latest run rows, newest first, whole.

    SELECT *: reading never upgrades the journal, and one from before 002 has no
    schema column (journal.run_schema falls back to the run's options).
    """
    rows = conn.execute(
        sa.text(f"SELECT * FROM {J}.runs ORDER BY started_at DESC, run_id DESC LIMIT :n"),
        {"n": limit},
    ).mappings()
    return [dict(r) for r in rows]


def outcome_counts(conn: Connection, run_ids: list[str]) -> list[tuple[str, int | None, str, int]]:
    """(run, stage, outcome, endpoints) for these runs."""
    rows = conn.execute(
        sa.text(
            f"SELECT run_id, stage, outcome, count(*) FROM {J}.changes "
            "WHERE run_id = ANY(:ids) GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        ),
        {"ids": run_ids},
    )
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def run_changes(conn: Connection, run_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.text(
            "SELECT id, stage, endpoint_name, endpoint_id, outcome, bundle_before, bundle_after, "
            # to_jsonb: a journal from before 003 has no deploy columns.
            "detail, reverted_by, created_at, to_jsonb(c) ->> 'deploy_state' AS deploy_state, "
            "to_jsonb(c) ->> 'deploy_detail' AS deploy_detail "
            f"FROM {J}.changes c WHERE run_id = :r ORDER BY id"
        ),
        {"r": run_id},
    )
    return [dict(r) for r in rows.mappings()]

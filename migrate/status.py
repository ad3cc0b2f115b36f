"""What the journal says: runs with stages and outcomes, a run's endpoints, a plan's progress."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from migrate import journal as jr
from migrate.lock import holder
from migrate.plan import Plan
from migrate.stages import stage_progress

J = jr.SCHEMA


_OVERVIEW = (
    "run_id",
    "kind",
    "schema",
    "status",
    "plan_digest",
    "started_at",
    "finished_at",
    "operator",
    "host",
)


def runs_overview(conn: Connection, limit: int = 20) -> list[dict[str, Any]]:
    """The latest runs, newest first, each with its schema and outcome counts per stage."""
    # SELECT *: status never upgrades the journal, and one from before 002 has no
    # schema column (jr.run_schema falls back to the run's options).
    rows = conn.execute(
        sa.text(f"SELECT * FROM {J}.runs ORDER BY started_at DESC, run_id DESC LIMIT :n"),
        {"n": limit},
    ).mappings()
    runs = [{**{k: r.get(k) for k in _OVERVIEW}, "schema": jr.run_schema(dict(r))} for r in rows]
    if not runs:
        return []
    counts: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    for run_id, stage, outcome, n in conn.execute(
        sa.text(
            f"SELECT run_id, stage, outcome, count(*) FROM {J}.changes "
            "WHERE run_id = ANY(:ids) GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        ),
        {"ids": [r["run_id"] for r in runs]},
    ):
        counts[run_id][str(stage) if stage is not None else "-"][outcome] = n
    # A run marked running while nobody holds its schema's lock died without a word (SIGKILL).
    lock_free: dict[str, bool] = {}
    for run in runs:
        run["stages"] = {k: dict(v) for k, v in counts[run["run_id"]].items()}
        if run["status"] == "running" and run["schema"]:
            if run["schema"] not in lock_free:
                lock_free[run["schema"]] = holder(conn, run["schema"]) is None
            if lock_free[run["schema"]]:
                run["status"] = "interrupted?"
    return runs


def run_changes(conn: Connection, run_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.text(
            f"SELECT id, stage, endpoint_name, endpoint_id, outcome, bundle_before, bundle_after, "
            f"detail, reverted_by, created_at FROM {J}.changes WHERE run_id = :r ORDER BY id"
        ),
        {"r": run_id},
    )
    return [dict(r) for r in rows.mappings()]


def plan_status(conn: Connection, plan: Plan) -> list[dict[str, Any]]:
    """Per stage of a plan: how many endpoints are done, and which are still pending."""
    outcomes = jr.plan_outcomes(conn, plan.digest) if jr.exists(conn) else {}
    progress = stage_progress(plan, outcomes)
    rows = []
    for stage in plan.stages:
        done, total = progress[stage.number]
        tally: dict[str, int] = defaultdict(int)
        for item in plan.stage_items(stage.number):
            tally[outcomes.get(item.endpoint_id, "not-started")] += 1
        rows.append(
            {
                "stage": stage.number,
                "name": stage.name,
                "endpoints": total,
                "done": done,
                "complete": done == total,
                "outcomes": dict(sorted(tally.items())),
            }
        )
    return rows

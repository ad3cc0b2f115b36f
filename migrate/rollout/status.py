"""What the journal says: runs with stages and outcomes, a run's endpoints, a plan's progress."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy.engine import Connection, Engine

from migrate.core.plan import Plan
from migrate.core.stage_gate import stage_progress
from migrate.store import history
from migrate.store import journal as jr
from migrate.store.connection import DatabaseError, read_only
from migrate.store.lock import holder

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
    runs = [
        {**{k: r.get(k) for k in _OVERVIEW}, "schema": jr.run_schema(r)}
        for r in history.latest_runs(conn, limit)
    ]
    if not runs:
        return []
    counts: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    for run_id, stage, outcome, n in history.outcome_counts(conn, [r["run_id"] for r in runs]):
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


def status_document(
    engine: Engine,
    *,
    statement_timeout_s: int,
    plan: Plan | None = None,
    run_id: str | None = None,
    limit: int = 20,
) -> tuple[bool, dict[str, Any]]:
    """(whether a journal exists, the status document): a plan's stages, a run, or recent runs."""
    with read_only(engine, statement_timeout_s) as conn:
        present = jr.exists(conn)
        if plan is not None:
            return present, {"plan": plan.digest, "stages": plan_status(conn, plan)}
        if run_id is not None:
            run = jr.run_row(conn, run_id) if present else None
            if run is None:
                raise DatabaseError(f"no run {run_id} in the journal")
            return present, {"run": run, "changes": history.run_changes(conn, run_id)}
        return present, {"runs": runs_overview(conn, limit) if present else []}

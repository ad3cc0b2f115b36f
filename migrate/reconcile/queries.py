"""What reconcile reads from the journal: plain records, fetched in the caller's snapshot.

Every query keeps to one model engine schema: a journal row belongs to the
schema its run worked on (runs.schema, or the run's options in a journal from
before 002, which a read-only check never upgrades). Without that, a second
model engine schema in the same database would read as deleted endpoints and
missing bundles here.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from migrate.core import command as cmd
from migrate.reconcile.findings import LiveChange, RunRow
from migrate.store import journal as jr
from migrate.store.rows import qident

J = jr.SCHEMA
# A run's schema, in every journal version: options.schema since the first one.
RUN_SCHEMA = "COALESCE({r}.options ->> 'schema', :s) = :s"


def eager_of(command: Any) -> bool | None:
    if command is None:
        return None
    try:
        return cmd.parse_command(command).enforce_eager
    except cmd.CommandError:
        return None


def live_changes(conn: Connection, schema: str) -> Iterator[LiveChange]:
    s = qident(schema)
    # Commands are fetched only where the endpoint moved: the usual row is small.
    moved = "e.current_bundle_id IS DISTINCT FROM c.bundle_after"
    query = sa.text(
        f"SELECT DISTINCT ON (c.endpoint_id) c.id, c.run_id, c.endpoint_id, c.endpoint_name, "
        f"c.bundle_before, c.bundle_after, c.created_at, c.reverted_by IS NOT NULL AS reverted, "
        f"rb.run_id AS reverted_run, "
        f"e.id IS NOT NULL AS endpoint_exists, e.current_bundle_id, "
        f"CAST(e.endpoint_metadata AS jsonb) -> '_llm' ->> 'model_name' AS model_name, "
        f"cur.created_at AS current_created_at, "
        # to_jsonb: a journal from before 003 has no deploy columns.
        "to_jsonb(c) ->> 'deploy_state' AS deploy_state, "
        "to_jsonb(c) ->> 'deployed_bundle' AS deployed_bundle, "
        f"CASE WHEN {moved} THEN cur.runnable_image_command END AS current_command, "
        f"CASE WHEN {moved} THEN aft.runnable_image_command END AS after_command, "
        f"CASE WHEN {moved} THEN bef.runnable_image_command END AS before_command "
        f"FROM {J}.changes c JOIN {J}.runs r ON r.run_id = c.run_id "
        f"LEFT JOIN {J}.changes rb ON rb.id = c.reverted_by "
        f"LEFT JOIN {s}.endpoints e ON e.id = c.endpoint_id "
        f"LEFT JOIN {s}.bundles cur ON cur.id = e.current_bundle_id "
        f"LEFT JOIN {s}.bundles aft ON aft.id = c.bundle_after "
        f"LEFT JOIN {s}.bundles bef ON bef.id = c.bundle_before "
        f"WHERE c.kind = 'apply' AND c.outcome = 'applied' AND {RUN_SCHEMA.format(r='r')} "
        "ORDER BY c.endpoint_id, c.id DESC"
    )
    result = conn.execution_options(stream_results=True, yield_per=500).execute(
        query, {"s": schema}
    )
    for r in result.mappings():
        expected = eager_of(r["after_command"])
        if expected is None and r["before_command"] is not None:
            before = eager_of(r["before_command"])
            expected = None if before is None else not before
        yield LiveChange(
            change_id=r["id"],
            run_id=r["run_id"],
            endpoint_id=r["endpoint_id"],
            endpoint_name=r["endpoint_name"],
            bundle_before=r["bundle_before"],
            bundle_after=r["bundle_after"],
            changed_at=r["created_at"],
            reverted=r["reverted"],
            endpoint_exists=r["endpoint_exists"],
            current_bundle_id=r["current_bundle_id"],
            model_name=r["model_name"],
            current_bundle_created_at=r["current_created_at"],
            eager_now=eager_of(r["current_command"]),
            eager_expected=expected,
            reverted_run=r["reverted_run"],
            deploy_state=r["deploy_state"],
            deployed_bundle=r["deployed_bundle"],
        )


def missing_bundles(conn: Connection, schema: str) -> list[dict[str, Any]]:
    """Bundles applied changes on this schema created that are gone; `live`: the latest one."""
    mine = RUN_SCHEMA.format(r="r")
    rows = conn.execute(
        sa.text(
            f"SELECT c.run_id, c.endpoint_id, c.endpoint_name, c.bundle_after, "
            f"c.reverted_by IS NULL AND c.id = (SELECT max(l.id) FROM {J}.changes l "
            f"JOIN {J}.runs lr ON lr.run_id = l.run_id "
            "WHERE l.endpoint_id = c.endpoint_id AND l.kind = 'apply' "
            f"AND l.outcome = 'applied' AND {RUN_SCHEMA.format(r='lr')}) AS live "
            f"FROM {J}.changes c JOIN {J}.runs r ON r.run_id = c.run_id "
            f"WHERE c.kind = 'apply' AND c.outcome = 'applied' AND {mine} "
            f"AND NOT EXISTS (SELECT 1 FROM {qident(schema)}.bundles b "
            "WHERE b.id = c.bundle_after) "
            "ORDER BY c.id"
        ),
        {"s": schema},
    ).mappings()
    return [dict(r) for r in rows]


def open_runs(conn: Connection, schema: str) -> list[RunRow]:
    """This schema's unfinished runs, with every later run that could have finished them."""
    mine = RUN_SCHEMA.format(r="r")
    rows = conn.execute(
        sa.text(
            f"SELECT run_id, kind, status, started_at, plan_digest, options FROM {J}.runs r "
            f"WHERE {mine} AND (status IN ('running', 'interrupted') OR EXISTS ("
            f"SELECT 1 FROM {J}.runs o WHERE o.status IN ('running', 'interrupted') "
            f"AND o.started_at < r.started_at AND {RUN_SCHEMA.format(r='o')}))"
        ),
        {"s": schema},
    ).mappings()
    return [
        RunRow(
            run_id=r["run_id"],
            kind=r["kind"],
            status=r["status"],
            started_at=r["started_at"],
            plan_digest=r["plan_digest"],
            options=r["options"] if isinstance(r["options"], dict) else {},
        )
        for r in rows
    ]


def failed_applies(conn: Connection, schema: str) -> dict[str, datetime]:
    """Endpoints whose latest apply attempt on this schema failed, and when it did."""
    rows = conn.execute(
        sa.text(
            "SELECT endpoint_id, created_at FROM ("
            "SELECT DISTINCT ON (c.endpoint_id) c.endpoint_id, c.outcome, c.created_at "
            f"FROM {J}.changes c JOIN {J}.runs r ON r.run_id = c.run_id "
            f"WHERE c.kind = 'apply' AND {RUN_SCHEMA.format(r='r')} "
            "ORDER BY c.endpoint_id, c.id DESC) latest WHERE outcome = 'failed'"
        ),
        {"s": schema},
    )
    return {endpoint_id: at for endpoint_id, at in rows}

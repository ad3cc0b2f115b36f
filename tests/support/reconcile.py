"""Helpers for the reconcile tests: fleets that drift, unfinished runs, the command's answer."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from migrate.cli import main
from migrate.sandbox.synth import EndpointSpec, make_spec
from tests.support.rollout import apply, journal_rows, make_plan, seed


def drop_specs(n: int, version: str = "2026") -> list[EndpointSpec]:
    gens = "CEF"
    return [
        make_spec(
            gens[i % 3],
            provenance="injected",
            seed=100 + i,
            index=i,
            schema_version=version,
            status="READY",
        )
        for i in range(n)
    ]


def clean_specs(version: str = "2026") -> list[EndpointSpec]:
    return [
        make_spec("H", provenance="none", seed=200, index=50, schema_version=version),
        make_spec(
            "E",
            provenance="injected",
            model_name="llama-3-1-70b-instruct",
            seed=201,
            index=51,
            schema_version=version,
        ),
        make_spec("E", framework="sglang", seed=202, index=52, schema_version=version),
    ]


def reconcile(me_db: Any, *args: str, url: str | None = None) -> Result:
    env = {"BUNDLE_MIGRATE_DATABASE_URL": url or me_db.url}
    return CliRunner().invoke(main, ["reconcile", *args], env=env, catch_exceptions=False)


def report(me_db: Any, *args: str) -> tuple[int, dict[str, Any]]:
    """The JSON document, and the exit status as alerting sees it (--detailed-exitcode)."""
    result = reconcile(me_db, "--format", "json", "--detailed-exitcode", *args)
    assert result.exit_code in (0, 2), result.output
    return result.exit_code, json.loads(result.stdout)


def kinds(doc: dict[str, Any]) -> set[str]:
    return {f["kind"] for f in doc["findings"]}


def sql(me_db: Any, text: str, **params: Any) -> Any:
    with me_db.engine.begin() as conn:
        return conn.execute(sa.text(text.replace("S.", f'"{me_db.schema}".')), params)


def migrated(me_db: Any, n: int = 2) -> list[dict[str, Any]]:
    """n endpoints seeded and migrated by a real apply; their applied journal rows."""
    seed(me_db, drop_specs(n, me_db.version))
    summary = apply(me_db, make_plan(me_db))
    assert summary.counts["applied"] == n
    return journal_rows(me_db, "outcome = 'applied'")


def interrupted_run(me_db: Any) -> Any:
    """Three planned drops and an apply killed right after it took the lock."""
    seed(me_db, drop_specs(3, me_db.version))
    plan = make_plan(me_db, stages="3")

    def interrupt(step: str, conn: Any) -> None:
        if step == "locked":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        apply(me_db, plan, hook=interrupt)
    return plan


def mark_last_run(me_db: Any, status: str) -> str:
    """Rewrite the latest run's status, as a kill after its last commit leaves it."""
    finished = "NULL" if status == "running" else "now()"
    return sql(
        me_db,
        f"UPDATE bundle_migration.runs SET status = :st, finished_at = {finished} "
        "WHERE run_id = (SELECT run_id FROM bundle_migration.runs "
        "ORDER BY started_at DESC, run_id DESC LIMIT 1) RETURNING run_id",
        st=status,
    ).scalar_one()

"""reconcile --apply against a real PostgreSQL: what it leaves alone, failures, closing runs."""

from __future__ import annotations

import json
import os
import signal
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from migrate.cli import main
from migrate.reconcile import autoapply, metrics
from migrate.reconcile.autoapply import select
from migrate.reconcile.check import check
from migrate.reconcile.findings import PENDING, RECONCILE_SOURCE, ROLLED_BACK, UNFINISHED_RUN
from migrate.sandbox.synth import make_spec
from migrate.store.lock import MigrationLock
from tests.support.reconcile import (
    clean_specs,
    drop_specs,
    interrupted_run,
    kinds,
    mark_last_run,
    migrated,
    reconcile,
    report,
    sql,
)
from tests.support.rollout import journal_rows, run_statuses, seed

pytestmark = pytest.mark.parametrize("schema_version", ["2026"])


def applied_ids(me_db: Any) -> list[str]:
    return [r["endpoint_id"] for r in journal_rows(me_db, "outcome = 'applied'")]


def test_an_endpoint_an_operator_rolled_back_is_left_alone(
    me_db: Any, schema_version: str, tmp_path: Path
) -> None:
    seed(me_db, drop_specs(2, me_db.version))
    plan = tmp_path / "plan.json"
    env = {"BUNDLE_MIGRATE_DATABASE_URL": me_db.url}
    runner = CliRunner()
    assert runner.invoke(main, ["plan", "--out", str(plan)], env=env).exit_code == 0
    done = runner.invoke(
        main, ["apply", str(plan), "--all-stages", "--execute", "--no-redeploy"], env=env
    )
    assert done.exit_code == 0, done.output
    first, second = journal_rows(me_db, "outcome = 'applied'")
    undo = [
        "rollback",
        "--plan",
        str(plan),
        "--endpoint",
        first["endpoint_name"],
        "--execute",
        "--no-redeploy",
    ]
    assert runner.invoke(main, undo, env=env).exit_code == 0
    # The rollback is a decision: a notice, not drift, and --apply keeps off it.
    code, doc = report(me_db)
    assert code == 0 and kinds(doc) == {ROLLED_BACK}
    (f,) = doc["findings"]
    assert f["endpoint_id"] == first["endpoint_id"] and "make a new plan" in f["detail"]
    assert doc["next"]["endpoints"] == [] and doc["next"]["held_back"] == 1
    code, doc = report(me_db, "--apply", "--no-redeploy")
    assert code == 0 and doc["apply"]["applied"] == 0
    assert applied_ids(me_db) == [first["endpoint_id"], second["endpoint_id"]]
    # A new plan applies it again; after that it is an ordinary migrated endpoint.
    again = tmp_path / "again.json"
    assert runner.invoke(main, ["plan", "--out", str(again)], env=env).exit_code == 0
    assert (
        runner.invoke(main, ["apply", str(again), "--execute", "--no-redeploy"], env=env).exit_code
        == 0
    )
    code, doc = report(me_db)
    assert code == 0 and doc["findings"] == []


def break_bundle(me_db: Any, endpoint_id: str) -> None:
    """Apply refuses this endpoint every time: its bundle_metadata is not an object."""
    sql(
        me_db,
        "UPDATE S.bundles SET bundle_metadata = CAST('\"legacy\"' AS json) WHERE id = "
        "(SELECT current_bundle_id FROM S.endpoints WHERE id = :e)",
        e=endpoint_id,
    )


def test_an_endpoint_that_always_fails_does_not_block_the_others(
    me_db: Any, schema_version: str, tmp_path: Path
) -> None:
    seed(me_db, drop_specs(3, me_db.version))
    pending = check(me_db.engine, schema=me_db.schema).pending
    (bad,), _ = select(pending, 1)  # the one --apply would pick first
    break_bundle(me_db, bad.endpoint_id)
    prom = tmp_path / "converge.prom"
    exits, outcomes = [], []
    for _ in range(4):
        result = reconcile(
            me_db,
            *("--apply", "--no-redeploy", "--format", "json", "--detailed-exitcode"),
            *("--metrics-file", str(prom)),
        )
        exits.append(result.exit_code)
        doc = json.loads(result.stdout)
        outcomes.append([(e["endpoint_name"], e["outcome"]) for e in doc["apply"]["endpoints"]])
        if result.exit_code == 1:
            assert doc["apply"]["failures"] == 1
            found = {
                (s.name, s.labels.get("mode")): s.value
                for fam in text_string_to_metric_families(prom.read_text())
                for s in fam.samples
            }
            assert found[(f"{metrics.PREFIX}_apply_failures", "apply")] == 1
            assert found[(f"{metrics.PREFIX}_last_run_success", "apply")] == 1
    # It fails (exit 1), the others converge in the next runs, then it is retried.
    assert exits == [1, 2, 2, 1], outcomes
    assert outcomes[0] == [(bad.endpoint_name, "failed")] == outcomes[3]
    assert len(set(applied_ids(me_db))) == 2 and bad.endpoint_id not in applied_ids(me_db)


def test_an_interrupted_reconcile_run_is_closed_once_nothing_is_left(
    me_db: Any, schema_version: str
) -> None:
    seed(me_db, drop_specs(1, me_db.version))
    assert report(me_db, "--apply", "--no-redeploy")[0] == 0
    dead = mark_last_run(me_db, "interrupted")
    code, doc = report(me_db)
    assert code == 2 and kinds(doc) == {UNFINISHED_RUN}
    assert "next reconcile --apply" in doc["findings"][0]["detail"]
    # Nothing left to change: this --apply closes the run instead.
    code, doc = report(me_db, "--apply", "--no-redeploy")
    assert code == 0 and doc["apply"]["closed_runs"] == [dead], doc["findings"]
    assert run_statuses(me_db) == ["interrupted", "finished"]
    # A plain check agrees, and the next --apply has nothing to close.
    assert report(me_db)[0] == 0
    assert report(me_db, "--apply", "--no-redeploy")[1]["apply"]["closed_runs"] == []


def test_resolve_run_closes_an_abandoned_plan(me_db: Any, schema_version: str) -> None:
    interrupted_run(me_db)
    code, doc = report(me_db)
    (unfinished,) = [f for f in doc["findings"] if f["kind"] == UNFINISHED_RUN]
    run_id = unfinished["run_id"]
    assert f"reconcile --resolve-run {run_id}" in unfinished["detail"]
    changes = journal_rows(me_db)
    # The plan is abandoned: nobody will rerun it.
    result = reconcile(me_db, "--resolve-run", run_id, "--format", "json", "--detailed-exitcode")
    assert result.exit_code == 2 and f"run {run_id} resolved" in result.stderr
    doc = json.loads(result.stdout)
    assert kinds(doc) == {PENDING}  # the endpoints are still to do, the run is not
    assert journal_rows(me_db) == changes  # closing a run changes nothing
    assert run_statuses(me_db) == ["interrupted", "finished"]
    # Only an interrupted run can be resolved, once.
    again = reconcile(me_db, "--resolve-run", run_id)
    assert again.exit_code == 1 and "resolved by a later run" in again.stderr
    missing = reconcile(me_db, "--resolve-run", "run_nosuchrun")
    assert missing.exit_code == 1 and "no run run_nosuchrun" in missing.stderr


def test_sigterm_marks_the_apply_run_interrupted_and_writes_metrics(
    me_db: Any, schema_version: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(me_db, drop_specs(2, me_db.version))
    real_run_apply = autoapply.run_apply

    def run_apply(*args: Any, **kwargs: Any) -> Any:
        def hook(step: str, conn: Any) -> None:
            if step == "locked":  # mid-endpoint, the run row written
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(30)  # the handler interrupts this

        return real_run_apply(*args, hook=hook, **kwargs)

    def unhandled(signum: int, frame: Any) -> None:
        raise AssertionError("reconcile --apply left SIGTERM to its default: process killed")

    monkeypatch.setattr(autoapply, "run_apply", run_apply)
    previous = signal.signal(signal.SIGTERM, unhandled)
    prom = tmp_path / "reconcile.prom"
    try:
        result = CliRunner().invoke(
            main,
            ["reconcile", "--apply", "--no-redeploy", "--metrics-file", str(prom)],
            env={"BUNDLE_MIGRATE_DATABASE_URL": me_db.url},
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert result.exit_code == 130, result.output
    assert run_statuses(me_db) == ["interrupted"]
    found = {
        s.name: s.value
        for fam in text_string_to_metric_families(prom.read_text())
        for s in fam.samples
    }
    assert found[f"{metrics.PREFIX}_last_run_success"] == 0
    assert signal.getsignal(signal.SIGTERM) is previous


# Converging ---------------------------------------------------------------------------


def applied_per_run(me_db: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in journal_rows(me_db, "outcome = 'applied'"):
        counts[row["run_id"]] = counts.get(row["run_id"], 0) + 1
    return counts


def test_apply_converges_never_more_than_max_changes(me_db: Any, schema_version: str) -> None:
    seed(me_db, drop_specs(5, me_db.version) + clean_specs(me_db.version))
    exits = []
    for _ in range(6):
        result = reconcile(
            me_db,
            "--apply",
            "--no-redeploy",
            "--max-changes",
            "2",
            "--format",
            "json",
            "--detailed-exitcode",
        )
        exits.append(result.exit_code)
        doc = json.loads(result.stdout)
        assert doc["apply"]["applied"] <= 2
        if result.exit_code == 0:
            break
    assert exits == [2, 2, 0]
    per_run = applied_per_run(me_db)
    assert sorted(per_run.values()) == [1, 2, 2] and max(per_run.values()) <= 2
    with me_db.engine.connect() as conn:
        sources = conn.execute(
            sa.text("SELECT DISTINCT options ->> 'plan_path' FROM bundle_migration.runs")
        ).all()
    assert sources == [(RECONCILE_SOURCE,)]
    # Converged: another run changes nothing and writes no run row.
    result = reconcile(me_db, "--apply", "--no-redeploy")
    assert result.exit_code == 0 and "apply: nothing eligible to change" in result.stdout
    assert len(applied_per_run(me_db)) == 3


def test_apply_default_is_one_and_repairs_a_reverted_endpoint(
    me_db: Any, schema_version: str
) -> None:
    change = migrated(me_db, 2)[0]
    sql(
        me_db,
        "UPDATE S.endpoints SET current_bundle_id = :b WHERE id = :e",
        b=change["bundle_before"],
        e=change["endpoint_id"],
    )
    result = reconcile(me_db, "--apply", "--no-redeploy")
    assert result.exit_code == 0, result.stdout
    assert "1 endpoint(s) changed" in result.stdout
    latest = journal_rows(me_db, "outcome = 'applied'")[-1]
    assert latest["endpoint_id"] == change["endpoint_id"]
    assert latest["bundle_before"] == change["bundle_before"]


def test_apply_leaves_large_models_to_a_person(me_db: Any, schema_version: str) -> None:
    big = make_spec(
        "C",
        provenance="injected",
        model_name="llama-3-1-70b-instruct",
        seed=300,
        index=60,
        schema_version=me_db.version,
        status="READY",
        gpu_memory_utilization=Decimal("0.9"),
    )
    seed(me_db, [big])
    code, doc = report(me_db, "--apply", "--no-redeploy")
    if not doc["findings"]:
        pytest.fail(f"the large endpoint should be pending: {doc['scan']}")
    assert code == 2 and doc["apply"]["applied"] == 0 and doc["next"]["held_back"] == 1
    code, doc = report(me_db, "--apply", "--no-redeploy", "--include-large")
    assert code == 0 and doc["apply"]["applied"] == 1


def test_apply_while_another_run_holds_the_lock(me_db: Any, schema_version: str) -> None:
    seed(me_db, drop_specs(2, me_db.version))
    with MigrationLock(me_db.engine, me_db.schema):
        result = reconcile(me_db, "--apply", "--no-redeploy", "--format", "json")
    assert result.exit_code == 0  # skipped, not failed: drift alone is no error
    doc = json.loads(result.stdout)
    assert "another bundle-migrate apply or rollback is running" in doc["apply"]["skipped"]
    assert doc["apply"]["applied"] == 0 and doc["counts"][PENDING] == 2

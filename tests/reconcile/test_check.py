"""reconcile against a real PostgreSQL: clean fleets, every finding kind, exit statuses."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from migrate.reconcile.findings import (
    BUNDLE_MOVED,
    ENDPOINT_DELETED,
    FLAG_REVERTED,
    KEPT_BY_OVERRIDE,
    MISSING_BUNDLE,
    MISSING_OLD_BUNDLE,
    OWNER_CHOSE_EAGER,
    PENDING,
    PENDING_NOT_READY,
    RUN_IN_PROGRESS,
    SUPERSEDED,
    UNFINISHED_RUN,
)
from migrate.store.ddl import create_model_engine_tables
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
from tests.support.rollout import apply, journal_rows, make_plan, seed

# The journal checks read columns both schema versions have: one test runs on both,
# the others on the current one, which keeps the suite fast.
LATEST = pytest.mark.parametrize("schema_version", ["2026"])


# Against PostgreSQL ---------------------------------------------------------------------


@LATEST
def test_clean_fleet_exits_0_and_pending_changes_exit_2(me_db: Any, schema_version: str) -> None:
    seed(me_db, clean_specs(me_db.version))
    code, doc = report(me_db)
    assert code == 0 and doc["status"] == "clean" and doc["findings"] == []
    assert doc["reconcile"]["journal"] is False and doc["scan"]["endpoints"] == 3
    table = reconcile(me_db)
    assert (
        table.exit_code == 0 and ": clean" in table.stdout and "journal: none yet" in table.stdout
    )

    seed(me_db, drop_specs(2, me_db.version))
    code, doc = report(me_db)
    assert code == 2 and doc["status"] == "drift" and doc["drift"] == 2
    assert kinds(doc) == {PENDING} and doc["counts"][PENDING] == 2
    assert all(f["action"] == "drop-eager" for f in doc["findings"])
    assert len(doc["next"]["endpoints"]) == 1 and doc["apply"] is None
    # Drift is not an error: a CronJob needs no wrapper; alerting opts into exit 2.
    assert reconcile(me_db).exit_code == 0
    assert reconcile(me_db, "--detailed-exitcode").exit_code == 2
    # Filters narrow the scan, as in scan.
    code, _ = report(me_db, "--name", "nothing-matches-*")
    assert code == 0


@LATEST
def test_a_fully_applied_fleet_is_clean(me_db: Any, schema_version: str) -> None:
    migrated(me_db, 3)
    code, doc = report(me_db)
    assert code == 0 and doc["reconcile"]["journal"] is True, doc["findings"]


@LATEST
def test_flag_reverted_outside_the_tool(me_db: Any, schema_version: str, tmp_path: Path) -> None:
    change = migrated(me_db)[0]
    # Someone points the endpoint back at its old (eager) bundle by hand.
    sql(
        me_db,
        "UPDATE S.endpoints SET current_bundle_id = :b WHERE id = :e",
        b=change["bundle_before"],
        e=change["endpoint_id"],
    )
    code, doc = report(me_db)
    assert code == 2 and kinds(doc) == {FLAG_REVERTED, PENDING}
    (f,) = [f for f in doc["findings"] if f["kind"] == FLAG_REVERTED]
    assert f["endpoint_id"] == change["endpoint_id"] and f["run_id"] == change["run_id"]
    # The operator decides the flag stays: an override acknowledges it.
    overrides = tmp_path / "overrides.toml"
    overrides.write_text(f'[keep-eager]\nendpoints = ["{change["endpoint_name"]}"]\n')
    code, doc = report(me_db, "--overrides", str(overrides))
    assert code == 0 and kinds(doc) == {KEPT_BY_OVERRIDE}


def copy_bundle(me_db: Any, source: str, new_id: str, created_at: str) -> None:
    """A copy of a bundle row; `created_at` is SQL on the database's own clock, never
    Python's, since the journal's timestamps it is compared with come from there."""
    with me_db.engine.begin() as conn:
        cols = [
            r[0]
            for r in conn.execute(
                sa.text(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = :s "
                    "AND table_name = 'bundles' AND column_name NOT IN ('id', 'created_at') "
                    "ORDER BY ordinal_position"
                ),
                {"s": me_db.schema},
            )
        ]
        names = ", ".join(f'"{c}"' for c in cols)
        conn.execute(
            sa.text(
                f'INSERT INTO "{me_db.schema}".bundles (id, created_at, {names}) '
                f'SELECT :new, {created_at}, {names} FROM "{me_db.schema}".bundles WHERE id = :src'
            ),
            {"new": new_id, "src": source},
        )


@LATEST
def test_bundle_moved_superseded_and_deleted(me_db: Any, schema_version: str) -> None:
    first, second = migrated(me_db)
    # An older copy of the migrated bundle: no model engine rebuild explains it.
    older = "clock_timestamp() - interval '400 days'"
    copy_bundle(me_db, first["bundle_after"], "bun_handmadecopy00000000", older)
    sql(
        me_db,
        "UPDATE S.endpoints SET current_bundle_id = 'bun_handmadecopy00000000' WHERE id = :e",
        e=first["endpoint_id"],
    )
    code, doc = report(me_db)
    assert code == 2 and kinds(doc) == {BUNDLE_MOVED}
    assert "rollback of that run would refuse it" in doc["findings"][0]["detail"]
    # Model engine rebuilt it after the run, the flag as the run left it: a notice only.
    copy_bundle(me_db, first["bundle_after"], "bun_rebuiltbymodelengine", "clock_timestamp()")
    sql(
        me_db,
        "UPDATE S.endpoints SET current_bundle_id = 'bun_rebuiltbymodelengine' WHERE id = :e",
        e=first["endpoint_id"],
    )
    sql(me_db, "DELETE FROM S.endpoints WHERE id = :e", e=second["endpoint_id"])
    code, doc = report(me_db)
    assert code == 0 and kinds(doc) == {SUPERSEDED, ENDPOINT_DELETED}
    assert {f["severity"] for f in doc["findings"]} == {"notice"}


def test_missing_bundle(me_db: Any, schema_version: str) -> None:
    change = migrated(me_db, 1)[0]
    sql(
        me_db,
        "UPDATE S.endpoints SET current_bundle_id = :b WHERE id = :e",
        b=change["bundle_before"],
        e=change["endpoint_id"],
    )
    sql(me_db, "DELETE FROM S.bundles WHERE id = :b", b=change["bundle_after"])
    code, doc = report(me_db)
    assert code == 2 and MISSING_BUNDLE in kinds(doc)
    (f,) = [f for f in doc["findings"] if f["kind"] == MISSING_BUNDLE]
    assert f["bundle_id"] == change["bundle_after"]
    # The expected flag comes from the bundle before it when the written one is gone.
    assert FLAG_REVERTED in kinds(doc)


@LATEST
def test_unfinished_runs(me_db: Any, schema_version: str) -> None:
    plan = interrupted_run(me_db)
    code, doc = report(me_db)
    assert code == 2 and UNFINISHED_RUN in kinds(doc)
    (f,) = [f for f in doc["findings"] if f["kind"] == UNFINISHED_RUN]
    assert "was interrupted" in f["detail"]
    # Resuming the same plan finishes its work: the interrupted run is resolved.
    apply(me_db, plan)
    code, doc = report(me_db)
    assert code == 0, doc["findings"]
    # A run marked running that nobody holds the lock for died (SIGKILL) ...
    sql(
        me_db,
        "UPDATE bundle_migration.runs SET status = 'running', finished_at = NULL "
        "WHERE run_id = (SELECT max(run_id) FROM bundle_migration.runs)",
    )
    code, doc = report(me_db)
    assert code == 2 and kinds(doc) == {UNFINISHED_RUN}
    assert any("died without finishing" in f["detail"] for f in doc["findings"])
    # ... unless the lock is held: then it is running right now, resuming the plan.
    with MigrationLock(me_db.engine, me_db.schema):
        code, doc = report(me_db)
    assert code == 0 and kinds(doc) == {RUN_IN_PROGRESS}


@LATEST
def test_a_rerun_with_nothing_left_to_do_resolves_an_interrupted_run(
    me_db: Any, schema_version: str
) -> None:
    seed(me_db, drop_specs(3, me_db.version))
    plan = make_plan(me_db, stages="3")
    apply(me_db, plan)
    # Killed after its last commit: nothing is left to resume.
    dead = mark_last_run(me_db, "running")
    code, doc = report(me_db)
    assert code == 2 and [f["run_id"] for f in doc["findings"]] == [dead]
    assert "rerun the same apply command" in doc["findings"][0]["detail"]
    # The rerun has nothing to do; a run with no changes records that the plan is done.
    summary = apply(me_db, plan)
    assert summary.run_id is not None and not summary.counts
    code, doc = report(me_db)
    assert code == 0, doc["findings"]
    # Once resolved, a further rerun writes nothing again.
    assert apply(me_db, plan).run_id is None


@LATEST
def test_another_schemas_journal_rows_are_not_this_ones(me_db: Any, schema_version: str) -> None:
    other = replace(me_db, schema="second_engine")
    with me_db.engine.begin() as conn:
        create_model_engine_tables(conn, version=me_db.version, schema=other.schema)
    seed(other, drop_specs(2, me_db.version))
    assert apply(other, make_plan(other)).counts["applied"] == 2
    # The default schema has no endpoints: nothing there is deleted or missing.
    code, doc = report(me_db)
    assert code == 0 and doc["findings"] == [], doc["findings"]
    # The other schema's own check still sees its journal.
    first = journal_rows(me_db, "outcome = 'applied'")[0]
    sql(
        me_db,
        'UPDATE "second_engine".endpoints SET current_bundle_id = :b WHERE id = :e',
        b=first["bundle_before"],
        e=first["endpoint_id"],
    )
    sql(me_db, 'DELETE FROM "second_engine".bundles WHERE id = :b', b=first["bundle_after"])
    code, doc = report(me_db, "--schema", other.schema)
    assert code == 2 and MISSING_BUNDLE in kinds(doc)
    code, doc = report(me_db)
    assert code == 0 and not kinds(doc) & {MISSING_BUNDLE, MISSING_OLD_BUNDLE}


@LATEST
def test_an_owner_turning_eager_back_on_is_a_notice(me_db: Any, schema_version: str) -> None:
    change = migrated(me_db, 1)[0]
    # The owner asks for eager through model engine: the eager command and the request.
    sql(
        me_db,
        "UPDATE S.endpoints SET current_bundle_id = :b, endpoint_metadata = jsonb_set("
        "CAST(endpoint_metadata AS jsonb), '{_llm,vllm_additional_args}', "
        """'{"enforce_eager": true}')  WHERE id = :e""",
        b=change["bundle_before"],
        e=change["endpoint_id"],
    )
    code, doc = report(me_db)
    assert code == 0 and kinds(doc) == {OWNER_CHOSE_EAGER}, doc["findings"]
    assert doc["scan"]["actions"]["keep-eager"] == 1
    # Without the request the flag coming back is drift again.
    sql(
        me_db,
        "UPDATE S.endpoints SET endpoint_metadata = CAST(endpoint_metadata AS jsonb) "
        "#- '{_llm,vllm_additional_args}' WHERE id = :e",
        e=change["endpoint_id"],
    )
    code, doc = report(me_db)
    assert code == 2 and FLAG_REVERTED in kinds(doc)


@LATEST
def test_pending_but_not_ready_is_a_notice(me_db: Any, schema_version: str) -> None:
    busy = [replace(s, status="UPDATE_PENDING") for s in drop_specs(2, me_db.version)]
    seed(me_db, busy)
    code, doc = report(me_db)
    assert code == 0 and kinds(doc) == {PENDING_NOT_READY}
    assert doc["counts"][PENDING_NOT_READY] == 2 and doc["next"]["held_back"] == 2


@LATEST
def test_errors_exit_1(me_db: Any, schema_version: str) -> None:
    result = reconcile(me_db, "--threshold", "2")
    assert result.exit_code == 1 and "must be in (0, 1]" in result.stderr
    bad = me_db.url.rsplit("/", 1)[0] + "/no_such_database_here"
    result = reconcile(me_db, url=bad)
    assert result.exit_code == 1 and "bundle-migrate: error:" in result.stderr

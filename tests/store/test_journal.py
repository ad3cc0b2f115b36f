"""The journal across releases and schemas: upgrading in place, runs that belong to a schema."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from migrate.cli import main
from migrate.core import outcomes as oc
from migrate.rollout.rollback import RollbackOptions, run_rollback
from migrate.rollout.status import runs_overview
from migrate.rollout.transaction import Settings
from migrate.store import journal as jr
from migrate.store.connection import DatabaseError
from migrate.store.ddl import create_model_engine_tables
from migrate.store.lock import MigrationLock
from tests.support.rollout import Collect, apply, journal_rows, make_plan, seed_random

OTHER = "other_me"


def _sql(me_db: Any, text: str, **params: Any) -> None:
    with me_db.engine.begin() as conn:
        conn.execute(sa.text(text), params)


def _run(me_db: Any, run_id: str, schema: str, status: str = "running", kind: str = "apply"):
    """A run row as 002 writes it."""
    _sql(
        me_db,
        "INSERT INTO bundle_migration.runs (run_id, kind, schema, status, finished_at, operator, "
        "host, options) VALUES (:r, :k, :s, :st, CASE WHEN :st = 'running' THEN NULL "
        "ELSE now() END, 'ops', 'box', CAST(:o AS jsonb))",
        r=run_id,
        k=kind,
        s=schema,
        st=status,
        o=json.dumps({"schema": schema}),
    )


def _statuses(me_db: Any) -> dict[str, str]:
    with me_db.engine.connect() as conn:
        return dict(conn.execute(sa.text("SELECT run_id, status FROM bundle_migration.runs")).all())


def test_a_journal_of_the_first_release_upgrades_in_place(me_db: Any) -> None:
    seed_random(me_db, 20)
    plan = make_plan(me_db)
    with me_db.engine.begin() as conn:
        assert jr.install(conn, jr.journal_files()[:1]) == ["001_journal.sql"]
    # What the first release wrote: no schema column, skipped rollbacks naming a bundle.
    options = json.dumps({"schema": me_db.schema})
    _sql(
        me_db,
        "INSERT INTO bundle_migration.runs (run_id, kind, operator, host, options) VALUES "
        "('run_dead', 'apply', 'ops', 'box', CAST(:o AS jsonb)), "
        "('run_undo', 'rollback', 'ops', 'box', CAST(:o AS jsonb))",
        o=options,
    )
    _sql(
        me_db,
        "INSERT INTO bundle_migration.changes (run_id, kind, endpoint_id, endpoint_name, "
        "bundle_before, bundle_after, outcome, detail) VALUES "
        "('run_undo', 'rollback', 'end_a', 'a', 'bun_now', 'bun_old', "
        "'rollback-skipped-drifted', 'already rolled back'), "
        "('run_undo', 'rollback', 'end_b', 'b', 'bun_now', 'bun_old', "
        "'rollback-skipped-drifted', 'changed since the run: its metadata changed')",
    )
    with me_db.engine.connect() as conn:
        # status reads a journal it does not upgrade: the schema comes from the options.
        assert {r["schema"] for r in runs_overview(conn)} == {me_db.schema}

    notes = Collect()
    _sql(
        me_db,
        "UPDATE bundle_migration.runs SET status = 'finished', finished_at = now() "
        "WHERE run_id = 'run_undo'",
    )
    assert apply(me_db, plan, stage=1, reporter=notes).counts == {oc.APPLIED: 1}
    assert "created journal bundle_migration (002_run_schema_and_rollback_outcomes.sql)" in (
        notes.notes
    )
    assert "run run_dead had died without finishing; marked interrupted" in notes.notes
    with me_db.engine.connect() as conn:
        assert set(jr.installed_versions(conn)) == {f.version for f in jr.journal_files()}
        schemas = conn.execute(sa.text("SELECT DISTINCT schema FROM bundle_migration.runs"))
        assert schemas.scalars().all() == [me_db.schema]
    old = {r["endpoint_id"]: r for r in journal_rows(me_db, "kind = 'rollback'")}
    assert old["end_a"]["outcome"] == oc.ROLLBACK_SKIPPED_ALREADY
    assert old["end_b"]["outcome"] == oc.ROLLBACK_SKIPPED_DRIFTED
    assert old["end_a"]["bundle_after"] is None and old["end_b"]["bundle_after"] is None
    assert old["end_b"]["bundle_before"] == "bun_now"  # the rest of the history stands


def test_orphaned_runs_are_closed_on_their_own_schema_only(me_db: Any) -> None:
    seed_random(me_db, 20)
    plan = make_plan(me_db)
    apply(me_db, plan, stage=1)  # installs the journal
    _run(me_db, "run_elsewhere", OTHER)  # alive, on another schema, holding its lock
    _run(me_db, "run_dead", me_db.schema)  # killed here: nobody holds this schema's lock
    with MigrationLock(me_db.engine, OTHER):
        with me_db.engine.connect() as conn:
            overview = {r["run_id"]: r["status"] for r in runs_overview(conn)}
        assert overview["run_elsewhere"] == "running"
        assert overview["run_dead"] == "interrupted?"
        notes = Collect()
        apply(me_db, plan, stage=2, reporter=notes, ignore_incomplete=True)
    assert "run run_dead had died without finishing; marked interrupted" in notes.notes
    assert not any("run_elsewhere" in n for n in notes.notes)
    statuses = _statuses(me_db)
    assert statuses["run_elsewhere"] == "running" and statuses["run_dead"] == "interrupted"


@pytest.fixture
def other_schema_run(me_db: Any) -> tuple[Any, str]:
    """An apply run on a second model engine schema in the same database."""
    with me_db.engine.begin() as conn:
        create_model_engine_tables(conn, version=me_db.version, schema=OTHER)
    other = replace(me_db, schema=OTHER)
    seed_random(other, 20)
    summary = apply(other, make_plan(other), stage=1)
    assert summary.counts == {oc.APPLIED: 1} and summary.run_id
    return other, summary.run_id


def test_rollback_by_run_acts_on_the_schema_the_run_changed(
    other_schema_run: tuple[Any, str],
) -> None:
    other, run_id = other_schema_run
    env = {"BUNDLE_MIGRATE_DATABASE_URL": other.url}
    invoke = CliRunner().invoke
    refused = invoke(
        main, ["rollback", "--run", run_id, "--schema", "hosted_model_inference"], env=env
    )
    assert refused.exit_code == 1
    assert f"run {run_id} changed schema '{OTHER}', not 'hosted_model_inference'" in refused.stderr
    # No --schema: the default would be the wrong schema; the run row says which.
    done = invoke(main, ["rollback", "--run", run_id, "--execute", "--no-redeploy"], env=env)
    assert done.exit_code == 0, done.output
    assert f"schema {OTHER}" in done.stdout and "rolled-back" in done.stdout
    assert [r["outcome"] for r in journal_rows(other, "kind = 'rollback'")] == [oc.ROLLED_BACK]
    # The library refuses a mismatch too, whoever calls it.
    options = RollbackOptions(settings=Settings(schema="hosted_model_inference"), run_id=run_id)
    with pytest.raises(DatabaseError, match="changed schema"):
        run_rollback(other.engine, replace(options, execute=True))

"""The plan / apply / rollback / status commands: options, messages and exit codes."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from sqlalchemy.engine import make_url

from migrate.cli import main
from migrate.core.plan import seal, to_json
from migrate.rollout import target as target_module
from migrate.rollout.apply import ROWS_ONLY_NOTE
from migrate.rollout.rollback import ROWS_ONLY_NOTE as ROLLBACK_ROWS_ONLY_NOTE
from migrate.store.connection import masked
from migrate.store.lock import MigrationLock
from tests.support.rollout import make_plan, seed_random

SECRET = "s3cr3t-pw"


def run(me_db: Any, *args: str, url: str | None = None) -> Result:
    env = {"BUNDLE_MIGRATE_DATABASE_URL": url or me_db.url}
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


@pytest.fixture
def planned(me_db: Any, tmp_path: Path) -> tuple[Any, Path]:
    seed_random(me_db, 30, seed_value=2)
    path = tmp_path / "plan.json"
    result = run(me_db, "plan", "--out", str(path), "--detailed-exitcode")
    assert result.exit_code == 2, result.output  # like terraform -detailed-exitcode: changes
    assert "endpoint(s) change, stages 1:canary=1" in result.stderr
    return me_db, path


def test_plan_needs_out_and_renders_a_ticket(planned: tuple[Any, Path], tmp_path: Path) -> None:
    me_db, path = planned
    result = run(me_db, "plan")
    # A usage error exits 1: 2 would read as "changes pending".
    assert result.exit_code == 1 and "--out FILE is required" in result.output
    doc = json.loads(path.read_text())
    assert doc["format"] == "bundle-migrate-plan" and doc["database"]["database"]
    ticket = run(me_db, "plan", "--from", str(path), "--format", "markdown")
    assert ticket.exit_code == 0
    assert f"bundle-migrate apply {path} --stage 1 --execute" in ticket.stdout
    assert doc["digest"] in ticket.stdout
    both = tmp_path / "p2.json"
    result = run(me_db, "plan", "--out", str(both), "--format", "markdown", "--stages", "2,100%")
    assert result.exit_code == 0 and "# bundle-migrate plan" in result.stdout
    assert json.loads(both.read_text())["stage_spec"] == "2,100%"
    assert run(me_db, "plan", "--out", "-").stdout.startswith("{")
    assert run(me_db, "plan", "--out", "x", "--stages", "5%,1%").exit_code == 1


def test_the_whole_flow(planned: tuple[Any, Path]) -> None:
    me_db, path = planned
    dry = run(me_db, "apply", str(path))
    assert dry.exit_code == 0, dry.output
    out = dry.stdout
    assert "DRY RUN: nothing is written" in out
    assert "working on stage 1 (canary) only" in out
    assert "would-apply" in out and "-> (new)" in out
    assert "-    --enforce-eager" in out and "+++ (new) runnable_image_command[2]" in out
    assert ROWS_ONLY_NOTE not in out  # a dry run writes nothing, rows or otherwise

    # No silent half-measure: a real run without model engine's API is refused.
    refused = run(me_db, "apply", str(path), "--execute", "--stage", "1")
    assert refused.exit_code == 1 and "--api-url" in refused.stderr
    assert "--no-redeploy" in refused.stderr

    done = run(me_db, "apply", str(path), "--execute", "--no-redeploy", "--stage", "1")
    assert done.exit_code == 0, done.output
    assert "EXECUTE" in done.stdout and "applied" in done.stdout and ROWS_ONLY_NOTE in done.stdout
    (summary_line,) = [line for line in done.stdout.splitlines() if line.startswith("run run_")]
    run_id = summary_line.split()[1].rstrip(":")
    assert run_id.startswith("run_")

    table = run(me_db, "status")
    assert table.exit_code == 0 and run_id in table.stdout and "stage 1: applied 1" in table.stdout
    doc = json.loads(run(me_db, "status", "--format", "json").stdout)
    assert doc["runs"][0]["stages"] == {"1": {"applied": 1}}
    assert doc["runs"][0]["status"] == "finished"
    one = json.loads(run(me_db, "status", "--run", run_id, "--format", "json").stdout)
    assert [c["outcome"] for c in one["changes"]] == ["applied"]
    progress = run(me_db, "status", "--plan", str(path), "--format", "json")
    stages = json.loads(progress.stdout)["stages"]
    assert stages[0]["complete"] and not stages[1]["complete"]
    assert "applied" in run(me_db, "status", "--run", run_id).stdout

    rest = run(
        me_db,
        *("apply", str(path), "--execute", "--no-redeploy", "--all-stages"),
        *("--max-per-minute", "6000"),
    )
    # A not-READY endpoint of the fleet is left undone: that alone is exit 1.
    undone = "skipped-not-ready" in rest.stdout
    assert rest.exit_code == (1 if undone else 0), rest.output
    assert "failed" not in rest.stdout
    assert ("planned endpoint(s) of the stages worked on are not done" in rest.stdout) == undone

    preview = run(me_db, "rollback", "--plan", str(path))
    assert preview.exit_code == 0 and "would-roll-back" in preview.stdout
    back = run(me_db, "rollback", "--plan", str(path), "--execute", "--no-redeploy")
    assert back.exit_code == 0 and "rolled-back" in back.stdout
    for output in (preview.stdout, back.stdout):
        assert f"database {masked(me_db.url)}, schema {me_db.schema}" in output
    assert ROLLBACK_ROWS_ONLY_NOTE in back.stdout and "no pod was restarted" in back.stdout
    assert run(me_db, "rollback", "--run", run_id, "--execute", "--no-redeploy").stdout.count(
        "nothing to roll back"
    )


def test_edited_plans_and_other_databases_are_refused(planned: tuple[Any, Path]) -> None:
    me_db, path = planned
    doc = json.loads(path.read_text())
    doc["items"][0]["command_after"] += " --evil"
    path.write_text(json.dumps(doc))
    result = run(me_db, "apply", str(path), "--execute", "--no-redeploy")
    assert result.exit_code == 1
    assert "does not match its digest: it was edited or damaged" in result.stderr

    plan = make_plan(me_db)
    elsewhere = seal(replace(plan, database={**plan.database, "database": "elsewhere"}))
    path.write_text(to_json(elsewhere))
    result = run(me_db, "apply", str(path))
    assert result.exit_code == 1
    assert "made against another database" in result.stderr
    assert "database name: plan 'elsewhere'" in result.stderr
    result = run(me_db, "apply", str(path), "--schema", "other_schema")
    assert result.exit_code == 1 and "the plan is for schema" in result.stderr


def test_usage_errors_and_the_lock_message(planned: tuple[Any, Path]) -> None:
    me_db, path = planned
    both = run(me_db, "apply", str(path), "--stage", "1", "--all-stages")
    assert both.exit_code == 1 and "exclude each other" in both.output
    assert run(me_db, "rollback").exit_code == 1
    assert run(me_db, "apply", str(path), "--stage", "99").exit_code == 1
    with MigrationLock(me_db.engine, me_db.schema):
        busy = run(me_db, "apply", str(path), "--execute", "--no-redeploy")
    assert busy.exit_code == 1
    assert "another bundle-migrate apply or rollback is running" in busy.stderr
    assert "cannot stay stuck" in busy.stderr
    assert "not through a transaction pooler" in busy.stderr
    for command in ("apply", "rollback"):
        assert "not through a transaction pooler" in " ".join(
            run(me_db, command, "--help").stdout.split()
        )
    assert "restores all the old metadata, overwriting later edits" in " ".join(
        run(me_db, "rollback", "--help").stdout.split()
    )


def test_all_stages_stops_with_an_error_at_a_busy_canary(planned: tuple[Any, Path]) -> None:
    me_db, path = planned
    canary = json.loads(path.read_text())["items"][0]
    assert canary["stage"] == 1
    with me_db.engine.connect() as holder:
        # Someone else (model engine) is writing the canary's row right now.
        holder.execute(
            sa.text(f'SELECT 1 FROM "{me_db.schema}".endpoints WHERE id = :id FOR UPDATE'),
            {"id": canary["endpoint_id"]},
        )
        dry = run(me_db, "apply", str(path), "--all-stages")
        result = run(me_db, "apply", str(path), "--execute", "--no-redeploy", "--all-stages")
        holder.rollback()
    assert result.exit_code == 1, result.output
    assert "stage 1 incomplete (1 busy): rerun to continue" in result.stdout
    assert "stage 2 (" not in result.stdout  # never started
    # The dry run cannot see a row lock (it takes none), so it previews the stages.
    assert dry.exit_code == 0 and "stage 2 (" in dry.stdout
    again = run(me_db, "apply", str(path), "--execute", "--no-redeploy", "--all-stages")
    assert again.exit_code == (1 if "skipped-not-ready" in again.stdout else 0), again.output


def test_a_failover_needs_allow_other_address_and_both_addresses_are_shown(
    planned: tuple[Any, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    me_db, path = planned
    plan = make_plan(me_db)
    seen = {**plan.database, "host": "10.0.0.5", "port": 5432}
    path.write_text(to_json(seal(replace(plan, database=seen))))
    real = target_module.identity.database_identity
    monkeypatch.setattr(
        target_module.identity,
        "database_identity",
        lambda conn: {**real(conn), "host": "10.0.0.6", "port": 5432},
    )
    refused = run(me_db, "apply", str(path), "--execute", "--no-redeploy", "--stage", "1")
    assert refused.exit_code == 1
    assert "server address: plan 10.0.0.5:5432, here 10.0.0.6:5432" in refused.stderr
    allowed = run(
        me_db,
        "apply",
        str(path),
        "--execute",
        "--no-redeploy",
        "--stage",
        "1",
        "--allow-other-address",
    )
    assert allowed.exit_code == 0, allowed.output
    assert (
        "server address: the plan saw 10.0.0.5:5432, this connection reaches 10.0.0.6:5432"
        in allowed.stdout
    )
    back = run(
        me_db,
        "rollback",
        "--plan",
        str(path),
        "--execute",
        "--no-redeploy",
        "--allow-other-address",
    )
    assert back.exit_code == 0 and "rolled-back" in back.stdout
    assert "the plan saw 10.0.0.5:5432" in back.stdout


def test_status_before_any_run_and_no_password_anywhere(planned: tuple[Any, Path]) -> None:
    me_db, path = planned
    url = make_url(me_db.url).set(password=SECRET).render_as_string(hide_password=False)
    empty = run(me_db, "status", url=url)
    assert empty.exit_code == 0 and "no bundle-migrate run has written" in empty.stdout
    outputs = [
        run(me_db, "apply", str(path), url=url),
        run(me_db, "apply", str(path), "--execute", "--no-redeploy", url=url),
        run(me_db, "status", url=url),
        run(me_db, "rollback", "--plan", str(path), url=url),
    ]
    missing = make_url(url).set(database="no_such_db").render_as_string(hide_password=False)
    outputs.append(run(me_db, "apply", str(path), url=missing))
    assert outputs[-1].exit_code == 1 and "database error" in outputs[-1].stderr
    for result in outputs:
        assert SECRET not in result.output
    assert "***" in outputs[0].stdout


def test_ticket_attaches_what_it_leaves_out(planned: tuple[Any, Path], tmp_path: Path) -> None:
    me_db, path = planned
    attachment = tmp_path / "plan.endpoints.csv"
    short = run(
        me_db, "plan", "--from", str(path), "--format", "markdown", "--ticket-endpoints", "1"
    )
    assert short.exit_code == 0, short.output
    rows = list(csv.DictReader(io.StringIO(attachment.read_text())))
    items = json.loads(path.read_text())["items"]
    assert [r["endpoint_id"] for r in rows] == [i["endpoint_id"] for i in items]
    assert "attachment | `plan.endpoints.csv`" in short.stdout
    assert f"wrote all {len(items)} endpoints to {attachment}" in short.stderr
    attachment.unlink()
    full = run(
        me_db, "plan", "--from", str(path), "--format", "markdown", "--ticket-endpoints", "all"
    )
    assert full.exit_code == 0 and not attachment.exists()
    assert all(i["endpoint_name"] in full.stdout for i in items)
    elsewhere = tmp_path / "att.csv"
    made = run(
        me_db,
        "plan",
        "--out",
        str(tmp_path / "p3.json"),
        "--format",
        "markdown",
        "--ticket-endpoints",
        "2",
        "--ticket-attachment",
        str(elsewhere),
    )
    assert made.exit_code == 0 and elsewhere.exists() and "`att.csv`" in made.stdout
    bad = run(me_db, "plan", "--from", str(path), "--format", "markdown", "--ticket-endpoints", "0")
    assert bad.exit_code == 1 and "must be at least 1, or 'all'" in bad.output

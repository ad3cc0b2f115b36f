"""apply and rollback through model engine on the command line: exit codes, JSON, credentials."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from migrate.cli import main
from migrate.core.plan import to_json
from migrate.sandbox.standin.server import StandIn
from migrate.sandbox.synth import make_spec
from tests.support.rollout import make_plan, seed
from tests.support.standin import fast_behaviour, requests, standin

pytestmark = pytest.mark.parametrize("schema_version", ["2026"])

FAST = ["--poll-interval", "0.05", "--settle", "0.3", "--health-timeout", "4"]


def run(me_db: Any, server: StandIn, *args: str, **env: str) -> Result:
    environ = {
        "BUNDLE_MIGRATE_DATABASE_URL": me_db.url,
        "BUNDLE_MIGRATE_API_URL": server.url,
        "BUNDLE_MIGRATE_API_KEY": None,
        **env,
    }
    return CliRunner().invoke(main, list(args), env=environ, catch_exceptions=False)


@pytest.fixture
def planned(me_db: Any, tmp_path: Path) -> tuple[Any, Path]:
    seed(
        me_db,
        [
            make_spec(
                "F",
                provenance="injected",
                schema_version=me_db.version,
                name=f"ep-{i}",
                owner="team-a",
                status="READY",
                seed=i,
                index=i,
            )
            for i in range(3)
        ],
    )
    path = tmp_path / "plan.json"
    path.write_text(to_json(make_plan(me_db, stages="1,100%")))
    return me_db, path


def test_a_healthy_rollout_exits_0_and_json_says_everything(
    planned: tuple[Any, Path], schema_version: str
) -> None:
    me_db, path = planned
    with standin(me_db) as server:
        dry = run(me_db, server, "apply", str(path), "--act-as-owner")
        assert dry.exit_code == 0 and "model engine is asked, read-only" in dry.stdout
        assert {r.method for r in requests(server)} == {"GET"}  # the dry run never PUTs
        done = run(
            me_db,
            server,
            "apply",
            str(path),
            "--execute",
            "--all-stages",
            "--act-as-owner",
            "--format",
            "json",
            *FAST,
        )
    assert done.exit_code == 0, done.output
    doc = json.loads(done.stdout)
    assert doc["apply"]["redeploy"]["mode"] == "update" and doc["summary"]["exit_status"] == 0
    assert {r["deploy_state"] for r in doc["results"]} == {"healthy"}
    assert doc["summary"]["outcomes"] == {"applied": 3} and doc["summary"]["undone"] == 0
    assert "plan " in done.stderr  # notes go to stderr, so stdout is only the document


def test_a_crash_loop_exits_1_and_a_later_apply_is_refused_until_retried(
    planned: tuple[Any, Path], schema_version: str
) -> None:
    me_db, path = planned
    with standin(me_db, fast_behaviour(crashloop_without_eager=("ep-0",))) as server:
        failed = run(
            me_db,
            server,
            "apply",
            str(path),
            "--execute",
            "--all-stages",
            "--act-as-owner",
            *FAST,
        )
        assert failed.exit_code == 1, failed.output
        assert "READY but 1 worker(s) unavailable" in failed.stdout
        assert "healthy again" in failed.stdout and "stopped in stage 1" in failed.stdout
        refused = run(me_db, server, "apply", str(path), "--execute", "--act-as-owner", *FAST)
        assert refused.exit_code == 1 and "was aborted by run" in refused.stderr
        assert "--retry-aborted" in refused.stderr
        # The operator decides to go on without the canary: it stays rolled back.
        onward = run(
            me_db,
            server,
            "apply",
            str(path),
            "--execute",
            "--stage",
            "2",
            "--retry-aborted",
            "--ignore-incomplete-stages",
            "--act-as-owner",
            *FAST,
        )
    assert onward.exit_code == 0, onward.output
    assert "WARNING: --retry-aborted" in onward.stdout
    assert "WARNING: --ignore-incomplete-stages" in onward.stdout


def test_keys_come_from_a_private_file_and_never_show(
    planned: tuple[Any, Path], schema_version: str, tmp_path: Path
) -> None:
    me_db, path = planned
    keys = tmp_path / "keys.toml"
    keys.write_text('team-a = "sk-team-a-0123456789"\n')
    keys.chmod(0o644)
    behaviour = fast_behaviour(keys={"sk-team-a-0123456789": "team-a"})
    with standin(me_db, behaviour) as server:
        exposed = run(me_db, server, "apply", str(path), "--execute", "--api-keys", str(keys))
        assert exposed.exit_code == 1 and "readable by group or others" in exposed.stderr
        keys.chmod(0o600)
        done = run(
            me_db,
            server,
            *("--log-format", "json", "apply", str(path), "--execute", "--all-stages", *FAST),
            BUNDLE_MIGRATE_API_KEYS=str(keys),
        )
        assert done.exit_code == 0, done.output
        assert {r.team for r in requests(server)} == {"team-a"}
    for output in (exposed.output, done.output):
        assert "sk-team-a" not in output and "0123456789" not in output


def test_without_credentials_or_an_api_a_real_run_refuses(
    planned: tuple[Any, Path], schema_version: str
) -> None:
    me_db, path = planned
    with standin(me_db) as server:
        nothing = run(me_db, server, "apply", str(path), "--execute")
        assert nothing.exit_code == 1 and "no credentials for model engine's API" in nothing.stderr
        both = run(
            me_db,
            server,
            *("apply", str(path), "--execute", "--no-redeploy", "--api-url", server.url),
        )
        assert both.exit_code == 1 and "conflict" in both.output
        rows = run(
            me_db,
            server,
            "rollback",
            "--plan",
            str(path),
            "--execute",
            BUNDLE_MIGRATE_API_URL="",
        )
        assert rows.exit_code == 1 and "rollback --execute redeploys" in rows.stderr
    assert requests(server) == []


def test_an_explicit_no_redeploy_outranks_the_api_url_in_the_environment(
    planned: tuple[Any, Path],
) -> None:
    me_db, path = planned
    with standin(me_db) as server:
        done = run(me_db, server, "apply", str(path), "--execute", "--all-stages", "--no-redeploy")
        assert done.exit_code == 0, done.output
        assert "applied" in done.output
    assert requests(server) == []

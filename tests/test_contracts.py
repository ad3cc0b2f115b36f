"""Every JSON output validates against the JSON Schema shipped for it (schemas/, migrate.schemas).

Real outputs, from the real commands against a seeded database: scan, the plan
file, the three status documents, reconcile (check and --apply). Adding a
contract is one schema file and one test here that validates a real output.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from migrate.cli import main
from migrate.core.documents import FORMAT_VERSION
from migrate.core.plan import compute_digest, parse_plan
from tests.support.contracts import errors, shipped, validate
from tests.support.rollout import seed_random
from tests.support.standin import standin

pytestmark = pytest.mark.parametrize("schema_version", ["2026"])


def run(me_db: Any, *args: str) -> Any:
    result = CliRunner().invoke(
        main, list(args), env={"BUNDLE_MIGRATE_DATABASE_URL": me_db.url}, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return result


def test_every_shipped_schema_is_a_valid_versioned_schema(schema_version: str) -> None:
    schemas = shipped()
    assert {"common", "scan", "plan", "status", "reconcile", "apply", "rollback"} <= set(schemas)
    for name, schema in schemas.items():
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["$id"].endswith(f"/{name}.schema.json")
        if name != "common":
            assert "format_version" in schema["required"], name


def test_scan_json(me_db: Any, tmp_path: Path, schema_version: str) -> None:
    seed_random(me_db, 40, seed_value=5)
    doc = json.loads(run(me_db, "scan", "--format", "json").stdout)
    validate("scan", doc)
    assert doc["format_version"] == FORMAT_VERSION
    assert isinstance(doc["scan"]["policy"]["threshold"], float)
    assert any(e["command_after"] for e in doc["endpoints"])
    # The schema can fail: the old string threshold and a non-RFC 3339 time are refused.
    old = json.loads(json.dumps(doc))
    old["scan"]["policy"]["threshold"] = "0.95"
    old["scan"]["generated_at"] = "2026-12-02 07:57:35.792343+00:00"
    found = errors("scan", old)
    assert any("'0.95' is not of type 'number'" in e for e in found), found
    assert any("does not match" in e or "date-time" in e for e in found), found


def test_plan_file(me_db: Any, tmp_path: Path, schema_version: str) -> None:
    seed_random(me_db, 40, seed_value=5)
    path = tmp_path / "plan.json"
    run(me_db, "plan", "--out", str(path))
    doc = json.loads(path.read_text())
    validate("plan", doc)
    assert doc["format_version"] == doc["version"] == 1
    assert doc["policy"]["threshold"] == 0.95


def test_a_plan_from_before_format_version_is_still_read(
    me_db: Any, tmp_path: Path, schema_version: str
) -> None:
    """Plans made by earlier versions hold threshold "0.95" and no format_version."""
    seed_random(me_db, 40, seed_value=5)
    path = tmp_path / "plan.json"
    run(me_db, "plan", "--out", str(path))
    doc = json.loads(path.read_text())
    del doc["format_version"], doc["digest"]
    doc["policy"]["threshold"] = "0.95"
    doc["digest"] = compute_digest(doc)
    old = tmp_path / "old-plan.json"
    old.write_text(json.dumps(doc, indent=2, sort_keys=True))
    plan = parse_plan(old.read_text(), source=str(old))
    assert plan.policy["threshold"] == "0.95" and plan.digest == doc["digest"]
    ticket = run(me_db, "plan", "--from", str(old), "--format", "markdown").stdout
    assert "threshold 0.95" in ticket
    dry = run(me_db, "apply", str(old), "--stage", "1")
    assert "would-apply" in dry.stdout
    # A plan of a later format is refused with a clear message.
    doc["format_version"] = 2
    del doc["digest"]
    doc["digest"] = compute_digest(doc)
    newer = tmp_path / "newer-plan.json"
    newer.write_text(json.dumps(doc))
    refused = CliRunner().invoke(main, ["plan", "--from", str(newer), "--format", "markdown"])
    assert refused.exit_code == 1 and "use the bundle-migrate that made it" in refused.stderr


def test_status_documents(me_db: Any, tmp_path: Path, schema_version: str) -> None:
    seed_random(me_db, 40, seed_value=5)
    plan = tmp_path / "plan.json"
    run(me_db, "plan", "--out", str(plan))
    empty = json.loads(run(me_db, "status", "--format", "json").stdout)
    validate("status", empty)
    assert empty["runs"] == []
    run(me_db, "apply", str(plan), "--stage", "1", "--execute", "--no-redeploy")
    run(me_db, "rollback", "--plan", str(plan), "--execute", "--no-redeploy")
    runs = json.loads(run(me_db, "status", "--format", "json").stdout)
    validate("status", runs)
    assert [r["kind"] for r in runs["runs"]] == ["rollback", "apply"]
    for r in runs["runs"]:
        one = json.loads(run(me_db, "status", "--run", r["run_id"], "--format", "json").stdout)
        validate("status", one)
        assert one["changes"] and all(c["created_at"][10] == "T" for c in one["changes"])
    progress = json.loads(run(me_db, "status", "--plan", str(plan), "--format", "json").stdout)
    validate("status", progress)
    # Two shapes at once is neither: the oneOf holds.
    assert errors("status", {**progress, "runs": []})


def test_reconcile_json(me_db: Any, tmp_path: Path, schema_version: str) -> None:
    seed_random(me_db, 40, seed_value=5)
    check = json.loads(run(me_db, "reconcile", "--format", "json").stdout)
    validate("reconcile", check)
    assert check["status"] == "drift" and check["apply"] is None
    applied = json.loads(
        run(
            me_db, "reconcile", "--apply", "--no-redeploy", "--max-changes", "2", "--format", "json"
        ).stdout
    )
    validate("reconcile", applied)
    assert applied["apply"]["applied"] == 2
    assert errors("reconcile", {**check, "status": "clean"})  # clean with drift > 0


def test_apply_and_rollback_json(me_db: Any, tmp_path: Path, schema_version: str) -> None:
    """Through the model engine stand-in, so the redeploy fields are real ones."""
    seed_random(me_db, 30, seed_value=5)
    plan = tmp_path / "plan.json"
    run(me_db, "plan", "--out", str(plan))
    fast = ("--act-as-owner", "--poll-interval", "0.05", "--settle", "0.2", "--health-timeout", "5")
    with standin(me_db) as server:

        def json_of(*args: str) -> dict[str, Any]:
            result = CliRunner().invoke(
                main,
                [*args, "--format", "json", *fast],
                env={
                    "BUNDLE_MIGRATE_DATABASE_URL": me_db.url,
                    "BUNDLE_MIGRATE_API_URL": server.url,
                },
                catch_exceptions=False,
            )
            return json.loads(result.stdout)

        dry = json_of("apply", str(plan))
        done = json_of("apply", str(plan), "--stage", "1", "--execute")
        back = json_of("rollback", "--plan", str(plan), "--execute")
    for doc in (dry, done):
        validate("apply", doc)
    validate("rollback", back)
    assert any("diff" in r for r in dry["results"]) and dry["apply"]["execute"] is False
    assert done["results"][0]["deploy_state"] == "healthy" and done["summary"]["exit_status"] == 0
    assert back["summary"]["aborted_plans"] == [done["apply"]["plan_digest"]]
    # The schema can fail: an outcome it does not know, a key in the API URL.
    bad = json.loads(json.dumps(done))
    bad["results"][0]["outcome"] = "sort-of-applied"
    bad["apply"]["redeploy"]["api_url"] = "https://key@model-engine"
    found = errors("apply", bad)
    assert len(found) == 2, found

"""What monitoring reads: the Prometheus textfile and the JSON audit log."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from migrate.cli import auditlog, main
from migrate.core.summary import Summary
from migrate.reconcile import metrics
from migrate.reconcile.findings import KINDS, Check, Finding
from tests.support.reconcile import clean_specs, drop_specs
from tests.support.rollout import seed

pytestmark = pytest.mark.parametrize("schema_version", ["2026"])


def samples(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a textfile, keyed by name and labels; parsing is the format check."""
    out = {}
    for family in text_string_to_metric_families(path.read_text()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    key = tuple(sorted({"schema": "s", **labels}.items()))
    return found[(f"{metrics.PREFIX}_{name}", key)]


def a_check() -> Check:
    summary = Summary()
    summary.total = 3
    summary.actions.update({"drop-eager": 2, "no-change": 1})
    summary.flags.update({"not-ready": 1, "some-new-flag": 1})
    findings = [
        Finding("pending-change", "x", endpoint_name="a"),
        Finding("pending-change", "y", endpoint_name="b"),
        Finding("superseded", "z", endpoint_name="c"),
    ]
    return Check(summary, findings, [], journal=True)


def test_counts_per_action_flag_and_kind(tmp_path: Path, schema_version: str) -> None:
    path = tmp_path / "bm.prom"
    run = metrics.RunMetrics(
        100.0, 103.5, a_check(), applied=1, apply_failures=2, labels={"schema": "s"}
    )
    metrics.write(path, run)
    found = samples(path)
    assert value(found, "apply_failures") == 2
    assert value(found, "endpoints", action="drop-eager") == 2
    assert value(found, "endpoints", action="skip") == 0  # every action, zeros too
    assert value(found, "flagged_endpoints", flag="some-new-flag") == 1
    assert value(found, "flagged_endpoints", flag="multinode") == 0
    assert value(found, "findings", kind="pending-change", severity="drift") == 2
    assert value(found, "findings", kind="superseded", severity="notice") == 1
    assert sum(1 for k in found if k[0].endswith("_findings")) == len(KINDS)
    assert value(found, "drift") == 2 and value(found, "applied_changes") == 1
    assert value(found, "last_run_success") == 1
    assert value(found, "last_success_timestamp_seconds") == 103.5
    assert value(found, "run_duration_seconds") == 3.5
    # A failed run: success 0, counts gone, the last success carried over.
    metrics.write(path, metrics.RunMetrics(200.0, 201.0, None, labels={"schema": "s"}))
    found = samples(path)
    assert (
        value(found, "last_run_success") == 0 and value(found, "last_run_timestamp_seconds") == 201
    )
    assert value(found, "last_success_timestamp_seconds") == 103.5
    assert not any(k[0].endswith("_drift") for k in found)
    assert [p.name for p in tmp_path.iterdir()] == ["bm.prom"]  # no temporary left behind


def test_garbage_previous_file_is_no_success(tmp_path: Path, schema_version: str) -> None:
    path = tmp_path / "bm.prom"
    path.write_text("this is { not prometheus\n")
    assert metrics.previous_success(path) is None
    metrics.write(path, metrics.RunMetrics(1.0, 2.0, None, labels={"schema": "s"}))
    assert not any("last_success" in k[0] for k in samples(path))


def invoke(url: str, *args: str) -> Result:
    env = {"BUNDLE_MIGRATE_DATABASE_URL": url}
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_reconcile_writes_the_textfile(me_db: Any, tmp_path: Path, schema_version: str) -> None:
    seed(me_db, drop_specs(2, me_db.version) + clean_specs(me_db.version))
    path = tmp_path / "reconcile.prom"
    result = invoke(me_db.url, "reconcile", "--metrics-file", str(path))
    assert result.exit_code == 0  # drift is reported in the metrics, not as a failed Job
    found = samples(path)
    key = (("mode", "check"), ("schema", me_db.schema))
    assert found[(f"{metrics.PREFIX}_drift", key)] == 2
    assert found[(f"{metrics.PREFIX}_endpoints", (("action", "drop-eager"), *key))] == 2
    assert found[(f"{metrics.PREFIX}_apply_failures", key)] == 0
    assert found[(f"{metrics.PREFIX}_journal_present", key)] == 0
    success = found[(f"{metrics.PREFIX}_last_success_timestamp_seconds", key)]
    # The database goes away: exit 1, and the file says so without losing the last success.
    bad = make_url(me_db.url).set(database="no_such_db").render_as_string(hide_password=False)
    result = invoke(bad, "reconcile", "--metrics-file", str(path))
    assert result.exit_code == 1
    found = samples(path)
    assert found[(f"{metrics.PREFIX}_last_run_success", key)] == 0
    assert found[(f"{metrics.PREFIX}_last_success_timestamp_seconds", key)] == success
    result = invoke(me_db.url, "reconcile", "--metrics-file", str(tmp_path / "no" / "dir.prom"))
    assert result.exit_code == 1 and "cannot write metrics file" in result.stderr


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_json_log_lines_carry_the_run_id(me_db: Any, schema_version: str) -> None:
    seed(me_db, drop_specs(2, me_db.version))
    url = make_url(me_db.url).set(password="s3cr3t-pw").render_as_string(hide_password=False)
    result = invoke(
        url, "--log-format", "json", "reconcile", "--apply", "--no-redeploy", "--format", "json"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["apply"]["applied"] == 1  # stdout is still the report
    assert "s3cr3t-pw" not in result.stderr
    lines = json_lines(result.stderr)
    assert lines and all(line["invocation_id"] == lines[0]["invocation_id"] for line in lines)
    events = [line["event"] for line in lines]
    assert events[0] == "command.started" and events[-1] == "command.finished"
    assert {"reconcile.checked", "reconcile.apply_finished", "reconcile.endpoint"} <= set(events)
    finished = next(line for line in lines if line["event"] == "reconcile.apply_finished")
    assert finished["run_id"].startswith("run_") and finished["applied"] == 1
    # Once a run is known, every later line carries it.
    after = lines[lines.index(finished) :]
    assert all(line["run_id"] == finished["run_id"] for line in after)
    assert lines[-1]["exit_status"] == 0 and lines[-1]["command"] == "reconcile"
    # Every command has the option, text stays quiet, errors are logged with status 1.
    plain = invoke(me_db.url, "scan", "--detailed-exitcode")
    assert plain.exit_code == 2 and "{" not in plain.stderr
    env_json = CliRunner().invoke(
        main, ["reconcile", "--threshold", "7"], env={"BUNDLE_MIGRATE_LOG_FORMAT": "json"}
    )
    last = json_lines(env_json.stderr)[-1]
    assert last["exit_status"] == 1 and "must be in (0, 1]" in last["error"]


def test_mask_and_bound_run(schema_version: str) -> None:
    stream = io.StringIO()
    auditlog.configure("json", command="apply", stream=stream)
    log = logging.getLogger("bundle_migrate.apply")
    log.info("connecting to postgresql://u:hunter2@db/x password=hunter2")
    log.info("run started", extra={"event": "apply.run_started", "run_id": "run_x"})
    log.info("endpoint", extra={"event": "apply.endpoint", "url": "postgres://a:hunter2@h/d"})
    first, second, third = json_lines(stream.getvalue())
    assert "hunter2" not in stream.getvalue() and first["run_id"] is None
    assert second["run_id"] == third["run_id"] == "run_x" and third["command"] == "apply"
    auditlog.configure("text")


def test_apply_and_rollback_are_audited(me_db: Any, tmp_path: Path, schema_version: str) -> None:
    seed(me_db, drop_specs(2, me_db.version))
    plan = tmp_path / "plan.json"
    assert invoke(me_db.url, "plan", "--out", str(plan)).exit_code == 0
    for args in (["apply", str(plan), "--all-stages"], ["rollback", "--plan", str(plan)]):
        result = invoke(me_db.url, "--log-format", "json", *args, "--execute", "--no-redeploy")
        assert result.exit_code == 0, result.output
        lines = json_lines(result.stderr)
        kind = args[0]
        started = next(line for line in lines if line["event"] == f"{kind}.run_started")
        run_id = started["run_id"]
        assert run_id.startswith("run_") and started["command"] == kind
        endpoints = [line for line in lines if line["event"] == f"{kind}.endpoint"]
        assert len(endpoints) == 2 and all(line["run_id"] == run_id for line in endpoints)
        assert {line["endpoint_name"] for line in endpoints} <= {s.name for s in drop_specs(2)}
        finished = next(line for line in lines if line["event"] == f"{kind}.run_finished")
        assert finished["status"] == "finished" and lines[-1]["run_id"] == run_id


def test_a_usage_error_is_logged_with_the_status_the_process_exits_with(
    schema_version: str,
) -> None:
    result = CliRunner().invoke(
        main, ["--log-format", "json", "scan", "--threshold", "7"], catch_exceptions=False
    )
    assert result.exit_code == 1
    assert json_lines(result.stderr)[-1]["exit_status"] == 1

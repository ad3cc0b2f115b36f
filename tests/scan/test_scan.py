"""`scan` against a real PostgreSQL holding a seeded fleet of every generation.

The seeder knows what it planted (each spec's `expected_action`, written from
the intent, not by calling the classifier); the scan must find exactly that,
endpoint by endpoint, on both schema versions.
"""

from __future__ import annotations

import csv
import io
import json
import threading
from collections import Counter
from decimal import Decimal

import psycopg
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from migrate.cli import main
from migrate.core.modelsize import model_engine_param_count_b
from migrate.core.policy import RECORDED_DROP, PolicyParams
from migrate.sandbox import synth
from migrate.sandbox.embedded import to_libpq_url
from migrate.sandbox.seed import seed_fleet
from migrate.sandbox.synth.catalog import MODELS, total_params_b
from migrate.scan.report import JSON_FIELDS
from migrate.scan.scanner import scan
from migrate.store.connection import make_engine, parse_url
from migrate.store.fleet import Filters

FLEET_SIZE = 400
SEED = 11


@pytest.fixture
def fleet(me_db):
    specs = list(synth.random_fleet(FLEET_SIZE, SEED, schema_version=me_db.version))
    seed_fleet(me_db.url, specs, schema=me_db.schema, schema_version=me_db.version)
    return me_db, specs


def llm_specs(specs):
    return {s.endpoint_id: s for s in specs if s.framework is not None}


def cli(*args: str):
    return CliRunner().invoke(main, ["scan", *args], catch_exceptions=False)


def test_every_endpoint_gets_the_action_the_seeder_planted(fleet) -> None:
    db, specs = fleet
    expected = llm_specs(specs)
    decisions = {d.endpoint_id: d for d in scan(db.engine, schema=db.schema)}
    assert set(decisions) == set(expected), "exactly the LLM endpoints, non-LLM ones left out"
    wrong = [
        (
            s.name,
            s.generation,
            s.provenance,
            s.expected_action,
            decisions[i].action,
            decisions[i].reason,
        )
        for i, s in expected.items()
        if decisions[i].action != s.expected_action
    ]
    assert not wrong, wrong[:5]
    # The fleet really exercises every generation and every action that can occur.
    generations = {s.generation for s in expected.values() if s.framework == "vllm"}
    assert generations == set("ABCDEFGH")
    actions = Counter(d.action for d in decisions.values())
    assert {"drop-eager", "keep-eager", "no-change", "skip"} <= set(actions)


def test_sizes_are_total_parameters_as_the_catalogue_gives_them(fleet) -> None:
    db, specs = fleet
    expected = llm_specs(specs)
    catalogued = {m.name for m in MODELS}
    decisions = list(scan(db.engine, schema=db.schema))
    for d in decisions:
        spec = expected[d.endpoint_id]
        if spec.model_name in catalogued:
            assert d.param_count_b == total_params_b(spec.model_name), spec.model_name
        assert d.model_engine_param_count_b == model_engine_param_count_b(spec.model_name)
    seen = {d.model_name for d in decisions if "size-disagrees-with-model-engine" in d.flags}
    assert {"qwen3-235b-a22b", "deepseek-v3", "support-assistant"} <= seen


def test_recorded_drop_changes_only_the_recreated_endpoints(fleet) -> None:
    """With --recorded drop only parse-backs follow the rule; requests, however complete
    their dict (created after args were stored), keep what they asked for."""
    db, specs = fleet
    expected = llm_specs(specs)
    params = PolicyParams(recorded=RECORDED_DROP)
    wrong = []
    for d in scan(db.engine, schema=db.schema, params=params):
        spec = expected[d.endpoint_id]
        want = spec.expected_action
        if spec.provenance == "recorded":
            high = (spec.gpu_memory_utilization or 0) >= Decimal("0.95")
            want = "keep-eager" if high else "drop-eager"
        if d.action != want:
            wrong.append((spec.name, spec.provenance, want, d.action, d.evidence))
    assert not wrong, wrong[:3]
    assert any(s.provenance == "recorded" for s in expected.values())


def test_edited_commands_differ_only_by_the_flag(fleet) -> None:
    db, specs = fleet
    expected = llm_specs(specs)
    changed = [d for d in scan(db.engine, schema=db.schema) if d.changes]
    assert changed
    for d in changed:
        before = synth.build_script(expected[d.endpoint_id])
        assert d.command_after is not None
        if d.action == "drop-eager":
            assert "--enforce-eager" not in d.command_after.split()
            assert len(before) - len(d.command_after) == len(" --enforce-eager")
        else:
            assert len(d.command_after) - len(before) == len(" --enforce-eager")


def test_json_report_honours_the_contract(fleet) -> None:
    db, specs = fleet
    result = cli("--database-url", db.url, "--format", "json")
    assert result.exit_code == 0, result.stderr  # changes pending are not an error
    report = json.loads(result.stdout)
    rows = report["endpoints"]
    assert len(rows) == len(llm_specs(specs))
    for row in rows:
        assert set(JSON_FIELDS) <= set(row)
        assert isinstance(row["flags"], list)
        assert row["param_count_b"] is None or isinstance(row["param_count_b"], int)
        # An addition beside the contract: model engine's own reading of the name.
        assert row["model_engine_param_count_b"] == model_engine_param_count_b(row["model_name"])
        assert (row["command_after"] is not None) == (row["action"] in ("drop-eager", "add-eager"))
    counts = Counter(r["action"] for r in rows)
    assert report["summary"]["actions"] == {
        a: counts.get(a, 0) for a in report["summary"]["actions"]
    }
    assert report["summary"]["changes"] == counts["drop-eager"] + counts["add-eager"]
    assert "***" in report["scan"]["database"] or parse_url(db.url).password is None


def test_csv_and_only_changes(fleet) -> None:
    db, _ = fleet
    result = cli(
        "--database-url", db.url, "--format", "csv", "--only-changes", "--detailed-exitcode"
    )
    assert result.exit_code == 2
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows and {r["action"] for r in rows} <= {"drop-eager", "add-eager"}
    assert all(r["command_after"] for r in rows)
    assert list(rows[0])[-2:] == ["provenance", "model_engine_param_count_b"]


def test_markdown_for_a_change_ticket(fleet, tmp_path) -> None:
    db, _ = fleet
    out = tmp_path / "scan.md"
    result = cli("--database-url", db.url, "--format", "markdown", "--output", str(out))
    assert result.exit_code == 0
    text = out.read_text()
    for heading in ("## Summary", "## Risks", "## Endpoints"):
        assert heading in text
    assert "args recorded since 2026-05-07" in text
    assert "large-model-at-0.95" in text
    assert "wrote markdown report" in result.stderr


def test_table_lists_changes_and_flagged(fleet) -> None:
    db, _ = fleet
    result = cli("--database-url", db.url)
    assert result.exit_code == 0
    assert "Endpoints that change" in result.stdout
    assert "Flagged endpoints that do not change" in result.stdout


def test_filters_narrow_the_scan(fleet) -> None:
    db, specs = fleet
    llm = list(llm_specs(specs).values())
    owner = llm[0].owner
    found = list(scan(db.engine, schema=db.schema, filters=Filters(owner=owner)))
    assert {d.endpoint_id for d in found} == {s.endpoint_id for s in llm if s.owner == owner}

    model = next(s.model_name for s in llm if s.model_name)
    stem = model.split("-")[0]
    found = list(scan(db.engine, schema=db.schema, filters=Filters(model=f"{stem}*")))
    assert found and all((d.model_name or "").startswith(stem) for d in found)

    found = list(scan(db.engine, schema=db.schema, filters=Filters(statuses=("READY",))))
    assert found and all(d.endpoint_status == "READY" for d in found)

    name = llm[0].name
    found = list(scan(db.engine, schema=db.schema, filters=Filters(name=name)))
    assert [d.endpoint_name for d in found] == [name]


def test_detailed_exitcode_tells_nothing_to_do_from_changes_pending(fleet) -> None:
    """As terraform plan: 0/2 only when asked for; plain scan exits 0 with changes pending."""
    db, specs = fleet
    quiet = next(
        s for s in llm_specs(specs).values() if s.expected_action in ("no-change", "keep-eager")
    )
    changing = next(
        s for s in llm_specs(specs).values() if s.expected_action in ("drop-eager", "add-eager")
    )
    for name, detailed in ((quiet.name, 0), (changing.name, 2)):
        result = cli("--database-url", db.url, "--name", name, "--detailed-exitcode")
        assert result.exit_code == detailed, result.output
        assert cli("--database-url", db.url, "--name", name).exit_code == 0
    bad = cli(
        "--database-url", "postgresql://nobody@/nowhere?host=/nonexistent", "--detailed-exitcode"
    )
    assert bad.exit_code == 1


def test_glob_metacharacters_are_literal_in_filters(fleet) -> None:
    db, _ = fleet
    assert list(scan(db.engine, schema=db.schema, filters=Filters(name="%"))) == []


def test_scan_streams_through_a_server_side_cursor(fleet) -> None:
    """While the scan is half-way through, its backend is FETCHing from a cursor."""
    db, _ = fleet
    engine = make_engine(parse_url(db.url))  # the tool's engine names its application
    decisions = scan(engine, schema=db.schema)
    next(decisions)
    with psycopg.connect(to_libpq_url(db.url), autocommit=True) as other:
        rows = other.execute(
            "SELECT query FROM pg_stat_activity "
            "WHERE application_name = 'bundle-migrate' AND datname = current_database()"
        ).fetchall()
    decisions.close()
    engine.dispose()
    queries = " ".join(r[0] for r in rows)
    assert "FETCH" in queries.upper() or "DECLARE" in queries.upper(), queries


def test_scan_is_one_snapshot_and_never_writes(fleet) -> None:
    """A write committed mid-scan is not seen: the whole scan is one snapshot."""
    db, _ = fleet
    decisions = scan(db.engine, schema=db.schema)
    first = next(decisions)
    done = threading.Event()

    def rename_everything() -> None:
        with db.engine.begin() as conn:
            conn.execute(sa.text(f"UPDATE {db.schema}.endpoints SET owner = 'changed-mid-scan'"))
        done.set()

    writer = threading.Thread(target=rename_everything)
    writer.start()
    writer.join(timeout=30)
    assert done.is_set()
    rest = list(decisions)
    assert first.owner != "changed-mid-scan"
    assert all(d.owner != "changed-mid-scan" for d in rest)


def _run_with_stderr(url: str, stderr_is_tty: bool) -> tuple[int, str]:
    import os
    import pty
    import subprocess
    import sys

    env = {**os.environ, "BUNDLE_MIGRATE_DATABASE_URL": url, "COLUMNS": "120"}
    argv = [sys.executable, "-m", "migrate", "scan", "--format", "json"]
    if not stderr_is_tty:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
        return done.returncode, done.stderr
    leader, follower = pty.openpty()
    # stdout must not be a pipe nobody reads while we drain the terminal: the child
    # would block on a full pipe.
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    proc.communicate(timeout=120)
    os.close(leader)
    return proc.returncode, b"".join(chunks).decode(errors="replace")


def test_progress_bar_only_on_a_terminal(fleet) -> None:
    db, _ = fleet
    code, on_tty = _run_with_stderr(db.url, stderr_is_tty=True)
    assert code == 0
    assert "scanning" in on_tty
    code, piped = _run_with_stderr(db.url, stderr_is_tty=False)
    assert code == 0
    assert "scanning" not in piped  # logs and cron mail stay clean


def test_fleet_reading_commands_record_the_args_cut_over(fleet, tmp_path) -> None:
    db, _ = fleet
    report = json.loads(cli("--database-url", db.url, "--format", "json").stdout)
    assert report["scan"]["policy"]["args_recorded_since"] == "2026-05-07"
    given = ("--args-recorded-since", "2026-06-01T00:00:00+02:00")
    report = json.loads(cli("--database-url", db.url, "--format", "json", *given).stdout)
    assert report["scan"]["policy"]["args_recorded_since"] == "2026-05-31T22:00:00+00:00"
    plan_file = tmp_path / "plan.json"
    result = CliRunner().invoke(
        main, ["plan", "--database-url", db.url, "--out", str(plan_file), *given]
    )
    assert result.exit_code == 0, result.output  # changes pending is no error
    assert json.loads(plan_file.read_text())["policy"]["args_recorded_since"] == (
        "2026-05-31T22:00:00+00:00"
    )


@pytest.mark.parametrize("bad", ["yesterday", "2026-02-30", ""])
def test_a_cut_over_that_is_no_date_is_refused(fleet, bad: str) -> None:
    db, _ = fleet
    result = cli("--database-url", db.url, "--args-recorded-since", bad)
    assert result.exit_code == 1
    assert "--args-recorded-since" in result.output and "YYYY-MM-DD" in result.output


def test_no_count_query_when_nobody_watches_the_progress(fleet, monkeypatch) -> None:
    """The count runs over the whole fleet only to size the progress bar, which is drawn
    only on a terminal: a scan piped into a file or a job's log does not ask for it."""
    from migrate.store import fleet as fleet_rows

    def no_count(*args: object, **kwargs: object) -> int:
        raise AssertionError("the count query ran with no progress bar to feed")

    monkeypatch.setattr(fleet_rows, "count", no_count)
    db, specs = fleet
    result = cli("--database-url", db.url, "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["summary"]["endpoints"] == len(llm_specs(specs))

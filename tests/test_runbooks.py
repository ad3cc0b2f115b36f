"""The runbooks cannot rot: their commands run against a sandbox, or at least parse.

Fenced blocks in runbooks/*.md, by info string:
- `sh`: every command runs, in order, in one bash script against a seeded
  sandbox database; its exit status must be 0, or what a trailing
  `# exit N [or M]` comment says.
- `sh production`: needs the real cluster; every `bundle-migrate ...` in it
  must be accepted by the CLI's parser (options, choices, arguments).
- `sql`: the role set-up, executed here, then proven by running the tool as
  each role.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from migrate.cli import main
from migrate.core.staging import LARGE_STAGE_NAME
from migrate.core.summary import Summary
from migrate.reconcile import metrics
from migrate.reconcile.findings import Check
from tests.support.plans import decision, plan_of
from tests.support.rollout import journal_rows, seed_random
from tests.support.standin import standin

RUNBOOKS = Path(__file__).resolve().parent.parent / "runbooks"
NAMES = ("staged-rollout.md", "rollback.md", "reconciliation.md", "change-ticket-template.md")
FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S
)
EXPECT = re.compile(r"#[^'\"]*?\bexits?\s+(\d)(?:\s+or\s+(\d))?")
STARTS = re.compile(r"(?:^|[;&|(]|\$\()\s*bundle-migrate\s")

pytestmark = pytest.mark.parametrize("schema_version", ["2026"])


@dataclass(frozen=True)
class Block:
    info: str
    body: str


def blocks(name: str, info: str | None = None) -> list[Block]:
    text = (RUNBOOKS / name).read_text(encoding="utf-8")
    found = []
    for m in FENCE.finditer(text):
        indent = m.group("indent")
        body = "".join(line.removeprefix(indent) for line in m.group("body").splitlines(True))
        found.append(Block(m.group("info").strip(), body))
    return [b for b in found if info is None or b.info == info]


def commands(body: str) -> list[tuple[str, set[int]]]:
    """Commands of a block, continuation lines joined, with the exit statuses allowed."""
    out: list[tuple[str, set[int]]] = []
    pending = ""
    for raw in body.splitlines():
        line = pending + raw
        if line.rstrip().endswith("\\"):
            pending = line.rstrip()[:-1] + " "
            continue
        pending = ""
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = EXPECT.search(line)
        allowed = {int(g) for g in m.groups() if g} if m else {0}
        out.append((line.strip(), allowed))
    return out


# Parsing only ------------------------------------------------------------------------


def invocations(command: str, values: dict[str, str]) -> list[list[str]]:
    """Every `bundle-migrate ...` in a shell command line, as argv, variables filled in."""
    text = re.sub(r"\$\{?([A-Z_]+)\}?", lambda m: values.get(m.group(1), "x"), command)
    found = []
    for m in STARTS.finditer(text):
        rest = text[m.end() :]
        words = []
        lexer = shlex.shlex(rest, posix=True, punctuation_chars=";&|()<>")
        lexer.whitespace_split = True
        for word in lexer:
            if word and set(word) <= set(";&|()<>"):
                break
            words.append(word)
        found.append(words)
    return found


def accept(argv: list[str]) -> None:
    """What the CLI does up to calling the command: every option and argument checked."""
    ctx = main.make_context("bundle-migrate", list(argv))
    group: click.Group = main
    while True:
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
        if not rest:
            return
        name, cmd, rest = group.resolve_command(ctx, rest)
        assert cmd is not None and name is not None
        ctx = cmd.make_context(name, rest, parent=ctx)
        if not isinstance(cmd, click.Group):
            return
        group = cmd


@pytest.fixture
def fake_values(tmp_path: Path) -> dict[str, str]:
    plan = tmp_path / "plan.json"
    plan.write_text("{}")
    return {"PLAN": str(plan), "RUN_ID": "run_x", "STAGE": "2", "ENDPOINT": "chat", "RC": "0"}


@pytest.mark.parametrize("name", NAMES)
def test_production_commands_parse(
    name: str, fake_values: dict[str, str], schema_version: str
) -> None:
    seen = 0
    for block in blocks(name):
        if block.info != "sh production":
            continue
        for command, _ in commands(block.body):
            for argv in invocations(command, fake_values):
                try:
                    accept(argv)
                except click.UsageError as exc:
                    pytest.fail(f"{name}: `bundle-migrate {shlex.join(argv)}`: {exc}")
                seen += 1
    assert seen or name == "change-ticket-template.md"


def test_parse_check_catches_a_bad_command(
    fake_values: dict[str, str], schema_version: str
) -> None:
    (argv,) = invocations('x=$(bundle-migrate apply "$PLAN" --stages 2 | tail)', fake_values)
    assert argv == ["apply", fake_values["PLAN"], "--stages", "2"]
    with pytest.raises(click.UsageError):
        accept(argv)
    with pytest.raises(click.UsageError):
        accept(["reconcile", "--max-changes", "0"])
    assert commands("a \\\n  b  # exit 0 or 2\n# c\n") == [("a    b  # exit 0 or 2", {0, 2})]


# Running in a sandbox --------------------------------------------------------------------


def run_sandbox_blocks(
    name: str, me_db: Any, work: Path, env_extra: dict[str, str] | None = None
) -> str:
    """Run every `sh` block of a runbook, in order, in one bash process; return its output.

    Model engine is the stand-in over the same database, as `bundle-migrate sandbox`
    serves it; health checks are shortened through the environment.
    """
    with standin(me_db) as server:
        return _run_blocks(
            name,
            me_db,
            work,
            {
                "BUNDLE_MIGRATE_API_URL": server.url,
                "BUNDLE_MIGRATE_ACT_AS_OWNER": "1",
                "BUNDLE_MIGRATE_POLL_INTERVAL": "0.05",
                "BUNDLE_MIGRATE_SETTLE": "0.3",
                "BUNDLE_MIGRATE_HEALTH_TIMEOUT": "10",
                **(env_extra or {}),
            },
        )


def _run_blocks(name: str, me_db: Any, work: Path, env_extra: dict[str, str]) -> str:
    lines = [
        "set -u -o pipefail",
        'check() { case " $3 " in *" $1 "*) ;; *) '
        'echo "RUNBOOK STEP FAILED (exit $1, expected $3): $2" >&2; exit 97;; esac; }',
    ]
    count = 0
    for block in blocks(name, "sh"):
        for command, allowed in commands(block.body):
            lines += [command, f"check $? {shlex.quote(command)} '{' '.join(map(str, allowed))}'"]
            count += 1
    assert count, f"{name} has no sandbox block"
    bindir = Path(sys.executable).parent
    if not (bindir / "bundle-migrate").exists() and not shutil.which("bundle-migrate"):
        pytest.fail("bundle-migrate is not installed (pip install -e .)", pytrace=False)
    env = {
        **os.environ,
        "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
        "BUNDLE_MIGRATE_DATABASE_URL": me_db.url,
        **(env_extra or {}),
    }
    env.pop("BUNDLE_MIGRATE_LOG_FORMAT", None)
    script = work / f"{name}.sh"
    script.write_text("\n".join(lines) + "\n")
    done = subprocess.run(
        ["bash", str(script)], cwd=work, env=env, capture_output=True, text=True, timeout=300
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{name}:\n{output[-6000:]}"
    return output


def cli(me_db: Any, *args: str) -> Any:
    env = {"BUNDLE_MIGRATE_DATABASE_URL": me_db.url}
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def rolled_out(me_db: Any, work: Path, stages: tuple[int, ...]) -> Path:
    """A sandbox fleet, a plan in work/plan.json, the given stages applied."""
    seed_random(me_db, 30, seed_value=2)
    plan = work / "plan.json"
    assert cli(me_db, "plan", "--out", str(plan)).exit_code == 0
    for stage in stages:
        args = ("apply", str(plan), "--stage", str(stage), "--execute", "--no-redeploy")
        result = cli(me_db, *args)
        assert result.exit_code == 0, result.output
    return plan


def test_staged_rollout_runbook(me_db: Any, tmp_path: Path, schema_version: str) -> None:
    seed_random(me_db, 30, seed_value=2)
    output = run_sandbox_blocks("staged-rollout.md", me_db, tmp_path)
    assert "# bundle-migrate plan" in (tmp_path / "ticket-plan.md").read_text()
    stages = {r["stage"] for r in journal_rows(me_db, "kind = 'rollback'")}
    assert stages == {2}, output[-3000:]  # the abort step rolled stage 2 back
    assert {r["stage"] for r in journal_rows(me_db, "outcome = 'applied'")} == {1, 2}


def test_rollback_runbook(me_db: Any, tmp_path: Path, schema_version: str) -> None:
    plan = rolled_out(me_db, tmp_path, (1, 2))
    (first,) = journal_rows(me_db, "outcome = 'applied' AND stage = 1")
    # Someone edits the endpoint after the run: the runbook's drift section handles it.
    with me_db.engine.begin() as conn:
        conn.execute(
            sa.text(
                f'UPDATE "{me_db.schema}".endpoints SET endpoint_metadata = '
                """endpoint_metadata || '{"edited": true}'::jsonb WHERE id = :e"""
            ),
            {"e": first["endpoint_id"]},
        )
    env = {"PLAN": str(plan), "STAGE": "2", "ENDPOINT": first["endpoint_name"]}
    output = run_sandbox_blocks("rollback.md", me_db, tmp_path, env)
    assert "rollback-skipped-drifted" in output  # seen by the one-endpoint step ...
    rolled = journal_rows(me_db, "outcome = 'rolled-back'")
    assert first["endpoint_id"] in {r["endpoint_id"] for r in rolled}  # ... forced after
    assert {r["stage"] for r in rolled} == {1, 2}
    assert not journal_rows(me_db, "outcome = 'applied' AND reverted_by IS NULL AND stage = 2")


def test_reconciliation_runbook(me_db: Any, tmp_path: Path, schema_version: str) -> None:
    rolled_out(me_db, tmp_path, (1,))
    run_sandbox_blocks("reconciliation.md", me_db, tmp_path)
    assert (tmp_path / "reconcile.json").read_text().lstrip().startswith("{")
    names = {
        f.name for f in text_string_to_metric_families((tmp_path / "reconcile.prom").read_text())
    }
    assert f"{metrics.PREFIX}_drift" in names
    runs = {r["run_id"] for r in journal_rows(me_db, "outcome = 'applied'")}
    assert len(runs) >= 2  # the canary, and what `reconcile --apply` changed


def test_change_ticket_template(me_db: Any, tmp_path: Path, schema_version: str) -> None:
    plan = rolled_out(me_db, tmp_path, ())
    shutil.copytree(RUNBOOKS, tmp_path / "runbooks")
    run_sandbox_blocks("change-ticket-template.md", me_db, tmp_path, {"PLAN": str(plan)})
    generated = [
        line.split("`")[0].strip()
        for line in (tmp_path / "ticket-plan.md").read_text().splitlines()
        if re.match(r"#{1,2} ", line)
    ]
    template = (RUNBOOKS / "change-ticket-template.md").read_text()
    promised = re.findall(r"^- `(#{1,2} [^`]+)`", template, re.M)
    assert promised == generated, "the template lists other sections than the tool makes"
    assert (tmp_path / "ticket.md").read_text().startswith("# Change ticket")


# Roles ------------------------------------------------------------------------------------


def test_role_setup_gives_each_role_what_it_needs(
    me_db: Any, tmp_path: Path, schema_version: str
) -> None:
    """The runbook's SQL, run as it says: by a CREATEROLE administrator, not a superuser."""
    (block,) = blocks("staged-rollout.md", "sql")
    url = make_url(me_db.url)
    database = url.database
    suffix = uuid.uuid4().hex[:8]
    roles = {r: f"{r}_{suffix}" for r in ("bundle_migrate_reader", "bundle_migrate_writer")}
    dba = f"bm_dba_{suffix}"
    text = block.body.replace("llm_engine", f'"{database}"')
    for role, unique in roles.items():
        text = text.replace(role, unique)
    with me_db.engine.connect() as conn:
        me, can = conn.execute(
            sa.text("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user")
        ).one()
    if not can:
        pytest.fail(
            "test_role_setup needs a server role that may create a CREATEROLE administrator "
            "(a superuser): the runbook's role SQL must run for real",
            pytrace=False,
        )
    seed_random(me_db, 30, seed_value=2)
    try:
        # The administrator owns the database and model engine's tables, as in production.
        with me_db.engine.begin() as conn:
            conn.exec_driver_sql(
                f"CREATE ROLE {dba} LOGIN CREATEROLE NOSUPERUSER PASSWORD 'pw-{suffix}'"
            )
            conn.exec_driver_sql(f'ALTER DATABASE "{database}" OWNER TO {dba}')
            conn.exec_driver_sql(f"ALTER SCHEMA {me_db.schema} OWNER TO {dba}")
            for (table,) in conn.execute(
                sa.text("SELECT tablename FROM pg_tables WHERE schemaname = :s"),
                {"s": me_db.schema},
            ):
                conn.exec_driver_sql(f'ALTER TABLE {me_db.schema}."{table}" OWNER TO {dba}')
        admin = sa.create_engine(
            url.set(username=dba, password=f"pw-{suffix}").render_as_string(hide_password=False)
        )
        try:
            with admin.begin() as conn:
                assert (
                    conn.execute(
                        sa.text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
                    ).scalar()
                    is False
                )
                conn.exec_driver_sql(text)
                for unique in roles.values():
                    conn.exec_driver_sql(f"ALTER ROLE {unique} PASSWORD 'pw-{suffix}'")
                # It gave back the membership it took: no writer privileges left.
                member = conn.execute(
                    sa.text("SELECT pg_has_role(current_user, :w, 'USAGE')"),
                    {"w": roles["bundle_migrate_writer"]},
                ).scalar()
                assert member is False
        finally:
            admin.dispose()
        reader, writer = (
            url.set(username=u, password=f"pw-{suffix}").render_as_string(hide_password=False)
            for u in roles.values()
        )
        plan = tmp_path / "plan.json"

        def as_role(role_url: str, *args: str) -> Any:
            env = {"BUNDLE_MIGRATE_DATABASE_URL": role_url}
            return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)

        assert as_role(reader, "scan", "--detailed-exitcode").exit_code == 2
        assert as_role(reader, "plan", "--out", str(plan)).exit_code == 0
        assert as_role(reader, "reconcile", "--detailed-exitcode").exit_code == 2
        denied = as_role(reader, "apply", str(plan), "--execute", "--no-redeploy")
        assert denied.exit_code == 1 and "permission denied" in denied.output
        done = as_role(writer, "apply", str(plan), "--execute", "--no-redeploy")
        assert done.exit_code == 0 and "applied" in done.output, done.output
        assert as_role(writer, "reconcile", "--apply", "--no-redeploy").exit_code == 0
        seen = as_role(reader, "reconcile", "--format", "json")
        assert seen.exit_code == 0 and '"journal": true' in seen.stdout, seen.output
        assert as_role(reader, "status").exit_code == 0
        back = as_role(writer, "rollback", "--plan", str(plan), "--execute", "--no-redeploy")
        assert back.exit_code == 0
    finally:
        with me_db.engine.begin() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{database}" OWNER TO "{me}"')
            for unique in [*roles.values(), dba]:
                if conn.execute(
                    sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": unique}
                ).first():
                    conn.exec_driver_sql(f"DROP OWNED BY {unique} CASCADE")
        with me_db.engine.begin() as conn:
            for unique in [*roles.values(), dba]:
                conn.exec_driver_sql(f"DROP ROLE IF EXISTS {unique}")


# Metrics ---------------------------------------------------------------------------------


def test_metric_names_in_the_runbook_exist(tmp_path: Path, schema_version: str) -> None:
    summary = Summary()
    path = tmp_path / "m.prom"
    metrics.write(path, metrics.RunMetrics(1.0, 2.0, Check(summary, [], [], True), labels={}))
    produced = {s.name for f in text_string_to_metric_families(path.read_text()) for s in f.samples}
    mentioned = set(
        re.findall(r"bundle_migrate_reconcile_\w+", (RUNBOOKS / "reconciliation.md").read_text())
    )
    assert mentioned and mentioned <= produced, mentioned - produced


def test_the_large_stage_number_is_the_one_default_plans_give_it(schema_version: str) -> None:
    """The runbook throttles the large-and-flagged stage by number: it must be that stage."""
    plan = plan_of(
        [decision(f"small-{k}") for k in range(20)]
        + [decision("big", "llama-3-70b", 70, flags=["large-model-loses-eager"])]
    )
    (large,) = [s.number for s in plan.stages if s.name == LARGE_STAGE_NAME]
    throttled = [
        command
        for block in blocks("staged-rollout.md", "sh production")
        for command, _ in commands(block.body)
        if "--max-per-minute 1 " in command
    ]
    assert throttled and all(f"--stage {large} " in c for c in throttled), (large, throttled)

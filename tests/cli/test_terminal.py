"""The terminal: help with examples that run, quiet closed pipes, tables that fit, durations."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from migrate.cli import main
from migrate.cli.app import EXIT_CLOSED_PIPE
from migrate.cli.output import duration
from tests.support.rollout import seed_random

EXAMPLE = re.compile(r"^\s+bundle-migrate (.+?)(?:\s+#.*)?$")


def commands() -> list[tuple[str, click.Command]]:
    """Every command, loaded: `main` imports a command's module only when asked for it."""
    ctx = click.Context(main)
    found = []
    for name in main.list_commands(ctx):
        cmd = main.get_command(ctx, name)
        assert cmd is not None, name
        found.append((name, cmd))
    return found


def parse(argv: list[str]) -> None:
    """Everything the CLI checks before running a command: options, choices, arguments."""
    ctx = main.make_context("bundle-migrate", list(argv))
    rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
    _, cmd, rest = main.resolve_command(ctx, rest)
    assert cmd is not None
    cmd.make_context(cmd.name or "", rest, parent=ctx)


@pytest.mark.parametrize("name", [n for n, _ in commands()])
def test_every_command_shows_examples_that_parse(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "plan.json").write_text("{}")  # the examples' plan file exists
    shown = CliRunner().invoke(main, [name, "--help"], terminal_width=100)
    assert shown.exit_code == 0
    assert "Examples:" in shown.output
    examples = [
        m.group(1)
        for line in shown.output.split("Examples:", 1)[1].splitlines()
        if (m := EXAMPLE.match(line))
    ]
    assert examples, shown.output
    for example in examples:
        argv = shlex.split(example.split(">", 1)[0].split("|", 1)[0].replace("$(", "("))
        if argv and argv[0].startswith("("):
            continue
        try:
            parse(argv)
        except click.UsageError as exc:
            pytest.fail(f"`bundle-migrate {example}`: {exc}")


def closed_pipe(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the tool with stdout a pipe whose reader is already gone, as `| head` leaves it."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run(
            [sys.executable, "-m", "migrate", *argv],
            stdout=write,
            stderr=subprocess.PIPE,
            env={**os.environ, **env},
            text=True,
            timeout=120,
        )
    finally:
        os.close(write)


@pytest.mark.parametrize("schema_version", ["2026"])
def test_a_closed_pipe_ends_every_command_quietly(me_db: Any, schema_version: str) -> None:
    seed_random(me_db, 30, seed_value=2)
    env = {"BUNDLE_MIGRATE_DATABASE_URL": me_db.url, "COLUMNS": "100"}
    for argv in (
        ["scan"],
        ["scan", "--format", "json"],
        ["scan", "--format", "csv"],
        ["status"],
        ["reconcile"],
        ["runbook", "staged-rollout"],
        ["--help"],
        ["--log-format", "json", "scan"],
    ):
        done = closed_pipe(argv, env)
        assert done.returncode == EXIT_CLOSED_PIPE, (argv, done.stderr)
        if argv[0] == "--log-format":
            (line,) = done.stderr.splitlines()[-1:]
            assert '"exit_status": 141' in line and '"level": "warning"' in line
        else:
            assert done.stderr == "", (argv, done.stderr)


@pytest.mark.parametrize("schema_version", ["2026"])
def test_scan_and_status_tables_fit_a_100_column_terminal(
    me_db: Any, tmp_path: Path, schema_version: str
) -> None:
    seed_random(me_db, 60, seed_value=4)
    env = {"BUNDLE_MIGRATE_DATABASE_URL": me_db.url, "COLUMNS": "100"}

    def lines(*args: str) -> list[str]:
        result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.stdout.splitlines()

    narrow = lines("scan")
    assert max(len(line) for line in narrow) <= 100
    assert any(line.startswith("endpoint") and "reason" not in line for line in narrow)
    wide = lines("scan", "--wide")
    assert any(line.startswith("endpoint") and line.rstrip().endswith("reason") for line in wide)
    plan = tmp_path / "plan.json"
    lines("plan", "--out", str(plan))
    lines("apply", str(plan), "--stage", "1", "--execute", "--no-redeploy")
    for args in (("status",), ("status", "--plan", str(plan)), ("reconcile",)):
        assert max(len(line) for line in lines(*args)) <= 100, args
    assert "finished" in " ".join(lines("status", "--wide"))


def test_durations_read_as_a_person_reads_them() -> None:
    assert duration(0.0004) == "1 ms" and duration(0.085) == "85 ms"
    assert duration(2.44) == "2.4 s" and duration(185) == "3 min 05 s"


def test_shell_completion_as_the_readme_sets_it_up() -> None:
    script = subprocess.run(
        [sys.executable, "-m", "migrate"],
        env={**os.environ, "_BUNDLE_MIGRATE_COMPLETE": "bash_source"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "complete -o nosort -F _bundle_migrate_completion bundle-migrate" in script.stdout
    env = {"_BUNDLE_MIGRATE_COMPLETE": "bash_complete", "COMP_WORDS": "bundle-migrate scan --w"}
    done = subprocess.run(
        [sys.executable, "-m", "migrate"],
        env={**os.environ, **env, "COMP_CWORD": "2"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "plain,--wide" in done.stdout.splitlines()

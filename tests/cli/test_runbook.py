"""`bundle-migrate runbook`: the runbooks, as installed with the tool."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from migrate.cli import main
from migrate.cli.packaged import runbook_hint, runbooks

RUNBOOKS = Path(__file__).resolve().parents[2] / "runbooks"


def test_every_runbook_is_listed_and_printed_verbatim() -> None:
    listed = CliRunner().invoke(main, ["runbook"])
    assert listed.exit_code == 0
    names = [line.split()[0] for line in listed.stdout.splitlines()]
    assert names == sorted(p.stem for p in RUNBOOKS.glob("*.md"))
    for name in names:
        shown = CliRunner().invoke(main, ["runbook", name])
        assert shown.stdout == (RUNBOOKS / f"{name}.md").read_text(encoding="utf-8")
    missing = CliRunner().invoke(main, ["runbook", "no-such"])
    assert missing.exit_code == 1 and "there are: change-ticket-template" in missing.stderr


def test_messages_point_at_runbooks_that_ship() -> None:
    hint = runbook_hint("reconciliation")
    (name,) = re.findall(r"bundle-migrate runbook ([\w-]+)", hint)
    assert name in runbooks()

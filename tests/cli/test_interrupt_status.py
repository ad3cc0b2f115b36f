"""An interrupt the tool handled ends the process with status 130, never by SIGINT."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# A command interrupted while code made by exec() of a string runs: what a Ctrl-C or
# SIGTERM meets when it lands while a command's modules import (dataclasses and named
# tuples are made so). CPython notes that KeyboardInterrupt as unhandled, and under
# `python -m` ended the process by SIGINT after the tool had handled it.
_MODULE = """
from migrate.cli.app import handle_errors, main


@main.command("interrupted-in-exec")
@handle_errors
def interrupted_in_exec() -> None:
    exec("raise KeyboardInterrupt")


if __name__ == "__main__":
    main(prog_name="bundle-migrate")
"""


def test_an_interrupt_raised_in_exec_code_exits_130(tmp_path: Path) -> None:
    (tmp_path / "interrupted_cli.py").write_text(_MODULE, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "interrupted_cli", "interrupted-in-exec"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 130, (result.returncode, result.stderr)
    assert result.stderr.strip() == "bundle-migrate: interrupted"

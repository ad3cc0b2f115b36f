"""Hostile or clumsy input to any command: one line on stderr and exit 1, never a traceback."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import assert_one_line_error, invoke

pytestmark = pytest.mark.parametrize("schema_version", ["2026"])

DEEP_JSON = ["[" * 100_000, '{"a":' * 100_000, '{"format": ' + "[" * 60 + "]" * 60 + "}"]
DEEP_TOML = ["a = " + "[" * 100_000, "a = " + "{b = " * 100_000]
# More digits than Python converts to an int (4300): a ValueError, not a decode error.
HUGE_INT_JSON = '{"format": "bundle-migrate-plan", "version": ' + "1" * 5000 + "}"
HUGE_INT_TOML = "[auto]\nendpoints = []\nx = " + "1" * 5000


@pytest.mark.parametrize("value", ["NaN", "nan", "sNaN", "Infinity", "-inf", "1e999999999999"])
def test_a_threshold_that_is_not_a_finite_number(schema_version: str, value: str) -> None:
    result = invoke("scan", "--database-url", "postgresql://u@h/db", "--threshold", value)
    assert_one_line_error(result, "--threshold", hint=True)


@pytest.mark.parametrize(
    "text",
    [
        *DEEP_JSON,
        HUGE_INT_JSON,
        "caf\xe9".encode("latin-1"),
        '{"format": 1}'.encode("utf-16"),
        b"\xff\xfe*",
    ],
    ids=["deep-array", "deep-object", "deep-under-limit", "huge-int", "latin-1", "utf-16", "bytes"],
)
@pytest.mark.parametrize("command", ["apply", "status", "rollback", "render"])
def test_a_plan_file_that_cannot_be_read(
    schema_version: str, tmp_path: Path, text: str | bytes, command: str
) -> None:
    path = tmp_path / "plan.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    args = {
        "apply": ["apply", str(path)],
        "status": ["status", "--plan", str(path)],
        "rollback": ["rollback", "--plan", str(path)],
        "render": ["plan", "--from", str(path), "--format", "markdown"],
    }[command]
    line = assert_one_line_error(invoke(*args, "--database-url", "postgresql://u@h/db"))
    assert str(path) in line


def test_the_plan_error_says_what_is_wrong(schema_version: str, tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    for text, expected in [
        (DEEP_JSON[0], "nested too deeply"),
        (DEEP_JSON[2], "nested too deeply"),
        ("caf\xe9".encode("latin-1"), "not UTF-8 text (byte 0xe9 at offset 3)"),
        ('{"a": 1}'.encode("utf-16"), "is UTF-16 text; save it as UTF-8"),
    ]:
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        assert_one_line_error(invoke("apply", str(path)), expected)


@pytest.mark.parametrize(
    "text",
    [
        *DEEP_TOML,
        HUGE_INT_TOML,
        "[auto]\nendpoints = ['caf\xe9']".encode("latin-1"),
        "[auto]".encode("utf-16"),
    ],
    ids=["deep-array", "deep-table", "huge-int", "latin-1", "utf-16"],
)
def test_an_overrides_file_that_cannot_be_read(
    schema_version: str, tmp_path: Path, text: str | bytes
) -> None:
    path = tmp_path / "o.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    result = invoke("scan", "--database-url", "postgresql://u@h/db", "--overrides", str(path))
    assert_one_line_error(result, str(path))


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("{tmp}/missing/report.json", "No such file or directory"),
        ("/proc/report.json", "report"),
        ("/dev/full", "No space left on device"),
    ],
)
def test_output_that_cannot_be_written(
    me_db: Any, tmp_path: Path, target: str, expected: str
) -> None:
    path = target.format(tmp=tmp_path)
    result = invoke("scan", "--database-url", me_db.url, "--format", "json", "-o", path)
    assert_one_line_error(result, path, expected)


def test_output_into_dev_full_from_plan(me_db: Any) -> None:
    result = invoke("plan", "--database-url", me_db.url, "--out", "/dev/full")
    assert_one_line_error(result, "/dev/full", "No space left on device")


@pytest.mark.parametrize(
    ("command", "option"),
    [
        ("scan", "--name"),
        ("scan", "--owner"),
        ("scan", "--model"),
        ("scan", "--status"),
        ("scan", "--schema"),
        ("rollback", "--run"),
        ("status", "--run"),
    ],
)
def test_an_argument_that_is_not_utf8(me_db: Any, command: str, option: str) -> None:
    # What Python makes of the argument bytes $'\xff\xfe*' (surrogateescape).
    raw = os.fsdecode(b"\xff\xfe*")
    result = invoke(command, "--database-url", me_db.url, option, raw)
    assert_one_line_error(result, option, "not valid UTF-8", hint=True)


@pytest.mark.parametrize(
    "args",
    [
        ["scan", "--foo"],
        ["scan", "--threshold"],
        ["scan", "--format", "xml"],
        ["nosuchcommand"],
        ["apply"],
        ["apply", "/no/such/plan.json"],
        ["scan", "--statement-timeout", "0"],
    ],
)
def test_usage_errors_are_one_line_and_a_hint(schema_version: str, args: list[str]) -> None:
    result = invoke(*args)
    assert_one_line_error(result, hint=True)
    assert result.stderr.splitlines()[-1].startswith("Try 'bundle-migrate")
    assert "Usage:" not in result.stderr


def test_a_json_report_of_an_empty_fleet_still_parses(me_db: Any, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    result = invoke("scan", "--database-url", me_db.url, "--format", "json", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["summary"]["endpoints"] == 0

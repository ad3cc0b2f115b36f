"""No part of a password on any channel: stderr, stdout, the audit log and its argv, DNS."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from typing import Any

import pytest

from tests.cli.test_scan_errors import free_port
from tests.support.cli import assert_one_line_error, invoke

pytestmark = pytest.mark.parametrize("schema_version", ["2026"])

# Password fragments that must never appear, for each malformed URL.
MALFORMED = {
    "postgresql://u:p@ssXQ@127.0.0.1:{port}/db": ("ssXQ", "p@ss"),
    "postgresql://u:p@ss:12@127.0.0.1:{port}/db": ("ss:12", "p@ss"),
    "postgresql://u:p@ss/x@127.0.0.1:{port}/db": ("ss/x", "p@ss"),
    "postgresql://u:hunter2@h:abc/db": ("hunter2",),
    "postgresql://u:hunter2@[::1/x": ("hunter2",),
    "postgresql://u:hunt er2@127.0.0.1:{port}/db": ("hunt", "er2"),
    "postgresql://u:hunter2@ho st:{port}/db": ("hunter2",),
}


@pytest.fixture
def resolver_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every host name handed to the resolver during the test (and none resolved)."""
    calls: list[str] = []
    real = socket.getaddrinfo

    def recording(host: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(str(host))
        if host in ("127.0.0.1", "::1", "localhost"):
            return real(host, *args, **kwargs)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", recording)
    return calls


@pytest.mark.parametrize("template", list(MALFORMED))
def test_a_malformed_url_leaks_nothing_anywhere(
    schema_version: str, template: str, resolver_calls: list[str]
) -> None:
    url = template.format(port=free_port())
    fragments = MALFORMED[template]
    for args, env in (
        (["scan", "--database-url", url], {}),
        (["--log-format", "json", "scan"], {"BUNDLE_MIGRATE_DATABASE_URL": url}),
    ):
        result = invoke(*args, env=env)
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.stderr
        for fragment in fragments:
            assert fragment not in result.output, result.output
        # Only real hosts reach the resolver: never a piece of the user-info.
        assert set(resolver_calls) <= {"127.0.0.1", "::1", "localhost"}, resolver_calls


def test_an_unencoded_at_sign_is_refused_before_any_connection(
    schema_version: str, resolver_calls: list[str]
) -> None:
    result = invoke("scan", "--database-url", "postgresql://u:p@ssXQ@db.example:5432/llm")
    assert_one_line_error(result, "more than one '@'", "%40", secrets=("ssXQ", "p@ss"))
    assert resolver_calls == []


def _audit(args: list[str], env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Run the real program (the audit log reads sys.argv) and return its JSON log lines."""
    proc = subprocess.run(
        [sys.executable, "-m", "migrate", "--log-format", "json", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,  # a guard against a hang, not a measure of speed
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]


def test_the_audit_log_argv_masks_a_password_with_a_raw_space(schema_version: str) -> None:
    port = free_port()
    url = f"postgresql://u:pa ss-w0rd@127.0.0.1:{port}/db"
    lines = _audit(["scan", "--database-url", url, "--owner", "team a"])
    text = json.dumps(lines)
    assert "pa ss" not in text and "ss-w0rd" not in text
    started = lines[0]
    assert started["event"] == "command.started"
    assert started["argv"] == [
        "--log-format",
        "json",
        "scan",
        "--database-url",
        f"postgresql://u:***@127.0.0.1:{port}/db",
        "--owner",
        "team a",
    ]
    assert lines[-1]["exit_status"] == 1 and "unreachable" in lines[-1]["error"]
    inline = _audit(["scan", f"--database-url={url}"])
    assert inline[0]["argv"][-1] == f"--database-url=postgresql://u:***@127.0.0.1:{port}/db"
    assert "ss-w0rd" not in json.dumps(inline)


def test_huge_arguments_are_masked_and_logged(schema_version: str) -> None:
    """Many 120 KB filters (the kernel's limit per argument is 128 KB): the old masking
    pattern took 13 s of CPU per 100 KB, so this would not have ended in the guard time."""
    big = "a" * 120_000
    args = ["scan", "--database-url", f"postgresql://u@127.0.0.1:{free_port()}/db"]
    for _ in range(12):
        args += ["--status", big]
    lines = _audit(args)
    assert lines[0]["argv"][5:7] == ["--status", big]
    assert lines[-1]["exit_status"] == 1

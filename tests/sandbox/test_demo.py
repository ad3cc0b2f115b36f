"""`bundle-migrate demo` end to end, as a new user runs it: one command, exit 0, nothing left."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from tests.support.processes import Lines
from tests.support.sandbox import CLI, child_env, postgres_processes, wait_gone


def _data_dir(output: str) -> Path:
    line = next(line for line in output.splitlines() if "sandbox data in " in line)
    return Path(line.split("sandbox data in ", 1)[1].strip())


def test_demo_runs_the_whole_rollout_and_leaves_nothing_running(tmp_path: Path) -> None:
    with child_env() as env:
        result = subprocess.run(
            [*CLI, "demo", "--endpoints", "80"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
        )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    for line in (
        "[1/8] Start a sandbox",
        "export BUNDLE_MIGRATE_API_URL=http://127.0.0.1:",
        "$ bundle-migrate scan --format json -o scan.json",
        "$ bundle-migrate plan --out plan.json --format markdown",
        "# bundle-migrate plan `",  # the change ticket itself
        "### Stage 1: canary (1 endpoint(s))",
        "$ bundle-migrate apply plan.json --stage 1 --act-as-owner\n",
        "would-apply",
        "-    --enforce-eager",  # the dry run's diff
        "$ bundle-migrate apply plan.json --stage 1 --execute --act-as-owner",
        "redeploying (PUT {})",
        "applied: 1",
        "$ bundle-migrate status --plan plan.json",
        # The large model that runs out of memory without eager: caught though READY.
        "READY but 1 worker(s) unavailable; rolled back to",
        "healthy again",
        "stopped in stage",
        "the plan is aborted",
        "$ bundle-migrate rollback --plan plan.json --execute --parallel 8",
        "Same decisions and same proposed commands for every endpoint as before.",
        "demo finished: every step did what it should",
    ):
        assert line in out, f"missing {line!r} in:\n{out}"
    assert "demo: FAILED" not in out and "FAILED: the scan after" not in out
    # The whole rollout went through: every stage before the large one was applied, and the
    # final rollback restored every endpoint the rollout had changed.
    assert "rolled-back: " in out and "failed: 1" in out
    data_dir = _data_dir(out)
    assert not wait_gone(data_dir), "a postgres process outlived the demo"
    assert not data_dir.exists() and not data_dir.parent.exists()
    # The demo worked in a scratch directory: nothing written where it was started.
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_demo_still_stops_its_server(tmp_path: Path) -> None:
    with child_env() as env:
        _interrupt_demo(env)


def _interrupt_demo(env: dict[str, str]) -> None:
    proc = subprocess.Popen(
        [*CLI, "demo", "--endpoints", "40"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    # Read on a thread: waiting for a line has a deadline even if none ever comes.
    lines = Lines(proc.stdout)
    try:
        lines.wait_for("[2/8]", timeout=120)
        data_dir = _data_dir("".join(lines.seen))
        assert postgres_processes(data_dir)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = lines.rest(10)
    assert proc.returncode == 130, output
    assert "sandbox stopped" in output and "interrupted" in output
    assert not wait_gone(data_dir) and not data_dir.exists()

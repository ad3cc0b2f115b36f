"""The sandbox: a real embedded server, started and stopped the ways a user does it.

The command-line tests run `bundle-migrate` in subprocesses, so "the printed URL
works from another process" and "nothing is left running" are checked for real.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from migrate.sandbox import embedded as pgserver
from migrate.sandbox import lifecycle as sb
from migrate.sandbox.synth import random_fleet
from migrate.scan.scanner import scan
from migrate.store.connection import URL_ENV, make_engine, parse_url
from tests.support.processes import Lines
from tests.support.sandbox import (
    CLI,
    child_env,
    fake_postgres,
    postgres_processes,
    wait_gone,
    write_pidfile,
)

TIMEOUT_S = 120


@pytest.fixture
def env() -> Iterator[dict[str, str]]:
    with child_env() as environment:
        yield environment


def run(args: list[str], env: dict[str, str], check: int | None = 0) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [*CLI, *args], env=env, capture_output=True, text=True, timeout=TIMEOUT_S
    )
    if check is not None:
        assert result.returncode == check, result.stdout + result.stderr
    return result


def field(output: str, prefix: str) -> str:
    line = next(line for line in output.splitlines() if line.startswith(prefix))
    return line[len(prefix) :]


def endpoint_count(url: str) -> int:
    with psycopg.connect(url, connect_timeout=10) as conn:
        row = conn.execute("SELECT count(*) FROM hosted_model_inference.endpoints").fetchone()
        assert row is not None
        return int(row[0])


@pytest.fixture
def detached_cleanup(env: dict[str, str]) -> Iterator[list[Path]]:
    """Data directories to stop if a test fails half way: no server may outlive the test."""
    dirs: list[Path] = []
    yield dirs
    for data_dir in dirs:
        sb.stop_server(data_dir)


def test_detach_then_stop(env: dict[str, str], detached_cleanup: list[Path]) -> None:
    started = run(["sandbox", "--detach", "--endpoints", "30"], env)
    data_dir = Path(field(started.stdout, "Sandbox ready: ").rsplit("data in ", 1)[1])
    detached_cleanup.append(data_dir)
    url = field(started.stdout, "URL: ")
    export = field(started.stdout, f"export {URL_ENV}=")
    assert export.strip("'") == url
    assert data_dir == Path(env["TMPDIR"]).resolve() / f"bundle-migrate-sandbox-{os.getuid()}" / (
        "pgdata"
    )

    # The URL works from other processes: this one, and the tool through the variable.
    assert endpoint_count(url) == 30
    # Never `-o /dev/null`: as root, scan's write-then-rename replaces the device node.
    scanned = run(["scan", "--format", "json"], {**env, URL_ENV: url}, None)
    assert scanned.returncode == 0, scanned.stderr

    # A second --detach finds the running one and says so instead of starting another.
    again = run(["sandbox", "--detach", "--endpoints", "99"], env)
    assert field(again.stdout, "URL: ") == url and "reusing the 30 endpoints" in again.stderr

    stopped = run(["sandbox", "stop"], env)
    assert "sandbox stopped (data deleted)" in stopped.stdout
    assert not wait_gone(data_dir) and not data_dir.parent.exists()
    with pytest.raises(psycopg.OperationalError):
        endpoint_count(url)
    # Idempotent, for scripts.
    assert "no sandbox running" in run(["sandbox", "stop"], env).stdout


def test_data_dir_keeps_the_fleet_and_seeds_only_when_empty(
    env: dict[str, str], tmp_path: Path, detached_cleanup: list[Path]
) -> None:
    data_dir = Path(env["TMPDIR"]) / "kept"
    detached_cleanup.append(data_dir)
    base = ["sandbox", "--data-dir", str(data_dir), "--detach"]

    first = run([*base, "--endpoints", "0"], env)
    assert "Sandbox ready: 0 endpoints" in first.stdout
    run(["sandbox", "stop", "--data-dir", str(data_dir)], env)
    assert (data_dir / "PG_VERSION").exists(), "a --data-dir is kept on stop"

    # Restarted on an empty database: seeded now.
    second = run([*base, "--endpoints", "25", "--seed", "5"], env)
    assert "Sandbox ready: 25 endpoints (seed 5, 2026 schema)" in second.stdout
    # Reattached with other options: the fleet is kept, and the seed remembered.
    third = run([*base, "--endpoints", "99", "--schema-version", "2024"], env)
    assert "Sandbox ready: 25 endpoints (seed 5, 2026 schema)" in third.stdout
    assert endpoint_count(field(third.stdout, "URL: ")) == 25

    # `sandbox --data-dir D stop` works like `sandbox stop --data-dir D`.
    stopped = run(["sandbox", "--data-dir", str(data_dir), "stop"], env)
    assert f"data kept in {data_dir}" in stopped.stdout
    assert not wait_gone(data_dir)


def test_a_foreign_directory_is_refused_untouched(env: dict[str, str], tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    result = run(["sandbox", "--data-dir", str(precious)], env, check=1)
    assert "neither empty nor a PostgreSQL data directory" in result.stderr
    assert [p.name for p in precious.iterdir()] == ["notes.txt"]
    assert (
        "not a sandbox data directory"
        in run(["sandbox", "stop", "--data-dir", str(precious)], env, check=1).stderr
    )


def test_waiting_for_a_line_has_a_deadline_even_when_nothing_comes(tmp_path: Path) -> None:
    silent = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert silent.stdout is not None
        started = time.monotonic()
        with pytest.raises(AssertionError, match="Press Ctrl-C"):
            Lines(silent.stdout).wait_for("Press Ctrl-C", timeout=0.5)
        assert time.monotonic() - started < 5
    finally:
        silent.kill()
        silent.wait()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_foreground_sandbox_stops_cleanly_on_a_signal(
    sig: signal.Signals, env: dict[str, str], tmp_path: Path, detached_cleanup: list[Path]
) -> None:
    data_dir = Path(env["TMPDIR"]) / "fg"
    detached_cleanup.append(data_dir)
    proc = subprocess.Popen(
        [*CLI, "sandbox", "--data-dir", str(data_dir), "--endpoints", "20"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    # Read on a thread: a wait has a deadline, and wait() never blocks on a full pipe.
    lines = Lines(proc.stdout)
    try:
        lines.wait_for("Press Ctrl-C", timeout=TIMEOUT_S)
        url = field("".join(lines.seen), "URL: ")
        assert endpoint_count(url) == 20
        assert postgres_processes(data_dir)
        if sig == signal.SIGINT:
            # As a terminal's Ctrl-C does: to the whole process group.
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        assert proc.wait(timeout=60) == 0, lines.rest(1)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = lines.rest(10)
    assert f"{sig.name} received, stopping" in output
    assert f"sandbox stopped (data kept in {data_dir})" in output
    assert not wait_gone(data_dir)
    assert (data_dir / "PG_VERSION").exists() and not (data_dir / "postmaster.pid").exists()


@pytest.mark.parametrize("schema_version", ["2024", "2026"])
def test_seeded_fleet_classifies_as_the_seeder_intended(schema_version: str) -> None:
    endpoints, seed = 300, 4
    box = sb.start(endpoints=endpoints, seed=seed, schema_version=schema_version)
    try:
        assert box.fleet.seeded is not None and box.fleet.seeded.endpoints == endpoints
        engine = make_engine(parse_url(box.url))
        try:
            decisions = {
                d.endpoint_id: d.action for d in scan(engine, schema="hosted_model_inference")
            }
        finally:
            engine.dispose()
    finally:
        sb.shutdown(box)
    assert not wait_gone(box.data_dir) and not box.data_dir.exists()

    specs = list(random_fleet(endpoints, seed, schema_version))
    # The scan reports LLM endpoints only; non-LLM ones are not its business.
    intended = {s.endpoint_id: s.expected_action for s in specs if s.is_llm}
    assert Counter(decisions.values()) == Counter(intended.values())
    assert decisions == intended
    # The fixed seed really exercises the interesting cases.
    assert {"drop-eager", "keep-eager", "no-change", "skip"} <= set(intended.values())
    assert {s.generation for s in specs if s.is_vllm} == set("ABCDEFGH")


# --- starting and stopping safely ----------------------------------------------------


@pytest.mark.parametrize("where", ["starting", "tuning"])
def test_ctrl_c_during_start_up_leaves_nothing_behind(
    where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Path] = []
    real_get_server = pgserver._get_server

    def get_server(pgdata: Path, detach: bool) -> Any:
        seen.append(pgdata)
        server = real_get_server(pgdata, detach)
        if where == "starting":
            raise KeyboardInterrupt  # the server is up, its handle not yet returned
        return server

    def make_fast(url: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(pgserver, "_get_server", get_server)
    monkeypatch.setattr(pgserver, "_make_fast", make_fast)
    try:
        with pytest.raises(KeyboardInterrupt):
            pgserver.start_embedded()
        (pgdata,) = seen
        assert not wait_gone(pgdata), "the server outlived the interrupted start"
        assert not pgdata.parent.exists(), "the temporary directory was left behind"
    finally:
        for pgdata in seen:
            sb.stop_server(pgdata)
            shutil.rmtree(pgdata.parent, ignore_errors=True)


def test_stop_signals_only_the_server_of_exactly_that_directory(tmp_path: Path) -> None:
    neighbour = tmp_path / "x" / "pg"
    neighbour.mkdir(parents=True)
    server = fake_postgres(tmp_path / "bin", "-D", str(neighbour))
    try:
        mine = tmp_path / "x" / "p"  # a prefix of the neighbour's path
        write_pidfile(mine, server.pid)  # stale: its pid is the neighbour's server now
        assert sb.stop(mine).was_running is False and server.poll() is None
        write_pidfile(mine, server.pid, named=neighbour)  # copied from the neighbour
        assert sb.stop(mine).was_running is False and server.poll() is None
        # The neighbour's own pid file, its own -D: that server is stopped.
        write_pidfile(neighbour, server.pid)
        assert sb.stop(neighbour).was_running is True
        assert server.wait(timeout=10) is not None
    finally:
        server.kill()
        server.wait()


def test_stop_keeps_the_default_directory_when_it_cannot_verify_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pgdata = tmp_path / "detached" / "pgdata"
    monkeypatch.setattr(sb, "default_detached_dir", lambda: pgdata)
    server = fake_postgres(tmp_path / "bin")  # a postgres with no -D: unverifiable
    try:
        write_pidfile(pgdata, server.pid)
        with pytest.raises(sb.SandboxError, match="cannot be verified"):
            sb.stop()
        assert (pgdata / "PG_VERSION").exists() and server.poll() is None
    finally:
        server.kill()
        server.wait()
    # Once it is gone the directory goes, as usual.
    result = sb.stop()
    assert result.deleted and not result.was_running and not pgdata.parent.exists()


def test_as_root_a_data_dir_the_server_user_cannot_reach_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sb, "_is_root", lambda: True)
    private = tmp_path / "private"
    private.mkdir()
    private.chmod(0o700)
    with pytest.raises(sb.SandboxError, match="--allow-permission-changes") as refused:
        sb.start(private / "pg", endpoints=0)
    assert str(private) in str(refused.value)
    assert stat.S_IMODE(private.stat().st_mode) == 0o700 and not (private / "pg").exists()
    assert sb.widened_parents(private / "pg")[0] == private
    private.chmod(0o755)
    assert private not in sb.widened_parents(private / "pg")

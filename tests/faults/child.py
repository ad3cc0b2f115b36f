"""One run of the real program in a child: bounded in memory and time, its output kept."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import IO

CLI = [sys.executable, "-m", "migrate"]
# The tool needs a few hundred MiB of address space; a read without bound needs all there is.
ADDRESS_SPACE = 2 << 30
TIMEOUT_S = 60.0
_RSS_UNIT = 1 if sys.platform == "darwin" else 1024


@dataclass
class Observed:
    args: list[str]
    exit_status: int | None  # None: killed at the deadline
    stdout: str
    stderr: str
    seconds: float
    peak_rss_mib: float

    @property
    def timed_out(self) -> bool:
        return self.exit_status is None

    @property
    def traceback(self) -> bool:
        return "Traceback (most recent call last)" in self.stderr

    @property
    def out_of_memory(self) -> bool:
        return "MemoryError" in self.stderr


def _cap() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def _drain(stream: IO[bytes], into: list[bytes]) -> None:
    for chunk in iter(lambda: stream.read(65536), b""):
        into.append(chunk)


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """The program started, capped, with its outputs piped (as `| cat` would)."""
    return subprocess.Popen(
        [*CLI, *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_cap,
    )


def alive(proc: subprocess.Popen[bytes]) -> bool:
    """Whether the child still runs, without reaping it (finish wants its rusage)."""
    return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None


def finish(
    proc: subprocess.Popen[bytes], args: list[str], timeout_s: float = TIMEOUT_S
) -> Observed:
    """Wait for the child (killing it at the deadline), with its own peak RSS from wait4."""
    started = time.monotonic()
    out: list[bytes] = []
    err: list[bytes] = []
    readers = [
        threading.Thread(target=_drain, args=(proc.stdout, out), daemon=True),
        threading.Thread(target=_drain, args=(proc.stderr, err), daemon=True),
    ]
    for reader in readers:
        reader.start()
    deadline = started + timeout_s
    status: int | None = None
    usage = None
    while True:
        pid, raw, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            status = os.waitstatus_to_exitcode(raw)
            break
        if time.monotonic() > deadline:
            proc.send_signal(signal.SIGKILL)
            _, raw, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.01)
    proc.returncode = status if status is not None else -signal.SIGKILL
    for reader in readers:
        reader.join(timeout=5)
    return Observed(
        args=args,
        exit_status=status,
        stdout=b"".join(out).decode("utf-8", "replace"),
        stderr=b"".join(err).decode("utf-8", "replace"),
        seconds=time.monotonic() - started,
        peak_rss_mib=usage.ru_maxrss * _RSS_UNIT / 2**20 if usage else 0.0,
    )


def run(args: list[str], env: dict[str, str], timeout_s: float = TIMEOUT_S) -> Observed:
    return finish(start(args, env), args, timeout_s)

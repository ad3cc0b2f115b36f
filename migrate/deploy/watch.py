"""Watching one endpoint until it is healthy, has failed, or has run out of time.

Healthy means the core's verdict (`migrate.core.health.judge`) held for the
whole settle window: a vLLM server can report ready and crash a minute later,
so one good observation is not enough, and any bad one restarts the window.
`UPDATE_FAILED` ends the watch at once with model engine's reason.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from migrate.core.health import FAILED, EndpointState, Health, judge
from migrate.deploy.client import ModelEngineClient


class Interrupted(Exception):
    """The run is stopping (Ctrl-C, SIGTERM): leave the endpoint as it is, resumable."""


@dataclass(frozen=True)
class WatchSettings:
    poll_interval_s: float = 10.0
    settle_s: float = 60.0
    timeout_s: float = 1800.0


@dataclass(frozen=True)
class Watched:
    healthy: bool
    reason: str
    state: EndpointState | None
    seconds: float


# Called with each observation and the phase: "waiting" or "settling".
OnState = Callable[[EndpointState, Health, str], None]


def watch(
    client: ModelEngineClient,
    name: str,
    owner: str | None,
    settings: WatchSettings,
    *,
    multinode: bool = False,
    on_state: OnState | None = None,
    stop: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Watched:
    """Poll until healthy for `settle_s`, failed, or `timeout_s` gone; API errors propagate."""
    stop = stop or threading.Event()
    start = clock()
    healthy_since: float | None = None
    relapse = ""
    while True:
        if stop.is_set():
            raise Interrupted(f"{name}: stopped while watching")
        state = client.get(name, owner)
        health = judge(state, multinode=multinode)
        now = clock()
        if health.verdict == FAILED:
            return Watched(False, health.reason, state, now - start)
        if health.healthy:
            healthy_since = now if healthy_since is None else healthy_since
            if now - healthy_since >= settings.settle_s:
                return Watched(True, health.reason, state, now - start)
        else:
            if healthy_since is not None:
                relapse = f" (it was healthy, then: {health.reason})"
            healthy_since = None
        if on_state is not None:
            on_state(state, health, "settling" if healthy_since is not None else "waiting")
        elapsed = now - start
        if elapsed >= settings.timeout_s:
            return Watched(
                False,
                f"not healthy within {settings.timeout_s:g} s: {health.reason}{relapse}",
                state,
                elapsed,
            )
        wait = settings.poll_interval_s
        if healthy_since is not None:
            wait = min(wait, max(0.0, healthy_since + settings.settle_s - now))
        wait = min(wait, max(0.0, start + settings.timeout_s - now))
        if stop.wait(max(wait, 0.01)):
            raise Interrupted(f"{name}: stopped while watching")

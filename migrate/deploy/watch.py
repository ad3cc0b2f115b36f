"""Watching one endpoint until it is healthy, has failed, or has run out of time.

Healthy means the core's verdict (`migrate.core.health.judge`) held for the
whole settle window: a vLLM server can report ready and crash a minute later,
so one good observation is not enough, and any bad one restarts the window.
`UPDATE_FAILED` ends the watch at once with model engine's reason.

An API that does not answer is not an unhealthy endpoint: a failed poll is
waited through (it restarts the settle window, as nothing was seen), and if the
API is still not answering when time runs out the watch raises `Unavailable`,
which stops the run with the endpoint resumable, rather than failing and
rolling back an endpoint nobody could see. An endpoint healthy when time runs
out (one slow answer can take the window) is seen through its settle window.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from migrate.core.health import FAILED, WAITING, EndpointState, Health, Recorded, judge
from migrate.deploy.client import ApiError, ModelEngineClient, NotFound, Unavailable, Unusable


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
# The endpoint's row as model engine's database has it, once it shows the PUT (else None).
Confirm = Callable[[], Recorded | None]


def watch(
    client: ModelEngineClient,
    name: str,
    owner: str | None,
    settings: WatchSettings,
    *,
    multinode: bool = False,
    counts_expected: bool = True,
    confirm: Confirm | None = None,
    on_state: OnState | None = None,
    stop: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Watched:
    """Poll until healthy for `settle_s`, failed, or `timeout_s` gone.

    Unusable (401, a wrong URL) and NotFound propagate; an API still failing
    at the deadline raises Unavailable.
    """
    stop = stop or threading.Event()
    start = clock()
    healthy_since: float | None = None
    relapse = ""
    state: EndpointState | None = None
    while True:
        if stop.is_set():
            raise Interrupted(f"{name}: stopped while watching")
        unanswered: ApiError | None = None
        try:
            state = client.get(name, owner)
        except Unavailable as exc:
            unanswered = exc
        except (NotFound, Unusable):
            raise
        except ApiError as exc:  # a 500, a body that is not JSON: nothing seen this time
            unanswered = exc
        now = clock()
        if unanswered is not None:
            health = Health(WAITING, f"no answer from model engine's API: {unanswered}")
        else:
            assert state is not None
            recorded = confirm() if confirm is not None else None
            health = judge(
                state, multinode=multinode, counts_expected=counts_expected, recorded=recorded
            )
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
        if on_state is not None and state is not None:
            on_state(state, health, "settling" if healthy_since is not None else "waiting")
        elapsed = now - start
        # Healthy at the deadline (a slow API can spend the window on one answer): the
        # settle window is seen through, at most settle_s more; anything else ends it.
        if elapsed >= settings.timeout_s and healthy_since is None:
            if unanswered is not None:
                raise Unavailable(
                    f"{name}: model engine's API was not answering when the "
                    f"{settings.timeout_s:g} s health timeout ran out: {unanswered}",
                    unanswered.status,
                )
            return Watched(
                False,
                f"not healthy within {settings.timeout_s:g} s: {health.reason}{relapse}",
                state,
                elapsed,
            )
        wait = settings.poll_interval_s
        if healthy_since is not None:
            wait = min(wait, max(0.0, healthy_since + settings.settle_s - now))
        if healthy_since is None:
            wait = min(wait, max(0.0, start + settings.timeout_s - now))
        if stop.wait(max(wait, 0.01)):
            raise Interrupted(f"{name}: stopped while watching")

"""The model engine stand-in for tests: fast builds, a fresh behaviour per test, its request log."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from migrate.core.health import EndpointState
from migrate.deploy.client import ModelEngineClient, RetryPolicy
from migrate.deploy.credentials import Credentials
from migrate.sandbox.standin.behaviour import Behaviour
from migrate.sandbox.standin.server import StandIn
from migrate.sandbox.standin.service import Service

# Backoff short enough for tests; the same code path as production's.
FAST_RETRY = RetryPolicy(
    attempts=5, timeout_s=20, wait_initial_s=0.01, wait_max_s=0.05, wait_jitter_s=0.01
)


def fast_behaviour(**kw: Any) -> Behaviour:
    return Behaviour(**{"build_seconds": 0.2, "start_seconds": 0.2, **kw})


@contextmanager
def standin(me_db: Any, behaviour: Behaviour | None = None) -> Iterator[StandIn]:
    service = Service(me_db.engine, me_db.schema, behaviour or fast_behaviour())
    with StandIn(service) as server:
        yield server


def client(server: StandIn, credentials: Credentials | None = None) -> ModelEngineClient:
    return ModelEngineClient(
        server.url, credentials or Credentials(act_as_owner=True), retry=FAST_RETRY
    )


def requests(server: StandIn, method: str | None = None, endpoint: str | None = None) -> list[Any]:
    return [
        r
        for r in list(server.service.log)
        if (method is None or r.method == method) and (endpoint is None or r.endpoint == endpoint)
    ]


def state(server: StandIn, name: str, owner: str) -> EndpointState:
    with client(server) as c:
        return c.get(name, owner)

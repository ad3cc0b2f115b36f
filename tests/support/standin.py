"""The model engine stand-in for tests: fast builds, a fresh behaviour per test, its request log."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from migrate.core.health import EndpointState
from migrate.deploy.client import ModelEngineClient, RetryPolicy
from migrate.deploy.credentials import Credentials
from migrate.deploy.watch import WatchSettings
from migrate.rollout.redeploy import Redeploy
from migrate.sandbox.standin.behaviour import Behaviour
from migrate.sandbox.standin.server import StandIn
from migrate.sandbox.standin.service import Service
from migrate.sandbox.synth import make_spec
from tests.support.rollout import seed

# Backoff short enough for tests; the same code path as production's.
FAST_RETRY = RetryPolicy(
    attempts=5,
    timeout_s=20,
    wait_initial_s=0.01,
    wait_max_s=0.05,
    wait_jitter_s=0.01,
    lost_answer_grace_s=0.3,
    lost_answer_poll_s=0.05,
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


WATCH = WatchSettings(poll_interval_s=0.05, settle_s=0.3, timeout_s=4.0)


def fleet(me_db: Any, n: int = 6) -> list[Any]:
    """n plain 8B endpoints with an injected flag, READY, owned by two teams."""
    return seed(
        me_db,
        [
            make_spec(
                "F",
                provenance="injected",
                schema_version=me_db.version,
                index=i,
                seed=i,
                name=f"ep-{i}",
                owner=f"team-{i % 2}",
                status="READY",
            )
            for i in range(n)
        ],
    )


def redeploy(server: StandIn, credentials: Credentials | None = None, **kw: Any) -> Redeploy:
    return Redeploy(client=client(server, credentials), watch=kw.pop("watch", WATCH), **kw)


def pods_of(server: StandIn, name: str) -> Any:
    return server.service.pods.get(name)

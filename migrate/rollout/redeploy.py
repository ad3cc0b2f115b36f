"""Bringing a written change to the pods: PUT it through model engine, watch it come back healthy.

A change the database holds is not yet running: model engine deploys the
endpoint's current bundle on a PUT. This module takes one journaled change
(an apply's or a rollback's) from `written` to `healthy` or `failed`, and picks
up where a killed run left it:

- `written`: nothing was sent yet. Wait while model engine is busy with the
  endpoint (never PUT over a running build), announce the PUT in the journal,
  send it, record the answer.
- `redeploy-requested`, answered: the PUT landed; only watch.
- `redeploy-requested`, unanswered: the run died around the PUT. The endpoint's
  row, stamped by model engine on every update, tells whether it landed: if
  touched since the announcement, watch; otherwise send it.
- `healthy`: done; never sent again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from migrate.core import outcomes as oc
from migrate.core.health import EndpointState, Health
from migrate.deploy.client import ApiError, ModelEngineClient, Unauthorized
from migrate.deploy.watch import Interrupted, WatchSettings, watch
from migrate.store import redeploys, rows

UPDATE = "update"
RECREATE = "recreate"
ROLLBACK = "rollback"
STOP = "stop"
# Model engine is working on the endpoint: a PUT now would race its build.
BUSY = frozenset({"UPDATE_PENDING", "UPDATE_IN_PROGRESS"})


@dataclass(frozen=True)
class Redeploy:
    """How writes reach the pods (None in the options: rows only, --no-redeploy)."""

    client: ModelEngineClient
    mode: str = UPDATE  # UPDATE: PUT {}; RECREATE: force_bundle_recreation
    watch: WatchSettings = WatchSettings()
    on_failure: str = ROLLBACK
    parallel: int = 1


@dataclass(frozen=True)
class Deployed:
    """How a redeploy ended: `healthy`, `failed`, or `drifted` (the endpoint moved on)."""

    state: str
    detail: str


# What the operator sees while an endpoint is redeployed: (phase, detail).
OnPhase = Callable[[str, str], None]


def deploy(
    engine: Engine,
    schema: str,
    redeploy: Redeploy,
    change: dict[str, Any],
    *,
    multinode: bool,
    target_bundle: str,
    recreate: bool,
    on_phase: OnPhase,
    stop: threading.Event,
) -> Deployed:
    """Take this journaled change to a verdict; raises Interrupted when the run stops.

    Unauthorized propagates too (nothing else in the run can succeed); any other
    API error is this endpoint's failure.
    """
    try:
        return _deploy(
            engine,
            schema,
            redeploy,
            change,
            multinode=multinode,
            target_bundle=target_bundle,
            recreate=recreate,
            on_phase=on_phase,
            stop=stop,
        )
    except Unauthorized:
        raise
    except (ApiError, TimeoutError) as exc:
        return _verdict(engine, change["id"], oc.UNHEALTHY, str(exc))


def _deploy(
    engine: Engine,
    schema: str,
    redeploy: Redeploy,
    change: dict[str, Any],
    *,
    multinode: bool,
    target_bundle: str,
    recreate: bool,
    on_phase: OnPhase,
    stop: threading.Event,
) -> Deployed:
    change_id = change["id"]
    name = change["endpoint_name"]
    client = redeploy.client
    with engine.connect() as conn:
        endpoint = rows.read_endpoint(conn, schema, change["endpoint_id"], lock=False)
    if endpoint is None:
        return _verdict(engine, change_id, oc.UNHEALTHY, "the endpoint was deleted")
    owner = endpoint.get("owner")
    now_bundle = endpoint.get("current_bundle_id")
    if now_bundle not in (target_bundle, change.get("deployed_bundle")):
        # Someone (model engine's own update, an operator) moved it since the write.
        return Deployed(
            "drifted",
            f"it now runs {now_bundle}, not {target_bundle}: not redeployed; "
            "the change it carried is no longer what runs",
        )
    if _must_send(engine, schema, change):
        _wait_until_quiet(client, name, owner, redeploy.watch, on_phase, stop)
        with engine.begin() as conn:
            redeploys.set_state(conn, change_id, oc.REDEPLOY_REQUESTED, detail="PUT sent")
        on_phase("redeploying", "PUT force_bundle_recreation" if recreate else "PUT {}")
        answer = client.redeploy(name, owner, recreate=recreate)
        with engine.begin() as conn:
            redeploys.set_state(
                conn,
                change_id,
                oc.REDEPLOY_REQUESTED,
                detail=answer.note or "PUT answered",
                task=answer.task_id or "unanswered",
            )
            if recreate:
                redeploys.capture_deployed(conn, change_id, schema, change["endpoint_id"])

    def observed(state: EndpointState, health: Health, phase: str) -> None:
        on_phase(phase, f"{state.describe()}: {health.reason}")

    watched = watch(
        client, name, owner, redeploy.watch, multinode=multinode, on_state=observed, stop=stop
    )
    if watched.healthy:
        return _verdict(engine, change_id, oc.HEALTHY, watched.reason)
    return _verdict(engine, change_id, oc.UNHEALTHY, watched.reason)


def _must_send(engine: Engine, schema: str, change: dict[str, Any]) -> bool:
    state = change.get("deploy_state")
    if state in (None, oc.WRITTEN):
        return True
    if state != oc.REDEPLOY_REQUESTED:
        return False
    if change.get("deploy_task"):
        return False  # answered: it landed
    since = change.get("deploy_updated_at")
    if since is None:
        return True
    with engine.connect() as conn:
        return not redeploys.touched_since(conn, schema, change["endpoint_id"], since)


def _wait_until_quiet(
    client: ModelEngineClient,
    name: str,
    owner: str | None,
    settings: WatchSettings,
    on_phase: OnPhase,
    stop: threading.Event,
) -> None:
    """Return once model engine is not building the endpoint; a timeout is a failure."""
    waited = 0.0
    while True:
        state = client.get(name, owner)
        if state.status not in BUSY:
            return
        if waited >= settings.timeout_s:
            raise TimeoutError(
                f"model engine was still {state.status} after {settings.timeout_s:g} s: "
                "not redeployed over its running build"
            )
        on_phase("waiting", f"{state.status}: model engine is busy with it; not sending a PUT")
        if stop.wait(settings.poll_interval_s):
            raise Interrupted(f"{name}: stopped while waiting for model engine")
        waited += settings.poll_interval_s


def _verdict(engine: Engine, change_id: int, state: str, detail: str) -> Deployed:
    with engine.begin() as conn:
        redeploys.set_state(conn, change_id, state, detail=detail)
    return Deployed(state, detail)

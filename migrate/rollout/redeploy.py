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
  row, marked in the journal just before the PUT, tells whether it landed
  (`migrate.core.landing`): if it moved since, watch; otherwise send it. With
  `force_bundle_recreation`, the bundle model engine built is then taken as the
  one the change deployed, not mistaken for drift.
- `healthy`: done; never sent again.

While watching, the row is read too: once it shows the PUT, its status is
model engine's own, where the API's GET may lag behind a read replica.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from migrate.core import outcomes as oc
from migrate.core.health import EndpointState, Health, Recorded, reports_counts
from migrate.core.landing import RowMark, landed
from migrate.deploy.client import (
    ApiError,
    ModelEngineClient,
    NotFound,
    Unauthorized,
    Unavailable,
    Unusable,
)
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

    Unusable propagates too (refused credentials, a wrong URL, an API that keeps
    failing: nothing else in the run can succeed); any other API error is this
    endpoint's failure.
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
    except Unusable:
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
    endpoint_id = change["endpoint_id"]
    client = redeploy.client
    with engine.connect() as conn:
        endpoint = rows.read_endpoint(conn, schema, endpoint_id, lock=False)
    if endpoint is None:
        return _verdict(engine, change_id, oc.UNHEALTHY, "the endpoint was deleted")
    owner = endpoint.get("owner")
    now_bundle = endpoint.get("current_bundle_id")
    saved = change.get("deploy_mark") if isinstance(change.get("deploy_mark"), dict) else {}
    mark = RowMark.from_json(saved)
    counts_expected = saved.get("counts") is not False
    if now_bundle not in (target_bundle, change.get("deployed_bundle")):
        if not (recreate and _landed_since(engine, schema, endpoint_id, change, mark)):
            # Someone (model engine's own update, an operator) moved it since the write.
            return Deployed(
                "drifted",
                f"it now runs {now_bundle}, not {target_bundle}: not redeployed; "
                "the change it carried is no longer what runs",
            )
        # Our own recreation, whose answer a killed run never recorded.
        with engine.begin() as conn:
            redeploys.capture_deployed(conn, change_id, schema, endpoint_id)
    refused_before = saved.get("refused") is True
    if _must_send(engine, schema, change, mark, refused=refused_before):
        if not refused_before:
            quiet = _wait_until_quiet(client, name, owner, redeploy.watch, on_phase, stop)
            counts_expected = reports_counts(quiet)
        # else: model engine refused our last PUT after stamping the row UPDATE_PENDING;
        # nothing builds, so there is no build to wait for.
        with engine.begin() as conn:
            mark = redeploys.row_mark(conn, schema, endpoint_id)
            redeploys.set_state(
                conn,
                change_id,
                oc.REDEPLOY_REQUESTED,
                detail="PUT sent",
                mark={**(mark.to_json() if mark else {}), "counts": counts_expected},
            )
        on_phase("redeploying", "PUT force_bundle_recreation" if recreate else "PUT {}")
        before = mark
        try:
            answer = client.redeploy(
                name,
                owner,
                recreate=recreate,
                landed=lambda refused: _moved(engine, schema, endpoint_id, before, refused),
            )
        except Unavailable as exc:
            if exc.refused and before is not None:
                # So a rerun sends it again, rather than take the stamped row for a PUT.
                refusal = {**before.to_json(), "counts": counts_expected, "refused": True}
                with engine.begin() as conn:
                    redeploys.set_state(
                        conn, change_id, oc.REDEPLOY_REQUESTED, detail=str(exc), mark=refusal
                    )
            raise
        with engine.begin() as conn:
            redeploys.set_state(
                conn,
                change_id,
                oc.REDEPLOY_REQUESTED,
                detail=answer.note or "PUT answered",
                task=answer.task_id or "unanswered",
            )
            if recreate:
                redeploys.capture_deployed(conn, change_id, schema, endpoint_id)

    def observed(state: EndpointState, health: Health, phase: str) -> None:
        on_phase(phase, f"{state.describe()}: {health.reason}")

    def confirm() -> Recorded | None:
        return _recorded(engine, schema, endpoint_id, mark)

    watched = watch(
        client,
        name,
        owner,
        redeploy.watch,
        multinode=multinode,
        counts_expected=counts_expected,
        confirm=confirm,
        on_state=observed,
        stop=stop,
    )
    if watched.healthy:
        return _verdict(engine, change_id, oc.HEALTHY, watched.reason)
    return _verdict(engine, change_id, oc.UNHEALTHY, watched.reason)


def _moved(
    engine: Engine, schema: str, endpoint_id: str, before: RowMark | None, refused: bool
) -> bool:
    """Whether the endpoint's row shows a PUT since `before` (no mark: it cannot tell)."""
    if before is None:
        return False
    with engine.connect() as conn:
        now = redeploys.row_mark(conn, schema, endpoint_id)
    return now is not None and landed(before, now, refused_by_model_engine=refused)


def _recorded(
    engine: Engine, schema: str, endpoint_id: str, mark: RowMark | None
) -> Recorded | None:
    """The row's status for the watch, once the row shows the PUT; before that, None.

    A model engine that keeps its status elsewhere never moves the row, and is
    then judged by its API alone.
    """
    if mark is None:
        return None
    with engine.connect() as conn:
        now = redeploys.row_mark(conn, schema, endpoint_id)
        if now is None:
            return Recorded(None)
        if not landed(mark, now):
            return None
        reason = redeploys.status_reason(conn, schema, endpoint_id)
    return Recorded(now.status, reason)


def _landed_since(
    engine: Engine, schema: str, endpoint_id: str, change: dict[str, Any], mark: RowMark | None
) -> bool:
    """A PUT announced by this change (answered or not) that the row shows landed."""
    if change.get("deploy_state") != oc.REDEPLOY_REQUESTED:
        return False
    return _moved(engine, schema, endpoint_id, mark, False)


def _must_send(
    engine: Engine, schema: str, change: dict[str, Any], mark: RowMark | None, *, refused: bool
) -> bool:
    state = change.get("deploy_state")
    if state in (None, oc.WRITTEN):
        return True
    if state != oc.REDEPLOY_REQUESTED:
        return False
    if change.get("deploy_task"):
        return False  # answered: it landed
    if mark is not None:
        return not _moved(engine, schema, change["endpoint_id"], mark, refused)
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
) -> EndpointState:
    """Once model engine is not building the endpoint, how it looked; a timeout is a failure.

    An answer that is not one (a 500) is waited through like a busy endpoint; an
    API still not answering at the timeout raises Unavailable.
    """
    waited = 0.0
    while True:
        try:
            state: EndpointState | None = client.get(name, owner)
            seen = ""
        except (NotFound, Unusable):
            raise
        except ApiError as exc:
            state, seen = None, f"no answer from model engine's API: {exc}"
        if state is not None and state.status not in BUSY:
            return state
        if waited >= settings.timeout_s:
            if state is None:
                raise Unavailable(f"{name}: {seen}")
            raise TimeoutError(
                f"model engine was still {state.status} after {settings.timeout_s:g} s: "
                "not redeployed over its running build"
            )
        if state is not None:
            seen = f"{state.status}: model engine is busy with it; not sending a PUT"
        on_phase("waiting", seen)
        if stop.wait(settings.poll_interval_s):
            raise Interrupted(f"{name}: stopped while waiting for model engine")
        waited += settings.poll_interval_s


def stopped_by_api(exc: Unusable) -> str:
    """The line a run ends with when model engine's API cannot be used any more."""
    if isinstance(exc, Unauthorized):
        lead = "model engine refused the credentials, so the run stopped"
    else:
        lead = "model engine's API could not be used, so the run stopped"
    text = str(exc)
    end = " " if text.endswith(("?", ".")) else ". "
    return (
        f"{lead}: {text}{end}Endpoints in flight are journaled where they stopped "
        "(see `status`); run the same command again to resume them"
    )


def _verdict(engine: Engine, change_id: int, state: str, detail: str) -> Deployed:
    with engine.begin() as conn:
        redeploys.set_state(conn, change_id, state, detail=detail)
    return Deployed(state, detail)

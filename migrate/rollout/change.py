"""One endpoint's whole change in a run: write it, redeploy it, watch it, undo it if it fails.

    write (rollout/endpoint.py)        journal: applied, deploy_state written
      -> redeploy + watch (redeploy.py) journal: redeploy-requested -> healthy | failed
      -> on failure, unless --on-failure stop:
         roll back (rollout/revert.py)  journal: rolled-back row, the change reverted
         -> redeploy + watch the old command back to health; the plan is aborted

A rerun starts each endpoint from wherever the journal says it stopped, so an
endpoint is written once, redeployed until healthy, and never redeployed again
once it is. Without a redeploy (--no-redeploy) only the write happens.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.engine import Engine

from migrate.core import outcomes as oc
from migrate.core.outcomes import Result
from migrate.core.plan import PlanItem
from migrate.deploy.client import ApiError, Unauthorized
from migrate.rollout import endpoint, redeploy, revert
from migrate.rollout.transaction import Hook, Settings, record_outside
from migrate.store import journal as jr
from migrate.store import redeploys, rows

# Tells the operator where an endpoint is: (endpoint name, phase, detail).
OnPhase = Callable[[str, str, str], None]


@dataclass
class Context:
    """What every endpoint of an apply run shares."""

    engine: Engine
    settings: Settings
    run_id: str
    plan_digest: str
    redeploy: redeploy.Redeploy | None = None
    hook: Hook | None = None
    lock_check: Callable[[], None] = lambda: None
    on_phase: OnPhase = lambda name, phase, detail: None
    stop: threading.Event = field(default_factory=threading.Event)


def apply_endpoint(ctx: Context, item: PlanItem, stage: int) -> Result:
    run = endpoint.RunContext(ctx.run_id, ctx.plan_digest, stage)
    with ctx.engine.connect() as conn:
        history = jr.apply_history(conn, ctx.plan_digest, item.endpoint_id)
    if history is None:
        refused = _preflight(ctx, item, stage)
        if refused is not None:
            return refused
        ctx.lock_check()
        if ctx.redeploy is not None:
            ctx.on_phase(item.endpoint_name, "writing", "")
        written = endpoint.apply_item(
            ctx.engine,
            ctx.settings,
            item,
            run,
            ctx.hook,
            deploy_state=oc.WRITTEN if ctx.redeploy else None,
            history=None,  # just read: no applied change of this plan yet
        )
        if written.outcome != oc.APPLIED or ctx.redeploy is None or written.change_id is None:
            return written
        with ctx.engine.connect() as conn:
            change = redeploys.change(conn, written.change_id)
        return _deploy(ctx, item, change, written)
    done = history["reverted_by"] is not None or ctx.redeploy is None
    if done or history.get("deploy_state") == oc.HEALTHY:
        skipped = endpoint.skip_if_done(ctx.engine, item, run)
        assert skipped is not None  # the history it reads was there a moment ago
        return skipped
    resumed = Result(
        item.endpoint_id,
        item.endpoint_name,
        stage,
        oc.APPLIED,
        f"written by {history['run_id']}; resumed",
        history["bundle_before"],
        history["bundle_after"],
        change_id=history["id"],
        deploy_state=history.get("deploy_state"),
    )
    if history.get("deploy_state") == oc.UNHEALTHY:
        return _failed(ctx, item, history, resumed, history.get("deploy_detail") or "unhealthy")
    return _deploy(ctx, item, history, resumed)


def _preflight(ctx: Context, item: PlanItem, stage: int) -> Result | None:
    """Before writing, ask model engine: a skip or failure now leaves nothing half-done.

    The credentials must reach this owner's endpoint (401 stops the run, 404
    fails the endpoint), and model engine must not be building it: an endpoint it
    is updating is skipped as not ready and retried by the next run, like one
    whose row says so. Unauthorized propagates.
    """
    if ctx.redeploy is None:
        return None
    with ctx.engine.connect() as conn:
        row = rows.read_endpoint(conn, ctx.settings.schema, item.endpoint_id, lock=False)
    owner = row.get("owner") if row else None
    try:
        state = ctx.redeploy.client.get(item.endpoint_name, owner)
    except Unauthorized:
        raise
    except ApiError as exc:
        return _skip_apart(ctx, item, stage, oc.FAILED, f"not written: {exc}")
    if state.status not in ("READY", "UPDATE_FAILED"):
        return _skip_apart(
            ctx, item, stage, oc.SKIPPED_NOT_READY, f"model engine reports {state.status}"
        )
    return None


def _skip_apart(ctx: Context, item: PlanItem, stage: int, outcome: str, detail: str) -> Result:
    """Journal a skip or failure decided before any write, as the write path journals its own."""
    result = Result(item.endpoint_id, item.endpoint_name, stage, outcome, detail, item.bundle_id)
    run = endpoint.RunContext(ctx.run_id, ctx.plan_digest, stage)
    return record_outside(ctx.engine, result, endpoint.journal_apart(run, item))


def _deploy(ctx: Context, item: PlanItem, change: dict[str, Any], written: Result) -> Result:
    assert ctx.redeploy is not None
    deployed = redeploy.deploy(
        ctx.engine,
        ctx.settings.schema,
        ctx.redeploy,
        change,
        multinode="multinode" in item.flags,
        target_bundle=change["bundle_after"],
        recreate=ctx.redeploy.mode == redeploy.RECREATE,
        on_phase=lambda phase, detail: ctx.on_phase(item.endpoint_name, phase, detail),
        stop=ctx.stop,
    )
    detail = f"{written.detail}; {deployed.detail}" if written.detail else deployed.detail
    if deployed.state == oc.HEALTHY:
        return replace(written, detail=detail, deploy_state=oc.HEALTHY)
    if deployed.state == "drifted":
        return replace(written, outcome=oc.SKIPPED_DRIFTED, detail=detail)
    return _failed(ctx, item, change, written, deployed.detail)


def _failed(
    ctx: Context, item: PlanItem, change: dict[str, Any], written: Result, reason: str
) -> Result:
    """An unhealthy endpoint: rolled back at once, unless --on-failure stop."""
    assert ctx.redeploy is not None
    failed = replace(written, outcome=oc.FAILED, deploy_state=oc.UNHEALTHY, detail=reason)
    if ctx.redeploy.on_failure != redeploy.ROLLBACK:
        return replace(failed, detail=f"{reason}; left as it is (--on-failure stop)")
    ctx.on_phase(item.endpoint_name, "rolling back", reason)
    ctx.lock_check()
    undone = revert.revert_change(
        ctx.engine,
        ctx.settings,
        change,
        run_id=ctx.run_id,
        force=False,
        hook=ctx.hook,
        deploy_state=oc.WRITTEN,
    )
    with ctx.engine.begin() as conn:
        redeploys.abort_plan(
            conn,
            ctx.plan_digest,
            ctx.run_id,
            f"{item.endpoint_name} failed its health check ({reason}) and was rolled back",
        )
    if undone.outcome != oc.ROLLED_BACK or undone.change_id is None:
        return replace(failed, detail=f"{reason}; rollback refused: {undone.detail}")
    _, back = redeploy_rollback(
        ctx, item.endpoint_name, undone, multinode="multinode" in item.flags
    )
    return replace(failed, detail=f"{reason}; {back}", deploy_state=oc.DEPLOY_ROLLED_BACK)


def redeploy_rollback(
    ctx: Context, name: str, undone: Result, *, multinode: bool
) -> tuple[bool, str]:
    """Deploy the restored bundle exactly (PUT {}) and watch it: (healthy, a sentence)."""
    assert ctx.redeploy is not None and undone.change_id is not None
    with ctx.engine.connect() as conn:
        row = redeploys.change(conn, undone.change_id)
    deployed = redeploy.deploy(
        ctx.engine,
        ctx.settings.schema,
        ctx.redeploy,
        row,
        multinode=multinode,
        target_bundle=row["bundle_after"],
        recreate=False,
        on_phase=lambda phase, detail: ctx.on_phase(name, f"rollback {phase}", detail),
        stop=ctx.stop,
    )
    restored = row["bundle_after"]
    if deployed.state == oc.HEALTHY:
        return True, f"rolled back to {restored}, healthy again"
    if deployed.state == "drifted":
        return False, f"rolled back to {restored} but not redeployed: {deployed.detail}"
    return False, f"rolled back to {restored} but NOT healthy: {deployed.detail}"


def rollback_endpoint(ctx: Context, change: dict[str, Any], *, force: bool) -> Result:
    """An operator's rollback of one applied change: restore it, then redeploy and watch it."""
    ctx.lock_check()
    ctx.on_phase(change["endpoint_name"], "rolling back", "")
    undone = revert.revert_change(
        ctx.engine,
        ctx.settings,
        change,
        run_id=ctx.run_id,
        force=force,
        hook=ctx.hook,
        deploy_state=oc.WRITTEN if ctx.redeploy else None,
    )
    if undone.outcome != oc.ROLLED_BACK or ctx.redeploy is None:
        return undone
    return finish_rollback(ctx, undone, multinode=False)


def finish_rollback(ctx: Context, undone: Result, *, multinode: bool) -> Result:
    """Redeploy a restored endpoint (a new rollback's, or one a killed run left undeployed)."""
    healthy, sentence = redeploy_rollback(ctx, undone.endpoint_name, undone, multinode=multinode)
    if not healthy:
        return replace(undone, outcome=oc.FAILED, detail=sentence, deploy_state=oc.UNHEALTHY)
    return replace(undone, detail=sentence, deploy_state=oc.HEALTHY)

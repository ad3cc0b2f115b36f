"""What one planned change would do, for the dry run: its outcome and the diff a reviewer reads.

It reads and judges exactly as the real run does (`migrate.rollout.endpoint.read`),
without locking and inside the dry run's READ ONLY transaction.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from migrate.core import diff
from migrate.core import outcomes as oc
from migrate.core.outcomes import Result
from migrate.core.plan import Plan, PlanItem
from migrate.rollout.endpoint import read
from migrate.rollout.transaction import Settings
from migrate.store import journal as jr


def preview(
    conn: Connection,
    settings: Settings,
    plan: Plan,
    item: PlanItem,
    stage: int,
    journal: bool,
    *,
    redeploy: bool = False,
) -> tuple[Result, str]:
    """(the outcome a real run would have, the diff to show); `redeploy`: the run redeploys."""
    _, record, verdict = read(conn, settings.schema, item, plan.digest, lock=False, journal=journal)
    before = record.current_bundle_id if record else None
    outcome = verdict.outcome or oc.WOULD_APPLY
    detail = verdict.detail
    if outcome == oc.SKIPPED_ALREADY_APPLIED and redeploy:
        history = jr.apply_history(conn, plan.digest, item.endpoint_id)
        state = history.get("deploy_state") if history else oc.HEALTHY
        if state != oc.HEALTHY:
            outcome = oc.WOULD_REDEPLOY
            detail = f"{detail}; its redeploy stopped at {state or 'written (rows only)'}"
    owner = record.owner if record else None
    result = Result(
        item.endpoint_id, item.endpoint_name, stage, outcome, detail, before, owner=owner
    )
    if verdict.outcome is not None or record is None or record.bundle is None:
        return result, ""
    bundle = record.bundle
    assert bundle.command is not None and verdict.command_after is not None
    text = diff.unified(
        bundle.command[2],
        verdict.command_after[2],
        label_before=f"{before} runnable_image_command[2]",
        label_after="(new) runnable_image_command[2]",
    )
    if verdict.streaming_after is not None and bundle.streaming_command is not None:
        if bundle.streaming_command == bundle.command:
            text += "streaming command: the same change\n"
        else:
            text += diff.unified(
                bundle.streaming_command[2],
                verdict.streaming_after[2],
                label_before=f"{before} streaming command[2]",
                label_after="(new) streaming command[2]",
            )
    if item.args_after is not None:
        text += diff.args_diff(record.llm.get("vllm_additional_args"), item.args_after)
    return result, text

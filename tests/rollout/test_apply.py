"""apply against a real PostgreSQL, on both model engine schema versions."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from migrate.core import outcomes as oc
from migrate.core.plan import Plan
from migrate.core.policy import RECORDED_DROP, PolicyParams
from migrate.core.staging import LARGE_STAGE_NAME
from migrate.rollout.target import PlanMismatch
from migrate.sandbox.synth import make_spec
from migrate.store import journal as jr
from migrate.store.ids import is_xid
from migrate.store.lock import LockBusy, MigrationLock
from tests.support.rollout import (
    apply,
    bundle,
    bundle_count,
    endpoints,
    journal_rows,
    make_plan,
    run_statuses,
    schemas,
    seed,
    seed_random,
    set_endpoint,
    table_digests,
)

STREAMING = "streaming_enhanced_runnable_image_streaming_command"
COPIED_AS_IS_EXCEPT = {"id", "created_at", "runnable_image_command", STREAMING, "bundle_metadata"}


@pytest.fixture
def fleet_plan(me_db: Any) -> tuple[Any, Plan]:
    # Enough endpoints that stage 3 holds three regular changes, whatever share of
    # the fleet is large (mixture-of-experts models count by their total size).
    seed_random(me_db, 60)
    plan = make_plan(me_db)
    assert len(plan.items) >= 10 and plan.stages[-1].name == LARGE_STAGE_NAME
    assert len(plan.stage_items(3)) >= 3 and plan.stages[2].name != LARGE_STAGE_NAME
    return me_db, plan


def test_dry_run_writes_nothing_at_all(fleet_plan: tuple[Any, Plan]) -> None:
    me_db, plan = fleet_plan
    before, spaces = table_digests(me_db.engine), schemas(me_db.engine)
    summary = apply(me_db, plan, execute=False)
    assert summary.counts["would-apply"] > 0 and summary.run_id is None
    assert table_digests(me_db.engine) == before
    assert schemas(me_db.engine) == spaces and jr.SCHEMA not in spaces
    # With a journal present (after the canary) a dry run still changes no byte of it.
    apply(me_db, plan, stage=1)
    before = table_digests(me_db.engine)
    summary = apply(me_db, plan, execute=False, all_stages=False)
    assert table_digests(me_db.engine) == before
    assert summary.stages == [2]  # the canary is done, so the preview moves on


def test_new_bundle_is_an_exact_copy_but_for_id_time_commands_and_mark(
    fleet_plan: tuple[Any, Plan],
) -> None:
    me_db, plan = fleet_plan
    before = endpoints(me_db)
    summary = apply(me_db, plan)
    assert summary.failures == 0 and summary.counts[oc.APPLIED] > 0
    applied = journal_rows(me_db, "outcome = 'applied'")
    items = {i.endpoint_id: i for i in plan.items}
    after = endpoints(me_db)
    for row in applied:
        item = items[row["endpoint_id"]]
        old, new = bundle(me_db, row["bundle_before"]), bundle(me_db, row["bundle_after"])
        assert old["id"] == item.bundle_id == before[item.endpoint_id]["current_bundle_id"]
        assert new["id"].startswith("bun_") and is_xid(new["id"][4:])
        assert new["created_at"] > old["created_at"]
        assert {k: v for k, v in new.items() if k not in COPIED_AS_IS_EXCEPT} == {
            k: v for k, v in old.items() if k not in COPIED_AS_IS_EXCEPT
        }
        assert new["runnable_image_command"] == old["runnable_image_command"][:2] + [
            item.command_after
        ]
        if old.get(STREAMING) is None:
            assert new.get(STREAMING) is None and item.streaming_command_after is None
        else:
            assert new[STREAMING] == old[STREAMING][:2] + [item.streaming_command_after]
        assert new["bundle_metadata"] == {
            **(old["bundle_metadata"] or {}),
            "bundle_migrate": {
                "run_id": summary.run_id,
                "plan_digest": plan.digest,
                "from_bundle": old["id"],
            },
        }
        # The endpoint points at it, its metadata is untouched (no args_after here).
        endpoint = after[item.endpoint_id]
        assert endpoint["current_bundle_id"] == new["id"]
        assert endpoint["meta"] == before[item.endpoint_id]["meta"]
        assert endpoint["last_updated_at"] > before[item.endpoint_id]["last_updated_at"]
        assert json.loads(endpoint["meta"]) == row["metadata_before"] == row["metadata_after"]
        assert row["command_digest_before"] != row["command_digest_after"]
        assert row["plan_digest"] == plan.digest and row["stage"] == item.stage
    # The column-by-column comparison above is the proof of the copy. The rows also
    # went in through model engine's CHECK constraints, enforced on every INSERT:
    # make sure they are really there and validated, not NOT VALID leftovers.
    with me_db.engine.connect() as conn:
        checks, validated = conn.execute(
            sa.text(
                "SELECT count(*), count(*) FILTER (WHERE convalidated) FROM pg_constraint "
                "WHERE conrelid = CAST(:t AS regclass) AND contype = 'c'"
            ),
            {"t": f'"{me_db.schema}".bundles'},
        ).one()
    assert checks == validated >= 5


def test_recorded_args_are_brought_in_line(me_db: Any) -> None:
    specs = [make_spec("G", provenance="recorded", seed=i, index=i) for i in range(3)]
    seed(me_db, [replace(s, status="READY") for s in specs])
    plan = make_plan(me_db, params=PolicyParams(recorded=RECORDED_DROP))
    with_args = [i for i in plan.items if i.args_after is not None]
    assert len(with_args) == 3
    before = endpoints(me_db)
    apply(me_db, plan)
    after = endpoints(me_db)
    for item in with_args:
        old, new = (
            json.loads(before[item.endpoint_id]["meta"]),
            json.loads(after[item.endpoint_id]["meta"]),
        )
        assert "enforce_eager" not in new["_llm"]["vllm_additional_args"]
        old["_llm"]["vllm_additional_args"] = item.args_after
        assert new == old


def test_only_the_first_incomplete_stage_by_default(fleet_plan: tuple[Any, Plan]) -> None:
    me_db, plan = fleet_plan
    summary = apply(me_db, plan, all_stages=False)
    assert summary.stages == [1] and summary.counts == {oc.APPLIED: 1}
    summary = apply(me_db, plan, all_stages=False)
    assert summary.stages == [2]


def test_drifted_endpoint_is_skipped_but_a_touched_one_is_applied(
    fleet_plan: tuple[Any, Plan],
) -> None:
    me_db, plan = fleet_plan
    drifted, touched, moved = plan.stage_items(3)[:3]
    with me_db.engine.begin() as conn:
        conn.execute(
            sa.text(
                f'UPDATE "{me_db.schema}".endpoints SET endpoint_metadata = '
                'endpoint_metadata || \'{"note": "edited by a person"}\' WHERE id = :id'
            ),
            {"id": drifted.endpoint_id},
        )
        conn.execute(
            sa.text(
                f'UPDATE "{me_db.schema}".endpoints SET last_updated_at = now() WHERE id = :id'
            ),
            {"id": touched.endpoint_id},
        )
        conn.execute(
            sa.text(f'UPDATE "{me_db.schema}".endpoints SET current_bundle_id = :b WHERE id = :id'),
            {"id": moved.endpoint_id, "b": drifted.bundle_id},
        )
    before = endpoints(me_db)
    apply(me_db, plan, stage=3, ignore_incomplete=True)
    after = endpoints(me_db)
    outcomes = {r["endpoint_id"]: r for r in journal_rows(me_db)}
    assert outcomes[drifted.endpoint_id]["outcome"] == oc.SKIPPED_DRIFTED
    assert after[drifted.endpoint_id] == before[drifted.endpoint_id]
    assert outcomes[moved.endpoint_id]["outcome"] == oc.SKIPPED_DRIFTED
    assert f"it now runs {drifted.bundle_id}" in outcomes[moved.endpoint_id]["detail"]
    assert outcomes[touched.endpoint_id]["outcome"] == oc.APPLIED
    assert "only its status or last_updated_at changed" in outcomes[touched.endpoint_id]["detail"]


def test_not_ready_and_busy_endpoints_are_skipped_and_retried(
    fleet_plan: tuple[Any, Plan],
) -> None:
    me_db, plan = fleet_plan
    busy = plan.stage_items(3)[0]
    with me_db.engine.connect() as holder:
        holder.execute(
            sa.text(f'SELECT 1 FROM "{me_db.schema}".endpoints WHERE id = :id FOR UPDATE'),
            {"id": busy.endpoint_id},
        )
        summary = apply(me_db, plan)
        holder.rollback()
    rows = {r["endpoint_id"]: r["outcome"] for r in journal_rows(me_db)}
    assert rows[busy.endpoint_id] == oc.SKIPPED_BUSY
    # Stage 3 is not complete, so --all-stages went no further.
    assert summary.stopped and summary.stopped.startswith(
        "stage 3 incomplete (1 busy): rerun to continue"
    )
    assert max(r["stage"] for r in journal_rows(me_db)) == 3
    assert summary.failures == 0 and run_statuses(me_db) == ["stopped"]
    again = apply(me_db, plan)
    assert again.stages[0] == 3 and not again.stopped
    rows = {r["endpoint_id"]: r["outcome"] for r in journal_rows(me_db)}
    assert rows[busy.endpoint_id] == oc.APPLIED
    not_ready = [i for i in plan.items if "not-ready" in i.flags]
    assert not_ready and all(rows[i.endpoint_id] == oc.SKIPPED_NOT_READY for i in not_ready)
    assert not_ready[0].stage == plan.stages[-1].number  # the last stage: nothing after it


def test_all_stages_never_starts_a_stage_after_an_incomplete_one(
    fleet_plan: tuple[Any, Plan],
) -> None:
    me_db, plan = fleet_plan
    canary = plan.stage_items(1)[0]
    # Model engine started updating the canary after the plan was made.
    set_endpoint(me_db, canary.endpoint_id, "endpoint_status = 'UPDATE_PENDING'")
    summary = apply(me_db, plan)
    assert summary.stages[0] == 1 and summary.counts == {oc.SKIPPED_NOT_READY: 1}
    assert summary.stopped == (
        "stage 1 incomplete (1 not ready): rerun to continue; "
        "stage 2 was not started (--stage 2 --ignore-incomplete-stages starts it regardless)"
    )
    assert {r["stage"] for r in journal_rows(me_db)} == {1}
    # Back to READY with nothing else changed: the canary goes, then the rest.
    set_endpoint(me_db, canary.endpoint_id, "endpoint_status = 'READY'")
    again = apply(me_db, plan)
    assert again.counts[oc.APPLIED] > 1 and not again.stopped


def test_a_planned_not_ready_endpoint_is_applied_once_ready(fleet_plan: tuple[Any, Plan]) -> None:
    me_db, plan = fleet_plan
    waiting = [i for i in plan.items if "not-ready" in i.flags]
    last = plan.stages[-1].number
    assert waiting and waiting[0].stage == last
    apply(me_db, plan, stage=last, ignore_incomplete=True)
    where = f"endpoint_id = '{waiting[0].endpoint_id}'"
    assert [r["outcome"] for r in journal_rows(me_db, where)] == [oc.SKIPPED_NOT_READY]
    # Its update finished (UPDATE_FAILED or pending -> READY); nothing else changed.
    set_endpoint(me_db, waiting[0].endpoint_id, "endpoint_status = 'READY'")
    apply(me_db, plan, stage=last, ignore_incomplete=True)
    rows = journal_rows(me_db, where)
    assert [r["outcome"] for r in rows] == [oc.SKIPPED_NOT_READY, oc.APPLIED]
    assert "only its status or last_updated_at changed" in rows[-1]["detail"]
    assert endpoints(me_db)[waiting[0].endpoint_id]["current_bundle_id"] == rows[-1]["bundle_after"]


def test_applying_twice_changes_nothing_the_second_time(fleet_plan: tuple[Any, Plan]) -> None:
    me_db, plan = fleet_plan
    apply(me_db, plan)
    model_engine = {k: v for k, v in table_digests(me_db.engine).items() if jr.SCHEMA not in k}
    bundles = bundle_count(me_db)
    summary = apply(me_db, plan, stage=1)
    assert summary.counts == {oc.SKIPPED_ALREADY_APPLIED: 1}
    apply(me_db, plan)  # the not-ready ones are looked at again, and still skipped
    after = {k: v for k, v in table_digests(me_db.engine).items() if jr.SCHEMA not in k}
    assert after == model_engine and bundle_count(me_db) == bundles


def test_a_second_apply_is_refused_while_the_lock_is_held(fleet_plan: tuple[Any, Plan]) -> None:
    me_db, plan = fleet_plan
    before = table_digests(me_db.engine)
    with MigrationLock(me_db.engine, me_db.schema):
        with pytest.raises(LockBusy, match=r"another bundle-migrate .* backend pid \d+"):
            apply(me_db, plan)
    assert table_digests(me_db.engine) == before
    assert apply(me_db, plan, stage=1).counts[oc.APPLIED] == 1  # released: free again


def test_a_plan_for_another_database_is_refused(fleet_plan: tuple[Any, Plan]) -> None:
    me_db, plan = fleet_plan
    other = replace(plan, database={**plan.database, "database": "production"})
    with pytest.raises(PlanMismatch, match="database name: plan 'production'"):
        apply(me_db, other)
    with pytest.raises(PlanMismatch):
        apply(me_db, other, execute=False)


def test_failures_stop_the_stage_beyond_max_failures(fleet_plan: tuple[Any, Plan]) -> None:
    me_db, plan = fleet_plan
    calls: list[str] = []

    def divide_by_zero_twice(step: str, conn: Connection) -> None:
        if step == "bundle-inserted" and len(calls) < 2:
            calls.append(step)
            conn.execute(sa.text("SELECT 1/0"))

    bundles = bundle_count(me_db)
    summary = apply(
        me_db, plan, stage=3, hook=divide_by_zero_twice, max_failures=1, ignore_incomplete=True
    )
    assert summary.counts[oc.FAILED] == 2 and summary.stopped and "stage 3" in summary.stopped
    assert summary.counts[oc.APPLIED] == 0  # stopped at the second failure, the next not tried
    failed = journal_rows(me_db, "outcome = 'failed'")
    assert [r["bundle_after"] for r in failed] == [None, None]
    assert "division by zero" in failed[0]["detail"]
    # Nothing half-done: the failed endpoints still run their bundle, no stray bundle row.
    assert bundle_count(me_db) == bundles
    assert apply(me_db, plan, stage=3, ignore_incomplete=True).failures == 0

"""rollback: exact restoration, drift protection, selection by plan, run, stage and endpoint."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from migrate.core import outcomes as oc
from migrate.core.plan import Plan
from migrate.core.policy import RECORDED_DROP, PolicyParams
from migrate.rollout import revert
from migrate.rollout.apply import PlanAborted
from migrate.rollout.rollback import RollbackOptions, RollbackSummary, run_rollback
from migrate.rollout.transaction import Hook, Settings
from migrate.sandbox.synth import make_spec
from migrate.store import journal as jr
from tests.support.rollout import (
    apply,
    bundle_count,
    endpoints,
    journal_rows,
    make_plan,
    seed,
    seed_random,
    set_endpoint,
    table_digests,
)


def rollback(me_db: Any, hook: Hook | None = None, **kw: Any) -> RollbackSummary:
    options = RollbackOptions(settings=Settings(schema=me_db.schema), **{"execute": True, **kw})
    return run_rollback(me_db.engine, options, hook=hook)


def _state(rows: dict[str, dict[str, Any]]) -> dict[str, tuple[str, str, str]]:
    """What a rollback must restore: bundle, metadata text (exact) and status."""
    return {k: (v["current_bundle_id"], v["meta"], v["endpoint_status"]) for k, v in rows.items()}


@pytest.fixture
def applied(me_db: Any) -> tuple[Any, Plan, dict[str, Any]]:
    seed_random(me_db, 30, seed_value=11)
    # Recorded flags dropped too, so some endpoints also get their metadata rewritten.
    recorded = [make_spec("G", provenance="recorded", seed=i, index=100 + i) for i in range(2)]
    seed(me_db, [replace(s, status="READY") for s in recorded])
    plan = make_plan(me_db, params=PolicyParams(recorded=RECORDED_DROP))
    before = endpoints(me_db)
    summary = apply(me_db, plan)
    assert summary.counts[oc.APPLIED] >= 8 and summary.failures == 0
    return me_db, plan, before


def test_rollback_restores_bundle_ids_and_metadata_exactly(applied: tuple[Any, Plan, Any]) -> None:
    me_db, plan, before = applied
    assert _state(endpoints(me_db)) != _state(before)
    assert any(r["metadata_before"] != r["metadata_after"] for r in journal_rows(me_db))
    bundles = bundle_count(me_db)
    dry = rollback(me_db, plan=plan, execute=False)
    assert dry.counts["would-roll-back"] == len(journal_rows(me_db, "outcome = 'applied'"))
    assert _state(endpoints(me_db)) != _state(before)
    summary = rollback(me_db, plan=plan)
    assert summary.failures == 0 and summary.counts[oc.ROLLED_BACK] == dry.counts["would-roll-back"]
    assert _state(endpoints(me_db)) == _state(before)
    assert bundle_count(me_db) == bundles  # nothing deleted
    originals = journal_rows(me_db, "kind = 'apply' AND outcome = 'applied'")
    undo = {r["id"]: r for r in journal_rows(me_db, "kind = 'rollback'")}
    for change in originals:
        back = undo[change["reverted_by"]]
        assert back["outcome"] == oc.ROLLED_BACK and back["run_id"] == summary.run_id
        assert (back["bundle_before"], back["bundle_after"]) == (
            change["bundle_after"],
            change["bundle_before"],
        )
        assert back["metadata_after"] == change["metadata_before"]
    # A second rollback finds nothing. The rollback aborted the plan (Argo's abort):
    # applying it again is refused until an operator says to go on, and even then
    # it does not undo the rollback.
    assert rollback(me_db, plan=plan).counts == {}
    with pytest.raises(PlanAborted, match=f"rolled back by run {summary.run_id}"):
        apply(me_db, plan, stage=1)
    again = apply(me_db, plan, stage=1, retry_aborted=True)
    assert again.counts == {oc.SKIPPED_ROLLED_BACK: 1}
    assert apply(me_db, plan, stage=1).counts == {oc.SKIPPED_ROLLED_BACK: 1}  # abort closed
    assert apply(me_db, plan).counts[oc.APPLIED] == 0
    assert _state(endpoints(me_db)) == _state(before)


def test_a_drifted_endpoint_is_left_alone_unless_forced(applied: tuple[Any, Plan, Any]) -> None:
    me_db, plan, before = applied
    victim = journal_rows(me_db, "outcome = 'applied'")[0]
    with me_db.engine.begin() as conn:
        conn.execute(
            sa.text(
                f'UPDATE "{me_db.schema}".endpoints SET endpoint_metadata = '
                "jsonb_set(endpoint_metadata, '{owner_note}', '\"mine\"') WHERE id = :id"
            ),
            {"id": victim["endpoint_id"]},
        )
    edited = endpoints(me_db)[victim["endpoint_id"]]
    summary = rollback(me_db, plan=plan)
    assert summary.counts[oc.ROLLBACK_SKIPPED_DRIFTED] == 1
    assert endpoints(me_db)[victim["endpoint_id"]] == edited
    skipped = journal_rows(me_db, "outcome = 'rollback-skipped-drifted'")[0]
    assert "metadata changed" in skipped["detail"] and "--force" in skipped["detail"]
    # A rollback that did not happen names no bundle after it.
    assert skipped["bundle_after"] is None
    assert skipped["bundle_before"] == victim["bundle_after"]
    forced = rollback(me_db, plan=plan, force=True)
    assert forced.counts == {oc.ROLLED_BACK: 1}
    assert _state(endpoints(me_db)) == _state(before)
    assert "forced over" in journal_rows(me_db, "outcome = 'rolled-back'")[-1]["detail"]


def test_rollback_by_run_stage_and_endpoint(applied: tuple[Any, Plan, Any]) -> None:
    me_db, plan, before = applied
    changes = journal_rows(me_db, "outcome = 'applied'")
    run_id = changes[0]["run_id"]
    one = changes[-1]
    assert rollback(me_db, run_id=run_id, endpoints=(one["endpoint_name"], "no-such")).counts == {
        oc.ROLLED_BACK: 1
    }
    assert endpoints(me_db)[one["endpoint_id"]]["current_bundle_id"] == one["bundle_before"]
    stage_one = [c for c in changes if c["stage"] == 1]
    assert rollback(me_db, plan=plan, stage=1).counts == {oc.ROLLED_BACK: len(stage_one)}
    rest = rollback(me_db, run_id=run_id)
    assert rest.counts[oc.ROLLED_BACK] == len(changes) - 1 - len(stage_one)
    assert _state(endpoints(me_db)) == _state(before)
    with pytest.raises(Exception, match="no apply run"):
        rollback(me_db, run_id="run_nope")


def test_rollback_dry_run_and_empty_journal_write_nothing(me_db: Any) -> None:
    seed_random(me_db, 10)
    plan = make_plan(me_db)
    before = table_digests(me_db.engine)
    assert rollback(me_db, plan=plan).counts == {}  # no journal: nothing to undo
    assert rollback(me_db, plan=plan, execute=False).counts == {}
    assert table_digests(me_db.engine) == before


def test_an_endpoint_model_engine_is_updating_is_left_alone_unless_forced(
    applied: tuple[Any, Plan, Any],
) -> None:
    me_db, plan, before = applied
    victim = journal_rows(me_db, "outcome = 'applied'")[0]
    endpoint_id = victim["endpoint_id"]
    set_endpoint(me_db, endpoint_id, "endpoint_status = 'UPDATE_IN_PROGRESS'")
    dry = rollback(me_db, plan=plan, execute=False)
    assert dry.counts[oc.ROLLBACK_SKIPPED_NOT_READY] == 1
    summary = rollback(me_db, plan=plan)
    assert summary.counts[oc.ROLLBACK_SKIPPED_NOT_READY] == 1 and summary.failures == 0
    assert summary.counts[oc.ROLLED_BACK] == dry.counts["would-roll-back"]
    assert endpoints(me_db)[endpoint_id]["current_bundle_id"] == victim["bundle_after"]
    skipped = journal_rows(me_db, "outcome = 'rollback-skipped-not-ready'")
    assert len(skipped) == 1 and skipped[0]["bundle_after"] is None
    assert "status is UPDATE_IN_PROGRESS: model engine is updating it" in skipped[0]["detail"]
    forced = rollback(me_db, plan=plan, force=True)
    assert forced.counts == {oc.ROLLED_BACK: 1}
    now, then = endpoints(me_db)[endpoint_id], before[endpoint_id]
    assert (now["current_bundle_id"], now["meta"]) == (then["current_bundle_id"], then["meta"])
    assert now["endpoint_status"] == "UPDATE_IN_PROGRESS"  # model engine's, not ours to set
    assert "forced over" in journal_rows(me_db, "outcome = 'rolled-back'")[-1]["detail"]


def test_an_endpoint_whose_update_failed_is_rolled_back_without_force(
    applied: tuple[Any, Plan, Any],
) -> None:
    """UPDATE_FAILED is where a failed build leaves an endpoint: the state to roll back from."""
    me_db, plan, before = applied
    victim = journal_rows(me_db, "outcome = 'applied'")[0]
    set_endpoint(me_db, victim["endpoint_id"], "endpoint_status = 'UPDATE_FAILED'")
    summary = rollback(me_db, plan=plan, endpoints=(victim["endpoint_name"],))
    assert summary.counts == {oc.ROLLED_BACK: 1}
    now = endpoints(me_db)[victim["endpoint_id"]]
    assert now["current_bundle_id"] == before[victim["endpoint_id"]]["current_bundle_id"]


def test_a_change_rolled_back_already_is_skipped_as_such(applied: tuple[Any, Plan, Any]) -> None:
    me_db, plan, _ = applied
    with me_db.engine.connect() as conn:
        change = jr.live_applied_changes(conn, plan_digest=plan.digest)[0]
    first = rollback(me_db, plan=plan)
    assert first.run_id
    # A second rollback working from a stale list (the change was undone meanwhile).
    result = revert.revert_change(
        me_db.engine, Settings(schema=me_db.schema), change, run_id=first.run_id
    )
    assert result.outcome == oc.ROLLBACK_SKIPPED_ALREADY and result.bundle_after is None
    row = journal_rows(me_db, "outcome = 'rollback-skipped-already'")
    assert len(row) == 1 and row[0]["bundle_after"] is None
    assert row[0]["detail"].startswith("already rolled back")


def test_a_lost_commit_acknowledgement_is_not_journaled_as_a_failed_rollback(
    applied: tuple[Any, Plan, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    me_db, plan, before = applied
    dialect = me_db.engine.dialect
    real_commit = dialect.do_commit
    armed: list[str] = []

    def hook(step: str, conn: Connection) -> None:
        if step == "before-commit" and not armed:
            armed.append("rollback transaction")

    def commit_then_lose_the_answer(dbapi_connection: Any) -> None:
        real_commit(dbapi_connection)
        if armed == ["rollback transaction"]:
            armed.append("answer lost")
            raise psycopg.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(dialect, "do_commit", commit_then_lose_the_answer)
    summary = rollback(me_db, plan=plan, hook=hook)
    assert armed == ["rollback transaction", "answer lost"]
    assert summary.failures == 0 and set(summary.counts) == {oc.ROLLED_BACK}
    assert not journal_rows(me_db, "kind = 'rollback' AND outcome <> 'rolled-back'")
    assert _state(endpoints(me_db)) == _state(before)


def test_apply_and_rollback_where_endpoints_have_no_last_updated_at(me_db: Any) -> None:
    seed_random(me_db, 20, seed_value=3)
    with me_db.engine.begin() as conn:
        conn.execute(sa.text(f'ALTER TABLE "{me_db.schema}".endpoints DROP COLUMN last_updated_at'))

    def state() -> dict[str, tuple[str, str]]:
        with me_db.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT id, current_bundle_id, CAST(endpoint_metadata AS text) "
                    f'FROM "{me_db.schema}".endpoints'
                )
            )
            return {r[0]: (r[1], r[2]) for r in rows}

    before = state()
    plan = make_plan(me_db)
    applied = apply(me_db, plan)
    assert applied.counts[oc.APPLIED] > 0 and applied.failures == 0
    summary = rollback(me_db, plan=plan)
    assert summary.failures == 0 and summary.counts == {oc.ROLLED_BACK: applied.counts[oc.APPLIED]}
    assert state() == before

"""rollback: exact restoration, drift protection, selection by plan, run, stage and endpoint."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa
from rollout_support import (
    apply,
    bundle_count,
    endpoints,
    journal_rows,
    make_plan,
    seed,
    seed_random,
    table_digests,
)

from migrate import journal as jr
from migrate.change import Settings
from migrate.plan import Plan
from migrate.policy import RECORDED_DROP, PolicyParams
from migrate.rollback import RollbackOptions, RollbackSummary, run_rollback
from migrate.synth import make_spec


def rollback(me_db: Any, **kw: Any) -> RollbackSummary:
    options = RollbackOptions(settings=Settings(schema=me_db.schema), **{"execute": True, **kw})
    return run_rollback(me_db.engine, options)


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
    assert summary.counts[jr.APPLIED] >= 8 and summary.failures == 0
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
    assert summary.failures == 0 and summary.counts[jr.ROLLED_BACK] == dry.counts["would-roll-back"]
    assert _state(endpoints(me_db)) == _state(before)
    assert bundle_count(me_db) == bundles  # nothing deleted
    originals = journal_rows(me_db, "kind = 'apply' AND outcome = 'applied'")
    undo = {r["id"]: r for r in journal_rows(me_db, "kind = 'rollback'")}
    for change in originals:
        back = undo[change["reverted_by"]]
        assert back["outcome"] == jr.ROLLED_BACK and back["run_id"] == summary.run_id
        assert (back["bundle_before"], back["bundle_after"]) == (
            change["bundle_after"],
            change["bundle_before"],
        )
        assert back["metadata_after"] == change["metadata_before"]
    # A second rollback finds nothing; re-applying the same plan does not undo the rollback.
    assert rollback(me_db, plan=plan).counts == {}
    assert apply(me_db, plan, stage=1).counts == {jr.SKIPPED_ROLLED_BACK: 1}
    assert apply(me_db, plan).counts[jr.APPLIED] == 0
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
    assert summary.counts[jr.ROLLBACK_SKIPPED_DRIFTED] == 1
    assert endpoints(me_db)[victim["endpoint_id"]] == edited
    skipped = journal_rows(me_db, "outcome = 'rollback-skipped-drifted'")[0]
    assert "metadata changed" in skipped["detail"] and "--force" in skipped["detail"]
    forced = rollback(me_db, plan=plan, force=True)
    assert forced.counts == {jr.ROLLED_BACK: 1}
    assert _state(endpoints(me_db)) == _state(before)
    assert "forced over" in journal_rows(me_db, "outcome = 'rolled-back'")[-1]["detail"]


def test_rollback_by_run_stage_and_endpoint(applied: tuple[Any, Plan, Any]) -> None:
    me_db, plan, before = applied
    changes = journal_rows(me_db, "outcome = 'applied'")
    run_id = changes[0]["run_id"]
    one = changes[-1]
    assert rollback(me_db, run_id=run_id, endpoints=(one["endpoint_name"], "no-such")).counts == {
        jr.ROLLED_BACK: 1
    }
    assert endpoints(me_db)[one["endpoint_id"]]["current_bundle_id"] == one["bundle_before"]
    stage_one = [c for c in changes if c["stage"] == 1]
    assert rollback(me_db, plan=plan, stage=1).counts == {jr.ROLLED_BACK: len(stage_one)}
    rest = rollback(me_db, run_id=run_id)
    assert rest.counts[jr.ROLLED_BACK] == len(changes) - 1 - len(stage_one)
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

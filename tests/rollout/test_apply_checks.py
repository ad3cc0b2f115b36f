"""The dry run predicts the real run; a lost COMMIT answer; which database a plan may touch."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from migrate.core import outcomes as oc
from migrate.core.plan import Plan, seal
from migrate.rollout import target as target_module
from migrate.rollout.target import PlanMismatch
from migrate.store import journal as jr
from migrate.store.identity import database_identity
from migrate.store.lock import MigrationLock
from tests.support.rollout import Collect, apply, journal_rows, make_plan, seed_random, set_endpoint


@pytest.fixture
def staged(me_db: Any) -> tuple[Any, Plan]:
    seed_random(me_db, 70, seed_value=5)
    plan = make_plan(me_db, stages="1,100%")
    assert plan.stages[1].endpoints >= 10
    return me_db, plan


def _fail_once_at(count: int) -> Any:
    calls: list[int] = []

    def hook(step: str, conn: Connection) -> None:
        if step == "bundle-inserted":
            calls.append(1)
            if len(calls) == count:
                conn.execute(sa.text("SELECT 1/0"))

    return hook


def test_a_dry_run_reports_the_outcomes_the_real_run_then_has(staged: tuple[Any, Plan]) -> None:
    me_db, plan = staged
    apply(me_db, plan, stage=1)
    items = plan.stage_items(2)
    # Three applied, then a failure stops that run: a half-done stage 2 to resume.
    partial = apply(me_db, plan, stage=2, hook=_fail_once_at(4), ignore_incomplete=True)
    assert partial.counts == {oc.APPLIED: 3, oc.FAILED: 1}
    drifted, not_ready, odd_metadata = items[5], items[6], items[7]
    set_endpoint(
        me_db,
        drifted.endpoint_id,
        "endpoint_metadata = endpoint_metadata || CAST(:m AS jsonb)",
        m='{"note": "edited by a person"}',
    )
    set_endpoint(me_db, not_ready.endpoint_id, "endpoint_status = 'UPDATE_PENDING'")
    with me_db.engine.begin() as conn:
        conn.execute(
            sa.text(f"UPDATE \"{me_db.schema}\".bundles SET bundle_metadata = '[1]' WHERE id = :b"),
            {"b": odd_metadata.bundle_id},
        )

    dry, real = Collect(), Collect()
    predicted = apply(me_db, plan, execute=False, max_failures=5, reporter=dry)
    done = apply(me_db, plan, max_failures=5, reporter=real)

    expected = {k: oc.APPLIED if v == "would-apply" else v for k, v in dry.outcomes.items()}
    assert expected == real.outcomes
    assert set(real.outcomes.values()) == {
        oc.APPLIED,
        oc.SKIPPED_ALREADY_APPLIED,
        oc.SKIPPED_DRIFTED,
        oc.SKIPPED_NOT_READY,
        oc.FAILED,
    }
    assert real.outcomes[odd_metadata.endpoint_name] == oc.FAILED
    assert "bundle_metadata is not a JSON object" in dry.details[odd_metadata.endpoint_name]
    # Both stop after stage 2, which is incomplete; neither goes on to stage 3.
    assert done.stopped and predicted.stopped == f"a real run would stop here: {done.stopped}"
    assert predicted.stages == done.stages == [2, 3]
    assert {r["stage"] for r in journal_rows(me_db)} == {1, 2}


def test_a_dry_run_says_when_another_run_holds_the_lock(staged: tuple[Any, Plan]) -> None:
    me_db, plan = staged
    notes = Collect()
    with MigrationLock(me_db.engine, me_db.schema):
        apply(me_db, plan, execute=False, reporter=notes)
    held = [n for n in notes.notes if "another run holds the lock" in n]
    assert len(held) == 1 and "backend pid" in held[0] and "would be refused" in held[0]
    quiet = Collect()
    apply(me_db, plan, execute=False, reporter=quiet)
    assert not any("holds the lock" in n for n in quiet.notes)


def test_a_lost_commit_acknowledgement_is_not_journaled_as_a_failure(
    staged: tuple[Any, Plan], monkeypatch: pytest.MonkeyPatch
) -> None:
    me_db, plan = staged
    dialect = me_db.engine.dialect
    real_commit = dialect.do_commit
    armed: list[str] = []

    def hook(step: str, conn: Connection) -> None:
        if step == "before-commit" and not armed:
            armed.append("endpoint transaction")

    def commit_then_lose_the_answer(dbapi_connection: Any) -> None:
        real_commit(dbapi_connection)
        if armed == ["endpoint transaction"]:
            armed.append("answer lost")
            # The server committed; the client hears only that the connection broke.
            raise psycopg.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(dialect, "do_commit", commit_then_lose_the_answer)
    summary = apply(me_db, plan, stage=1, hook=hook)
    assert armed == ["endpoint transaction", "answer lost"]
    assert summary.counts == {oc.APPLIED: 1} and summary.failures == 0
    assert [r["outcome"] for r in journal_rows(me_db)] == [oc.APPLIED]


def test_a_physical_clone_is_refused_and_a_failover_allowed_on_request(
    staged: tuple[Any, Plan], monkeypatch: pytest.MonkeyPatch
) -> None:
    me_db, plan = staged
    # The test server listens on a socket only; pretend it answers on TCP at another
    # address, as a clone or a failed-over primary would, with the same identifier.
    here = {**plan.database, "host": "10.0.0.6", "port": 5432}
    monkeypatch.setattr(
        target_module.identity,
        "database_identity",
        lambda conn: {**database_identity(conn), **here},
    )
    seen = plan.database | {"host": "10.0.0.5", "port": 5432}
    moved = seal(replace(plan, database=seen))
    with pytest.raises(PlanMismatch, match=r"plan 10\.0\.0\.5:5432, here 10\.0\.0\.6:5432"):
        apply(me_db, moved, execute=False)
    with pytest.raises(PlanMismatch, match="--allow-other-address"):
        apply(me_db, moved, stage=1)
    assert not _journal_present(me_db)
    notes = Collect()
    summary = apply(me_db, moved, stage=1, allow_other_address=True, reporter=notes)
    assert summary.counts == {oc.APPLIED: 1}
    assert "server address: the plan saw 10.0.0.5:5432, this connection reaches 10.0.0.6:5432" in (
        notes.notes
    )


def _journal_present(me_db: Any) -> bool:
    with me_db.engine.connect() as conn:
        return jr.exists(conn)


def test_an_apply_run_collects_rarely_and_gives_the_collector_back(
    staged: tuple[Any, Plan],
) -> None:
    import gc

    from migrate.scan.collector import RARE_COLLECTIONS

    me_db, plan = staged
    before = gc.get_threshold()
    seen: list[tuple[int, ...]] = []

    def hook(step: str, conn: Connection) -> None:
        seen.append(gc.get_threshold())

    summary = apply(me_db, plan, stage=1, hook=hook)
    assert summary.counts == {oc.APPLIED: 1}
    # The plan's items live through the whole run: walking them at every collection
    # cost an eighth of apply's CPU.
    assert seen and set(seen) == {RARE_COLLECTIONS}
    assert gc.get_threshold() == before

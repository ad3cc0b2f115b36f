"""reconcile: the pure judgements, then every drift kind against a real PostgreSQL."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from rollout_support import apply, journal_rows, make_plan, seed

from migrate.cli import main
from migrate.lock import MigrationLock
from migrate.overrides import parse_overrides
from migrate.reconcile import (
    BUNDLE_MOVED,
    ENDPOINT_DELETED,
    FLAG_REVERTED,
    KEPT_BY_OVERRIDE,
    MISSING_BUNDLE,
    PENDING,
    RECONCILE_SOURCE,
    RUN_IN_PROGRESS,
    SUPERSEDED,
    UNFINISHED_RUN,
    LiveChange,
    RunRow,
    judge_change,
    judge_runs,
)
from migrate.reconcile_apply import select
from migrate.records import Decision
from migrate.synth import EndpointSpec, make_spec

T0 = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)

# The journal checks read columns both schema versions have: one test runs on both,
# the others on the current one, which keeps the suite fast.
LATEST = pytest.mark.parametrize("schema_version", ["2026"])


# Pure ------------------------------------------------------------------------------


def live(**kw: Any) -> LiveChange:
    base: dict[str, Any] = {
        "change_id": 1,
        "run_id": "run_a",
        "endpoint_id": "end_1",
        "endpoint_name": "chat",
        "bundle_before": "bun_old",
        "bundle_after": "bun_new",
        "changed_at": T0,
        "reverted": False,
        "endpoint_exists": True,
        "current_bundle_id": "bun_new",
        "model_name": "llama-3-8b",
        "eager_expected": False,
    }
    return LiveChange(**{**base, **kw})


def test_judge_change_each_case() -> None:
    assert judge_change(live()) is None
    assert judge_change(live(reverted=True, current_bundle_id="bun_old", eager_now=True)) is None
    assert judge_change(live(endpoint_exists=False)).kind == ENDPOINT_DELETED
    back = live(current_bundle_id="bun_old", eager_now=True, current_bundle_created_at=T0)
    found = judge_change(back)
    assert found.kind == FLAG_REVERTED and found.severity == "drift"
    assert "runs --enforce-eager again" in found.detail and found.run_id == "run_a"
    keep = parse_overrides('[keep-eager]\nendpoints = ["chat"]\n')
    assert judge_change(back, keep).kind == KEPT_BY_OVERRIDE
    later = T0 + timedelta(days=1)
    rebuilt = live(current_bundle_id="bun_x", eager_now=False, current_bundle_created_at=later)
    assert judge_change(rebuilt).kind == SUPERSEDED
    older = replace(rebuilt, current_bundle_created_at=T0 - timedelta(days=9))
    assert judge_change(older).kind == BUNDLE_MOVED
    # A legacy recreation after the run: newer bundle, flag back: still drift.
    assert judge_change(replace(rebuilt, eager_now=True)).kind == FLAG_REVERTED
    # Commands it cannot parse: moved is all it can say.
    assert judge_change(replace(rebuilt, eager_now=None)).kind == BUNDLE_MOVED


def run_row(run_id: str, status: str, minutes: int, **kw: Any) -> RunRow:
    return RunRow(run_id, kw.pop("kind", "apply"), status, T0 + timedelta(minutes=minutes), **kw)


def test_judge_runs() -> None:
    dead = run_row("r1", "running", 0, plan_digest="d1")
    assert [f.kind for f in judge_runs([dead], lock_held=False)] == [UNFINISHED_RUN]
    assert [f.kind for f in judge_runs([dead], lock_held=True)] == [RUN_IN_PROGRESS]
    stopped = run_row("r1", "interrupted", 0, plan_digest="d1")
    resumed = run_row("r2", "finished", 5, plan_digest="d1")
    other = run_row("r3", "finished", 6, plan_digest="d2")
    assert judge_runs([stopped, resumed], lock_held=False) == []
    resuming = replace(resumed, status="running")
    assert [f.kind for f in judge_runs([stopped, resuming], True)] == [RUN_IN_PROGRESS]
    assert [f.run_id for f in judge_runs([stopped, other], False)] == ["r1"]
    assert [
        f.run_id
        for f in judge_runs(
            [resumed, replace(stopped, started_at=T0 + timedelta(minutes=9))], False
        )
    ] == ["r1"]  # noqa: E501
    rec = {"plan_path": RECONCILE_SOURCE}
    a = run_row("r4", "interrupted", 0, plan_digest="x", options=rec)
    b = run_row("r5", "finished", 1, plan_digest="y", options=rec)
    assert judge_runs([a, b], False) == []
    rb = run_row("r6", "interrupted", 0, kind="rollback", plan_digest=None, options={"run": "r1"})
    rb2 = run_row("r7", "finished", 1, kind="rollback", plan_digest=None, options={"run": "r1"})
    assert judge_runs([rb, rb2], False) == []


def decision(
    name: str, *, status: str = "READY", size: int | None = 8, flags: Any = ()
) -> Decision:
    return Decision(
        endpoint_id="end_" + name,
        endpoint_name=name,
        owner="o",
        model_name="llama-3-8b",
        param_count_b=size,
        bundle_id="bun_" + name,
        endpoint_status=status,
        gpu_memory_utilization=0.9,
        eager_now=True,
        eager_after=False,
        action="drop-eager",
        reason="r",
        flags=list(flags),
    )


def test_select_holds_back_not_ready_and_large() -> None:
    pending = [
        decision("b"),
        decision("a"),
        decision("big", size=70),
        decision("busy", status="UPDATE_PENDING"),
        decision("mn", flags=["multinode"]),
    ]
    chosen, held = select(pending, 1)
    assert [d.endpoint_name for d in chosen] == ["a"]
    assert sorted(d.endpoint_name for d, _ in held) == ["big", "busy", "mn"]
    chosen, held = select(pending, 10, include_large=True)
    assert [d.endpoint_name for d in chosen] == ["a", "b", "mn", "big"]  # risky last, small first
    assert [d.endpoint_name for d, _ in held] == ["busy"]
    chosen, _ = select(pending, 2, first={"end_b"})
    assert [d.endpoint_name for d in chosen] == ["b", "a"]  # reverted ones first


# Against PostgreSQL ---------------------------------------------------------------------


def drop_specs(n: int, version: str = "2026") -> list[EndpointSpec]:
    gens = "CEF"
    return [
        make_spec(
            gens[i % 3],
            provenance="injected",
            seed=100 + i,
            index=i,
            schema_version=version,
            status="READY",
        )
        for i in range(n)
    ]


def clean_specs(version: str = "2026") -> list[EndpointSpec]:
    return [
        make_spec("H", provenance="none", seed=200, index=50, schema_version=version),
        make_spec(
            "E",
            provenance="injected",
            model_name="llama-3-1-70b-instruct",
            seed=201,
            index=51,
            schema_version=version,
        ),
        make_spec("E", framework="sglang", seed=202, index=52, schema_version=version),
    ]


def reconcile(me_db: Any, *args: str, url: str | None = None) -> Result:
    env = {"BUNDLE_MIGRATE_DATABASE_URL": url or me_db.url}
    return CliRunner().invoke(main, ["reconcile", *args], env=env, catch_exceptions=False)


def report(me_db: Any, *args: str) -> tuple[int, dict[str, Any]]:
    result = reconcile(me_db, "--format", "json", *args)
    assert result.exit_code in (0, 2), result.output
    return result.exit_code, json.loads(result.stdout)


def kinds(doc: dict[str, Any]) -> set[str]:
    return {f["kind"] for f in doc["findings"]}


def sql(me_db: Any, text: str, **params: Any) -> Any:
    with me_db.engine.begin() as conn:
        return conn.execute(sa.text(text.replace("S.", f'"{me_db.schema}".')), params)


def migrated(me_db: Any, n: int = 2) -> list[dict[str, Any]]:
    """n endpoints seeded and migrated by a real apply; their applied journal rows."""
    seed(me_db, drop_specs(n, me_db.version))
    summary = apply(me_db, make_plan(me_db))
    assert summary.counts["applied"] == n
    return journal_rows(me_db, "outcome = 'applied'")


@LATEST
def test_clean_fleet_exits_0_and_pending_changes_exit_2(me_db: Any, schema_version: str) -> None:
    seed(me_db, clean_specs(me_db.version))
    code, doc = report(me_db)
    assert code == 0 and doc["status"] == "clean" and doc["findings"] == []
    assert doc["reconcile"]["journal"] is False and doc["scan"]["endpoints"] == 3
    table = reconcile(me_db)
    assert (
        table.exit_code == 0 and ": clean" in table.stdout and "journal: none yet" in table.stdout
    )

    seed(me_db, drop_specs(2, me_db.version))
    code, doc = report(me_db)
    assert code == 2 and doc["status"] == "drift" and doc["drift"] == 2
    assert kinds(doc) == {PENDING} and doc["counts"][PENDING] == 2
    assert all(f["action"] == "drop-eager" for f in doc["findings"])
    assert len(doc["next"]["endpoints"]) == 1 and doc["apply"] is None
    assert reconcile(me_db).exit_code == 2
    # Filters narrow the scan, as in scan.
    code, _ = report(me_db, "--name", "nothing-matches-*")
    assert code == 0


@LATEST
def test_a_fully_applied_fleet_is_clean(me_db: Any, schema_version: str) -> None:
    migrated(me_db, 3)
    code, doc = report(me_db)
    assert code == 0 and doc["reconcile"]["journal"] is True, doc["findings"]


@LATEST
def test_flag_reverted_outside_the_tool(me_db: Any, schema_version: str, tmp_path: Path) -> None:
    change = migrated(me_db)[0]
    # Someone points the endpoint back at its old (eager) bundle by hand.
    sql(
        me_db,
        "UPDATE S.endpoints SET current_bundle_id = :b WHERE id = :e",
        b=change["bundle_before"],
        e=change["endpoint_id"],
    )
    code, doc = report(me_db)
    assert code == 2 and kinds(doc) == {FLAG_REVERTED, PENDING}
    (f,) = [f for f in doc["findings"] if f["kind"] == FLAG_REVERTED]
    assert f["endpoint_id"] == change["endpoint_id"] and f["run_id"] == change["run_id"]
    # The operator decides the flag stays: an override acknowledges it.
    overrides = tmp_path / "overrides.toml"
    overrides.write_text(f'[keep-eager]\nendpoints = ["{change["endpoint_name"]}"]\n')
    code, doc = report(me_db, "--overrides", str(overrides))
    assert code == 0 and kinds(doc) == {KEPT_BY_OVERRIDE}


def copy_bundle(me_db: Any, source: str, new_id: str, created_at: datetime) -> None:
    with me_db.engine.begin() as conn:
        cols = [
            r[0]
            for r in conn.execute(
                sa.text(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = :s "
                    "AND table_name = 'bundles' AND column_name NOT IN ('id', 'created_at') "
                    "ORDER BY ordinal_position"
                ),
                {"s": me_db.schema},
            )
        ]
        names = ", ".join(f'"{c}"' for c in cols)
        conn.execute(
            sa.text(
                f'INSERT INTO "{me_db.schema}".bundles (id, created_at, {names}) '
                f'SELECT :new, :at, {names} FROM "{me_db.schema}".bundles WHERE id = :src'
            ),
            {"new": new_id, "at": created_at, "src": source},
        )


@LATEST
def test_bundle_moved_superseded_and_deleted(me_db: Any, schema_version: str) -> None:
    first, second = migrated(me_db)
    # An older copy of the migrated bundle: no model engine rebuild explains it.
    copy_bundle(me_db, first["bundle_after"], "bun_handmadecopy00000000", T0 - timedelta(days=400))
    sql(
        me_db,
        "UPDATE S.endpoints SET current_bundle_id = 'bun_handmadecopy00000000' WHERE id = :e",
        e=first["endpoint_id"],
    )
    code, doc = report(me_db)
    assert code == 2 and kinds(doc) == {BUNDLE_MOVED}
    assert "rollback of that run would refuse it" in doc["findings"][0]["detail"]
    # Model engine rebuilt it after the run, the flag as the run left it: a notice only.
    copy_bundle(me_db, first["bundle_after"], "bun_rebuiltbymodelengine", datetime.now(UTC))
    sql(
        me_db,
        "UPDATE S.endpoints SET current_bundle_id = 'bun_rebuiltbymodelengine' WHERE id = :e",
        e=first["endpoint_id"],
    )
    sql(me_db, "DELETE FROM S.endpoints WHERE id = :e", e=second["endpoint_id"])
    code, doc = report(me_db)
    assert code == 0 and kinds(doc) == {SUPERSEDED, ENDPOINT_DELETED}
    assert {f["severity"] for f in doc["findings"]} == {"notice"}


def test_missing_bundle(me_db: Any, schema_version: str) -> None:
    change = migrated(me_db, 1)[0]
    sql(
        me_db,
        "UPDATE S.endpoints SET current_bundle_id = :b WHERE id = :e",
        b=change["bundle_before"],
        e=change["endpoint_id"],
    )
    sql(me_db, "DELETE FROM S.bundles WHERE id = :b", b=change["bundle_after"])
    code, doc = report(me_db)
    assert code == 2 and MISSING_BUNDLE in kinds(doc)
    (f,) = [f for f in doc["findings"] if f["kind"] == MISSING_BUNDLE]
    assert f["bundle_id"] == change["bundle_after"]
    # The expected flag comes from the bundle before it when the written one is gone.
    assert FLAG_REVERTED in kinds(doc)


@LATEST
def test_unfinished_runs(me_db: Any, schema_version: str) -> None:
    seed(me_db, drop_specs(3, me_db.version))
    plan = make_plan(me_db, stages="3")

    def interrupt(step: str, conn: Any) -> None:
        if step == "locked":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        apply(me_db, plan, hook=interrupt)
    code, doc = report(me_db)
    assert code == 2 and UNFINISHED_RUN in kinds(doc)
    (f,) = [f for f in doc["findings"] if f["kind"] == UNFINISHED_RUN]
    assert "was interrupted" in f["detail"]
    # Resuming the same plan finishes its work: the interrupted run is resolved.
    apply(me_db, plan)
    code, doc = report(me_db)
    assert code == 0, doc["findings"]
    # A run marked running that nobody holds the lock for died (SIGKILL) ...
    sql(
        me_db,
        "UPDATE bundle_migration.runs SET status = 'running', finished_at = NULL "
        "WHERE run_id = (SELECT max(run_id) FROM bundle_migration.runs)",
    )
    code, doc = report(me_db)
    assert code == 2 and kinds(doc) == {UNFINISHED_RUN}
    assert any("died without finishing" in f["detail"] for f in doc["findings"])
    # ... unless the lock is held: then it is running right now, resuming the plan.
    with MigrationLock(me_db.engine, me_db.schema):
        code, doc = report(me_db)
    assert code == 0 and kinds(doc) == {RUN_IN_PROGRESS}


def applied_per_run(me_db: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in journal_rows(me_db, "outcome = 'applied'"):
        counts[row["run_id"]] = counts.get(row["run_id"], 0) + 1
    return counts


@LATEST
def test_apply_converges_never_more_than_max_changes(me_db: Any, schema_version: str) -> None:
    seed(me_db, drop_specs(5, me_db.version) + clean_specs(me_db.version))
    exits = []
    for _ in range(6):
        result = reconcile(me_db, "--apply", "--max-changes", "2", "--format", "json")
        exits.append(result.exit_code)
        doc = json.loads(result.stdout)
        assert doc["apply"]["applied"] <= 2
        if result.exit_code == 0:
            break
    assert exits == [2, 2, 0]
    per_run = applied_per_run(me_db)
    assert sorted(per_run.values()) == [1, 2, 2] and max(per_run.values()) <= 2
    with me_db.engine.connect() as conn:
        sources = conn.execute(
            sa.text("SELECT DISTINCT options ->> 'plan_path' FROM bundle_migration.runs")
        ).all()
    assert sources == [(RECONCILE_SOURCE,)]
    # Converged: another run changes nothing and writes no run row.
    result = reconcile(me_db, "--apply")
    assert result.exit_code == 0 and "apply: nothing eligible to change" in result.stdout
    assert len(applied_per_run(me_db)) == 3


@LATEST
def test_apply_default_is_one_and_repairs_a_reverted_endpoint(
    me_db: Any, schema_version: str
) -> None:
    change = migrated(me_db, 2)[0]
    sql(
        me_db,
        "UPDATE S.endpoints SET current_bundle_id = :b WHERE id = :e",
        b=change["bundle_before"],
        e=change["endpoint_id"],
    )
    result = reconcile(me_db, "--apply")
    assert result.exit_code == 0, result.stdout
    assert "1 endpoint(s) changed" in result.stdout
    latest = journal_rows(me_db, "outcome = 'applied'")[-1]
    assert latest["endpoint_id"] == change["endpoint_id"]
    assert latest["bundle_before"] == change["bundle_before"]


@LATEST
def test_apply_leaves_large_models_to_a_person(me_db: Any, schema_version: str) -> None:
    big = make_spec(
        "C",
        provenance="injected",
        model_name="llama-3-1-70b-instruct",
        seed=300,
        index=60,
        schema_version=me_db.version,
        status="READY",
        gpu_memory_utilization=Decimal("0.9"),
    )
    seed(me_db, [big])
    code, doc = report(me_db, "--apply")
    if not doc["findings"]:
        pytest.fail(f"the large endpoint should be pending: {doc['scan']}")
    assert code == 2 and doc["apply"]["applied"] == 0 and doc["next"]["held_back"] == 1
    code, doc = report(me_db, "--apply", "--include-large")
    assert code == 0 and doc["apply"]["applied"] == 1


@LATEST
def test_apply_while_another_run_holds_the_lock(me_db: Any, schema_version: str) -> None:
    seed(me_db, drop_specs(2, me_db.version))
    with MigrationLock(me_db.engine, me_db.schema):
        result = reconcile(me_db, "--apply", "--format", "json")
    assert result.exit_code == 2
    doc = json.loads(result.stdout)
    assert "another bundle-migrate apply or rollback is running" in doc["apply"]["skipped"]
    assert doc["apply"]["applied"] == 0 and doc["counts"][PENDING] == 2


@LATEST
def test_errors_exit_1(me_db: Any, schema_version: str) -> None:
    result = reconcile(me_db, "--threshold", "2")
    assert result.exit_code == 1 and "must be in (0, 1]" in result.stderr
    bad = me_db.url.rsplit("/", 1)[0] + "/no_such_database_here"
    result = reconcile(me_db, url=bad)
    assert result.exit_code == 1 and "bundle-migrate: error:" in result.stderr

"""reconcile's pure judgements and --apply's choice, on plain values."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from migrate.core.overrides import parse_overrides
from migrate.core.records import Decision
from migrate.reconcile.autoapply import select
from migrate.reconcile.findings import (
    BUNDLE_MOVED,
    ENDPOINT_DELETED,
    FLAG_REVERTED,
    KEPT_BY_OVERRIDE,
    OWNER_CHOSE_EAGER,
    PENDING,
    PENDING_NOT_READY,
    RECONCILE_SOURCE,
    ROLLED_BACK,
    RUN_IN_PROGRESS,
    SUPERSEDED,
    UNDEPLOYED,
    UNFINISHED_RUN,
    UNHEALTHY,
    LiveChange,
    RunRow,
    judge_change,
    judge_runs,
    owner_chose_eager,
    pending_findings,
)

T0 = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)


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


def test_a_change_whose_redeploy_never_finished_is_drift_unless_a_run_is_on_it() -> None:
    for state in ("written", "redeploy-requested"):
        found = judge_change(live(deploy_state=state))
        assert found is not None and found.kind == UNDEPLOYED and found.severity == "drift"
        assert f"stopped at {state}" in found.detail and "rerun the same apply" in found.detail
        assert judge_change(live(deploy_state=state), run_in_progress=True) is None
    unhealthy = judge_change(live(deploy_state="failed"), run_in_progress=True)
    assert unhealthy is not None and unhealthy.kind == UNHEALTHY
    # Healthy, or rows only (no redeploy asked for): nothing to say.
    assert judge_change(live(deploy_state="healthy")) is None
    assert judge_change(live(deploy_state=None)) is None
    # Model engine's recreation, asked for by the run, is the change holding.
    rebuilt = live(current_bundle_id="bun_me", deployed_bundle="bun_me", deploy_state="healthy")
    assert judge_change(rebuilt) is None


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


def test_an_owner_who_asks_for_eager_again_is_a_notice() -> None:
    back = live(current_bundle_id="bun_x", eager_now=True)
    chose = judge_change(back, owner_eager={"end_1"})
    assert chose.kind == OWNER_CHOSE_EAGER and chose.severity == "notice"
    assert judge_change(back, owner_eager={"end_other"}).kind == FLAG_REVERTED
    # Only the owner's own request counts: the policy keeping a recorded or a
    # hand-added flag, or wanting to drop it, leaves the flag coming back drift.
    owner = decision("a", action="keep-eager", provenance="explicit-true")
    assert owner_chose_eager(owner)
    for other in (
        decision("a", action="keep-eager", provenance="recorded"),
        decision("a", action="keep-eager", provenance="hand-added"),
        decision("a", action="drop-eager", provenance="explicit-true"),
    ):
        assert not owner_chose_eager(other)


def test_pending_findings_that_nobody_should_act_on_are_notices() -> None:
    back = live(reverted=True, reverted_run="run_undo")
    found = pending_findings(
        [decision("a"), decision("busy", status="UPDATE_PENDING"), decision("b"), decision("k")],
        {"end_b": replace(back, endpoint_id="end_b")},
    )
    by_name = {f.endpoint_name: f for f in found}
    assert set(by_name) == {"a", "busy", "b", "k"}
    assert by_name["a"].kind == PENDING and by_name["a"].severity == "drift"
    assert by_name["busy"].kind == PENDING_NOT_READY and by_name["busy"].severity == "notice"
    assert by_name["b"].kind == ROLLED_BACK and by_name["b"].severity == "notice"
    assert "run_undo" in by_name["b"].detail and "make a new plan" in by_name["b"].detail


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


def test_a_later_run_resolves_only_runs_of_its_own_kind() -> None:
    undo = run_row("r1", "interrupted", 0, kind="rollback", plan_digest="d1")
    redo = run_row("r2", "finished", 5, plan_digest="d1")
    # A finished apply of plan d1 does not finish an interrupted rollback of it ...
    (f,) = judge_runs([undo, redo], lock_held=False)
    assert f.run_id == "r1" and "rerun the same rollback command" in f.detail
    assert "reconcile --resolve-run r1" in f.detail
    # ... nor a finished rollback an interrupted apply.
    apply_run = replace(undo, kind="apply")
    assert [f.run_id for f in judge_runs([apply_run, replace(redo, kind="rollback")], False)] == [
        "r1"
    ]


def decision(
    name: str,
    *,
    status: str = "READY",
    size: int | None = 8,
    flags: Any = (),
    action: str = "drop-eager",
    provenance: str = "injected",
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
        eager_after=action != "drop-eager",
        action=action,
        reason="r",
        flags=list(flags),
        provenance=provenance,
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


def test_select_holds_back_rolled_back_and_rotates_failures() -> None:
    pending = [decision("a"), decision("b"), decision("c")]
    chosen, held = select(pending, 3, hold={"end_a": "rolled back by run_x"})
    assert [d.endpoint_name for d in chosen] == ["b", "c"]
    assert [(d.endpoint_name, why) for d, why in held] == [("a", "rolled back by run_x")]
    # An endpoint that failed goes after every other, the longest-failed first,
    # whatever its risk order or a revert would say.
    failed = {"end_a": T0 + timedelta(hours=1), "end_b": T0}
    chosen, _ = select(pending, 1, first={"end_a"}, failed=failed)
    assert [d.endpoint_name for d in chosen] == ["c"]
    chosen, _ = select(pending, 3, first={"end_a"}, failed=failed)
    assert [d.endpoint_name for d in chosen] == ["c", "b", "a"]

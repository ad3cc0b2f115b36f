"""The pure core of the rollout: xids, staging, the plan file, diffs, the ticket, pacing."""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from migrate import xid
from migrate.diff import args_diff, display_lines, unified
from migrate.identity import compare
from migrate.pacing import Pacer, Reporter
from migrate.plan import (
    LARGE_STAGE_NAME,
    PlanError,
    build_plan,
    parse_plan,
    parse_stages,
    to_json,
)
from migrate.records import Decision
from migrate.stages import StageTally, select_stages
from migrate.ticket import render_markdown

SCRIPT = (
    "s5cmd cp s3://m/* model_files;python -m vllm_server --model model_files "
    "--tensor-parallel-size 1 --port 5005 --gpu-memory-utilization 0.9 --enforce-eager"
)
IDENTITY = {"database": "llm", "host": "10.0.0.5", "port": 5432, "system_identifier": "7301"}


def decision(name: str, model: str = "llama-3-8b", size: int | None = 8, **kw: Any) -> Decision:
    defaults: dict[str, Any] = {
        "endpoint_id": f"end_{name}",
        "endpoint_name": name,
        "owner": "team",
        "model_name": model,
        "param_count_b": size,
        "bundle_id": f"bun_{name}",
        "endpoint_status": "READY",
        "gpu_memory_utilization": 0.9,
        "eager_now": True,
        "eager_after": False,
        "action": "drop-eager",
        "reason": "flag injected by the old rule",
        "command_after": SCRIPT.replace(" --enforce-eager", ""),
        "fingerprint": f"sha256:{name}",
        "basis_fingerprint": f"sha256:b{name}",
        "provenance": "injected",
    }
    defaults.update(kw)
    return Decision(**defaults)


def plan_of(decisions: list[Decision], **kw: Any):
    args: dict[str, Any] = {
        "created_at": "2026-07-01T00:00:00+00:00",
        "created_by": "alice",
        "tool_version": "0.1.0",
        "database": IDENTITY,
        "schema": "hosted_model_inference",
        "policy": {"threshold": "0.95", "recorded": "keep"},
        "filters": {},
        "overrides": None,
    }
    args.update(kw)
    return build_plan(decisions, **args)


# xid -----------------------------------------------------------------------------


def test_xid_has_model_engine_shape_and_decodes_back() -> None:
    before = int(time.time())
    value = xid.new_xid()
    assert re.fullmatch(r"[0-9a-v]{20}", value)
    parts = xid.decode(value)
    assert before <= parts.time <= int(time.time())
    assert parts.pid == __import__("os").getpid() & 0xFFFF
    assert xid.is_xid("cn4kq9q1f1fg00b0ds5g")  # an id model engine wrote
    assert xid.new_bundle_id().startswith("bun_") and len(xid.new_bundle_id()) == 24


def test_xids_are_unique_and_sort_by_time() -> None:
    many = [xid.new_xid() for _ in range(20000)]
    assert len(set(many)) == len(many)
    assert xid.new_xid(now=1_000) < xid.new_xid(now=2_000_000_000)
    assert not xid.is_xid("cn4kq9q1f1fg00b0ds5w")  # low bits of the last char set


# stages --------------------------------------------------------------------------


def test_parse_stages_accepts_counts_and_percentages() -> None:
    specs = parse_stages("1, 10%,50%,100%")
    assert [s.target(40) for s in specs] == [1, 4, 20, 40]
    assert [s.target(3) for s in specs] == [1, 1, 2, 3]
    assert [s.target(100) for s in parse_stages("1,5,20")] == [1, 5, 20]


@pytest.mark.parametrize("bad", ["", "1,,2", "0", "10%,5%", "5,2", "150%", "abc", "0%"])
def test_parse_stages_rejects_nonsense(bad: str) -> None:
    with pytest.raises(PlanError):
        parse_stages(bad)


def test_order_is_common_model_first_then_smaller_then_name_with_risky_last() -> None:
    ds = [
        decision("z-mistral", "mistral-7b", 7),
        decision("b-llama", "llama-3-8b", 8),
        decision("a-llama", "llama-3-8b", 8),
        decision("qwen-small", "qwen-2-1b", 1),
        decision("big", "llama-3-70b", 70, flags=["large-model-loses-eager"]),
        decision("unknown", "deepseek-v3", None, flags=["unknown-size-loses-eager"]),
        decision("multi", "llama-3-8b", 8, flags=["multinode"]),
        decision("kept", action="keep-eager", command_after=None),
    ]
    plan = plan_of(ds)
    order = [i.endpoint_name for i in plan.items]
    assert order[:4] == ["a-llama", "b-llama", "qwen-small", "z-mistral"]
    assert set(order[4:]) == {"big", "unknown", "multi"}
    assert [s.name for s in plan.stages][0] == "canary"
    assert plan.stages[0].endpoints == 1 and plan.items[0].stage == 1
    assert plan.stages[-1].name == LARGE_STAGE_NAME and plan.stages[-1].endpoints == 3
    assert "kept" not in order  # only drop-eager and add-eager are planned
    assert plan.summary["actions"]["keep-eager"] == 1


def test_stages_are_cumulative_and_nothing_is_left_out() -> None:
    ds = [decision(f"e{i:02d}") for i in range(20)]
    plan = plan_of(ds, stage_spec="1,10%,50%")
    assert [(s.name, s.endpoints) for s in plan.stages] == [
        ("canary", 1),
        ("10%", 1),
        ("50%", 8),
        ("rest", 10),
    ]
    assert sorted(i.stage for i in plan.items) == [i.stage for i in plan.items]


def test_exclude_large_leaves_large_and_flagged_out_but_says_so() -> None:
    ds = [decision("small"), decision("big", "llama-3-70b", 70)]
    plan = plan_of(ds, exclude_large=True)
    assert [i.endpoint_name for i in plan.items] == ["small"]
    assert plan.excluded[0]["endpoint_name"] == "big"
    assert plan.summary["excluded"] == 1


# the plan file -------------------------------------------------------------------


def test_plan_file_round_trips_and_verifies() -> None:
    plan = plan_of([decision("a"), decision("b", args_after={"max_model_len": 4096})])
    text = to_json(plan)
    doc = json.loads(text)
    assert doc["format"] == "bundle-migrate-plan" and doc["version"] == 1
    assert doc["digest"].startswith("sha256:")
    again = parse_plan(text)
    assert again == plan
    assert to_json(again) == text


def test_an_edited_plan_is_refused() -> None:
    doc = json.loads(to_json(plan_of([decision("a")])))
    doc["items"][0]["command_after"] += " --evil"
    with pytest.raises(PlanError, match="digest"):
        parse_plan(json.dumps(doc))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not JSON"),
        ('{"format": "other"}', "not a bundle-migrate plan"),
        ('{"format": "bundle-migrate-plan", "version": 9}', "version 9"),
        ('{"format": "bundle-migrate-plan", "version": 1}', "no digest"),
    ],
)
def test_malformed_plans_are_named(text: str, message: str) -> None:
    with pytest.raises(PlanError, match=message):
        parse_plan(text)


def test_a_damaged_but_rehashed_plan_is_still_checked() -> None:
    from migrate.plan import compute_digest

    doc = json.loads(to_json(plan_of([decision("a")])))
    del doc["digest"]
    doc["items"][0]["action"] = "keep-eager"
    doc["digest"] = compute_digest(doc)
    with pytest.raises(PlanError, match="changes nothing"):
        parse_plan(json.dumps(doc))


def test_identity_names_what_differs() -> None:
    same = compare(IDENTITY, dict(IDENTITY))
    assert same.refusals == [] and same.notes == []
    other = compare(IDENTITY, {**IDENTITY, "system_identifier": "999"})
    assert "system identifier" in other.refusals[0]
    assert "database name" in compare(IDENTITY, {**IDENTITY, "database": "x"}).refusals[0]
    unknown = {**IDENTITY, "system_identifier": None, "port": 6543}
    assert compare(IDENTITY, unknown).refusals == [
        "server address: plan 10.0.0.5:5432, here 10.0.0.5:6543"
    ]


def test_a_physical_clone_is_refused_unless_the_operator_says_failover() -> None:
    # A clone (restored backup, promoted replica) has the same name and cluster identifier.
    clone = {**IDENTITY, "host": "10.9.9.9"}
    check = compare(IDENTITY, clone)
    assert len(check.refusals) == 1 and "--allow-other-address" in check.refusals[0]
    assert "plan 10.0.0.5:5432, here 10.9.9.9:5432" in check.refusals[0]
    assert check.notes == [
        "server address: the plan saw 10.0.0.5:5432, this connection reaches 10.9.9.9:5432"
    ]
    assert compare(IDENTITY, {**IDENTITY, "port": 6432}).refusals  # port alone differs
    failover = compare(IDENTITY, clone, allow_other_address=True)
    assert failover.refusals == []
    assert "the plan saw 10.0.0.5:5432" in failover.notes[0]
    assert "--allow-other-address" in failover.notes[1]
    # One side without an address (a local socket): nothing to compare, but it is said.
    local = compare(IDENTITY, {**IDENTITY, "host": None, "port": None})
    assert local.refusals == [] and "a local socket" in local.notes[0]
    # Without the identifier the address is the only evidence: the flag cannot waive it.
    blind = {**IDENTITY, "system_identifier": None}
    refused = compare(blind, {**blind, "host": "10.9.9.9"}, allow_other_address=True)
    assert "cannot read it" in refused.refusals[0]


# stage selection and pacing ------------------------------------------------------


def test_default_stage_is_the_first_incomplete_one_never_all() -> None:
    plan = plan_of([decision(f"e{i}") for i in range(10)], stage_spec="1,50%,100%")
    ids = [i.endpoint_id for i in plan.items]
    assert select_stages(plan, {}, None, False)[0] == [1]
    done = {ids[0]: "applied"}
    assert select_stages(plan, done, None, False)[0] == [2]
    busy = {ids[0]: "skipped-busy"}  # busy is retried: stage 1 is not complete
    assert select_stages(plan, busy, None, False)[0] == [1]
    assert select_stages(plan, done, None, True)[0] == [2, 3]
    stages, notes = select_stages(plan, {}, 3, False)
    assert stages == [3] and "not complete" in notes[0]
    everything = {i: "skipped-drifted" for i in ids}
    assert select_stages(plan, everything, None, True) == (
        [],
        ["every stage of this plan is complete; nothing to do"],
    )


def test_a_stage_is_complete_only_when_nothing_is_left_to_retry() -> None:
    tally = StageTally(1, max_failures=1)
    for outcome in ("applied", "skipped-drifted", "skipped-already-applied"):
        assert tally.add(outcome) is None
    assert tally.incomplete(2) is None
    for outcome in ("skipped-busy", "skipped-not-ready", "skipped-not-ready"):
        assert tally.add(outcome) is None
    assert tally.incomplete(2) == (
        "stage 1 incomplete (1 busy, 2 not ready): rerun to continue; "
        "stage 2 was not started (--stage 2 starts it regardless)"
    )
    assert tally.add("failed") is None  # within --max-failures: the stage goes on
    assert "1 failed" in (tally.incomplete(None) or "")
    assert tally.add("failed") == "stopped in stage 1: 2 failure(s), more than --max-failures 1"
    # A dry run's would-apply is the real run's applied.
    preview = StageTally(3, max_failures=0)
    preview.add("would-apply")
    assert preview.incomplete(4) is None


def test_pacer_throttles_and_waits_while_the_pause_file_exists(tmp_path: Path) -> None:
    now = [100.0]
    slept: list[float] = []
    pause = tmp_path / "pause"
    pause.touch()

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds
        if len(slept) == 3:
            pause.unlink()

    events: list[str] = []

    class Collect(Reporter):
        def paused(self, path: Path) -> None:
            events.append("paused")

        def resumed(self) -> None:
            events.append("resumed")

    pacer = Pacer(max_per_minute=30, pause_file=pause, clock=lambda: now[0], sleep=sleep)
    pacer.wait_while_paused(Collect())
    assert events == ["paused", "resumed"] and len(slept) == 3
    slept.clear()
    pacer.throttle()
    assert slept == []
    now[0] += 0.5
    pacer.throttle()
    assert slept == [pytest.approx(1.5)]


# diffs and the ticket ------------------------------------------------------------


def test_diff_shows_only_the_flag() -> None:
    after = SCRIPT.replace(" --enforce-eager", "")
    text = unified(SCRIPT, after, label_before="bun_a", label_after="(new)")
    changed = [
        line for line in text.splitlines() if line[:1] in "+-" and line[:3] not in ("---", "+++")
    ]
    assert changed == ["-    --enforce-eager"]
    assert unified(SCRIPT, SCRIPT, label_before="a", label_after="b") == ""
    assert "".join(display_lines(SCRIPT)).replace("    --", " --") == SCRIPT
    assert '-  "enforce_eager": true' in args_diff({"enforce_eager": True, "x": 1}, {"x": 1})


def test_markdown_ticket_lists_stages_risks_and_exact_commands() -> None:
    plan = plan_of(
        [decision("a"), decision("big", "llama-3-70b", 70, flags=["large-model-loses-eager"])]
    )
    text = render_markdown(plan, "plans/fleet plan.json")
    assert text == render_markdown(plan, "plans/fleet plan.json")
    assert f"`{plan.short_digest}`" in text
    assert "### Stage 1: canary (1 endpoint(s))" in text
    assert "bundle-migrate apply 'plans/fleet plan.json' --stage 2 --execute" in text
    assert "bundle-migrate rollback --plan 'plans/fleet plan.json' --stage 1 --execute" in text
    assert "`big` (stage 2, llama-3-70b, 70B): large-model-loses-eager" in text
    assert "does not restart any pod" in text


def test_plan_items_keep_everything_apply_needs() -> None:
    d = decision("a", streaming_command_after="x", args_after={"k": 1}, flags=["recorded-eager"])
    item = plan_of([d]).items[0]
    assert item.to_dict() == {
        **{
            k: getattr(d, k)
            for k in ("endpoint_id", "endpoint_name", "model_name", "param_count_b")
        },
        "bundle_id": d.bundle_id,
        "fingerprint": d.fingerprint,
        "basis_fingerprint": d.basis_fingerprint,
        "action": "drop-eager",
        "reason": d.reason,
        "flags": ["recorded-eager"],
        "provenance": "injected",
        "stage": 1,
        "command_after": d.command_after,
        "streaming_command_after": "x",
        "args_after": {"k": 1},
    }
    assert replace(item, action="add-eager").eager_after


def test_fingerprint_does_not_depend_on_the_session_time_zone() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    from migrate.fingerprint import endpoint_fingerprint
    from migrate.records import EndpointRecord

    instant = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    berlin = instant.astimezone(timezone(timedelta(hours=2)))

    def record(at: datetime) -> EndpointRecord:
        return EndpointRecord("end_1", "e", "o", "READY", "sync", {}, "bun_1", None, None, at)

    # A plan made with PGTZ=Europe/Berlin and an apply run in UTC see one instant.
    assert endpoint_fingerprint(record(instant)) == endpoint_fingerprint(record(berlin))
    assert endpoint_fingerprint(record(instant)) != endpoint_fingerprint(
        record(instant + timedelta(seconds=1))
    )

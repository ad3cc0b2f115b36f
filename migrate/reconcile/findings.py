"""What reconciliation can find, and how it judges each piece of evidence. Pure.

Findings are `drift` (exit 2, alert) or `notice` (reported, no alert): a
finding that nobody can or should act on, such as an endpoint its owner
deleted, must not page anyone forever. The records judged here are fetched by
migrate.reconcile.queries; the judging is tested on plain values.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from migrate.core.classify import KEEP_EAGER
from migrate.core.overrides import KEEP, Overrides
from migrate.core.policy import EXPLICIT_TRUE
from migrate.core.records import Decision
from migrate.core.summary import Summary

# Written into runs.options.plan_path of the runs reconcile --apply makes, so a
# later reconcile run can tell its own (planless) runs apart.
RECONCILE_SOURCE = "(reconcile --apply)"


@dataclass(frozen=True)
class LiveChange:
    """An endpoint's latest applied change, next to what the endpoint runs now."""

    change_id: int
    run_id: str
    endpoint_id: str
    endpoint_name: str
    bundle_before: str | None
    bundle_after: str
    changed_at: datetime
    reverted: bool
    endpoint_exists: bool
    current_bundle_id: str | None = None
    model_name: str | None = None
    current_bundle_created_at: datetime | None = None
    eager_now: bool | None = None
    # What the change left the endpoint with; from the bundle it wrote, or, if that
    # bundle is gone, the opposite of the one before (a change toggles only the flag).
    eager_expected: bool | None = None
    reverted_run: str | None = None  # the rollback run that reverted it
    # Where its redeploy stands (None: written rows only); the bundle model engine
    # built for it when the run asked for a recreation.
    deploy_state: str | None = None
    deployed_bundle: str | None = None


@dataclass(frozen=True)
class RunRow:
    run_id: str
    kind: str
    status: str
    started_at: datetime
    plan_digest: str | None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def reconcile(self) -> bool:
        return self.options.get("plan_path") == RECONCILE_SOURCE

    @property
    def target(self) -> str | None:
        """What a later run of the same kind must share with this one to have done its work."""
        if self.reconcile:
            return RECONCILE_SOURCE  # each reconcile plan is new; any later one rescans
        if self.plan_digest:
            return self.plan_digest
        run = self.options.get("run")
        return f"run:{run}" if run else None


DRIFT, NOTICE = "drift", "notice"
PENDING = "pending-change"
FLAG_REVERTED = "flag-reverted"
BUNDLE_MOVED = "bundle-moved"
UNFINISHED_RUN = "unfinished-run"
MISSING_BUNDLE = "missing-bundle"
SUPERSEDED = "superseded"
ENDPOINT_DELETED = "endpoint-deleted"
KEPT_BY_OVERRIDE = "kept-by-override"
RUN_IN_PROGRESS = "run-in-progress"
MISSING_OLD_BUNDLE = "missing-old-bundle"
ROLLED_BACK = "rolled-back-by-operator"
OWNER_CHOSE_EAGER = "owner-chose-eager"
PENDING_NOT_READY = "pending-not-ready"
UNDEPLOYED = "undeployed-change"
UNHEALTHY = "unhealthy-change"
SEVERITY = {
    PENDING: DRIFT,
    FLAG_REVERTED: DRIFT,
    BUNDLE_MOVED: DRIFT,
    UNFINISHED_RUN: DRIFT,
    MISSING_BUNDLE: DRIFT,
    SUPERSEDED: NOTICE,
    ENDPOINT_DELETED: NOTICE,
    KEPT_BY_OVERRIDE: NOTICE,
    RUN_IN_PROGRESS: NOTICE,
    MISSING_OLD_BUNDLE: NOTICE,
    ROLLED_BACK: NOTICE,
    OWNER_CHOSE_EAGER: NOTICE,
    PENDING_NOT_READY: NOTICE,
    UNDEPLOYED: DRIFT,
    UNHEALTHY: DRIFT,
}
KINDS = tuple(SEVERITY)
# "stopped" (journal 002): ended early on purpose; the run is over all the same.
ENDED = ("finished", "failed", "stopped")


@dataclass(frozen=True)
class Finding:
    kind: str
    detail: str
    endpoint_id: str | None = None
    endpoint_name: str | None = None
    run_id: str | None = None
    bundle_id: str | None = None
    action: str | None = None

    @property
    def severity(self) -> str:
        return SEVERITY[self.kind]

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "severity": self.severity,
            "endpoint_id": self.endpoint_id,
            "endpoint_name": self.endpoint_name,
            "run_id": self.run_id,
            "bundle_id": self.bundle_id,
            "action": self.action,
            "detail": self.detail,
        }


def _flag(on: bool | None) -> str:
    return "runs --enforce-eager" if on else "runs without --enforce-eager"


def judge_change(
    change: LiveChange,
    overrides: Overrides | None = None,
    owner_eager: Collection[str] = (),
    run_in_progress: bool = False,
) -> Finding | None:
    """The finding for one endpoint's latest applied change, or None when it still holds.

    `owner_eager`: endpoints the scan keeps eager because their owner asked for it
    (provenance explicit-true); their flag coming back is the owner's choice.
    `run_in_progress`: a run holds the lock, so a redeploy under way is its work.
    """
    base = {
        "endpoint_id": change.endpoint_id,
        "endpoint_name": change.endpoint_name,
        "run_id": change.run_id,
    }
    if change.reverted:
        return None  # rolled back on purpose: pending_findings says what that means now
    if not change.endpoint_exists:
        return Finding(ENDPOINT_DELETED, "the endpoint was deleted after the run", **base)
    if change.current_bundle_id in (change.bundle_after, change.deployed_bundle):
        return _deploy_finding(change, run_in_progress, base)
    now, expected = change.eager_now, change.eager_expected
    moved = f"it runs {change.current_bundle_id}, the run gave it {change.bundle_after}"
    if now is not None and expected is not None and now != expected:
        if now and overrides is not None:
            match = overrides.match(change.endpoint_name, change.model_name)
            if match is not None and match[0] == KEEP:
                return Finding(
                    KEPT_BY_OVERRIDE,
                    f"{_flag(now)} again; accepted by [{KEEP}] {match[1]}",
                    bundle_id=change.current_bundle_id,
                    **base,
                )
        if now and change.endpoint_id in owner_eager:
            return Finding(
                OWNER_CHOSE_EAGER,
                f"{_flag(now)} again: its owner asked for it (enforce_eager: true in its "
                f"args) and the policy keeps it ({moved})",
                bundle_id=change.current_bundle_id,
                **base,
            )
        return Finding(
            FLAG_REVERTED,
            f"{_flag(now)} again: {moved}",
            bundle_id=change.current_bundle_id,
            **base,
        )
    created = change.current_bundle_created_at
    if created is not None and created > change.changed_at and now is not None and now == expected:
        # Model engine rebuilt it since (an update through its API) and the flag is right.
        return Finding(
            SUPERSEDED,
            f"rebuilt since the run ({moved}); {_flag(now)} as the run left it",
            bundle_id=change.current_bundle_id,
            **base,
        )
    return Finding(
        BUNDLE_MOVED,
        f"{moved}; a rollback of that run would refuse it without --force",
        bundle_id=change.current_bundle_id,
        **base,
    )


def _deploy_finding(
    change: LiveChange, run_in_progress: bool, base: dict[str, Any]
) -> Finding | None:
    """A change the endpoint still holds, but whose redeploy never reached health."""
    state = change.deploy_state
    if state in ("written", "redeploy-requested") and not run_in_progress:
        return Finding(
            UNDEPLOYED,
            f"written by {change.run_id} but its redeploy stopped at {state}: the pods may "
            "still run the old command; rerun the same apply to finish it",
            bundle_id=change.current_bundle_id,
            **base,
        )
    if state == "failed":
        return Finding(
            UNHEALTHY,
            f"redeployed by {change.run_id} and not healthy (--on-failure stop left it): "
            "roll it back, or fix it and rerun the apply",
            bundle_id=change.current_bundle_id,
            **base,
        )
    return None


def _unfinished_advice(run: RunRow) -> str:
    if run.reconcile:
        return (
            "the next reconcile --apply continues its work and resolves it, or closes it "
            "when nothing is left to change"
        )
    return (
        f"rerun the same {run.kind} command to resume it (with nothing left to do, it closes "
        f"the run); if nobody will resume it, `reconcile --resolve-run {run.run_id}`"
    )


def judge_runs(runs: Iterable[RunRow], lock_held: bool) -> list[Finding]:
    """Runs that never finished, unless a later run of the same kind and work ended since.

    The kind matters: a finished apply of a plan does not finish an interrupted
    rollback of that plan, nor the other way round.
    """
    rows = sorted(runs, key=lambda r: (r.started_at, r.run_id))
    findings = []
    for i, run in enumerate(rows):
        if run.status == "running" and lock_held:
            findings.append(Finding(RUN_IN_PROGRESS, "running now", run_id=run.run_id))
            continue
        if run.status not in ("running", "interrupted"):
            continue
        # A later run of the same work that ended, or is resuming it right now.
        done = ENDED + (("running",) if lock_held else ())
        if run.target and any(
            r.kind == run.kind and r.target == run.target and r.status in done
            for r in rows[i + 1 :]
        ):
            continue
        how = "died without finishing" if run.status == "running" else "was interrupted"
        what = "reconcile --apply" if run.reconcile else run.kind
        findings.append(
            Finding(
                UNFINISHED_RUN,
                f"{what} run started {run.started_at:%Y-%m-%d %H:%M:%S %Z} {how}; "
                + _unfinished_advice(run),
                run_id=run.run_id,
            )
        )
    return findings


def pending_findings(
    decisions: Iterable[Decision], rolled_back: Mapping[str, LiveChange] | None = None
) -> list[Finding]:
    """The scan's pending changes: drift, unless nobody should act on them now.

    An endpoint whose latest applied change an operator rolled back stays as the
    rollback left it (reconcile --apply holds it back, as apply skips it for that
    plan); one that is not READY waits for model engine, not for a person.
    """
    rolled_back = rolled_back or {}
    findings = []
    for d in decisions:
        if not d.changes:
            continue
        detail = d.reason + (f" [{', '.join(d.flags)}]" if d.flags else "")
        kind = PENDING
        back = rolled_back.get(d.endpoint_id)
        if back is not None:
            kind = ROLLED_BACK
            detail = (
                f"rolled back by run {back.reverted_run or '?'} (undoing {back.run_id}); "
                "reconcile --apply leaves it: make a new plan to apply it again, or add it "
                f"to [{KEEP}] in the overrides file to keep eager. {detail}"
            )
        elif d.endpoint_status != "READY":
            kind = PENDING_NOT_READY
            detail = f"status {d.endpoint_status}: waits until it is READY. {detail}"
        findings.append(
            Finding(
                kind,
                detail,
                endpoint_id=d.endpoint_id,
                endpoint_name=d.endpoint_name,
                bundle_id=d.bundle_id,
                action=d.action,
            )
        )
    return findings


def owner_chose_eager(d: Decision) -> bool:
    """The policy keeps eager because the owner asked for it, not a recorded or hand-added flag."""
    return d.action == KEEP_EAGER and d.provenance == EXPLICIT_TRUE


@dataclass
class Check:
    """One reconciliation pass: what the scan and the journal say."""

    summary: Summary
    findings: list[Finding]
    pending: list[Decision]
    journal: bool
    # What reconcile --apply must not pick, and why (rolled back by an operator).
    held: dict[str, str] = field(default_factory=dict)
    # Endpoints whose latest apply attempt failed, and when: they go last.
    failed_at: dict[str, datetime] = field(default_factory=dict)
    # Interrupted reconcile --apply runs nothing has resolved yet.
    unfinished_reconcile: list[str] = field(default_factory=list)

    @property
    def drift(self) -> int:
        return sum(1 for f in self.findings if f.severity == DRIFT)

    def reverted_ids(self) -> set[str]:
        return {f.endpoint_id for f in self.findings if f.kind == FLAG_REVERTED and f.endpoint_id}

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(KINDS, 0)
        for f in self.findings:
            counts[f.kind] += 1
        return counts

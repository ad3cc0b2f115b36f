"""Reconciliation: is the fleet still on the new rule, and does the journal still hold?

Two sources, each read in one READ ONLY snapshot:

- the scan: every endpoint whose command the policy would still change is
  drift (`pending-change`): created by an old code path, rolled back by hand,
  or not yet reached by the rollout;
- the journal (migrate.reconcile_query): for each endpoint's latest applied
  (not rolled back) change, whether the endpoint still runs what the change
  left it with; runs that never finished; bundles the journal says a run
  created that are gone.

The judging is pure (`judge_change`, `judge_runs`, `pending_findings`) and tested
on plain values; the queries only fetch. Findings are `drift` (exit 2, alert)
or `notice` (reported, no alert): a finding that nobody can or should act on,
such as an endpoint its owner deleted, must not page anyone forever.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection, Engine

from migrate import fleet
from migrate import journal as jr
from migrate.classify import KEEP_EAGER
from migrate.db import read_only
from migrate.lock import holder
from migrate.overrides import KEEP, Overrides
from migrate.policy import EXPLICIT_TRUE, PolicyParams
from migrate.reconcile_query import (
    RECONCILE_SOURCE,
    LiveChange,
    RunRow,
    failed_applies,
    live_changes,
    missing_bundles,
    open_runs,
)
from migrate.records import Decision
from migrate.scan import Summary, scan

__all__ = ["RECONCILE_SOURCE", "LiveChange", "RunRow"]  # re-exported for callers and tests

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
) -> Finding | None:
    """The finding for one endpoint's latest applied change, or None when it still holds.

    `owner_eager`: endpoints the scan keeps eager because their owner asked for it
    (provenance explicit-true); their flag coming back is the owner's choice.
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
    if change.current_bundle_id == change.bundle_after:
        return None
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


@dataclass
class JournalView:
    """What the journal says, in one snapshot."""

    present: bool = False
    findings: list[Finding] = field(default_factory=list)
    rolled_back: dict[str, LiveChange] = field(default_factory=dict)
    failed_at: dict[str, datetime] = field(default_factory=dict)
    unfinished_reconcile: list[str] = field(default_factory=list)


def journal_findings(
    conn: Connection,
    schema: str,
    overrides: Overrides | None = None,
    owner_eager: Collection[str] = (),
) -> JournalView:
    """The journal's findings on `schema`, in the caller's snapshot."""
    view = JournalView()
    if not jr.exists(conn):
        return view
    view.present = True
    for change in live_changes(conn, schema):
        if change.reverted:
            view.rolled_back[change.endpoint_id] = change
        elif finding := judge_change(change, overrides, owner_eager):
            view.findings.append(finding)
    for r in missing_bundles(conn, schema):
        view.findings.append(
            Finding(
                MISSING_BUNDLE if r["live"] else MISSING_OLD_BUNDLE,
                f"bundle {r['bundle_after']} written by the run no longer exists"
                + ("" if r["live"] else " (an older or rolled-back change)"),
                endpoint_id=r["endpoint_id"],
                endpoint_name=r["endpoint_name"],
                run_id=r["run_id"],
                bundle_id=r["bundle_after"],
            )
        )
    runs = open_runs(conn, schema)
    unfinished = judge_runs(runs, lock_held=holder(conn, schema) is not None)
    view.findings += unfinished
    ours = {r.run_id for r in runs if r.reconcile}
    view.unfinished_reconcile = [
        f.run_id for f in unfinished if f.kind == UNFINISHED_RUN and f.run_id in ours
    ]
    view.failed_at = failed_applies(conn, schema)
    return view


def check(
    engine: Engine,
    *,
    schema: str,
    filters: fleet.Filters | None = None,
    params: PolicyParams | None = None,
    overrides: Overrides | None = None,
    statement_timeout_s: int = 60,
) -> Check:
    """Scan and journal checks; read-only. Filters narrow the scan, not the journal.

    (An endpoint the filters leave out has no decision, so its flag coming back
    reads as flag-reverted even where its owner asked for eager.)
    """
    summary = Summary()
    pending: list[Decision] = []
    owner_eager: set[str] = set()
    for d in scan(
        engine,
        schema=schema,
        filters=filters,
        params=params,
        overrides=overrides,
        statement_timeout_s=statement_timeout_s,
    ):
        summary.add(d)
        if d.changes:
            pending.append(d)
        elif owner_chose_eager(d):
            owner_eager.add(d.endpoint_id)
    with read_only(engine, statement_timeout_s) as conn:
        view = journal_findings(conn, schema, overrides, owner_eager)
    findings = pending_findings(pending, view.rolled_back) + view.findings
    held = {f.endpoint_id: f.detail for f in findings if f.kind == ROLLED_BACK and f.endpoint_id}
    return Check(
        summary, findings, pending, view.present, held, view.failed_at, view.unfinished_reconcile
    )

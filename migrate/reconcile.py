"""Reconciliation: is the fleet still on the new rule, and does the journal still hold?

Two sources, each read in one READ ONLY snapshot:

- the scan: every endpoint whose command the policy would still change is
  drift (`pending-change`): created by an old code path, rolled back, or not
  yet reached by the rollout;
- the journal: for each endpoint's latest applied (not rolled back) change,
  whether the endpoint still runs what the change left it with; runs that never
  finished; bundles the journal says a run created that are gone.

The judging is pure (`judge_change`, `judge_runs`, `pending_findings`) and tested
on plain values; the queries only fetch. Findings are `drift` (exit 2, alert)
or `notice` (reported, no alert): a finding that nobody can or should act on,
such as an endpoint its owner deleted, must not page anyone forever.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from migrate import command as cmd
from migrate import fleet
from migrate import journal as jr
from migrate.db import read_only
from migrate.lock import holder
from migrate.overrides import KEEP, Overrides
from migrate.policy import PolicyParams
from migrate.records import Decision
from migrate.rows import qident
from migrate.scan import Summary, scan

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
}
KINDS = tuple(SEVERITY)
# Written into runs.options.plan_path of the runs reconcile --apply makes, so a
# later reconcile run can tell its own (planless) runs apart.
RECONCILE_SOURCE = "(reconcile --apply)"
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


@dataclass(frozen=True)
class RunRow:
    run_id: str
    kind: str
    status: str
    started_at: datetime
    plan_digest: str | None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def target(self) -> str | None:
        """What a later run must share with this one to have finished its work."""
        if self.options.get("plan_path") == RECONCILE_SOURCE:
            return RECONCILE_SOURCE  # each reconcile plan is new; any later one rescans
        if self.plan_digest:
            return self.plan_digest
        run = self.options.get("run")
        return f"run:{run}" if run else None


def _flag(on: bool | None) -> str:
    return "runs --enforce-eager" if on else "runs without --enforce-eager"


def judge_change(change: LiveChange, overrides: Overrides | None = None) -> Finding | None:
    """The finding for one endpoint's latest applied change, or None when it still holds."""
    base = {
        "endpoint_id": change.endpoint_id,
        "endpoint_name": change.endpoint_name,
        "run_id": change.run_id,
    }
    if change.reverted:
        return None  # rolled back on purpose; the scan reports it if it still needs changing
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


def judge_runs(runs: Iterable[RunRow], lock_held: bool) -> list[Finding]:
    """Runs that never finished, unless a later run of the same work ended since."""
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
        if run.target and any(r.target == run.target and r.status in done for r in rows[i + 1 :]):
            continue
        how = "died without finishing" if run.status == "running" else "was interrupted"
        findings.append(
            Finding(
                UNFINISHED_RUN,
                f"{run.kind} run started {run.started_at:%Y-%m-%d %H:%M:%S %Z} {how}; "
                "rerun the same command to resume it",
                run_id=run.run_id,
            )
        )
    return findings


def pending_findings(decisions: Iterable[Decision]) -> list[Finding]:
    return [
        Finding(
            PENDING,
            d.reason + (f" [{', '.join(d.flags)}]" if d.flags else ""),
            endpoint_id=d.endpoint_id,
            endpoint_name=d.endpoint_name,
            bundle_id=d.bundle_id,
            action=d.action,
        )
        for d in decisions
        if d.changes
    ]


def eager_of(command: Any) -> bool | None:
    if command is None:
        return None
    try:
        return cmd.parse_command(command).enforce_eager
    except cmd.CommandError:
        return None


# Queries ---------------------------------------------------------------------------

J = jr.SCHEMA


def live_changes(conn: Connection, schema: str) -> Iterator[LiveChange]:
    s = qident(schema)
    # Commands are fetched only where the endpoint moved: the usual row is small.
    moved = "e.current_bundle_id IS DISTINCT FROM c.bundle_after"
    query = sa.text(
        f"SELECT DISTINCT ON (c.endpoint_id) c.id, c.run_id, c.endpoint_id, c.endpoint_name, "
        f"c.bundle_before, c.bundle_after, c.created_at, c.reverted_by IS NOT NULL AS reverted, "
        f"e.id IS NOT NULL AS endpoint_exists, e.current_bundle_id, "
        f"CAST(e.endpoint_metadata AS jsonb) -> '_llm' ->> 'model_name' AS model_name, "
        f"cur.created_at AS current_created_at, "
        f"CASE WHEN {moved} THEN cur.runnable_image_command END AS current_command, "
        f"CASE WHEN {moved} THEN aft.runnable_image_command END AS after_command, "
        f"CASE WHEN {moved} THEN bef.runnable_image_command END AS before_command "
        f"FROM {J}.changes c "
        f"LEFT JOIN {s}.endpoints e ON e.id = c.endpoint_id "
        f"LEFT JOIN {s}.bundles cur ON cur.id = e.current_bundle_id "
        f"LEFT JOIN {s}.bundles aft ON aft.id = c.bundle_after "
        f"LEFT JOIN {s}.bundles bef ON bef.id = c.bundle_before "
        "WHERE c.kind = 'apply' AND c.outcome = 'applied' "
        "ORDER BY c.endpoint_id, c.id DESC"
    )
    result = conn.execution_options(stream_results=True, yield_per=500).execute(query)
    for r in result.mappings():
        expected = eager_of(r["after_command"])
        if expected is None and r["before_command"] is not None:
            before = eager_of(r["before_command"])
            expected = None if before is None else not before
        yield LiveChange(
            change_id=r["id"],
            run_id=r["run_id"],
            endpoint_id=r["endpoint_id"],
            endpoint_name=r["endpoint_name"],
            bundle_before=r["bundle_before"],
            bundle_after=r["bundle_after"],
            changed_at=r["created_at"],
            reverted=r["reverted"],
            endpoint_exists=r["endpoint_exists"],
            current_bundle_id=r["current_bundle_id"],
            model_name=r["model_name"],
            current_bundle_created_at=r["current_created_at"],
            eager_now=eager_of(r["current_command"]),
            eager_expected=expected,
        )


def missing_bundles(conn: Connection, schema: str) -> list[Finding]:
    """Bundles applied changes created that are gone (model engine never deletes any)."""
    rows = conn.execute(
        sa.text(
            f"SELECT c.run_id, c.endpoint_id, c.endpoint_name, c.bundle_after, "
            f"c.reverted_by IS NULL AND c.id = (SELECT max(l.id) FROM {J}.changes l "
            "WHERE l.endpoint_id = c.endpoint_id AND l.kind = 'apply' "
            "AND l.outcome = 'applied') AS live "
            f"FROM {J}.changes c WHERE c.kind = 'apply' AND c.outcome = 'applied' "
            f"AND NOT EXISTS (SELECT 1 FROM {qident(schema)}.bundles b "
            "WHERE b.id = c.bundle_after) "
            "ORDER BY c.id"
        )
    ).mappings()
    return [
        Finding(
            MISSING_BUNDLE if r["live"] else MISSING_OLD_BUNDLE,
            f"bundle {r['bundle_after']} written by the run no longer exists"
            + ("" if r["live"] else " (an older or rolled-back change)"),
            endpoint_id=r["endpoint_id"],
            endpoint_name=r["endpoint_name"],
            run_id=r["run_id"],
            bundle_id=r["bundle_after"],
        )
        for r in rows
    ]


def open_runs(conn: Connection, schema: str) -> list[RunRow]:
    """This schema's unfinished runs, with every later run that could have finished them."""
    # options.schema is in every run's options since the first journal version.
    mine = "COALESCE(options ->> 'schema', :s) = :s"
    rows = conn.execute(
        sa.text(
            f"SELECT run_id, kind, status, started_at, plan_digest, options FROM {J}.runs r "
            f"WHERE {mine} AND (status IN ('running', 'interrupted') OR EXISTS ("
            f"SELECT 1 FROM {J}.runs o WHERE o.status IN ('running', 'interrupted') "
            f"AND o.started_at < r.started_at AND COALESCE(o.options ->> 'schema', :s) = :s))"
        ),
        {"s": schema},
    ).mappings()
    return [
        RunRow(
            run_id=r["run_id"],
            kind=r["kind"],
            status=r["status"],
            started_at=r["started_at"],
            plan_digest=r["plan_digest"],
            options=r["options"] if isinstance(r["options"], dict) else {},
        )
        for r in rows
    ]


@dataclass
class Check:
    """One reconciliation pass: what the scan and the journal say."""

    summary: Summary
    findings: list[Finding]
    pending: list[Decision]
    journal: bool

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


def journal_findings(
    conn: Connection, schema: str, overrides: Overrides | None = None
) -> tuple[bool, list[Finding]]:
    """(whether there is a journal, its findings), in the caller's snapshot."""
    if not jr.exists(conn):
        return False, []
    findings = [f for c in live_changes(conn, schema) if (f := judge_change(c, overrides))]
    findings += missing_bundles(conn, schema)
    findings += judge_runs(open_runs(conn, schema), lock_held=holder(conn, schema) is not None)
    return True, findings


def check(
    engine: Engine,
    *,
    schema: str,
    filters: fleet.Filters | None = None,
    params: PolicyParams | None = None,
    overrides: Overrides | None = None,
    statement_timeout_s: int = 60,
) -> Check:
    """Scan and journal checks; read-only. Filters narrow the scan, not the journal."""
    summary = Summary()
    pending: list[Decision] = []
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
    with read_only(engine, statement_timeout_s) as conn:
        journal, found = journal_findings(conn, schema, overrides)
    return Check(summary, pending_findings(pending) + found, pending, journal)

"""Reconciliation: is the fleet still on the new rule, and does the journal still hold?

Two sources, each read in one READ ONLY snapshot:

- the scan: every endpoint whose command the policy would still change is
  drift (`pending-change`): created by an old code path, rolled back by hand,
  or not yet reached by the rollout;
- the journal (migrate.reconcile.queries): for each endpoint's latest applied
  (not rolled back) change, whether the endpoint still runs what the change
  left it with; runs that never finished; bundles the journal says a run
  created that are gone.

The judging is pure (migrate.reconcile.findings) and tested on plain values;
the queries (migrate.reconcile.queries) only fetch; this module joins them.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Connection, Engine

from migrate.core.overrides import Overrides
from migrate.core.policy import PolicyParams
from migrate.core.records import Decision
from migrate.core.summary import Summary
from migrate.reconcile.findings import (
    MISSING_BUNDLE,
    MISSING_OLD_BUNDLE,
    ROLLED_BACK,
    UNFINISHED_RUN,
    Check,
    Finding,
    LiveChange,
    judge_change,
    judge_runs,
    owner_chose_eager,
    pending_findings,
)
from migrate.reconcile.queries import failed_applies, live_changes, missing_bundles, open_runs
from migrate.scan.scanner import scan
from migrate.store import fleet
from migrate.store import journal as jr
from migrate.store.connection import read_only
from migrate.store.lock import holder


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
    in_progress = holder(conn, schema) is not None
    for change in live_changes(conn, schema):
        if change.reverted:
            view.rolled_back[change.endpoint_id] = change
        elif finding := judge_change(change, overrides, owner_eager, in_progress):
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
    unfinished = judge_runs(runs, lock_held=in_progress)
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
    jobs: int = 1,
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
        jobs=jobs,
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

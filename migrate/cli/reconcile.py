"""`bundle-migrate reconcile`: the scheduled check that the fleet stays on the new rule.

Exit status, as scan's: 0 success (drift included: alerts read the metrics), 1 error;
with --detailed-exitcode 0 clean, 2 drift, 1 error. Read-only unless --apply.
"""

from __future__ import annotations

import json
import sys
import textwrap
import time
from typing import IO, Any

import click

from migrate.cli.app import (
    EXIT_ERROR,
    Failure,
    handle_errors,
    main,
    pending_exit,
    sigterm_interrupts,
)
from migrate.cli.options import ScanOptions, detailed_exitcode_option, scan_options
from migrate.cli.output import terminal_width, wide_option
from migrate.cli.packaged import runbook_hint
from migrate.cli.redeploy_options import RedeployOptions, redeploy_options
from migrate.core.classify import ACTIONS
from migrate.core.documents import json_default
from migrate.reconcile import metrics
from migrate.reconcile.autoapply import DEFAULT_MAX_CHANGES, ApplyOutcome
from migrate.reconcile.findings import KINDS, SEVERITY
from migrate.reconcile.run import Reconciliation, Request, reconcile
from migrate.scan.tables import Column, render
from migrate.store.files import FileError

TABLE_LIMIT = 50  # rows per kind in the terminal table; JSON always lists every finding


FINDINGS = (
    Column("endpoint", fold_at=32),
    Column("run", wide_only=True),
    Column("action", wide_only=True),
    Column("detail", wraps=True, min_width=24),
)


def render_json(doc: dict[str, Any], out: IO[str]) -> None:
    out.write(json.dumps(doc, indent=2, default=json_default) + "\n")


def render_table(
    doc: dict[str, Any], out: IO[str], *, wide: bool = False, width: int | None = None
) -> None:
    meta, counts = doc["reconcile"], doc["counts"]

    def line(text: str) -> None:
        # Prose wraps at spaces; a URL longer than the terminal is cut, never a name.
        out.write(
            textwrap.fill(text, width or 100, subsequent_indent="  ", break_on_hyphens=False) + "\n"
        )

    state = "clean" if doc["status"] == "clean" else f"DRIFT ({doc['drift']} finding(s))"
    line(f"reconcile {meta['database']} schema {meta['schema']}: {state}")
    scan = doc["scan"]
    actions = ", ".join(f"{a} {scan['actions'][a]}" for a in ACTIONS)
    line(f"scan: {scan['endpoints']} LLM endpoints; {actions}")
    if not meta["journal"]:
        line("journal: none yet (no bundle-migrate run has written here)")
    found = ", ".join(f"{k} {n}" for k, n in counts.items() if n) or "none"
    line(f"findings: {found}")
    for kind in KINDS:
        rows = [f for f in doc["findings"] if f["kind"] == kind]
        if not rows:
            continue
        out.write(f"\n{kind} ({SEVERITY[kind]}, {len(rows)}):\n")
        table = [
            [f["endpoint_name"] or "-", f["run_id"] or "-", f["action"] or "", f["detail"]]
            for f in rows[:TABLE_LIMIT]
        ]
        out.write(render(FINDINGS, table, width=width, wide=wide))
        if len(rows) > TABLE_LIMIT:
            out.write(f"  ... and {len(rows) - TABLE_LIMIT} more (--format json lists all)\n")
    applied = doc.get("apply")
    if applied is not None:
        out.write("\n")
        if applied["skipped"]:
            line(f"apply skipped: {applied['skipped']}")
        elif applied["run_id"]:
            out.write(f"apply run {applied['run_id']}: {applied['applied']} endpoint(s) changed\n")
            for e in applied["endpoints"]:
                arrow = f" {e['bundle_before']} -> {e['bundle_after']}" if e["bundle_after"] else ""
                detail = f" ({e['detail']})" if e["outcome"] == "failed" and e["detail"] else ""
                out.write(f"  {e['outcome']:<24} {e['endpoint_name']}{arrow}{detail}\n")
            if applied["failures"]:
                line(
                    f"{applied['failures']} endpoint(s) failed (exit 1): the next runs try "
                    "the others first"
                )
        else:
            out.write("apply: nothing eligible to change\n")
        if applied["closed_runs"]:
            line(f"closed interrupted run(s): {', '.join(applied['closed_runs'])}")
    nxt = doc["next"]
    if nxt["endpoints"]:
        verb = "next" if applied is not None else "--apply would change"
        out.write("\n")
        line(f"{verb} (at most {nxt['max_changes']}): {', '.join(nxt['endpoints'])}")
    if nxt["held_back"]:
        line(
            f"held back from --apply: {nxt['held_back']} (rolled back by an operator, not "
            "READY, or large/flagged without --include-large): see "
            f"{runbook_hint('reconciliation')}"
        )


@main.command("reconcile")
@scan_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="table for a person, json for alerting (see README).",
)
@wide_option
@click.option(
    "--metrics-file",
    type=click.Path(dir_okay=False),
    help="Write Prometheus text format here (atomically), for node-exporter's textfile "
    "collector; name it *.prom. Written on failure too (last_run_success 0).",
)
@click.option(
    "--apply",
    "do_apply",
    is_flag=True,
    help="Change up to --max-changes drifted endpoints through the journaled apply path.",
)
@click.option(
    "--max-changes",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_CHANGES,
    show_default=True,
    help="With --apply: at most this many endpoints per run (canary-sized).",
)
@click.option(
    "--include-large",
    is_flag=True,
    help="With --apply: large (>= 70B, unknown size) and risk-flagged endpoints too.",
)
@click.option(
    "--resolve-run",
    "resolve_runs",
    multiple=True,
    metavar="RUN_ID",
    help="Close this interrupted run: nobody will resume it (an abandoned plan, a rollback "
    "with nothing left). Writes a run with no changes to the journal; needs the writer "
    "role. Repeatable.",
)
@redeploy_options
@detailed_exitcode_option
@handle_errors
def reconcile_command(
    opts: ScanOptions,
    fmt: str,
    wide: bool,
    metrics_file: str | None,
    do_apply: bool,
    max_changes: int,
    include_large: bool,
    resolve_runs: tuple[str, ...],
    redeploy: RedeployOptions,
    detailed_exitcode: bool,
) -> None:
    """Check that the fleet stays on the new rule and the journal still holds. Read-only.

    Drift: endpoints the policy would still change; endpoints a run migrated that
    run the old flag again or point at another bundle; runs that never finished;
    bundles a run created that are gone. Notices (deleted endpoints, rebuilds by
    model engine, runs in progress, endpoints an operator rolled back, pending
    endpoints not READY, owners who asked for eager again) are reported but are
    not drift.

    --resolve-run RUN_ID closes an interrupted run nobody will resume (writer
    role). A rerun of the same apply that finds its plan complete, or an
    --apply with nothing left to change, closes one by itself.

    --apply changes at most --max-changes drifted endpoints (default 1) through
    the same journaled apply path as `apply --execute`; run it on a schedule to
    converge slowly. Large and flagged endpoints wait for --include-large;
    endpoints an operator rolled back wait for a new plan; endpoints whose last
    attempt failed go after the others.

    \b
    Examples:
      bundle-migrate reconcile                             # a table for a person
      bundle-migrate reconcile --format json --metrics-file reconcile.prom
      bundle-migrate reconcile --detailed-exitcode         # exit 2 on drift, for CI
      bundle-migrate reconcile --apply --max-changes 1     # converge one endpoint

    Exit status: 0 success, drift or not (a CronJob needs no wrapper; alert on
    the metrics), 1 error or an endpoint --apply failed to change. With
    --detailed-exitcode: 0 clean, 2 drift (after --apply: what remains), 1 error.
    """
    started = time.time()
    labels = {"schema": opts.schema, "mode": "apply" if do_apply else "check"}
    run = metrics.RunMetrics(started=started, finished=started, labels=labels)
    outcome: ApplyOutcome | None = None
    try:
        # SIGTERM (kubectl delete, activeDeadlineSeconds) ends the run like Ctrl-C: an
        # apply run is marked interrupted, and the metrics file still says so.
        with sigterm_interrupts(True):
            done = _run(opts, do_apply, max_changes, include_large, resolve_runs, redeploy)
        outcome = done.outcome
        run.check = done.check
        if fmt == "json":
            render_json(done.document, sys.stdout)
        else:
            render_table(done.document, sys.stdout, wide=wide, width=terminal_width())
        sys.stdout.flush()
    finally:
        run.finished = time.time()
        if outcome is not None:
            run.applied, run.apply_failures = outcome.applied, outcome.failures
            run.apply_skipped = outcome.skipped is not None
        if metrics_file:
            try:
                metrics.write(metrics_file, run)
            except FileError as exc:
                raise Failure(str(exc)) from None
    if outcome is not None and outcome.failures:
        sys.exit(EXIT_ERROR)
    sys.exit(pending_exit(done.check.drift > 0, detailed_exitcode))


def _run(
    opts: ScanOptions,
    do_apply: bool,
    max_changes: int,
    include_large: bool,
    resolve_runs: tuple[str, ...],
    redeploy: RedeployOptions,
) -> Reconciliation:
    deploy = redeploy.build(execute=do_apply, command="reconcile --apply") if do_apply else None
    params = opts.policy()
    overrides = opts.overrides()
    url, engine = opts.connect()
    request = Request(
        schema=opts.schema,
        filters=opts.filters,
        filters_doc=opts.filters_doc(),
        params=params,
        overrides=overrides,
        overrides_path=opts.overrides_path,
        statement_timeout_s=opts.statement_timeout,
        jobs=opts.jobs,
        apply=do_apply,
        max_changes=max_changes,
        include_large=include_large,
        resolve_runs=resolve_runs,
        redeploy=deploy,
    )
    try:
        return reconcile(
            engine, request, opts.meta(url, params), notify=lambda t: click.echo(t, err=True)
        )
    finally:
        engine.dispose()
        if deploy is not None:
            deploy.client.close()

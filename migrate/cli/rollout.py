"""The writing commands, apply and rollback: a dry run unless --execute (the gh-ost habit)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from migrate.cli.app import EXIT_ERROR, EXIT_OK, Failure, handle_errors, main, sigterm_interrupts
from migrate.cli.console import ConsoleReporter
from migrate.cli.options import TEXT, connect, database_options
from migrate.cli.planfile import (
    allow_other_address_option,
    load_plan_file,
    plan_errors,
    plan_schema,
    schema_given,
)
from migrate.rollout.apply import DEPLOY_NOTE, ApplyOptions, run_apply
from migrate.rollout.pacing import Pacer
from migrate.rollout.rollback import DEPLOY_NOTE as ROLLBACK_DEPLOY_NOTE
from migrate.rollout.rollback import RollbackOptions, run_rollback, run_schema
from migrate.rollout.transaction import Settings
from migrate.store import connection as db
from migrate.store import fleet


@main.command("apply")
@click.argument("plan_file", metavar="PLAN", type=click.Path(exists=True, dir_okay=False))
@database_options
@click.option("--execute", is_flag=True, help="Write. Without it: a dry run that writes nothing.")
@click.option("--stage", type=click.IntRange(min=1), help="Work on this stage only.")
@click.option(
    "--all-stages",
    is_flag=True,
    help="Go on stage after stage; a stage starts only when the one before is complete.",
)
@click.option(
    "--max-failures",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Stop within a stage once more endpoints than this have failed.",
)
@click.option(
    "--max-per-minute", type=click.FloatRange(min=0, min_open=True), help="Throttle writes."
)
@click.option(
    "--pause-file",
    type=click.Path(dir_okay=False),
    help="While this file exists, the run waits (touch it to pause, remove it to go on).",
)
@allow_other_address_option
@handle_errors
@plan_errors
def apply_command(
    plan_file: str,
    database_url: str | None,
    schema: str,
    statement_timeout: int,
    execute: bool,
    stage: int | None,
    all_stages: bool,
    max_failures: int,
    max_per_minute: float | None,
    pause_file: str | None,
    allow_other_address: bool,
) -> None:
    """Apply a plan, stage by stage; a dry run unless --execute.

    Without --stage or --all-stages, works on the first stage not yet complete.
    --all-stages stops at a stage left incomplete (busy, not-ready or failed
    endpoints): rerun to retry them before the next stage starts. Rerunning the
    same plan resumes: endpoints already changed are skipped.

    Connect directly to PostgreSQL, not through a transaction pooler (pgbouncer
    pool_mode=transaction): the run lock is held by one server session.

    Exit status: 0 every planned change done or rightly skipped, 1 failures, a
    stop, or an error.
    """
    if stage is not None and all_stages:
        raise click.UsageError("--stage and --all-stages exclude each other")
    plan = load_plan_file(plan_file)
    settings = Settings(schema=plan_schema(plan, schema), statement_timeout_s=statement_timeout)
    url, engine = connect(database_url)
    reporter = ConsoleReporter(execute=execute)
    click.echo(
        f"plan {plan.short_digest} ({len(plan.items)} endpoints in {len(plan.stages)} stages), "
        f"made {plan.created_at} by {plan.created_by}; database {db.masked(url)}"
    )
    click.echo(
        "EXECUTE: writing to the database."
        if execute
        else "DRY RUN: nothing is written; add --execute to apply."
    )
    options = ApplyOptions(
        settings=settings,
        execute=execute,
        stage=stage,
        all_stages=all_stages,
        max_failures=max_failures,
        pacer=Pacer(
            max_per_minute=max_per_minute, pause_file=Path(pause_file) if pause_file else None
        ),
        plan_path=plan_file,
        allow_other_address=allow_other_address,
    )
    try:
        with sigterm_interrupts(execute):
            summary = run_apply(engine, plan, options, reporter)
    finally:
        reporter.close()
        engine.dispose()
    reporter.summary(summary.counts, summary.run_id)
    if summary.stopped:
        click.echo(summary.stopped)
    click.echo(DEPLOY_NOTE)
    sys.exit(EXIT_ERROR if summary.failures or summary.stopped else EXIT_OK)


@main.command("rollback")
@database_options
@click.option(
    "--plan",
    "plan_file",
    metavar="PLAN",
    type=click.Path(exists=True, dir_okay=False),
    help="Roll back what this plan changed.",
)
@click.option(
    "--run", "run_id", type=TEXT, metavar="RUN_ID", help="Roll back what this apply run changed."
)
@click.option("--stage", type=click.IntRange(min=1), help="Only changes of this stage.")
@click.option(
    "--endpoint",
    "endpoints",
    type=TEXT,
    multiple=True,
    metavar="NAME",
    help="Only this endpoint (repeatable).",
)
@click.option("--execute", is_flag=True, help="Write. Without it: a dry run that writes nothing.")
@click.option(
    "--force",
    is_flag=True,
    help="Also roll back endpoints changed since the run or not READY: restores all the old "
    "metadata, overwriting later edits.",
)
@allow_other_address_option
@handle_errors
@plan_errors
def rollback_command(
    database_url: str | None,
    schema: str,
    statement_timeout: int,
    plan_file: str | None,
    run_id: str | None,
    stage: int | None,
    endpoints: tuple[str, ...],
    execute: bool,
    force: bool,
    allow_other_address: bool,
) -> None:
    """Point endpoints back at their previous bundle and restore their metadata exactly.

    Endpoints changed since the run, or not READY (model engine is updating
    them), are left alone unless --force. With --run, the schema is the one the
    run changed. Connect directly, not through a transaction pooler.

    Exit status: 0 done or rightly skipped, 1 failures or error.
    """
    if (plan_file is None) == (run_id is None):
        raise click.UsageError("give exactly one of --plan PLAN or --run RUN_ID")
    plan = load_plan_file(plan_file) if plan_file else None
    if plan is not None:
        schema = plan_schema(plan, schema)
    url, engine = connect(database_url)
    reporter = ConsoleReporter(execute=execute, verb="roll back")
    try:
        if run_id is not None:
            schema = _run_schema(engine, run_id, schema, statement_timeout)
        fleet.check_schema_name(schema)
        click.echo(f"database {db.masked(url)}, schema {schema}")
        click.echo(
            "EXECUTE: writing to the database."
            if execute
            else "DRY RUN: nothing is written; add --execute to roll back."
        )
        options = RollbackOptions(
            settings=Settings(schema=schema, statement_timeout_s=statement_timeout),
            plan=plan,
            run_id=run_id,
            stage=stage,
            endpoints=endpoints,
            execute=execute,
            force=force,
            allow_other_address=allow_other_address,
        )
        with sigterm_interrupts(execute):
            summary = run_rollback(engine, options, reporter)
    finally:
        reporter.close()
        engine.dispose()
    reporter.summary(summary.counts, summary.run_id)
    click.echo(ROLLBACK_DEPLOY_NOTE)
    sys.exit(EXIT_ERROR if summary.failures else EXIT_OK)


def _run_schema(engine: Any, run_id: str, schema: str, statement_timeout: int) -> str:
    """The schema the run changed; an explicit, different --schema is refused."""
    recorded = run_schema(engine, run_id, statement_timeout)
    if recorded is None:
        return schema  # no such run: the rollback itself says so
    if schema_given() and schema != recorded:
        raise Failure(
            f"run {run_id} changed schema {recorded!r}, not {schema!r}: leave --schema out"
        )
    return recorded

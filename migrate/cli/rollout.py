"""The writing commands, apply and rollback: a dry run unless --execute (the gh-ost habit)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from migrate.cli.app import EXIT_ERROR, EXIT_OK, Failure, handle_errors, main, sigterm_interrupts
from migrate.cli.options import TEXT, connect, database_options
from migrate.cli.planfile import (
    allow_other_address_option,
    load_plan_file,
    plan_errors,
    plan_schema,
    schema_given,
)
from migrate.cli.redeploy_options import RedeployOptions, redeploy_options
from migrate.cli.run_view import make_reporter, write_run_json
from migrate.rollout.apply import ROWS_ONLY_NOTE, ApplyOptions, run_apply
from migrate.rollout.pacing import Pacer
from migrate.rollout.rollback import ROWS_ONLY_NOTE as ROLLBACK_ROWS_ONLY_NOTE
from migrate.rollout.rollback import RollbackOptions, run_rollback, run_schema
from migrate.rollout.transaction import Settings
from migrate.store import connection as db
from migrate.store import fleet

format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one document with every endpoint's outcome and the run summary on stdout "
    "(progress and notes go to stderr).",
)


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
@click.option(
    "--ignore-incomplete-stages",
    is_flag=True,
    help="Let --stage N start although an earlier stage is not complete (said loudly, "
    "recorded in the journal).",
)
@click.option(
    "--retry-aborted",
    is_flag=True,
    help="Go on with a plan a rollback aborted (the abort is closed in the journal).",
)
@redeploy_options
@format_option
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
    ignore_incomplete_stages: bool,
    retry_aborted: bool,
    redeploy: RedeployOptions,
    fmt: str,
    allow_other_address: bool,
) -> None:
    """Apply a plan, stage by stage; a dry run unless --execute.

    Each endpoint is written (a new bundle row, the endpoint pointed at it, the
    journal row, one transaction), redeployed through model engine's API and
    watched until healthy: status READY, no unavailable worker, and still so
    after --settle seconds. An endpoint that fails (UPDATE_FAILED, or no health
    within --health-timeout, as a crash-looping server that stays READY) is
    rolled back at once and watched back to health, and the plan is aborted.

    Without --stage or --all-stages, works on the first stage not yet complete.
    A stage starts only when every endpoint before it is changed and healthy.
    Rerunning the same plan resumes each endpoint where it stopped.

    Connect directly to PostgreSQL, not through a transaction pooler (pgbouncer
    pool_mode=transaction): the run lock is held by one server session.

    \b
    Examples:
      bundle-migrate apply plan.json                       # dry run: a diff per endpoint
      bundle-migrate apply plan.json --stage 1 --execute   # the canary, redeployed and watched
      bundle-migrate apply plan.json --stage 2 --execute --max-per-minute 30 --pause-file pause
      bundle-migrate apply plan.json --all-stages --execute --parallel 8

    Exit status: 0 every planned endpoint of the stages worked on is done (and
    healthy); 1 a failure, a stop, an endpoint left undone, or an error.
    """
    if stage is not None and all_stages:
        raise click.UsageError("--stage and --all-stages exclude each other")
    plan = load_plan_file(plan_file)
    settings = Settings(schema=plan_schema(plan, schema), statement_timeout_s=statement_timeout)
    deploy = redeploy.build(execute=execute, command="apply --execute")
    url, engine = connect(database_url)
    reporter = make_reporter(fmt, execute=execute)
    reporter.note(
        f"plan {plan.short_digest} ({len(plan.items)} endpoints in {len(plan.stages)} stages), "
        f"made {plan.created_at} by {plan.created_by}; database {db.masked(url)}"
    )
    reporter.note(_mode_line(execute, deploy, "apply"))
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
        redeploy=deploy,
        ignore_incomplete_stages=ignore_incomplete_stages,
        retry_aborted=retry_aborted,
        parallel=redeploy.parallel,
    )
    try:
        with sigterm_interrupts(execute):
            summary = run_apply(engine, plan, options, reporter)
    finally:
        reporter.close()
        engine.dispose()
        if deploy is not None:
            deploy.client.close()
    bad = summary.failures or summary.stopped or (execute and summary.undone)
    status = EXIT_ERROR if bad else EXIT_OK
    if fmt == "json":
        write_run_json(
            "apply",
            plan.digest,
            db.masked(url),
            execute,
            deploy,
            summary,
            status,
            getattr(reporter, "diffs", None),
        )
    else:
        reporter.summary(summary.counts, summary.run_id)
        if summary.stopped:
            click.echo(summary.stopped)
        elif execute and summary.undone:
            click.echo(
                f"{summary.undone} planned endpoint(s) of the stages worked on are not done "
                "(see above): exit 1"
            )
        if execute and deploy is None:
            click.echo(ROWS_ONLY_NOTE)
    sys.exit(status)


def _mode_line(execute: bool, deploy: Any, verb: str) -> str:
    if not execute:
        ask = " (model engine is asked, read-only)" if deploy is not None else ""
        return f"DRY RUN: nothing is written{ask}; add --execute to {verb}."
    if deploy is None:
        return "EXECUTE: writing to the database only (--no-redeploy): no pod is restarted."
    return (
        f"EXECUTE: writing to the database, then redeploying through {deploy.client.base_url} "
        f"({deploy.mode}, up to {deploy.parallel} at a time) and watching each endpoint."
    )


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
    help="Also roll back endpoints changed since the run or that model engine is updating: "
    "restores all the old metadata, overwriting later edits.",
)
@redeploy_options
@format_option
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
    redeploy: RedeployOptions,
    fmt: str,
    allow_other_address: bool,
) -> None:
    """Point endpoints back at their previous bundle, restore their metadata exactly, redeploy.

    Each restored endpoint is redeployed through model engine's API (PUT {},
    exactly the old command) and watched back to health; after the rollback the
    running command is the original one. Rolling back any part of a plan aborts
    it: applying it again needs --retry-aborted.

    Endpoints changed since the run, or that model engine is updating, are left
    alone unless --force. With --run, the schema is the one the run changed.
    Connect directly, not through a transaction pooler.

    \b
    Examples:
      bundle-migrate rollback --plan plan.json --stage 2              # dry run
      bundle-migrate rollback --plan plan.json --stage 2 --execute
      bundle-migrate rollback --run run_0123456789abcdefghij --endpoint chat-1 --execute

    Exit status: 0 done or rightly skipped, 1 failures or error.
    """
    if (plan_file is None) == (run_id is None):
        raise click.UsageError("give exactly one of --plan PLAN or --run RUN_ID")
    plan = load_plan_file(plan_file) if plan_file else None
    if plan is not None:
        schema = plan_schema(plan, schema)
    deploy = redeploy.build(execute=execute, command="rollback --execute")
    url, engine = connect(database_url)
    reporter = make_reporter(fmt, execute=execute, verb="roll back")
    try:
        if run_id is not None:
            schema = _run_schema(engine, run_id, schema, statement_timeout)
        fleet.check_schema_name(schema)
        reporter.note(f"database {db.masked(url)}, schema {schema}")
        reporter.note(_mode_line(execute, deploy, "roll back"))
        options = RollbackOptions(
            settings=Settings(schema=schema, statement_timeout_s=statement_timeout),
            plan=plan,
            run_id=run_id,
            stage=stage,
            endpoints=endpoints,
            execute=execute,
            force=force,
            allow_other_address=allow_other_address,
            redeploy=deploy,
        )
        with sigterm_interrupts(execute):
            summary = run_rollback(engine, options, reporter)
    finally:
        reporter.close()
        engine.dispose()
        if deploy is not None:
            deploy.client.close()
    status = EXIT_ERROR if summary.failures else EXIT_OK
    if fmt == "json":
        digest = plan.digest if plan else None
        write_run_json("rollback", digest, db.masked(url), execute, deploy, summary, status)
    else:
        reporter.summary(summary.counts, summary.run_id)
        if execute and deploy is None:
            click.echo(ROLLBACK_ROWS_ONLY_NOTE)
    sys.exit(status)


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

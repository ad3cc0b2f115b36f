"""The writing commands: plan, apply, rollback, status. Thin: options in, library calls out.

Every writing command is a dry run unless --execute (the gh-ost habit).
"""

from __future__ import annotations

import functools
import json
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from migrate import db, fleet
from migrate import journal as jr
from migrate.apply import DEPLOY_NOTE, ApplyOptions, Pacer, operator, run_apply
from migrate.change import Settings
from migrate.cli import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_OK,
    Failure,
    build_policy,
    connect,
    database_options,
    handle_errors,
    main,
    output_stream,
    policy_options,
)
from migrate.console import ConsoleReporter, render_status
from migrate.identity import database_identity
from migrate.overrides import load_overrides
from migrate.plan import DEFAULT_STAGES, Plan, PlanError, build_plan, parse_plan, to_json
from migrate.rollback import RollbackOptions, run_rollback
from migrate.scan import scan
from migrate.status import plan_status, run_changes, runs_overview
from migrate.ticket import render_markdown


def tool_version() -> str:
    try:
        return version("bundle-migrate")
    except PackageNotFoundError:
        return "unknown"


def plan_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except PlanError as exc:
            raise Failure(str(exc)) from None

    return wrapper


def load_plan_file(path: str) -> Plan:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise Failure(f"cannot read plan {path}: {exc.strerror}") from None
    return parse_plan(text, source=path)


@contextmanager
def _sigterm_interrupts(enabled: bool) -> Iterator[None]:
    """SIGTERM (kubectl delete, timeout) ends a run like Ctrl-C: its run is marked interrupted."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler) if enabled else None
    try:
        yield
    finally:
        if enabled:
            signal.signal(signal.SIGTERM, previous)


def _plan_schema(plan: Plan, schema: str) -> str:
    source = click.get_current_context().get_parameter_source("schema")
    if source not in (ParameterSource.DEFAULT, None) and schema != plan.schema:
        raise Failure(f"the plan is for schema {plan.schema!r}, not {schema!r}")
    # The digest proves integrity, not authorship: a plan's schema is checked like an option.
    return fleet.check_schema_name(plan.schema)


@main.command("plan")
@database_options
@policy_options
@click.option(
    "--stages",
    "stage_spec",
    default=DEFAULT_STAGES,
    show_default=True,
    help="A canary count, then cumulative counts or percentages of the regular endpoints.",
)
@click.option(
    "--exclude-large", is_flag=True, help="Leave large (>= 70B, unknown) and flagged endpoints out."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "markdown"]),
    default="json",
    show_default=True,
    help="json: write the plan to --out. markdown: also print a change-ticket on stdout.",
)
@click.option("--out", metavar="FILE", help="Where the plan (JSON) goes; - for stdout.")
@click.option(
    "--from",
    "from_plan",
    metavar="PLAN",
    type=click.Path(exists=True, dir_okay=False),
    help="Render a saved plan as markdown instead of making one (no database).",
)
@handle_errors
@plan_errors
def plan_command(
    database_url: str | None,
    schema: str,
    statement_timeout: int,
    name_glob: str | None,
    owner: str | None,
    model_glob: str | None,
    statuses: tuple[str, ...],
    threshold: str,
    recorded: str,
    overrides_path: str | None,
    stage_spec: str,
    exclude_large: bool,
    fmt: str,
    out: str | None,
    from_plan: str | None,
) -> None:
    """Make a reviewed, staged plan of the endpoints whose command changes. Read-only.

    \b
      bundle-migrate plan --out plan.json
      bundle-migrate plan --from plan.json --format markdown > ticket.md

    Exit status: 0 nothing to change, 2 the plan has changes, 1 error.
    """
    if from_plan:
        if fmt != "markdown":
            raise click.UsageError("--from renders a saved plan: add --format markdown")
        click.echo(render_markdown(load_plan_file(from_plan), from_plan), nl=False)
        return
    if not out:
        raise click.UsageError(
            "--out FILE is required: the plan file is what is reviewed and applied "
            "(--out - writes it to stdout)"
        )
    if fmt == "markdown" and out == "-":
        raise click.UsageError("--format markdown prints the ticket on stdout; give --out a file")
    params = build_policy(threshold, recorded)
    overrides = load_overrides(overrides_path) if overrides_path else None
    fleet.check_schema_name(schema)
    url, engine = connect(database_url)
    try:
        with db.read_only(engine, statement_timeout) as conn:
            identity = database_identity(conn)
        decisions = scan(
            engine,
            schema=schema,
            filters=fleet.Filters(name_glob, owner, model_glob, statuses),
            params=params,
            overrides=overrides,
            statement_timeout_s=statement_timeout,
        )
        plan = build_plan(
            decisions,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            created_by=operator(),
            tool_version=tool_version(),
            database=identity,
            schema=schema,
            policy=params.as_dict(),
            filters={
                "name": name_glob,
                "owner": owner,
                "model": model_glob,
                "status": list(statuses),
            },
            overrides=overrides_path,
            stage_spec=stage_spec,
            exclude_large=exclude_large,
        )
    finally:
        engine.dispose()
    with output_stream(None if out == "-" else out) as handle:
        handle.write(to_json(plan))
    stages = ", ".join(f"{s.number}:{s.name}={s.endpoints}" for s in plan.stages) or "none"
    where = "stdout" if out == "-" else out
    click.echo(
        f"plan {plan.short_digest}: {len(plan.items)} endpoint(s) change, stages {stages}; "
        f"written to {where}",
        err=True,
    )
    if fmt == "markdown":
        click.echo(render_markdown(plan, out), nl=False)
    sys.exit(EXIT_CHANGES if plan.items else EXIT_OK)


@main.command("apply")
@click.argument("plan_file", metavar="PLAN", type=click.Path(exists=True, dir_okay=False))
@database_options
@click.option("--execute", is_flag=True, help="Write. Without it: a dry run that writes nothing.")
@click.option("--stage", type=click.IntRange(min=1), help="Work on this stage only.")
@click.option("--all-stages", is_flag=True, help="Go on stage after stage until done or stopped.")
@click.option(
    "--max-failures",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Stop when a stage has more failed endpoints than this.",
)
@click.option(
    "--max-per-minute", type=click.FloatRange(min=0, min_open=True), help="Throttle writes."
)
@click.option(
    "--pause-file",
    type=click.Path(dir_okay=False),
    help="While this file exists, the run waits (touch it to pause, remove it to go on).",
)
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
) -> None:
    """Apply a plan, stage by stage; a dry run unless --execute.

    Without --stage or --all-stages, works on the first stage not yet complete.
    Rerunning the same plan resumes: endpoints already changed are skipped.

    Exit status: 0 every planned change done or rightly skipped, 1 failures or error.
    """
    if stage is not None and all_stages:
        raise click.UsageError("--stage and --all-stages exclude each other")
    plan = load_plan_file(plan_file)
    settings = Settings(schema=_plan_schema(plan, schema), statement_timeout_s=statement_timeout)
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
    )
    try:
        with _sigterm_interrupts(execute):
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
@click.option("--plan", "plan_file", metavar="PLAN", type=click.Path(exists=True, dir_okay=False))
@click.option("--run", "run_id", metavar="RUN_ID", help="Roll back what this apply run changed.")
@click.option("--stage", type=click.IntRange(min=1), help="Only changes of this stage.")
@click.option(
    "--endpoint",
    "endpoints",
    multiple=True,
    metavar="NAME",
    help="Only this endpoint (repeatable).",
)
@click.option("--execute", is_flag=True, help="Write. Without it: a dry run that writes nothing.")
@click.option("--force", is_flag=True, help="Restore endpoints changed since the run, too.")
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
) -> None:
    """Point endpoints back at their previous bundle and restore their metadata exactly.

    Exit status: 0 done or rightly skipped, 1 failures or error.
    """
    if (plan_file is None) == (run_id is None):
        raise click.UsageError("give exactly one of --plan PLAN or --run RUN_ID")
    plan = load_plan_file(plan_file) if plan_file else None
    if plan is not None:
        schema = _plan_schema(plan, schema)
    fleet.check_schema_name(schema)
    url, engine = connect(database_url)
    reporter = ConsoleReporter(execute=execute, verb="roll back")
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
    )
    try:
        with _sigterm_interrupts(execute):
            summary = run_rollback(engine, options, reporter)
    finally:
        reporter.close()
        engine.dispose()
    reporter.summary(summary.counts, summary.run_id)
    sys.exit(EXIT_ERROR if summary.failures else EXIT_OK)


@main.command("status")
@database_options
@click.option("--run", "run_id", metavar="RUN_ID", help="List this run's endpoints.")
@click.option(
    "--plan",
    "plan_file",
    metavar="PLAN",
    type=click.Path(exists=True, dir_okay=False),
    help="Progress of a plan, per stage.",
)
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@click.option(
    "--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Runs to list."
)
@handle_errors
@plan_errors
def status_command(
    database_url: str | None,
    schema: str,
    statement_timeout: int,
    run_id: str | None,
    plan_file: str | None,
    fmt: str,
    limit: int,
) -> None:
    """Runs with their stages and outcome counts; one run's endpoints; a plan's progress.

    Read-only.
    """
    plan = load_plan_file(plan_file) if plan_file else None
    if plan is not None:
        schema = _plan_schema(plan, schema)
    fleet.check_schema_name(schema)
    url, engine = connect(database_url)
    try:
        with db.read_only(engine, statement_timeout) as conn:
            present = jr.exists(conn)
            if plan is not None:
                doc: dict[str, Any] = {"plan": plan.digest, "stages": plan_status(conn, plan)}
            elif run_id is not None:
                run = jr.run_row(conn, run_id) if present else None
                if run is None:
                    raise Failure(f"no run {run_id} in the journal")
                doc = {"run": run, "changes": run_changes(conn, run_id)}
            else:
                doc = {"runs": runs_overview(conn, schema, limit) if present else []}
    finally:
        engine.dispose()
    if fmt == "json":
        click.echo(json.dumps(doc, indent=2, default=str))
    else:
        if not present and plan is None:
            click.echo(
                f"no bundle-migrate run has written to this database (no {jr.SCHEMA} schema)"
            )
            return
        click.echo(render_status(doc), nl=False)

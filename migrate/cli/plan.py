"""The read-only rollout commands: plan (make or render one) and status (read the journal)."""

from __future__ import annotations

import hashlib
import json
import sys

import click

from migrate.cli.app import handle_errors, main, pending_exit
from migrate.cli.options import (
    TEXT,
    CountOrAll,
    ScanOptions,
    connect,
    database_options,
    detailed_exitcode_option,
    scan_options,
)
from migrate.cli.output import output_stream, terminal_width, wide_option
from migrate.cli.planfile import (
    KEY_ENV,
    check_plan_target,
    load_plan_file,
    plan_errors,
    plan_key,
    plan_schema,
    spill_directory,
    write_plan_file,
)
from migrate.cli.status_table import render_status
from migrate.core import plan_stream
from migrate.core.documents import FORMAT_VERSION, json_default
from migrate.core.plan import Plan, check_key
from migrate.core.staging import DEFAULT_STAGES
from migrate.rollout.planning import streamed_plan
from migrate.rollout.status import status_document
from migrate.rollout.ticket import (
    DEFAULT_ENDPOINT_LIMIT,
    attachment_name,
    attachment_pieces,
    render_markdown,
    tally,
)
from migrate.store import fleet
from migrate.store import journal as jr


@main.command("plan")
@scan_options
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
@click.option(
    "--ticket-endpoints",
    type=CountOrAll(),
    default=str(DEFAULT_ENDPOINT_LIMIT),
    show_default=True,
    help="Markdown: list at most N endpoints per stage and N risks; all of them go to a CSV "
    "attachment the ticket names. 'all' lists every endpoint in the Markdown.",
)
@click.option(
    "--ticket-attachment",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="Where the attachment goes. Default: beside the plan, plan.json -> plan.endpoints.csv.",
)
@detailed_exitcode_option
@handle_errors
@plan_errors
def plan_command(
    opts: ScanOptions,
    stage_spec: str,
    exclude_large: bool,
    fmt: str,
    out: str | None,
    from_plan: str | None,
    ticket_endpoints: int | None,
    ticket_attachment: str | None,
    detailed_exitcode: bool,
) -> None:
    """Make a reviewed, staged plan of the endpoints whose command changes. Read-only.

    \b
    Examples:
      bundle-migrate plan --out plan.json                  # the default stages 1,10%,50%,100%
      bundle-migrate plan --out plan.json --stages 1,5%,25%,100% --exclude-large
      bundle-migrate plan --from plan.json --format markdown > ticket.md
      bundle-migrate plan --from plan.json --format markdown --ticket-endpoints all

    With $BUNDLE_MIGRATE_PLAN_KEY set (at least 32 bytes), the plan is signed
    (HMAC-SHA256), and apply, rollback and status refuse a plan not signed with
    that key: an approval then holds for the exact file reviewed.

    Exit status: 0 success, 1 error; with --detailed-exitcode 0 nothing to
    change, 2 the plan has changes, 1 error.
    """
    if from_plan:
        if fmt != "markdown":
            raise click.UsageError("--from renders a saved plan: add --format markdown")
        _ticket(load_plan_file(from_plan), from_plan, ticket_endpoints, ticket_attachment)
        return
    if not out:
        raise click.UsageError(
            "--out FILE is required: the plan file is what is reviewed and applied "
            "(--out - writes it to stdout)"
        )
    if fmt == "markdown" and out == "-":
        raise click.UsageError("--format markdown prints the ticket on stdout; give --out a file")
    key = plan_key()
    if key is not None:
        check_key(key)  # before the scan, not after it
    params = opts.policy()
    overrides = opts.overrides()
    target = None if out == "-" else out
    check_plan_target(target)
    url, engine = opts.connect()
    try:
        with streamed_plan(
            engine,
            schema=opts.schema,
            filters=opts.filters,
            filters_doc=opts.filters_doc(),
            params=params,
            overrides=overrides,
            overrides_path=opts.overrides_path,
            stage_spec=stage_spec,
            exclude_large=exclude_large,
            statement_timeout_s=opts.statement_timeout,
            jobs=opts.jobs,
            spill_dir=spill_directory(target),
            sealed=key is not None,  # else sealed while it is written
        ) as plan:
            engine.dispose()  # what follows reads the plan's items back, not the database
            if key is not None:
                plan = plan_stream.sign(plan, key)
            plan = write_plan_file(plan, target)
            header = plan.header
            stages = ", ".join(f"{s.number}:{s.name}={s.endpoints}" for s in header.stages)
            where = "stdout" if out == "-" else out
            signed = f", signed with ${KEY_ENV}" if header.signature else ""
            click.echo(
                f"plan {header.short_digest}: {plan.planned} endpoint(s) change, stages "
                f"{stages or 'none'}; written to {where}{signed}",
                err=True,
            )
            if fmt == "markdown":
                _ticket(plan, out, ticket_endpoints, ticket_attachment)
    finally:
        engine.dispose()
    sys.exit(pending_exit(plan.planned > 0, detailed_exitcode))


def _ticket(
    plan: Plan | plan_stream.StreamedPlan, plan_path: str, limit: int | None, attachment: str | None
) -> None:
    """The ticket on stdout; the endpoints it leaves out in the attachment it names."""
    attachment = attachment or attachment_name(plan_path)
    counted = tally(plan, limit)
    digest = None
    if counted.omitted:
        # Digested as it is written: the items are read once more, not twice.
        sha256 = hashlib.sha256()
        with output_stream(attachment) as handle:
            for piece in attachment_pieces(plan):
                handle.write(piece)
                sha256.update(piece.encode("utf-8"))
        digest = sha256.hexdigest()
        click.echo(
            f"wrote all {counted.items} endpoints to {attachment}: attach it to the ticket "
            "with the plan (--ticket-endpoints all lists them in the Markdown instead)",
            err=True,
        )
    text = render_markdown(
        plan, plan_path, limit, attachment, counted=counted, attachment_sha256=digest
    )
    click.echo(text, nl=False)


@main.command("status")
@database_options
@click.option("--run", "run_id", type=TEXT, metavar="RUN_ID", help="List this run's endpoints.")
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
@wide_option
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
    wide: bool,
) -> None:
    """Runs with their stages and outcome counts; one run's endpoints; a plan's progress.

    Read-only.

    \b
    Examples:
      bundle-migrate status                                # the latest runs
      bundle-migrate status --plan plan.json               # progress per stage
      bundle-migrate status --run run_0123456789abcdefghij --wide
      bundle-migrate status --format json                  # for machines
    """
    plan = load_plan_file(plan_file) if plan_file else None
    if plan is not None:
        schema = plan_schema(plan, schema)
    fleet.check_schema_name(schema)
    url, engine = connect(database_url)
    try:
        present, doc = status_document(
            engine, statement_timeout_s=statement_timeout, plan=plan, run_id=run_id, limit=limit
        )
    finally:
        engine.dispose()
    if fmt == "json":
        click.echo(
            json.dumps({"format_version": FORMAT_VERSION, **doc}, indent=2, default=json_default)
        )
    else:
        if not present and plan is None:
            click.echo(
                f"no bundle-migrate run has written to this database (no {jr.SCHEMA} schema)"
            )
            return
        click.echo(render_status(doc, wide=wide, width=terminal_width()), nl=False)

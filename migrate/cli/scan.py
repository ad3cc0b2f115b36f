"""`bundle-migrate scan`: what the new rule means for every vLLM endpoint. Read-only."""

from __future__ import annotations

import functools
import sys

import click

from migrate.cli.app import handle_errors, main, pending_exit
from migrate.cli.options import ScanOptions, detailed_exitcode_option, scan_options
from migrate.cli.output import output_stream, terminal_width, wide_option, with_progress
from migrate.scan.report import CHUNK_RENDERERS, FORMATS, WRITERS, JsonChunk, write_table
from migrate.scan.scanner import scan


@main.command("scan")
@scan_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="table for a terminal, markdown for a change ticket, json/csv for machines.",
)
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write here, not stdout.")
@click.option("--only-changes", is_flag=True, help="List only endpoints whose command changes.")
@wide_option
@detailed_exitcode_option
@handle_errors
def scan_command(
    opts: ScanOptions,
    fmt: str,
    output: str | None,
    only_changes: bool,
    wide: bool,
    detailed_exitcode: bool,
) -> None:
    """Report what the new rule means for every vLLM endpoint. Read-only.

    Runs in a READ ONLY transaction with a statement timeout, streaming rows
    through a server-side cursor: safe against a production primary.

    \b
    Examples:
      bundle-migrate scan                                  # table that fits the terminal
      bundle-migrate scan --wide --only-changes            # every column, changes only
      bundle-migrate scan --format markdown -o scan.md     # for a change ticket
      bundle-migrate scan --format json --name 'chat-*'    # for machines
      bundle-migrate scan --detailed-exitcode >/dev/null   # exit 2 if anything would change

    Exit status: 0 success (changes pending or not), 1 error; with
    --detailed-exitcode 0 no endpoint would change, 2 some would, 1 error.
    """
    params = opts.policy()
    overrides = opts.overrides()
    url, engine = opts.connect()
    meta = opts.meta(url, params)
    total = [0]
    # The count is a query over the whole fleet, run only for the progress bar.
    on_total = (lambda n: total.__setitem__(0, n)) if sys.stderr.isatty() else None
    render_chunk = CHUNK_RENDERERS.get(fmt)
    decisions = scan(
        engine,
        **opts.scan_kwargs(params, overrides),
        on_total=on_total,
        render_chunk=render_chunk and functools.partial(render_chunk, only_changes=only_changes),
        fingerprint=False,  # no report shows them; only a plan needs them
    )
    weight = _chunk_size if render_chunk else None
    try:
        with output_stream(output) as out:
            writer = WRITERS[fmt]
            if fmt == "table":
                writer = functools.partial(write_table, wide=wide, width=terminal_width())
            summary = writer(with_progress(decisions, total, weight), out, meta, only_changes)
    finally:
        engine.dispose()
    if output:
        click.echo(
            f"wrote {fmt} report of {summary.total} endpoints to {output} "
            f"({summary.changes} would change)",
            err=True,
        )
    sys.exit(pending_exit(summary.changes > 0, detailed_exitcode))


def _chunk_size(chunk: JsonChunk) -> int:
    return chunk.summary.total

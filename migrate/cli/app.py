"""The command group: exit statuses, one-line errors, signals, the audit log switch.

Exit codes follow Terraform: 0 success (changes pending included), 1 error;
with `--detailed-exitcode` (scan, plan, reconcile) 0 nothing to do, 2 changes
pending, 1 error. Every command module registers itself on `main` (see
migrate.cli's __init__); none imports another.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any

import click
import sqlalchemy.exc

from migrate.cli import auditlog
from migrate.core.overrides import OverridesError
from migrate.store import connection as db

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2
# What a shell reports for a tool killed by SIGPIPE (`yes | head -1`): the reader of our
# output went away, which is no error of ours and nothing to print about.
EXIT_CLOSED_PIPE = 128 + signal.SIGPIPE


def pending_exit(pending: bool, detailed: bool) -> int:
    """Changes pending are not an error (a CronJob must not fail, and be retried, on drift);
    callers that want to tell them apart ask with --detailed-exitcode."""
    return EXIT_CHANGES if pending and detailed else EXIT_OK


class Failure(click.ClickException):
    """An expected failure: one line on stderr, exit 1, never a traceback."""

    exit_code = EXIT_ERROR

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"bundle-migrate: error: {self.message}", err=True)


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn every anticipated failure into one readable line with no secret in it."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        url = None
        ctx = click.get_current_context()
        try:
            return func(*args, **kwargs)
        except (db.DatabaseError, OverridesError) as exc:
            raise Failure(str(exc)) from None
        except sqlalchemy.exc.DBAPIError as exc:
            url = ctx.meta.get("database_url")
            raise Failure(db.explain(exc, url)) from None
        except sqlalchemy.exc.SQLAlchemyError as exc:
            url = ctx.meta.get("database_url")
            raise Failure(db.scrub(f"database error: {exc}", url)) from None
        except KeyboardInterrupt:
            click.echo("bundle-migrate: interrupted", err=True)
            ctx.exit(130)

    return wrapper


@contextmanager
def sigterm_interrupts(enabled: bool) -> Iterator[None]:
    """SIGTERM (kubectl delete, timeout) ends a run like Ctrl-C: its run is marked interrupted."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler) if enabled else None
    try:
        yield
    finally:
        if enabled:
            signal.signal(signal.SIGTERM, previous)


@contextmanager
def _quiet_on_closed_pipe() -> Iterator[None]:
    try:
        yield
    except BrokenPipeError:
        # Point stdout at /dev/null, so the interpreter's last flush has nowhere to fail.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        except (OSError, ValueError):  # no real file descriptor (tests capture stdout)
            pass
        sys.exit(EXIT_CLOSED_PIPE)


class Cli(click.Group):
    """Usage errors exit 1, not click's 2: here 2 means "changes pending", and a
    cron job must not read a mistyped option as drift. A closed pipe (`scan | head`)
    ends the command quietly, as it ends any Unix tool."""

    # Both caught here, before click's own handler turns a closed pipe into exit 1:
    # make_context prints --help, invoke runs the command.
    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        with _quiet_on_closed_pipe():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        with _quiet_on_closed_pipe():
            return super().invoke(ctx)

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            result = super().main(*args, standalone_mode=False, **kwargs)
        except click.UsageError as exc:
            exc.show()
            sys.exit(EXIT_ERROR)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(EXIT_ERROR)
        sys.exit(result if isinstance(result, int) else EXIT_OK)


@click.group(
    cls=Cli,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(package_name="bundle-migrate")
@click.option(
    "--log-format",
    type=click.Choice(auditlog.FORMATS),
    default="text",
    show_default=True,
    envvar=auditlog.ENV,
    help="json: audit events with the run id, one JSON object per line on stderr.",
)
def main(log_format: str) -> None:
    """Move model engine's vLLM endpoints off the --enforce-eager that an old rule injected.

    \b
    Typical flow:
      bundle-migrate scan                      # read-only report
      bundle-migrate plan --out plan.json      # reviewed, staged plan
      bundle-migrate apply plan.json           # dry run; add --execute to write
      bundle-migrate rollback --plan plan.json # undo, exactly

    The database URL comes from --database-url or $BUNDLE_MIGRATE_DATABASE_URL.
    """
    auditlog.start_command(log_format)

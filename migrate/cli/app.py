"""The command group: exit statuses, one-line errors, signals, the audit log switch.

Exit codes follow Terraform: 0 success (changes pending included), 1 error;
with `--detailed-exitcode` (scan, plan, reconcile) 0 nothing to do, 2 changes
pending, 1 error. Every command module registers itself on `main` and is
named in COMMANDS below, which `main` imports it from on first use; none
imports another.
"""

from __future__ import annotations

import functools
import gc
import importlib
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any, NamedTuple

import click

from migrate.cli import auditlog
from migrate.cli.output import discard_stdout
from migrate.core import redact

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2
# What a shell reports for a tool killed by SIGPIPE (`yes | head -1`): the reader of our
# output went away, which is no error of ours and nothing to print about.
EXIT_CLOSED_PIPE = 128 + signal.SIGPIPE


def pending_exit(pending: bool, detailed: bool) -> int:
    """Changes pending are not an error (a CronJob must not fail, and be retried, on drift);
    callers that want to tell them apart ask with --detailed-exitcode."""
    return EXIT_CHANGES if pending and detailed else EXIT_OK


def error_line(message: str) -> str:
    """The one line an error takes: its words on one line, any password masked."""
    return "bundle-migrate: error: " + redact.mask(" ".join(message.split()))


class Failure(click.ClickException):
    """An expected failure: one line on stderr, exit 1, never a traceback."""

    exit_code = EXIT_ERROR

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(error_line(self.message), err=True)


def show_usage_error(exc: click.UsageError) -> None:
    """One line, and one hint where to read more: not click's four-line block."""
    click.echo(error_line(exc.format_message()), err=True)
    if exc.ctx is not None:
        click.echo(f"Try '{exc.ctx.command_path} --help' for help.", err=True)


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn every anticipated failure into one readable line with no secret in it."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        # Imported here, not at the top: `--help` and `--version` load no database driver.
        import psycopg
        import sqlalchemy.exc

        from migrate.core.overrides import OverridesError
        from migrate.scan.workers import WorkerError
        from migrate.store import connection as db
        from migrate.store.files import FileError

        url = None
        ctx = click.get_current_context()
        try:
            return func(*args, **kwargs)
        except (db.DatabaseError, OverridesError, FileError, WorkerError) as exc:
            raise Failure(str(exc)) from None
        except UnicodeEncodeError:
            # Bytes that are not UTF-8 in an argument (a name typed as $'\xff'): the
            # database takes text only, and the bytes themselves are not worth echoing.
            raise Failure("an argument is not valid UTF-8 text") from None
        except (sqlalchemy.exc.DBAPIError, psycopg.Error) as exc:
            # psycopg's own errors come from the fleet stream, which reads past SQLAlchemy.
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


class Command(click.Command):
    """A subcommand whose usage errors know it, so the hint names its --help."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            if exc.ctx is None:  # click's parser leaves it out for a missing option value
                exc.ctx = ctx
            raise


@contextmanager
def _quiet_on_closed_pipe() -> Iterator[None]:
    try:
        yield
    except BrokenPipeError:
        discard_stdout()  # so the interpreter's last flush has nowhere to fail
        sys.exit(EXIT_CLOSED_PIPE)


class CommandInfo(NamedTuple):
    module: str  # imported, it registers the command on `main`
    summary: str  # the command's first sentence, as `--help` lists it


# Every command, imported only when it runs, shows its help or completes its options:
# `--help` and `--version` load no database driver, HTTP client or terminal library
# (tests/cli/test_startup.py checks that, and that each summary matches its command).
COMMANDS: dict[str, CommandInfo] = {
    "apply": CommandInfo(
        "migrate.cli.rollout",
        "Apply a plan, stage by stage; a dry run unless --execute.",
    ),
    "demo": CommandInfo(
        "migrate.cli.sandbox",
        "Rehearse a whole rollout on a throwaway sandbox, narrated.",
    ),
    "plan": CommandInfo(
        "migrate.cli.plan",
        "Make a reviewed, staged plan of the endpoints whose command changes.",
    ),
    "reconcile": CommandInfo(
        "migrate.cli.reconcile",
        "Check that the fleet stays on the new rule and the journal still holds.",
    ),
    "rollback": CommandInfo(
        "migrate.cli.rollout",
        "Point endpoints back at their previous bundle, restore their metadata exactly, redeploy.",
    ),
    "runbook": CommandInfo(
        "migrate.cli.runbook",
        "List the runbooks, or print one (Markdown).",
    ),
    "sandbox": CommandInfo(
        "migrate.cli.sandbox",
        "A local model engine database with a synthetic fleet, to learn and rehearse on.",
    ),
    "scan": CommandInfo(
        "migrate.cli.scan",
        "Report what the new rule means for every vLLM endpoint.",
    ),
    "status": CommandInfo(
        "migrate.cli.plan",
        "Runs with their stages and outcome counts; one run's endpoints; a plan's progress.",
    ),
}


class Cli(click.Group):
    """Usage errors exit 1, not click's 2: here 2 means "changes pending", and a
    cron job must not read a mistyped option as drift. A closed pipe (`scan | head`)
    ends the command quietly, as it ends any Unix tool. Commands load on first use
    (see COMMANDS)."""

    command_class = Command

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            importlib.import_module(COMMANDS[cmd_name].module)  # registers it on `main`
        return super().get_command(ctx, cmd_name)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in self.list_commands(ctx):
            # A mistyped name: with every command loaded, click suggests the nearest one.
            for name in COMMANDS:
                self.get_command(ctx, name)
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The Commands section of `--help`, from the summaries: no command is imported."""
        limit = formatter.width - 6 - max(map(len, COMMANDS))
        rows = [(name, self._summary(name).get_short_help_str(limit)) for name in sorted(COMMANDS)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        """Command names complete from the summaries too; options as for any command."""
        from click.shell_completion import CompletionItem

        names = [
            CompletionItem(name, help=self._summary(name).get_short_help_str())
            for name in sorted(COMMANDS)
            if name.startswith(incomplete)
        ]
        return names + click.Command.shell_complete(self, ctx, incomplete)

    @staticmethod
    def _summary(name: str) -> click.Command:
        """A stand-in that shortens the summary to a width exactly as click shortens help."""
        return click.Command(name, help=COMMANDS[name].summary)

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
            status = result if isinstance(result, int) else EXIT_OK
        except click.UsageError as exc:
            show_usage_error(exc)
            status = EXIT_ERROR
        except click.ClickException as exc:
            exc.show()
            status = exc.exit_code
        except click.Abort:
            click.echo("Aborted!", err=True)
            status = EXIT_ERROR
        except SystemExit as exc:  # the commands exit with their status
            code = exc.code
            status = code if isinstance(code, int) else (EXIT_OK if code is None else EXIT_ERROR)
        if status != EXIT_OK:
            _forget_handled_interrupts()
        sys.exit(_flushed(status))


def _forget_handled_interrupts() -> None:
    """Exit with our status, not by SIGINT, after an interrupt we handled.

    CPython (3.11) notes a KeyboardInterrupt that leaves code run by exec() of a
    string as unhandled even when a caller catches it, and under ``python -m``
    then ends the process by SIGINT instead of with its exit status. A Ctrl-C or
    SIGTERM while a command's modules import lands there (dataclasses and named
    tuples are made that way): the demo, interrupted so, was killed by SIGINT
    after it had said "interrupted" and stopped its sandbox. Every interrupt is
    handled by the time a command has its status, so the note is cleared.
    """
    try:
        import ctypes

        ctypes.c_int.in_dll(ctypes.pythonapi, "_Py_UnhandledKeyboardInterrupt").value = 0
    except (ImportError, AttributeError, ValueError, OSError):
        pass  # another interpreter, or one without the note: nothing to clear


def _flushed(status: int) -> int:
    """The exit status once stdout is flushed: 1 if the report could not be written whole."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:  # the reader left (`scan | head`): quiet, as any Unix tool
        discard_stdout()
        return EXIT_CLOSED_PIPE
    except OSError as exc:  # stdout is /dev/full
        discard_stdout()
        click.echo(error_line(f"cannot write to standard output: {exc.strerror}"), err=True)
        return EXIT_ERROR
    return status


@click.group(
    name="bundle-migrate",
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


def run() -> None:
    """The program (``bundle-migrate``, ``python -m migrate``): main, as the process.

    When it ends, the process ends: the collector's last pass at interpreter exit
    would walk every object still alive (0.1 s after a scan of 100,000 endpoints)
    to find cycles that the exit frees anyway. Frozen, they are left to it.
    Every file and connection is closed by then (each command closes its own), so
    no finalizer is owed. Tests call `main`, whose process goes on.
    """
    try:
        main(prog_name="bundle-migrate")
    finally:
        gc.freeze()

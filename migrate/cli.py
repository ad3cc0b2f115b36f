"""Command-line entry point: options in, library calls, rendering out.

Exit codes follow `terraform plan -detailed-exitcode`: 0 nothing to do,
2 changes pending, 1 error.
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any

import click
import sqlalchemy.exc

from migrate import auditlog, db, fleet
from migrate.overrides import Overrides, OverridesError, load_overrides
from migrate.policy import RECORDED_DROP, RECORDED_KEEP, PolicyParams
from migrate.records import Decision
from migrate.report import FORMATS, WRITERS
from migrate.scan import scan

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2


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


def database_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option(
        "--statement-timeout",
        type=click.IntRange(min=1),
        default=db.DEFAULT_STATEMENT_TIMEOUT_S,
        show_default=True,
        help="Seconds any one SQL statement may run before the server cancels it.",
    )(func)
    func = click.option(
        "--schema",
        default=db.DEFAULT_SCHEMA,
        show_default=True,
        help="PostgreSQL schema holding model engine's tables.",
    )(func)
    func = click.option(
        "--database-url",
        metavar="URL",
        help=f"postgresql:// or postgresql+psycopg:// URL; default: ${db.URL_ENV}. "
        "Prefer the environment variable: a password on the command line is visible to ps.",
    )(func)
    return func


def policy_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for decorator in reversed(
        [
            click.option("--name", "name_glob", metavar="GLOB", help="Endpoint name glob."),
            click.option("--owner", help="Only endpoints of this owner."),
            click.option("--model", "model_glob", metavar="GLOB", help="Model name glob."),
            click.option(
                "--status",
                "statuses",
                multiple=True,
                metavar="STATUS",
                help="Only endpoints in this status (repeatable), e.g. READY.",
            ),
            click.option(
                "--threshold",
                default="0.95",
                show_default=True,
                help="Utilization at or above which the new rule keeps eager.",
            ),
            click.option(
                "--recorded",
                type=click.Choice([RECORDED_KEEP, RECORDED_DROP]),
                default=RECORDED_KEEP,
                show_default=True,
                help="enforce_eager: true recorded by a legacy recreation: keep it "
                "(safe default) or treat it as injected and apply the rule.",
            ),
            click.option(
                "--overrides",
                "overrides_path",
                type=click.Path(dir_okay=False),
                help="TOML file of endpoints/models that keep eager or follow the rule "
                "(see README).",
            ),
        ]
    ):
        func = decorator(func)
    return func


_SCAN_OPTION_NAMES = (
    "database_url",
    "schema",
    "statement_timeout",
    "name_glob",
    "owner",
    "model_glob",
    "statuses",
    "threshold",
    "recorded",
    "overrides_path",
)


@dataclass(frozen=True)
class ScanOptions:
    """The options every fleet-reading command shares, as the operator typed them."""

    database_url: str | None
    schema: str
    statement_timeout: int
    name_glob: str | None
    owner: str | None
    model_glob: str | None
    statuses: tuple[str, ...]
    threshold: str
    recorded: str
    overrides_path: str | None

    @property
    def filters(self) -> fleet.Filters:
        return fleet.Filters(self.name_glob, self.owner, self.model_glob, self.statuses)

    def filters_doc(self) -> dict[str, Any]:
        """The filters as plan files and reports record them."""
        return {
            "name": self.name_glob,
            "owner": self.owner,
            "model": self.model_glob,
            "status": list(self.statuses),
        }

    def policy(self) -> PolicyParams:
        return build_policy(self.threshold, self.recorded)

    def overrides(self) -> Overrides | None:
        return load_overrides(self.overrides_path) if self.overrides_path else None

    def connect(self) -> tuple[Any, Any]:
        fleet.check_schema_name(self.schema)
        return connect(self.database_url)

    def meta(self, url: Any, params: PolicyParams) -> dict[str, Any]:
        """The header of a report: what was read, when, under which policy."""
        return {
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "database": db.masked(url),
            "schema": self.schema,
            "policy": params.as_dict(),
            "filters": self.filters_doc(),
            "overrides": self.overrides_path,
        }

    def scan_kwargs(self, params: PolicyParams, overrides: Overrides | None) -> dict[str, Any]:
        """Keyword arguments for migrate.scan.scan and the checks built on it."""
        return {
            "schema": self.schema,
            "filters": self.filters,
            "params": params,
            "overrides": overrides,
            "statement_timeout_s": self.statement_timeout,
        }


def scan_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Database, filter and policy options, handed to the command as one `opts`."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        opts = ScanOptions(**{name: kwargs.pop(name) for name in _SCAN_OPTION_NAMES})
        return func(*args, opts=opts, **kwargs)

    return database_options(policy_options(wrapper))


def build_policy(threshold: str, recorded: str) -> PolicyParams:
    try:
        value = Decimal(threshold)
    except InvalidOperation:
        raise click.BadParameter(
            f"{threshold!r} is not a number", param_hint="--threshold"
        ) from None
    if not (Decimal(0) < value <= Decimal(1)):
        raise click.BadParameter("must be in (0, 1]", param_hint="--threshold")
    return PolicyParams(threshold=value, recorded=recorded)


def connect(database_url: str | None) -> tuple[Any, Any]:
    url = db.url_from(database_url)
    click.get_current_context().meta["database_url"] = url
    return url, db.make_engine(url)


@contextmanager
def output_stream(path: str | None) -> Iterator[IO[str]]:
    """Write to a temporary file and rename, so a failed run never leaves half a report.

    Only a regular file (or a new one) is replaced that way: renaming over
    /dev/null, a FIFO or /dev/stdout would destroy the device, so those are
    written in place.
    """
    if path is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    target = Path(path)
    if target.exists() and not target.is_file():
        with open(target, "w", encoding="utf-8", newline="") as handle:
            yield handle
        return
    fd, tmp = tempfile.mkstemp(dir=target.parent or Path("."), prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            yield handle
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def with_progress(decisions: Iterable[Decision], total: list[int]) -> Iterator[Decision]:
    """A progress bar on stderr, only when a person is watching it."""
    if not sys.stderr.isatty():
        yield from decisions
        return
    iterator = iter(decisions)
    first = next(iterator, None)  # runs the count query, which fills total
    if first is None:
        return
    with click.progressbar(
        length=total[0] or 1, label="scanning", file=sys.stderr, show_eta=True
    ) as bar:
        yield first
        bar.update(1)
        for d in iterator:
            yield d
            bar.update(1)


class Cli(click.Group):
    """Usage errors exit 1, not click's 2: here 2 means "changes pending", and a
    cron job must not read a mistyped option as drift."""

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
      bundle-migrate scan                      # read-only report, exit 2 if changes
      bundle-migrate plan --out plan.json      # reviewed, staged plan
      bundle-migrate apply plan.json           # dry run; add --execute to write
      bundle-migrate rollback --plan plan.json # undo, exactly

    The database URL comes from --database-url or $BUNDLE_MIGRATE_DATABASE_URL.
    """
    auditlog.start_command(log_format)


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
@handle_errors
def scan_command(opts: ScanOptions, fmt: str, output: str | None, only_changes: bool) -> None:
    """Report what the new rule means for every vLLM endpoint. Read-only.

    Runs in a READ ONLY transaction with a statement timeout, streaming rows
    through a server-side cursor: safe against a production primary.

    Exit status: 0 no endpoint would change, 2 some would, 1 error.
    """
    params = opts.policy()
    overrides = opts.overrides()
    url, engine = opts.connect()
    meta = opts.meta(url, params)
    total = [0]
    decisions = scan(
        engine,
        **opts.scan_kwargs(params, overrides),
        on_total=lambda n: total.__setitem__(0, n),
    )
    try:
        with output_stream(output) as out:
            summary = WRITERS[fmt](with_progress(decisions, total), out, meta, only_changes)
    finally:
        engine.dispose()
    if output:
        click.echo(
            f"wrote {fmt} report of {summary.total} endpoints to {output} "
            f"({summary.changes} would change)",
            err=True,
        )
    sys.exit(EXIT_CHANGES if summary.changes else EXIT_OK)


from migrate import cli_rollout  # noqa: E402,F401

from migrate import cli_reconcile  # noqa: E402,F401  # isort: skip
from migrate import cli_sandbox  # noqa: E402,F401  # isort: skip

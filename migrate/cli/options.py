"""Options the commands share: the database, the fleet filters, the policy.

`scan_options` hands a command one `ScanOptions` holding what the operator typed;
turning it into library arguments (a policy, overrides, an engine) happens here,
so every fleet-reading command reads the options the same way.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import click

from migrate.core.documents import timestamp
from migrate.core.overrides import Overrides, parse_overrides
from migrate.core.policy import (
    ARGS_RECORDED_SINCE,
    RECORDED_DROP,
    RECORDED_KEEP,
    PolicyParams,
    format_cut_over,
    parse_cut_over,
)
from migrate.store import connection as db
from migrate.store import files, fleet


class Text(click.ParamType):
    """A string that must be valid UTF-8: the database takes nothing else.

    Bytes that are not UTF-8 ($'\\xff') reach Python as lone surrogates and would
    end in an encoding traceback at the first query; here they are a usage error
    that does not echo them.
    """

    name = "text"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                self.fail("not valid UTF-8 text", param, ctx)
        return value


class Threshold(click.ParamType):
    """A utilization in (0, 1], kept exact as a Decimal (0.95 must mean 0.95)."""

    name = "number"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, Decimal):
            return value
        try:
            number = Decimal(str(value).strip())
        except (InvalidOperation, ValueError):
            self.fail("not a number", param, ctx)
        if not number.is_finite():
            self.fail("not a finite number; must be in (0, 1]", param, ctx)
        if not (Decimal(0) < number <= Decimal(1)):
            self.fail("must be in (0, 1]", param, ctx)
        return number


TEXT = Text()


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
        type=TEXT,
        default=db.DEFAULT_SCHEMA,
        show_default=True,
        help="PostgreSQL schema holding model engine's tables.",
    )(func)
    func = click.option(
        "--database-url",
        type=TEXT,
        metavar="URL",
        help=f"postgresql:// or postgresql+psycopg:// URL; default: ${db.URL_ENV}. "
        "Prefer the environment variable: a password on the command line is visible to ps.",
    )(func)
    return func


class CountOrAll(click.ParamType):
    """A positive count, or `all` (None): how many of something to list."""

    name = "N|all"

    def convert(self, value: Any, param: Any, ctx: Any) -> int | None:
        if value is None or isinstance(value, int):
            return value
        if str(value).strip().lower() == "all":
            return None
        try:
            number = int(value)
        except ValueError:
            self.fail(f"{value!r} is neither a number nor 'all'", param, ctx)
        if number < 1:
            self.fail("must be at least 1, or 'all'", param, ctx)
        return number


class Jobs(click.ParamType):
    """A process count for reading commands, or `auto` (the CPUs this process may use, up to 4)."""

    name = "N|auto"

    def convert(self, value: Any, param: Any, ctx: Any) -> int:
        if isinstance(value, int):
            return value
        if str(value).strip().lower() == "auto":
            from migrate.scan.workers import auto_jobs

            return auto_jobs()
        try:
            number = int(value)
        except ValueError:
            self.fail(f"{value!r} is neither a number nor 'auto'", param, ctx)
        if not 1 <= number <= 64:
            self.fail("must be from 1 to 64, or 'auto'", param, ctx)
        return number


def detailed_exitcode_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--detailed-exitcode",
        is_flag=True,
        help="Exit 0 when nothing is pending, 2 when changes are, 1 on error (as "
        "terraform plan -detailed-exitcode). Without it, pending changes exit 0.",
    )(func)


def policy_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for decorator in reversed(
        [
            click.option(
                "--name", "name_glob", type=TEXT, metavar="GLOB", help="Endpoint name glob."
            ),
            click.option("--owner", type=TEXT, help="Only endpoints of this owner."),
            click.option(
                "--model", "model_glob", type=TEXT, metavar="GLOB", help="Model name glob."
            ),
            click.option(
                "--status",
                "statuses",
                type=TEXT,
                multiple=True,
                metavar="STATUS",
                help="Only endpoints in this status (repeatable), e.g. READY.",
            ),
            click.option(
                "--threshold",
                type=Threshold(),
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
                "--args-recorded-since",
                metavar="DATE",
                default=format_cut_over(ARGS_RECORDED_SINCE),
                show_default=True,
                help="When model engine began storing callers' vLLM args (YYYY-MM-DD, UTC). "
                "An args dict on an endpoint created since is the caller's request; one "
                "created before can only be a recreation's parse-back. Use the day your "
                "model engine took that release.",
            ),
            click.option(
                "--overrides",
                "overrides_path",
                type=click.Path(dir_okay=False),
                help="TOML file of endpoints/models that keep eager or follow the rule "
                "(see README).",
            ),
            click.option(
                "--jobs",
                "-j",
                type=Jobs(),
                default="auto",
                show_default=True,
                envvar="BUNDLE_MIGRATE_JOBS",
                help="Processes that read commands (env BUNDLE_MIGRATE_JOBS). auto: the "
                "CPUs this process may use, up to 4; fleets under 2,048 endpoints are "
                "read in one process either way. 1 where memory is tight (each worker "
                "holds about 70 MB).",
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
    "args_recorded_since",
    "overrides_path",
    "jobs",
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
    threshold: Decimal
    recorded: str
    args_recorded_since: str
    overrides_path: str | None
    jobs: int

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
        return build_policy(self.threshold, self.recorded, self.args_recorded_since)

    def overrides(self) -> Overrides | None:
        return load_overrides(self.overrides_path) if self.overrides_path else None

    def connect(self) -> tuple[Any, Any]:
        fleet.check_schema_name(self.schema)
        return connect(self.database_url)

    def meta(self, url: Any, params: PolicyParams) -> dict[str, Any]:
        """The header of a report: what was read, when, under which policy."""
        return {
            "generated_at": timestamp(datetime.now(UTC).replace(microsecond=0)),
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
            "jobs": self.jobs,
        }


def scan_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Database, filter and policy options, handed to the command as one `opts`."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        opts = ScanOptions(**{name: kwargs.pop(name) for name in _SCAN_OPTION_NAMES})
        return func(*args, opts=opts, **kwargs)

    return database_options(policy_options(wrapper))


def build_policy(threshold: Decimal | str, recorded: str, args_recorded_since: str) -> PolicyParams:
    try:
        since = parse_cut_over(args_recorded_since)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--args-recorded-since") from None
    return PolicyParams(
        threshold=Threshold().convert(threshold, None, None),
        recorded=recorded,
        args_recorded_since=since,
    )


def connect(database_url: str | None) -> tuple[Any, Any]:
    url = db.url_from(database_url)
    click.get_current_context().meta["database_url"] = url
    return url, db.make_engine(url)


OVERRIDES_LIMIT = files.MIB  # thousands of patterns; more is a mistake, not a policy


def load_overrides(path: str | Path) -> Overrides:
    text = files.read_text(path, what="overrides file", limit=OVERRIDES_LIMIT)
    return parse_overrides(text, source=files.shown(path))

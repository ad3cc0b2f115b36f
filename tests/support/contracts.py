"""The shipped JSON Schemas of the outputs, loaded as a consumer would load them."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
from referencing import Registry, Resource

PACKAGE = "migrate.schemas"


@cache
def shipped() -> dict[str, dict[str, Any]]:
    """Every schema in the installed package, by name (`scan` for scan.schema.json)."""
    folder = resources.files(PACKAGE)
    return {
        f.name.removesuffix(".schema.json"): json.loads(f.read_text(encoding="utf-8"))
        for f in folder.iterdir()
        if f.name.endswith(".schema.json")
    }


@cache
def registry() -> Registry:
    return Registry().with_resources(
        (doc["$id"], Resource.from_contents(doc)) for doc in shipped().values()
    )


def validator(name: str) -> jsonschema.protocols.Validator:
    schema = shipped()[name]
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, registry=registry(), format_checker=cls.FORMAT_CHECKER)


def validate(name: str, document: Any) -> None:
    """Raise jsonschema.ValidationError when `document` breaks the `name` contract."""
    validator(name).validate(document)


def errors(name: str, document: Any) -> list[str]:
    return [e.message for e in validator(name).iter_errors(document)]

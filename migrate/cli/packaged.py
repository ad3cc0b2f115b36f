"""Documents that ship inside the package, so an installed tool (a container) can show them.

The runbooks live at the top of the repository (runbooks/) for reviewers and
install as the package data `migrate.runbooks`, like the SQL files.
"""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable

RUNBOOKS = "migrate.runbooks"


def runbooks() -> dict[str, Traversable]:
    """Every shipped runbook by its short name (`reconciliation` for reconciliation.md)."""
    folder = resources.files(RUNBOOKS)
    found = {f.name.removesuffix(".md"): f for f in folder.iterdir() if f.name.endswith(".md")}
    return dict(sorted(found.items()))


def runbook_hint(name: str) -> str:
    """How a message points at a runbook: a command that prints it wherever the tool runs."""
    return f"`bundle-migrate runbook {name}`"

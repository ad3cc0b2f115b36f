"""The command line: click commands that parse options, call one library function, render.

Importing this package registers every command on the group `main`.
"""

from migrate.cli import (  # noqa: F401  (registers commands)
    plan,
    reconcile,
    rollout,
    runbook,
    sandbox,
    scan,
)
from migrate.cli.app import main

__all__ = ["main"]

"""The command line: click commands that parse options, call one library function, render.

`main` is the command group; it imports a command's module when that command is
used (see migrate.cli.app.COMMANDS), so `--help` and `--version` start fast.
"""

from migrate.cli.app import main, run

__all__ = ["main", "run"]

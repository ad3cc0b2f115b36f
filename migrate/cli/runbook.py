"""`bundle-migrate runbook`: the on-call runbooks that ship with the tool."""

from __future__ import annotations

import click

from migrate.cli.app import Failure, main
from migrate.cli.packaged import runbooks


@main.command("runbook")
@click.argument("name", required=False)
def runbook_command(name: str | None) -> None:
    """List the runbooks, or print one (Markdown).

    The same files as runbooks/ in the repository, installed with the tool, so
    they are at hand in the container image too.

    \b
    Examples:
      bundle-migrate runbook                      # list them
      bundle-migrate runbook reconciliation       # print one
      bundle-migrate runbook staged-rollout | less
    """
    found = runbooks()
    if name is None:
        for short, file in found.items():
            title = file.read_text(encoding="utf-8").partition("\n")[0].lstrip("# ")
            click.echo(f"{short:<24} {title}")
        return
    file = found.get(name.removesuffix(".md"))
    if file is None:
        raise Failure(f"no runbook {name!r}; there are: {', '.join(found)}")
    click.echo(file.read_text(encoding="utf-8"), nl=False)

"""The stored vLLM start command as data: read it as bash does, and toggle ``--enforce-eager``.

A bundle's command is ``["/bin/bash", "-c", script]`` and the script went through
eight formatting generations (see the facts file, section 3): unquoted Python dict
reprs, quoted values, two module names, download steps, a whole model-cache
program and Ray in front. The only safe change to such a script is surgical, so
this module finds the one simple command bash runs as the vLLM server (with
bash's own grammar, :mod:`migrate.core.shell`), reads its arguments as the
server receives them (:mod:`migrate.core.shellwords`), and checks every edit by
reading the changed stretch again.

What it cannot know it says: arguments made by expansions at run time
(``$(...)``, backticks, ``$VAR``, ``eval``) are an ``indirect-arguments`` error,
not a guess.

Pure and stdlib-only on purpose: the policy and the plan are tested without a
database, and the same code must give the same answer in a dry run and a real run.

The reading and the edit are parts, a module each: the invocation as data and its
errors (:mod:`~migrate.core.command_model`), finding the server's start
(:mod:`~migrate.core.command_locate`), grouping its arguments
(:mod:`~migrate.core.command_args`), whether bash reaches it
(:mod:`~migrate.core.command_reachability`), reading a script whole
(:mod:`~migrate.core.command_reading`) and the edit with its verification
(:mod:`~migrate.core.command_edit`). This module is their face: callers import
everything from here.
"""

from __future__ import annotations

from collections.abc import Sequence

from migrate.core import shell
from migrate.core.command_edit import set_enforce_eager
from migrate.core.command_model import (
    AMBIGUOUS_ENFORCE_EAGER,
    ENFORCE_EAGER,
    GPU_MEMORY_UTILIZATION,
    INDIRECT_ARGUMENTS,
    KINDS,
    MULTIPLE_VLLM_INVOCATIONS,
    NO_VLLM_INVOCATION,
    NOT_A_BASH_COMMAND,
    UNBALANCED_QUOTING,
    VERIFICATION_FAILED,
    VLLM_MODULES,
    Arg,
    CommandError,
    VllmInvocation,
)
from migrate.core.command_reading import _parse
from migrate.core.recurring import RecurringCache

__all__ = [
    "AMBIGUOUS_ENFORCE_EAGER",
    "ENFORCE_EAGER",
    "GPU_MEMORY_UTILIZATION",
    "INDIRECT_ARGUMENTS",
    "KINDS",
    "MULTIPLE_VLLM_INVOCATIONS",
    "NOT_A_BASH_COMMAND",
    "NO_VLLM_INVOCATION",
    "UNBALANCED_QUOTING",
    "VERIFICATION_FAILED",
    "VLLM_MODULES",
    "Arg",
    "CommandError",
    "VllmInvocation",
    "parse_command",
    "parse_script",
    "set_enforce_eager",
    "split_subcommands",
]

SHELLS = ("/bin/bash", "bash", "/bin/sh", "sh")


# Public API -----------------------------------------------------------------------


def split_subcommands(script: str) -> list[tuple[int, int]]:
    """Spans of the script's top-level pipelines (split at ``;``, ``&``, newlines, ``&&``, ``||``).

    Raises CommandError when bash would refuse the script, since then nobody can
    say where a subcommand ends.
    """
    if not isinstance(script, str):
        raise CommandError(NOT_A_BASH_COMMAND, "The command script is not a string.")
    try:
        return list(shell.parse(script).pipelines)
    except shell.ShellSyntaxError as err:
        raise CommandError(UNBALANCED_QUOTING, f"The script is not valid bash: {err}") from err


# Fleets repeat scripts (one template, many endpoints of a model): a script read
# more than once is not read again while it is among those kept
# (migrate.core.recurring). A reading is immutable, so sharing it is safe; an
# error is kept as one and raised afresh.
_READINGS_KEPT = 2048
_readings: RecurringCache[str, VllmInvocation | CommandError] = RecurringCache(_READINGS_KEPT)


def parse_script(script: str) -> VllmInvocation:
    if not isinstance(script, str):
        raise CommandError(NOT_A_BASH_COMMAND, "The command script is not a string.")
    read = _readings.get(script)
    if read is None:
        try:
            read = _parse(script)
        except CommandError as err:
            read = err
        _readings.offer(script, read)
    if isinstance(read, CommandError):
        raise CommandError(read.kind, read.reason)
    return read


def parse_command(command: Sequence[str] | None) -> VllmInvocation:
    if (
        not isinstance(command, list | tuple)
        or len(command) != 3
        or not all(isinstance(part, str) for part in command)
        or command[0] not in SHELLS
        or command[1] != "-c"
    ):
        raise CommandError(NOT_A_BASH_COMMAND, "The command is not of the form [bash, -c, script].")
    return parse_script(command[2])

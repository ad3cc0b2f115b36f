"""What a reading of a bash script reports: its simple commands, where each stands, syntax errors.

:mod:`migrate.core.shell` answers with these plain, frozen values: a :class:`Command`
for every simple command, with the context bits that say where it runs (in a
function, a substitution, a pipeline, after ``&&`` or ``||``...), the
:class:`Script` they make up, the words of one :class:`SimpleCommand`, and the
:class:`ShellSyntaxError` a script bash refuses becomes. They stand apart from the
parser so that every layer of it, the facade and the callers name them alike,
without importing one another.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

__all__ = [
    "AFTER_AND",
    "ASYNC",
    "CONDITIONAL",
    "IN_PIPELINE",
    "TESTED",
    "IN_COMPOUND",
    "IN_FUNCTION",
    "IN_SUBSTITUTION",
    "Command",
    "Script",
    "ShellSyntaxError",
    "SimpleCommand",
]


class ShellSyntaxError(ValueError):
    """The script is not valid bash: bash would stop with a syntax error."""


# Context bits of a simple command.
IN_FUNCTION = 1  # in a function body: it runs only when the function is called
IN_SUBSTITUTION = 2  # in $(...), <(...) or >(...): a pipe takes its output
IN_COMPOUND = 4  # in { }, ( ), if, while, until, for, select or case
CONDITIONAL = 8  # after ||: runs only when what came before failed
ASYNC = 16  # run in the background (&): its exit or set leaves the script alone
IN_PIPELINE = 32  # one of several commands of a pipeline: each runs in a subshell
AFTER_AND = 64  # after &&: runs when what came before succeeded (as a scan assumes)
TESTED = 128  # followed by && or ||: its failure does not end a script under set -e


class Command(NamedTuple):
    """One simple command bash would run, located in the script.

    A tuple: a script has dozens, and a parse makes them all.
    """

    start: int  # its first word or redirection
    end: int  # just past its last word or redirection
    name_start: int  # the command name: the first word that is not an assignment
    name_end: int  # (-1, -1 when the command only assigns or redirects)
    context: int  # IN_* and CONDITIONAL bits
    pipeline_start: int  # the pipeline it belongs to (itself when alone)
    pipeline_end: int
    # A redirection bash cannot make ("2>&1x": ambiguous redirect): the command
    # never runs, and under ``set -e`` the script ends there.
    bad_redirect: bool = False
    # Ordinary words with blanks between, read in one step: its words are the
    # word runs from start to end (see shell.command_words).
    plain: bool = False


@dataclass(frozen=True, slots=True)
class Script:
    """A parsed script: its simple commands in order, and its top-level pipelines."""

    text: str
    commands: tuple[Command, ...]
    pipelines: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class SimpleCommand:
    """The words of one simple command, as :func:`read_simple_command` reads them."""

    start: int
    end: int
    words: tuple[tuple[int, int], ...]  # spans of its words, redirections left out
    assignments: int  # how many of the words are leading NAME=value assignments

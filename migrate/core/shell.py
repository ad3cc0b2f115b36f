"""Bash's grammar for a ``bash -c`` script: its simple commands, where each stands, syntax errors.

The start commands this project edits are bash scripts that model engine (and
sometimes a person) wrote: download steps, shell functions, ``case``, loops,
background subshells, here-documents, nested ``bash -c`` strings, and last the
vLLM server. Editing one token surgically needs to know exactly which bytes bash
reads as which word of which command, so this module follows bash's own parser
(bash 5.2): quotes, escapes, expansions and substitutions, comments, operators
and redirections, reserved words in command position, compound commands,
function definitions and here-documents. A script bash refuses with a syntax
error is refused here too (:class:`ShellSyntaxError`), so nothing is edited that
bash would not run.

:func:`parse` reports every simple command: its span, the span of its command
name and the context it runs in. What a word *means* (quote removal, expansions)
is :mod:`migrate.core.shellwords`'s; what a vLLM start looks like is
:mod:`migrate.core.command`'s.

Speed matters (a scan reads every script of the fleet): compiled regular
expressions jump over runs of ordinary characters and whole ordinary words, so
Python code runs per command and per unusual character, not per byte.

This module is the reader's face; the reader itself is one class built in layers,
a module each: the state and the space between tokens (:mod:`~migrate.core.shell_lexer`),
words and their expansions (:mod:`~migrate.core.shell_expansions`), simple commands
and redirections (:mod:`~migrate.core.shell_simple`), compound commands
(:mod:`~migrate.core.shell_compound`), lists and pipelines
(:mod:`~migrate.core.shell_parser`); what it reports is :mod:`~migrate.core.shell_model`'s.

Pure and stdlib-only: the same code must give the same answer in a dry run and
a real run.
"""

from __future__ import annotations

from migrate.core.shell_expansions import _WORD_RUN
from migrate.core.shell_lexer import _NO_STOP
from migrate.core.shell_model import (
    AFTER_AND,
    ASYNC,
    CONDITIONAL,
    IN_COMPOUND,
    IN_FUNCTION,
    IN_PIPELINE,
    IN_SUBSTITUTION,
    TESTED,
    Command,
    Script,
    ShellSyntaxError,
    SimpleCommand,
)
from migrate.core.shell_parser import _Parser, plain_command

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
    "lone_plain_command",
    "parse",
    "parse_quoting",
    "command_words",
    "read_simple_command",
    "read_words",
    "substitution_end",
]


# Public API -----------------------------------------------------------------------


def parse(text: str, start: int = 0) -> Script:
    """The script's simple commands and top-level pipelines; ShellSyntaxError if bash refuses it.

    Bash parses a ``bash -c`` string one line at a time and runs each line before
    reading the next, so a fault on a later line would not stop earlier lines.
    This reader refuses the whole script instead: an edit is only ever made to a
    script that bash reads entirely.

    ``start``: read from there on, as if the script began there (the caller has
    read what comes before, which ends with whole commands, another way).
    """
    parser = _Parser(text)
    end, _ = parser.compound_list(parser.plain_commands(start), 0, _NO_STOP)
    if end < parser.n:
        raise parser.unexpected(end)
    commands = tuple(Command(*record) for record in parser.records)
    return Script(text, commands, tuple(parser.pipelines))


def lone_plain_command(text: str, start: int = 0) -> Command | None:
    """The one command :func:`parse` ``(text, start)`` reports when all the text from
    ``start`` on is a single command of ordinary words; None when it is anything else
    (then parse reads it).

    The same regular expression as parse's first step reads it, without the rest of
    the reader: a server's command after a setup read before is mostly this.
    """
    if "\\\n" in text:
        return None  # as parse's first step: a line continuation goes the long way
    read = plain_command(text, start)
    if read is None or read[1] != len(text):
        return None
    return Command(*read[0])


def parse_quoting(text: str) -> tuple[Script, list[tuple[int, int]]]:
    """:func:`parse`, and the spans of the script's single-quoted strings: text whose
    inside bash never reads as anything but text. Slower than parse()."""
    quotes: list[tuple[int, int]] = []
    parser = _Parser(text, quotes)
    end, _ = parser.compound_list(0, 0, _NO_STOP)
    if end < parser.n:
        raise parser.unexpected(end)
    commands = tuple(Command(*record) for record in parser.records)
    return Script(text, commands, tuple(parser.pipelines)), sorted(quotes)


def read_simple_command(text: str, start: int) -> SimpleCommand:
    """The words of the simple command at ``start`` (a :class:`Command`'s start).

    Reads only that command, so an edit inside it can be checked without reading
    the whole script again: the bytes before it are unchanged, and so is the
    parser's state where it starts.
    """
    parser = _Parser(text)
    # The common case: a command parse() read in one step (_Parser.simple_run)
    # is ordinary words with blanks between, split here by one regex.
    end = parser.simple_run(start, 0)
    if end >= 0:
        spans = tuple(m.span() for m in _WORD_RUN.finditer(text, start, end))
        return SimpleCommand(start, end, spans, 0)
    words: list[tuple[int, int]] = []
    end = parser.simple(start, 0, words)
    _, assignments = words.pop()
    return SimpleCommand(start, end, tuple(words), assignments)


def command_words(text: str, command: Command) -> SimpleCommand:
    """:func:`read_simple_command` of a command :func:`parse` reported in ``text``.

    A plain command's words are found without reading it again as a command.
    """
    if command.plain:
        spans = tuple(m.span() for m in _WORD_RUN.finditer(text, command.start, command.end))
        return SimpleCommand(command.start, command.end, spans, 0)
    return read_simple_command(text, command.start)


def read_words(text: str, start: int, stop: int) -> tuple[int, list[tuple[int, int]]]:
    """From the word boundary ``start`` inside a simple command, the spans of its words
    up to the first token boundary at or after ``stop`` (or the command's end); and
    where the reading ended."""
    parser = _Parser(text)
    words: list[tuple[int, int]] = []
    end = parser.simple(start, 0, words, stop)
    words.pop()
    return end, words


def substitution_end(text: str, i: int, quoted: bool = False) -> int:
    """Past the ``$``, backtick or quote construct at ``text[i]`` (the text is valid bash).

    ``quoted``: the construct stands inside double quotes.
    """
    parser = _Parser(text)
    c = text[i]
    if c == "$":
        return parser.dollar(i, 0, quoted)
    if c == "`":
        return parser.backtick(i)
    if c in "<>":
        return parser.substitution(i + 2, 0)
    return parser.inner_quote(i, 0)

"""The top of the bash reader: lists, and-or lists, pipelines, and what each command is.

:class:`_Parser` is the whole recursive-descent reader (the layers below add words,
simple commands and compound commands to it). Here a list is split at ``;``, ``&``
and newlines, an and-or list at ``&&`` and ``||``, a pipeline at ``|``, and each
command position is given to a subshell, arithmetic, a compound command or a
simple command. This is where the context bits of every recorded command are set
(``&``, ``&&``, ``||``, pipelines) and where the top-level pipelines are noted.
"""

from __future__ import annotations

import re

from migrate.core.shell_compound import _COMPOUND, _CompoundReader
from migrate.core.shell_lexer import _RESERVED_AT
from migrate.core.shell_model import (
    AFTER_AND,
    ASYNC,
    CONDITIONAL,
    IN_COMPOUND,
    IN_FUNCTION,
    IN_PIPELINE,
    IN_SUBSTITUTION,
    TESTED,
)
from migrate.core.shell_simple import _SIMPLE_RUN

# Reserved words that may not start a command.
_MISPLACED = frozenset({"then", "else", "elif", "fi", "do", "done", "esac", "}", "!"})

# A top-level command of ordinary words alone on its line or ended by ";": what
# compound_list, and_or, pipeline, command and simple_run together make of it
# (no reserved word, no "|", "&", "&&", "||", ";;" or comment after it), read by
# one match. Blanks and newlines may come before it; comments go the long way.
_PLAIN_COMMAND = re.compile(
    r"[ \t\n]*+(?!"
    + _RESERVED_AT.pattern
    + r")(?P<command>"
    + _SIMPLE_RUN.pattern
    + r")[ \t]*+(?:;(?![;&])|\n|\Z)"
)


def plain_command(s: str, i: int) -> tuple[list[int], int] | None:
    """The record of the top-level command of ordinary words at ``i`` (as the general path
    records it) and where the next one may start; None when it is not such a command.

    The script must hold no line continuation (see _Parser.plain_commands).
    """
    m = _PLAIN_COMMAND.match(s, i)
    if m is None:
        return None
    start, end = m.span("command")
    name_end = m.end("name")
    name = s[start:name_end]
    if "=" in name or "[" in name:
        return None  # an assignment, or a subscript bash reads across blanks
    return [start, end, start, name_end, 0, start, end, 0, 1], m.end()


class _Parser(_CompoundReader):
    """A recursive-descent reader of one script; see :func:`migrate.core.shell.parse`."""

    __slots__ = ()

    def plain_commands(self, i: int) -> int:
        """Top-level commands of ordinary words from ``i`` on, each recorded as the general
        path records it; returns where the first other construct starts (or the end).

        Three in four scripts are such commands and a server (``set -e; s5cmd ...;
        python -m vllm_server ...``): read by one match each, not six calls.
        """
        s, n = self.s, self.n
        if "\\\n" in s or self.quotes is not None:
            return i  # a line continuation may join words, or hide a reserved word
        records, pipelines = self.records, self.pipelines
        while i < n:
            read = plain_command(s, i)
            if read is None:
                return i
            record, i = read
            records.append(record)
            pipelines.append((record[0], record[1]))
        return i

    def compound_list(self, i: int, context: int, stop: frozenset[str]) -> tuple[int, int]:
        """A list of commands up to a word of ``stop``, a ``)`` or the end; (end, count).

        ``stop`` may also hold ``";;"``: then the case terminators end the list.
        """
        s, n = self.s, self.n
        count = 0
        while True:
            i = self.gap(i)
            if i >= n:
                return i, count
            c = s[i]
            if c == ")":
                return i, count
            if c == ";":
                if ";;" in stop and s.startswith((";;", ";&"), i):
                    return i, count
                raise self.unexpected(i)
            if c in "&|":
                raise self.unexpected(i)
            word = self.reserved(i)
            if word is not None and word in stop:
                return i, count
            first = len(self.records)
            i = self.and_or(i, context, word)
            count += 1
            i = self.space(i)
            if i >= n:
                return i, count
            c = s[i]
            if c == "&":
                for record in self.records[first:]:
                    record[4] |= ASYNC
            if c == ";":
                if s.startswith((";;", ";&"), i):
                    if ";;" in stop:
                        return i, count
                    raise self.unexpected(i)
                i += 1
            elif c == "&":
                i += 1
            elif c == ")":
                return i, count
            elif c != "\n":
                # Only a reserved word that ends this list may follow a compound
                # command directly ("if (true) then ...").
                if stop and self.reserved(i) in stop:
                    return i, count
                raise self.unexpected(i)

    def and_or(self, i: int, context: int, word: str | None) -> int:
        s, n = self.s, self.n
        start, first = i, len(self.records)
        i = self.pipeline(i, context, word)
        while True:
            j = self.space(i)
            if not s.startswith(("&&", "||"), j):
                return i
            for record in self.records[first:]:
                if record[5] == start:
                    record[4] |= TESTED
            # After && a command runs when the ones before succeed, as a scan assumes
            # they do; after || it runs only when they fail.
            after = context | (CONDITIONAL if s.startswith("||", j) else AFTER_AND)
            j = self.gap(j + 2)
            if j >= n:
                raise self.unexpected(j)
            start, first = j, len(self.records)
            i = self.pipeline(j, after, self.reserved(j))

    def pipeline(self, i: int, context: int, word: str | None) -> int:
        s, n = self.s, self.n
        start = i
        first = len(self.records)
        while word == "time" or word == "!":  # the "time [-p]" and "!" prefixes
            i = self.space(self.peeked_end)
            if word == "time" and self.peek(i) == "-p":
                i = self.space(self.peeked_end)
            word = self.reserved(i)
        if i > start and (i >= n or s[i] in "\n;&|)"):
            # "time" or "!" alone: an empty pipeline bash accepts.
            return i
        i = self.command(i, context, word)
        commands = 1
        while True:
            j = self.space(i)
            if j < n and s[j] == "|" and not s.startswith("||", j):
                j = self.gap(j + (2 if s.startswith("|&", j) else 1))
                if j >= n:
                    raise self.unexpected(j)
                i = self.command(j, context | IN_PIPELINE, self.reserved(j))
                commands += 1
            else:
                break
        for record in self.records[first:]:
            if record[5] < 0:
                record[5], record[6] = start, i
                if commands > 1:
                    record[4] |= IN_PIPELINE
        if not context & (IN_FUNCTION | IN_SUBSTITUTION | IN_COMPOUND):
            self.pipelines.append((start, i))
        return i

    # Commands -------------------------------------------------------------------

    def command(self, i: int, context: int, word: str | None) -> int:
        s = self.s
        c = s[i]
        if c == "(":
            if s.startswith("((", i):
                end = self.arithmetic_end(i + 2, context)
                if end >= 0:
                    return self.redirections(end, context)
            return self.redirections(self.group(i + 1, context | IN_COMPOUND), context)
        if c in ")|;&\n":
            raise self.unexpected(i)
        if word is not None:
            opener = _COMPOUND.get(word)
            if opener is not None:
                end = opener(self, self.peeked_end, context | IN_COMPOUND, i)
                return self.redirections(end, context)
            if word in _MISPLACED:
                raise self.unexpected(i)
        if word != "!" and self.quotes is None:
            end = self.simple_run(i, context)
            if end >= 0:
                return end
        return self.simple(i, context)

    def compound_body(self, i: int, context: int) -> int:
        """The compound command a function definition requires, with its redirections."""
        s, n = self.s, self.n
        if i >= n:
            raise self.unexpected(i)
        if s[i] == "(":
            return self.command(i, context, None)
        word = self.reserved(i)
        if word not in _COMPOUND or word == "function":
            raise self.unexpected(i)
        return self.command(i, context, word)

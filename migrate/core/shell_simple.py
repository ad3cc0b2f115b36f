"""Simple commands of bash: their words, assignments, redirections and function definitions.

A simple command is words and redirections up to an operator or a newline: leading
``NAME=value`` assignments, the command name, its arguments, and redirections
anywhere among them, whose targets this layer checks as bash does (a missing target
is a syntax error; ``2>&1x`` an ambiguous redirect, recorded on the command) and
whose here-document delimiters it queues. ``name ()`` turns the command into a
function definition. The common command, ordinary words only, is read in one step
by a regular expression. Each simple command is recorded for
:func:`migrate.core.shell.parse`, or its words returned for
:func:`~migrate.core.shell.read_simple_command`.
"""

from __future__ import annotations

import re

from migrate.core.shell_expansions import _PIECES, _WordReader
from migrate.core.shell_lexer import _BLANKS, _METACHARS
from migrate.core.shell_model import IN_FUNCTION

# Ordinary argument words after a command name, with the blanks between them:
# skipped in one step. A word may not start with "#" (that is a comment), nor be
# the descriptor number of a redirection ("2>&1").
_NOT_A_WORD_START = r"(?!#|[0-9]+[<>]|\{[A-Za-z_][A-Za-z0-9_]*\}[<>])"
# Blanks between two words; a line continuation is one only before a blank or an
# operator (right before a word character it joins the two halves into one word).
_SEP = r"(?:[ \t]|\\\n(?![^ \t\n|&;()<>]))++"
_ARGS_RUN = re.compile(f"(?:{_SEP}{_NOT_A_WORD_START}(?:{_PIECES})++)++")
# A line continuation right after a word, before a character that is no blank or
# operator: bash drops it first, so it joins that character ("a\\<newline>#" is "a#",
# not "a" and a comment). The runs above stop in front of it.
_GLUED = re.compile(r"(?:\\\n)++(?=[^ \t\n|&;()<>])")
# A whole simple command of ordinary words: read in one step when what follows
# ends it (the name is checked for assignments and subscripts afterwards).
_SIMPLE_RUN = re.compile(
    f"{_NOT_A_WORD_START}(?P<name>(?:{_PIECES})++)(?:{_SEP}{_NOT_A_WORD_START}(?:{_PIECES})++)*+"
)
_NAME_BRACKET = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\[")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\[[^\]]*\])?\+?=")
# A redirection operator, with the file descriptor number or {varname} before it.
_REDIRECT = re.compile(
    r"(?:[0-9]+|\{[A-Za-z_][A-Za-z0-9_]*\})?"
    r"(?P<op><<<|<<-|<<|<&|<>|>>|>&|>\||&>>|&>|<(?!\()|>(?!\())"
)
_REDIRECT_START = frozenset("<>&0123456789{")
_DESCRIPTOR = re.compile(r"[0-9]+[<>]")


class _SimpleReader(_WordReader):
    """Simple commands, redirections, and the ``name ()`` of a function definition."""

    __slots__ = ()

    def simple_run(self, i: int, context: int) -> int:
        """A simple command of ordinary words only, read in one step; -1 when it is not."""
        s, n = self.s, self.n
        m = _SIMPLE_RUN.match(s, i)
        if m is None:
            return -1
        end = m.end()
        if _GLUED.match(s, end):
            return -1
        j = self.space(end)
        if j < n and (s[j] not in ";\n|&)" or s.startswith("&>", j)):
            return -1  # a redirection, "(", a substitution...: read it word by word
        name_end = m.end("name")
        a = _ASSIGNMENT.match(s, i, name_end)
        if a is not None or _NAME_BRACKET.match(s, i, name_end):
            return -1  # an assignment, or a subscript bash reads across blanks
        self.records.append([i, end, i, name_end, context, -1, -1, 0, 1])
        return end

    def simple(
        self, i: int, context: int, words: list[tuple[int, int]] | None = None, stop: int = -1
    ) -> int:
        """A simple command (or a function definition) starting at ``i``; returns its end.

        With ``words``, every word's span is appended to it (redirections left out)
        and nothing is recorded: that is :func:`read_simple_command`. With ``stop``
        the reading ends at the first token boundary at or after it.
        """
        s, n = self.s, self.n
        start = last = i
        name_start = name_end = -1
        assignments = 0
        redirected = False
        # Commands in substitutions inside this one's words are read in between.
        outer_bad, self.bad_redirect = self.bad_redirect, False
        if stop < 0:
            stop = n
        while i < stop and i < n:
            c = s[i]
            if c == " " or c == "\t" or (c == "\\" and s.startswith("\\\n", i)):
                i = _BLANKS.match(s, i).end()  # type: ignore[union-attr]
                if words is None and name_start >= 0 and self.quotes is None:
                    # Ordinary arguments: skip them all at once.
                    m = _ARGS_RUN.match(s, last)
                    if m is not None:
                        i = last = m.end()
                        if _GLUED.match(s, i):
                            i = last = self.word(i, context)
                continue
            if c in "\n;|)#":
                break
            if c == "&" and not s.startswith("&>", i):
                break
            if c in "<>" and s.startswith("(", i + 1):
                pass  # process substitution: a word
            elif c in _REDIRECT_START:
                m = _REDIRECT.match(s, i)
                if m is not None:
                    i = last = self.redirect_target(m, context)
                    redirected = True
                    continue
            if c == "(":
                if name_start >= 0 and last == name_end and not assignments and not redirected:
                    if words is not None:
                        raise self.unexpected(i)
                    return self.function_body(i, context)
                raise self.unexpected(i)
            j = self.word(i, context, array=name_start < 0)
            if name_start < 0:
                raw = s[i:j]
                if "\\\n" in raw:
                    raw = raw.replace("\\\n", "")  # bash joins the lines first
                m = _ASSIGNMENT.match(raw)
                if m is not None:
                    assignments += 1
                else:
                    name_start, name_end = i, j
            if words is not None:
                words.append((i, j))
            i = last = j
        if last == start:
            raise self.unexpected(i)
        bad, self.bad_redirect = int(self.bad_redirect), outer_bad
        if words is None:
            self.records.append([start, last, name_start, name_end, context, -1, -1, bad, 0])
        else:
            words.append((-1, assignments))  # the caller pops this trailer
        return last

    def redirect_target(self, m: re.Match[str], context: int) -> int:
        s, n = self.s, self.n
        op = m.group("op")
        i = self.skip_blanks(m.end())
        if i >= n or (s[i] in _METACHARS and not (s[i] in "<>" and s.startswith("(", i + 1))):
            raise self.unexpected(i)
        if s[i] == "#":
            raise self.unexpected(i)  # a comment starts there: the target is missing
        if op not in (">&", "<&") and _DESCRIPTOR.match(s, i):
            raise self.unexpected(i)  # "2" in "< 2>&1" is a descriptor number, not a file
        if op in (">&", "<&") and s[i] == "-":
            return i + 1  # "2>&-" closes; bash takes the "-" alone, even before a word
        j = self.word(i, context)
        if op in ("<<", "<<-"):
            self.heredocs.append((_delimiter_text(s[i:j]), op == "<<-"))
        elif op in (">&", "<&") and _bad_duplication(op, m.group()[: -len(op)], s[i:j]):
            self.bad_redirect = True
        return j

    def redirections(self, i: int, context: int) -> int:
        """Redirections after a compound command, e.g. ``{ ...; } 9>/lock``."""
        s, n = self.s, self.n
        while True:
            j = self.skip_blanks(i)
            if j >= n or s[j] not in _REDIRECT_START:
                return i
            m = _REDIRECT.match(s, j)
            if m is None:
                return i
            i = self.redirect_target(m, context)

    def function_body(self, i: int, context: int) -> int:
        """After ``name`` and at ``(``: ``( )``, newlines, then a compound command."""
        s, n = self.s, self.n
        j = self.skip_blanks(i + 1)
        if j >= n or s[j] != ")":
            raise self.unexpected(j)
        return self.compound_body(self.gap(j + 1), context | IN_FUNCTION)


_FD_OR_CLOSE = re.compile(r"[0-9]+|-")


def _bad_duplication(op: str, fd: str, target: str) -> bool:
    """Whether ``[fd]>&target`` / ``[fd]<&target`` is bash's "ambiguous redirect".

    A target that is not a descriptor number or ``-`` is a file only for ``>&``
    on standard output; a CRLF line end makes ``2>&1`` into ``2>&1\\r``.
    """
    if "$" in target or "`" in target:
        return False  # decided at run time
    text = _delimiter_text(target)
    if _FD_OR_CLOSE.fullmatch(text):
        return False
    return op == "<&" or fd not in ("", "1")


def _delimiter_text(raw: str) -> str:
    """A here-document delimiter after quote removal (bash expands nothing in it)."""
    out: list[str] = []
    i, n = 0, len(raw)
    while i < n:
        c = raw[i]
        if c == "\\" and i + 1 < n:
            out.append(raw[i + 1])
            i += 2
        elif c in "'\"":
            j = raw.find(c, i + 1)
            j = n if j < 0 else j
            out.append(raw[i + 1 : j])
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)

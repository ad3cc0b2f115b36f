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

Pure and stdlib-only: the same code must give the same answer in a dry run and
a real run.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

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
    "parse",
    "parse_quoting",
    "read_simple_command",
    "read_words",
    "substitution_end",
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


@dataclass(frozen=True, slots=True)
class Command:
    """One simple command bash would run, located in the script."""

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


# Characters that end a word outside quotes (bash's metacharacters).
_METACHARS = frozenset(" \t\n|&;()<>")
# A run of ordinary word pieces: unquoted characters, single-quoted strings,
# double-quoted strings without substitutions, escapes (not line
# continuations) and plain parameter expansions. Anything else is handled
# one construct at a time by the parser.
_SINGLE_QUOTED_PIECE = r"""|'[^']*+'"""
_DOUBLE_QUOTED_PIECE = r'''|"(?:[^"\\$`]++|\\[\s\S]|\$(?![({\[]))*+"'''
_PIECES = (
    r"""[^ \t\n|&;()<>'"\\$`]++"""
    f"{_SINGLE_QUOTED_PIECE}{_DOUBLE_QUOTED_PIECE}"
    r"""|\\[^\n]"""
    r"""|\$(?:[A-Za-z_][A-Za-z0-9_]*+|[@*#?$!0-9-]|\{[A-Za-z_][A-Za-z0-9_]*+\})"""
)
# Possessive quantifiers throughout: a word that does not close (an unbalanced
# quote) must fail at once, not after trying every way to split a long run.
_WORD_RUN = re.compile(f"(?:{_PIECES})++")
# The same without single-quoted strings, for a parse that records where they are.
_WORD_RUN_UNQUOTED = re.compile(f"(?:{_PIECES.replace(_SINGLE_QUOTED_PIECE, '')})++")
# Ordinary argument words after a command name, with the blanks between them:
# skipped in one step. A word may not start with "#" (that is a comment), nor be
# the descriptor number of a redirection ("2>&1").
_NOT_A_WORD_START = r"(?!#|[0-9]+[<>]|\{[A-Za-z_][A-Za-z0-9_]*\}[<>])"
# Blanks between two words; a line continuation is one only before a blank or an
# operator (right before a word character it joins the two halves into one word).
_SEP = r"(?:[ \t]|\\\n(?![^ \t\n|&;()<>]))++"
_ARGS_RUN = re.compile(f"(?:{_SEP}{_NOT_A_WORD_START}(?:{_PIECES})++)++")
# A whole simple command of ordinary words: read in one step when what follows
# ends it (the name is checked for assignments and subscripts afterwards).
_SIMPLE_RUN = re.compile(
    f"{_NOT_A_WORD_START}(?P<name>(?:{_PIECES})++)(?:{_SEP}{_NOT_A_WORD_START}(?:{_PIECES})++)*+"
)
_NAME_BRACKET = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\[")
_RESERVED_AT = re.compile(
    r"(?:if|then|else|elif|fi|do|done|case|esac|while|until|for|select|function|time|\{|\}"
    r"|!|\[\[)(?=[ \t\n|&;()<>]|\Z)"
)
_BARE = re.compile(r"""[^ \t\n|&;()<>'"\\$`]+""")
_BLANKS = re.compile(r"(?:[ \t]++|\\\n)++")
# Blanks, line continuations and a comment: what may follow a command on its line.
_SPACE = re.compile(r"(?:[ \t]++|\\\n)*+(?:#[^\n]*+)?")
# ... and across lines too (the newlines themselves are consumed one by one).
_GAP = re.compile(r"(?:[ \t]++|\\\n|#[^\n]*+)*+")
_DQ_RUN = re.compile(r'[^"\\$`]*')
_BACKTICK_RUN = re.compile(r"[^`\\]*")
_ANSI_RUN = re.compile(r"[^'\\]*")
_BRACE_RUN = re.compile(r"""[^{}'"\\$`]*""")
_ARITH_RUN = re.compile(r"""[^()'"\\$`]*""")
_BRACKET_RUN = re.compile(r"""[^\[\]'"\\$`]*""")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\[[^\]]*\])?\+?=")
_ARRAY_START = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\[[^\]]*\])?\+?=\Z")
# A redirection operator, with the file descriptor number or {varname} before it.
_REDIRECT = re.compile(
    r"(?:[0-9]+|\{[A-Za-z_][A-Za-z0-9_]*\})?"
    r"(?P<op><<<|<<-|<<|<&|<>|>>|>&|>\||&>>|&>|<(?!\()|>(?!\())"
)
_REDIRECT_START = frozenset("<>&0123456789{")
_DESCRIPTOR = re.compile(r"[0-9]+[<>]")

# Reserved words that may not start a command.
_MISPLACED = frozenset({"then", "else", "elif", "fi", "do", "done", "esac", "}", "!"})


_OPERATOR = re.compile(r";;&|;;|;&|&&|\|\||\|&|>>|<<|[;&|()<>]")


def _describe(text: str, i: int) -> str:
    if i >= len(text):
        return "syntax error: unexpected end of file"
    m = _OPERATOR.match(text, i)
    if m is not None:
        token = m.group()
    elif text[i] == "\n":
        token = "newline"
    else:
        m = _BARE.match(text, i)
        token = m.group() if m else text[i]
    return f"syntax error near unexpected token `{token}'"


class _Parser:
    """A recursive-descent reader of one script; see :func:`parse`."""

    __slots__ = (
        "s",
        "n",
        "records",
        "pipelines",
        "heredocs",
        "bad_redirect",
        "peeked_end",
        "space_at",
        "space_end",
        "quotes",
    )

    def __init__(self, text: str, quotes: list[tuple[int, int]] | None = None) -> None:
        self.s = text
        self.n = len(text)
        # [start, end, name_start, name_end, context, pipeline_start, pipeline_end, bad]
        self.records: list[list[int]] = []
        self.pipelines: list[tuple[int, int]] = []
        # Here-documents whose bodies start after the next newline: (delimiter, strip tabs)
        self.heredocs: list[tuple[str, bool]] = []
        self.bad_redirect = False  # set by redirect_target for the command being read
        self.peeked_end = 0  # where the word peek() last returned ends
        self.space_at = self.space_end = -1  # space(): the last answer, asked again often
        # When a list: every single-quoted string the parse meets, (start, end).
        # The regular expressions that skip words then stay unused.
        self.quotes = quotes

    # Errors -----------------------------------------------------------------------

    def unexpected(self, i: int) -> ShellSyntaxError:
        return ShellSyntaxError(f"{_describe(self.s, i)} (at offset {i})")

    def unclosed(self, i: int, closer: str) -> ShellSyntaxError:
        return ShellSyntaxError(
            f"unexpected end of file while looking for the matching `{closer}' "
            f"(opened at offset {i})"
        )

    # Space between tokens ---------------------------------------------------------

    def gap(self, i: int) -> int:
        """Past blanks, comments and newlines (reading here-document bodies)."""
        s, n = self.s, self.n
        while True:
            i = _GAP.match(s, i).end()  # type: ignore[union-attr]
            if i < n and s[i] == "\n":
                i += 1
                if self.heredocs:
                    i = self.read_heredocs(i)
                continue
            return i

    def read_heredocs(self, i: int) -> int:
        s, n = self.s, self.n
        for delimiter, strip_tabs in self.heredocs:
            while i < n:
                j = s.find("\n", i)
                line = s[i:] if j < 0 else s[i:j]
                i = n if j < 0 else j + 1
                if (line.lstrip("\t") if strip_tabs else line) == delimiter:
                    break
            # At the end of the script bash only warns; the body is what there is.
        self.heredocs.clear()
        return i

    def space(self, i: int) -> int:
        """Past the blanks, continuations and comment after a command."""
        if i != self.space_at:
            self.space_at, self.space_end = i, _SPACE.match(self.s, i).end()  # type: ignore[union-attr]
        return self.space_end

    def reserved(self, i: int) -> str | None:
        """The reserved word at ``i`` (at a command start), or None for any other word."""
        m = _RESERVED_AT.match(self.s, i)
        if m is not None:
            self.peeked_end = m.end()
            return m.group()
        if "\\\n" in self.s[i : i + 10]:  # a keyword split by a line continuation
            word = self.peek(i)
            return word if word in _RESERVED else None
        return None

    def skip_blanks(self, i: int) -> int:
        m = _BLANKS.match(self.s, i)
        return i if m is None else m.end()

    def peek(self, i: int) -> str | None:
        """The bare word at ``i`` if it is one whole unquoted word (a reserved word candidate).

        Line continuations inside it are removed first, as bash does: ``fi\\<newline>`` is ``fi``.
        """
        s, n = self.s, self.n
        m = _BARE.match(s, i)
        if m is None:
            return None
        e = m.end()
        joined = [m.group()]
        while s.startswith("\\\n", e):
            after = e + 2
            m = _BARE.match(s, after)
            if m is None:
                if after < n and s[after] not in _METACHARS:
                    return None  # a quote or expansion follows: not a bare word
                e = after  # the continuation ends the word, like a blank
                break
            joined.append(m.group())
            e = m.end()
        if e < n and s[e] not in _METACHARS:
            return None
        self.peeked_end = e
        return "".join(joined)

    # Lists and pipelines ------------------------------------------------------------

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

    def simple_run(self, i: int, context: int) -> int:
        """A simple command of ordinary words only, read in one step; -1 when it is not."""
        s, n = self.s, self.n
        m = _SIMPLE_RUN.match(s, i)
        if m is None:
            return -1
        end = m.end()
        j = self.space(end)
        if j < n and (s[j] not in ";\n|&)" or s.startswith("&>", j)):
            return -1  # a redirection, "(", a substitution...: read it word by word
        name_end = m.end("name")
        a = _ASSIGNMENT.match(s, i, name_end)
        if a is not None or _NAME_BRACKET.match(s, i, name_end):
            return -1  # an assignment, or a subscript bash reads across blanks
        self.records.append([i, end, i, name_end, context, -1, -1, 0])
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
            self.records.append([start, last, name_start, name_end, context, -1, -1, bad])
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

    # Compound commands ----------------------------------------------------------

    def group(self, i: int, context: int) -> int:
        """``( list )`` from just after the ``(``."""
        end, count = self.compound_list(i, context, _NO_STOP)
        if end >= self.n:
            raise self.unexpected(end)
        if self.s[end] != ")" or not count:
            raise self.unexpected(end)
        return end + 1

    def expect(self, i: int, word: str) -> int:
        if self.peek(i) != word:
            raise self.unexpected(i)
        return self.peeked_end

    def body(self, i: int, context: int, stop: frozenset[str]) -> tuple[int, str]:
        """A non-empty list ended by a word of ``stop``; (position after that word, the word)."""
        end, count = self.compound_list(i, context, stop)
        word = self.reserved(end) if end < self.n else None
        if not count or word not in stop:
            raise self.unexpected(end)
        assert word is not None
        return self.peeked_end, word

    def brace_group(self, i: int, context: int, at: int) -> int:
        return self.body(i, context, _BRACE_END)[0]

    def if_clause(self, i: int, context: int, at: int) -> int:
        i, _ = self.body(i, context, _THEN)
        while True:
            i, word = self.body(i, context, _IF_END)
            if word == "fi":
                return i
            if word == "else":
                return self.body(i, context, _FI)[0]
            i, _ = self.body(i, context, _THEN)  # elif ... then

    def while_clause(self, i: int, context: int, at: int) -> int:
        i, _ = self.body(i, context, _DO)
        return self.body(i, context, _DONE)[0]

    def for_clause(self, i: int, context: int, at: int) -> int:
        s, n = self.s, self.n
        i = _SPACE.match(s, i).end()  # type: ignore[union-attr]
        if s.startswith("((", i):
            end = self.arithmetic_end(i + 2, context)
            if end < 0:
                raise self.unclosed(i, "))")
            if _top_level_semicolons(s[i + 2 : end - 2]) != 2:
                raise ShellSyntaxError(
                    f"the arithmetic for loop at offset {i} needs three expressions"
                )
            i = _SPACE.match(s, end).end()  # type: ignore[union-attr]
            if i < n and s[i] == ";":
                i += 1
        else:
            m = _BARE.match(s, i)
            if m is None or i >= n or s[i] in _METACHARS:
                raise self.unexpected(i)
            i = self.word(i, context)
            i = self.gap(i)
            if self.peek(i) == "in":
                i = self.peeked_end
                while True:
                    i = _SPACE.match(s, i).end()  # type: ignore[union-attr]
                    if i >= n or s[i] in ";\n":
                        break
                    if s[i] in _METACHARS:
                        raise self.unexpected(i)
                    i = self.word(i, context)
                if i < n and s[i] == ";":
                    i += 1
            elif i < n and s[i] == ";":
                i += 1
        i = self.gap(i)
        i = self.expect(i, "do")
        return self.body(i, context, _DONE)[0]

    def case_clause(self, i: int, context: int, at: int) -> int:
        s, n = self.s, self.n
        i = _SPACE.match(s, i).end()  # type: ignore[union-attr]
        if i >= n or s[i] in _METACHARS:
            raise self.unexpected(i)
        i = self.word(i, context)
        i = self.expect(self.gap(i), "in")
        while True:
            i = self.gap(i)
            if self.peek(i) == "esac":
                return self.peeked_end
            if i < n and s[i] == "(":
                i = _SPACE.match(s, i + 1).end()  # type: ignore[union-attr]
            while True:  # patterns separated by "|", then ")"
                if i >= n or s[i] in _METACHARS:
                    raise self.unexpected(i)
                i = _SPACE.match(s, self.word(i, context)).end()  # type: ignore[union-attr]
                if i < n and s[i] == "|" and not s.startswith("||", i):
                    i = _SPACE.match(s, i + 1).end()  # type: ignore[union-attr]
                    continue
                if i < n and s[i] == ")":
                    i += 1
                    break
                raise self.unexpected(i)
            i, _ = self.compound_list(i, context, _CASE_ARM_END)
            if s.startswith(";;&", i):
                i += 3
            elif s.startswith((";;", ";&"), i):
                i += 2
            elif self.peek(i) == "esac":
                return self.peeked_end
            else:
                raise self.unexpected(i)

    def function_keyword(self, i: int, context: int, at: int) -> int:
        s, n = self.s, self.n
        i = _SPACE.match(s, i).end()  # type: ignore[union-attr]
        if i >= n or s[i] in _METACHARS:
            raise self.unexpected(i)
        i = self.word(i, context)
        j = _SPACE.match(s, i).end()  # type: ignore[union-attr]
        if j < n and s[j] == "(":
            j = _SPACE.match(s, j + 1).end()  # type: ignore[union-attr]
            if j >= n or s[j] != ")":
                raise self.unexpected(j)
            i = j + 1
        return self.compound_body(self.gap(i), (context & ~IN_COMPOUND) | IN_FUNCTION)

    def conditional(self, i: int, context: int, at: int) -> int:
        """``[[ expression ]]``, with bash's grammar for the expression (cond.c)."""
        i = self.cond_or(i, context, at)
        i = self.gap(i)
        if self.peek(i) != "]]":
            raise self.unexpected(i)
        return self.peeked_end

    def cond_token(self, i: int, context: int, at: int) -> tuple[int, str, int]:
        """The next token inside ``[[ ]]``: (start, its text or "" for a word, end)."""
        s, n = self.s, self.n
        i = self.gap(i)
        if i >= n:
            raise self.unclosed(at, "]]")
        if s.startswith(("&&", "||"), i):
            return i, s[i : i + 2], i + 2
        if s[i] in "()<>":
            return i, s[i], i + 1
        if s[i] in ";&|":
            raise self.unexpected(i)
        word = self.peek(i)
        if word in ("]]", "!") or word in _COND_UNARY or word in _COND_BINARY:
            return i, word, self.peeked_end  # type: ignore[return-value]
        return i, "", self.word(i, context)

    def cond_or(self, i: int, context: int, at: int) -> int:
        i = self.cond_and(i, context, at)
        while True:
            _, token, end = self.cond_token(i, context, at)
            if token != "||":
                return i
            i = self.cond_and(end, context, at)

    def cond_and(self, i: int, context: int, at: int) -> int:
        i = self.cond_term(i, context, at)
        while True:
            _, token, end = self.cond_token(i, context, at)
            if token != "&&":
                return i
            i = self.cond_term(end, context, at)

    def cond_term(self, i: int, context: int, at: int) -> int:
        start, token, end = self.cond_token(i, context, at)
        if token == "!":
            if self.cond_token(end, context, at)[1] in _COND_ENDS:
                return end  # a lone "!" is a word: a non-empty string
            return self.cond_term(end, context, at)
        if token == "(":
            end = self.cond_or(end, context, at)
            close, token, after = self.cond_token(end, context, at)
            if token != ")":
                raise self.unexpected(close)
            return after
        if token in _COND_UNARY:
            operand, kind, after = self.cond_token(end, context, at)
            if kind in _COND_BINARY:
                return self.cond_operand(after, context, at, kind)  # "-f == x": a word
            if kind in _COND_ENDS or kind in ("(", "<", ">"):
                raise self.unexpected(operand)
            return after
        if token and token not in _COND_BINARY:
            raise self.unexpected(start)
        # A word: alone (a non-empty string), or the left side of a binary test.
        op_start, op, op_end = self.cond_token(end, context, at)
        if op in _COND_BINARY or op in ("<", ">"):
            return self.cond_operand(op_end, context, at, op)
        if op in _COND_ENDS:
            return end
        raise self.unexpected(op_start)  # bash: conditional binary operator expected

    def cond_operand(self, i: int, context: int, at: int, op: str) -> int:
        """The right side of a binary test; after ``=~`` a regex, where ( ) | are plain."""
        s, n = self.s, self.n
        start, token, end = self.cond_token(i, context, at)
        if op != "=~":
            if token in _COND_ENDS or token in ("(", "<", ">"):
                raise self.unexpected(start)
            return end
        i = start
        while i < n and s[i] not in " \t\n;&":
            if self.peek(i) == "]]":
                break
            i = i + 1 if s[i] in "()|<>" else self.word(i, context)
        if i == start:
            raise self.unexpected(start)
        return i

    # Words ------------------------------------------------------------------------

    def word(self, i: int, context: int, array: bool = False) -> int:
        """End of the word starting at ``i`` (quotes, escapes, substitutions followed)."""
        s, n = self.s, self.n
        start = i
        if array:
            # Where an assignment may stand, bash reads "name[" as the start of an
            # array subscript and looks for its "]" across blanks: a[i + 1]=x.
            m = _NAME.match(s, i)
            if m is not None and s.startswith("[", m.end()):
                i = self.bracketed(m.end() + 1, context)
        run = _WORD_RUN if self.quotes is None else _WORD_RUN_UNQUOTED
        while True:
            m = run.match(s, i)
            if m is not None:
                i = m.end()
            if i >= n:
                break
            c = s[i]
            if c == "'":
                j = s.find("'", i + 1)
                if j < 0:
                    raise self.unclosed(i, "'")
                if self.quotes is not None:
                    self.quotes.append((i, j + 1))
                i = j + 1
            elif c == '"':
                i = self.double_quoted(i + 1, context)
            elif c == "\\":
                if i + 1 >= n:
                    i += 1  # a backslash at the very end is a literal one
                    break
                # A line continuation: it joins the word to what follows, unless a
                # blank or operator follows (then it is only a blank itself).
                k = i + 2
                if k >= n or s[k] in _METACHARS:
                    break
                i = k
            elif c == "$":
                i = self.dollar(i, context, quoted=False)
            elif c == "`":
                i = self.backtick(i)
            elif c in "<>" and s.startswith("(", i + 1):
                i = self.substitution(i + 2, context)
            elif c == "(" and array and _ARRAY_START.match(s, start, i):
                i = self.array(i + 1, context)
            else:
                break
        if i == start:
            raise self.unexpected(i)
        return i

    def array(self, i: int, context: int) -> int:
        """``NAME=( words... )`` from just after the ``(``."""
        s, n = self.s, self.n
        while True:
            i = self.gap(i)
            if i >= n:
                raise self.unclosed(i, ")")
            if s[i] == ")":
                return i + 1
            if s[i] in _METACHARS:
                raise self.unexpected(i)
            i = self.word(i, context)

    def double_quoted(self, i: int, context: int) -> int:
        s, n = self.s, self.n
        opened = i - 1
        while True:
            i = _DQ_RUN.match(s, i).end()  # type: ignore[union-attr]
            if i >= n:
                raise self.unclosed(opened, '"')
            c = s[i]
            if c == '"':
                return i + 1
            if c == "\\":
                i += 2
            elif c == "$":
                i = self.dollar(i, context, quoted=True)
            else:
                i = self.backtick(i)

    def dollar(self, i: int, context: int, quoted: bool) -> int:
        """Past the ``$`` construct at ``i``: an expansion, a substitution or a quote."""
        s, n = self.s, self.n
        j = i + 1
        if j >= n:
            return j
        c = s[j]
        if c == "(":
            if s.startswith("((", j):
                end = self.arithmetic_end(j + 2, context)
                if end >= 0:
                    return end
                # Not arithmetic after all: bash then takes "$(" up to the matching
                # parenthesis and reads what is inside only when it runs it.
                return self.matched_parenthesis(j + 1, context)
            return self.substitution(j + 1, context)
        if c == "{":
            return self.braced(j + 1, context, quoted)
        if c == "[":
            return self.bracketed(j + 1, context)
        if c == "'" and not quoted:
            k = j + 1
            while True:
                k = _ANSI_RUN.match(s, k).end()  # type: ignore[union-attr]
                if k >= n:
                    raise self.unclosed(i, "'")
                if s[k] == "'":
                    return k + 1
                k += 2
        if c == '"' and not quoted:
            return self.double_quoted(j + 1, context)
        m = _NAME.match(s, j)
        if m is not None:
            return m.end()
        if c in "@*#?$!-0123456789":
            return j + 1
        return j  # a literal "$"

    def substitution(self, i: int, context: int) -> int:
        """``$( list )``, ``<( list )`` or ``>( list )`` from just after the ``(``."""
        pending = len(self.heredocs)
        end, _ = self.compound_list(i, context | IN_SUBSTITUTION, _NO_STOP)
        if end >= self.n or self.s[end] != ")":
            raise self.unclosed(i - 1, ")")
        if len(self.heredocs) > pending:
            # bash would take the body from the lines after the substitution's line,
            # out of the middle of another command: nobody writes that on purpose.
            raise ShellSyntaxError(
                f"a here-document inside the substitution at offset {i - 2} has no body there"
            )
        return end + 1

    def matched_parenthesis(self, i: int, context: int) -> int:
        """Past the ``)`` that balances the ``(`` just before ``i``, counting, not parsing."""
        s, n = self.s, self.n
        opened = i - 1
        depth = 1
        while True:
            i = _ARITH_RUN.match(s, i).end()  # type: ignore[union-attr]
            if i >= n:
                raise self.unclosed(opened, ")")
            c = s[i]
            if c == "(":
                depth += 1
                i += 1
            elif c == ")":
                depth -= 1
                i += 1
                if not depth:
                    return i
            else:
                i = self.inner_quote(i, context)

    def backtick(self, i: int) -> int:
        """Past a backtick substitution; bash reads its inside only when it runs."""
        s, n = self.s, self.n
        j = i + 1
        while True:
            j = _BACKTICK_RUN.match(s, j).end()  # type: ignore[union-attr]
            if j >= n:
                raise self.unclosed(i, "`")
            if s[j] == "`":
                return j + 1
            j += 2

    def braced(self, i: int, context: int, quoted: bool) -> int:
        """``${...}`` from just after the ``{``: the first unquoted ``}`` closes it.

        Braces inside do not nest (``${a:-{x}}`` is ``{x`` and a ``}``), and single
        quotes pair even inside double quotes, where they stay in the text.
        """
        s, n = self.s, self.n
        opened = i - 2
        while True:
            i = _BRACE_RUN.match(s, i).end()  # type: ignore[union-attr]
            if i >= n:
                raise self.unclosed(opened, "}")
            c = s[i]
            if c == "}":
                return i + 1
            if c == "{":
                i += 1
            elif c == "'":
                j = s.find("'", i + 1)
                if j < 0:
                    raise self.unclosed(i, "'")
                if self.quotes is not None:
                    self.quotes.append((i, j + 1))
                i = j + 1
            elif c == '"':
                i = self.double_quoted(i + 1, context)
            elif c == "\\":
                i += 2
            elif c == "$":
                i = self.dollar(i, context, quoted)
            else:
                i = self.backtick(i)

    def bracketed(self, i: int, context: int) -> int:
        """The old ``$[ arithmetic ]`` from just after the ``[``; brackets nest."""
        s, n = self.s, self.n
        opened = i - 2
        depth = 0
        while True:
            i = _BRACKET_RUN.match(s, i).end()  # type: ignore[union-attr]
            if i >= n:
                raise self.unclosed(opened, "]")
            c = s[i]
            if c == "]":
                if not depth:
                    return i + 1
                depth -= 1
                i += 1
            elif c == "[":
                depth += 1
                i += 1
            else:
                i = self.inner_quote(i, context)

    def arithmetic_end(self, i: int, context: int) -> int:
        """Past the ``))`` closing ``((`` / ``$((`` opened just before ``i``; -1 if none.

        Like bash, when the parentheses close with a single ``)`` this is not
        arithmetic but a subshell or command substitution, which the caller reads.
        """
        s, n = self.s, self.n
        depth = 0
        try:
            while True:
                i = _ARITH_RUN.match(s, i).end()  # type: ignore[union-attr]
                if i >= n:
                    return -1
                c = s[i]
                if c == "(":
                    depth += 1
                    i += 1
                elif c == ")":
                    if depth:
                        depth -= 1
                        i += 1
                    else:
                        return i + 2 if s.startswith("))", i) else -1
                else:
                    i = self.inner_quote(i, context)
        except ShellSyntaxError:
            return -1

    def inner_quote(self, i: int, context: int) -> int:
        """Past a quote, escape or ``$``/backtick construct inside an arithmetic or ``$[``."""
        s = self.s
        c = s[i]
        if c == "'":
            j = s.find("'", i + 1)
            if j < 0:
                raise self.unclosed(i, "'")
            if self.quotes is not None:
                self.quotes.append((i, j + 1))
            return j + 1
        if c == '"':
            return self.double_quoted(i + 1, context)
        if c == "\\":
            return i + 2
        if c == "$":
            return self.dollar(i, context, quoted=True)
        return self.backtick(i)


_COND_UNARY = frozenset(f"-{c}" for c in "abcdefghknoprstuvwxzGLNORS")
_COND_BINARY = frozenset("== = != =~ -eq -ne -lt -le -gt -ge -nt -ot -ef".split())
_COND_ENDS = frozenset({"]]", "&&", "||", ")"})
_RESERVED = frozenset(
    "if then else elif fi do done case esac while until for select function time { } ! [[".split()
)
_NO_STOP: frozenset[str] = frozenset()
_BRACE_END = frozenset({"}"})
_THEN = frozenset({"then"})
_IF_END = frozenset({"elif", "else", "fi"})
_FI = frozenset({"fi"})
_DO = frozenset({"do"})
_DONE = frozenset({"done"})
_CASE_ARM_END = frozenset({"esac", ";;"})

_Opener = Callable[[_Parser, int, int, int], int]
_COMPOUND: dict[str, _Opener] = {
    "{": _Parser.brace_group,
    "if": _Parser.if_clause,
    "while": _Parser.while_clause,
    "until": _Parser.while_clause,
    "for": _Parser.for_clause,
    "select": _Parser.for_clause,
    "case": _Parser.case_clause,
    "function": _Parser.function_keyword,
    "[[": _Parser.conditional,
}


def _top_level_semicolons(expressions: str) -> int:
    """How many ``;`` separate the expressions of ``for ((a; b; c))`` (outside quotes)."""
    count, depth, quote = 0, 0, ""
    for c in expressions:
        if quote:
            quote = "" if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == ";" and not depth:
            count += 1
    return count


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
    end, _ = parser.compound_list(start, 0, _NO_STOP)
    if end < parser.n:
        raise parser.unexpected(end)
    commands = tuple(Command(*record) for record in parser.records)
    return Script(text, commands, tuple(parser.pipelines))


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

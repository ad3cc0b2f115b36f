"""Bash word rules for a ``bash -c`` script: split it into words and operators, unquote.

The scripts this project edits went through many formatting generations (unquoted
Python dict reprs, quoted values, download and Ray steps in front), so a plain
``str.split`` or ``shlex`` would misplace word boundaries. This module follows bash's
own rules for quotes, brackets, escapes, comments and operators, closely enough to
know exactly which bytes make up each word. It knows nothing about vLLM: that model
lives in ``migrate.core.command``.

Pure and stdlib-only on purpose, like its caller: the same code must give the same
answer in a dry run and a real run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "PIPE",
    "REDIR",
    "SEP",
    "WORD",
    "ShellSyntaxError",
    "Token",
    "is_command_prefix",
    "lex",
    "raw_equals",
    "requote",
    "skip_redirect",
    "subcommands",
    "unquote",
]


class ShellSyntaxError(ValueError):
    """Quotes or brackets that do not balance, so nobody can say where a word ends."""


# Lexing ---------------------------------------------------------------------------

# Token kinds. "sep" ends a subcommand; "pipe" (| |& &) ends a simple command but not
# the subcommand; "redir" is a redirection operator whose target is the next word.
SEP = "sep"
PIPE = "pipe"
REDIR = "redir"
WORD = "word"

# Longest operators first; a run of digits directly before < or > is an fd number
# (bash reads "5005>log" as a redirection of fd 5005, not as the word 5005).
_OPERATOR = re.compile(
    r"(?P<sep>&&|\|\|)"
    r"|(?P<pipe>\|&|\||&(?!>))"
    r"|(?P<redir>[0-9]*(?:<<<|<<-|<<|<&|<>|<|>>|>&|>\||>)|&>>|&>)"
)
_WORD_END = frozenset(" \t\n;&|<>")
_OPENERS = frozenset("'\"`([{")
_CLOSE = {"(": ")", "{": "}", "[": "]"}
_GROUP_NAMES = {
    "'": "single quote",
    '"': "double quote",
    "`": "backtick",
    "$'": "$'...' quote",
    "(": "parenthesis",
    "{": "brace",
    "[": "square bracket",
}


@dataclass(frozen=True)
class Token:
    """One word or operator: its kind, its span in the script, and its raw bytes."""

    kind: str
    start: int
    end: int
    raw: str


def _skip_group(s: str, i: int, strict: bool = True) -> int:
    """Index just past the quote or bracket group opening at ``s[i]``.

    An explicit stack instead of recursion, so that no input can exhaust the
    interpreter's recursion limit.
    """
    n = len(s)
    if s.startswith("$'", i):
        stack = ["$'"]
        i += 2
    else:
        stack = [s[i]]
        i += 1
    while stack:
        if i >= n:
            if strict:
                raise ShellSyntaxError(f"The script has an unclosed {_GROUP_NAMES[stack[-1]]}.")
            return n
        top = stack[-1]
        c = s[i]
        if top == "'":
            if c == "'":
                stack.pop()
            i += 1
        elif top in ('"', "`", "$'"):
            if c == "\\":
                i += 2
            elif c == ("'" if top == "$'" else top):
                stack.pop()
                i += 1
            elif top == '"' and c == "`":
                stack.append("`")
                i += 1
            elif top == '"' and c == "$" and s.startswith("$(", i):
                # Command substitution inside double quotes starts a fresh quoting context.
                stack.append("(")
                i += 2
            else:
                i += 1
        else:
            if c == "\\":
                i += 2
            elif c in "'\"`":
                stack.append(c)
                i += 1
            elif s.startswith("$'", i):
                stack.append("$'")
                i += 2
            elif c in "({[":
                stack.append(c)
                i += 1
            elif c in ")}]":
                if c != _CLOSE[top]:
                    if strict:
                        raise ShellSyntaxError(
                            f"The script closes a {_GROUP_NAMES[top]} with {c!r}."
                        )
                    return n
                stack.pop()
                i += 1
            else:
                i += 1
    return min(i, n)


def lex(script: str) -> list[Token]:
    """The script's words and operators; raises ShellSyntaxError on unbalanced groups."""
    tokens: list[Token] = []
    i = 0
    n = len(script)
    while i < n:
        c = script[i]
        if c in " \t":
            i += 1
            continue
        if script.startswith("\\\n", i):
            i += 2
            continue
        if c in "\n;":
            tokens.append(Token(SEP, i, i + 1, c))
            i += 1
            continue
        if c == "#":
            # A comment runs to the end of the line, and hides quotes and semicolons in it.
            newline = script.find("\n", i)
            i = n if newline < 0 else newline
            continue
        if c in "&|<>0123456789":
            match = _OPERATOR.match(script, i)
            if match is not None and match.lastgroup is not None:
                tokens.append(Token(match.lastgroup, i, match.end(), match.group()))
                i = match.end()
                continue
        start = i
        while i < n:
            c = script[i]
            if c in _WORD_END:
                break
            if c == "\\":
                if script.startswith("\\\n", i) and (i + 2 >= n or script[i + 2] in _WORD_END):
                    # A continuation that ends the word is whitespace; the lexer skips it.
                    break
                # Otherwise bash joins the two halves (a\<newline>b is the word "ab").
                i += 2
                continue
            if c in _OPENERS or script.startswith("$'", i):
                i = _skip_group(script, i)
                continue
            if c in ")}]":
                raise ShellSyntaxError(f"The script has a {c!r} that closes nothing.")
            i += 1
        if i == start:  # defensive: never loop without progress
            i += 1
        i = min(i, n)
        tokens.append(Token(WORD, start, i, script[start:i]))
    return tokens


def subcommands(tokens: list[Token]) -> list[list[Token]]:
    """The tokens grouped by subcommand (split at ``;``, newline, ``&&``, ``||``)."""
    groups: list[list[Token]] = []
    current: list[Token] = []
    for token in tokens:
        if token.kind == SEP:
            if current:
                groups.append(current)
            current = []
        else:
            current.append(token)
    if current:
        groups.append(current)
    return groups


# Unquoting ------------------------------------------------------------------------

_ANSI_C_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "a": "\a",
    "b": "\b",
    "e": "\x1b",
    "E": "\x1b",
    "f": "\f",
    "v": "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "?": "?",
}


def unquote(raw: str) -> str:
    """The word as the program receives it, for quotes and escapes at the top level.

    Bracket groups and ``$(...)`` are copied verbatim: a generation D/E value such as
    ``{'type': 'linear', 'factor': 2.0}`` must stay a readable dict, not lose its
    inner quotes. Never raises, whatever ``raw`` is.
    """
    out: list[str] = []
    i = 0
    n = len(raw)
    while i < n:
        c = raw[i]
        if c == "\\":
            if i + 1 < n:
                if raw[i + 1] != "\n":
                    out.append(raw[i + 1])
                i += 2
            else:
                out.append(c)
                i += 1
        elif c == "'":
            close = raw.find("'", i + 1)
            close = n if close < 0 else close
            out.append(raw[i + 1 : close])
            i = close + 1
        elif c == '"':
            i = _unquote_double(raw, i + 1, out)
        elif raw.startswith("$'", i):
            i = _unquote_ansi_c(raw, i + 2, out)
        elif c in "`([{":
            end = _skip_group(raw, i, strict=False)
            out.append(raw[i:end])
            i = end
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _unquote_double(raw: str, i: int, out: list[str]) -> int:
    n = len(raw)
    while i < n:
        c = raw[i]
        if c == '"':
            return i + 1
        if c == "\\" and i + 1 < n and raw[i + 1] in '$`"\\\n':
            if raw[i + 1] != "\n":
                out.append(raw[i + 1])
            i += 2
        elif c == "`" or raw.startswith("$(", i):
            start = i
            end = _skip_group(raw, i + (1 if c == "$" else 0), strict=False)
            out.append(raw[start:end])
            i = end
        else:
            out.append(c)
            i += 1
    return n


def _unquote_ansi_c(raw: str, i: int, out: list[str]) -> int:
    n = len(raw)
    while i < n:
        c = raw[i]
        if c == "'":
            return i + 1
        if c == "\\" and i + 1 < n:
            escaped = raw[i + 1]
            out.append(_ANSI_C_ESCAPES.get(escaped, "\\" + escaped))
            i += 2
        else:
            out.append(c)
            i += 1
    return n


def requote(text: str) -> str:
    """``text`` as one single-quoted shell word; ``unquote`` gives it back."""
    return "'" + text.replace("'", "'\\''") + "'"


def raw_equals(raw: str) -> tuple[int, str] | None:
    """Offset of the first top-level ``=`` in a raw word and the quote it sits in."""
    i = 0
    n = len(raw)
    quote = ""
    while i < n:
        c = raw[i]
        if not quote:
            if c == "\\":
                i += 2
            elif c == "=":
                return i, ""
            elif raw.startswith("$'", i):
                quote = "$'"
                i += 2
            elif c in "'\"":
                quote = c
                i += 1
            elif c in "`([{":
                i = _skip_group(raw, i, strict=False)
            else:
                i += 1
        elif quote == "'":
            if c == "=":
                return i, quote
            if c == "'":
                quote = ""
            i += 1
        else:
            if c == "\\":
                i += 2
            elif c == "=":
                return i, quote
            elif c == ("'" if quote == "$'" else '"'):
                quote = ""
                i += 1
            elif quote == '"' and (c == "`" or raw.startswith("$(", i)):
                i = _skip_group(raw, i + (1 if c == "$" else 0), strict=False)
            else:
                i += 1
    return None


# Simple commands ------------------------------------------------------------------

_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\+?=")
# Words that may stand before the command name in a simple command.
_PREFIX_WORDS = frozenset(
    {"exec", "nohup", "env", "time", "!", "then", "do", "else", "elif", "if", "while", "until"}
)


def is_command_prefix(raw: str) -> bool:
    """Whether a raw word is an assignment or a keyword/wrapper before the command name."""
    return bool(_ASSIGNMENT.match(raw)) or unquote(raw) in _PREFIX_WORDS


def skip_redirect(tokens: list[Token], i: int) -> int:
    """Index past the redirection operator at ``tokens[i]`` and its target word."""
    return i + 2 if i + 1 < len(tokens) and tokens[i + 1].kind == WORD else i + 1

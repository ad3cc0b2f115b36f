"""The bottom layer of the bash reader: the state of one reading, and the space between tokens.

:class:`_Lexer` holds what reading one script carries (the text, the commands
recorded so far, the here-documents whose bodies are due, the answers asked for
again and again) and moves over what separates tokens: blanks, line
continuations, comments, newlines and the here-document bodies after them. It
tells a reserved word at a command start and words bash's syntax errors. The
grammar is built on it one layer per module, each a subclass of the one below:
words and their expansions (:mod:`~migrate.core.shell_expansions`), simple
commands and redirections (:mod:`~migrate.core.shell_simple`), compound commands
(:mod:`~migrate.core.shell_compound`), then lists and pipelines
(:mod:`~migrate.core.shell_parser`). Bash's grammar is one recursion, so lower
layers call up into the top one through ``self``; a reading is still one object
and each call one method lookup, as when all of it was one class.
"""

from __future__ import annotations

import re

from migrate.core.shell_model import ShellSyntaxError

# Characters that end a word outside quotes (bash's metacharacters).
_METACHARS = frozenset(" \t\n|&;()<>")
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
_RESERVED = frozenset(
    "if then else elif fi do done case esac while until for select function time { } ! [[".split()
)
# A list that only ``)`` or the end of the script ends.
_NO_STOP: frozenset[str] = frozenset()

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


class _Lexer:
    """The state of one reading, and the space between its tokens; see :mod:`migrate.core.shell`."""

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
        # [start, end, name_start, name_end, context, pipeline_start, pipeline_end, bad, plain]
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

    # The grammar above ------------------------------------------------------------
    # Defined by shell_parser._Parser: the list of commands inside a substitution or
    # a compound command, and the compound command a function definition requires.

    def compound_list(self, i: int, context: int, stop: frozenset[str]) -> tuple[int, int]:
        raise NotImplementedError

    def compound_body(self, i: int, context: int) -> int:
        raise NotImplementedError

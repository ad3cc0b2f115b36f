"""Where a bash word ends: its quotes, escapes, and the expansions and substitutions in it.

A word runs on through single and double quotes, ``$'...'``, escapes, parameter
expansions (``$X``, ``${...}``), arithmetic (``$((...))``, ``$[...]``), command
substitutions (``$(...)``, backticks), process substitutions and an array
assignment's ``( ... )``; a command substitution holds a whole list of commands,
which the grammar above reads (:meth:`_Lexer.compound_list`). This layer of the
reader only finds the word's end, the way bash's parser does; what the word
*means* is :mod:`migrate.core.shellwords`'s. Runs of ordinary characters and
whole ordinary words are skipped by one regular expression each.
"""

from __future__ import annotations

import re

from migrate.core.shell_lexer import _METACHARS, _NO_STOP, _Lexer
from migrate.core.shell_model import IN_SUBSTITUTION, ShellSyntaxError

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
_DQ_RUN = re.compile(r'[^"\\$`]*')
_BACKTICK_RUN = re.compile(r"[^`\\]*")
_ANSI_RUN = re.compile(r"[^'\\]*")
_BRACE_RUN = re.compile(r"""[^{}'"\\$`]*""")
_ARITH_RUN = re.compile(r"""[^()'"\\$`]*""")
_BRACKET_RUN = re.compile(r"""[^\[\]'"\\$`]*""")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ARRAY_START = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\[[^\]]*\])?\+?=\Z")


class _WordReader(_Lexer):
    """Words, and the quotes, expansions and substitutions inside them."""

    __slots__ = ()

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

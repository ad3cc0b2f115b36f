"""Bash's compound commands: ``( )``, ``{ }``, if, while, until, for, select, case, ``[[ ]]``.

Each reserved word that opens a compound command has its reader here, found through
:data:`_COMPOUND`: it reads the bodies (lists of commands, read by the grammar above)
up to the reserved words that close them, and refuses what bash refuses (an empty
body, a missing ``do`` or ``in``, an arithmetic ``for`` without three expressions).
``function name`` definitions start here too, and ``[[ expression ]]`` follows
bash's own grammar for conditional expressions (cond.c), where ``<``, ``>``, ``(``
and ``)`` are operators, not redirections or subshells.
"""

from __future__ import annotations

from collections.abc import Callable

from migrate.core.shell_lexer import _BARE, _METACHARS, _NO_STOP, _SPACE
from migrate.core.shell_model import IN_COMPOUND, IN_FUNCTION, ShellSyntaxError
from migrate.core.shell_simple import _SimpleReader

_COND_UNARY = frozenset(f"-{c}" for c in "abcdefghknoprstuvwxzGLNORS")
_COND_BINARY = frozenset("== = != =~ -eq -ne -lt -le -gt -ge -nt -ot -ef".split())
_COND_ENDS = frozenset({"]]", "&&", "||", ")"})
_BRACE_END = frozenset({"}"})
_THEN = frozenset({"then"})
_IF_END = frozenset({"elif", "else", "fi"})
_FI = frozenset({"fi"})
_DO = frozenset({"do"})
_DONE = frozenset({"done"})
_CASE_ARM_END = frozenset({"esac", ";;"})


class _CompoundReader(_SimpleReader):
    """Compound commands, ``function`` definitions and conditional expressions."""

    __slots__ = ()

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


_Opener = Callable[[_CompoundReader, int, int, int], int]
_COMPOUND: dict[str, _Opener] = {
    "{": _CompoundReader.brace_group,
    "if": _CompoundReader.if_clause,
    "while": _CompoundReader.while_clause,
    "until": _CompoundReader.while_clause,
    "for": _CompoundReader.for_clause,
    "select": _CompoundReader.for_clause,
    "case": _CompoundReader.case_clause,
    "function": _CompoundReader.function_keyword,
    "[[": _CompoundReader.conditional,
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

"""What one bash word means: its text after quote removal, and what bash expands in it.

:mod:`migrate.core.shell` says where a word starts and ends; this module reads a
word's raw bytes the way bash turns them into the argument a program receives:
quotes and escapes removed (``'a b'``, ``"x"``, ``\\ ``, ``$'\\n'``), and it says
what bash would still expand at run time: parameters (``$X``, ``${X}``),
command and arithmetic substitutions, process substitutions, and brace
expansion (``{a,b}`` becomes two words). A word with any of these has no text
the tool can know; :class:`WordInfo` says so, and whether the expansion can
also change how many words there are.

Not modelled, on purpose: pathname expansion (``*``, ``?``, ``[...]``; in a pod's
working directory nothing matches, so bash passes the pattern as it is) and
tilde expansion (it changes a path's text, never the words).

Pure and stdlib-only.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

from migrate.core import shell

__all__ = [
    "WordInfo",
    "equals_sign",
    "info",
    "requote",
    "text_with_positions",
    "unquote",
]

# Segment kinds of a word: literal text outside quotes, quoted literal text, and
# expansions outside and inside double quotes (their raw bytes).
_LITERAL, _QUOTED, _EXPANSION, _QUOTED_EXPANSION = range(4)

_ORDINARY = re.compile(r"""[^\\'"$`<>]+""")
_DQ_ORDINARY = re.compile(r'[^"\\$`]+')
_NEEDS_WORK = re.compile(r"""[\\'"$`<>{]""")
_NAME_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_SPECIAL_PARAMETERS = frozenset("@*#?$!-0123456789")
_SEQUENCE = re.compile(r"(?:[+-]?[0-9]+\.\.[+-]?[0-9]+|[A-Za-z]\.\.[A-Za-z])(?:\.\.[+-]?[0-9]+)?")
_ANSI_C = {
    "a": "\a",
    "b": "\b",
    "e": "\x1b",
    "E": "\x1b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "?": "?",
}
_ANSI_C_NUMERIC = re.compile(r"[0-7]{1,3}|x[0-9A-Fa-f]{1,2}|u[0-9A-Fa-f]{1,4}|U[0-9A-Fa-f]{1,8}")


class WordInfo(NamedTuple):
    """What bash makes of one raw word."""

    text: str | None  # the argument's text; None when an expansion decides it at run time
    splits: bool  # an unquoted or brace expansion: it may become zero or several words
    prefix: str  # the literal text before the first expansion (all of it when text is set)
    expanded: bool  # a parameter, command, arithmetic or process substitution is in it
    substituted: bool  # a command or process substitution: a program writes its text


# (kind, text, where each character of text comes from in raw: (start, end)).
_Segment = tuple[int, str, list[tuple[int, int]]]
# Appends a segment: (kind, text, offset in raw of its first character, and how many
# raw characters make each character of text: 2 for an escape, else 1).
_Add = Callable[..., None]


def _expansion_end(raw: str, i: int, quoted: bool = False) -> int:
    try:
        return shell.substitution_end(raw, i, quoted)
    except shell.ShellSyntaxError:
        return len(raw)


def _segments(raw: str, positions: bool) -> list[_Segment]:
    """The word cut into literal, quoted and expansion pieces (positions when asked)."""
    out: list[_Segment] = []
    no_positions: list[tuple[int, int]] = []

    def add(kind: int, text: str, first: int, width: int = 1) -> None:
        if not positions:
            out.append((kind, text, no_positions))
            return
        at = [(k, k + width) for k in range(first, first + len(text) * width, width)]
        out.append((kind, text, at))

    i, n = 0, len(raw)
    while i < n:
        m = _ORDINARY.match(raw, i)
        if m is not None:
            add(_LITERAL, m.group(), i)
            i = m.end()
            continue
        c = raw[i]
        if c == "\\":
            if i + 1 >= n:
                add(_LITERAL, "\\", i)
                i += 1
            else:
                if raw[i + 1] != "\n":
                    add(_QUOTED, raw[i + 1], i, 2)
                i += 2
        elif c == "'":
            j = raw.find("'", i + 1)
            j = n if j < 0 else j
            add(_QUOTED, raw[i + 1 : j], i + 1)
            i = j + 1
        elif c == '"':
            i = _double_quoted(raw, i + 1, add)
        elif c == "$":
            if raw.startswith("$'", i):
                i = _ansi_c(raw, i + 2, out, positions)
            elif raw.startswith('$"', i):
                i = _double_quoted(raw, i + 2, add)
            else:
                i = _dollar(raw, i, _EXPANSION, add)
        elif c == "`" or (c in "<>" and raw.startswith("(", i + 1)):
            end = _expansion_end(raw, i)
            add(_EXPANSION, raw[i:end], i)
            i = end
        else:
            add(_LITERAL, c, i)
            i += 1
    return out


def _dollar(raw: str, i: int, kind: int, add: _Add) -> int:
    n = len(raw)
    nxt = raw[i + 1] if i + 1 < n else ""
    if nxt in ("(", "{", "[") or (nxt and (nxt in _NAME_START or nxt in _SPECIAL_PARAMETERS)):
        end = _expansion_end(raw, i, quoted=kind == _QUOTED_EXPANSION)
        add(kind, raw[i:end], i)
        return end
    add(_LITERAL if kind == _EXPANSION else _QUOTED, "$", i)
    return i + 1


def _double_quoted(raw: str, i: int, add: _Add) -> int:
    n = len(raw)
    while i < n:
        m = _DQ_ORDINARY.match(raw, i)
        if m is not None:
            add(_QUOTED, m.group(), i)
            i = m.end()
            continue
        c = raw[i]
        if c == '"':
            return i + 1
        if c == "\\":
            if i + 1 < n and raw[i + 1] in '$`"\\\n':
                if raw[i + 1] != "\n":
                    add(_QUOTED, raw[i + 1], i, 2)
                i += 2
            else:
                add(_QUOTED, "\\", i)
                i += 1
        elif c == "$":
            i = _dollar(raw, i, _QUOTED_EXPANSION, add)
        else:
            end = _expansion_end(raw, i, quoted=True)
            add(_QUOTED_EXPANSION, raw[i:end], i)
            i = end
    return n


def _ansi_c(raw: str, i: int, out: list[_Segment], positions: bool) -> int:
    n = len(raw)
    chars: list[str] = []
    at: list[tuple[int, int]] = []
    while i < n:
        c = raw[i]
        if c == "'":
            i += 1
            break
        if c != "\\" or i + 1 >= n:
            chars.append(c)
            at.append((i, i + 1))
            i += 1
            continue
        escaped = raw[i + 1]
        m = _ANSI_C_NUMERIC.match(raw, i + 1)
        if escaped in _ANSI_C:
            chars.append(_ANSI_C[escaped])
            at.append((i, i + 2))
            i += 2
        elif m is not None:
            digits = m.group()
            value = int(digits, 8) if digits[0] in "01234567" else int(digits[1:], 16)
            chars.append(chr(value) if value <= 0x10FFFF else "\ufffd")
            at.append((i, m.end()))
            i = m.end()
        elif escaped == "c" and i + 2 < n:
            chars.append(chr(ord(raw[i + 2]) & 0x1F))
            at.append((i, i + 3))
            i += 3
        else:
            chars.extend("\\" + escaped)
            at.extend(((i, i + 1), (i + 1, i + 2)))
            i += 2
    out.append((_QUOTED, "".join(chars), at if positions else []))
    return i


def _brace_expansion(segments: list[_Segment]) -> bool:
    """Whether unquoted braces with a comma or a sequence inside make several words."""
    if not any(kind == _LITERAL and "{" in text for kind, text, _ in segments):
        return False
    # Quoted characters and expansions cannot be brace syntax: mask them out.
    masked = "".join(text if kind == _LITERAL else "\0" * len(text) for kind, text, _ in segments)
    stack: list[list[int]] = []
    for at, ch in enumerate(masked):
        if ch == "{":
            stack.append([at, 0])
        elif ch == "," and stack:
            stack[-1][1] = 1
        elif ch == "}" and stack:
            start, comma = stack.pop()
            if comma or _SEQUENCE.fullmatch(masked, start + 1, at):
                return True
    return False


def _is_substitution(expansion: str) -> bool:
    """``$(...)``, backticks, ``<(...)``/``>(...)``: a program writes the text."""
    return expansion[:1] in "`<>" or (
        expansion.startswith("$(") and not expansion.startswith("$((")
    )


# Words _segments reads without a decision: text and quoted strings bash reads nothing
# in (``{'type':``, a dict repr's first word), or one parameter in double quotes
# (``"$CHAT_TEMPLATE"``). One with both braces outside quotes may be brace-expanded.
_QUOTED_TEXT = re.compile(r"""(?:[^\\'"$`<>]++|'[^']*+'|"[^"\\$`]*+")++""")
_QUOTE_PAIR = re.compile(r"""'([^']*+)'|"([^"]*+)\"""")
_QUOTED_PARAMETER = re.compile(r'"\$(?:[A-Za-z_][A-Za-z0-9_]*+|\{[A-Za-z_][A-Za-z0-9_]*+\})"')


def info(raw: str) -> WordInfo:
    """What bash makes of ``raw``: its text if nothing is expanded, and whether it may split."""
    if _NEEDS_WORK.search(raw) is None:
        return WordInfo(raw, False, raw, False, False)
    if _QUOTED_TEXT.fullmatch(raw) and not _braces_outside_quotes(raw):
        text = _QUOTE_PAIR.sub(r"\1\2", raw)
        return WordInfo(text, False, text, False, False)
    if _QUOTED_PARAMETER.fullmatch(raw):
        return WordInfo(None, False, "", True, False)
    return _read_info(raw)


def _braces_outside_quotes(raw: str) -> bool:
    """Whether a word of _QUOTED_TEXT holds both "{" and "}" outside its quotes."""
    if "{" not in raw or "}" not in raw:
        return False  # (most words: no second pass over them)
    bare = _QUOTE_PAIR.sub("", raw)
    return "{" in bare and "}" in bare


def _read_info(raw: str) -> WordInfo:
    """info() of any word, read segment by segment."""
    segments = _segments(raw, positions=False)
    expanded = [kind for kind, _, _ in segments if kind >= _EXPANSION]
    splits = _EXPANSION in expanded or _brace_expansion(segments)
    if not expanded and not splits:
        text = "".join(text for _, text, _ in segments)
        return WordInfo(text, False, text, False, False)
    prefix: list[str] = []
    for kind, text, _ in segments:
        if kind >= _EXPANSION:
            break
        prefix.append(text)
    substituted = any(
        kind >= _EXPANSION
        and (text[:1] in "`<>" or text.startswith("$("))
        and not text.startswith("$((")
        for kind, text, _ in segments
    )
    return WordInfo(None, splits, "".join(prefix), bool(expanded), substituted)


def unquote(raw: str) -> str:
    """The word as the program receives it, quotes and escapes removed.

    Expansions are kept as they are written (``"$CHAT_TEMPLATE"`` reads as
    ``$CHAT_TEMPLATE``): their value is only known when the script runs.
    Never raises, whatever ``raw`` is.
    """
    if _NEEDS_WORK.search(raw) is None:
        return raw
    return "".join(text for _, text, _ in _segments(raw, positions=False))


def text_with_positions(raw: str) -> tuple[str, list[int], list[int]] | None:
    """The text of a word without expansions, and where each character comes from in ``raw``.

    ``starts[k]``/``ends[k]`` bound the raw characters that make character k (an
    escape is two). ``starts`` has one more entry: where text appended at the end
    goes (inside a closing quote). None when the word has an expansion.
    """
    segments = _segments(raw, positions=True)
    if any(kind >= _EXPANSION for kind, _, _ in segments):
        return None
    text = "".join(text for _, text, _ in segments)
    spans = [span for _, _, at in segments for span in at]
    starts = [start for start, _ in spans]
    ends = [end for _, end in spans]
    end = len(raw)
    if raw and raw[-1] in "'\"" and (not ends or ends[-1] < end):
        end -= 1
    starts.append(end)
    return text, starts, ends


def requote(text: str) -> str:
    """``text`` as one single-quoted shell word; ``unquote`` gives it back."""
    return "'" + text.replace("'", "'\\''") + "'"


def equals_sign(raw: str) -> tuple[int, str] | None:
    """Offset of the first ``=`` of the word's text in ``raw``, and the quote it sits in.

    The quote is ``""`` outside quotes, else ``'``, ``"`` or ``$'``. None when the
    text has no ``=``, or when it comes from an escape or an expansion.
    """
    i, n = 0, len(raw)
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
            elif c in "$`" or (c in "<>" and raw.startswith("(", i + 1)):
                i = max(i + 1, _expansion_end(raw, i))
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
            elif quote == '"' and c in "$`":
                i = max(i + 1, _expansion_end(raw, i))
            else:
                i += 1
    return None

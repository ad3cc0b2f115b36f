"""Finding the vLLM server's start in a script: which simple command bash runs as the server.

Of the simple commands :func:`migrate.core.shell.parse` reports, the server is the
one whose program, past ``exec``, ``nohup`` and ``env``, is python running
``-m vllm_server`` or ``-m vllm_startup_wrapper``; a nested ``bash -c SCRIPT`` is
read in turn when its script names the module, with every offset mapped back to the
stored script. The module's mentions are also counted wherever bash would not run
them (strings, comments, here-documents), so that a second server hidden there
makes the script ambiguous, and when no start is found :func:`_why_not_found` says
why in the caller's terms.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

from migrate.core import shell, shellwords
from migrate.core.command_args import _arguments, _check_enforce_eager, _indirect, _Map
from migrate.core.command_model import (
    INDIRECT_ARGUMENTS,
    NO_VLLM_INVOCATION,
    UNBALANCED_QUOTING,
    VLLM_MODULES,
    CommandError,
    VllmInvocation,
    _text,
)

_PYTHON = re.compile(r"python(?:3(?:\.[0-9]+)?)?")
_SHORT_OPTIONS = re.compile(r"-[A-Za-z]+")
_WRAPPERS = frozenset({"exec", "nohup", "env"})
_SHELL_NAMES = frozenset({"bash", "sh"})
# Counts every place the script names a vLLM module to python, including places
# where bash does not run it as a command (strings, comments, here-documents), so
# that a second server hidden there makes the script ambiguous, not half-edited.
_MODULE_MENTION = re.compile(r"-m[\s'\"\\]*vllm_(?:server|startup_wrapper)(?![\w.])")
# The same with quotes and backslashes (and line continuations) anywhere in it,
# as if they were dropped first: ``vllm_se\\rver``, ``-m 'vllm_'server``.
_DROPPED = r"""(?:\\\n|[\\'"])*+"""


def _loosely(word: str) -> str:
    return _DROPPED.join(re.escape(c) for c in word)


_LOOSE_MENTION = re.compile(
    _loosely("-m")
    + r"""[\s'"\\]*(?:"""
    + "|".join(_loosely(module) for module in ("vllm_server", "vllm_startup_wrapper"))
    + f")(?!{_DROPPED}[\\w.])"
)
_LOOSE_VLLM_S = re.compile(_loosely("vllm_s"))


def _split_words(text: str, command: shell.Command) -> tuple[list[tuple[int, int]], list[str]]:
    """The spans and texts of a plain command's words, found by splitting at spaces;
    ([], []) when that would not be bash's reading (then the word reader reads them).

    Three in four of a fleet's servers are started by such commands (``--host "::"``,
    ``--host '::'`` included): no word there is looked into twice. A word quotes with
    one kind of quote only, and its quotes pair up within it, so no quoted part holds
    a blank; inside them bash reads nothing but text here (no escape, no expansion
    anywhere), so a word's text is its characters without the quotes.
    """
    chunk = text[command.start : command.end]
    if not command.plain or _splits_otherwise(chunk):
        return [], []
    raws = chunk.split(" ")
    texts = raws
    if '"' in chunk or "'" in chunk:
        texts = []
        for raw in raws:
            quote = '"' if '"' in raw else "'" if "'" in raw else ""
            if quote:
                if raw.count(quote) % 2 or (quote == '"' and "'" in raw):
                    return [], []  # a quoted blank ("a b"), or one quote inside the other
                texts.append(raw.replace(quote, ""))
            else:
                texts.append(raw)
    return _spans(raws, command.start), texts


def _words(text: str, command: shell.Command) -> tuple[tuple[tuple[int, int], ...], list[str]]:
    """The spans of a command's words from its name on, and their texts when the split
    knows them all (else [], and the word reader reads each: an expansion, a quote
    inside a word, ``"$CHAT_TEMPLATE"``, a dict repr)."""
    split, texts = _split_words(text, command)
    if split:
        return tuple(split), texts
    read = shell.command_words(text, command)
    return read.words[read.assignments :], texts


def _spans(raws: list[str], start: int) -> list[tuple[int, int]]:
    """Where each of these words stands, written from ``start`` on one blank apart."""
    spans = []
    at = start
    for raw in raws:
        end = at + len(raw)
        spans.append((at, end))
        at = end + 1
    return spans


def _splits_otherwise(chunk: str) -> bool:
    """Whether a blank may stand inside a word of the chunk, or a word be more than its
    characters: an escape, an expansion, a redirection-like or brace character, a tab,
    two blanks in a row. (Plain tests: a regex with these alternatives took 2 us.)"""
    return (
        "$" in chunk
        or "\\" in chunk
        or "`" in chunk
        or "<" in chunk
        or ">" in chunk
        or "{" in chunk
        or "\t" in chunk
        or "  " in chunk
    )


class _Located(NamedTuple):
    """An invocation found in a (possibly nested) script, and where it stands there."""

    invocation: VllmInvocation
    context: int
    bad_redirect: bool


def _refuse(kind: str, reason: str) -> CommandError:
    return CommandError(kind, reason)


def _after_wrappers(words: Sequence[str | None]) -> int:
    """Index of the program ``exec``, ``nohup`` and ``env`` run (past their own words)."""
    i, n = 0, len(words)
    while i < n and words[i] in _WRAPPERS:
        wrapper = words[i]
        i += 1
        if wrapper != "env":
            continue
        # env takes NAME=VALUE words (any name, even one the shell would refuse),
        # -i and -u NAME before the program.
        while i < n:
            word = words[i] or ""
            if word in ("-i", "-", "--ignore-environment") or (
                "=" in word and not word.startswith("-")
            ):
                i += 1
            elif word == "-u":
                i += 2
            else:
                break
    return i


class _Texts(Sequence[str | None]):
    """The texts of a command's words, each worked out when first asked for.

    Finding the program needs only the first few words of a long command.
    """

    __slots__ = ("text", "spans", "known")

    def __init__(self, text: str, spans: Sequence[tuple[int, int]]) -> None:
        self.text, self.spans = text, spans
        self.known: dict[int, str | None] = {}

    def __len__(self) -> int:
        return len(self.spans)

    def __getitem__(self, i):  # type: ignore[no-untyped-def]
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self.spans)))]
        known = self.known
        if i not in known:
            a, b = self.spans[i]
            known[i] = _text(self.text[a:b])
        return known[i]


def _module_of(
    text: str, spans: Sequence[tuple[int, int]], texts: Sequence[str] = ()
) -> tuple[str, int] | None:
    """``(module, index of the first argument word)`` when these words start a vLLM server.

    ``texts``: the words' texts, when known (see _split_words).
    """
    words: Sequence[str | None] = texts or _Texts(text, spans)
    i = _after_wrappers(words)
    n = len(words)
    interpreter = words[i] if i < n else None
    if interpreter is None or not _PYTHON.fullmatch(interpreter.rsplit("/", 1)[-1]):
        return None
    i += 1
    while i < n:
        word = words[i]
        if word is None:
            return None
        if word == "-m":
            module = words[i + 1] if i + 1 < n else None
            return (module, i + 2) if module in VLLM_MODULES and module is not None else None
        if word.startswith("-m"):
            return (word[2:], i + 1) if word[2:] in VLLM_MODULES else None
        if word in ("-X", "-W"):
            i += 2
        elif _SHORT_OPTIONS.fullmatch(word) and "c" not in word and "m" not in word:
            i += 1
        else:
            return None
    return None


def _outer(to_outer: _Map | None, i: int, end: bool = False) -> int:
    """An offset in a nested script as an offset in the stored one (``end``: exclusive)."""
    if to_outer is None:
        return i
    return to_outer[1][i - 1] if end else to_outer[0][i]


def _invocation(
    text: str,
    command: shell.Command,
    spans: tuple[tuple[int, int], ...],
    matched: tuple[str, int],
    to_outer: _Map | None,
    texts: Sequence[str] = (),
) -> VllmInvocation:
    """The vLLM server ``command`` starts (offsets in the stored script).

    ``spans``: its words from the program on; ``matched``: what _module_of found in
    them; ``texts``: their texts, when known.
    """
    module, first = matched
    positionals, args = _arguments(text, spans[first:], to_outer, texts[first:])
    _check_enforce_eager(args)
    if to_outer is None:
        return VllmInvocation(
            script=text,
            module=module,
            start=command.pipeline_start,
            end=command.pipeline_end,
            positionals=positionals,
            args=args,
            insert_at=spans[-1][1],
            word_spans=spans,
            command_end=command.end,
        )
    return VllmInvocation(
        script=text,  # the stored script replaces a nested one (see _parse)
        module=module,
        start=_outer(to_outer, command.pipeline_start),
        end=_outer(to_outer, command.pipeline_end, True),
        positionals=positionals,
        args=args,
        insert_at=_outer(to_outer, spans[-1][1], True),
        word_spans=tuple((_outer(to_outer, a), _outer(to_outer, b, True)) for a, b in spans),
        command_end=_outer(to_outer, command.end, True),
        nested=to_outer is not None,
    )


def _nested_script(text: str, spans: Sequence[tuple[int, int]]) -> int | None:
    """Index of the script word of ``bash -c SCRIPT`` (after wrappers and options), or None."""
    words = _Texts(text, spans)
    i, n = _after_wrappers(words), len(words)
    if i >= n or words[i] is None or words[i].rsplit("/", 1)[-1] not in _SHELL_NAMES:  # type: ignore[union-attr]
        return None
    i += 1
    while i < n and words[i] is not None and words[i].startswith("-"):  # type: ignore[union-attr]
        word = words[i]
        assert word is not None
        i += 1
        if word in ("-o", "+o", "-O", "+O"):
            i += 1
        elif not word.startswith("--") and "c" in word:
            return i if i < n else None
    return None


def _find(text: str, parsed: shell.Script, to_outer: _Map | None) -> list[_Located]:
    """Every vLLM server start bash runs in this script, nested ``bash -c`` strings included."""
    found: list[_Located] = []
    for command in parsed.commands:
        if command.name_start < 0:
            continue
        name = _text(text[command.name_start : command.name_end])
        if name is None:
            continue
        base = name.rsplit("/", 1)[-1]
        if base not in _WRAPPERS and base not in _SHELL_NAMES and not _PYTHON.fullmatch(base):
            continue
        spans, texts = _words(text, command)
        matched = _module_of(text, spans, texts)
        if matched is not None:
            invocation = _invocation(text, command, spans, matched, to_outer, texts)
            found.append(_Located(invocation, command.context, command.bad_redirect))
            continue
        at = _nested_script(text, spans)
        if at is None:
            continue
        a, b = spans[at]
        raw = text[a:b]
        if not _mentions(shellwords.unquote(raw)):
            continue  # read the inner script only when the server is inside it
        mapped = shellwords.text_with_positions(raw)
        if mapped is None:
            raise _indirect(raw, "is a nested bash -c script made by an expansion")
        inner, starts, ends = mapped
        try:
            inner_parsed = shell.parse(inner)
        except shell.ShellSyntaxError as err:
            raise CommandError(
                UNBALANCED_QUOTING, f"The nested bash -c script is not valid bash: {err}"
            ) from err
        starts, ends = [a + p for p in starts], [a + p for p in ends]
        if to_outer is not None:
            starts = [to_outer[0][p] for p in starts]
            ends = [to_outer[1][p - 1] for p in ends]
        for located in _find(inner, inner_parsed, (starts, ends)):
            found.append(
                _Located(
                    located.invocation, located.context | command.context, located.bad_redirect
                )
            )
    return found


def _find_plain(text: str, start: int) -> VllmInvocation | None:
    """The server's start when all of ``text`` from ``start`` on is one plain command
    that starts it (shell.lone_plain_command: words of text, quoted strings and plain
    parameters, no operator, redirection or substitution), as _find reads it in
    ``shell.parse(text, start)``; None when the text is anything else (then _find
    reads it).

    Such a command is the script's only one there, at top level, not in a pipeline,
    with no redirection: found without the general reader, it is what _find finds.
    """
    read = _ordinary_words(text, start)
    if read is not None:
        command, spans, texts = read
    else:
        command = shell.lone_plain_command(text, start)
        if command is None:
            return None
        spans, texts = _words(text, command)
    matched = _module_of(text, spans, texts)
    if matched is None:
        return None
    return _invocation(text, command, spans, matched, None, texts)


# A command at its plainest: words of these characters, or of them wholly in one pair
# of quotes, one blank between. Bash reads nothing in them (no quote in another, escape,
# expansion, glob, brace, tilde, comment, operator or redirection): its words are the
# text split at the blanks, each word's text its characters without the quotes. Half a
# fleet's server commands are such (``--host "::"``), read by one simple match where
# shell.lone_plain_command's expression and _split_words's checks took 8 us.
_ORDINARY = "[A-Za-z0-9_./:,=+@%-]"
_ORDINARY_WORD = f"""(?:{_ORDINARY}++|"{_ORDINARY}*+"|'{_ORDINARY}*+')"""
_ORDINARY_WORDS = re.compile(f"{_ORDINARY_WORD}(?: {_ORDINARY_WORD})*+")


def _ordinary_words(
    text: str, start: int
) -> tuple[shell.Command, tuple[tuple[int, int], ...], list[str]] | None:
    """(the command, its words' spans, their texts) when all of ``text`` from ``start`` on
    is one command of ordinary words (see _ORDINARY_WORDS): what lone_plain_command and
    _split_words make of it; None for anything else."""
    if _ORDINARY_WORDS.fullmatch(text, start) is None or "\\\n" in text:
        return None  # (a line continuation: see shell.lone_plain_command)
    words = text[start:]
    raws = words.split(" ")
    if "=" in raws[0]:
        return None  # an assignment, for shell_parser.plain_command
    texts = raws
    if '"' in words or "'" in words:
        texts = [raw[1:-1] if raw[:1] in "\"'" else raw for raw in raws]
    spans = tuple(_spans(raws, start))
    end = len(text)
    return shell.Command(start, end, start, spans[0][1], 0, start, end, 0, 1), spans, texts


def _mentions(text: str, strict: int | None = None) -> int:
    """How often the text names a vLLM module to python, however it is escaped or quoted.

    A count, not a reading: quotes and backslashes are dropped first, so that a
    module name spelled ``vllm_se\\rver`` or split by a line continuation counts too.
    Callers ask "none, one or more", so past two the count may fall short.
    ``strict``: the count of _MODULE_MENTION matches (0, 1 or 2 for more), when the
    caller has already searched for them.
    """
    count = len(_MODULE_MENTION.findall(text)) if strict is None else strict
    if count < 2 and ("\\" in text or "'" in text or '"' in text):
        # Each loose mention holds its own loose "vllm_s": with no more of those than
        # strict mentions, the slower search could find no more either.
        if len(_LOOSE_VLLM_S.findall(text)) > count:
            count = max(count, len(_LOOSE_MENTION.findall(text)))
    return count


def _why_not_found(parsed: shell.Script, text: str) -> CommandError:
    mention = _MODULE_MENTION.search(text)
    if mention is None and _mentions(text):
        return CommandError(
            NO_VLLM_INVOCATION,
            "The script names the vLLM module only split by a line continuation, "
            "where bash does not run it as the server.",
        )
    if mention is None:
        return CommandError(
            NO_VLLM_INVOCATION, "The script never runs python -m vllm_server or its wrapper."
        )
    for command in parsed.commands:
        if command.name_start >= 0 and _text(text[command.name_start : command.name_end]) == "eval":
            return CommandError(
                INDIRECT_ARGUMENTS,
                "The script runs eval and names the vLLM module only in text: the start is "
                "built at run time, so nobody can say from the stored command what it receives.",
            )
    at = mention.start()
    around = [c for c in parsed.commands if c.start <= at < c.end]
    if around:
        innermost = min(around, key=lambda c: c.end - c.start)
        name_raw = text[innermost.name_start : innermost.name_end]
        name = _text(name_raw) if innermost.name_start >= 0 else ""
        if name is None:
            return _indirect(name_raw, "names the command that runs python -m vllm_...")
        if name == "eval":
            return CommandError(
                INDIRECT_ARGUMENTS,
                "eval builds the vLLM start at run time, so nobody can say from the stored "
                "command what the server receives.",
            )
        if "`" in text[innermost.start : innermost.end]:
            return CommandError(
                NO_VLLM_INVOCATION,
                "The script starts the vLLM server only inside a backtick substitution.",
            )
    return CommandError(
        NO_VLLM_INVOCATION,
        "The script names the vLLM module only where bash does not run it as the server "
        "(an argument, a string, a comment or a here-document).",
    )

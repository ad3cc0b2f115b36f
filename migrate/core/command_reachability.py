"""Whether bash gets as far as the vLLM start: ``exit``, ``exec`` and ``set -e`` before it.

A server start that bash never reaches is no start: the script may ``exit`` first,
``exec`` another program, or, with ``-e`` on, fail for sure on a command before it
(a ``set`` option bash refuses, as a CRLF line end makes ``set -euo pipefail\\r``;
a redirection bash cannot make). Only top-level commands that run for sure count;
:func:`_stops` follows ``-e`` through the ``set`` commands as bash applies them
(:func:`_set_options`), and reports whether it is on where the reading stopped, for
a setup whose reading is kept (:mod:`migrate.core.command_reading`).
"""

from __future__ import annotations

from collections.abc import Sequence

from migrate.core import shell
from migrate.core.command_model import _text


def _stops(
    commands: Sequence[shell.Command], text: str, before: int, errexit: bool = False
) -> tuple[str | None, bool]:
    """Why bash stops before offset ``before`` at top level (or None), and whether -e is on.

    An ``exit``, an ``exec`` of another program, or a command that fails for sure
    while ``-e`` is on: with CRLF line ends ``set -euo pipefail\\r`` names no
    option, and bash exits right there.
    """
    for command in commands:
        if command.end > before:
            break
        if command.context & ~(shell.AFTER_AND | shell.TESTED) or command.name_start < 0:
            continue  # not at top level, or not run for sure: it cannot end the script
        name = _text(text[command.name_start : command.name_end])
        if name == "exit":
            return f"bash exits at offset {command.start} before it reaches the vLLM start", errexit
        tested = command.context & shell.TESTED  # set -e spares a command before && or ||
        if errexit and command.bad_redirect and not tested:
            return (
                f"a redirection at offset {command.start} cannot be made (ambiguous "
                "redirect), and with -e on bash exits there"
            ), errexit
        if name not in ("exec", "set"):
            continue
        read = shell.command_words(text, command)
        raws = [text[a:b] for a, b in read.words[read.assignments + 1 :]]
        if name == "exec" and raws:
            return f"exec at offset {command.start} replaces bash before the vLLM start", errexit
        if name == "set":
            texts = [_text(raw) for raw in raws]
            words = [t for t in texts[: texts.index(None)]] if None in texts else texts
            errexit, invalid = _set_options(words, errexit)  # type: ignore[arg-type]
            if errexit and invalid is not None and not tested:
                crlf = " (a CRLF line end glued a carriage return to it)" if "\r" in invalid else ""
                return (
                    f"`set` at offset {command.start} fails on the option {invalid!r}{crlf}, "
                    "and with -e on bash exits there"
                ), errexit
    return None, errexit


_SET_FLAGS = frozenset("abefhkmnptuvxBCEHPT")
_SET_NAMES = frozenset(
    "allexport braceexpand emacs errexit errtrace functrace hashall histexpand history "
    "ignoreeof interactive-comments keyword monitor noclobber noexec noglob nolog notify "
    "nounset onecmd physical pipefail posix privileged verbose vi xtrace".split()
)


def _set_options(words: Sequence[str], errexit: bool) -> tuple[bool, str | None]:
    """Whether ``-e`` is on after ``set WORDS``, and the first option bash refuses (or None).

    bash first checks every option letter (a bad one refuses the whole command,
    nothing applied), then applies them in order: ``set -euo pipefail\\r`` has
    turned ``-e`` on by the time it fails on the option name.
    """
    i, n = 0, len(words)
    while i < n:  # the check
        word = words[i]
        if word in ("-", "--") or not word or word[0] not in "-+":
            break  # the rest are positional parameters ("" too: ``set ''`` sets $1)
        if any(flag not in _SET_FLAGS and flag != "o" for flag in word[1:]):
            return errexit, word
        i += 1
        for _ in range(word.count("o")):  # -o takes the next word unless it is an option
            if i < n and words[i] and words[i][0] not in "-+":
                i += 1  # (not "": ``set -o ''`` lists the options, as a bare -o does)
    end, i = i, 0
    while i < end:  # the options, applied in order
        word = words[i]
        i += 1
        on = word[0] == "-"
        for flag in word[1:]:
            if flag == "o":
                if i >= end or not words[i] or words[i][0] in "-+":
                    continue  # "set -o" without a name lists the options
                name = words[i]
                i += 1
                if name not in _SET_NAMES:
                    return errexit, name
                if name == "errexit":
                    errexit = on
            elif flag == "e":
                errexit = on
    return errexit, None

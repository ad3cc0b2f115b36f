"""The one edit: ``--enforce-eager`` added or removed, and bash's reading checked after it.

:func:`set_enforce_eager` puts the flag beside the GPU memory utilization (where
the old rule wrote it, so removing and re-adding gives the original bytes back) or
after the last argument, or cuts it out with the blank before it (without, when
that would glue two words). Every candidate is checked
before it is returned: the words around the edit are read again and must be the
same words with the flag alone changed (:func:`_verify_stretch`), and an edit
inside a nested ``bash -c`` string is checked by reading the whole edited script
again (:func:`_verify`). An edit that fails is never returned; the
``verification-failed`` error says why.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from operator import itemgetter

from migrate.core import shell
from migrate.core.command_model import (
    ENFORCE_EAGER,
    GPU_MEMORY_UTILIZATION,
    VERIFICATION_FAILED,
    CommandError,
    VllmInvocation,
)
from migrate.core.command_reading import _parse

__all__ = ["set_enforce_eager"]


def set_enforce_eager(script: str | VllmInvocation, on: bool) -> str:
    """The script with ``--enforce-eager`` present (``on``) or absent, all else unchanged.

    Takes the script, or its parse when the caller has one already (a scan
    parses every command once; parsing it again for the edit doubled the work).
    """
    before = script if isinstance(script, VllmInvocation) else _parse(script)
    on = bool(on)
    if before.enforce_eager == on:
        return before.script
    # A shared reading (see parse_script) keeps its edits: each is made and checked once.
    edited = before._edits.get(on)
    if edited is None:
        edited = before._edits[on] = _edit(before, on)
    if isinstance(edited, CommandError):
        raise CommandError(edited.kind, edited.reason)
    return edited


def _edit(before: VllmInvocation, on: bool) -> str | CommandError:
    """The edited script, or why no edit passes verification."""
    text = before.script
    # (lo, hi, inserted): the edit replaces text[lo:hi] with inserted.
    candidates: list[tuple[int, int, str]] = []
    if on:
        # Next to the utilization is where generations B and C put it, so a removal
        # followed by a re-add gives back the original bytes.
        utilization = before.get(GPU_MEMORY_UTILIZATION)
        at = utilization.end if utilization is not None else before.insert_at
        candidates.append((at, at, " " + ENFORCE_EAGER))
    else:
        flag = before.get(ENFORCE_EAGER)
        assert flag is not None  # enforce_eager is True
        if text[flag.start - 1] == " ":
            candidates.append((flag.start - 1, flag.end, ""))
        # Dropping the space can glue words into a new meaning ("1 >log" becomes the
        # fd redirect "1>log"); verification catches that and the next try keeps it.
        candidates.append((flag.start, flag.end, ""))
    failure: CommandError | None = None
    for lo, hi, inserted in candidates:
        edited = text[:lo] + inserted + text[hi:]
        try:
            if before.nested:
                _verify(before, edited, on)
            else:
                _verify_stretch(before, edited, lo, hi, inserted)
        except CommandError as err:
            failure = failure or err
            continue
        return edited
    assert failure is not None
    return failure


def _failed(reason: str) -> CommandError:
    return CommandError(VERIFICATION_FAILED, reason)


def _verify_stretch(before: VllmInvocation, edited: str, lo: int, hi: int, inserted: str) -> None:
    """Raise unless bash reads the edited stretch as the same words, the flag alone changed.

    Only the words touching the edit can change how they are read (a removed
    blank may glue two words, or a value to a redirection); the bytes before the
    command and after the next word are unchanged, and so is bash's state there.
    """
    spans = before.word_spans
    delta = len(inserted) - (hi - lo)
    # Words are in order and never overlap, so their starts and ends both ascend.
    k_prev = bisect_right(spans, lo, key=_END) - 1  # the last word ending by lo
    k_next = bisect_left(spans, hi, key=_START)  # the first word starting from hi
    if k_prev < 0:
        raise _failed("The edit does not line up with the command's words.")
    removed_words = k_next - k_prev - 1
    if removed_words != (0 if inserted else 1):
        raise _failed("The edit does not line up with the command's words.")
    expected = [spans[k_prev]]
    if inserted:
        expected.append((lo + 1, lo + len(inserted)))
    if k_next < len(spans):
        a, b = spans[k_next]
        expected.append((a + delta, b + delta))
        stop = b + delta
    elif before.command_end > hi:
        stop = before.command_end + delta  # redirections follow the last word
    elif inserted:
        stop = lo + len(inserted)  # the new flag is the command's last word
    else:
        stop = len(_TRAILING_BLANKS.sub("", edited[:lo]))  # the word before the flag ends it
    try:
        end, words = shell.read_words(edited, spans[k_prev][0], stop)
    except shell.ShellSyntaxError as err:
        raise _failed(f"The edited command does not read as bash: {err}") from err
    if words != expected or (k_next == len(spans) and end != stop):
        raise _failed("The edit changed how bash splits the command into words.")
    if inserted and edited[lo + 1 : lo + len(inserted)] != ENFORCE_EAGER:
        raise _failed("The edit did not insert --enforce-eager.")


_START, _END = itemgetter(0), itemgetter(1)
_TRAILING_BLANKS = re.compile(r"(?:[ \t]|\\\n)+\Z")
_LEADING_BLANKS = re.compile(r"\A(?:[ \t]|\\\n)+")
_NESTED_LEADING_BLANKS = re.compile(r"\A(?:[ \t]|\\+\n)+")


def _comparable(invocation: VllmInvocation) -> list[tuple[str, tuple[str, ...], bool]]:
    return [
        (arg.flag, arg.values, arg.inline) for arg in invocation.args if arg.flag != ENFORCE_EAGER
    ]


def _verify(before: VllmInvocation, script: str, on: bool) -> None:
    """Raise unless ``script`` differs from ``before.script`` in the eager flag alone.

    Reads the whole edited script again: for edits inside nested scripts, and for tests.
    """
    try:
        after = _parse(script)
    except CommandError as err:
        raise _failed(f"The edited script does not parse: {err.reason}") from err
    if after.enforce_eager != on:
        raise _failed("The edit did not change --enforce-eager.")
    if after.module != before.module or after.positionals != before.positionals:
        raise _failed("The edit changed the vLLM module or its positional arguments.")
    if _comparable(after) != _comparable(before):
        raise _failed("The edit changed other vLLM arguments.")
    # Blanks between words may become trailing ones: the text after the subcommand
    # is compared without them (in a nested script they may be escaped once more).
    blanks = _NESTED_LEADING_BLANKS if before.nested else _LEADING_BLANKS
    if (
        after.start != before.start
        or script[: before.start] != before.script[: before.start]
        or blanks.sub("", script[after.end :]) != blanks.sub("", before.script[before.end :])
    ):
        raise _failed("The edit changed the script outside the vLLM subcommand.")

"""Reading a start script whole: the one vLLM start bash runs, or why there is none.

:func:`_parse` strings the parts together: bash's reading of the script, the starts
found in it (:mod:`migrate.core.command_locate`), exactly one or a refusal, not in a
function or a substitution, and reached (:mod:`migrate.core.command_reachability`).
The setup before the server is read once and its reading kept (:func:`_setup`): a
long one that many scripts share (model engine's model-cache program, ~3 KB) by a
looser key, a short one by its text with its URLs' directories blanked (a download
step names a model's or an endpoint's weights there, so a fleet has a few dozen). A script whose
server command (all after the setup) was read before in another script takes that
reading, moved, once its own setup is vouched for (:func:`_reused`): fleets repeat
server commands twice as often as whole scripts, whose downloads name each
endpoint's weights. Readings of whole scripts are kept by
:func:`migrate.core.command.parse_script`.
"""

from __future__ import annotations

import re
from dataclasses import replace
from functools import lru_cache
from typing import Any

from migrate.core import shell
from migrate.core.command_args import _tuple_new
from migrate.core.command_locate import (
    _MODULE_MENTION,
    _find,
    _find_plain,
    _mentions,
    _why_not_found,
)
from migrate.core.command_model import (
    MULTIPLE_VLLM_INVOCATIONS,
    NO_VLLM_INVOCATION,
    NOT_A_BASH_COMMAND,
    UNBALANCED_QUOTING,
    Arg,
    CommandError,
    VllmInvocation,
)
from migrate.core.command_reachability import _stops
from migrate.core.recurring import RecurringCache

# A long setup before the server (model engine's model-cache program: ~3 KB,
# ~90 commands) reads the same in every script that has it, up to the text of
# its single-quoted strings (the download) and the cache fingerprint. Its reading
# is kept, keyed by the setup with those blanked out, and reused: the reader
# never looks inside a single-quoted string except for its closing quote, nor
# inside an assignment's value, so any setup with the same key reads the same.
# A setup is kept only when every "'" in it delimits a real single-quoted string
# and no top-level command (what decides reachability) has a single-quoted one.
_SETUP_MIN = 1000
_SETUPS_KEPT = 64
# The summary kept: whether -e is on after the setup; None when the reading may
# not be reused (then the script is read whole, and so is a setup bash never gets
# past, whose reason names offsets of its own).
_setups: dict[str, bool | None] = {}
_PLAIN_STRING = re.compile(r"'[^']*'")
# The "=" is matched, not looked behind for: a literal first character lets the
# search skip ahead (a lookbehind is tried at every offset: 18 us a setup, not 2).
_ASSIGNED_HEX = re.compile(r"=[0-9a-f]{32,}(?=[;\s])")
_MISSING: Any = object()
# A short setup is read with each URL's directories (past "://", up to its last "/")
# written "u/" ("c/" if they hold a "c"). A download step names a model's or an
# endpoint's weights there: the synthetic fleet's 5,400 short setups in 40,000 scripts
# read as 89. It reads the same: those characters mean nothing to bash in a word (no
# blank, quote, escape, expansion, glob, brace, "=" or "~"), so the commands, their
# words and each word's first character and text after its last "/" (what names a
# command to the reader: exit, set, python, bash) stay, and so does whether a word
# holds a "c" (the reader takes an option of bash's with one for -c: ``bash
# -x://c/ SCRIPT`` may run SCRIPT); and no vLLM mention can stand there (none strict
# is in a setup, and a loose one has no "/").
_URL_DIRECTORIES = re.compile(r"://[A-Za-z0-9_./-]*/")


def _blanked(url: re.Match[str]) -> str:
    return "://c/" if "c" in url.group() else "://u/"


def _setup_key(setup: str) -> str:
    blanked = _PLAIN_STRING.sub("''", setup)
    return _ASSIGNED_HEX.sub(lambda m: "=" + "0" * (len(m.group()) - 1), blanked)


def _read_setup(setup: str) -> bool | None:
    """Whether -e is on after the setup, if its reading may be reused; else None."""
    try:
        parsed, quotes = shell.parse_quoting(setup)
    except shell.ShellSyntaxError:
        return None
    if quotes != [m.span() for m in _PLAIN_STRING.finditer(setup)]:
        return None  # a quote inside another string, a comment...: the key would lie
    for command in parsed.commands:
        top = not command.context & ~(shell.AFTER_AND | shell.TESTED)
        if top and command.name_start >= 0 and "'" in setup[command.start : command.end]:
            # What the command is, or its words, could hide in a blanked string. Double
            # quotes hide nothing: the key keeps their text (a chat template's export).
            return None
    return _after(setup, parsed)


def _after(setup: str, parsed: shell.Script) -> bool | None:
    """Whether -e is on after the setup, if bash goes on past it and starts no vLLM server
    in it; else None.

    A server is looked for among the setup's commands, not only counted by name: a
    module written ``$'vllm_server'`` or ``$"vllm_server"`` is no mention to
    _mentions, but bash runs it.
    """
    try:
        if _find(setup, parsed, None):
            return None
    except CommandError:
        return None  # a start the reader refuses to read is still one
    stop, errexit = _stops(parsed.commands, setup, len(setup))
    return errexit if stop is None else None


def _setup(script: str, end: int) -> bool | None:
    """Whether -e is on after ``script[:end]`` (``end`` > 0), when the rest may be read as
    if the script began there; else None.

    ``end`` is just past the ``;`` or newline before the server's command, so the
    cut must be where bash ends a command: not an escaped one, not in a comment
    or a here-document; and bash must read the setup to its end and go on (the
    rest of the checks: _read_setup for a long setup, _read_short_setup else).
    """
    if script[end - 1] not in ";\n" or script[end - 2 : end - 1] == "\\":
        return None
    setup = script[:end]
    if "<<" in setup or "#" in setup[setup.rfind("\n") + 1 :]:
        return None
    if end < _SETUP_MIN:
        return _read_short_setup(_URL_DIRECTORIES.sub(_blanked, setup))
    key = _setup_key(setup)
    summary = _setups.get(key, _MISSING)
    if summary is _MISSING:
        summary = _read_setup(setup)
        if len(_setups) >= _SETUPS_KEPT:
            _setups.clear()
        _setups[key] = summary
    return summary


@lru_cache(maxsize=256)
def _read_short_setup(setup: str) -> bool | None:
    """Whether -e is on after a setup too short to be kept by the long ones' key (its text,
    URLs' directories blanked, is the key), if bash reads all of it and goes on past it;
    else None."""
    try:
        parsed = shell.parse(setup)
    except shell.ShellSyntaxError:
        return None
    return _after(setup, parsed)


def _parse(script: str) -> VllmInvocation:
    if not isinstance(script, str):
        raise CommandError(NOT_A_BASH_COMMAND, "The command script is not a string.")
    # The first mention, and whether there is another (one search for both: _mentions).
    mentions = _MODULE_MENTION.finditer(script)
    mention = next(mentions, None)
    at = strict = 0
    if mention is not None:
        at, strict = mention.start(), 1 if next(mentions, None) is None else 2
    setup_end = max(script.rfind(";", 0, at), script.rfind("\n", 0, at)) + 1
    if not setup_end:
        return _read(script, 0, strict)
    # The server's command read before, in another script: taken when this one's
    # setup lets bash reach it as it reached it there.
    tail = script[setup_end:]
    kept = _tails.get(tail)
    if kept is not None:
        reused = _reused(kept, script, setup_end, strict)
        if reused is not None:
            return reused
    invocation = _read(script, setup_end, strict)
    # Kept only when the server is in that text (the first mention may be a decoy, an
    # echo's argument, after a server the mention search cannot see), and no command
    # stands between the cut and it but in its own and-or list: a decoy before the
    # server (``set -o x -m vllm_server;python -m $'vllm_server'``) may fail and end
    # the script where another setup has turned -e on (_reused).
    start = invocation.start
    if (
        kept is None
        and start >= setup_end
        and script.find(";", setup_end, start) < 0
        and script.find("\n", setup_end, start) < 0
    ):
        _tails.offer(tail, [invocation, setup_end, None])
    return invocation


# Readings by the text after the setup: [the reading of the script they came in, where
# that script's setup ends, whether bash reads that setup whole and goes on (None: not
# looked at yet)]. Kept from a server command's second sighting (migrate.core.recurring).
_TAILS_KEPT = 2048
_tails: RecurringCache[str, list[Any]] = RecurringCache(_TAILS_KEPT)


def _reused(kept: list[Any], script: str, setup_end: int, strict: int) -> VllmInvocation | None:
    """The kept reading as this script's, or None when its setup may make a difference.

    Bash reads what follows a setup it reads whole, and goes on from, as if the script
    began there (_setup). When both scripts' setups are so (the kept one's looked at
    once) and no second server hides in this one's, its reading is the kept one with
    the offsets moved. Whether -e is on after the setup makes none: a command before
    the server that is not cut from it by ";" or a newline is tested (&&, ||), in its
    pipeline or run in the background, and so never ends the script (_stops).
    """
    invocation, kept_end, whole = kept
    if whole is None:
        whole = kept[2] = _setup(invocation.script, kept_end) is not None
    if not whole or _setup(script, setup_end) is None or _mentions(script, strict) > 1:
        return None
    return _moved(invocation, script, setup_end - kept_end)


def _moved(invocation: VllmInvocation, script: str, by: int) -> VllmInvocation:
    """The reading of another script whose same text stands ``by`` characters later."""
    args, spans = invocation.args, invocation.word_spans
    if by:
        args = tuple([_tuple_new(Arg, (f, v, a + by, b + by, i)) for f, v, a, b, i in args])
        spans = tuple([(a + by, b + by) for a, b in spans])
    moved = VllmInvocation(
        script=script,
        module=invocation.module,
        start=invocation.start + by,
        end=invocation.end + by,
        positionals=invocation.positionals,
        args=args,
        insert_at=invocation.insert_at + by,
        word_spans=spans,
        command_end=invocation.command_end + by,
        nested=invocation.nested,
    )
    # What was worked out of the arguments holds for the same arguments.
    known = invocation.__dict__
    for name in _OF_ARGUMENTS:
        if name in known:
            moved.__dict__[name] = known[name]
    # An edit made there is this one's: it falls in the text both scripts share, which
    # bash reads alike in both (see _reused). A refusal is made again: its reason may
    # name an offset.
    cut = invocation.start
    for on, edited in invocation._edits.items():
        if type(edited) is str:
            moved._edits[on] = script[: cut + by] + edited[cut:]
    return moved


# A reading's values (command_model._kept) that its arguments alone decide.
_OF_ARGUMENTS = ("enforce_eager", "gpu_memory_utilization", "_items")


def _read(script: str, setup_end: int, strict: int | None = None) -> VllmInvocation:
    """The reading of the script; past its setup, when the setup's kept reading vouches
    that bash reads the rest as if the script began there (_setup). ``strict``: see
    _mentions."""
    setup = None
    if setup_end:
        # (The setup names no vLLM module: a first one would be cut before, and a
        # second anywhere makes the script refused below, read either way.)
        setup = _setup(script, setup_end)
        if setup is not None:
            # Most servers are one plain command after the setup: there
            # is then no other command to run it in a function or a substitution,
            # or to stop bash before it.
            plain = _find_plain(script, setup_end)
            if plain is not None:
                if _mentions(script, strict) > 1:
                    raise _more_than_one()
                return plain
    try:
        parsed = shell.parse(script, setup_end if setup is not None else 0)
    except shell.ShellSyntaxError as err:
        if setup is not None:
            # Said as of the whole script: read past the cut, "x;&y" fails at "&", but
            # bash reads ";&" there (a case terminator out of place).
            return _read(script, 0, strict)
        raise CommandError(UNBALANCED_QUOTING, f"The script is not valid bash: {err}") from err
    found = _find(script, parsed, None)
    if len(found) > 1 or _mentions(script, strict) > 1:
        raise _more_than_one()
    if not found:
        if setup is not None:
            parsed = shell.parse(script)  # the reason needs the whole reading
        raise _why_not_found(parsed, script)
    invocation, context, bad_redirect = found[0]
    if bad_redirect:
        raise CommandError(
            NO_VLLM_INVOCATION,
            "A redirection of the vLLM start cannot be made (bash: ambiguous redirect, "
            "e.g. a CRLF line end after 2>&1), so bash never starts the server.",
        )
    if context & shell.IN_FUNCTION:
        raise CommandError(
            NO_VLLM_INVOCATION,
            "The vLLM start is inside a shell function; whether it runs depends on calls "
            "the tool does not follow.",
        )
    if context & shell.IN_SUBSTITUTION:
        raise CommandError(
            NO_VLLM_INVOCATION,
            "The vLLM start is inside a command or process substitution.",
        )
    unreachable, _ = _stops(parsed.commands, script, invocation.start, bool(setup))
    if unreachable is not None:
        raise CommandError(
            NO_VLLM_INVOCATION, f"The script never reaches the server: {unreachable}."
        )
    if invocation.nested:
        invocation = replace(invocation, script=script)
    return invocation


def _more_than_one() -> CommandError:
    return CommandError(
        MULTIPLE_VLLM_INVOCATIONS, "The script starts the vLLM server more than once."
    )

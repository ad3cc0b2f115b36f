"""The stored vLLM start command as data: parse it, and toggle ``--enforce-eager`` in place.

A bundle's command is ``["/bin/bash", "-c", script]`` and the script went through
eight formatting generations (see the facts file, section 3): unquoted Python dict
reprs, quoted values, two module names, download and Ray steps in front. The only
safe change to such a script is surgical, so this module reads it with bash's own
word rules (quotes, brackets, escapes, operators; see ``migrate.core.shell``) to know
exactly which bytes make up the ``--enforce-eager`` token, and re-parses every edit
before handing it out.

Pure and stdlib-only on purpose: the policy and the plan are tested without a
database, and the same code must give the same answer in a dry run and a real run.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal

from tests.support.legacy import shell

__all__ = [
    "ENFORCE_EAGER",
    "GPU_MEMORY_UTILIZATION",
    "KINDS",
    "VLLM_MODULES",
    "Arg",
    "CommandError",
    "VllmInvocation",
    "parse_command",
    "parse_script",
    "set_enforce_eager",
    "split_subcommands",
]

ENFORCE_EAGER = "--enforce-eager"
GPU_MEMORY_UTILIZATION = "--gpu-memory-utilization"
VLLM_MODULES = ("vllm_server", "vllm_startup_wrapper")
SHELLS = ("/bin/bash", "bash", "/bin/sh", "sh")

NOT_A_BASH_COMMAND = "not-a-bash-command"
UNBALANCED_QUOTING = "unbalanced-quoting"
NO_VLLM_INVOCATION = "no-vllm-invocation"
MULTIPLE_VLLM_INVOCATIONS = "multiple-vllm-invocations"
AMBIGUOUS_ENFORCE_EAGER = "ambiguous-enforce-eager"
VERIFICATION_FAILED = "verification-failed"
KINDS = frozenset(
    {
        NOT_A_BASH_COMMAND,
        UNBALANCED_QUOTING,
        NO_VLLM_INVOCATION,
        MULTIPLE_VLLM_INVOCATIONS,
        AMBIGUOUS_ENFORCE_EAGER,
        VERIFICATION_FAILED,
    }
)


class CommandError(Exception):
    """A script this module refuses to interpret or edit; ``kind`` is machine-readable."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason

    def __reduce__(self) -> tuple[type[CommandError], tuple[str, str]]:
        # The two-argument constructor would otherwise break pickling (multiprocessing).
        return (type(self), (self.kind, self.reason))

    def __repr__(self) -> str:
        return f"CommandError({self.kind!r}, {self.reason!r})"


@dataclass(frozen=True)
class Arg:
    """One ``--flag [values...]`` group of the vLLM invocation, with its place in the script."""

    flag: str
    values: tuple[str, ...]
    start: int
    end: int
    inline: bool = False

    def texts(self) -> tuple[str, ...]:
        return tuple(shell.unquote(value) for value in self.values)


@dataclass(frozen=True)
class VllmInvocation:
    """The one ``python -m vllm_server|vllm_startup_wrapper`` subcommand of a script."""

    script: str = field(repr=False)
    module: str
    start: int
    end: int
    positionals: tuple[str, ...]
    args: tuple[Arg, ...]
    # Where an added flag goes when there is no utilization to sit beside: after
    # the last argument, before any trailing shell operator.
    insert_at: int = field(default=-1, repr=False, compare=False)

    def get(self, flag: str) -> Arg | None:
        # argparse keeps the last occurrence of a repeated option, so do we.
        found = self.all(flag)
        return found[-1] if found else None

    def all(self, flag: str) -> tuple[Arg, ...]:
        return tuple(arg for arg in self.args if arg.flag == flag)

    def has(self, flag: str) -> bool:
        return any(arg.flag == flag for arg in self.args)

    @property
    def enforce_eager(self) -> bool:
        return any(
            arg.flag == ENFORCE_EAGER and not arg.values and not arg.inline for arg in self.args
        )

    @property
    def gpu_memory_utilization(self) -> Decimal | None:
        text = self._single_text(GPU_MEMORY_UTILIZATION)
        if text is None or not _DECIMAL.fullmatch(text):
            return None
        return Decimal(text)

    @property
    def tensor_parallel_size(self) -> int | None:
        return self._int("--tensor-parallel-size")

    @property
    def pipeline_parallel_size(self) -> int | None:
        return self._int("--pipeline-parallel-size")

    @property
    def served_model_names(self) -> tuple[str, ...]:
        arg = self.get("--served-model-name")
        return arg.texts() if arg is not None else ()

    def as_dict(self) -> dict[str, tuple[str, ...]]:
        return {arg.flag[2:].replace("-", "_"): arg.texts() for arg in self.args}

    def _single_text(self, flag: str) -> str | None:
        arg = self.get(flag)
        if arg is None:
            return None
        texts = arg.texts()
        return texts[0] if len(texts) == 1 else None

    def _int(self, flag: str) -> int | None:
        text = self._single_text(flag)
        if text is None or not _INTEGER.fullmatch(text):
            return None
        return int(text)


# Options --------------------------------------------------------------------------


def _split_flag(raw: str) -> tuple[str, str | None] | None:
    """``(flag, raw inline value or None)`` when the word is a ``--`` option, else None.

    Decided on the unquoted text, because that is what vLLM's argparse sees:
    ``'--enforce-eager'`` in quotes is still the flag.
    """
    text = shell.unquote(raw)
    if not text.startswith("--"):
        return None
    if "=" not in text:
        return text, None
    name, value = text.split("=", 1)
    found = shell.raw_equals(raw)
    if found is not None:
        at, quote = found
        closing = "'" if quote == "$'" else quote
        flag_raw = raw[:at] + closing
        if shell.unquote(flag_raw) == name:
            # Reopen the quote the "=" sat in, so the value is still a valid shell word.
            return name, quote + raw[at + 1 :]
    # The "=" came from an escape or a bracket; a re-quoted value keeps texts() exact.
    return name, shell.requote(value)


# Finding the invocation -----------------------------------------------------------

_PYTHON = re.compile(r"python(?:3(?:\.[0-9]+)?)?")
_SHORT_OPTIONS = re.compile(r"-[A-Za-z]+")
# Counts every place the script names a vLLM module to python, including places the
# structural parser does not look into (subshells, nested bash -c, comments), so that
# a second server hidden there makes the script ambiguous instead of half-edited.
_MODULE_MENTION = re.compile(r"-m[\s'\"\\]*vllm_(?:server|startup_wrapper)(?![\w.])")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INTEGER = re.compile(r"[+-]?[0-9]+")


def _subcommands(script: str) -> list[list[shell.Token]]:
    """The script's tokens, one list per subcommand; bad quoting is a CommandError."""
    try:
        return shell.subcommands(shell.lex(script))
    except shell.ShellSyntaxError as err:
        raise CommandError(UNBALANCED_QUOTING, str(err)) from err


def _match_module(tokens: list[shell.Token], i: int) -> tuple[str, int, int] | None:
    """``(module, end offset of the module word, index after it)`` for a vLLM start."""
    n = len(tokens)
    while i < n and tokens[i].kind == shell.WORD and shell.is_command_prefix(tokens[i].raw):
        i += 1
    if i >= n or tokens[i].kind != shell.WORD:
        return None
    if not _PYTHON.fullmatch(shell.unquote(tokens[i].raw).rsplit("/", 1)[-1]):
        return None
    i += 1
    while i < n and tokens[i].kind == shell.WORD:
        text = shell.unquote(tokens[i].raw)
        if text == "-m":
            if i + 1 < n and tokens[i + 1].kind == shell.WORD:
                module = shell.unquote(tokens[i + 1].raw)
                return (module, tokens[i + 1].end, i + 2) if module in VLLM_MODULES else None
            return None
        if text.startswith("-m"):
            module = text[2:]
            return (module, tokens[i].end, i + 1) if module in VLLM_MODULES else None
        if text in ("-X", "-W"):
            i += 2
            continue
        if _SHORT_OPTIONS.fullmatch(text) and "c" not in text and "m" not in text:
            i += 1
            continue
        return None
    return None


@dataclass
class _ArgBuilder:
    flag: str
    values: list[str]
    start: int
    end: int
    inline: bool


def _read_invocation(
    script: str, tokens: list[shell.Token], module: str, module_end: int, i: int
) -> tuple[VllmInvocation, int, int]:
    """The invocation, the offset after its last argument word, and the next token index."""
    positionals: list[str] = []
    built: list[_ArgBuilder] = []
    anchor = module_end
    n = len(tokens)
    while i < n:
        token = tokens[i]
        if token.kind == shell.PIPE:
            break
        if token.kind == shell.REDIR:
            # bash strips redirections wherever they stand and passes the rest on as
            # arguments, so a flag after "2>&1" still reaches vLLM and must be seen.
            i = shell.skip_redirect(tokens, i)
            continue
        split = _split_flag(token.raw)
        if split is not None:
            flag, inline_value = split
            values = [inline_value] if inline_value is not None else []
            built.append(
                _ArgBuilder(flag, values, token.start, token.end, inline_value is not None)
            )
        elif built:
            built[-1].values.append(token.raw)
            built[-1].end = token.end
        else:
            positionals.append(token.raw)
        anchor = token.end
        i += 1
    args = tuple(
        Arg(flag=b.flag, values=tuple(b.values), start=b.start, end=b.end, inline=b.inline)
        for b in built
    )
    invocation = VllmInvocation(
        script=script,
        module=module,
        start=tokens[0].start,
        end=tokens[-1].end,
        positionals=tuple(positionals),
        args=args,
    )
    return invocation, anchor, i


def _invocations_in(script: str, tokens: list[shell.Token]) -> list[tuple[VllmInvocation, int]]:
    found: list[tuple[VllmInvocation, int]] = []
    at_command = True
    i = 0
    n = len(tokens)
    while i < n:
        token = tokens[i]
        if token.kind == shell.PIPE:
            at_command = True
            i += 1
            continue
        if token.kind == shell.REDIR:
            i = shell.skip_redirect(tokens, i)
            continue
        if not at_command:
            i += 1
            continue
        at_command = False
        matched = _match_module(tokens, i)
        if matched is None:
            i += 1
            continue
        module, module_end, after = matched
        invocation, anchor, i = _read_invocation(script, tokens, module, module_end, after)
        found.append((invocation, anchor))
    return found


def _ambiguous(reason: str) -> CommandError:
    return CommandError(AMBIGUOUS_ENFORCE_EAGER, reason)


def _is_abbreviation(name: str, full: str, shortest: int) -> bool:
    # argparse accepts unambiguous prefixes of long options by default.
    return len(name) >= shortest and name != full and full.startswith(name)


def _check_enforce_eager(invocation: VllmInvocation) -> None:
    seen = 0
    for arg in invocation.args:
        # vLLM's parser treats underscores in option names as dashes.
        normalized = "--" + arg.flag[2:].replace("_", "-")
        if normalized == ENFORCE_EAGER:
            if arg.flag != ENFORCE_EAGER:
                raise _ambiguous(f"The script spells the flag as {arg.flag}.")
            if arg.inline or arg.values:
                raise _ambiguous("--enforce-eager carries a value, so its meaning is unclear.")
            seen += 1
        elif normalized == "--no-enforce-eager":
            raise _ambiguous("The script has --no-enforce-eager.")
        elif _is_abbreviation(normalized, ENFORCE_EAGER, len("--enf")) or _is_abbreviation(
            normalized, "--no-enforce-eager", len("--no-enf")
        ):
            raise _ambiguous(f"{arg.flag} may be read as an abbreviation of the eager flag.")
    if seen > 1:
        raise _ambiguous("--enforce-eager appears more than once.")


def _parse(script: str) -> tuple[VllmInvocation, int]:
    if not isinstance(script, str):
        raise CommandError(NOT_A_BASH_COMMAND, "The command script is not a string.")
    found: list[tuple[VllmInvocation, int]] = []
    for tokens in _subcommands(script):
        found.extend(_invocations_in(script, tokens))
    if not found:
        raise CommandError(
            NO_VLLM_INVOCATION, "The script never runs python -m vllm_server or its wrapper."
        )
    if len(found) > 1 or len(_MODULE_MENTION.findall(script)) > 1:
        raise CommandError(
            MULTIPLE_VLLM_INVOCATIONS, "The script starts the vLLM server more than once."
        )
    invocation, anchor = found[0]
    _check_enforce_eager(invocation)
    return replace(invocation, insert_at=anchor), anchor


# Public API -----------------------------------------------------------------------


def split_subcommands(script: str) -> list[tuple[int, int]]:
    """Spans of the script's subcommands, without surrounding blanks and comments.

    Raises CommandError when the quoting or bracketing is unbalanced, since then
    nobody can say where a subcommand ends.
    """
    if not isinstance(script, str):
        raise CommandError(NOT_A_BASH_COMMAND, "The command script is not a string.")
    return [(tokens[0].start, tokens[-1].end) for tokens in _subcommands(script)]


def parse_script(script: str) -> VllmInvocation:
    return _parse(script)[0]


def parse_command(command: Sequence[str] | None) -> VllmInvocation:
    if (
        not isinstance(command, list | tuple)
        or len(command) != 3
        or not all(isinstance(part, str) for part in command)
        or command[0] not in SHELLS
        or command[1] != "-c"
    ):
        raise CommandError(NOT_A_BASH_COMMAND, "The command is not of the form [bash, -c, script].")
    return parse_script(command[2])


def set_enforce_eager(script: str | VllmInvocation, on: bool) -> str:
    """The script with ``--enforce-eager`` present (``on``) or absent, all else unchanged.

    Takes the script, or its parse when the caller has one already (a scan
    parses every command once; parsing it again for the edit doubled the work).
    """
    if isinstance(script, VllmInvocation):
        before, anchor = script, script.insert_at
        script = before.script
    else:
        before, anchor = _parse(script)
    on = bool(on)
    if before.enforce_eager == on:
        return script
    candidates: list[str] = []
    if on:
        # Next to the utilization is where generations B and C put it, so a removal
        # followed by a re-add gives back the original bytes.
        utilization = before.get(GPU_MEMORY_UTILIZATION)
        at = utilization.end if utilization is not None else anchor
        candidates.append(script[:at] + " " + ENFORCE_EAGER + script[at:])
    else:
        flag = before.get(ENFORCE_EAGER)
        assert flag is not None  # enforce_eager is True
        if script[flag.start - 1] == " ":
            candidates.append(script[: flag.start - 1] + script[flag.end :])
        # Dropping the space can glue words into a new meaning ("1 >log" becomes the
        # fd redirect "1>log"); verification catches that and the next try keeps it.
        candidates.append(script[: flag.start] + script[flag.end :])
    failure: CommandError | None = None
    for candidate in candidates:
        try:
            _verify(before, candidate, on)
        except CommandError as err:
            failure = failure or err
            continue
        return candidate
    assert failure is not None
    raise failure


def _comparable(invocation: VllmInvocation) -> list[tuple[str, tuple[str, ...], bool]]:
    return [
        (arg.flag, arg.values, arg.inline) for arg in invocation.args if arg.flag != ENFORCE_EAGER
    ]


def _verify(before: VllmInvocation, script: str, on: bool) -> None:
    """Raise unless ``script`` differs from ``before.script`` in the eager flag alone."""

    def fail(reason: str) -> CommandError:
        return CommandError(VERIFICATION_FAILED, reason)

    try:
        after, _ = _parse(script)
    except CommandError as err:
        raise fail(f"The edited script does not parse: {err.reason}") from err
    if after.enforce_eager != on:
        raise fail("The edit did not change --enforce-eager.")
    if after.module != before.module or after.positionals != before.positionals:
        raise fail("The edit changed the vLLM module or its positional arguments.")
    if _comparable(after) != _comparable(before):
        raise fail("The edit changed other vLLM arguments.")
    if (
        after.start != before.start
        or script[: after.start] != before.script[: before.start]
        or script[after.end :] != before.script[before.end :]
    ):
        raise fail("The edit changed the script outside the vLLM subcommand.")

"""The stored vLLM start command as data: read it as bash does, and toggle ``--enforce-eager``.

A bundle's command is ``["/bin/bash", "-c", script]`` and the script went through
eight formatting generations (see the facts file, section 3): unquoted Python dict
reprs, quoted values, two module names, download steps, a whole model-cache
program and Ray in front. The only safe change to such a script is surgical, so
this module finds the one simple command bash runs as the vLLM server (with
bash's own grammar, :mod:`migrate.core.shell`), reads its arguments as the
server receives them (:mod:`migrate.core.shellwords`), and checks every edit by
reading the changed stretch again.

What it cannot know it says: arguments made by expansions at run time
(``$(...)``, backticks, ``$VAR``, ``eval``) are an ``indirect-arguments`` error,
not a guess.

Pure and stdlib-only on purpose: the policy and the plan are tested without a
database, and the same code must give the same answer in a dry run and a real run.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import cached_property, lru_cache
from typing import Any, NamedTuple

from migrate.core import shell, shellwords

__all__ = [
    "ENFORCE_EAGER",
    "GPU_MEMORY_UTILIZATION",
    "INDIRECT_ARGUMENTS",
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
UNBALANCED_QUOTING = "unbalanced-quoting"  # and every other reason bash would refuse the script
NO_VLLM_INVOCATION = "no-vllm-invocation"
MULTIPLE_VLLM_INVOCATIONS = "multiple-vllm-invocations"
AMBIGUOUS_ENFORCE_EAGER = "ambiguous-enforce-eager"
VERIFICATION_FAILED = "verification-failed"
INDIRECT_ARGUMENTS = "indirect-arguments"
KINDS = frozenset(
    {
        NOT_A_BASH_COMMAND,
        UNBALANCED_QUOTING,
        NO_VLLM_INVOCATION,
        MULTIPLE_VLLM_INVOCATIONS,
        AMBIGUOUS_ENFORCE_EAGER,
        VERIFICATION_FAILED,
        INDIRECT_ARGUMENTS,
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


class Arg(NamedTuple):
    """One ``--flag [values...]`` group of the vLLM invocation, with its place in the script.

    ``values`` are raw shell words (as written); :meth:`texts` gives what the
    server receives. ``start``/``end`` span the flag and its values in the script.
    """

    flag: str
    values: tuple[str, ...]
    start: int
    end: int
    inline: bool = False

    def written(self) -> tuple[str, ...]:
        """The values as the script's author meant them, for comparing with stored args.

        Generations D-F printed dict and list values as unquoted Python reprs
        (``--rope-scaling {'type': 'linear', 'factor': 2.0}``), which bash splits
        into several words; such a group is given back whole, as written.
        Anything else: :meth:`texts`.
        """
        if len(self.values) > 1 and self.values[0][:1] in ("{", "["):
            return (" ".join(self.values),)
        return self.texts()

    def texts(self) -> tuple[str, ...]:
        plain = _PLAIN.fullmatch
        return tuple(
            [value if plain(value) else shellwords.unquote(value) for value in self.values]
        )


@dataclass(frozen=True)
class VllmInvocation:
    """The one ``python -m vllm_server|vllm_startup_wrapper`` command of a script.

    ``start``/``end`` span the pipeline that runs it (``... | tee log`` included).
    """

    script: str = field(repr=False)
    module: str
    start: int
    end: int
    positionals: tuple[str, ...]
    args: tuple[Arg, ...]
    # Where an added flag goes when there is no utilization to sit beside: after
    # the last argument, before any redirection or trailing shell operator.
    insert_at: int = field(default=-1, repr=False, compare=False)
    # For checking an edit without reading the whole script again: the spans of
    # the command's words from the interpreter on, and where the command ends.
    word_spans: tuple[tuple[int, int], ...] = field(default=(), repr=False, compare=False)
    command_end: int = field(default=-1, repr=False, compare=False)
    # Inside a nested ``bash -c '...'`` string: an edit is checked by a full re-read.
    nested: bool = field(default=False, repr=False, compare=False)
    # set_enforce_eager's answers for this reading, by the wanted state of the flag.
    _edits: dict[bool, str | CommandError] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def get(self, flag: str) -> Arg | None:
        # argparse keeps the last occurrence of a repeated option, so do we.
        found = self.all(flag)
        return found[-1] if found else None

    def all(self, flag: str) -> tuple[Arg, ...]:
        return tuple(arg for arg in self.args if arg.flag == flag)

    def has(self, flag: str) -> bool:
        return any(arg.flag == flag for arg in self.args)

    @cached_property
    def enforce_eager(self) -> bool:
        return any(
            arg.flag == ENFORCE_EAGER and not arg.values and not arg.inline for arg in self.args
        )

    @cached_property
    def gpu_memory_utilization(self) -> Decimal | None:
        text = self._single_text(GPU_MEMORY_UTILIZATION)
        # vLLM reads it with float(), which ignores surrounding whitespace: a CRLF
        # script's "0.9\r" is 0.9 to the server.
        if text is None or not _DECIMAL.fullmatch(text.strip()):
            return None
        return Decimal(text.strip())

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
        """Each flag's values (:meth:`Arg.written`), keyed as vllm_additional_args are."""
        return dict(self._items)

    @cached_property
    def _items(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        return tuple((arg.flag[2:].replace("-", "_"), arg.written()) for arg in self.args)

    def _single_text(self, flag: str) -> str | None:
        arg = self.get(flag)
        if arg is None:
            return None
        texts = arg.texts()
        return texts[0] if len(texts) == 1 else None

    def _int(self, flag: str) -> int | None:
        text = self._single_text(flag)
        if text is None or not _INTEGER.fullmatch(text.strip()):
            return None
        return int(text.strip())


# What vLLM's options take ------------------------------------------------------------

# Options that take exactly one value. A parameter expansion right after one of
# them is read as that value: ``--chat-template "$CHAT_TEMPLATE"``,
# ``--model $MODEL_DIR`` (a variable holding a flag there would make argparse
# refuse the command line). Anywhere else, and for a command substitution
# anywhere, the expanded word may itself be a flag.
_ONE_VALUE = frozenset(
    "--" + name
    for name in (
        "model tokenizer revision code-revision tokenizer-revision tokenizer-mode "
        "chat-template download-dir load-format config-format dtype kv-cache-dtype "
        "quantization-param-path max-model-len guided-decoding-backend "
        "distributed-executor-backend pipeline-parallel-size tensor-parallel-size "
        "data-parallel-size max-parallel-loading-workers block-size seed swap-space "
        "cpu-offload-gb gpu-memory-utilization max-num-batched-tokens max-num-seqs "
        "max-logprobs quantization rope-scaling rope-theta hf-overrides "
        "max-seq-len-to-capture tokenizer-pool-size host port uvicorn-log-level "
        "api-key response-role ssl-keyfile ssl-certfile root-path attention-backend "
        "tool-call-parser speculative-config compilation-config kv-transfer-config "
        "override-generation-config generation-config limit-mm-per-prompt "
        "max-num-partial-prefills reasoning-parser"
    ).split()
)


# Finding the invocation ----------------------------------------------------------

_PYTHON = re.compile(r"python(?:3(?:\.[0-9]+)?)?")
_SHORT_OPTIONS = re.compile(r"-[A-Za-z]+")
_WRAPPERS = frozenset({"exec", "nohup", "env"})
_SHELL_NAMES = frozenset({"bash", "sh"})
# Counts every place the script names a vLLM module to python, including places
# where bash does not run it as a command (strings, comments, here-documents), so
# that a second server hidden there makes the script ambiguous, not half-edited.
_MODULE_MENTION = re.compile(r"-m[\s'\"\\]*vllm_(?:server|startup_wrapper)(?![\w.])")
_QUOTES = frozenset("'\"")
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
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INTEGER = re.compile(r"[+-]?[0-9]+")
# A word bash passes on exactly as written: nothing quoted, escaped or expanded.
_PLAIN = re.compile(r"""[^\\'"$`<>{]*""")


def _text(raw: str) -> str | None:
    """The word's text, or None when an expansion makes it at run time."""
    if _PLAIN.fullmatch(raw):
        return raw
    return shellwords.info(raw).text


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


def _module_of(text: str, spans: Sequence[tuple[int, int]]) -> tuple[str, int] | None:
    """``(module, index of the first argument word)`` when these words start a vLLM server."""
    words = _Texts(text, spans)
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


def _split_inline(raw: str, name: str) -> str | None:
    """The value of ``--name=value`` as a raw shell word; None if it cannot be cut out."""
    found = shellwords.equals_sign(raw)
    if found is None:
        return None
    at, quote = found
    closing = "'" if quote == "$'" else quote
    if shellwords.unquote(raw[:at] + closing) != name:
        return None
    # Reopen the quote the "=" sat in, so the value is still a valid shell word.
    return quote + raw[at + 1 :]


def _indirect(raw: str, why: str) -> CommandError:
    return CommandError(
        INDIRECT_ARGUMENTS,
        f"The vLLM argument {raw!r} {why}: bash decides at run time what the server "
        "receives, so nobody can say from the stored command whether it runs eager.",
    )


# Where each character of a nested script comes from in the stored one: the
# offsets where its raw bytes start (one more, for the end) and end.
_Map = tuple[list[int], list[int]]


def _outer(to_outer: _Map | None, i: int, end: bool = False) -> int:
    """An offset in a nested script as an offset in the stored one (``end``: exclusive)."""
    if to_outer is None:
        return i
    return to_outer[1][i - 1] if end else to_outer[0][i]


def _arguments(
    text: str, spans: Sequence[tuple[int, int]], to_outer: _Map | None
) -> tuple[tuple[str, ...], tuple[Arg, ...]]:
    """Positionals and ``--flag [values]`` groups of the words after the module."""
    positionals: list[str] = []
    built: list[list] = []  # [flag, values, start, end, inline]
    plain = _PLAIN.fullmatch
    for a, b in spans:
        raw = text[a:b]
        if plain(raw):
            word, info = raw, None
        else:
            info = shellwords.info(raw)
            word = info.text
        if to_outer is None:
            start, end = a, b
        else:
            start, end = to_outer[0][a], to_outer[1][b - 1]
        if word is not None:
            if word.startswith("--"):
                if "=" in word:
                    name, value = word.split("=", 1)
                    inline = _split_inline(raw, name)
                    # The "=" came from an escape: a re-quoted value keeps texts() exact.
                    built.append([name, [inline or shellwords.requote(value)], start, end, True])
                else:
                    built.append([word, [], start, end, False])
            elif built:
                built[-1][1].append(raw)
                built[-1][3] = end
            else:
                positionals.append(raw)
            continue
        assert info is not None
        if info.prefix.startswith("--") and "=" in info.prefix:
            name = info.prefix.split("=", 1)[0]
            inline = _split_inline(raw, name)
            if inline is None or name == GPU_MEMORY_UTILIZATION:
                raise _indirect(raw, "sets a value from an expansion")
            built.append([name, [inline], start, end, True])
            continue
        last = built[-1] if built else None
        open_slot = last is not None and not last[4] and last[0] in _ONE_VALUE and not last[1]
        # A word that starts with "-" is an option to argparse, never a value.
        open_slot = open_slot and not info.prefix.startswith("-")
        if last is None or not open_slot or not info.expanded or info.substituted:
            if not info.expanded:
                why = "is made by brace expansion"
            elif info.substituted:
                why = "is the output of a command substitution"
            else:
                why = "comes from an expansion where a flag may stand"
            raise _indirect(raw, why)
        if last[0] == GPU_MEMORY_UTILIZATION:
            raise _indirect(raw, "sets the GPU memory utilization from an expansion")
        last[1].append(raw)
        last[3] = end
    args = tuple([Arg(f, tuple(v), s, e, i) for f, v, s, e, i in built])
    return tuple(positionals), args


def _ambiguous(reason: str) -> CommandError:
    return CommandError(AMBIGUOUS_ENFORCE_EAGER, reason)


def _check_enforce_eager(args: tuple[Arg, ...]) -> None:
    seen = 0
    for arg in args:
        flag = arg.flag
        if "--enf" not in flag and "--no" not in flag and "_" not in flag:
            continue  # the common case, decided without the checks below
        # vLLM's parser treats underscores in option names as dashes.
        normalized = "--" + flag[2:].replace("_", "-")
        stripped = normalized.rstrip()
        if normalized == ENFORCE_EAGER:
            if flag != ENFORCE_EAGER:
                raise _ambiguous(f"The script spells the flag as {flag}.")
            if arg.inline or arg.values:
                raise _ambiguous("--enforce-eager carries a value, so its meaning is unclear.")
            seen += 1
        elif stripped != normalized and stripped in (ENFORCE_EAGER, "--no-enforce-eager"):
            raise _ambiguous(
                f"{flag!r} has whitespace stuck to it (a CRLF line ending?): bash passes it "
                "on like that and vLLM would reject it."
            )
        elif normalized == "--no-enforce-eager":
            raise _ambiguous("The script has --no-enforce-eager.")
        elif (len(normalized) >= 5 and ENFORCE_EAGER.startswith(normalized)) or (
            len(normalized) >= 8 and "--no-enforce-eager".startswith(normalized)
        ):
            # argparse accepts unambiguous prefixes of long options by default.
            raise _ambiguous(f"{flag} may be read as an abbreviation of the eager flag.")
    if seen > 1:
        raise _ambiguous("--enforce-eager appears more than once.")


def _invocation(
    text: str,
    command: shell.Command,
    spans: tuple[tuple[int, int], ...],
    matched: tuple[str, int],
    to_outer: _Map | None,
) -> VllmInvocation:
    """The vLLM server ``command`` starts (offsets in the stored script).

    ``spans``: its words from the program on; ``matched``: what _module_of found in them.
    """
    module, first = matched
    positionals, args = _arguments(text, spans[first:], to_outer)
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
        read = shell.read_simple_command(text, command.start)
        spans = read.words[read.assignments :]
        matched = _module_of(text, spans)
        if matched is not None:
            invocation = _invocation(text, command, spans, matched, to_outer)
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
        read = shell.read_simple_command(text, command.start)
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


# A long setup before the server (model engine's model-cache program: ~3 KB,
# ~90 commands) reads the same in every script that has it, up to the text of
# its single-quoted strings (the download) and the cache fingerprint. Its reading
# is kept, keyed by the setup with those blanked out, and reused: the reader
# never looks inside a single-quoted string except for its closing quote, nor
# inside an assignment's value, so any setup with the same key reads the same.
# A setup is kept only when every "'" in it delimits a real single-quoted string
# and what decides reachability is unquoted.
_SETUP_MIN = 1000
_SETUPS_KEPT = 64
# The summary kept: whether -e is on after the setup; None when the reading may
# not be reused (then the script is read whole, and so is a setup bash never gets
# past, whose reason names offsets of its own).
_setups: dict[str, bool | None] = {}
_PLAIN_STRING = re.compile(r"'[^']*'")
_ASSIGNED_HEX = re.compile(r"(?<==)[0-9a-f]{32,}(?=[;\s])")
_MISSING: Any = object()


def _setup_key(setup: str) -> str:
    blanked = _PLAIN_STRING.sub(lambda m: m.group()[0] * 2, setup)
    return _ASSIGNED_HEX.sub(lambda m: "0" * len(m.group()), blanked)


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
        if top and command.name_start >= 0 and _QUOTES & set(setup[command.start : command.end]):
            return None  # what the command is, or its words, could hide in a string
    stop, errexit = _stops(parsed.commands, setup, len(setup))
    return errexit if stop is None else None


def _setup(script: str, end: int) -> bool | None:
    """Whether -e is on after ``script[:end]``, when its kept reading can be used; else None.

    ``end`` is just past the ``;`` or newline before the server's command, so the
    cut must be where bash ends a command: not an escaped one, not in a comment
    or a here-document (the rest of the setup's checks are _read_setup's).
    """
    if end < _SETUP_MIN or script[end - 1] not in ";\n" or script[end - 2] == "\\":
        return None
    setup = script[:end]
    if "<<" in setup or "#" in setup[setup.rfind("\n") + 1 :]:
        return None
    key = _setup_key(setup)
    summary = _setups.get(key, _MISSING)
    if summary is _MISSING:
        summary = _read_setup(setup)
        if len(_setups) >= _SETUPS_KEPT:
            _setups.clear()
        _setups[key] = summary
    return summary


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
        if word in ("-", "--") or word[:1] not in "-+":
            break  # the rest are positional parameters
        if any(flag not in _SET_FLAGS and flag != "o" for flag in word[1:]):
            return errexit, word
        i += 1
        for _ in range(word.count("o")):  # -o takes the next word unless it is an option
            if i < n and words[i][:1] not in "-+":
                i += 1
    end, i = i, 0
    while i < end:  # the options, applied in order
        word = words[i]
        i += 1
        on = word[0] == "-"
        for flag in word[1:]:
            if flag == "o":
                if i >= end or words[i][:1] in "-+":
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


def _mentions(text: str) -> int:
    """How often the text names a vLLM module to python, however it is escaped or quoted.

    A count, not a reading: quotes and backslashes are dropped first, so that a
    module name spelled ``vllm_se\\rver`` or split by a line continuation counts too.
    Callers ask "none, one or more", so past two the count may fall short.
    """
    count = len(_MODULE_MENTION.findall(text))
    if count < 2 and ("\\" in text or "'" in text or '"' in text):
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


def _parse(script: str) -> VllmInvocation:
    if not isinstance(script, str):
        raise CommandError(NOT_A_BASH_COMMAND, "The command script is not a string.")
    # The setup before the server is read once for every script that shares it.
    mention = _MODULE_MENTION.search(script)
    at = mention.start() if mention is not None else 0
    setup_end = max(script.rfind(";", 0, at), script.rfind("\n", 0, at)) + 1
    setup = None
    if setup_end >= _SETUP_MIN:
        # (The setup names no vLLM module: a first one would be cut before, and a
        # second anywhere makes the script refused below, read either way.)
        setup = _setup(script, setup_end)
    try:
        parsed = shell.parse(script, setup_end if setup is not None else 0)
    except shell.ShellSyntaxError as err:
        raise CommandError(UNBALANCED_QUOTING, f"The script is not valid bash: {err}") from err
    found = _find(script, parsed, None)
    if len(found) > 1 or _mentions(script) > 1:
        raise CommandError(
            MULTIPLE_VLLM_INVOCATIONS, "The script starts the vLLM server more than once."
        )
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


# Public API -----------------------------------------------------------------------


def split_subcommands(script: str) -> list[tuple[int, int]]:
    """Spans of the script's top-level pipelines (split at ``;``, ``&``, newlines, ``&&``, ``||``).

    Raises CommandError when bash would refuse the script, since then nobody can
    say where a subcommand ends.
    """
    if not isinstance(script, str):
        raise CommandError(NOT_A_BASH_COMMAND, "The command script is not a string.")
    try:
        return list(shell.parse(script).pipelines)
    except shell.ShellSyntaxError as err:
        raise CommandError(UNBALANCED_QUOTING, f"The script is not valid bash: {err}") from err


# Fleets repeat scripts (one template, many endpoints of a model): a script read
# once is not read again while it is among the last ones read. A reading is
# immutable, so sharing it is safe; an error is kept as one and raised afresh.
_READINGS_KEPT = 2048


@lru_cache(maxsize=_READINGS_KEPT)
def _reading(script: str) -> VllmInvocation | CommandError:
    try:
        return _parse(script)
    except CommandError as err:
        return err


def parse_script(script: str) -> VllmInvocation:
    if not isinstance(script, str):
        raise CommandError(NOT_A_BASH_COMMAND, "The command script is not a string.")
    read = _reading(script)
    if isinstance(read, CommandError):
        raise CommandError(read.kind, read.reason)
    return read


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
    k_prev = max(k for k, (a, b) in enumerate(spans) if b <= lo)
    k_next = min((k for k, (a, b) in enumerate(spans) if a >= hi), default=len(spans))
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

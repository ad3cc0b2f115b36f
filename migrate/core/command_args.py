"""The vLLM server's arguments: the words after the module, grouped as argparse would see them.

Each word after ``python -m vllm_...`` is read as the server receives it: a
``--flag`` opens a group, ``--flag=value`` is a group of its own, the words after a
flag are its values, words before any flag are positionals. A word made by an
expansion at run time is accepted only where it can only be a value (right after an
option that takes exactly one, :data:`_ONE_VALUE`); anywhere else it is an
``indirect-arguments`` error, not a guess. The eager flag must be spelled so that
nobody can read it two ways (:func:`_check_enforce_eager`).
"""

from __future__ import annotations

from collections.abc import Sequence

from migrate.core import shellwords
from migrate.core.command_model import (
    _PLAIN,
    AMBIGUOUS_ENFORCE_EAGER,
    ENFORCE_EAGER,
    GPU_MEMORY_UTILIZATION,
    INDIRECT_ARGUMENTS,
    Arg,
    CommandError,
)

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


def _arguments(
    text: str,
    spans: Sequence[tuple[int, int]],
    to_outer: _Map | None,
    texts: Sequence[str] = (),
) -> tuple[tuple[str, ...], tuple[Arg, ...]]:
    """Positionals and ``--flag [values]`` groups of the words after the module.

    ``texts``: the words' texts, when the caller knows them all (no expansion in any);
    otherwise each word is read here first.
    """
    if texts and to_outer is None:
        return _plain_arguments(text, spans, texts)
    words: Sequence[str | None] = texts
    expansions: dict[tuple[int, int], shellwords.WordInfo] = {}
    if not texts:
        plain = _PLAIN.fullmatch
        read: list[str | None] = []
        for a, b in spans:
            raw = text[a:b]
            if plain(raw):
                read.append(raw)
            else:
                info = expansions[a, b] = shellwords.info(raw)
                read.append(info.text)
        words = read
    positionals: list[str] = []
    built: list[list] = []  # [flag, values, start, end, inline]
    last: list | None = None
    for (a, b), word in zip(spans, words, strict=True):
        start, end = (a, b) if to_outer is None else (to_outer[0][a], to_outer[1][b - 1])
        if word is None:  # made by an expansion at run time
            raw, info = text[a:b], expansions[a, b]
            if info.prefix.startswith("--") and "=" in info.prefix:
                name = info.prefix.split("=", 1)[0]
                inline = _split_inline(raw, name)
                if inline is None or name == GPU_MEMORY_UTILIZATION:
                    raise _indirect(raw, "sets a value from an expansion")
                last = [name, [inline], start, end, True]
                built.append(last)
                continue
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
        elif word[:2] == "--":
            if "=" in word:
                name, value = word.split("=", 1)
                inline = _split_inline(text[a:b], name)
                # The "=" came from an escape: a re-quoted value keeps texts() exact.
                last = [name, [inline or shellwords.requote(value)], start, end, True]
            else:
                last = [word, [], start, end, False]
            built.append(last)
        elif last is not None:
            last[1].append(text[a:b])
            last[3] = end
        else:
            positionals.append(text[a:b])
    return tuple(positionals), _args(built)


def _plain_arguments(
    text: str, spans: Sequence[tuple[int, int]], words: Sequence[str]
) -> tuple[tuple[str, ...], tuple[Arg, ...]]:
    """_arguments of words whose texts are all known, in the stored script itself.

    The same groups, cut at each flag at once rather than word by word: most
    servers' words are read here (see command_locate._split_words).
    """
    raws = [text[a:b] for a, b in spans]
    cuts = [i for i, word in enumerate(words) if word[:2] == "--"]
    positionals = tuple(raws[: cuts[0]] if cuts else raws)
    args = []
    cuts.append(len(words))
    for k in range(len(cuts) - 1):
        at, upto = cuts[k], cuts[k + 1]
        flag = words[at]
        values = raws[at + 1 : upto]
        inline = "=" in flag
        if inline:
            flag, value = flag.split("=", 1)
            # The "=" came from an escape: a re-quoted value keeps texts() exact.
            values.insert(0, _split_inline(raws[at], flag) or shellwords.requote(value))
        args.append(
            _tuple_new(Arg, (flag, tuple(values), spans[at][0], spans[upto - 1][1], inline))
        )
    return positionals, tuple(args)


_tuple_new = tuple.__new__


def _args(built: list[list]) -> tuple[Arg, ...]:
    """The groups as Args, each made as Arg._make makes one (Arg() is a Python call)."""
    return tuple([_tuple_new(Arg, (f, tuple(v), s, e, i)) for f, v, s, e, i in built])


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

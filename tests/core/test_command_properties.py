"""Properties of the command model over generated scripts of every generation.

The generator builds each script twice, with and without ``--enforce-eager``, from
the same pieces, so the expected result of a removal is known byte for byte.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from migrate.core.command import (
    KINDS,
    CommandError,
    VllmInvocation,
    parse_script,
    set_enforce_eager,
    split_subcommands,
)

SETTINGS = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

GENERATIONS = "ABCDEFGH"

plain_words = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyz0123456789._/-:", min_size=1, max_size=12
).filter(lambda w: not w.startswith("--"))
# Free text for quoted values: anything but the quote itself (and, for double quotes,
# the characters that stay special inside them).
single_quoted = st.text(
    alphabet=st.characters(blacklist_characters="'\x00", blacklist_categories=("Cs",)),
    max_size=12,
).map(lambda t: f"'{t}'")
double_quoted = st.text(
    alphabet=st.characters(blacklist_characters='"\\$`\x00', blacklist_categories=("Cs",)),
    max_size=12,
).map(lambda t: f'"{t}"')
dict_keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)
dict_leaves = st.one_of(
    st.integers(-5, 5000),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.booleans(),
    st.none(),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz ,:;(){}[]-", max_size=10),
)
dicts = st.recursive(
    st.dictionaries(dict_keys, dict_leaves, min_size=1, max_size=3),
    lambda inner: st.dictionaries(
        dict_keys, st.one_of(dict_leaves, inner, st.lists(dict_leaves, max_size=3)), max_size=3
    ),
    max_leaves=6,
)
unknown_flags = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=14).map(
    lambda t: "--zz-" + t
)
download_steps = st.sampled_from(
    [
        's5cmd --numworkers 512 cp --concurrency 50 --include "*.json" '
        '--include "*.safetensors" s3://bucket/path/* model_files',
        "s5cmd --numworkers 512 cp --concurrency 50 s3://bucket/mistral/* mistral_files",
        'azcopy copy --recursive --include-pattern "*.json;*.safetensors" '
        "https://acct.blob.core.windows.net/models/x/* model_files",
        "gsutil -m cp -r gs://bucket/path/* model_files",
        "mkdir -p /mnt/model-cache; ( flock -x 9; [ -f /mnt/model-cache/.done ] || "
        "s5cmd cp s3://bucket/x/* /mnt/model-cache/model_files; ) 9>/mnt/model-cache/.lock",
        "flock /mnt/model-cache/.lock -c 's5cmd cp s3://b/x/* /mnt/model-cache/model_files'",
        'export CHAT_TEMPLATE=$(echo "e3sgbWVzc2FnZXMgfX0=" | base64 --decode)',
        "/workspace/init_ray.sh leader --ray_cluster_size=2 --own_address="
        "$K8S_OWN_POD_NAME.$K8S_LWS_NAME.$K8S_OWN_NAMESPACE.svc.cluster.local",
        "set -euo pipefail",
        "echo 'starting; done' && date",
    ]
)
subcommand_separators = st.sampled_from([";", "; ", "\n", " && "])
arg_separators = st.sampled_from([" ", " ", " ", "  ", " \\\n    "])
interpreters = st.sampled_from(
    [
        "python",
        "python3",
        "/usr/bin/python3.10",
        "exec python",
        "PYTHONUNBUFFERED=1 python",
        "python -u",
        "nohup python3",
    ]
)
trailers = st.sampled_from(["", "", " 2>&1 | tee /tmp/vllm.log", " > /tmp/vllm.log 2>&1", "\n"])
suffixes = st.sampled_from(["", "", "; echo done", "\nwait"])


@dataclass(frozen=True)
class Piece:
    raw: str  # the flag and its values as they appear in the script
    flag: str
    texts: tuple[str, ...]


@dataclass(frozen=True)
class Generated:
    with_flag: str
    without_flag: str
    expected: list[tuple[str, tuple[str, ...]]]  # args of without_flag, in order
    module: str
    readd_restores: bool  # re-adding to without_flag must give with_flag back


def unquote_simple(raw: str) -> str:
    if raw[:1] in "'\"" and raw[-1:] == raw[:1] and len(raw) >= 2:
        return raw[1:-1]
    return raw


@st.composite
def value_for(draw: st.DrawFn, quoted: bool) -> tuple[str, str]:
    """A value as (raw token, text)."""
    if quoted:
        # vLLM sees the unquoted word: a quoted "--x" is a flag to it, not a value.
        raw = draw(
            st.one_of(single_quoted, double_quoted, plain_words).filter(
                lambda r: not unquote_simple(r).startswith("--")
            )
        )
    else:
        raw = draw(plain_words)
    return raw, unquote_simple(raw)


@st.composite
def pieces_for(draw: st.DrawFn, generation: str) -> list[Piece]:
    quoted = generation in "GH"
    q = (lambda v: f"'{v}'") if quoted else (lambda v: v)
    pieces = [
        Piece(
            f"--model {q('/mnt/model-cache/model_files')}",
            "--model",
            ("/mnt/model-cache/model_files",),
        )
        if quoted
        else Piece("--model model_files", "--model", ("model_files",))
    ]
    if generation in "EFGH":
        name = draw(st.sampled_from(["llama-3-8b", "mixtral-8x7b", "qwen2.5-72b-instruct"]))
        folder = "/mnt/model-cache/model_files" if quoted else "model_files"
        pieces.append(
            Piece(
                f"--served-model-name {q(name)} {q(folder)}", "--served-model-name", (name, folder)
            )
        )
    pieces.append(Piece("--port 5005", "--port", ("5005",)))
    if generation in "FGH":
        host = draw(st.sampled_from(["'::'", '"::"']))
        pieces.append(Piece(f"--host {host}", "--host", ("::",)))
    optional: list[Piece] = []
    tp = draw(st.integers(1, 8))
    optional.append(Piece(f"--tensor-parallel-size {tp}", "--tensor-parallel-size", (str(tp),)))
    if draw(st.booleans()):
        pp = draw(st.integers(1, 4))
        optional.append(
            Piece(f"--pipeline-parallel-size {pp}", "--pipeline-parallel-size", (str(pp),))
        )
    if draw(st.booleans()):
        optional.append(Piece("--quantization awq", "--quantization", ("awq",)))
    if draw(st.booleans()):
        optional.append(
            Piece(
                "--quantization-param-path /tmp/q.json",
                "--quantization-param-path",
                ("/tmp/q.json",),
            )
        )
    if draw(st.booleans()):
        optional.append(Piece("--tokenizer model_files", "--tokenizer", ("model_files",)))
    if draw(st.booleans()):
        optional.append(Piece("--tokenizer-mode auto", "--tokenizer-mode", ("auto",)))
    if draw(st.booleans()):
        optional.append(Piece("--enforce-eager-foo", "--enforce-eager-foo", ()))
    if draw(st.booleans()):
        optional.append(Piece("--disable-log-requests", "--disable-log-requests", ()))
    if draw(st.booleans()):
        optional.append(
            Piece('--chat-template "$CHAT_TEMPLATE"', "--chat-template", ("$CHAT_TEMPLATE",))
        )
    if draw(st.booleans()):
        if generation == "D":
            optional.append(Piece("--trust-remote-code False", "--trust-remote-code", ("False",)))
        else:
            optional.append(Piece("--trust-remote-code", "--trust-remote-code", ()))
    if generation in "DEFGH" and draw(st.booleans()):
        value = draw(dicts)
        if generation in "GH":
            raw = "'" + json.dumps(value) + "'"
        else:
            raw = repr(value)
        # Braces and brackets do not quote in bash: an unquoted repr is several words
        # (shlex splits like bash here: only quotes and blanks occur).
        optional.append(Piece(f"--rope-scaling {raw}", "--rope-scaling", tuple(shlex.split(raw))))
    for _ in range(draw(st.integers(0, 3))):
        flag = draw(unknown_flags)
        values = draw(st.lists(value_for(quoted), max_size=2))
        raw = " ".join([flag, *(r for r, _ in values)])
        optional.append(Piece(raw, flag, tuple(t for _, t in values)))
    if draw(st.booleans()):
        flag = draw(unknown_flags)
        value_raw, value_text = draw(value_for(quoted))
        optional.append(Piece(f"{flag}={value_raw}", flag, (value_text,)))
    pieces.extend(draw(st.permutations(optional)))
    return pieces


@st.composite
def generated_scripts(draw: st.DrawFn) -> Generated:
    generation = draw(st.sampled_from(GENERATIONS))
    pieces = draw(pieces_for(generation))
    util_index: int | None = None
    # A never set the utilization, B to F always did, G and H only when asked to.
    has_util = generation != "A" and (generation not in "GH" or draw(st.booleans()))
    if has_util:
        util = draw(st.sampled_from(["0.9", "0.95", "0.75", ".5", "1"]))
        util_index = draw(st.integers(0, len(pieces)))
        pieces.insert(
            util_index,
            Piece(f"--gpu-memory-utilization {util}", "--gpu-memory-utilization", (util,)),
        )
    # Where the flag goes: the canonical spot (after the utilization, else at the end)
    # or anywhere else, as generations D to G put it in field order.
    canonical = util_index + 1 if util_index is not None else len(pieces)
    flag_index = draw(st.one_of(st.just(canonical), st.integers(1, len(pieces))))
    seps = [draw(arg_separators) for _ in range(len(pieces))]

    module = (
        "vllm_startup_wrapper" if generation in "FGH" and draw(st.booleans()) else "vllm_server"
    )
    head = f"{draw(interpreters)} -m {module}"
    prefix_steps = draw(st.lists(download_steps, max_size=4))
    prefix = "".join(step + draw(subcommand_separators) for step in prefix_steps)
    trailer = draw(trailers)
    suffix = draw(suffixes)
    if trailer.endswith("\n") and suffix.startswith(";"):
        suffix = suffix[1:]  # bash refuses a line that starts with ";"

    def assemble(with_flag: bool) -> str:
        out = [prefix, head]
        for i, (piece, sep) in enumerate(zip(pieces, seps, strict=True)):
            if with_flag and i == flag_index:
                out.append(" --enforce-eager")
            out.append(sep + piece.raw)
        if with_flag and flag_index == len(pieces):
            out.append(" --enforce-eager")
        out.extend([trailer, suffix])
        return "".join(out)

    return Generated(
        with_flag=assemble(True),
        without_flag=assemble(False),
        expected=[(p.flag, p.texts) for p in pieces],
        module=module,
        readd_restores=flag_index == canonical,
    )


def others(inv: VllmInvocation) -> list[tuple[str, tuple[str, ...]]]:
    return [(a.flag, a.texts()) for a in inv.args if a.flag != "--enforce-eager"]


def raw_others(inv: VllmInvocation) -> list[tuple[str, tuple[str, ...], bool]]:
    return [(a.flag, a.values, a.inline) for a in inv.args if a.flag != "--enforce-eager"]


@SETTINGS
@given(generated_scripts())
def test_generated_scripts_parse_as_built(g: Generated) -> None:
    with_flag = parse_script(g.with_flag)
    without = parse_script(g.without_flag)
    assert with_flag.enforce_eager and not without.enforce_eager
    assert with_flag.module == without.module == g.module
    assert others(with_flag) == others(without) == g.expected
    assert len(with_flag.all("--enforce-eager")) == 1
    assert g.with_flag[with_flag.start : with_flag.end].count("-m vllm_") == 1


@SETTINGS
@given(generated_scripts())
def test_removal_is_exact_and_readding_round_trips(g: Generated) -> None:
    removed = set_enforce_eager(g.with_flag, False)
    assert removed == g.without_flag
    # Editing from an existing parse is the same edit (the scan parses once).
    assert set_enforce_eager(parse_script(g.with_flag), False) == removed
    assert set_enforce_eager(parse_script(removed), True) == set_enforce_eager(removed, True)
    assert not parse_script(removed).has("--enforce-eager")
    assert others(parse_script(removed)) == g.expected
    readded = set_enforce_eager(g.without_flag, True)
    assert parse_script(readded).enforce_eager
    assert others(parse_script(readded)) == g.expected
    assert set_enforce_eager(readded, False) == g.without_flag
    if g.readd_restores:
        assert readded == g.with_flag
    assert set_enforce_eager(g.with_flag, True) == g.with_flag
    assert set_enforce_eager(g.without_flag, False) == g.without_flag


MUTATION_SNIPPETS = [
    ";",
    "'",
    '"',
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    "$(",
    "\\",
    "\n",
    " ",
    "#",
    "=",
    "|",
    "&",
    ">",
    "2>&1",
    "1",
    "--",
    " --enforce-eager",
    "--enforce-eager",
    " --enforce-eager=1",
    " --no-enforce-eager",
    " python -m vllm_server",
    "; python3 -m vllm_startup_wrapper ",
    "\\\n",
    "$'",
    "`",
]


@st.composite
def mutated(draw: st.DrawFn) -> str:
    script = (
        draw(generated_scripts().map(lambda g: g.with_flag))
        if draw(st.booleans())
        else draw(generated_scripts().map(lambda g: g.without_flag))
    )
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["insert", "insert", "delete", "duplicate"]))
        at = draw(st.integers(0, len(script)))
        if kind == "insert":
            snippet = draw(st.one_of(st.sampled_from(MUTATION_SNIPPETS), st.text(max_size=3)))
            script = script[:at] + snippet + script[at:]
        else:
            length = draw(st.integers(1, 6))
            piece = script[at : at + length]
            if kind == "delete":
                script = script[:at] + script[at + length :]
            else:
                script = script[:at] + piece + script[at:]
    return script


def check_edit(script: str) -> None:
    """Either a CommandError, or an edit confined to the vLLM subcommand that verifies."""
    try:
        inv = parse_script(script)
    except CommandError as err:
        assert err.kind in KINDS
        return
    for on in (True, False):
        try:
            out = set_enforce_eager(script, on)
        except CommandError as err:
            assert err.kind in KINDS
            continue
        if on == inv.enforce_eager:
            assert out == script
            continue
        assert out[: inv.start] == script[: inv.start]
        tail = len(script) - inv.end
        assert out[len(out) - tail :] == script[inv.end :]
        if on:
            assert len(out) - len(script) == len(" --enforce-eager")
        else:
            # The token may be spelled with quotes or escapes ('--enforce-eager', \--enforce-eager).
            flag = inv.get("--enforce-eager")
            assert flag is not None
            assert len(script) - len(out) in (flag.end - flag.start, flag.end - flag.start + 1)
        after = parse_script(out)
        assert after.enforce_eager == on
        assert after.module == inv.module and after.positionals == inv.positionals
        assert raw_others(after) == raw_others(inv)
        assert set_enforce_eager(out, on) == out


@SETTINGS
@given(mutated())
def test_mutations_never_edit_outside_the_invocation(script: str) -> None:
    check_edit(script)


shell_text = st.lists(
    st.sampled_from(
        list("abc -=;'\"{}[]()$\\\n\t|&<>#`2") + ["python -m vllm_server", "--enforce-eager"]
    ),
    max_size=40,
).map("".join)


@SETTINGS
@given(st.one_of(shell_text, st.text(max_size=40)))
# The parse ended the command before a line continuation glued to its last word.
@example("<python -m vllm_servera\\\n#")
def test_arbitrary_text_only_raises_command_error(script: str) -> None:
    try:
        spans = split_subcommands(script)
    except CommandError as err:
        assert err.kind in KINDS
    else:
        assert all(0 <= a < b <= len(script) for a, b in spans)
        assert all(b1 <= a2 for (_, b1), (a2, _) in zip(spans, spans[1:], strict=False))
    check_edit(script)
    check_edit("python -m vllm_server --port 1 " + script)

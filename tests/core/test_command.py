"""The command model on concrete scripts of every generation (facts file, section 3)."""

from __future__ import annotations

import dataclasses
import pickle
from decimal import Decimal

import pytest

from migrate.core import command, command_edit, command_reading
from migrate.core.command import (
    Arg,
    CommandError,
    parse_command,
    parse_script,
    set_enforce_eager,
    split_subcommands,
)

S5CMD = (
    's5cmd --numworkers 512 cp --concurrency 50 --include "*.model" --include "*.json" '
    '--include "*.safetensors" --exclude "optimizer*" '
    "s3://scale-llm-weights/hf/meta-llama/Meta-Llama-3-8B-Instruct/* model_files"
)
# A quoted ";" inside a download step must not split the script.
AZCOPY = (
    'azcopy copy --recursive --include-pattern "*.model;*.json;*.safetensors" '
    "https://llmweights.blob.core.windows.net/models/llama-3-70b-instruct/* model_files"
)
GSUTIL = "gsutil -m cp -r gs://llm-weights/mistral-7b-instruct/* mistral_files"
CHAT = (
    'export CHAT_TEMPLATE=$(echo "e3slIGZvciBtZXNzYWdlIGluIG1lc3NhZ2VzICV9e3sgbWVzc2FnZVsn'
    'Y29udGVudCddIH19eyUgZW5kZm9yICV9" | base64 --decode)'
)
RAY = (
    "/workspace/init_ray.sh leader --ray_cluster_size=2 "
    "--own_address=$K8S_OWN_POD_NAME.$K8S_LWS_NAME.$K8S_OWN_NAMESPACE.svc.cluster.local"
)
CACHE_LOCK = (
    "mkdir -p /mnt/model-cache; ( flock -x 9; if [ ! -f /mnt/model-cache/model_files/.done ]; "
    "then s5cmd --numworkers 512 cp --concurrency 50 s3://scale-llm-weights/llama-3-8b/* "
    "/mnt/model-cache/model_files && touch /mnt/model-cache/model_files/.done; fi ) "
    "9>/mnt/model-cache/.lock"
)

# Generation A (Aug 2023 - May 2024).
GEN_A = (
    f"{S5CMD};python -m vllm_server --model model_files --tensor-parallel-size 2 --port 5005 "
    "--max-num-batched-tokens 4096"
)
GEN_A_LATE = (
    f"{S5CMD};python -m vllm_server --model model_files --tensor-parallel-size 1 --port 5005 "
    "--quantization awq --disable-log-requests"
)
# Generation B: the llama-3-70b pair at the very end.
GEN_B_BASE = (
    f"{AZCOPY};python -m vllm_server --model model_files --tensor-parallel-size 8 --port 5005 "
    "--max-num-batched-tokens 4096 --gpu-memory-utilization 0.95"
)
GEN_B = GEN_B_BASE + " --enforce-eager"
# Generation C: the pair for everyone, optional trailing attention backend.
GEN_C_BASE = (
    f"{S5CMD};{CHAT};python -m vllm_server --model model_files --tensor-parallel-size 4 "
    '--port 5005 --chat-template "$CHAT_TEMPLATE" --quantization awq --disable-log-requests '
    "--gpu-memory-utilization 0.9"
)
GEN_C = GEN_C_BASE + " --enforce-eager --attention-backend FLASHINFER"
GEN_C_NO_FLAG = GEN_C_BASE + " --attention-backend FLASHINFER"
GEN_C_MULTINODE = (
    f"{S5CMD};{RAY};python -m vllm_server --model model_files --tensor-parallel-size 8 "
    "--port 5005 --pipeline-parallel-size 2 --gpu-memory-utilization 0.95 --enforce-eager"
)
GEN_C_MISTRAL = (
    f"{GSUTIL};python -m vllm_server --model mistral_files --tensor-parallel-size 1 "
    "--port 5005 --gpu-memory-utilization 0.9 --enforce-eager"
)
# Generation D: false booleans with a value, unquoted dict reprs.
GEN_D = (
    f"{S5CMD};python -m vllm_server --model model_files --port 5005 --max-model-len 4096 "
    "--enforce-eager --trust-remote-code False "
    "--rope-scaling {'type': 'linear', 'factor': 2.0} --tensor-parallel-size 1 "
    "--gpu-memory-utilization 0.9"
)
GEN_D_NO_FLAG = (
    f"{S5CMD};python -m vllm_server --model model_files --port 5005 --max-model-len 4096 "
    "--trust-remote-code False "
    "--rope-scaling {'type': 'linear', 'factor': 2.0} --tensor-parallel-size 1 "
    "--gpu-memory-utilization 0.9"
)
# Generation E: served names, field order, prefix-sharing flags.
GEN_E_HEAD = (
    f"{S5CMD};{CHAT};python -m vllm_server --model model_files "
    "--served-model-name llama-3-8b model_files --port 5005 --attention-backend FLASHINFER "
    "--max-model-len 8192 --max-num-seqs 256"
)
GEN_E_TAIL = (
    " --trust-remote-code --tensor-parallel-size 1 --quantization awq "
    "--quantization-param-path /tmp/kv_scales.json --disable-log-requests "
    '--chat-template "$CHAT_TEMPLATE" --tokenizer model_files --tokenizer-mode auto '
    "--rope-scaling {'type': 'dynamic', 'factor': 4.0} --gpu-memory-utilization 0.9"
)
GEN_E = GEN_E_HEAD + " --enforce-eager" + GEN_E_TAIL
GEN_E_NO_FLAG = GEN_E_HEAD + GEN_E_TAIL
# Generation F: host, both quotings, the startup wrapper.
GEN_F_SINGLE = (
    f"{S5CMD};python -m vllm_server --model model_files --served-model-name llama-3-8b "
    "model_files --port 5005 --host '::' --max-model-len 8192 --enforce-eager "
    "--tensor-parallel-size 1 --gpu-memory-utilization 0.9"
)
GEN_F_WRAPPER = (
    f"{S5CMD};python -m vllm_startup_wrapper --model model_files --served-model-name "
    'llama-3-8b model_files --port 5005 --host "::" --enforce-eager --tensor-parallel-size 2 '
    "--gpu-memory-utilization 0.9 --enable-prefix-caching"
)
# Generation G: shell-quoted values, cache path, cache lock.
GEN_G_HEAD = (
    f"set -euo pipefail; {CACHE_LOCK}; python -m vllm_startup_wrapper "
    "--model /mnt/model-cache/model_files --served-model-name 'llama-3-8b' "
    "'/mnt/model-cache/model_files' --port 5005 --host '::' --max-model-len 8192"
)
GEN_G_TAIL = (
    ' --tensor-parallel-size 1 --rope-scaling \'{"type":"linear","factor":2.0}\' '
    "--gpu-memory-utilization 0.9 --speculative-config "
    '\'{"model": "eagle", "num_speculative_tokens": 3}\''
)
GEN_G = GEN_G_HEAD + " --enforce-eager" + GEN_G_TAIL
# Generation H: as G without the flag.
GEN_H = GEN_G_HEAD + GEN_G_TAIL
GEN_H_ADDED = (
    GEN_G_HEAD + ' --tensor-parallel-size 1 --rope-scaling \'{"type":"linear","factor":2.0}\' '
    "--gpu-memory-utilization 0.9 --enforce-eager --speculative-config "
    '\'{"model": "eagle", "num_speculative_tokens": 3}\''
)


def flags_and_texts(script: str) -> list[tuple[str, tuple[str, ...]]]:
    return [(arg.flag, arg.texts()) for arg in parse_script(script).args]


def without_eager(script: str) -> list[tuple[str, tuple[str, ...]]]:
    return [pair for pair in flags_and_texts(script) if pair[0] != "--enforce-eager"]


# Parsing ----------------------------------------------------------------------------


def test_generation_a() -> None:
    inv = parse_script(GEN_A)
    assert inv.module == "vllm_server"
    assert inv.positionals == ()
    assert inv.script == GEN_A
    assert inv.as_dict() == {
        "model": ("model_files",),
        "tensor_parallel_size": ("2",),
        "port": ("5005",),
        "max_num_batched_tokens": ("4096",),
    }
    assert inv.tensor_parallel_size == 2
    assert inv.pipeline_parallel_size is None
    assert inv.gpu_memory_utilization is None
    assert not inv.enforce_eager
    assert inv.served_model_names == ()
    assert (inv.start, inv.end) == (GEN_A.index("python"), len(GEN_A))
    late = parse_script(GEN_A_LATE)
    assert late.get("--quantization") == Arg(
        "--quantization",
        ("awq",),
        GEN_A_LATE.index("--quantization"),
        GEN_A_LATE.index("--quantization") + len("--quantization awq"),
    )
    assert late.get("--disable-log-requests") is not None
    assert late.get("--disable-log-requests").values == ()  # type: ignore[union-attr]


def test_generation_b() -> None:
    inv = parse_script(GEN_B)
    assert inv.enforce_eager
    assert inv.gpu_memory_utilization == Decimal("0.95")
    assert inv.tensor_parallel_size == 8
    eager = inv.get("--enforce-eager")
    assert eager == Arg("--enforce-eager", (), len(GEN_B) - len("--enforce-eager"), len(GEN_B))
    assert set_enforce_eager(GEN_B, False) == GEN_B_BASE
    assert set_enforce_eager(GEN_B_BASE, True) == GEN_B


def test_generation_c() -> None:
    inv = parse_script(GEN_C)
    assert inv.get("--chat-template").values == ('"$CHAT_TEMPLATE"',)  # type: ignore[union-attr]
    assert inv.get("--chat-template").texts() == ("$CHAT_TEMPLATE",)  # type: ignore[union-attr]
    assert inv.gpu_memory_utilization == Decimal("0.9")
    assert inv.enforce_eager
    assert inv.as_dict()["attention_backend"] == ("FLASHINFER",)
    assert set_enforce_eager(GEN_C, False) == GEN_C_NO_FLAG
    assert set_enforce_eager(GEN_C_NO_FLAG, True) == GEN_C
    assert split_subcommands(GEN_C) == [
        (0, len(S5CMD)),
        (len(S5CMD) + 1, len(S5CMD) + 1 + len(CHAT)),
        (len(S5CMD) + len(CHAT) + 2, len(GEN_C)),
    ]


def test_generation_c_multinode_and_mistral() -> None:
    inv = parse_script(GEN_C_MULTINODE)
    assert inv.pipeline_parallel_size == 2
    assert inv.tensor_parallel_size == 8
    assert inv.start == GEN_C_MULTINODE.index("python")
    # The Ray leader's own --flags belong to another subcommand.
    assert not inv.has("--ray_cluster_size")
    assert set_enforce_eager(GEN_C_MULTINODE, False) == GEN_C_MULTINODE.removesuffix(
        " --enforce-eager"
    )
    mistral = parse_script(GEN_C_MISTRAL)
    assert mistral.get("--model").texts() == ("mistral_files",)  # type: ignore[union-attr]


def test_generation_d() -> None:
    inv = parse_script(GEN_D)
    assert inv.get("--trust-remote-code").values == ("False",)  # type: ignore[union-attr]
    rope = inv.get("--rope-scaling")
    assert rope is not None
    # Braces do not quote in bash: the unquoted dict repr is four words, quotes
    # removed, exactly what bash passed to the server (it never could parse them).
    assert rope.values == ("{'type':", "'linear',", "'factor':", "2.0}")
    assert rope.texts() == ("{type:", "linear,", "factor:", "2.0}")
    assert GEN_D[rope.start : rope.end] == "--rope-scaling {'type': 'linear', 'factor': 2.0}"
    # Compared with stored args, the repr counts as its author wrote it.
    assert rope.written() == ("{'type': 'linear', 'factor': 2.0}",)
    assert inv.as_dict()["rope_scaling"] == rope.written()
    assert inv.as_dict()["trust_remote_code"] == ("False",)
    assert inv.tensor_parallel_size == 1
    assert set_enforce_eager(GEN_D, False) == GEN_D_NO_FLAG
    assert flags_and_texts(GEN_D_NO_FLAG) == without_eager(GEN_D)
    # Re-adding puts the flag next to the utilization, not back where D had it.
    assert set_enforce_eager(GEN_D_NO_FLAG, True) == GEN_D_NO_FLAG + " --enforce-eager"


def test_generation_e() -> None:
    inv = parse_script(GEN_E)
    assert inv.served_model_names == ("llama-3-8b", "model_files")
    assert inv.get("--served-model-name").values == ("llama-3-8b", "model_files")  # type: ignore[union-attr]
    assert inv.get("--trust-remote-code").values == ()  # type: ignore[union-attr]
    assert inv.get("--tokenizer").texts() == ("model_files",)  # type: ignore[union-attr]
    assert inv.get("--tokenizer-mode").texts() == ("auto",)  # type: ignore[union-attr]
    assert inv.get("--quantization").texts() == ("awq",)  # type: ignore[union-attr]
    assert inv.get("--quantization-param-path").texts() == ("/tmp/kv_scales.json",)  # type: ignore[union-attr]
    assert inv.get("--rope-scaling").texts() == ("{type:", "dynamic,", "factor:", "4.0}")  # type: ignore[union-attr]
    assert inv.get("--tokenizer-m") is None
    assert set_enforce_eager(GEN_E, False) == GEN_E_NO_FLAG
    assert flags_and_texts(GEN_E_NO_FLAG) == without_eager(GEN_E)
    readded = set_enforce_eager(GEN_E_NO_FLAG, True)
    assert readded == GEN_E_NO_FLAG + " --enforce-eager"
    assert set_enforce_eager(readded, False) == GEN_E_NO_FLAG


def test_generation_f_host_quotings_and_wrapper() -> None:
    single = parse_script(GEN_F_SINGLE)
    assert single.get("--host").values == ("'::'",)  # type: ignore[union-attr]
    assert single.get("--host").texts() == ("::",)  # type: ignore[union-attr]
    wrapper = parse_script(GEN_F_WRAPPER)
    assert wrapper.module == "vllm_startup_wrapper"
    assert wrapper.get("--host").values == ('"::"',)  # type: ignore[union-attr]
    assert wrapper.get("--host").texts() == ("::",)  # type: ignore[union-attr]
    assert wrapper.get("--enable-prefix-caching").values == ()  # type: ignore[union-attr]
    removed = set_enforce_eager(GEN_F_WRAPPER, False)
    assert removed == GEN_F_WRAPPER.replace(' "::" --enforce-eager', ' "::"')
    assert set_enforce_eager(removed, True) == removed.replace(
        "--gpu-memory-utilization 0.9", "--gpu-memory-utilization 0.9 --enforce-eager"
    )


def test_generation_g_and_h() -> None:
    inv = parse_script(GEN_G)
    assert inv.module == "vllm_startup_wrapper"
    assert inv.get("--model").texts() == ("/mnt/model-cache/model_files",)  # type: ignore[union-attr]
    assert inv.served_model_names == ("llama-3-8b", "/mnt/model-cache/model_files")
    assert inv.as_dict()["served_model_name"] == inv.served_model_names
    assert inv.get("--rope-scaling").values == (  # type: ignore[union-attr]
        '\'{"type":"linear","factor":2.0}\'',
    )
    assert inv.as_dict()["rope_scaling"] == ('{"type":"linear","factor":2.0}',)
    assert inv.as_dict()["speculative_config"] == (
        '{"model": "eagle", "num_speculative_tokens": 3}',
    )
    # The cache lock's "( ...; ...; )" and "[ ... ]" stay one subcommand.
    spans = split_subcommands(GEN_G)
    assert [GEN_G[a:b] for a, b in spans[:3]] == [
        "set -euo pipefail",
        "mkdir -p /mnt/model-cache",
        CACHE_LOCK.removeprefix("mkdir -p /mnt/model-cache; "),
    ]
    assert set_enforce_eager(GEN_G, False) == GEN_H
    h = parse_script(GEN_H)
    assert not h.enforce_eager
    assert set_enforce_eager(GEN_H, True) == GEN_H_ADDED
    assert set_enforce_eager(GEN_H_ADDED, False) == GEN_H


def test_gpu_utilization_at_or_above_guard_is_parsed_exactly() -> None:
    inv = parse_script("python -m vllm_server --gpu-memory-utilization 0.95")
    assert inv.gpu_memory_utilization == Decimal("0.95")
    assert inv.gpu_memory_utilization >= Decimal("0.95")
    assert parse_script(
        "python -m vllm_server --gpu-memory-utilization=.9"
    ).gpu_memory_utilization == Decimal("0.9")
    for odd in ("abc", "nan", "inf", "0.9 0.8", "1e"):
        assert (
            parse_script(
                f"python -m vllm_server --gpu-memory-utilization {odd}"
            ).gpu_memory_utilization
            is None
        )
    assert parse_script("python -m vllm_server").gpu_memory_utilization is None
    assert (
        parse_script("python -m vllm_server --tensor-parallel-size two").tensor_parallel_size
        is None
    )
    # A utilization made at run time is not a number the tool can know.
    for indirect in ("$UTIL", '"$UTIL"', "$(cat /etc/util)", "`echo 0.9`"):
        with pytest.raises(CommandError) as err:
            parse_script(f"python -m vllm_server --gpu-memory-utilization {indirect}")
        assert err.value.kind == "indirect-arguments"


def test_parse_command_shapes() -> None:
    for shell in ("/bin/bash", "bash", "/bin/sh", "sh"):
        assert parse_command([shell, "-c", GEN_A]).module == "vllm_server"
    assert parse_command(("/bin/bash", "-c", GEN_A)).module == "vllm_server"


# Tokenizing details ---------------------------------------------------------------------


def test_inline_values_and_quoted_flags() -> None:
    script = (
        "python -m vllm_server --max-model-len=4096 --host='::' "
        '"--served-model-name=a b" --x="1 2" c'
    )
    inv = parse_script(script)
    assert inv.get("--max-model-len") == Arg(
        "--max-model-len",
        ("4096",),
        script.index("--max"),
        script.index("--max") + len("--max-model-len=4096"),
        inline=True,
    )
    assert inv.get("--host").values == ("'::'",)  # type: ignore[union-attr]
    assert inv.get("--served-model-name").values == ('"a b"',)  # type: ignore[union-attr]
    assert inv.served_model_names == ("a b",)
    # Words after an inline value still belong to the flag before them.
    assert inv.get("--x").values == ('"1 2"', "c")  # type: ignore[union-attr]
    assert inv.get("--x").texts() == ("1 2", "c")  # type: ignore[union-attr]


def test_escapes_continuations_and_ansi_c_quotes() -> None:
    script = (
        "python -m vllm_server \\\n  --model model\\ files \\\n"
        "  --stop $'a\\'b' --enforce-eager \\\n  --port 5005"
    )
    inv = parse_script(script)
    assert inv.get("--model").texts() == ("model files",)  # type: ignore[union-attr]
    assert inv.get("--stop").texts() == ("a'b",)  # type: ignore[union-attr]
    assert inv.get("--port").texts() == ("5005",)  # type: ignore[union-attr]
    removed = set_enforce_eager(script, False)
    assert removed == script.replace(" --enforce-eager", "")
    assert set_enforce_eager(removed, True) == removed + " --enforce-eager"
    # A continuation inside a word joins it, as in bash.
    joined = parse_script("python -m vllm_server --max-model\\\n-len 4")
    assert joined.get("--max-model-len").texts() == ("4",)  # type: ignore[union-attr]


def test_positionals_and_interpreter_prefixes() -> None:
    for prefix in (
        "python",
        "python3",
        "python3.10",
        "/usr/bin/python3.11",
        "exec python",
        "nohup python3 -u",
        "PYTHONUNBUFFERED=1 VLLM_LOGGING_LEVEL=DEBUG python",
        "python -X dev -B",
    ):
        inv = parse_script(f"cd /app; {prefix} -m vllm_startup_wrapper serve extra --port 5005")
        assert inv.module == "vllm_startup_wrapper"
        assert inv.positionals == ("serve", "extra")
        assert inv.get("--port").texts() == ("5005",)  # type: ignore[union-attr]
    assert parse_script("python -mvllm_server --port 1").module == "vllm_server"


def test_trailing_operators_are_not_arguments() -> None:
    script = "python -m vllm_server --port 5005 --max-num-seqs 8 2>&1 | tee /tmp/vllm.log"
    inv = parse_script(script)
    assert inv.get("--max-num-seqs").values == ("8",)  # type: ignore[union-attr]
    assert inv.end == len(script)
    assert set_enforce_eager(script, True) == script.replace(" 8 2>&1", " 8 --enforce-eager 2>&1")
    redirected = "python -m vllm_server --port 5005 > /tmp/log 2>&1 &"
    assert set_enforce_eager(redirected, True) == redirected.replace(
        "5005 >", "5005 --enforce-eager >"
    )
    # bash drops a redirection and passes what follows it on, so the flag is seen there too.
    late = "python -m vllm_server --port 5005 2>/tmp/err --enforce-eager"
    assert parse_script(late).enforce_eager
    assert set_enforce_eager(late, False) == "python -m vllm_server --port 5005 2>/tmp/err"


def test_removal_never_glues_a_value_into_a_redirect() -> None:
    script = "python -m vllm_server --max-num-seqs 1 --enforce-eager>/tmp/log"
    removed = set_enforce_eager(script, False)
    assert removed == "python -m vllm_server --max-num-seqs 1 >/tmp/log"
    assert parse_script(removed).get("--max-num-seqs").values == ("1",)  # type: ignore[union-attr]


def test_flags_are_never_matched_by_prefix() -> None:
    script = (
        "python -m vllm_server --enforce-eager-foo --tokenizer-mode slow "
        "--quantization-param-path /p --future-flag 1 2"
    )
    inv = parse_script(script)
    assert not inv.enforce_eager
    assert not inv.has("--enforce-eager")
    assert inv.get("--tokenizer") is None
    assert inv.get("--quantization") is None
    assert inv.get("--future-flag").values == ("1", "2")  # type: ignore[union-attr]
    added = set_enforce_eager(script, True)
    assert added == script + " --enforce-eager"
    assert parse_script(added).has("--enforce-eager-foo")
    assert set_enforce_eager(added, False) == script


def test_repeated_flags_last_wins() -> None:
    inv = parse_script("python -m vllm_server --port 1 --port 2")
    assert [a.texts() for a in inv.all("--port")] == [("1",), ("2",)]
    assert inv.get("--port").texts() == ("2",)  # type: ignore[union-attr]
    assert inv.as_dict()["port"] == ("2",)


def test_additions_without_arguments_or_utilization() -> None:
    assert set_enforce_eager("python -m vllm_server", True) == (
        "python -m vllm_server --enforce-eager"
    )
    assert set_enforce_eager("python -m vllm_server serve;", True) == (
        "python -m vllm_server serve --enforce-eager;"
    )
    assert set_enforce_eager("python -m vllm_server --port 5005 # start\n", True) == (
        "python -m vllm_server --port 5005 --enforce-eager # start\n"
    )


def test_unchanged_when_already_in_state() -> None:
    assert set_enforce_eager(GEN_B, True) is GEN_B
    assert set_enforce_eager(GEN_H, False) is GEN_H


def test_brackets_and_subshells_hide_separators() -> None:
    script = (
        "a=$(echo 'x;y' | tr ';' ' '); { b; c; }; [[ -n x ]] && d || e\n"
        "python -m vllm_server --x [1, 2]; f"
    )
    pieces = [script[a:b] for a, b in split_subcommands(script)]
    assert pieces == [
        "a=$(echo 'x;y' | tr ';' ' ')",
        "{ b; c; }",
        "[[ -n x ]]",
        "d",
        "e",
        "python -m vllm_server --x [1, 2]",
        "f",
    ]
    # Square brackets do not quote in bash: two words.
    assert parse_script(script).get("--x").values == ("[1,", "2]")  # type: ignore[union-attr]


def test_comments_hide_their_contents() -> None:
    script = "# it's a comment; python -m vllm_server\npython -m vllm_server --port 1"
    with pytest.raises(CommandError) as err:
        parse_script(script)
    # A second mention of the module anywhere makes the script ambiguous.
    assert err.value.kind == "multiple-vllm-invocations"
    ok = "# it's fine; really\npython -m vllm_server --port 1 # don't care"
    assert parse_script(ok).get("--port").texts() == ("1",)  # type: ignore[union-attr]


# Errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cmd",
    [
        None,
        [],
        "python -m vllm_server",
        ["/bin/bash", GEN_A],
        ["/bin/bash", "-lc", GEN_A],
        ["/bin/zsh", "-c", GEN_A],
        ["python", "-m", "vllm_server"],
        ["/bin/bash", "-c", GEN_A, "extra"],
        ["/bin/bash", "-c", None],
        ["/bin/bash", "-c", b"python -m vllm_server"],
    ],
)
def test_not_a_bash_command(cmd: object) -> None:
    with pytest.raises(CommandError) as err:
        parse_command(cmd)  # type: ignore[arg-type]
    assert err.value.kind == "not-a-bash-command"


@pytest.mark.parametrize(
    "script",
    [
        "python -m vllm_server --host '::",
        'python -m vllm_server --chat-template "$CHAT_TEMPLATE',
        "python -m vllm_server --x 1)",
        "python -m vllm_server --x (",
        "python -m vllm_server --x $(echo 1",
        "python -m vllm_server --x ${X",
        "python -m vllm_server --x `date",
        # Unbalanced anywhere, even in a download step, blocks the whole script.
        's5cmd cp "s3://b/* model_files; python -m vllm_server --port 5005',
        "export T=$(echo x | base64 --decode; python -m vllm_server --port 5005",
    ],
)
def test_unbalanced_quoting(script: str) -> None:
    with pytest.raises(CommandError) as err:
        parse_script(script)
    assert err.value.kind == "unbalanced-quoting"
    with pytest.raises(CommandError):
        set_enforce_eager(script, False)
    with pytest.raises(CommandError):
        split_subcommands(script)


@pytest.mark.parametrize(
    ("script", "values"),
    [
        ("python -m vllm_server --rope-scaling {'type': 'linear'", ("{'type':", "'linear'")),
        ("python -m vllm_server --x [1, 2", ("[1,", "2")),
        ("python -m vllm_server --x }", ("}",)),
        ("python -m vllm_server --x {]", ("{]",)),
    ],
)
def test_braces_and_brackets_are_ordinary_characters(script: str, values: tuple[str, ...]) -> None:
    """bash runs these: an unbalanced brace or bracket is not an error, only a character."""
    assert parse_script(script).args[0].values == values
    assert set_enforce_eager(script, True) == script + " --enforce-eager"


def test_subshells_and_nested_bash_c_are_read() -> None:
    """The server started in a subshell or a nested ``bash -c`` string is found and edited."""
    sub = "(python -m vllm_server --port 5005 --enforce-eager)"
    assert parse_script(sub).enforce_eager
    assert set_enforce_eager(sub, False) == "(python -m vllm_server --port 5005)"
    nested = (
        "set -e; bash -c 'cd /app && python -m vllm_server --port 5005 "
        "--gpu-memory-utilization 0.9 --enforce-eager' 2>&1"
    )
    inv = parse_script(nested)
    assert inv.enforce_eager and inv.gpu_memory_utilization == Decimal("0.9")
    flag = inv.get("--enforce-eager")
    assert flag is not None and nested[flag.start : flag.end] == "--enforce-eager"
    removed = set_enforce_eager(nested, False)
    assert removed == nested.replace(" --enforce-eager", "")
    assert set_enforce_eager(removed, True) == nested


@pytest.mark.parametrize(
    "script",
    [
        "",
        S5CMD,
        "python -m vllm.entrypoints.openai.api_server --model model_files",
        "python serve.py --enforce-eager",
        "python -c 'import vllm_server' -m vllm_server",
        "echo python -m vllm_server",
        "vllm serve model_files --enforce-eager",
        # Bash never runs these as the server.
        "# python -m vllm_server --port 5005",
        "cat <<EOF\npython -m vllm_server --port 5005\nEOF\n",
        "start() { python -m vllm_server --port 5005; }",
        "exit 0; python -m vllm_server --port 5005",
        "x=$(python -m vllm_server --port 5005)",
    ],
)
def test_no_vllm_invocation(script: str) -> None:
    with pytest.raises(CommandError) as err:
        parse_script(script)
    assert err.value.kind == "no-vllm-invocation"


@pytest.mark.parametrize(
    "script",
    [
        "python -m vllm_server --port 1; python -m vllm_server --port 2",
        "python -m vllm_server --port 1\npython3 -m vllm_startup_wrapper --port 2",
        "python -m vllm_server --port 1 && python -m vllm_server --port 2",
        "python -m vllm_server --port 1 | python -m vllm_server --port 2",
        "(python -m vllm_server --port 2); python -m vllm_server --port 1",
        "bash -c 'python -m vllm_server'; python -m vllm_server --port 1",
    ],
)
def test_multiple_vllm_invocations(script: str) -> None:
    with pytest.raises(CommandError) as err:
        parse_script(script)
    assert err.value.kind == "multiple-vllm-invocations"


@pytest.mark.parametrize(
    "args",
    [
        "--enforce-eager --port 1 --enforce-eager",
        "--enforce-eager True",
        "--enforce-eager False --port 1",
        "--enforce-eager=false",
        "--enforce-eager=",
        "--no-enforce-eager",
        "--enforce-eager --no-enforce-eager",
        "--enforce_eager",
        "--enforce-eager --enforce_eager",
        "--enforce",
        "--enforce-e",
        "--no-enforce",
        "'--enforce-eager' --enforce-eager",
    ],
)
def test_ambiguous_enforce_eager(args: str) -> None:
    script = f"{S5CMD};python -m vllm_server --port 5005 {args}"
    with pytest.raises(CommandError) as err:
        parse_script(script)
    assert err.value.kind == "ambiguous-enforce-eager"
    for on in (True, False):
        with pytest.raises(CommandError):
            set_enforce_eager(script, on)


def test_verification_catches_a_misreading(monkeypatch: pytest.MonkeyPatch) -> None:
    real = command.shell.read_words

    def misreading(text: str, start: int, stop: int) -> tuple[int, list[tuple[int, int]]]:
        end, words = real(text, start, stop)
        # Pretend the reader cut each word one character short.
        return end, [(a, b - 1) for a, b in words]

    monkeypatch.setattr(command.shell, "read_words", misreading)
    # Each edit is made here and checked: none is taken from a reading kept earlier.
    command_reading._tails.clear()
    for script, on in ((GEN_B, False), (GEN_B_BASE, True), (GEN_E, False)):
        with pytest.raises(CommandError) as err:
            set_enforce_eager(script, on)
        assert err.value.kind == "verification-failed"
    # A nested script is checked by reading it all again.
    nested = f"bash -c '{GEN_B.replace(AZCOPY + ';', '')}'"
    full = command_edit._parse

    def lost_argument(script: str) -> command.VllmInvocation:
        inv = full(script)
        return inv if script == nested else dataclasses.replace(inv, args=inv.args[1:])

    monkeypatch.setattr(command_edit, "_parse", lost_argument)
    with pytest.raises(CommandError) as err:
        set_enforce_eager(nested, False)
    assert err.value.kind == "verification-failed"


def test_verify_rejects_changes_outside_the_flag() -> None:
    before = parse_script(GEN_B)
    cases = [
        GEN_B_BASE.replace("azcopy copy", "azcopy  copy"),
        GEN_B_BASE.replace("--port 5005", "--port 5006"),
        GEN_B_BASE.replace("--port 5005", "--port '5005'"),
        GEN_B_BASE.replace("--include-pattern", "--include-patterns"),
        GEN_B_BASE + " ; echo done",
        GEN_B,
        GEN_B_BASE.replace("vllm_server", "vllm_startup_wrapper"),
        GEN_B_BASE.replace('"*.model;', '"*.model'),
        GEN_B_BASE + " --enforce-eager=1",
    ]
    for candidate in cases:
        with pytest.raises(CommandError) as err:
            command_edit._verify(before, candidate, False)
        assert err.value.kind == "verification-failed", candidate
    command_edit._verify(before, GEN_B_BASE, False)


def test_error_shape() -> None:
    err = CommandError("no-vllm-invocation", "No server here.")
    assert str(err) == "No server here."
    assert err.kind == "no-vllm-invocation"
    assert err.reason == "No server here."
    again = pickle.loads(pickle.dumps(err))
    assert (again.kind, again.reason) == (err.kind, err.reason)
    with pytest.raises(CommandError) as raised:
        parse_script("echo hi")
    assert str(raised.value) == raised.value.reason
    assert raised.value.kind in command.KINDS


def test_non_string_script_is_a_command_error() -> None:
    for bad in (None, 3, ["python -m vllm_server"]):
        with pytest.raises(CommandError):
            parse_script(bad)  # type: ignore[arg-type]
        with pytest.raises(CommandError):
            set_enforce_eager(bad, True)  # type: ignore[arg-type]

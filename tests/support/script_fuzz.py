"""Random start scripts for differential tests: every shell construct around a vLLM start.

:func:`script` builds one script from a ``random.Random``: setup steps drawn from
the shapes model engine and people write (downloads, the model-cache program,
functions, ``case``, loops, subshells, here-documents, traps, arithmetic,
nested ``bash -c``), separators, then the vLLM invocation with arguments of every
generation's quoting, sometimes in a compound command or a nested ``bash -c``,
sometimes with CRLF line ends or arguments that come from expansions.
:func:`mutate` then damages a script the way a fuzzer does. Plain ``random`` (not
hypothesis), so that tens of thousands of scripts cost seconds.

No step writes outside the working directory: the bash oracle runs them.
"""

from __future__ import annotations

import json
import random
import shlex

from migrate.sandbox import synth
from migrate.sandbox.synth import modelcache

_DOWNLOADS = [
    './s5cmd  --numworkers 512 cp --concurrency 10 --include "*.model" --include "*.json" '
    '--include "*.safetensors" --exclude "optimizer*" s3://bucket/hf-llm/m/* model_files',
    's5cmd --numworkers 512 cp --concurrency 50 "s3://bucket/path with space/*" model_files',
    "export AZCOPY_AUTO_LOGIN_TYPE=WORKLOAD",
    'azcopy copy --recursive --include-pattern "*.model;*.json;*.safetensors" '
    '--exclude-pattern "optimizer*" https://acct.blob.core.windows.net/models/x/* model_files',
    "gsutil -m cp -r gs://bucket/path/* mistral_files",
    'curl -sSL "https://x.example/w?a=1&b=2" | tar -xz -C opt && gcloud config set a b 2>/dev/null',
    '/opt/google-cloud-sdk/bin/gcloud storage rsync -r --exclude="optimizer.*" '
    '--exclude=".*\\.py$" gs://b/m model_files',
    'export CHAT_TEMPLATE=$(echo "e3sgbWVzc2FnZXMgfX0=" | base64 --decode)',
    "/workspace/init_ray.sh leader --ray_cluster_size=$RAY_CLUSTER_SIZE "
    "--own_address=$K8S_OWN_POD_NAME.$K8S_LWS_NAME.$K8S_OWN_NAMESPACE.svc.cluster.local",
    "set -euo pipefail",
    "mkdir -p model_files",
]
_SHELL_STEPS = [
    'download() { s5cmd cp "s3://b/m/*" model_files; }; download',
    "f() ( echo sub; ); f",
    'function g { echo "it\'s"; }',
    'case "$ARCH" in x86_64) A=amd64;; aarch64|arm64) A=arm64;; *) A=other;; esac',
    "case $x in (a) echo a;; esac",
    "case \"$n\" in ''|*[!0-9]*) n=0 ;; esac",
    "if [ -f model_files/config.json ]; then echo ok; elif [ -d x ]; then :; else echo no; fi",
    "while false; do sleep 1; done",
    "until true; do sleep 1; done",
    "for f in a b 'c d'; do echo \"$f\"; done",
    "for ((i = 0; i < 2; i++)); do :; done",
    "(while true; do date +%s > hb; sleep 30; done) & pid=$!",
    "{ echo group; } 2>/dev/null",
    "trap 'rm -rf lockdir' EXIT INT TERM",
    "trap - EXIT",
    '[[ -n "$HOME" && $x != y ]] && echo yes',
    "a=(one two 'three four'); echo \"${a[@]}\"",
    "n=$((3 * (2 + 1))); echo $n $$ $!",
    "echo `date +%s` ${x:-default} ${#x} ${x//a/b}",
    "printf '%s\\n' \"pid=$$ host=$(hostname 2>/dev/null || true)\" > owner",
    "echo $'tab\\there' \"double \\\"quoted\\\"\" 'single'\\''s'",
    "echo a#b # a comment; with ';' and \"quotes",
    'x="$(cat a 2>/dev/null || echo 0)"',
    "echo done && true || false",
    "echo one | tr a b | cat",
    "! false",
    "time true",
    "export X=1 Y='two words'",
    "bash -c 'set -euo pipefail;s5cmd cp \"s3://b/m/*\" model_files'",
    "sh -c \"echo inner; echo 'quoted'\"",
    "echo {a,b} {1..3} [x]",
    "echo ~/path",
    "read -r line < /dev/null || true",
    "exec 3>&1",
    "echo \\; \\' \\\" \\$ \\\\",
]
_HEREDOCS = [
    "cat <<EOF > cfg\nmodel: x\nEOF",
    "cat <<'EOF'\n$literal `not run`\nEOF",
    "cat <<-EOF\n\tindented\n\tEOF",
]
_INTERPRETERS = [
    "python",
    "python3",
    "python3.10",
    "/usr/bin/python3.10",
    "exec python",
    "nohup python3",
    "PYTHONUNBUFFERED=1 python",
    "env VLLM_LOGGING_LEVEL=DEBUG python",
    "python -u",
    "python -X dev",
]
_UNKNOWN = ["--zz-future", "--some-flag-from-2027", "--enable-lora", "--kv-cache-dtype"]
_PLAIN_VALUES = ["x", "model_files", "/tmp/q.json", "a:b", "1", "2.5", "auto", "fp8"]


def _value(rng: random.Random, quoted: bool) -> str:
    value = rng.choice(_PLAIN_VALUES)
    if not quoted:
        return value
    style = rng.randrange(6)
    if style == 0:
        return f"'{value} {value}'"
    if style == 1:
        return f'"{value}"'
    if style == 2:
        return f"$'{value}\\t'"
    if style == 3:
        return value.replace(":", "\\:") + "\\ x"
    if style == 4:
        return "'" + value + "'\"" + value + '"'
    return shlex.quote(value)


def _dict_value(rng: random.Random, generation: str) -> str:
    value = rng.choice(
        [
            {"type": "linear", "factor": 2.0},
            {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768},
            {"stop": ["</s>", "}"], "x": "it's"},
            {"cudagraph_capture_sizes": [1, 2, 4]},
        ]
    )
    if generation in "GH":
        return shlex.quote(json.dumps(value, separators=(",", ":")))
    return repr(value)


def _arguments(rng: random.Random, generation: str) -> list[str]:
    quoted = generation in "GH"
    args = ["--model " + ("/mnt/model-cache/model_files" if quoted else "model_files")]
    if generation in "EFGH":
        args.append("--served-model-name llama-3-8b model_files")
    args.append("--port 5005")
    if generation in "FGH":
        args.append(rng.choice(["--host '::'", '--host "::"', "--host=::"]))
    optional = [
        f"--tensor-parallel-size {rng.randint(1, 8)}",
        "--quantization awq",
        "--quantization-param-path /tmp/q.json",
        "--tokenizer-mode auto",
        "--disable-log-requests",
        '--chat-template "$CHAT_TEMPLATE"',
        "--trust-remote-code" + (" False" if generation == "D" else ""),
        "--enforce-eager-foo",
        f"--max-model-len={rng.choice([4096, 8192])}",
        f"--max-num-seqs '{rng.choice([64, 128])}'",
    ]
    if generation in "DEFGH":
        optional.append("--rope-scaling " + _dict_value(rng, generation))
    for _ in range(rng.randint(0, 2)):
        flag = rng.choice(_UNKNOWN)
        values = [_value(rng, quoted) for _ in range(rng.randint(0, 2))]
        optional.append(" ".join([flag, *values]))
    args.extend(rng.sample(optional, rng.randint(0, len(optional))))
    return args


def _indirect(rng: random.Random) -> str:
    return rng.choice(
        [
            "$(echo --enforce-eager)",
            "`echo --enforce-eager`",
            "$EAGER",
            '"$EXTRA_ARGS"',
            "--gpu-memory-utilization $UTIL",
            "--disable-log-requests $MORE",
            "{--enforce-eager,--port=1}",
            "--model $MODEL_DIR",
            '--chat-template "$(cat template.jinja)"',
        ]
    )


def invocation(rng: random.Random) -> str:
    """One vLLM start: interpreter, module, arguments (eager flag and utilization or not)."""
    generation = rng.choice("ABCDEFGH")
    args = _arguments(rng, generation)
    if generation != "A" and rng.random() < 0.85:
        util = rng.choice(["0.9", "0.95", "0.97", ".5", "0.9\r", "'0.95'", "0.85"])
        args.insert(rng.randint(0, len(args)), f"--gpu-memory-utilization {util}")
    if rng.random() < 0.6:
        spelling = (
            "--enforce-eager"
            if rng.random() < 0.9
            else rng.choice(
                ["'--enforce-eager'", "\\--enforce-eager", "--enforce-eager\r", "--enforce-eager=1"]
            )
        )
        args.insert(rng.randint(0, len(args)), spelling)
    if rng.random() < 0.08:
        args.insert(rng.randint(0, len(args)), _indirect(rng))
    module = rng.choice(["vllm_server", "vllm_startup_wrapper"])
    separators = [" ", " ", " ", "  ", "\t", " \\\n    "]
    words = [f"{rng.choice(_INTERPRETERS)} -m {module}", *args]
    text = words[0] + "".join(rng.choice(separators) + word for word in words[1:])
    trailer = rng.choice(["", "", "", " 2>&1 | tee vllm.log", " > vllm.log 2>&1", " &", " 2>err"])
    return text + trailer


def _wrapped(rng: random.Random, server: str) -> str:
    kind = rng.randrange(12)
    if kind == 0:
        return f"if true; then {server}; fi"
    if kind == 1:
        return f"{{ {server}; }}"
    if kind == 2:
        return f"( {server} )"
    if kind == 3:
        return f"while true; do {server}; break; done"
    if kind == 4:
        quoted = "'" + server + "'" if "'" not in server else shlex.quote(server)
        return f"bash -c {quoted}"
    if kind == 5:
        escaped = server.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
        return f'bash -c "{escaped}"'
    return server


def _setup(rng: random.Random) -> list[str]:
    steps: list[str] = []
    for _ in range(rng.randint(0, 4)):
        pool = rng.random()
        if pool < 0.45:
            steps.append(rng.choice(_DOWNLOADS))
        elif pool < 0.9:
            steps.append(rng.choice(_SHELL_STEPS))
        elif pool < 0.95:
            steps.append(rng.choice(_HEREDOCS) + "\n")
        else:
            download = [rng.choice(_DOWNLOADS[:5])]
            steps.extend(modelcache.wrap_download(download, "/mnt/model-cache/model_files", "f0"))
    return steps


def script(rng: random.Random) -> str:
    """A random, mostly valid bash start script with one vLLM server start."""
    steps = _setup(rng)
    server = _wrapped(rng, invocation(rng))
    parts: list[str] = []
    for step in steps:
        parts.append(step)
        if step.endswith("\n"):
            continue  # a here-document ends its own line
        parts.append(rng.choice([";", "; ", "\n", " && ", ";\n"]))
    parts.append(server)
    parts.append(rng.choice(["", "", "\n", "; echo done", "\nwait", " # started"]))
    text = "".join(parts)
    if rng.random() < 0.05:
        text = text.replace("\n", "\r\n") + ("\r\n" if rng.random() < 0.5 else "")
    return text


_SNIPPETS = [
    ";", "'", '"', "{", "}", "[", "]", "(", ")", "$(", "\\", "\n", " ", "#", "=", "|", "&",
    ">", "<", "2>&1", "1", "--", " --enforce-eager", "--enforce-eager", " --enforce-eager=1",
    " --no-enforce-eager", " python -m vllm_server", "; python3 -m vllm_startup_wrapper ",
    "\\\n", "$'", "`", "<<EOF", "fi", "then", "do", "done", "esac", ";;", "case x in", "if ",
    "{ ", " }", "$((", "))", "${", "\r", "\t", "&&", "||", "!", "function ", "()",
]  # fmt: skip


def mutate(rng: random.Random, text: str) -> str:
    """``text`` damaged by one to three random insertions, deletions or duplications."""
    for _ in range(rng.randint(1, 3)):
        at = rng.randint(0, len(text))
        kind = rng.random()
        if kind < 0.55:
            if rng.random() < 0.8:
                snippet = rng.choice(_SNIPPETS)
            else:
                snippet = "".join(chr(rng.randint(1, 0x2FF)) for _ in range(rng.randint(1, 3)))
            text = text[:at] + snippet + text[at:]
        else:
            length = rng.randint(1, 6)
            piece = text[at : at + length]
            text = text[:at] + text[at + length :] if kind < 0.8 else text[:at] + piece + text[at:]
    return text


def fleet_scripts(size: int, seed: int, *, vllm_only: bool) -> list[str]:
    """The distinct scripts of a synthetic fleet's bundles, superseded ones included,
    sorted: what a scan of that fleet reads. ``vllm_only``: only vLLM endpoints', else
    every LLM endpoint's."""
    return sorted(
        {
            synth.build_script(version)
            for spec in synth.random_fleet(size, seed=seed)
            for version in (*spec.superseded, spec)
            if (version.is_vllm if vllm_only else version.is_llm)
        }
    )


def server_cut(script: str) -> int:
    """Where the setup before a fleet script's server ends: just past the last ";" or
    newline before its first "python" (0 when none comes before it)."""
    at = script.find("python")
    return max(script.rfind(";", 0, at), script.rfind("\n", 0, at)) + 1


def cuts(script: str) -> list[int]:
    """Every place a setup may end in the script: its start, and just past each ";" or
    newline."""
    return [0] + [i + 1 for i, c in enumerate(script) if c in ";\n"]

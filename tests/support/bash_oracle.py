"""Bash itself as the oracle: run scripts under real bash and record what python receives.

Each script runs in its own subshell of a long-lived bash process (thousands
per process, so a corpus runs in seconds), with every external command stubbed
by a shell function, PATH empty so nothing else can run, and ``python``
recording its argument vector instead of starting anything. What the oracle
reports per script: whether bash refused it with a syntax error, and the
argument vectors of every ``python ... -m vllm_*`` start it reached.

The environment is the one a scan assumes: every external command succeeds
(``set -e`` and ``set -u`` are switched off after the script turns them on, so
a missing mount or variable in the test machine does not end the script early),
and nothing is looked up on disk. Nested ``bash -c`` strings run in a subshell
the same way, their own syntax errors reported apart from the outer script's.

Safety: scripts come from generators and fuzzers, so bash runs as ``nobody``
when the tests run as root, in a scratch directory, with CPU, file-size and
process limits, in its own session that is killed when the batch ends.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

# Commands the generated scripts run; each becomes a function that succeeds and
# prints nothing (anything else falls to command_not_found_handle, which forks).
_STUBBED = (
    "s5cmd ./s5cmd azcopy gsutil curl tar mkdir find grep cat date stat hostname rm mv cp "
    "touch flock base64 tee rmdir tr conda chmod ls ln wget pip uname nvidia-smi ray true "
    "/workspace/init_ray.sh /opt/google-cloud-sdk/bin/gcloud text-generation-launcher "
    "deepspeed timeout gcloud"
).split()
_PYTHONS = (
    "python python3 python3.8 python3.9 python3.10 python3.11 python3.12 /usr/bin/python "
    "/usr/bin/python3 /usr/bin/python3.10 /usr/bin/python3.11 /usr/local/bin/python "
    "/usr/local/bin/python3 /opt/conda/bin/python"
).split()

_HARNESS = r"""
# fd 47 holds the caller's pipe open until every process a script started is gone.
exec 45<"$1" 47>&1 1>/dev/null 2>"$2"
__nested_errors=$3
__records=$4
builtin set +o posix
PATH=/nonexistent-bundle-migrate-oracle
HOME='~'
unset BASH_ENV ENV CDPATH
__record() {  # one file per start: concurrent starts (pipelines, &) cannot interleave
    # The server would block: a sixth start means a loop, so stop there.
    (( ++__calls > 5 )) && builtin exit 0
    printf '%s\0' "$@" >"$__records/$__index.$BASHPID.${EPOCHREALTIME/./}.$RANDOM"
}
__python() { __record "$@"; return 0; }
__drain() { [[ -p /dev/stdin ]] || return 0; while read -r -N 4096 __; do :; done; return 0; }
command_not_found_handle() {  # the interpreters an image has (python, python3, python3.N)
    if [[ $1 =~ ^python(3(\.[0-9]+)?)?$ ]]; then __record "$@"; return 0; fi
    return 127
}
__shell() {  # bash -c SCRIPT / sh -c SCRIPT: run the inner script the same way
    local __s
    while (($#)); do
        case $1 in
            -o|+o|-O|+O) shift 2 ;;
            --*) shift ;;
            -*c*) __s=${2-}; break ;;
            -*) shift ;;
            *) return 0 ;;
        esac
    done
    [[ -v __s ]] || return 0
    printf '\036%d\n' "$__index" >>"$__nested_errors"
    ( eval "$__s" ) </dev/null >/dev/null 2>>"$__nested_errors"
    return 0
}
sleep() { [[ $BASHPID == "$__top" ]] || builtin exit 0; return 0; }
nohup() { "$@"; }
env() { while [[ ${1-} == [A-Za-z_]*=* ]]; do export "$1"; shift; done; "$@"; }
kill() { return 0; }
wait() { return 0; }
exec() { if (($#)); then "$@"; builtin exit $?; fi; }
set() {  # errexit and nounset stay off between calls; a failing set under -e still exits
    local __status=0
    [[ ${__errexit-} ]] && builtin set -e
    builtin set "$@" || __status=$?
    case $- in *e*) __errexit=1 ;; *) __errexit= ;; esac
    builtin set +u
    # A failure returns with -e still on, so that the caller exits as bash would
    # (unless the call is tested by && or ||, where set -e spares it).
    (( __status )) || builtin set +e
    return $__status
}
source() { return 0; }
.() { return 0; }
__SHELLS__
__PYTHONS__
__STUBS__
__index=0
while IFS= read -r -d '' __script <&45; do
    printf '\036%d\n' "$__index" >&2
    # Each script in a directory of its own: files one makes cannot change another's run.
    ( cd "d$__index" && __top=$BASHPID && ulimit -t 2 && eval "$__script" ) \
        </dev/null >/dev/null
    ((++__index))
done
"""


def _harness() -> str:
    shells = "\n".join(
        f'{name}() {{ __shell "$@"; }}' for name in ("bash", "sh", "/bin/bash", "/bin/sh")
    )
    pythons = "\n".join(f'{name}() {{ __python "${{FUNCNAME[0]}}" "$@"; }}' for name in _PYTHONS)
    # A stub reads what is piped to it, as tr, cat or tee do: one that returned at once
    # would let `echo x | tr a b` fail under pipefail at random (echo's SIGPIPE).
    stubs = "\n".join(f"{name}() {{ __drain; return 0; }}" for name in _STUBBED)
    return (
        _HARNESS.replace("__SHELLS__", shells)
        .replace("__PYTHONS__", pythons)
        .replace("__STUBS__", stubs)
    )


@dataclass(frozen=True)
class BashRun:
    """What bash did with one script."""

    syntax_error: bool  # bash refused (a line of) the script
    nested_syntax_error: bool  # a nested bash -c string was refused
    pythons: tuple[tuple[str, ...], ...]  # every python argv it reached, name first
    stderr: str = ""  # what bash said about the script (errors end a non-interactive shell)
    nested_stderr: str = ""  # and about the bash -c strings it ran

    @property
    def vllm_starts(self) -> tuple[tuple[str, ...], ...]:
        """The python runs that start the vLLM server (``-m vllm_server|vllm_startup_wrapper``)."""
        return tuple(argv for argv in self.pythons if _module_index(argv) is not None)


def _module_index(argv: Sequence[str]) -> int | None:
    """Index of the module in a python argv that runs ``-m vllm_*``, else None."""
    i = 1
    while i < len(argv):
        word = argv[i]
        if word == "-m":
            if i + 1 < len(argv) and argv[i + 1] in ("vllm_server", "vllm_startup_wrapper"):
                return i + 1
            return None
        if word in ("-mvllm_server", "-mvllm_startup_wrapper"):
            return i
        if word in ("-X", "-W"):
            i += 2
        elif re.fullmatch(r"-[A-Za-z]+", word) and "c" not in word and "m" not in word:
            i += 1
        else:
            return None
    return None


def server_arguments(argv: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """(module, the arguments after it) of a vLLM start's argv."""
    at = _module_index(argv)
    assert at is not None
    module = argv[at].removeprefix("-m")
    return module, tuple(argv[at + 1 :])


def _drop_privileges() -> None:  # runs in the child, before bash
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)


# What bash says when it cannot parse (a line of) the script; the [[ ]] grammar
# has messages of its own.
_SYNTAX_ERROR = re.compile(
    r"eval: line [0-9]+: (?:syntax error|unexpected |conditional binary operator expected"
    r"|expected `\)')"
)


def _sections(path: str) -> dict[int, str]:
    """A stderr file cut at the markers the harness writes before each script."""
    with open(path, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    sections: dict[int, str] = {}
    for section in text.split("\036")[1:]:
        index, _, rest = section.partition("\n")
        if index.isdigit():
            sections[int(index)] = sections.get(int(index), "") + rest
    return sections


def _parse_records(directory: str, count: int, errors: str, nested: str) -> list[BashRun]:
    pythons: list[list[tuple[str, tuple[str, ...]]]] = [[] for _ in range(count)]
    for name in os.listdir(directory):
        index, _, order = name.partition(".")
        with open(os.path.join(directory, name), "rb") as f:
            fields = f.read().split(b"\0")[:-1]
        argv = tuple(v.decode("utf-8", "surrogateescape") for v in fields)
        if index.isdigit() and int(index) < count:
            pythons[int(index)].append((order.split(".")[1], argv))
    stderr, nested_stderr = _sections(errors), _sections(nested)
    return [
        BashRun(
            bool(_SYNTAX_ERROR.search(stderr.get(k, ""))),
            bool(_SYNTAX_ERROR.search(nested_stderr.get(k, ""))),
            tuple(argv for _, argv in sorted(pythons[k])),
            stderr.get(k, ""),
            nested_stderr.get(k, ""),
        )
        for k in range(count)
    ]


def _run_batch(scripts: Sequence[str], timeout_s: float) -> list[BashRun]:
    scratch = tempfile.mkdtemp(prefix="bash-oracle-")
    try:
        os.chmod(scratch, 0o777)
        listing = os.path.join(scratch, ".scripts")
        with open(listing, "wb") as out:
            for script in scripts:
                out.write(script.encode("utf-8", "surrogateescape") + b"\0")
        harness = os.path.join(scratch, ".harness.bash")
        with open(harness, "w", encoding="utf-8") as out:
            out.write(_harness())
        os.chmod(scratch, 0o777)
        for path in (listing, harness):
            os.chmod(path, 0o644)
        root = os.geteuid() == 0
        errors = os.path.join(scratch, ".errors")
        nested = os.path.join(scratch, ".nested-errors")
        for path in (errors, nested):
            open(path, "wb").close()
            os.chmod(path, 0o666)
        records = os.path.join(scratch, ".records")
        for directory in [records] + [os.path.join(scratch, f"d{k}") for k in range(len(scripts))]:
            os.mkdir(directory)
            os.chmod(directory, 0o777)
        proc = subprocess.Popen(
            ["bash", "--norc", "--noprofile", harness, listing, errors, nested, records],
            cwd=scratch,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"},
            start_new_session=True,
            preexec_fn=_drop_privileges if root else None,
        )
        try:
            proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            # Said as what it is: the scripts it did not reach would otherwise read as
            # scripts that never start the server.
            raise AssertionError(
                f"bash did not run {len(scripts)} scripts within {timeout_s:.0f} s "
                "(each has 2 s of CPU; is the machine overloaded?)"
            ) from None
        finally:
            # Whatever a script left behind in the background ends with the batch.
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        runs = _parse_records(records, len(scripts), errors, nested)
        return runs
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run_bash(scripts: Sequence[str], workers: int = 2, batch: int = 4000) -> list[BashRun]:
    """What bash does with each script, in order. Scripts may not hold NUL characters."""
    for script in scripts:
        if "\0" in script:
            raise ValueError("a bash -c string cannot hold a NUL character")
    batch = max(1, min(batch, -(-len(scripts) // workers)))
    chunks = [scripts[i : i + batch] for i in range(0, len(scripts), batch)]
    # Generous: a script has 2 s of CPU (ulimit -t), and a loaded machine stretches wall time.
    timeout = 300 + 0.25 * batch
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda chunk: _run_batch(chunk, timeout), chunks))
    return [run for chunk in results for run in chunk]


# Comparing the tool's reading with what bash passed ---------------------------------

# A reading is a list of expected words: a literal text, or a pattern for a word an
# expansion makes: ("one", prefix) one word starting with prefix, ("any", "") any
# number of words (an unquoted expansion: bash splits it, or drops it when empty).
Expected = tuple[str, str]


def _expected_word(raw: str, prefix: str = "") -> Expected:
    from migrate.core import shellwords

    info = shellwords.info(raw)
    if info.text is not None:
        return ("lit", prefix + info.text)
    if info.splits:
        return ("any", "")
    return ("one", prefix + info.prefix)


def reading(invocation: object) -> list[Expected]:
    """The words the tool says the server receives after the module."""
    out: list[Expected] = [_expected_word(raw) for raw in invocation.positionals]  # type: ignore[attr-defined]
    for arg in invocation.args:  # type: ignore[attr-defined]
        values = list(arg.values)
        if arg.inline:
            out.append(_expected_word(values.pop(0), arg.flag + "="))
        else:
            out.append(("lit", arg.flag))
        out.extend(_expected_word(value) for value in values)
    return out


def matches(expected: Sequence[Expected], argv: Sequence[str]) -> bool:
    """Whether bash's words fit the reading (wildcards for what expansions make)."""
    memo: dict[tuple[int, int], bool] = {}

    def fit(i: int, j: int) -> bool:
        if (i, j) in memo:
            return memo[(i, j)]
        if i == len(expected):
            result = j == len(argv)
        else:
            kind, text = expected[i]
            if kind == "any":
                result = any(fit(i + 1, k) for k in range(j, len(argv) + 1))
            elif j == len(argv):
                result = False
            elif kind == "lit":
                result = argv[j] == text and fit(i + 1, j + 1)
            else:
                result = argv[j].startswith(text) and fit(i + 1, j + 1)
        memo[(i, j)] = result
        return result

    return fit(0, 0)

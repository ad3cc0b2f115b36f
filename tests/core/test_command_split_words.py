"""Reading a plain vLLM command by splitting it at spaces reads it as the word reader does.

command_locate._split_words takes the words of most servers' commands (ordinary
words and quoted parts without blanks) from ``str.split``; anything else goes
to the word reader. Every script here is read both ways and must give the same
invocation (words, spans, arguments) or the same refusal.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from hypothesis import example, given, settings
from hypothesis import strategies as st

from migrate.core import command_locate, command_reading, shell
from migrate.core.command_model import CommandError
from tests.support import script_fuzz


@contextmanager
def word_reader_only() -> Iterator[None]:
    split = command_locate._split_words
    command_locate._split_words = lambda text, command: ([], [])
    try:
        yield
    finally:
        command_locate._split_words = split


def read(script: str) -> object:
    try:
        return command_reading._parse(script)
    except CommandError as err:
        return (err.kind, err.reason)


def both_ways(script: str) -> tuple[object, object]:
    command_reading._setups.clear()
    command_reading._tails.clear()
    fast = read(script)
    with word_reader_only():
        command_reading._setups.clear()
        command_reading._tails.clear()
        slow = read(script)
    return fast, slow


# Pieces of words: the plain and quoted text the fast path takes, and what it must
# leave to the word reader (blanks in quotes, one quote inside the other, escapes,
# expansions, tabs, braces, redirections, unpaired quotes).
_PIECE = st.sampled_from(
    [
        "a",
        "x-1",
        "model_files",
        "0.95",
        "8192",
        "=",
        "--",
        "-",
        "/mnt/m",
        "::",
        "*",
        "#",
        '"',
        '""',
        '"::"',
        '"a b"',
        '"a=b"',
        '"--enforce-eager"',
        "'x'",
        "''",
        "'::'",
        "'a b'",
        "'--enforce-eager'",
        "'a\"b'",
        '"it\'s"',
        "\\ ",
        "$X",
        "${X}",
        "{a,b}",
        "\t",
        ">",
        "é",
        "\u00a0",
    ]
)
_WORD = st.one_of(
    st.sampled_from(
        [
            "--enforce-eager",
            "--gpu-memory-utilization",
            "--gpu-memory-utilization=0.95",
            '--gpu-memory-utilization="0.9"',
            "--model",
            '--host "::"',
            "--max-model-len",
            "--enforce_eager",
            "--port=",
            '"--port"=5005',
            "--x=a=b",
        ]
    ),
    st.lists(_PIECE, min_size=1, max_size=4).map("".join),
)
_PROGRAM = st.sampled_from(
    [
        "python -m vllm_server",
        'python "-m" vllm_server',
        'python -m "vllm_server"',
        '"python" -m vllm_startup_wrapper',
        "python3 -u -m vllm_server",
        "exec python -m vllm_server",
        "env A=1 python -m vllm_server",
        "nohup python3.11 -m vllm_server",
    ]
)
_SEPARATOR = st.sampled_from([" ", " ", " ", "  ", "\t"])
_SETUP = st.sampled_from(["", "cd /w;", "set -e\n", 'echo "x y" && ', "./s5cmd cp a b;"])


@st.composite
def commands(draw: st.DrawFn) -> str:
    words = draw(st.lists(_WORD, max_size=10))
    line = draw(_PROGRAM)
    for word in words:
        line += draw(_SEPARATOR) + word
    return draw(_SETUP) + line + draw(st.sampled_from(["", ";", "\n", " & wait"]))


@settings(max_examples=1500, deadline=None)
@given(commands())
@example('python -m vllm_server --host "::" --enforce-eager --gpu-memory-utilization 0.9')
@example('python -m vllm_server --served-model-name "a b" --enforce-eager')
@example('python -m vllm_server --x="a" "--enforce-eager"')
@example('python -m vllm_server --port= --enforce-eager ""')
def test_split_words_read_as_the_word_reader_reads(script: str) -> None:
    fast, slow = both_ways(script)
    assert fast == slow


def test_the_fleets_commands_read_alike_both_ways() -> None:
    taken = 0
    split = command_locate._split_words

    def counting(text: str, command: shell.Command) -> tuple[list, list]:
        nonlocal taken
        found = split(text, command)
        taken += bool(found[0])
        return found

    scripts = script_fuzz.fleet_scripts(1500, seed=23, vllm_only=True)
    command_locate._split_words = counting
    try:
        fast = [read(s) for s in scripts]
    finally:
        command_locate._split_words = split
    with word_reader_only():
        slow = [read(s) for s in scripts]
    assert fast == slow
    # The fast path is really taken, for most servers.
    assert taken > len(scripts) / 2


def test_what_the_split_gives_for_a_plain_command() -> None:
    script = "cd /w;python -m vllm_server --host \"::\" --x='' --enforce-eager"
    parsed = shell.parse(script)
    spans, texts = command_locate._split_words(script, parsed.commands[1])
    assert texts == ["python", "-m", "vllm_server", "--host", "::", "--x=", "--enforce-eager"]
    assert [script[a:b] for a, b in spans][4:6] == ['"::"', "--x=''"]
    for unsplittable in (
        '"a b"',
        "'a b'",
        "'a\"b'",
        "$X",
        "a\\ b",
        "{a,b}",
        "a\tb",
        "a  b",
        'a"b c"d',
    ):
        other = f"python -m vllm_server --m {unsplittable}"
        assert command_locate._split_words(other, shell.parse(other).commands[0]) == ([], [])

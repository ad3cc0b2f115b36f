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
from migrate.core.shellwords import unquote
from tests.support import script_fuzz


@contextmanager
def word_reader_only() -> Iterator[None]:
    """Every script read by the general reader, and every word by the word reader."""
    split, ordinary = command_locate._split_words, command_locate._ordinary_words
    plain = command_reading._find_plain
    command_locate._split_words = lambda text, command: ([], [])
    command_locate._ordinary_words = lambda text, start: None
    command_reading._find_plain = lambda text, start: None
    try:
        yield
    finally:
        command_locate._split_words = split
        command_locate._ordinary_words = ordinary
        command_reading._find_plain = plain


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
    split, ordinary = command_locate._split_words, command_locate._ordinary_words

    def counting(text: str, command: shell.Command) -> tuple[list, list]:
        nonlocal taken
        found = split(text, command)
        taken += bool(found[0])
        return found

    def counting_ordinary(text: str, start: int) -> object:
        nonlocal taken
        found = ordinary(text, start)
        taken += found is not None
        return found

    scripts = script_fuzz.fleet_scripts(1500, seed=23, vllm_only=True)
    command_locate._split_words = counting
    command_locate._ordinary_words = counting_ordinary
    try:
        fast = [read(s) for s in scripts]
    finally:
        command_locate._split_words = split
        command_locate._ordinary_words = ordinary
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


@settings(max_examples=3000, deadline=None)
@given(commands())
@example("cd /w;python -m vllm_server --host \"::\" --x='' --enforce-eager")
@example("cd /w;A=1 python -m vllm_server")
@example('cd /w;"A=1" python -m vllm_server')
@example("cd /w;python -m vllm_server ''")
@example("a\\\nb;python -m vllm_server --x 1")
def test_ordinary_words_are_what_the_plain_command_reading_and_the_split_give(
    script: str,
) -> None:
    """command_locate._ordinary_words, one simple match for the plainest servers, gives
    what shell.lone_plain_command and _split_words give, or leaves the text to them."""
    for cut in script_fuzz.cuts(script):
        read = command_locate._ordinary_words(script, cut)
        if read is None:
            continue
        command = shell.lone_plain_command(script, cut)
        assert command is not None, (script, cut)
        spans, texts = command_locate._split_words(script, command)
        assert read == (command, tuple(spans), texts), (script, cut)


def test_the_fleets_servers_take_the_shortcuts_and_read_as_the_parser_reads() -> None:
    # What the reader's shortcuts are for: the server after a download step. Fewer
    # taken would not be wrong, only slow.
    scripts = script_fuzz.fleet_scripts(1500, seed=23, vllm_only=True)
    lone = ordinary = 0
    for script in scripts:
        cut = script_fuzz.server_cut(script)
        command = shell.lone_plain_command(script, cut)
        if command is None:
            continue
        lone += 1
        assert shell.parse(script, cut).commands == (command,)
        read = command_locate._ordinary_words(script, cut)
        if read is not None:
            ordinary += 1
            assert read[0] == command
            assert read[2] == [unquote(script[a:b]) for a, b in read[1]]
    assert lone > len(scripts) / 3
    assert ordinary > len(scripts) / 4

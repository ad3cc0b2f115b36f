"""Reading top-level plain commands by one match each reads them as the whole grammar does.

shell_parser._Parser.plain_commands records the leading run of ordinary commands
(``set -e;s5cmd cp ...;python -m vllm_server ...``) without going through
compound_list, and_or, pipeline and command; anything else stops it, and the
grammar goes on from there. Every script here is read both ways and must give
the same commands, pipelines and syntax errors.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

from hypothesis import example, given, settings
from hypothesis import strategies as st

from migrate.core import shell
from migrate.core.shell_parser import _Parser
from tests.support import script_fuzz


@contextmanager
def grammar_only() -> Iterator[None]:
    fast = _Parser.plain_commands
    _Parser.plain_commands = lambda self, i: i  # type: ignore[method-assign]
    try:
        yield
    finally:
        _Parser.plain_commands = fast  # type: ignore[method-assign]


def read(script: str) -> object:
    try:
        parsed = shell.parse(script)
    except shell.ShellSyntaxError as err:
        return str(err)
    return parsed.commands, parsed.pipelines


def both_ways(script: str) -> tuple[object, object]:
    fast = read(script)
    with grammar_only():
        slow = read(script)
    return fast, slow


# Commands: ordinary ones the fast path takes, and what it must leave to the grammar
# (reserved words, assignments, subscripts, redirections, substitutions, subshells,
# comments, quotes holding separators, unclosed quotes).
_COMMAND = st.sampled_from(
    [
        "set -euo pipefail",
        "./s5cmd --numworkers 512 cp --include \"*.json\" 's3://m/*' model_files",
        'python -m vllm_server --model model_files --host "::" --enforce-eager',
        "cd /w",
        "echo 'a;b'",
        'echo "a;b" "$X"',
        "echo a\\;b",
        "export A=1",
        "A=1 python x",
        "a[1]=x",
        "a[1] b",
        "x=",
        "[ -f a ]",
        "test -f a",
        "if true; then echo y; fi",
        "{ echo a; }",
        "( cd x )",
        "time sleep 1",
        "! false",
        "then",
        "fi",
        "done",
        "}",
        "[[ -f a ]]",
        "function f { :; }",
        "f() { :; }",
        "echo >log",
        "echo 2>&1",
        "cat <<EOF\nbody;\nEOF",
        "echo $(date; true)",
        "echo `date`",
        "echo #comment",
        "# only a comment",
        "echo 'unclosed",
        'echo "unclosed',
        "echo é \u00a0",
        "iffy x",
        "timer 1",
        "echo a\\\nb",
        "",
    ]
)
_SEPARATOR = st.sampled_from(
    [";", "; ", " ;", "\n", "\n\n", " \n ", ";;", ";&", "&", " & ", "&&", " || ", "|", " | ", "\t;"]
)


@st.composite
def scripts(draw: st.DrawFn) -> str:
    parts = draw(st.lists(_COMMAND, min_size=1, max_size=6))
    script = draw(st.sampled_from(["", " ", "\n", "\t"])) + parts[0]
    for part in parts[1:]:
        script += draw(_SEPARATOR) + part
    return script + draw(st.sampled_from(["", ";", "\n", " ", ";;", "&", ")", " # end"]))


@settings(max_examples=3000, deadline=None)
@given(scripts())
@example("set -e;s5cmd cp a b;python -m vllm_server --x 1")
@example("a;;b")
@example("a;")
@example("a;\n;b")
@example(";a")
@example("a)")
@example("a\\\nb;c")
@example("A=1;b")
def test_plain_commands_read_as_the_grammar_reads(script: str) -> None:
    fast, slow = both_ways(script)
    assert fast == slow


def test_the_fleets_scripts_read_alike_both_ways() -> None:
    scripts = script_fuzz.fleet_scripts(1500, seed=29, vllm_only=False)
    fast = [read(s) for s in scripts]
    with grammar_only():
        slow = [read(s) for s in scripts]
    assert fast == slow


def test_fuzzed_scripts_and_their_mutations_read_alike_both_ways() -> None:
    # Every shell construct around a start (script_fuzz), then damaged as a fuzzer
    # damages it: the fast path must stop wherever the grammar would read otherwise.
    rng = random.Random(31)
    scripts = []
    for _ in range(4000):
        text = script_fuzz.script(rng)
        scripts.append(text)
        scripts.append(script_fuzz.mutate(rng, text))
    fast = [read(s) for s in scripts]
    with grammar_only():
        slow = [read(s) for s in scripts]
    assert fast == slow


def test_how_far_the_fast_path_reads() -> None:
    def reach(script: str) -> int:
        return _Parser(script).plain_commands(0)

    script = 'set -e;./s5cmd cp "*.json" m ;python -m vllm_server --host "::"'
    assert reach(script) == len(script)
    assert reach("a;b\nc;") == len("a;b\nc;")
    # It stops before what it does not take, the separator it is unsure of included.
    assert reach("a;b | c") == len("a;")
    assert reach("a;if x; then y; fi") == len("a;")
    assert reach("a;A=1 b") == len("a;")
    assert reach("a;b;;c") == len("a;")
    assert reach("a;b # c") == len("a;")
    assert reach("a;b\\\nc") == 0  # a line continuation anywhere: the grammar reads it all
    parsed = shell.parse("a;b x")
    assert parsed.commands[1] == shell.Command(2, 5, 2, 3, 0, 2, 5, False, True)
    assert parsed.pipelines == ((0, 1), (2, 5))


@settings(max_examples=3000, deadline=None)
@given(scripts())
@example("set -e;python -m vllm_server --x 1")
@example("a;b;")
@example("a;b\n")
@example("a;b \t")
@example("a;b\n\n")
@example("a;b\\\nc")
@example("a;A=1 b")
@example("a;b | c")
def test_a_lone_plain_command_is_what_the_grammar_reads_there(script: str) -> None:
    for cut in script_fuzz.cuts(script):
        lone = shell.lone_plain_command(script, cut)
        if lone is None:
            continue
        # Taken only when the grammar reads that one command and nothing else after it.
        with grammar_only():
            parsed = shell.parse(script, cut)
        assert parsed.commands == (lone,)
        assert parsed.pipelines == ((lone.start, lone.end),)


def test_what_is_no_lone_plain_command() -> None:
    assert shell.lone_plain_command("a;python x", 2) == shell.Command(
        2, 10, 2, 8, 0, 2, 10, False, True
    )
    assert shell.lone_plain_command("a;python x;", 2) is not None
    assert shell.lone_plain_command("a;python x;b", 2) is None  # another command follows
    assert shell.lone_plain_command("a;python x | tee", 2) is None  # a pipeline
    assert shell.lone_plain_command("a;python x >log", 2) is None  # a redirection
    assert shell.lone_plain_command("a;python x &", 2) is None  # in the background
    assert shell.lone_plain_command("a;A=1 python x", 2) is None  # an assignment first
    assert shell.lone_plain_command("a\\\nb;python x", 5) is None  # a line continuation
    assert shell.lone_plain_command("a;python \\\n x", 2) is None
    assert shell.lone_plain_command("a;python x # c", 2) is None  # a comment

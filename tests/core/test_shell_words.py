"""The words of a command parse() reported: the shortcut for plain ones reads as bash does."""

from __future__ import annotations

import random

from migrate.core import shell
from migrate.sandbox import synth
from migrate.sandbox.synth.commands import build_command
from tests.support import script_fuzz


def _scripts(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    out = [script_fuzz.script(rng) for _ in range(count // 4)]
    while len(out) < count:
        steps = [rng.choice(script_fuzz._DOWNLOADS) for _ in range(rng.randint(0, 2))]
        out.append(script_fuzz.mutate(rng, ";".join([*steps, script_fuzz.invocation(rng)])))
    commands = (build_command(spec) for spec in synth.random_fleet(400, seed))
    out += [command[2] for command in commands if command and len(command) == 3]
    return out


def test_command_words_equal_a_fresh_reading_of_every_command() -> None:
    plain = read = 0
    for script in _scripts(11, 6000):
        try:
            parsed = shell.parse(script)
        except shell.ShellSyntaxError:
            continue
        for command in parsed.commands:
            assert shell.command_words(script, command) == shell.read_simple_command(
                script, command.start
            ), (script, command)
            plain += command.plain
            read += not command.plain
    # Both ways are exercised: the shortcut and the reading it stands for.
    assert plain > 1000 and read > 1000


GLUED = [
    # A line continuation right after a word joins what follows to it: "a\<newline>#x"
    # is the word "a#x", not "a" and a comment (found by hypothesis: the edit's
    # reading and the parse's disagreed on where the command ended).
    "true a\\\n#x; python -m vllm_server --port 1 --enforce-eager",
    "true <in a\\\n#x; python -m vllm_server --port 1",
    "python -m vllm_server --port 1 -m vllm_servera\\\n#",
    "python -m vllm_server --port 1 --served-model-name m\\\n#1 --enforce-eager",
    "python -m vllm_server --port 1 --served-model-name m \\\n#1 --enforce-eager",
]


def test_a_line_continuation_glued_to_a_word_joins_as_bash_does() -> None:
    from migrate.core import command as cmd
    from tests.support.bash_oracle import run_bash

    runs = run_bash(GLUED)
    for script, run in zip(GLUED, runs, strict=True):
        parsed = shell.parse(script)
        for command in parsed.commands:
            words = shell.read_simple_command(script, command.start).words
            assert command.end == words[-1][1], (script, command)
        inv = cmd.parse_script(script)
        (argv,) = run.vllm_starts
        assert inv.enforce_eager == ("--enforce-eager" in argv), script
        edited = cmd.set_enforce_eager(inv, not inv.enforce_eager)
        (after,) = run_bash([edited])[0].vllm_starts
        assert ("--enforce-eager" in after) != ("--enforce-eager" in argv), edited
        assert [w for w in after if w != "--enforce-eager"] == [
            w for w in argv if w != "--enforce-eager"
        ]

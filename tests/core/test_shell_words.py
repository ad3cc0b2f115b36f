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

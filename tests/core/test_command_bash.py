"""Bash as the oracle: the tool reads what bash passes to the vLLM server, before and after edits.

Every script of every generation (the synthetic fleet, model engine's model-cache
program included, and the hand-written cases) and tens of thousands of fuzzed
and mutated scripts run under real bash with external commands stubbed
(tests/support/bash_oracle.py). For each, the tool's reading must agree:

* where the tool reads an invocation, bash accepts the whole script and starts
  the server with exactly those arguments (an expansion may stand for any text);
* where bash refuses the script with a syntax error, so does the tool;
* a script bash would not bring to the server is a skip, with a reason;
* every edit the tool makes starts the server with exactly one
  ``--enforce-eager`` more or less, every other argument as before.

The tool may refuse more than bash (indirect arguments, an ambiguous flag, a
second mention of the module, a fault on a later line bash never reads): that
costs an endpoint its edit, never a wrong edit. Each such refusal is of a kind
listed here, and the counts are printed.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import pytest

from migrate.core import command as cmd
from migrate.core import shell
from migrate.sandbox import synth
from tests.core.test_classify_facts import CASES, REAL_WORLD
from tests.support import script_fuzz
from tests.support.bash_oracle import BashRun, matches, reading, run_bash, server_arguments

FUZZED = 6_000
MUTATED = 6_000
# Bash ended the script early on an error the tool does not model statically
# (bash exits a non-interactive shell on these); the start is then not reached.
FATAL_AT_RUN_TIME = (
    "bad substitution",
    "invalid option",
    "ambiguous redirect",
    "CPU time limit",  # a loop that never ends: the start is never reached either
    "Killed",  # the same, ended by the oracle's CPU limit
    "error token is",  # an arithmetic expansion that does not compute
)
# A redirection that copies a descriptor the script never opened: bash refuses it
# at run time, and the message may land in another script's section when async.
_DUP_OF_UNOPENED = re.compile(r"[<>]&(?:[3-9]|[0-9]{2,})")
# Interpreters the oracle's environment has; another path is a file bash cannot find there.
ORACLE_PYTHONS = {"python", "python3", "python3.10", "/usr/bin/python3.10"}


def _generation_scripts() -> Iterator[str]:
    """Every generation as the synthetic fleet renders it, every model-cache variant too."""
    for spec in synth.random_fleet(1500, seed=7):
        for version in (*spec.superseded, spec):
            if version.is_vllm:
                yield synth.build_script(version)
                worker = synth.build_worker_command(version)
                if worker is not None:
                    yield worker[2]
    for generation in "GH":
        spec = synth.make_spec(generation, model_name="llama-3-1-70b-instruct")
        for storage in ("s3", "azure", "gcs"):
            for module in ("vllm_server", "vllm_startup_wrapper"):
                variant = replace(spec, storage=storage, module=module, model_cache_enabled=True)
                yield synth.build_script(variant)


def _hand_written() -> Iterator[str]:
    for case in CASES:
        if case.script is not None:
            yield case.script
    yield from REAL_WORLD.values()


@dataclass
class Verdict:
    """The tool's reading of one script, and what bash did with it."""

    script: str
    ours: cmd.VllmInvocation | cmd.CommandError
    bash: BashRun


def _read(script: str) -> cmd.VllmInvocation | cmd.CommandError:
    try:
        return cmd.parse_script(script)
    except cmd.CommandError as err:
        return err


def _stopped_early(run: BashRun) -> bool:
    return any(fault in run.stderr for fault in FATAL_AT_RUN_TIME)


def _judge(v: Verdict, tally: Counter[str]) -> str | None:
    """None when the tool and bash agree (or the tool rightly refuses), else what is wrong."""
    ours, bash = v.ours, v.bash
    starts = bash.vllm_starts
    if isinstance(ours, cmd.VllmInvocation):
        if bash.syntax_error:
            return "the tool read a script bash refuses"
        if not starts:
            context = _context(ours)
            if context & (shell.CONDITIONAL | shell.IN_COMPOUND | shell.AFTER_AND):
                tally["read; bash took another branch"] += 1
                return None
            if _stopped_early(bash):
                tally["read; bash stopped at a run-time error first"] += 1
                return None
            words = [ours.script[a:b] for a, b in ours.word_spans]
            interpreter = next(w for w in words if "python" in w)
            if "/" in interpreter and interpreter not in ORACLE_PYTHONS:
                tally["read; interpreter path absent in the oracle"] += 1
                return None
            said = bash.stderr + bash.nested_stderr
            if "No such file" in said and re.search("[<>]", ours.script[ours.start : ours.end]):
                tally["read; a file it redirects is absent in the oracle"] += 1
                return None
            if "Bad file descriptor" in said or _DUP_OF_UNOPENED.search(
                ours.script[ours.start : ours.end]
            ):
                tally["read; it duplicates a descriptor that is not open"] += 1
                return None
            return "the tool read an invocation bash never starts"
        if len(starts) > 1 and not _context(ours) & shell.IN_COMPOUND:
            return f"bash started the server {len(starts)} times"
        expected = reading(ours)
        for argv in starts:
            module, arguments = server_arguments(argv)
            if module != ours.module or not matches(expected, arguments):
                return f"bash passed {arguments!r}, the tool read {expected!r}"
        tally["read, and bash agrees"] += 1
        return None
    kind = ours.kind
    if bash.syntax_error and kind != cmd.UNBALANCED_QUOTING:
        return f"bash refuses the script but the tool said {kind}: {ours.reason}"
    if kind == cmd.UNBALANCED_QUOTING:
        nested = "nested" in ours.reason
        if (bash.nested_syntax_error if nested else bash.syntax_error) or _stopped_early(bash):
            tally["refused: not valid bash"] += 1
            return None
        if not starts:
            # Bash starts no server either (it may even stop silently, as it does on
            # some malformed arithmetic); refusing costs nothing.
            tally["refused: not valid bash; bash starts nothing"] += 1
            return None
        at = re.search(r"at offset ([0-9]+)", ours.reason)
        late = at is not None and _has_start(v.script[: int(at.group(1))])
        if (late or nested or "here-document inside" in ours.reason) and "\n" in v.script:
            # Bash runs a script line by line, and the server never returns: a fault
            # on a later line is never read. The tool refuses the script anyway.
            tally["refused: a fault after the start, which bash never reads"] += 1
            return None
        return f"the tool calls valid bash invalid: {ours.reason}"
    if kind == cmd.NO_VLLM_INVOCATION and starts:
        allowed = ("shell function", "substitution", "backtick")
        if any(word in ours.reason for word in allowed):
            tally["refused: start in a function or substitution"] += 1
            return None
        return f"bash starts the server but the tool found none: {ours.reason}"
    tally[f"refused: {kind}"] += 1
    return None


def _has_start(text: str) -> bool:
    return bool(re.search(r"-m\s*vllm_", text))


def _context(invocation: cmd.VllmInvocation) -> int:
    parsed = shell.parse(invocation.script)
    first_word = invocation.word_spans[0][0]
    around = [c for c in parsed.commands if c.start <= first_word < c.end]
    return min(around, key=lambda c: c.end - c.start).context if around else 0


def _same(a: Sequence[str | None], b: Sequence[str | None]) -> bool:
    """Equal word for word, None matching any word."""
    return len(a) == len(b) and all(
        x is None or y is None or x == y for x, y in zip(a, b, strict=True)
    )


def _check_edits(verdicts: list[Verdict], tally: Counter[str]) -> list[str]:
    """Each edit, run under bash: one --enforce-eager more or less, nothing else changed."""
    edits: list[tuple[Verdict, bool, str]] = []
    for v in verdicts:
        if not isinstance(v.ours, cmd.VllmInvocation) or not v.bash.vllm_starts:
            continue
        on = not v.ours.enforce_eager
        try:
            edited = cmd.set_enforce_eager(v.ours, on)
        except cmd.CommandError as err:
            assert err.kind in cmd.KINDS
            tally["edit refused"] += 1
            continue
        if on:
            assert len(edited) - len(v.script) == len(" --enforce-eager")
        else:
            # One token goes, however it is spelled ('--enforce-eager', \--enforce-eager).
            flag = v.ours.get("--enforce-eager")
            assert flag is not None
            assert len(v.script) - len(edited) in (flag.end - flag.start, flag.end - flag.start + 1)
        edits.append((v, on, edited))
    runs = run_bash([edited for _, _, edited in edits])
    problems = []
    for (v, on, edited), after in zip(edits, runs, strict=True):
        # A loop may start the server several times: the same arguments each time.
        before = set(map(server_arguments, v.bash.vllm_starts))
        now = set(map(server_arguments, after.vllm_starts))
        if after.syntax_error or len(now) != 1 or len(before) != 1:
            problems.append(f"the edit broke the script: {edited!r}")
            continue
        (module, old), (new_module, new) = before.pop(), now.pop()
        # Words an expansion makes ($$, $RANDOM) may differ between two runs: where
        # the tool's reading lines up word for word with bash's, leave them out.
        expected = reading(v.ours)
        masked: tuple[str | None, ...] = old
        if len(expected) == len(old):
            masked = tuple(
                w if kind == "lit" else None for w, (kind, _) in zip(old, expected, strict=True)
            )
        longer, shorter = (new, masked) if on else (masked, new)
        gone = [
            i
            for i in range(len(longer))
            if longer[i] == "--enforce-eager" and _same(longer[:i] + longer[i + 1 :], shorter)
        ]
        if new_module != module or not gone:
            problems.append(f"bash reads the edit as {new!r}, before {old!r}: {edited!r}")
        elif new.count("--enforce-eager") != old.count("--enforce-eager") + (1 if on else -1):
            problems.append(f"--enforce-eager survived the removal: {edited!r}")
        else:
            tally["edits bash confirms"] += 1
    return problems


def _differential(scripts: list[str], label: str) -> Counter[str]:
    runs = run_bash(scripts)
    tally: Counter[str] = Counter()
    verdicts = [Verdict(s, _read(s), run) for s, run in zip(scripts, runs, strict=True)]
    problems = [(v.script, p) for v in verdicts if (p := _judge(v, tally)) is not None]
    problems += [("(edit)", p) for p in _check_edits(verdicts, tally)]
    print(f"\n{label}: {len(scripts)} scripts", dict(sorted(tally.items())))
    assert not problems, "\n".join(f"{p}\n    {s!r}" for s, p in problems[:10])
    return tally


def test_every_generation_reads_as_bash_runs_it() -> None:
    scripts = list(dict.fromkeys([*_generation_scripts(), *_hand_written()]))
    tally = _differential(scripts, "generations")
    assert tally["read, and bash agrees"] > 1000
    assert tally["edits bash confirms"] > 1000


def _fuzzed(count: int, seed: int, mutate: bool) -> list[str]:
    rng = random.Random(seed)
    scripts: list[str] = []
    while len(scripts) < count:
        text = script_fuzz.script(rng)
        if mutate:
            text = script_fuzz.mutate(rng, text)
        if "\0" not in text:
            scripts.append(text)
    return scripts


@pytest.mark.parametrize("mutate", [False, True], ids=["fuzzed", "mutated"])
def test_fuzzed_scripts_read_as_bash_runs_them(mutate: bool) -> None:
    count = MUTATED if mutate else FUZZED
    scripts = _fuzzed(count, seed=101 + mutate, mutate=mutate)
    tally = _differential(scripts, "mutated" if mutate else "fuzzed")
    # The fuzzer reaches every verdict that matters, not only the easy one.
    assert tally["read, and bash agrees"] > count // 4
    assert tally["refused: not valid bash"] > 0
    assert tally[f"refused: {cmd.INDIRECT_ARGUMENTS}"] > 0
    assert tally["edits bash confirms"] > count // 5

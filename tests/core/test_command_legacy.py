"""The new reader against the previous one, wherever the previous one succeeded.

The previous reader (kept frozen in tests/support/legacy) is the baseline every
classification was checked against. On every generation and on 100,000 random
mutations the new one must agree with it wherever it succeeded: the same
module, flag, utilization and arguments, and byte-identical edits. The only
differences allowed are the ones the rewrite is for, each checked:

* brackets and braces: the old reader treated {...}, [...] and (...) as
  quoting; bash does not (its word splitting is checked by the bash oracle);
* arguments made by expansions, now refused as indirect-arguments;
* a carriage return glued to the utilization (now read as vLLM reads it) or
  to the flag (now refused: vLLM would reject it);
* starts bash never reaches (after exit, exec, a failing set -e; behind a
  redirection bash cannot make), now refused with that reason;
* scripts bash refuses, which the old reader accepted: confirmed by running
  them under bash;
* an edit the old reader's verification refused, which the new one makes
  (the edit itself is checked under bash by test_command_bash).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from decimal import Decimal

import pytest

from migrate.core import command as cmd
from migrate.sandbox import synth
from tests.support import script_fuzz
from tests.support.bash_oracle import run_bash
from tests.support.legacy import command as legacy

MUTATIONS = 100_000
WORKERS = 2

_GROUPING = frozenset("{[(")
_EXPANDING = frozenset("$`{")
_NOT_A_COMMAND = re.compile(
    r"(?:^|[ \t])(?:if|then|else|elif|do|while|until|time|!)[ \t]+(?:\S+=\S*[ \t]+)*$|<<"
)
# "2>& -x": bash takes the "-" alone (close the descriptor) and passes "-x" on.
_CLOSE_THEN_WORD = re.compile(r"[<>]&[ \t]*-")
UNREACHED = (
    "never reaches",
    "redirection of the vLLM start",
    "shell function",
    "substitution",
    "backtick",
)


def _texts(inv: legacy.VllmInvocation | cmd.VllmInvocation) -> list[tuple[str, tuple[str, ...]]]:
    return [(arg.flag, arg.texts()) for arg in inv.args]


def _edit(module: object, inv: object, on: bool) -> str | None:
    try:
        return module.set_enforce_eager(inv, on)  # type: ignore[attr-defined]
    except module.CommandError:  # type: ignore[attr-defined]
        return None


def compare(script: str) -> str:
    """How the two readers relate on one script: a category, or "MISMATCH: ..." when wrong."""
    try:
        old = legacy.parse_script(script)
    except legacy.CommandError:
        return "old refused"
    span = old.script[old.start : old.end]
    try:
        new = cmd.parse_script(script)
    except cmd.CommandError as err:
        return _explain_refusal(err, old, span)
    if new.module != old.module:
        return f"MISMATCH: module {new.module} != {old.module}"
    if _GROUPING & set(span):
        return "both read; the old one grouped brackets"
    if _CLOSE_THEN_WORD.search(span):
        return "both read; the old one took '>&-word' for one redirection"
    if new.enforce_eager != old.enforce_eager:
        return "MISMATCH: enforce_eager"
    if new.gpu_memory_utilization != old.gpu_memory_utilization:
        text = old._single_text(cmd.GPU_MEMORY_UTILIZATION) or ""
        if text.strip() == text or new.gpu_memory_utilization != Decimal(text.strip()):
            return "MISMATCH: utilization"
        verdict = "both read; utilization with a carriage return now read as vLLM does"
    else:
        verdict = "both read alike"
    if _texts(new) != _texts(old) or new.positionals != old.positionals:
        return "MISMATCH: arguments"
    for on in (True, False):
        old_edit, new_edit = _edit(legacy, old, on), _edit(cmd, new, on)
        if old_edit is not None and new_edit != old_edit:
            return f"MISMATCH: edit to {on} gives {new_edit!r}, was {old_edit!r}"
        if old_edit is None and new_edit is not None:
            verdict = "both read; the new one makes an edit the old one refused"
    return verdict


def _explain_refusal(err: cmd.CommandError, old: legacy.VllmInvocation, span: str) -> str:
    kind = err.kind
    if kind == cmd.INDIRECT_ARGUMENTS and _EXPANDING & set(span):
        return "now refused: indirect arguments"
    grouped = _GROUPING & set(span)
    if kind == cmd.AMBIGUOUS_ENFORCE_EAGER and ("whitespace" in err.reason or grouped):
        return "now refused: a flag the old reader did not see"
    if kind == cmd.NO_VLLM_INVOCATION and any(why in err.reason for why in UNREACHED):
        return "now refused: bash never reaches the start"
    before = old.script[: old.start + span.find("python")]
    if kind == cmd.NO_VLLM_INVOCATION and _NOT_A_COMMAND.search(before):
        # The old reader skipped "if" or "then" wherever they stood; bash reads them
        # as keywords only where a command starts. And it did not know here-documents.
        return "now refused: bash does not run it as a command"
    if kind == cmd.MULTIPLE_VLLM_INVOCATIONS:
        return "now refused: the module is named more than once"
    if kind == cmd.UNBALANCED_QUOTING and "here-document inside" in err.reason:
        # bash takes such a body from the lines after: out of the middle of the start.
        return "now refused: a here-document without its body"
    if kind == cmd.UNBALANCED_QUOTING:
        return "now refused: not valid bash"  # confirmed under bash by the caller
    return f"MISMATCH: {kind}: {err.reason}"


def _mutations(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    while len(out) < count:
        steps = [rng.choice(script_fuzz._DOWNLOADS) for _ in range(rng.randint(0, 2))]
        text = script_fuzz.mutate(rng, ";".join([*steps, script_fuzz.invocation(rng)]))
        if "\0" not in text:
            out.append(text)
    return out


def _compare_chunk(args: tuple[int, int]) -> list[tuple[str, str]]:
    seed, count = args
    return [(script, compare(script)) for script in _mutations(seed, count)]


def _check(results: list[tuple[str, str]], label: str) -> Counter[str]:
    tally = Counter(verdict for _, verdict in results)
    print(f"\n{label}: {len(results)} scripts", dict(sorted(tally.items())))
    mismatches = [(s, v) for s, v in results if v.startswith("MISMATCH")]
    assert not mismatches, "\n".join(f"{v}\n    {s!r}" for s, v in mismatches[:10])
    # The old reader accepted these; bash refuses them, or starts no server from them,
    # or never reads the faulty line: the server it started never returns.
    invalid = [s for s, v in results if v == "now refused: not valid bash"]
    for script, run in zip(invalid, run_bash(invalid), strict=True):
        if run.syntax_error or run.nested_syntax_error or not run.vllm_starts:
            continue
        with pytest.raises(cmd.CommandError) as err:
            cmd.parse_script(script)
        at = re.search(r"at offset ([0-9]+)", err.value.reason)
        assert at and "\n" in script[: int(at.group(1))], script
        assert re.search(r"-m\s*vllm_", script[: int(at.group(1))]), script
    return tally


def test_every_generation_reads_as_before_except_where_bash_disagrees() -> None:
    scripts = [
        synth.build_script(version)
        for spec in synth.random_fleet(2000, seed=3)
        for version in (*spec.superseded, spec)
        if version.is_vllm
    ]
    tally = _check([(s, compare(s)) for s in dict.fromkeys(scripts)], "generations")
    assert tally["both read alike"] > 1000
    # Only the unquoted dict reprs of D-F (braces) and the new model-cache shape,
    # which the old reader could not read at all, differ.
    assert set(tally) <= {
        "both read alike",
        "both read; the old one grouped brackets",
        "old refused",
    }


def test_100000_mutations_read_as_before_except_where_bash_disagrees() -> None:
    chunks = [(1000 + k, MUTATIONS // 20) for k in range(20)]
    with ProcessPoolExecutor(max_workers=WORKERS) as pool:
        results = [pair for chunk in pool.map(_compare_chunk, chunks) for pair in chunk]
    assert len(results) >= MUTATIONS
    tally = _check(results, "mutations")
    assert tally["both read alike"] > MUTATIONS // 4

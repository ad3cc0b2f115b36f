"""Diffs for reviewers: only the flag shows."""

from __future__ import annotations

from migrate.core.diff import args_diff, display_lines, unified
from tests.support.plans import SCRIPT


def test_diff_shows_only_the_flag() -> None:
    after = SCRIPT.replace(" --enforce-eager", "")
    text = unified(SCRIPT, after, label_before="bun_a", label_after="(new)")
    changed = [
        line for line in text.splitlines() if line[:1] in "+-" and line[:3] not in ("---", "+++")
    ]
    assert changed == ["-    --enforce-eager"]
    assert unified(SCRIPT, SCRIPT, label_before="a", label_after="b") == ""
    assert "".join(display_lines(SCRIPT)).replace("    --", " --") == SCRIPT
    assert '-  "enforce_eager": true' in args_diff({"enforce_eager": True, "x": 1}, {"x": 1})

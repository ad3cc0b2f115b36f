"""Unified diffs of start commands for a reviewer. Pure.

A stored script is one long line, so a line diff of it would show the whole
script twice. For display only, the script is broken before each subcommand
and each `--flag`; the break points are the same on both sides, so the diff
shows exactly the token that changes. What is written is the plan's command,
never this display form.
"""

from __future__ import annotations

import difflib
import json
import re
from typing import Any

# Before " --flag" (a space then two dashes then a letter) and after each ";".
_BREAK = re.compile(r"(?<=;)(?=\S)|(?<=;) +| (?=--[A-Za-z])")


def display_lines(script: str) -> list[str]:
    lines: list[str] = []
    for part in _BREAK.split(script):
        if part == "":
            continue
        indent = "    " if part.startswith("--") else ""
        lines.append(indent + part)
    return lines


def unified(
    before: str, after: str, *, label_before: str, label_after: str, context: int = 2
) -> str:
    """A unified diff of two scripts, or "" when they are equal."""
    if before == after:
        return ""
    lines = difflib.unified_diff(
        display_lines(before),
        display_lines(after),
        fromfile=label_before,
        tofile=label_after,
        n=context,
        lineterm="",
    )
    return "\n".join(lines) + "\n"


def args_diff(before: Any, after: Any, *, label: str = "_llm.vllm_additional_args") -> str:
    """A unified diff of the recorded vLLM arguments (one key per line)."""

    def lines(value: Any) -> list[str]:
        return json.dumps(value, indent=2, sort_keys=True).splitlines()

    if before == after:
        return ""
    diff = difflib.unified_diff(
        lines(before),
        lines(after),
        fromfile=f"{label} (now)",
        tofile=f"{label} (after)",
        lineterm="",
    )
    return "\n".join(diff) + "\n"

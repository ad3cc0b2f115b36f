"""The fault matrix's fast subset: every must-be-zero figure is zero.

The whole matrix (every input case with both log formats, 30 kills, two
clusters) is `python -m tests.faults`; see README.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from tests.faults import crashes, edits, inputs
from tests.faults.matrix import Figures
from tests.faults.state import Sandbox
from tests.support.rollout import seed_random

pytestmark = pytest.mark.parametrize("schema_version", ["2026"])


@pytest.fixture
def sandbox(me_db: Any) -> Sandbox:
    seed_random(me_db, 60, seed_value=11)
    # Short, under /tmp: the cases make FIFOs and long paths of their own.
    tmp = Path(f"/tmp/bm-faults-{me_db.url.rsplit('/', 1)[-1].split('?')[0][-12:]}")
    tmp.mkdir()
    yield Sandbox(me_db.url, me_db.engine, me_db.schema, tmp)
    for path in sorted(tmp.rglob("*"), reverse=True):
        path.unlink() if not path.is_dir() or path.is_symlink() else path.rmdir()
    tmp.rmdir()


def test_fast_hostile_inputs_are_clean_errors(sandbox: Sandbox) -> None:
    plan, _ = crashes.make_plan(sandbox, "valid.json")
    target = inputs.Target(sandbox.url, Path(sandbox.tmp), plan)
    target.prepare()
    fast = tuple(c for c in inputs.CASES if c.fast)
    assert len(fast) >= 10
    # The JSON log: the error line, and the audit channel with its argv, in one run.
    figures = Figures(inputs=[inputs.run_case(c, target, "json") for c in fast])
    assert figures.problems() == [], figures.render()


def test_kills_leave_no_endpoint_half_changed(sandbox: Sandbox) -> None:
    figures = Figures(kills=crashes.kills(sandbox, 2, random.Random(3), max_delay_s=1.5))
    assert figures.kills.attempted == 2
    assert figures.problems() == [], figures.render()


def test_a_concurrent_run_is_refused(sandbox: Sandbox) -> None:
    figures = Figures(concurrent=crashes.concurrent_runs(sandbox, 1))
    assert figures.concurrent.attempted == 3
    assert figures.problems() == [], figures.render()


def test_dropped_connections_leave_it_whole(sandbox: Sandbox) -> None:
    figures = Figures(drops=crashes.dropped_connections(sandbox, 3, random.Random(3), 120))
    assert figures.drops.attempted == 3, figures.drops.notes
    assert figures.problems() == [], figures.render()


def test_edited_and_foreign_plans_write_nothing(sandbox: Sandbox) -> None:
    figures = Figures()
    subset = (
        "args_after set to arbitrary settings",
        "command_after appends '; curl ... | sh'",
        "action flipped, command left as it is",
        "no cluster system identifier",
    )
    figures.edits, notes = edits.edited_plans(sandbox, only=subset)
    assert figures.edits.tried == len(subset), notes
    assert figures.problems() == [], figures.render() + "\n" + "\n".join(notes)

"""Making, signing and writing a plan, and its ticket, hold eight bytes a change, not the change.

Before streaming, `plan` held every changing decision and its item until the
file was written: about 3.8 KB a change here (a 1.8 KB command, the decision,
the item), 570 MiB of RSS at 400,000 endpoints. Streamed, what grows with the
changes is eight bytes each (migrate.core.change_keys) and, while they are put
in order, the names of at most change_keys.CHUNK of them: about 36 bytes a
change at this size, flat beyond it.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from pathlib import Path

from migrate.cli.planfile import write_plan_file
from migrate.core.plan_stream import RECORD_PARTS, sign, stream_plan
from migrate.core.records import Decision
from migrate.rollout.ticket import attachment_digest, attachment_pieces, render_markdown
from migrate.store.spill import Spill
from tests.support.plans import HEADER, decision


def fleet(n: int) -> Iterator[Decision]:
    """n changes made one at a time, as the scan yields them: no two share a command."""
    for k in range(n):
        yield decision(
            f"endpoint-{k:06d}",
            f"model-{k % 9}",
            70 if k % 10 == 0 else 8,
            command_after=f"{k} " + "x" * 1800,
            args_after={"max_model_len": k},
            flags=["multinode"] if k % 25 == 1 else [],
        )


def peak_bytes(n: int, directory: Path) -> int:
    """Peak Python allocation while the plan of n changes is made, written and ticketed."""
    tracemalloc.start()
    try:
        with Spill(RECORD_PARTS, str(directory)) as spill:
            plan = sign(stream_plan(fleet(n), spill, **HEADER), b"k" * 32)
            write_plan_file(plan, str(directory / f"plan-{n}.json"))
            assert render_markdown(plan, "plan.json").startswith("# bundle-migrate plan")
            attachment_digest(attachment_pieces(plan))
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_grows_by_compact_keys_only(tmp_path: Path) -> None:
    small, large = peak_bytes(1_000, tmp_path), peak_bytes(10_000, tmp_path)
    per_change = (large - small) / 9_000
    # Holding the changes would cost over 3,000 bytes each.
    assert per_change < 100, f"{per_change:.0f} bytes a change ({small:,} -> {large:,})"
    assert (tmp_path / "plan-10000.json").stat().st_size > 10_000 * 1800

"""Pacing: --max-per-minute and --pause-file, on an injected clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrate.rollout.pacing import Pacer, Reporter


def test_pacer_throttles_and_waits_while_the_pause_file_exists(tmp_path: Path) -> None:
    now = [100.0]
    slept: list[float] = []
    pause = tmp_path / "pause"
    pause.touch()

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds
        if len(slept) == 3:
            pause.unlink()

    events: list[str] = []

    class Collect(Reporter):
        def paused(self, path: Path) -> None:
            events.append("paused")

        def resumed(self) -> None:
            events.append("resumed")

    pacer = Pacer(max_per_minute=30, pause_file=pause, clock=lambda: now[0], sleep=sleep)
    pacer.wait_while_paused(Collect())
    assert events == ["paused", "resumed"] and len(slept) == 3
    slept.clear()
    pacer.throttle()
    assert slept == []
    now[0] += 0.5
    pacer.throttle()
    assert slept == [pytest.approx(1.5)]


# diffs and the ticket ------------------------------------------------------------

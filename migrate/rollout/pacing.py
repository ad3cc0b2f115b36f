"""What a run tells its operator, and how fast it may go (--max-per-minute, --pause-file)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from migrate.core.outcomes import Result


class Reporter:
    """What a run tells its operator; the CLI prints, tests may collect."""

    def note(self, text: str) -> None: ...

    def stage_started(self, number: int, name: str, count: int) -> None: ...

    def result(self, result: Result) -> None: ...

    def preview(self, result: Result, diff_text: str) -> None: ...

    def phase(self, endpoint: str, phase: str, detail: str) -> None:
        """Where an endpoint is now (writing, redeploying, waiting, settling, ...).

        Called from the endpoint's worker thread: implementations must be thread-safe.
        """

    def paused(self, path: Path) -> None: ...

    def resumed(self) -> None: ...


@dataclass
class Pacer:
    """--max-per-minute and --pause-file, with an injectable clock for tests."""

    max_per_minute: float | None = None
    pause_file: Path | None = None
    poll_s: float = 1.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _last: float | None = None

    def wait_while_paused(self, reporter: Reporter) -> None:
        if self.pause_file is None or not self.pause_file.exists():
            return
        reporter.paused(self.pause_file)
        while self.pause_file.exists():
            self.sleep(self.poll_s)
        reporter.resumed()

    def throttle(self) -> None:
        if self.max_per_minute:
            interval = 60.0 / self.max_per_minute
            if self._last is not None:
                wait = self._last + interval - self.clock()
                if wait > 0:
                    self.sleep(wait)
        self._last = self.clock()

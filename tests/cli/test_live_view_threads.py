"""The live view's refresh thread and the threads that print lines never wait on each other.

rich redraws from its own thread holding the Live's lock, and asks the view for what to
draw; a line printed above the view takes the same lock. A CI run once hung for good
when a worker printed while holding a lock the view's drawing needed.
"""

from __future__ import annotations

import io
import threading
import time

from rich.console import Console

from migrate.cli.run_view import LiveReporter


def _reporter() -> LiveReporter:
    console = Console(file=io.StringIO(), force_terminal=True, width=100, highlight=False)
    reporter = LiveReporter(execute=True, console=console)
    reporter.stage_started(1, "canary", 3)
    return reporter


def test_a_line_printed_while_the_view_redraws_does_not_deadlock() -> None:
    reporter = _reporter()
    live = reporter._live
    assert live is not None and live.console.is_interactive
    drawn = threading.Event()

    def redraw_like_rich() -> None:
        # What rich's refresh thread does: hold the Live's lock, then ask for the view.
        with live._lock:
            time.sleep(0.3)  # the printer below is now waiting for this lock
            reporter._render()
        drawn.set()

    printer = threading.Thread(target=reporter.note, args=("a line above the view",), daemon=True)
    drawer = threading.Thread(target=redraw_like_rich, daemon=True)
    drawer.start()
    time.sleep(0.1)
    printer.start()
    drawer.join(10)
    printer.join(10)
    # Checked before close(): a deadlocked pair holds the Live's lock, and close would wait.
    assert drawn.is_set() and not printer.is_alive(), "the redraw and a printed line deadlocked"
    reporter.close()
    assert "a line above the view" in reporter._console.file.getvalue()


def test_many_threads_printing_and_moving_endpoints_while_it_redraws_all_finish() -> None:
    reporter = _reporter()
    stop = threading.Event()

    def refresher() -> None:
        while not stop.is_set():
            reporter._live.refresh()
            time.sleep(0.005)

    def worker(n: int) -> None:
        for i in range(50):
            name = f"ep-{n}-{i % 3}"
            reporter.phase(name, "waiting", "READY")
            reporter.note(f"{name}: line {i}")

    spinning = threading.Thread(target=refresher, daemon=True)
    spinning.start()
    workers = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(4)]
    for w in workers:
        w.start()
    deadline = time.monotonic() + 20
    for w in workers:
        w.join(max(0.0, deadline - time.monotonic()))
    stuck = [w for w in workers if w.is_alive()]
    stop.set()
    spinning.join(10)
    assert not stuck and not spinning.is_alive()
    reporter.close()
    assert reporter._console.file.getvalue().count(": line 49") == 4

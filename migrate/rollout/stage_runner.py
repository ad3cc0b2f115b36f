"""One stage's endpoints (or a rollback's changes), up to N at a time, paced, to a failure limit.

The work for one endpoint (`change.apply_endpoint`) runs on a worker thread;
this loop, on the caller's thread, hands out endpoints, counts outcomes, and
stops handing out once the stage must stop. Endpoints already in flight are
always seen through to a verdict (an endpoint left half-deployed would be
worse than one more redeploy). Ctrl-C or SIGTERM sets `stop`: workers leave
their endpoints where the journal says, resumable, and the interrupt goes on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

from migrate.core.outcomes import Result
from migrate.core.stage_gate import StageTally
from migrate.deploy.watch import Interrupted
from migrate.rollout.pacing import Pacer, Reporter

T = TypeVar("T")


def run_stage(
    items: Iterable[T],
    work: Callable[[T], Result],
    *,
    parallel: int,
    pacer: Pacer,
    reporter: Reporter,
    tally: StageTally,
    stop: threading.Event,
    on_result: Callable[[Result], None],
) -> str | None:
    """Work through the stage; the reason it stopped early, or None."""
    if parallel <= 1:
        return _one_at_a_time(
            items, work, pacer=pacer, reporter=reporter, tally=tally, on_result=on_result
        )
    todo = iter(items)
    pending: set[Future[Result]] = set()
    stopped: str | None = None
    with ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="endpoint") as pool:
        try:
            while True:
                while stopped is None and len(pending) < max(1, parallel):
                    item = next(todo, None)
                    if item is None:
                        break
                    pacer.wait_while_paused(reporter)
                    pacer.throttle()
                    pending.add(pool.submit(work, item))
                if not pending:
                    return stopped
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    result = future.result()
                    on_result(result)
                    stopped = stopped or tally.add(result.outcome)
        except BaseException:
            stop.set()
            _drain(pending)
            raise


def _drain(pending: set[Future[Result]]) -> None:
    """Let in-flight endpoints reach a resumable point before the interrupt goes on."""
    for future in pending:
        try:
            future.result()
        except (Interrupted, KeyboardInterrupt):
            pass
        except Exception:  # noqa: BLE001  (the first error is the one being raised)
            pass


def _one_at_a_time(
    items: Iterable[T],
    work: Callable[[T], Result],
    *,
    pacer: Pacer,
    reporter: Reporter,
    tally: StageTally,
    on_result: Callable[[Result], None],
) -> str | None:
    """The same loop on the caller's own thread: nothing to hand over, nothing to drain."""
    for item in items:
        pacer.wait_while_paused(reporter)
        pacer.throttle()
        result = work(item)
        on_result(result)
        stopped = tally.add(result.outcome)
        if stopped:
            return stopped
    return None

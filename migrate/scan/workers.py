"""Deciding on every core: rows go to worker processes in chunks, decisions come back in order.

Reading commands is CPU work in Python, so one process is bound by one core
while the database sends rows faster than that. The main process keeps the
cursor and the output; workers decode the rows (JSON comes as text, cheap to
send) and classify them, a pure function of a record. What the caller makes of
the decisions a worker makes too: of each one with ``render`` (:func:`decide`),
or of each chunk at once with ``render_chunk`` (:func:`decide_chunks`: a
report's text and counts, a plan's encoded items), so the main process only
writes what comes back, and a decision (its edited command: kilobytes) is not
sent back for that. At most a few chunks are in flight, so memory stays flat
however many endpoints there are, and results come out in the cursor's order.

Workers are spawned, not forked: a fork would copy the open database
connection into children that might close it on exit.
"""

from __future__ import annotations

import atexit
import ctypes
import functools
import gc
import math
import multiprocessing
import os
import signal
import sys
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from itertools import chain, islice
from typing import Any, TypeVar

from migrate.core.classify import classify
from migrate.core.overrides import Overrides
from migrate.core.policy import PolicyParams
from migrate.core.records import Decision
from migrate.scan.collector import RARE_COLLECTIONS, rare_collections
from migrate.store.endpoint_rows import RowStream, record_from_json

# Rows a worker is sent at once. Each chunk costs the main process a future, wake-ups
# of the pool's threads and a pickle each way (a plan at 100k: 1.9-2.3 s of its CPU at
# 256 rows, 1.7-1.8 s at 1024). 2 * jobs chunks of 1024 in flight hold a few MB, and
# the last one keeps a core busy for about 0.1 s.
CHUNK = 1024
# Up to this many endpoints, starting interpreters costs more than it saves: they are
# decided in this process.
SMALL_FLEET = 2048
MAX_AUTO_JOBS = 4
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
R = TypeVar("R")
B = TypeVar("B")


class WorkerError(RuntimeError):
    """A worker process died (killed, out of memory) before answering."""


def available_cpus(cgroup_root: str = "/sys/fs/cgroup") -> int:
    """CPUs this process may use: its affinity, capped by a cgroup CPU quota (v2 or v1)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    quota = _cgroup_quota(cgroup_root)
    if quota is not None:
        cpus = min(cpus, quota)
    return max(1, cpus)


def _cgroup_quota(root: str) -> int | None:
    """Whole CPUs the cgroup's quota allows (rounded up), or None when it sets none."""
    for quota_file, period_file in (
        ("cpu.max", None),  # v2: "QUOTA PERIOD" or "max PERIOD"
        ("cpu/cpu.cfs_quota_us", "cpu/cpu.cfs_period_us"),  # v1: -1 means none
    ):
        try:
            with open(os.path.join(root, quota_file), encoding="ascii") as handle:
                words = handle.read().split()
            if period_file is not None:
                with open(os.path.join(root, period_file), encoding="ascii") as handle:
                    words = words[:1] + handle.read().split()[:1]
            quota, period = words[0], int(words[1])
        except (OSError, ValueError, IndexError):
            continue
        if quota in ("max", "-1"):
            return None
        try:
            return max(1, math.ceil(int(quota) / period))
        except (ValueError, ZeroDivisionError):
            return None
    return None


def auto_jobs() -> int:
    return min(available_cpus(), MAX_AUTO_JOBS)


def as_decided(decision: Decision) -> Decision:
    """The render that keeps the decision itself."""
    return decision


_params: PolicyParams | None = None
_overrides: Overrides | None = None
_render: Callable[[list[Decision]], Any] = list
_fingerprint = True


def _start(
    params: PolicyParams,
    overrides: Overrides | None,
    render: Callable[[list[Decision]], Any],
    fingerprint: bool,
) -> None:
    global _params, _overrides, _render, _fingerprint
    _params, _overrides, _render, _fingerprint = params, overrides, render, fingerprint
    # Ctrl-C reaches the whole process group: the main process alone decides what
    # it means (it stops the pool), so workers print no traceback of their own. They
    # were started with SIGINT blocked (see _submit), so none came during start-up.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    _die_with_parent()
    gc.freeze()
    gc.set_threshold(*RARE_COLLECTIONS)
    # At exit the collector would walk the worker's kept readings once more, while
    # the main process waits for the pool to shut down: leave them to the exit.
    atexit.register(gc.freeze)


def _die_with_parent() -> None:
    """Ask Linux to end this worker when the main process ends, however it ends.

    A SIGTERM or SIGKILL sent to the main process alone would otherwise leave the
    workers waiting on their queue forever, each holding its memory.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent was already gone before prctl
        os._exit(1)


def _decide_chunk(keys: tuple[str, ...], chunk: list[str]) -> Any:
    assert _params is not None  # set by _start
    return _rendered(keys, chunk, _params, _overrides, _render, _fingerprint)


def _rendered(
    keys: tuple[str, ...],
    chunk: list[str],
    params: PolicyParams,
    overrides: Overrides | None,
    render_chunk: Callable[[list[Decision]], B],
    fingerprint: bool,
) -> B:
    """render_chunk of the chunk's decisions, which a worker sends back."""
    return render_chunk(
        [classify(record_from_json(keys, row), params, overrides, fingerprint) for row in chunk]
    )


def render_each(render: Callable[[Decision], R], decisions: list[Decision]) -> list[R]:
    """A chunk render made of a render of each decision (functools.partial it with one)."""
    return [render(decision) for decision in decisions]


def decide(
    rows: RowStream,
    params: PolicyParams,
    overrides: Overrides | None,
    jobs: int = 1,
    render: Callable[[Decision], R] = as_decided,  # type: ignore[assignment]
    fingerprint: bool = True,
) -> Iterator[R]:
    """render(classify()) of every row's record, in order, on up to ``jobs`` processes.

    ``render`` goes to the workers, so it must pickle: a module-level function,
    or a functools.partial of one. ``fingerprint``: see classify.
    """
    each = functools.partial(render_each, render)
    # Rows decided here (one job, a small fleet) are decided one at a time: the first
    # decision comes at once.
    with rare_collections():
        for rendered in _decide(rows, params, overrides, jobs, each, fingerprint, here=1):
            yield from rendered


def decide_chunks(
    rows: RowStream,
    params: PolicyParams,
    overrides: Overrides | None,
    jobs: int,
    render_chunk: Callable[[list[Decision]], B],
    fingerprint: bool = True,
) -> Iterator[B]:
    """render_chunk() of the decisions of every run of consecutive rows, runs in order.

    What the main process gets of a chunk is then one object (a report's text
    and its counts, say), not one per endpoint to unpickle, count and write.
    The runs are at most CHUNK rows long; how the rows are cut is not part of
    the result. ``render_chunk`` must pickle, as ``render`` does for decide.
    """
    with rare_collections():
        yield from _decide(rows, params, overrides, jobs, render_chunk, fingerprint, here=CHUNK)


def _decide(
    rows: RowStream,
    params: PolicyParams,
    overrides: Overrides | None,
    jobs: int,
    render_chunk: Callable[[list[Decision]], B],
    fingerprint: bool,
    here: int,
) -> Iterator[B]:
    """The chunks rendered in order; ``here``: how many rows a chunk decided in this process has."""
    stream, keys = rows.values, rows.keys
    if jobs > 1:
        # Whether the fleet is small is known before a worker starts: rows are read
        # ahead. A big fleet's rows all go to the workers from the first: deciding
        # the first ones here while the workers started left them waiting for rows.
        ahead = list(islice(stream, SMALL_FLEET + 1))
        if len(ahead) > SMALL_FLEET:
            yield from _pooled(
                chain(ahead, stream), keys, params, overrides, jobs, render_chunk, fingerprint
            )
            return
        stream = iter(ahead)
    while chunk := list(islice(stream, here)):
        yield _rendered(keys, chunk, params, overrides, render_chunk, fingerprint)


def _pooled(
    stream: Iterator[str],
    keys: tuple[str, ...],
    params: PolicyParams,
    overrides: Overrides | None,
    jobs: int,
    render_chunk: Callable[[list[Decision]], B],
    fingerprint: bool,
) -> Iterator[B]:
    """The chunks rendered on ``jobs`` worker processes, in order."""
    pool = _pool(jobs, params, overrides, render_chunk, fingerprint)
    pending: deque[Future[B]] = deque()
    try:
        while chunk := list(islice(stream, CHUNK)):
            pending.append(_submit(pool, _decide_chunk, keys, chunk))
            if len(pending) >= 2 * jobs:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    except BrokenProcessPool as err:
        # From a result, or from submit once the pool knows a worker is gone.
        raise WorkerError(
            "a worker process died while reading commands (killed or out of memory); "
            "rerun, or use --jobs 1 to read in one process"
        ) from err
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _submit(pool: ProcessPoolExecutor, fn: Any, *args: Any) -> Future[Any]:
    """pool.submit, with SIGINT blocked while it may start a worker.

    A signal mask survives fork and exec, so a worker starts with Ctrl-C held back
    until its initializer has chosen to ignore it: no traceback from a worker
    interrupted while it imports. Here the signal only waits the moment it takes.
    """
    if not hasattr(signal, "pthread_sigmask"):
        return pool.submit(fn, *args)
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        return pool.submit(fn, *args)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _pool(
    jobs: int,
    params: PolicyParams,
    overrides: Overrides | None,
    render: Callable[[list[Decision]], Any],
    fingerprint: bool,
) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start,
        initargs=(params, overrides, render, fingerprint),
    )

"""Where a report goes: a file written whole or not at all; progress and width for people."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import IO, Any, TypeVar

import click

from migrate.store import files
from migrate.store.files import FileError

T = TypeVar("T")


def terminal_width(default: int = 120) -> int:
    """The width tables fit: $COLUMNS, else the terminal of stdout, else of stderr
    (`scan | less` is still read in that terminal), else `default`."""
    if os.environ.get("COLUMNS", "").isdigit():
        return max(40, int(os.environ["COLUMNS"]))
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream.isatty():
                return max(40, os.get_terminal_size(stream.fileno()).columns)
        except (OSError, ValueError):
            continue
    return default


def duration(seconds: float) -> str:
    """A duration as a person reads it: "85 ms", "2.4 s", "3 min 05 s" (never "0.0 s")."""
    if seconds < 1:
        return f"{max(1, round(seconds * 1000))} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def wide_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--wide",
        is_flag=True,
        help="Table: every column, wrapped to the terminal. Default: the columns that fit it.",
    )(func)


@contextmanager
def output_stream(path: str | None) -> Iterator[IO[str]]:
    """Stdout, or a file written whole or not at all (see migrate.store.files.writing).

    A device, a FIFO or /dev/stdout is written through, never replaced; a
    target that cannot be written (a missing directory, /proc, /dev/full) is
    a FileError, which the command reports in one line.
    """
    if path is None:
        try:
            yield sys.stdout
            sys.stdout.flush()
        except BrokenPipeError:
            raise  # the reader left (`scan | head`): the command group ends quietly
        except OSError as exc:  # /dev/full
            discard_stdout()
            raise FileError(f"cannot write the report to standard output: {exc.strerror}") from None
        return
    with files.writing(path, what="report") as handle:
        yield handle


def discard_stdout() -> None:
    """Point a broken standard output (a closed pipe, /dev/full) at /dev/null.

    Otherwise the interpreter's last flush at exit fails again and prints its
    own multi-line complaint after the one-line error.
    """
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError, AttributeError):
        return  # not a real descriptor (a test runner's buffer)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, fd)
    finally:
        os.close(null)


def with_progress(
    decisions: Iterable[T], total: list[int], weight: Callable[[T], int] | None = None
) -> Iterator[T]:
    """A progress bar on stderr, only when a person is watching it.

    ``weight``: how many endpoints an item stands for (a chunk's count); None: one each.
    """
    if not sys.stderr.isatty():
        yield from decisions
        return
    iterator = iter(decisions)
    first = next(iterator, None)  # runs the count query, which fills total
    if first is None:
        return
    with click.progressbar(
        length=total[0] or 1, label="scanning", file=sys.stderr, show_eta=True
    ) as bar:
        yield first
        bar.update(weight(first) if weight else 1)
        for d in iterator:
            yield d
            bar.update(weight(d) if weight else 1)

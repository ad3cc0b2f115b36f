"""Where a report goes: a file written whole or not at all; progress and width for people."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import click

from migrate.core.records import Decision


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
    """Write to a temporary file and rename, so a failed run never leaves half a report.

    Only a regular file (or a new one) is replaced that way: renaming over
    /dev/null, a FIFO or /dev/stdout would destroy the device, so those are
    written in place.
    """
    if path is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    target = Path(path)
    if target.exists() and not target.is_file():
        with open(target, "w", encoding="utf-8", newline="") as handle:
            yield handle
        return
    fd, tmp = tempfile.mkstemp(dir=target.parent or Path("."), prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            yield handle
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def with_progress(decisions: Iterable[Decision], total: list[int]) -> Iterator[Decision]:
    """A progress bar on stderr, only when a person is watching it."""
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
        bar.update(1)
        for d in iterator:
            yield d
            bar.update(1)

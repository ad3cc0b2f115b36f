"""Plain-text tables that fit a terminal: narrow by default, every column with --wide.

rich draws the table within a width laid out here: free text wraps inside its
own column first, identifiers (an endpoint's name, a run id) fold only when
nothing else can give, so a row stays readable in an 80- or 100-column
terminal instead of running off it.
The output is plain text (no colour, no trailing blanks), the same on a
terminal, in a pipe and in a file, so scripts and people read the same thing.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rich import box
from rich.console import Console
from rich.table import Table

DEFAULT_WIDTH = 120  # when neither a terminal nor $COLUMNS says
GAP = 3  # between two columns: padding, divider, padding
MIN_WRAPPED = 10  # a wrapping column narrower than this reads as a column of fragments
# rich's SIMPLE_HEAD in ASCII: a dashed rule under the headers, nothing else; plain in
# cron mail, logs and terminals without Unicode.
PLAIN = box.Box("    \n    \n -- \n    \n    \n    \n    \n    \n", ascii=True)


@dataclass(frozen=True)
class Column:
    header: str
    wide_only: bool = False  # shown with --wide only
    wraps: bool = False  # free text: may wrap within the column, down to `min_width`
    align: Literal["left", "right"] = "left"
    min_width: int = MIN_WRAPPED  # for a wrapping column: never narrower
    # For an identifier (never wraps by choice): folded at this width when nothing else
    # can give; None: never folded.
    fold_at: int | None = None


def render(
    columns: Sequence[Column],
    rows: Sequence[Sequence[object]],
    *,
    width: int | None = None,
    wide: bool = False,
) -> str:
    """The table as text, each line at most `width` characters where the cells allow it."""
    shown = [k for k, c in enumerate(columns) if wide or not c.wide_only]
    cells = [["-" if row[k] is None else str(row[k]) for k in shown] for row in rows]
    natural = [
        max([len(columns[k].header)] + [len(line) for r in cells for line in r[i].splitlines()])
        for i, k in enumerate(shown)
    ]
    widths = _layout([columns[k] for k in shown], natural, width or DEFAULT_WIDTH)
    table = Table(box=PLAIN, show_edge=False, pad_edge=False, header_style="", padding=(0, 1))
    for i, (k, w) in enumerate(zip(shown, widths, strict=True)):
        c = columns[k]
        table.add_column(
            c.header,
            width=w,
            no_wrap=not c.wraps and w >= natural[i],
            overflow="fold",
            justify=c.align,
        )
    for row in cells:
        table.add_row(*row)
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        # Never narrower than the layout: rich would otherwise squeeze the identifiers.
        width=sum(widths) + GAP * (len(widths) - 1),
        color_system=None,
        highlight=False,
        emoji=False,
        markup=False,
        soft_wrap=False,
    )
    console.print(table)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"


def _layout(columns: Sequence[Column], natural: Sequence[int], width: int) -> list[int]:
    """Column widths within `width`: free text gives way first (in proportion to what it
    can give), then identifiers that may fold; what still does not fit overflows."""
    widths = list(natural)
    excess = sum(widths) + GAP * (len(widths) - 1) - width
    for may_give in (
        lambda c, n: max(0, n - min(n, c.min_width)) if c.wraps else 0,
        lambda c, n: max(0, n - c.fold_at) if not c.wraps and c.fold_at else 0,
    ):
        if excess <= 0:
            break
        room = [may_give(c, w) for c, w in zip(columns, widths, strict=True)]
        total = sum(room)
        if not total:
            continue
        take = min(excess, total)
        for k, r in enumerate(room):
            widths[k] -= -(-take * r // total) if r else 0  # ceiling: never short of the goal
        excess -= take
    return widths

"""Tables that fit a terminal: within the width whenever the columns' minimums allow it."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from migrate.scan.tables import GAP, Column, _layout, render

words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-._", min_size=1, max_size=30)
cells = st.lists(words, min_size=1, max_size=8).map(" ".join)
columns = st.builds(
    Column,
    header=words,
    wide_only=st.booleans(),
    wraps=st.booleans(),
    min_width=st.integers(5, 20),
    fold_at=st.one_of(st.none(), st.integers(8, 30)),
)


def shown(cols: list[Column], wide: bool) -> list[Column]:
    return [c for c in cols if wide or not c.wide_only]


@settings(max_examples=150, deadline=None)
@given(
    cols=st.lists(columns, min_size=1, max_size=7),
    data=st.data(),
    width=st.integers(40, 220),
    wide=st.booleans(),
)
def test_every_line_fits_when_the_minimums_do(
    cols: list[Column], data: st.DataObject, width: int, wide: bool
) -> None:
    rows = data.draw(st.lists(st.lists(cells, min_size=len(cols), max_size=len(cols)), max_size=6))
    text = render(cols, rows, width=width, wide=wide)
    lines = text.splitlines()
    assert all(line == line.rstrip() for line in lines)
    visible = shown(cols, wide)
    if not visible:
        return
    # By position: two columns may be equal (a frozen dataclass), so never cols.index(c).
    at = [k for k, c in enumerate(cols) if wide or not c.wide_only]
    natural = [max([len(cols[k].header)] + [len(r[k]) for r in rows]) for k in at]
    floor = [
        (min(n, c.min_width) if c.wraps else (min(n, c.fold_at) if c.fold_at else n))
        for c, n in zip(visible, natural, strict=True)
    ]
    if sum(floor) + GAP * (len(visible) - 1) <= width:
        assert max(len(line) for line in lines) <= width, text
    widths = _layout(visible, natural, width)
    assert all(w >= f for w, f in zip(widths, floor, strict=True))


def test_narrow_leaves_out_wide_columns_and_nothing_wraps_with_room() -> None:
    cols = [Column("endpoint"), Column("size", align="right"), Column("reason", wide_only=True)]
    rows = [["llama-3-8b-chat-00001", "8B", "flag injected by the old rule"]]
    narrow = render(cols, rows, width=100)
    assert "reason" not in narrow and "injected" not in narrow
    wide = render(cols, rows, width=100, wide=True)
    assert "flag injected by the old rule" in wide and "llama-3-8b-chat-00001" in wide
    assert set(wide.splitlines()[1]) == {"-"}  # an ASCII rule under the headers


def test_identifiers_give_way_only_after_free_text() -> None:
    cols = [Column("endpoint", fold_at=20), Column("detail", wraps=True, min_width=10)]
    name = "an-endpoint-with-a-really-long-name-0001"
    rows = [[name, "a detail that is long enough to wrap over several lines of text"]]
    roomy = render(cols, rows, width=80)
    assert name in roomy  # the free text wrapped; the name stayed whole
    tight = render(cols, rows, width=35)
    assert name not in tight and max(len(line) for line in tight.splitlines()) <= 35

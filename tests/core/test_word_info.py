"""shellwords.info's quick answers are what reading the word segment by segment gives.

Text and quoted strings bash reads nothing in (a dict repr's ``{'type':``, ``"::"``)
and one parameter in double quotes (``"$CHAT_TEMPLATE"``) are answered without
cutting the word into segments; every other word is read whole (_read_info).
"""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from migrate.core import shellwords

_PIECE = st.sampled_from(
    [
        "a",
        "x_1",
        "2.0",
        ":",
        ",",
        "{",
        "}",
        "{a,b}",
        "{1..3}",
        "'",
        '"',
        "''",
        '""',
        "'type'",
        "'{a,b}'",
        '"{a,b}"',
        "'a\"b'",
        '"it\'s"',
        '"a b"',
        "$",
        "$X",
        "${X}",
        '"$X"',
        '"${X}"',
        '"$1"',
        '"$X"y',
        '"a$X"',
        '"\\$X"',
        "\\",
        "\\{",
        "`x`",
        "$(x)",
        "<(x)",
        ">",
        "~",
        "*",
        "é",
        "\n",
    ]
)


@settings(max_examples=4000, deadline=None)
@given(st.lists(_PIECE, min_size=1, max_size=5).map("".join))
@example("{'type':")
@example("'linear',")
@example("2.0}")
@example("{'a':1}")
@example('\'{"type":"linear","factor":2.0}\'')
@example('"$CHAT_TEMPLATE"')
@example('"${CHAT_TEMPLATE}"')
@example("{'a'}")
def test_quick_answers_are_the_segment_reading(raw: str) -> None:
    assert shellwords.info(raw) == shellwords._read_info(raw)


def test_the_quick_answers_are_taken(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    read: list[str] = []
    real = shellwords._read_info

    def counting(raw: str) -> shellwords.WordInfo:
        read.append(raw)
        return real(raw)

    monkeypatch.setattr(shellwords, "_read_info", counting)
    quick = ["{'type':", "'linear',", '"::"', "'::'", '"$CHAT_TEMPLATE"', "'{\"a\":1}'"]
    for raw in quick:
        shellwords.info(raw)
    assert read == []
    for raw in ("{'a','b'}", '"$X"y', "$X", '"a\\"b"'):
        shellwords.info(raw)
    assert len(read) == 4

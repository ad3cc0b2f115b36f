"""The plan file's size is counted in UTF-8 bytes, whichever way a piece is counted."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from migrate.cli.planfile import _utf8_size

# Lone surrogates cannot be written as UTF-8: the file's stream refuses them anyway.
_TEXT = st.text(st.characters(blacklist_categories=("Cs",)))


@given(_TEXT)
@example("")
@example('{"endpoint_name": "ascii-only"}')
@example('{"reason": "größer als 0,95 — ✓"}')
@example("\U0001f680 emoji, four bytes")
def test_a_piece_counts_as_many_bytes_as_its_utf8(text: str) -> None:
    assert _utf8_size(text) == len(text.encode("utf-8"))

"""A record of strings as bytes: what goes in comes back, surrogates and all."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from migrate.core import text_record

# Every code point, lone surrogates included (stored JSON may hold them).
_TEXT = st.text(st.characters(codec=None, categories=None))


@given(st.lists(_TEXT, min_size=1, max_size=8))
def test_a_record_decodes_to_its_strings(parts: list[str]) -> None:
    record = text_record.encode(parts)
    assert text_record.decode(record, len(parts)) == parts
    head = text_record.header(len(parts))
    lengths = head.unpack_from(record)
    assert sum(lengths) + head.size == len(record)
    assert list(lengths) == [len(p.encode("utf-8", "surrogatepass")) for p in parts]

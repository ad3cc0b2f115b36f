"""The spill file: what goes in comes back, by place and by part; nothing named is left behind."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from migrate.store import spill as spill_module
from migrate.store.files import FileError
from migrate.store.spill import Spill


def test_records_come_back_whole_or_in_parts_in_any_order(tmp_path: Path) -> None:
    records = [
        ["", "a", "b\nc", "d"],
        ["é\U0001f600", "\0", "\udc80 lone surrogate", "x" * 50_000],  # longer than one read
        ["1", "22", "333", "4444"],
    ]
    with Spill(4, str(tmp_path)) as spill:
        places = [spill.append(r) for r in records]
        assert places == sorted(places) and spill.size > 50_000
        for place, record in reversed(list(zip(places, records, strict=True))):
            assert spill.read(place) == record
            assert spill.read(place, 0, 2) == record[:2]
            assert spill.read(place, 2, 4) == record[2:]
            assert spill.read(place, 3) == record[3:]
        # Appending after reading still works: the buffer is flushed before the next read.
        later = spill.append(["l", "a", "t", "e"])
        assert spill.read(later) == ["l", "a", "t", "e"]
        assert os.listdir(tmp_path) == []  # the file has no name
    assert os.listdir(tmp_path) == []


def test_records_across_and_beyond_the_read_block_come_back(tmp_path: Path) -> None:
    rng = random.Random(7)
    sizes = [rng.choice([0, 1, 700, 4_000, 40_000]) for _ in range(300)] + [3 * spill_module._BLOCK]
    records = [[str(i), "é" * (n // 2), "x" * n] for i, n in enumerate(sizes)]
    with Spill(3, str(tmp_path)) as spill:
        places = []
        for n, record in enumerate(records):
            places.append(spill.append(record))
            if n % 37 == 0:  # reads between appends: the block kept may end at the old end
                back = rng.randrange(n + 1)
                assert spill.read(places[back]) == records[back]
        assert spill.size > 4 * spill_module._BLOCK
        order = list(range(len(records)))
        for shuffled in (False, True):
            if shuffled:
                rng.shuffle(order)
            for k in order:
                assert spill.read(places[k], 2) == records[k][2:]
                assert spill.read(places[k], 0, 1) == records[k][:1]


@pytest.mark.parametrize("over", [-1, 0, 1])
def test_a_record_ending_at_the_block_edge_comes_back_whole(tmp_path: Path, over: int) -> None:
    with Spill(1, str(tmp_path)) as spill:
        text = "y" * (spill_module._BLOCK + over - 4)  # a 4-byte header before it
        place = spill.append([text])
        assert spill.read(place) == [text]


def test_a_directory_it_cannot_use_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(FileError, match=r"cannot make a temporary file in .*missing for items: "):
        Spill(2, str(tmp_path / "missing"), what="items")


def test_no_usable_temporary_directory_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    # What a read-only container gives: no candidate directory is writable. (The
    # standard library looks for one the first time it is asked, then keeps it.)
    monkeypatch.setattr(tempfile, "tempdir", None)
    monkeypatch.setattr(tempfile, "_candidate_tempdir_list", lambda: [str(tmp_path / "gone")])
    with pytest.raises(FileError, match=r"(?i)no usable temporary directory.*set TMPDIR") as err:
        Spill(2, None, what="the plan's items")
    assert "the plan's items" in str(err.value)

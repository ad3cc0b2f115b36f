"""The spill file: what goes in comes back, by place and by part; nothing named is left behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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

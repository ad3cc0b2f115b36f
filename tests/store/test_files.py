"""The bounded reader of local files: regular files only, a size limit, strict UTF-8."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from migrate.store import files
from migrate.store.files import FileError, read_text


def test_reads_utf8_text_and_drops_a_utf8_bom(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_bytes('\ufeff{"é": 1}'.encode())
    assert read_text(path, what="plan", limit=100) == '{"é": 1}'


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ('{"owner": "café"}'.encode("latin-1"), "is not UTF-8 text (byte 0xe9 at offset 14)"),
        ('{"a": 1}'.encode("utf-16"), "is UTF-16 text; save it as UTF-8"),
        ('{"a": 1}'.encode("utf-32"), "is UTF-32 text; save it as UTF-8"),
    ],
)
def test_other_encodings_are_one_clear_error(tmp_path: Path, data: bytes, expected: str) -> None:
    path = tmp_path / "plan.json"
    path.write_bytes(data)
    with pytest.raises(FileError, match=re.escape(expected)) as err:
        read_text(path, what="plan", limit=100)
    assert str(err.value).startswith(f"plan {path} ")


def test_missing_unreadable_and_directory(tmp_path: Path) -> None:
    with pytest.raises(FileError, match=r"cannot read plan .*: No such file or directory"):
        read_text(tmp_path / "none.json", what="plan", limit=10)
    with pytest.raises(FileError, match="is a directory, not a regular file"):
        read_text(tmp_path, what="plan", limit=10)


@pytest.mark.parametrize(
    ("device", "kind"), [("/dev/zero", "a character device"), ("/dev/full", "a character device")]
)
def test_devices_are_refused_without_reading(device: str, kind: str) -> None:
    with pytest.raises(FileError, match=f"{device} is {kind}, not a regular file"):
        read_text(device, what="metrics file", limit=files.MIB)


def test_a_fifo_with_no_writer_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    errors: list[BaseException] = []

    def attempt() -> None:
        try:
            read_text(fifo, what="plan", limit=10)
        except BaseException as exc:  # noqa: BLE001 - the thread reports whatever happened
            errors.append(exc)

    reader = threading.Thread(target=attempt, daemon=True)
    reader.start()
    reader.join(timeout=10)
    assert not reader.is_alive(), "reading a FIFO with no writer blocked"
    assert len(errors) == 1 and isinstance(errors[0], FileError)
    assert "is a pipe, not a regular file" in str(errors[0])


def test_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.toml"
    path.write_bytes(b"x" * 101)
    with pytest.raises(FileError, match="is 101 bytes, over the 100 bytes limit"):
        read_text(path, what="overrides file", limit=100)
    path.write_bytes(b"x" * 100)
    assert len(read_text(path, what="overrides file", limit=100)) == 100
    huge = tmp_path / "huge"
    with open(huge, "wb") as handle:  # sparse: costs no disk, and must cost no memory
        handle.truncate(3 * files.MIB)
    with pytest.raises(FileError, match=r"is 3\.0 MiB, over the 1\.0 MiB limit"):
        read_text(huge, what="plan", limit=files.MIB)


def test_private_files_must_not_be_open_to_others(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("team-a: key\n")
    for mode, how in (
        (0o644, "readable"),
        (0o640, "readable"),
        (0o604, "readable"),
        (0o620, "writable"),
    ):
        path.chmod(mode)
        expected = rf"is {how} by group or others \(mode {mode:04o}\): chmod 600 "
        with pytest.raises(FileError, match=expected):
            read_text(path, what="API keys file", limit=100, private=True)
    path.chmod(0o600)
    assert read_text(path, what="API keys file", limit=100, private=True) == "team-a: key\n"
    path.chmod(0o644)
    assert read_text(path, what="plan", limit=100)  # only private files are held to it


def test_a_path_that_is_not_utf8_is_shown_without_an_exception(tmp_path: Path) -> None:
    raw = os.fsencode(tmp_path) + b"/\xff\xfe.json"
    with pytest.raises(FileError) as err:
        read_text(os.fsdecode(raw), what="plan", limit=10)
    assert "\ufffd\ufffd.json" in str(err.value)
    str(err.value).encode("utf-8")  # printable as it is


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=64))
def test_any_bytes_give_text_or_a_file_error(tmp_path_factory: pytest.TempPathFactory, data: bytes):
    path = tmp_path_factory.mktemp("any") / "f"
    path.write_bytes(data)
    try:
        text = read_text(path, what="plan", limit=32)
    except FileError as exc:
        assert "\n" not in str(exc)
    else:
        assert len(data) <= 32 and text.encode("utf-8") in (data, data[3:])


def test_writing_replaces_a_file_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("previous")
    with pytest.raises(RuntimeError):
        with files.writing(target, what="report") as out:
            out.write("half")
            raise RuntimeError("the scan failed")
    assert target.read_text() == "previous"
    with files.writing(target, what="report") as out:
        out.write("new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("{tmp}/missing/r.json", "cannot write report {tmp}/missing/r.json: No such file"),
        ("/dev/full", "cannot write report /dev/full: No space left on device"),
        ("{tmp}", "cannot write report {tmp}: Is a directory"),
    ],
)
def test_writing_failures_are_file_errors(tmp_path: Path, target: str, expected: str) -> None:
    with pytest.raises(FileError, match=re.escape(expected.format(tmp=tmp_path))):
        with files.writing(target.format(tmp=tmp_path), what="report") as out:
            out.write("x" * 100_000)


def test_writing_to_a_fifo_waits_for_a_reader_but_not_forever(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(FileError, match=r"no process reads that pipe \(waited 0\.2 s\)"):
        with files.writing(fifo, what="metrics file", reader_wait_s=0.2) as out:
            out.write("x")
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()), daemon=True)
    reader.start()
    with files.writing(fifo, what="metrics file") as out:
        out.write("through the pipe\n")
    reader.join(timeout=10)
    assert got == ["through the pipe\n"] and fifo.is_fifo()

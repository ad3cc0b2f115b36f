"""Text kept on disk between a scan and the file made from it, so the process does not hold it.

A plan's items are known one by one as the scan streams, but their order only
at its end. Each is appended here as it comes and read back, by the place
`append` returned, as often as the plan file's digest, signature and text need.
The file has no name (tempfile.TemporaryFile: unlinked at once, or O_TMPFILE),
so it is gone when the process ends, however it ends: an error, Ctrl-C or a
SIGKILL leaves nothing behind.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from types import TracebackType
from typing import IO

from migrate.core import text_record
from migrate.store.files import FileError, shown

# Records are read back a block at a time, and the last block is kept: a plan reads its
# items in plan order, which within a stage is mostly the order they came in (both by
# name), so one read serves the next few dozen records. A 16 KB read for each record (a
# plan item in both forms is about 4 KB) copied five times the file on every pass.
_BLOCK = 256 * 1024
# Records are written a few KB at a time: with the default 8 KB buffer nearly every
# other one was a write(2); a plan at 100k made 41,000 of them.
_WRITE_BUFFER = 1024 * 1024


class Spill:
    """Records of `width` strings each, appended, then read back by place, any part of one.

    Records are migrate.core.text_record's: strings may hold lone surrogates, and what
    comes back is what went in.
    Every failure (no space left, an unwritable directory) is a FileError.
    """

    def __init__(self, width: int, directory: str | None = None, *, what: str = "data") -> None:
        self._header = text_record.header(width)
        self._width = width
        self._where = f"{shown(directory)} for {what}" if directory else f"$TMPDIR for {what}"
        try:
            if directory is None:
                self._where = f"{shown(tempfile.gettempdir())} for {what}"
            self._file: IO[bytes] = tempfile.TemporaryFile(
                dir=directory, prefix=".bundle-migrate-spill-", buffering=_WRITE_BUFFER
            )
        except OSError as exc:
            # gettempdir() raises FileNotFoundError when no candidate is writable
            # (a read-only container): say so in one line, and where it looked.
            why = exc.strerror or str(exc)
            hint = "" if directory else " (set TMPDIR to a writable directory)"
            raise FileError(f"cannot make a temporary file in {self._where}: {why}{hint}") from None
        self._end = 0
        self._unflushed = False
        # The last block read: the file's bytes from offset _block_at on (appends only
        # add bytes past the end, so a block never goes stale).
        self._block = b""
        self._block_at = 0

    def append(self, parts: Sequence[str]) -> int:
        """Store one record of `width` strings; its place, for `read`."""
        if len(parts) != self._width:
            raise ValueError(f"a record of {len(parts)} strings in a spill of {self._width}")
        return self.append_record(text_record.encode(parts))

    def append_record(self, record: bytes) -> int:
        """Store a record text_record.encode made of `width` strings; its place, for `read`."""
        try:
            self._file.write(record)
        except OSError as exc:
            raise self._error(exc) from None
        place = self._end
        self._end += len(record)
        self._unflushed = True
        return place

    def flush(self) -> None:
        """Every record in the file itself (another process may read it: a forked child)."""
        try:
            self._file.flush()
        except OSError as exc:
            raise self._error(exc) from None
        self._unflushed = False

    def read(self, place: int, start: int = 0, stop: int | None = None) -> list[str]:
        """Parts start..stop (all by default) of the record at `place`."""
        data, first, lengths = self._find(place, start, stop)
        return text_record.strings(data, first, lengths)

    def read_utf8(self, place: int, start: int = 0, stop: int | None = None) -> list[memoryview]:
        """The same parts as stored: their UTF-8 bytes (surrogatepass), not copied."""
        data, first, lengths = self._find(place, start, stop)
        return text_record.views(data, first, lengths)

    def _find(self, place: int, start: int, stop: int | None) -> tuple[bytes, int, Sequence[int]]:
        """(bytes holding them, where the first starts, their lengths) of parts start..stop."""
        stop = self._width if stop is None else stop
        header = self._header
        if self._unflushed:
            self.flush()
        try:
            data, at = self._block, place - self._block_at
            if at < 0 or at + header.size > len(data):
                data, at = self._load(place, header.size), 0
            lengths = header.unpack_from(data, at)
            first = at + header.size + sum(lengths[:start])
            end = first + sum(lengths[start:stop])
            if end > len(data):
                data = self._load(place, end - at)
                first, end = first - at, end - at
        except OSError as exc:
            raise self._error(exc) from None
        return data, first, lengths[start:stop]

    def _load(self, place: int, needed: int) -> bytes:
        """The block from `place` on, at least `needed` bytes of it (less at the end)."""
        self._block = os.pread(self._file.fileno(), max(_BLOCK, needed), place)
        self._block_at = place
        return self._block

    @property
    def size(self) -> int:
        """Bytes stored so far."""
        return self._end

    def close(self) -> None:
        try:
            self._file.close()
        except OSError:
            pass  # a last buffer that would not flush: nobody reads a nameless file again

    def __enter__(self) -> Spill:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _error(self, exc: OSError) -> FileError:
        return FileError(f"cannot use a temporary file in {self._where}: {exc.strerror}")

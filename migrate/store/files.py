"""The local files the tool reads (plans, overrides, the metrics state, API keys) and writes.

One reader for all of them, because each way a file can hurt is the same for
every kind: a device that never ends (/dev/zero), a pipe that never answers
(/dev/stdout under `| cat`), a file too large to hold, bytes that are not
UTF-8, a secret others may read. `read_text` opens without blocking, accepts a
regular file only, reads at most `limit` bytes and decodes strictly; every
refusal is a `FileError` whose message is the one line the operator sees.
`writing` is the other direction: whole-or-nothing for a file, through for a
device or a pipe, and never an endless wait for a pipe's reader.
"""

from __future__ import annotations

import codecs
import errno
import os
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

MIB = 1 << 20

# Byte-order marks of encodings a text editor may have saved instead of UTF-8.
_OTHER_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)
_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a pipe"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class FileError(ValueError):
    """A file the tool cannot use; the message says which, and why, in one line."""


def shown(path: str | os.PathLike[str]) -> str:
    """A path as safe to print: bytes that are not UTF-8 become U+FFFD, not an exception."""
    return os.fspath(path).encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _size(n: int) -> str:
    return f"{n} bytes" if n < MIB else f"{n / MIB:.1f} MiB"


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def read_bytes(
    path: str | os.PathLike[str], *, what: str, limit: int, private: bool = False
) -> bytes:
    """At most `limit` bytes of a regular file, or FileError.

    The open never blocks (O_NONBLOCK: a FIFO with no writer would wait
    forever), and the type is checked on the opened descriptor, so a path
    swapped for a device between a check and the open is still refused.
    `private` refuses a file that group or others may read or write, as ssh
    does for its keys.
    """
    name = shown(path)
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise FileError(f"cannot read {what} {name}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise FileError(f"{what} {name} is {_kind(st.st_mode)}, not a regular file")
        if private and st.st_mode & 0o077:
            mode = stat.S_IMODE(st.st_mode)
            how = "readable" if st.st_mode & 0o044 else "writable"
            raise FileError(
                f"{what} {name} is {how} by group or others (mode {mode:04o}): chmod 600 {name}"
            )
        if st.st_size > limit:
            raise FileError(f"{what} {name} is {_size(st.st_size)}, over the {_size(limit)} limit")
        chunks: list[bytes] = []
        got = 0
        while got <= limit:
            chunk = os.read(fd, min(limit + 1 - got, MIB))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
    except OSError as exc:
        raise FileError(f"cannot read {what} {name}: {exc.strerror}") from None
    finally:
        os.close(fd)
    if got > limit:  # it grew while being read (or is a /proc file of no stated size)
        raise FileError(f"{what} {name} is over the {_size(limit)} limit")
    return b"".join(chunks)


def decode(data: bytes, *, what: str, name: str) -> str:
    """UTF-8 text (a UTF-8 byte-order mark allowed), or FileError naming the encoding problem."""
    for bom, encoding in _OTHER_BOMS:
        if data.startswith(bom):
            raise FileError(f"{what} {name} is {encoding} text; save it as UTF-8")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileError(
            f"{what} {name} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset "
            f"{exc.start}); save it as UTF-8"
        ) from None


def read_text(path: str | os.PathLike[str], *, what: str, limit: int, private: bool = False) -> str:
    """The UTF-8 text of a regular file of at most `limit` bytes, or FileError.

    `what` names the file in messages ("plan", "overrides file", ...).
    """
    data = read_bytes(path, what=what, limit=limit, private=private)
    return decode(data, what=what, name=shown(path))


# How long a write to a FIFO waits for a reader to open it before giving up.
READER_WAIT_S = 10.0


@contextmanager
def writing(
    path: str | os.PathLike[str], *, what: str, reader_wait_s: float = READER_WAIT_S
) -> Iterator[IO[str]]:
    """A text handle whose content lands at `path` whole or not at all.

    A regular file (or a new one) is written beside the target and renamed over
    it, so a reader never sees half of it and a failed run leaves the previous
    one. Anything else that exists (/dev/null, /dev/stdout, a FIFO) is written
    through: renaming a file over a device would destroy it. A FIFO nobody
    reads is given `reader_wait_s` to get a reader, never forever. Every
    failure is a FileError.
    """
    name = shown(path)
    target = Path(path)
    try:
        special = target.exists() and not target.is_file()
        if special:
            handle = _open_through(target, name, what, reader_wait_s)
            with handle:
                yield handle
            return
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    except OSError as exc:
        raise FileError(f"cannot write {what} {name}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            yield handle
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise FileError(f"cannot write {what} {name}: {exc.strerror}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _open_through(target: Path, name: str, what: str, wait_s: float) -> IO[str]:
    flags = os.O_WRONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fd = os.open(target, flags)
            break
        except OSError as exc:
            # ENXIO: a FIFO with no reader yet (a plain open would wait for one forever).
            if exc.errno != errno.ENXIO or time.monotonic() >= deadline:
                if exc.errno == errno.ENXIO:
                    raise FileError(
                        f"cannot write {what} {name}: no process reads that pipe "
                        f"(waited {wait_s:g} s)"
                    ) from None
                raise
            time.sleep(0.05)
    os.set_blocking(fd, True)  # a reader is there: let it set the pace, as any pipe does
    return os.fdopen(fd, "w", encoding="utf-8", newline="")

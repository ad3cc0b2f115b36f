"""The local files the tool reads: plans, overrides, the metrics state, API keys.

One reader for all of them, because each way a file can hurt is the same for
every kind: a device that never ends (/dev/zero), a pipe that never answers
(/dev/stdout under `| cat`), a file too large to hold, bytes that are not
UTF-8, a secret others may read. `read_text` opens without blocking, accepts a
regular file only, reads at most `limit` bytes and decodes strictly; every
refusal is a `FileError` whose message is the one line the operator sees.
"""

from __future__ import annotations

import codecs
import os
import stat

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
            raise FileError(
                f"{what} {name} may be read or written by others (mode {mode:04o}): "
                f"chmod 600 {name}"
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

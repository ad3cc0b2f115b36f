"""Globally unique ids in model engine's format: 20 characters of lowercase base32hex.

Model engine names rows `bun_` + an xid (the rs/xid layout): 12 bytes made of a
4-byte big-endian Unix time in seconds, a 3-byte machine id, a 2-byte process
id and a 3-byte counter that starts at a random value. Using the same layout
keeps our bundle ids indistinguishable in shape from the ones model engine
writes, and sortable by creation time like them.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import socket
import threading
import time
from dataclasses import dataclass

_ALPHABET = "0123456789abcdefghijklmnopqrstuv"
_PATTERN = re.compile(r"^[0-9a-v]{20}$")
_COUNTER_MASK = 0xFFFFFF


def _machine_id() -> bytes:
    # rs/xid hashes a host identifier; the hostname is stable and always there.
    return hashlib.md5(socket.gethostname().encode("utf-8"), usedforsecurity=False).digest()[:3]


class _Generator:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counter = secrets.randbelow(_COUNTER_MASK + 1)
        self._machine = _machine_id()

    def next_counter(self) -> int:
        with self._lock:
            self._counter = (self._counter + 1) & _COUNTER_MASK
            return self._counter


_generator = _Generator()


def encode(raw: bytes) -> str:
    """The 20-character text form of 12 raw bytes."""
    if len(raw) != 12:
        raise ValueError("an xid is 12 bytes")
    return base64.b32hexencode(raw).decode("ascii").rstrip("=").lower()


def new_xid(now: float | None = None) -> str:
    seconds = int(time.time() if now is None else now) & 0xFFFFFFFF
    raw = (
        seconds.to_bytes(4, "big")
        + _generator._machine
        + (os.getpid() & 0xFFFF).to_bytes(2, "big")
        + _generator.next_counter().to_bytes(3, "big")
    )
    return encode(raw)


def is_xid(text: str) -> bool:
    # 20 base32hex characters carry 100 bits; an xid uses 96, so the last
    # character only ever holds one of the 8 values whose low 2 bits are zero.
    return bool(_PATTERN.match(text)) and _ALPHABET.index(text[-1]) % 4 == 0


@dataclass(frozen=True)
class XidParts:
    time: int
    machine: bytes
    pid: int
    counter: int


def decode(text: str) -> XidParts:
    if not is_xid(text):
        raise ValueError(f"{text!r} is not an xid")
    raw = base64.b32hexdecode(text.upper() + "====")
    return XidParts(
        time=int.from_bytes(raw[0:4], "big"),
        machine=raw[4:7],
        pid=int.from_bytes(raw[7:9], "big"),
        counter=int.from_bytes(raw[9:12], "big"),
    )


def new_bundle_id() -> str:
    return "bun_" + new_xid()


def new_run_id() -> str:
    return "run_" + new_xid()

"""A streamed plan's digest made on the other core while its file is written.

The digest (one pass over every item's canonical text) and the file (another,
over their indented text) were made one after the other, on one core, at the
end of a plan: 0.16 s of a 100k plan's 6 with the other core idle. A forked
child now reads the items back and hashes them while this process writes the
file with a stand-in of the same length where the digest goes, and the real one
is written over it before the file is renamed into place.

The child shares the spill's file descriptor (read with pread, so the offset
shared after fork is never moved), reads what it inherited, and leaves with
os._exit: no finalizer, atexit handler or buffered stream of the parent's runs
in it. Whatever goes wrong there (no fork, a killed child, a short answer), the
digest is made here instead: slower, never different.
"""

from __future__ import annotations

import os
import secrets
import signal

from migrate.core.plan import compute_digest
from migrate.core.plan_stream import StreamedPlan, with_digest

_PREFIX = "sha256:"
_LENGTH = len(_PREFIX) + 64


class DigestAside:
    """The digest of ``plan`` (whose items must all be stored), being made elsewhere."""

    def __init__(self, plan: StreamedPlan) -> None:
        self.plan = plan
        # Random, so that nothing else in the file can be taken for it.
        self.placeholder = _PREFIX + secrets.token_hex(32)
        self._pid = 0
        self._read = -1
        plan.texts.flush()  # the child reads the file: nothing may wait in a buffer here
        try:
            read, write = os.pipe()
        except OSError:
            return
        try:
            pid = os.fork()
        except OSError:
            os.close(read)
            os.close(write)
            return
        if pid == 0:  # the child
            os.close(read)
            _answer(plan, write)
        os.close(write)
        self._pid, self._read = pid, read

    def stand_in(self) -> StreamedPlan:
        """The plan with the placeholder for its digest: the file's bytes, but for those."""
        return with_digest(self.plan, self.placeholder)

    def result(self) -> str:
        """The digest: the child's answer, or one made here when there is none."""
        answer = b""
        if self._read >= 0:
            try:
                while chunk := os.read(self._read, 128):
                    answer += chunk
            except OSError:
                answer = b""
            self.close()
        text = answer.decode("ascii", "replace")
        if len(text) == _LENGTH and text.startswith(_PREFIX):
            return text
        return compute_digest(self.plan.body())

    def close(self) -> None:
        """Stop and reap the child, if it is still there (an error on the way)."""
        if self._read >= 0:
            os.close(self._read)
            self._read = -1
        if self._pid:
            try:
                os.kill(self._pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                os.waitpid(self._pid, 0)
            except ChildProcessError:
                pass
            self._pid = 0


def _answer(plan: StreamedPlan, write: int) -> None:
    """The child: write the digest to the pipe and leave, whatever happens."""
    status = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what Ctrl-C means
        os.write(write, compute_digest(plan.body()).encode("ascii"))
        status = 0
    finally:
        os._exit(status)

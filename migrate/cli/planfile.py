"""Plan files on the command line: read one, check its schema, and report its errors."""

from __future__ import annotations

import functools
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import click
from click.core import ParameterSource

from migrate.cli.app import Failure
from migrate.cli.output import output_stream
from migrate.core.json_text import Buffer
from migrate.core.plan import Plan, PlanError, file_utf8_pieces, parse_plan, verify
from migrate.core.plan_stream import StreamedPlan, seal, with_digest
from migrate.rollout.digest_aside import DigestAside
from migrate.store import files, fleet


def plan_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except PlanError as exc:
            raise Failure(str(exc)) from None

    return wrapper


# A plan holds every changing endpoint's whole new command, twice when it streams:
# about 1.8 KB a change in the synthetic fleet (more for model-cache scripts), so
# this is room for roughly 100,000 to 150,000 changes.
PLAN_LIMIT = 256 * files.MIB


def write_plan_file(plan: Plan | StreamedPlan, out: str | None) -> Plan | StreamedPlan:
    """Write the plan (None: stdout), refusing one larger than apply reads; the plan written.

    A regular file is written whole or not at all, so an oversized plan is refused
    while it is written and leaves nothing behind. Stdout, a pipe or a device
    cannot take back what it was sent: there the size is counted first. A streamed
    plan whose items alone are over the limit is refused before either.
    The plan goes out as UTF-8 bytes: a streamed plan's items as its spill holds
    them, never decoded and encoded again. A streamed plan not sealed yet is sealed
    here: for a regular file, by a child on the other core while the file is written
    (migrate.rollout.digest_aside); anywhere else, first.
    """
    if isinstance(plan, StreamedPlan):
        changes = plan.planned
        _check_size(plan.size_floor, changes)  # before a byte is written or counted
        if not plan.header.digest and (out is None or not _regular_target(out)):
            plan = seal(plan)
    else:
        changes = len(plan.items)
    if out is None or not _regular_target(out):
        _check_size(sum(map(len, _pieces(plan))), changes)
    with output_stream(out) as handle:
        aside = None
        written_plan = plan
        if isinstance(plan, StreamedPlan) and not plan.header.digest:
            if stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                aside = DigestAside(plan)
                written_plan = aside.stand_in()
            else:  # (it became something else since it was looked at)
                plan = written_plan = seal(plan)
        try:
            write = _binary_writer(handle)
            written = 0
            found = _Found(aside.placeholder if aside else "")
            for piece in _pieces(written_plan):
                found.look(piece, written)
                written += len(piece)
                _check_size(written, changes)
                write(piece)
            if aside is not None:
                plan = _sealed(aside.plan, aside.result(), handle, found.at)
        finally:
            if aside is not None:
                aside.close()
    return plan


def _pieces(plan: Plan | StreamedPlan) -> Iterator[Buffer]:
    if isinstance(plan, StreamedPlan):
        return plan.utf8_pieces()
    return file_utf8_pieces(plan.body(), plan.digest, plan.signature)


class _Found:
    """Where the placeholder starts in what is written (pieces may cut it in two)."""

    def __init__(self, placeholder: str) -> None:
        self.wanted = placeholder.encode("ascii")
        self.at = -1
        self._tail = b""

    def look(self, piece: Buffer, offset: int) -> None:
        if self.at >= 0 or not self.wanted:
            return
        seen = self._tail + bytes(piece)
        at = seen.find(self.wanted)
        if at >= 0:
            self.at = offset - len(self._tail) + at
        self._tail = seen[-(len(self.wanted) - 1) :]


def _sealed(plan: StreamedPlan, digest: str, handle: IO[str], at: int) -> StreamedPlan:
    """The plan with its digest, written over the placeholder at ``at`` in the file."""
    if at < 0:
        raise RuntimeError("the plan file was written without its digest's place")
    handle.flush()
    getattr(handle, "buffer", handle).flush()
    os.pwrite(handle.fileno(), digest.encode("ascii"), at)
    return with_digest(plan, digest)


def _binary_writer(handle: IO[str]) -> Callable[[Buffer], object]:
    """Write bytes to a text handle: to its binary buffer, after what it holds itself."""
    handle.flush()
    buffer = getattr(handle, "buffer", None)
    if buffer is None:  # a text-only stream (a test's StringIO)
        return lambda piece: handle.write(bytes(piece).decode("utf-8"))
    return buffer.write


def check_plan_target(out: str | None) -> None:
    """Refuse, before the scan, a plan file path that cannot be written (None: stdout).

    Said in terms of --out: the temporary file the items wait in goes beside the
    plan, so it would otherwise be the first to fail, naming a directory only.
    """
    if out is None:
        return
    path = Path(out)
    if path.is_dir():
        raise Failure(f"--out {out} is a directory: give the plan file's path in it")
    parent = path.parent
    if not parent.is_dir():
        raise Failure(f"cannot write the plan to {out}: the directory {parent} does not exist")
    if _regular_target(out) and not os.access(parent, os.W_OK | os.X_OK):
        raise Failure(f"cannot write the plan to {out}: the directory {parent} is not writable")


def spill_directory(out: str | None) -> str | None:
    """Where a plan's items wait while it is made: beside the plan file (the disk it goes
    to, not a /tmp that may be memory), else (stdout, a pipe, a device) $TMPDIR."""
    if out is None or not _regular_target(out):
        return None
    return str(Path(out).parent)


def _regular_target(path: str) -> bool:
    """Whether the path is (or will be created as) a regular file, replaced whole."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return True  # does not exist yet: files.writing creates it whole


def _check_size(size: int, changes: int) -> None:
    if size > PLAN_LIMIT:
        raise Failure(
            f"the plan of {changes:,} changes is over "
            f"{PLAN_LIMIT // files.MIB} MiB, the most apply reads: plan the fleet "
            "in parts (--owner, --name or --model), each its own change"
        )


KEY_ENV = "BUNDLE_MIGRATE_PLAN_KEY"


def plan_key() -> bytes | None:
    """The key plans are signed and checked with, from the environment (None: not set).

    Where it is set, `plan` signs what it writes and every command that reads
    a plan refuses one not signed with it: an edited plan, even re-digested,
    is then refused whoever edited it.
    """
    value = os.environ.get(KEY_ENV)
    return value.encode("utf-8", "surrogateescape") if value else None


def load_plan_file(path: str) -> Plan:
    try:
        text = files.read_text(path, what="plan", limit=PLAN_LIMIT)
    except files.FileError as exc:
        raise Failure(str(exc)) from None
    source = files.shown(path)
    plan = parse_plan(text, source=source)
    key = plan_key()
    if key is not None:
        verify(plan, key, source)
    elif plan.signature:
        click.echo(
            f"bundle-migrate: note: {source} is signed, but {KEY_ENV} is not set: "
            "its signature is not checked",
            err=True,
        )
    return plan


def schema_given() -> bool:
    """Whether --schema (or its environment variable) was given, rather than defaulted."""
    source = click.get_current_context().get_parameter_source("schema")
    return source not in (ParameterSource.DEFAULT, None)


def plan_schema(plan: Plan, schema: str) -> str:
    if schema_given() and schema != plan.schema:
        raise Failure(f"the plan is for schema {plan.schema!r}, not {schema!r}")
    # The digest proves integrity, not authorship: a plan's schema is checked like an option.
    return fleet.check_schema_name(plan.schema)


def allow_other_address_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--allow-other-address",
        is_flag=True,
        help="After a failover: accept the plan's database (same name and cluster system "
        "identifier) at another server address. A physical clone matches both too, so check "
        "the addresses printed.",
    )(func)

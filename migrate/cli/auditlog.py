"""Structured audit log: one JSON object per line on stderr, each naming its run.

`bundle-migrate --log-format json COMMAND` (or BUNDLE_MIGRATE_LOG_FORMAT=json)
turns it on for every command. Any module logs through the standard `logging`
module under the `bundle_migrate` logger; extra fields become JSON keys:

    log.info("endpoint applied", extra={"event": "apply.endpoint", "run_id": run_id,
                                         "endpoint": name, "outcome": "applied"})

so the write path needs no import of this module to be audited. Every line
carries `invocation_id` (one per process, made here) and `run_id` once a journal
run is known: a record that carries one binds it for the lines after it, so a
log shipper can group a run's lines even when a later call forgets to repeat it.

The default `text` format keeps the terminal as it was: only warnings and
errors, one plain line each. Stdout stays the report's (JSON reports must parse).
"""

from __future__ import annotations

import getpass
import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

import click

from migrate.core import redact
from migrate.core.documents import json_default
from migrate.rollout.audit import LOGGER, event

FORMATS = ("text", "json")
ENV = "BUNDLE_MIGRATE_LOG_FORMAT"  # the --log-format option reads it

log = logging.getLogger(LOGGER)

_invocation_id: ContextVar[str | None] = ContextVar("invocation_id", default=None)
_run_id: ContextVar[str | None] = ContextVar("run_id", default=None)
_command: ContextVar[str | None] = ContextVar("command", default=None)

# Attributes every LogRecord has; anything else on a record came from `extra`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


def mask(text: str) -> str:
    """No secret in a log line, whoever wrote the message (linear time: see core.redact)."""
    return redact.mask(text)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(v) for v in value]
    if isinstance(value, bool | int | float) or value is None:
        return value
    return mask(str(value))


class _ContextFilter(logging.Filter):
    """Adds the invocation, command and run ids; a record naming a run binds it."""

    def filter(self, record: logging.LogRecord) -> bool:
        given = getattr(record, "run_id", None)
        if isinstance(given, str) and given:
            _run_id.set(given)
        record.invocation_id = _invocation_id.get()
        record.command = getattr(record, "command", None) or _command.get()
        record.run_id = given or _run_id.get()
        return True


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the time (click's test runner swaps it)."""

    @property  # type: ignore[override]
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, value: IO[str]) -> None:
        pass


def _loggable(value: Any) -> Any:
    """Timestamps and numbers as every document has them; anything else as text, since a
    log line must never fail to be written."""
    try:
        return json_default(value)
    except TypeError:
        return str(value)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": getattr(record, "event", None) or "log",
            "message": mask(record.getMessage()),
            "invocation_id": getattr(record, "invocation_id", None),
            "run_id": getattr(record, "run_id", None),
            "command": getattr(record, "command", None),
            "pid": record.process,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in doc:
                doc[key] = _clean(value)
        if record.exc_info and record.exc_info[0] is not None:
            doc["error"] = mask(f"{record.exc_info[0].__name__}: {record.exc_info[1]}")
        return json.dumps(doc, sort_keys=False, default=_loggable)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"bundle-migrate: {record.levelname.lower()}: {mask(record.getMessage())}"


def configure(
    fmt: str = "text", *, command: str | None = None, stream: IO[str] | None = None
) -> str:
    """Set up the `bundle_migrate` logger for this process; return the invocation id.

    Idempotent: a second call (tests invoke the CLI many times in one process)
    replaces the handler instead of adding another.
    """
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {FORMATS}")
    # Here, not at the top: the group imports this module for its --help too.
    from migrate.store.ids import new_xid

    invocation = "inv_" + new_xid()
    _invocation_id.set(invocation)
    _command.set(command)
    _run_id.set(None)
    handler = logging.StreamHandler(stream) if stream is not None else _Stderr()
    handler.addFilter(_ContextFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    if fmt == "text":
        # The command's own error line already told the person; no second one.
        handler.addFilter(lambda r: not str(getattr(r, "event", "")).startswith("command."))
    handler.set_name("bundle-migrate-audit")
    for old in [h for h in log.handlers if h.get_name() == "bundle-migrate-audit"]:
        log.removeHandler(old)
    log.addHandler(handler)
    # json: the audit trail wants every event; text: the terminal only wants trouble.
    log.setLevel(logging.INFO if fmt == "json" else logging.WARNING)
    log.propagate = False
    return invocation


def _exit_status(exc: BaseException | None) -> tuple[int, str | None]:
    if exc is None:
        return 0, None
    if isinstance(exc, SystemExit):
        code = exc.code
        return (code if isinstance(code, int) else (0 if code is None else 1)), None
    if isinstance(exc, click.exceptions.Exit):
        return exc.exit_code, None
    if isinstance(exc, click.UsageError):
        # The command group exits 1 for usage errors (2 means changes pending).
        return 1, exc.format_message()
    if isinstance(exc, click.ClickException):
        return exc.exit_code, exc.format_message()
    if isinstance(exc, KeyboardInterrupt):
        return 130, "interrupted"

    return 1, f"{type(exc).__name__}: {exc}"


def start_command(fmt: str) -> None:
    """Called by the CLI group: configure, log the start, log the exit status at the end."""
    ctx = click.get_current_context()
    command = ctx.invoked_subcommand
    configure(fmt, command=command)
    if command is None:
        return
    # Each argument is one token: a password with a raw space in it is still all masked.
    args = [redact.mask(a, token=True) for a in sys.argv[1:]]
    event("command.started", f"{command} started", argv=args, user=_user())

    def finished() -> None:
        # Runs as the context closes, while any exception is still being handled.
        status, error = _exit_status(sys.exc_info()[1])
        # 141: the reader of the output went away (`| head`), not a failure of the command.
        level = {0: logging.INFO, 2: logging.INFO, 141: logging.WARNING}.get(status, logging.ERROR)
        fields: dict[str, Any] = {"exit_status": status}
        if error:
            fields["error"] = error
        event("command.finished", f"{command} exited {status}", level=level, **fields)

    ctx.call_on_close(finished)


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"

"""The transaction shell around one endpoint's change, shared by apply and rollback.

One endpoint, one transaction: its row locked without waiting long, its
change and its journal row committed together. What keeps the transaction
from committing (a skip the checks decided, a database error) is journaled
apart, in a small transaction of its own, so no outcome is ever lost; and an
error that may have hit COMMIT itself is checked against the journal before it
is called a failure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from migrate.core import outcomes as oc
from migrate.core.outcomes import Result
from migrate.store.connection import scrub

LOCK_NOT_AVAILABLE = "55P03"  # NOWAIT and lock_timeout both raise it
COMMITTED_UNACKNOWLEDGED = "committed, though the connection was lost before the acknowledgement"

# A test seam: called with a step name and the endpoint's connection mid-transaction,
# so fault tests can kill the backend at a precise point.
Hook = Callable[[str, Connection], None]
# Writes the journal row for a skip or failure, given the connection and the result.
Journal = Callable[[Connection, Result], Any]


@dataclass(frozen=True)
class Settings:
    schema: str
    statement_timeout_s: int = 60
    # Short: an endpoint someone else is writing is skipped as busy and retried
    # on the next run, rather than holding model engine's own writers up.
    lock_timeout_ms: int = 2000


class Stop(Exception):
    """Leave the transaction (rolled back) with this result."""

    def __init__(self, result: Result) -> None:
        super().__init__(result.outcome)
        self.result = result


def sqlstate(exc: BaseException) -> str | None:
    return getattr(getattr(exc, "orig", None), "sqlstate", None)


def begin_settings(conn: Connection, settings: Settings) -> None:
    """The transaction's timeouts, in one round trip."""
    conn.execute(
        sa.text(
            "SELECT set_config('lock_timeout', :lock, true), "
            "set_config('statement_timeout', :statement, true), "
            # If this process is stopped mid-transaction, free model engine's row soon.
            "set_config('idle_in_transaction_session_timeout', :idle, true)"
        ),
        {
            "lock": f"{settings.lock_timeout_ms}ms",
            "statement": f"{settings.statement_timeout_s * 1000}ms",
            "idle": f"{max(60, settings.statement_timeout_s)}s",
        },
    )


def db_failure(exc: sa.exc.DBAPIError, engine: Engine) -> tuple[str, str]:
    """(outcome, detail) for a database error during one endpoint's transaction."""
    if sqlstate(exc) == LOCK_NOT_AVAILABLE:
        return oc.SKIPPED_BUSY, "row locked by another transaction; retry on the next run"
    text = " ".join(str(getattr(exc, "orig", exc)).split())
    return oc.FAILED, scrub(f"database error, rolled back: {text}", engine.url)


def in_transaction(
    engine: Engine,
    body: Callable[[Connection], Result],
    *,
    on_error: Callable[[str, str], Result],
    committed_anyway: Callable[[Connection], Result | None],
    journal: Journal,
) -> Result:
    """One endpoint's transaction, and the journaling of whatever kept it from committing.

    `body` runs inside the transaction: it returns the result, committed with its
    own journal row, or raises Stop to leave rolled back with a skip. A database
    error becomes `on_error(outcome, detail)`, except that an error which may have
    hit COMMIT itself is first checked: `committed_anyway` looks in the journal on
    a fresh connection and returns the committed result (already journaled) or
    None. Skips and failures are journaled by `journal`, outside the transaction.
    """
    try:
        with engine.connect() as conn, conn.begin():
            return body(conn)
    except Stop as stop:
        result = stop.result
    except sa.exc.DBAPIError as exc:
        outcome, detail = db_failure(exc, engine)
        if outcome == oc.FAILED:
            try:
                with engine.connect() as conn:
                    committed = committed_anyway(conn)
            except sa.exc.DBAPIError:
                committed = None  # still unreachable: the failure is journaled if it can be
            if committed is not None:
                return committed
        result = on_error(outcome, detail)
    return record_outside(engine, result, journal)


def record_outside(engine: Engine, result: Result, journal: Journal) -> Result:
    """Journal a skip or failure in its own small transaction.

    If even that fails (the database went away), say so in the result rather
    than lose the outcome: the run stops on failures anyway.
    """
    try:
        with engine.begin() as conn:
            journal(conn, result)
    except sa.exc.DBAPIError as exc:
        text = " ".join(str(getattr(exc, "orig", exc)).split())
        note = scrub(f" (not journaled: {text})", engine.url)
        return replace(result, detail=result.detail + note)
    return result

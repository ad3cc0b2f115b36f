"""The scan as a library call: stream the fleet, decide each endpoint."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from sqlalchemy.engine import Engine

from migrate.core.overrides import Overrides
from migrate.core.policy import PolicyParams
from migrate.core.records import Decision
from migrate.scan.workers import R, as_decided, decide, decide_chunks
from migrate.store import fleet
from migrate.store.connection import DEFAULT_STATEMENT_TIMEOUT_S, read_only


def scan(
    engine: Engine,
    *,
    schema: str,
    filters: fleet.Filters | None = None,
    params: PolicyParams | None = None,
    overrides: Overrides | None = None,
    statement_timeout_s: int = DEFAULT_STATEMENT_TIMEOUT_S,
    on_total: Callable[[int], None] | None = None,
    jobs: int = 1,
    render: Callable[[Decision], R] | None = None,
    fingerprint: bool = True,
    render_chunk: Callable[[list[Decision]], R] | None = None,
) -> Iterator[R]:
    """Decisions for every LLM endpoint, in name order, from one read-only snapshot.

    ``jobs`` above 1 reads commands on that many worker processes (see workers).
    ``render``: what is made of each decision, where it is made (see workers.decide);
    None: the decision itself. ``render_chunk`` instead: what is made of each run of
    consecutive decisions, yielded once a run (see workers.decide_chunks).
    ``fingerprint``: False for a report, which shows no fingerprints (see classify).
    """
    if render is not None and render_chunk is not None:
        raise ValueError("scan takes render or render_chunk, not both")
    params = params or PolicyParams()
    filters = filters or fleet.Filters()
    with read_only(engine, statement_timeout_s) as conn:
        query = fleet.endpoint_query(conn, schema, filters)
        if on_total is not None:
            on_total(fleet.count(conn, query))
        rows = fleet.stream_rows(conn, query)
        if render_chunk is not None:
            yield from decide_chunks(rows, params, overrides, jobs, render_chunk, fingerprint)
        else:
            yield from decide(rows, params, overrides, jobs, render or as_decided, fingerprint)

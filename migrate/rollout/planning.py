"""Making a plan from the database: who the database is, then the scan's changes, staged.

`plan_from` holds the plan in memory (reconcile's few changes); `streamed_plan`
keeps each change's item in a temporary file while the scan runs, so that
`plan` over a fleet of any size holds little more than the scan itself.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine

from migrate.core.overrides import Overrides
from migrate.core.plan import Plan, build_plan
from migrate.core.plan_stream import RECORD_PARTS, StreamedPlan, planned_chunk, stream_plan
from migrate.core.policy import PolicyParams
from migrate.core.records import Decision
from migrate.core.staging import DEFAULT_STAGES
from migrate.rollout import actor
from migrate.scan.scanner import scan
from migrate.store import fleet
from migrate.store.connection import read_only
from migrate.store.identity import database_identity
from migrate.store.spill import Spill


def _stamp(engine: Engine, statement_timeout_s: int) -> dict[str, Any]:
    """Who and when made a plan, and of which database: the header fields a scan does not give."""
    with read_only(engine, statement_timeout_s) as conn:
        identity = database_identity(conn)
    return {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "created_by": actor.operator(),
        "tool_version": actor.tool_version(),
        "database": identity,
    }


def plan_from(
    engine: Engine,
    decisions: Iterable[Decision],
    *,
    schema: str,
    policy: dict[str, Any],
    filters: dict[str, Any],
    overrides: str | None,
    stage_spec: str,
    exclude_large: bool = False,
    statement_timeout_s: int = 60,
) -> Plan:
    """A plan of these decisions' changes, stamped with the database, the operator and the time."""
    return build_plan(
        decisions,
        **_stamp(engine, statement_timeout_s),
        schema=schema,
        policy=policy,
        filters=filters,
        overrides=overrides,
        stage_spec=stage_spec,
        exclude_large=exclude_large,
    )


@contextmanager
def streamed_plan(
    engine: Engine,
    *,
    schema: str,
    filters: fleet.Filters,
    filters_doc: dict[str, Any],
    params: PolicyParams,
    overrides: Overrides | None,
    overrides_path: str | None,
    stage_spec: str = DEFAULT_STAGES,
    exclude_large: bool = False,
    statement_timeout_s: int = 60,
    jobs: int = 1,
    spill_dir: str | None = None,
    sealed: bool = True,
) -> Iterator[StreamedPlan]:
    """Scan the fleet and plan every change it finds; the plan is usable inside the block.

    Its items wait in a nameless temporary file in `spill_dir` (None: $TMPDIR),
    gone when the block ends, however it ends (migrate.store.spill). ``sealed=False``:
    its digest is left to be made (see migrate.core.plan_stream.stream_plan).
    """
    with Spill(RECORD_PARTS, spill_dir, what="the plan's items") as spill:
        stamp = _stamp(engine, statement_timeout_s)
        decisions = scan(
            engine,
            schema=schema,
            filters=filters,
            params=params,
            overrides=overrides,
            statement_timeout_s=statement_timeout_s,
            jobs=jobs,
            render_chunk=functools.partial(planned_chunk, exclude_large=exclude_large),
        )
        yield stream_plan(
            decisions,
            spill,
            **stamp,
            schema=schema,
            policy=params.as_dict(),
            filters=filters_doc,
            overrides=overrides_path,
            stage_spec=stage_spec,
            exclude_large=exclude_large,
            sealed=sealed,
        )

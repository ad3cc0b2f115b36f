"""Helpers shared by the plan/apply/rollback tests: seed a fleet, make a plan, snapshot tables."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from migrate.core.outcomes import Result
from migrate.core.plan import Plan, build_plan
from migrate.core.policy import PolicyParams
from migrate.rollout.apply import ApplyOptions, Summary, run_apply
from migrate.rollout.pacing import Pacer, Reporter
from migrate.rollout.transaction import Hook, Settings
from migrate.sandbox.seed import seed_fleet
from migrate.sandbox.synth import EndpointSpec, random_fleet
from migrate.scan.scanner import scan
from migrate.store import fleet
from migrate.store.connection import read_only
from migrate.store.identity import database_identity


def seed(me_db: Any, specs: Iterable[EndpointSpec]) -> list[EndpointSpec]:
    specs = list(specs)
    seed_fleet(me_db.url, specs, schema=me_db.schema, schema_version=me_db.version)
    return specs


def seed_random(me_db: Any, n: int = 40, seed_value: int = 7) -> list[EndpointSpec]:
    return seed(me_db, random_fleet(n, seed_value, schema_version=me_db.version))


def make_plan(
    me_db: Any,
    *,
    stages: str = "1,10%,50%,100%",
    exclude_large: bool = False,
    filters: fleet.Filters | None = None,
    params: PolicyParams | None = None,
) -> Plan:
    params = params or PolicyParams()
    with read_only(me_db.engine, 30) as conn:
        identity = database_identity(conn)
    decisions = scan(me_db.engine, schema=me_db.schema, filters=filters, params=params)
    return build_plan(
        decisions,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        created_by="tester",
        tool_version="test",
        database=identity,
        schema=me_db.schema,
        policy=params.as_dict(),
        filters={},
        overrides=None,
        stage_spec=stages,
        exclude_large=exclude_large,
    )


def apply(
    me_db: Any,
    plan: Plan,
    *,
    execute: bool = True,
    stage: int | None = None,
    all_stages: bool = True,
    max_failures: int = 0,
    hook: Hook | None = None,
    reporter: Reporter | None = None,
    allow_other_address: bool = False,
    ignore_incomplete: bool = False,
    redeploy: Any = None,
    retry_aborted: bool = False,
) -> Summary:
    options = ApplyOptions(
        settings=Settings(schema=me_db.schema),
        execute=execute,
        stage=stage,
        all_stages=all_stages and stage is None,
        max_failures=max_failures,
        pacer=Pacer(),
        allow_other_address=allow_other_address,
        ignore_incomplete_stages=ignore_incomplete,
        redeploy=redeploy,
        retry_aborted=retry_aborted,
    )
    return run_apply(me_db.engine, plan, options, reporter, hook=hook)


class Collect(Reporter):
    """Keeps what a run reports: notes, and each endpoint's outcome (real or previewed)."""

    def __init__(self) -> None:
        self.notes: list[str] = []
        self.outcomes: dict[str, str] = {}
        self.details: dict[str, str] = {}

    def note(self, text: str) -> None:
        self.notes.append(text)

    def result(self, result: Result) -> None:
        self.outcomes[result.endpoint_name] = result.outcome
        self.details[result.endpoint_name] = result.detail

    def preview(self, result: Result, diff_text: str) -> None:
        self.result(result)


def set_endpoint(me_db: Any, endpoint_id: str, assignment: str, **params: Any) -> None:
    """UPDATE one endpoint row, as model engine or a person would."""
    with me_db.engine.begin() as conn:
        conn.execute(
            sa.text(f'UPDATE "{me_db.schema}".endpoints SET {assignment} WHERE id = :id'),
            {"id": endpoint_id, **params},
        )


def run_statuses(me_db: Any) -> list[str]:
    with me_db.engine.connect() as conn:
        return list(
            conn.execute(sa.text("SELECT status FROM bundle_migration.runs ORDER BY started_at"))
            .scalars()
            .all()
        )


def table_digests(engine: Engine) -> dict[str, str]:
    """md5 of every row of every user table, in a stable order: equal means byte-identical."""
    with engine.connect() as conn:
        tables = conn.execute(
            sa.text(
                "SELECT table_schema, table_name FROM information_schema.tables "
                "WHERE table_type = 'BASE TABLE' AND table_schema NOT IN "
                "('pg_catalog', 'information_schema') ORDER BY 1, 2"
            )
        ).all()
        digests = {}
        for schema, table in tables:
            name = f'"{schema}"."{table}"'
            digests[name] = conn.execute(
                sa.text(
                    "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "
                    f"FROM {name} t"
                )
            ).scalar_one()
        return digests


def schemas(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return {r[0] for r in conn.execute(sa.text("SELECT nspname FROM pg_namespace"))}


def endpoints(me_db: Any) -> dict[str, dict[str, Any]]:
    with me_db.engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                f"SELECT id, name, current_bundle_id, CAST(endpoint_metadata AS text) AS meta, "
                f'last_updated_at, endpoint_status FROM "{me_db.schema}".endpoints'
            )
        ).mappings()
        return {r["id"]: dict(r) for r in rows}


def bundle(me_db: Any, bundle_id: str) -> dict[str, Any]:
    with me_db.engine.connect() as conn:
        return dict(
            conn.execute(
                sa.text(f'SELECT * FROM "{me_db.schema}".bundles WHERE id = :id'), {"id": bundle_id}
            )
            .mappings()
            .one()
        )


def journal_rows(me_db: Any, where: str = "true") -> list[dict[str, Any]]:
    with me_db.engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                sa.text(f"SELECT * FROM bundle_migration.changes WHERE {where} ORDER BY id")
            ).mappings()
        ]


def bundle_count(me_db: Any) -> int:
    with me_db.engine.connect() as conn:
        return conn.execute(sa.text(f'SELECT count(*) FROM "{me_db.schema}".bundles')).scalar_one()

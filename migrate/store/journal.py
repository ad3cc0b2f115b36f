"""The `bundle_migration` journal: install it from versioned SQL files, read and write it.

Installation works like Flyway: files `sql/journal/NNN_name.sql` are applied in
order, each once, and recorded with a checksum in `schema_version`; a file that
changed after it was applied, or a journal newer than this tool, is refused
rather than guessed at. Every function takes the caller's connection and runs
inside the caller's transaction: the caller decides what commits together.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from migrate.core.outcomes import (
    APPLIED,
    DEPLOY_FAILED,
    HEALTHY,
    NOT_DEPLOYED,
    SKIPPED_ROLLED_BACK,
    UNHEALTHY,
)
from migrate.store.connection import DatabaseError
from migrate.store.ddl import split_statements
from migrate.store.rows import column_type, qident

SCHEMA = "bundle_migration"
_FILE = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
# Serialises two tools installing at once (apply holds the run lock already,
# but status or a future command might not).
_INSTALL_LOCK = 0x626D6A73  # "bmjs"


class JournalError(DatabaseError):
    """The journal schema is not one this tool can use."""


@dataclass(frozen=True)
class SqlFile:
    version: int
    name: str
    text: str

    @property
    def checksum(self) -> str:
        return "sha256:" + hashlib.sha256(self.text.encode("utf-8")).hexdigest()


def journal_files() -> list[SqlFile]:
    folder = resources.files("migrate.sql") / "journal"
    files = []
    for entry in folder.iterdir():
        match = _FILE.match(entry.name)
        if match:
            files.append(SqlFile(int(match.group(1)), entry.name, entry.read_text("utf-8")))
    files.sort(key=lambda f: f.version)
    versions = [f.version for f in files]
    if versions != list(range(1, len(files) + 1)):
        raise JournalError(f"journal SQL files are not numbered 001.. without gaps: {versions}")
    return files


def exists(conn: Connection) -> bool:
    """Whether the journal tables are there (a dry run treats none as empty history)."""
    return conn.execute(sa.text(f"SELECT to_regclass('{SCHEMA}.changes')")).scalar() is not None


def installed_versions(conn: Connection) -> dict[int, str]:
    if conn.execute(sa.text(f"SELECT to_regclass('{SCHEMA}.schema_version')")).scalar() is None:
        return {}
    rows = conn.execute(sa.text(f"SELECT version, checksum FROM {SCHEMA}.schema_version"))
    return {int(v): c for v, c in rows}


def install(conn: Connection, files: list[SqlFile] | None = None) -> list[str]:
    """Apply the journal files not yet applied; return their names.

    `files` defaults to every file this tool ships; a prefix of them installs
    an older journal, which is how the upgrade path is tested.
    """
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _INSTALL_LOCK})
    files = journal_files() if files is None else files
    have = installed_versions(conn)
    known = {f.version: f for f in files}
    newer = sorted(v for v in have if v not in known)
    if newer:
        raise JournalError(
            f"the {SCHEMA} journal has schema version {newer[-1]}, newer than this "
            f"bundle-migrate knows ({len(files)}): use a newer bundle-migrate"
        )
    for version, checksum in have.items():
        if known[version].checksum != checksum:
            raise JournalError(
                f"journal SQL file {known[version].name} differs from the one applied to this "
                "database; a journal file must never change once released"
            )
    applied = []
    for f in files:
        if f.version in have:
            continue
        for statement in split_statements(f.text):
            conn.exec_driver_sql(statement.replace("%", "%%"))
        conn.execute(
            sa.text(
                f"INSERT INTO {SCHEMA}.schema_version (version, name, checksum) VALUES (:v, :n, :c)"
            ),
            {"v": f.version, "n": f.name, "c": f.checksum},
        )
        applied.append(f.name)
    return applied


# Runs ------------------------------------------------------------------------------


def start_run(
    conn: Connection,
    *,
    run_id: str,
    kind: str,
    schema: str,
    plan_digest: str | None,
    operator: str,
    host: str,
    options: dict[str, Any],
) -> None:
    conn.execute(
        sa.text(
            f"INSERT INTO {SCHEMA}.runs "
            "(run_id, kind, schema, plan_digest, operator, host, options) "
            "VALUES (:r, :k, :s, :d, :o, :h, CAST(:opts AS jsonb))"
        ),
        {
            "r": run_id,
            "k": kind,
            "s": schema,
            "d": plan_digest,
            "o": operator,
            "h": host,
            "opts": _json(options),
        },
    )


def finish_run(conn: Connection, run_id: str, status: str) -> None:
    conn.execute(
        sa.text(
            f"UPDATE {SCHEMA}.runs SET status = :s, finished_at = now() "
            "WHERE run_id = :r AND status = 'running'"
        ),
        {"s": status, "r": run_id},
    )


def close_orphaned_runs(conn: Connection, schema: str) -> list[str]:
    """Runs on `schema` still marked running while we hold its lock died without a word.

    Only that schema's: the lock is per schema, so a run on another schema may
    well be alive right now.
    """
    rows = conn.execute(
        sa.text(
            f"UPDATE {SCHEMA}.runs SET status = 'interrupted', finished_at = now() "
            "WHERE status = 'running' AND schema = :s RETURNING run_id"
        ),
        {"s": schema},
    )
    return [r[0] for r in rows]


def interrupted_runs(conn: Connection, schema: str, kind: str, plan_digest: str) -> list[str]:
    """Interrupted runs of this plan on `schema` that no later run of it has ended since.

    `reconcile` reports them unfinished until such a run ends; a rerun that finds
    the plan complete has nothing to do, and records a run with no changes instead.
    """
    rows = conn.execute(
        sa.text(
            f"SELECT r.run_id FROM {SCHEMA}.runs r WHERE r.schema = :s AND r.kind = :k "
            "AND r.plan_digest = :d AND r.status = 'interrupted' AND NOT EXISTS ("
            f"SELECT 1 FROM {SCHEMA}.runs l WHERE l.schema = :s AND l.kind = :k "
            "AND l.plan_digest = :d AND l.status IN ('finished', 'failed', 'stopped') "
            "AND l.started_at > r.started_at) ORDER BY r.started_at, r.run_id"
        ),
        {"s": schema, "k": kind, "d": plan_digest},
    )
    return [r[0] for r in rows]


def run_schema(run: dict[str, Any]) -> str | None:
    """The model engine schema a run worked on.

    A journal not yet upgraded to 002 (read by a dry run, which never installs)
    has no schema column; those runs carried it in their options.
    """
    return run.get("schema") or (run.get("options") or {}).get("schema")


# Changes ---------------------------------------------------------------------------

_CHANGE_COLUMNS = (
    "run_id",
    "kind",
    "stage",
    "endpoint_id",
    "endpoint_name",
    "plan_digest",
    "bundle_before",
    "bundle_after",
    "command_digest_before",
    "command_digest_after",
    "metadata_before",
    "metadata_after",
    "outcome",
    "detail",
    "deploy_state",
)
_JSONB = ("metadata_before", "metadata_after")


def record_change(conn: Connection, **values: Any) -> int:
    """Insert one change row; metadata_* are JSON text, stored as jsonb. Returns its id."""
    unknown = set(values) - set(_CHANGE_COLUMNS)
    if unknown:
        raise ValueError(f"unknown journal columns {sorted(unknown)}")
    cols = [c for c in _CHANGE_COLUMNS if c in values]
    exprs = [f"CAST(:{c} AS jsonb)" if c in _JSONB else f":{c}" for c in cols]
    return conn.execute(
        sa.text(
            f"INSERT INTO {SCHEMA}.changes ({', '.join(cols)}) VALUES ({', '.join(exprs)}) "
            "RETURNING id"
        ),
        values,
    ).scalar_one()


def apply_history(conn: Connection, plan_digest: str, endpoint_id: str) -> dict[str, Any] | None:
    """The latest `applied` change of this plan to this endpoint, reverted or not, whole.

    `SELECT *`: a dry run reads journals of any version, and one from before 003
    has no deploy columns (their values read as None).
    """
    row = (
        conn.execute(
            sa.text(
                f"SELECT * FROM {SCHEMA}.changes WHERE kind = 'apply' AND outcome = 'applied' "
                "AND plan_digest = :d AND endpoint_id = :e ORDER BY id DESC LIMIT 1"
            ),
            {"d": plan_digest, "e": endpoint_id},
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def plan_outcomes(conn: Connection, plan_digest: str, *, redeploy: bool = False) -> dict[str, str]:
    """Per endpoint, where this plan stands: its latest apply outcome, or rolled-back.

    An `applied` change that was reverted reads as `skipped-rolled-back`, so a
    rerun neither re-applies it nor counts it as pending. One written but not yet
    healthy reads as `applied-not-deployed` (or `applied-unhealthy` when its
    health check failed); with `redeploy`, so does one written by a rows-only run,
    which no redeploy has brought to its pods.
    """
    rows = conn.execute(
        sa.text(
            # to_jsonb: a journal from before 003 has no deploy_state column.
            f"SELECT DISTINCT ON (endpoint_id) endpoint_id, outcome, reverted_by, "
            f"to_jsonb(c) ->> 'deploy_state' FROM {SCHEMA}.changes c "
            "WHERE kind = 'apply' AND plan_digest = :d "
            "ORDER BY endpoint_id, (outcome = 'applied') DESC, id DESC"
        ),
        {"d": plan_digest},
    )
    result = {}
    for endpoint_id, outcome, reverted_by, deploy_state in rows:
        if reverted_by is not None:
            outcome = SKIPPED_ROLLED_BACK
        elif outcome == APPLIED:
            outcome = _deployed(deploy_state, redeploy)
        result[endpoint_id] = outcome
    return result


def _deployed(deploy_state: str | None, redeploy: bool) -> str:
    if deploy_state == HEALTHY or (deploy_state is None and not redeploy):
        return APPLIED
    if deploy_state == UNHEALTHY:
        return DEPLOY_FAILED
    return NOT_DEPLOYED


def _selection(
    plan_digest: str | None, run_id: str | None, stage: int | None, endpoint_names: tuple[str, ...]
) -> tuple[list[str], dict[str, Any]]:
    """WHERE terms on the apply changes (alias c) a rollback selects."""
    where = ["c.kind = 'apply'", "c.outcome = 'applied'"]
    params: dict[str, Any] = {}
    if plan_digest is not None:
        where.append("c.plan_digest = :d")
        params["d"] = plan_digest
    if run_id is not None:
        where.append("c.run_id = :r")
        params["r"] = run_id
    if stage is not None:
        where.append("c.stage = :s")
        params["s"] = stage
    if endpoint_names:
        where.append("c.endpoint_name = ANY(:names)")
        params["names"] = list(endpoint_names)
    return where, params


def live_applied_changes(
    conn: Connection,
    *,
    plan_digest: str | None = None,
    run_id: str | None = None,
    stage: int | None = None,
    endpoint_names: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """Applied, not yet reverted changes to roll back, whole rows, newest first (undo order)."""
    where, params = _selection(plan_digest, run_id, stage, endpoint_names)
    rows = conn.execute(
        sa.text(
            f"SELECT c.* FROM {SCHEMA}.changes c "
            f"WHERE {' AND '.join(where)} AND c.reverted_by IS NULL ORDER BY c.id DESC"
        ),
        params,
    )
    return [dict(r) for r in rows.mappings()]


def undeployed_rollbacks(
    conn: Connection,
    *,
    plan_digest: str | None = None,
    run_id: str | None = None,
    stage: int | None = None,
    endpoint_names: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """Rollback rows of this selection that no redeploy has brought to health yet.

    A rollback killed between its write and its redeploy, one whose redeploy
    failed, or one made rows-only: a rollback that redeploys finishes them.
    """
    where, params = _selection(plan_digest, run_id, stage, endpoint_names)
    rows = conn.execute(
        sa.text(
            f"SELECT r.* FROM {SCHEMA}.changes c JOIN {SCHEMA}.changes r ON r.id = c.reverted_by "
            f"WHERE {' AND '.join(where)} "
            "AND (to_jsonb(r) ->> 'deploy_state') IS DISTINCT FROM 'healthy' ORDER BY r.id"
        ),
        params,
    )
    return [dict(r) for r in rows.mappings()]


def reverting_change(conn: Connection, change_id: int) -> dict[str, Any] | None:
    """The rollback row that reverted this change, if one did."""
    row = (
        conn.execute(
            sa.text(
                f"SELECT r.* FROM {SCHEMA}.changes c "
                f"JOIN {SCHEMA}.changes r ON r.id = c.reverted_by WHERE c.id = :id"
            ),
            {"id": change_id},
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def run_row(conn: Connection, run_id: str) -> dict[str, Any] | None:
    row = (
        conn.execute(sa.text(f"SELECT * FROM {SCHEMA}.runs WHERE run_id = :r"), {"r": run_id})
        .mappings()
        .first()
    )
    return dict(row) if row else None


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def change_row(conn: Connection, change_id: int, *, lock: bool) -> dict[str, Any]:
    """One change row, as a rollback reads it (locked when it is about to revert it)."""
    suffix = " FOR UPDATE" if lock else ""
    return dict(
        conn.execute(
            sa.text(
                f"SELECT id, run_id, stage, plan_digest, endpoint_id, endpoint_name, "
                f"bundle_before, bundle_after, reverted_by, command_digest_before "
                f"FROM {SCHEMA}.changes WHERE id = :id{suffix}"
            ),
            {"id": change_id},
        )
        .mappings()
        .one()
    )


def metadata_unchanged(conn: Connection, schema: str, endpoint_id: str, change_id: int) -> bool:
    """Whether the endpoint's metadata is still, value for value, what the change left."""
    return conn.execute(
        sa.text(
            # A recreation by model engine rewrote the args: that is what the change left.
            "SELECT CAST(e.endpoint_metadata AS jsonb) IS NOT DISTINCT FROM COALESCE("
            "NULLIF(to_jsonb(c) -> 'deployed_metadata', CAST('null' AS jsonb)), c.metadata_after) "
            f"FROM {qident(schema)}.endpoints e, {SCHEMA}.changes c "
            "WHERE e.id = :e AND c.id = :c"
        ),
        {"e": endpoint_id, "c": change_id},
    ).scalar_one()


def restore_endpoint(
    conn: Connection, schema: str, endpoint_id: str, change_id: int, *, touch: bool
) -> str:
    """Put back the bundle and metadata the change found; the metadata after, as jsonb text.

    Server-side from the journal row, so the metadata comes back value for
    value. `touch` sets last_updated_at, which older schemas lack.
    """
    meta_type = column_type(conn, schema, "endpoints", "endpoint_metadata")
    sets = [
        "current_bundle_id = c.bundle_before",
        f"endpoint_metadata = CAST(c.metadata_before AS {meta_type})",
    ]
    if touch:
        sets.append("last_updated_at = now()")
    return conn.execute(
        sa.text(
            f"UPDATE {qident(schema)}.endpoints e SET {', '.join(sets)} "
            f"FROM {SCHEMA}.changes c WHERE c.id = :c AND e.id = :e "
            "RETURNING CAST(CAST(e.endpoint_metadata AS jsonb) AS text)"
        ),
        {"c": change_id, "e": endpoint_id},
    ).scalar_one()


def mark_reverted(conn: Connection, change_id: int, by: int) -> None:
    """The change was undone by rollback row `by`; a redeployed change ends `rolled-back`."""
    conn.execute(
        sa.text(
            f"UPDATE {SCHEMA}.changes SET reverted_by = :n, "
            "deploy_state = CASE WHEN deploy_state IS NULL THEN NULL ELSE 'rolled-back' END, "
            "deploy_updated_at = CASE WHEN deploy_state IS NULL THEN NULL ELSE now() END "
            "WHERE id = :c AND reverted_by IS NULL"
        ),
        {"n": by, "c": change_id},
    )

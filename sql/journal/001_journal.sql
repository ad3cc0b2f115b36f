-- bundle-migrate's journal: every run and every change it made or declined to make.
--
-- Like Liquibase's DATABASECHANGELOG, it is the history a reviewer reads and the
-- cursor a resumed run follows. It lives in its own schema, bundle_migration, so
-- model engine's tables are never altered. Applied once by migrate/journal.py,
-- which records this file's version in schema_version; later changes go in new
-- files (002_..., 003_...), never in edits to this one.

CREATE SCHEMA IF NOT EXISTS bundle_migration;

CREATE TABLE IF NOT EXISTS bundle_migration.schema_version (
    version integer PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE bundle_migration.runs (
    run_id text PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('apply', 'rollback')),
    plan_digest text,
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    status text NOT NULL DEFAULT 'running'
        CHECK (status IN ('running', 'finished', 'failed', 'interrupted')),
    operator text NOT NULL,
    host text NOT NULL,
    options jsonb NOT NULL DEFAULT '{}'::jsonb,
    CHECK ((status = 'running') = (finished_at IS NULL))
);

CREATE TABLE bundle_migration.changes (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id text NOT NULL REFERENCES bundle_migration.runs (run_id),
    kind text NOT NULL CHECK (kind IN ('apply', 'rollback')),
    stage integer,
    endpoint_id text NOT NULL,
    endpoint_name text NOT NULL,
    plan_digest text,
    bundle_before text,
    bundle_after text,
    command_digest_before text,
    command_digest_after text,
    metadata_before jsonb,
    metadata_after jsonb,
    outcome text NOT NULL CHECK (
        outcome IN (
            'applied',
            'skipped-drifted',
            'skipped-busy',
            'skipped-not-ready',
            'skipped-already-applied',
            'skipped-rolled-back',
            'failed',
            'rolled-back',
            'rollback-skipped-drifted'
        )
    ),
    detail text,
    created_at timestamptz NOT NULL DEFAULT now(),
    reverted_by bigint REFERENCES bundle_migration.changes (id),
    -- A write always knows both bundles; only writes may be reverted.
    CHECK (outcome NOT IN ('applied', 'rolled-back')
           OR (bundle_before IS NOT NULL AND bundle_after IS NOT NULL)),
    CHECK (reverted_by IS NULL OR (kind = 'apply' AND outcome = 'applied'))
);

CREATE INDEX changes_run_idx ON bundle_migration.changes (run_id, id);
CREATE INDEX changes_endpoint_idx ON bundle_migration.changes (endpoint_id, id);

-- The database itself refuses to apply one plan twice to an endpoint, even if
-- two runs ever raced past the advisory lock: at most one live (not reverted)
-- applied change per plan and endpoint.
CREATE UNIQUE INDEX changes_one_live_apply
    ON bundle_migration.changes (plan_digest, endpoint_id)
    WHERE kind = 'apply' AND outcome = 'applied' AND reverted_by IS NULL;

-- One rollback row reverts exactly one change.
CREATE UNIQUE INDEX changes_reverted_by_once
    ON bundle_migration.changes (reverted_by)
    WHERE reverted_by IS NOT NULL;

-- 003: redeploys through model engine's API, and plans aborted by a rollback.
--
-- Applied once, on top of 002, by migrate/store/journal.py. Never edit this file
-- after release: a later change goes in 004.

-- A written change moves through written -> redeploy-requested -> healthy | failed
-- -> rolled-back as the tool redeploys it and watches it come back. NULL: the run
-- wrote rows only (--no-redeploy, or a release before redeploys).
ALTER TABLE bundle_migration.changes
    ADD COLUMN deploy_state text CHECK (
        deploy_state IN ('written', 'redeploy-requested', 'healthy', 'failed', 'rolled-back')
    ),
    ADD COLUMN deploy_detail text,
    -- When the state last moved (the database's clock): a resumed run compares it
    -- with the endpoint's last_updated_at to tell whether an unanswered PUT landed.
    ADD COLUMN deploy_updated_at timestamptz,
    -- The build model engine queued for the PUT; NULL until a PUT was answered.
    ADD COLUMN deploy_task text,
    -- With force_bundle_recreation model engine builds its own bundle and rewrites
    -- the recorded args: what the endpoint ran and held once that PUT was answered.
    ADD COLUMN deployed_bundle text,
    ADD COLUMN deployed_metadata jsonb,
    ADD CONSTRAINT changes_deploy_state_only_on_writes
        CHECK (deploy_state IS NULL OR outcome IN ('applied', 'rolled-back'));

-- Argo Rollouts' abort: once a rollback (by an operator, or of an endpoint that
-- failed its health check) undoes part of a plan, applying that plan again is
-- refused until an operator says to go on (apply --retry-aborted), which closes
-- the abort. At most one open abort per plan.
CREATE TABLE bundle_migration.aborts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    plan_digest text NOT NULL,
    run_id text NOT NULL REFERENCES bundle_migration.runs (run_id),
    reason text NOT NULL,
    aborted_at timestamptz NOT NULL DEFAULT now(),
    cleared_by text REFERENCES bundle_migration.runs (run_id),
    cleared_at timestamptz,
    CHECK ((cleared_by IS NULL) = (cleared_at IS NULL))
);
CREATE UNIQUE INDEX aborts_one_open ON bundle_migration.aborts (plan_digest)
    WHERE cleared_at IS NULL;

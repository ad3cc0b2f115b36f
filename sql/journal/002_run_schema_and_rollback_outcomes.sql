-- 002: runs name their model engine schema; rollback outcomes say exactly what happened.
--
-- Applied once, on top of 001, by migrate/journal.py; a journal installed by the
-- first release upgrades in place. Never edit this file after release either.

-- The run lock is per model engine schema, so a run must record its schema:
-- closing orphaned runs, and `rollback --run`, act on that schema only. Every
-- run written under 001 carried its schema in options, which fills the column.
ALTER TABLE bundle_migration.runs ADD COLUMN schema text;
UPDATE bundle_migration.runs SET schema = options ->> 'schema' WHERE schema IS NULL;
ALTER TABLE bundle_migration.runs ALTER COLUMN schema SET NOT NULL;
CREATE INDEX runs_schema_status_idx ON bundle_migration.runs (schema, status);

-- 'stopped': the run ended early on purpose (a stage was incomplete, or had more
-- failures than --max-failures), which is not the same as a failed endpoint.
ALTER TABLE bundle_migration.runs DROP CONSTRAINT runs_status_check;
ALTER TABLE bundle_migration.runs ADD CONSTRAINT runs_status_check
    CHECK (status IN ('running', 'finished', 'failed', 'interrupted', 'stopped'));

-- Rollback skips get their own outcomes: an endpoint mid-update in model engine
-- (not READY), and a change some earlier rollback already undid.
ALTER TABLE bundle_migration.changes DROP CONSTRAINT changes_outcome_check;
ALTER TABLE bundle_migration.changes ADD CONSTRAINT changes_outcome_check CHECK (
    outcome IN (
        'applied',
        'skipped-drifted',
        'skipped-busy',
        'skipped-not-ready',
        'skipped-already-applied',
        'skipped-rolled-back',
        'failed',
        'rolled-back',
        'rollback-skipped-drifted',
        'rollback-skipped-not-ready',
        'rollback-skipped-already'
    )
);

-- Under 001 a rollback that did not happen still named the bundle it would have
-- restored as bundle_after, which reads as if it had. Correct those rows (the
-- change row they refer to keeps that bundle as its bundle_before) and keep it so.
UPDATE bundle_migration.changes SET outcome = 'rollback-skipped-already'
    WHERE kind = 'rollback' AND outcome = 'rollback-skipped-drifted'
      AND detail = 'already rolled back';
UPDATE bundle_migration.changes SET bundle_after = NULL
    WHERE kind = 'rollback' AND outcome <> 'rolled-back' AND bundle_after IS NOT NULL;
ALTER TABLE bundle_migration.changes ADD CONSTRAINT changes_rollback_after_only_when_done
    CHECK (kind <> 'rollback' OR outcome = 'rolled-back' OR bundle_after IS NULL);

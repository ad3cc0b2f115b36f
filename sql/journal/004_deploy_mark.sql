-- 004: what an endpoint's row looked like just before its PUT.
--
-- Applied once, on top of 003, by migrate/store/journal.py. Never edit this file
-- after release: a later change goes in 005.

-- {"status", "task", "touched"}: the endpoint's endpoint_status, creation_task_id
-- and last_updated_at when the PUT was announced, plus whether model engine then
-- reported worker counts ("counts"). A resumed run compares the row with it to
-- tell whether a PUT whose answer it never saw landed: each value against its own
-- earlier value, never against our clock (model engine stamps last_updated_at with
-- its own host's time). NULL: announced by a release before 004, which compared
-- last_updated_at with deploy_updated_at instead.
ALTER TABLE bundle_migration.changes ADD COLUMN deploy_mark jsonb;

"""What happened to one endpoint in a run: the journal's outcome names and the result record.

The names are the journal's vocabulary (`bundle_migration.changes.outcome`),
shared by the write path, the dry run, the stage gate and every report, so
they live here rather than beside the SQL that stores them.
"""

from __future__ import annotations

from dataclasses import dataclass

APPLIED = "applied"
SKIPPED_DRIFTED = "skipped-drifted"
SKIPPED_BUSY = "skipped-busy"
SKIPPED_NOT_READY = "skipped-not-ready"
SKIPPED_ALREADY_APPLIED = "skipped-already-applied"
SKIPPED_ROLLED_BACK = "skipped-rolled-back"
FAILED = "failed"
ROLLED_BACK = "rolled-back"
ROLLBACK_SKIPPED_DRIFTED = "rollback-skipped-drifted"
ROLLBACK_SKIPPED_NOT_READY = "rollback-skipped-not-ready"
ROLLBACK_SKIPPED_ALREADY = "rollback-skipped-already"
OUTCOMES = (
    APPLIED,
    SKIPPED_DRIFTED,
    SKIPPED_BUSY,
    SKIPPED_NOT_READY,
    SKIPPED_ALREADY_APPLIED,
    SKIPPED_ROLLED_BACK,
    FAILED,
    ROLLED_BACK,
    ROLLBACK_SKIPPED_DRIFTED,
    ROLLBACK_SKIPPED_NOT_READY,
    ROLLBACK_SKIPPED_ALREADY,
)

# What a dry run reports where the real run would write.
WOULD_APPLY = "would-apply"
WOULD_ROLL_BACK = "would-roll-back"
# A dry run's word for a change already written whose redeploy a real run would finish.
WOULD_REDEPLOY = "would-redeploy"

# Where a written change stands in its redeploy (journal column deploy_state).
# None: rows only, no redeploy was asked for.
WRITTEN = "written"
REDEPLOY_REQUESTED = "redeploy-requested"
HEALTHY = "healthy"
UNHEALTHY = "failed"
DEPLOY_ROLLED_BACK = "rolled-back"
DEPLOY_STATES = (WRITTEN, REDEPLOY_REQUESTED, HEALTHY, UNHEALTHY, DEPLOY_ROLLED_BACK)

# A plan's view of an endpoint whose change is written but not (yet) healthy:
# not journal outcomes, derived from applied rows and their deploy_state.
NOT_DEPLOYED = "applied-not-deployed"
DEPLOY_FAILED = "applied-unhealthy"


@dataclass(frozen=True)
class Result:
    endpoint_id: str
    endpoint_name: str
    stage: int | None
    outcome: str
    detail: str = ""
    bundle_before: str | None = None
    bundle_after: str | None = None
    # The journal row a write made (None for skips), and its redeploy's state.
    change_id: int | None = None
    deploy_state: str | None = None
    owner: str | None = None

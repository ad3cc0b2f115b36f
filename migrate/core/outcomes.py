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


@dataclass(frozen=True)
class Result:
    endpoint_id: str
    endpoint_name: str
    stage: int | None
    outcome: str
    detail: str = ""
    bundle_before: str | None = None
    bundle_after: str | None = None

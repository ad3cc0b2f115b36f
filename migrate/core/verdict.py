"""Whether a plan item may be written now: the checks shared by the real and the dry run.

`evaluate` is pure: it judges a plan item against the endpoint as read (and
the journal's history of it), so a dry run reports exactly the outcome the
real run will journal, including refusals such as a bundle_metadata that is
not an object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from migrate.core import command as cmd
from migrate.core import outcomes as oc
from migrate.core.fingerprint import basis_fingerprint, endpoint_fingerprint
from migrate.core.plan import PlanItem
from migrate.core.records import EndpointRecord


@dataclass(frozen=True)
class Verdict:
    """None outcome: go ahead (detail is a note); otherwise the skip and why."""

    outcome: str | None
    detail: str = ""
    command_after: list[str] | None = None
    streaming_after: list[str] | None = None


def _edited(array: list[str] | None, script_after: str | None, eager: bool, what: str) -> list[str]:
    if array is None or script_after is None:
        raise cmd.CommandError(
            cmd.VERIFICATION_FAILED, f"the plan and the bundle disagree on the {what}"
        )
    parsed = cmd.parse_command(array)  # the shape [bash, -c, script], or CommandError
    if cmd.set_enforce_eager(parsed, eager) != script_after:  # edits the parse just made
        raise cmd.CommandError(
            cmd.VERIFICATION_FAILED,
            f"the plan's new {what} is not the current one with only --enforce-eager changed",
        )
    return [array[0], array[1], script_after]


def _bad_bundle_metadata(value: Any) -> bool:
    return value is not None and not isinstance(value, dict)


def evaluate(
    item: PlanItem, record: EndpointRecord | None, history: dict[str, Any] | None
) -> Verdict:
    """Whether this plan item may be written now, against the endpoint as it is."""
    if history is not None:
        if history["reverted_by"] is not None:
            return Verdict(
                oc.SKIPPED_ROLLED_BACK,
                f"applied by {history['run_id']} and rolled back since; make a new plan to "
                "apply it again",
            )
        return Verdict(
            oc.SKIPPED_ALREADY_APPLIED,
            f"applied by {history['run_id']} as {history['bundle_after']}",
        )
    if record is None:
        return Verdict(oc.SKIPPED_DRIFTED, "the endpoint no longer exists")
    if record.status != "READY":
        return Verdict(oc.SKIPPED_NOT_READY, f"endpoint status is {record.status}, not READY")
    note = ""
    if endpoint_fingerprint(record) != item.fingerprint:
        if basis_fingerprint(record) != item.basis_fingerprint:
            if record.current_bundle_id != item.bundle_id:
                what = f"it now runs {record.current_bundle_id}, the plan saw {item.bundle_id}"
            else:
                what = "its command or metadata changed"
            return Verdict(oc.SKIPPED_DRIFTED, f"changed since the plan: {what}; not overwritten")
        note = (
            "only its status or last_updated_at changed since the plan; "
            "nothing the decision read changed"
        )
    bundle = record.bundle
    if bundle is None:
        return Verdict(oc.FAILED, f"bundle {record.current_bundle_id} is missing")
    if _bad_bundle_metadata(bundle.bundle_metadata):
        # The copy marks the new bundle inside this object; anything else would be replaced.
        kind = type(bundle.bundle_metadata).__name__
        return Verdict(
            oc.FAILED, f"refused: bundle_metadata is not a JSON object (a {kind}); not copied"
        )
    try:
        command_after = _edited(bundle.command, item.command_after, item.eager_after, "command")
        streaming_after = None
        if (
            bundle.streaming_command == bundle.command
            and item.streaming_command_after == item.command_after
        ):
            streaming_after = command_after  # model engine's usual case: the same command
        elif bundle.streaming_command is not None or item.streaming_command_after is not None:
            streaming_after = _edited(
                bundle.streaming_command,
                item.streaming_command_after,
                item.eager_after,
                "streaming command",
            )
    except cmd.CommandError as err:
        return Verdict(oc.FAILED, f"refused: {err.reason}")
    return Verdict(None, note, command_after, streaming_after)


# Statuses in which model engine is writing the endpoint itself: a rollback now races it.
MODEL_ENGINE_WORKING = frozenset({"UPDATE_PENDING", "UPDATE_IN_PROGRESS", "DELETE_IN_PROGRESS"})


@dataclass(frozen=True)
class RollbackFacts:
    """What a rollback of one change reads before it may write."""

    reverted_by: int | None
    endpoint_exists: bool
    current_bundle_id: str | None = None
    status: str | None = None
    metadata_unchanged: bool = True
    previous_bundle_exists: bool = True


def judge_rollback(change: dict[str, Any], facts: RollbackFacts, *, force: bool) -> Verdict:
    """Whether this change may be rolled back now (None outcome: go ahead, detail a note).

    An endpoint touched since the run, or in the middle of a model engine update
    (not READY), is left alone unless `force`: a rollback that clobbers a newer
    change is how Helm and Argo rollbacks leave systems degraded.
    """
    if facts.reverted_by is not None:
        return Verdict(
            oc.ROLLBACK_SKIPPED_ALREADY,
            f"already rolled back by journal change {facts.reverted_by}",
        )
    if not facts.endpoint_exists:
        return Verdict(oc.ROLLBACK_SKIPPED_DRIFTED, "the endpoint no longer exists")
    reasons = []
    if facts.current_bundle_id != change["bundle_after"]:
        reasons.append(
            f"it now runs {facts.current_bundle_id}, the run gave it {change['bundle_after']}"
        )
    if not facts.metadata_unchanged:
        reasons.append("its metadata changed since the run")
    status = facts.status
    # UPDATE_FAILED is where a failed build leaves an endpoint: model engine is done
    # with it, so re-pointing races nothing (and it is the usual state to roll back from).
    if status is not None and status in MODEL_ENGINE_WORKING:
        if not force:
            also = ("; also changed since the run: " + "; ".join(reasons)) if reasons else ""
            return Verdict(
                oc.ROLLBACK_SKIPPED_NOT_READY,
                f"endpoint status is {status}: model engine is updating it{also}; "
                "rerun the rollback once it is done (--force re-points it anyway)",
            )
        reasons.append(f"endpoint status {status}")
    if reasons and not force:
        return Verdict(
            oc.ROLLBACK_SKIPPED_DRIFTED,
            "changed since the run: " + "; ".join(reasons) + " (--force restores it anyway)",
        )
    if not facts.previous_bundle_exists:
        return Verdict(oc.FAILED, f"the previous bundle {change['bundle_before']} is gone")
    return Verdict(None, ("forced over: " + "; ".join(reasons)) if reasons else "")

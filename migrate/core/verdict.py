"""Whether a plan item may be written now: the checks shared by the real and the dry run.

`evaluate` is pure: it judges a plan item against the endpoint as read (and
the journal's history of it), so a dry run reports exactly the outcome the
real run will journal, including refusals such as a bundle_metadata that is
not an object.

A plan is a selection, not a script. Its digest is a plain SHA-256 anyone can
recompute, so nothing in an item is trusted as a value to write: the decision
is made again from the row under the plan's recorded policy (`rederive`), and
an item whose action, commands or args differ from it is refused. What is
written comes from that re-derivation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from migrate.core import outcomes as oc
from migrate.core.classify import classify
from migrate.core.fingerprint import basis_fingerprint, endpoint_fingerprint
from migrate.core.overrides import AUTO, KEEP, Overrides, Rule
from migrate.core.plan import ItemPolicy, PlanItem
from migrate.core.records import Decision, EndpointRecord


@dataclass(frozen=True)
class Verdict:
    """None outcome: go ahead (detail is a note); otherwise the skip and why.

    A go-ahead carries every value the write sets, each re-derived from the
    endpoint as read: the command, the streaming command and the endpoint's
    `_llm.vllm_additional_args` (None: leave them as they are).
    """

    outcome: str | None
    detail: str = ""
    command_after: list[str] | None = None
    streaming_after: list[str] | None = None
    args_after: dict[str, Any] | None = None


def _bad_bundle_metadata(value: Any) -> bool:
    return value is not None and not isinstance(value, dict)


def _literal_glob(name: str) -> str:
    """A glob matching exactly `name`, whatever it holds (fnmatch reads [*] as a literal *)."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def _overrides(item: PlanItem, record: EndpointRecord, policy: ItemPolicy) -> Overrides | None:
    """The operator override the item says decided it, as the one rule that matches it.

    The plan keeps the overrides file's name, not its content; which section
    matched is in the item's flags. A flag the plan's policy cannot explain (no
    overrides file was used) is re-derived without it, and so refused.
    """
    sections = [s for s in (KEEP, AUTO) if f"override-{s}" in item.flags]
    if not sections or policy.overrides is None:
        return None
    pattern = (_literal_glob(record.name),)
    return Overrides(tuple(Rule(s, endpoints=pattern) for s in sections), policy.overrides)


def rederive(item: PlanItem, record: EndpointRecord) -> Decision | None:
    """The decision the plan's policy makes for this endpoint as it is now (None: no policy)."""
    if item.policy is None:
        return None
    return classify(record, item.policy.params, _overrides(item, record, item.policy))


def _differences(item: PlanItem, decision: Decision) -> list[str]:
    """What the plan item says that the re-derivation does not; empty when they agree."""
    if decision.action != item.action:
        return [f"the action is {decision.action} ({decision.reason}), not {item.action}"]
    written = (
        ("new command", item.command_after, decision.command_after),
        ("new streaming command", item.streaming_command_after, decision.streaming_command_after),
        ("_llm.vllm_additional_args", item.args_after, decision.args_after),
    )
    return [f"its {what} differs" for what, planned, derived in written if planned != derived]


def _judge_content(item: PlanItem, record: EndpointRecord, note: str) -> Verdict:
    """A plan is a selection, not a script: write only what the policy derives from the row."""
    decision = rederive(item, record)
    if decision is None:
        return Verdict(oc.FAILED, "refused: the plan item carries no policy to re-derive it under")
    differences = _differences(item, decision)
    if differences:
        params = item.policy.params if item.policy else None
        under = f"threshold {params.threshold}, recorded {params.recorded}" if params else ""
        return Verdict(
            oc.FAILED,
            "refused: the plan does not match what its policy derives from the endpoint now "
            f"({under}): " + "; ".join(differences) + ". Make a new plan.",
        )
    bundle = record.bundle
    assert bundle is not None and bundle.command is not None and decision.command_after
    streaming = None
    if bundle.streaming_command is not None and decision.streaming_command_after is not None:
        streaming = [*bundle.streaming_command[:2], decision.streaming_command_after]
    return Verdict(
        None,
        note,
        command_after=[*bundle.command[:2], decision.command_after],
        streaming_after=streaming,
        args_after=decision.args_after,
    )


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
    return _judge_content(item, record, note)


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

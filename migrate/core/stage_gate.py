"""Which stages a run works on, and when it must stop. Pure, shared by the real and the dry run.

A stage is complete when each of its endpoints is done or can never be done by
this plan. The next stage starts only after that (Argo's promote-or-abort):
busy, not-ready and failed endpoints are retried by rerunning, and until then
a canary that did not go through holds everything behind it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from migrate.core import outcomes as oc
from migrate.core.plan import Plan, PlanError

DONE = frozenset(
    {oc.APPLIED, oc.SKIPPED_ALREADY_APPLIED, oc.SKIPPED_DRIFTED, oc.SKIPPED_ROLLED_BACK}
)
# What a dry run predicts as done: its would-apply is the real run's applied.
_SETTLED = DONE | {oc.WOULD_APPLY}


class StageError(PlanError):
    """A stage the plan does not have."""


def stage_progress(plan: Plan, outcomes: dict[str, str]) -> dict[int, tuple[int, int]]:
    """Per stage: (endpoints done, endpoints planned)."""
    progress = {}
    for stage in plan.stages:
        items = plan.stage_items(stage.number)
        done = sum(1 for i in items if outcomes.get(i.endpoint_id) in DONE)
        progress[stage.number] = (done, len(items))
    return progress


def select_stages(
    plan: Plan, outcomes: dict[str, str], stage: int | None, all_stages: bool
) -> tuple[list[int], list[str]]:
    """The stages to work on and notes for the operator.

    Default: the first stage not yet complete, never more, so a bare
    `apply --execute` cannot roll the whole fleet at once.
    """
    progress = stage_progress(plan, outcomes)
    incomplete = [n for n, (done, total) in progress.items() if done < total]
    notes: list[str] = []
    if stage is not None:
        if stage not in progress:
            raise StageError(f"the plan has stages 1..{len(plan.stages)}, not {stage}")
        earlier = [n for n in incomplete if n < stage]
        if earlier:
            notes.append(f"warning: earlier stage(s) {', '.join(map(str, earlier))} not complete")
        return [stage], notes
    if not incomplete:
        notes.append("every stage of this plan is complete; nothing to do")
        return [], notes
    if all_stages:
        return incomplete, notes
    first = incomplete[0]
    name = plan.stages[first - 1].name
    notes.append(
        f"working on stage {first} ({name}) only, the first not complete; "
        "--stage N or --all-stages to choose"
    )
    return [first], notes


@dataclass
class StageTally:
    """One stage's outcomes as a run goes through it, and the two reasons to stop."""

    number: int
    max_failures: int
    counts: Counter[str] = field(default_factory=Counter)

    def add(self, outcome: str) -> str | None:
        """Count one endpoint; a reason to stop right now, or None."""
        self.counts[outcome] += 1
        failures = self.counts[oc.FAILED]
        if outcome == oc.FAILED and failures > self.max_failures:
            return (
                f"stopped in stage {self.number}: {failures} failure(s), more than "
                f"--max-failures {self.max_failures}"
            )
        return None

    def incomplete(self, next_stage: int | None) -> str | None:
        """Why the next stage may not start (None: this stage is complete)."""
        pending = sum(n for outcome, n in self.counts.items() if outcome not in _SETTLED)
        if not pending:
            return None
        parts = [
            f"{self.counts[oc.SKIPPED_BUSY]} busy",
            f"{self.counts[oc.SKIPPED_NOT_READY]} not ready",
        ]
        if self.counts[oc.FAILED]:
            parts.append(f"{self.counts[oc.FAILED]} failed")
        text = f"stage {self.number} incomplete ({', '.join(parts)}): rerun to continue"
        if next_stage is not None:
            text += (
                f"; stage {next_stage} was not started (--stage {next_stage} starts it regardless)"
            )
        return text

"""Which stages a run works on, and when it must stop. Pure, shared by the real and the dry run.

A stage is complete only when every one of its endpoints is changed (and, when
the run redeploys, healthy). A failed, rolled-back, drifted, busy or not-ready
endpoint leaves it incomplete, and the next stage never starts before the
stage ahead of it is complete (Argo's promote-or-abort): busy, not-ready and
failed endpoints are retried by rerunning; a drifted or rolled-back one needs
a new plan, or an operator who says out loud to go on without it
(--ignore-incomplete-stages).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from migrate.core import outcomes as oc
from migrate.core.plan import Plan, PlanError

DONE = frozenset({oc.APPLIED, oc.SKIPPED_ALREADY_APPLIED})
# What a dry run predicts as done: its would-apply is the real run's applied.
_SETTLED = DONE | {oc.WOULD_APPLY, oc.WOULD_REDEPLOY}
# How an unfinished endpoint is described, most actionable first.
_UNDONE_WORDS = (
    (oc.FAILED, "failed"),
    (oc.DEPLOY_FAILED, "unhealthy"),
    (oc.SKIPPED_ROLLED_BACK, "rolled back"),
    (oc.NOT_DEPLOYED, "not redeployed"),
    (oc.SKIPPED_DRIFTED, "drifted"),
    (oc.SKIPPED_BUSY, "busy"),
    (oc.SKIPPED_NOT_READY, "not ready"),
)


class StageError(PlanError):
    """A stage the plan does not have, or one the gate does not open."""


def stage_progress(plan: Plan, outcomes: dict[str, str]) -> dict[int, tuple[int, int]]:
    """Per stage: (endpoints done, endpoints planned)."""
    progress = {}
    for stage in plan.stages:
        items = plan.stage_items(stage.number)
        done = sum(1 for i in items if outcomes.get(i.endpoint_id) in DONE)
        progress[stage.number] = (done, len(items))
    return progress


def select_stages(
    plan: Plan,
    outcomes: dict[str, str],
    stage: int | None,
    all_stages: bool,
    *,
    ignore_incomplete: bool = False,
) -> tuple[list[int], list[str]]:
    """The stages to work on and notes for the operator.

    Default: the first stage not yet complete, never more, so a bare
    `apply --execute` cannot roll the whole fleet at once. `--stage N` with an
    earlier stage incomplete is refused unless `ignore_incomplete`, and then
    said loudly.
    """
    progress = stage_progress(plan, outcomes)
    incomplete = [n for n, (done, total) in progress.items() if done < total]
    notes: list[str] = []
    if stage is not None:
        if stage not in progress:
            raise StageError(f"the plan has stages 1..{len(plan.stages)}, not {stage}")
        earlier = [n for n in incomplete if n < stage]
        if earlier:
            which = ", ".join(map(str, earlier))
            detail = "; ".join(describe_stage(plan, outcomes, n) for n in earlier)
            if not ignore_incomplete:
                raise StageError(
                    f"stage {stage} may not start: earlier stage(s) {which} not complete "
                    f"({detail}); finish them first, or --ignore-incomplete-stages to go on "
                    "regardless"
                )
            notes.append(
                f"WARNING: --ignore-incomplete-stages: starting stage {stage} although stage(s) "
                f"{which} are not complete ({detail})"
            )
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


def describe_stage(plan: Plan, outcomes: dict[str, str], number: int) -> str:
    """`stage 1: 1 rolled back, 2 not started` for the endpoints not done."""
    counts: Counter[str] = Counter(
        outcomes.get(i.endpoint_id, "not started") for i in plan.stage_items(number)
    )
    return f"stage {number}: {_undone_words(counts) or 'complete'}"


def _undone_words(counts: Counter[str]) -> str:
    words = [f"{counts[o]} {word}" for o, word in _UNDONE_WORDS if counts[o]]
    known = _SETTLED | {o for o, _ in _UNDONE_WORDS}
    other = sum(n for o, n in counts.items() if o not in known)
    if other:
        words.append(f"{other} not started")
    return ", ".join(words)


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

    @property
    def undone(self) -> int:
        return sum(n for outcome, n in self.counts.items() if outcome not in _SETTLED)

    def incomplete(self, next_stage: int | None) -> str | None:
        """Why the next stage may not start (None: this stage is complete)."""
        if not self.undone:
            return None
        text = f"stage {self.number} incomplete ({_undone_words(self.counts)})"
        retry = self.counts[oc.SKIPPED_BUSY] + self.counts[oc.SKIPPED_NOT_READY]
        retry += self.counts[oc.FAILED] + self.counts[oc.NOT_DEPLOYED]
        text += ": rerun to continue" if retry else ": it needs an operator"
        if next_stage is not None:
            text += (
                f"; stage {next_stage} was not started (--stage {next_stage} "
                "--ignore-incomplete-stages starts it regardless)"
            )
        return text

"""Whether model engine took a PUT, judged from its endpoint row before and after. Pure.

A PUT whose answer never arrived (a dropped connection, a timeout, a proxy's
502 or 504) may have landed. Model engine's GET is no witness: it reads a
read replica through a record cache, so it can show READY for seconds after a
PUT. The endpoint row on the primary is: model engine's update first stamps
the row (`endpoint_status = UPDATE_PENDING`, `last_updated_at`), then queues
the build and stores its `creation_task_id`.

So the row is marked just before the PUT, and compared after. Each value is
compared with its own earlier value, never with our clock: model engine stamps
`last_updated_at` with its own host's time, which may be minutes off.

One answer is not ambiguous: a 503 from model engine itself ("Message broker
temporarily unavailable. Please retry.") comes after the row was stamped
UPDATE_PENDING but before any build was queued. There only a new task id
counts, and the PUT must be sent again or the endpoint sits in UPDATE_PENDING
with nothing building.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RowMark:
    """The parts of an endpoint row a PUT changes; as JSON in the journal."""

    status: str | None
    task: str | None
    touched: str | None  # last_updated_at as the database renders it; None if no column

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "task": self.task, "touched": self.touched}

    @classmethod
    def from_json(cls, doc: Any) -> RowMark | None:
        if not isinstance(doc, dict):
            return None
        return cls(
            status=_text(doc.get("status")),
            task=_text(doc.get("task")),
            touched=_text(doc.get("touched")),
        )


def landed(before: RowMark, now: RowMark, *, refused_by_model_engine: bool = False) -> bool:
    """Whether the row shows a PUT sent after `before` was taken.

    `refused_by_model_engine`: the last answer was model engine's own refusal
    (its JSON 503), so only a queued build (a new task id) counts as landed.
    """
    if now.task != before.task:
        return True  # a build was queued
    if now.status == "UPDATE_IN_PROGRESS" and before.status != "UPDATE_IN_PROGRESS":
        return True  # a build is running
    if refused_by_model_engine:
        return False
    return now.touched != before.touched or now.status != before.status


def _text(value: Any) -> str | None:
    return None if value is None else str(value)

"""Whether a redeployed endpoint is healthy, judged from what model engine's API reports. Pure.

`READY` is not health: model engine sets it once the Kubernetes objects are
written, and a vLLM server that runs out of memory capturing CUDA graphs
crash-loops with the status still `READY`. Only the deployment's worker
counts show that (`unavailable_workers > 0`; during a rolling update the old
pods keep serving, so `available_workers` alone hides it). Two cases have no
counts worth reading: an endpoint scaled to zero has no pods until traffic
comes, and a multinode (LeaderWorkerSet) endpoint reports placeholders
(available = replicas, unavailable = 0). There the status is all there is, and
the verdict says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

HEALTHY = "healthy"
WAITING = "waiting"
FAILED = "failed"


@dataclass(frozen=True)
class EndpointState:
    """The parts of `GET /v1/llm/model-endpoints/{name}` that health is judged on."""

    status: str
    status_reason: str | None = None
    bundle_name: str | None = None
    min_workers: int | None = None
    available_workers: int | None = None
    unavailable_workers: int | None = None

    @classmethod
    def from_api(cls, doc: Any) -> EndpointState:
        """Read a GET response leniently: servers differ in which fields they fill."""
        doc = doc if isinstance(doc, dict) else {}
        spec = doc.get("spec") if isinstance(doc.get("spec"), dict) else {}
        deployment = spec.get("deployment_state")
        deployment = deployment if isinstance(deployment, dict) else {}
        status = doc.get("status") or spec.get("status") or "UNKNOWN"
        return cls(
            status=str(status),
            status_reason=_text(spec.get("status_reason") or doc.get("status_reason")),
            bundle_name=_text(spec.get("bundle_name")),
            min_workers=_count(deployment.get("min_workers")),
            available_workers=_count(deployment.get("available_workers")),
            unavailable_workers=_count(deployment.get("unavailable_workers")),
        )

    def describe(self) -> str:
        """One short phrase for a progress line: `READY 1/2 (1 unavailable)`."""
        if self.available_workers is None and self.unavailable_workers is None:
            return self.status
        available = self.available_workers or 0
        unavailable = self.unavailable_workers or 0
        text = f"{self.status} {available}/{available + unavailable}"
        return text + (f" ({unavailable} unavailable)" if unavailable else "")


@dataclass(frozen=True)
class Health:
    verdict: str  # HEALTHY, WAITING or FAILED
    reason: str

    @property
    def healthy(self) -> bool:
        return self.verdict == HEALTHY


def judge(state: EndpointState, *, multinode: bool = False) -> Health:
    """The verdict on one observation; the watch decides what a sequence of them means."""
    if state.status == "UPDATE_FAILED":
        return Health(FAILED, f"UPDATE_FAILED: {state.status_reason or 'no reason given'}")
    if state.status == "DELETE_IN_PROGRESS":
        return Health(FAILED, "the endpoint is being deleted")
    if state.status != "READY":
        return Health(WAITING, f"status {state.status}")
    unavailable = state.unavailable_workers
    if multinode:
        # LeaderWorkerSet counts are placeholders: a crash loop would not show in them.
        return Health(HEALTHY, "READY (multinode: worker counts are placeholders, status only)")
    if unavailable is not None and unavailable > 0:
        return Health(WAITING, f"READY but {unavailable} worker(s) unavailable")
    available = state.available_workers
    if available is None or unavailable is None:
        return Health(HEALTHY, "READY (the server reports no worker counts: status only)")
    if available >= 1:
        return Health(HEALTHY, f"READY, {available} worker(s) available, none unavailable")
    if state.min_workers == 0:
        return Health(HEALTHY, "READY, scaled to zero: no pods to judge until traffic comes")
    return Health(WAITING, "READY but no worker available yet")


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def _text(value: Any) -> str | None:
    return None if value is None else str(value)

"""How the stand-in behaves: build and start-up times, endpoints that fail, faults to inject.

Endpoints are chosen by shell globs on their names, as operators choose them.
"""

from __future__ import annotations

import fnmatch
import threading
from dataclasses import dataclass, field


@dataclass
class Fault:
    """Answer the next `times` matching requests with `status` instead of serving them.

    `status` None serves the request normally, after `delay_s` (a slow or hung
    server); with `served`, the request is served first and its answer lost.
    """

    status: int | None
    method: str = "*"
    endpoint: str = "*"
    times: int = 1
    retry_after: str | None = None
    html: bool = False  # a proxy's HTML error page instead of JSON
    # Serve the request, then lose the answer (a proxy timing out after the fact).
    served: bool = False
    delay_s: float = 0.0

    def matches(self, method: str, endpoint: str) -> bool:
        return fnmatch.fnmatchcase(method, self.method) and fnmatch.fnmatchcase(
            endpoint, self.endpoint
        )


@dataclass
class Behaviour:
    # UPDATE_PENDING lasts this long after a PUT, then READY (or UPDATE_FAILED).
    build_seconds: float = 2.0
    # After READY, the new pod is unavailable this long before it serves.
    start_seconds: float = 2.0
    # Pods that run out of memory capturing CUDA graphs: they crash-loop whenever
    # their command lacks --enforce-eager, with the status still READY.
    crashloop_without_eager: tuple[str, ...] = ()
    # The next build of a matching endpoint fails, with model engine's status_reason
    # (one failure per entry: a retry, or a rollback's build, then succeeds).
    fail_builds: dict[str, str] = field(default_factory=dict)
    # Endpoints scaled to zero (no pods until traffic) and multinode ones
    # (LeaderWorkerSet: worker counts are placeholders).
    scaled_to_zero: tuple[str, ...] = ()
    multinode: tuple[str, ...] = ()
    replicas: int = 1
    # None: model engine's default authentication (the user name is the team).
    # Otherwise API key -> team; any other key is refused with 401.
    keys: dict[str, str] | None = None
    faults: list[Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # Set when the stand-in stops: hung requests give up at once.
    stopping: threading.Event = field(default_factory=threading.Event, repr=False)

    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def crashloops(self, name: str) -> bool:
        return matches_any(name, self.crashloop_without_eager)

    def build_failure(self, name: str) -> str | None:
        with self._lock:
            for pattern, reason in list(self.fail_builds.items()):
                if fnmatch.fnmatchcase(name, pattern):
                    del self.fail_builds[pattern]
                    return reason
        return None

    def take_fault(self, method: str, endpoint: str) -> Fault | None:
        """The next fault for this request, counted down; None: serve it."""
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and fault.matches(method, endpoint):
                    fault.times -= 1
                    return fault
        return None

    def team_of(self, user: str) -> str | None:
        if not user:
            return None
        if self.keys is None:
            return user
        return self.keys.get(user)


def matches_any(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)

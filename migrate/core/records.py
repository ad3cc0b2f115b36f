"""Plain records passed between the database layer and the pure core.

The database layer builds these from rows; everything else (policy, plan,
report) reads them and never touches a connection.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class BundleRecord:
    """The columns of a bundle row that the decision depends on."""

    id: str
    flavor: str | None
    command: list[str] | None
    streaming_command: list[str] | None
    worker_command: list[str] | None
    created_at: datetime | None = None
    bundle_metadata: dict[str, Any] | None = None


@dataclass(frozen=True)
class EndpointRecord:
    """An LLM endpoint joined to the bundle it currently runs (None when missing)."""

    id: str
    name: str
    owner: str | None
    status: str | None
    endpoint_type: str | None
    metadata: dict[str, Any]
    current_bundle_id: str | None
    bundle: BundleRecord | None
    created_at: datetime | None = None
    last_updated_at: datetime | None = None

    @property
    def llm(self) -> dict[str, Any]:
        value = self.metadata.get("_llm") if isinstance(self.metadata, dict) else None
        return value if isinstance(value, dict) else {}


@dataclass
class Decision:
    """What the new rule means for one endpoint, with the evidence for it."""

    endpoint_id: str
    endpoint_name: str
    owner: str | None
    model_name: str | None
    param_count_b: int | None
    bundle_id: str | None
    endpoint_status: str | None
    gpu_memory_utilization: float | None
    eager_now: bool
    eager_after: bool
    action: str
    reason: str
    flags: list[str] = field(default_factory=list)
    command_after: str | None = None
    # Model engine's own reading of the name (param_count_b is the total): it
    # decided the default utilization, nothing else.
    model_engine_param_count_b: int | None = None
    # Not part of the scan's JSON contract, used by plan and apply.
    provenance: str | None = None
    evidence: list[str] = field(default_factory=list)
    inference_framework: str | None = None
    streaming_command_after: str | None = None
    args_after: dict[str, Any] | None = None
    # Set for changes only: the state apply must find before it writes.
    fingerprint: str | None = None
    basis_fingerprint: str | None = None

    @property
    def changes(self) -> bool:
        return self.action in ("drop-eager", "add-eager")

"""Plain decisions and plans for the pure tests of staging, plans and tickets."""

from __future__ import annotations

from typing import Any

from migrate.core.plan import Plan, build_plan
from migrate.core.records import Decision

SCRIPT = (
    "s5cmd cp s3://m/* model_files;python -m vllm_server --model model_files "
    "--tensor-parallel-size 1 --port 5005 --gpu-memory-utilization 0.9 --enforce-eager"
)
IDENTITY = {"database": "llm", "host": "10.0.0.5", "port": 5432, "system_identifier": "7301"}


def decision(name: str, model: str = "llama-3-8b", size: int | None = 8, **kw: Any) -> Decision:
    defaults: dict[str, Any] = {
        "endpoint_id": f"end_{name}",
        "endpoint_name": name,
        "owner": "team",
        "model_name": model,
        "param_count_b": size,
        "bundle_id": f"bun_{name}",
        "endpoint_status": "READY",
        "gpu_memory_utilization": 0.9,
        "eager_now": True,
        "eager_after": False,
        "action": "drop-eager",
        "reason": "flag injected by the old rule",
        "command_after": SCRIPT.replace(" --enforce-eager", ""),
        "fingerprint": f"sha256:{name}",
        "basis_fingerprint": f"sha256:b{name}",
        "provenance": "injected",
    }
    defaults.update(kw)
    return Decision(**defaults)


# What build_plan and stream_plan take besides the decisions: a fixed plan header.
HEADER: dict[str, Any] = {
    "created_at": "2026-07-01T00:00:00+00:00",
    "created_by": "alice",
    "tool_version": "0.1.0",
    "database": IDENTITY,
    "schema": "hosted_model_inference",
    "policy": {"threshold": 0.95, "recorded": "keep"},
    "filters": {},
    "overrides": None,
}


def plan_of(decisions: list[Decision], **kw: Any) -> Plan:
    return build_plan(decisions, **{**HEADER, **kw})


# xid -----------------------------------------------------------------------------

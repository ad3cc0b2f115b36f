"""The rows of model engine's tables for one synthetic endpoint, as COPY wants them.

Every column of ``bundles`` and ``endpoints`` (the 2026 superset; 2024 tables
take a prefix of the columns) with plausible values per flavor and framework,
so the CHECK constraints of the real tables hold. Pure: no database.
"""

from __future__ import annotations

import json
from typing import Any

from migrate.sandbox.synth import (
    RUNNABLE_FLAVORS,
    STREAMING_FLAVOR,
    EndpointSpec,
    build_command,
    build_streaming_command,
    build_worker_command,
    creation_task_id,
    endpoint_metadata,
)

# Column lists per schema version; the 2026 tables add columns, never drop any.
BUNDLE_COLUMNS_2024: tuple[str, ...] = (
    "id",
    "name",
    "created_by",
    "created_at",
    "bundle_metadata",
    "model_artifact_ids",
    "owner",
    "flavor",
    "location",
    "version",
    "requirements",
    "env_params",
    "packaging_type",
    "app_config",
    "artifact_requirements",
    "artifact_app_config",
    "artifact_framework_type",
    "artifact_pytorch_image_tag",
    "artifact_location",
    "cloudpickle_artifact_load_predict_fn",
    "cloudpickle_artifact_load_model_fn",
    "zip_artifact_load_predict_fn_module_path",
    "zip_artifact_load_model_fn_module_path",
    "runnable_image_repository",
    "runnable_image_tag",
    "runnable_image_command",
    "runnable_image_predict_route",
    "runnable_image_healthcheck_route",
    "runnable_image_env",
    "runnable_image_protocol",
    "runnable_image_readiness_initial_delay_seconds",
    "streaming_enhanced_runnable_image_streaming_command",
    "streaming_enhanced_runnable_image_streaming_predict_route",
    "triton_enhanced_runnable_image_model_repository",
    "triton_enhanced_runnable_image_model_replicas",
    "triton_enhanced_runnable_image_num_cpu",
    "triton_enhanced_runnable_image_commit_tag",
    "triton_enhanced_runnable_image_storage",
    "triton_enhanced_runnable_image_memory",
    "triton_enhanced_runnable_image_readiness_initial_delay_seconds",
)
BUNDLE_COLUMNS_2026: tuple[str, ...] = BUNDLE_COLUMNS_2024 + (
    "runnable_image_routes",
    "runnable_image_extra_routes",
    "runnable_image_forwarder_type",
    "runnable_image_worker_command",
    "runnable_image_worker_env",
)
ENDPOINT_COLUMNS_2024: tuple[str, ...] = (
    "id",
    "name",
    "created_by",
    "created_at",
    "last_updated_at",
    "current_bundle_id",
    "endpoint_metadata",
    "creation_task_id",
    "endpoint_type",
    "destination",
    "endpoint_status",
    "owner",
    "public_inference",
)
ENDPOINT_COLUMNS_2026: tuple[str, ...] = ENDPOINT_COLUMNS_2024 + (
    "status_reason",
    "task_expires_seconds",
    "queue_message_timeout_seconds",
)
COLUMNS = {
    "2024": (BUNDLE_COLUMNS_2024, ENDPOINT_COLUMNS_2024),
    "2026": (BUNDLE_COLUMNS_2026, ENDPOINT_COLUMNS_2026),
}
# json/jsonb columns: serialised here, because COPY's text format takes them as text.
JSON_COLUMNS = frozenset(
    {
        "bundle_metadata",
        "requirements",
        "env_params",
        "app_config",
        "artifact_app_config",
        "runnable_image_env",
        "runnable_image_worker_env",
        "triton_enhanced_runnable_image_model_replicas",
        "endpoint_metadata",
    }
)

_IMAGE_REPOSITORIES = {
    "vllm": "vllm",
    "sglang": "sglang",
    "text_generation_inference": "ghcr.io/huggingface/text-generation-inference",
    "deepspeed": "instant-llm",
    "lightllm": "lightllm",
    "tensorrt_llm": "tensorrt-llm",
}


def _pick(spec: EndpointSpec, options: tuple[Any, ...]) -> Any:
    # Deterministic cosmetic variety without another random stream: the id's
    # counter digits are as good as random here.
    return options[int(spec.endpoint_id[-3:], 32) % len(options)]


def bundle_row(spec: EndpointSpec) -> dict[str, Any]:
    """Every column of the spec's current bundle, as Python values (2026 superset).

    JSON columns hold Python objects; None means NULL.
    """
    flavor = spec.flavor
    row: dict[str, Any] = dict.fromkeys(BUNDLE_COLUMNS_2026)
    row.update(
        id=spec.bundle_id,
        name=spec.name,
        created_by=spec.created_by or spec.owner,
        created_at=spec.bundle_created_at,
        bundle_metadata={},
        model_artifact_ids=[],
        owner=spec.owner,
        flavor=flavor,
    )
    command = build_command(spec)
    if flavor in RUNNABLE_FLAVORS:
        if spec.is_llm:
            assert spec.framework is not None
            repository = _IMAGE_REPOSITORIES[spec.framework]
            tag = spec.framework_image_tag or "latest"
            env: dict[str, Any] = {}
            if spec.model_cache_enabled:
                env["MODEL_CACHE_DIR"] = "/mnt/model-cache"
            delay = 10 if spec.generation <= "C" else 30
        else:
            repository = f"scale-ml/{spec.name.rsplit('-', 1)[0]}"
            tag = _pick(spec, ("v1.4.2", "2024-03-11-a1b2c3d", "latest", "v0.9.0"))
            env = {"LOG_LEVEL": "info"}
            delay = _pick(spec, (30, 120, 300))
        row.update(
            runnable_image_repository=repository,
            runnable_image_tag=tag,
            runnable_image_command=command,
            runnable_image_predict_route="/predict",
            runnable_image_healthcheck_route="/readyz" if spec.generation >= "F" else "/health",
            runnable_image_env=env,
            runnable_image_protocol="http",
            runnable_image_readiness_initial_delay_seconds=delay,
        )
        if spec.is_vllm and spec.generation >= "F":
            row["runnable_image_forwarder_type"] = "default"
            row["runnable_image_extra_routes"] = []
        if spec.is_vllm and spec.generation >= "G":
            row["runnable_image_routes"] = ["/v1/chat/completions", "/v1/completions"]
        if spec.multinode:
            row["runnable_image_worker_command"] = build_worker_command(spec)
            row["runnable_image_worker_env"] = {"RAY_CLUSTER_SIZE": str(spec.nodes_per_worker)}
    if flavor == STREAMING_FLAVOR:
        row["streaming_enhanced_runnable_image_streaming_command"] = build_streaming_command(
            spec, command
        )
        row["streaming_enhanced_runnable_image_streaming_predict_route"] = "/stream"
    elif flavor == "triton_enhanced_runnable_image":
        row.update(
            triton_enhanced_runnable_image_model_repository=(
                f"s3://scale-ml/triton-models/{spec.owner}/{spec.name}"
            ),
            triton_enhanced_runnable_image_model_replicas={"model": "1"},
            triton_enhanced_runnable_image_num_cpu=_pick(spec, (2, 4, 8)),
            triton_enhanced_runnable_image_commit_tag="2a8e4f1c",
            triton_enhanced_runnable_image_storage="10Gi",
            triton_enhanced_runnable_image_memory="16Gi",
            triton_enhanced_runnable_image_readiness_initial_delay_seconds=300,
        )
    elif flavor in ("cloudpickle_artifact", "zip_artifact"):
        location = f"s3://scale-ml/model_bundles/{spec.owner}/{spec.bundle_id}"
        requirements = ["torch==1.13.1", "transformers==4.30.2", "numpy<2"]
        pytorch_tag = "1.13.1-cuda11.6-cudnn8-runtime"
        row.update(
            location=location,
            version="v1",
            requirements=requirements,
            env_params={"framework_type": "pytorch", "pytorch_image_tag": pytorch_tag},
            packaging_type="cloudpickle" if flavor == "cloudpickle_artifact" else "zip",
            app_config=_pick(spec, (None, {"batch_size": 8})),
            artifact_requirements=requirements,
            artifact_app_config=None,
            artifact_framework_type="pytorch",
            artifact_pytorch_image_tag=pytorch_tag,
            artifact_location=location,
        )
        if flavor == "cloudpickle_artifact":
            row["cloudpickle_artifact_load_predict_fn"] = "load_predict_fn"
            row["cloudpickle_artifact_load_model_fn"] = "load_model_fn"
        else:
            row["zip_artifact_load_predict_fn_module_path"] = "app.predict.load_predict_fn"
            row["zip_artifact_load_model_fn_module_path"] = "app.model.load_model_fn"
    return row


def endpoint_row(spec: EndpointSpec) -> dict[str, Any]:
    """Every column of the spec's endpoint row, as Python values (2026 superset)."""
    is_async = spec.endpoint_type == "async"
    return {
        "id": spec.endpoint_id,
        "name": spec.name,
        "created_by": spec.created_by or spec.owner,
        "created_at": spec.created_at,
        "last_updated_at": spec.last_updated_at,
        "current_bundle_id": spec.bundle_id,
        "endpoint_metadata": endpoint_metadata(spec),
        "creation_task_id": creation_task_id(spec),
        "endpoint_type": spec.endpoint_type,
        "destination": "launch-endpoint-id-" + spec.endpoint_id.replace("_", "-"),
        "endpoint_status": spec.status,
        "owner": spec.owner,
        "public_inference": spec.endpoint_id.endswith("0"),
        "status_reason": (
            "image build failed: see build logs" if spec.status == "UPDATE_FAILED" else None
        ),
        "task_expires_seconds": 86400 if is_async else None,
        "queue_message_timeout_seconds": 3600 if is_async else None,
    }


# text[] columns: preformatted as array literals, several times faster than
# letting psycopg escape each element with a regex.
ARRAY_COLUMNS = frozenset(
    {
        "model_artifact_ids",
        "artifact_requirements",
        "runnable_image_command",
        "runnable_image_routes",
        "runnable_image_extra_routes",
        "runnable_image_worker_command",
        "streaming_enhanced_runnable_image_streaming_command",
    }
)


def pg_text_array(items: list[str]) -> str:
    """A text[] literal: every element double-quoted, backslashes and quotes escaped."""
    return (
        "{" + ",".join('"' + i.replace("\\", "\\\\").replace('"', '\\"') + '"' for i in items) + "}"
    )


def row_values(
    row: dict[str, Any], columns: tuple[str, ...], json_idx: list[int], array_idx: list[int]
) -> list[Any]:
    values = [row[c] for c in columns]
    for i in json_idx:
        if values[i] is not None:
            values[i] = json.dumps(values[i])
    for i in array_idx:
        if values[i] is not None:
            values[i] = pg_text_array(values[i])
    return values

"""The stored commands and metadata of a synthetic endpoint, generation by generation.

Renders ``runnable_image_command`` (and its streaming twin and the multinode
worker command) byte for byte in the shape model engine's bundle builder of the
spec's generation produced, and ``endpoint_metadata`` as it stored it. From
generation G on that is the shape of model engine's current builder
(``_create_vllm_bundle_command``): ``set -euo pipefail`` first, shell-quoted
values, the model-cache program (:mod:`migrate.sandbox.synth.modelcache`) when
the cache is on, and no download at all with the startup wrapper (it runs the
download from the bundle's environment).
"""

from __future__ import annotations

import base64
import json
import shlex
import uuid
from datetime import date
from typing import Any

from migrate.sandbox.synth import modelcache
from migrate.sandbox.synth.spec import (
    RUNNABLE_FLAVORS,
    STREAMING_FLAVOR,
    EndpointSpec,
    weights_folder_of,
)

# Shape changes inside a generation, keyed by the bundle's creation date.
_A_BATCHED_TOKENS_UNTIL = date(2023, 12, 31)  # A first carried --max-num-batched-tokens 4096
_F_DOUBLE_QUOTED_HOST_FROM = date(2026, 1, 15)  # F first printed --host '::', then "::"

# Field order in which model engine printed vLLM arguments from D on. The
# unknown-to-a-parser future flags come last on purpose.
ARG_ORDER: tuple[str, ...] = (
    "attention_backend",
    "max_model_len",
    "max_num_seqs",
    "enforce_eager",
    "trust_remote_code",
    "pipeline_parallel_size",
    "tensor_parallel_size",
    "quantization",
    "disable_log_requests",
    "chat_template",
    "tool_call_parser",
    "enable_auto_tool_choice",
    "load_format",
    "config_format",
    "tokenizer_mode",
    "tokenizer",
    "enable_prefix_caching",
    "enable_chunked_prefill",
    "max_num_batched_tokens",
    "rope_scaling",
    "gpu_memory_utilization",
    "kv_cache_dtype",
    "quantization_param_path",
    "seed",
    "swap_space",
    "max_seq_len_to_capture",
    "speculative_config",
    "compilation_config",
)
_ARG_RANK = {name: i for i, name in enumerate(ARG_ORDER)}


def _download_steps(spec: EndpointSpec, folder: str) -> list[str]:
    source = (spec.checkpoint_path or "").rstrip("/")
    steps: list[str] = []
    if spec.storage == "azure":
        steps.append("export AZCOPY_AUTO_LOGIN_TYPE=WORKLOAD")
        copy = f'azcopy copy --recursive --exclude-pattern "optimizer*" "{source}/*" {folder}'
    elif spec.storage == "gcs":
        copy = f"gsutil -m cp -r {source}/* {folder}"
    else:
        s5cmd = "./s5cmd" if spec.generation <= "D" else "s5cmd"
        copy = (
            f'{s5cmd} --numworkers 512 cp --concurrency 10 --include "*.model" '
            f'--include "*.json" --include "*.safetensors" --exclude "optimizer*" '
            f"{source}/* {folder}"
        )
    steps.append(copy)
    return steps


_SELECTED_FILES = (
    '--include "*.model" --include "*.model.v*" --include "*.json" --include "*.safetensors" '
    '--include "*.txt" --include "*.jinja" --exclude "optimizer*"'
)
GCLOUD_INSTALL = (
    "curl -sSL https://dl.google.com/dl/cloudsdk/channels/rapid/google-cloud-sdk.tar.gz"
    " | tar -xz -C /opt"
    " && /opt/google-cloud-sdk/bin/gcloud config set disable_usage_reporting true 2>/dev/null"
    " && /opt/google-cloud-sdk/bin/gcloud config set storage/check_hashes if_fast_else_skip"
    " 2>/dev/null"
)


def _download_steps_2026(spec: EndpointSpec, folder: str) -> list[str]:
    """The download as generations G and H write it (before any model-cache wrapping)."""
    source = (spec.checkpoint_path or "").rstrip("/")
    trust = bool(dict(spec.server_args).get("trust_remote_code"))
    if spec.storage == "azure":
        pattern = "*.model;*.model.v*;*.json;*.safetensors;*.txt;*.jinja"
        pattern += ";*.py" if trust else ""
        return [
            "export AZCOPY_AUTO_LOGIN_TYPE=WORKLOAD",
            f'azcopy copy --recursive --include-pattern "{pattern}" '
            f'--exclude-pattern "optimizer*" {source}/* {folder}',
        ]
    if spec.storage == "gcs":
        excludes = '--exclude="optimizer.*"' + ("" if trust else ' --exclude=".*\\.py$"')
        return [
            GCLOUD_INSTALL,
            f"/opt/google-cloud-sdk/bin/gcloud storage rsync -r {excludes} {source} {folder}",
        ]
    selection = _SELECTED_FILES + (' --include "*.py"' if trust else "")
    # The empty slot is the S3 endpoint flag, unset in most deployments.
    return [f"./s5cmd  --numworkers 512 cp --concurrency 10 {selection} {source}/* {folder}"]


def _setup_steps_2026(spec: EndpointSpec, folder: str) -> list[str]:
    """Everything before the server from G on: strict mode, then the download."""
    steps = ["set -euo pipefail"]
    if spec.module == "vllm_startup_wrapper":
        return steps  # the wrapper downloads from the bundle's DOWNLOAD_CMD variable
    download = _download_steps_2026(spec, folder)
    if spec.model_cache_enabled:
        cache_fingerprint = modelcache.fingerprint(
            model_name=spec.model_name or "",
            framework_image_tag=spec.framework_image_tag or "",
            checkpoint_path=spec.checkpoint_path or "",
            num_shards=spec.num_shards,
            quantize=spec.quantize,
            chat_template_override=spec.chat_template,
            trust_remote_code=bool(dict(spec.server_args).get("trust_remote_code")),
            download_steps=download,
        )
        download = modelcache.wrap_download(download, folder, cache_fingerprint)
    return steps + download


_RAY_OWN_ADDRESS = (
    "--own_address=$K8S_OWN_POD_NAME.$K8S_LWS_NAME.$K8S_OWN_NAMESPACE.svc.cluster.local"
)
RAY_LEADER_STEP = (
    f"/workspace/init_ray.sh leader --ray_cluster_size=$RAY_CLUSTER_SIZE {_RAY_OWN_ADDRESS}"
)
RAY_WORKER_STEP = (
    f"/workspace/init_ray.sh worker --ray_address=$LWS_LEADER_ADDRESS.svc.cluster.local "
    f"{_RAY_OWN_ADDRESS}"
)


def _render_arg(name: str, value: Any, generation: str) -> str | None:
    flag = "--" + name.replace("_", "-")
    quoted = generation >= "G"
    if name == "chat_template":
        return f'{flag} "$CHAT_TEMPLATE"'
    if isinstance(value, bool):
        if value:
            return flag
        # D printed every set field, false booleans with their value; later ones drop them.
        return f"{flag} False" if generation == "D" else None
    if isinstance(value, dict):
        if quoted:
            return f"{flag} {shlex.quote(json.dumps(value, separators=(',', ':')))}"
        return f"{flag} {value!r}"
    text = str(value)
    return f"{flag} {shlex.quote(text) if quoted else text}"


def _all_vllm_args(spec: EndpointSpec) -> dict[str, Any]:
    args: dict[str, Any] = dict(spec.server_args)
    args["tensor_parallel_size"] = spec.num_shards
    if spec.multinode:
        args["pipeline_parallel_size"] = spec.nodes_per_worker
    if spec.quantize:
        args["quantization"] = spec.quantize
    if spec.chat_template is not None:
        args["chat_template"] = spec.chat_template
    if spec.gpu_memory_utilization is not None:
        args["gpu_memory_utilization"] = spec.gpu_memory_utilization
    if spec.eager_now:
        args["enforce_eager"] = True
    return args


def _vllm_invocation(spec: EndpointSpec, folder: str) -> str:
    gen = spec.generation
    args = dict(spec.server_args)
    if gen in ("A", "B"):
        parts = [
            f"python -m vllm_server --model {folder} --tensor-parallel-size {spec.num_shards} "
            "--port 5005"
        ]
        if spec.bundle_created_at.date() <= _A_BATCHED_TOKENS_UNTIL:
            parts.append("--max-num-batched-tokens 4096")
        if spec.quantize:
            parts.append(f"--quantization {spec.quantize}")
        if args.get("disable_log_requests"):
            parts.append("--disable-log-requests")
        if spec.provenance == "injected":  # B's hard-coded pair, at the very end
            parts.append(f"--gpu-memory-utilization {spec.gpu_memory_utilization} --enforce-eager")
        elif spec.provenance == "hand-added":
            parts.append("--enforce-eager")
        return " ".join(parts)
    if gen == "C":
        parts = [
            f"python -m vllm_server --model {folder} --tensor-parallel-size {spec.num_shards} "
            "--port 5005"
        ]
        if spec.multinode:
            parts.append(f"--pipeline-parallel-size {spec.nodes_per_worker}")
        if spec.chat_template is not None:
            parts.append('--chat-template "$CHAT_TEMPLATE"')
        if spec.quantize:
            parts.append(f"--quantization {spec.quantize}")
        if args.get("disable_log_requests"):
            parts.append("--disable-log-requests")
        parts.append(f"--gpu-memory-utilization {spec.gpu_memory_utilization}")
        if spec.eager_now:
            parts.append("--enforce-eager")
        if args.get("attention_backend"):
            parts.append(f"--attention-backend {args['attention_backend']}")
        return " ".join(parts)

    model = spec.model_name or ""
    if gen == "D":
        head = f"python -m vllm_server --model {folder} --port 5005"
    elif gen == "E":
        head = (
            f"python -m vllm_server --model {folder} --served-model-name {model} {folder} "
            "--port 5005"
        )
    elif gen == "F":
        host = "'::'" if spec.bundle_created_at.date() < _F_DOUBLE_QUOTED_HOST_FROM else '"::"'
        head = (
            f"python -m {spec.module} --model {folder} --served-model-name {model} {folder} "
            f"--port 5005 --host {host}"
        )
    else:
        # Quoted only where the shell needs it; the cache folder is a third name.
        names = [model, "model_files"] + ([folder] if folder not in (model, "model_files") else [])
        head = (
            f"python -m {spec.module} --model {shlex.quote(folder)} --served-model-name "
            f'{" ".join(shlex.quote(name) for name in names)} --port 5005 --host "::"'
        )
    full = _all_vllm_args(spec)
    ordered = sorted(full.items(), key=lambda kv: (_ARG_RANK.get(kv[0], len(ARG_ORDER)), kv[0]))
    rendered = [r for k, v in ordered if (r := _render_arg(k, v, gen)) is not None]
    return " ".join([head, *rendered])


def _other_framework_invocation(spec: EndpointSpec, folder: str) -> str:
    n = spec.num_shards
    fw = spec.framework
    if fw == "sglang":
        return (
            f"python3 -m sglang.launch_server --model-path {folder} --served-model-name "
            f"{spec.model_name} --tp {n} --port 5005 --host '::'"
        )
    if fw == "text_generation_inference":
        return (
            f"text-generation-launcher --hostname :: --port 5005 --model-id {folder} "
            f"--num-shard {n} --max-input-length 2048 --max-total-tokens 4096"
        )
    if fw == "deepspeed":
        return f"deepspeed --num_gpus {n} /app/deepspeed_server.py --model {folder} --port 5005"
    if fw == "lightllm":
        return (
            f"python -m lightllm.server.api_server --model_dir {folder} --port 5005 --tp {n} "
            "--max_total_token_num 14000 --trust_remote_code"
        )
    if fw == "tensorrt_llm":
        return (
            f"python3 launch_triton_server.py --world_size {n} --model_repo {folder}/model_repo;"
            "python3 -m tensorrt_llm_forwarder --port 5005"
        )
    raise ValueError(f"no command shape for framework {fw!r}")


def build_script(spec: EndpointSpec) -> str:
    """The bash script (``runnable_image_command[2]``) of the spec's current bundle."""
    if not spec.is_llm:
        cmd = spec.custom_command
        if cmd and len(cmd) == 3 and cmd[0] == "/bin/bash" and cmd[1] == "-c":
            return cmd[2]
        raise ValueError(f"{spec.name}: not an LLM endpoint and no bash script")
    folder = weights_folder_of(spec)
    if not spec.is_vllm:
        steps = _download_steps(spec, folder)
        steps.append(_other_framework_invocation(spec, folder))
        return ";".join(steps)
    if spec.generation >= "G":
        steps = _setup_steps_2026(spec, folder)
        if spec.multinode:
            steps.append(RAY_LEADER_STEP)
        if spec.chat_template is not None:
            steps.append(_chat_template_export(spec.chat_template))
        steps.append(_vllm_invocation(spec, folder))
        return ";".join(steps)
    steps = _download_steps(spec, folder)
    if spec.chat_template is not None:
        steps.append(_chat_template_export(spec.chat_template))
    if spec.multinode:
        steps.append(RAY_LEADER_STEP)
    steps.append(_vllm_invocation(spec, folder))
    return ";".join(steps)


def _chat_template_export(template: str) -> str:
    encoded = base64.b64encode(template.encode("utf-8")).decode("ascii")
    return f'export CHAT_TEMPLATE=$(echo "{encoded}" | base64 --decode)'


def build_command(spec: EndpointSpec) -> list[str] | None:
    """``runnable_image_command`` of the current bundle (None for artifact flavors)."""
    if spec.flavor not in RUNNABLE_FLAVORS:
        return None
    if not spec.is_llm:
        return list(spec.custom_command or ())
    return ["/bin/bash", "-c", build_script(spec)]


# Appended to the streaming command of a `streaming_differs` spec: someone once
# edited one of the two commands by hand, so they no longer match.
STREAMING_DIFFERS_SUFFIX = " --disable-log-stats"


def build_streaming_command(
    spec: EndpointSpec, command: list[str] | None = None
) -> list[str] | None:
    """``streaming_enhanced_runnable_image_streaming_command``: equal to the command.

    ``command`` saves rebuilding the script when the caller already has it.
    """
    if spec.flavor != STREAMING_FLAVOR:
        return None
    if command is None:
        command = build_command(spec)
    if command is None:
        return None
    if spec.streaming_differs and len(command) == 3:
        command = [command[0], command[1], command[2] + STREAMING_DIFFERS_SUFFIX]
    return command


def build_worker_command(spec: EndpointSpec) -> list[str] | None:
    """``runnable_image_worker_command`` of a multinode leader's bundle: download, then Ray."""
    if not spec.multinode:
        return None
    folder = weights_folder_of(spec)
    if spec.generation >= "G":
        steps = _setup_steps_2026(spec, folder)
    else:
        steps = _download_steps(spec, folder)
    steps.append(RAY_WORKER_STEP)
    return ["/bin/bash", "-c", ";".join(steps)]


def endpoint_metadata(spec: EndpointSpec) -> dict[str, Any]:
    """``endpoints.endpoint_metadata`` as model engine would have stored it."""
    metadata: dict[str, Any] = dict(spec.metadata_extra)
    if not spec.is_llm:
        return metadata
    llm: dict[str, Any] = {
        "model_name": spec.model_name,
        "source": "hugging_face",
        "inference_framework": spec.framework,
        "inference_framework_image_tag": spec.framework_image_tag,
        "num_shards": spec.num_shards,
        "quantize": spec.quantize,
        "checkpoint_path": spec.checkpoint_path,
        "chat_template_override": spec.chat_template,
    }
    if spec.generation >= "G":
        llm["model_cache_enabled"] = spec.model_cache_enabled
        if spec.vllm_additional_args is not None:
            llm["vllm_additional_args"] = dict(spec.vllm_additional_args)
    metadata["_llm"] = llm
    return metadata


def creation_task_id(spec: EndpointSpec) -> str:
    """A stable celery-style task id for the endpoint (seeding needs one per row)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, spec.endpoint_id))

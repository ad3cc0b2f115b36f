"""Classification judged against the facts file alone, on hand-written endpoints.

Every case is written the way model engine would have stored it in one of the
command generations A-H (facts, section 3), independently of migrate/synth*.py,
and its expected outcome is derived from the facts only:

* the new policy (facts, section 1): an explicit caller value wins; otherwise
  eager iff gpu_memory_utilization >= 0.95; no utilization means no flag;
* provenance: a legacy endpoint (no `_llm.vllm_additional_args`) records no
  request, so a flag next to a utilization is the old rule's; a flag without
  any utilization is something the old rule never wrote (a person's request);
  an explicit `enforce_eager: false` wins even where the old rule overrode it;
  a dict a legacy recreation parsed back out of the command is the documented
  trap (the tool's documented default keeps it, `--recorded drop` applies the rule);
* model size (facts, section 4) and the flags issue 2 requires.

Edits must be surgical: `command_after` is the old script with exactly the one
` --enforce-eager` token removed (or added), every other byte unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from migrate.core import command as cmd
from migrate.core.classify import classify
from migrate.core.modelsize import model_engine_param_count_b, param_count_b
from migrate.core.policy import RECORDED_DROP, PolicyParams
from migrate.core.records import BundleRecord, EndpointRecord

# Download steps, as each generation wrote them ------------------------------------

S5CMD = (
    './s5cmd --numworkers 512 cp --concurrency 10 --include "*.model" --include "*.json" '
    '--include "*.safetensors" --exclude "optimizer*" s3://scale-ml-weights/{path}/* {folder}'
)
AZCOPY = (
    "azcopy login --login-type MSI;"
    'azcopy copy --recursive --include-pattern "*.model;*.json;*.safetensors;*.txt" '
    '--exclude-pattern "optimizer*" '
    '"https://mlweights.blob.core.windows.net/models/{path}/*" {folder}'
)
GSUTIL = 'mkdir -p {folder};gsutil -m cp -r "gs://ml-weights/{path}/*" {folder}'
# Generation G: download into the shared model cache under a lock.
CACHE = "/mnt/model-cache/model_files"
LOCK_SUBSHELL = (
    "mkdir -p /mnt/model-cache;(flock -w 1800 9 || exit 1; "
    f"if [ ! -f {CACHE}/.complete ]; then "
    './s5cmd --numworkers 512 cp --concurrency 10 --include "*.json" '
    f'--include "*.safetensors" "s3://scale-ml-weights/{{path}}/*" {CACHE} '
    f"&& touch {CACHE}/.complete; fi) 9>/mnt/model-cache/.{{path}}.lock"
)
LOCK_FLOCK_C = (
    "mkdir -p /mnt/model-cache && flock /mnt/model-cache/{path}.lock -c "
    f'\'[ -f {CACHE}/.complete ] || (s5cmd cp "s3://scale-ml-weights/{{path}}/*" '
    f"{CACHE}/ && touch {CACHE}/.complete)'"
)
TEMPLATE_B64 = (
    "eyUgZm9yIG1lc3NhZ2UgaW4gbWVzc2FnZXMgJX17eyc8fGltX3N0YXJ0fD4nICsgbWVzc2FnZVsncm9sZSddICsg"
    "JwonICsgbWVzc2FnZVsnY29udGVudCddICsgJzx8aW1fZW5kfD4nICsgJwonfX17JSBlbmRmb3IgJX17JSBpZiBh"
    "ZGRfZ2VuZXJhdGlvbl9wcm9tcHQgJX17eyAnPHxpbV9zdGFydHw+YXNzaXN0YW50CicgfX17JSBlbmRpZiAlfQ=="
)
CHAT = f'export CHAT_TEMPLATE=$(echo "{TEMPLATE_B64}" | base64 --decode)'
RAY_LEADER = (
    "/workspace/init_ray.sh leader --ray_cluster_size=$RAY_CLUSTER_SIZE "
    "--own_address=$K8S_OWN_POD_NAME.$K8S_LWS_NAME.$K8S_OWN_NAMESPACE.svc.cluster.local"
)
WORKER = [
    "/bin/bash",
    "-c",
    "./s5cmd --numworkers 512 cp --concurrency 10 s3://scale-ml-weights/m/* model_files;"
    "/workspace/init_ray.sh worker --ray_address=$K8S_LEADER_NAME.$K8S_LWS_NAME."
    "$K8S_OWN_NAMESPACE.svc.cluster.local "
    "--own_address=$K8S_OWN_POD_NAME.$K8S_LWS_NAME.$K8S_OWN_NAMESPACE.svc.cluster.local",
]


def s5(path: str, folder: str = "model_files") -> str:
    return S5CMD.format(path=path, folder=folder)


# When each generation's endpoints were created.
GEN_DATE = {
    "A": datetime(2023, 11, 2, 9, 30, tzinfo=UTC),
    "B": datetime(2024, 5, 21, 14, 0, tzinfo=UTC),
    "C": datetime(2024, 9, 24, 8, 15, tzinfo=UTC),
    "D": datetime(2024, 10, 15, 17, 45, tzinfo=UTC),
    "E": datetime(2025, 3, 3, 11, 0, tzinfo=UTC),
    "F": datetime(2025, 12, 1, 10, 0, tzinfo=UTC),
    "G": datetime(2026, 5, 20, 12, 0, tzinfo=UTC),
    "H": datetime(2026, 7, 14, 16, 20, tzinfo=UTC),
}

SAME = "same"  # the streaming command equals the command, as model engine stores it

DROP, ADD, KEEP, NONE, SKIP = "drop-eager", "add-eager", "keep-eager", "no-change", "skip"


@dataclass
class Case:
    id: str
    script: str | None
    model: str | None
    action: str
    eager_after: bool
    size: int | None
    util: float | None
    flags: set[str] = field(default_factory=set)
    not_flags: set[str] = field(default_factory=set)
    args: dict[str, Any] | None = None
    gen: str = "C"
    created: datetime | None = None
    status: str = "READY"
    framework: str | None = "vllm"
    flavor: str = "streaming_enhanced_runnable_image"
    streaming: str | None = SAME
    worker: list[str] | None = None
    llm: bool = True
    command: list[str] | None = None
    params: PolicyParams | None = None


def record(case: Case) -> EndpointRecord:
    metadata: dict[str, Any] = {}
    if case.llm:
        llm: dict[str, Any] = {
            "model_name": case.model,
            "source": "hugging_face",
            "inference_framework": case.framework,
            "inference_framework_image_tag": "0.6.3",
            "num_shards": 1,
            "quantize": None,
            "checkpoint_path": None,
        }
        if case.args is not None:
            llm["vllm_additional_args"] = case.args
        metadata["_llm"] = llm
    command = case.command
    if command is None and case.script is not None:
        command = ["/bin/bash", "-c", case.script]
    if case.streaming == SAME:
        streaming = command
    elif case.streaming is None:
        streaming = None
    else:
        streaming = ["/bin/bash", "-c", case.streaming]
    if case.flavor != "streaming_enhanced_runnable_image":
        streaming = None
    bundle = BundleRecord(
        id="bun_cv1q8s2j0b6g00c7k3a0",
        flavor=case.flavor,
        command=command,
        streaming_command=streaming,
        worker_command=case.worker,
    )
    created = case.created or GEN_DATE[case.gen]
    return EndpointRecord(
        id="end_cv1q8s2j0b6g00c7k3ag",
        name=case.id,
        owner="ml-platform",
        status=case.status,
        endpoint_type="streaming",
        metadata=metadata,
        current_bundle_id=bundle.id,
        bundle=bundle,
        created_at=created,
        last_updated_at=created,
    )


_EAGER = re.compile(r" --enforce-eager(?=\s|$)")


def removed(script: str) -> str:
    """The script with its one ` --enforce-eager` token cut out."""
    spans = [m.span() for m in _EAGER.finditer(script)]
    assert len(spans) == 1, "a case script must hold the flag exactly once"
    a, b = spans[0]
    return script[:a] + script[b:]


def added_after(script: str, anchor: str) -> str:
    """The script with ` --enforce-eager` inserted right after ``anchor``."""
    assert script.count(anchor) == 1
    return script.replace(anchor, anchor + " --enforce-eager")


# Generation A: Aug 2023 - May 2024, no utilization, no flag ------------------------

A_7B = (
    f"{s5('hf-llama-2-7b')};python -m vllm_server --model model_files "
    "--tensor-parallel-size 1 --port 5005 --max-num-batched-tokens 4096"
)
A_70B_AWQ = (
    f"{s5('llama-2-70b-chat-awq')};python -m vllm_server --model model_files "
    "--tensor-parallel-size 2 --port 5005 --quantization awq --disable-log-requests"
)
A_AZCOPY = (
    AZCOPY.format(path="codellama-34b-instruct", folder="model_files")
    + ";python -m vllm_server --model model_files --tensor-parallel-size 2 --port 5005"
)
A_GSUTIL = (
    GSUTIL.format(path="llama-2-13b-chat", folder="model_files")
    + ";python -m vllm_server --model model_files --tensor-parallel-size 1 --port 5005 "
    "--quantization awq --disable-log-requests"
)
# Legacy, hand-added: the old rule never wrote the flag without a utilization.
A_HAND = (
    f"{s5('mistral-7b-instruct')};python -m vllm_server --model model_files "
    "--tensor-parallel-size 1 --port 5005 --disable-log-requests --enforce-eager"
)

# Generation B: May 2024, llama-3-70b gets the pair at the very end -----------------

B_70B = (
    f"{s5('llama-3-70b-instruct')};python -m vllm_server --model model_files "
    "--tensor-parallel-size 4 --port 5005 --disable-log-requests "
    "--gpu-memory-utilization 0.95 --enforce-eager"
)
B_70B_AWQ = (
    f"{s5('llama-3-70b-instruct-awq')};python -m vllm_server --model model_files "
    "--tensor-parallel-size 2 --port 5005 --quantization awq --disable-log-requests "
    "--gpu-memory-utilization 0.95 --enforce-eager"
)
B_8B = (
    f"{s5('llama-3-8b-instruct')};python -m vllm_server --model model_files "
    "--tensor-parallel-size 1 --port 5005 --disable-log-requests"
)

# Generation C: Sep - Oct 2024, pair appended to every vLLM endpoint ---------------


def gen_c(path: str, util: str, *, tp: int = 1, extra: str = "", folder: str = "model_files"):
    return (
        f"{s5(path, folder)};{CHAT};python -m vllm_server --model {folder} "
        f'--tensor-parallel-size {tp} --port 5005 --chat-template "$CHAT_TEMPLATE"'
        f"{extra} --disable-log-requests --gpu-memory-utilization {util} --enforce-eager"
    )


C_8B = gen_c("llama-3-8b-instruct", "0.9")
C_GEMMA = (
    f"{s5('gemma-2-27b-it')};python -m vllm_server --model model_files "
    "--tensor-parallel-size 2 --port 5005 --disable-log-requests "
    "--gpu-memory-utilization 0.9 --enforce-eager --attention-backend FLASHINFER"
)
C_MISTRAL = (
    f"{s5('mistral-7b-instruct-v0.3', 'mistral_files')};python -m vllm_server "
    "--model mistral_files --tensor-parallel-size 1 --port 5005 --disable-log-requests "
    "--gpu-memory-utilization 0.9 --enforce-eager"
)
C_MIXTRAL_22 = gen_c("mixtral-8x22b-instruct", "0.95", tp=8)
C_MIXTRAL_7 = gen_c("mixtral-8x7b-instruct", "0.9", tp=2)
C_QWEN_AWQ = gen_c("qwen2.5-72b-instruct-awq", "0.95", tp=2, extra=" --quantization awq")
C_DEEPSEEK_V3 = gen_c("deepseek-v3", "0.9", tp=8)
C_DSC_LITE = gen_c("deepseek-coder-v2-lite-instruct", "0.9")
C_DSC = gen_c("deepseek-coder-v2-instruct", "0.95", tp=8)
C_PHI_MINI = gen_c("phi-3-mini-4k-instruct", "0.9")
C_PHI_SMALL = gen_c("phi-3-small-8k-instruct", "0.9")
C_PHI_MEDIUM = gen_c("phi-3-medium-128k-instruct", "0.9")
C_405B_LEADER = (
    f"{s5('llama-3-1-405b-instruct')};{RAY_LEADER};python -m vllm_server --model model_files "
    "--tensor-parallel-size 8 --port 5005 --pipeline-parallel-size 2 --disable-log-requests "
    "--gpu-memory-utilization 0.95 --enforce-eager"
)
C_DSV3_LEADER = (
    f"{s5('deepseek-v3')};{RAY_LEADER};python -m vllm_server --model model_files "
    "--tensor-parallel-size 8 --port 5005 --pipeline-parallel-size 2 --disable-log-requests "
    "--gpu-memory-utilization 0.9 --enforce-eager"
)

# Generation D: 15 Oct 2024, false booleans with a value, dict reprs unquoted --------

D_8B = (
    f"{s5('llama-3-8b-instruct')};python -m vllm_server --model model_files --port 5005 "
    "--max-model-len 16384 --enforce-eager --trust-remote-code False "
    "--tensor-parallel-size 1 --rope-scaling {'type': 'linear', 'factor': 2.0} "
    "--disable-log-requests --gpu-memory-utilization 0.9 --enable-chunked-prefill False"
)
D_70B = (
    f"{s5('llama-3-1-70b-instruct')};python -m vllm_server --model model_files --port 5005 "
    "--max-model-len 8192 --enforce-eager --trust-remote-code False "
    "--tensor-parallel-size 4 --disable-log-requests --gpu-memory-utilization 0.95"
)

# Generation E: Oct 2024 - Sep 2025, field order, --served-model-name ---------------

E_8B = (
    f"{s5('llama-3-8b-instruct')};{CHAT};python -m vllm_server --model model_files "
    "--served-model-name llama-3-8b-instruct model_files --port 5005 --max-model-len 8192 "
    "--enforce-eager --tensor-parallel-size 1 --disable-log-requests "
    '--chat-template "$CHAT_TEMPLATE" --gpu-memory-utilization 0.9'
)
E_GEMMA = (
    f"{s5('gemma-2-9b-it')};python -m vllm_server --model model_files "
    "--served-model-name gemma-2-9b-it model_files --port 5005 "
    "--attention-backend FLASHINFER --max-model-len 8192 --max-num-seqs 128 --enforce-eager "
    "--trust-remote-code --tensor-parallel-size 1 --disable-log-requests "
    "--gpu-memory-utilization 0.9"
)
E_QWEN_LOW = (
    f"{s5('qwen2.5-72b-instruct')};python -m vllm_server --model model_files "
    "--served-model-name qwen2.5-72b-instruct model_files --port 5005 --max-model-len 32768 "
    "--enforce-eager --tensor-parallel-size 4 --disable-log-requests "
    "--gpu-memory-utilization 0.85"
)
E_8B_HIGH = E_8B.replace("--gpu-memory-utilization 0.9", "--gpu-memory-utilization 0.97")
E_PREFIX_FLAGS = (
    f"{s5('mistral-nemo-12b-instruct')};python -m vllm_server --model model_files "
    "--served-model-name mistral-nemo-12b-instruct model_files --port 5005 "
    "--max-model-len 65536 --enforce-eager --tokenizer model_files --tokenizer-mode mistral "
    "--tensor-parallel-size 1 --quantization fp8 "
    "--quantization-param-path /workspace/kv_cache_scales.json --disable-log-requests "
    "--rope-scaling {'rope_type': 'dynamic', 'factor': 4.0} "
    "--override-generation-config {'temperature': 0.6, 'stop': ['</s>', '[/INST]']} "
    "--gpu-memory-utilization 0.9"
)
E_405B_LEADER = (
    f"{s5('llama-3-1-405b-instruct-fp8')};{RAY_LEADER};python -m vllm_server "
    "--model model_files --served-model-name llama-3-1-405b-instruct-fp8 model_files "
    "--port 5005 --max-model-len 16384 --enforce-eager --pipeline-parallel-size 2 "
    "--tensor-parallel-size 8 --disable-log-requests --gpu-memory-utilization 0.95"
)
# Legacy 70B at 0.95 whose flag someone removed by hand: the rule puts it back.
E_70B_NO_FLAG = (
    f"{s5('llama-3-1-70b-instruct')};python -m vllm_server --model model_files "
    "--served-model-name llama-3-1-70b-instruct model_files --port 5005 --max-model-len 8192 "
    "--tensor-parallel-size 4 --disable-log-requests --gpu-memory-utilization 0.95"
)

# Generation F: Sep 2025 - May 2026, --host '::' then "::", startup wrapper --------

F_SINGLE = (
    f"{s5('llama-3-1-8b-instruct')};{CHAT};python -m vllm_server --model model_files "
    "--served-model-name llama-3-1-8b-instruct model_files --port 5005 --host '::' "
    "--max-model-len 8192 --enforce-eager --tensor-parallel-size 1 --disable-log-requests "
    '--chat-template "$CHAT_TEMPLATE" --gpu-memory-utilization 0.9'
)
F_WRAPPER = (
    f"{s5('qwen2.5-7b-instruct')};python -m vllm_startup_wrapper --model model_files "
    '--served-model-name qwen2.5-7b-instruct model_files --port 5005 --host "::" '
    "--max-model-len 32768 --enforce-eager --trust-remote-code --tensor-parallel-size 1 "
    "--disable-log-requests --gpu-memory-utilization 0.9"
)
F_70B = (
    f"{s5('llama-3-3-70b-instruct')};python -m vllm_startup_wrapper --model model_files "
    '--served-model-name llama-3-3-70b-instruct model_files --port 5005 --host "::" '
    "--max-model-len 32768 --enforce-eager --tensor-parallel-size 4 --disable-log-requests "
    "--gpu-memory-utilization 0.95"
)
F_R1 = (
    f"{s5('deepseek-r1')};python -m vllm_startup_wrapper --model model_files "
    '--served-model-name deepseek-r1 model_files --port 5005 --host "::" '
    "--max-model-len 65536 --enforce-eager --trust-remote-code --tensor-parallel-size 8 "
    "--disable-log-requests --gpu-memory-utilization 0.95"
)

# Generations G and H: quoted values, model cache, args recorded -------------------


def gen_g(
    model: str,
    *,
    util: str = "0.9",
    eager: bool = True,
    tp: int = 1,
    extra: str = "",
    lock: str = LOCK_SUBSHELL,
    module: str = "vllm_server",
) -> str:
    return (
        f"{lock.format(path=model)};python -m {module} --model {CACHE} "
        f"--served-model-name '{model}' {CACHE} --port 5005 --host \"::\" "
        f"--max-model-len '8192'{' --enforce-eager' if eager else ''} "
        f"--tensor-parallel-size {tp}{extra} --disable-log-requests "
        f"--gpu-memory-utilization {util}"
    )


ROPE_JSON = ' --rope-scaling \'{"type":"linear","factor":2.0}\''
SPEC_JSON = ' --speculative-config \'{"method": "ngram", "num_speculative_tokens": 5}\''
FUTURE = (
    " --kv-cache-dtype fp8 --enable-chunked-prefill --no-enable-prefix-caching"
    ' --compilation-config \'{"level": 3, "cudagraph_capture_sizes": [1, 2, 4, 8]}\''
    " --enforce-eager-for-prefill --some-flag-from-2027 'a b; c'"
)

G_8B = gen_g("llama-3-8b-instruct")
G_8B_FLOCK = gen_g(
    "llama-3-1-8b-instruct", lock=LOCK_FLOCK_C, module="vllm_startup_wrapper", extra=SPEC_JSON
)
G_70B = gen_g("llama-3-3-70b-instruct", util="0.95", tp=4)
G_8B_095 = gen_g("llama-3-8b-instruct", util="0.95")
G_RECREATED = gen_g("llama-3-8b-instruct", extra=ROPE_JSON)
RECORDED_ARGS = {
    "max_model_len": 8192,
    "rope_scaling": {"type": "linear", "factor": 2.0},
    "tensor_parallel_size": 1,
    "gpu_memory_utilization": 0.9,
    "enforce_eager": True,
}

H_8B = gen_g("llama-3-8b-instruct", eager=False)
H_70B = gen_g("llama-3-3-70b-instruct", util="0.95", tp=4)
H_70B_FALSE = gen_g("llama-3-3-70b-instruct", util="0.95", tp=4, eager=False)
H_FUTURE = gen_g("qwen2.5-32b-instruct", eager=False, tp=2, extra=FUTURE)
H_NO_UTIL = (
    f"{LOCK_SUBSHELL.format(path='llama-3-8b-instruct')};python -m vllm_server --model {CACHE} "
    f"--served-model-name 'llama-3-8b-instruct' {CACHE} --port 5005 --host \"::\" "
    "--max-model-len '4096' --tensor-parallel-size 1 --disable-log-requests"
)

# Other frameworks and non-LLM endpoints ---------------------------------------------

SGLANG = (
    f"{s5('llama-3-1-70b-instruct')};python3 -m sglang.launch_server --model-path model_files "
    "--served-model-name llama-3-1-70b-instruct --tp 4 --port 5005 --host '::' "
    "--mem-fraction-static 0.95 --disable-cuda-graph"
)
TGI = (
    f"{s5('llama-2-13b-chat')};text-generation-launcher --hostname :: --port 5005 "
    "--num-shard 2 --model-id model_files --quantize awq"
)


CASES: list[Case] = [
    # --- A
    Case("a-7b", A_7B, "llama-2-7b", NONE, False, 7, None, gen="A", not_flags={"multinode"}),
    Case("a-70b-awq", A_70B_AWQ, "llama-2-70b-chat-awq", NONE, False, 70, None, gen="A",
         not_flags={"large-model-at-0.95"}),
    Case("a-azcopy", A_AZCOPY, "codellama-34b-instruct", NONE, False, 34, None, gen="A"),
    Case("a-gsutil", A_GSUTIL, "llama-2-13b-chat", NONE, False, 13, None, gen="A"),
    Case("a-hand-added", A_HAND, "mistral-7b-instruct", KEEP, True, 7, None, gen="A"),
    # --- B
    Case("b-70b", B_70B, "llama-3-70b-instruct", KEEP, True, 70, 0.95, gen="B",
         flags={"large-model-at-0.95"}),
    Case("b-70b-awq", B_70B_AWQ, "llama-3-70b-instruct-awq", KEEP, True, 70, 0.95, gen="B",
         flags={"large-model-at-0.95"}),
    Case("b-8b", B_8B, "llama-3-8b-instruct", NONE, False, 8, None, gen="B"),
    # --- C
    Case("c-8b", C_8B, "llama-3-8b-instruct", DROP, False, 8, 0.9,
         not_flags={"large-model-loses-eager", "unknown-model-size"}),
    Case("c-gemma-flashinfer", C_GEMMA, "gemma-2-27b-it", DROP, False, 27, 0.9),
    Case("c-mistral-files", C_MISTRAL, "mistral-7b-instruct-v0.3", DROP, False, 7, 0.9),
    Case("c-mixtral-8x22b", C_MIXTRAL_22, "mixtral-8x22b-instruct", KEEP, True, 140, 0.95,
         flags={"large-model-at-0.95"}),
    Case("c-mixtral-8x7b", C_MIXTRAL_7, "mixtral-8x7b-instruct", DROP, False, 47, 0.9,
         not_flags={"large-model-loses-eager"}),
    Case("c-qwen-72b-awq", C_QWEN_AWQ, "qwen2.5-72b-instruct-awq", KEEP, True, 72, 0.95,
         flags={"large-model-at-0.95"}),
    # Issue 10: a 671B model model engine cannot size (so it defaulted to 0.9).
    Case("c-deepseek-v3", C_DEEPSEEK_V3, "deepseek-v3", DROP, False, 671, 0.9,
         flags={"large-model-loses-eager", "size-disagrees-with-model-engine"},
         not_flags={"unknown-model-size", "unknown-size-loses-eager"}),
    Case("c-dsc-lite", C_DSC_LITE, "deepseek-coder-v2-lite-instruct", DROP, False, 16, 0.9),
    Case("c-dsc", C_DSC, "deepseek-coder-v2-instruct", KEEP, True, 237, 0.95,
         flags={"large-model-at-0.95"}),
    Case("c-phi-mini", C_PHI_MINI, "phi-3-mini-4k-instruct", DROP, False, 4, 0.9),
    Case("c-phi-small", C_PHI_SMALL, "phi-3-small-8k-instruct", DROP, False, 8, 0.9),
    Case("c-phi-medium", C_PHI_MEDIUM, "phi-3-medium-128k-instruct", DROP, False, 15, 0.9),
    Case("c-405b-leader", C_405B_LEADER, "llama-3-1-405b-instruct", KEEP, True, 405, 0.95,
         flags={"large-model-at-0.95", "multinode"}, worker=WORKER),
    Case("c-dsv3-leader", C_DSV3_LEADER, "deepseek-v3", DROP, False, 671, 0.9,
         flags={"multinode", "large-model-loses-eager", "size-disagrees-with-model-engine"},
         worker=WORKER),
    # --- D
    Case("d-8b", D_8B, "llama-3-8b-instruct", DROP, False, 8, 0.9, gen="D"),
    Case("d-70b", D_70B, "llama-3-1-70b-instruct", KEEP, True, 70, 0.95, gen="D",
         flags={"large-model-at-0.95"}),
    # --- E
    Case("e-8b", E_8B, "llama-3-8b-instruct", DROP, False, 8, 0.9, gen="E"),
    Case("e-gemma", E_GEMMA, "gemma-2-9b-it", DROP, False, 9, 0.9, gen="E"),
    Case("e-qwen-72b-lowered", E_QWEN_LOW, "qwen2.5-72b-instruct", DROP, False, 72, 0.85,
         gen="E", flags={"large-model-loses-eager"}, not_flags={"large-model-at-0.95"}),
    Case("e-8b-raised", E_8B_HIGH, "llama-3-8b-instruct", KEEP, True, 8, 0.97, gen="E",
         not_flags={"large-model-at-0.95"}),
    Case("e-prefix-flags", E_PREFIX_FLAGS, "mistral-nemo-12b-instruct", DROP, False, 12, 0.9,
         gen="E"),
    Case("e-405b-leader", E_405B_LEADER, "llama-3-1-405b-instruct-fp8", KEEP, True, 405, 0.95,
         gen="E", flags={"large-model-at-0.95", "multinode"}, worker=WORKER),
    Case("e-70b-flag-removed", E_70B_NO_FLAG, "llama-3-1-70b-instruct", ADD, True, 70, 0.95,
         gen="E", flags={"large-model-at-0.95"}),
    # --- F
    Case("f-host-single", F_SINGLE, "llama-3-1-8b-instruct", DROP, False, 8, 0.9, gen="F"),
    Case("f-host-double-wrapper", F_WRAPPER, "qwen2.5-7b-instruct", DROP, False, 7, 0.9,
         gen="F"),
    Case("f-70b", F_70B, "llama-3-3-70b-instruct", KEEP, True, 70, 0.95, gen="F",
         flags={"large-model-at-0.95"}),
    Case("f-deepseek-r1", F_R1, "deepseek-r1", KEEP, True, 671, 0.95, gen="F",
         flags={"large-model-at-0.95", "size-disagrees-with-model-engine"},
         not_flags={"unknown-model-size"}),
    Case("f-update-failed", F_SINGLE, "llama-3-1-8b-instruct", DROP, False, 8, 0.9, gen="F",
         status="UPDATE_FAILED", flags={"not-ready"}),
    Case("f-update-pending", F_WRAPPER, "qwen2.5-7b-instruct", DROP, False, 7, 0.9, gen="F",
         status="UPDATE_PENDING", flags={"not-ready"}),
    Case("f-update-in-progress", F_70B, "llama-3-3-70b-instruct", KEEP, True, 70, 0.95,
         gen="F", status="UPDATE_IN_PROGRESS", flags={"not-ready", "large-model-at-0.95"}),
    Case("f-delete-in-progress", F_SINGLE, "llama-3-1-8b-instruct", DROP, False, 8, 0.9,
         gen="F", status="DELETE_IN_PROGRESS", flags={"not-ready"}),
    # --- G: args recorded, old rule still active
    Case("g-injected", G_8B, "llama-3-8b-instruct", DROP, False, 8, 0.9, gen="G",
         args={"max_model_len": 8192}, not_flags={"explicit-false-overridden"}),
    Case("g-flock-wrapper", G_8B_FLOCK, "llama-3-1-8b-instruct", DROP, False, 8, 0.9, gen="G",
         args={"max_model_len": 8192, "speculative_config": {"method": "ngram"}}),
    Case("g-explicit-false", G_8B, "llama-3-8b-instruct", DROP, False, 8, 0.9, gen="G",
         args={"enforce_eager": False, "max_model_len": 8192},
         flags={"explicit-false-overridden"}),
    Case("g-explicit-false-70b", G_70B, "llama-3-3-70b-instruct", DROP, False, 70, 0.95,
         gen="G", args={"enforce_eager": False, "max_model_len": 8192},
         flags={"explicit-false-overridden", "large-model-at-0.95", "large-model-loses-eager"}),
    Case("g-explicit-true", G_8B, "llama-3-8b-instruct", KEEP, True, 8, 0.9, gen="G",
         args={"enforce_eager": True, "max_model_len": 8192}),
    # A request that names every tunable flag the command has looks like the legacy
    # parse; created after model engine began storing args, it is a request (issue 10).
    Case("g-explicit-true-mirroring", G_8B, "llama-3-8b-instruct", KEEP, True, 8, 0.9, gen="G",
         args={"enforce_eager": True, "max_model_len": 8192, "gpu_memory_utilization": 0.9}),
    Case("g-asked-095", G_8B_095, "llama-3-8b-instruct", KEEP, True, 8, 0.95, gen="G",
         args={"gpu_memory_utilization": 0.95}, not_flags={"large-model-at-0.95"}),
    Case("g-70b-default", G_70B, "llama-3-3-70b-instruct", KEEP, True, 70, 0.95, gen="G",
         args={"max_model_len": 8192}, flags={"large-model-at-0.95"}),
    Case("g-recorded", G_RECREATED, "llama-3-8b-instruct", KEEP, True, 8, 0.9,
         created=GEN_DATE["E"], args=RECORDED_ARGS, flags={"recorded-eager"}),
    Case("g-recorded-drop", G_RECREATED, "llama-3-8b-instruct", DROP, False, 8, 0.9,
         created=GEN_DATE["E"], args=RECORDED_ARGS, flags={"recorded-eager"},
         params=PolicyParams(recorded=RECORDED_DROP)),
    Case("g-recorded-70b-drop", G_70B, "llama-3-3-70b-instruct", KEEP, True, 70, 0.95,
         created=GEN_DATE["C"], flags={"recorded-eager", "large-model-at-0.95"},
         args={"max_model_len": 8192, "tensor_parallel_size": 4,
               "gpu_memory_utilization": 0.95, "enforce_eager": True},
         params=PolicyParams(recorded=RECORDED_DROP)),
    # A pre-May-2026 dict holding only the request cannot be the legacy parse (which
    # copies the utilization too): a person asked, so even --recorded drop keeps it.
    Case("g-legacy-small-true-dict", G_8B, "llama-3-8b-instruct", KEEP, True, 8, 0.9,
         created=GEN_DATE["E"], args={"enforce_eager": True}, not_flags={"recorded-eager"},
         params=PolicyParams(recorded=RECORDED_DROP)),
    # A legacy endpoint recreated with an explicit false: the caller's value wins.
    Case("g-legacy-recreated-false", G_8B, "llama-3-8b-instruct", DROP, False, 8, 0.9,
         created=GEN_DATE["C"], flags={"explicit-false-overridden"},
         args={"max_model_len": 8192, "gpu_memory_utilization": 0.9, "enforce_eager": False}),
    # --- H: the new rule built these
    Case("h-8b", H_8B, "llama-3-8b-instruct", NONE, False, 8, 0.9, gen="H",
         args={"max_model_len": 8192}),
    Case("h-70b", H_70B, "llama-3-3-70b-instruct", KEEP, True, 70, 0.95, gen="H",
         args={"max_model_len": 8192}, flags={"large-model-at-0.95"}),
    Case("h-70b-explicit-false", H_70B_FALSE, "llama-3-3-70b-instruct", NONE, False, 70, 0.95,
         gen="H", args={"enforce_eager": False}, flags={"large-model-at-0.95"},
         not_flags={"explicit-false-overridden", "large-model-loses-eager"}),
    Case("h-explicit-true", G_8B, "llama-3-8b-instruct", KEEP, True, 8, 0.9, gen="H",
         args={"enforce_eager": True}),
    Case("h-recorded", G_RECREATED, "llama-3-8b-instruct", KEEP, True, 8, 0.9,
         created=GEN_DATE["F"], args=RECORDED_ARGS, flags={"recorded-eager"}),
    Case("h-future-flags", H_FUTURE, "qwen2.5-32b-instruct", NONE, False, 32, 0.9, gen="H",
         args={"kv_cache_dtype": "fp8"}),
    Case("h-no-utilization", H_NO_UTIL, "llama-3-8b-instruct", NONE, False, 8, None, gen="H",
         args={"max_model_len": 4096}),
    Case("h-explicit-true-missing", H_8B, "llama-3-8b-instruct", ADD, True, 8, 0.9, gen="H",
         args={"enforce_eager": True, "max_model_len": 8192}),
    # --- streaming flavor
    Case("stream-none-runnable", C_8B, "llama-3-8b-instruct", DROP, False, 8, 0.9,
         flavor="runnable_image"),
    Case("stream-differs-port", C_8B, "llama-3-8b-instruct", DROP, False, 8, 0.9,
         streaming=C_8B.replace("--port 5005", "--port 5006"),
         flags={"streaming-command-differs"}),
    Case("stream-disagrees-on-flag", C_8B, "llama-3-8b-instruct", SKIP, True, 8, 0.9,
         streaming=removed(C_8B), flags={"streaming-command-differs"}),
    Case("triton-flavor", C_8B, "llama-3-8b-instruct", DROP, False, 8, 0.9,
         flavor="triton_enhanced_runnable_image"),
    # --- out of scope
    Case("sglang", SGLANG, "llama-3-1-70b-instruct", SKIP, False, 70, None, framework="sglang"),
    Case("tgi", TGI, "llama-2-13b-chat", SKIP, False, 13, None,
         framework="text_generation_inference"),
    Case("deepspeed", C_8B, "llama-3-8b-instruct", SKIP, False, 8, None, framework="deepspeed"),
    Case("tensorrt", C_8B, "llama-3-8b-instruct", SKIP, False, 8, None,
         framework="tensorrt_llm"),
    Case("lightllm", C_8B, "llama-3-8b-instruct", SKIP, False, 8, None, framework="lightllm"),
    Case("non-llm-cloudpickle", None, None, SKIP, False, None, None, llm=False,
         flavor="cloudpickle_artifact", streaming=None),
    Case("non-llm-image", None, None, SKIP, False, None, None, llm=False,
         flavor="runnable_image", command=["python", "serve.py", "--port", "5005"]),
]  # fmt: skip


def _expected_command_after(case: Case) -> str | None:
    assert case.script is not None
    if case.action == DROP:
        return removed(case.script)
    if case.action == ADD:
        anchor = f"--gpu-memory-utilization {case.util}"
        return added_after(case.script, anchor)
    return None


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_classification_follows_the_facts(case: Case) -> None:
    d = classify(record(case), case.params)
    assert d.action == case.action, d.reason
    assert d.eager_after is case.eager_after
    assert d.param_count_b == case.size
    assert d.gpu_memory_utilization == case.util
    assert case.flags <= set(d.flags), d.flags
    assert not (case.not_flags & set(d.flags)), d.flags
    if d.action == SKIP:
        assert d.command_after is None and d.streaming_command_after is None
        return
    assert case.script is not None
    assert d.eager_now is bool(_EAGER.search(case.script))
    expected = _expected_command_after(case)
    assert d.command_after == expected
    if expected is None:
        return
    # The one token changed; the result reads back with only the flag flipped.
    again = cmd.parse_script(expected)
    assert again.enforce_eager is case.eager_after
    before = cmd.parse_script(case.script)
    assert [(a.flag, a.values) for a in again.args if a.flag != "--enforce-eager"] == [
        (a.flag, a.values) for a in before.args if a.flag != "--enforce-eager"
    ]
    if case.flavor == "streaming_enhanced_runnable_image" and case.streaming == SAME:
        assert d.streaming_command_after == expected


def test_large_model_at_095_is_flagged_whenever_it_holds() -> None:
    """Issue 2: the flag is mandatory for >= 70B at >= 0.95, and only then."""
    for case in CASES:
        if case.action == SKIP:
            continue
        d = classify(record(case), case.params)
        big = case.size is not None and case.size >= 70
        high = case.util is not None and case.util >= 0.95
        assert ("large-model-at-0.95" in d.flags) is (big and high), case.id


def test_hand_written_byte_exact_edits() -> None:
    """A few edits spelt out in full, not computed."""
    d = classify(record(CASES[[c.id for c in CASES].index("c-gemma-flashinfer")]))
    assert d.command_after == (
        './s5cmd --numworkers 512 cp --concurrency 10 --include "*.model" --include "*.json" '
        '--include "*.safetensors" --exclude "optimizer*" s3://scale-ml-weights/gemma-2-27b-it/*'
        " model_files;python -m vllm_server --model model_files --tensor-parallel-size 2 "
        "--port 5005 --disable-log-requests --gpu-memory-utilization 0.9 "
        "--attention-backend FLASHINFER"
    )
    d = classify(record(CASES[[c.id for c in CASES].index("d-8b")]))
    assert d.command_after is not None
    assert d.command_after.endswith(
        ";python -m vllm_server --model model_files --port 5005 --max-model-len 16384 "
        "--trust-remote-code False --tensor-parallel-size 1 "
        "--rope-scaling {'type': 'linear', 'factor': 2.0} --disable-log-requests "
        "--gpu-memory-utilization 0.9 --enable-chunked-prefill False"
    )
    assert len(d.command_after) == len(D_8B) - len(" --enforce-eager")


def test_recorded_drop_clears_the_parsed_back_request() -> None:
    case = CASES[[c.id for c in CASES].index("g-recorded-drop")]
    d = classify(record(case), case.params)
    expected = dict(RECORDED_ARGS)
    del expected["enforce_eager"]
    assert d.args_after == expected


def test_streaming_differs_edits_both_commands() -> None:
    case = CASES[[c.id for c in CASES].index("stream-differs-port")]
    d = classify(record(case))
    assert case.streaming is not None
    assert d.streaming_command_after == removed(case.streaming)


# Model size, facts section 4: model engine's reading, which sets its default utilization


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("mixtral-8x7b-instruct", 47),
        ("mixtral-8x22b-instruct", 140),
        ("phi-3-mini-128k-instruct", 4),
        ("phi-3-small-128k-instruct", 8),
        ("phi-3-medium-4k-instruct", 15),
        ("deepseek-coder-v2-lite-instruct", 16),
        ("deepseek-coder-v2-instruct", 237),
        ("deepseek-coder-v2", 237),
        ("llama-3-1-405b-instruct", 405),
        ("qwen2.5-72b-instruct", 72),
        ("gemma-2-27b", 27),
        ("llama-2-7b", 7),
        ("llama-3-8b-instruct-262k", 8),
        ("codellama-70b-instruct", 70),
        ("mistral-7b-instruct-v0.3", 7),
        ("zephyr-7b-beta", 7),
        ("deepseek-v3", None),
        ("deepseek-r1", None),
        ("dbrx-instruct", None),
        ("phi-3.5-mini-instruct", None),
        ("", None),
        (None, None),
    ],
)
def test_model_engine_reads_sizes_as_the_facts_say(name: str | None, size: int | None) -> None:
    assert model_engine_param_count_b(name) == size


# Issue 10: risk is judged on total parameters. Facts section 4 says names without a
# size are "possibly large"; the real models are (from their model cards).
@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("deepseek-v3", 671),
        ("deepseek-r1", 671),
        ("dbrx-instruct", 132),
        ("qwen3-235b-a22b", 235),
        ("qwen3-30b-a3b", 30),
        ("llama-4-scout-17b-16e-instruct", 109),
        ("mixtral-8x7b-instruct", 47),
        ("llama-3-1-405b-instruct", 405),
    ],
)
def test_risk_reads_total_parameters(name: str, size: int) -> None:
    assert param_count_b(name) == size


# Once disagreements with the facts, fixed since -------------------------------------


def test_streaming_twin_at_095_keeps_its_oom_guard() -> None:
    main = gen_c("llama-3-8b-instruct", "0.9")
    twin = gen_c("llama-3-8b-instruct", "0.95")
    case = Case("stream-util-differs", main, "llama-3-8b-instruct", SKIP, True, 8, 0.9,
                streaming=twin)  # fmt: skip
    d = classify(record(case))
    assert "streaming-command-differs" in d.flags
    # Whatever the action, the 0.95 command must not be left without the flag.
    after = d.streaming_command_after or twin
    assert cmd.parse_script(after).enforce_eager
    assert d.action in (SKIP, KEEP)


# Created in generation G without any caller argument: model engine stored no dict,
# and a later force-recreation parsed the whole command back into one (facts,
# section 2). Issue 10 decides by creation time: a dict on an endpoint created since
# model engine began storing args (2026-05-07) is a request. Either way eager stays by
# default; an operator whose model engine took that release later moves
# --args-recorded-since, and the same dict reads as recorded again.
G_NO_ARGS_RECREATED = {
    "max_model_len": 8192,
    "gpu_memory_utilization": 0.9,
    "enforce_eager": True,
}


def test_g_endpoint_recreated_from_its_command_is_judged_by_its_creation_time() -> None:
    case = Case("g-noargs-recreated", G_8B, "llama-3-8b-instruct", KEEP, True, 8, 0.9,
                created=datetime(2026, 5, 25, tzinfo=UTC), args=G_NO_ARGS_RECREATED,
                params=PolicyParams(recorded=RECORDED_DROP))  # fmt: skip
    asked = classify(record(case), case.params)
    assert asked.action == KEEP and asked.provenance == "explicit-true"
    assert "recorded-eager" not in asked.flags
    assert any("as a recreation would" in e for e in asked.evidence)
    assert any(e.startswith("decided by the creation time") for e in asked.evidence)
    later = PolicyParams(
        recorded=RECORDED_DROP, args_recorded_since=datetime(2026, 6, 1, tzinfo=UTC)
    )
    parsed_back = classify(record(case), later)
    assert parsed_back.provenance == "recorded" and parsed_back.action == DROP
    assert parsed_back.command_after == removed(G_8B)


def test_endpoint_created_after_may_2026_asking_for_eager_is_explicit_true() -> None:
    """Issue 10's done-when: its args say enforce_eager: true, so a caller asked."""
    for created in (datetime(2026, 5, 7, tzinfo=UTC), GEN_DATE["G"], GEN_DATE["H"]):
        for args in ({"enforce_eager": True}, G_NO_ARGS_RECREATED):
            case = Case("asked", G_8B, "llama-3-8b-instruct", KEEP, True, 8, 0.9,
                        created=created, args=args)  # fmt: skip
            for recorded in ("keep", RECORDED_DROP):
                d = classify(record(case), PolicyParams(recorded=recorded))
                assert (d.provenance, d.action) == ("explicit-true", KEEP), (created, args)


def test_naive_creation_time_does_not_escape_as_an_exception() -> None:
    case = Case("naive", G_RECREATED, "llama-3-8b-instruct", KEEP, True, 8, 0.9,
                created=datetime(2025, 3, 3, 11, 0), args=RECORDED_ARGS)  # fmt: skip
    d = classify(record(case))
    assert d.action == KEEP


# The parser against plausible real-world scripts -------------------------------------

SERVER = "python -m vllm_server --model model_files --port 5005"
REAL_WORLD = {
    "set-euo": f"set -euo pipefail;{SERVER} --gpu-memory-utilization 0.9 --enforce-eager",
    "if-download": (
        'if [ ! -d model_files ]; then s5cmd cp "s3://b/m/*" model_files/; fi;'
        f"{SERVER} --gpu-memory-utilization 0.9 --enforce-eager"
    ),
    "until-lock": (
        "until mkdir /mnt/model-cache/.lock 2>/dev/null; do sleep 5; done;"
        's5cmd cp "s3://b/m/*" /mnt/model-cache/model_files;rmdir /mnt/model-cache/.lock;'
        f"{SERVER} --gpu-memory-utilization 0.9 --enforce-eager"
    ),
    "brace-lock": (
        '{ flock 9; s5cmd cp "s3://b/m/*" model_files; } 9>/tmp/model.lock;'
        f"{SERVER} --enforce-eager --gpu-memory-utilization 0.9"
    ),
    "trap": (
        'trap "rm -rf /mnt/model-cache/.lock" EXIT;'
        f"{SERVER} --enforce-eager --gpu-memory-utilization 0.9"
    ),
    "param-expansion": (
        "MODEL_DIR=${MODEL_DIR:-/mnt/model-cache/model_files};"
        's5cmd cp "s3://b/m/*" ${MODEL_DIR%/}/;'
        "python -m vllm_server --model $MODEL_DIR --port 5005 --enforce-eager "
        "--gpu-memory-utilization 0.9"
    ),
    "backticks": f"export T0=`date +%s`;{SERVER} --enforce-eager --gpu-memory-utilization 0.9",
    "glob-brackets": (
        "s5cmd cp s3://b/m/model-0000[1-4]-of-00004.safetensors model_files/;"
        f"{SERVER} --enforce-eager --gpu-memory-utilization 0.9"
    ),
    "tee-log": f"{SERVER} --enforce-eager --gpu-memory-utilization 0.9 2>&1 | tee /tmp/vllm.log",
    "nohup-bg-wait": f"nohup {SERVER} --gpu-memory-utilization 0.9 --enforce-eager & wait",
    "python-c-check": (
        'python -c "import vllm; print(vllm.__version__)";'
        f"{SERVER} --gpu-memory-utilization 0.9 --enforce-eager"
    ),
    "lora-modules": (
        f"{SERVER} --enable-lora --lora-modules sql=/loras/sql chat=/loras/chat "
        "--gpu-memory-utilization 0.9 --enforce-eager"
    ),
    "continuations": (
        "python -m vllm_server \\\n  --model model_files \\\n  --port 5005 \\\n"
        "  --gpu-memory-utilization 0.9 --enforce-eager \\\n  --max-model-len 8192"
    ),
    "curl-query": (
        'curl -sSL "https://x.example/w?a=1&b=2" -o /tmp/w.json;'
        f"{SERVER} --gpu-memory-utilization 0.9 --enforce-eager"
    ),
    "shell-function": (
        'download() { s5cmd cp "s3://b/m/*" model_files; };download;'
        f"{SERVER} --gpu-memory-utilization 0.9 --enforce-eager"
    ),
    "env-prefix": (
        "VLLM_ATTENTION_BACKEND=FLASHINFER CUDA_VISIBLE_DEVICES=0,1 exec "
        f"{SERVER} --gpu-memory-utilization 0.9 --enforce-eager"
    ),
    "json-apostrophe": (
        f'{SERVER} --override-generation-config \'{{"stop":["it\'"\'"\'s"]}}\' '
        "--gpu-memory-utilization 0.9 --enforce-eager"
    ),
    "dict-repr-nested": (
        f"{SERVER} --override-generation-config {{'stop': ['</s>', '}}'], 'x': \"it's\"}} "
        "--enforce-eager --gpu-memory-utilization 0.9"
    ),
    # A `case` arm's ")" closes no parenthesis; bash reads it, and so does the tool
    # (model engine's model-cache script has one).
    "case-arms": (
        'case "$ARCH" in x86_64) A=amd64;; *) A=arm64;; esac;'
        f"{SERVER} --gpu-memory-utilization 0.9 --enforce-eager"
    ),
    "comment-mentions-flag": (
        f"{SERVER} --gpu-memory-utilization 0.9 --enforce-eager # was: --enforce-eager"
    ),
}


@pytest.mark.parametrize("name", sorted(REAL_WORLD))
def test_real_world_scripts_parse_and_edit_surgically(name: str) -> None:
    script = REAL_WORLD[name]
    inv = cmd.parse_script(script)
    assert inv.enforce_eager
    assert inv.module == "vllm_server"
    flag = inv.get("--enforce-eager")
    assert flag is not None and script[flag.start - 1] == " "
    after = cmd.set_enforce_eager(script, False)
    assert after == script[: flag.start - 1] + script[flag.end :]
    assert not cmd.parse_script(after).enforce_eager


@pytest.mark.parametrize(
    "script",
    [
        f"{SERVER} --gpu-memory-utilization 0.9 --enforce-eager=True",
        f"{SERVER} --gpu-memory-utilization 0.9 --no-enforce-eager",
        f"{SERVER} --enforce-eager --gpu-memory-utilization 0.9 --enforce-eager",
        f"{SERVER} --gpu-memory-utilization 0.9 --enforce-eager;{SERVER}",
        "echo 'unterminated;python -m vllm_server --enforce-eager",
    ],
)
def test_scripts_refused_only_with_a_command_error(script: str) -> None:
    case = Case("refused", script, "llama-3-8b-instruct", SKIP, False, 8, None)
    d = classify(record(case))
    assert d.action == SKIP and d.command_after is None
    with pytest.raises(cmd.CommandError):
        cmd.set_enforce_eager(script, False)


def test_a_skip_after_the_command_was_read_keeps_the_commands_utilization() -> None:
    """A malformed stored enforce_eager skips, but the command read says 0.8: no 0.95 flag.

    Found by the property test: the stored args' 0.95 outranked the command that runs.
    """
    script = gen_g("llama-3-3-70b-instruct", util="0.8", tp=4)
    args = {"gpu_memory_utilization": 0.95, "enforce_eager": "maybe"}
    case = Case("malformed", script, "llama-3-3-70b-instruct", SKIP, True, 70, 0.8, args=args)
    d = classify(record(case))
    assert d.action == SKIP and "malformed-metadata" in d.flags
    assert d.gpu_memory_utilization == 0.8
    assert "large-model-at-0.95" not in d.flags
    assert "args-command-mismatch" in d.flags
    # Where the command is not read at all, the stored 0.95 is all there is, and flags.
    unread = Case("unread", "python -m vllm_server 'unbalanced", "llama-3-3-70b-instruct",
                  SKIP, None, 70, None, args=args)  # fmt: skip
    d = classify(record(unread))
    assert d.action == SKIP and "large-model-at-0.95" in d.flags
    assert d.gpu_memory_utilization == 0.95

"""The persistent model cache's download program, as model engine renders it (May 2026 on).

With ``MODEL_CACHE_ENABLED`` model engine (``llm_model_endpoint_use_cases.py``,
upstream PR 822) puts the weights in ``/mnt/model-cache/model_files`` on a volume
shared by the replicas, and wraps the download steps in a shell program: shell
functions that check the cache against a fingerprint, a lock directory with a
heartbeat written by a background subshell, a ``trap`` that removes the lock,
``case`` and ``$((...))`` to judge a stale lock, and the original download run by
a nested ``bash -c`` with its own quoting. The vLLM server starts after its last
``fi``. Rendered here byte for byte in that shape (our own code, written from the
shape of upstream's output), so that seeded sandboxes hold such scripts.
"""

from __future__ import annotations

import hashlib
import json
import shlex

COMPLETE_FILE = ".complete"
LOCK_DIR = ".download.lock"
LOCK_STALE_SECONDS = 600  # model engine's MODEL_CACHE_LOCK_STALE_SECONDS default


def fingerprint(
    *,
    model_name: str,
    framework_image_tag: str,
    checkpoint_path: str,
    num_shards: int,
    quantize: str | None,
    chat_template_override: str | None,
    trust_remote_code: bool,
    download_steps: list[str],
) -> str:
    """What the cache must have been filled for: a digest of everything the download reads."""
    payload = {
        "cache_version": 1,
        "model_name": model_name,
        "framework": "vllm",
        "framework_image_tag": framework_image_tag,
        "checkpoint_path": checkpoint_path,
        "num_shards": num_shards,
        "quantize": quantize,
        "chat_template_override": chat_template_override,
        "trust_remote_code": trust_remote_code,
        "download_subcommands": download_steps,
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _weights_present(model_dir: str) -> str:
    return (
        f"[ -f {model_dir}/config.json ] || return 1; "
        f"find {model_dir} -maxdepth 1 -type f "
        r"\( -name '*.safetensors' -o -name '*.bin' \) "
        "-print -quit | grep -q .; "
    )


def wrap_download(
    download_steps: list[str], weights_folder: str, cache_fingerprint: str
) -> list[str]:
    """The subcommands that replace ``download_steps`` when the model cache is on."""
    model_dir = shlex.quote(weights_folder)
    complete = shlex.quote(f"{weights_folder}/{COMPLETE_FILE}")
    lock = shlex.quote(f"{weights_folder}/{LOCK_DIR}")
    heartbeat = shlex.quote(f"{weights_folder}/{LOCK_DIR}/heartbeat")
    owner = shlex.quote(f"{weights_folder}/{LOCK_DIR}/owner")
    download = shlex.quote(";".join(["set -euo pipefail", *download_steps]))
    program = (
        f"expected_model_cache_fingerprint={shlex.quote(cache_fingerprint)}; "
        "model_cache_ready() { "
        f"[ -f {complete} ] || return 1; "
        f'[ "$(cat {complete} 2>/dev/null)" = "$expected_model_cache_fingerprint" ] '
        "|| return 1; "
        f"{_weights_present(model_dir)}"
        "}; "
        "model_cache_lock_stale() { "
        f"if [ -f {heartbeat} ]; then "
        f"last_heartbeat=$(cat {heartbeat} 2>/dev/null || echo 0); "
        "else "
        f"last_heartbeat=$(stat -c %Y {lock} 2>/dev/null || echo 0); "
        "fi; "
        "case \"$last_heartbeat\" in ''|*[!0-9]*) return 0 ;; esac; "
        "now=$(date +%s); "
        f"[ $((now - last_heartbeat)) -gt {LOCK_STALE_SECONDS} ]; "
        "}; "
        "write_model_cache_heartbeat() { "
        f"heartbeat_tmp_file={heartbeat}.$$; "
        'date +%s > "$heartbeat_tmp_file"; '
        f'mv "$heartbeat_tmp_file" {heartbeat}; '
        "}; "
        "cleanup_model_cache_lock() { "
        'if [ -n "${model_cache_heartbeat_pid:-}" ]; then '
        'kill "$model_cache_heartbeat_pid" 2>/dev/null || true; '
        "fi; "
        'if [ "${model_cache_lock_acquired:-false}" = "true" ]; then '
        f"rm -rf {lock}; "
        "fi; "
        "}; "
        "if model_cache_ready; then "
        f"echo 'Model cache already complete at {weights_folder}'; "
        "else "
        "model_cache_lock_acquired=false; "
        "model_cache_heartbeat_pid=''; "
        "while true; do "
        f"if mkdir {lock} 2>/dev/null; then "
        "model_cache_lock_acquired=true; "
        "trap cleanup_model_cache_lock EXIT INT TERM; "
        "break; "
        "fi; "
        "if model_cache_ready; then "
        "echo 'Model cache completed by another replica'; "
        "break; "
        "fi; "
        "if model_cache_lock_stale; then "
        f"echo 'Removing stale model cache lock at {weights_folder}'; "
        f"rm -rf {lock}; "
        "continue; "
        "fi; "
        "echo 'Another replica is downloading model files; waiting...'; "
        "sleep 10; "
        "done; "
        'if [ "$model_cache_lock_acquired" = "true" ]; then '
        "if ! model_cache_ready; then "
        "write_model_cache_heartbeat; "
        "(while true; do write_model_cache_heartbeat; sleep 30; done) & "
        "model_cache_heartbeat_pid=$!; "
        f"printf '%s\\n' \"pid=$$ host=$(hostname 2>/dev/null || true)\" > {owner}; "
        f"find {model_dir} -mindepth 1 -maxdepth 1 ! -name {shlex.quote(LOCK_DIR)} "
        "-exec rm -rf {} +; "
        f"bash -c {download}; "
        "model_cache_ready_without_marker() { "
        f"{_weights_present(model_dir)}"
        "}; "
        "model_cache_ready_without_marker; "
        f"printf '%s\\n' \"$expected_model_cache_fingerprint\" > {complete}; "
        "fi; "
        "cleanup_model_cache_lock; "
        "model_cache_lock_acquired=false; "
        "trap - EXIT INT TERM; "
        "fi; "
        "fi"
    )
    return [f"mkdir -p {model_dir}", program]

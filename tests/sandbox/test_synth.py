"""Synthetic endpoints: the shape of every generation, fleet properties, and seeding a database."""

from __future__ import annotations

import base64
import itertools
import json
import re
import shlex
import tracemalloc
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from migrate.sandbox.embedded import to_libpq_url
from migrate.sandbox.seed import bundle_row, pg_text_array, seed_fleet
from migrate.sandbox.synth import (
    ACTIONS,
    GENERATION_WINDOWS,
    GENERATIONS,
    LLM_FRAMEWORKS,
    PROVENANCES,
    RAY_LEADER_STEP,
    RAY_WORKER_STEP,
    STATUSES,
    STREAMING_DIFFERS_SUFFIX,
    EndpointSpec,
    build_command,
    build_script,
    build_streaming_command,
    build_worker_command,
    default_gpu_memory_utilization,
    endpoint_metadata,
    make_spec,
    param_count_b,
    random_fleet,
    xid,
)
from migrate.sandbox.synth.catalog import MODELS, total_params_b
from migrate.store.ddl import create_model_engine_tables

# A fleet big enough to hit every rare case (explicit-false, hand-added, add-eager,
# multinode, streaming_differs) yet quick to build; computed once per module.
FLEET_SIZE = 3000


@pytest.fixture(scope="module")
def fleet() -> list[EndpointSpec]:
    return list(random_fleet(FLEET_SIZE, seed=11))


def vllm_part(script: str) -> str:
    return script.split(";")[-1]


def flag_value(script: str, flag: str) -> str | None:
    tokens = shlex.split(vllm_part(script))
    return tokens[tokens.index(flag) + 1] if flag in tokens else None


def at(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, 12, tzinfo=UTC)


# --- size and ids ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("mixtral-8x7b-instruct", 47),
        ("mixtral-8x22b-instruct", 140),
        ("phi-3-mini-4k-instruct", 4),
        ("deepseek-coder-v2-lite-instruct", 16),
        ("deepseek-coder-v2-instruct", 237),
        ("llama-3-1-405b-instruct", 405),
        ("qwen2.5-72b-instruct", 72),
        ("gemma-2-27b", 27),
        ("deepseek-v3", 671),
        ("mistral-large-instruct-2407", 123),
        ("qwen3-235b-a22b", 235),  # total parameters, not model engine's 22
    ],
)
def test_param_count_b(name: str, size: int | None) -> None:
    assert param_count_b(name) == size


@pytest.mark.parametrize(
    ("name", "util"),
    [("llama-3-70b-instruct", "0.95"), ("deepseek-v3", "0.9"), ("qwen3-235b-a22b", "0.9")],
)
def test_default_utilization_is_model_engines(name: str, util: str) -> None:
    # Model engine sized the name its own way: it cannot size deepseek-v3 and reads
    # qwen3-235b-a22b as 22B, so both defaulted to 0.9.
    assert default_gpu_memory_utilization(name) == Decimal(util)


def test_xid_matches_base32hex_of_the_12_bytes() -> None:
    when = at(2024, 3, 1)
    raw = (
        int(when.timestamp()).to_bytes(4, "big") + (77).to_bytes(5, "big") + (9).to_bytes(3, "big")
    )
    assert xid(when, 77, 9) == base64.b32hexencode(raw).decode().lower()[:20]


# --- every generation's shape ----------------------------------------------------------------


def test_a_shape() -> None:
    spec = make_spec("A", provenance="none")
    script = build_script(spec)
    assert re.search(
        r"python -m vllm_server --model model_files --tensor-parallel-size \d --port 5005",
        vllm_part(script),
    )
    assert "--gpu-memory-utilization" not in script and "--enforce-eager" not in script
    early = replace(spec, bundle_created_at=at(2023, 10, 1))
    assert "--port 5005 --max-num-batched-tokens 4096" in build_script(early)
    late = replace(spec, bundle_created_at=at(2024, 3, 1))
    assert "--max-num-batched-tokens" not in build_script(late)
    assert spec.expected_action == "no-change"


def test_a_hand_added_flag_has_no_utilization() -> None:
    spec = make_spec("A", provenance="hand-added")
    script = build_script(spec)
    assert script.endswith(" --enforce-eager")
    assert "--gpu-memory-utilization" not in script
    assert spec.explicit_enforce_eager is True and spec.expected_action == "keep-eager"


def test_b_pair_only_for_llama_3_70b() -> None:
    spec = make_spec("B", model_name="llama-3-70b-instruct")
    assert build_script(spec).endswith(" --gpu-memory-utilization 0.95 --enforce-eager")
    assert spec.provenance == "injected" and spec.expected_action == "keep-eager"
    other = make_spec("B", model_name="llama-3-8b-instruct")
    assert "--gpu-memory-utilization" not in build_script(other)
    with pytest.raises(ValueError):
        make_spec("B", model_name="llama-3-8b-instruct", provenance="injected")


def test_c_shape_and_mistral_folder() -> None:
    spec = make_spec("C", provenance="injected", model_name="llama-3-1-8b-instruct")
    part = vllm_part(build_script(spec))
    assert part.startswith("python -m vllm_server --model model_files --tensor-parallel-size ")
    assert "--gpu-memory-utilization 0.9 --enforce-eager" in part
    assert spec.expected_action == "drop-eager"
    mistral = make_spec("C", model_name="mistral-7b-instruct")
    assert "--model mistral_files" in build_script(mistral)
    assert build_script(mistral).split(";")[0].endswith(" mistral_files")
    gemma = make_spec("C", model_name="gemma-2-9b-instruct", provenance="injected")
    assert vllm_part(build_script(gemma)).endswith("--enforce-eager --attention-backend FLASHINFER")


def test_c_multinode_leader_and_worker() -> None:
    spec = make_spec("C", model_name="llama-3-1-405b-instruct", nodes_per_worker=2)
    steps = build_script(spec).split(";")
    assert steps[-2].startswith("/workspace/init_ray.sh leader ")
    assert "--port 5005 --pipeline-parallel-size 2" in steps[-1]
    worker = build_worker_command(spec)
    assert worker is not None and worker[:2] == ["/bin/bash", "-c"]
    assert worker[2].split(";")[-1].startswith("/workspace/init_ray.sh worker ")
    assert "--enforce-eager" not in worker[2] and "vllm_server" not in worker[2]
    assert build_worker_command(make_spec("C")) is None


def test_d_prints_false_booleans_and_dict_reprs() -> None:
    spec = make_spec("D", provenance="injected")
    spec = replace(
        spec,
        server_args=(
            ("trust_remote_code", False),
            ("rope_scaling", {"type": "linear", "factor": 2.0}),
        ),
    )
    part = vllm_part(build_script(spec))
    assert part.startswith("python -m vllm_server --model model_files --port 5005 --enforce-eager ")
    assert "--trust-remote-code False" in part
    assert "--rope-scaling {'type': 'linear', 'factor': 2.0}" in part


def test_e_field_order_served_name_and_omitted_false() -> None:
    spec = make_spec("E", provenance="injected", model_name="llama-3-8b-instruct")
    spec = replace(
        spec,
        server_args=(
            ("max_model_len", 8192),
            ("trust_remote_code", False),
            ("disable_log_requests", True),
            ("rope_scaling", {"type": "linear", "factor": 2.0}),
        ),
    )
    part = vllm_part(build_script(spec))
    assert part.startswith(
        "python -m vllm_server --model model_files --served-model-name llama-3-8b-instruct "
        "model_files --port 5005 --max-model-len 8192 --enforce-eager --tensor-parallel-size "
    )
    assert "--trust-remote-code" not in part
    assert part.index("--disable-log-requests") < part.index("--gpu-memory-utilization")
    assert "--rope-scaling {'type': 'linear', 'factor': 2.0}" in part


def test_f_host_quoting_and_startup_wrapper() -> None:
    spec = make_spec("F", provenance="injected")
    early = replace(spec, bundle_created_at=at(2025, 10, 1), module="vllm_server")
    late = replace(spec, bundle_created_at=at(2026, 3, 1), module="vllm_startup_wrapper")
    assert "--port 5005 --host '::' " in build_script(early)
    assert '--port 5005 --host "::" ' in build_script(late)
    assert vllm_part(build_script(late)).startswith("python -m vllm_startup_wrapper --model ")


def test_g_quotes_values_and_locks_the_cache() -> None:
    spec = make_spec("G", provenance="explicit-false", model_name="llama-3-8b-instruct")
    spec = replace(
        spec,
        model_cache_enabled=True,
        module="vllm_server",
        storage="s3",
        server_args=(*spec.server_args, ("rope_scaling", {"type": "linear", "factor": 2.0})),
    )
    script = build_script(spec)
    part = vllm_part(script)
    assert """--rope-scaling '{"type":"linear","factor":2.0}'""" in part
    # Quoted only where the shell needs it, three served names with the cache.
    assert (
        "--model /mnt/model-cache/model_files --served-model-name llama-3-8b-instruct "
        'model_files /mnt/model-cache/model_files --port 5005 --host "::"'
    ) in part
    # model engine's model-cache program: functions, a lock with a heartbeat in a
    # background subshell, case, arithmetic, a trap and a nested bash -c download.
    assert script.startswith("set -euo pipefail;mkdir -p /mnt/model-cache/model_files;")
    for piece in (
        "model_cache_ready() { ",
        "\\( -name '*.safetensors' -o -name '*.bin' \\) -print -quit",
        "case \"$last_heartbeat\" in ''|*[!0-9]*) return 0 ;; esac;",
        "[ $((now - last_heartbeat)) -gt 600 ];",
        "(while true; do write_model_cache_heartbeat; sleep 30; done) & ",
        "model_cache_heartbeat_pid=$!;",
        "trap cleanup_model_cache_lock EXIT INT TERM;",
        "bash -c 'set -euo pipefail;./s5cmd  --numworkers 512 cp",
        "fi; fi;python -m vllm_server ",
    ):
        assert piece in script, piece
    # The old rule overrode the caller's false: the flag is there, and must go.
    assert "--enforce-eager" in part and spec.expected_action == "drop-eager"
    llm = endpoint_metadata(spec)["_llm"]
    assert llm["vllm_additional_args"]["enforce_eager"] is False
    assert llm["model_cache_enabled"] is True


@pytest.mark.parametrize("storage", ["s3", "azure", "gcs"])
@pytest.mark.parametrize("cache", [True, False])
def test_g_downloads_as_model_engine_writes_them(storage: str, cache: bool) -> None:
    spec = replace(
        make_spec("H", provenance="injected"),
        storage=storage,
        model_cache_enabled=cache,
        module="vllm_server",
    )
    steps = build_script(spec)
    assert steps.startswith("set -euo pipefail;")
    assert ("model_cache_ready()" in steps) is cache
    tool = {"s3": "./s5cmd  --numworkers 512", "azure": "azcopy copy", "gcs": "gcloud storage"}
    assert tool[storage] in steps
    # With the startup wrapper the download moves into the bundle's environment.
    wrapper = build_script(replace(spec, module="vllm_startup_wrapper"))
    assert wrapper.startswith("set -euo pipefail;python -m vllm_startup_wrapper ")


def test_g_multinode_worker_downloads_through_the_cache_too() -> None:
    spec = make_spec("G", model_name="llama-3-1-405b-instruct", nodes_per_worker=2)
    spec = replace(spec, model_cache_enabled=True, module="vllm_server")
    worker = build_worker_command(spec)
    assert worker is not None and "model_cache_ready()" in worker[2]
    assert worker[2].endswith(RAY_WORKER_STEP) and "vllm_server" not in worker[2]
    leader = build_script(spec)
    assert f"fi; fi;{RAY_LEADER_STEP};python -m vllm_server" in leader


@pytest.mark.parametrize(
    ("util", "explicit", "flag"),
    [
        ("0.9", None, False),
        ("0.95", None, True),
        ("0.97", None, True),
        ("0.9", True, True),
        ("0.97", False, False),
    ],
)
def test_h_follows_the_new_policy(util: str, explicit: bool | None, flag: bool) -> None:
    base = make_spec("H", provenance="none")
    args = dict(base.vllm_additional_args or {})
    args.pop("enforce_eager", None)
    if explicit is not None:
        args["enforce_eager"] = explicit
    provenance = "explicit-true" if explicit else "injected" if flag else "none"
    spec = replace(
        base,
        gpu_memory_utilization=Decimal(util),
        vllm_additional_args={k: v for k, v in args.items() if k != "gpu_memory_utilization"}
        or None,
        provenance=provenance,
    )
    assert ("--enforce-eager" in build_script(spec)) is flag
    assert spec.expected_action == ("keep-eager" if flag else "no-change")
    # An H spec that disagrees with the policy cannot be built.
    with pytest.raises(ValueError):
        replace(spec, provenance="none" if flag else "injected")


def test_chat_template_export_decodes_to_the_template() -> None:
    spec = replace(make_spec("E"), chat_template="{{ messages }}\n'quoted' \"double\"")
    steps = build_script(spec).split(";")
    export = next(s for s in steps if s.startswith("export CHAT_TEMPLATE="))
    encoded = re.fullmatch(r'export CHAT_TEMPLATE=\$\(echo "(.+)" \| base64 --decode\)', export)
    assert encoded is not None
    assert base64.b64decode(encoded.group(1)).decode() == spec.chat_template
    assert '--chat-template "$CHAT_TEMPLATE"' in steps[-1]


def test_streaming_command_equals_command_unless_it_differs() -> None:
    spec = make_spec("E", flavor="streaming_enhanced_runnable_image")
    assert build_streaming_command(spec) == build_command(spec)
    differs = replace(spec, streaming_differs=True)
    streaming, command = build_streaming_command(differs), build_command(differs)
    assert streaming is not None and command is not None
    assert streaming[2] == command[2] + STREAMING_DIFFERS_SUFFIX
    assert build_streaming_command(replace(spec, flavor="runnable_image")) is None


@pytest.mark.parametrize("framework", [f for f in LLM_FRAMEWORKS if f != "vllm"])
def test_other_frameworks_are_skipped_and_have_no_flag(framework: str) -> None:
    spec = make_spec("E", framework=framework)
    assert "--enforce-eager" not in build_script(spec)
    assert spec.expected_action == "skip"
    assert endpoint_metadata(spec)["_llm"]["inference_framework"] == framework


def test_recorded_mirrors_the_legacy_command() -> None:
    spec = make_spec("G", provenance="recorded")
    assert spec.superseded, "a recorded endpoint was recreated from a legacy bundle"
    legacy = spec.superseded[-1]
    assert legacy.is_legacy and legacy.eager_now and legacy.generation in "BCDEF"
    args = spec.vllm_additional_args
    assert args is not None and args["enforce_eager"] is True
    assert Decimal(str(args["gpu_memory_utilization"])) == legacy.gpu_memory_utilization
    assert spec.created_at == legacy.bundle_created_at < spec.bundle_created_at
    assert spec.expected_action == "keep-eager"


# --- invariants over a random fleet ------------------------------------------------------


def test_fleet_sizes_are_the_catalogues_total_parameters(fleet: list[EndpointSpec]) -> None:
    """The scan's size estimate, checked on every endpoint against sizes written by hand."""
    catalogued = {m.name for m in MODELS}
    llm = [s for s in fleet if s.is_llm and s.model_name in catalogued]
    assert llm
    for spec in llm:
        assert spec.param_count_b == total_params_b(spec.model_name), spec.model_name
    assert any(s.param_count_b is None for s in llm)  # acme-assistant: nothing says


def test_post_cut_over_endpoints_hold_requests(fleet: list[EndpointSpec]) -> None:
    cut_over = datetime(2026, 5, 7, tzinfo=UTC)
    assert GENERATION_WINDOWS["G"][0] == cut_over.date() > GENERATION_WINDOWS["F"][1]
    with_args = [s for s in fleet if s.vllm_additional_args is not None]
    for spec in with_args:
        # Only a recreation's parse-back sits on an endpoint created before the cut-over.
        assert (spec.created_at < cut_over) == (spec.provenance == "recorded"), spec
    # Requests that spell out every argument, so that only the creation time decides.
    copies = [
        s
        for s in with_args
        if s.provenance == "explicit-true"
        and s.vllm_additional_args is not None
        and "gpu_memory_utilization" in s.vllm_additional_args
        and all(k in s.vllm_additional_args for k, _ in s.server_args)
    ]
    assert copies and all(s.expected_action == "keep-eager" for s in copies)


@pytest.mark.parametrize(
    ("model", "util", "action"),
    [
        ("qwen3-235b-a22b", "0.9", "drop-eager"),  # model engine read 22B: 0.9, flag goes
        ("deepseek-v3", "0.9", "drop-eager"),  # model engine could not size it
        ("llama-3-1-405b-instruct", "0.95", "keep-eager"),
    ],
)
def test_large_models_ran_at_model_engines_default(model: str, util: str, action: str) -> None:
    spec = make_spec("C", model_name=model, provenance="injected")
    assert spec.gpu_memory_utilization == Decimal(util)
    assert spec.expected_action == action
    assert (spec.param_count_b or 0) >= 70


def test_fleet_is_deterministic_and_a_prefix_of_larger_fleets(fleet: list[EndpointSpec]) -> None:
    again = list(random_fleet(200, seed=11))
    assert again == fleet[:200]
    assert list(random_fleet(200, seed=12)) != again
    assert list(random_fleet(0, seed=11)) == []


def test_fleet_covers_every_case(fleet: list[EndpointSpec]) -> None:
    vllm = [s for s in fleet if s.is_vllm]
    assert {s.generation for s in vllm} == set(GENERATIONS)
    assert {s.provenance for s in vllm} == set(PROVENANCES)
    assert {s.expected_action for s in fleet} == set(ACTIONS)
    assert {s.framework for s in fleet} == {*LLM_FRAMEWORKS, None}
    assert {s.status for s in fleet} == set(STATUSES)
    assert {s.flavor for s in fleet if not s.is_llm} == {
        "runnable_image",
        "streaming_enhanced_runnable_image",
        "triton_enhanced_runnable_image",
        "cloudpickle_artifact",
        "zip_artifact",
    }
    assert any(s.multinode for s in fleet)
    assert any(s.streaming_differs for s in fleet)
    assert any(s.superseded for s in fleet)
    assert any(s.chat_template for s in vllm)
    assert any(s.param_count_b is None for s in vllm)
    assert any((s.param_count_b or 0) >= 400 for s in vllm)
    assert {s.model_name for s in vllm} >= {
        "mixtral-8x7b-instruct",
        "mixtral-8x22b-instruct",
        "qwen3-235b-a22b",  # mixture-of-experts names model engine misreads
        "qwen3-30b-a3b",
        "llama-4-scout-17b-16e-instruct",
        "deepseek-v3",  # catalogue models without a size in the name
        "kimi-k2-instruct",
        "support-assistant",  # only the checkpoint path says what it is
    }
    assert {s.module for s in vllm} == {"vllm_server", "vllm_startup_wrapper"}
    # Rough proportions: ~85% vLLM, ~10% other frameworks, ~5% non-LLM.
    kinds = Counter("vllm" if s.is_vllm else "other" if s.is_llm else "none" for s in fleet)
    assert 0.80 < kinds["vllm"] / len(fleet) < 0.90
    assert 0.07 < kinds["other"] / len(fleet) < 0.13
    assert 0.03 < kinds["none"] / len(fleet) < 0.07


def test_fleet_ids_names_and_dates_are_consistent(fleet: list[EndpointSpec]) -> None:
    endpoint_ids = [s.endpoint_id for s in fleet]
    bundle_ids = [b.bundle_id for s in fleet for b in (*s.superseded, s)]
    assert len(set(endpoint_ids)) == len(endpoint_ids)
    assert len(set(bundle_ids)) == len(bundle_ids)
    assert len({s.name for s in fleet}) == len(fleet)
    id_shape = re.compile(r"(end|bun)_[0-9a-v]{20}")
    for spec in fleet:
        assert id_shape.fullmatch(spec.endpoint_id) and id_shape.fullmatch(spec.bundle_id)
        versions = (*spec.superseded, spec)
        for version in versions:
            start, end = GENERATION_WINDOWS[version.generation]
            assert start <= version.bundle_created_at.date() <= end, version
            assert version.endpoint_id == spec.endpoint_id and version.name == spec.name
        dates = [v.bundle_created_at for v in versions]
        assert dates == sorted(dates) and spec.created_at == dates[0]
        assert spec.last_updated_at > spec.bundle_created_at


def test_fleet_scripts_agree_with_their_intent(fleet: list[EndpointSpec]) -> None:
    for spec in (b for s in fleet if s.is_vllm for b in (*s.superseded, s)):
        script = build_script(spec)
        part = vllm_part(script)
        assert re.match(r"python -m (vllm_server|vllm_startup_wrapper) --model ", part), part
        assert shlex.split(part).count("--enforce-eager") == int(spec.eager_now), script
        assert script.count("--enforce-eager") == int(spec.eager_now)
        util = flag_value(script, "--gpu-memory-utilization")
        assert (Decimal(util) if util else None) == spec.gpu_memory_utilization
        if spec.generation >= "E":
            assert f"--served-model-name {shlex.quote(spec.model_name or '')}" in part or (
                f"--served-model-name '{spec.model_name}'" in part
            )
        for key, value in (spec.vllm_additional_args or {}).items():
            if key == "enforce_eager":
                continue  # checked above through eager_now: G's old rule overrode a false
            # Whatever else the caller asked for shows in the command.
            flag = "--" + key.replace("_", "-")
            if value is False:
                assert f"{flag} " not in part + " "
            else:
                assert flag in shlex.split(part)


def test_fleet_expected_actions_follow_the_documented_rule(fleet: list[EndpointSpec]) -> None:
    for spec in fleet:
        if not spec.is_vllm:
            assert spec.expected_action == "skip"
            continue
        explicit = spec.explicit_enforce_eager
        util = spec.gpu_memory_utilization
        want = explicit if explicit is not None else (util is not None and util >= Decimal("0.95"))
        if spec.provenance in ("hand-added", "recorded", "explicit-true"):
            assert want is True
        if spec.provenance == "explicit-false":
            assert spec.expected_action == "drop-eager"
        now = "--enforce-eager" in build_script(spec)
        expected = {
            (True, False): "drop-eager",
            (False, True): "add-eager",
            (True, True): "keep-eager",
            (False, False): "no-change",
        }[(now, want)]
        assert spec.expected_action == expected


def test_2024_fleets_fit_the_2024_tables() -> None:
    specs = list(random_fleet(1500, seed=5, schema_version="2024"))
    assert not any(s.multinode for s in specs)
    assert max(len(s.name) for s in specs) <= 50


def test_random_fleet_streams_in_flat_memory() -> None:
    stream = random_fleet(10**9, seed=3)  # a generator: nothing is built up front
    tracemalloc.start()
    try:
        for _ in itertools.islice(stream, 800):
            pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000


def test_make_spec_of_a_model_newer_than_its_generation_has_no_past() -> None:
    # Such a model has no older generation to supersede; this used to raise IndexError
    # whenever the draw asked for superseded bundles.
    for seed in range(40):
        spec = make_spec("A", model_name="deepseek-v3", seed=seed)
        assert spec.generation == "A" and spec.superseded == ()


def test_public_names_stay_importable_from_the_facade() -> None:
    from migrate.sandbox import seed, synth

    for name in synth.__all__:
        assert getattr(synth, name) is not None, name
    for name in seed.__all__:
        assert getattr(seed, name) is not None, name


def test_invalid_specs_are_refused() -> None:
    spec = make_spec("E", provenance="injected")
    with pytest.raises(ValueError):
        replace(spec, generation="Z")
    with pytest.raises(ValueError, match="hand-added"):
        replace(spec, provenance="hand-added")
    with pytest.raises(ValueError, match="vllm_additional_args"):
        replace(spec, vllm_additional_args={"enforce_eager": True})
    with pytest.raises(ValueError):
        random_fleet(1, seed=1, schema_version="2025").__next__()


# --- seeding ---------------------------------------------------------------------------------


def test_pg_text_array_round_trips(db_engine: sa.Engine) -> None:
    items = ['a "q"', "back\\slash", "semi;colon", "{brace}", "tab\tnew\nline", "", "NULL"]
    with db_engine.connect() as conn:
        got = conn.execute(sa.text("SELECT CAST(:a AS text[])"), {"a": pg_text_array(items)})
        assert got.scalar_one() == items


def _rows(engine: sa.Engine, schema: str, table: str) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        result = conn.execute(sa.text(f'SELECT * FROM "{schema}".{table}'))
        return {row["id"]: dict(row) for row in result.mappings()}


def test_seed_fleet_writes_rows_that_match_the_specs(me_db: Any) -> None:
    specs = list(random_fleet(400, seed=21, schema_version=me_db.version))
    stats = seed_fleet(me_db.url, specs, schema_version=me_db.version)
    bundles = _rows(me_db.engine, me_db.schema, "bundles")
    endpoints = _rows(me_db.engine, me_db.schema, "endpoints")

    expected_bundles = sum(1 + len(s.superseded) for s in specs)
    assert stats.endpoints == len(endpoints) == len(specs)
    assert stats.bundles == len(bundles) == expected_bundles
    assert stats.superseded_bundles == expected_bundles - len(specs)
    assert stats.vllm_endpoints == sum(s.is_vllm for s in specs)
    assert sum(stats.by_expected_action.values()) == len(specs)

    for spec in specs:
        row = endpoints[spec.endpoint_id]
        assert row["current_bundle_id"] == spec.bundle_id
        assert row["endpoint_metadata"] == json.loads(json.dumps(endpoint_metadata(spec)))
        assert row["endpoint_status"] == spec.status and row["name"] == spec.name
        versions = (*spec.superseded, spec)
        # The endpoint runs its newest bundle.
        assert max(versions, key=lambda v: v.bundle_created_at).bundle_id == spec.bundle_id
        for version in versions:
            stored = bundles[version.bundle_id]
            # Byte-exact commands: quotes, braces, backslashes, $ and ; all survive.
            assert stored["runnable_image_command"] == build_command(version)
            assert stored[
                "streaming_enhanced_runnable_image_streaming_command"
            ] == build_streaming_command(version)
            assert stored["flavor"] == version.flavor and stored["owner"] == spec.owner
            if me_db.version == "2026":
                assert stored["runnable_image_worker_command"] == build_worker_command(version)
            expected = bundle_row(version)
            for column in ("runnable_image_repository", "runnable_image_tag", "artifact_location"):
                assert stored[column] == expected[column]


def test_seed_fleet_accepts_connections_and_other_schemas(
    db_engine: sa.Engine, db_url: str
) -> None:
    schema = "Model Engine"
    with db_engine.begin() as conn:
        create_model_engine_tables(conn, "2026", schema)
    # One fleet cut in four: names are unique within a fleet, not across seeds.
    specs = list(random_fleet(120, seed=1))
    first, second, third, fourth = (specs[i : i + 30] for i in range(0, 120, 30))
    seed_fleet(db_engine, first, schema=schema)
    with db_engine.begin() as conn:
        seed_fleet(conn, second, schema=schema)
    with psycopg.connect(to_libpq_url(db_url)) as raw:
        raw.execute("SELECT 1")  # the caller opens a transaction: seeding is a savepoint in it
        seed_fleet(raw, third, schema=schema)
        raw.rollback()  # so nothing from `third` is kept
        seed_fleet(raw, fourth, schema=schema)  # an idle connection: seed_fleet commits
    endpoints = _rows(db_engine, schema, "endpoints")
    assert {s.endpoint_id for s in first + second + fourth} == endpoints.keys()


def test_seed_fleet_refuses_multinode_on_2024_tables(db_engine: sa.Engine) -> None:
    with db_engine.begin() as conn:
        create_model_engine_tables(conn, "2024")
    spec = make_spec("E", model_name="llama-3-1-405b-instruct", nodes_per_worker=2)
    with pytest.raises(ValueError, match="2026"):
        seed_fleet(db_engine, [spec], schema_version="2024")
    with db_engine.connect() as conn:
        count = conn.execute(sa.text("SELECT count(*) FROM hosted_model_inference.bundles"))
        assert count.scalar() == 0

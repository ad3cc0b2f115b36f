"""Random synthetic fleets (:func:`random_fleet`) and hand-picked endpoints (:func:`make_spec`).

About 85 % vLLM endpoints, 10 % other LLM frameworks, 5 % non-LLM endpoints;
some vLLM endpoints carry superseded older bundles or were force-recreated from
a legacy bundle (recorded provenance). Deterministic per seed, streamed.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from migrate.sandbox.synth.catalog import (
    CUSTOM_COMMANDS,
    GENERATION_WEIGHTS,
    MODELS,
    NON_LLM_FLAVOR_WEIGHTS,
    OTHER_FRAMEWORK_WEIGHTS,
    OTHER_FRAMEWORKS,
    OTHER_IMAGE_TAGS,
    STATUS_WEIGHTS,
    STORAGE_WEIGHTS,
    TEAMS,
    TRITON_COMMAND,
    Model,
    models_for,
    models_released_by,
)
from migrate.sandbox.synth.draw import Ids, pick, random_datetime
from migrate.sandbox.synth.spec import (
    ARGS_STORED_FROM,
    GENERATION_WINDOWS,
    GENERATIONS,
    SCHEMA_VERSIONS,
    STREAMING_FLAVOR,
    EndpointSpec,
    is_llama3_70b,
    param_count_b,
)
from migrate.sandbox.synth.versions import (
    legacy_provenance,
    older_generations,
    pick_checkpoint,
    pick_num_shards,
    random_vllm_version,
    recorded_from,
    window_for,
)

# (current bundle fields, superseded bundle fields oldest first)
_Versions = tuple[dict[str, Any], list[dict[str, Any]]]


def _random_vllm_endpoint(
    rng: random.Random,
    ids: Ids,
    base: dict[str, Any],
    schema_version: str,
    generation: str | None = None,
    model_name: str | None = None,
    provenance: str | None = None,
) -> _Versions:
    gen = generation or pick(rng, GENERATION_WEIGHTS)
    if model_name is not None:
        model = next((m for m in MODELS if m.name == model_name), None) or Model(
            model_name, date(2023, 1, 1), 1, param_count_b(model_name)
        )
    else:
        model = pick(rng, models_for(gen))
    window = window_for(gen, model.released) or GENERATION_WINDOWS[gen]
    at = random_datetime(rng, *window)
    size = model.total_b
    nodes = 1
    if (
        schema_version == "2026"
        and gen >= "C"
        and (size is None or size >= 200)
        and rng.random() < 0.4
    ):
        nodes = 2
    base = dict(base)
    base["num_shards"] = pick_num_shards(rng, size)
    base["nodes_per_worker"] = nodes
    base["quantize"] = "awq" if size is not None and size >= 7 and rng.random() < 0.06 else None
    base["checkpoint_path"] = pick_checkpoint(
        rng, model.repo or model.name, base["owner"], base["storage"]
    )
    if nodes > 1:
        base["flavor"] = STREAMING_FLAVOR
        base["endpoint_type"] = "streaming"

    recorded = provenance == "recorded" or (
        provenance is None and gen in ("G", "H") and rng.random() < 0.10
    )
    if recorded:
        old_gens = [g for g in ("C", "D", "E", "F") if window_for(g, model.released)]
        if not old_gens and is_llama3_70b(model.name):
            old_gens = ["B"]
        if old_gens:
            old_gen = rng.choice(old_gens)
            old_window = window_for(old_gen, model.released)
            assert old_window is not None
            old_at = random_datetime(rng, *old_window)
            legacy = random_vllm_version(
                rng,
                gen=old_gen,
                model=model,
                base=base,
                bundle_id=ids.next("bun_", old_at),
                at=old_at,
                forced_provenance="injected",
            )
            return recorded_from(rng, legacy, gen, ids.next("bun_", at), at), [legacy]
        if provenance == "recorded":
            raise ValueError(f"{model.name} has no legacy generation to be recorded from")

    current = random_vllm_version(
        rng,
        gen=gen,
        model=model,
        base=base,
        bundle_id=ids.next("bun_", at),
        at=at,
        forced_provenance=provenance,
    )
    superseded: list[dict[str, Any]] = []
    if rng.random() < 0.2:
        older = older_generations(gen, model, nodes > 1)
        if current["vllm_additional_args"] is not None:
            # A dict on an endpoint created before args were stored could only be a
            # recreation's parse-back (the recorded path above), never this request.
            older = [g for g in older if GENERATION_WINDOWS[g][0] >= ARGS_STORED_FROM]
        # Empty only for make_spec's hand-picked model released after the
        # generation: it has no past, so no superseded bundle (was IndexError).
        for _ in range(rng.choice((1, 1, 2)) if older else 0):
            old_gen = rng.choice(older)
            old_window = window_for(old_gen, model.released)
            assert old_window is not None
            old_at = random_datetime(rng, old_window[0], min(old_window[1], at.date()))
            if old_at >= at:
                continue
            old = random_vllm_version(
                rng,
                gen=old_gen,
                model=model,
                base=base,
                bundle_id=ids.next("bun_", old_at),
                at=old_at,
                forced_provenance=None,
            )
            if old["vllm_additional_args"] is not None:
                # Only the current bundle's args live on in the endpoint's metadata.
                old["vllm_additional_args"] = None
                old["provenance"] = legacy_provenance(old)
            superseded.append(old)
        superseded.sort(key=lambda f: f["bundle_created_at"])
        if superseded:
            current["created_at"] = superseded[0]["bundle_created_at"]
    return current, superseded


def _random_other_llm(rng: random.Random, ids: Ids, base: dict[str, Any]) -> _Versions:
    framework = pick(rng, OTHER_FRAMEWORK_WEIGHTS)
    gens = next(g for f, g, _ in OTHER_FRAMEWORKS if f == framework)
    gen = rng.choice(gens)
    # Generation only dates these: other frameworks never had vLLM's B special case.
    model = pick(rng, models_released_by(gen))
    window = window_for(gen, model.released) or GENERATION_WINDOWS[gen]
    at = random_datetime(rng, *window)
    fields = {
        **base,
        "num_shards": pick_num_shards(rng, model.total_b),
        "checkpoint_path": pick_checkpoint(
            rng, model.repo or model.name, base["owner"], base["storage"]
        ),
        "bundle_id": ids.next("bun_", at),
        "generation": gen,
        "provenance": "none",
        "created_at": at,
        "bundle_created_at": at,
        "last_updated_at": at,
        "model_name": model.name,
        "framework": framework,
        "framework_image_tag": rng.choice(OTHER_IMAGE_TAGS[framework]),
        "model_cache_enabled": gen >= "G" and rng.random() < 0.3,
    }
    return fields, []


def _random_non_llm(rng: random.Random, ids: Ids, base: dict[str, Any]) -> _Versions:
    flavor = pick(rng, NON_LLM_FLAVOR_WEIGHTS)
    gen = rng.choice(GENERATIONS)
    at = random_datetime(rng, *GENERATION_WINDOWS[gen])
    command: tuple[str, ...] | None = None
    provenance = "none"
    if flavor == "triton_enhanced_runnable_image":
        command = TRITON_COMMAND
    elif flavor in ("runnable_image", STREAMING_FLAVOR):
        command = rng.choice(CUSTOM_COMMANDS)
        if "--enforce-eager" in command[-1]:
            provenance = "hand-added"
    fields = {
        **base,
        "flavor": flavor,
        "bundle_id": ids.next("bun_", at),
        "generation": gen,
        "provenance": provenance,
        "created_at": at,
        "bundle_created_at": at,
        "last_updated_at": at,
        "custom_command": command,
    }
    if flavor != STREAMING_FLAVOR:
        fields["endpoint_type"] = rng.choice(("sync", "async"))
    return fields, []


def _base_fields(rng: random.Random, owners: list[str]) -> dict[str, Any]:
    owner = rng.choice(owners)
    flavor = STREAMING_FLAVOR if rng.random() < 0.75 else "runnable_image"
    if flavor == STREAMING_FLAVOR:
        endpoint_type = "streaming" if rng.random() < 0.7 else "sync"
    else:
        endpoint_type = "sync" if rng.random() < 0.7 else "async"
    extra: tuple[tuple[str, Any], ...] = ()
    if rng.random() < 0.3:
        extra = (("team", rng.choice(TEAMS)),)
    return {
        "owner": owner,
        "created_by": owner if rng.random() < 0.95 else rng.choice(owners),
        "status": pick(rng, STATUS_WEIGHTS),
        "endpoint_type": endpoint_type,
        "flavor": flavor,
        "storage": pick(rng, STORAGE_WEIGHTS),
        "metadata_extra": extra,
    }


def _endpoint_name(rng: random.Random, stem: str, index: int, schema_version: str) -> str:
    # The zero-padded index keeps names unique across any fleet size: no stem ends
    # in -NNNNN. 2024 databases name the bundle after the endpoint in varchar(50).
    suffix = f"-{index:05d}"
    prefix = f"{rng.choice(TEAMS)}-" if rng.random() < 0.4 else ""
    name = f"{prefix}{stem}"
    if schema_version == "2026" and rng.random() < 0.03:
        name += "-production-canary-eu"  # a few long names, fine in text columns
    limit = 50 if schema_version == "2024" else 63
    return name[: limit - len(suffix)].rstrip("-.") + suffix


def _finish(
    versions: _Versions, rng: random.Random, ids: Ids, index: int, schema_version: str
) -> EndpointSpec:
    """Name and id the endpoint, then build its specs (each validated once)."""
    current, superseded = versions
    stem = current.get("model_name") or (
        rng.choice(("embedder", "classifier", "reranker", "ocr", "asr")) + "-svc"
    )
    name = _endpoint_name(rng, stem, index, schema_version)
    created_at = superseded[0]["bundle_created_at"] if superseded else current["created_at"]
    endpoint_id = ids.next("end_", created_at)
    common = {"endpoint_id": endpoint_id, "name": name, "created_at": created_at}
    old = tuple(EndpointSpec(**{**f, **common}) for f in superseded)
    streaming_differs = (
        current.get("framework") == "vllm"
        and current["flavor"] == STREAMING_FLAVOR
        and rng.random() < 0.02
    )
    return EndpointSpec(
        **{
            **current,
            **common,
            "last_updated_at": current["bundle_created_at"]
            + timedelta(seconds=rng.randint(5, 600)),
            "streaming_differs": streaming_differs,
            "superseded": old,
        }
    )


_OWNER_POOL_SIZE = 300


def _owner_pool(seed: int) -> list[str]:
    # Separate stream: the pool must not depend on n, so a fleet of n is a prefix of
    # a larger fleet with the same seed.
    pool_rng = random.Random(f"owners-{seed}")
    return [pool_rng.getrandbits(96).to_bytes(12, "big").hex() for _ in range(_OWNER_POOL_SIZE)]


def random_fleet(n: int, seed: int, schema_version: str = "2026") -> Iterator[EndpointSpec]:
    """``n`` endpoints, deterministic for ``seed``; streamed, so memory stays flat.

    About 85 % vLLM endpoints (generations weighted as a late-2026 fleet),
    10 % other LLM frameworks, 5 % non-LLM endpoints. Multinode leaders only with
    ``schema_version="2026"`` (the 2024 tables have no worker command column).
    A fleet of n is the first n endpoints of any larger fleet with the same seed.
    """
    if schema_version not in SCHEMA_VERSIONS:
        raise ValueError(f"schema_version must be one of {SCHEMA_VERSIONS}")
    if n < 0:
        raise ValueError("n must be >= 0")
    rng = random.Random(seed)
    ids = Ids(rng)
    owners = _owner_pool(seed)
    for index in range(n):
        roll = rng.random()
        base = _base_fields(rng, owners)
        if roll < 0.05:
            versions = _random_non_llm(rng, ids, base)
        elif roll < 0.15:
            versions = _random_other_llm(rng, ids, base)
        else:
            versions = _random_vllm_endpoint(rng, ids, base, schema_version)
        yield _finish(versions, rng, ids, index, schema_version)


def make_spec(
    generation: str,
    *,
    provenance: str | None = None,
    model_name: str = "llama-3-1-8b-instruct",
    framework: str = "vllm",
    seed: int = 0,
    schema_version: str = "2026",
    index: int = 0,
    **overrides: Any,
) -> EndpointSpec:
    """One endpoint of a chosen generation, for hand-written tests.

    Random details come from ``seed``. ``provenance`` is forced when given; for H,
    "injected"/"none" move the utilization to the matching side of 0.95 and
    "explicit-false" becomes "none" (H honours it). ``overrides`` are applied last
    and validated.
    """
    if generation not in GENERATIONS:
        raise ValueError(f"generation must be one of {GENERATIONS}")
    rng = random.Random(f"make_spec-{seed}-{generation}-{provenance}-{model_name}-{framework}")
    ids = Ids(rng)
    base = _base_fields(rng, _owner_pool(seed))
    if framework == "vllm":
        versions = _random_vllm_endpoint(
            rng,
            ids,
            base,
            schema_version,
            generation=generation,
            model_name=model_name,
            provenance=provenance,
        )
    else:
        at = random_datetime(rng, *GENERATION_WINDOWS[generation])
        fields = {
            **base,
            "checkpoint_path": f"s3://scale-ml-models/hf-llm/{model_name}",
            "bundle_id": ids.next("bun_", at),
            "generation": generation,
            "provenance": "none",
            "created_at": at,
            "bundle_created_at": at,
            "last_updated_at": at,
            "model_name": model_name,
            "framework": framework,
            "framework_image_tag": OTHER_IMAGE_TAGS.get(framework, ("latest",))[0],
        }
        versions = (fields, [])
    spec = _finish(versions, rng, ids, index, schema_version)
    return replace(spec, **overrides) if overrides else spec

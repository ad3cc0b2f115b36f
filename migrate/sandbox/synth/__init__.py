"""Synthetic model engine endpoints of every command generation (A-H), with known intent.

Pure: no database. Used by the tests, the sandbox command and benchmarks. Each
:class:`EndpointSpec` says how an endpoint was made (generation, model, how the
``--enforce-eager`` flag got into its command) and therefore what the documented
new policy means for it (:attr:`EndpointSpec.expected_action`). The builders
render the exact stored command of its generation, so a scanner can be checked
against the intent that produced the bytes it parses.

Generations (see shared/reference/model-engine-facts.md, section 3):
A Aug 2023 - Sep 2024 (and every non-llama-3-70b endpoint until C), B May - Sep 2024
(llama-3-70b only), C Sep - 14 Oct 2024, D 15 Oct 2024, E 16 Oct 2024 - Sep 2025,
F Sep 2025 - 6 May 2026, G 7 May - 14 Jun 2026 (args recorded), H from 15 Jun 2026 (new policy).

This module is the public face; the parts live next to it:

- :mod:`migrate.sandbox.synth.spec`: the vocabulary, :class:`EndpointSpec`, its rules and
  expected action;
- :mod:`migrate.sandbox.synth.commands`: the stored command and metadata per generation;
- :mod:`migrate.sandbox.synth.catalog`: models, weights and names random fleets draw from;
- :mod:`migrate.sandbox.synth.draw`: weighted picks, dates and xid-shaped ids;
- :mod:`migrate.sandbox.synth.versions`: one random bundle version of a vLLM endpoint;
- :mod:`migrate.sandbox.synth.fleet`: :func:`random_fleet` and :func:`make_spec`.
"""

from __future__ import annotations

from migrate.sandbox.synth.commands import (
    ARG_ORDER,
    RAY_LEADER_STEP,
    RAY_WORKER_STEP,
    STREAMING_DIFFERS_SUFFIX,
    build_command,
    build_script,
    build_streaming_command,
    build_worker_command,
    creation_task_id,
    endpoint_metadata,
)
from migrate.sandbox.synth.draw import xid
from migrate.sandbox.synth.fleet import make_spec, random_fleet
from migrate.sandbox.synth.spec import (
    ACTIONS,
    DEFAULT_UTILIZATION,
    EAGER_THRESHOLD,
    ENDPOINT_TYPES,
    FLAVORS,
    GENERATION_WINDOWS,
    GENERATIONS,
    LARGE_MODEL_PARAMS_B,
    LARGE_MODEL_UTILIZATION,
    LLM_FRAMEWORKS,
    MODEL_CACHE_ROOT,
    PROVENANCES,
    RUNNABLE_FLAVORS,
    SCHEMA_VERSIONS,
    STATUSES,
    STREAMING_FLAVOR,
    EndpointSpec,
    default_gpu_memory_utilization,
    param_count_b,
)

__all__ = [
    "ACTIONS",
    "ARG_ORDER",
    "DEFAULT_UTILIZATION",
    "EAGER_THRESHOLD",
    "ENDPOINT_TYPES",
    "FLAVORS",
    "GENERATION_WINDOWS",
    "GENERATIONS",
    "LARGE_MODEL_PARAMS_B",
    "LARGE_MODEL_UTILIZATION",
    "LLM_FRAMEWORKS",
    "MODEL_CACHE_ROOT",
    "PROVENANCES",
    "RAY_LEADER_STEP",
    "RAY_WORKER_STEP",
    "RUNNABLE_FLAVORS",
    "SCHEMA_VERSIONS",
    "STATUSES",
    "STREAMING_DIFFERS_SUFFIX",
    "STREAMING_FLAVOR",
    "EndpointSpec",
    "build_command",
    "build_script",
    "build_streaming_command",
    "build_worker_command",
    "creation_task_id",
    "default_gpu_memory_utilization",
    "endpoint_metadata",
    "make_spec",
    "param_count_b",
    "random_fleet",
    "xid",
]

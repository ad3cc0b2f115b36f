"""Properties of the whole decision over generated endpoints (hypothesis).

The oracle is written from the facts, independently of the code: the generator
records what it put where (the flag, the utilization, each tunable flag and its
value, the stored args, the creation time), and the expected provenance,
action and flags follow from the literal rule table and the provenance rules of
the README, spelt out here. Nothing from migrate.core.policy or modelsize is
used to decide what is expected, so a slip there (say `>=` turned into `>`)
fails this test instead of agreeing with itself.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from migrate.core.classify import classify
from migrate.core.command import parse_script
from migrate.core.policy import PolicyParams
from migrate.core.records import BundleRecord, EndpointRecord

# The facts, written down here once ----------------------------------------------------

# Model engine began storing the caller's args on this day (README, provenance).
CUT_OVER = datetime(2026, 5, 7, tzinfo=UTC)
CREATED = (
    datetime(2025, 3, 1, tzinfo=UTC),  # legacy era
    datetime(2026, 5, 6, 23, 59, 59, tzinfo=UTC),  # the last second before
    CUT_OVER,  # the day itself counts as "since"
    datetime(2026, 7, 1, tzinfo=UTC),
)
LARGE_B = 70
LARGE_UTILIZATION = Decimal("0.95")
# name: (total parameters, model engine's reading), from the models' cards and its rule.
MODELS: dict[str, tuple[int | None, int | None]] = {
    "llama-3-8b-instruct": (8, 8),
    "llama-3-1-70b-instruct": (70, 70),
    "deepseek-v3": (671, None),
    "mixtral-8x7b": (47, 47),
    "qwen3-235b-a22b": (235, 22),
    "qwen3-30b-a3b": (30, 3),
    "acme-support-bot": (None, None),
}
# How pydantic 2 reads a stored boolean (model engine validates the dict with it):
# (stored value, what it means). Pairs, since 1 == True would merge dict keys.
STORED_BOOLEANS: tuple[tuple[Any, bool | None], ...] = (
    (True, True),
    (False, False),
    (None, None),
    (1, True),
    (0, False),
    ("true", True),
    ("False", False),
    ("yes", True),
    ("off", False),
)
MALFORMED_BOOLEANS = ("maybe", 2, " true", "")

# Tunable flags (not derived by model engine from the endpoint): how the command
# spells each and the value a stored dict holds for it.
TUNABLES: dict[str, tuple[tuple[str, ...], Any]] = {
    "max_model_len": (("--max-model-len 8192",), 8192),
    "tokenizer_mode": (("--tokenizer-mode auto",), "auto"),
    "rope_scaling": (
        (
            "--rope-scaling {'type': 'linear', 'factor': 2.0}",
            "--rope-scaling '" + '{"type":"linear","factor":2.0}' + "'",
        ),
        {"type": "linear", "factor": 2.0},
    ),
    "trust_remote_code": (("--trust-remote-code False",), False),
    "some_future_flag": (("--some-future-flag x y",), ["x", "y"]),
    "enable_prefix_caching": (("--enable-prefix-caching",), True),
}
DERIVED = ("--quantization awq", '--chat-template "$CHAT_TEMPLATE"', "--host '::'")
PREFIXES = (
    "s5cmd --numworkers 512 cp --concurrency 50 s3://b/m/* model_files",
    "azcopy copy --recursive https://acct.blob.core.windows.net/m/* ./model_files",
    'export CHAT_TEMPLATE=$(echo "e3sgbWVzc2FnZXMgfX0=" | base64 --decode)',
    "/workspace/init_ray.sh leader --ray_cluster_size=2 --own_address=$POD.$NS",
)


@dataclass(frozen=True)
class Facts:
    """What the generator put where."""

    model: str
    eager: bool
    util: Decimal | None  # --gpu-memory-utilization in the command
    tunables: dict[str, Any]  # tunable flags in the command, with their dict values
    stored: dict[str, Any] | None  # _llm.vllm_additional_args
    created: datetime
    ready: bool


@st.composite
def endpoints(draw: st.DrawFn) -> tuple[EndpointRecord, Facts]:
    util_text = draw(st.one_of(st.none(), st.sampled_from(["0.8", "0.9", "0.95", "0.97"])))
    util = None if util_text is None else Decimal(util_text)
    eager = draw(st.booleans())
    keys = draw(st.lists(st.sampled_from(sorted(TUNABLES)), max_size=3, unique=True))
    tunables = {k: TUNABLES[k][1] for k in keys}
    parts = ["--model model_files", "--port 5005"]
    parts += [draw(st.sampled_from(TUNABLES[k][0])) for k in keys]
    parts += draw(st.lists(st.sampled_from(DERIVED), max_size=2, unique=True))
    if eager:
        parts.insert(draw(st.integers(0, len(parts))), "--enforce-eager")
    if util_text is not None:
        parts.insert(draw(st.integers(0, len(parts))), f"--gpu-memory-utilization {util_text}")
    module = draw(st.sampled_from(["vllm_server", "vllm_startup_wrapper"]))
    prefix = draw(st.lists(st.sampled_from(PREFIXES), max_size=3))
    script = ";".join([*prefix, f"python -m {module} " + " ".join(parts)])

    style = draw(st.sampled_from(["legacy", "request", "parse-back"]))
    stored: dict[str, Any] | None = None
    if style == "request":
        chosen = draw(st.lists(st.sampled_from(sorted(TUNABLES)), max_size=3, unique=True))
        stored = {k: TUNABLES[k][1] for k in chosen}
        if "max_model_len" in stored and draw(st.booleans()):
            stored["max_model_len"] = 4096  # a request that differs from the command
        stored_u = draw(st.sampled_from([None, 0.8, 0.9, 0.95]))
        if stored_u is not None:
            stored["gpu_memory_utilization"] = stored_u
        choice = draw(st.sampled_from(["absent", *range(len(STORED_BOOLEANS)), "malformed"]))
        if choice == "malformed":
            stored["enforce_eager"] = draw(st.sampled_from(MALFORMED_BOOLEANS))
        elif choice != "absent":
            stored["enforce_eager"] = STORED_BOOLEANS[int(choice)][0]
    elif style == "parse-back" and util is not None:
        # A recreation of a legacy endpoint: the whole command read back.
        stored = dict(tunables)
        stored["gpu_memory_utilization"] = float(util)
        stored["enforce_eager"] = True
    llm: dict[str, Any] = {"model_name": draw(st.sampled_from(sorted(MODELS))), "num_shards": 1}
    llm["inference_framework"] = "vllm"
    if stored is not None:
        llm["vllm_additional_args"] = stored
    ready = draw(st.booleans())
    created = draw(st.sampled_from(CREATED))
    command = ["/bin/bash", "-c", script]
    bundle = BundleRecord("bun_x", "streaming_enhanced_runnable_image", command, command, None)
    record = EndpointRecord(
        id="end_x",
        name="ep",
        owner="o",
        status="READY" if ready else "UPDATE_FAILED",
        endpoint_type="streaming",
        metadata={"_llm": llm},
        current_bundle_id="bun_x",
        bundle=bundle,
        created_at=created,
    )
    facts = Facts(llm["model_name"], eager, util, tunables, stored, created, ready)
    return record, facts


# The oracle ---------------------------------------------------------------------------


def stored_utilization(f: Facts) -> Decimal | None:
    value = (f.stored or {}).get("gpu_memory_utilization")
    return None if value is None else Decimal(str(value))


def copies_the_command(f: Facts) -> bool:
    """The stored dict holds the command's utilization and every tunable flag, equal."""
    if f.stored is None or f.util is None or stored_utilization(f) != f.util:
        return False
    return all(k in f.stored and f.stored[k] == v for k, v in f.tunables.items())


def stored_boolean(value: Any) -> bool | None:
    return next(b for raw, b in STORED_BOOLEANS if type(raw) is type(value) and raw == value)


def expected_provenance(f: Facts) -> tuple[str, bool | None]:
    """(provenance, the caller's value the rule sees), from the facts."""
    explicit = stored_boolean((f.stored or {}).get("enforce_eager"))
    if explicit is False:
        return "explicit-false", False
    if explicit is True:
        if f.created >= CUT_OVER or not copies_the_command(f):
            return "explicit-true", True
        return "recorded", True
    if f.eager and f.util is None:
        return "hand-added", True
    return ("injected" if f.eager else "absent"), None


def expected_eager_after(f: Facts, recorded: str, threshold: Decimal) -> bool:
    """The rule table: the caller's value wins; else eager iff utilization >= threshold."""
    kind, explicit = expected_provenance(f)
    if kind == "recorded" and recorded == "drop":
        explicit = None
    if explicit is not None:
        return explicit
    util = f.util if f.util is not None else stored_utilization(f)
    if util is None:
        return False
    return util >= threshold


def is_malformed(f: Facts) -> bool:
    value = (f.stored or {}).get("enforce_eager")
    return any(type(bad) is type(value) and bad == value for bad in MALFORMED_BOOLEANS)


# The property -------------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(
    endpoints(),
    st.sampled_from(["keep", "drop"]),
    st.sampled_from([Decimal("0.95"), Decimal("0.9")]),
)
def test_decision_follows_the_rule_and_the_edit_follows_the_decision(
    case: tuple[EndpointRecord, Facts], recorded: str, threshold: Decimal
) -> None:
    record, f = case
    d = classify(record, PolicyParams(threshold=threshold, recorded=recorded))
    total, engine = MODELS[f.model]
    util = f.util if f.util is not None else stored_utilization(f)

    # Flags that hold whatever the action.
    assert d.param_count_b == total and d.model_engine_param_count_b == engine
    assert ("unknown-model-size" in d.flags) == (total is None)
    assert ("size-disagrees-with-model-engine" in d.flags) == (total != engine)
    assert ("not-ready" in d.flags) == (not f.ready)
    large = total is not None and total >= LARGE_B
    high = util is not None and util >= LARGE_UTILIZATION
    assert ("large-model-at-0.95" in d.flags) == (large and high)
    stored_u = stored_utilization(f)
    mismatch = stored_u is not None and stored_u != f.util
    assert ("args-command-mismatch" in d.flags) == mismatch
    assert d.eager_now == f.eager

    if is_malformed(f):
        assert d.action == "skip" and "malformed-metadata" in d.flags
        assert d.command_after is None and d.eager_after == f.eager
        return

    assert d.action != "skip", d.reason
    kind, _ = expected_provenance(f)
    assert d.provenance == kind, d.evidence
    assert len([e for e in d.evidence if e.startswith("decided by")]) == 1, d.evidence
    assert d.eager_after == expected_eager_after(f, recorded, threshold)
    expected_action = {
        (True, False): "drop-eager",
        (False, True): "add-eager",
        (True, True): "keep-eager",
        (False, False): "no-change",
    }[(f.eager, d.eager_after)]
    assert d.action == expected_action
    dropped = expected_action == "drop-eager"
    assert ("large-model-loses-eager" in d.flags) == (dropped and large)
    assert ("unknown-size-loses-eager" in d.flags) == (dropped and total is None)
    assert ("recorded-eager" in d.flags) == (kind == "recorded")

    before = record.bundle.command[2]  # type: ignore[union-attr]
    if not d.changes:
        assert d.command_after is None
        return
    after = d.command_after
    assert after is not None and d.streaming_command_after == after
    flag = " --enforce-eager"
    if dropped:
        # Exactly the one token is gone: some cut of it out of the old script gives the new.
        cuts = [i for i in range(len(before)) if before.startswith(flag, i)]
        assert any(before[:i] + before[i + len(flag) :] == after for i in cuts)
    elif f.util is not None:
        anchor = f"--gpu-memory-utilization {f.util}"
        assert after == before.replace(anchor, anchor + flag, 1)
    else:
        assert after == before + flag  # the server is the script's last command
    reread = parse_script(after)
    assert reread.enforce_eager == d.eager_after
    assert shlex.split(after).count("--enforce-eager") == int(d.eager_after)
    assert parse_script(before).module == reread.module

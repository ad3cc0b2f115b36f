"""The decision for one endpoint: parse its command, weigh the evidence, edit.

Pure: takes an EndpointRecord, returns a Decision. Nothing here raises for bad
data; an endpoint that cannot be decided safely becomes a `skip` with a reason.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from migrate.core import command as cmd
from migrate.core import modelsize, policy
from migrate.core.fingerprint import fingerprints
from migrate.core.modelsize import LARGE_MODEL_B
from migrate.core.overrides import AUTO, KEEP, Overrides
from migrate.core.records import Decision, EndpointRecord

DROP, ADD, KEEP_EAGER, NO_CHANGE, SKIP = (
    "drop-eager",
    "add-eager",
    "keep-eager",
    "no-change",
    "skip",
)
ACTIONS = (DROP, ADD, KEEP_EAGER, NO_CHANGE, SKIP)

RUNNABLE_FLAVORS = (
    "runnable_image",
    "streaming_enhanced_runnable_image",
    "triton_enhanced_runnable_image",
)
LARGE_UTILIZATION = Decimal("0.95")


def _action(eager_now: bool, eager_after: bool) -> str:
    if eager_now and not eager_after:
        return DROP
    if eager_after and not eager_now:
        return ADD
    return KEEP_EAGER if eager_now else NO_CHANGE


def _skip(decision: Decision, reason: str, *flags: str) -> Decision:
    decision.action = SKIP
    decision.reason = reason
    decision.eager_after = decision.eager_now
    decision.command_after = None
    decision.streaming_command_after = None
    decision.args_after = None
    decision.flags.extend(f for f in flags if f not in decision.flags)
    return decision


def _fmt(u: Decimal | None) -> str:
    return "none" if u is None else str(u)


def _is_multinode(record: EndpointRecord, inv: cmd.VllmInvocation) -> bool:
    bundle = record.bundle
    if bundle is not None and bundle.worker_command:
        return True
    if (inv.pipeline_parallel_size or 1) > 1:
        return True
    return "init_ray.sh leader" in inv.script


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def classify(
    record: EndpointRecord,
    params: policy.PolicyParams | None = None,
    overrides: Overrides | None = None,
    fingerprint: bool = True,
) -> Decision:
    """The decision for one endpoint.

    ``fingerprint``: give a change the fingerprints apply checks (a plan needs
    them); a report, which shows none, passes False and a change's stay None.
    """
    llm = record.llm
    estimate = modelsize.estimate(_text(llm.get("model_name")), _text(llm.get("checkpoint_path")))
    decision = _judge(
        record, llm, params or policy.PolicyParams(), overrides, estimate, fingerprint
    )
    if decision.action == SKIP:
        _flag_from_stored_args(decision, llm, estimate.total_b)
    _note_size(decision, estimate)
    return decision


def _flag_from_stored_args(decision: Decision, llm: dict[str, Any], size: int | None) -> None:
    """A skipped endpoint still shows the risk its stored args reveal.

    The command could not be read (or was not reached), but a vLLM endpoint's
    `vllm_additional_args` may still say which utilization it runs at.
    """
    stored_args = llm.get("vllm_additional_args")
    if llm.get("inference_framework") != "vllm" or not isinstance(stored_args, dict):
        return
    if decision.gpu_memory_utilization is not None:
        # The command was read and says what runs (the judgement flagged it already);
        # a stored value it does not carry must not outrank it.
        return
    stored_u = policy.to_decimal(stored_args.get("gpu_memory_utilization"))
    if stored_u is None:
        return
    decision.gpu_memory_utilization = float(stored_u)
    large = size is not None and size >= LARGE_MODEL_B
    if large and stored_u >= LARGE_UTILIZATION and "large-model-at-0.95" not in decision.flags:
        decision.flags.append("large-model-at-0.95")
        decision.evidence.append(
            f"_llm.vllm_additional_args.gpu_memory_utilization = {stored_u} "
            "(the command was not read)"
        )


def _note_size(decision: Decision, estimate: modelsize.SizeEstimate) -> None:
    """Say where the size came from when it is not model engine's plain reading."""
    if not estimate.disagrees:
        return
    engine = estimate.model_engine_b
    total = "unknown" if estimate.total_b is None else f"{estimate.total_b}B"
    read = "cannot read a size from the name" if engine is None else f"reads {engine}B"
    decision.evidence.append(
        f"total size {total} from {estimate.basis}; model engine {read}, so its "
        f"default utilization for this model is {modelsize.default_utilization(engine)}"
    )


def _judge(
    record: EndpointRecord,
    llm: dict[str, Any],
    params: policy.PolicyParams,
    overrides: Overrides | None,
    estimate: modelsize.SizeEstimate,
    fingerprint: bool,
) -> Decision:
    model_name = _text(llm.get("model_name"))
    size = estimate.total_b
    bundle = record.bundle
    decision = Decision(
        endpoint_id=record.id,
        endpoint_name=record.name,
        owner=record.owner,
        model_name=model_name,
        param_count_b=size,
        model_engine_param_count_b=estimate.model_engine_b,
        bundle_id=record.current_bundle_id,
        endpoint_status=record.status,
        gpu_memory_utilization=None,
        eager_now=False,
        eager_after=False,
        action=SKIP,
        reason="",
        inference_framework=llm.get("inference_framework"),
    )
    if size is None:
        decision.flags.append("unknown-model-size")
    if estimate.disagrees:
        decision.flags.append("size-disagrees-with-model-engine")
    if record.status != "READY":
        decision.flags.append("not-ready")

    framework = llm.get("inference_framework")
    if framework != "vllm":
        return _skip(decision, f"inference framework {framework!r} is out of scope (vLLM only)")
    if bundle is None:
        return _skip(decision, "the endpoint's current bundle is missing", "missing-bundle")
    if bundle.flavor not in RUNNABLE_FLAVORS:
        return _skip(decision, f"bundle flavor {bundle.flavor!r} has no start command")

    try:
        inv = cmd.parse_command(bundle.command)
    except cmd.CommandError as err:
        if err.kind == cmd.INDIRECT_ARGUMENTS:
            return _skip(decision, f"arguments decided at run time: {err.reason}", err.kind)
        return _skip(decision, f"command not understood: {err.reason}", "unparseable-command")

    decision.eager_now = inv.enforce_eager
    stored_args = llm.get("vllm_additional_args")
    if stored_args is not None and not isinstance(stored_args, dict):
        return _skip(decision, "_llm.vllm_additional_args is not an object", "malformed-metadata")

    utilization = inv.gpu_memory_utilization
    if utilization is None and stored_args is not None:
        utilization = policy.to_decimal(stored_args.get("gpu_memory_utilization"))
    decision.gpu_memory_utilization = float(utilization) if utilization is not None else None
    if stored_args is not None and "gpu_memory_utilization" in stored_args:
        # The command is what runs; a stored value it does not carry is a warning sign.
        stored_u = policy.to_decimal(stored_args["gpu_memory_utilization"])
        if stored_u != inv.gpu_memory_utilization:
            decision.flags.append("args-command-mismatch")

    if _is_multinode(record, inv):
        decision.flags.append("multinode")
    if size is not None and size >= LARGE_MODEL_B and utilization is not None:
        if utilization >= LARGE_UTILIZATION:
            decision.flags.append("large-model-at-0.95")

    streaming_inv = None
    if bundle.streaming_command is not None and bundle.streaming_command != bundle.command:
        decision.flags.append("streaming-command-differs")
        try:
            streaming_inv = cmd.parse_command(bundle.streaming_command)
        except cmd.CommandError as err:
            return _skip(decision, f"streaming command not understood: {err.reason}")
        # Both commands must change together, so they must agree on everything the
        # decision reads; otherwise the rule could want one with eager, one without.
        if (
            streaming_inv.enforce_eager != inv.enforce_eager
            or streaming_inv.gpu_memory_utilization != inv.gpu_memory_utilization
        ):
            return _skip(
                decision,
                "command and streaming command disagree on --enforce-eager or "
                "--gpu-memory-utilization; both or neither must change",
            )

    # Checked last, so everything the command shows is flagged before the skip.
    if stored_args is not None:
        try:
            policy.to_bool(stored_args.get("enforce_eager"))
        except policy.MalformedValue as err:
            # Model engine's own rebuild would refuse this dict; guessing a value
            # would either ignore a caller's request or invent one.
            return _skip(
                decision,
                f"_llm.vllm_additional_args.enforce_eager: {err}",
                "malformed-metadata",
            )

    prov = policy.provenance(
        eager_now=inv.enforce_eager,
        command_utilization=inv.gpu_memory_utilization,
        command_args=inv.args_by_key(),
        stored_args=stored_args,
        endpoint_created_at=record.created_at,
        args_recorded_since=params.args_recorded_since,
    )
    decision.provenance = prov.kind
    decision.evidence = list(prov.evidence)
    explicit = prov.explicit
    if prov.kind == policy.RECORDED:
        decision.flags.append("recorded-eager")
        if params.recorded == policy.RECORDED_DROP:
            explicit = None
    if prov.kind == policy.EXPLICIT_FALSE and inv.enforce_eager:
        decision.flags.append("explicit-false-overridden")

    override = overrides.match(record.name, model_name) if overrides else None
    if override is not None:
        section, what = override
        decision.flags.append(f"override-{section}")
        decision.evidence.append(f"operator override [{section}] by {what} in {overrides.source}")

    if override is not None and override[0] == KEEP:
        eager_after = inv.enforce_eager
        reason = (
            f"operator override keeps the flag ({override[1]})"
            if eager_after
            else f"operator override [{KEEP}] matches ({override[1]}); no flag to keep"
        )
    else:
        if override is not None and override[0] == AUTO:
            explicit = None
        eager_after = policy.new_rule(explicit, utilization, params.threshold)
        reason = _reason(prov.kind, explicit, inv.enforce_eager, eager_after, utilization, params)

    decision.eager_after = eager_after
    decision.action = _action(inv.enforce_eager, eager_after)
    decision.reason = reason

    if decision.action == DROP:
        if size is None:
            decision.flags.append("unknown-size-loses-eager")
        elif size >= LARGE_MODEL_B:
            decision.flags.append("large-model-loses-eager")

    if decision.changes:
        try:
            decision.command_after = cmd.set_enforce_eager(inv, eager_after)
            if streaming_inv is not None:
                decision.streaming_command_after = cmd.set_enforce_eager(streaming_inv, eager_after)
            elif bundle.streaming_command is not None:
                decision.streaming_command_after = decision.command_after
        except cmd.CommandError as err:
            return _skip(decision, f"edit refused: {err.reason}", "unparseable-command")
        decision.args_after = _args_after(stored_args, eager_after)
        # Only a change goes into a plan, so only a change needs what apply checks
        # against; hashing every endpoint's metadata would tax each scan.
        if fingerprint:
            decision.fingerprint, decision.basis_fingerprint = fingerprints(record)
    return decision


def _args_after(stored_args: dict[str, Any] | None, eager_after: bool) -> dict[str, Any] | None:
    """The vllm_additional_args that make model engine's own recreation agree.

    A recreation obeys a stored `enforce_eager`, so a stored value that
    contradicts the decision (a recorded true we drop, a false an override
    adds eager over) is removed; the new rule then reproduces the decision from
    the utilization. Legacy endpoints (no dict) stay legacy: a recreation parses
    the new command.
    """
    if stored_args is None:
        return None
    stored = policy.to_bool(stored_args.get("enforce_eager"))
    if stored is not None and stored != eager_after:
        return {k: v for k, v in stored_args.items() if k != "enforce_eager"}
    return None


_PREFIXES = {
    policy.INJECTED: "flag injected by the old rule",
    policy.RECORDED: "recorded flag treated as injected (--recorded drop)",
    policy.HAND_ADDED: "flag without utilization, treated as automatic by override",
    policy.EXPLICIT_TRUE: "caller's value ignored by override",
    policy.EXPLICIT_FALSE: "caller's value ignored by override",
}


def _reason(
    kind: str,
    explicit: bool | None,
    eager_now: bool,
    eager_after: bool,
    utilization: Decimal | None,
    params: policy.PolicyParams,
) -> str:
    t = params.threshold
    u = _fmt(utilization)
    if explicit is False:
        if eager_now:
            return "caller asked for enforce_eager: false; the old rule overrode it"
        return "caller asked for enforce_eager: false"
    if explicit is True:
        if kind == policy.RECORDED:
            return (
                "enforce_eager: true recorded by a legacy recreation; kept by default "
                "(--recorded drop applies the rule)"
            )
        if kind == policy.HAND_ADDED:
            return "flag without utilization: a person asked for it"
        if eager_now:
            return "caller asked for enforce_eager: true"
        return "caller asked for enforce_eager: true but the command lacks the flag"
    prefix = _PREFIXES.get(kind, "no flag")
    if eager_after:
        verb = "keeps" if eager_now else "adds"
        return f"{prefix}; utilization {u} >= {t} {verb} eager as the OOM guard"
    graphs = "go on" if eager_now else "stay on"
    if utilization is None:
        return f"{prefix}; no utilization set, so CUDA graphs {graphs}"
    return f"{prefix}; utilization {u} < {t}, so CUDA graphs {graphs}"

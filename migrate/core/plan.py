"""The plan: which endpoints change, in which stage, exactly how. Pure.

A plan is the unit of review (Terraform's saved plan): a versioned JSON file
whose `digest` covers everything else in it, so an edited or truncated file is
refused, and whose `database` identity stops it being applied to another
database. The digest proves integrity, not authorship (anyone can recompute
it); with a key, `sign` adds an HMAC that only its holders can make.
Building, serialising and validating live here without a connection, so they
are tested on plain values; which change goes in which stage is
migrate.core.staging's.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from migrate.core import staging
from migrate.core.json_text import (
    Buffer,
    canonical_json,
    hashed,
    indented_pieces,
    indented_utf8_pieces,
)
from migrate.core.policy import RECORDED_DROP, RECORDED_KEEP, PolicyParams
from migrate.core.records import Decision
from migrate.core.staging import DEFAULT_STAGES, StageSpec

FORMAT = "bundle-migrate-plan"
VERSION = 1
CHANGING_ACTIONS = ("drop-eager", "add-eager")


class PlanError(ValueError):
    """A plan that cannot be built or used; the message says why."""


@dataclass(frozen=True)
class ItemPolicy:
    """What apply re-derives an item's values under: the plan's policy and overrides file.

    Not part of the item in the file (the plan's `policy` and `overrides` are);
    each item carries it so that the verdict can judge an item on its own.
    """

    params: PolicyParams
    overrides: str | None = None


@dataclass(frozen=True)
class PlanItem:
    endpoint_id: str
    endpoint_name: str
    model_name: str | None
    param_count_b: int | None
    bundle_id: str
    fingerprint: str
    basis_fingerprint: str
    action: str
    reason: str
    flags: tuple[str, ...]
    provenance: str | None
    stage: int
    command_after: str
    streaming_command_after: str | None
    args_after: dict[str, Any] | None
    # None: nothing to re-derive under, and apply refuses the item.
    policy: ItemPolicy | None = field(default=None, compare=False, repr=False)

    @property
    def eager_after(self) -> bool:
        return self.action == "add-eager"

    def to_dict(self) -> dict[str, Any]:
        # Not asdict(): it deep-copies every string, and cost more than the rest of
        # writing a plan. Only args_after holds anything mutable.
        data = {name: getattr(self, name) for name in _ITEM_KEYS}
        data["flags"] = list(self.flags)
        data["args_after"] = copy.deepcopy(self.args_after)
        return data


_ITEM_KEYS = tuple(f.name for f in fields(PlanItem) if f.name != "policy")


@dataclass(frozen=True)
class Stage:
    number: int
    name: str
    endpoints: int


@dataclass(frozen=True)
class Plan:
    created_at: str
    created_by: str
    tool_version: str
    database: dict[str, Any]
    schema: str
    policy: dict[str, Any]
    filters: dict[str, Any]
    overrides: str | None
    stage_spec: str
    exclude_large: bool
    summary: dict[str, Any]
    stages: tuple[Stage, ...]
    items: tuple[PlanItem, ...]
    excluded: tuple[dict[str, Any], ...] = ()
    digest: str = ""
    signature: str = ""  # "hmac-sha256:...", when a plan key was set (see sign)

    def body(self) -> dict[str, Any]:
        """Everything the digest covers, in the file's layout."""
        return {
            "format": FORMAT,
            # `version` is what tools before format_version check; both say the same.
            "format_version": VERSION,
            "version": VERSION,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "tool_version": self.tool_version,
            "database": dict(self.database),
            "schema": self.schema,
            "policy": dict(self.policy),
            "filters": dict(self.filters),
            "overrides": self.overrides,
            "stage_spec": self.stage_spec,
            "exclude_large": self.exclude_large,
            "summary": dict(self.summary),
            "stages": [asdict(s) for s in self.stages],
            "items": [i.to_dict() for i in self.items],
            "excluded": [dict(e) for e in self.excluded],
        }

    def stage_items(self, number: int) -> list[PlanItem]:
        return [i for i in self.items if i.stage == number]

    @property
    def short_digest(self) -> str:
        return self.digest.removeprefix("sha256:")[:12]


def compute_digest(body: dict[str, Any]) -> str:
    return "sha256:" + hashed(body, hashlib.sha256()).hexdigest()


def read_policy(policy: Any, overrides: Any = None, source: str = "plan") -> ItemPolicy:
    """A plan's `policy` object as the rule it names; the threshold as a string or a number.

    Threshold and recorded are required (every plan has them) and checked here;
    PolicyParams.from_dict reads the rest, with defaults for keys older plans lack.
    """
    if not isinstance(policy, dict):
        raise PlanError(f"{source}: policy must be an object")
    raw = policy.get("threshold")
    try:
        if isinstance(raw, bool) or not isinstance(raw, str | int | float):
            raise InvalidOperation
        threshold = Decimal(str(raw).strip())
        valid = threshold.is_finite() and Decimal(0) < threshold <= Decimal(1)
    except (InvalidOperation, ValueError):
        valid = False
    if not valid:
        raise PlanError(f"{source}: policy.threshold must be a number in (0, 1], not {raw!r}")
    recorded = policy.get("recorded")
    if recorded not in (RECORDED_KEEP, RECORDED_DROP):
        raise PlanError(
            f"{source}: policy.recorded must be {RECORDED_KEEP!r} or {RECORDED_DROP!r}, "
            f"not {recorded!r}"
        )
    if overrides is not None and not isinstance(overrides, str):
        raise PlanError(f"{source}: overrides must be a file name or null")
    try:
        params = PolicyParams.from_dict(policy)  # and the args cut-over, which plans gained later
    except ValueError as exc:
        raise PlanError(f"{source}: {exc}") from None
    return ItemPolicy(params, overrides)


def check_change(d: Decision) -> None:
    """PlanError when a change's decision lacks what apply needs."""
    if d.bundle_id is None or d.command_after is None or not d.fingerprint:
        raise PlanError(
            f"endpoint {d.endpoint_name}: decision lacks bundle, command or fingerprint"
        )


def item_of(d: Decision, stage: int, policy: ItemPolicy | None) -> PlanItem:
    """A change's plan item; PlanError when the decision lacks what apply needs."""
    check_change(d)
    return PlanItem(
        endpoint_id=d.endpoint_id,
        endpoint_name=d.endpoint_name,
        model_name=d.model_name,
        param_count_b=d.param_count_b,
        bundle_id=d.bundle_id,
        fingerprint=d.fingerprint,
        basis_fingerprint=d.basis_fingerprint or "",
        action=d.action,
        reason=d.reason,
        flags=tuple(d.flags),
        provenance=d.provenance,
        stage=stage,
        command_after=d.command_after,
        streaming_command_after=d.streaming_command_after,
        args_after=d.args_after,
        policy=policy,
    )


def excluded_entry(change: staging.Staged) -> dict[str, Any]:
    """A change left out (--exclude-large) as the plan's `excluded` lists it."""
    return {
        "endpoint_id": change.endpoint_id,
        "endpoint_name": change.endpoint_name,
        "reason": "large or flagged (--exclude-large): "
        + (", ".join(change.flags) or f"size {change.param_count_b or 'unknown'}"),
    }


def assign_stages(
    changing: Sequence[Decision],
    specs: Sequence[StageSpec],
    exclude_large: bool,
    policy: ItemPolicy,
) -> tuple[list[Stage], list[PlanItem], list[dict[str, Any]]]:
    groups, left_out = staging.assign(changing, specs, exclude_large)
    stages: list[Stage] = []
    items: list[PlanItem] = []
    for number, (name, members) in enumerate(groups, 1):
        stages.append(Stage(number, name, len(members)))
        items.extend(item_of(d, number, policy) for d in members)
    return stages, items, [excluded_entry(d) for d in left_out]


def stage_specs(stage_spec: str) -> list[StageSpec]:
    """--stages read, or a PlanError saying why it cannot be."""
    try:
        return staging.parse_stages(stage_spec)
    except staging.StageSpecError as exc:
        raise PlanError(str(exc)) from None


def plan_summary(actions: Counter[str], planned: int, excluded: int) -> dict[str, Any]:
    """A plan's `summary`: what the scan decided, and how many changes the plan holds."""
    return {
        "endpoints_scanned": sum(actions.values()),
        "actions": dict(sorted(actions.items())),
        "planned": planned,
        "excluded": excluded,
    }


def build_plan(
    decisions: Iterable[Decision],
    *,
    created_at: str,
    created_by: str,
    tool_version: str,
    database: dict[str, Any],
    schema: str,
    policy: dict[str, Any],
    filters: dict[str, Any],
    overrides: str | None,
    stage_spec: str = DEFAULT_STAGES,
    exclude_large: bool = False,
) -> Plan:
    specs = stage_specs(stage_spec)
    actions: Counter[str] = Counter()
    changing: list[Decision] = []
    for d in decisions:
        actions[d.action] += 1
        if d.action in CHANGING_ACTIONS:
            changing.append(d)
    rule = read_policy(policy, overrides)
    stages, items, excluded = assign_stages(changing, specs, exclude_large, rule)
    summary = plan_summary(actions, len(items), len(excluded))
    plan = Plan(
        created_at=created_at,
        created_by=created_by,
        tool_version=tool_version,
        database=dict(database),
        schema=schema,
        policy=dict(policy),
        filters=dict(filters),
        overrides=overrides,
        stage_spec=stage_spec,
        exclude_large=exclude_large,
        summary=summary,
        stages=tuple(stages),
        items=tuple(items),
        excluded=tuple(excluded),
    )
    try:
        return seal(plan)
    except UnicodeEncodeError:
        for item in plan.items:  # which one: the digest only says that one could not be hashed
            try:
                canonical_json(item.to_dict()).encode("utf-8")
            except UnicodeEncodeError:
                raise lone_surrogate(item.endpoint_name) from None
        raise


def lone_surrogate(endpoint_name: str) -> PlanError:
    """A change whose item holds a lone surrogate: stored JSON may hold one ("\\ud800"),
    and a plan file, UTF-8, cannot."""
    return PlanError(
        f"endpoint {endpoint_name}: its plan item holds a lone surrogate (text that is not "
        "valid Unicode, as stored JSON may hold), which a plan file cannot hold"
    )


def seal(plan: Plan) -> Plan:
    """The plan with its digest (re)computed over everything else."""
    return replace(plan, digest=compute_digest(plan.body()))


SIGNATURE_PREFIX = "hmac-sha256:"
MIN_KEY_BYTES = 32


def check_key(key: bytes) -> None:
    """Raise PlanError unless `key` can sign plans (checked before a long scan, too)."""
    if len(key) < MIN_KEY_BYTES:
        raise PlanError(f"the plan key must be at least {MIN_KEY_BYTES} bytes long")


def signature_of(body: dict[str, Any], digest: str, key: bytes) -> str:
    """The HMAC of a plan's body (see Plan.body) with its digest: what `signature` holds."""
    check_key(key)
    doc = {**body, "digest": digest}
    return SIGNATURE_PREFIX + hashed(doc, hmac.new(key, digestmod=hashlib.sha256)).hexdigest()


def _mac(plan: Plan, key: bytes) -> str:
    return signature_of(plan.body(), plan.digest, key)


def sign(plan: Plan, key: bytes) -> Plan:
    """The plan with an HMAC of its whole content: unlike the digest, no one without
    the key can make one, so an approval given to this file holds for this file only."""
    return replace(plan, signature=_mac(plan, key))


def verify(plan: Plan, key: bytes, source: str = "plan") -> None:
    """Raise PlanError unless the plan carries a signature made with `key`."""
    if not plan.signature:
        raise PlanError(
            f"{source} is not signed, and a plan key is set: only plans signed with it are used"
        )
    if not hmac.compare_digest(plan.signature, _mac(plan, key)):
        raise PlanError(
            f"{source} does not match its signature: it was edited after it was signed, or "
            "signed with another key. Make a new plan."
        )


def to_json(plan: Plan) -> str:
    """The file's text: readable (indented, keys sorted) and ending in a newline."""
    return "".join(json_pieces(plan))


def json_pieces(plan: Plan) -> Iterator[str]:
    """The file's text in pieces, to write a large plan without holding its text."""
    return file_pieces(plan.body(), plan.digest, plan.signature)


def file_pieces(body: dict[str, Any], digest: str, signature: str) -> Iterator[str]:
    """A plan file's text in pieces, from its body (see Plan.body), digest and signature."""
    yield from indented_pieces(_file_doc(body, digest, signature))
    yield "\n"


def file_utf8_pieces(body: dict[str, Any], digest: str, signature: str) -> Iterator[Buffer]:
    """file_pieces as UTF-8 (see json_text.indented_utf8_pieces): what is written."""
    yield from indented_utf8_pieces(_file_doc(body, digest, signature))
    yield b"\n"


def _file_doc(body: dict[str, Any], digest: str, signature: str) -> dict[str, Any]:
    doc = {**body, "digest": digest}
    if signature:
        doc["signature"] = signature
    return doc


_ITEM_FIELDS = {
    "endpoint_id": str,
    "endpoint_name": str,
    "bundle_id": str,
    "fingerprint": str,
    "basis_fingerprint": str,
    "action": str,
    "reason": str,
    "stage": int,
    "command_after": str,
}


def item_from_dict(raw: Any, n: int, policy: ItemPolicy) -> PlanItem:
    """Item `n` of a plan file, checked; PlanError naming what is wrong."""
    if not isinstance(raw, dict):
        raise PlanError(f"plan item {n} is not an object")
    for name, kind in _ITEM_FIELDS.items():
        if not isinstance(raw.get(name), kind):
            raise PlanError(f"plan item {n}: {name} is missing or not a {kind.__name__}")
    if raw["action"] not in CHANGING_ACTIONS:
        raise PlanError(f"plan item {n}: action {raw['action']!r} changes nothing")
    args = raw.get("args_after")
    if args is not None and not isinstance(args, dict):
        raise PlanError(f"plan item {n}: args_after must be an object or null")
    streaming = raw.get("streaming_command_after")
    if streaming is not None and not isinstance(streaming, str):
        raise PlanError(f"plan item {n}: streaming_command_after must be a string or null")
    flags = raw.get("flags") or []
    if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
        raise PlanError(f"plan item {n}: flags must be a list of strings")
    return PlanItem(
        endpoint_id=raw["endpoint_id"],
        endpoint_name=raw["endpoint_name"],
        model_name=raw.get("model_name"),
        param_count_b=raw.get("param_count_b"),
        bundle_id=raw["bundle_id"],
        fingerprint=raw["fingerprint"],
        basis_fingerprint=raw["basis_fingerprint"],
        action=raw["action"],
        reason=raw["reason"],
        flags=tuple(flags),
        provenance=raw.get("provenance"),
        stage=raw["stage"],
        command_after=raw["command_after"],
        streaming_command_after=streaming,
        args_after=args,
        policy=policy,
    )


# The deepest a plan nests is an item's args_after holding a dict value (rope
# scaling): six levels. Anything far deeper is not a plan, and each level costs
# recursion in the JSON reader and the digest.
MAX_DEPTH = 32


def _depth_within(value: Any, limit: int) -> bool:
    """Whether a decoded JSON value nests at most `limit` levels (walked without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > limit:
                return False
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
    return True


def parse_plan(text: str, source: str = "plan") -> Plan:
    """Read and verify a plan file; raise PlanError naming what is wrong."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanError(f"{source} is not JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise PlanError(f"{source} is not a bundle-migrate plan: nested too deeply") from None
    except ValueError as exc:  # an integer of more digits than Python converts (4300)
        raise PlanError(f"{source} is not a bundle-migrate plan: {exc}") from None
    if not _depth_within(doc, MAX_DEPTH):
        raise PlanError(f"{source} is not a bundle-migrate plan: nested too deeply")
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise PlanError(f'{source} is not a bundle-migrate plan (no "format": "{FORMAT}")')
    if doc.get("version") != VERSION or doc.get("format_version", VERSION) != VERSION:
        raise PlanError(
            f"{source} is plan format version {doc.get('version')!r}; this bundle-migrate "
            f"reads version {VERSION}: use the bundle-migrate that made it"
        )
    stated = doc.pop("digest", None)
    if not isinstance(stated, str):
        raise PlanError(f"{source} has no digest")
    signature = doc.pop("signature", "")
    if not isinstance(signature, str):
        raise PlanError(f"{source}: signature must be a string")
    actual = compute_digest(doc)
    if actual != stated:
        raise PlanError(
            f"{source} does not match its digest: it was edited or damaged after it was "
            "made. Make a new plan rather than editing one."
        )
    try:
        stages = tuple(
            Stage(int(s["number"]), str(s["name"]), int(s["endpoints"])) for s in doc["stages"]
        )
        policy = read_policy(doc["policy"], doc.get("overrides"), source)
        items = tuple(item_from_dict(raw, n, policy) for n, raw in enumerate(doc["items"], 1))
        plan = Plan(
            created_at=str(doc["created_at"]),
            created_by=str(doc["created_by"]),
            tool_version=str(doc["tool_version"]),
            database=dict(doc["database"]),
            schema=str(doc["schema"]),
            policy=dict(doc["policy"]),
            filters=dict(doc["filters"]),
            overrides=doc.get("overrides"),
            stage_spec=str(doc["stage_spec"]),
            exclude_large=bool(doc["exclude_large"]),
            summary=dict(doc["summary"]),
            stages=stages,
            items=items,
            excluded=tuple(doc.get("excluded") or ()),
            digest=stated,
            signature=signature,
        )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, PlanError):
            raise
        raise PlanError(f"{source} is malformed: {exc!r}") from None
    numbers = [s.number for s in plan.stages]
    if numbers != list(range(1, len(numbers) + 1)):
        raise PlanError(f"{source}: stages must be numbered 1..{len(numbers)}")
    ids = [i.endpoint_id for i in plan.items]
    if len(ids) != len(set(ids)):
        raise PlanError(f"{source}: an endpoint appears twice")
    for item in plan.items:
        if item.stage not in numbers:
            raise PlanError(f"{source}: {item.endpoint_name} is in stage {item.stage}, not planned")
    return plan

"""A plan rendered for a change ticket: Markdown that fits a ticket, and its attachment. Pure.

The Markdown always has the whole picture (summary, per-stage counts, risks
counted by kind, the exact commands) but lists at most `endpoint_limit`
endpoints per stage and among the risks, so a fleet of 20,000 still pastes
into a ticket. Every endpoint is in the attachment, a CSV the ticket names
with its digest; `endpoint_limit=None` lists them all in the Markdown instead.
Rendering the same plan file twice gives the same text, and the commands in
it name that file, so the ticket, the file, the attachment and the digest all
agree. A plan may be a StreamedPlan (migrate.core.plan_stream), whose items are
read back one at a time: the ticket then holds only what it lists.
"""

from __future__ import annotations

import csv
import hashlib
import io
import shlex
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from migrate.core.flags import RISK_FLAGS
from migrate.core.plan import Plan, PlanItem
from migrate.core.plan_stream import StreamedPlan
from migrate.core.staging import goes_last

ROLLOUT_NOTE = (
    "Each change is written to the database, redeployed through model engine's API and "
    "watched until it is healthy (status READY and no unavailable worker, held for the "
    "settle time); an endpoint that does not come back healthy is rolled back at once, and "
    "no later stage starts."
)

DEFAULT_ENDPOINT_LIMIT = 20
ATTACHMENT_COLUMNS = (
    "stage",
    "stage_name",
    "endpoint_name",
    "endpoint_id",
    "model_name",
    "param_count_b",
    "action",
    "risk",
    "flags",
    "provenance",
    "bundle_id",
    "reason",
)
# How the risk counts name a risk that is a size, not a flag.
LARGE = "large or unknown size"
# Appends one line to the ticket.
Add = Callable[[str], None]
# How many CSV characters the attachment gathers before handing them on.
_ATTACHMENT_PIECE = 1 << 16


def _md(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _size(item: PlanItem) -> str:
    return "?" if item.param_count_b is None else f"{item.param_count_b}B"


def _where(plan: Plan) -> str:
    db = plan.database
    server = f"{db['host']}:{db.get('port')}" if db.get("host") else "a local socket"
    ident = db.get("system_identifier")
    extra = f", system identifier {ident}" if ident else ""
    return f"database `{db.get('database')}` on {server}{extra}, schema `{plan.schema}`"


def _risks(item: PlanItem) -> list[str]:
    """Why a reviewer should look at this change: its risk flags, or its size."""
    flags = [f for f in item.flags if f in RISK_FLAGS]
    if not flags and goes_last(item):
        return [LARGE]
    return flags


def _header(plan: Plan | StreamedPlan) -> Plan:
    return plan.header if isinstance(plan, StreamedPlan) else plan


def _items(plan: Plan | StreamedPlan) -> Iterable[PlanItem]:
    return plan.read_items() if isinstance(plan, StreamedPlan) else plan.items


def _excluded(plan: Plan | StreamedPlan) -> Iterable[dict[str, Any]]:
    return plan.read_excluded() if isinstance(plan, StreamedPlan) else plan.excluded


def attachment_name(plan_path: str) -> str:
    """The attachment's default path: beside the plan, `plan.json` -> `plan.endpoints.csv`."""
    path = PurePath(plan_path)
    return str(path.with_name(f"{path.stem}.endpoints.csv"))


def attachment_pieces(plan: Plan | StreamedPlan) -> Iterator[str]:
    """render_attachment's text in pieces, to write a large plan's without holding it."""
    names = {s.number: s.name for s in _header(plan).stages}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(ATTACHMENT_COLUMNS)
    for item in _items(plan):
        writer.writerow(
            [
                item.stage,
                names.get(item.stage, ""),
                item.endpoint_name,
                item.endpoint_id,
                item.model_name or "",
                "" if item.param_count_b is None else item.param_count_b,
                item.action,
                ";".join(_risks(item)),
                ";".join(item.flags),
                item.provenance or "",
                item.bundle_id,
                item.reason,
            ]
        )
        if out.tell() >= _ATTACHMENT_PIECE:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


def render_attachment(plan: Plan | StreamedPlan) -> str:
    """Every endpoint of the plan as CSV, in plan order: the list the ticket leaves out."""
    return "".join(attachment_pieces(plan))


def attachment_digest(pieces: Iterable[str]) -> str:
    """The sha256 the ticket names the attachment by, of its text (attachment_pieces)."""
    digest = hashlib.sha256()
    for piece in pieces:
        digest.update(piece.encode("utf-8"))
    return digest.hexdigest()


@dataclass
class _StageTally:
    endpoints: int = 0
    actions: Counter[str] = field(default_factory=Counter)
    risky: int = 0
    listed: list[PlanItem] = field(default_factory=list)


@dataclass
class Tally:
    """What the ticket says of a plan's items, gathered in one pass over them, holding at
    most `limit` of them per stage, among the risks and among those left out."""

    limit: int | None
    items: int = 0
    actions: Counter[str] = field(default_factory=Counter)
    stages: dict[int, _StageTally] = field(default_factory=dict)
    risks: Counter[str] = field(default_factory=Counter)
    risky: int = 0
    risky_listed: list[tuple[PlanItem, list[str]]] = field(default_factory=list)
    excluded: int = 0
    excluded_listed: list[dict[str, Any]] = field(default_factory=list)
    longest_stage: int = 0

    def _room(self, listed: list[Any]) -> bool:
        return self.limit is None or len(listed) < self.limit

    def add(self, item: PlanItem) -> None:
        self.items += 1
        self.actions[item.action] += 1
        stage = self.stages.setdefault(item.stage, _StageTally())
        stage.endpoints += 1
        stage.actions[item.action] += 1
        if self._room(stage.listed):
            stage.listed.append(item)
        risks = _risks(item)
        if risks:
            stage.risky += 1
            self.risky += 1
            self.risks.update(risks)
            if self._room(self.risky_listed):
                self.risky_listed.append((item, risks))

    def add_excluded(self, entry: dict[str, Any]) -> None:
        self.excluded += 1
        if self._room(self.excluded_listed):
            self.excluded_listed.append(entry)

    def stage(self, number: int) -> _StageTally:
        return self.stages.get(number) or _StageTally()

    @property
    def omitted(self) -> bool:
        """Whether the Markdown leaves endpoints out (and so needs the attachment)."""
        if self.limit is None:
            return False
        return max(self.longest_stage, self.risky, self.excluded) > self.limit


def tally(plan: Plan | StreamedPlan, endpoint_limit: int | None) -> Tally:
    counted = Tally(endpoint_limit)
    counted.longest_stage = max((s.endpoints for s in _header(plan).stages), default=0)
    for item in _items(plan):
        counted.add(item)
    for entry in _excluded(plan):
        counted.add_excluded(entry)
    return counted


def omits_endpoints(plan: Plan | StreamedPlan, endpoint_limit: int | None) -> bool:
    """Whether the Markdown leaves endpoints out (and so needs the attachment)."""
    return tally(plan, endpoint_limit).omitted


def render_markdown(
    plan: Plan | StreamedPlan,
    plan_path: str,
    endpoint_limit: int | None = DEFAULT_ENDPOINT_LIMIT,
    attachment: str | None = None,
    *,
    counted: Tally | None = None,
    attachment_sha256: str | None = None,
) -> str:
    """The ticket. `attachment`: the CSV's path (default beside the plan); named, with the
    digest of `render_attachment(plan)`, whenever endpoints are left out.

    `counted` (tally(plan, endpoint_limit)) and `attachment_sha256` spare a pass over
    the items to a caller that has them already.
    """
    counted = counted or tally(plan, endpoint_limit)
    header = _header(plan)
    p = shlex.quote(plan_path)
    omitted = counted.omitted
    attached = PurePath(attachment or attachment_name(plan_path)).name
    more = f"in the attachment `{_md(attached)}`" if omitted else ""
    out: list[str] = []
    add = out.append
    add(f"# bundle-migrate plan `{header.short_digest}`\n")
    add("| | |\n|---|---|")
    add(
        f"| made | {header.created_at} by {_md(header.created_by)}, "
        f"bundle-migrate {header.tool_version} |"
    )
    add(f"| against | {_md(_where(header))} |")
    policy = header.policy
    add(
        f"| policy | threshold {policy.get('threshold')}, "
        f"recorded flags: {policy.get('recorded')} |"
    )
    filters = ", ".join(f"{k} {v}" for k, v in sorted(header.filters.items()) if v) or "none"
    add(f"| filters | {_md(filters)} |")
    if header.overrides:
        add(f"| overrides | `{_md(header.overrides)}` |")
    add(f"| plan file | `{_md(plan_path)}`, digest `{header.digest}` |")
    if omitted:
        digest = attachment_sha256 or attachment_digest(attachment_pieces(plan))
        add(
            f"| attachment | `{_md(attached)}`: all {counted.items} endpoints (CSV), "
            f"sha256 `{digest}`; this ticket lists at most {endpoint_limit} per stage and "
            f"{endpoint_limit} risks |"
        )
    add("")
    _summary(header, counted, add)
    _stages(header, counted, p, more, add)
    _risk_section(counted, more, add)
    _commands(p, add)
    return "\n".join(out) + "\n"


def _summary(plan: Plan, counted: Tally, add: Add) -> None:
    actions = counted.actions
    add("## Summary\n")
    add(
        f"{plan.summary.get('endpoints_scanned', '?')} LLM endpoints scanned; "
        f"{counted.items} change ({actions['drop-eager']} lose `--enforce-eager`, "
        f"{actions['add-eager']} gain it) in {len(plan.stages)} stage(s)"
        + (
            f"; {counted.excluded} large or flagged left out (--exclude-large)."
            if counted.excluded
            else "."
        )
    )
    add("\n| action | endpoints |\n|---|---:|")
    for action, n in sorted(plan.summary.get("actions", {}).items()):
        add(f"| {action} | {n} |")
    add("\n| stage | name | endpoints | lose eager | gain eager | at risk |")
    add("|---:|---|---:|---:|---:|---:|")
    for stage in plan.stages:
        kinds = counted.stage(stage.number).actions
        add(
            f"| {stage.number} | {_md(stage.name)} | {stage.endpoints} | "
            f"{kinds['drop-eager']} | {kinds['add-eager']} | {counted.stage(stage.number).risky} |"
        )
    add(f"\n{ROLLOUT_NOTE}\n")


def _stages(plan: Plan, counted: Tally, p: str, more: str, add: Add) -> None:
    add("## Stages\n")
    for stage in plan.stages:
        tallied = counted.stage(stage.number)
        add(f"### Stage {stage.number}: {stage.name} ({stage.endpoints} endpoint(s))\n")
        add("| endpoint | model | size | action | flags | bundle now |\n|---|---|---|---|---|---|")
        for item in tallied.listed:
            add(
                f"| {_md(item.endpoint_name)} | {_md(item.model_name or '?')} | {_size(item)} | "
                f"{item.action} | {_md(', '.join(item.flags) or '-')} | `{item.bundle_id}` |"
            )
        if len(tallied.listed) < tallied.endpoints:
            add(
                f"\n... and {tallied.endpoints - len(tallied.listed)} more endpoint(s) of stage "
                f"{stage.number} {more}."
            )
        add(f"\n- apply: `bundle-migrate apply {p} --stage {stage.number} --execute`")
        add(f"- roll back: `bundle-migrate rollback --plan {p} --stage {stage.number} --execute`\n")


def _risk_section(counted: Tally, more: str, add: Add) -> None:
    add("## Risks\n")
    if not counted.risky and not counted.excluded:
        add("None flagged.")
    if counted.risky:
        add("| risk | endpoints |\n|---|---:|")
        for risk, n in sorted(counted.risks.items()):
            add(f"| {_md(risk)} | {n} |")
        add("")
    for item, risks in counted.risky_listed:
        add(
            f"- `{_md(item.endpoint_name)}` (stage {item.stage}, {_md(item.model_name or '?')}, "
            f"{_size(item)}): {_md(', '.join(risks))}; {_md(item.reason)}"
        )
    if len(counted.risky_listed) < counted.risky:
        add(f"- ... and {counted.risky - len(counted.risky_listed)} more {more} (column `risk`)")
    for entry in counted.excluded_listed:
        add(f"- `{_md(entry['endpoint_name'])}` left out: {_md(entry['reason'])}")
    if len(counted.excluded_listed) < counted.excluded:
        # Left out of the plan, so not in the attachment: the plan file lists them.
        left = counted.excluded - len(counted.excluded_listed)
        add(f"- ... and {left} more left out (the plan file's `excluded`)")
    add(
        "\nLarge models (>= 70B or unknown size) that lose eager may run out of memory at "
        "start-up; watch each one come back READY before the next.\n"
    )


def _commands(p: str, add: Add) -> None:
    add("## Commands\n")
    add("With `BUNDLE_MIGRATE_DATABASE_URL` set for the database above:\n")
    add("```sh")
    add(f"bundle-migrate apply {p}                      # dry run: diffs, writes nothing")
    add(f"bundle-migrate apply {p} --stage 1 --execute  # canary first, then each stage")
    add(f"bundle-migrate status --plan {p}              # progress per stage")
    add(f"bundle-migrate rollback --plan {p}            # dry run of a full rollback")
    add(f"bundle-migrate rollback --plan {p} --execute  # restore every endpoint exactly")
    add("```")

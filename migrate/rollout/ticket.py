"""A plan rendered for a change ticket: Markdown that fits a ticket, and its attachment. Pure.

The Markdown always has the whole picture (summary, per-stage counts, risks
counted by kind, the exact commands) but lists at most `endpoint_limit`
endpoints per stage and among the risks, so a fleet of 20,000 still pastes
into a ticket. Every endpoint is in the attachment, a CSV the ticket names
with its digest; `endpoint_limit=None` lists them all in the Markdown instead.
Rendering the same plan file twice gives the same text, and the commands in
it name that file, so the ticket, the file, the attachment and the digest all
agree.
"""

from __future__ import annotations

import csv
import hashlib
import io
import shlex
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import PurePath

from migrate.core.flags import RISK_FLAGS
from migrate.core.plan import Plan, PlanItem
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


def attachment_name(plan_path: str) -> str:
    """The attachment's default path: beside the plan, `plan.json` -> `plan.endpoints.csv`."""
    path = PurePath(plan_path)
    return str(path.with_name(f"{path.stem}.endpoints.csv"))


def render_attachment(plan: Plan) -> str:
    """Every endpoint of the plan as CSV, in plan order: the list the ticket leaves out."""
    names = {s.number: s.name for s in plan.stages}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(ATTACHMENT_COLUMNS)
    for item in plan.items:
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
    return out.getvalue()


def omits_endpoints(plan: Plan, endpoint_limit: int | None) -> bool:
    """Whether the Markdown leaves endpoints out (and so needs the attachment)."""
    if endpoint_limit is None:
        return False
    longest = max((s.endpoints for s in plan.stages), default=0)
    risky = sum(1 for i in plan.items if _risks(i))
    return max(longest, risky, len(plan.excluded)) > endpoint_limit


def render_markdown(
    plan: Plan,
    plan_path: str,
    endpoint_limit: int | None = DEFAULT_ENDPOINT_LIMIT,
    attachment: str | None = None,
) -> str:
    """The ticket. `attachment`: the CSV's path (default beside the plan); named, with the
    digest of `render_attachment(plan)`, whenever endpoints are left out."""
    p = shlex.quote(plan_path)
    omitted = omits_endpoints(plan, endpoint_limit)
    attached = PurePath(attachment or attachment_name(plan_path)).name
    more = f"in the attachment `{_md(attached)}`" if omitted else ""
    out: list[str] = []
    add = out.append
    add(f"# bundle-migrate plan `{plan.short_digest}`\n")
    add("| | |\n|---|---|")
    add(
        f"| made | {plan.created_at} by {_md(plan.created_by)}, "
        f"bundle-migrate {plan.tool_version} |"
    )
    add(f"| against | {_md(_where(plan))} |")
    policy = plan.policy
    add(
        f"| policy | threshold {policy.get('threshold')}, "
        f"recorded flags: {policy.get('recorded')} |"
    )
    filters = ", ".join(f"{k} {v}" for k, v in sorted(plan.filters.items()) if v) or "none"
    add(f"| filters | {_md(filters)} |")
    if plan.overrides:
        add(f"| overrides | `{_md(plan.overrides)}` |")
    add(f"| plan file | `{_md(plan_path)}`, digest `{plan.digest}` |")
    if omitted:
        digest = hashlib.sha256(render_attachment(plan).encode("utf-8")).hexdigest()
        add(
            f"| attachment | `{_md(attached)}`: all {len(plan.items)} endpoints (CSV), "
            f"sha256 `{digest}`; this ticket lists at most {endpoint_limit} per stage and "
            f"{endpoint_limit} risks |"
        )
    add("")
    _summary(plan, add)
    _stages(plan, p, endpoint_limit, more, add)
    _risk_section(plan, endpoint_limit, more, add)
    _commands(p, add)
    return "\n".join(out) + "\n"


def _summary(plan: Plan, add: Add) -> None:
    actions = Counter(i.action for i in plan.items)
    add("## Summary\n")
    add(
        f"{plan.summary.get('endpoints_scanned', '?')} LLM endpoints scanned; "
        f"{len(plan.items)} change ({actions['drop-eager']} lose `--enforce-eager`, "
        f"{actions['add-eager']} gain it) in {len(plan.stages)} stage(s)"
        + (
            f"; {len(plan.excluded)} large or flagged left out (--exclude-large)."
            if plan.excluded
            else "."
        )
    )
    add("\n| action | endpoints |\n|---|---:|")
    for action, n in sorted(plan.summary.get("actions", {}).items()):
        add(f"| {action} | {n} |")
    add("\n| stage | name | endpoints | lose eager | gain eager | at risk |")
    add("|---:|---|---:|---:|---:|---:|")
    for stage in plan.stages:
        items = plan.stage_items(stage.number)
        kinds = Counter(i.action for i in items)
        risky = sum(1 for i in items if _risks(i))
        add(
            f"| {stage.number} | {_md(stage.name)} | {stage.endpoints} | "
            f"{kinds['drop-eager']} | {kinds['add-eager']} | {risky} |"
        )
    add(f"\n{ROLLOUT_NOTE}\n")


def _shown(items: Sequence[object], limit: int | None) -> int:
    return len(items) if limit is None else min(limit, len(items))


def _stages(plan: Plan, p: str, limit: int | None, more: str, add: Add) -> None:
    add("## Stages\n")
    for stage in plan.stages:
        items = plan.stage_items(stage.number)
        shown = _shown(items, limit)
        add(f"### Stage {stage.number}: {stage.name} ({stage.endpoints} endpoint(s))\n")
        add("| endpoint | model | size | action | flags | bundle now |\n|---|---|---|---|---|---|")
        for item in items[:shown]:
            add(
                f"| {_md(item.endpoint_name)} | {_md(item.model_name or '?')} | {_size(item)} | "
                f"{item.action} | {_md(', '.join(item.flags) or '-')} | `{item.bundle_id}` |"
            )
        if shown < len(items):
            add(f"\n... and {len(items) - shown} more endpoint(s) of stage {stage.number} {more}.")
        add(f"\n- apply: `bundle-migrate apply {p} --stage {stage.number} --execute`")
        add(f"- roll back: `bundle-migrate rollback --plan {p} --stage {stage.number} --execute`\n")


def _risk_section(plan: Plan, limit: int | None, more: str, add: Add) -> None:
    add("## Risks\n")
    risky = [(i, _risks(i)) for i in plan.items]
    risky = [(i, r) for i, r in risky if r]
    if not risky and not plan.excluded:
        add("None flagged.")
    if risky:
        counts = Counter(r for _, risks in risky for r in risks)
        add("| risk | endpoints |\n|---|---:|")
        for risk, n in sorted(counts.items()):
            add(f"| {_md(risk)} | {n} |")
        add("")
    shown = _shown(risky, limit)
    for item, risks in risky[:shown]:
        add(
            f"- `{_md(item.endpoint_name)}` (stage {item.stage}, {_md(item.model_name or '?')}, "
            f"{_size(item)}): {_md(', '.join(risks))}; {_md(item.reason)}"
        )
    if shown < len(risky):
        add(f"- ... and {len(risky) - shown} more {more} (column `risk`)")
    excluded = list(plan.excluded)
    shown = _shown(excluded, limit)
    for entry in excluded[:shown]:
        add(f"- `{_md(entry['endpoint_name'])}` left out: {_md(entry['reason'])}")
    if shown < len(excluded):
        # Left out of the plan, so not in the attachment: the plan file lists them.
        add(f"- ... and {len(excluded) - shown} more left out (the plan file's `excluded`)")
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

"""A plan rendered as Markdown for a change ticket. Pure and deterministic.

Rendering the same plan file twice gives the same text, and the commands in it
name that file, so the ticket, the file and the digest all agree.
"""

from __future__ import annotations

import shlex
from collections import Counter

from migrate.core.flags import RISK_FLAGS
from migrate.core.plan import Plan, PlanItem
from migrate.core.staging import goes_last

ROLLOUT_NOTE = (
    "Each change is written to the database, redeployed through model engine's API and "
    "watched until it is healthy (status READY and no unavailable worker, held for the "
    "settle time); an endpoint that does not come back healthy is rolled back at once, and "
    "no later stage starts."
)


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


def render_markdown(plan: Plan, plan_path: str) -> str:
    p = shlex.quote(plan_path)
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
    add(f"| plan file | `{_md(plan_path)}`, digest `{plan.digest}` |\n")

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
    add(f"\n{ROLLOUT_NOTE}\n")

    add("## Stages\n")
    for stage in plan.stages:
        add(f"### Stage {stage.number}: {stage.name} ({stage.endpoints} endpoint(s))\n")
        add("| endpoint | model | size | action | flags | bundle now |\n|---|---|---|---|---|---|")
        for item in plan.stage_items(stage.number):
            add(
                f"| {_md(item.endpoint_name)} | {_md(item.model_name or '?')} | {_size(item)} | "
                f"{item.action} | {_md(', '.join(item.flags) or '-')} | `{item.bundle_id}` |"
            )
        add(f"\n- apply: `bundle-migrate apply {p} --stage {stage.number} --execute`")
        add(f"- roll back: `bundle-migrate rollback --plan {p} --stage {stage.number} --execute`\n")

    add("## Risks\n")
    risky = [i for i in plan.items if goes_last(i) or any(f in RISK_FLAGS for f in i.flags)]
    if not risky and not plan.excluded:
        add("None flagged.")
    for item in risky:
        flags = ", ".join(f for f in item.flags if f in RISK_FLAGS) or f"size {_size(item)}"
        add(
            f"- `{_md(item.endpoint_name)}` (stage {item.stage}, {_md(item.model_name or '?')}, "
            f"{_size(item)}): {_md(flags)}; {_md(item.reason)}"
        )
    for entry in plan.excluded:
        add(f"- `{_md(entry['endpoint_name'])}` left out: {_md(entry['reason'])}")
    add(
        "\nLarge models (>= 70B or unknown size) that lose eager may run out of memory at "
        "start-up; watch each one come back READY before the next.\n"
    )

    add("## Commands\n")
    add("With `BUNDLE_MIGRATE_DATABASE_URL` set for the database above:\n")
    add("```sh")
    add(f"bundle-migrate apply {p}                      # dry run: diffs, writes nothing")
    add(f"bundle-migrate apply {p} --stage 1 --execute  # canary first, then each stage")
    add(f"bundle-migrate status --plan {p}              # progress per stage")
    add(f"bundle-migrate rollback --plan {p}            # dry run of a full rollback")
    add(f"bundle-migrate rollback --plan {p} --execute  # restore every endpoint exactly")
    add("```")
    return "\n".join(out) + "\n"

"""The change ticket: stages, risks and the exact commands."""

from __future__ import annotations

import csv
import hashlib
import io
import re
from typing import Any

from migrate.rollout.ticket import (
    attachment_name,
    omits_endpoints,
    render_attachment,
    render_markdown,
)
from tests.support.plans import decision, plan_of


def test_markdown_ticket_lists_stages_risks_and_exact_commands() -> None:
    plan = plan_of(
        [decision("a"), decision("big", "llama-3-70b", 70, flags=["large-model-loses-eager"])]
    )
    text = render_markdown(plan, "plans/fleet plan.json")
    assert text == render_markdown(plan, "plans/fleet plan.json")
    assert f"`{plan.short_digest}`" in text
    assert "### Stage 1: canary (1 endpoint(s))" in text
    assert "bundle-migrate apply 'plans/fleet plan.json' --stage 2 --execute" in text
    assert "bundle-migrate rollback --plan 'plans/fleet plan.json' --stage 1 --execute" in text
    assert "`big` (stage 2, llama-3-70b, 70B): large-model-loses-eager" in text
    assert "redeployed through model engine's API and watched until it is healthy" in text


def fleet(n: int) -> list[Any]:
    """n changes: mostly small models, every 10th large, every 25th flagged."""
    out = []
    for k in range(n):
        if k % 10 == 0:
            out.append(
                decision(f"big-{k:05d}", "llama-3-70b", 70, flags=["large-model-loses-eager"])
            )
        elif k % 25 == 1:
            out.append(decision(f"multi-{k:05d}", flags=["multinode"]))
        else:
            out.append(decision(f"chat-{k:05d}", f"model-{k % 7}", 8))
    return out


def test_a_20000_endpoint_ticket_fits_a_ticket_and_attaches_the_rest() -> None:
    plan = plan_of(fleet(20_000))
    text = render_markdown(plan, "plan.json")
    assert len(text.encode("utf-8")) < 50_000, len(text.encode("utf-8"))
    assert text == render_markdown(plan, "plan.json")
    # At most 20 endpoints listed per stage and among the risks; the counts are whole.
    listed = re.findall(r"^\| (?:big|multi|chat)-\d{5} \|", text, re.M)
    assert len(listed) <= 20 * len(plan.stages)
    assert len(re.findall(r"^- `(?:big|multi)-\d{5}` \(stage", text, re.M)) == 20
    for stage in plan.stages:
        assert f"| {stage.number} | {stage.name} | {stage.endpoints} |" in text
    assert "| large-model-loses-eager | 2000 |" in text and "| multinode | 800 |" in text
    # The attachment it names holds every endpoint once, and its digest is in the ticket.
    attachment = render_attachment(plan)
    rows = list(csv.DictReader(io.StringIO(attachment)))
    assert [r["endpoint_id"] for r in rows] == [i.endpoint_id for i in plan.items]
    assert sum(1 for r in rows if r["risk"]) == 2800
    digest = hashlib.sha256(attachment.encode("utf-8")).hexdigest()
    assert f"`plan.endpoints.csv`: all 20000 endpoints (CSV), sha256 `{digest}`" in text
    assert "more endpoint(s) of stage 4 in the attachment `plan.endpoints.csv`" in text
    assert omits_endpoints(plan, 20) and not omits_endpoints(plan, None)


def test_the_full_list_is_one_argument_away() -> None:
    plan = plan_of(fleet(300))
    text = render_markdown(plan, "plan.json", endpoint_limit=None)
    listed = re.findall(r"^\| (?:big|multi|chat)-\d{5} \|", text, re.M)
    assert len(listed) == len(plan.items) == 300
    assert "attachment" not in text and "... and" not in text


def test_a_small_plan_needs_no_attachment() -> None:
    plan = plan_of(fleet(12))
    assert not omits_endpoints(plan, 20)
    assert "attachment" not in render_markdown(plan, "plans/p.json")
    assert attachment_name("plans/p.json") == "plans/p.endpoints.csv"

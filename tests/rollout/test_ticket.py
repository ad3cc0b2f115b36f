"""The change ticket: stages, risks and the exact commands."""

from __future__ import annotations

from migrate.rollout.ticket import render_markdown
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

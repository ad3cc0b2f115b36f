"""The plan file: round trip, digest, malformed and edited plans, what items keep."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from migrate.core.plan import PlanError, parse_plan, to_json
from tests.support.plans import decision, plan_of


def test_plan_file_round_trips_and_verifies() -> None:
    plan = plan_of([decision("a"), decision("b", args_after={"max_model_len": 4096})])
    text = to_json(plan)
    doc = json.loads(text)
    assert doc["format"] == "bundle-migrate-plan" and doc["version"] == 1
    assert doc["digest"].startswith("sha256:")
    again = parse_plan(text)
    assert again == plan
    assert to_json(again) == text


def test_an_edited_plan_is_refused() -> None:
    doc = json.loads(to_json(plan_of([decision("a")])))
    doc["items"][0]["command_after"] += " --evil"
    with pytest.raises(PlanError, match="digest"):
        parse_plan(json.dumps(doc))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not JSON"),
        ('{"format": "other"}', "not a bundle-migrate plan"),
        ('{"format": "bundle-migrate-plan", "version": 9}', "version 9"),
        ('{"format": "bundle-migrate-plan", "version": 1}', "no digest"),
    ],
)
def test_malformed_plans_are_named(text: str, message: str) -> None:
    with pytest.raises(PlanError, match=message):
        parse_plan(text)


def test_a_damaged_but_rehashed_plan_is_still_checked() -> None:
    from migrate.core.plan import compute_digest

    doc = json.loads(to_json(plan_of([decision("a")])))
    del doc["digest"]
    doc["items"][0]["action"] = "keep-eager"
    doc["digest"] = compute_digest(doc)
    with pytest.raises(PlanError, match="changes nothing"):
        parse_plan(json.dumps(doc))


def test_plan_items_keep_everything_apply_needs() -> None:
    d = decision("a", streaming_command_after="x", args_after={"k": 1}, flags=["recorded-eager"])
    item = plan_of([d]).items[0]
    assert item.to_dict() == {
        **{
            k: getattr(d, k)
            for k in ("endpoint_id", "endpoint_name", "model_name", "param_count_b")
        },
        "bundle_id": d.bundle_id,
        "fingerprint": d.fingerprint,
        "basis_fingerprint": d.basis_fingerprint,
        "action": "drop-eager",
        "reason": d.reason,
        "flags": ["recorded-eager"],
        "provenance": "injected",
        "stage": 1,
        "command_after": d.command_after,
        "streaming_command_after": "x",
        "args_after": {"k": 1},
    }
    assert replace(item, action="add-eager").eager_after


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({"threshold": "NaN", "recorded": "keep"}, "policy.threshold must be a number in"),
        ({"threshold": True, "recorded": "keep"}, "policy.threshold must be a number in"),
        ({"threshold": 2, "recorded": "keep"}, "policy.threshold must be a number in"),
        ({"threshold": "0.95", "recorded": "maybe"}, "policy.recorded must be"),
        ("0.95", "policy must be an object"),
    ],
)
def test_a_plan_policy_that_names_no_rule_is_refused(policy: object, message: str) -> None:
    from migrate.core.plan import compute_digest

    doc = json.loads(to_json(plan_of([decision("a")])))
    del doc["digest"]
    doc["policy"] = policy
    doc["digest"] = compute_digest(doc)
    with pytest.raises(PlanError, match=message):
        parse_plan(json.dumps(doc))


KEY = b"k" * 32


def test_a_signed_plan_verifies_only_with_its_key_and_content() -> None:
    from migrate.core.plan import sign, verify

    plan = sign(plan_of([decision("a")]), KEY)
    again = parse_plan(to_json(plan))
    assert again.signature == plan.signature and again.signature.startswith("hmac-sha256:")
    verify(again, KEY)
    with pytest.raises(PlanError, match="does not match its signature"):
        verify(again, b"x" * 32)
    # Edited and re-digested: the digest agrees, the signature does not.
    from migrate.core.plan import seal

    forged = seal(replace(again, created_by="mallory"))
    with pytest.raises(PlanError, match="does not match its signature"):
        verify(forged, KEY)
    with pytest.raises(PlanError, match="is not signed"):
        verify(plan_of([decision("a")]), KEY)
    with pytest.raises(PlanError, match="at least 32 bytes"):
        sign(plan, b"short")


def test_plan_text_in_pieces_is_byte_for_byte_json_dumps() -> None:
    """Digest, signature and file are made piece by piece; they must equal the whole-text forms."""
    import json

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from migrate.core.json_text import canonical_json, canonical_pieces, indented_pieces

    leaves = st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=False)
    values = st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
        max_leaves=12,
    )
    documents = st.dictionaries(st.text(), values | st.lists(values, max_size=4), min_size=1)

    @settings(max_examples=300, deadline=None)
    @given(documents)
    def check(doc: dict) -> None:
        assert "".join(canonical_pieces(doc)) == canonical_json(doc)
        assert "".join(indented_pieces(doc)) == json.dumps(
            doc, indent=2, sort_keys=True, ensure_ascii=False
        )

    check()

"""The rules, model size and provenance: pure code, examples plus properties."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from migrate.core import policy
from migrate.core.overrides import OverridesError, parse_overrides

utilizations = st.one_of(
    st.none(),
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1"), places=3),
)
explicit_values = st.sampled_from([None, True, False])


@pytest.mark.parametrize(
    ("explicit", "util", "expected"),
    [
        (True, None, True),
        (True, Decimal("0.5"), True),
        (False, Decimal("0.99"), False),
        (False, None, False),
        (None, None, False),
        (None, Decimal("0.9"), False),
        (None, Decimal("0.9499"), False),
        (None, Decimal("0.95"), True),
        (None, Decimal("0.950"), True),
        (None, Decimal("0.97"), True),
    ],
)
def test_new_rule_table(explicit: bool | None, util: Decimal | None, expected: bool) -> None:
    assert policy.new_rule(explicit, util) is expected


@given(explicit_values, utilizations)
def test_new_rule_caller_always_wins(explicit: bool | None, util: Decimal | None) -> None:
    result = policy.new_rule(explicit, util)
    if explicit is not None:
        assert result is explicit
    else:
        assert result is (util is not None and util >= Decimal("0.95"))


@given(explicit_values, utilizations)
def test_old_rule_forced_eager_whenever_utilization_set(
    explicit: bool | None, util: Decimal | None
) -> None:
    old = policy.old_rule(explicit, util)
    if util is not None:
        assert old is True
    # The new rule only ever removes eager the old rule added, or honours the caller.
    new = policy.new_rule(explicit, util)
    if new and not old:
        assert explicit is True


@given(utilizations, st.decimals(min_value=Decimal("0.5"), max_value=Decimal("1"), places=2))
def test_threshold_is_configurable(util: Decimal | None, threshold: Decimal) -> None:
    assert policy.new_rule(None, util, threshold) is (util is not None and util >= threshold)


OLD = datetime(2024, 10, 20, tzinfo=UTC)
NEW = datetime(2026, 7, 1, tzinfo=UTC)


def prov(
    eager: bool,
    util: str | None,
    cmd: dict | None,
    stored: dict | None,
    created=NEW,
    since: datetime = policy.ARGS_RECORDED_SINCE,
):
    return policy.provenance(
        eager_now=eager,
        command_utilization=None if util is None else Decimal(util),
        command_args=cmd or {},
        stored_args=stored,
        endpoint_created_at=created,
        args_recorded_since=since,
    )


def test_legacy_flag_with_utilization_is_injected() -> None:
    p = prov(True, "0.9", {"gpu_memory_utilization": ("0.9",)}, None, OLD)
    assert p.kind == policy.INJECTED and p.explicit is None
    assert any("legacy" in e for e in p.evidence)


def test_flag_without_utilization_was_asked_for() -> None:
    p = prov(True, None, {}, None, OLD)
    assert p.kind == policy.HAND_ADDED and p.explicit is True


def test_explicit_false_wins_and_notes_the_override() -> None:
    p = prov(True, "0.9", {}, {"enforce_eager": False, "max_model_len": 4096})
    assert p.kind == policy.EXPLICIT_FALSE and p.explicit is False
    assert any("overrode" in e for e in p.evidence)


def test_small_explicit_true_dict_is_a_request() -> None:
    p = prov(True, "0.9", {"gpu_memory_utilization": ("0.9",)}, {"enforce_eager": True})
    assert p.kind == policy.EXPLICIT_TRUE


def test_dict_mirroring_the_command_is_recorded() -> None:
    cmd = {"gpu_memory_utilization": ("0.9",), "max_model_len": ("8192",), "enforce_eager": ()}
    stored = {"gpu_memory_utilization": 0.9, "max_model_len": 8192, "enforce_eager": True}
    p = prov(True, "0.9", cmd, stored, OLD)
    assert p.kind == policy.RECORDED and p.explicit is True
    assert any("max_model_len" in e for e in p.evidence)


def test_recorded_evidence_names_the_creation_date() -> None:
    cmd = {"gpu_memory_utilization": ("0.9",), "max_num_seqs": ("64",)}
    stored = {"gpu_memory_utilization": "0.9", "max_num_seqs": 64, "enforce_eager": "true"}
    p = prov(True, "0.9", cmd, stored, OLD)
    assert p.kind == policy.RECORDED
    assert any("2024-10-20" in e for e in p.evidence)


def test_partial_copy_is_a_request() -> None:
    cmd = {"gpu_memory_utilization": ("0.9",), "max_model_len": ("8192",), "seed": ("1",)}
    stored = {"gpu_memory_utilization": 0.9, "max_model_len": 8192, "enforce_eager": True}
    assert prov(True, "0.9", cmd, stored, OLD).kind == policy.EXPLICIT_TRUE


# Provenance from creation time (issue 10 item 3): model engine stores the caller's
# args from 2026-05-07 on, so a dict on an endpoint created since is a request.
MIRROR_CMD = {"gpu_memory_utilization": ("0.9",), "max_model_len": ("8192",), "enforce_eager": ()}
MIRROR_ARGS = {"gpu_memory_utilization": 0.9, "max_model_len": 8192, "enforce_eager": True}


def test_dict_on_an_endpoint_created_since_the_cut_over_is_a_request() -> None:
    p = prov(True, "0.9", MIRROR_CMD, MIRROR_ARGS, NEW)
    assert p.kind == policy.EXPLICIT_TRUE and p.explicit is True
    decisive = [e for e in p.evidence if e.startswith("decided by")]
    assert len(decisive) == 1 and "2026-07-01" in decisive[0] and "2026-05-07" in decisive[0]
    # The copy of the command is still reported: a reviewer may know better.
    assert any("copies every tunable flag" in e for e in p.evidence)


def test_the_cut_over_day_itself_counts_as_recorded_since() -> None:
    since = datetime(2026, 5, 7, tzinfo=UTC)
    assert prov(True, "0.9", MIRROR_CMD, MIRROR_ARGS, since).kind == policy.EXPLICIT_TRUE
    just_before = datetime(2026, 5, 6, 23, 59, 59, tzinfo=UTC)
    assert prov(True, "0.9", MIRROR_CMD, MIRROR_ARGS, just_before).kind == policy.RECORDED


def test_before_the_cut_over_the_dict_decides() -> None:
    p = prov(True, "0.9", MIRROR_CMD, MIRROR_ARGS, OLD)
    assert p.kind == policy.RECORDED
    decisive = [e for e in p.evidence if e.startswith("decided by")]
    assert len(decisive) == 1 and "copies every tunable flag" in decisive[0]


def test_unknown_creation_time_leaves_the_dict_to_decide() -> None:
    p = prov(True, "0.9", MIRROR_CMD, MIRROR_ARGS, None)
    assert p.kind == policy.RECORDED
    assert any("creation time unknown" in e for e in p.evidence)


def test_the_cut_over_is_configurable() -> None:
    later = datetime(2026, 8, 1, tzinfo=UTC)
    p = prov(True, "0.9", MIRROR_CMD, MIRROR_ARGS, NEW, since=later)
    assert p.kind == policy.RECORDED
    earlier = datetime(2024, 1, 1, tzinfo=UTC)
    p = prov(True, "0.9", MIRROR_CMD, MIRROR_ARGS, OLD, since=earlier)
    assert p.kind == policy.EXPLICIT_TRUE and any("2024-01-01" in e for e in p.evidence)


def test_explicit_false_says_which_fact_decided() -> None:
    p = prov(True, "0.9", {}, {"enforce_eager": False}, OLD)
    assert p.kind == policy.EXPLICIT_FALSE
    assert any(e.startswith("decided by") for e in p.evidence)


def test_policy_records_the_cut_over_and_reads_it_back() -> None:
    params = policy.PolicyParams(args_recorded_since=datetime(2026, 6, 1, tzinfo=UTC))
    doc = params.as_dict()
    assert doc["args_recorded_since"] == "2026-06-01"
    assert policy.PolicyParams.from_dict(doc) == params
    assert policy.PolicyParams().as_dict()["args_recorded_since"] == "2026-05-07"
    # A plan made before the option existed decided with the default.
    old_plan = {"threshold": "0.95", "recorded": "keep"}
    assert policy.PolicyParams.from_dict(old_plan) == policy.PolicyParams()
    at_noon = policy.PolicyParams(args_recorded_since=datetime(2026, 6, 1, 12, tzinfo=UTC))
    assert policy.PolicyParams.from_dict(at_noon.as_dict()) == at_noon


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-05-07", datetime(2026, 5, 7, tzinfo=UTC)),
        ("2026-05-07T12:30:00+02:00", datetime(2026, 5, 7, 10, 30, tzinfo=UTC)),
        ("2026-05-07 12:30", datetime(2026, 5, 7, 12, 30, tzinfo=UTC)),
    ],
)
def test_cut_over_parses_dates_and_times(text: str, expected: datetime) -> None:
    assert policy.parse_cut_over(text) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "2026-13-01", "07/05/2026"])
def test_cut_over_rejects_what_is_not_a_date(text: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        policy.parse_cut_over(text)


def test_naive_creation_time_is_taken_as_utc() -> None:
    cmd = {"gpu_memory_utilization": ("0.9",)}
    stored = {"gpu_memory_utilization": 0.9, "enforce_eager": True}
    p = prov(True, "0.9", cmd, stored, datetime(2024, 1, 1))
    assert p.kind == policy.RECORDED and any("2024-01-01" in e for e in p.evidence)


def test_dict_values_compare_structurally() -> None:
    rope = {"type": "linear", "factor": 2.0}
    cmd_py = {"gpu_memory_utilization": ("0.9",), "rope_scaling": (str(rope),)}
    cmd_json = {"gpu_memory_utilization": ("0.9",), "rope_scaling": (json.dumps(rope),)}
    stored = {"gpu_memory_utilization": 0.9, "rope_scaling": rope, "enforce_eager": True}
    assert prov(True, "0.9", cmd_py, stored, OLD).kind == policy.RECORDED
    assert prov(True, "0.9", cmd_json, stored, OLD).kind == policy.RECORDED


def test_dict_without_utilization_is_a_request() -> None:
    p = prov(True, "0.9", {"gpu_memory_utilization": ("0.9",)}, {"enforce_eager": True}, OLD)
    assert p.kind == policy.EXPLICIT_TRUE


def test_args_without_enforce_eager_and_flag_is_injected() -> None:
    p = prov(True, "0.9", {"gpu_memory_utilization": ("0.9",)}, {"max_model_len": 100})
    assert p.kind == policy.INJECTED


def test_no_flag_no_preference_is_absent() -> None:
    assert prov(False, "0.9", {}, None).kind == policy.ABSENT


# Model engine validates the stored dict with pydantic 2 (2.12, lax mode); these are
# the answers pydantic 2.12.5 gave for each value, checked by running it.
PYDANTIC_TRUE = [True, 1, 1.0, Decimal(1), "1", "true", "True", "TRUE", "tRuE", "yes", "YES",
                 "y", "Y", "t", "T", "on", "ON", "oN"]  # fmt: skip
PYDANTIC_FALSE = [False, 0, 0.0, -0.0, Decimal(0), "0", "false", "False", "FALSE", "no", "NO",
                  "n", "N", "f", "F", "off", "OFF", "oFF"]  # fmt: skip
PYDANTIC_REFUSES = [2, -1, 0.5, 1.5, 1.0000000000000002, float("nan"), float("inf"), 10**30,
                    "", " true", "true ", "true\n", "2", "1.0", "0.0", "nan", "maybe", "１",
                    "tru", "yess", [], [True], {}, {"value": True}, Decimal("NaN"),
                    Decimal("sNaN"), Decimal(2)]  # fmt: skip


@pytest.mark.parametrize("raw", PYDANTIC_TRUE)
def test_stored_true_as_pydantic_reads_it(raw: object) -> None:
    assert policy.to_bool(raw) is True


@pytest.mark.parametrize("raw", PYDANTIC_FALSE)
def test_stored_false_as_pydantic_reads_it(raw: object) -> None:
    assert policy.to_bool(raw) is False


def test_stored_null_is_no_preference() -> None:
    assert policy.to_bool(None) is None


@pytest.mark.parametrize("raw", PYDANTIC_REFUSES, ids=repr)
def test_stored_value_pydantic_refuses_is_malformed(raw: object) -> None:
    with pytest.raises(policy.MalformedValue, match="not a boolean"):
        policy.to_bool(raw)


@given(st.text(max_size=8))
def test_any_string_is_a_boolean_only_in_pydantics_spelling(text: str) -> None:
    words = dict.fromkeys(["1", "t", "y", "on", "yes", "true"], True)
    words.update(dict.fromkeys(["0", "f", "n", "no", "off", "false"], False))
    # ASCII case only: pydantic compares with eq_ignore_ascii_case.
    folded = "".join(c.lower() if "A" <= c <= "Z" else c for c in text)
    if folded in words:
        assert policy.to_bool(text) is words[folded]
    else:
        with pytest.raises(policy.MalformedValue):
            policy.to_bool(text)


@given(st.integers() | st.floats(allow_nan=True))
def test_numbers_are_booleans_only_at_zero_and_one(number: float) -> None:
    if number in (0, 1):
        assert policy.to_bool(number) is (number == 1)
    else:
        with pytest.raises(policy.MalformedValue):
            policy.to_bool(number)


def test_to_decimal_rejects_non_numbers() -> None:
    assert policy.to_decimal("0.9") == Decimal("0.9")
    assert policy.to_decimal(0.95) == Decimal("0.95")
    for bad in (None, True, "nan", "inf", "x", [1]):
        assert policy.to_decimal(bad) is None


def test_overrides_parse_and_keep_wins() -> None:
    o = parse_overrides(
        '[keep-eager]\nmodels = ["llama-3-1-405b*"]\n[auto]\nendpoints = ["big-*"]\n', "f.toml"
    )
    assert o.match("big-one", "llama-3-1-405b-instruct") == (
        "keep-eager",
        "model pattern 'llama-3-1-405b*'",
    )
    assert o.match("big-two", "llama-3-8b") == ("auto", "endpoint pattern 'big-*'")
    assert o.match("small", "llama-3-8b") is None


@pytest.mark.parametrize(
    "text",
    ["[keep]\nmodels=[]", "[auto]\nmodel = ['x']", "[auto]\nmodels = 'x'", "not toml ["],
)
def test_overrides_errors_are_clear(text: str) -> None:
    with pytest.raises(OverridesError, match="f.toml"):
        parse_overrides(text, "f.toml")

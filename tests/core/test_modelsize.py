"""Model size: total parameters for risk, model engine's reading for its default utilization."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from migrate.core.modelsize import (
    default_utilization,
    estimate,
    is_large_or_unknown,
    model_engine_param_count_b,
    param_count_b,
)

# --- total parameters -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "total"),
    [
        # plain names: the size they carry
        ("llama-3-1-405b-instruct", 405),
        ("qwen2.5-72b-instruct", 72),
        ("gemma-2-27b", 27),
        ("llama-3-8b-instruct-262k", 8),
        ("Llama-3-70B-Instruct", 70),
        ("Meta-Llama-3.1-70B-Instruct", 70),
        ("deepseek-r1-distill-llama-70b", 70),
        ("deepseek-r1-distill-qwen-1.5b", 2),
        ("qwen2.5-0.5b-instruct", 1),
        ("qwen3-1.7b", 2),
        ("gpt-oss-120b", 120),
        ("yi-34b-chat-4bits", 34),
        # mixture of experts: the total, never the active share
        ("qwen3-235b-a22b", 235),
        ("qwen3-30b-a3b", 30),
        ("Qwen3-Coder-480B-A35B-Instruct", 480),
        ("qwen3-next-80b-a3b-instruct", 80),
        ("llama-4-scout-17b-16e-instruct", 109),
        ("scout-17b-16e", 109),
        ("Llama-4-Maverick-17B-128E-Instruct-FP8", 400),
        ("mixtral-8x7b-instruct", 47),
        ("mixtral-8x22b-instruct", 140),
        ("wizardlm-2-8x22b", 140),
        ("nous-hermes-2-mixtral-8x7b-dpo", 47),
        ("custom-moe-4x7b", 28),
        # the catalogue: names without a size, or a misleading one
        ("deepseek-v3", 671),
        ("deepseek-v3-0324", 671),
        ("DeepSeek-V3.1", 671),
        ("deepseek-r1", 671),
        ("deepseek-r1-0528", 671),
        ("deepseek-coder-v2-instruct", 237),
        ("deepseek-coder-v2-lite-instruct", 16),
        ("deepseek-v2.5", 236),
        ("kimi-k2-instruct", 1000),
        ("dbrx-instruct", 132),
        ("glm-4.5-air", 106),
        ("glm-4.6", 355),
        ("minimax-m2", 230),
        ("mistral-large-instruct-2407", 123),
        ("mistral-nemo-instruct-2407", 12),
        ("c4ai-command-r-plus", 104),
        ("phi-3-mini-4k-instruct", 4),
        ("phi-3.5-mini-instruct", 4),
        ("phi-3.5-moe-instruct", 42),
        ("phi-4", 14),
        # nothing says: unknown, which counts as possibly large
        ("mistral-large-3", None),
        ("foo-17b-16e", None),
        ("qwen1.5-moe-a2.7b", None),
        ("acme-support-bot", None),
        ("", None),
        (None, None),
    ],
)
def test_total_parameters(name: str | None, total: int | None) -> None:
    assert param_count_b(name) == total


@given(
    st.integers(min_value=1, max_value=4999),
    st.sampled_from(["llama-3-", "qwen2.5-", "x-", ""]),
    st.sampled_from(["", "-instruct", "-chat-awq", "-instruct-262k"]),
)
def test_a_plain_size_is_read_as_written(n: int, prefix: str, suffix: str) -> None:
    assert param_count_b(f"{prefix}{n}b{suffix}") == n
    assert param_count_b(f"{prefix}1b-merge-{n}b{suffix}") == n  # the last one, as model engine


@given(st.integers(min_value=1, max_value=2000), st.integers(min_value=1, max_value=200))
def test_an_active_share_suffix_never_hides_the_total(total: int, active: int) -> None:
    name = f"qwen9-{total}b-a{active}b-instruct"
    assert param_count_b(name) == total
    assert model_engine_param_count_b(name) == active  # model engine's misreading


@given(st.integers(min_value=2, max_value=64), st.integers(min_value=1, max_value=200))
def test_an_expert_grid_counts_every_expert(experts: int, each: int) -> None:
    if (experts, each) in ((8, 7), (8, 22)):
        return  # Mixtral's grids come from its card (shared layers make them smaller)
    assert param_count_b(f"moe-{experts}x{each}b-chat") == experts * each


@given(st.integers(min_value=1, max_value=100), st.integers(min_value=2, max_value=256))
def test_an_uncatalogued_expert_count_leaves_the_total_unknown(active: int, experts: int) -> None:
    assert param_count_b(f"newmodel-{active}b-{experts}e-instruct") is None


@given(st.text(max_size=40))
def test_any_name_gives_a_positive_whole_size_or_none(name: str) -> None:
    size = param_count_b(name, name)
    assert size is None or (isinstance(size, int) and size >= 1)


def test_ids_are_not_sizes() -> None:
    assert param_count_b("llama-3-1-8b-instruct-ft-00007b") == 8
    assert param_count_b("chat-ft-123456b") is None


# --- the checkpoint path, when the name says nothing -----------------------------------


@pytest.mark.parametrize(
    ("path", "total"),
    [
        ("s3://scale-ml-models/hf-llm/Qwen3-235B-A22B-Instruct-2507", 235),
        ("s3://scale-ml-models/fine_tuned_weights/team/llama-3-1-70b-instruct-ft-1a2c3d/", 70),
        ("gs://weights/deepseek-ai/DeepSeek-V3/checkpoint-500", 671),
        ("https://acct.blob.core.windows.net/models/meta-llama/Llama-4-Scout-17B-16E", 109),
        ("/mnt/models/mixtral-8x22b-instruct", 140),
        ("s3://llm-70b-bucket/models/support-bot", None),  # the bucket is no model
        ("", None),
    ],
)
def test_checkpoint_path_names_the_model(path: str, total: int | None) -> None:
    found = estimate("support-bot", path)
    assert found.total_b == total
    if total is not None:
        assert "checkpoint" in found.basis


def test_the_model_name_wins_over_the_checkpoint_path() -> None:
    found = estimate("llama-3-8b-instruct", "s3://m/hf-llm/llama-3-1-70b-instruct")
    assert found.total_b == 8 and "model name" in found.basis


# --- model engine's own reading (facts, section 4) -------------------------------------


@pytest.mark.parametrize(
    ("name", "size"),
    [
        # facts section 4's own examples are in tests/core/test_classify_facts.py
        ("qwen3-235b-a22b", 22),
        ("llama-4-scout-17b-16e-instruct", 17),
        ("qwen2.5-0.5b-instruct", 5),
        ("Llama-3-70B-Instruct", None),  # case-sensitive: no size in "70B"
        (None, None),
    ],
)
def test_model_engine_reading(name: str | None, size: int | None) -> None:
    assert model_engine_param_count_b(name) == size


def test_the_two_readings_disagree_only_when_they_differ() -> None:
    assert estimate("qwen3-235b-a22b").disagrees
    assert estimate("deepseek-v3").disagrees  # model engine cannot size it at all
    assert not estimate("llama-3-70b-instruct").disagrees
    assert not estimate("mixtral-8x7b-instruct").disagrees
    assert not estimate("acme-bot").disagrees  # both unknown


def test_default_utilization_follows_model_engine_reading() -> None:
    assert default_utilization(model_engine_param_count_b("llama-3-70b")) == Decimal("0.95")
    assert default_utilization(model_engine_param_count_b("qwen3-235b-a22b")) == Decimal("0.9")
    assert default_utilization(None) == Decimal("0.9")
    assert default_utilization(8) == Decimal("0.9")


def test_unknown_counts_as_large() -> None:
    assert is_large_or_unknown(None) and is_large_or_unknown(70) and not is_large_or_unknown(69)

"""What the readings caches keep: only what comes again, at most their size, oldest out first."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from migrate.core import command, command_reading
from migrate.core.recurring import RecurringCache


def test_a_key_offered_once_is_only_noted_and_kept_the_second_time() -> None:
    cache: RecurringCache[str, int] = RecurringCache(4)
    cache.offer("a", 1)
    assert cache.get("a") is None and len(cache) == 0
    cache.offer("a", 2)
    assert cache.get("a") == 2


def test_it_keeps_at_most_its_size_and_lets_the_oldest_go() -> None:
    cache: RecurringCache[int, int] = RecurringCache(3)
    for key in range(5):
        cache.offer(key, key)
        cache.offer(key, key * 10)
    assert len(cache) == 3
    assert [cache.get(k) for k in range(5)] == [None, None, 20, 30, 40]


def test_the_keys_noted_are_bounded() -> None:
    cache: RecurringCache[int, int] = RecurringCache(8, sightings=100)
    for key in range(1000):
        cache.offer(key, key)
    assert len(cache._seen) <= 100 and len(cache) == 0
    cache.offer(999, 9)  # noted after the last time the notes were emptied
    assert cache.get(999) == 9


@given(st.lists(st.integers(0, 30), max_size=200), st.integers(1, 8))
def test_what_it_answers_is_what_was_offered_last_for_that_key(keys: list[int], size: int) -> None:
    cache: RecurringCache[int, tuple[int, int]] = RecurringCache(size)
    offered: dict[int, tuple[int, int]] = {}
    seen: set[int] = set()
    for n, key in enumerate(keys):
        got = cache.get(key)
        if got is not None:
            assert got == offered[key]
            continue
        offered[key] = (key, n)
        cache.offer(key, offered[key])
        assert (cache.get(key) is not None) == (key in seen)
        seen.add(key)
    assert len(cache) <= size


def test_a_script_read_once_is_not_kept_and_one_read_twice_is() -> None:
    command._readings.clear()
    command_reading._tails.clear()
    rng = random.Random(5)
    scripts = [
        f"cd /m{rng.randrange(10**9)};python -m vllm_server --port {n} --enforce-eager"
        for n in range(50)
    ]
    for script in scripts:
        command.parse_script(script)
    assert len(command._readings) == 0  # each freed with its row
    first = command.parse_script(scripts[7])  # seen before: now kept
    assert command.parse_script(scripts[7]) is first
    assert len(command._readings) == 1


def test_a_reading_kept_is_the_reading_made_afresh() -> None:
    rng = random.Random(11)
    servers = [f"python -m vllm_server --port {n} --gpu-memory-utilization 0.9" for n in range(6)]
    setups = ["cd /models", "export A=1", "set -e;cd /x", "true"]
    scripts = [f"{rng.choice(setups)};{rng.choice(servers)}" for _ in range(300)]
    command._readings.clear()
    command_reading._tails.clear()
    kept = [command.parse_script(s) for s in scripts]
    for script, reading in zip(scripts, kept, strict=True):
        command._readings.clear()
        command_reading._tails.clear()
        assert command.parse_script(script) == reading

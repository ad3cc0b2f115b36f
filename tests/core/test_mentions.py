"""Counting the module's mentions: the shortcut past the loose search never changes the count."""

from __future__ import annotations

import random

from migrate.core.command_locate import _LOOSE_MENTION, _MODULE_MENTION, _mentions
from tests.support import script_fuzz

HIDDEN = [
    "python -m vllm_se\\rver",
    "python -m 'vllm_'server",
    'python -m "vllm_startup_"wrapper',
    "python -m vllm_serv\\\ner",
    "python \\\n-m vllm_server",
    "python -m vllm\\\\\\\n_server",
    "echo '-m vllm_server'",
    "python -m vllm_server.x",
    "python -m vllm_se'r'ver2",
]


def _searched(text: str) -> int:
    """The count as it was before the shortcut: the loose search whenever it may matter."""
    count = len(_MODULE_MENTION.findall(text))
    if count < 2 and ("\\" in text or "'" in text or '"' in text):
        count = max(count, len(_LOOSE_MENTION.findall(text)))
    return count


def test_the_count_is_the_loose_searchs_on_hidden_and_fuzzed_mentions() -> None:
    rng = random.Random(7)
    texts = [a + sep + b for a in HIDDEN for b in HIDDEN for sep in (";", " ", "\n")]
    for _ in range(20000):
        text = script_fuzz.mutate(rng, script_fuzz.script(rng))
        if rng.random() < 0.3:
            text += ";" + rng.choice(HIDDEN)
        texts.append(text)
    counts = [_mentions(text) for text in texts]
    assert counts == [_searched(text) for text in texts]
    # The texts reach every count the callers tell apart, and the loose search finds more.
    assert {0, 1, 2} <= set(counts)
    assert sum(_searched(t) > len(_MODULE_MENTION.findall(t)) for t in texts) > 100

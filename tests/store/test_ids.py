"""Ids in model engine's xid shape: bun_, run_ and invocation ids."""

from __future__ import annotations

import re
import time

from migrate.store import ids as xid


def test_xid_has_model_engine_shape_and_decodes_back() -> None:
    before = int(time.time())
    value = xid.new_xid()
    assert re.fullmatch(r"[0-9a-v]{20}", value)
    parts = xid.decode(value)
    assert before <= parts.time <= int(time.time())
    assert parts.pid == __import__("os").getpid() & 0xFFFF
    assert xid.is_xid("cn4kq9q1f1fg00b0ds5g")  # an id model engine wrote
    assert xid.new_bundle_id().startswith("bun_") and len(xid.new_bundle_id()) == 24


def test_xids_are_unique_and_sort_by_time() -> None:
    many = [xid.new_xid() for _ in range(20000)]
    assert len(set(many)) == len(many)
    assert xid.new_xid(now=1_000) < xid.new_xid(now=2_000_000_000)
    assert not xid.is_xid("cn4kq9q1f1fg00b0ds5w")  # low bits of the last char set


# stages --------------------------------------------------------------------------

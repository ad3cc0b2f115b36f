"""A plan's digest made by a forked child while its file is written: the same file.

The child is a real fork; what goes wrong there (no fork, a child that dies or
answers nonsense) must leave the file byte for byte what the serial path
writes, its digest made here instead, and no child behind.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from migrate.cli import planfile
from migrate.core import plan as plan_module
from migrate.core.plan import build_plan, parse_plan, to_json
from migrate.core.plan_stream import RECORD_PARTS, stream_plan
from migrate.rollout import digest_aside
from migrate.store.spill import Spill
from tests.support.plans import HEADER, decision
from tests.support.processes import children


def _fleet() -> list:
    return [decision(f"e-{n:03d}", reason="\u2713 " * n) for n in range(300)]


def _written(tmp_path: Path, name: str) -> tuple[bytes, str]:
    with Spill(RECORD_PARTS, str(tmp_path)) as spill:
        plan = stream_plan(iter(_fleet()), spill, **HEADER, sealed=False)
        assert plan.header.digest == ""
        written = planfile.write_plan_file(plan, str(tmp_path / name))
    return (tmp_path / name).read_bytes(), written.header.digest


def _junk(plan: Any, write: int) -> None:
    os.write(write, b"sha256:not a digest")
    os._exit(0)


def _silent(plan: Any, write: int) -> None:
    os._exit(1)


def _no_fork() -> int:
    raise OSError(11, "Resource temporarily unavailable")


@pytest.mark.parametrize("fault", [None, "no fork", "dies", "junk"])
def test_the_file_and_its_digest_are_the_serial_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str | None
) -> None:
    expected = to_json(build_plan(_fleet(), **HEADER)).encode("utf-8")
    digests: list[int] = []  # the processes that made the digest
    real = digest_aside.compute_digest

    def recorded(body: Any) -> str:
        with open(tmp_path / "pids", "a", encoding="ascii") as handle:
            handle.write(f"{os.getpid()}\n")
        return real(body)

    monkeypatch.setattr(digest_aside, "compute_digest", recorded)
    if fault == "no fork":
        monkeypatch.setattr(digest_aside.os, "fork", _no_fork)
    elif fault == "dies":
        monkeypatch.setattr(digest_aside, "_answer", _silent)
    elif fault == "junk":
        monkeypatch.setattr(digest_aside, "_answer", _junk)
    text, digest = _written(tmp_path, "plan.json")
    assert text == expected
    assert (
        digest
        == parse_plan(text.decode("utf-8")).digest
        == plan_module.compute_digest(parse_plan(text.decode("utf-8")).body())
    )
    digests = [int(pid) for pid in (tmp_path / "pids").read_text().split()]
    # Made once: by the child, or here when the child could not.
    assert digests == ([os.getpid()] if fault else [d for d in digests if d != os.getpid()])
    assert len(digests) == 1
    assert not children(os.getpid())


def test_a_plan_refused_as_too_large_leaves_no_file_and_no_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = to_json(build_plan(_fleet(), **HEADER)).encode("utf-8")
    monkeypatch.setattr(planfile, "PLAN_LIMIT", len(expected) - 1)  # refused while written
    forks: list[int] = []
    real_fork = os.fork

    def fork() -> int:
        forks.append(1)
        return real_fork()

    monkeypatch.setattr(digest_aside.os, "fork", fork)
    with pytest.raises(planfile.Failure, match="the most apply reads"):
        _written(tmp_path, "plan.json")
    assert forks  # the child was running when the file was refused
    assert not (tmp_path / "plan.json").exists()
    assert not children(os.getpid())

"""A plan larger than apply reads is refused by plan itself, and leaves no file behind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from migrate.cli import planfile
from tests.support.cli import assert_one_line_error, invoke
from tests.support.rollout import seed_random

pytestmark = pytest.mark.parametrize("schema_version", ["2026"])


def test_an_oversized_plan_is_refused_before_apply_would(
    me_db: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_random(me_db, 40, seed_value=3)
    env = {"BUNDLE_MIGRATE_DATABASE_URL": me_db.url}
    fits = tmp_path / "fits.json"
    made = invoke("plan", "--out", str(fits), env=env)
    assert made.exit_code == 0, made.output
    size = fits.stat().st_size
    assert json.loads(fits.read_text())["items"]

    # Room for all but the last bytes: the write is refused near its end, and nothing stays.
    monkeypatch.setattr(planfile, "PLAN_LIMIT", size - 10)
    too_big = tmp_path / "too-big.json"
    result = invoke("plan", "--out", str(too_big), env=env)
    assert_one_line_error(result, "the most apply reads: plan the fleet in parts")
    assert not too_big.exists()
    assert not list(tmp_path.glob("too-big*"))

    # Exactly the size is still written, and apply reads it.
    monkeypatch.setattr(planfile, "PLAN_LIMIT", size)
    again = tmp_path / "again.json"
    assert invoke("plan", "--out", str(again), env=env).exit_code == 0
    assert invoke("apply", str(again), env=env).exit_code == 0


def test_an_oversized_plan_sends_nothing_to_stdout(
    me_db: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_random(me_db, 40, seed_value=3)
    env = {"BUNDLE_MIGRATE_DATABASE_URL": me_db.url}
    monkeypatch.setattr(planfile, "PLAN_LIMIT", 4096)
    # Stdout cannot take back what it was sent: the size is counted before a byte goes.
    result = invoke("plan", "--out", "-", env=env)
    assert_one_line_error(result, "the most apply reads")
    assert result.stdout == ""

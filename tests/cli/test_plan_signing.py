"""Plans signed with $BUNDLE_MIGRATE_PLAN_KEY: an edited, re-digested plan is refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from migrate.core.plan import compute_digest
from tests.support.cli import assert_one_line_error, invoke
from tests.support.rollout import seed_random

pytestmark = pytest.mark.parametrize("schema_version", ["2026"])

KEY = "correct horse battery staple, 32+ bytes"


@pytest.fixture
def signed(me_db: Any, tmp_path: Path) -> tuple[dict[str, str], Path]:
    seed_random(me_db, 12, seed_value=3)
    env = {"BUNDLE_MIGRATE_DATABASE_URL": me_db.url, "BUNDLE_MIGRATE_PLAN_KEY": KEY}
    path = tmp_path / "plan.json"
    made = invoke("plan", "--out", str(path), env=env)
    assert made.exit_code == 0 and "signed with $BUNDLE_MIGRATE_PLAN_KEY" in made.stderr
    assert KEY not in made.output and KEY not in path.read_text()
    return env, path


def test_a_signed_plan_applies_with_its_key(signed: tuple[dict[str, str], Path]) -> None:
    env, path = signed
    assert json.loads(path.read_text())["signature"].startswith("hmac-sha256:")
    result = invoke("apply", str(path), "--execute", "--no-redeploy", "--stage", "1", env=env)
    assert result.exit_code == 0, result.output


def test_an_edited_and_redigested_plan_is_refused(signed: tuple[dict[str, str], Path]) -> None:
    env, path = signed
    doc = json.loads(path.read_text())
    doc["items"][0]["args_after"] = {"evil": True}
    body = {k: v for k, v in doc.items() if k not in ("digest", "signature")}
    doc["digest"] = compute_digest(body)
    path.write_text(json.dumps(doc))
    result = invoke("apply", str(path), "--execute", "--no-redeploy", env=env)
    assert_one_line_error(result, "does not match its signature", secrets=(KEY,))
    del doc["signature"]
    path.write_text(json.dumps(doc))
    assert_one_line_error(invoke("apply", str(path), env=env), "is not signed", secrets=(KEY,))


def test_without_the_key_a_signed_plan_is_read_with_a_note(
    signed: tuple[dict[str, str], Path],
) -> None:
    env, path = signed
    env = {k: v for k, v in env.items() if k != "BUNDLE_MIGRATE_PLAN_KEY"}
    result = invoke("apply", str(path), env=env)
    assert result.exit_code == 0, result.output
    assert "signed, but BUNDLE_MIGRATE_PLAN_KEY is not set" in result.stderr


def test_a_short_key_is_refused(me_db: Any, tmp_path: Path) -> None:
    env = {"BUNDLE_MIGRATE_DATABASE_URL": me_db.url, "BUNDLE_MIGRATE_PLAN_KEY": "tiny-k3y"}
    seed_random(me_db, 4, seed_value=3)
    result = invoke("plan", "--out", str(tmp_path / "p.json"), env=env)
    assert_one_line_error(result, "at least 32 bytes", secrets=("tiny-k3y",))

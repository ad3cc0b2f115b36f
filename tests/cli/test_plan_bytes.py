"""The plan file goes out as UTF-8 bytes, and its size is counted in those bytes.

A streamed plan's items are written as its spill holds them (never decoded and
encoded again); the file must still be to_json's text, and the limit apply
reads must hold for bytes, not characters, whichever way the plan was made.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from migrate.cli import planfile
from migrate.cli.app import Failure
from migrate.core.plan import build_plan, to_json
from migrate.core.plan_stream import RECORD_PARTS, stream_plan
from migrate.store.spill import Spill
from tests.support.plans import HEADER, decision

# Two, three and four bytes a character, in the text of an item and of the header.
_WIDE = "größer als 0,95 — ✓ \U0001f680"


def _fleet() -> list:
    return [
        decision("a", reason=_WIDE),
        decision("b-\u00e9", "llama-3-70b", 70, flags=["large-model-loses-eager"]),
        decision("c", args_after={"k": [_WIDE, {"z": None}]}, streaming_command_after="s"),
    ]


@pytest.mark.parametrize("exclude_large", [False, True])
@pytest.mark.parametrize("made", ["whole", "streamed", "unsealed"])
@pytest.mark.parametrize("target", ["file", "stdout"])
def test_the_file_is_to_json_and_the_limit_counts_its_bytes(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsysbinary: pytest.CaptureFixture[bytes],
    exclude_large: bool,
    made: str,
    target: str,
) -> None:
    header = {**HEADER, "created_by": _WIDE}
    whole = build_plan(_fleet(), **header, exclude_large=exclude_large)
    expected = to_json(whole).encode("utf-8")
    assert len(expected) > len(to_json(whole))  # the limit below is in bytes, not characters
    with Spill(RECORD_PARTS) as spill:
        plan = whole
        if made != "whole":
            plan = stream_plan(
                iter(_fleet()),
                spill,
                **header,
                exclude_large=exclude_large,
                sealed=made == "streamed",
            )

        def write(name: str) -> bytes | None:
            path = tmp_path / name
            written = planfile.write_plan_file(plan, str(path) if target == "file" else None)
            assert written.header.digest == whole.digest if made != "whole" else written is whole
            if target == "file":
                return path.read_bytes()
            return capsysbinary.readouterr().out

        monkeypatch.setattr(planfile, "PLAN_LIMIT", len(expected))
        assert write("exact.json") == expected
        monkeypatch.setattr(planfile, "PLAN_LIMIT", len(expected) - 1)
        with pytest.raises(Failure, match="the most apply reads"):
            write("over.json")
        assert not (tmp_path / "over.json").exists()
        assert capsysbinary.readouterr().out == b""  # stdout: counted first, nothing sent

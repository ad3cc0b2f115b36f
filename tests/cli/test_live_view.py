"""On a terminal, apply shows a live view that keeps redrawing: progress, ETA, endpoints in flight.

The tool runs in a real pseudo-terminal (what a person's terminal, or tmux, gives it),
against the model engine stand-in, and what it draws is read as it comes.
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from migrate.core.plan import to_json
from migrate.sandbox.synth import make_spec
from tests.support.rollout import make_plan, seed
from tests.support.standin import fast_behaviour, standin

pytestmark = pytest.mark.parametrize("schema_version", ["2026"])

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _read_all(fd: int, proc: subprocess.Popen[bytes], timeout: float) -> list[tuple[float, bytes]]:
    """Every chunk the terminal received, with when it came, until the process ends."""
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                data = os.read(fd, 65536)
            except OSError:  # the other side closed
                break
            if not data:
                break
            chunks.append((time.monotonic(), data))
        elif proc.poll() is not None:
            break
    return chunks


def test_the_live_view_redraws_progress_and_the_endpoints_in_flight(
    me_db: Any, schema_version: str, tmp_path: Path
) -> None:
    seed(
        me_db,
        [
            make_spec(
                "F",
                provenance="injected",
                schema_version=me_db.version,
                name=f"ep-{i}",
                owner="team-a",
                status="READY",
                seed=i,
                index=i,
            )
            for i in range(5)
        ],
    )
    path = tmp_path / "plan.json"
    path.write_text(to_json(make_plan(me_db, stages="1,100%")))
    with standin(me_db, fast_behaviour(build_seconds=0.5, start_seconds=1.0)) as server:
        env = {
            **os.environ,
            "BUNDLE_MIGRATE_DATABASE_URL": me_db.url,
            "BUNDLE_MIGRATE_API_URL": server.url,
            "TERM": "xterm-256color",
            "COLUMNS": "120",
            "LINES": "40",
        }
        env.pop("NO_COLOR", None)
        leader, follower = pty.openpty()
        args = ["apply", str(path), "--execute", "--all-stages", "--act-as-owner"]
        args += ["--parallel", "2", "--poll-interval", "0.2", "--settle", "1"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "migrate", *args],
            stdin=follower,
            stdout=follower,
            stderr=follower,
            env=env,
            close_fds=True,
        )
        os.close(follower)
        try:
            chunks = _read_all(leader, proc, timeout=120)
            shown = ANSI.sub("", b"".join(c for _, c in chunks).decode("utf-8", "replace"))
            try:
                status = proc.wait(30)
            except subprocess.TimeoutExpired:
                status = None  # still running: hung, and what it drew says where
            assert status == 0, shown[-3000:]
        finally:
            os.close(leader)
            if proc.poll() is None:
                proc.kill()
                proc.wait()  # reaped, so no later test finds a child of this process
    raw = b"".join(c for _, c in chunks).decode("utf-8", "replace")
    text = ANSI.sub("", raw)
    # The live region is drawn again and again (cursor moved up and the lines rewritten),
    # for as long as the endpoints take: not once, not only when a line of text changes.
    redraws = raw.count("\x1b[2K")
    assert redraws >= 20, redraws
    span = chunks[-1][0] - chunks[0][0]
    assert span > 3
    # What it drew: the stage's progress with rate and ETA, and endpoints in flight.
    assert re.search(r"stage 2 \(100%\).*\d+/4", text), text[-3000:]
    assert "ETA" in text and "/min" in text
    assert re.search(r"ep-\d +(waiting|settling|redeploying)", text), text[-3000:]
    # Progress moved while it was drawn: several different counts were shown.
    counts = set(re.findall(r"stage 2 \(100%\)[^\n]*?(\d)/4", text))
    assert len(counts) >= 3, counts
    # And the outcome lines are there, above where the view was.
    assert text.count("applied  ") + text.count("applied ") >= 5

"""--metrics-file on devices, pipes and huge files: never an endless read, write or wait.

These run the real program in a child with its address space capped, so a
regression (reading /dev/full whole) ends in that child, not in the machine's
out-of-memory killer.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from migrate.reconcile import metrics
from migrate.store import files
from tests.support.reconcile import clean_specs
from tests.support.rollout import seed

pytestmark = pytest.mark.parametrize("schema_version", ["2026"])

ADDRESS_SPACE = 2 << 30  # the tool needs a few hundred MiB; reading a device whole needs all


def _capped() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def reconcile(me_db: Any, target: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BUNDLE_MIGRATE_DATABASE_URL": me_db.url}
    return subprocess.run(
        [sys.executable, "-m", "migrate", "reconcile", "--metrics-file", target],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,  # a guard against a hang, not a measure of speed
        preexec_fn=_capped,
        **kwargs,
    )


@pytest.fixture
def fleet(me_db: Any) -> Any:
    seed(me_db, clean_specs(me_db.version))
    return me_db


def test_dev_full_is_one_line_not_an_endless_read(fleet: Any) -> None:
    proc = reconcile(fleet, "/dev/full")
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "bundle-migrate: error: cannot write metrics file /dev/full: No space left on device"
    ]


def test_dev_zero_and_dev_null_take_the_metrics(fleet: Any) -> None:
    for device in ("/dev/zero", "/dev/null"):
        proc = reconcile(fleet, device)
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr and Path(device).is_char_device()


def test_dev_stdout_into_a_pipe_gets_the_metrics(fleet: Any) -> None:
    # As `reconcile --metrics-file /dev/stdout | cat`: stdout is a pipe, which the old
    # code tried to read the previous metrics from, and waited on forever.
    proc = reconcile(fleet, "/dev/stdout")
    assert proc.returncode == 0, proc.stderr
    assert f"{metrics.PREFIX}_last_run_success" in proc.stdout
    assert "reconcile " in proc.stdout  # the report is there too


def test_a_fifo_is_written_through_when_someone_reads_it(fleet: Any, tmp_path: Path) -> None:
    fifo = tmp_path / "metrics.prom"
    os.mkfifo(fifo)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()), daemon=True)
    reader.start()
    proc = reconcile(fleet, str(fifo))
    reader.join(timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert fifo.is_fifo() and f"{metrics.PREFIX}_drift" in got[0]


def test_a_huge_previous_file_is_not_read(fleet: Any, tmp_path: Path) -> None:
    path = tmp_path / "metrics.prom"
    with open(path, "wb") as handle:  # sparse: no disk, but reading it whole needs 8 GiB
        handle.truncate(8 << 30)
    proc = reconcile(fleet, str(path))
    assert proc.returncode == 0, proc.stderr
    assert path.stat().st_size < files.MIB
    assert f"{metrics.PREFIX}_last_success_timestamp_seconds" in path.read_text()


def previous_success_in_a_child(path: Path) -> str:
    """metrics.previous_success(path), run where a read without bound cannot hurt."""
    code = f"from migrate.reconcile import metrics; print(metrics.previous_success({str(path)!r}))"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=_capped,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_the_previous_success_is_read_only_from_a_regular_file(
    tmp_path: Path, schema_version: str
) -> None:
    path = tmp_path / "m.prom"
    path.write_text(f"{metrics.LAST_SUCCESS} 42.0\n")
    assert previous_success_in_a_child(path) == "42.0"
    for name, target in (("zero", "/dev/zero"), ("full", "/dev/full")):
        link = tmp_path / f"{name}.prom"
        link.symlink_to(target)
        assert previous_success_in_a_child(link) == "None"
    fifo = tmp_path / "fifo.prom"
    os.mkfifo(fifo)
    assert previous_success_in_a_child(fifo) == "None"
    huge = tmp_path / "huge.prom"
    with open(huge, "wb") as handle:
        handle.truncate(8 << 30)
    assert previous_success_in_a_child(huge) == "None"

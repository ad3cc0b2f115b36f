"""Reading commands on worker processes: the same decisions, in the same order, or one clear error.

The thresholds are lowered so a few hundred endpoints cross into the pool; the
workers themselves are real spawned processes.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
from collections.abc import Iterator
from dataclasses import asdict

import pytest
from click.testing import CliRunner

from migrate.cli import main
from migrate.cli.options import Jobs
from migrate.core.overrides import parse_overrides
from migrate.core.policy import PolicyParams
from migrate.rollout import planning
from migrate.sandbox import synth
from migrate.sandbox.seed import seed_fleet
from migrate.scan import workers
from migrate.scan.scanner import scan
from migrate.store import fleet as fleet_rows
from migrate.store.connection import read_only
from migrate.store.endpoint_rows import RowStream

FLEET_SIZE = 300


@pytest.fixture
def small_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers, "SMALL_FLEET", 20)
    monkeypatch.setattr(workers, "CHUNK", 7)


@pytest.fixture
def seeded(me_db):
    specs = list(synth.random_fleet(FLEET_SIZE, 5, schema_version=me_db.version))
    seed_fleet(me_db.url, specs, schema=me_db.schema, schema_version=me_db.version)
    return me_db


def rows(me_db) -> RowStream:
    """The fleet's rows, read to the end (the snapshot closes before the test uses them)."""
    with read_only(me_db.engine, 60) as conn:
        query = fleet_rows.endpoint_query(conn, me_db.schema, fleet_rows.Filters())
        streamed = fleet_rows.stream_rows(conn, query)
        return RowStream(streamed.keys, iter(list(streamed.values)))


def test_workers_decide_as_one_process_does_in_the_same_order(seeded, small_pool) -> None:
    overrides = parse_overrides('[keep-eager]\nmodels = ["*"]\n', source="test")
    params = PolicyParams()
    alone = [asdict(d) for d in scan(seeded.engine, schema=seeded.schema, params=params, jobs=1)]
    pooled = [
        asdict(d)
        for d in scan(
            seeded.engine, schema=seeded.schema, params=params, overrides=overrides, jobs=3
        )
    ]
    with_overrides_alone = [
        asdict(d)
        for d in scan(
            seeded.engine, schema=seeded.schema, params=params, overrides=overrides, jobs=1
        )
    ]
    assert len(alone) > workers.SMALL_FLEET + 10 * workers.CHUNK
    assert pooled == with_overrides_alone
    # The overrides reached the workers: some decision differs from the run without them.
    assert pooled != alone
    assert not multiprocessing.active_children()


def test_a_report_scan_skips_fingerprints_on_workers_too(seeded, small_pool) -> None:
    planned = [asdict(d) for d in scan(seeded.engine, schema=seeded.schema, jobs=1)]
    reported = [
        asdict(d) for d in scan(seeded.engine, schema=seeded.schema, jobs=3, fingerprint=False)
    ]
    changes = [d for d in planned if d["fingerprint"]]
    assert len(changes) > workers.CHUNK
    assert all(d["fingerprint"] is None for d in reported)
    assert reported == [{**d, "fingerprint": None, "basis_fingerprint": None} for d in planned]


# Early, the pool learns of the death from a result; later, from the next submit.
@pytest.mark.parametrize("chunks_in", [1, 4, 12])
def test_a_killed_worker_is_one_clear_error(seeded, small_pool, chunks_in: int) -> None:
    listed = rows(seeded)

    def killing() -> Iterator[str]:
        for i, values in enumerate(listed.values):
            if i == workers.SMALL_FLEET + chunks_in * workers.CHUNK:
                children = multiprocessing.active_children()
                assert children, "the pool should be running by now"
                os.kill(children[0].pid, signal.SIGKILL)
            yield values

    with pytest.raises(workers.WorkerError, match="worker process died"):
        list(workers.decide(RowStream(listed.keys, killing()), PolicyParams(), None, jobs=2))
    assert not multiprocessing.active_children()


def test_stopping_early_leaves_no_worker_behind(seeded, small_pool) -> None:
    decisions = workers.decide(rows(seeded), PolicyParams(), None, jobs=2)
    taken = [next(decisions) for _ in range(workers.SMALL_FLEET + 3 * workers.CHUNK)]
    assert multiprocessing.active_children()
    decisions.close()  # what `scan | head` does to the generator
    assert len(taken) == workers.SMALL_FLEET + 3 * workers.CHUNK
    assert not multiprocessing.active_children()


# JSON lines are made by the workers themselves (scan's render); CSV from decisions.
@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_cli_scan_with_jobs_matches_one_process(seeded, small_pool, monkeypatch, fmt) -> None:
    monkeypatch.setenv("BUNDLE_MIGRATE_DATABASE_URL", seeded.url)
    runner = CliRunner()
    outputs = []
    for jobs in ("1", "2"):
        result = runner.invoke(
            main,
            ["scan", "--schema", seeded.schema, "--format", fmt, "--jobs", jobs],
            catch_exceptions=False,
        )
        assert result.exit_code == 0, result.output
        outputs.append(result.stdout)
    if fmt == "json":
        docs = [json.loads(text) for text in outputs]
        assert docs[0]["scan"].pop("generated_at") and docs[1]["scan"].pop("generated_at")
        assert docs[0] == docs[1]
        assert len(docs[0]["endpoints"]) == docs[0]["summary"]["endpoints"] > FLEET_SIZE // 2
    else:
        assert outputs[0] == outputs[1]
        assert outputs[0].count("\n") > FLEET_SIZE // 2


@pytest.mark.parametrize("exclude_large", [False, True])
def test_a_plan_made_on_workers_is_the_plan_made_in_one_process(
    seeded, small_pool, monkeypatch, tmp_path, exclude_large: bool
) -> None:
    # The items are made on the workers (scan's render); only the stamp may differ.
    stamp = {"created_at": "2026-12-03T00:00:00+00:00", "created_by": "test", "tool_version": "0"}
    monkeypatch.setattr(planning, "_stamp", lambda *_: {**stamp, "database": {"name": "x"}})
    texts = []
    for jobs in (1, 2):
        with planning.streamed_plan(
            seeded.engine,
            schema=seeded.schema,
            filters=fleet_rows.Filters(),
            filters_doc={},
            params=PolicyParams(),
            overrides=None,
            overrides_path=None,
            stage_spec="1,10%,100%",
            exclude_large=exclude_large,
            jobs=jobs,
            spill_dir=str(tmp_path),
        ) as plan:
            texts.append("".join(plan.pieces()))
    assert texts[0] == texts[1]
    doc = json.loads(texts[0])
    assert len(doc["items"]) > 20
    assert bool(doc["excluded"]) == exclude_large


@pytest.mark.parametrize("bad", ["0", "-1", "many", "65"])
def test_jobs_refuses_what_is_not_a_count(bad: str) -> None:
    result = CliRunner().invoke(main, ["scan", "--jobs", bad])
    # Usage errors exit 1 here: 2 means "changes pending" (--detailed-exitcode).
    assert result.exit_code == 1
    assert "Invalid value for '--jobs'" in result.output


def test_auto_jobs_is_between_one_and_the_cap() -> None:
    assert 1 <= Jobs().convert("auto", None, None) <= workers.MAX_AUTO_JOBS
    assert Jobs().convert("3", None, None) == 3


@pytest.mark.parametrize("over", [0, 1])
def test_a_small_fleet_is_decided_in_process_and_a_bigger_one_all_on_workers(
    seeded, monkeypatch, over: int
) -> None:
    """Rows are read ahead: a fleet of SMALL_FLEET starts no worker; one row more, and
    every row is decided on the workers, none here while they start."""
    listed = list(rows(seeded).values)
    keys = rows(seeded).keys
    monkeypatch.setattr(workers, "SMALL_FLEET", len(listed) - over)
    here: list[int] = []
    real = workers._rendered
    started: list[int] = []
    real_pool = workers._pool

    def rendered(keys, chunk, *args):  # type: ignore[no-untyped-def]
        here.append(len(chunk))
        return real(keys, chunk, *args)

    def pool(*args):  # type: ignore[no-untyped-def]
        started.append(1)
        return real_pool(*args)

    monkeypatch.setattr(workers, "_rendered", rendered)
    monkeypatch.setattr(workers, "_pool", pool)
    pooled = list(workers.decide(RowStream(keys, iter(listed)), PolicyParams(), None, jobs=2))
    assert (sum(here), len(started)) == ((len(listed), 0) if not over else (0, 1))
    monkeypatch.setattr(workers, "_rendered", real)
    alone = list(workers.decide(RowStream(keys, iter(listed)), PolicyParams(), None, jobs=1))
    assert [asdict(d) for d in pooled] == [asdict(d) for d in alone]
    assert not multiprocessing.active_children()


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"cpu.max": "150000 100000\n"}, 2),
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu.max": "50000 100000\n"}, 1),
        ({"cpu/cpu.cfs_quota_us": "300000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 3),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({"cpu.max": "garbage\n"}, None),
        ({}, None),
    ],
)
def test_the_cgroup_cpu_quota_caps_auto(tmp_path, files: dict[str, str], expected) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert workers._cgroup_quota(str(tmp_path)) == expected
    cpus = workers.available_cpus(str(tmp_path))
    assert 1 <= cpus and (expected is None or cpus <= expected)


def _collector() -> tuple[tuple[int, int, int], int]:
    import gc

    return gc.get_threshold(), gc.get_freeze_count()


def test_deciding_makes_the_collector_rare_then_gives_it_back(seeded) -> None:
    before = _collector()
    during: list[tuple[tuple[int, int, int], int]] = []
    stream = workers.decide(rows(seeded), PolicyParams(), None, jobs=1)
    next(stream)
    during.append(_collector())
    stream.close()  # a consumer that stops early, as a failed write does
    assert during[0][0] == workers.RARE_COLLECTIONS
    assert during[0][1] > 0  # the imports' objects are frozen out of the walks
    assert _collector() == before
    with pytest.raises(RuntimeError, match="render failed"):
        for _ in workers.decide(rows(seeded), PolicyParams(), None, jobs=1):
            raise RuntimeError("render failed")
    assert _collector() == before


def test_workers_collect_rarely(seeded, small_pool) -> None:
    with workers._pool(1, PolicyParams(), None, workers.as_decided, True) as pool:
        threshold, frozen = pool.submit(_collector).result()
    assert threshold == workers.RARE_COLLECTIONS
    assert frozen > 0


# A worker's start, then objects it keeps (its readings), then its exit: the handler
# registered before the start runs after the worker's own, and tells whether the
# objects made since the start were frozen by then.
_EXIT_PROBE = """
import atexit, gc
from migrate.core.policy import PolicyParams
from migrate.scan import workers
atexit.register(lambda: print("frozen at exit:", gc.get_freeze_count() - at_start >= 500))
workers._start(PolicyParams(), None, list, True)
at_start = gc.get_freeze_count()
kept = [[n] for n in range(1000)]
"""


def test_a_worker_leaves_what_it_kept_to_the_exit_not_to_the_collector() -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _EXIT_PROBE], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == "frozen at exit: True", done.stderr

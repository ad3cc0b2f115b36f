"""Scan, plan and apply against the speed of the database itself (issue 11). Run by hand:

    python benchmarks/bench_scan.py                          # 10k, 100k and 400k endpoints
    python benchmarks/bench_scan.py --endpoints 2000 --tablefmt github
    python benchmarks/bench_scan.py --repeat 3 --apply-changes 2000

One embedded PostgreSQL (throwaway). Per size: a fresh database seeded with the
synthetic fleet (migrate.sandbox.synth, COPY via migrate.sandbox.seed), VACUUM
ANALYZE, one untimed warm-up COPY, then each measurement on that same database, so every
column reads the same warm rows. With ``--repeat N`` the read-only measurements
run N times and the median is shown; apply writes, so it runs once, last.

Columns:

- ``endpoints``: endpoints seeded (about 85 % are vLLM).
- ``seed s``: writing the synthetic fleet (bundles and endpoints, COPY).
- ``COPY s``: the floor. ``COPY (SELECT ...) TO STDOUT`` of the rows the scan
  reads (``migrate.store.fleet.endpoint_query`` with no filter, compiled with
  literal binds: the same joined endpoint and bundle columns, WHERE and ORDER BY),
  every block read by psycopg in this process. The scan itself asks the server
  for the same columns as one JSON text a row (``fleet.stream_rows``); the floor
  stays the plain columns, what anyone would copy.
- ``COPY MiB``: how much text that COPY moved.
- ``naive SQL s``: what an on-call engineer would type instead: the names of
  endpoints whose current bundle's command contains ``--enforce-eager`` (a LIKE
  on the text of the array), all rows fetched. Cheaper than the floor because it
  moves names only, and wrong: it cannot tell an injected flag from a requested one.
- ``scan s``: ``bundle-migrate scan --format json`` in a child process, stdout to
  /dev/null; wall time, interpreter start-up included.
- ``scan/COPY``: scan s over COPY s: the price of parsing every command,
  deciding and reporting, on top of reading the rows.
- ``scan RSS MiB``: the scan process's own peak RSS (its ``VmHWM`` as it exits;
  ``wait4``'s ``ru_maxrss`` where there is no /proc). Not ``ru_maxrss`` on Linux:
  the kernel folds into it the high-water mark of the process that spawned it
  (this benchmark, which has held the naive query's rows: 111 MiB at 400,000
  endpoints) and those of the worker processes (``--jobs``, about 46 MiB each).
  It should sit near the floor RSS printed under the table whatever the size: the
  scan streams (server-side cursor, streamed report) instead of holding the fleet.
- ``plan s``, ``plan/COPY``, ``plan RSS MiB``: the same for ``bundle-migrate plan
  --format json --out FILE`` (the plan goes to a temporary directory);
  ``plan file MiB``: the size of that file.
- ``apply changes``, ``apply changes/s``: ``bundle-migrate apply PLAN --execute
  --no-redeploy --parallel 4 --format json`` (database writes only: new bundle
  row, endpoint repointed, journal row, one transaction each). The plan is made
  with ``--stages 1,N`` (N = ``--apply-changes``): stage 1, the one-endpoint
  canary, is applied first, untimed; the timed run applies stage 2, the next
  N - 1 changes (fewer on a small fleet). Changes counted from the run's JSON
  document (outcome ``applied``); the rate includes the child's start-up. A plan
  over the size apply reads (``migrate.cli.planfile.PLAN_LIMIT``) cannot be
  applied: then apply works from ``plan --name '*0'`` (the tenth of the fleet
  whose names end in 0; ``'*00'`` ... for bigger fleets), said under the table.

Under the table: the floor (``python -m migrate --version``: the interpreter and
the tool's imports), the machine (CPUs, model, load average) and the date. The
machine is shared with whatever else runs on it; read the load average.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import sqlalchemy as sa
from tabulate import tabulate

from migrate.cli.planfile import PLAN_LIMIT
from migrate.sandbox.embedded import EmbeddedServer, start_embedded, to_libpq_url
from migrate.sandbox.seed import seed_fleet
from migrate.sandbox.synth import random_fleet
from migrate.store.connection import URL_ENV
from migrate.store.ddl import DEFAULT_SCHEMA, create_model_engine_tables
from migrate.store.fleet import Filters, endpoint_query

DEFAULT_SIZES = (10_000, 100_000, 400_000)
# ru_maxrss is KiB on Linux, bytes on macOS.
_RSS_UNIT = 1 if sys.platform == "darwin" else 1024
# Every setting of the tool comes from the command line here: no API URL (apply
# must not redeploy), no plan key, no parallelism or settle from the caller's shell.
_TOOL_ENV_PREFIX = "BUNDLE_MIGRATE_"
# The tool as `python -m migrate`, reporting its own peak RSS as it exits (see run_child).
_PEAK_FILE_ENV = "BENCH_PEAK_RSS_FILE"
_PEAK_PROBE = f"""
import atexit, os, runpy, sys
def report():
    try:
        with open("/proc/self/status") as status, open(os.environ["{_PEAK_FILE_ENV}"], "w") as out:
            out.write(next(line.split()[1] for line in status if line.startswith("VmHWM:")))
    except (OSError, KeyError, StopIteration):
        pass
atexit.register(report)
runpy.run_module("migrate", run_name="__main__", alter_sys=True)
"""
_TOOL = [sys.executable, "-c", _PEAK_PROBE]


def naive_query(schema: str) -> str:
    return (
        f"SELECT e.name FROM {schema}.endpoints e "
        f"JOIN {schema}.bundles b ON b.id = e.current_bundle_id "
        "WHERE b.runnable_image_command::text LIKE '%--enforce-eager%'"
    )


@dataclass
class Child:
    """One finished child process."""

    wall_s: float
    peak_rss_mib: float
    status: int
    stderr: str


@dataclass
class Result:
    endpoints: int
    seed_s: float
    copy_s: float
    copy_mib: float
    naive_s: float
    naive_rows: int
    scan: Child
    plan: Child
    plan_mib: float
    apply: Child | None
    apply_changes: int
    apply_note: str

    def failures(self) -> list[str]:
        """What went wrong. A plan refused for being over apply's limit is a result (the
        table says so, and apply works from a bounded plan), not a failure."""
        children = {"scan": self.scan, "plan": self.plan, "apply": self.apply}
        return [
            f"{self.endpoints:,} {name}: exit {c.status}: {c.stderr.strip()[-2000:]}"
            for name, c in children.items()
            if c is not None and c.status != 0 and not (name == "plan" and plan_too_big(c))
        ]


def plan_too_big(plan: Child) -> bool:
    """Whether plan refused to write a file larger than apply reads (exit 1, no file)."""
    return plan.status != 0 and "the most apply reads" in plan.stderr


def run_child(argv: Sequence[str], env: dict[str, str], stdout: Path | None = None) -> Child:
    """Wall seconds, peak RSS and exit status of one child process, measured on their own.

    The peak is what the child's own memory reached after it started (VmHWM, which
    _PEAK_PROBE writes as it exits): wait4's ru_maxrss on Linux also holds this
    process's high-water mark (recorded when the child replaces its image) and
    those of the child's own children (the scan's workers).
    """
    with (
        tempfile.TemporaryFile("w+") as err,
        open(stdout or os.devnull, "wb") as out,
        tempfile.NamedTemporaryFile("r", prefix="bench-peak-") as peak,
    ):
        started = time.perf_counter()
        proc = subprocess.Popen(
            list(argv),
            env={**env, _PEAK_FILE_ENV: peak.name},
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )
        # wait4 reports this child's rusage, not the maximum over every child so far.
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        reported = peak.read().strip()
        peak_mib = (
            int(reported) / 1024 if reported.isdigit() else usage.ru_maxrss * _RSS_UNIT / 2**20
        )
        return Child(wall, peak_mib, proc.returncode, err.read())


def seed_database(server: EmbeddedServer, n: int, seed: int, version: str) -> tuple[str, float]:
    """A fresh database with ``n`` synthetic endpoints, analyzed: (SQLAlchemy URL, seed seconds)."""
    name = f"bench_{n}"
    with psycopg.connect(server.libpq_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    url = server.url_for(name)
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            create_model_engine_tables(conn, version)
    finally:
        engine.dispose()
    stats = seed_fleet(url, random_fleet(n, seed, version), schema_version=version)
    with psycopg.connect(to_libpq_url(url), autocommit=True) as conn:
        # VACUUM too: hint bits and the visibility map set now, and no autovacuum
        # of the freshly loaded tables running under the timings.
        conn.execute("VACUUM (ANALYZE)")
    return url, stats.seconds


def scan_copy_sql(url: str, schema: str) -> str:
    """``COPY (the scan's own SELECT) TO STDOUT``, binds rendered as literals."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            query = endpoint_query(conn, schema, Filters())
            select = query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
    finally:
        engine.dispose()
    # The psycopg dialect doubles % for its own placeholders; COPY is sent without any.
    return f"COPY ({str(select).replace('%%', '%')}) TO STDOUT"


def time_copy(libpq_url: str, copy_sql: str) -> tuple[float, int]:
    """Seconds and bytes of one COPY read to the end, connection included."""
    started = time.perf_counter()
    size = 0
    with psycopg.connect(libpq_url) as conn, conn.cursor() as cur:
        with cur.copy(copy_sql) as copy:
            for block in copy:
                size += len(block)
    return time.perf_counter() - started, size


def time_naive(libpq_url: str, schema: str) -> tuple[float, int]:
    """Seconds and rows of the naive query, every row fetched, connection included."""
    started = time.perf_counter()
    with psycopg.connect(libpq_url) as conn:
        rows = conn.execute(naive_query(schema)).fetchall()
    return time.perf_counter() - started, len(rows)


def median_child(runs: list[Child]) -> Child:
    """The run with the median wall time (the upper one of an even count)."""
    failed = [c for c in runs if c.status != 0]
    if failed:
        return failed[0]
    return sorted(runs, key=lambda c: c.wall_s)[len(runs) // 2]


def repeat(times: int, measure: Callable[[], tuple[float, int]]) -> tuple[float, int]:
    runs = [measure() for _ in range(times)]
    return statistics.median(s for s, _ in runs), runs[-1][1]


def count_applied(document_path: Path) -> int:
    try:
        document = json.loads(document_path.read_text())
    except (OSError, ValueError):
        return 0
    outcomes = document.get("summary", {}).get("outcomes", {})
    return int(outcomes.get("applied", 0))


def bench_size(
    server: EmbeddedServer, n: int, args: argparse.Namespace, base_env: dict[str, str]
) -> Result:
    def say(what: str) -> None:
        print(f"[{n:,}] {what} ...", file=sys.stderr, flush=True)

    say("seeding")
    url, seed_s = seed_database(server, n, args.seed, args.schema_version)
    libpq_url = to_libpq_url(url)
    env = {**base_env, URL_ENV: url}
    copy_sql = scan_copy_sql(url, args.schema)
    say("warm-up COPY")
    time_copy(libpq_url, copy_sql)

    say("COPY and naive SQL")
    copy_s, copy_bytes = repeat(args.repeat, lambda: time_copy(libpq_url, copy_sql))
    naive_s, naive_rows = repeat(args.repeat, lambda: time_naive(libpq_url, args.schema))

    say("scan")
    scan_argv = [*_TOOL, "scan", "--schema", args.schema, "--format", "json"]
    scan = median_child([run_child(scan_argv, env) for _ in range(args.repeat)])

    stages = ["--stages", f"1,{max(args.apply_changes, 2)}"]
    plan_argv = [*_TOOL, "plan", "--schema", args.schema, "--format", "json", *stages]
    apply: Child | None = None
    applied = 0
    apply_note = ""
    with tempfile.TemporaryDirectory(prefix="bench-plan-") as tmp:
        plan_path = Path(tmp) / "plan.json"
        say("plan")
        plan_runs = [
            run_child([*plan_argv, "--out", str(plan_path)], env) for _ in range(args.repeat)
        ]
        plan = median_child(plan_runs)
        plan_mib = plan_path.stat().st_size / 2**20 if plan_path.exists() else 0.0
        too_big = plan_too_big(plan)
        if (plan.status == 0 or too_big) and args.apply_changes > 0:
            if too_big or plan_mib * 2**20 > PLAN_LIMIT:
                # apply refuses to read a plan this big: apply from a plan of the
                # endpoints whose name ends in 0 (a tenth of the fleet), 00, ...
                glob = "*" + "0" * max(1, int(math.log10(max(n / 4 / args.apply_changes, 1))))
                size = "over" if too_big else f"{plan_mib:.0f} MiB,"
                apply_note = (
                    f"at {n:,} the plan is {size} apply's {PLAN_LIMIT / 2**20:.0f} MiB limit"
                    f"{' (plan refused to write it: exit 1)' if too_big else ''}; "
                    f"applied from `plan --name '{glob}'`."
                )
                say(f"plan --name '{glob}' for apply (the full plan is {size} the limit)")
                plan_path = Path(tmp) / "plan-bounded.json"
                bounded = run_child([*plan_argv, "--name", glob, "--out", str(plan_path)], env)
                if bounded.status != 0:
                    apply = bounded
            if apply is None:
                apply, applied = apply_two_stages(plan_path, args, env, say)

    with psycopg.connect(server.libpq_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "bench_{n}"')
    return Result(
        n,
        seed_s,
        copy_s,
        copy_bytes / 2**20,
        naive_s,
        naive_rows,
        scan,
        plan,
        plan_mib,
        apply,
        applied,
        apply_note,
    )


def apply_two_stages(
    plan_path: Path, args: argparse.Namespace, env: dict[str, str], say: Callable[[str], None]
) -> tuple[Child, int]:
    """Apply the canary (untimed), then stage 2 (timed): (stage 2's run, changes it applied)."""
    apply_argv = [
        *_TOOL, "apply", str(plan_path), "--schema", args.schema, "--execute", "--no-redeploy",
        "--parallel", str(args.parallel), "--format", "json",
    ]  # fmt: skip
    say("apply: the canary (stage 1, untimed)")
    canary = run_child([*apply_argv, "--stage", "1"], env)
    if canary.status != 0:
        return canary, 0
    say("apply: stage 2")
    document = plan_path.with_name("apply.json")
    stage2 = run_child([*apply_argv, "--stage", "2"], env, stdout=document)
    return stage2, count_applied(document)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def table(results: list[Result], tablefmt: str) -> str:
    def ratio(part: float, whole: float) -> str:
        return f"{part / whole:.1f}x" if whole > 0 else "-"

    def mark(child: Child | None) -> str:
        return "" if child is None or child.status == 0 else f" (exit {child.status})"

    rows = []
    for r in results:
        apply_s = r.apply.wall_s if r.apply is not None else 0.0
        rows.append(
            [
                f"{r.endpoints:,}",
                f"{r.seed_s:.1f}",
                f"{r.copy_s:.2f}",
                f"{r.copy_mib:.0f}",
                f"{r.naive_s:.2f}",
                f"{r.scan.wall_s:.2f}{mark(r.scan)}",
                ratio(r.scan.wall_s, r.copy_s),
                f"{r.scan.peak_rss_mib:.0f}",
                f"{r.plan.wall_s:.2f}{mark(r.plan)}",
                ratio(r.plan.wall_s, r.copy_s),
                f"{r.plan.peak_rss_mib:.0f}",
                f"{r.plan_mib:.0f}",
                f"{r.apply_changes:,}{mark(r.apply)}" if r.apply is not None else "-",
                f"{r.apply_changes / apply_s:,.0f}" if r.apply_changes and apply_s else "-",
            ]
        )
    headers = [
        "endpoints",
        "seed s",
        "COPY s",
        "COPY MiB",
        "naive SQL s",
        "scan s",
        "scan/COPY",
        "scan RSS MiB",
        "plan s",
        "plan/COPY",
        "plan RSS MiB",
        "plan file MiB",
        "apply changes",
        "apply changes/s",
    ]
    return tabulate(rows, headers, tablefmt=tablefmt, colalign=("right",) * len(headers))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--endpoints", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--schema-version", choices=("2024", "2026"), default="2026")
    parser.add_argument("--schema", default=DEFAULT_SCHEMA)
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of each read-only measurement (median shown)"
    )
    parser.add_argument(
        "--apply-changes",
        type=int,
        default=5000,
        help="changes apply writes per size: the canary plus N-1 timed (0: no apply)",
    )
    parser.add_argument("--parallel", type=int, default=4, help="apply --parallel")
    parser.add_argument(
        "--tablefmt", default="simple", help="tabulate format, e.g. github for Markdown"
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(_TOOL_ENV_PREFIX)}
    started = datetime.now(UTC)
    results: list[Result] = []
    with start_embedded() as server:
        floor = run_child([*_TOOL, "--version"], base_env)
        for n in args.endpoints:
            results.append(bench_size(server, n, args, base_env))
            # So far, for whoever watches a long run (or has to stop it).
            print(table(results, "simple"), file=sys.stderr, flush=True)
    print(table(results, args.tablefmt))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print()
    print(
        f"Floor (`python -m migrate --version`): {floor.wall_s:.2f} s, "
        f"{floor.peak_rss_mib:.0f} MiB peak RSS. naive SQL rows: "
        + ", ".join(f"{r.naive_rows:,}" for r in results)
        + "."
    )
    print(
        f"Machine: {os.cpu_count()} CPUs, {cpu_model()}, load average {load} at the end; "
        f"{platform.python_implementation()} {platform.python_version()}; "
        f"run started {started:%Y-%m-%d %H:%M} UTC, "
        f"took {(datetime.now(UTC) - started).total_seconds() / 60:.1f} min."
    )
    for r in results:
        if r.apply_note:
            print(r.apply_note)
    failures = [f for r in results for f in r.failures()]
    for failure in failures:
        print(failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

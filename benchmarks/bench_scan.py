"""Scan throughput and memory against seeded sandbox fleets of growing size. Run by hand:

    python benchmarks/bench_scan.py --endpoints 1000 10000 100000

One embedded PostgreSQL (throwaway); per size a fresh database seeded with the
synthetic fleet (migrate.sandbox.synth, COPY via migrate.sandbox.seed), then ``bundle-migrate
scan`` in a child process whose wall time and peak RSS (``wait4``'s ru_maxrss)
are measured on their own. A flat RSS column is the evidence that the scan
streams (server-side cursor, streamed report) instead of holding the fleet.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass

import psycopg
import sqlalchemy as sa
from tabulate import tabulate

from migrate.sandbox.embedded import EmbeddedServer, start_embedded
from migrate.sandbox.seed import seed_fleet
from migrate.sandbox.synth import random_fleet
from migrate.store.connection import URL_ENV
from migrate.store.ddl import create_model_engine_tables

# ru_maxrss is KiB on Linux, bytes on macOS.
_RSS_UNIT = 1 if sys.platform == "darwin" else 1024


@dataclass
class Result:
    endpoints: int
    seed_s: float
    scan_s: float
    peak_rss_mib: float
    exit_status: int

    @property
    def per_second(self) -> float:
        return self.endpoints / self.scan_s if self.scan_s > 0 else 0.0


def measure(argv: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Wall seconds, peak RSS (MiB) and exit status of one child process."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL)
    # wait4 reports this child's own peak, not the maximum over every child so far.
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss * _RSS_UNIT / 2**20, proc.returncode


def seed_database(server: EmbeddedServer, n: int, seed: int, version: str) -> tuple[str, float]:
    name = f"bench_{n}"
    with psycopg.connect(server.libpq_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    url = server.url_for(name)
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            create_model_engine_tables(conn, version)
        stats = seed_fleet(url, random_fleet(n, seed, version), schema_version=version)
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(
                sa.text("ANALYZE hosted_model_inference.bundles, hosted_model_inference.endpoints")
            )
    finally:
        engine.dispose()
    return url, stats.seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--endpoints", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--schema-version", choices=("2024", "2026"), default="2026")
    parser.add_argument(
        "--format", choices=("json", "csv", "table", "markdown"), default="json", dest="fmt"
    )
    args = parser.parse_args()

    results: list[Result] = []
    with start_embedded() as server:
        base_env = {k: v for k, v in os.environ.items() if k != URL_ENV}
        # The interpreter plus the tool's imports: the floor every scan's RSS sits on.
        _, floor_mib, _ = measure([sys.executable, "-m", "migrate", "--version"], base_env)
        for n in args.endpoints:
            print(f"seeding {n:,} endpoints ...", file=sys.stderr, flush=True)
            url, seed_s = seed_database(server, n, args.seed, args.schema_version)
            print(f"scanning {n:,} endpoints ...", file=sys.stderr, flush=True)
            argv = [sys.executable, "-m", "migrate", "scan", "--format", args.fmt]
            wall, rss, status = measure(argv, {**base_env, URL_ENV: url})
            results.append(Result(n, seed_s, wall, rss, status))
    rows = [
        [
            f"{r.endpoints:,}",
            f"{r.seed_s:.1f}",
            f"{r.endpoints / r.seed_s:,.0f}" if r.seed_s else "-",
            f"{r.scan_s:.2f}",
            f"{r.per_second:,.0f}",
            f"{r.peak_rss_mib:.1f}",
            r.exit_status,
        ]
        for r in results
    ]
    headers = [
        "endpoints",
        "seed s",
        "seeded/s",
        "scan s",
        "scanned/s",
        "scan peak RSS MiB",
        "exit",
    ]
    print(tabulate(rows, headers, colalign=("right",) * len(headers)))
    print(f"(scan --format {args.fmt}; RSS of `bundle-migrate --version`: {floor_mib:.1f} MiB)")
    return 0 if all(r.exit_status == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())

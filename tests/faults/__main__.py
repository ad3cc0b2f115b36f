"""The whole fault matrix against throwaway embedded PostgreSQL clusters; prints its figures.

    python -m tests.faults                       # 2,000 endpoints, 30 kills (a few minutes)
    python -m tests.faults --endpoints 500 --kills 10 --drops 5

Two clusters are started (the identity cases apply one's plan to the other),
and every scenario gets a freshly seeded database of its own. Exit status 0
when every must-be-zero figure is zero, 1 otherwise.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

import sqlalchemy as sa

from migrate.sandbox.embedded import EmbeddedServer, start_embedded
from migrate.store.ddl import DEFAULT_SCHEMA
from tests.faults import crashes, edits, inputs
from tests.faults.matrix import Figures, seeded_database
from tests.faults.state import Sandbox

PARTS = ("inputs", "edits", "kills", "concurrent", "drops")


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _sandbox(server: EmbeddedServer, name: str, n: int, seed: int, tmp: Path) -> Sandbox:
    say(f"seeding {name} ({n:,} endpoints) ...")
    url = seeded_database(server.libpq_url, server.url_for, name, n, seed)
    where = tmp / name
    where.mkdir()
    return Sandbox(url, sa.create_engine(url), DEFAULT_SCHEMA, where)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults", description=__doc__)
    parser.add_argument("--endpoints", type=int, default=2000, help="per sandbox (default 2000)")
    parser.add_argument("--kills", type=int, default=30, help="SIGKILLs (default 30)")
    parser.add_argument("--concurrent", type=int, default=3, help="rounds of 3 rivals (3)")
    parser.add_argument("--drops", type=int, default=10, help="connections dropped (10)")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument(
        "--only",
        action="append",
        choices=PARTS,
        help="run only this part (repeatable; default: all)",
    )
    args = parser.parse_args()
    parts = set(args.only or PARTS)
    rng = random.Random(args.seed)
    figures = Figures(endpoints=args.endpoints)
    # Short and under /tmp: Unix socket paths must stay under about 107 bytes.
    with (
        tempfile.TemporaryDirectory(prefix="bm-faults-", dir="/tmp") as scratch,
        start_embedded() as one,
        start_embedded() as two,
    ):
        tmp = Path(scratch)
        n, seed = args.endpoints, args.seed

        def sandbox(name: str, server: EmbeddedServer = one) -> Sandbox:
            return _sandbox(server, name, n, seed, tmp)

        if "inputs" in parts:
            box = sandbox("faults_inputs")
            plan, _ = crashes.make_plan(box, "valid.json")
            target = inputs.Target(box.url, box.tmp, plan)
            target.prepare()
            say(f"hostile inputs: {len(inputs.CASES)} cases, with each log format ...")
            figures.inputs = inputs.run_cases(inputs.CASES, target)
        if "edits" in parts:
            say("edited and foreign plans ...")
            edited, notes = edits.edited_plans(sandbox("faults_edits"))
            foreign, more = edits.other_cluster(
                sandbox("faults_cluster_a"), sandbox("faults_cluster_b", two)
            )
            for name in ("tried", "refused", "wrong_writes", "tracebacks"):
                setattr(edited, name, getattr(edited, name) + getattr(foreign, name))
            figures.edits, figures.notes = edited, notes + more
        if "kills" in parts:
            say(f"{args.kills} kills ...")
            figures.kills = crashes.kills(sandbox("faults_kills"), args.kills, rng)
        if "concurrent" in parts:
            say("concurrent runs ...")
            figures.concurrent = crashes.concurrent_runs(
                sandbox("faults_concurrent"), args.concurrent
            )
        if "drops" in parts:
            say("dropped connections ...")
            figures.drops = crashes.dropped_connections(sandbox("faults_drops"), args.drops, rng)
    print(figures.render())
    return 0 if not figures.problems() else 1


if __name__ == "__main__":
    sys.exit(main())

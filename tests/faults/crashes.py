"""Kills, concurrent runs and dropped connections during real apply and rollback runs.

Each scenario drives the real program (tests.faults.child) against a sandbox
and, after every fault, checks that no endpoint is half-changed
(tests.faults.state). The counts are the figures the matrix prints.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from tests.faults import child
from tests.faults.state import Sandbox, check, lock_holder_pid, snapshot, wait_lock_free

LOCK_BUSY = "another bundle-migrate apply or rollback is running"


@dataclass
class Tally:
    attempted: int = 0
    mid_run: int = 0  # kills after the killed run had journaled a change of its own
    survived: int = 0  # the database was whole afterwards
    refused: int = 0  # for concurrent runs: turned away by the lock
    half_changed: int = 0
    orphan_bundles: int = 0
    tracebacks: int = 0
    notes: list[str] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        for name in (
            "attempted",
            "mid_run",
            "survived",
            "refused",
            "half_changed",
            "orphan_bundles",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.tracebacks += other.tracebacks
        self.notes += other.notes


def env_for(sandbox: Sandbox) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUNDLE_MIGRATE_")}
    env["BUNDLE_MIGRATE_DATABASE_URL"] = sandbox.url
    return env


def make_plan(sandbox: Sandbox, name: str, *extra: str) -> tuple[Path, int]:
    """A plan of the fleet as it is now, made by the program; its path and stage count."""
    path = Path(sandbox.tmp) / name
    made = child.run(["plan", "--out", str(path), *extra], env_for(sandbox))
    if made.exit_status not in (0, 2):
        raise RuntimeError(f"plan failed: {made.stderr}")
    return path, len(json.loads(path.read_text())["stages"])


def _settle(sandbox: Sandbox, tally: Tally, before: dict, what: str) -> None:
    """After a fault: the lock freed by the server, then the whole database checked."""
    if not wait_lock_free(sandbox):
        tally.notes.append(f"{what}: the lock was still held a minute after the kill")
    found = check(sandbox, before)
    tally.half_changed += len(found.half_changed)
    tally.orphan_bundles += len(found.orphan_bundles)
    if found.whole:
        tally.survived += 1
    else:
        tally.notes.append(
            f"{what}: half-changed {found.half_changed[:5]}, orphans {found.orphan_bundles[:5]}"
        )


def kills(sandbox: Sandbox, count: int, rng: random.Random, max_delay_s: float = 3.0) -> Tally:
    """SIGKILL apply and rollback runs at random moments, `count` times, checking after each.

    Apply goes stage by stage; a run that ends before its kill moves on (to the
    next stage, then to rolling the plan back, then to a new plan), so the
    kills land in every phase of the work.
    """
    tally = Tally()
    before = snapshot(sandbox)
    plan, stages = make_plan(sandbox, "kills-0.json")
    stage, rolling_back, plans, rounds = 1, False, 1, 0
    env = env_for(sandbox)
    while tally.attempted < count and rounds < count * 6:
        rounds += 1
        if rolling_back:
            args = ["rollback", "--plan", str(plan), "--execute"]
        else:
            args = [
                "apply",
                str(plan),
                "--execute",
                "--stage",
                str(stage),
                "--max-failures",
                "9999",
            ]
        journaled = journal_rows(sandbox)
        proc = child.start(args, env)
        time.sleep(rng.uniform(0.3, max_delay_s))
        killed = child.alive(proc)
        if killed:
            proc.send_signal(signal.SIGKILL)
            tally.attempted += 1
            tally.mid_run += journal_rows(sandbox) > journaled
        observed = child.finish(proc, args)
        tally.tracebacks += observed.traceback
        if killed:
            _settle(sandbox, tally, before, " ".join(args[:1] + args[2:]))
            continue
        # The run ended on its own: the next phase.
        if rolling_back:
            plan, stages = make_plan(sandbox, f"kills-{plans}.json")
            plans += 1
            stage, rolling_back = 1, False
        elif stage < stages:
            stage += 1
        else:
            rolling_back = True
    return tally


def journal_rows(sandbox: Sandbox) -> int:
    with sandbox.engine.connect() as conn:
        if conn.execute(sa.text("SELECT to_regclass('bundle_migration.changes')")).scalar() is None:
            return 0
        return conn.execute(sa.text("SELECT count(*) FROM bundle_migration.changes")).scalar_one()


def concurrent_runs(sandbox: Sandbox, rounds: int) -> Tally:
    """A second apply, a rollback and a reconcile --apply while an apply holds the lock.

    The holder is paused by its pause file with the lock taken, so the others
    meet it for certain; each must be turned away, and the holder then finishes.
    """
    tally = Tally()
    env = env_for(sandbox)
    before = snapshot(sandbox)
    for n in range(rounds):
        plan, _ = make_plan(sandbox, f"concurrent-{n}.json")
        pause = Path(sandbox.tmp) / f"PAUSE-{n}"
        pause.touch()
        holder = child.start(
            ["apply", str(plan), "--execute", "--all-stages", "--pause-file", str(pause)], env
        )
        deadline = time.monotonic() + 60
        while lock_holder_pid(sandbox) is None and time.monotonic() < deadline:
            if not child.alive(holder):
                break
            time.sleep(0.05)
        if lock_holder_pid(sandbox) is None:
            pause.unlink()
            observed = child.finish(holder, ["apply"])
            tally.notes.append(f"round {n}: nothing to apply, no lock to meet: {observed.stdout}")
            continue
        others = [
            ["apply", str(plan), "--execute", "--all-stages"],
            ["rollback", "--plan", str(plan), "--execute"],
            ["reconcile", "--apply", "--max-changes", "1", "--include-large"],
        ]
        procs = [(args, child.start(args, env)) for args in others]
        for args, proc in procs:
            seen = child.finish(proc, args)
            tally.tracebacks += seen.traceback
            if "nothing eligible to change" in seen.stdout:
                continue  # reconcile found nothing to write, so it never needed the lock
            tally.attempted += 1
            turned_away = (
                (seen.exit_status == 1 and LOCK_BUSY in seen.stderr)
                if args[0] != "reconcile"
                else "apply skipped" in seen.stdout
            )
            if turned_away:
                tally.refused += 1
            else:
                tally.notes.append(f"round {n}: {args[0]} was not refused: {seen.stderr[-300:]}")
        pause.unlink()
        done = child.finish(holder, ["apply"], timeout_s=300)
        tally.tracebacks += done.traceback
        _settle(sandbox, tally, before, f"round {n}")
    return tally


def dropped_connections(
    sandbox: Sandbox, drops: int, rng: random.Random, per_minute: int = 1200
) -> Tally:
    """Terminate the running apply's endpoint connections, then its lock's session.

    Counted per terminated backend. Losing an endpoint connection fails (or
    retries) that endpoint; losing the lock's session must stop the run before
    its next write. Either way nothing may be half-changed.
    """
    tally = Tally()
    env = env_for(sandbox)
    before = snapshot(sandbox)
    # One stage of every regular endpoint: a stage gate must not end the run early.
    plan, _ = make_plan(sandbox, "drops.json", "--stages", "100%")
    args = ["apply", str(plan), "--execute", "--stage", "1", "--max-failures", "9999"]
    args += ["--max-per-minute", str(per_minute)]
    proc = child.start(args, env)
    deadline = time.monotonic() + 120
    while tally.attempted < drops and child.alive(proc) and time.monotonic() < deadline:
        time.sleep(rng.uniform(0.1, 0.5))
        lock_pid = lock_holder_pid(sandbox)
        victims = _tool_backends(sandbox, exclude=lock_pid)
        last = tally.attempted == drops - 1
        target = lock_pid if last else (rng.choice(victims) if victims else None)
        if target is None or not _terminate(sandbox, target):
            continue
        tally.attempted += 1
    observed = child.finish(proc, args, timeout_s=300)
    tally.tracebacks += observed.traceback
    _settle(sandbox, tally, before, "dropped connections")
    # survived counts settled runs; report it per drop, as the matrix prints drops.
    tally.survived = tally.attempted if tally.survived else 0
    return tally


def _tool_backends(sandbox: Sandbox, exclude: int | None) -> list[int]:
    with sandbox.engine.connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = 'bundle-migrate' "
                    "AND datname = current_database() AND pid <> pg_backend_pid() "
                    "AND pid IS DISTINCT FROM :x"
                ),
                {"x": exclude},
            ).scalars()
        )


def _terminate(sandbox: Sandbox, pid: int) -> bool:
    with sandbox.engine.connect() as conn:
        return bool(conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar())

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
import subprocess
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
            args = ["rollback", "--plan", str(plan), "--execute", "--no-redeploy"]
        else:
            args = [
                "apply",
                str(plan),
                "--execute",
                "--no-redeploy",
                "--stage",
                str(stage),
                "--ignore-incomplete-stages",  # not-READY endpoints hold a stage for good
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
            [
                "apply",
                str(plan),
                "--execute",
                "--no-redeploy",
                "--all-stages",
                "--pause-file",
                str(pause),
            ],
            env,
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
            ["apply", str(plan), "--execute", "--no-redeploy", "--all-stages"],
            ["rollback", "--plan", str(plan), "--execute", "--no-redeploy"],
            ["reconcile", "--apply", "--no-redeploy", "--max-changes", "1", "--include-large"],
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
    """Terminate a running apply's sessions: its endpoint connections, and its lock's.

    Losing the endpoint connection mid-transaction fails that endpoint alone;
    losing it between transactions (reading the journal) stops the run with one
    line; losing the lock's session must stop it before its next write. A run
    that stopped is run again, as an operator would, until `drops` sessions
    have been terminated. After each run the database must be whole: `survived`
    counts the drops of runs that left it so, `refused` the runs a drop stopped.
    """
    tally = Tally()
    env = env_for(sandbox)
    before = snapshot(sandbox)
    # One stage of every regular endpoint: a stage gate must not end the run early.
    plan, _ = make_plan(sandbox, "drops.json", "--stages", "100%")
    args = ["apply", str(plan), "--execute", "--no-redeploy", "--stage", "1"]
    args += ["--max-failures", "9999", "--max-per-minute", str(per_minute)]
    for _ in range(drops * 3):
        if tally.attempted >= drops:
            break
        proc, made = _drop_during(sandbox, child.start(args, env), drops - tally.attempted, rng)
        observed = child.finish(proc, args, timeout_s=300)
        tally.tracebacks += observed.traceback
        tally.attempted += made
        tally.refused += observed.exit_status == 1 and made > 0
        whole = check(sandbox, before)
        tally.half_changed += len(whole.half_changed)
        tally.orphan_bundles += len(whole.orphan_bundles)
        tally.survived += made if whole.whole else 0
        if observed.exit_status == 0 and not made:
            break  # the plan is done and nothing was left to interrupt
        wait_lock_free(sandbox)
    return tally


def _drop_during(
    sandbox: Sandbox, proc: subprocess.Popen[bytes], most: int, rng: random.Random
) -> tuple[subprocess.Popen[bytes], int]:
    """Terminate up to `most` of the run's sessions while it runs, the lock's last."""
    done = 0
    deadline = time.monotonic() + 120
    while done < most and child.alive(proc) and time.monotonic() < deadline:
        time.sleep(rng.uniform(0.1, 0.5))
        lock_pid = lock_holder_pid(sandbox)
        if lock_pid is None:
            continue  # not started yet: any session could be the lock's, about to lock
        victims = _tool_backends(sandbox, exclude=lock_pid)
        target = lock_pid if done == most - 1 else (rng.choice(victims) if victims else None)
        if target is not None and _terminate(sandbox, target):
            done += 1
    return proc, done


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

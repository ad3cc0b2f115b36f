"""The figures of a fault-matrix run, and the verdict on them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
import sqlalchemy as sa

from migrate.sandbox.seed import seed_fleet
from migrate.sandbox.synth import random_fleet
from migrate.store.ddl import DEFAULT_SCHEMA, create_model_engine_tables
from tests.faults.crashes import Tally
from tests.faults.edits import EditFigures
from tests.faults.inputs import Judged
from tests.faults.state import Sandbox


@dataclass
class Figures:
    endpoints: int = 0
    kills: Tally = field(default_factory=Tally)
    concurrent: Tally = field(default_factory=Tally)
    drops: Tally = field(default_factory=Tally)
    inputs: list[Judged] = field(default_factory=list)
    edits: EditFigures = field(default_factory=EditFigures)
    notes: list[str] = field(default_factory=list)

    @property
    def tracebacks(self) -> int:
        return (
            sum(j.traceback for j in self.inputs)
            + self.kills.tracebacks
            + self.concurrent.tracebacks
            + self.drops.tracebacks
            + self.edits.tracebacks
        )

    @property
    def unbounded(self) -> int:
        return sum(j.unbounded for j in self.inputs)

    @property
    def leaks(self) -> int:
        return sum(len(j.leaked) for j in self.inputs)

    @property
    def unclean(self) -> list[Judged]:
        return [j for j in self.inputs if not j.clean]

    def problems(self) -> list[str]:
        """Every figure that must be zero and is not (empty: the matrix passed)."""
        bad = {
            "half-changed endpoints": self.kills.half_changed
            + self.concurrent.half_changed
            + self.drops.half_changed,
            "orphan bundles": self.kills.orphan_bundles
            + self.concurrent.orphan_bundles
            + self.drops.orphan_bundles,
            "kills not survived": self.kills.attempted - self.kills.survived,
            "concurrent runs not refused": self.concurrent.attempted - self.concurrent.refused,
            "dropped connections leaving damage": self.drops.attempted - self.drops.survived,
            "inputs without a clean error": len(self.unclean),
            "tracebacks": self.tracebacks,
            "unbounded reads": self.unbounded,
            "secrets leaked": self.leaks,
            "edited plans not refused": self.edits.tried - self.edits.refused,
            "wrong writes": self.edits.wrong_writes,
        }
        return [f"{name}: {n}" for name, n in bad.items() if n]

    def render(self) -> str:
        k, c, d, e = self.kills, self.concurrent, self.drops, self.edits
        clean = len(self.inputs) - len(self.unclean)
        worst = max((j.observed.peak_rss_mib for j in self.inputs), default=0.0)
        slowest = max((j.observed.seconds for j in self.inputs), default=0.0)
        lines = [
            f"fault matrix over {self.endpoints:,} endpoints per sandbox",
            f"  kills (SIGKILL in apply and rollback)  attempted {k.attempted} ({k.mid_run} "
            f"mid-run), survived {k.survived}; half-changed endpoints {k.half_changed}, "
            f"orphan bundles {k.orphan_bundles}",
            f"  concurrent runs                        attempted {c.attempted}, refused "
            f"{c.refused}; half-changed endpoints {c.half_changed}",
            f"  dropped connections                    attempted {d.attempted}, survived "
            f"{d.survived} (runs a drop stopped: {d.refused}); half-changed endpoints "
            f"{d.half_changed}",
            f"  hostile inputs (text and JSON log)     tried {len(self.inputs)}, clean errors "
            f"{clean}; slowest {slowest:.1f} s, peak RSS {worst:.0f} MiB",
            f"  edited and foreign plans               tried {e.tried}, refused {e.refused}; "
            f"wrong writes {e.wrong_writes}",
            f"  tracebacks {self.tracebacks}, unbounded reads {self.unbounded}, "
            f"secrets leaked {self.leaks}",
        ]
        for j in self.unclean:
            lines.append(
                f"  NOT CLEAN [{j.log_format}] {j.case.name}: exit {j.observed.exit_status}, "
                f"traceback {j.traceback}, unbounded {j.unbounded}, leaked {j.leaked}: "
                + " | ".join(j.observed.stderr.strip().splitlines()[-2:])[:300]
            )
        for note in k.notes + c.notes + d.notes + self.notes:
            lines.append(f"  note: {note}")
        problems = self.problems()
        lines.append("PASS: every must-be-zero figure is zero" if not problems else "FAIL: ")
        if problems:
            lines[-1] += "; ".join(problems)
        return "\n".join(lines)


SandboxFactory = Callable[[str], Sandbox]


def seeded_database(
    admin_url: str, url_for: Callable[[str], str], name: str, n: int, seed: int
) -> str:
    """A fresh database named `name` with a synthetic fleet of n endpoints; its URL."""
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    url = url_for(name)
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            create_model_engine_tables(conn, "2026", schema=DEFAULT_SCHEMA)
    finally:
        engine.dispose()
    seed_fleet(url, random_fleet(n, seed, "2026"), schema=DEFAULT_SCHEMA, schema_version="2026")
    return url

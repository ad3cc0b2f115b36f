"""`status` as tables that fit the terminal: recent runs, one run's endpoints, a plan's stages.

Narrow by default (what on-call reads first); `--wide` adds the columns that
name where and by whom.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from migrate.scan.tables import Column, render
from migrate.store import journal as jr

RUNS = (
    Column("run"),
    Column("kind"),
    Column("schema", wide_only=True),
    Column("status"),
    Column("started"),
    Column("finished", wide_only=True),
    Column("by", wide_only=True, wraps=True),
    Column("plan", wide_only=True),
    Column("outcomes", wraps=True, min_width=24),
)
CHANGES = (
    Column("stage", align="right"),
    Column("endpoint", fold_at=32),
    Column("outcome"),
    Column("deploy"),
    Column("bundle before", wide_only=True),
    Column("bundle after", wide_only=True),
    Column("reverted"),
    Column("detail", wraps=True, min_width=20),
)
STAGES = (
    Column("stage", align="right"),
    Column("name"),
    Column("endpoints", align="right"),
    Column("done", align="right"),
    Column("complete"),
    Column("outcomes", wraps=True, min_width=24),
)


def _when(value: datetime | None) -> str:
    return "-" if value is None else f"{value:%Y-%m-%d %H:%M:%S}"


def _counts(outcomes: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))


def render_status(doc: dict[str, Any], *, wide: bool = False, width: int | None = None) -> str:
    if "runs" in doc:
        if not doc["runs"]:
            return "no runs yet\n"
        rows = [
            [
                run["run_id"],
                run["kind"],
                run.get("schema") or "-",
                run["status"],
                _when(run["started_at"]),
                _when(run["finished_at"]),
                f"{run['operator']}@{run['host']}",
                (run["plan_digest"] or "-").removeprefix("sha256:")[:12],
                "\n".join(f"stage {s}: {_counts(o)}" for s, o in sorted(run["stages"].items()))
                or "-",
            ]
            for run in doc["runs"]
        ]
        return render(RUNS, rows, width=width, wide=wide)
    if "changes" in doc:
        run = doc["run"]
        head = (
            f"run {run['run_id']} ({run['kind']} on {jr.run_schema(run)}, {run['status']}), "
            f"started {_when(run['started_at'])} by {run['operator']}@{run['host']}\n"
        )
        rows = [
            [
                c["stage"],
                c["endpoint_name"],
                c["outcome"],
                c.get("deploy_state") or "-",
                c["bundle_before"],
                c["bundle_after"],
                "yes" if c["reverted_by"] else "",
                c["detail"] or "",
            ]
            for c in doc["changes"]
        ]
        return head + render(CHANGES, rows, width=width, wide=wide)
    rows = [
        [
            s["stage"],
            s["name"],
            s["endpoints"],
            s["done"],
            "yes" if s["complete"] else "no",
            _counts(s["outcomes"]),
        ]
        for s in doc["stages"]
    ]
    return f"plan {doc['plan']}\n" + render(STAGES, rows, width=width, wide=wide)

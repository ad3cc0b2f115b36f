"""The status tables: runs with their stages, one run's endpoints, a plan's progress."""

from __future__ import annotations

from typing import Any

from tabulate import tabulate

from migrate.store import journal as jr


def _when(value: Any) -> str:
    return "-" if value is None else f"{value:%Y-%m-%d %H:%M:%S}"


def _counts(outcomes: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))


def render_status(doc: dict[str, Any]) -> str:
    if "runs" in doc:
        if not doc["runs"]:
            return "no runs yet\n"
        rows = []
        for run in doc["runs"]:
            stages = "; ".join(f"stage {s}: {_counts(o)}" for s, o in sorted(run["stages"].items()))
            rows.append(
                [
                    run["run_id"],
                    run["kind"],
                    run.get("schema") or "-",
                    run["status"],
                    _when(run["started_at"]),
                    _when(run["finished_at"]),
                    f"{run['operator']}@{run['host']}",
                    (run["plan_digest"] or "-").removeprefix("sha256:")[:12],
                    stages or "-",
                ]
            )
        headers = [
            "run",
            "kind",
            "schema",
            "status",
            "started",
            "finished",
            "by",
            "plan",
            "outcomes",
        ]
        return tabulate(rows, headers) + "\n"
    if "changes" in doc:
        run = doc["run"]
        head = (
            f"run {run['run_id']} ({run['kind']} on {jr.run_schema(run)}, {run['status']}), "
            f"started {_when(run['started_at'])} "
            f"by {run['operator']}@{run['host']}\n"
        )
        rows = [
            [
                c["stage"],
                c["endpoint_name"],
                c["outcome"],
                c.get("deploy_state") or "-",
                c["bundle_before"] or "-",
                c["bundle_after"] or "-",
                "yes" if c["reverted_by"] else "",
                c["detail"] or "",
            ]
            for c in doc["changes"]
        ]
        headers = [
            "stage",
            "endpoint",
            "outcome",
            "deploy",
            "bundle before",
            "bundle after",
            "reverted",
            "detail",
        ]
        return head + tabulate(rows, headers) + "\n"
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
    return (
        f"plan {doc['plan']}\n"
        + tabulate(rows, ["stage", "name", "endpoints", "done", "complete", "outcomes"])
        + "\n"
    )

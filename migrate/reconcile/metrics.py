"""Prometheus text format for the node-exporter textfile collector.

Written atomically (migrate.store.files.writing: a temporary file beside the
target, renamed over it), so the collector never reads half a file; a device
or a pipe (/dev/stdout, to look) is written through, never replaced. A failed
run still writes the file: `last_run_success` 0 is what the alert fires on,
and `last_success_timestamp_seconds` is carried over from the previous file,
so "no successful reconcile for 2 hours" stays expressible in PromQL. That
file is read only if it is a regular file, and only its first MiB: a device
or a pipe holds no previous run.

Every sample carries the run's labels: `schema`, and `mode` (`check`, or
`apply` for `--apply`), so the read-only check and the converging job can
write files side by side in one textfile directory without clashing series.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from migrate.core.classify import ACTIONS
from migrate.core.flags import RISK_FLAGS
from migrate.reconcile.findings import KINDS, SEVERITY, Check
from migrate.store import files

PREFIX = "bundle_migrate_reconcile"
LAST_SUCCESS = f"{PREFIX}_last_success_timestamp_seconds"


@dataclass
class RunMetrics:
    started: float
    finished: float
    check: Check | None = None  # None: the run failed before it could count
    applied: int = 0
    apply_failures: int = 0
    apply_skipped: bool = False
    labels: dict[str, str] = field(default_factory=dict)


# The file is a few KiB; one far larger is not ours.
PREVIOUS_LIMIT = files.MIB


def previous_success(path: str | Path) -> float | None:
    """The last success time recorded in an earlier file, if there is a readable one."""
    try:
        text = files.read_text(path, what="metrics file", limit=PREVIOUS_LIMIT)
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == LAST_SUCCESS:
                    return float(sample.value)
    except (files.FileError, ValueError):
        pass  # no file yet, a device or pipe, or not ours: no success we know of
    return None


def registry_for(run: RunMetrics, last_success: float | None) -> CollectorRegistry:
    reg = CollectorRegistry()
    names = list(run.labels)

    def gauge(name: str, doc: str, *labels: str) -> Gauge:
        return Gauge(f"{PREFIX}_{name}", doc, [*names, *labels], registry=reg)

    def put(g: Gauge, value: float, *labels: str) -> None:
        values = (*run.labels.values(), *labels)
        (g.labels(*values) if values else g).set(value)

    success = run.check is not None
    put(gauge("last_run_timestamp_seconds", "When the last reconcile run ended."), run.finished)
    put(gauge("last_run_success", "1 if the last run completed its checks, else 0."), success)
    put(gauge("run_duration_seconds", "How long the last run took."), run.finished - run.started)
    if success:
        last_success = run.finished
    if last_success is not None:
        put(gauge("last_success_timestamp_seconds", "When a run last completed."), last_success)
    if run.check is None:
        return reg
    c = run.check
    actions = gauge("endpoints", "LLM endpoints by the action the policy would take.", "action")
    for action in ACTIONS:
        put(actions, c.summary.actions[action], action)
    flags = gauge("flagged_endpoints", "LLM endpoints carrying each flag.", "flag")
    for flag in sorted(set(RISK_FLAGS) | set(c.summary.flags)):
        put(flags, c.summary.flags[flag], flag)
    findings = gauge("findings", "Findings by kind; severity drift alerts.", "kind", "severity")
    counts = c.counts()
    for kind in KINDS:
        put(findings, counts[kind], kind, SEVERITY[kind])
    put(gauge("drift", "Drift findings (0 is clean; the exit status is 2 otherwise)."), c.drift)
    put(gauge("journal_present", "1 if the bundle_migration journal exists."), c.journal)
    put(gauge("applied_changes", "Endpoints changed by this run's --apply."), run.applied)
    put(
        gauge("apply_failures", "Endpoints this run's --apply failed to change (exit 1)."),
        run.apply_failures,
    )
    put(gauge("apply_skipped", "1 if --apply could not take the lock this run."), run.apply_skipped)
    return reg


def write(path: str | Path, run: RunMetrics) -> None:
    """Write the run's metrics to `path`; FileError if it cannot be written."""
    registry = registry_for(run, previous_success(path))
    with files.writing(path, what="metrics file") as out:
        out.write(generate_latest(registry).decode("utf-8"))

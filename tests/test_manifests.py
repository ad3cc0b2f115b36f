"""The Kubernetes manifests in manifests/: valid against Kubernetes' schemas, safe, and runnable.

Validated offline (kubernetes-validate ships the API's JSON schemas); the
PrometheusRule, a custom resource, against the structure prometheus-operator
reads. The reconcile CronJob's container arguments run here for real against a
seeded sandbox database, so the manifest and the CLI cannot drift apart.
"""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import jsonschema
import kubernetes_validate
import pytest
import sqlalchemy as sa
import yaml
from prometheus_client.parser import text_string_to_metric_families

from migrate.cli import main
from migrate.core.summary import Summary
from migrate.reconcile import metrics
from migrate.reconcile.findings import Check
from tests.support.rollout import seed_random

MANIFESTS = Path(__file__).resolve().parent.parent / "manifests"
KUBERNETES = "1.30.0"  # the oldest minor version the manifests promise to work on
IMAGE_ARGS_ENV = re.compile(r"\$\((\w+)\)")


def load(name: str) -> dict[str, Any]:
    (doc,) = list(yaml.safe_load_all((MANIFESTS / name).read_text(encoding="utf-8")))
    return doc


def every_manifest() -> list[str]:
    return sorted(p.name for p in MANIFESTS.glob("*.yaml"))


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return doc["spec"]["template"]["spec"]


def job_spec(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["spec"]["jobTemplate"]["spec"] if doc["kind"] == "CronJob" else doc["spec"]


def workloads() -> list[str]:
    return [n for n in every_manifest() if load(n)["kind"] in ("CronJob", "Job")]


def argv(container: dict[str, Any]) -> list[str]:
    """The bundle-migrate arguments, with $(VAR) expanded from the container's env as
    Kubernetes expands them."""
    env = {e["name"]: e.get("value", "") for e in container.get("env", [])}
    return [IMAGE_ARGS_ENV.sub(lambda m: env[m.group(1)], a) for a in container["args"]]


def test_there_is_a_manifest_for_each_job() -> None:
    kinds = sorted(load(n)["kind"] for n in every_manifest())
    assert kinds == ["ConfigMap", "CronJob", "CronJob", "Job", "PrometheusRule"]


@pytest.mark.parametrize("name", every_manifest())
def test_manifest_validates_against_kubernetes_schemas(name: str) -> None:
    doc = load(name)
    if doc["kind"] == "PrometheusRule":
        jsonschema.validate(doc, PROMETHEUS_RULE)
        return
    kubernetes_validate.validate(doc, KUBERNETES, strict=True)
    # The validation can fail: a misspelt field is refused.
    broken = copy.deepcopy(doc)
    broken.setdefault("spec", broken.get("data", {}))["concurrencyPolicyy"] = "Forbid"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES, strict=True)


@pytest.mark.parametrize("name", workloads())
def test_workloads_run_safely(name: str) -> None:
    doc = load(name)
    job, pod = job_spec(doc), pod_spec(doc)
    # A failed run is never retried by Kubernetes (for reconcile: an alert storm;
    # for a stage: a second apply nobody looked at).
    assert job["backoffLimit"] == 0 and pod["restartPolicy"] == "Never"
    assert job["activeDeadlineSeconds"] > 0
    if doc["kind"] == "CronJob":
        assert doc["spec"]["concurrencyPolicy"] == "Forbid"
        assert doc["spec"]["startingDeadlineSeconds"] > 0
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    # The image's entrypoint is the tool: no shell wrapper around it.
    assert "command" not in container
    assert not any("sh" == a or a.startswith("/bin/") for a in container["args"])
    # Secrets only from Secrets, never as literal values.
    env = {e["name"]: e for e in container["env"]}
    url = env["BUNDLE_MIGRATE_DATABASE_URL"]
    assert "value" not in url and url["valueFrom"]["secretKeyRef"]["key"] == "database-url"
    if "--execute" in container["args"] or "--apply" in container["args"]:
        key = env["BUNDLE_MIGRATE_API_KEY"]
        assert "value" not in key and key["valueFrom"]["secretKeyRef"]["key"] == "api-key"
        assert env["BUNDLE_MIGRATE_API_URL"]["value"].startswith("http")
    # /tmp is the one writable place besides the metrics directory.
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]


@pytest.mark.parametrize("name", workloads())
def test_the_cli_accepts_the_arguments(name: str, tmp_path: Path) -> None:
    (container,) = pod_spec(load(name))["containers"]
    (tmp_path / "plan.json").write_text("{}")  # the mounted plan, for the parser's exists check
    args = [a.replace("/plan/", f"{tmp_path}/") for a in argv(container)]
    ctx = main.make_context("bundle-migrate", list(args))
    rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
    _, cmd, rest = main.resolve_command(ctx, rest)
    assert cmd is not None
    try:
        cmd.make_context(cmd.name or "", rest, parent=ctx)
    except click.UsageError as exc:
        pytest.fail(f"{name}: bundle-migrate {' '.join(args)}: {exc}")


def test_metrics_go_where_node_exporter_reads_them() -> None:
    paths = set()
    for name in ("reconcile-cronjob.yaml", "converge-cronjob.yaml"):
        pod = pod_spec(load(name))
        (container,) = pod["containers"]
        (target,) = [a.split("=", 1)[1] for a in container["args"] if a.startswith("--metrics")]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        folder, _, file = target.rpartition("/")
        volume = next(v for v in pod["volumes"] if v["name"] == mounts[folder])
        paths.add(volume["hostPath"]["path"])
        assert file.endswith(".prom")
        assert pod["nodeSelector"] == {"bundle-migrate/metrics": "true"}
    # One textfile directory, the one README and runbooks name.
    (path,) = paths
    readme = (MANIFESTS.parent / "README.md").read_text(encoding="utf-8")
    runbook = (MANIFESTS.parent / "runbooks" / "reconciliation.md").read_text(encoding="utf-8")
    assert path in readme and path in runbook
    assert not re.search(r"/var/lib/node-exporter\b", readme + runbook)


def test_alerts_use_metrics_the_tool_writes(tmp_path: Path) -> None:
    path = tmp_path / "m.prom"
    metrics.write(path, metrics.RunMetrics(1.0, 2.0, Check(Summary(), [], [], True), labels={}))
    produced = {s.name for f in text_string_to_metric_families(path.read_text()) for s in f.samples}
    rules = [r for g in load("prometheusrule.yaml")["spec"]["groups"] for r in g["rules"]]
    for rule in rules:
        used = set(re.findall(r"bundle_migrate_\w+", rule["expr"]))
        assert used and used <= produced, (rule["alert"], used - produced)
    assert {r["labels"]["severity"] for r in rules} == {"ticket", "page"}


@pytest.mark.parametrize("schema_version", ["2026"])
def test_the_reconcile_cronjob_runs_as_written(
    me_db: Any, tmp_path: Path, schema_version: str
) -> None:
    """Its arguments, run here against a fleet with drift: the Job succeeds and writes metrics."""
    (container,) = pod_spec(load("reconcile-cronjob.yaml"))["containers"]
    config = tmp_path / "config"
    config.mkdir()
    overrides = load("overrides-configmap.yaml")["data"]["overrides.toml"]
    (config / "overrides.toml").write_text(overrides)
    textfile = tmp_path / "textfile"
    textfile.mkdir()
    args = [
        a.replace("=/textfile/", f"={textfile}/").replace("=/config/", f"={config}/")
        for a in argv(container)
    ]
    seed_random(me_db, 30, seed_value=2)
    done = subprocess.run(
        [str(Path(sys.executable).parent / "bundle-migrate"), *args],
        env={"PATH": "/usr/bin:/bin", "BUNDLE_MIGRATE_DATABASE_URL": me_db.url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr  # drift, and still a successful Job
    assert '"status": "drift"' in done.stdout and '"event": "command.finished"' in done.stderr
    samples = [
        s
        for f in text_string_to_metric_families(
            (textfile / "bundle_migrate_reconcile.prom").read_text()
        )
        for s in f.samples
    ]
    drift = [s for s in samples if s.name == f"{metrics.PREFIX}_drift"]
    assert drift and drift[0].value > 0 and drift[0].labels["mode"] == "check"
    with me_db.engine.connect() as conn:  # read-only: not even the journal was created
        assert "bundle_migration" not in sa.inspect(conn).get_schema_names()


# prometheus-operator's PrometheusRule, as far as these manifests use it (its CRD's
# openAPIV3Schema: groups of named rules, each an alert or a record with an expr).
_DURATION = {
    "type": "string",
    "pattern": r"^((\d+)y)?((\d+)w)?((\d+)d)?((\d+)h)?((\d+)m)?((\d+)s)?((\d+)ms)?$",
}
PROMETHEUS_RULE = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PrometheusRule"},
        "metadata": {
            "type": "object",
            "required": ["name", "namespace"],
            "properties": {"name": {"type": "string"}, "namespace": {"type": "string"}},
        },
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["groups"],
            "properties": {
                "groups": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["name", "rules"],
                        "properties": {
                            "name": {"type": "string", "minLength": 1},
                            "interval": _DURATION,
                            "rules": {
                                "type": "array",
                                "minItems": 1,
                                "items": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "required": ["alert", "expr", "labels", "annotations"],
                                    "properties": {
                                        "alert": {"type": "string", "pattern": "^[A-Z]\\w+$"},
                                        "expr": {"type": "string", "minLength": 1},
                                        "for": _DURATION,
                                        "labels": {
                                            "type": "object",
                                            "required": ["severity"],
                                            "additionalProperties": {"type": "string"},
                                        },
                                        "annotations": {
                                            "type": "object",
                                            "required": ["summary"],
                                            "additionalProperties": {"type": "string"},
                                        },
                                    },
                                },
                            },
                        },
                    },
                }
            },
        },
    },
}

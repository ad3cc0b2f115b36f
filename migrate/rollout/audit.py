"""Audit events: records on the standard `logging` module, under the `bundle_migrate` logger.

The library only emits them; migrate.cli.auditlog decides where they go (JSON
lines on stderr with --log-format json, warnings only otherwise). Extra fields
become JSON keys:

    event("apply.endpoint", "applied", run_id=run_id, endpoint=name, outcome="applied")
"""

from __future__ import annotations

import logging
from typing import Any

LOGGER = "bundle_migrate"

log = logging.getLogger(LOGGER)


def event(name: str, message: str, *, level: int = logging.INFO, **fields: Any) -> None:
    """Log one audit event; `fields` become JSON keys (values masked by the formatter)."""
    log.getChild(name.split(".", 1)[0]).log(level, message, extra={"event": name, **fields})

"""Who is making a plan or a run, and with which tool: what the journal and the plan record."""

from __future__ import annotations

import getpass
import socket
from importlib.metadata import PackageNotFoundError, version


def operator() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"


def host() -> str:
    return socket.gethostname()


def tool_version() -> str:
    try:
        return version("bundle-migrate")
    except PackageNotFoundError:
        return "unknown"

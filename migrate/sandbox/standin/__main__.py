"""`python -m migrate.sandbox.standin`: the stand-in as a process of its own.

`bundle-migrate sandbox --detach` starts it so that it outlives the command,
beside the detached PostgreSQL, and `sandbox stop` ends both.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path

from migrate.sandbox.standin.behaviour import Behaviour
from migrate.sandbox.standin.server import StandIn
from migrate.sandbox.standin.service import Service
from migrate.store.connection import make_engine, parse_url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m migrate.sandbox.standin")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--schema", default="hosted_model_inference")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--state-file", type=Path, required=True)
    parser.add_argument("--build-seconds", type=float, default=3.0)
    parser.add_argument("--start-seconds", type=float, default=5.0)
    parser.add_argument("--crashloop", action="append", default=[])
    args = parser.parse_args(argv)
    engine = make_engine(parse_url(args.database_url))
    behaviour = Behaviour(
        build_seconds=args.build_seconds,
        start_seconds=args.start_seconds,
        crashloop_without_eager=tuple(args.crashloop),
    )
    server = StandIn(Service(engine, args.schema, behaviour), port=args.port).start()
    args.state_file.write_text(json.dumps({"pid": os.getpid(), "url": server.url}))
    done = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda *_: done.set())
    done.wait()
    server.stop()
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Serving the stand-in on 127.0.0.1 from a background thread, and stopping it cleanly."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field

import uvicorn
from sqlalchemy.engine import Engine

from migrate.sandbox.standin.app import make_app
from migrate.sandbox.standin.behaviour import Behaviour
from migrate.sandbox.standin.service import Service

API_URL_ENV = "BUNDLE_MIGRATE_API_URL"


class StandInError(RuntimeError):
    """The stand-in could not start."""


@dataclass
class StandIn:
    service: Service
    host: str = "127.0.0.1"
    port: int = 0
    _server: uvicorn.Server | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout_s: float = 15.0) -> StandIn:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            make_app(self.service),
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
        server = self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="standin", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise StandInError(f"the model engine stand-in did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.service.stop()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> StandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(engine: Engine, schema: str, behaviour: Behaviour | None = None) -> StandIn:
    """Start a stand-in over `schema` of this engine's database."""
    service = Service(engine=engine, schema=schema, behaviour=behaviour or Behaviour())
    return StandIn(service).start()

"""The stand-in's HTTP surface: model engine's two LLM endpoint routes, and its request log.

A FastAPI app, as model engine's gateway is one. Faults from the behaviour are
answered before a request is served: 429 (with Retry-After), 503 as model
engine sends it, 502/504 as an ingress's HTML page.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from migrate.sandbox.standin.behaviour import Fault
from migrate.sandbox.standin.service import NotFound, Service
from migrate.sandbox.standin.service import Request as Logged

PREFIX = "/v1/llm/model-endpoints"


def user_of(authorization: str | None) -> str | None:
    """The API key sent: the Basic user name (password ignored), or a bearer token."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0] or None


def _fault_response(fault: Fault) -> Response:
    assert fault.status is not None
    headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
    if fault.html:
        page = f"<html><body><h1>{fault.status} Bad Gateway</h1></body></html>"
        return HTMLResponse(page, status_code=fault.status, headers=headers)
    detail = {
        429: "Too Many Requests",
        503: "Message broker temporarily unavailable. Please retry.",
    }.get(fault.status, "error")
    return JSONResponse({"detail": detail}, status_code=fault.status, headers=headers)


def make_app(service: Service) -> FastAPI:
    app = FastAPI(title="model engine stand-in", docs_url=None, redoc_url=None)

    def handle(request: Request, name: str, serve: Any) -> Response:
        method = request.method
        fault = service.behaviour.take_fault(method, name)
        team = service.behaviour.team_of(user_of(request.headers.get("authorization")) or "")
        if fault is not None and fault.delay_s and not fault.served:
            service.behaviour.stopping.wait(fault.delay_s)
        if fault is not None and fault.status is not None and not fault.served:
            response = _fault_response(fault)
        elif team is None:
            response = JSONResponse({"detail": "Could not authenticate."}, status_code=401)
        else:
            try:
                response = JSONResponse(serve(team))
            except NotFound:
                response = JSONResponse(
                    {"detail": f"Model Endpoint {name} was not found."}, status_code=404
                )
        if fault is not None and fault.served:
            service.behaviour.stopping.wait(fault.delay_s)
            if fault.status is not None:
                response = _fault_response(fault)
        note = ("served, answer lost" if fault.served else "fault") if fault else ""
        service.record(Logged(service.clock(), method, name, team, response.status_code, note))
        return response

    @app.get(PREFIX + "/{name}")
    def get_endpoint(name: str, request: Request) -> Response:
        return handle(request, name, lambda team: service.describe(name, team))

    @app.put(PREFIX + "/{name}")
    async def update_endpoint(name: str, request: Request) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return JSONResponse({"detail": "body must be a JSON object"}, status_code=422)
        return await run_in_threadpool(
            lambda: handle(
                request,
                name,
                lambda team: {"endpoint_creation_task_id": service.update(name, team, body)},
            )
        )

    @app.get("/_standin/requests")
    def requests_log() -> list[dict[str, Any]]:
        return [vars(r) for r in list(service.log)]

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app

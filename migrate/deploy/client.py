"""A client for the two calls a redeploy needs: GET and PUT /v1/llm/model-endpoints/{name}.

Transient answers (429, 502, 503, 504, a dropped or timed-out connection) are
retried with bounded exponential backoff and jitter by stamina, honouring
`Retry-After`. A 401 means the run's credentials are wrong: `Unauthorized`, which
stops the run. A 404 means this endpoint is not there or not the credentials'
team's: `NotFound`, which fails the endpoint alone.

A PUT whose answer was lost may have landed. Model engine does not refuse a
second PUT while the first build runs, and the two then race, so before
repeating a PUT the client looks: an endpoint no longer READY took the first one.

No message carries a credential: requests authenticate in a header, and any
text a server sends back is cut to one line with the user name removed.
"""

from __future__ import annotations

import email.utils
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import stamina
import stamina.instrumentation

from migrate.core.health import EndpointState
from migrate.deploy.credentials import Credentials, CredentialsError

log = logging.getLogger("bundle_migrate.api")

TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})
NOT_FOUND_HINT = "not found, or not owned by the credentials' team"


class ApiError(Exception):
    """A model engine API call that did not succeed, explained in one line."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Unauthorized(ApiError):
    """401: the credentials are not accepted; nothing else in the run can succeed."""


class NotFound(ApiError):
    """404: no such endpoint, or not the credentials' team's (model engine says the same)."""


class Transient(ApiError):
    """Worth retrying: overload, a proxy in trouble, a dropped connection."""

    def __init__(self, message: str, status: int | None, retry_after: float | None) -> None:
        super().__init__(message, status)
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 8
    timeout_s: float = 300.0
    wait_initial_s: float = 0.5
    wait_max_s: float = 30.0
    wait_jitter_s: float = 1.0
    # A server asking for more than this is waited on for this long, then asked again.
    max_retry_after_s: float = 120.0


@dataclass(frozen=True)
class Redeployed:
    """A PUT that model engine took: its task id, or None when the answer was lost."""

    task_id: str | None
    note: str = ""


def _silence_stamina_default_hooks() -> None:
    # stamina's default hooks log through the root logger (printed on stderr as
    # warnings) and count in the default Prometheus registry; our audit events say it.
    stamina.instrumentation.set_on_retry_hooks([_audit_retry])


def _audit_retry(details: stamina.instrumentation.RetryDetails) -> None:
    log.info(
        f"retrying in {details.wait_for:.1f} s: {details.caused_by}",
        extra={
            "event": "api.retry",
            "retry_num": details.retry_num,
            "wait_s": round(details.wait_for, 3),
            "error": str(details.caused_by),
        },
    )


def normalise_base_url(url: str) -> str:
    """The API's root, without a trailing /v1 or slash; refuses credentials in the URL."""
    shape = "the model engine API URL must be http(s)://host[:port][/prefix]"
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - parsed lazily; a port like "abc" raises only here
    except ValueError:  # "[::1/x", a port that is not a number: never echoed, it may hold a key
        raise ApiError(shape) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ApiError(shape)
    if parts.username or parts.password:
        raise ApiError(
            "the model engine API URL must not carry credentials: "
            "set BUNDLE_MIGRATE_API_KEY, --api-keys FILE or --act-as-owner instead"
        )
    path = parts.path.rstrip("/")
    path = path.removesuffix("/v1")
    return f"{parts.scheme}://{parts.netloc}{path}"


class ModelEngineClient:
    def __init__(
        self,
        base_url: str,
        credentials: Credentials,
        *,
        retry: RetryPolicy | None = None,
        timeout: httpx.Timeout | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = normalise_base_url(base_url)
        self.credentials = credentials
        self.retry = retry or RetryPolicy()
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout or httpx.Timeout(30.0, connect=10.0),
            transport=transport,
            follow_redirects=False,
            headers={"Accept": "application/json", "User-Agent": "bundle-migrate"},
        )
        _silence_stamina_default_hooks()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ModelEngineClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # The two calls ------------------------------------------------------------------

    def get(self, name: str, owner: str | None) -> EndpointState:
        """The endpoint as model engine reports it (retried while transient)."""
        for attempt in self._retrying():
            with attempt:
                return EndpointState.from_api(self._once("GET", name, owner))
        raise AssertionError("unreachable")  # pragma: no cover

    def redeploy(self, name: str, owner: str | None, *, recreate: bool) -> Redeployed:
        """PUT: deploy the endpoint's current bundle (or rebuild it, `recreate`)."""
        body: dict[str, Any] = {"force_bundle_recreation": True} if recreate else {}
        for attempt in self._retrying():
            with attempt:
                if attempt.num > 1:
                    # The last PUT's answer was lost; it may have landed all the same.
                    state = EndpointState.from_api(self._once("GET", name, owner))
                    if state.status != "READY":
                        return Redeployed(
                            None, f"the PUT's answer was lost; the endpoint is {state.status}"
                        )
                answer = self._once("PUT", name, owner, body)
                task = answer.get("endpoint_creation_task_id") if isinstance(answer, dict) else None
                return Redeployed(str(task) if task is not None else None)
        raise AssertionError("unreachable")  # pragma: no cover

    # Plumbing -----------------------------------------------------------------------

    def _retrying(self) -> Any:
        policy = self.retry
        return stamina.retry_context(
            on=self._backoff,
            attempts=policy.attempts,
            timeout=policy.timeout_s,
            wait_initial=policy.wait_initial_s,
            wait_max=policy.wait_max_s,
            wait_jitter=policy.wait_jitter_s,
        )

    def _backoff(self, exc: Exception) -> bool | float:
        if not isinstance(exc, Transient):
            return False
        if exc.retry_after is not None:
            return min(max(exc.retry_after, 0.0), self.retry.max_retry_after_s)
        return True

    def _once(
        self, method: str, name: str, owner: str | None, body: dict[str, Any] | None = None
    ) -> Any:
        path = f"/v1/llm/model-endpoints/{quote(name, safe='')}"
        what = f"{method} {path}"
        try:
            user = self.credentials.user_for(owner)
        except CredentialsError as exc:
            raise ApiError(f"{what}: {exc}") from None
        try:
            response = self._http.request(method, path, json=body, auth=(user, ""))
        except httpx.TransportError as exc:
            raise Transient(f"{what}: {_transport_text(exc)}", None, None) from None
        status = response.status_code
        if 200 <= status < 300:
            try:
                return response.json()
            except ValueError:
                raise ApiError(f"{what}: {status} with a body that is not JSON", status) from None
        detail = _detail(response, user)
        if status == 401:
            raise Unauthorized(f"{what}: 401, the credentials were refused{detail}", status)
        if status == 404:
            raise NotFound(f"{what}: 404, {NOT_FOUND_HINT}{detail}", status)
        if status in TRANSIENT_STATUSES:
            retry_after = _retry_after(response.headers.get("Retry-After"))
            raise Transient(f"{what}: {status}{detail}", status, retry_after)
        raise ApiError(f"{what}: {status}{detail}", status)


def _transport_text(exc: httpx.TransportError) -> str:
    kind = type(exc).__name__
    text = " ".join(str(exc).split())[:200]
    return f"{kind}: {text}" if text else kind


def _detail(response: httpx.Response, user: str) -> str:
    """`: <detail>` from a JSON error body, one line, the user name cut out; "" otherwise."""
    text = ""
    if "json" in response.headers.get("content-type", ""):
        try:
            doc = response.json()
        except ValueError:
            doc = None
        if isinstance(doc, dict) and doc.get("detail") is not None:
            text = str(doc["detail"])
    if not text:
        return ""  # an HTML page from a proxy says nothing the status does not
    if user:
        text = text.replace(user, "***")
    return ": " + " ".join(text.split())[:300]


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait, from a Retry-After of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())

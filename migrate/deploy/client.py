"""A client for the two calls a redeploy needs: GET and PUT /v1/llm/model-endpoints/{name}.

Transient answers (429, 502, 503, 504, a dropped or timed-out connection) are
retried with bounded exponential backoff and jitter by stamina, honouring
`Retry-After`. A 401 means the run's credentials are wrong: `Unauthorized`, which
stops the run. A 404 means this endpoint is not there or not the credentials'
team's: `NotFound`, which fails the endpoint alone.

A PUT whose answer was lost may have landed. Model engine does not refuse a
second PUT while the first build runs, and the two then race, so before
repeating a PUT the client asks the caller, who reads the endpoint's row on the
primary (`migrate.core.landing`); model engine's own GET may answer from a
stale replica. A PUT's answer waits longer than a GET's: a slow answer is not a
lost one.

No message carries a credential: requests authenticate in a header, and any
text a server sends back is cut to one line with the user name removed.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable
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
BUILDING = frozenset({"UPDATE_PENDING", "UPDATE_IN_PROGRESS"})
NOT_FOUND_HINT = "not found, or not owned by the credentials' team"


class ApiError(Exception):
    """A model engine API call that did not succeed, explained in one line."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Unusable(ApiError):
    """Nothing more in this run can succeed through the API: stop it, resumable."""


class Unauthorized(Unusable):
    """401: the credentials are not accepted."""


class WrongApi(Unusable):
    """A 404 that is not model engine's: the URL does not lead to its API."""


class Unavailable(Unusable):
    """The API kept failing after every retry: not this endpoint's fault.

    `refused`: the last answer was a certain refusal (see Transient), so a PUT
    that ended so did not land, whatever the row's status says.
    """

    def __init__(self, message: str, status: int | None = None, *, refused: bool = False) -> None:
        super().__init__(message, status)
        self.refused = refused


class NotFound(ApiError):
    """404: no such endpoint, or not the credentials' team's (model engine says the same)."""


class Transient(ApiError):
    """Worth retrying: overload, a proxy in trouble, a dropped connection.

    `refused`: the request certainly did nothing: a 429, or model engine's own
    503 (a JSON detail), which comes before it queued any build. Anything else
    (a proxy's 502 or 504, a dropped or timed-out connection) may have landed.
    """

    def __init__(
        self, message: str, status: int | None, retry_after: float | None, *, refused: bool = False
    ) -> None:
        super().__init__(message, status)
        self.retry_after = retry_after
        self.refused = refused


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 8
    timeout_s: float = 300.0
    wait_initial_s: float = 0.5
    wait_max_s: float = 30.0
    wait_jitter_s: float = 1.0
    # A server asking for more than this is waited on for this long, then asked again.
    max_retry_after_s: float = 120.0
    # After a PUT's answer was lost, how long its effect is looked for before it is
    # sent again: a request still in flight behind a proxy may land a moment later.
    # A proxy's 504 commonly comes after 60 s of waiting on model engine, which may
    # still be writing: the longer the look, the rarer a second PUT.
    lost_answer_grace_s: float = 30.0
    lost_answer_poll_s: float = 1.0


# Model engine answers a PUT after writing the row and queueing the build: slower
# than a GET, and a slow answer taken for a lost one would send the PUT twice.
PUT_TIMEOUT = httpx.Timeout(120.0, connect=10.0)
GET_TIMEOUT = httpx.Timeout(30.0, connect=10.0)

# Given whether the last attempt was certainly refused: did the PUT land?
Landed = Callable[[bool], bool]


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
        self._put_timeout = timeout or PUT_TIMEOUT
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout or GET_TIMEOUT,
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
        try:
            for attempt in self._retrying():
                with attempt:
                    return EndpointState.from_api(self._once("GET", name, owner))
        except Transient as exc:
            raise _unavailable(exc) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def redeploy(
        self,
        name: str,
        owner: str | None,
        *,
        recreate: bool,
        landed: Landed | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Redeployed:
        """PUT: deploy the endpoint's current bundle (or rebuild it, `recreate`).

        `landed` tells from the endpoint's row whether a PUT whose answer was lost
        took effect; without it, model engine's GET is asked (no longer READY).
        """
        body: dict[str, Any] = {"force_bundle_recreation": True} if recreate else {}
        last: Transient | None = None
        try:
            for attempt in self._retrying():
                with attempt:
                    if last is not None:
                        note = self._took_effect(name, owner, last, landed, sleep)
                        if note:
                            return Redeployed(None, note)
                    try:
                        answer = self._once("PUT", name, owner, body)
                    except Transient as exc:
                        last = exc
                        raise
                    task = (
                        answer.get("endpoint_creation_task_id")
                        if isinstance(answer, dict)
                        else None
                    )
                    return Redeployed(str(task) if task is not None else None)
        except Transient as exc:
            raise _unavailable(exc) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _took_effect(
        self,
        name: str,
        owner: str | None,
        last: Transient,
        landed: Landed | None,
        sleep: Callable[[float], None],
    ) -> str:
        """Before a PUT goes again: why the last one counts as landed, or "" to send it.

        Two witnesses: the endpoint's row (`landed`, on the primary), and model
        engine's GET showing a build under way (it may lag, so READY proves
        nothing). A certain refusal is sent again at once.
        """
        if last.refused:
            return "the PUT was refused, then it landed" if landed and landed(True) else ""
        waited = 0.0
        while True:  # the request may still be on its way in: look for a while
            if landed is not None and landed(False):
                return "the PUT's answer was lost; the endpoint's row shows it landed"
            status = self._status_if_answered(name, owner, must=landed is None)
            if status in BUILDING:
                return f"the PUT's answer was lost; the endpoint is {status}"
            if landed is None or waited >= self.retry.lost_answer_grace_s:
                return ""
            sleep(self.retry.lost_answer_poll_s)
            waited += self.retry.lost_answer_poll_s

    def _status_if_answered(self, name: str, owner: str | None, *, must: bool) -> str | None:
        """The GET's status, one try; a failed GET is None unless it is the only witness."""
        try:
            return EndpointState.from_api(self._once("GET", name, owner)).status
        except (Unusable, NotFound):
            raise
        except ApiError:
            if must:
                raise
            return None

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
        timeout = self._put_timeout if method == "PUT" else httpx.USE_CLIENT_DEFAULT
        try:
            response = self._http.request(method, path, json=body, auth=(user, ""), timeout=timeout)
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
            if not detail:
                # Model engine's 404 is JSON with a detail; an ingress's page is not.
                raise WrongApi(
                    f"{what}: 404 that is not model engine's (no JSON detail): "
                    f"is {self.base_url} the root of model engine's API?",
                    status,
                )
            raise NotFound(f"{what}: 404, {NOT_FOUND_HINT}{detail}", status)
        if status in TRANSIENT_STATUSES:
            retry_after = _retry_after(response.headers.get("Retry-After"))
            refused = status == 429 or (status == 503 and bool(detail))
            raise Transient(f"{what}: {status}{detail}", status, retry_after, refused=refused)
        raise ApiError(f"{what}: {status}{detail}", status)


def _unavailable(exc: Transient) -> Unavailable:
    return Unavailable(
        f"model engine's API kept failing, retries exhausted: {exc}",
        exc.status,
        refused=exc.refused,
    )


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
            text = _detail_text(doc["detail"])
    if not text:
        return ""  # an HTML page from a proxy says nothing the status does not
    if user:
        text = text.replace(user, "***")
    return ": " + " ".join(text.split())[:300]


def _detail_text(detail: Any) -> str:
    """FastAPI's validation errors are a list of {loc, msg}: `body.field: msg; ...`."""
    if isinstance(detail, list):
        parts = []
        for entry in detail:
            if isinstance(entry, dict) and "msg" in entry:
                loc = entry.get("loc")
                where = ".".join(str(x) for x in loc) if isinstance(loc, list | tuple) else ""
                parts.append(f"{where}: {entry['msg']}" if where else str(entry["msg"]))
            else:
                parts.append(str(entry))
        return "; ".join(parts)
    return str(detail)


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

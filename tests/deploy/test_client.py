"""The API client against the model engine stand-in over a real PostgreSQL: auth, 404, retries."""

from __future__ import annotations

import time
from typing import Any

import pytest

from migrate.deploy.client import ApiError, ModelEngineClient, NotFound, Unauthorized
from migrate.deploy.credentials import Credentials, CredentialsError, Secret, parse_keys
from migrate.sandbox.standin.behaviour import Fault
from migrate.sandbox.synth import make_spec
from tests.support.rollout import seed
from tests.support.standin import FAST_RETRY, client, fast_behaviour, requests, standin

LATEST = pytest.mark.parametrize("schema_version", ["2026"])


def one(me_db: Any) -> Any:
    (spec,) = seed(
        me_db, [make_spec("F", provenance="injected", schema_version=me_db.version, status="READY")]
    )
    return spec


@LATEST
def test_get_reports_status_and_workers_as_the_owner(me_db: Any, schema_version: str) -> None:
    spec = one(me_db)
    with standin(me_db) as server, client(server) as c:
        got = c.get(spec.name, spec.owner)
    assert got.status == "READY" and got.available_workers == 1 and got.unavailable_workers == 0
    assert [(r.method, r.team, r.status) for r in requests(server)] == [("GET", spec.owner, 200)]


def test_another_teams_endpoint_is_not_found_and_bad_keys_are_refused(
    me_db: Any, schema_version: str
) -> None:
    spec = one(me_db)
    behaviour = fast_behaviour(keys={"key-of-a": spec.owner, "key-of-b": "team-b"})
    with standin(me_db, behaviour) as server:
        with client(server, Credentials(key=Secret("key-of-b"))) as c:
            with pytest.raises(NotFound, match="not owned by the credentials' team"):
                c.get(spec.name, spec.owner)
        with client(server, Credentials(key=Secret("stolen"))) as c:
            with pytest.raises(Unauthorized) as refused:
                c.redeploy(spec.name, spec.owner, recreate=False)
        assert "stolen" not in str(refused.value)
        with client(server, Credentials(per_owner={spec.owner: Secret("key-of-a")})) as c:
            assert c.get(spec.name, spec.owner).status == "READY"
    # The refused PUT was never served: one request, no retry.
    assert [r.status for r in requests(server, "PUT")] == [401]


def test_transient_answers_are_retried_honouring_retry_after(
    me_db: Any, schema_version: str
) -> None:
    spec = one(me_db)
    faults = [
        Fault(429, method="GET", retry_after="1"),
        Fault(502, method="GET", html=True),
        Fault(503, method="GET"),
    ]
    with standin(me_db, fast_behaviour(faults=faults)) as server, client(server) as c:
        started = time.monotonic()
        assert c.get(spec.name, spec.owner).status == "READY"
        waited = time.monotonic() - started
    assert [r.status for r in requests(server)] == [429, 502, 503, 200]
    assert waited >= 1.0  # Retry-After: 1 was honoured (the policy alone waits < 0.2 s)


@LATEST
def test_retries_are_bounded(me_db: Any, schema_version: str) -> None:
    spec = one(me_db)
    with standin(me_db, fast_behaviour(faults=[Fault(503, times=100)])) as server:
        with client(server) as c, pytest.raises(ApiError, match="503"):
            c.get(spec.name, spec.owner)
    assert len(requests(server)) == FAST_RETRY.attempts


@LATEST
def test_a_put_whose_answer_is_lost_is_not_sent_twice(me_db: Any, schema_version: str) -> None:
    spec = one(me_db)
    faults = [Fault(504, method="PUT", served=True, html=True)]
    with standin(me_db, fast_behaviour(faults=faults)) as server, client(server) as c:
        done = c.redeploy(spec.name, spec.owner, recreate=False)
    assert done.task_id is None and "UPDATE_PENDING" in done.note
    assert [(r.method, r.status) for r in requests(server)] == [("PUT", 504), ("GET", 200)]
    assert server.service.races == []


@LATEST
def test_a_refused_put_is_sent_again(me_db: Any, schema_version: str) -> None:
    spec = one(me_db)
    faults = [Fault(503, method="PUT")]
    with standin(me_db, fast_behaviour(faults=faults)) as server, client(server) as c:
        done = c.redeploy(spec.name, spec.owner, recreate=False)
    assert done.task_id is not None
    assert [(r.method, r.status) for r in requests(server)] == [
        ("PUT", 503),
        ("GET", 200),
        ("PUT", 200),
    ]


def test_connection_errors_are_transient_and_bounded() -> None:
    # Nothing listens on this port: every attempt is a refused connection.
    with ModelEngineClient(
        "http://127.0.0.1:9", Credentials(act_as_owner=True), retry=FAST_RETRY
    ) as c:
        with pytest.raises(ApiError, match="ConnectError"):
            c.get("x", "team")


def test_keys_never_show() -> None:
    creds = Credentials(key=Secret("sk-live-123"), per_owner=parse_keys('a = "sk-a"', "k.toml"))
    assert "sk-" not in repr(creds) and "sk-" not in creds.describe()
    assert creds.user_for("a") == "sk-a" and creds.user_for("b") == "sk-live-123"
    with pytest.raises(CredentialsError, match="no API key for owner 'b'"):
        Credentials(per_owner={"a": Secret("x")}, source="k.toml").user_for("b")
    with pytest.raises(CredentialsError) as bad:
        parse_keys('a = "sk-1"\nb = 2', "k.toml")
    assert "sk-1" not in str(bad.value)


def test_urls_with_credentials_are_refused() -> None:
    with pytest.raises(ApiError, match="must not carry credentials"):
        ModelEngineClient("http://key:@me.example", Credentials())
    assert ModelEngineClient("https://me.example/v1/", Credentials()).base_url == (
        "https://me.example"
    )

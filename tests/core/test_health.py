"""One observation's health verdict: READY is not health, and neither is a READY with no counts."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from migrate.core.health import FAILED, HEALTHY, WAITING, EndpointState, Recorded, judge

COUNT = st.one_of(st.none(), st.integers(min_value=0, max_value=4))
STATUS = st.sampled_from(
    ["READY", "UPDATE_PENDING", "UPDATE_IN_PROGRESS", "UPDATE_FAILED", "DELETE_IN_PROGRESS"]
)
STATES = st.builds(
    EndpointState,
    status=STATUS,
    status_reason=st.one_of(st.none(), st.just("OOMKilled")),
    min_workers=COUNT,
    available_workers=COUNT,
    unavailable_workers=COUNT,
)
RECORDS = st.one_of(st.none(), st.builds(Recorded, status=st.one_of(st.none(), STATUS)))


def ready(
    available: int | None, unavailable: int | None, min_workers: int | None = 1
) -> EndpointState:
    return EndpointState("READY", None, None, min_workers, available, unavailable)


def test_a_crash_loop_behind_ready_is_not_health() -> None:
    assert judge(ready(1, 1)).verdict == WAITING


def test_a_ready_without_counts_waits_for_them_where_the_server_reports_counts() -> None:
    # Model engine's builder writes READY before its cacher has the worker counts.
    assert judge(ready(None, None)).verdict == WAITING
    assert judge(EndpointState("READY")).verdict == WAITING  # deployment_state null
    status_only = judge(ready(None, None), counts_expected=False)
    assert status_only.verdict == HEALTHY and "status only" in status_only.reason


def test_scaled_to_zero_and_multinode_are_judged_on_status_and_say_so() -> None:
    assert "scaled to zero" in judge(ready(0, 0, min_workers=0)).reason
    assert "scaled to zero" in judge(ready(None, None, min_workers=0)).reason
    assert "multinode" in judge(ready(1, 0), multinode=True).reason


def test_the_databases_status_outranks_a_stale_api() -> None:
    # Seconds after the PUT the API still reads READY from its replica.
    pending = judge(ready(1, 0), recorded=Recorded("UPDATE_PENDING"))
    assert pending.verdict == WAITING and "UPDATE_PENDING" in pending.reason
    # The build before ours failed; the API has not caught up with the new one yet.
    stale = EndpointState("UPDATE_FAILED", "old failure", None, 1, 1, 0)
    assert judge(stale, recorded=Recorded("READY")).verdict == WAITING
    failed = judge(ready(1, 0), recorded=Recorded("UPDATE_FAILED", "ImagePullBackOff"))
    assert failed.verdict == FAILED and "ImagePullBackOff" in failed.reason
    assert judge(ready(1, 0), recorded=Recorded(None)).verdict == FAILED


@given(STATES, RECORDS, st.booleans(), st.booleans())
def test_healthy_needs_ready_everywhere_and_no_unavailable_worker(
    state: EndpointState, recorded: Recorded | None, counts_expected: bool, multinode: bool
) -> None:
    health = judge(state, multinode=multinode, counts_expected=counts_expected, recorded=recorded)
    if health.verdict != HEALTHY:
        return
    assert state.status == "READY"
    assert recorded is None or recorded.status == "READY"
    if not multinode:
        assert not state.unavailable_workers
        counted = state.available_workers is not None and state.unavailable_workers is not None
        assert counted or state.min_workers == 0 or not counts_expected


@given(STATES, st.booleans())
def test_a_failed_build_is_failed_whatever_the_counts(
    state: EndpointState, multinode: bool
) -> None:
    if state.status == "UPDATE_FAILED":
        assert judge(state, multinode=multinode).verdict == FAILED

"""Whether a PUT landed, from the endpoint row before and after it: examples and properties."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from migrate.core.landing import RowMark, landed

STATUSES = st.sampled_from(["READY", "UPDATE_PENDING", "UPDATE_IN_PROGRESS", "UPDATE_FAILED"])
TEXT = st.one_of(st.none(), st.text(min_size=1, max_size=12))
MARKS = st.builds(RowMark, status=STATUSES, task=TEXT, touched=TEXT)

BEFORE = RowMark("READY", "task_1", "2026-12-02T10:00:00+00:00")


def test_an_untouched_row_shows_no_put() -> None:
    assert not landed(BEFORE, BEFORE)


def test_a_stamp_from_a_clock_behind_ours_still_counts() -> None:
    # Model engine's host is 30 s behind: the new stamp is earlier than the old one.
    now = RowMark("UPDATE_PENDING", "task_1", "2026-12-02T09:59:31+00:00")
    assert landed(BEFORE, now)


def test_model_engines_broker_refusal_stamps_the_row_but_queues_nothing() -> None:
    stamped = RowMark("UPDATE_PENDING", "task_1", "2026-12-02T10:00:05+00:00")
    assert landed(BEFORE, stamped)  # taken alone, it looks landed
    assert not landed(BEFORE, stamped, refused_by_model_engine=True)  # but nothing builds
    queued = RowMark("UPDATE_PENDING", "task_2", "2026-12-02T10:00:06+00:00")
    assert landed(BEFORE, queued, refused_by_model_engine=True)


def test_a_database_without_the_columns_is_judged_on_status() -> None:
    before = RowMark("READY", None, None)
    assert not landed(before, RowMark("READY", None, None))
    assert landed(before, RowMark("UPDATE_PENDING", None, None))


@given(MARKS, st.booleans())
def test_nothing_changed_is_never_landed(mark: RowMark, refused: bool) -> None:
    assert not landed(mark, mark, refused_by_model_engine=refused)


@given(MARKS, MARKS, st.booleans())
def test_a_new_task_is_always_landed(before: RowMark, now: RowMark, refused: bool) -> None:
    if now.task != before.task:
        assert landed(before, now, refused_by_model_engine=refused)


@given(MARKS, MARKS)
def test_a_refusal_only_ever_narrows_what_counts(before: RowMark, now: RowMark) -> None:
    if landed(before, now, refused_by_model_engine=True):
        assert landed(before, now)


@given(MARKS)
def test_the_journal_form_reads_back(mark: RowMark) -> None:
    assert RowMark.from_json({**mark.to_json(), "counts": True}) == mark

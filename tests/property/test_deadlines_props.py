"""Hypothesis invariants of ews.command.deadlines: overdue reports, escalation timing and the repeat window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ews.command.deadlines import DUPLICATE_WINDOW, OPEN_STATUSES, escalation, is_overdue, repeats

ZONES = st.sampled_from([UTC, timezone(timedelta(hours=7), "WIB"), timezone(timedelta(hours=9), "WIT")])
instants = st.builds(
    lambda minutes, zone: (datetime(2026, 11, 28, tzinfo=UTC) + timedelta(minutes=minutes)).astimezone(zone),
    st.integers(-10_000, 10_000),
    ZONES,
)
periods = st.integers(1, 24 * 60).map(lambda m: timedelta(minutes=m))
statuses = st.sampled_from([*OPEN_STATUSES, "resolved"])


@given(statuses, instants, periods, instants)
def test_an_escalation_moves_the_deadline_past_now_by_whole_periods(
    status: str, deadline: datetime, period: timedelta, now: datetime
) -> None:
    decided = escalation(status, deadline, period, now)
    if decided is None:
        assert not is_overdue(status, deadline, now)
        return
    assert status != "resolved"
    assert now >= deadline
    assert decided.deadline > now  # the next check does not escalate again at once
    assert decided.deadline - now <= period  # ...and not later than one period from now
    assert decided.periods_late >= 1
    assert decided.deadline == deadline + decided.periods_late * period
    assert escalation(status, decided.deadline, period, now) is None  # one escalation per check


@given(instants, periods, instants, st.integers(0, 5))
def test_a_later_check_never_gives_an_earlier_deadline(
    deadline: datetime, period: timedelta, now: datetime, minutes: int
) -> None:
    first = escalation("routed", deadline, period, now)
    later = escalation("routed", deadline, period, now + timedelta(minutes=minutes))
    if first is not None and later is not None:
        assert later.deadline >= first.deadline


@given(statuses, instants, instants)
def test_resolved_is_never_overdue_and_open_is_overdue_exactly_from_the_deadline(
    status: str, deadline: datetime, now: datetime
) -> None:
    assert is_overdue(status, deadline, now) == (status != "resolved" and now >= deadline)


@given(instants, st.integers(-60, 120))
def test_the_repeat_window_is_thirty_minutes(received: datetime, minutes: int) -> None:
    later = received + timedelta(minutes=minutes)
    assert repeats(received, later) == (timedelta(minutes=minutes) <= DUPLICATE_WINDOW)


def test_naive_times_and_empty_periods_are_refused() -> None:
    aware = datetime(2026, 11, 28, tzinfo=UTC)
    with pytest.raises(ValueError, match="no time zone"):
        is_overdue("routed", aware.replace(tzinfo=None), aware)
    with pytest.raises(ValueError, match="must be positive"):
        escalation("routed", aware, timedelta(0), aware)

"""Pure: when a report is overdue, its next deadline after an escalation, and when a repeat joins an open report.

A report must be taken in hand by its deadline (the category's ``deadline`` of the region's routing rules,
counted from receipt; see :meth:`ews.command.routing.ReportRouting.due`). The rules:

1. A report is **overdue** at ``now`` when it is not resolved and ``now`` is at or after its deadline.
2. An overdue report **escalates** once per check: its escalation count goes up by one and its deadline moves
   on by whole periods (the category's deadline again) to the first instant after ``now``. A check that ran
   late (the scheduler was down for three periods) escalates once, not three times, and leaves a deadline in
   the future, so the next check does not escalate again at once.
3. A report **repeats** an open one (and joins it instead of being routed again) when it arrives within
   :data:`DUPLICATE_WINDOW` after it; the caller decides "same reporter or same place, same category".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

DUPLICATE_WINDOW = timedelta(minutes=30)
"""A report this soon after an open one of the same category from the same reporter or place joins it."""

OPEN_STATUSES = ("received", "routed", "in-progress")
"""Report statuses that still need someone to act (``resolved`` is final)."""


@dataclass(frozen=True)
class Escalation:
    """What one overdue check decides for a report: its new deadline and how many periods it was overdue."""

    deadline: datetime
    periods_late: int


def _aware(moment: datetime, what: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} {moment.isoformat()} has no time zone; give an aware datetime")


def is_overdue(status: str, deadline: datetime, now: datetime) -> bool:
    """Whether a report in ``status`` with ``deadline`` is overdue at ``now`` (rule 1).

    Raises
    ------
    ValueError
        ``deadline`` or ``now`` has no time zone.
    """
    _aware(deadline, "deadline")
    _aware(now, "now")
    return status in OPEN_STATUSES and now >= deadline


def escalation(status: str, deadline: datetime, period: timedelta, now: datetime) -> Escalation | None:
    """The escalation of a report at ``now`` (rule 2), or ``None`` when it is not overdue.

    Parameters
    ----------
    status
        The report's status; a resolved report never escalates.
    deadline
        Its current deadline (aware).
    period
        The category's deadline (how long the unit has each time); positive.
    now
        The instant of the check (aware).

    Returns
    -------
    Escalation or None
        ``deadline``: ``deadline + k * period`` for the smallest ``k >= 1`` that puts it after ``now``;
        ``periods_late``: that ``k`` (1 for a check on time).

    Raises
    ------
    ValueError
        ``period`` is not positive, or a datetime has no time zone.
    """
    if period <= timedelta(0):
        raise ValueError(f"period {period} must be positive (a category's deadline)")
    if not is_overdue(status, deadline, now):
        return None
    periods = (now - deadline) // period + 1
    return Escalation(deadline + periods * period, periods)


def repeats(previous_received: datetime, received: datetime, window: timedelta = DUPLICATE_WINDOW) -> bool:
    """Whether a report received at ``received`` is soon enough after an open one to join it (rule 3).

    A report received before the other (clock skew between sources) counts as within the window too.
    """
    _aware(previous_received, "previous_received")
    _aware(received, "received")
    return received - previous_received <= window

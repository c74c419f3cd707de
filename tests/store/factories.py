"""Tiny builders for store tests: fictional phone numbers and lifecycle decisions."""

from __future__ import annotations

from datetime import UTC, datetime

from ews.alerts.model import Decision, Transition
from ews.contacts import fictional_phone
from ews.types import Level

T0 = datetime(2026, 9, 24, 8, 0, tzinfo=UTC)


def phone(n: int) -> str:
    """A number from ews's reserved fictional range (never a real person)."""
    return fictional_phone(n)


def decision(
    village: str = "35.78.01.1001",
    seq: int = 1,
    thread: str = "CGT20260924002",
    region: str = "jawa-timur",
    level: Level = Level.SIAGA,
) -> Decision:
    """A NEW decision for one village."""
    return Decision(
        region=region,
        village_code=village,
        thread_id=thread,
        transition=Transition.NEW,
        level_before=Level.NONE,
        level=level,
        seq=seq,
        warning_id=thread,
        warning_sent=T0,
        expires=None,
        fraction=0.6,
        send=True,
        exercise=False,
        reason="covered 60%",
    )

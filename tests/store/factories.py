"""Tiny builders for store tests: fictional phone numbers and lifecycle decisions."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from ews.alerts.model import Decision, Transition
from ews.contacts import fictional_phone
from ews.types import Level

T0 = datetime(2026, 9, 24, 8, 0, tzinfo=UTC)
_R = TypeVar("_R")


def race(run: Callable[[], _R], workers: int = 3) -> list[_R]:
    """``run`` in ``workers`` threads at once (racing writers); their results. Any error fails the test."""
    results: list[_R] = []
    errors: list[BaseException] = []

    def one() -> None:
        try:
            results.append(run())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return results


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

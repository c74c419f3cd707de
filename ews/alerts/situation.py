"""A village's situation: every warning thread active in it, merged into what one message announces.

Pure. The lifecycle (:mod:`ews.alerts.lifecycle`) decides per thread; a resident, though, lives in a village,
not in a thread: when a BMKG nowcast and ews's own satellite-rain assessment both cover the village, they get
one message, at the higher level, naming the other ("juga: ..."). :func:`announce` compares the village's
situation before and after a cycle and says what, if anything, that one message announces:

- nothing active before, something now: ``NEW`` at the highest level;
- the highest level went up or down: ``ESCALATE`` / ``DEESCALATE`` (the lead warning's advice);
- a warning joined (a new hazard or source), the leading warning changed, or the lead's own expiry moved:
  ``UPDATE`` at the same level;
- every warning ended: one ending (``CANCEL`` when all were cancelled, ``EXPIRE`` when all expired,
  otherwise ``ALL_CLEAR``);
- anything else (a lower warning changed or ended under a higher one): nothing, the situation is the same.

The lead of a situation is its highest level; on a tie, the more dangerous hazard (tsunami, earthquake,
flood/landslide, weather), then BMKG's own warning before a derived one, then the newest.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from ews.alerts.model import Transition
from ews.types import Level

HAZARD_RANK: Mapping[str, int] = {"tsunami": 5, "gempa": 4, "banjir": 3, "longsor": 3, "cuaca": 1}
"""How a tie in level is broken between hazards: the one people must act on first leads."""


@dataclass(frozen=True)
class Part:
    """One warning thread's share of a village's situation: its level and what it is about."""

    thread_id: str
    level: Level
    hazard: str
    official: bool  # BMKG's own warning (a nowcast, a quake bulletin), not ews's derived assessment
    sent: datetime


@dataclass(frozen=True)
class Announcement:
    """What one village's message says this cycle.

    ``lead`` is the thread whose warning the message is about (for an ending: the highest one that ended);
    ``others`` the threads still active besides it (named briefly), highest first; ``ended`` the threads
    that ended this cycle besides the lead.
    """

    transition: Transition
    lead: str
    level: Level
    level_before: Level
    others: tuple[str, ...]
    ended: tuple[str, ...]


def _rank(part: Part) -> tuple[int, int, bool, datetime, str]:
    return (int(part.level), HAZARD_RANK.get(part.hazard, 0), part.official, part.sent, part.thread_id)


def ranked(parts: Iterable[Part]) -> list[Part]:
    """The parts, the lead first."""
    return sorted(parts, key=_rank, reverse=True)


def announce(
    before: Mapping[str, Part],
    after: Mapping[str, Part],
    *,
    updated: Collection[str] = (),
    endings: Mapping[str, Transition] | None = None,
) -> Announcement | None:
    """What changes in a village's situation from ``before`` to ``after`` (thread id -> part), if anything.

    ``updated``: threads whose own message this cycle moved its expiry (a lifecycle ``UPDATE``);
    ``endings``: thread id -> how it ended this cycle (cancel, all-clear, expire).
    """
    endings = endings or {}
    gone = [p for t, p in before.items() if t not in after]
    if not after:
        if not before:
            return None
        order = ranked(before.values())
        kinds = {endings.get(p.thread_id, Transition.ALL_CLEAR) for p in order}
        transition = next(iter(kinds)) if len(kinds) == 1 else Transition.ALL_CLEAR
        lead = order[0]
        return Announcement(
            transition, lead.thread_id, lead.level, lead.level, (), tuple(p.thread_id for p in order[1:])
        )
    order = ranked(after.values())
    lead = order[0]
    others = tuple(p.thread_id for p in order[1:])
    ended = tuple(p.thread_id for p in ranked(gone))
    if not before:
        return Announcement(Transition.NEW, lead.thread_id, lead.level, Level.NONE, others, ended)
    was = ranked(before.values())[0]
    if lead.level > was.level:
        transition = Transition.ESCALATE
    elif lead.level < was.level:
        transition = Transition.DEESCALATE
    elif set(after) - set(before) or lead.thread_id != was.thread_id or lead.thread_id in updated:
        transition = Transition.UPDATE
    else:
        return None
    return Announcement(transition, lead.thread_id, lead.level, was.level, others, ended)

"""Lifecycle vocabulary shared by the engine, the store and the CAP writer."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from ews.types import Level


class Transition(enum.StrEnum):
    """What happens to one village in one warning thread in one cycle."""

    NEW = "new"  # first alert for this village in this thread
    ESCALATE = "escalate"  # level goes up
    UPDATE = "update"  # same level, meaningfully changed (e.g. expiry extended)
    UNCHANGED = "unchanged"  # nothing to say: nothing is sent
    DEESCALATE = "de-escalate"  # level goes down (past the hysteresis margin)
    CANCEL = "cancel"  # BMKG cancelled the warning: everyone who heard anything in the thread is told
    ALL_CLEAR = "all-clear"  # the warning no longer covers the village
    EXPIRE = "expire"  # the warning expired: an all-clear for those who were alerted
    IGNORED = "ignored"  # stale replay, already expired on arrival, or a Test/Exercise on the public list

    @property
    def ends(self) -> bool:
        """Whether this transition ends the village's alert (cancels and all-clears go out first)."""
        return self in (Transition.CANCEL, Transition.ALL_CLEAR, Transition.EXPIRE)


@dataclass(frozen=True)
class VillageState:
    """What ews last announced for one village in one warning thread (kept in the store).

    ``thread_id`` is the identifier of the first BMKG message of the reference chain (Alert -> Update
    -> Cancel). ``seq`` counts the versions announced (0 = never announced). ``warning_sent`` is the
    ``<sent>`` of the BMKG message behind the last version, so replays of older messages are ignored.
    """

    region: str
    village_code: str
    thread_id: str
    level: Level
    seq: int
    warning_id: str
    warning_sent: datetime
    expires: datetime | None
    fraction: float
    active: bool


@dataclass(frozen=True)
class Decision:
    """One lifecycle decision. ``send`` says whether a new alert version goes out (``seq`` is its number).

    ``exercise`` marks decisions from CAP status Test/Exercise: they go to the exercise list only.
    """

    region: str
    village_code: str
    thread_id: str
    transition: Transition
    level_before: Level
    level: Level
    seq: int
    warning_id: str
    warning_sent: datetime
    expires: datetime | None
    fraction: float
    send: bool
    exercise: bool
    reason: str

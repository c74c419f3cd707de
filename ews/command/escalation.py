"""Pure: when a Tagana mobilisation pages whom, on the semantics of on-call tools (PagerDuty, Opsgenie).

A unit's :class:`Policy` is an ordered list of :class:`Step` (each pages the unit's contacts of some contact
step numbers, ``tagana.csv``'s ``step`` column, a ``delay`` after its round started), a number of ``repeat``
rounds, a ``quorum`` and an ``ack_timeout``. It is frozen into the mobilisation when it opens
(:meth:`Policy.to_json`): a later change of the region file does not change an open mobilisation.

The rules, all functions of their arguments (the caller gives ``now``):

1. A mobilisation pages only while it is ``open`` (nobody acknowledged this round). Step ``i`` of round ``r``
   is **due** at ``round_started_at + steps[i].delay`` and fires **at most once per round** (``state.fired``).
2. When every step of a round fired and nobody acknowledged, a new round starts ``repeat_after`` after the
   last step was due, at most ``repeat`` times per pass (a re-notification starts a new pass). A check that ran
   late starts only the latest round that has begun: older rounds are skipped, never paged in a burst.
3. Acknowledgements are counted per round (one per responder); ``quorum`` of them make the unit ``mobilised``
   (:func:`status_after_ack`); any one stops the escalation.
4. An acknowledged mobilisation is **re-notified** (a new round, a new pass) when the warning's level rose
   above the level it was acknowledged at and ``ack_timeout`` has passed since the acknowledgement
   (:func:`needs_renotify`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

STATUSES = ("open", "acknowledged", "mobilised", "stood-down")
"""A mobilisation's statuses: paging, acknowledged below the quorum, mobilised (quorum reached), ended."""


@dataclass(frozen=True)
class Step:
    """One escalation step: page the unit's contacts whose contact step is in ``targets``, ``delay`` into a round."""

    targets: tuple[int, ...]
    delay: timedelta

    def __post_init__(self) -> None:
        if not self.targets or any(t < 1 for t in self.targets):
            raise ValueError(f"an escalation step needs contact step numbers of 1 or more, not {self.targets!r}")
        if self.delay < timedelta(0):
            raise ValueError(f"an escalation step's delay must not be negative (got {self.delay})")


@dataclass(frozen=True)
class Policy:
    """A unit's escalation policy (see the module docstring); steps must be in order of their delay.

    Raises
    ------
    ValueError
        No step, steps out of order of delay, a negative repeat or repeat_after, a quorum below 1.
    """

    steps: tuple[Step, ...] = (
        Step((1,), timedelta(0)),
        Step((2,), timedelta(minutes=10)),
        Step((3,), timedelta(minutes=20)),
    )
    repeat: int = 1
    repeat_after: timedelta = timedelta(minutes=30)
    quorum: int = 1
    ack_timeout: timedelta = timedelta(minutes=60)

    def __post_init__(self) -> None:
        if not self.steps:
            raise ValueError("an escalation policy needs at least one step")
        delays = [s.delay for s in self.steps]
        if delays != sorted(delays):
            raise ValueError(
                "escalation steps must be listed in order of their delay (step 2 cannot fire before step 1): "
                + ", ".join(f"{int(d.total_seconds() // 60)} min" for d in delays)
            )
        if self.repeat < 0 or self.repeat_after < timedelta(0):
            raise ValueError("an escalation policy's repeat and repeat_after must not be negative")
        if self.quorum < 1:
            raise ValueError(f"an escalation policy's quorum must be 1 or more (got {self.quorum})")
        if self.ack_timeout < timedelta(0):
            raise ValueError("an escalation policy's ack_timeout must not be negative")

    @property
    def last_delay(self) -> timedelta:
        """When the last step of a round is due, from the round's start."""
        return self.steps[-1].delay

    def to_json(self) -> dict[str, Any]:
        """The policy as JSON (minutes as numbers), as frozen into a mobilisation."""
        return {
            "steps": [{"targets": list(s.targets), "delay_minutes": _minutes(s.delay)} for s in self.steps],
            "repeat": self.repeat,
            "repeat_after_minutes": _minutes(self.repeat_after),
            "quorum": self.quorum,
            "ack_timeout_minutes": _minutes(self.ack_timeout),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Policy:
        """The policy :meth:`to_json` wrote.

        Raises
        ------
        ValueError
            A field is missing or invalid (the message names it).
        """
        try:
            steps = tuple(
                Step(tuple(int(t) for t in s["targets"]), timedelta(minutes=float(s["delay_minutes"])))
                for s in data["steps"]
            )
            return cls(
                steps=steps,
                repeat=int(data["repeat"]),
                repeat_after=timedelta(minutes=float(data["repeat_after_minutes"])),
                quorum=int(data["quorum"]),
                ack_timeout=timedelta(minutes=float(data["ack_timeout_minutes"])),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"a frozen escalation policy lacks or mistypes the field {exc}") from None


def _minutes(delta: timedelta) -> float | int:
    minutes = delta.total_seconds() / 60
    return int(minutes) if minutes == int(minutes) else minutes


@dataclass(frozen=True)
class State:
    """What the rules need of one mobilisation.

    ``round`` is the current round (1 when it opened) and ``first_round`` the round its current pass began with
    (1, or the round a re-notification started): repeats are counted from it. ``fired`` holds the (round, step)
    pairs already paged (steps numbered from 1 in policy order).
    """

    status: str
    round: int
    round_started_at: datetime
    first_round: int = 1
    fired: frozenset[tuple[int, int]] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"mobilisation status {self.status!r} is not one of {', '.join(STATUSES)}")


@dataclass(frozen=True)
class Page:
    """One step to page now: in ``round``, policy step ``step`` (from 1), to contacts of ``targets``, due at ``due_at``.

    ``round_started_at`` is the round's start (a new round when a repeat began it).
    """

    round: int
    step: int
    targets: tuple[int, ...]
    due_at: datetime
    round_started_at: datetime


def _current_round(policy: Policy, state: State, now: datetime) -> tuple[int, datetime]:
    """The latest round begun by ``now``: the state's, or a repeat of it (rule 2).

    By the time a repeat begins every step of the round before it was due; a check that ran late skips the
    rounds it missed instead of paging them all at once.
    """
    number, started = state.round, state.round_started_at
    while number - state.first_round < policy.repeat:
        nxt = started + policy.last_delay + policy.repeat_after
        if nxt > now:
            break
        number, started = number + 1, nxt
    return number, started


def due_pages(policy: Policy, state: State, now: datetime) -> list[Page]:
    """The steps to page at ``now``, in order of delay; none unless the mobilisation is ``open`` (rule 1)."""
    if state.status != "open":
        return []
    number, started = _current_round(policy, state, now)
    return [
        Page(number, i, step.targets, started + step.delay, started)
        for i, step in enumerate(policy.steps, start=1)
        if started + step.delay <= now and (number, i) not in state.fired
    ]


def next_due(policy: Policy, state: State, now: datetime) -> datetime | None:
    """When the next page is due (it may be due already), or None.

    The earliest step that has not fired of the round ``now`` is in, else the next repeat's start; None for a
    mobilisation that is not open or whose rounds are spent.
    """
    if state.status != "open":
        return None
    number, started = _current_round(policy, state, now)
    for i, step in enumerate(policy.steps, start=1):
        if (number, i) not in state.fired:
            return started + step.delay
    if number - state.first_round < policy.repeat:
        return started + policy.last_delay + policy.repeat_after
    return None


def needs_renotify(
    policy: Policy, status: str, level: int, acked_level: int | None, acknowledged_at: datetime | None, now: datetime
) -> bool:
    """Whether an acknowledged mobilisation is paged again: its level rose and ``ack_timeout`` passed (rule 4)."""
    if status not in ("acknowledged", "mobilised") or acked_level is None or acknowledged_at is None:
        return False
    return level > acked_level and now >= acknowledged_at + policy.ack_timeout


def status_after_ack(policy: Policy, status: str, acks: int) -> str:
    """The status once ``acks`` responders acknowledged this round (rule 3); a stood-down one stays so."""
    if status == "stood-down" or acks < 1:
        return status
    return "mobilised" if acks >= policy.quorum else "acknowledged"

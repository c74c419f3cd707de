"""The alert lifecycle per village and warning thread (pure).

A *thread* is BMKG's reference chain: an Alert, the Updates that reference it, and maybe a Cancel. It is
named by the identifier of its first message (or, when an Update arrives before its Alert, by the
identifier the Update references: the Alert then joins the same thread when it comes).

Each cycle :func:`decide` compares what ews last announced per (village, thread) with the thread's
latest message and the fraction of the village it covers, and returns one :class:`Decision` per change:

========================  ============================================================  ======
transition                when                                                          sends
========================  ============================================================  ======
new                       not announced yet and the village now has a level             yes
escalate                  the level goes up                                             yes
update                    same level, a newer message moves the expiry by >= N minutes  yes
unchanged                 nothing worth saying (same message again, small change)       no
de-escalate               the level goes down even with the hysteresis margin added     yes
all-clear                 the thread's latest message no longer covers the village      yes
expire                    the thread's warning expired                                  yes
cancel                    BMKG cancelled the thread                                     yes
ignored                   a replay of an older message; already expired on arrival;     no
                          a cancel or all-clear for a village never alerted
========================  ============================================================  ======

A thread that disappears from the feed before it expires is kept as it is (a failed or partial fetch
must never produce a false all-clear); it ends with its expiry or a Cancel. Ending decisions come
first in the result, so cancels and all-clears are sent ahead of new alerts. Decisions of CAP status
Test/Exercise carry ``exercise=True``: they go to the exercise list only, never to residents.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ews.alerts.model import Decision, Transition, VillageState
from ews.config import AlertRules, LevelRules
from ews.impact.levels import village_level
from ews.types import Level

EXERCISE_STATUS = frozenset({"Exercise", "Test", "Draft", "System"})


@dataclass(frozen=True)
class ThreadMessage:
    """The latest BMKG message of a thread seen this cycle (a light view of :class:`ews.types.Warning`)."""

    thread_id: str
    identifier: str
    sent: datetime
    msg_type: str
    status: str
    severity: str
    urgency: str
    certainty: str
    expires: datetime | None


@dataclass(frozen=True)
class Outcome:
    """Decisions of one cycle, the states to keep, and notes explaining what was not acted on."""

    decisions: list[Decision]
    states: list[VillageState]
    notes: list[str] = field(default_factory=list)


def reference_ids(references: Iterable[str]) -> list[str]:
    """Identifiers from CAP ``references`` entries (``sender,identifier,sent``)."""
    out = []
    for entry in references:
        parts = entry.split(",")
        out.append(parts[1] if len(parts) >= 3 else entry)
    return out


def thread_of(identifier: str, msg_type: str, references: Sequence[str], known: Mapping[str, str]) -> str:
    """The thread a message belongs to, given the threads of messages seen before.

    An Alert starts its own thread (unless an earlier Update already named it). An Update or Cancel
    joins the thread of the first referenced message that is known, else the thread named by its first
    reference (so an Update that arrives before its Alert and the Alert itself share a thread).
    """
    if identifier in known:
        return known[identifier]
    refs = reference_ids(references)
    if msg_type == "Alert" or not refs:
        return identifier
    for ref in refs:
        if ref in known:
            return known[ref]
    return refs[0]


def latest_per_thread(messages: Iterable[ThreadMessage]) -> dict[str, ThreadMessage]:
    """The newest message (by ``sent``, then identifier) of each thread."""
    latest: dict[str, ThreadMessage] = {}
    for m in messages:
        kept = latest.get(m.thread_id)
        if kept is None or (m.sent, m.identifier) > (kept.sent, kept.identifier):
            latest[m.thread_id] = m
    return latest


def _meaningful_update(state: VillageState, message: ThreadMessage, rules: AlertRules) -> bool:
    if message.identifier == state.warning_id:
        return False
    if (state.expires is None) != (message.expires is None):
        return True
    if state.expires is None or message.expires is None:
        return False
    return abs((message.expires - state.expires).total_seconds()) >= rules.update_min_minutes * 60


def decide(
    region: str,
    states: Sequence[VillageState],
    messages: Sequence[ThreadMessage],
    coverage: Mapping[str, Mapping[str, float]],
    now: datetime,
    levels: LevelRules,
    rules: AlertRules,
    assessed: Mapping[str, Mapping[str, tuple[Level, Level]]] | None = None,
    standing: Collection[str] = (),
) -> Outcome:
    """One lifecycle step for a region.

    Parameters
    ----------
    region
        Region id (copied into decisions and states).
    states
        What was announced so far, per (village, thread), from the store.
    messages
        BMKG messages seen this cycle, already assigned to threads; the newest per thread is used.
    coverage
        Per thread id: village code -> fraction (0-1) of the village the thread's newest message covers.
    now
        The instant of this cycle (expiry is judged against it).
    levels, rules
        The region's level thresholds and lifecycle rules.
    assessed
        Per thread id: village code -> ``(level, held)`` for threads whose levels ews assessed itself
        (satellite rain, forecasts, earthquakes: :class:`ews.types.HazardMessage`). For these threads
        the CAP severity rules are not used; a level goes down only when ``held`` (the level with the
        source's hysteresis margin) is below the current level too. A village missing from the map is
        at ``Level.NONE`` (all-clear if it was alerted).
    standing
        Thread ids whose expiry is only a data-validity window that every new message pushes on (ews's
        standing rain thread): a moved expiry alone is not announced there, or residents would hear
        the same alert with every raster. The state still takes the new expiry.

    Returns
    -------
    Outcome
        Decisions (ending ones first, then by level, highest first), the full set of states to keep,
        and notes for messages that changed nothing (e.g. a Cancel for a warning never seen).
    """
    latest = latest_per_thread(messages)
    by_key = {(s.village_code, s.thread_id): s for s in states}
    decisions: list[Decision] = []
    notes: list[str] = []
    new_states = dict(by_key)

    def emit(
        state: VillageState | None,
        village: str,
        source: ThreadMessage | VillageState,
        transition: Transition,
        level: Level,
        fraction: float,
        reason: str,
    ) -> None:
        """Record a decision and the state it leaves; ``source`` is the message acted on (or the state)."""
        before = state.level if state else Level.NONE
        sends = transition not in (Transition.UNCHANGED, Transition.IGNORED)
        seq = (state.seq if state else 0) + (1 if sends else 0)
        thread = source.thread_id
        if isinstance(source, ThreadMessage):
            source_id, sent, expires = source.identifier, source.sent, source.expires
            exercise = source.status in EXERCISE_STATUS
        else:
            source_id, sent, expires, exercise = source.warning_id, source.warning_sent, source.expires, False
        decisions.append(
            Decision(
                region, village, thread, transition, before, level, seq, source_id, sent, expires, fraction,
                sends, exercise, reason,
            )
        )  # fmt: skip
        if transition is Transition.IGNORED:
            return
        new_states[(village, thread)] = VillageState(
            region=region,
            village_code=village,
            thread_id=thread,
            level=level,
            seq=seq,
            warning_id=source_id,
            warning_sent=sent,
            expires=expires,
            fraction=fraction,
            active=not transition.ends and level > Level.NONE,
        )

    # Threads with a message this cycle.
    assessed = assessed or {}
    for thread, message in sorted(latest.items()):
        covered = coverage.get(thread, {})
        own = assessed.get(thread)
        villages = sorted(set(covered) | set(own or {}) | {v for (v, t), s in by_key.items() if t == thread})
        if message.msg_type == "Cancel" and not any(by_key.get((v, thread)) for v in villages):
            notes.append(f"Cancel {message.identifier} for thread {thread}: no village was alerted, nothing to cancel")
        for village in villages:
            state = by_key.get((village, thread))
            fraction = float(covered.get(village, 0.0))
            active = state is not None and state.active
            if state is not None and (state.warning_sent, state.warning_id) > (message.sent, message.identifier):
                emit(state, village, message, Transition.IGNORED, state.level, state.fraction,
                     f"replay of older message {message.identifier}")  # fmt: skip
                continue
            expired = message.expires is not None and message.expires <= now
            if message.msg_type == "Cancel":
                if active:
                    emit(state, village, message, Transition.CANCEL, Level.NONE, 0.0, "BMKG cancelled the warning")
                continue
            if expired:
                if active:
                    emit(state, village, message, Transition.EXPIRE, Level.NONE, fraction, "the warning expired")
                elif state is None and fraction > 0:
                    emit(None, village, message, Transition.IGNORED, Level.NONE, fraction, "already expired on arrival")
                continue
            if own is not None:
                level, own_held = own.get(village, (Level.NONE, Level.NONE))
            else:
                level = village_level(message.severity, message.urgency, message.certainty, fraction, levels)
            if not active:
                if level > Level.NONE:
                    emit(state, village, message, Transition.NEW, level, fraction, f"{level.label} from {fraction:.0%}")
                continue
            assert state is not None  # noqa: S101 - active implies a state
            # Hysteresis: a level goes down only if it would also go down with a little more coverage.
            # It damps a wobbling edge; a village the warning no longer touches at all is clear.
            if own is not None:
                held = own_held
            elif fraction > 0:
                held = village_level(
                    message.severity, message.urgency, message.certainty, min(1.0, fraction + rules.hysteresis), levels
                )
            else:
                held = Level.NONE
            if level > state.level:
                emit(state, village, message, Transition.ESCALATE, level, fraction, f"up to {level.label}")
            elif level < state.level and held < state.level:
                if level is Level.NONE:
                    why = "the threat has passed" if own is not None else "no longer covered"
                    emit(state, village, message, Transition.ALL_CLEAR, Level.NONE, fraction, why)
                else:
                    emit(state, village, message, Transition.DEESCALATE, level, fraction, f"down to {level.label}")
            elif level == state.level and thread not in standing and _meaningful_update(state, message, rules):
                emit(state, village, message, Transition.UPDATE, level, fraction, "expiry moved")
            else:
                reason = "same message" if message.identifier == state.warning_id else "no meaningful change"
                if level < state.level:
                    reason = f"held at {state.level.label} (hysteresis)"
                emit(state, village, message, Transition.UNCHANGED, state.level, fraction, reason)

    # Threads with no message this cycle: they end only by expiry.
    for (village, thread), state in sorted(by_key.items()):
        if thread in latest or not state.active:
            continue
        if state.expires is not None and state.expires <= now:
            emit(state, village, state, Transition.EXPIRE, Level.NONE, state.fraction, "the warning expired")

    decisions.sort(key=lambda d: (not d.transition.ends, -int(d.level), d.thread_id, d.village_code))
    return Outcome(decisions, sorted(new_states.values(), key=lambda s: (s.thread_id, s.village_code)), notes)

"""The lifecycle engine, scenario by scenario (module docstring of ews.alerts.lifecycle has the table)."""

from __future__ import annotations

from datetime import datetime, timedelta

from ews.alerts.lifecycle import ThreadMessage, decide, thread_of
from ews.alerts.model import Transition, VillageState
from ews.config import AlertRules, LevelRules
from ews.types import Level

T0 = datetime.fromisoformat("2026-11-28T17:00:00+07:00")
LEVELS = LevelRules()
RULES = AlertRules()  # hysteresis 0.1, updates announced when expiry moves >= 30 min


def msg(
    ident: str,
    *,
    thread: str = "A1",
    minutes: int = 0,
    msg_type: str = "Alert",
    severity: str = "Moderate",
    hours: float = 2.0,
    status: str = "Actual",
) -> ThreadMessage:
    sent = T0 + timedelta(minutes=minutes)
    return ThreadMessage(thread, ident, sent, msg_type, status, severity, "Immediate", "Observed",
                         sent + timedelta(hours=hours))  # fmt: skip


def step(states: list[VillageState], messages: list[ThreadMessage], cover: dict[str, float], minutes: int = 0):
    coverage = {m.thread_id: cover for m in messages}
    return decide("r", states, messages, coverage, T0 + timedelta(minutes=minutes), LEVELS, RULES)


def kinds(outcome) -> dict[str, Transition]:
    return {d.village_code: d.transition for d in outcome.decisions}


def test_new_then_same_message_again_sends_nothing() -> None:
    # Moderate/Immediate/Observed: >= 50 % -> Siaga, 25-50 % -> Waspada.
    first = step([], [msg("A1")], {"v1": 0.9, "v2": 0.3})
    assert kinds(first) == {"v1": Transition.NEW, "v2": Transition.NEW}
    assert [(d.village_code, d.level, d.seq, d.send) for d in first.decisions] == [
        ("v1", Level.SIAGA, 1, True),
        ("v2", Level.WASPADA, 1, True),
    ]
    again = step(first.states, [msg("A1")], {"v1": 0.9, "v2": 0.3}, minutes=10)
    assert kinds(again) == {"v1": Transition.UNCHANGED, "v2": Transition.UNCHANGED}
    assert not any(d.send for d in again.decisions)
    assert again.states == first.states


def test_update_grows_and_raises_then_cancel() -> None:
    first = step([], [msg("A1")], {"v1": 0.3, "v2": 0.3})
    update = msg("U1", minutes=20, msg_type="Update", severity="Severe")
    second = step(first.states, [update], {"v1": 0.9, "v3": 0.6}, minutes=20)
    # v1 Waspada -> Awas (Severe +1); v2 no longer covered -> all-clear; v3 new at Awas.
    assert kinds(second) == {"v1": Transition.ESCALATE, "v2": Transition.ALL_CLEAR, "v3": Transition.NEW}
    assert second.decisions[0].transition is Transition.ALL_CLEAR  # endings go first
    assert {d.village_code: d.seq for d in second.decisions} == {"v1": 2, "v2": 2, "v3": 1}
    cancel = msg("C1", minutes=40, msg_type="Cancel")
    third = step(second.states, [cancel], {}, minutes=40)
    assert kinds(third) == {"v1": Transition.CANCEL, "v3": Transition.CANCEL}  # v2 already ended
    assert all(d.send and d.level is Level.NONE for d in third.decisions)
    assert not any(s.active for s in third.states)
    # The same Cancel fetched again changes nothing.
    assert step(third.states, [cancel], {}, minutes=50).decisions == []


def test_expiry_without_a_new_message_ends_the_alert() -> None:
    first = step([], [msg("A1", hours=1)], {"v1": 0.9})
    # The thread vanished from the feed but has not expired: kept (no false all-clear).
    assert step(first.states, [], {}, minutes=30).decisions == []
    ended = step(first.states, [], {}, minutes=61)
    assert [(d.transition, d.send, d.level_before) for d in ended.decisions] == [(Transition.EXPIRE, True, Level.SIAGA)]
    assert step(ended.states, [], {}, minutes=90).decisions == []


def test_nothing_is_sent_for_a_warning_already_expired() -> None:
    late = step([], [msg("A1", hours=1)], {"v1": 0.9}, minutes=120)
    assert [(d.transition, d.send) for d in late.decisions] == [(Transition.IGNORED, False)]
    assert late.states == []


def test_replayed_older_message_is_ignored() -> None:
    first = step([], [msg("A1"), msg("U1", minutes=20, msg_type="Update", hours=3)], {"v1": 0.9}, minutes=20)
    assert kinds(first) == {"v1": Transition.NEW}
    assert first.decisions[0].warning_id == "U1"
    replay = step(first.states, [msg("A1")], {"v1": 0.9}, minutes=30)
    assert [(d.transition, d.send) for d in replay.decisions] == [(Transition.IGNORED, False)]
    assert replay.states == first.states


def test_update_before_its_alert_shares_the_thread() -> None:
    ref = "bmkg,A1,2026-11-28T17:00:00+07:00"
    assert thread_of("U1", "Update", [ref], {}) == "A1"
    assert thread_of("A1", "Alert", [], {}) == "A1"
    assert thread_of("C1", "Cancel", ["bmkg,U1,2026-11-28T17:20:00+07:00"], {"U1": "A1"}) == "A1"
    update_first = step([], [msg("U1", minutes=20, msg_type="Update")], {"v1": 0.9}, minutes=20)
    assert kinds(update_first) == {"v1": Transition.NEW}
    alert_later = step(update_first.states, [msg("A1")], {"v1": 0.9}, minutes=25)
    assert [d.transition for d in alert_later.decisions] == [Transition.IGNORED]


def test_cancel_for_a_warning_never_seen_is_explained() -> None:
    outcome = step([], [msg("C9", thread="X9", msg_type="Cancel")], {})
    assert outcome.decisions == []
    assert outcome.notes == ["Cancel C9 for thread X9: no village was alerted, nothing to cancel"]


def test_exercise_is_marked() -> None:
    outcome = step([], [msg("E1", status="Exercise")], {"v1": 0.9})
    assert [(d.transition, d.exercise) for d in outcome.decisions] == [(Transition.NEW, True)]


def test_hysteresis_holds_a_wobbling_level() -> None:
    first = step([], [msg("A1")], {"v1": 0.55})  # Siaga (>= 0.5)
    wobble = step(first.states, [msg("A2", minutes=10, msg_type="Update")], {"v1": 0.45}, minutes=10)
    # 0.45 alone would be Waspada, but 0.45 + 0.1 is still Siaga: held.
    assert [(d.transition, d.level, d.send) for d in wobble.decisions] == [(Transition.UNCHANGED, Level.SIAGA, False)]
    down = step(wobble.states, [msg("A3", minutes=20, msg_type="Update")], {"v1": 0.3}, minutes=20)
    assert [(d.transition, d.level) for d in down.decisions] == [(Transition.DEESCALATE, Level.WASPADA)]


def test_update_sent_only_when_expiry_moves_enough() -> None:
    first = step([], [msg("A1", hours=2)], {"v1": 0.9})
    small = step(first.states, [msg("U1", minutes=10, msg_type="Update", hours=2)], {"v1": 0.9}, minutes=10)
    assert [d.transition for d in small.decisions] == [Transition.UNCHANGED]  # expiry moved 10 min
    big = step(small.states, [msg("U2", minutes=20, msg_type="Update", hours=3)], {"v1": 0.9}, minutes=20)
    assert [(d.transition, d.seq) for d in big.decisions] == [(Transition.UPDATE, 2)]

"""The pure escalation rules (ews.command.escalation) on a three-step policy worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ews.command.escalation import Policy, State, Step, due_pages, needs_renotify, next_due, status_after_ack

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
POLICY = Policy()  # steps at 0, 10 and 20 min; one repeat 30 min after the last step; quorum 1; ack timeout 60 min


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def test_default_policy_round_trips_through_json() -> None:
    assert Policy.from_json(POLICY.to_json()) == POLICY
    assert POLICY.to_json()["steps"][1] == {"targets": [2], "delay_minutes": 10}


def test_step_two_is_due_after_its_delay_once_step_one_fired() -> None:
    state = State("open", 1, T0, fired=frozenset({(1, 1)}))
    assert due_pages(POLICY, state, minutes(9)) == []
    [page] = due_pages(POLICY, state, minutes(10))
    assert (page.round, page.step, page.targets, page.due_at) == (1, 2, (2,), minutes(10))
    assert next_due(POLICY, state, minutes(5)) == minutes(10)


def test_nothing_pages_once_acknowledged() -> None:
    for status in ("acknowledged", "mobilised", "stood-down"):
        state = State(status, 1, T0, fired=frozenset({(1, 1)}))
        assert due_pages(POLICY, state, minutes(100)) == []
        assert next_due(POLICY, state, minutes(100)) is None


def test_repeat_round_starts_thirty_minutes_after_the_last_step_and_only_once() -> None:
    fired = frozenset({(1, 1), (1, 2), (1, 3)})
    state = State("open", 1, T0, fired=fired)
    # Last step at 20 min + repeat_after 30 min: round 2 begins at 50 min with step 1.
    assert due_pages(POLICY, state, minutes(49)) == []
    assert next_due(POLICY, state, minutes(49)) == minutes(50)
    [page] = due_pages(POLICY, state, minutes(50))
    assert (page.round, page.step, page.round_started_at) == (2, 1, minutes(50))
    # Round 2 fully fired: repeat is 1, so no round 3 ever.
    spent = State("open", 2, minutes(50), fired=fired | {(2, 1), (2, 2), (2, 3)})
    assert due_pages(POLICY, spent, minutes(500)) == []
    assert next_due(POLICY, spent, minutes(500)) is None


def test_a_late_check_pages_the_due_steps_of_the_latest_round_only() -> None:
    state = State("open", 1, T0, fired=frozenset({(1, 1)}))
    # At 60 min round 2 has begun (at 50): its steps 1 (50) is due, step 2 (60) too; round 1's are skipped.
    pages = due_pages(POLICY, state, minutes(60))
    assert [(p.round, p.step) for p in pages] == [(2, 1), (2, 2)]


def test_renotify_needs_a_higher_level_and_the_timeout() -> None:
    acked = minutes(5)
    assert not needs_renotify(POLICY, "mobilised", 3, 2, acked, minutes(64))  # 59 min after the ack
    assert needs_renotify(POLICY, "mobilised", 3, 2, acked, minutes(65))
    assert not needs_renotify(POLICY, "mobilised", 2, 2, acked, minutes(500))  # same level
    assert not needs_renotify(POLICY, "open", 3, 2, acked, minutes(500))  # not acknowledged


def test_quorum() -> None:
    two = Policy(quorum=2)
    assert status_after_ack(two, "open", 1) == "acknowledged"
    assert status_after_ack(two, "acknowledged", 2) == "mobilised"
    assert status_after_ack(POLICY, "open", 1) == "mobilised"
    assert status_after_ack(POLICY, "stood-down", 3) == "stood-down"


def test_invalid_policies_are_refused() -> None:
    with pytest.raises(ValueError, match="order of their delay"):
        Policy(steps=(Step((1,), timedelta(minutes=10)), Step((2,), timedelta(0))))
    with pytest.raises(ValueError, match="quorum"):
        Policy(quorum=0)
    with pytest.raises(ValueError, match="contact step numbers"):
        Step((), timedelta(0))
    with pytest.raises(ValueError, match="lacks or mistypes"):
        Policy.from_json({"steps": []})

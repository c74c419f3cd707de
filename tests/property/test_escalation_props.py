"""Invariants of the escalation rules: a step never twice per round, nothing after an ack, delay order, quorum."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from ews.command.escalation import Policy, State, Step, due_pages, status_after_ack

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    delays = sorted(draw(st.lists(st.integers(0, 60), min_size=1, max_size=4)))
    steps = tuple(Step((draw(st.integers(1, 3)),), timedelta(minutes=d)) for d in delays)
    return Policy(
        steps=steps, repeat=draw(st.integers(0, 3)), repeat_after=timedelta(minutes=draw(st.integers(0, 40))),
        quorum=draw(st.integers(1, 4)),
    )  # fmt: skip


def run(policy: Policy, checks: list[int]) -> tuple[list[tuple[int, int]], State]:
    """Check at each minute offset (sorted), recording pages into the state as the engine does."""
    state = State("open", 1, T0)
    paged: list[tuple[int, int]] = []
    for offset in sorted(checks):
        pages = due_pages(policy, state, T0 + timedelta(minutes=offset))
        paged += [(p.round, p.step) for p in pages]
        if pages:
            newest = pages[-1]
            state = State(
                "open", newest.round, newest.round_started_at, 1, state.fired | {(p.round, p.step) for p in pages}
            )
    return paged, state


@given(policies(), st.lists(st.integers(0, 400), max_size=30))
def test_a_step_fires_at_most_once_per_round(policy: Policy, checks: list[int]) -> None:
    paged, _ = run(policy, checks)
    assert len(paged) == len(set(paged))
    assert all(r <= 1 + policy.repeat for r, _ in paged)


@given(policies(), st.lists(st.integers(0, 400), max_size=30), st.integers(0, 400))
def test_nothing_pages_after_an_acknowledgement(policy: Policy, checks: list[int], later: int) -> None:
    _, state = run(policy, checks)
    for status in ("acknowledged", "mobilised", "stood-down"):
        acked = State(status, state.round, state.round_started_at, 1, state.fired)
        assert due_pages(policy, acked, T0 + timedelta(minutes=max(checks, default=0) + later)) == []


@given(policies(), st.integers(0, 400))
def test_pages_come_in_order_of_delay(policy: Policy, at: int) -> None:
    pages = due_pages(policy, State("open", 1, T0), T0 + timedelta(minutes=at))
    assert [p.due_at for p in pages] == sorted(p.due_at for p in pages)
    assert all(p.due_at <= T0 + timedelta(minutes=at) for p in pages)


@given(st.integers(1, 6), st.integers(0, 8))
def test_mobilised_exactly_at_the_quorum(quorum: int, acks: int) -> None:
    status = status_after_ack(Policy(quorum=quorum), "open", acks)
    assert (status == "mobilised") == (acks >= quorum)
    assert (status == "open") == (acks == 0)

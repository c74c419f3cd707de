"""Lifecycle invariants over random sequences of Alert / Update / Cancel / time passing.

A small simulated ledger plays the part of the store: sends go to a village's subscribers, and
endings (cancel, all-clear, expire) go to everyone the ledger says heard anything for that village
in that thread. Checked after every sequence:
- no (thread, village, version) is sent twice, so no recipient gets two messages for one version;
- re-running any earlier cycle's messages at the current time sends nothing;
- once time passes every expiry, everyone who got an alert also got its ending;
- more severe never gives a lower level.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from ews.alerts.lifecycle import ThreadMessage, decide
from ews.alerts.model import Transition, VillageState
from ews.config import AlertRules, LevelRules
from ews.types import Level

T0 = datetime.fromisoformat("2026-11-28T17:00:00+07:00")
VILLAGES = ["v0", "v1", "v2", "v3"]
SUBSCRIBERS = {"v0": ["r0"], "v1": ["r1", "r2"], "v2": ["r2"], "v3": ["r3", "r4"]}
SEVERITY = ["Minor", "Moderate", "Severe", "Extreme"]
LEVELS, RULES = LevelRules(), AlertRules()

coverage = st.dictionaries(st.sampled_from(VILLAGES), st.floats(0.0, 1.0, allow_nan=False), max_size=4)
event = st.one_of(
    st.tuples(st.just("Alert"), st.sampled_from(["T0", "T1"]), coverage, st.sampled_from(SEVERITY), st.integers(1, 4)),
    st.tuples(st.just("Update"), st.sampled_from(["T0", "T1"]), coverage, st.sampled_from(SEVERITY), st.integers(1, 4)),
    st.tuples(st.just("Cancel"), st.sampled_from(["T0", "T1"]), st.just({}), st.just("Minor"), st.just(1)),
    st.tuples(st.just("Tick"), st.just(""), st.just({}), st.just("Minor"), st.just(0)),
)
steps = st.lists(st.tuples(event, st.integers(5, 90)), min_size=1, max_size=12)


class Ledger:
    def __init__(self) -> None:
        self.rows: set[tuple[str, str, int, str]] = set()
        self.last: dict[tuple[str, str, str], Transition] = {}  # (thread, village, recipient) -> last sent

    def send(self, d) -> None:
        if d.transition.ends:
            recipients = sorted({r for (t, v, _, r) in self.rows if (t, v) == (d.thread_id, d.village_code)})
        else:
            recipients = SUBSCRIBERS[d.village_code]
        for r in recipients:
            key = (d.thread_id, d.village_code, d.seq, r)
            assert key not in self.rows, f"sent twice: {key}"
            self.rows.add(key)
            self.last[(d.thread_id, d.village_code, r)] = d.transition


@settings(max_examples=300, deadline=None)
@given(steps)
def test_lifecycle_invariants(sequence: list[tuple[tuple[str, str, dict[str, float], str, int], int]]) -> None:
    states: list[VillageState] = []
    ledger = Ledger()
    now = T0
    history: list[tuple[list[ThreadMessage], dict[str, float]]] = []
    for n, ((kind, thread, cover, severity, hours), minutes) in enumerate(sequence):
        now += timedelta(minutes=minutes)
        messages = []
        if kind != "Tick":
            messages = [ThreadMessage(thread, f"{thread}-{n}", now, kind, "Actual", severity, "Immediate",
                                      "Observed", now + timedelta(hours=hours))]  # fmt: skip
        outcome = decide("r", states, messages, {thread: cover} if messages else {}, now, LEVELS, RULES)
        endings_first = [d.transition.ends for d in outcome.decisions if d.send]
        assert endings_first == sorted(endings_first, reverse=True)
        for d in outcome.decisions:
            if d.send:
                ledger.send(d)
        states = outcome.states
        history.append((messages, cover))
        # Re-running any earlier cycle (its messages and coverage) now sends nothing new.
        for earlier, cover_then in history:
            rerun = decide("r", states, earlier, {m.thread_id: cover_then for m in earlier}, now, LEVELS, RULES)
            assert not [d for d in rerun.decisions if d.send], rerun.decisions
    # Let every warning expire: all alerts end, and everyone alerted heard the ending.
    final = decide("r", states, [], {}, now + timedelta(hours=10), LEVELS, RULES)
    for d in final.decisions:
        assert d.transition is Transition.EXPIRE
        ledger.send(d)
    assert not any(s.active for s in final.states)
    for key, last in ledger.last.items():
        assert last.ends, f"{key} last heard {last}, never its ending"


@given(coverage, st.integers(0, 2), st.integers(0, 3))
def test_more_severe_never_lower(cover: dict[str, float], low: int, high_offset: int) -> None:
    high = min(3, low + high_offset)
    levels = {}
    for severity in (SEVERITY[low], SEVERITY[high]):
        m = ThreadMessage("T0", f"T0-{severity}", T0, "Alert", "Actual", severity, "Immediate", "Observed",
                          T0 + timedelta(hours=2))  # fmt: skip
        outcome = decide("r", [], [m], {"T0": cover}, T0, LEVELS, RULES)
        levels[severity] = {d.village_code: d.level for d in outcome.decisions}
    for village in cover:
        assert levels[SEVERITY[high]].get(village, Level.NONE) >= levels[SEVERITY[low]].get(village, Level.NONE)

"""Threads whose levels ews assessed itself (rain, forecast, earthquake) in the lifecycle engine."""

from __future__ import annotations

from datetime import datetime, timedelta

from ews.alerts.lifecycle import ThreadMessage, decide, thread_of
from ews.alerts.model import Transition, VillageState
from ews.config import AlertRules, LevelRules
from ews.types import Level

T0 = datetime.fromisoformat("2026-11-28T17:00:00+07:00")
ROOT = "ews.rain.r"


def rain(hour: int, valid_hours: float = 3.0) -> ThreadMessage:
    sent = T0 + timedelta(hours=hour)
    return ThreadMessage(ROOT, f"{ROOT}.{hour}", sent, "Update", "Actual", "Severe", "Immediate", "Observed",
                         sent + timedelta(hours=valid_hours))  # fmt: skip


def step(states: list[VillageState], message: ThreadMessage, levels: dict[str, tuple[Level, Level]], hour: float):
    assessed = {ROOT: levels}
    coverage = {ROOT: dict.fromkeys(levels, 1.0)}
    now = T0 + timedelta(hours=hour)
    return decide("r", states, [message], coverage, now, LevelRules(), AlertRules(), assessed)


def kinds(outcome) -> dict[str, Transition]:
    return {d.village_code: d.transition for d in outcome.decisions}


def test_a_standing_thread_is_one_thread_across_cycles() -> None:
    assert thread_of(f"{ROOT}.1", "Update", (ROOT,), {}) == ROOT
    assert thread_of(f"{ROOT}.2", "Update", (ROOT,), {f"{ROOT}.1": ROOT}) == ROOT


def test_levels_are_used_as_given_with_the_held_level_as_hysteresis() -> None:
    first = step([], rain(0), {"v1": (Level.SIAGA, Level.SIAGA), "v2": (Level.WASPADA, Level.WASPADA)}, 0)
    assert kinds(first) == {"v1": Transition.NEW, "v2": Transition.NEW}
    assert {d.village_code: d.level for d in first.decisions} == {"v1": Level.SIAGA, "v2": Level.WASPADA}
    # v1 dips to Waspada but is still Siaga with the margin: held. v2 rises.
    second = step(first.states, rain(1), {"v1": (Level.WASPADA, Level.SIAGA), "v2": (Level.AWAS, Level.AWAS)}, 1)
    assert kinds(second) == {"v1": Transition.UNCHANGED, "v2": Transition.ESCALATE}
    assert "hysteresis" in next(d.reason for d in second.decisions if d.village_code == "v1")
    # v1 below the margin too: down; v2 no longer listed: the threat has passed.
    third = step(second.states, rain(2), {"v1": (Level.WASPADA, Level.WASPADA)}, 2)
    assert kinds(third) == {"v1": Transition.DEESCALATE, "v2": Transition.ALL_CLEAR}
    clear = next(d for d in third.decisions if d.village_code == "v2")
    assert clear.send
    assert clear.reason == "the threat has passed"
    assert third.decisions[0].transition is Transition.ALL_CLEAR  # endings first


def test_an_older_raster_is_a_replay_and_a_silent_source_expires() -> None:
    first = step([], rain(2), {"v1": (Level.SIAGA, Level.SIAGA)}, 2)
    replay = step(first.states, rain(1), {"v1": (Level.AWAS, Level.AWAS)}, 2.5)
    assert kinds(replay) == {"v1": Transition.IGNORED}
    assert not any(d.send for d in replay.decisions)
    # No newer raster: the alert expires valid_hours after the last one.
    later = decide("r", first.states, [], {}, T0 + timedelta(hours=5, minutes=1), LevelRules(), AlertRules(), {})
    assert kinds(later) == {"v1": Transition.EXPIRE}


def test_a_village_at_none_that_was_never_alerted_gets_nothing() -> None:
    out = step([], rain(0), {"v1": (Level.NONE, Level.WASPADA)}, 0)
    assert out.decisions == []


def test_a_standing_thread_does_not_announce_a_moved_expiry() -> None:
    first = step([], rain(0), {"v1": (Level.SIAGA, Level.SIAGA)}, 0)
    later = rain(1)  # the next raster: same level, expiry one hour later
    assessed = {ROOT: {"v1": (Level.SIAGA, Level.SIAGA)}}
    now = T0 + timedelta(hours=1)
    loud = decide("r", first.states, [later], {}, now, LevelRules(), AlertRules(), assessed)
    quiet = decide("r", first.states, [later], {}, now, LevelRules(), AlertRules(), assessed, standing={ROOT})
    assert kinds(loud) == {"v1": Transition.UPDATE}
    assert kinds(quiet) == {"v1": Transition.UNCHANGED}
    assert not any(d.send for d in quiet.decisions)
    assert quiet.states[0].expires == later.expires  # the alert still lasts as long as the new raster says

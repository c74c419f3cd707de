"""A village's warnings merged into what its one message announces (ews.alerts.situation)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ews.alerts.model import Transition
from ews.alerts.situation import Part, announce, ranked
from ews.types import Level

T0 = datetime(2026, 11, 28, 10, tzinfo=UTC)


def part(thread: str, level: Level, hazard: str = "cuaca", official: bool = True, minutes: int = 0) -> Part:
    return Part(thread, level, hazard, official, T0 + timedelta(minutes=minutes))


BMKG = part("bmkg", Level.AWAS)
RAIN = part("rain", Level.WASPADA, official=False)


def test_two_warnings_at_once_are_one_new_message_at_the_higher_level() -> None:
    said = announce({}, {"bmkg": BMKG, "rain": RAIN})
    assert said is not None
    assert (said.transition, said.lead, said.level, said.others, said.ended) == (
        Transition.NEW, "bmkg", Level.AWAS, ("rain",), (),
    )  # fmt: skip


def test_the_higher_warning_ending_lowers_the_situation_and_names_it() -> None:
    said = announce({"bmkg": BMKG, "rain": RAIN}, {"rain": RAIN}, endings={"bmkg": Transition.CANCEL})
    assert said is not None
    assert (said.transition, said.lead, said.level, said.level_before, said.ended) == (
        Transition.DEESCALATE, "rain", Level.WASPADA, Level.AWAS, ("bmkg",),
    )  # fmt: skip


def test_a_lower_warning_ending_under_a_higher_one_says_nothing() -> None:
    assert announce({"bmkg": BMKG, "rain": RAIN}, {"bmkg": BMKG}, endings={"rain": Transition.ALL_CLEAR}) is None


def test_a_lower_warning_changing_under_a_higher_one_says_nothing() -> None:
    lowered = part("rain", Level.SIAGA, official=False)
    assert announce({"bmkg": BMKG, "rain": RAIN}, {"bmkg": BMKG, "rain": lowered}) is None


def test_a_warning_joining_at_a_lower_level_is_an_update_naming_it() -> None:
    said = announce({"bmkg": BMKG}, {"bmkg": BMKG, "rain": RAIN})
    assert said is not None
    assert (said.transition, said.lead, said.level, said.others) == (Transition.UPDATE, "bmkg", Level.AWAS, ("rain",))


def test_a_higher_warning_joining_escalates() -> None:
    said = announce({"rain": RAIN}, {"rain": RAIN, "bmkg": BMKG})
    assert said is not None
    assert (said.transition, said.lead, said.level_before) == (Transition.ESCALATE, "bmkg", Level.WASPADA)


def test_the_lead_moving_its_expiry_is_an_update_and_an_unchanged_one_is_silent() -> None:
    assert announce({"bmkg": BMKG}, {"bmkg": BMKG}) is None
    said = announce({"bmkg": BMKG}, {"bmkg": BMKG}, updated={"bmkg"})
    assert said is not None
    assert said.transition is Transition.UPDATE
    assert announce({"bmkg": BMKG, "rain": RAIN}, {"bmkg": BMKG, "rain": RAIN}, updated={"rain"}) is None


@pytest.mark.parametrize(
    ("endings", "expected"),
    [
        ({"bmkg": Transition.CANCEL, "rain": Transition.CANCEL}, Transition.CANCEL),
        ({"bmkg": Transition.EXPIRE, "rain": Transition.EXPIRE}, Transition.EXPIRE),
        ({"bmkg": Transition.CANCEL, "rain": Transition.ALL_CLEAR}, Transition.ALL_CLEAR),
    ],
)
def test_everything_ending_is_one_ending(endings: dict[str, Transition], expected: Transition) -> None:
    said = announce({"bmkg": BMKG, "rain": RAIN}, {}, endings=endings)
    assert said is not None
    assert (said.transition, said.lead, said.level, said.ended) == (expected, "bmkg", Level.AWAS, ("rain",))


def test_nothing_before_and_nothing_after_says_nothing() -> None:
    assert announce({}, {}) is None


def test_a_tie_in_level_is_led_by_the_more_dangerous_hazard_then_by_bmkg() -> None:
    quake = part("quake", Level.AWAS, "gempa")
    tsunami = part("tsunami", Level.AWAS, "tsunami", minutes=-30)
    rain = part("rain", Level.AWAS, official=False, minutes=10)
    nowcast = part("nowcast", Level.AWAS)
    assert [p.thread_id for p in ranked([rain, quake, nowcast, tsunami])] == ["tsunami", "quake", "nowcast", "rain"]


LEVELS = st.sampled_from([Level.WASPADA, Level.SIAGA, Level.AWAS])
SITUATIONS = st.dictionaries(
    st.sampled_from(["a", "b", "c"]),
    st.builds(lambda lvl, hz: (lvl, hz), LEVELS, st.sampled_from(["cuaca", "gempa", "tsunami"])),
    max_size=3,
)


@given(SITUATIONS, SITUATIONS)
def test_the_announcement_states_the_level_residents_now_face(
    before: dict[str, tuple[Level, str]], after: dict[str, tuple[Level, str]]
) -> None:
    was = {t: part(t, lvl, hz) for t, (lvl, hz) in before.items()}
    now = {t: part(t, lvl, hz) for t, (lvl, hz) in after.items()}
    said = announce(was, now)
    if said is None and not was and not now:
        return
    if said is None:
        # Silence only when the highest level and the lead warning stay and nothing joined.
        assert was
        assert now
        assert max(p.level for p in was.values()) == max(p.level for p in now.values())
        assert set(now) <= set(was)
        return
    if now:
        assert said.level == max(p.level for p in now.values())
        assert said.lead in now
        assert set(said.others) == set(now) - {said.lead}
        assert set(said.ended) == set(was) - set(now)
    else:
        assert said.transition.ends
        assert said.level == max(p.level for p in was.values())

"""Invariants of the level mapping: more hazard never lowers a level; decisions are deterministic."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ews.config import LevelRules
from ews.impact.levels import village_level
from ews.types import Level

SEVERITY = ["Unknown", "Minor", "Moderate", "Severe", "Extreme"]  # ascending
URGENCY = ["Past", "Unknown", "Future", "Expected", "Immediate"]
CERTAINTY = ["Unlikely", "Unknown", "Possible", "Likely", "Observed"]
RULES = LevelRules()

fractions = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
cap_values = st.tuples(st.sampled_from(SEVERITY), st.sampled_from(URGENCY), st.sampled_from(CERTAINTY))


@given(cap_values, fractions, fractions)
def test_more_coverage_never_lowers_the_level(cap: tuple[str, str, str], f1: float, f2: float) -> None:
    lo, hi = sorted((f1, f2))
    assert village_level(*cap, lo, RULES) <= village_level(*cap, hi, RULES)


@given(st.integers(0, 3), st.integers(0, 3), st.sampled_from(URGENCY), st.sampled_from(CERTAINTY), fractions)
def test_more_severe_never_lowers_the_level(a: int, b: int, urgency: str, certainty: str, f: float) -> None:
    lo, hi = sorted((a, b))
    ordered = SEVERITY[1:]  # Minor..Extreme; Unknown maps like Minor by default
    assert village_level(ordered[lo], urgency, certainty, f, RULES) <= village_level(
        ordered[hi], urgency, certainty, f, RULES
    )


@given(cap_values, fractions)
def test_level_is_in_range_and_deterministic(cap: tuple[str, str, str], f: float) -> None:
    level = village_level(*cap, f, RULES)
    assert level in Level
    assert level == village_level(*cap, f, RULES)
    if f < RULES.min_fraction:
        assert level is Level.NONE

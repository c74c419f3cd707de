"""The level mapping, case by case (README "Levels")."""

from __future__ import annotations

import pytest

from ews.config import LevelRules
from ews.impact.levels import village_level
from ews.types import Level

RULES = LevelRules()  # min 0.05, partial 0.25, strong 0.5; Extreme->Awas, Severe->Siaga, else Waspada


@pytest.mark.parametrize(
    ("severity", "urgency", "certainty", "fraction", "expected"),
    [
        # BMKG's usual nowcast: Moderate/Immediate/Observed.
        ("Moderate", "Immediate", "Observed", 0.99, Level.SIAGA),  # base Waspada +1 (here, now, most of it)
        ("Moderate", "Immediate", "Observed", 0.30, Level.WASPADA),  # base, no step
        ("Moderate", "Immediate", "Observed", 0.10, Level.WASPADA),  # -1 for partial, clamped at Waspada
        ("Moderate", "Immediate", "Observed", 0.04, Level.NONE),  # under min_fraction
        ("Severe", "Immediate", "Observed", 0.60, Level.AWAS),  # Siaga +1
        ("Severe", "Expected", "Likely", 0.60, Level.SIAGA),  # no step up without Immediate+Observed
        ("Severe", "Immediate", "Observed", 0.20, Level.WASPADA),  # Siaga -1 (partial)
        ("Severe", "Future", "Possible", 0.90, Level.WASPADA),  # Siaga -1 -1 -> clamped Waspada
        ("Extreme", "Immediate", "Observed", 1.00, Level.AWAS),  # Awas +1 clamped at Awas
        ("Extreme", "Past", "Observed", 1.00, Level.NONE),  # over
        ("Extreme", "Immediate", "Unlikely", 1.00, Level.NONE),  # not expected
        ("Unknown", "Unknown", "Unknown", 0.50, Level.WASPADA),
    ],
)
def test_mapping(severity: str, urgency: str, certainty: str, fraction: float, expected: Level) -> None:
    assert village_level(severity, urgency, certainty, fraction, RULES) is expected


def test_region_thresholds_apply() -> None:
    strict = LevelRules(min_fraction=0.5, partial_fraction=0.6, strong_fraction=0.9)
    assert village_level("Moderate", "Immediate", "Observed", 0.45, strict) is Level.NONE
    assert village_level("Moderate", "Immediate", "Observed", 0.85, strict) is Level.WASPADA
    assert village_level("Moderate", "Immediate", "Observed", 0.95, strict) is Level.SIAGA


def test_level_order_and_labels() -> None:
    assert Level.WASPADA < Level.SIAGA < Level.AWAS
    assert [lv.label for lv in Level] == ["none", "Waspada", "Siaga", "Awas"]
    assert Level.from_label("siaga") is Level.SIAGA
    with pytest.raises(ValueError, match="unknown level 'Merah'"):
        Level.from_label("Merah")

"""A village's warning level from a CAP warning and the fraction of the village it covers (pure).

The mapping (documented in the README, thresholds per region in ``levels:``):

1. ``fraction < min_fraction`` -> no level (the warning only grazes the village).
2. ``urgency == Past`` or ``certainty == Unlikely`` -> no level.
3. Start from the region's level for the CAP ``severity`` (default Extreme -> Awas, Severe -> Siaga,
   Moderate/Minor/Unknown -> Waspada).
4. One step up when the threat is here and now over most of the village: ``urgency == Immediate``,
   ``certainty == Observed`` and ``fraction >= strong_fraction``.
5. One step down for each of: ``urgency == Future``; ``certainty == Possible``;
   ``fraction < partial_fraction``.
6. Clamp to Waspada..Awas: a warning that covers a village at all keeps it at least Waspada.
"""

from __future__ import annotations

from ews.config import LevelRules
from ews.types import Level


def village_level(severity: str, urgency: str, certainty: str, fraction: float, rules: LevelRules) -> Level:
    """The level for one village; see the module docstring for the rules.

    Parameters
    ----------
    severity, urgency, certainty
        CAP 1.2 values of the warning's ``<info>``.
    fraction
        Share of the village's area (0-1) inside the warning polygons.
    rules
        The region's thresholds.
    """
    if fraction < rules.min_fraction or fraction <= 0.0:
        return Level.NONE
    if urgency == "Past" or certainty == "Unlikely":
        return Level.NONE
    base = rules.severity.get(severity, rules.severity["Unknown"])
    if base is Level.NONE:
        return Level.NONE
    step = 0
    if urgency == "Immediate" and certainty == "Observed" and fraction >= rules.strong_fraction:
        step += 1
    if urgency == "Future":
        step -= 1
    if certainty == "Possible":
        step -= 1
    if fraction < rules.partial_fraction:
        step -= 1
    return Level(min(max(int(base) + step, int(Level.WASPADA)), int(Level.AWAS)))

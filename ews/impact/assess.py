"""Warnings x villages -> impact rows and the level of each village (pure)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ews.config import LevelRules
from ews.exposure.coverage import VillageLayer, village_coverage
from ews.exposure.population import people_exposed
from ews.impact.levels import village_level
from ews.types import HazardMessage, Level, Warning

IMPACT_COLUMNS = [
    "code", "name", "kecamatan", "kecamatan_name", "kabkota", "kabkota_name", "warning_id", "event",
    "fraction", "area_km2", "covered_km2", "level", "level_label", "population", "population_exposed",
    "population_source",
]  # fmt: skip


def impacts(layer: VillageLayer, warnings: Sequence[Warning], rules: LevelRules) -> pd.DataFrame:
    """One row per (village, warning) with positive overlap, with the level that overlap gives.

    ``layer.table`` must carry ``kecamatan``, ``kabkota``, ``kecamatan_name``, ``kabkota_name``,
    ``population`` and ``population_source``. Rows are sorted by level (highest first), then fraction.
    """
    table = layer.table
    frames = []
    for warning in warnings:
        cover = village_coverage(layer, warning.geometry)
        if cover.empty:
            continue
        rows = table.iloc[cover["index"].to_numpy()]
        levels = [
            int(village_level(warning.severity, warning.urgency, warning.certainty, f, rules))
            for f in cover["fraction"]
        ]
        population = rows["population"].to_numpy(dtype=float)
        frames.append(
            pd.DataFrame(
                {
                    "code": cover["code"].to_numpy(),
                    "name": cover["name"].to_numpy(),
                    "kecamatan": rows["kecamatan"].to_numpy(),
                    "kecamatan_name": rows["kecamatan_name"].to_numpy(),
                    "kabkota": rows["kabkota"].to_numpy(),
                    "kabkota_name": rows["kabkota_name"].to_numpy(),
                    "warning_id": warning.identifier,
                    "event": warning.event,
                    "fraction": cover["fraction"].to_numpy(),
                    "area_km2": cover["area_km2"].to_numpy(),
                    "covered_km2": cover["covered_km2"].to_numpy(),
                    "level": levels,
                    "level_label": [Level(v).label for v in levels],
                    "population": population,
                    "population_exposed": people_exposed(population, cover["fraction"].to_numpy()),
                    "population_source": rows["population_source"].to_numpy(),
                }
            )
        )
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in IMPACT_COLUMNS})
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(["level", "fraction", "code"], ascending=[False, False, True], kind="stable").reset_index(
        drop=True
    )


def hazard_impacts(table: pd.DataFrame, hazards: Sequence[HazardMessage]) -> pd.DataFrame:
    """Impact rows (same columns as :func:`impacts`) for the villages ews itself assessed.

    ``table`` is the region's village table (``code``, ``name``, ``kecamatan``, ``kecamatan_name``,
    ``kabkota``, ``kabkota_name``, ``population``, ``population_source``, optionally ``area_km2``).
    Only villages with a level are listed; ``fraction`` is the share of the village affected as the
    source reports it, and ``population_exposed`` that share of its population. Codes not in the
    table are left out (a source may cover more than the region).
    """
    by_code = table.set_index("code")
    frames = []
    for h in hazards:
        chosen = [v for v in h.villages if v.level > Level.NONE and v.code in by_code.index]
        if not chosen:
            continue
        rows = by_code.loc[[v.code for v in chosen]]
        fraction = np.array([v.fraction for v in chosen], dtype=float)
        population = rows["population"].to_numpy(dtype=float)
        area = rows["area_km2"].to_numpy(dtype=float) if "area_km2" in rows else np.full(len(chosen), np.nan)
        frames.append(
            pd.DataFrame(
                {
                    "code": [v.code for v in chosen],
                    "name": rows["name"].to_numpy(),
                    "kecamatan": rows["kecamatan"].to_numpy(),
                    "kecamatan_name": rows["kecamatan_name"].to_numpy(),
                    "kabkota": rows["kabkota"].to_numpy(),
                    "kabkota_name": rows["kabkota_name"].to_numpy(),
                    "warning_id": h.warning.identifier,
                    "event": h.warning.event,
                    "fraction": fraction,
                    "area_km2": area,
                    "covered_km2": area * fraction,
                    "level": [int(v.level) for v in chosen],
                    "level_label": [v.level.label for v in chosen],
                    "population": population,
                    "population_exposed": people_exposed(population, fraction),
                    "population_source": rows["population_source"].to_numpy(),
                }
            )
        )
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in IMPACT_COLUMNS})
    return pd.concat(frames, ignore_index=True)


def village_levels(rows: pd.DataFrame) -> pd.DataFrame:
    """Collapse impact rows to one per village: the highest level wins, then the larger fraction.

    ``population_exposed`` is the exposed share under the winning warning (not summed: overlapping
    warnings cover the same people).
    """
    if rows.empty:
        return rows.copy()
    ordered = rows.sort_values(["code", "level", "fraction"], ascending=[True, False, False], kind="stable")
    best = ordered.drop_duplicates("code", keep="first")
    counts = rows.groupby("code")["warning_id"].nunique()
    best = best.assign(warnings=best["code"].map(counts).to_numpy())
    return best.sort_values(["level", "fraction", "code"], ascending=[False, False, True], kind="stable").reset_index(
        drop=True
    )


def level_counts(per_village: pd.DataFrame) -> dict[str, int]:
    """Villages per level label (Awas, Siaga, Waspada) including zeros."""
    counts = {lv.label: 0 for lv in (Level.AWAS, Level.SIAGA, Level.WASPADA)}
    if not per_village.empty:
        for value, n in per_village["level"].value_counts().items():
            if int(value) > 0:
                counts[Level(int(value)).label] = int(n)
    return counts


def exposed_total(per_village: pd.DataFrame) -> float | None:
    """People exposed in villages with a level; None when no population is known."""
    if per_village.empty:
        return 0.0
    leveled = per_village[per_village["level"] > 0]
    values = leveled["population_exposed"].to_numpy(dtype=float)
    if len(values) and np.isnan(values).all():
        return None
    return float(np.nansum(values))

"""What a run's village tables say (pure): ``summary.csv`` and ``villages.gpkg``/``villages.geojson``.

The tables follow the map's rule (:func:`ews.review.scene.village_standing`): a level is a level **in force**
at the run's time, and a village whose alert the run cancelled or ended says so instead of showing the level
that ended. A Cancel (which repeats its polygons), an expired warning BMKG still serves, or an alert that
ended give no level, so :func:`ews.impact.assess.level_counts` and :func:`~ews.impact.assess.exposed_total`
of the table (the run report's ``levels`` and ``people_exposed``) count only alerts in force.

One row per village that a warning of the run touched, or whose alert the run ended. The columns of
:func:`ews.impact.assess.village_levels` keep their names; those that speak of the level say it of warnings
in force:

``level``, ``level_label``
    The level in force: ``0``/``"none"`` when no warning in force gives one.
``status``
    ``"BERLAKU"``: a level in force. ``"DICABUT"``: a Cancel of this run ended the village's alert.
    ``"BERAKHIR"``: its alert expired or the threat passed in this run. ``""``: touched with no level in
    force and nothing ended this run (a warning that only grazes the village; a warning no longer in force
    whose alert ended in an earlier run, or never started).
``ended_level``, ``ended_thread``
    On ``DICABUT`` and ``BERAKHIR`` rows: the level that ended (``"Siaga"``) and its thread
    (``ews alerts show THREAD``); ``""`` on the others.
``warning_id``, ``event``, ``fraction``, ``covered_km2``
    The warning behind the row and how much of the village its area covers: the winning warning in force;
    on a row without one, the warning of the run that touched the village (the Cancel, the expired
    warning); empty, nothing covered, on an ended village no warning of the run touched.
``population_exposed``
    People under the warning in force; ``0`` on a row without one (nobody is exposed any more).
``warnings``
    How many warnings in force cover the village.

Rows come in that order: levels in force (highest first), then ``DICABUT``, ``BERAKHIR`` (the higher ended
level first), then the rest; within each, the larger fraction first, then the code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import numpy as np
import pandas as pd

from ews.impact.assess import IMPACT_COLUMNS, village_levels
from ews.review.riskmap import ENDED_WORDS
from ews.review.scene import EndedAlert, village_standing
from ews.types import Level, Warning

__all__ = ["IN_FORCE_WORD", "STATUS_COLUMNS", "TABLE_COLUMNS", "ended_counts", "village_table"]

IN_FORCE_WORD = "BERLAKU"
"""``status`` of a village with a level in force (``DICABUT``/``BERAKHIR``: :data:`ews.review.riskmap.ENDED_WORDS`)."""

STATUS_COLUMNS = ("status", "ended_level", "ended_thread")
"""The columns the tables add to :func:`ews.impact.assess.village_levels`'s, after ``level_label``."""

_AFTER = IMPACT_COLUMNS.index("level_label") + 1
TABLE_COLUMNS = [*IMPACT_COLUMNS[:_AFTER], *STATUS_COLUMNS, *IMPACT_COLUMNS[_AFTER:], "warnings"]
"""The columns of :func:`village_table`, in order (``summary.csv`` leaves out the two name columns)."""

_RANK = {IN_FORCE_WORD: 0, ENDED_WORDS["cancel"]: 1, ENDED_WORDS["end"]: 2, "": 3}


def village_table(
    villages: pd.DataFrame,
    rows: pd.DataFrame,
    warnings: Sequence[Warning],
    *,
    now: datetime,
    ended: Mapping[str, EndedAlert] | None = None,
) -> pd.DataFrame:
    """One row per village of the run, at its level in force or with how its alert ended (module docstring).

    Parameters
    ----------
    villages : pandas.DataFrame
        The region's villages: ``code``, ``name``, ``kecamatan``, ``kecamatan_name``, ``kabkota``,
        ``kabkota_name``, ``population``, ``population_source``, optionally ``area_km2`` (km²); the rows
        of ended villages that no warning of the run touched come from here.
    rows : pandas.DataFrame
        The run's impact rows (:func:`ews.impact.assess.impacts` and ``hazard_impacts``).
    warnings : sequence of Warning
        Every warning of the run, BMKG's and ews's own.
    now : datetime
        The run's instant: which warnings are in force.
    ended : mapping, optional
        The alerts this run ended (:func:`ews.review.scene.ended_alerts`).

    Returns
    -------
    pandas.DataFrame
        :data:`TABLE_COLUMNS` (and any other column of ``rows``), sorted as the module docstring says.
    """
    standing = village_standing(rows, warnings, now, ended)
    gone = standing.ended
    frames = [standing.levels] if len(standing.levels) else []
    seen = set(standing.levels["code"].astype(str)) if len(standing.levels) else set()
    touched = village_levels(rows) if len(rows) else rows
    if len(touched):  # villages touched only by warnings not in force: no level, nobody exposed
        rest = touched[~touched["code"].astype(str).isin(seen)]
        if len(rest):
            frames.append(rest.assign(level=0, level_label=Level.NONE.label, population_exposed=0.0, warnings=0))
        seen |= set(touched["code"].astype(str))
    untouched = [code for code in gone if code not in seen]  # ended with no warning in the feed any more
    if untouched:
        frames.append(_ended_rows(villages, untouched))
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in TABLE_COLUMNS})
    table = pd.concat(frames, ignore_index=True)
    codes = table["code"].astype(str).tolist()
    levels = table["level"].astype(int).tolist()
    table["status"] = [
        ENDED_WORDS[gone[c].kind] if c in gone else IN_FORCE_WORD if lv > 0 else ""
        for c, lv in zip(codes, levels, strict=True)
    ]
    table["ended_level"] = [gone[c].level.label if c in gone else "" for c in codes]
    table["ended_thread"] = [gone[c].thread_id if c in gone else "" for c in codes]
    order = np.lexsort(
        (
            np.array(codes, dtype=str),
            -table["fraction"].astype(float).fillna(0.0).to_numpy(),
            -np.array([int(gone[c].level) if c in gone else 0 for c in codes]),
            np.array([_RANK[s] for s in table["status"]]),
            -np.array(levels),
        )
    )
    table = table.iloc[order].reset_index(drop=True)
    columns = [*TABLE_COLUMNS, *(c for c in table.columns if c not in TABLE_COLUMNS)]
    return table.reindex(columns=columns)


def ended_counts(table: pd.DataFrame) -> dict[str, int]:
    """Villages per ended status of a :func:`village_table`: ``{"DICABUT": n, "BERAKHIR": m}``, zeros included."""
    words = list(ENDED_WORDS.values())
    if "status" not in table or table.empty:
        return dict.fromkeys(words, 0)
    counts = table["status"].value_counts()
    return {w: int(counts.get(w, 0)) for w in words}


def _ended_rows(villages: pd.DataFrame, codes: Sequence[str]) -> pd.DataFrame:
    """Rows for ended villages that no warning of the run touched: the village's facts, nothing covered."""
    base = pd.DataFrame(villages.drop(columns="geometry", errors="ignore"))
    base = base.assign(code=base["code"].astype(str)).drop_duplicates("code").set_index("code").reindex(codes)

    def column(name: str) -> object:
        return base[name].to_numpy() if name in base.columns else np.nan

    return pd.DataFrame(
        {
            "code": list(codes),
            "name": column("name"),
            "kecamatan": column("kecamatan"),
            "kecamatan_name": column("kecamatan_name"),
            "kabkota": column("kabkota"),
            "kabkota_name": column("kabkota_name"),
            "warning_id": "",
            "event": "",
            "fraction": 0.0,
            "area_km2": column("area_km2"),
            "covered_km2": 0.0,
            "level": 0,
            "level_label": Level.NONE.label,
            "population": column("population"),
            "population_exposed": 0.0,
            "population_source": column("population_source"),
            "warnings": 0,
        }
    )

"""What a run's risk map shows, from what the run knows (pure).

:func:`map_scene` turns a run's villages, impact rows, warnings, ews's own hazard messages and the alerts
the run ended into the three inputs of :mod:`ews.review.riskmap`: the villages to draw (with the level in
force, or how their alert ended), the areas to outline (with who drew each) and the title. The rules:

- A village's level on the map comes only from warnings **in force** at the run's time: not a Cancel, not
  expired. A warning BMKG still serves after its expiry, or a Cancel that repeats the polygons, gives no
  level on the map (it used to be drawn red).
- A village whose last active alert ended in this run (the lifecycle's cancel, expire or all-clear:
  :func:`ended_alerts`) is drawn as ended: ``"cancel"`` (DICABUT) when a Cancel of this run ended it,
  else ``"end"`` (BERAKHIR). In later runs it is simply not leveled. These two rules are
  :func:`village_standing`, which the village tables (:mod:`ews.review.tables`) follow too.
- An area's legend names its true source: BMKG's CAP polygon is ``"area peringatan BMKG"`` only when the
  sender is BMKG; ews's tsunami circle and shaking radius are ews's estimate (``estimate_by``); any other
  CAP sender is named.
- A run is an **exercise** when every warning it read has a CAP status of Exercise, Test, Draft or System
  (:data:`ews.alerts.lifecycle.EXERCISE_STATUS`); its outputs say LATIHAN (:func:`exercise_marks`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

import geopandas as gpd
import numpy as np
import pandas as pd

from ews.alerts.lifecycle import EXERCISE_STATUS
from ews.alerts.model import VillageState
from ews.hazard.earthquake import MESSAGE_PREFIX as QUAKE_PREFIX
from ews.impact.assess import village_levels
from ews.review.display import DisplayGeometry
from ews.review.riskmap import EXERCISE_WORD, WARNING_LABEL, ActiveWarning, MapTitle, Outline
from ews.types import HazardMessage, Level, Warning

__all__ = [
    "DEFAULT_ESTIMATE_BY",
    "EXERCISE_COLUMN",
    "NEIGHBOURS_DRAWN",
    "EndedAlert",
    "MapScene",
    "VillageStanding",
    "area_source",
    "ended_alerts",
    "exercise_ids",
    "exercise_marks",
    "in_force",
    "is_bmkg",
    "is_exercise_run",
    "issuer",
    "map_scene",
    "village_standing",
]

DEFAULT_ESTIMATE_BY = "perkiraan EWS"
"""Whose estimate ews's own areas are when the region names no command center."""

EXERCISE_COLUMN = "exercise"
"""The first column of an exercise run's tables (``summary.csv``, ``villages.*``, ``warnings.geojson``):
``LATIHAN`` on every row that comes from an exercise warning, empty on a row from a real one."""

RAIN_PREFIX = "ews.rain."
FORECAST_PREFIX = "ews.forecast."
_PAD = 0.1  # villages around the focus drawn too (their neighbours), as a share of the focus's span
NEIGHBOURS_DRAWN = 10_000
"""At most this many untouched neighbours are drawn one by one; more (a national map) are drawn as the region's
outline instead, so the page stays a few MB and the PNG quick (given the display geometry)."""


@dataclass(frozen=True)
class EndedAlert:
    """A village whose last active alert ended in this run.

    ``kind`` is ``"cancel"`` (a Cancel of this run ended it: DICABUT) or ``"end"`` (it expired or the
    threat passed: BERAKHIR); ``level`` is the level that ended; ``thread_id`` its thread.
    """

    village_code: str
    kind: str
    level: Level
    thread_id: str


@dataclass(frozen=True)
class MapScene:
    """The inputs of :func:`ews.review.riskmap.risk_map_png` and :func:`~ews.review.riskmap.risk_map_html`."""

    villages: gpd.GeoDataFrame
    areas: gpd.GeoDataFrame
    title: MapTitle
    outline: Outline | None = None


def ended_alerts(
    before: Iterable[VillageState], after: Iterable[VillageState], cancels: Collection[str]
) -> dict[str, EndedAlert]:
    """The villages whose alerts this run ended, from the village states before and after its alert step.

    Parameters
    ----------
    before
        The region's active states before the step (``Store.active_alerts``).
    after
        The region's states after it, active and not (``Store.village_states``).
    cancels
        Identifiers of this run's Cancel messages: a state ended by one of them is ``"cancel"``.

    Returns
    -------
    dict
        Village code -> :class:`EndedAlert`, for villages active before and active in no thread after (a
        village still alerted by another thread has not ended). When several threads of a village ended,
        a cancel is told first, then the highest level.
    """
    now = {(s.village_code, s.thread_id): s for s in after}
    still = {s.village_code for s in now.values() if s.active}
    out: dict[str, EndedAlert] = {}
    for s in before:
        state = now.get((s.village_code, s.thread_id))
        if not s.active or s.village_code in still or state is None or state.active:
            continue
        kind = "cancel" if state.warning_id in cancels else "end"
        old = out.get(s.village_code)
        if old is None or (kind == "cancel", s.level) > (old.kind == "cancel", old.level):
            out[s.village_code] = EndedAlert(s.village_code, kind, s.level, s.thread_id)
    return out


def in_force(warning: Warning, now: datetime) -> bool:
    """Whether ``warning`` can give a level at ``now``: not a Cancel, and not expired (as the lifecycle says)."""
    return warning.msg_type != "Cancel" and (warning.expires is None or warning.expires > now)


@dataclass(frozen=True)
class VillageStanding:
    """Where each village of a run stands: the level in force, or the alert this run ended.

    ``levels`` is :func:`ews.impact.assess.village_levels` of the impact rows of the warnings in force
    (villages those warnings only graze are there at level 0); ``ended`` the alerts this run ended in
    villages with no level in force (a level in force wins over an ended thread).
    """

    levels: pd.DataFrame
    ended: Mapping[str, EndedAlert]

    @property
    def leveled(self) -> pd.DataFrame:
        """The rows of ``levels`` with a level (Waspada or above)."""
        return self.levels[self.levels["level"].astype(int) > 0] if len(self.levels) else self.levels


def village_standing(
    rows: pd.DataFrame,
    warnings: Sequence[Warning],
    now: datetime,
    ended: Mapping[str, EndedAlert] | None = None,
) -> VillageStanding:
    """The level in force of each village touched by a run, and the alerts it ended where none is in force.

    The one rule behind the map (:func:`map_scene`) and the village tables
    (:func:`ews.review.tables.village_table`), so the two never disagree.

    Parameters
    ----------
    rows : pandas.DataFrame
        The run's impact rows: ``code``, ``warning_id``, ``level``, ``fraction``, ``population_exposed``.
    warnings : sequence of Warning
        Every warning of the run (BMKG's and ews's own); only those :func:`in_force` at ``now`` give a level.
    now : datetime
        The run's instant.
    ended : mapping, optional
        The alerts this run ended (:func:`ended_alerts`).

    Returns
    -------
    VillageStanding
        The levels in force, and the ended alerts of the villages left without one.
    """
    live_ids = {w.identifier for w in warnings if in_force(w, now)}
    if len(rows):
        levels = village_levels(rows[rows["warning_id"].astype(str).isin(live_ids)])
    else:
        levels = pd.DataFrame(columns=["code", "warning_id", "level", "fraction", "population_exposed"])
    leveled = set(levels.loc[levels["level"].astype(int) > 0, "code"].astype(str)) if len(levels) else set()
    return VillageStanding(levels, {c: e for c, e in (ended or {}).items() if c not in leveled})


def exercise_ids(warnings: Iterable[Warning]) -> frozenset[str]:
    """Identifiers of the warnings with CAP status Exercise, Test, Draft or System."""
    return frozenset(w.identifier for w in warnings if w.status in EXERCISE_STATUS)


def is_exercise_run(warnings: Sequence[Warning]) -> bool:
    """Whether the run is an exercise as a whole: it read warnings, and every one is an exercise.

    A run that mixes a real warning with an exercise is *not* stamped LATIHAN as a whole (a real warning
    must never look like a drill); its exercise rows and title entries are marked one by one.
    """
    return bool(warnings) and len(exercise_ids(warnings)) == len({w.identifier for w in warnings})


def exercise_marks(warning_ids: Iterable[object], marked: Collection[str]) -> list[str]:
    """``"LATIHAN"`` for each id in ``marked`` (the exercise warnings), ``""`` for the others."""
    return [EXERCISE_WORD if str(w) in marked else "" for w in warning_ids]


def is_bmkg(sender: str) -> bool:
    """Whether a CAP ``<sender>`` is BMKG (``cuaca.ekstrem@bmkg.go.id``, any address at bmkg.go.id)."""
    host = sender.strip().lower().rsplit("@", 1)[-1]
    return host == "bmkg.go.id" or host.endswith(".bmkg.go.id")


def issuer(warning: Warning, estimate_by: str = DEFAULT_ESTIMATE_BY) -> str:
    """Who the title names for a warning: ``"BMKG"``, ews's estimate, or the CAP sender as it is."""
    if warning.sender == "ews":
        if warning.identifier.startswith(QUAKE_PREFIX):
            return f"info gempa BMKG, {estimate_by}"
        if warning.identifier.startswith(RAIN_PREFIX):
            return f"hujan satelit, {estimate_by}"
        if warning.identifier.startswith(FORECAST_PREFIX):
            return "prakiraan cuaca BMKG"
        return estimate_by
    return "BMKG" if is_bmkg(warning.sender) else warning.sender


def area_source(
    warning: Warning, hazard: HazardMessage | None = None, estimate_by: str = DEFAULT_ESTIMATE_BY
) -> tuple[str, bool]:
    """The legend's name for a warning's area, and whether ews drew it itself (an estimate).

    BMKG's CAP polygon: ``"area peringatan BMKG"``. ews's earthquake circle: ``"radius tsunami 300 km dari
    pusat gempa – perkiraan EWS"`` (the radius of the circle as drawn) or ``"radius guncangan gempa 85 km –
    perkiraan EWS"`` (from the hazard's details; without them ``"area <event> – perkiraan EWS"``). Another
    CAP sender: ``"area peringatan CAP <sender>"``.
    """
    if warning.sender != "ews":
        return (WARNING_LABEL if is_bmkg(warning.sender) else f"area peringatan CAP {warning.sender}"), False
    details = hazard.details if hazard is not None else {}
    shaking = _number(details.get("shaking_radius_km"))
    if warning.identifier.startswith(QUAKE_PREFIX) and shaking is not None:
        if details.get("tsunami"):  # the circle drawn is the larger of the two radii
            radius = max(shaking, _number(details.get("tsunami_radius_km")) or 0.0)
            return f"radius tsunami {radius:.0f} km dari pusat gempa – {estimate_by}", True
        return f"radius guncangan gempa {shaking:.0f} km – {estimate_by}", True
    if warning.identifier.startswith(RAIN_PREFIX):
        return f"area hujan satelit – {estimate_by}", True
    return f"area {warning.event or 'peringatan'} – {estimate_by}", True


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def map_scene(
    table: gpd.GeoDataFrame,
    rows: pd.DataFrame,
    warnings: Sequence[Warning],
    *,
    region_name: str,
    now: datetime,
    tz: tzinfo,
    zone_name: str,
    estimate_by: str = DEFAULT_ESTIMATE_BY,
    hazards: Sequence[HazardMessage] = (),
    ended: Mapping[str, EndedAlert] | None = None,
    population_note: str | None = None,
    display: DisplayGeometry | None = None,
) -> MapScene:
    """The villages, areas and title of a run's risk map.

    Parameters
    ----------
    table : geopandas.GeoDataFrame
        The region's villages (EPSG:4326): ``code``, ``name``, ``kecamatan_name``, ``kabkota_name``,
        ``geometry``.
    rows : pandas.DataFrame
        The run's impact rows (:func:`ews.impact.assess.impacts` and ``hazard_impacts``): ``code``,
        ``warning_id``, ``level``, ``fraction``, ``population_exposed``.
    warnings : sequence of Warning
        Every warning of the run: BMKG's and ews's own (rain, forecast, earthquake).
    region_name : str
        The region's name from its configuration (the heading).
    now : datetime
        The run's instant: which warnings are in force.
    tz, zone_name
        The region's local zone and its name (WIB/WITA/WIT), for the title's times.
    estimate_by : str
        Whose estimate ews's own areas are (the region's command center, else ``"perkiraan EWS"``).
    hazards : sequence of HazardMessage
        ews's assessments behind its own warnings (the earthquake circle's radii).
    ended : mapping, optional
        The alerts this run ended (:func:`ended_alerts`).
    population_note : str, optional
        The title's footnote on how people were counted.
    display : DisplayGeometry, optional
        The villages simplified once per boundary set (:func:`ews.review.display.display_geometry`, the
        codes of ``table``): the villages are drawn at the level of detail the view needs, and more than
        :data:`NEIGHBOURS_DRAWN` untouched neighbours give way to the region's outline.

    Returns
    -------
    MapScene
        ``villages``: the villages around every village with a level in force or an ended alert (their
        neighbours too, at level 0, unless ``outline`` stands for them), with ``kecamatan`` and ``kabkota``
        names and ``ended``; ``areas``: the areas of the warnings in force, with ``label`` and ``estimate``;
        ``title``; ``outline``: the region's outline under the villages and how many untouched villages of
        the view it stands for (``None``: every village in view is drawn).
    """
    standing = village_standing(rows, warnings, now, ended)
    current, ended = standing.leveled, dict(standing.ended)
    live = [w for w in warnings if in_force(w, now)]
    live_ids = {w.identifier for w in live}
    leveled = set(current["code"].astype(str))

    hazard_by_id = {h.warning.identifier: h for h in hazards}
    located = [w for w in live if not w.geometry.is_empty]
    sources = [area_source(w, hazard_by_id.get(w.identifier), estimate_by) for w in located]
    areas = gpd.GeoDataFrame(
        {
            "identifier": [w.identifier for w in located],
            "event": [w.event for w in located],
            "label": [label for label, _ in sources],
            "estimate": [estimate for _, estimate in sources],
        },
        geometry=[w.geometry for w in located],
        crs="EPSG:4326",
    )

    codes = table["code"].astype(str)
    focus = table[codes.isin(leveled | set(ended))]
    if len(focus):
        box = focus.total_bounds
    elif len(areas):  # nothing leveled here: show the region's villages under the areas, if any
        box = areas.total_bounds
    else:
        box = None
    span = 0.0
    if box is not None:
        minx, miny, maxx, maxy = (float(b) for b in box)
        pad = _PAD * max(maxx - minx, maxy - miny, 0.05)
        nearby = table.cx[minx - pad : maxx + pad, miny - pad : maxy + pad]
        span = max(maxx - minx, maxy - miny) + 2 * pad
    else:
        nearby = table.iloc[0:0]
    outline = None
    if display is not None:
        touched = nearby["code"].astype(str).isin(leveled | set(ended)).to_numpy()
        untouched = int((~touched).sum())
        if untouched > NEIGHBOURS_DRAWN:
            nearby, outline = nearby[touched], Outline(display.outline, untouched)
    by_code = current.set_index(current["code"].astype(str)) if len(current) else None
    drawn_codes = nearby["code"].astype(str)
    shapes = display.for_view(drawn_codes.tolist(), span) if display is not None else None

    def column(name: str, default: float) -> np.ndarray:
        if by_code is None:
            return np.full(len(nearby), default, dtype=float)
        return np.array(drawn_codes.map(by_code[name]).astype(float).fillna(default), dtype=float)  # a copy

    level = column("level", 0.0).astype(int)
    fraction = column("fraction", 0.0)
    people = column("population_exposed", np.nan)
    kind = np.array([ended[c].kind if c in ended else "" for c in drawn_codes], dtype=object)
    for i, code in enumerate(drawn_codes):
        if code in ended:  # the level that ended, for the tooltip; nobody is exposed any more
            level[i], fraction[i], people[i] = int(ended[code].level), 0.0, np.nan
    villages = gpd.GeoDataFrame(
        {
            "code": drawn_codes.to_numpy(),
            "name": nearby["name"].to_numpy(),
            "kecamatan": nearby["kecamatan_name"].to_numpy(),
            "kabkota": nearby["kabkota_name"].to_numpy(),
            "level": level,
            "fraction": fraction,
            "population_exposed": people,
            "ended": kind,
        },
        geometry=shapes if shapes is not None else nearby.geometry.to_numpy(),
        crs=table.crs,
    )

    marked = exercise_ids(warnings)
    exercise = is_exercise_run(warnings)
    # In force and giving a village of the region a level (another province's nowcast in the feed does not).
    giving = set(rows.loc[rows["level"].astype(int) > 0, "warning_id"].astype(str)) & live_ids if len(rows) else set()
    active = sorted((w for w in live if w.identifier in giving), key=lambda w: (w.sent, w.identifier))
    starts = [w.effective for w in active if w.effective is not None]
    ends = [w.expires for w in active]
    title = MapTitle(
        region=region_name,
        active=tuple(
            ActiveWarning(w.identifier, w.event, issuer(w, estimate_by), w.identifier in marked) for w in active
        ),
        valid_from=min(starts).astimezone(tz) if starts else None,
        valid_until=max(e for e in ends if e is not None).astimezone(tz) if ends and None not in ends else None,
        zone_name=zone_name,
        population_note=population_note,
        as_of=now.astimezone(tz),
        exercise=exercise,
    )
    return MapScene(villages, areas, title, outline)

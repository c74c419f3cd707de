"""BMKG forecasts -> forecast rain category and level per village, and the region's forecast message (pure).

Two BMKG products feed this module, both parsed by :mod:`ews.ingest.bmkg_forecast` into the frozen
types defined here (they live here, not in ``ingest``, so that this pure module imports nothing from the
I/O edge):

* the **adm4 village forecast** (``api.bmkg.go.id/publik/prakiraan-cuaca?adm4=<code>``):
  3-hourly steps with a rain amount ``tp`` (mm per step) and a weather code;
* the **DigitalForecast** XML per province: 6-hourly weather codes per kab/kota (and some ports and sea
  areas), without rain amounts.

How a step gets its rain category (lowest to highest: ``ringan, sedang, lebat, sangat_lebat, ekstrem``,
bounds from the region's :class:`~ews.config.RainRules`):

1. hourly rate = ``tp / step_hours`` (``tp`` is mm in the 3-h step) -> ``rain.hourly_mm`` category;
2. rolling 24-h sum = the ``tp`` of every counted step whose period lies in the 24 h ending with this
   step -> ``rain.daily_mm`` category;
3. the weather code's minimum category (:data:`WEATHER_CATEGORY`);
4. the step's category is the highest of the three; DigitalForecast steps have only (3).

A bound is a lower bound: an amount equal to it is in that category. Only steps whose valid time lies in
``[now, now + forecast.lead_hours]`` (both ends included) count, and only they enter the 24-h sums:
rain forecast before ``now`` has fallen or not, and observed rain is the rain raster's job. A step covers
``[valid, valid + step_hours)``: BMKG does not say whether ``tp`` accumulates before or after the valid
time, and taking the valid time as the start never makes a warning late.

Level of a step = ``rain.levels[category]`` (a category not listed gives none) capped at
``forecast.max_level`` (a forecast is not an observation). ``held`` is the same with every amount
threshold multiplied by ``1 - rain.hysteresis``; weather-code minimums are not relaxed (a code is not a
measurement that can wobble around a bound). A village's level (held) is the highest over its counted
steps; a *threatening* step is one whose level is above none; the lead time is the hours from ``now`` to
the first threatening step.

DigitalForecast areas are kab/kota: :func:`match_areas` maps each land area to a kab/kota code (see
there), then every village of that kab/kota gets the area's forecast. A village with an adm4 forecast
keeps it (:func:`merge_levels`): village-level amounts beat a kab/kota weather code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Literal

import geopandas as gpd
import shapely
from shapely.geometry import Point, Polygon

from ews.codes import local_zone, normalize_code, parent_code
from ews.config import RAIN_CATEGORIES, ForecastRules, RainRules
from ews.types import HazardMessage, Level, VillageHazard, Warning

SourceKind = Literal["adm4", "digitalforecast"]

WEATHER_CATEGORY: Mapping[int, str | None] = {
    0: None,  # Cerah (clear); adm4 also labels 1 "Cerah"
    1: None,  # Cerah Berawan (partly cloudy)
    2: None,  # Cerah Berawan
    3: None,  # Berawan (cloudy)
    4: None,  # Berawan Tebal (overcast)
    5: None,  # Udara Kabur (haze)
    10: None,  # Asap (smoke)
    45: None,  # Kabut (fog)
    60: "ringan",  # Hujan Ringan (light rain)
    61: "ringan",  # Hujan Sedang in BMKG's legacy table, but the adm4 API labels it "Hujan Ringan" (2.2 mm/3 h)
    63: "lebat",  # Hujan Lebat (heavy rain)
    80: "ringan",  # Hujan Lokal (local showers): rain, intensity not stated
    95: "lebat",  # Hujan Petir (thunderstorm): BMKG warns of it as heavy rain with lightning
    97: "lebat",  # Hujan Petir (thunderstorm)
    100: None,  # Cerah, night icon (DigitalForecast 2016)
    101: None,  # Cerah Berawan, night icon
    102: None,  # Cerah Berawan, night icon
    103: None,  # Berawan, night icon
    104: None,  # Berawan Tebal, night icon
}
"""The minimum rain category a BMKG weather code implies (``None``: no rain implied).

The codes are BMKG's (the same table for the adm4 API and DigitalForecast). Checked against the real
samples: the Bandung adm4 file uses 0, 1, 2 and 61 (``"Hujan Ringan"``, ``tp`` 2.2 mm per 3 h); the Jawa
Timur DigitalForecast of 2024-04-03 uses 0, 1, 3, 4, 45, 60, 61 and 95; that of 2016-11-17 uses 5, 10, 60,
61, 80 and the night icons 100-104. 61 is "Hujan Sedang" in BMKG's legacy DigitalForecast table but
"Hujan Ringan" in the adm4 API: a minimum must hold under both readings, so it is ``ringan`` (with the
default levels only ``lebat`` and above give a level, so the choice does not change a level). 63 (heavy
rain) and 95/97 (thunderstorm) are ``lebat``: BMKG's nowcast warnings treat thunderstorms as heavy rain
with lightning, and a DigitalForecast area has no amounts to say more. A code not in this table implies
no rain; :func:`forecast_level` reports it in ``unknown_codes``.
"""

EXPECTED_WITHIN_HOURS = 3.0
"""CAP urgency is ``Expected`` when the first threatening step starts within this many hours (the next
adm4 step), ``Future`` otherwise."""

SEVERITY: Mapping[Level, str] = {
    Level.AWAS: "Extreme",
    Level.SIAGA: "Severe",
    Level.WASPADA: "Moderate",
    Level.NONE: "Minor",
}
"""CAP severity of the forecast message from its highest village level: the inverse of the default
:class:`~ews.config.LevelRules` severity table, so the message reads back to the same level."""

_FLOAT_SLACK = 1e-9  # mm: tp / 3 and threshold x (1 - hysteresis) must not miss a bound by rounding


# -- data read from BMKG (filled in by ews.ingest.bmkg_forecast) ------------------------------------


@dataclass(frozen=True)
class ForecastStep:
    """One 3-hourly step of an adm4 village forecast.

    ``valid`` is in UTC; ``local`` is the same instant in the village's zone. ``tp`` is rain in mm over
    the step; ``t`` deg C, ``hu`` and ``tcc`` (cloud cover) %, ``ws`` wind speed and ``vs`` visibility as
    BMKG gives them (the payload states no units), ``wd`` the compass direction the wind comes from.
    """

    valid: datetime
    local: datetime
    tp: float
    weather: int
    weather_desc: str
    weather_desc_en: str
    t: float | None = None
    hu: float | None = None
    tcc: float | None = None
    ws: float | None = None
    wd: str = ""
    vs: float | None = None


@dataclass(frozen=True)
class VillageForecast:
    """BMKG's forecast for one village (desa/kelurahan), from one adm4 JSON payload.

    ``code`` is the dotted Kemendagri code BMKG uses (2022 edition). ``analysis`` is the model run time
    in UTC (the issue time for staleness checks); ``zone_name`` is WIB/WITA/WIT when the offset is one
    of them. ``steps`` are sorted by valid time.
    """

    code: str
    village: str
    kecamatan: str
    kabkota: str
    province: str
    lat: float | None
    lon: float | None
    timezone: str
    utc_offset: timedelta
    zone_name: str
    analysis: datetime | None
    steps: tuple[ForecastStep, ...]
    source: str
    step_hours: float = 3.0


@dataclass(frozen=True)
class SeriesValue:
    """One ``<timerange>`` of a DigitalForecast parameter: its UTC time and the value in each unit.

    ``values`` maps a unit (``"C"``, ``"%"``, ``"icon"``, ``"Kt"``, ``"MS"``, ``"deg"``, ``"CARD"``...) to a
    number, or to text for non-numeric units (``CARD``). ``h`` is the hour offset of hourly ranges,
    ``day`` the ``YYYYMMDD`` of daily ones.
    """

    time: datetime
    values: Mapping[str, float | str]
    h: int | None = None
    day: str = ""


@dataclass(frozen=True)
class ForecastParameter:
    """One ``<parameter>`` of a DigitalForecast area (``weather``, ``t``, ``hu``, ``ws``, ``wd``, ``tmax``...)."""

    id: str
    description: str
    kind: str  # "hourly" | "daily"
    series: tuple[SeriesValue, ...]

    def numbers(self, unit: str) -> tuple[tuple[datetime, float], ...]:
        """The ``(time, value)`` pairs in ``unit``, for the time ranges that give a number in it."""
        return tuple((v.time, float(x)) for v in self.series if isinstance(x := v.values.get(unit), int | float))


@dataclass(frozen=True)
class ForecastArea:
    """One ``<area>`` of a DigitalForecast file: a kab/kota, or a port or sea area.

    ``kind`` is BMKG's ``type`` (``"land"``/``"sea"``; older files leave it empty: ``""``); ``domain`` is
    the province name or ``"Pelabuhan"`` for ports. ``names`` maps ``xml:lang`` to the name
    (``{"id_ID": "Kab. Bangkalan", "en_US": "Bangkalan"}``).
    """

    id: str
    description: str
    domain: str
    kind: str
    tags: str
    lat: float
    lon: float
    names: Mapping[str, str]
    parameters: Mapping[str, ForecastParameter]

    @property
    def name(self) -> str:
        """The Indonesian name (``"Kota Blitar"``), else the description."""
        return self.names.get("id_ID") or self.description

    @property
    def is_land(self) -> bool:
        """False for ports and sea areas (``type="sea"``, or domain/tags ``Pelabuhan`` in older files)."""
        if self.kind:
            return self.kind.lower() == "land"
        return "pelabuhan" not in f"{self.domain} {self.tags}".lower()

    def weather(self) -> tuple[tuple[datetime, int], ...]:
        """The weather codes as ``(UTC time, code)``, sorted by time (empty when the area has none)."""
        param = self.parameters.get("weather")
        if param is None:
            return ()
        return tuple(sorted((t, int(v)) for t, v in param.numbers("icon")))


@dataclass(frozen=True)
class DigitalForecast:
    """A DigitalForecast file: its issue time (UTC) and areas, in file order."""

    issued: datetime
    domain: str
    areas: tuple[ForecastArea, ...]
    source: str


# -- categories and levels ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RainStep:
    """What categorisation needs of one forecast step: its period, rain amount and weather code.

    The step covers ``[start, start + hours)``; ``mm`` is rain over the step (``None``: the source has no
    amounts); ``weather`` is BMKG's code (``None``: none given).
    """

    start: datetime
    hours: float
    mm: float | None
    weather: int | None


@dataclass(frozen=True)
class ForecastLevel:
    """The forecast level of one village (or area) over the lead window.

    ``category``/``held_category`` are the highest rain categories over the counted steps (``None``: no
    rain category). ``first_threat`` is the start of the first step whose level is above none and
    ``threat_end`` the end of the last one (both ``None`` when nothing threatens). ``max_mm`` is the
    largest rolling 24-h rain sum in the window (``None`` without amounts). ``steps`` counts the steps
    in the window; ``unknown_codes`` lists weather codes missing from :data:`WEATHER_CATEGORY`.
    """

    level: Level
    held: Level
    category: str | None
    held_category: str | None
    first_threat: datetime | None
    threat_end: datetime | None
    max_mm: float | None
    steps: int
    unknown_codes: tuple[int, ...] = ()


@dataclass(frozen=True)
class VillageForecastLevel:
    """A village's forecast level and where it came from.

    ``source_kind`` is ``"adm4"`` (the village's own forecast) or ``"digitalforecast"`` (its kab/kota's);
    ``source_id`` is the adm4 code or the DigitalForecast area id.
    """

    code: str
    forecast: ForecastLevel
    source_kind: SourceKind
    source_id: str

    @property
    def level(self) -> Level:
        """The village's forecast level."""
        return self.forecast.level

    @property
    def held(self) -> Level:
        """The level with the hysteresis margin (see the module docstring)."""
        return self.forecast.held


@dataclass(frozen=True)
class ForecastLevels:
    """Levels per village code, and notes for operators (codes or areas that matched nothing...)."""

    villages: Mapping[str, VillageForecastLevel]
    notes: tuple[str, ...] = ()


def _rank(category: str | None) -> int:
    return -1 if category is None else RAIN_CATEGORIES.index(category)


def _highest(*categories: str | None) -> str | None:
    return max(categories, key=_rank, default=None)


def rain_category(value: float | None, bounds: Mapping[str, float], scale: float = 1.0) -> str | None:
    """The highest category whose lower bound (times ``scale``) ``value`` reaches.

    Parameters
    ----------
    value
        A rain amount in the units of ``bounds`` (mm per hour or mm per 24 h); ``None`` gives ``None``.
    bounds
        Lower bound per category, e.g. ``RainRules.hourly_mm``; missing categories do not exist.
    scale
        Factor on every bound: ``1 - hysteresis`` for held levels.

    Returns
    -------
    str or None
        ``None`` when ``value`` is below every bound.
    """
    if value is None:
        return None
    found: str | None = None
    for category in RAIN_CATEGORIES:
        bound = bounds.get(category)
        if bound is not None and value >= bound * scale - _FLOAT_SLACK:
            found = category
    return found


def _level(category: str | None, rain: RainRules, rules: ForecastRules) -> Level:
    if category is None:
        return Level.NONE
    return min(rain.levels.get(category, Level.NONE), rules.max_level)


def _aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (e.g. datetime.now(UTC)); got {value.isoformat()}")


def forecast_level(steps: Sequence[RainStep], now: datetime, rain: RainRules, rules: ForecastRules) -> ForecastLevel:
    """The level of one forecast series over ``[now, now + rules.lead_hours]``.

    Parameters
    ----------
    steps
        The series, in any order; times are timezone-aware.
    now
        The run time (timezone-aware).
    rain
        The region's rain categories, levels and hysteresis.
    rules
        Lead window and level cap.

    Returns
    -------
    ForecastLevel
        See the module docstring for the rules.
    """
    _aware(now, "now")
    end = now + timedelta(hours=rules.lead_hours)
    window = sorted((s for s in steps if now <= s.start <= end), key=lambda s: s.start)
    scale = 1.0 - rain.hysteresis
    level = held = Level.NONE
    category = held_category = None
    first: datetime | None = None
    last_end: datetime | None = None
    max_mm: float | None = None
    unknown: set[int] = set()
    for i, step in enumerate(window):
        rate = daily = None
        if step.mm is not None:
            rate = step.mm / step.hours
            period_end = step.start + timedelta(hours=step.hours)
            since = period_end - timedelta(hours=24)
            daily = sum(s.mm for s in window[: i + 1] if s.mm is not None and s.start >= since)
            max_mm = daily if max_mm is None else max(max_mm, daily)
        code_min = None
        if step.weather is not None:
            if step.weather not in WEATHER_CATEGORY:
                unknown.add(step.weather)
            code_min = WEATHER_CATEGORY.get(step.weather)
        cat = _highest(rain_category(rate, rain.hourly_mm), rain_category(daily, rain.daily_mm), code_min)
        held_cat = _highest(
            rain_category(rate, rain.hourly_mm, scale), rain_category(daily, rain.daily_mm, scale), code_min, cat
        )
        step_level = _level(cat, rain, rules)
        # A non-monotone level table must not leave the held level below the level itself.
        step_held = max(_level(held_cat, rain, rules), step_level)
        category, held_category = _highest(category, cat), _highest(held_category, held_cat)
        held = max(held, step_held)
        if step_level > Level.NONE:
            level = max(level, step_level)
            first = step.start if first is None else first
            step_end = step.start + timedelta(hours=step.hours)
            last_end = step_end if last_end is None else max(last_end, step_end)
    return ForecastLevel(
        level=level,
        held=held,
        category=category,
        held_category=held_category,
        first_threat=first,
        threat_end=last_end,
        max_mm=max_mm,
        steps=len(window),
        unknown_codes=tuple(sorted(unknown)),
    )


def adm4_steps(forecast: VillageForecast) -> tuple[RainStep, ...]:
    """The rain steps of an adm4 forecast (``tp`` mm per ``step_hours``, weather code)."""
    return tuple(RainStep(s.valid, forecast.step_hours, s.tp, s.weather) for s in forecast.steps)


def area_steps(area: ForecastArea, default_hours: float = 6.0) -> tuple[RainStep, ...]:
    """The rain steps of a DigitalForecast area: weather codes only, no amounts.

    A step lasts until the next time of the series (6 h in BMKG's files); the last one as long as the
    one before it, or ``default_hours`` when the series has a single time.
    """
    codes = area.weather()
    steps = []
    for i, (time, code) in enumerate(codes):
        if i + 1 < len(codes):
            hours = (codes[i + 1][0] - time).total_seconds() / 3600
        elif i > 0:
            hours = (time - codes[i - 1][0]).total_seconds() / 3600
        else:
            hours = default_hours
        steps.append(RainStep(time, hours, None, code))
    return tuple(steps)


def adm4_levels(
    forecasts: Iterable[VillageForecast],
    now: datetime,
    rain: RainRules,
    rules: ForecastRules,
    *,
    villages: Iterable[str] | None = None,
) -> ForecastLevels:
    """Forecast levels of villages from their own adm4 forecasts.

    Parameters
    ----------
    forecasts
        Parsed adm4 forecasts; when a code comes twice, the newest analysis wins.
    now
        The run time (timezone-aware).
    rain, rules
        The region's rain and forecast rules.
    villages
        The region's village codes: a forecast for any other code is left out *and reported* in
        ``notes`` (BMKG uses the 2022 code edition; boundaries may use a newer one). ``None`` keeps all.

    Returns
    -------
    ForecastLevels
        One entry per village forecast kept.
    """
    known = set(villages) if villages is not None else None
    newest: dict[str, VillageForecast] = {}
    for fc in forecasts:
        kept = newest.get(fc.code)
        if kept is None or _analysis_key(fc) > _analysis_key(kept):
            newest[fc.code] = fc
    out: dict[str, VillageForecastLevel] = {}
    notes: list[str] = []
    unmatched = sorted(code for code in newest if known is not None and code not in known)
    if unmatched:
        notes.append(
            f"{len(unmatched)} adm4 forecast(s) for village codes not in the region's boundaries, left out: "
            f"{', '.join(unmatched[:10])}{' ...' if len(unmatched) > 10 else ''} "
            "(BMKG uses the Kepmendagri 2022 codes; check for renumbered villages)"
        )
    for code, fc in sorted(newest.items()):
        if known is not None and code not in known:
            continue
        result = forecast_level(adm4_steps(fc), now, rain, rules)
        if result.steps == 0:
            notes.append(f"{fc.source}: adm4 {code} has no step within the lead window; its forecast is too old")
        if result.unknown_codes:
            notes.append(f"{fc.source}: unknown BMKG weather code(s) {list(result.unknown_codes)} read as no rain")
        out[code] = VillageForecastLevel(code, result, "adm4", code)
    return ForecastLevels(out, tuple(notes))


def _analysis_key(fc: VillageForecast) -> datetime:
    return fc.analysis or datetime.min.replace(tzinfo=UTC)


# -- DigitalForecast areas -> kab/kota ------------------------------------------------------------


@dataclass(frozen=True)
class AreaMatch:
    """Which kab/kota a DigitalForecast area stands for, and how that was decided.

    ``method``: ``"point+name"`` (the area's point lies in the kab/kota and the names agree),
    ``"name"`` (the names agree on one kab/kota, the point lies elsewhere), ``"point"`` (the point lies in
    it; the name is not a kab/kota name, e.g. a regency seat such as "Kepanjen"), ``"nearest"`` (the
    name fits several, e.g. "Madiun", and the point is in none: the nearest of them) or ``"none"`` (not
    mapped: a port/sea area, or nothing fits; ``note`` says which).
    """

    area_id: str
    area_name: str
    kabkota: str | None
    method: str
    note: str = ""


_PREFIX = re.compile(r"^(kabupaten|kab\.?|kota administrasi|kota adm\.?|kota)\s+", re.IGNORECASE)


def _name_key(name: str) -> tuple[str | None, str]:
    """``("kota", "blitar")`` for "Kota Blitar", ``("kabupaten", "blitar")`` for "Kab. Blitar"."""
    text = " ".join(name.split())
    match = _PREFIX.match(text)
    kind: str | None = None
    if match:
        kind = "kota" if match.group(1).lower().startswith("kota") else "kabupaten"
        text = text[match.end() :]
    return kind, text.strip().lower()


def match_areas(forecast: DigitalForecast, kabkota: gpd.GeoDataFrame) -> tuple[AreaMatch, ...]:
    """Map each DigitalForecast area to a kab/kota code by its point and its name.

    Kota and Kabupaten of the same name ("Kota Blitar", "Kab. Blitar") are distinct: the Indonesian
    name's prefix decides the kind. Rules, in order:

    1. Ports and sea areas are not mapped (``method="none"``).
    2. The names agree on exactly one kab/kota (with the kind when the name gives one): that one
       (``"point+name"`` when the point lies in it as well, else ``"name"``: a point just outside a
       small kota must not hand the kota's forecast to the kabupaten around it).
    3. The name fits several (no kind given, e.g. "Madiun"): the one containing the point, else the
       nearest of them (``"nearest"``).
    4. The name fits none: the kab/kota containing the point (``"point"``), else ``"none"``.

    Parameters
    ----------
    forecast
        The parsed DigitalForecast.
    kabkota
        Kab/kota polygons in EPSG:4326 with ``code`` (dotted, ``"35.78"``) and ``name``
        (``"Kota Surabaya"``), e.g. from :func:`ews.ingest.boundaries.read_boundaries` on a level-2 file.

    Returns
    -------
    tuple of AreaMatch
        One per area, in file order.
    """
    codes = [normalize_code(c) for c in kabkota["code"]]
    keys = [_name_key(str(n)) for n in kabkota["name"]]
    geoms = list(kabkota.geometry.values)
    tree = shapely.STRtree(geoms)
    out = []
    for area in forecast.areas:
        label = f"area {area.id} {area.name!r}"
        if not area.is_land:
            out.append(AreaMatch(area.id, area.name, None, "none", f"{label}: port/sea area, not a kab/kota"))
            continue
        point = Point(area.lon, area.lat)
        inside = {codes[i] for i in tree.query(point, predicate="intersects")}
        kind, base = _name_key(area.name)
        if kind is None:
            kind = _name_key(area.description)[0]
        named = [i for i, (k, b) in enumerate(keys) if b == base and (kind is None or k == kind)]
        if len(named) == 1:
            code = codes[named[0]]
            if code in inside:
                out.append(AreaMatch(area.id, area.name, code, "point+name"))
            else:
                where = ", ".join(sorted(inside)) or "no kab/kota"
                note = f"{label}: point ({area.lat}, {area.lon}) lies in {where}; matched by name to {code}"
                out.append(AreaMatch(area.id, area.name, code, "name", note))
            continue
        if named:
            hits = [codes[i] for i in named if codes[i] in inside]
            if hits:
                out.append(AreaMatch(area.id, area.name, hits[0], "point+name"))
                continue
            nearest = min(named, key=lambda i: geoms[i].distance(point))
            note = f"{label}: name fits {', '.join(codes[i] for i in named)}; the point is in none, nearest taken"
            out.append(AreaMatch(area.id, area.name, codes[nearest], "nearest", note))
            continue
        if inside:
            code = sorted(inside)[0]
            note = f"{label}: name is not a kab/kota name; matched by its point to {code}"
            out.append(AreaMatch(area.id, area.name, code, "point", note))
            continue
        note = f"{label}: point ({area.lat}, {area.lon}) lies in no kab/kota and the name fits none; not mapped"
        out.append(AreaMatch(area.id, area.name, None, "none", note))
    return tuple(out)


def _merge(a: ForecastLevel, b: ForecastLevel) -> ForecastLevel:
    """The worse of two forecasts for one place (two areas mapped to one kab/kota)."""

    def earliest(x: datetime | None, y: datetime | None) -> datetime | None:
        return min((t for t in (x, y) if t is not None), default=None)

    def latest(x: datetime | None, y: datetime | None) -> datetime | None:
        return max((t for t in (x, y) if t is not None), default=None)

    mm = [m for m in (a.max_mm, b.max_mm) if m is not None]
    return ForecastLevel(
        level=max(a.level, b.level),
        held=max(a.held, b.held),
        category=_highest(a.category, b.category),
        held_category=_highest(a.held_category, b.held_category),
        first_threat=earliest(a.first_threat, b.first_threat),
        threat_end=latest(a.threat_end, b.threat_end),
        max_mm=max(mm) if mm else None,
        steps=max(a.steps, b.steps),
        unknown_codes=tuple(sorted(set(a.unknown_codes) | set(b.unknown_codes))),
    )


def digitalforecast_levels(
    forecast: DigitalForecast,
    matches: Sequence[AreaMatch],
    villages: Iterable[str],
    now: datetime,
    rain: RainRules,
    rules: ForecastRules,
) -> ForecastLevels:
    """Forecast levels of villages from their kab/kota's DigitalForecast area (weather codes only).

    Parameters
    ----------
    forecast
        The parsed DigitalForecast.
    matches
        :func:`match_areas` for it.
    villages
        The region's village codes (``"35.78.01.1001"``); each takes the area mapped to its kab/kota.
    now
        The run time (timezone-aware).
    rain, rules
        The region's rain and forecast rules.

    Returns
    -------
    ForecastLevels
        One entry per village whose kab/kota has an area; ``notes`` carry every match note and the
        kab/kota of the region that no area covers.
    """
    by_id = {a.id: a for a in forecast.areas}
    per_kab: dict[str, tuple[ForecastLevel, str]] = {}
    notes = [m.note for m in matches if m.note]
    for m in matches:
        if m.kabkota is None or m.area_id not in by_id:
            continue
        result = forecast_level(area_steps(by_id[m.area_id]), now, rain, rules)
        if result.unknown_codes:
            notes.append(f"area {m.area_id}: unknown BMKG weather code(s) {list(result.unknown_codes)} read as no rain")
        if m.kabkota in per_kab:
            kept, ids = per_kab[m.kabkota]
            notes.append(f"areas {ids} and {m.area_id} both map to {m.kabkota}; the worse forecast is used")
            per_kab[m.kabkota] = (_merge(kept, result), f"{ids},{m.area_id}")
        else:
            per_kab[m.kabkota] = (result, m.area_id)
    out: dict[str, VillageForecastLevel] = {}
    uncovered: set[str] = set()
    for code in villages:
        kab = parent_code(code, 2)
        if kab not in per_kab:
            uncovered.add(kab)
            continue
        result, ids = per_kab[kab]
        out[code] = VillageForecastLevel(code, result, "digitalforecast", ids)
    if uncovered:
        notes.append(
            f"{forecast.source}: no DigitalForecast area for kab/kota {', '.join(sorted(uncovered))}; "
            "their villages have no forecast level from it"
        )
    if any(r.steps == 0 for r, _ in per_kab.values()):
        notes.append(f"{forecast.source}: some areas have no step within the lead window; the forecast is too old")
    return ForecastLevels(out, tuple(notes))


def merge_levels(adm4: ForecastLevels, digitalforecast: ForecastLevels) -> ForecastLevels:
    """Village levels from both sources: a village's own adm4 forecast beats its kab/kota's DigitalForecast."""
    villages = {**digitalforecast.villages, **adm4.villages}
    return ForecastLevels(villages, (*adm4.notes, *digitalforecast.notes))


# -- the region's forecast message ----------------------------------------------------------------


def _hours(delta: timedelta) -> float:
    return delta.total_seconds() / 3600


def forecast_message(
    region_id: str,
    villages: Mapping[str, VillageForecastLevel] | Iterable[VillageForecastLevel],
    issued: datetime,
    now: datetime,
    source: str,
    rain: RainRules,
    rules: ForecastRules,
) -> HazardMessage:
    """The region's standing forecast thread message for this forecast.

    Every message is an ``Update`` of the thread ``ews.forecast.<region_id>``; a village with no threat
    in a newer forecast is simply not listed, so the lifecycle sends it an all-clear.

    Parameters
    ----------
    region_id
        The region (``regions/<id>.yaml``).
    villages
        Per-village results (:attr:`ForecastLevels.villages` or its values).
    issued
        When BMKG issued the forecast (adm4 analysis time or DigitalForecast issue time), aware.
    now
        The run time (timezone-aware): lead times are counted from it.
    source
        The file(s) or URL(s) the forecast came from, for operators.
    rain
        The region's rain rules (named in the description).
    rules
        The region's forecast rules (lead window, ``valid_hours``).

    Returns
    -------
    HazardMessage
        ``metric="mm"``; each village's ``value`` is its largest rolling 24-h forecast rain in the window
        in mm (0.0 when its source has no amounts: DigitalForecast). ``warning.effective`` is the first
        threatening step (``issued`` when nothing threatens), ``expires`` the end of the last one
        (``issued + valid_hours`` when nothing threatens); urgency ``Expected`` within
        :data:`EXPECTED_WITHIN_HOURS`, else ``Future``; severity from the highest level (:data:`SEVERITY`).
        ``details``: ``lead_hours``, ``first_threat`` (ISO, UTC), ``max_mm``, ``source_kind``,
        ``window_hours``, ``villages_adm4``, ``villages_digitalforecast``.
    """
    _aware(issued, "issued")
    _aware(now, "now")
    results = list(villages.values()) if isinstance(villages, Mapping) else list(villages)
    listed = sorted(
        (r for r in results if r.level > Level.NONE or r.held > Level.NONE),
        key=lambda r: r.code,
    )
    threats = [r for r in listed if r.level > Level.NONE and r.forecast.first_threat is not None]
    first = min((r.forecast.first_threat for r in threats if r.forecast.first_threat), default=None)
    end = max((r.forecast.threat_end for r in threats if r.forecast.threat_end), default=None)
    top = max((r.level for r in listed), default=Level.NONE)
    lead = max(0.0, _hours(first - now)) if first is not None else None
    amounts = [r.forecast.max_mm for r in listed if r.forecast.max_mm is not None]
    max_mm = max(amounts) if amounts else None
    kinds = sorted({r.source_kind for r in listed} or {r.source_kind for r in results})
    issued_utc = issued.astimezone(UTC)
    zone, zone_name = _zone(listed or results)

    if first is not None and lead is not None:
        when = "mulai sekarang" if lead < 1 else f"dalam {lead:.0f} jam"
        local = first.astimezone(zone)
        headline = (
            f"Prakiraan hujan lebat {when} (mulai {local:%d/%m %H:%M} {zone_name}) di {len(threats)} "
            f"desa/kelurahan; tingkat tertinggi {top.label}"
        )
        urgency = "Expected" if lead <= EXPECTED_WITHIN_HOURS else "Future"
    else:
        headline = f"Tidak ada prakiraan hujan lebat dalam {rules.lead_hours:.0f} jam ke depan"
        urgency = "Future"
    lebat = rain.hourly_mm.get("lebat"), rain.daily_mm.get("lebat")
    description = (
        f"Prakiraan BMKG ({', '.join(kinds) or 'tanpa data'}) terbit {issued_utc:%Y-%m-%d %H:%M} UTC untuk "
        f"{rules.lead_hours:.0f} jam ke depan. Hujan lebat: sedikitnya {lebat[0]} mm/jam atau {lebat[1]} mm/24 jam, "
        "atau kode cuaca hujan lebat/hujan petir. Ini prakiraan, bukan pengamatan."
    )
    effective = first if first is not None else issued
    expires = end if end is not None else issued + timedelta(hours=rules.valid_hours)
    warning = Warning(
        identifier=f"ews.forecast.{region_id}.{issued_utc:%Y%m%dT%H%MZ}",
        sender="ews",
        sent=issued,
        status="Actual",
        msg_type="Update",
        references=(f"ews.forecast.{region_id}",),
        language="id",
        event="Prakiraan Hujan Lebat",
        urgency=urgency,
        severity=SEVERITY[top],
        certainty="Likely",
        effective=effective,
        expires=expires,
        headline=headline,
        description=description,
        web="",
        area_desc=f"{len(listed)} desa/kelurahan",
        geometry=Polygon(),
        polygon_count=0,
        source=source,
    )
    hazards = tuple(
        VillageHazard(
            code=r.code,
            level=r.level,
            held=r.held,
            value=float(r.forecast.max_mm) if r.forecast.max_mm is not None else 0.0,
            fraction=1.0,
        )
        for r in listed
    )
    details: dict[str, str | float | int | bool | None] = {
        "lead_hours": round(lead, 2) if lead is not None else None,
        "first_threat": first.astimezone(UTC).isoformat() if first is not None else None,
        "max_mm": round(max_mm, 1) if max_mm is not None else None,
        "source_kind": "+".join(kinds) if kinds else None,
        "window_hours": rules.lead_hours,
        "villages_adm4": sum(1 for r in listed if r.source_kind == "adm4"),
        "villages_digitalforecast": sum(1 for r in listed if r.source_kind == "digitalforecast"),
    }
    return HazardMessage(warning=warning, metric="mm", villages=hazards, details=details)


def _zone(results: Sequence[VillageForecastLevel]) -> tuple[timezone, str]:
    """The local zone of the region (from its first village code); UTC when there is no village."""
    for r in results:
        try:
            return local_zone(r.code)
        except ValueError:
            continue
    return UTC, "UTC"


__all__ = [
    "EXPECTED_WITHIN_HOURS",
    "SEVERITY",
    "WEATHER_CATEGORY",
    "AreaMatch",
    "DigitalForecast",
    "ForecastArea",
    "ForecastLevel",
    "ForecastLevels",
    "ForecastParameter",
    "ForecastStep",
    "RainStep",
    "SeriesValue",
    "VillageForecast",
    "VillageForecastLevel",
    "adm4_levels",
    "adm4_steps",
    "area_steps",
    "digitalforecast_levels",
    "forecast_level",
    "forecast_message",
    "match_areas",
    "merge_levels",
    "rain_category",
]

"""Observed satellite rain -> accumulations, BMKG rain categories, levels per village and the region's rain message.

Pure: functions of their arguments only (the rasters come from :mod:`ews.ingest.rainfall`, the per-village
values from the zonal statistics).

Rules, from :class:`~ews.config.RainRules` and BMKG's intensity table (DOMAIN notes):

* an accumulation over ``hours`` is ``sum(rate x step_hours)`` over the steps that tile the window
  ``[end - hours, end)``; every step of the window must be present (a 24-hour total from 3 hours of data
  would be a lie), and the window's edges must fall on step boundaries;
* a cell missing (NaN) in any step of the window is NaN in the total: a partial sum would understate the
  rain and could hide a warning; the village statistic then uses the cells that are present;
* a category's bound is a *lower* bound: 10 mm/h is ``lebat``, 9.99 mm/h ``sedang``; 150 mm/24 h is
  ``ekstrem``. Categories missing from a table do not exist for that period;
* a village's level is the higher of the levels of its 1-hour and 24-hour categories (``rules.levels``;
  categories not listed there give none); its *held* level is the same with every bound multiplied by
  ``1 - rules.hysteresis``: an active alert goes down only when the held level is below it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import xarray as xr
from numpy.typing import ArrayLike, NDArray
from shapely.geometry import Polygon

from ews.config import RAIN_CATEGORIES, RainRules
from ews.errors import DataValidationError, RasterError
from ews.types import HazardMessage, Level, VillageHazard, Warning

SEVERITY: Mapping[Level, str] = {
    Level.AWAS: "Extreme",
    Level.SIAGA: "Severe",
    Level.WASPADA: "Moderate",
    Level.NONE: "Minor",
}
"""CAP severity of the rain message from its highest village level: the inverse of the default
:class:`~ews.config.LevelRules` severity table, so the message reads back to the same level. Urgency is
``Immediate`` and certainty ``Observed``: the rain has been measured, and is falling now or just fell."""

_NS_PER_HOUR = 3_600_000_000_000
_TOLERANCE_NS = 1_000_000_000  # one second: times decoded from floats may be off by milliseconds


def _to_utc64(value: datetime | np.datetime64, name: str) -> np.datetime64:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"{name} {value.isoformat()}: give a timezone-aware time")
        return np.datetime64(value.astimezone(UTC).replace(tzinfo=None), "ns")
    converted: np.datetime64 = value.astype("datetime64[ns]")
    return converted


def _iso(t: np.datetime64) -> str:
    return str(np.datetime_as_string(t.astype("datetime64[s]"), unit="m")) + "Z"


def _ranges(starts: NDArray[np.datetime64], step_ns: int) -> str:
    """Consecutive missing step starts as ``a–b`` intervals (``b`` the end of the last step)."""
    parts: list[str] = []
    run_start = starts[0]
    prev = starts[0]
    for t in [*starts[1:], None]:
        if t is not None and int((t - prev).astype("timedelta64[ns]").astype(np.int64)) == step_ns:
            prev = t
            continue
        parts.append(f"{_iso(run_start)}–{_iso(prev + np.timedelta64(step_ns, 'ns'))}")
        if t is not None:
            run_start = prev = t
    return ", ".join(parts)


def rain_accumulation(da: xr.DataArray, hours: float, end: datetime | np.datetime64 | None = None) -> xr.DataArray:
    """Total rain in mm over the ``hours`` before ``end``, per cell.

    Parameters
    ----------
    da
        Rain rates from :mod:`ews.ingest.rainfall`: ``(time, y, x)`` in mm/h, ``time`` the start of each
        step (UTC), ``attrs["step_hours"]`` the duration of each step.
    hours
        Length of the window (e.g. 1, 3, 6, 24), a whole number of steps.
    end
        End of the window (timezone-aware, or UTC ``datetime64``), on a step boundary; default: the end
        of the newest step.

    Returns
    -------
    xarray.DataArray
        ``precipitation_amount`` ``(y, x)`` float64 in mm; a cell missing in any step of the window is NaN.
        ``attrs``: ``units="mm"``, ``window_hours``, ``start``/``end`` (ISO 8601 UTC), and ``crs``,
        ``transform``, ``source`` of ``da``.

    Raises
    ------
    RasterError
        Steps of the window are missing (the message lists them), ``end`` or ``hours`` does not fall on
        the step boundaries, or ``da`` is not rates in mm/h with a ``step_hours``.
    ValueError
        ``hours`` is not positive or ``end`` has no time zone.
    """
    source = str(da.attrs.get("source", da.name or "rainfall"))
    if not hours > 0 or not math.isfinite(hours):
        raise ValueError(f"hours must be positive, not {hours}")
    if tuple(da.dims) != ("time", "y", "x"):
        raise RasterError(f"{source}: rain rates must have dims (time, y, x), not {tuple(da.dims)}")
    if da.attrs.get("units") != "mm/h" or "step_hours" not in da.attrs:
        raise RasterError(f"{source}: rain rates need attrs units='mm/h' and step_hours; read them with open_rainfall")
    step_ns = round(float(da.attrs["step_hours"]) * _NS_PER_HOUR)
    window_ns = round(hours * _NS_PER_HOUR)
    order = np.argsort(da["time"].values, kind="stable")
    times = da["time"].values[order].astype("datetime64[ns]")
    if len(times) == 0:
        raise RasterError(f"{source}: no time step")
    stop = times[-1] + np.timedelta64(step_ns, "ns") if end is None else _to_utc64(end, "end")
    offset = int((stop - times[0]).astype(np.int64)) % step_ns
    if min(offset, step_ns - offset) > _TOLERANCE_NS or min(window_ns % step_ns, step_ns - window_ns % step_ns) > (
        _TOLERANCE_NS
    ):
        raise RasterError(
            f"{source}: a {hours:g} h window ending {_iso(stop)} does not fall on the {step_ns / _NS_PER_HOUR:g} h "
            "steps of the raster; choose an end and a length on step boundaries"
        )
    count = round(window_ns / step_ns)
    needed = stop - np.arange(count, 0, -1) * np.timedelta64(step_ns, "ns")
    index = np.searchsorted(times, needed - np.timedelta64(_TOLERANCE_NS, "ns"))
    index = np.minimum(index, len(times) - 1)
    found = np.abs((times[index] - needed).astype(np.int64)) <= _TOLERANCE_NS
    if not found.all():
        missing = needed[~found]
        have = f"{_iso(times[0])}–{_iso(times[-1] + np.timedelta64(step_ns, 'ns'))}"
        lacking = len(missing) * step_ns / _NS_PER_HOUR
        raise RasterError(
            f"{source}: a {hours:g} h accumulation ending {_iso(stop)} lacks {lacking:g} h of {hours:g} h "
            f"of rain: missing {_ranges(missing, step_ns)} (the raster covers {have}); a shorter window or the "
            "missing files are needed"
        )
    values = np.asarray(da.values)[order[index]].astype(np.float64)
    total = values.sum(axis=0) * (step_ns / _NS_PER_HOUR)  # NaN in any step stays NaN (see module docstring)
    start = stop - np.timedelta64(window_ns, "ns")
    return xr.DataArray(
        total,
        dims=("y", "x"),
        coords={"y": da["y"], "x": da["x"]},
        name="precipitation_amount",
        attrs={
            "standard_name": "thickness_of_rainfall_amount",
            "long_name": f"rain in {hours:g} h",
            "units": "mm",
            "window_hours": float(hours),
            "start": _iso(start),
            "end": _iso(stop),
            "crs": da.attrs.get("crs"),
            "transform": da.attrs.get("transform"),
            "source": source,
        },
    )


def rain_category(values_mm: ArrayLike, table: Mapping[str, float]) -> NDArray[np.int8]:
    """BMKG rain category of each value, as an index into :data:`~ews.config.RAIN_CATEGORIES`.

    Parameters
    ----------
    values_mm
        Amounts in the unit of ``table`` (mm per hour or per 24 hours), any shape.
    table
        Lower bound of each category (``RainRules.hourly_mm`` or ``daily_mm``); categories it omits are
        never returned.

    Returns
    -------
    numpy.ndarray
        int8 of the shape of ``values_mm``: the highest category whose bound is <= the value; -1 below
        the lowest bound or NaN.
    """
    values = np.asarray(values_mm, dtype=np.float64)
    result = np.full(values.shape, -1, dtype=np.int8)
    with np.errstate(invalid="ignore"):
        for index, name in enumerate(RAIN_CATEGORIES):
            if name in table:
                result[values >= float(table[name])] = index
    return result


def _levels_of(category: NDArray[np.int8], levels: Mapping[str, Level]) -> NDArray[np.int8]:
    lut = np.array([int(levels.get(name, Level.NONE)) for name in RAIN_CATEGORIES], dtype=np.int8)
    return np.where(category >= 0, lut[np.clip(category, 0, None)], np.int8(Level.NONE)).astype(np.int8)


def rain_levels(
    hourly_mm: ArrayLike | None, daily_mm: ArrayLike | None, rules: RainRules
) -> tuple[NDArray[np.int8], NDArray[np.int8]]:
    """Level and held level of each village from its 1-hour and 24-hour rain.

    Parameters
    ----------
    hourly_mm
        Rain in the last hour per village (mm), or None.
    daily_mm
        Rain in the last 24 hours per village (mm), or None (e.g. less than 24 hours of data).
    rules
        The region's rain rules.

    Returns
    -------
    tuple of numpy.ndarray
        ``(level, held)``, int8 :class:`~ews.types.Level` values per village: the higher of the hourly and
        daily levels, and the same with every bound multiplied by ``1 - rules.hysteresis`` (so
        ``held >= level``). NaN gives no level.

    Raises
    ------
    DataValidationError
        Both inputs are None, or their shapes differ.
    """
    given = [np.asarray(v, dtype=np.float64) for v in (hourly_mm, daily_mm) if v is not None]
    if not given:
        raise DataValidationError("rain_levels: give hourly_mm, daily_mm or both")
    if len(given) == 2 and given[0].shape != given[1].shape:
        raise DataValidationError(f"rain_levels: hourly {given[0].shape} and daily {given[1].shape} shapes differ")
    shape = given[0].shape
    relax = 1.0 - rules.hysteresis
    level = np.zeros(shape, dtype=np.int8)
    held = np.zeros(shape, dtype=np.int8)
    for values, table in ((hourly_mm, rules.hourly_mm), (daily_mm, rules.daily_mm)):
        if values is None:
            continue
        relaxed = {name: bound * relax for name, bound in table.items()}
        level = np.maximum(level, _levels_of(rain_category(values, table), rules.levels))
        held = np.maximum(held, _levels_of(rain_category(values, relaxed), rules.levels))
    return level, held


def _per_village(values: ArrayLike | None, count: int, name: str) -> NDArray[np.float64] | None:
    if values is None:
        return None
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if len(array) != count:
        raise DataValidationError(f"rain_message: {name} has {len(array)} values for {count} villages")
    return array


def _max_or_none(values: NDArray[np.float64] | None) -> float | None:
    if values is None or not np.isfinite(values).any():
        return None
    return round(float(np.nanmax(values)), 1)


def rain_message(
    region_id: str,
    codes: Sequence[str],
    hourly_mm: ArrayLike | None,
    daily_mm: ArrayLike | None,
    end: datetime,
    source: str,
    rules: RainRules,
    fractions: ArrayLike | None = None,
) -> HazardMessage:
    """The region's standing rain thread message for the rain observed up to ``end``.

    Every message is an ``Update`` of the thread ``ews.rain.<region_id>``; a village no longer listed gets
    an all-clear from the lifecycle.

    Parameters
    ----------
    region_id
        The region (``regions/<id>.yaml``).
    codes
        Village codes, in the order of the values.
    hourly_mm, daily_mm
        The village statistic (``rules.statistic``) of the last 1-hour and 24-hour accumulations in mm;
        either may be None (not enough data), not both.
    end
        End of the newest raster step (timezone-aware).
    source
        The raster file(s), for operators.
    rules
        The region's rain rules.
    fractions
        Share (0-1) of each village covered by valid raster cells; default 1.

    Returns
    -------
    HazardMessage
        ``warning``: identifier ``ews.rain.<region_id>.<end UTC %Y%m%dT%H%MZ>``, ``msg_type="Update"``,
        ``references=("ews.rain.<region_id>",)``, ``sent = effective = end``, ``expires = end +
        valid_hours``, event ``Hujan Lebat``, urgency ``Immediate``, certainty ``Observed``, severity from
        the highest level (:data:`SEVERITY`), an empty geometry. ``metric`` is ``"rain_24h_mm"`` when
        ``daily_mm`` is given, else ``"rain_1h_mm"``; ``villages`` lists, sorted by code, every village
        whose level or held level is above none, with ``value`` in the metric (NaN when that value is
        missing and the level came from the other window). A village with no value in either window is
        listed at no level but held at Awas, so an alert it has is kept, neither cleared nor raised
        (missing rain is not "no rain"). ``details``: ``window_hours`` (of the metric), ``max_mm`` (of the
        metric), ``max_1h_mm``, ``max_24h_mm``, ``raster_end`` (ISO 8601 UTC), ``statistic``,
        ``villages_waspada``, ``villages_siaga``, ``villages_awas``, ``villages_without_data``, and
        ``standing=True`` (the expiry only says how long the observation holds without a newer raster:
        residents are told "until further notice", and a later raster at the same level is not news).

    Raises
    ------
    DataValidationError
        Both values are None, or a value array does not match ``codes``.
    ValueError
        ``end`` has no time zone.
    """
    if end.tzinfo is None:
        raise ValueError("rain_message: end must be timezone-aware")
    count = len(codes)
    hourly = _per_village(hourly_mm, count, "hourly_mm")
    daily = _per_village(daily_mm, count, "daily_mm")
    share = _per_village(fractions, count, "fractions")
    level, held = rain_levels(hourly, daily, rules)
    metric_values = daily if daily is not None else hourly
    assert metric_values is not None  # noqa: S101  (rain_levels refused both None)
    metric = "rain_24h_mm" if daily is not None else "rain_1h_mm"
    # A village without any valid value (raster gaps, missing cells) keeps whatever alert it has: missing
    # rain is not "no rain". It is listed at no level but *held* at the top level, so the lifecycle never
    # clears it (and never raises it) on this message.
    present = [v for v in (hourly, daily) if v is not None]
    missing = np.logical_and.reduce([np.isnan(v) for v in present]) if present else np.zeros(count, dtype=bool)
    held = np.where(missing, int(Level.AWAS), held).astype(held.dtype)
    listed = sorted((i for i in range(count) if level[i] > 0 or held[i] > 0), key=lambda i: codes[i])
    villages = tuple(
        VillageHazard(
            code=str(codes[i]),
            level=Level(int(level[i])),
            held=Level(int(held[i])),
            value=round(float(metric_values[i]), 2),  # NaN stays NaN
            fraction=float(share[i]) if share is not None else 1.0,
        )
        for i in listed
    )
    top = Level(int(level.max())) if count else Level.NONE
    counts = {lv: int((level == int(lv)).sum()) for lv in (Level.WASPADA, Level.SIAGA, Level.AWAS)}
    alerted = sum(counts.values())
    end_utc = end.astimezone(UTC)
    max_1h, max_24h = _max_or_none(hourly), _max_or_none(daily)
    if top > Level.NONE:
        headline = f"Hujan lebat terpantau satelit di {alerted} desa/kelurahan; tingkat tertinggi {top.label}"
    else:
        headline = "Tidak ada hujan lebat terpantau satelit"
    observed = []
    if max_1h is not None:
        observed.append(f"{max_1h:.1f} mm dalam 1 jam")
    if max_24h is not None:
        observed.append(f"{max_24h:.1f} mm dalam 24 jam")
    lebat = rules.hourly_mm.get("lebat"), rules.daily_mm.get("lebat")
    description = (
        f"Curah hujan satelit hingga {end_utc:%Y-%m-%d %H:%M} UTC, tertinggi per desa/kelurahan "
        f"({'rata-rata' if rules.statistic == 'mean' else 'maksimum'}): {' dan '.join(observed) or 'tidak ada data'}. "
        f"Hujan lebat: sedikitnya {lebat[0]} mm/jam atau {lebat[1]} mm/24 jam. Ini pengamatan satelit, "
        "bukan prakiraan."
    )
    warning = Warning(
        identifier=f"ews.rain.{region_id}.{end_utc:%Y%m%dT%H%MZ}",
        sender="ews",
        sent=end,
        status="Actual",
        msg_type="Update",
        references=(f"ews.rain.{region_id}",),
        language="id",
        event="Hujan Lebat",
        urgency="Immediate",
        severity=SEVERITY[top],
        certainty="Observed",
        effective=end,
        expires=end + timedelta(hours=rules.valid_hours),
        headline=headline,
        description=description,
        web="",
        area_desc=f"{region_id}: {len(villages)} desa/kelurahan",
        geometry=Polygon(),
        polygon_count=0,
        source=source,
    )
    details: dict[str, Any] = {
        "window_hours": 24.0 if daily is not None else 1.0,
        "max_mm": _max_or_none(metric_values),
        "max_1h_mm": max_1h,
        "max_24h_mm": max_24h,
        "raster_end": end_utc.isoformat(),
        "statistic": rules.statistic,
        "villages_waspada": counts[Level.WASPADA],
        "villages_siaga": counts[Level.SIAGA],
        "villages_awas": counts[Level.AWAS],
        "villages_without_data": int(missing.sum()),
        "standing": True,  # the expiry is a data-validity window: a new raster moving it is not news
    }
    return HazardMessage(warning=warning, metric=metric, villages=villages, details=details)

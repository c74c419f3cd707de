"""Satellite rainfall rasters (GeoTIFF/COG, CF NetCDF, GSMaP NRT, IMERG) read into one DataArray shape.

Every rain reader (:func:`open_rainfall`) returns the same contract, which the zonal statistics consume:

* name ``"precipitation_rate"``, ``attrs["standard_name"] = "rainfall_rate"``, ``attrs["units"] = "mm/h"``
  (converted from ``mm/hr``, ``mm h-1``, ``kg m-2 s-1`` x 3600 and ``mm/day`` / 24; other units are refused);
* dims exactly ``("time", "y", "x")``, float32 (float64 when the source is float64 or scaled integers);
* north-up: ``y`` (latitude, cell centres) descending, ``x`` (longitude, cell centres) ascending within
  -180..180 (0..360 grids such as GSMaP's are rolled);
* ``time``: ``datetime64[ns]`` in UTC (naive), the **start** of each step; ``attrs["step_hours"]`` the
  duration of each step (1.0 for GSMaP hourly, 0.5 for IMERG half-hourly);
* ``attrs["crs"] = "EPSG:4326"`` (only geographic WGS84 grids are accepted: reproject others first),
  ``attrs["transform"]`` the rasterio Affine ``(a, b, c, d, e, f)`` of the north-up grid (``b = d = 0``,
  ``e < 0``), ``attrs["source"]`` the file path;
* missing cells (nodata, ``_FillValue``, GSMaP's negative values) are NaN; a raster with no valid cell
  (in the requested ``bbox``) is an error.

Units, start times and the step come from the file (tags, attributes, CF coordinates), else from the file
name (GSMaP ``gsmap_nrt.20260928.0900...``, IMERG ``...3IMERG.20260928-S093000-E095959...``, any extension,
see :func:`name_time`), else from :class:`RasterHints`: what the user says with ``ews zonal --units
--time --time-pattern --step-hours`` or with the region's ``rain.products`` keys. A hint only fills a
gap: one that disagrees with the file is an error. Every error about missing metadata names the flag or
region key that supplies it.

:func:`open_raster` reads any raster for plain statistics (population, elevation, flood depth): any
units (rain rates are still converted to mm/h), no time needed, and any CRS for GeoTIFF (the grid stays
in its CRS; the caller reprojects the polygons). Its dims are ``("band", "y", "x")`` with a ``time``
coordinate along ``band`` (NaT when unknown) and ``attrs["units"]`` ``""`` when unknown.

Coordinates stored as float32 (IMERG) are snapped to the roundest decimal within their own precision
(about 4e-5 degree), so that the same grid always gives the same transform (-179.95, not -179.9499969).
"""

from __future__ import annotations

import gzip
import math
import re
import warnings
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import h5py  # type: ignore[import-untyped, unused-ignore]
import numpy as np
import pandas as pd
import rasterio
import rasterio.errors
import rasterio.io
import rasterio.warp
import rasterio.windows
import xarray as xr
from numpy.typing import NDArray

from ews.config import RAIN_RATE_UNITS, TIME_PATTERN_PRODUCTS, RainRules, rain_rate_factor, time_pattern_regex
from ews.errors import RasterError, StaleSourceError

Kind = Literal["auto", "geotiff", "netcdf", "gsmap", "imerg"]
BBox = tuple[float, float, float, float]
"""``(west, south, east, north)`` in degrees."""

WGS84 = "EPSG:4326"
NAME = "precipitation_rate"

GSMAP_SHAPE = (1200, 3600)
"""Rows (59.95N southwards to 59.95S) x columns (0.05E eastwards), 0.1 degree cells."""
GSMAP_BYTES = GSMAP_SHAPE[0] * GSMAP_SHAPE[1] * 4
GSMAP_MISSING = -999.9
_GSMAP_NAME = re.compile(
    r"^gsmap_(?P<product>[a-z0-9_]+)\.(?P<date>\d{8})\.(?P<hhmm>\d{4})(?:\.[\w.]*)?\.dat(?:\.gz)?$"
)
"""A GSMaP binary file (decides the format of an uncompressed file)."""
_GSMAP_TIME = re.compile(r"^gsmap_(?P<product>[a-z0-9_]+)\.(?P<date>\d{8})\.(?P<hhmm>\d{4})(?=\.|$)", re.IGNORECASE)
"""The time in the name of any GSMaP-named file (binary, GeoTIFF, NetCDF)."""
_IMERG_TIME = re.compile(
    r"^3B-(?P<product>[A-Z]+)(?:-[A-Z]+)*\.MS\.MRG\.3IMERG\.(?P<date>\d{8})-S(?P<start>\d{6})-E(?P<end>\d{6})(?=\.|$)",
    re.IGNORECASE,
)
"""IMERG's names: ``3B-HHR-E.MS.MRG.3IMERG.20260928-S093000-E095959.0570.V07B.HDF5`` (early, late, final)."""
_IMERG_SPAN = re.compile(r"\.(?P<n>\d+)(?P<unit>min|hr|day)\.", re.IGNORECASE)
"""IMERG GIS files name the window they total (``.30min.tif``, ``.3hr.tif``, ``.1day.tif``), ending at ``E``."""
_SPAN_HOURS = {"min": 1.0 / 60.0, "hr": 1.0, "day": 24.0}

IMERG_FILL = -9999.9
IMERG_GIS_MISSING = 29999
"""The missing value of NASA's IMERG GIS GeoTIFFs (two-byte integers in 0.1 mm/h; PPS README.GIS), which
carry no GDAL nodata tag: read as missing when an IMERG-named integer GeoTIFF says no nodata itself."""
_IMERG_INTERVALS = {"HALF_HOUR": 0.5, "HOUR": 1.0, "THREE_HOUR": 3.0, "DAY": 24.0}

_UNITS = RAIN_RATE_UNITS
_RATE_STANDARD_NAMES = ("rainfall_rate", "precipitation_flux", "lwe_precipitation_rate", "rainfall_flux")
_RATE_VAR_NAMES = ("precipitation", "precipitationCal", "precip", "precipitation_rate", "rain", "rainfall", "pr", "rr")
_LAT_UNITS = {"degrees_north", "degree_north", "degree_n", "degrees_n", "degreen", "degreesn"}
_LON_UNITS = {"degrees_east", "degree_east", "degree_e", "degrees_e", "degreee", "degreese"}
_TIME_UNITS = re.compile(
    r"^\s*(?P<unit>seconds?|secs?|s|minutes?|mins?|hours?|hrs?|h|days?|d)\s+since\s+(?P<ref>.+?)\s*$", re.IGNORECASE
)
_SECONDS = {"s": 1.0, "sec": 1.0, "second": 1.0, "min": 60.0, "minute": 60.0, "h": 3600.0, "hr": 3600.0}
_SECONDS |= {"hour": 3600.0, "d": 86400.0, "day": 86400.0}
_STANDARD_CALENDARS = {"standard", "gregorian", "proleptic_gregorian", "none", ""}

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_NAT = np.datetime64("NaT", "ns")


# ----------------------------------------------------------------------------------------------- hints

HintField = Literal["units", "time", "step_hours", "time_pattern", "variable"]
_EXAMPLES: dict[str, str] = {
    "units": "mm/h",
    "time": "2026-09-28T09:30:00Z",
    "step_hours": "1",
    "time_pattern": "'hujan_%Y%m%d_%H%M'",
    "variable": "precipitation",
}
_WHAT: dict[str, str] = {"units": "units", "time": "start time", "step_hours": "step duration"}


@dataclass(frozen=True)
class RasterHints:
    """What a user says about rasters that do not say it themselves, and where the user says it.

    The values only fill gaps: a file's own units, times and step are used, and a hint that disagrees
    with them is an error. ``origin`` decides how messages tell the user to give a missing value:
    ``"flags"``: the ``ews zonal`` flags (``--units``, ``--time``, ``--time-pattern``, ``--step-hours``,
    ``--variable``); ``"region"``: the ``rain.products`` keys of ``region_file`` (``product`` is the index
    and ``match`` the glob of the entry that matched the file, None when none did); ``"any"``: both.

    Attributes
    ----------
    units
        Rain-rate units of the values (``mm/h``, ``kg m-2 s-1``, ...); for plain statistics any label.
    time
        Start (timezone-aware) of the file's first step; later bands follow every ``step_hours``.
    step_hours
        Duration of each step, in hours.
    time_pattern
        ``"gsmap"``, ``"imerg"`` or a ``strftime`` pattern for the start time in the file name
        (:func:`ews.config.time_pattern_regex`).
    variable
        The variable to read from a NetCDF/HDF5 file.
    """

    units: str | None = None
    time: datetime | None = None
    step_hours: float | None = None
    time_pattern: str | None = None
    variable: str | None = None
    origin: Literal["flags", "region", "any"] = "any"
    region_file: str = "the region file"
    product: int | None = None
    match: str | None = None

    def name_of(self, field: HintField) -> str:
        """The flag or region key that sets ``field`` (e.g. ``--units``, ``rain.products[0].units``)."""
        flag = "--" + field.replace("_", "-")
        if self.origin == "flags":
            return flag
        key = f"rain.products[{self.product if self.product is not None else ''}].{field}"
        if self.origin == "region":
            return f"{key} in {self.region_file}"
        return f"{flag} (ews zonal) or {key} (region file)"

    def ask(self, fields: Sequence[HintField], file: Path, examples: Mapping[str, str] | None = None) -> str:
        """How the user gives the missing ``fields`` for ``file``: one phrase for an error message."""
        ex = {**_EXAMPLES, **(examples or {})}
        flags = " ".join(f"--{f.replace('_', '-')} {ex[f]}" for f in fields)
        keys = ", ".join(f"{f}: {ex[f]}" for f in fields)
        entry = f"{{match: '{file.name}', {keys}}}"
        if "time" in fields:
            flags += " (--time is the start of the first step; --time-pattern instead reads it from the file names)"
            alt = " (or time_pattern: gsmap, imerg or 'hujan_%Y%m%d_%H%M' instead of time, for times in file names)"
        else:
            alt = ""
        if self.origin == "flags":
            return f"give {flags}"
        if self.origin == "region":
            if self.product is None:
                return f"add to {self.region_file} under rain: products: [{entry}]{alt}"
            names = ", ".join(f"rain.products[{self.product}].{f}" for f in fields)
            return f"set {names} in {self.region_file} (the entry with match '{self.match}'), e.g. {keys}{alt}"
        return f"give ews zonal {flags}, or in the region file rain: products: [{entry}]"


HintsArg = RasterHints | Callable[[Path], RasterHints] | None
"""One :class:`RasterHints` for every file, a function giving each file's (e.g. :func:`product_hints`), or none."""


def _hints_for(hints: HintsArg, file: Path) -> RasterHints:
    if hints is None:
        return RasterHints()
    if isinstance(hints, RasterHints):
        return hints
    return hints(file)


def product_hints(rules: RainRules, file: str | Path, region_file: str | Path | None) -> RasterHints:
    """The hints of the region's ``rain.products`` entry that ``file`` belongs to (empty ones if none).

    Parameters
    ----------
    rules
        The region's rain rules (``rain.products``).
    file
        The raster file.
    region_file
        The region file: relative ``match`` folders are relative to its folder, and messages name it.
    """
    base = Path(region_file).resolve().parent if region_file is not None else None
    where = str(region_file) if region_file is not None else "the region file"
    found = rules.product_for(Path(file), base)
    if found is None:
        return RasterHints(origin="region", region_file=where)
    index, product = found
    return RasterHints(
        units=product.units,
        time=product.time,
        step_hours=product.step_hours,
        time_pattern=product.time_pattern,
        variable=product.variable,
        origin="region",
        region_file=where,
        product=index,
        match=product.match,
    )


# ---------------------------------------------------------------------------------------- file names


def name_time(path: str | Path, pattern: str | None = None) -> tuple[datetime, float | None] | None:
    """The start (UTC) of a file's first step, and its duration when the name says it, from the file name.

    Parameters
    ----------
    path
        The file (only its name is read).
    pattern
        ``None``: a GSMaP or an IMERG name; ``"gsmap"`` or ``"imerg"``: that one only; else a ``strftime``
        pattern found anywhere in the name (:func:`ews.config.time_pattern_regex`, UTC), e.g.
        ``"hujan_%Y%m%d_%H%M"``.

        * GSMaP: ``gsmap_<product>.YYYYMMDD.HHMM`` then ``.`` or the end (``gsmap_nrt.20260928.0900.dat.gz``,
          ``gsmap_now.20260928.0930.tif``): the start; no duration (hourly and half-hourly products share it).
        * IMERG: ``3B-<product>[-E|-L].MS.MRG.3IMERG.YYYYMMDD-SHHMMSS-EHHMMSS`` (any suffix: ``.HDF5``,
          ``.nc4``, ``.tif``): the start ``S``, and for half-hourly (``HHR``) and daily (``DAY``) products the
          duration ``E + 1 s - S``; a GIS file's window (``.3hr.``, ``.1day.``) ends at ``E + 1 s``.

    Returns
    -------
    tuple or None
        ``(start, step_hours or None)``; None when the name does not match.

    Raises
    ------
    RasterError
        The name matches but its date is not a valid date.
    ValueError
        ``pattern`` is not a valid time pattern.
    """
    name = Path(path).name
    kinds = (pattern,) if pattern in TIME_PATTERN_PRODUCTS else ("gsmap", "imerg") if pattern is None else ()
    try:
        if "gsmap" in kinds and (m := _GSMAP_TIME.match(name)):
            start = datetime.strptime(m.group("date") + m.group("hhmm"), "%Y%m%d%H%M").replace(tzinfo=UTC)
            return start, None
        if "imerg" in kinds and (m := _IMERG_TIME.match(name)):
            start = datetime.strptime(m.group("date") + m.group("start"), "%Y%m%d%H%M%S").replace(tzinfo=UTC)
            end = datetime.strptime(m.group("date") + m.group("end"), "%Y%m%d%H%M%S").replace(tzinfo=UTC)
            end += timedelta(seconds=1)
            if end <= start:
                end += timedelta(days=1)
            span = _IMERG_SPAN.search(name, m.end())
            if span:
                hours = int(span.group("n")) * _SPAN_HOURS[span.group("unit").lower()]
                return end - timedelta(hours=hours), hours
            if m.group("product").upper() in ("HHR", "DAY"):
                return start, (end - start).total_seconds() / 3600.0
            return start, None
        if not kinds and pattern is not None:
            found = time_pattern_regex(pattern).search(name)
            if found:
                return datetime.strptime(found.group(0), pattern).replace(tzinfo=UTC), None
    except ValueError:
        raise RasterError(f"{path}: the date in the file name is not a valid date; rename the file") from None
    return None


def gsmap_time(path: str | Path) -> datetime:
    """The start time (UTC) in a GSMaP file name, ``gsmap_<product>.YYYYMMDD.HHMM[.<version>].<ext>``.

    Accepted names include ``gsmap_nrt.20260924.0300.dat.gz`` (NRT hourly), ``gsmap_gauge_nrt...``,
    ``gsmap_now...``, ``gsmap_mvk.20260924.0300.v8.0000.0.dat.gz`` and GeoTIFF/NetCDF files named alike.

    Raises
    ------
    RasterError
        The name does not follow the pattern (the message says how to give the time instead).
    """
    found = name_time(path, "gsmap")
    if found is None:
        raise RasterError(
            f"{path}: cannot read the time from the name (expected gsmap_nrt.YYYYMMDD.HH00.dat.gz); "
            + RasterHints().ask(["time"], Path(path))
        )
    return found[0]


# --------------------------------------------------------------------------------------------- helpers


def _text(value: object) -> str:
    """An attribute as text: HDF5 gives bytes, numpy bytes or one-element arrays."""
    if isinstance(value, np.ndarray):
        value = value.item() if value.size == 1 else value.tolist()
    if isinstance(value, bytes | np.bytes_):
        return bytes(value).decode("utf-8", "replace").strip("\x00").strip()
    return str(value).strip()


def _utc64(when: datetime) -> np.datetime64:
    if when.tzinfo is None:
        raise ValueError(f"{when.isoformat()}: give a timezone-aware time (UTC or with an offset)")
    return np.datetime64(when.astimezone(UTC).replace(tzinfo=None), "ns")


def _iso(t: np.datetime64) -> str:
    return str(np.datetime_as_string(t.astype("datetime64[s]"), unit="m")) + "Z"


def _parse_instant(text: str, source: str, what: str) -> np.datetime64:
    """An ISO 8601 instant from a file; without an offset it is taken as UTC (satellite products are UTC)."""
    try:
        stamp = pd.Timestamp(text.strip())
    except (ValueError, TypeError):
        raise RasterError(f"{source}: {what} {text!r} is not an ISO 8601 time; write e.g. 2026-09-24T03:00Z") from None
    if stamp is pd.NaT:
        raise RasterError(f"{source}: {what} is empty; write e.g. 2026-09-24T03:00Z")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return np.datetime64(stamp.to_datetime64(), "ns")


def decode_cf_time(values: NDArray[Any], units: str, source: str, calendar: str = "standard") -> NDArray[np.datetime64]:
    """Decode CF ``"<unit> since <instant>"`` numbers into UTC ``datetime64[ns]``.

    Parameters
    ----------
    values
        Offsets from the reference instant.
    units
        E.g. ``"seconds since 1970-01-01 00:00:00 UTC"`` or ``"hours since 2026-09-24T00:00+07:00"``;
        a reference without an offset is UTC.
    source
        Names the file in errors.
    calendar
        The CF calendar; only the standard (Gregorian) ones are accepted.

    Raises
    ------
    RasterError
        The units are not ``<unit> since <time>`` or the calendar is not standard.
    """
    if calendar.strip().lower() not in _STANDARD_CALENDARS:
        raise RasterError(f"{source}: time calendar {calendar!r} is not supported; use a standard (Gregorian) calendar")
    match = _TIME_UNITS.match(units)
    if not match:
        raise RasterError(
            f"{source}: time units {units!r} are not '<unit> since <time>' (CF); e.g. 'hours since 1970-01-01 00:00'"
        )
    unit = match.group("unit").lower().rstrip("s") or "s"
    ref = _parse_instant(re.sub(r"\s+UTC$", "", match.group("ref"), flags=re.IGNORECASE), source, "time reference")
    seconds = np.asarray(values, dtype=np.float64) * _SECONDS[unit]
    if not np.all(np.isfinite(seconds)):
        raise RasterError(f"{source}: time holds missing values; every step needs a time")
    # Round to the millisecond: float seconds carry noise, steps of the products are whole minutes.
    return ref + (np.round(seconds * 1000.0).astype(np.int64) * np.timedelta64(1, "ms")).astype("timedelta64[ns]")


def _regular(coord: NDArray[np.float64], source: str, axis: str) -> float:
    steps = np.diff(coord)
    step = float((coord[-1] - coord[0]) / (len(coord) - 1))
    if step == 0 or not np.allclose(steps, step, rtol=1e-3, atol=0.0):
        raise RasterError(
            f"{source}: {axis} spacing is irregular (steps {float(steps.min()):.6g} to {float(steps.max()):.6g}); "
            "ews needs a regular grid: regrid the file first"
        )
    return step


def _snap(value: float, tolerance: float) -> float:
    """The roundest decimal within ``tolerance`` of ``value`` (float32 coordinates carry ~1e-5 degree noise)."""
    for decimals in range(0, 11):
        rounded = round(value, decimals)
        if abs(rounded - value) <= tolerance:
            return rounded
    return value


def _assemble(
    values: NDArray[Any],
    times: NDArray[np.datetime64],
    lat: NDArray[Any],
    lon: NDArray[Any],
    *,
    units: str | None,
    variable: str,
    source: str,
    step_hours: float,
    missing: Sequence[float] = (),
    negative_missing: bool = False,
    res: tuple[float, float] | None = None,
    bbox: BBox | None = None,
    rain: bool = True,
    crs: str = WGS84,
) -> xr.DataArray:
    """Turn ``values[time, lat, lon]`` (any lat/lon order, 0..360 allowed) into the module's contract.

    ``rain=False`` (plain statistics): units need not be a rain rate (rain rates are still converted to
    mm/h; others are kept as they are, ``""`` when unknown) and the step may be NaN. ``crs`` other than
    WGS84 (plain GeoTIFF only): ``lat``/``lon`` are the grid's y/x in its own units, and ``bbox`` too.
    """
    factor = rain_rate_factor(units) if units else None
    if rain:
        if factor is None:  # the readers resolve the units first (_metadata): this is a safety net
            raise RasterError(f"{source}: {variable!r} has units {units!r}, not a rain rate")
        if not step_hours > 0 or not math.isfinite(step_hours):
            raise RasterError(f"{source}: time step {step_hours} h is not a positive duration")
    units_out = "mm/h" if factor is not None else (units or "")
    geographic = crs == WGS84
    is_f32 = np.asarray(lat).dtype == np.float32 or np.asarray(lon).dtype == np.float32
    lat64 = np.asarray(lat, dtype=np.float64)
    lon64 = np.asarray(lon, dtype=np.float64)
    if not (np.all(np.isfinite(lat64)) and np.all(np.isfinite(lon64))):
        raise RasterError(f"{source}: latitude/longitude coordinates hold missing values")
    if geographic:
        if np.any(np.abs(lat64) > 90.0):
            raise RasterError(f"{source}: latitudes beyond +-90: the grid is not geographic (reproject to EPSG:4326)")
        lon_norm = np.where(lon64 >= 180.0, lon64 - 360.0, lon64)
        lon_norm = np.where(lon_norm < -180.0, lon_norm + 360.0, lon_norm)
    else:
        lon_norm = lon64
    xo = np.argsort(lon_norm, kind="stable")
    yo = np.argsort(-lat64, kind="stable")
    xs, ys = lon_norm[xo], lat64[yo]
    if len(np.unique(xs)) != len(xs) or len(np.unique(ys)) != len(ys):
        raise RasterError(f"{source}: repeated latitude or longitude coordinates; the grid is not regular")
    if len(xs) > 1:
        dx = _regular(xs, source, "longitude")
    if len(ys) > 1:
        dy = -_regular(ys, source, "latitude")
    if res is not None:  # the file's own resolution (GeoTIFF transform) is exact
        dx, dy = abs(res[0]), abs(res[1])
    elif len(xs) < 2 or len(ys) < 2:
        raise RasterError(f"{source}: one row or column only; ews needs two cells or more along lat and lon")
    x0, y0 = float(xs[0]), float(ys[0])
    # Snap away float noise so that one grid always gives one transform (the zonal weights are cached by it).
    if is_f32:
        noise = 2.0 * float(np.finfo(np.float32).eps) * 180.0  # float32 resolution at 180 degrees
        dx, dy = _snap(dx, noise / max(len(xs) - 1, 1)), _snap(dy, noise / max(len(ys) - 1, 1))
        x0, y0 = _snap(x0, noise), _snap(y0, noise)
    else:
        dx, dy, x0, y0 = round(dx, 12), round(dy, 12), round(x0, 10), round(y0, 10)
    xs = np.asarray(x0 + dx * np.arange(len(xs)), dtype=np.float64)
    ys = np.asarray(y0 - dy * np.arange(len(ys)), dtype=np.float64)
    if bbox is not None:
        west, south, east, north = bbox
        if not (west < east and south < north):
            raise ValueError(f"bbox {bbox}: give (west, south, east, north) with west < east and south < north")
        eps_x, eps_y = 1e-6 * dx, 1e-6 * dy  # a cell that only touches the bbox edge is not kept
        keep_x = (xs + dx / 2 > west + eps_x) & (xs - dx / 2 < east - eps_x)
        keep_y = (ys + dy / 2 > south + eps_y) & (ys - dy / 2 < north - eps_y)
        if not keep_x.any() or not keep_y.any():
            raise RasterError(
                _outside(source, (xs[0] - dx / 2, ys[-1] - dy / 2, xs[-1] + dx / 2, ys[0] + dy / 2), bbox)
            )
        first_x, first_y = int(np.argmax(keep_x)), int(np.argmax(keep_y))
        x0, y0 = x0 + first_x * dx, y0 - first_y * dy
        xo, yo = xo[keep_x], yo[keep_y]
    nx, ny = len(xo), len(yo)
    data = np.asarray(values)[:, yo[:, None], xo[None, :]]
    dtype = np.float64 if data.dtype == np.float64 or not np.issubdtype(data.dtype, np.floating) else np.float32
    out: NDArray[np.floating[Any]] = data.astype(dtype, copy=False)
    bad = ~np.isfinite(out)
    for m in missing:
        # Fill values are compared at the file's precision (-9999.9 is not exact in float32).
        bad |= np.isclose(out, dtype(m), rtol=1e-6, atol=0.0)
    if negative_missing:
        bad |= out < 0
    out[bad] = np.nan
    if factor is not None and factor != 1.0:
        out *= dtype(factor)
    if not np.isfinite(out).any():
        where = f" in the region {bbox}" if bbox is not None else ""
        raise RasterError(f"{source}: every cell of {variable!r} is missing{where}; the file holds no usable values")
    x = x0 + dx * np.arange(nx)
    y = y0 - dy * np.arange(ny)
    transform = (dx, 0.0, round(x0 - dx / 2, 10), 0.0, -dy, round(y0 + dy / 2, 10))
    axes = ("latitude", "degrees_north", "longitude", "degrees_east") if geographic else (
        "projection_y_coordinate", "", "projection_x_coordinate", "")  # fmt: skip
    attrs: dict[str, Any] = {
        "units": units_out,
        "crs": crs,
        "transform": transform,
        "step_hours": float(step_hours),
        "source": source,
        "variable": variable,
    }
    if factor is not None:
        attrs = {"standard_name": "rainfall_rate", "long_name": "rain rate", **attrs}
    return xr.DataArray(
        out,
        dims=("time", "y", "x"),
        coords={
            "time": ("time", np.asarray(times, dtype="datetime64[ns]")),
            "y": ("y", y, {"standard_name": axes[0], "units": axes[1]}),
            "x": ("x", x, {"standard_name": axes[2], "units": axes[3]}),
        },
        name=NAME if factor is not None else "value",
        attrs=attrs,
    )


def _outside(source: str, extent: BBox, bbox: BBox) -> str:
    west, south, east, north = extent
    return (
        f"{source}: the raster ({west:.3f}..{east:.3f}E, {south:.3f}..{north:.3f}N) does not cover the region "
        f"{tuple(round(v, 4) for v in bbox)}; check the file's area"
    )


def _spacing(times: NDArray[np.datetime64], source: str) -> float | None:
    """The smallest spacing of the step times in hours (gaps are then missing steps); None for one step."""
    if len(times) < 2 or np.isnat(times).any():
        return None
    spacing = np.diff(np.sort(times)).astype("timedelta64[ms]").astype(np.int64) / 3_600_000.0
    step = float(spacing.min())
    if step <= 0:
        raise RasterError(f"{source}: repeated time steps; each step must appear once")
    return step


def _times_arg(time: datetime | Sequence[datetime] | None, count: int, source: str) -> NDArray[np.datetime64] | None:
    if time is None:
        return None
    items = [time] if isinstance(time, datetime) else list(time)
    if len(items) != count:
        raise RasterError(f"{source}: {count} time steps in the file but {len(items)} times given")
    return np.array([_utc64(t) for t in items], dtype="datetime64[ns]")


def _same_units(a: str, b: str) -> bool:
    fa, fb = rain_rate_factor(a), rain_rate_factor(b)
    if fa is not None and fb is not None:
        return math.isclose(fa, fb, rel_tol=1e-12)
    return re.sub(r"\s+", " ", a.strip().lower()) == re.sub(r"\s+", " ", b.strip().lower())


def _conflict(source: str, what: str, said: str, by: str, hint: str, setting: str) -> RasterError:
    return RasterError(
        f"{source}: {by} says {what} {said}, but {setting} says {hint}; drop that setting (what the file says "
        "is used) or correct the file"
    )


def _metadata(
    file: Path,
    source: str,
    count: int,
    hints: RasterHints,
    *,
    variable: str,
    rain: bool,
    file_units: str | None,
    file_times: NDArray[np.datetime64] | None,
    file_step: float | None,
    looked: str,
    time_arg: datetime | Sequence[datetime] | None = None,
    step_arg: float | None = None,
) -> tuple[str | None, NDArray[np.datetime64], float]:
    """Units, step start times and step duration of a raster: from the file, its name, else the hints.

    Parameters
    ----------
    file, source
        The file, and how messages name it.
    count
        Number of bands / time steps.
    hints
        What the user says (fills gaps only; disagreeing with the file is an error).
    variable
        Names the values in messages (``band 1``, ``'precip'``).
    rain
        True: units, times and step are all needed (one error lists what is missing and how to give it).
        False (plain statistics): unknown units stay None, unknown times NaT, an unknown step NaN.
    file_units, file_times, file_step
        What the file itself says (None: nothing).
    looked
        Where ews looked in the file, for the message (e.g. ``"band unit type or tag units, band tags TIME"``).
    time_arg, step_arg
        Python callers' overrides (``time=``, ``step_hours=`` of the readers).

    Returns
    -------
    tuple
        ``(units or None, times datetime64[ns] of length count, step_hours or NaN)``.

    Raises
    ------
    RasterError
        Something needed is missing, a hint disagrees with the file, a hint is not usable (e.g. units that
        are not a rain rate), or an explicit time pattern does not match the file name.
    """
    missing: list[HintField] = []
    # Units.
    units = file_units
    if hints.units is not None:
        if file_units is None:
            units = hints.units
        elif not _same_units(file_units, hints.units):
            raise _conflict(source, "units", repr(file_units), "the file", repr(hints.units), hints.name_of("units"))
    if rain:
        if units is None:
            missing.append("units")
        elif rain_rate_factor(units) is None:
            if file_units is None:
                raise RasterError(
                    f"{source}: {hints.name_of('units')} {units!r} is not a rain rate; use mm/h, mm/hr, "
                    "kg m-2 s-1, mm/3h or mm/day"
                )
            raise RasterError(
                f"{source}: {variable} has units {units!r}, not a rain rate; ews accepts mm/h, mm/hr, kg m-2 s-1, "
                "mm/3h or mm/day: convert the file, or choose the rain variable"
            )
    # The file name.
    try:
        named = name_time(file, hints.time_pattern)
    except RasterError:
        if hints.time_pattern is not None or file_times is None:
            raise
        named = None  # the file's own times make a broken date in its name harmless
    except ValueError as exc:
        raise RasterError(f"{source}: {hints.name_of('time_pattern')}: {exc}") from None
    if hints.time_pattern is not None and named is None:
        raise RasterError(
            f"{source}: the file name does not match {hints.name_of('time_pattern')} {hints.time_pattern!r}; "
            "correct the pattern or rename the file"
        )
    # Step.
    step = step_arg
    if step is None:
        explicit, by = (file_step, "the file") if file_step is not None else (None, "")
        if explicit is None and named is not None and named[1] is not None:
            explicit, by = named[1], "the file name"
        if explicit is not None:
            if hints.step_hours is not None and not math.isclose(hints.step_hours, explicit, rel_tol=1e-9):
                raise _conflict(source, "a step of", f"{explicit:g} h", by, f"{hints.step_hours:g} h",
                                hints.name_of("step_hours"))  # fmt: skip
            step = explicit
        elif hints.step_hours is not None:
            step = float(hints.step_hours)
        elif file_times is not None:
            step = _spacing(file_times, source)
    # Start times.
    given = _times_arg(time_arg, count, source)
    hint_start = _utc64(hints.time) if hints.time is not None else None
    name_start = _utc64(named[0]) if named is not None else None
    one_second = np.timedelta64(1, "s")
    if given is not None:
        times = given
    elif file_times is not None and not np.isnat(file_times).any():
        first = file_times.min()
        if hint_start is not None and abs(first - hint_start) > one_second:
            raise _conflict(source, "the first step starts", _iso(first), "the file", _iso(hint_start),
                            hints.name_of("time"))  # fmt: skip
        if hints.time_pattern is not None and name_start is not None and abs(first - name_start) > one_second:
            raise _conflict(source, "the first step starts", _iso(first), "the file", _iso(name_start),
                            hints.name_of("time_pattern"))  # fmt: skip
        times = file_times
    else:
        start = name_start
        if hint_start is not None:
            if start is not None and abs(start - hint_start) > one_second:
                raise _conflict(source, "the first step starts", _iso(start), "the file name", _iso(hint_start),
                                hints.name_of("time"))  # fmt: skip
            start = hint_start
        if start is None:
            if rain:
                missing.append("time")
            times = np.full(count, _NAT, dtype="datetime64[ns]")
        elif count == 1:
            times = np.array([start], dtype="datetime64[ns]")
        elif step is None:
            if rain and "step_hours" not in missing:
                missing.append("step_hours")
            times = np.array([start] + [_NAT] * (count - 1), dtype="datetime64[ns]")
        else:
            offsets = np.round(np.arange(count) * step * 3_600_000).astype(np.int64) * np.timedelta64(1, "ms")
            times = start + offsets.astype("timedelta64[ns]")
    if rain and step is None and "step_hours" not in missing:
        missing.append("step_hours")
    if missing:
        words = [_WHAT[f] for f in missing]
        what = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]
        raise RasterError(
            f"{source}: {variable} has no {what} (ews reads {looked}, and GSMaP/IMERG file names), and rain needs "
            f"{'it' if len(words) == 1 else 'them'}: {hints.ask(missing, file)}"
        )
    return units, times, float("nan") if step is None else float(step)


# ---------------------------------------------------------------------------------------------- GeoTIFF


def _geographic_wgs84(crs: object, source: str) -> None:
    if crs is None:
        raise RasterError(f"{source}: no CRS; ews needs EPSG:4326 (assign it, e.g. gdal_edit.py -a_srs EPSG:4326)")
    rcrs = rasterio.crs.CRS.from_user_input(crs)
    if rcrs.is_projected:
        raise RasterError(
            f"{source}: projected CRS {rcrs.to_string()!r}; ews reads geographic WGS84 only: reproject to EPSG:4326 "
            "(e.g. gdalwarp -t_srs EPSG:4326)"
        )
    if not _is_wgs84(rcrs):
        raise RasterError(
            f"{source}: CRS {rcrs.to_string()!r} is not WGS84; reproject to EPSG:4326 (e.g. gdalwarp -t_srs EPSG:4326)"
        )


def _is_wgs84(rcrs: rasterio.crs.CRS) -> bool:
    return bool(rcrs.to_epsg() == 4326 or rcrs == rasterio.crs.CRS.from_user_input("OGC:CRS84"))


def _grid_crs(crs: object, source: str, rain: bool) -> str:
    """``"EPSG:4326"`` for WGS84 lon/lat; for plain statistics any other CRS as text (EPSG code or WKT)."""
    if rain or crs is None:
        _geographic_wgs84(crs, source)
        return WGS84
    rcrs = rasterio.crs.CRS.from_user_input(crs)
    if _is_wgs84(rcrs):
        return WGS84
    code = rcrs.to_epsg()
    return f"EPSG:{code}" if code is not None else str(rcrs.to_wkt())


def _tag(tags: Mapping[str, str], *names: str) -> str | None:
    lower = {k.lower(): v for k, v in tags.items()}
    for name in names:
        if name.lower() in lower and str(lower[name.lower()]).strip():
            return str(lower[name.lower()])
    return None


def _window(
    transform: tuple[float, ...], width: int, height: int, bbox: BBox, crs: str, source: str
) -> tuple[tuple[int, int, int, int] | None, BBox]:
    """The pixel window ``(col, row, width, height)`` that holds ``bbox`` (degrees), and ``bbox`` in the CRS.

    None reads the whole raster (a rotated grid, or a 0..360 lon/lat grid that the reader rolls).

    Raises
    ------
    RasterError
        ``bbox`` lies outside the raster (before any data is read).
    """
    a, b, c, d, e, f = transform[:6]
    native = bbox
    if crs != WGS84:
        try:
            left, bottom, right, top = rasterio.warp.transform_bounds(WGS84, crs, *bbox, densify_pts=21)
            native = (float(left), float(bottom), float(right), float(top))
        except (rasterio.errors.RasterioError, ValueError):
            return None, bbox
    if b != 0 or d != 0 or a == 0 or e == 0 or (crs == WGS84 and (c < -180.0 - 1e-9 or c + a * width > 180.0 + 1e-9)):
        return None, native
    west, south, east, north = native
    cols = sorted(((west - c) / a, (east - c) / a))
    rows = sorted(((north - f) / e, (south - f) / e))
    col0, col1 = max(math.floor(cols[0]) - 1, 0), min(math.ceil(cols[1]) + 1, width)
    row0, row1 = max(math.floor(rows[0]) - 1, 0), min(math.ceil(rows[1]) + 1, height)
    if col1 <= col0 or row1 <= row0:
        xs = sorted((c, c + a * width))
        ys = sorted((f, f + e * height))
        raise RasterError(_outside(source, (xs[0], ys[0], xs[1], ys[1]), native))
    return (col0, row0, col1 - col0, row1 - row0), native


def read_geotiff(
    path: str | Path,
    *,
    time: datetime | Sequence[datetime] | None = None,
    step_hours: float | None = None,
    bbox: BBox | None = None,
    hints: RasterHints | None = None,
) -> xr.DataArray:
    """Read a GeoTIFF or COG of rain rates (one band per time step) with rasterio.

    Metadata read (GDAL metadata, case-insensitive keys), each else from the file name
    (:func:`name_time`), else from ``hints``:

    * time of each band: band tag ``TIME`` (ISO 8601, the start of the step; no offset means UTC), else a
      dataset tag ``TIME`` for a one-band file, else GDAL's NetCDF export ``NETCDF_DIM_time`` per band with
      the dataset tag ``time#units``; with a start from the name or the hints, band ``i`` starts ``i``
      steps later;
    * units: the band unit type (``gdal_edit.py -units``), else band tag ``units``, else dataset tag ``units``;
    * step duration: tag ``STEP_HOURS`` (dataset or band 1), else the name (IMERG), else the hints, else
      the smallest spacing between band times;
    * nodata, scales and offsets of the bands.

    With ``bbox``, only the window that holds it is read.

    Parameters
    ----------
    path
        The file.
    time
        Start time(s) of the band(s) (timezone-aware), overriding the file.
    step_hours
        Duration of each band, overriding the file.
    bbox
        ``(west, south, east, north)``: keep only the cells that meet it.
    hints
        What the user says about the file (fills gaps only).

    Returns
    -------
    xarray.DataArray
        See the module docstring.

    Raises
    ------
    RasterError
        Unreadable or truncated file, missing CRS or a non-WGS84 CRS, rotated grid, missing or unknown
        units, no time or step (the message names the flags or region keys that give them), or no valid cell.
    """
    return _read_geotiff(Path(path), time=time, step_hours=step_hours, bbox=bbox, hints=hints or RasterHints(),
                         rain=True)  # fmt: skip


def _read_geotiff(
    path: Path,
    *,
    time: datetime | Sequence[datetime] | None,
    step_hours: float | None,
    bbox: BBox | None,
    hints: RasterHints,
    rain: bool,
) -> xr.DataArray:
    source = str(path)
    try:
        with rasterio.open(path) as src:
            crs = _grid_crs(src.crs, source, rain)
            transform = tuple(src.transform)[:6]
            count, height, width = src.count, src.height, src.width
            window, native = (None, bbox) if bbox is None else _window(transform, width, height, bbox, crs, source)
            nodatas = src.nodatavals
            unit_types = src.units
            scales, offsets = src.scales, src.offsets
            tags = src.tags()
            band_tags = [src.tags(i) for i in range(1, count + 1)]
            if window is None:
                raw = src.read()
                col0 = row0 = 0
            else:
                col0, row0, width, height = window
                raw = src.read(window=rasterio.windows.Window(col0, row0, width, height))
    except rasterio.errors.RasterioError as exc:
        raise RasterError(
            f"{source}: cannot read as GeoTIFF ({exc}); the file may be truncated or corrupt: download it again"
        ) from exc
    a, b, c, d, e, f = (float(v) for v in transform)
    if b != 0 or d != 0:
        raise RasterError(f"{source}: the grid is rotated (transform {transform}); warp it to a north-up grid")
    lon = c + a * (np.arange(col0, col0 + width) + 0.5)
    lat = f + e * (np.arange(row0, row0 + height) + 0.5)

    file_units = next((u for u in unit_types if u), None) or _tag(band_tags[0], "units") or _tag(tags, "units")
    file_step: float | None = None
    step_text = _tag(tags, "STEP_HOURS") or _tag(band_tags[0], "STEP_HOURS")
    if step_text is not None:
        try:
            file_step = float(step_text)
        except ValueError:
            raise RasterError(f"{source}: tag STEP_HOURS {step_text!r} is not a number of hours") from None
    variable = "band 1" if count == 1 else f"bands 1-{count}"
    units, times, step = _metadata(
        path, source, count, hints, variable=variable, rain=rain, file_units=file_units,
        file_times=_geotiff_times(tags, band_tags, source), file_step=file_step,
        looked="band unit type or tag units, band tags TIME, tag STEP_HOURS", time_arg=time, step_arg=step_hours,
    )  # fmt: skip

    values: NDArray[Any] = raw
    fills = {float(v) for v in nodatas if v is not None and not math.isnan(v)}
    if not fills and np.issubdtype(raw.dtype, np.integer) and _IMERG_TIME.match(path.name):
        fills = {float(IMERG_GIS_MISSING)}  # an IMERG GIS file: 29999 would read as 2999.9 mm/h
    scaled = any(s != 1.0 for s in scales) or any(o != 0.0 for o in offsets)
    if scaled or not np.issubdtype(raw.dtype, np.floating):
        values = raw.astype(np.float64)
        for fill in fills:
            values[raw == fill] = np.nan
        fills = set()
        values = values * np.asarray(scales, dtype=np.float64)[:, None, None]
        values = values + np.asarray(offsets, dtype=np.float64)[:, None, None]
    return _assemble(
        values,
        times,
        lat,
        lon,
        units=units,
        variable=variable,
        source=source,
        step_hours=step,
        missing=sorted(fills),
        res=(abs(a), abs(e)),
        bbox=native,
        rain=rain,
        crs=crs,
    )


def _geotiff_times(
    tags: Mapping[str, str], band_tags: list[dict[str, str]], source: str
) -> NDArray[np.datetime64] | None:
    per_band = [_tag(t, "TIME") for t in band_tags]
    if all(v is not None for v in per_band):
        return np.array([_parse_instant(str(v), source, "band tag TIME") for v in per_band], dtype="datetime64[ns]")
    if len(band_tags) == 1 and _tag(tags, "TIME") is not None:
        return np.array([_parse_instant(str(_tag(tags, "TIME")), source, "tag TIME")], dtype="datetime64[ns]")
    nc = [_tag(t, "NETCDF_DIM_time") for t in band_tags]
    nc_units = _tag(tags, "time#units")
    if all(v is not None for v in nc) and nc_units is not None:
        try:
            offsets = np.array([float(str(v)) for v in nc])
        except ValueError:
            raise RasterError(f"{source}: band tags NETCDF_DIM_time are not numbers") from None
        return decode_cf_time(offsets, nc_units, source, _tag(tags, "time#calendar") or "standard")
    return None


# ----------------------------------------------------------------------------------------------- NetCDF


def _magic(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(8)
    except OSError as exc:
        raise RasterError(f"{path}: cannot open ({exc.strerror}); check the rainfall path") from None


def _units_of(attrs: Mapping[Any, Any]) -> str | None:
    value = attrs.get("units", attrs.get("Units"))
    return None if value is None else _text(value)


def _axis_kind(name: str, coord: xr.DataArray | None) -> str | None:
    """``"lat"``, ``"lon"``, ``"time"``, ``"projected"`` or None for a dimension, from its coordinate's CF attrs."""
    if coord is None:
        return None
    units = (_units_of(coord.attrs) or "").strip().lower().replace(" ", "_")
    std = _text(coord.attrs.get("standard_name", "")).lower()
    axis = _text(coord.attrs.get("axis", "")).upper()
    if units in _LAT_UNITS or std == "latitude":
        return "lat" if units in _LAT_UNITS or not units else "bad_lat"
    if units in _LON_UNITS or std == "longitude":
        return "lon" if units in _LON_UNITS or not units else "bad_lon"
    if " since " in units.replace("_", " ") or std == "time" or axis == "T":
        return "time"
    if std in ("projection_x_coordinate", "projection_y_coordinate") or units in ("m", "km", "metre", "meter"):
        return "projected"
    return None


def _grid_mapping_check(ds: xr.Dataset, var: xr.DataArray, source: str) -> bool:
    """Check the CF grid mapping; True when one declares WGS84 lon/lat."""
    name = _text(var.attrs.get("grid_mapping", var.encoding.get("grid_mapping", "")))
    if not name:
        return False
    name = name.split(":")[0].split()[0]
    if name not in ds.variables:
        raise RasterError(f"{source}: grid_mapping {name!r} of {var.name!r} is not in the file")
    gm = ds.variables[name].attrs
    wkt = gm.get("crs_wkt") or gm.get("spatial_ref")
    if wkt:
        try:
            _geographic_wgs84(_text(wkt), source)
        except rasterio.errors.CRSError:
            raise RasterError(f"{source}: grid_mapping {name!r} has an unreadable crs_wkt") from None
        return True
    kind = _text(gm.get("grid_mapping_name", ""))
    if kind != "latitude_longitude":
        raise RasterError(
            f"{source}: grid mapping {kind or name!r} is projected; ews reads geographic WGS84 only: "
            "reproject to EPSG:4326 (e.g. gdalwarp -t_srs EPSG:4326)"
        )
    axis = gm.get("semi_major_axis")
    if axis is not None and abs(float(axis) - 6378137.0) > 1.0:
        raise RasterError(f"{source}: grid mapping ellipsoid (semi_major_axis {axis}) is not WGS84; reproject")
    return True


def _find_variable(ds: xr.Dataset, variable: str | None, source: str, hints: RasterHints, rain: bool) -> str:
    names = [str(n) for n in ds.data_vars if ds[n].ndim >= 2]
    file = Path(source)
    if variable is not None:
        if variable not in ds.variables:
            raise RasterError(
                f"{source}: no variable {variable!r} ({hints.name_of('variable')}); the file has "
                f"{', '.join(names) or 'none'}"
            )
        return variable
    by_std = [n for n in names if _text(ds[n].attrs.get("standard_name", "")) in _RATE_STANDARD_NAMES]
    by_units = [n for n in names if rain_rate_factor(_units_of(ds[n].attrs) or "") is not None]
    by_name = [n for n in names if n in _RATE_VAR_NAMES]
    for found in (by_std, by_units, by_name):
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise RasterError(
                f"{source}: several rain variables ({', '.join(found)}); choose one: "
                + hints.ask(["variable"], file, {"variable": found[0]})
            )
    if not rain and len(names) == 1:
        return names[0]
    kind = "rain-rate variable found (by standard_name, units or name)" if rain else "single variable to read"
    raise RasterError(
        f"{source}: no {kind} among {', '.join(names) or 'none'}; "
        + hints.ask(["variable"], file, {"variable": names[0] if names else "NAME"})
    )


def _open_dataset(path: Path, group: str | None) -> xr.Dataset:
    magic = _magic(path)
    engine = "h5netcdf" if magic.startswith(_HDF5_MAGIC) else "scipy" if magic.startswith(b"CDF") else None
    if engine is None:
        raise RasterError(f"{path}: not a NetCDF file (neither NetCDF-4/HDF5 nor classic NetCDF); check the file")
    try:
        ds = xr.open_dataset(path, engine=engine, group=group, decode_times=False, decode_coords=False)
        return ds.load()
    except (OSError, ValueError, KeyError, RuntimeError, TypeError) as exc:
        raise RasterError(f"{path}: cannot read as NetCDF ({exc}); the file may be truncated or corrupt") from exc


def read_netcdf(
    path: str | Path,
    *,
    variable: str | None = None,
    group: str | None = None,
    time: datetime | Sequence[datetime] | None = None,
    step_hours: float | None = None,
    bbox: BBox | None = None,
    hints: RasterHints | None = None,
) -> xr.DataArray:
    """Read a CF NetCDF rain-rate variable (NetCDF-4 via h5netcdf, classic NetCDF via scipy).

    The variable is ``variable`` (or the hints'), else the one whose ``standard_name`` is a rain rate
    (``rainfall_rate``, ``precipitation_flux``, ...), else the one with rain-rate units, else a usual name
    (``precipitation``, ``precip``, ...). Its dimensions are recognised by their coordinates:
    latitude/longitude by units ``degrees_north``/``degrees_east`` (or ``standard_name``), time by
    ``<unit> since <time>`` units; other dimensions must have length 1. The CRS comes from the CF
    ``grid_mapping`` variable (``latitude_longitude`` or a ``crs_wkt`` of WGS84); without one, lat/lon
    coordinates in degrees are taken as WGS84, which is what CF implies. Time values are the start of each
    step unless the time has CF ``bounds``, whose lower bounds are used (and whose width is the step);
    otherwise the step is the file name's (IMERG), the hints', or the smallest spacing of the times. A
    variable without a time dimension takes its start from the file name or the hints. Missing values
    (``_FillValue``/``missing_value``) become NaN.

    Parameters
    ----------
    path
        The file.
    variable
        The rain variable's name.
    group
        A NetCDF-4 group (e.g. ``"Grid"``).
    time
        Start time(s), overriding the file.
    step_hours
        Duration of each step, overriding the file.
    bbox
        ``(west, south, east, north)``: keep only the cells that meet it.
    hints
        What the user says about the file (fills gaps only).

    Returns
    -------
    xarray.DataArray
        See the module docstring.

    Raises
    ------
    RasterError
        Unreadable file, no rain variable, no or unknown units, no time or step (the message names the
        flags or region keys that give them), no CRS information (no grid mapping and no lat/lon
        coordinates in degrees), a projected grid, irregular spacing, or no valid cell.
    """
    return _read_netcdf(Path(path), variable=variable, group=group, time=time, step_hours=step_hours, bbox=bbox,
                        hints=hints or RasterHints(), rain=True)  # fmt: skip


def _read_netcdf(
    file: Path,
    *,
    variable: str | None,
    group: str | None,
    time: datetime | Sequence[datetime] | None,
    step_hours: float | None,
    bbox: BBox | None,
    hints: RasterHints,
    rain: bool,
) -> xr.DataArray:
    source = str(file)
    ds = _open_dataset(file, group)
    name = _find_variable(ds, variable or hints.variable, source, hints, rain)
    var = ds[name]
    file_units = _units_of(var.attrs)
    if rain and file_units is not None and rain_rate_factor(file_units) is None:
        raise RasterError(
            f"{source}: variable {name!r} has units {file_units!r}, not a rain rate; ews accepts mm/h, mm/hr, "
            f"kg m-2 s-1, mm/3h or mm/day: convert the file or choose the rain variable ({hints.name_of('variable')})"
        )
    has_mapping = _grid_mapping_check(ds, var, source)
    roles: dict[str, str] = {}
    for dim in var.dims:
        kind = _axis_kind(str(dim), ds[dim] if dim in ds.variables else None)
        if kind is None and has_mapping and dim in ds.variables:
            # A latitude_longitude grid mapping makes unlabelled lat/lon coordinates geographic.
            kind = {"lat": "lat", "latitude": "lat", "lon": "lon", "longitude": "lon"}.get(str(dim).lower())
        if kind in ("lat", "lon", "time"):
            roles[str(kind)] = str(dim)
        elif kind is not None or var.sizes[dim] > 1:
            raise RasterError(
                f"{source}: no CRS information for {name!r}: dimension {dim!r} has no coordinate in "
                "degrees_north/degrees_east and no CF grid_mapping; add a grid_mapping (EPSG:4326) or lat/lon "
                "coordinates with units"
            )
    if "lat" not in roles or "lon" not in roles:
        raise RasterError(
            f"{source}: no CRS information for {name!r} (dims {', '.join(map(str, var.dims))}): give it latitude and "
            "longitude coordinates with units degrees_north/degrees_east (or a CF grid_mapping)"
        )
    extra = [d for d in var.dims if d not in roles.values()]
    var = var.isel({d: 0 for d in extra})

    file_times: NDArray[np.datetime64] | None = None
    file_step: float | None = None
    if "time" in roles:
        tvar = ds[roles["time"]]
        bounds_name = _text(tvar.attrs.get("bounds", ""))
        tunits = _units_of(tvar.attrs)
        calendar = _text(tvar.attrs.get("calendar", "standard"))
        if tunits is None:
            if rain:
                raise RasterError(
                    f"{source}: time coordinate has no units; use CF units such as 'hours since 1970-01-01'"
                )
        elif bounds_name and bounds_name in ds.variables:
            bnds = decode_cf_time(np.asarray(ds[bounds_name].values).ravel(), tunits, source, calendar)
            bnds = bnds.reshape(-1, 2)
            file_times = bnds[:, 0]
            widths = (bnds[:, 1] - bnds[:, 0]).astype("timedelta64[ms]").astype(np.int64) / 3_600_000.0
            if not np.allclose(widths, widths[0]) or widths[0] <= 0:
                if step_hours is None and rain:
                    raise RasterError(f"{source}: time bounds have unequal or empty widths; ews needs a fixed step")
            else:
                file_step = float(widths[0])
        else:
            file_times = decode_cf_time(np.asarray(tvar.values), tunits, source, calendar)
        var = var.transpose(roles["time"], roles["lat"], roles["lon"])
    else:
        var = var.transpose(roles["lat"], roles["lon"]).expand_dims("time")
    units, times, step = _metadata(
        file, source, var.shape[0], hints, variable=f"variable {name!r}", rain=rain, file_units=file_units,
        file_times=file_times, file_step=file_step,
        looked=f"attribute units of {name!r}, a CF time coordinate with bounds", time_arg=time, step_arg=step_hours,
    )  # fmt: skip
    lat = np.asarray(ds[roles["lat"]].values)
    lon = np.asarray(ds[roles["lon"]].values)
    return _assemble(
        np.asarray(var.values),
        times,
        lat,
        lon,
        units=units,
        variable=name,
        source=source,
        step_hours=step,
        bbox=bbox,
        rain=rain,
    )


# ------------------------------------------------------------------------------------------------ GSMaP


def read_gsmap(
    path: str | Path,
    *,
    time: datetime | None = None,
    step_hours: float = 1.0,
    bbox: BBox | None = None,
    hints: RasterHints | None = None,
) -> xr.DataArray:
    """Read a GSMaP hourly binary file (NRT, gauge-calibrated, NOW) per JAXA's flat format.

    The file (gzip-compressed or not) is 3600 x 1200 little-endian float32 rain rates in mm/h on 0.1 degree
    cells: rows from 59.95N southwards to 59.95S, columns from 0.05E eastwards to 359.95E (rolled here to
    -179.95..179.95). Negative values are missing. The time is ``time``, else the one in the file name
    (:func:`name_time`: GSMaP's, or the hints' ``time_pattern``), else the hints' ``time``, taken as the
    start of an hour (JAXA's hourly files are named by the hour they begin); for half-hourly GSMaP_NOW
    files give a step of 0.5 h after checking JAXA's convention.

    Parameters
    ----------
    path
        The file.
    time
        Start of the step (timezone-aware), overriding the file name.
    step_hours
        Duration of the step.
    bbox
        ``(west, south, east, north)``: keep only the cells that meet it.
    hints
        What the user says about the file (its time, when the name has none).

    Returns
    -------
    xarray.DataArray
        See the module docstring.

    Raises
    ------
    RasterError
        Truncated or corrupt file (wrong byte count or broken gzip stream), no time (the message names the
        flag or region key that gives it), or no valid cell.
    """
    return _read_gsmap(Path(path), time=time, step_hours=step_hours, bbox=bbox, hints=hints or RasterHints(),
                       rain=True)  # fmt: skip


def _read_gsmap(
    file: Path, *, time: datetime | None, step_hours: float, bbox: BBox | None, hints: RasterHints, rain: bool
) -> xr.DataArray:
    source = str(file)
    magic = _magic(file)
    # The format fixes units and step; only the time can be missing (a renamed file).
    if rain and time is None and hints.time is None and hints.time_pattern is None and name_time(file) is None:
        raise RasterError(
            f"{source}: cannot read the time from the name (expected gsmap_nrt.YYYYMMDD.HHMM.dat.gz): "
            + hints.ask(["time"], file)
        )
    _, times, _ = _metadata(
        file, source, 1, hints, variable="gsmap hourly rain", rain=rain, file_units="mm/h", file_times=None,
        file_step=None, looked="GSMaP's file name gsmap_nrt.YYYYMMDD.HHMM.dat.gz", time_arg=time, step_arg=step_hours,
    )  # fmt: skip
    try:
        if magic.startswith(b"\x1f\x8b"):
            with gzip.open(file, "rb") as handle:
                payload = handle.read(GSMAP_BYTES + 1)
        else:
            payload = file.read_bytes()
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise RasterError(f"{source}: truncated or corrupt gzip stream ({exc}); download the GSMaP file again") from exc
    except OSError as exc:
        raise RasterError(f"{source}: cannot read ({exc}); download the GSMaP file again") from exc
    if len(payload) != GSMAP_BYTES:
        raise RasterError(
            f"{source}: truncated or not a GSMaP hourly grid: {len(payload)} bytes, expected {GSMAP_BYTES} "
            "(3600 x 1200 float32); download the file again"
        )
    grid = np.frombuffer(payload, dtype="<f4").reshape(1, *GSMAP_SHAPE)
    lat = 59.95 - 0.1 * np.arange(GSMAP_SHAPE[0])
    lon = 0.05 + 0.1 * np.arange(GSMAP_SHAPE[1])
    return _assemble(
        grid,
        times,
        np.round(lat, 2),
        np.round(lon, 2),
        units="mm/h",
        variable="gsmap hourly rain",
        source=source,
        step_hours=step_hours,
        negative_missing=True,
        bbox=bbox,
        rain=rain,
    )


# ------------------------------------------------------------------------------------------------ IMERG


def _imerg_step(grid: Any, root: Any, tunits: str, source: str, rain: bool) -> float | None:
    if "time_bnds" in grid:
        bnds = decode_cf_time(np.asarray(grid["time_bnds"][...]).ravel(), tunits, source).reshape(-1, 2)
        widths = (bnds[:, 1] - bnds[:, 0]).astype("timedelta64[s]").astype(np.int64) / 3600.0
        if len(widths) and widths[0] > 0 and np.allclose(widths, widths[0]):
            return float(widths[0])
    header = _text(root.attrs.get("FileHeader", ""))
    match = re.search(r"TimeInterval=([A-Z_]+)", header)
    if match:
        if match.group(1) not in _IMERG_INTERVALS:
            if not rain:
                return None
            raise RasterError(f"{source}: IMERG TimeInterval={match.group(1)} is not a rain-rate step ews uses")
        return _IMERG_INTERVALS[match.group(1)]
    return None


def read_imerg(
    path: str | Path,
    *,
    variable: str | None = None,
    step_hours: float | None = None,
    bbox: BBox | None = None,
    hints: RasterHints | None = None,
) -> xr.DataArray:
    """Read NASA GPM IMERG (V06/V07, HDF5 or NetCDF-4) with h5py.

    Layout: group ``Grid`` (or the root), dataset ``precipitation`` (V07; V06 half-hourly:
    ``precipitationCal``) with dimensions (time, lon, lat) (read from its ``DimensionNames`` attribute or its
    NetCDF dimension scales, else from the shape), ``Grid/lat``, ``Grid/lon`` (cell centres, south-west
    origin) and ``Grid/time`` in CF units (parsed: V06 counts from 1970-01-01, V07 from 1980-01-06). The
    ``calendar="julian"`` label of V07 files is ignored: their epoch is the GPS epoch, a Gregorian date.
    The step is the width of ``Grid/time_bnds``, else ``TimeInterval`` of the ``FileHeader`` attribute
    (``HALF_HOUR`` = 0.5 h), else the file name's (``-S093000-E095959``), else the hints';
    ``Grid/time`` (or the lower bound) is the step's start. ``_FillValue`` (-9999.9) becomes NaN.

    Parameters
    ----------
    path
        The file.
    variable
        The dataset name inside the group, if not ``precipitation``/``precipitationCal``.
    step_hours
        Duration of each step, overriding the file.
    bbox
        ``(west, south, east, north)``: keep only the cells that meet it.
    hints
        What the user says about the file (fills gaps only).

    Returns
    -------
    xarray.DataArray
        See the module docstring.

    Raises
    ------
    RasterError
        Unreadable file, missing datasets or units, an unknown dimension order, or no valid cell.
    """
    return _read_imerg(Path(path), variable=variable, step_hours=step_hours, bbox=bbox, hints=hints or RasterHints(),
                       rain=True)  # fmt: skip


def _read_imerg(
    file: Path, *, variable: str | None, step_hours: float | None, bbox: BBox | None, hints: RasterHints, rain: bool
) -> xr.DataArray:
    source = str(file)
    if not _magic(file).startswith(_HDF5_MAGIC):
        raise RasterError(f"{source}: not an HDF5/NetCDF-4 file, so not IMERG; check the file")
    variable = variable or hints.variable
    try:
        with h5py.File(file, "r") as root:
            grid = root["Grid"] if "Grid" in root else root
            names = [variable] if variable else ["precipitation", "precipitationCal"]
            name = next((n for n in names if n in grid), None)
            if name is None:
                fix = f" ({hints.name_of('variable')})" if variable else ""
                raise RasterError(f"{source}: no dataset {' or '.join(names)}{fix} in {grid.name}; is this IMERG?")
            for needed in ("lat", "lon", "time"):
                if needed not in grid:
                    raise RasterError(f"{source}: no {grid.name.rstrip('/')}/{needed} dataset; is this IMERG?")
            dset = grid[name]
            lat = np.asarray(grid["lat"][...])
            lon = np.asarray(grid["lon"][...])
            tunits = _units_of(grid["time"].attrs)
            if tunits is None:
                raise RasterError(f"{source}: {grid.name}/time has no units; expected 'seconds since ...'")
            times = decode_cf_time(np.asarray(grid["time"][...]), tunits, source)
            if "time_bnds" in grid:
                times = decode_cf_time(np.asarray(grid["time_bnds"][...]).ravel(), tunits, source).reshape(-1, 2)[:, 0]
            file_step = _imerg_step(grid, root, tunits, source, rain)
            order = _imerg_order(dset, len(times), len(lat), len(lon), source)
            file_units = _units_of(dset.attrs)
            fill = dset.attrs.get("_FillValue", dset.attrs.get("CodeMissingValue", IMERG_FILL))
            raw = np.asarray(dset[...])
    except (OSError, KeyError) as exc:
        raise RasterError(f"{source}: cannot read as IMERG HDF5 ({exc}); the file may be truncated or corrupt") from exc
    values = np.transpose(raw, order)  # -> (time, lat, lon): a view, _assemble copies only what it keeps
    units, times, step = _metadata(
        file, source, len(times), hints, variable=f"dataset {name!r}", rain=rain, file_units=file_units,
        file_times=times, file_step=file_step, looked=f"attribute units of {name!r}, Grid/time_bnds, FileHeader",
        step_arg=step_hours,
    )  # fmt: skip
    return _assemble(
        values,
        times,
        lat,
        lon,
        units=units,
        variable=name,
        source=source,
        step_hours=step,
        missing=[float(_text(fill))],
        bbox=bbox,
        rain=rain,
    )


def _imerg_order(dset: Any, nt: int, nlat: int, nlon: int, source: str) -> tuple[int, int, int]:
    """Axes of the dataset that hold (time, lat, lon)."""
    dims: list[str] = []
    if "DimensionNames" in dset.attrs:
        dims = [d.strip() for d in _text(dset.attrs["DimensionNames"]).split(",")]
    elif "DIMENSION_LIST" in dset.attrs:
        dims = [Path(str(dset.dims[i][0].name)).name for i in range(dset.ndim)]
    if sorted(dims) == ["lat", "lon", "time"]:
        return dims.index("time"), dims.index("lat"), dims.index("lon")
    shape = tuple(dset.shape)
    if shape == (nt, nlon, nlat):
        return 0, 2, 1
    if shape == (nt, nlat, nlon):
        return 0, 1, 2
    raise RasterError(f"{source}: {dset.name} has shape {shape}, not (time, lon, lat) = ({nt}, {nlon}, {nlat})")


# ------------------------------------------------------------------------------------------ front doors


def _detect(file: Path) -> Kind:
    magic = _magic(file)
    if magic.startswith(_TIFF_MAGIC):
        return "geotiff"
    if magic.startswith(b"\x1f\x8b") or _GSMAP_NAME.match(file.name):
        return "gsmap"
    if magic.startswith(b"CDF"):
        return "netcdf"
    if magic.startswith(_HDF5_MAGIC):
        try:
            with h5py.File(file, "r") as root:
                grid = root["Grid"] if "Grid" in root else root
                imerg = "FileHeader" in root.attrs or (
                    "Grid" in root and any(n in grid for n in ("precipitation", "precipitationCal"))
                )
        except OSError as exc:
            raise RasterError(f"{file}: cannot read as HDF5 ({exc}); the file may be truncated or corrupt") from exc
        return "imerg" if imerg else "netcdf"
    suffix = file.suffix.lower()
    if suffix in (".tif", ".tiff"):
        return "geotiff"
    raise RasterError(
        f"{file}: unknown raster format (not GeoTIFF, NetCDF, HDF5 or GSMaP gzip); check that the file is one of "
        "them and complete"
    )


def raster_bytes_problem(name: str, data: bytes) -> str | None:
    """Why a downloaded rain file is not a complete raster of its format, or None when it is one.

    A quick check before a download is kept (and cached): a server's error page answered with 200, or a
    transfer cut short, must not replace a step of a series. GSMaP gzip files must unpack to the full
    3600 x 1200 float32 grid; GeoTIFF, HDF5 and NetCDF files must open and (GeoTIFF) read their first band.
    It does not check units, times or the grid: the readers do, when the run uses the file.

    Parameters
    ----------
    name
        The file name (GSMaP's ``gsmap_*.dat.gz`` names decide the expected size).
    data
        The body downloaded.
    """
    head = data[:8]
    if head.startswith(b"\x1f\x8b"):
        try:
            raw = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            return f"not a complete gzip file ({exc}); the transfer may have been cut short"
        if _GSMAP_NAME.match(name) and len(raw) != GSMAP_BYTES:
            return f"unpacks to {len(raw):,} bytes, a GSMaP hourly grid holds {GSMAP_BYTES:,} (3600 x 1200 float32)"
        return None
    if head.startswith(_TIFF_MAGIC):
        try:
            with warnings.catch_warnings(), rasterio.io.MemoryFile(data) as memory, memory.open() as src:
                warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
                src.read(1, window=rasterio.windows.Window(0, 0, min(src.width, 1), min(src.height, 1)))
                src.read(1, window=rasterio.windows.Window(src.width - 1, src.height - 1, 1, 1))
        except rasterio.errors.RasterioError as exc:
            return f"not a readable GeoTIFF ({exc}); the transfer may have been cut short"
        return None
    if head.startswith(_HDF5_MAGIC):
        import io

        try:
            with h5py.File(io.BytesIO(data), "r") as root:
                list(root.keys())
        except OSError as exc:
            return f"not a readable HDF5 file ({exc}); the transfer may have been cut short"
        return None
    if head.startswith(b"CDF"):
        return None
    shown = data[:40].decode("ascii", "replace").replace("\n", " ")
    return (
        f"not a raster (GSMaP gzip, GeoTIFF, HDF5 or NetCDF): it starts with {shown!r}; the server may have sent "
        "an error page"
    )


def _folder_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise RasterError(f"{folder}: folder holds no raster file; check the path")
    return files


def _one_time_for_many(folder: Path, files: Sequence[Path], hints: HintsArg) -> None:
    """A start time given by the user is the start of one file: refuse it for a folder of several files."""
    with_time = [f for f in files if _hints_for(hints, f).time is not None]
    if len(with_time) > 1:
        h = _hints_for(hints, with_time[0])
        raise RasterError(
            f"{folder}: {h.name_of('time')} gives the start of one file, but it applies to {len(with_time)} files "
            f"here; use {h.name_of('time_pattern')} to read each file's time from its name, or tag the files' bands "
            "with TIME"
        )


def _read(file: Path, kind: Kind, *, variable: str | None, time: datetime | Sequence[datetime] | None,
          step_hours: float | None, bbox: BBox | None, hints: RasterHints, rain: bool) -> xr.DataArray:  # fmt: skip
    if not file.is_file():
        raise RasterError(f"{file}: raster file not found; check the path")
    chosen = _detect(file) if kind == "auto" else kind
    if chosen == "geotiff":
        return _read_geotiff(file, time=time, step_hours=step_hours, bbox=bbox, hints=hints, rain=rain)
    if chosen == "netcdf":
        return _read_netcdf(file, variable=variable, group=None, time=time, step_hours=step_hours, bbox=bbox,
                            hints=hints, rain=rain)  # fmt: skip
    if chosen == "gsmap":
        if time is not None and not isinstance(time, datetime):
            raise RasterError(f"{file}: a GSMaP file holds one hour; give one time")
        step = step_hours if step_hours is not None else hints.step_hours if hints.step_hours is not None else 1.0
        return _read_gsmap(file, time=time, step_hours=step, bbox=bbox, hints=hints, rain=rain)
    if chosen == "imerg":
        return _read_imerg(file, variable=variable, step_hours=step_hours, bbox=bbox, hints=hints, rain=rain)
    raise RasterError(f"{file}: unknown kind {kind!r}; use auto, geotiff, netcdf, gsmap or imerg")


def open_rainfall(
    path: str | Path,
    *,
    kind: Kind = "auto",
    variable: str | None = None,
    time: datetime | Sequence[datetime] | None = None,
    step_hours: float | None = None,
    bbox: BBox | None = None,
    hints: HintsArg = None,
) -> xr.DataArray:
    """Read a rainfall raster of any supported format into the module's DataArray contract.

    Parameters
    ----------
    path
        The file, or a folder whose files (not hidden) are read as one series (:func:`open_rainfall_series`).
    kind
        ``"geotiff"``, ``"netcdf"``, ``"gsmap"``, ``"imerg"``, or ``"auto"``: from the file's first bytes
        (TIFF, gzip or a ``gsmap_*`` name, classic NetCDF, HDF5 with IMERG's ``Grid`` group or ``FileHeader``,
        other HDF5 as NetCDF-4), then the suffix.
    variable
        The rain variable (NetCDF, IMERG).
    time
        Start time(s), overriding the file (timezone-aware).
    step_hours
        Duration of each step, overriding the file.
    bbox
        ``(west, south, east, north)`` in degrees: keep only the cells that meet it (a GeoTIFF reads only
        that window).
    hints
        What the user says about files that do not say it themselves: one :class:`RasterHints` (the
        ``ews zonal`` flags), or a function giving each file's (:func:`product_hints` for the region's
        ``rain.products``). Hints fill gaps only, and messages name where to set them.

    Returns
    -------
    xarray.DataArray
        ``precipitation_rate`` (time, y, x) in mm/h; see the module docstring for coordinates and attrs.

    Raises
    ------
    RasterError
        The file is missing, of unknown format, unreadable, or unusable (see each reader).
    """
    file = Path(path)
    if file.is_dir():
        return open_rainfall_series(_folder_files(file), kind=kind, variable=variable, bbox=bbox, hints=hints,
                                    folder=file)  # fmt: skip
    if not file.is_file():
        raise RasterError(f"{file}: rainfall file not found; check the path")
    return _read(file, kind, variable=variable, time=time, step_hours=step_hours, bbox=bbox,
                 hints=_hints_for(hints, file), rain=True)  # fmt: skip


def _same_grid(arrays: Sequence[xr.DataArray], *, step: bool) -> None:
    first = arrays[0]
    for other in arrays[1:]:
        same = (
            other.shape[1:] == first.shape[1:]
            and other.attrs["crs"] == first.attrs["crs"]
            and np.allclose(other.attrs["transform"], first.attrs["transform"], rtol=0, atol=1e-9)
            and (not step or other.attrs["step_hours"] == first.attrs["step_hours"])
        )
        if not same:
            raise RasterError(
                f"{other.attrs['source']}: grid or step differs from {first.attrs['source']} "
                f"({other.attrs['transform']}/{other.attrs['step_hours']} h vs "
                f"{first.attrs['transform']}/{first.attrs['step_hours']} h); use files of one product"
            )


def open_rainfall_series(
    paths: Iterable[str | Path],
    *,
    kind: Kind = "auto",
    variable: str | None = None,
    bbox: BBox | None = None,
    hints: HintsArg = None,
    folder: Path | None = None,
) -> xr.DataArray:
    """Read several rainfall files on one grid (e.g. 24 hourly GSMaP files) into one time series.

    Parameters
    ----------
    paths
        The files.
    kind, variable, bbox, hints
        As for :func:`open_rainfall`, for every file.
    folder
        The folder they come from, for messages.

    Returns
    -------
    xarray.DataArray
        The steps of all files in time order; ``attrs["source"]`` is the file with the newest step and
        ``attrs["sources"]`` all files.

    Raises
    ------
    RasterError
        No file, files on different grids or with different step durations, a time step in two files, or
        one start time given for several files.
    """
    files = [Path(p) for p in paths]
    if not files:
        raise RasterError("no rainfall file given; check the rainfall folder or pattern")
    _one_time_for_many(folder or files[0].parent, files, hints)
    arrays = [open_rainfall(p, kind=kind, variable=variable, bbox=bbox, hints=hints) for p in files]
    _same_grid(arrays, step=True)
    combined = xr.concat(arrays, dim="time", combine_attrs="override").sortby("time")
    times = combined["time"].values
    if len(np.unique(times)) != len(times):
        dup = pd.Index(times)[pd.Index(times).duplicated()][0]
        raise RasterError(f"time step {_iso(np.datetime64(dup))} appears in two files; remove the duplicate")
    newest = max(arrays, key=lambda a: a["time"].values.max())
    combined.attrs = dict(arrays[0].attrs)
    combined.attrs["source"] = newest.attrs["source"]
    combined.attrs["sources"] = tuple(str(a.attrs["source"]) for a in arrays)
    return combined


def open_raster(
    path: str | Path,
    *,
    kind: Kind = "auto",
    bbox: BBox | None = None,
    hints: HintsArg = None,
) -> xr.DataArray:
    """Read any raster for plain zonal statistics: any units, no time needed, any CRS for GeoTIFF.

    The same readers as :func:`open_rainfall`, without the rain requirements: values in rain-rate units
    are converted to mm/h, other values are kept as they are with their units (``""`` when the file says
    none and ``hints.units`` is not given); band times come from the file, its name or the hints when
    known, else NaT. A GeoTIFF in another CRS than WGS84 keeps its grid (``attrs["crs"]`` is its EPSG code
    or WKT): the caller brings the polygons into that CRS.

    Parameters
    ----------
    path
        The file, or a folder whose files are read as consecutive bands (ordered by time when every band
        has one, else by file name).
    kind
        As for :func:`open_rainfall`.
    bbox
        ``(west, south, east, north)`` in degrees: keep only the cells that meet it (a GeoTIFF reads only
        that window, in its own CRS).
    hints
        What the user says (``units``, ``time``, ``step_hours``, ``time_pattern``, ``variable``).

    Returns
    -------
    xarray.DataArray
        ``(band, y, x)`` north-up; coordinate ``time`` along ``band`` (``datetime64[ns]`` UTC, NaT when
        unknown); ``attrs``: ``units``, ``crs``, ``transform``, ``source``, ``step_hours`` (NaN when unknown).

    Raises
    ------
    RasterError
        The file is missing, unreadable, without CRS, rotated, a projected NetCDF, or without a valid cell.
    """
    file = Path(path)
    if file.is_dir():
        files = _folder_files(file)
        _one_time_for_many(file, files, hints)
        arrays = [open_raster(p, kind=kind, bbox=bbox, hints=hints) for p in files]
        _same_grid(arrays, step=False)
        combined = xr.concat(arrays, dim="band", combine_attrs="override")
        if not np.isnat(combined["time"].values).any():
            combined = combined.sortby("time")
        combined = combined.assign_coords(band=np.arange(1, combined.sizes["band"] + 1))
        combined.attrs = dict(arrays[0].attrs)
        combined.attrs["sources"] = tuple(str(a.attrs["source"]) for a in arrays)
        return combined
    hint = _hints_for(hints, file)
    da = _read(file, kind, variable=hint.variable, time=None, step_hours=None, bbox=bbox, hints=hint, rain=False)
    return xr.DataArray(
        da.values,
        dims=("band", "y", "x"),
        coords={
            "band": np.arange(1, da.sizes["time"] + 1),
            "time": ("band", da["time"].values),
            "y": da["y"],
            "x": da["x"],
        },
        name=da.name,
        attrs=dict(da.attrs),
    )


def step_end(da: xr.DataArray) -> datetime:
    """The end (UTC) of the newest step of a rainfall DataArray: its last start plus ``step_hours``."""
    last = np.datetime64(da["time"].values.max(), "ns")
    end = last + np.timedelta64(round(float(da.attrs["step_hours"]) * 3_600_000), "ms")
    return datetime.fromisoformat(str(end.astype("datetime64[us]"))).replace(tzinfo=UTC)


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def check_fresh(da: xr.DataArray, now: datetime, max_age: timedelta) -> None:
    """Raise when the newest rain step ended more than ``max_age`` before ``now``.

    Parameters
    ----------
    da
        A rainfall DataArray (``attrs["source"]`` and ``attrs["step_hours"]``).
    now
        The run time (timezone-aware).
    max_age
        The allowed age of the newest step's end (``RainRules.max_age_minutes``).

    Raises
    ------
    StaleSourceError
        Naming the file, its newest step end (UTC) and its age; the run must report itself degraded.
    """
    if now.tzinfo is None:
        raise ValueError("check_fresh: give a timezone-aware now")
    end = step_end(da)
    age = now - end
    if age > max_age:
        raise StaleSourceError(
            f"{da.attrs.get('source', 'rainfall')}: newest rain ends {end:%Y-%m-%dT%H:%MZ}, {_duration(age)} before "
            f"the run (more than {_duration(max_age)} allowed); the feed may have stopped: check the download"
        )

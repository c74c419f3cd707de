"""Satellite rainfall rasters (GeoTIFF/COG, CF NetCDF, GSMaP NRT, IMERG) read into one DataArray shape.

Every reader returns the same contract, which the zonal statistics consume:

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

Coordinates stored as float32 (IMERG) are snapped to the roundest decimal within their own precision
(about 4e-5 degree), so that the same grid always gives the same transform (-179.95, not -179.9499969).
"""

from __future__ import annotations

import gzip
import math
import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import h5py  # type: ignore[import-untyped, unused-ignore]
import numpy as np
import pandas as pd
import rasterio
import rasterio.errors
import xarray as xr
from numpy.typing import NDArray

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

IMERG_FILL = -9999.9
_IMERG_INTERVALS = {"HALF_HOUR": 0.5, "HOUR": 1.0, "THREE_HOUR": 3.0, "DAY": 24.0}

# Unit spellings -> factor to mm/h. Anything else is refused: a wrong factor silently makes or hides a warning.
_UNITS: dict[str, float] = {
    "mm/h": 1.0,
    "mm/hr": 1.0,
    "mm/hour": 1.0,
    "mm h-1": 1.0,
    "mm h^-1": 1.0,
    "mm.h-1": 1.0,
    "mm hr-1": 1.0,
    "mm/3h": 1.0 / 3.0,
    "kg m-2 s-1": 3600.0,
    "kg m^-2 s^-1": 3600.0,
    "kg/m2/s": 3600.0,
    "kg m-2 s^-1": 3600.0,
    "mm/s": 3600.0,
    "mm s-1": 3600.0,
    "mm/day": 1.0 / 24.0,
    "mm/d": 1.0 / 24.0,
    "mm d-1": 1.0 / 24.0,
    "mm day-1": 1.0 / 24.0,
    "mm/24h": 1.0 / 24.0,
}
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


def _unit_factor(units: str | None, source: str, variable: str) -> float:
    if units is None or not units.strip():
        raise RasterError(
            f"{source}: variable {variable!r} has no units; set units to 'mm/h' (or mm/hr, kg m-2 s-1, mm/day) "
            "in the file, ews does not guess rain units"
        )
    key = re.sub(r"\s+", " ", units.strip().lower())
    if key not in _UNITS:
        raise RasterError(
            f"{source}: variable {variable!r} has units {units!r}, not a rain rate; ews accepts mm/h, mm/hr, "
            "kg m-2 s-1 or mm/day: convert the file or choose the rain variable"
        )
    return _UNITS[key]


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
) -> xr.DataArray:
    """Turn ``values[time, lat, lon]`` (any lat/lon order, 0..360 allowed) into the module's contract."""
    factor = _unit_factor(units, source, variable)
    if not step_hours > 0 or not math.isfinite(step_hours):
        raise RasterError(f"{source}: time step {step_hours} h is not a positive duration")
    is_f32 = np.asarray(lat).dtype == np.float32 or np.asarray(lon).dtype == np.float32
    lat64 = np.asarray(lat, dtype=np.float64)
    lon64 = np.asarray(lon, dtype=np.float64)
    if not (np.all(np.isfinite(lat64)) and np.all(np.isfinite(lon64))):
        raise RasterError(f"{source}: latitude/longitude coordinates hold missing values")
    if np.any(np.abs(lat64) > 90.0):
        raise RasterError(f"{source}: latitudes beyond +-90: the grid is not geographic (reproject to EPSG:4326)")
    lon_norm = np.where(lon64 >= 180.0, lon64 - 360.0, lon64)
    lon_norm = np.where(lon_norm < -180.0, lon_norm + 360.0, lon_norm)
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
                f"{source}: the raster ({xs[0] - dx / 2:.3f}..{xs[-1] + dx / 2:.3f}E, "
                f"{ys[-1] - dy / 2:.3f}..{ys[0] + dy / 2:.3f}N) does not cover the region {bbox}; "
                "check the file's area"
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
    if factor != 1.0:
        out *= dtype(factor)
    if not np.isfinite(out).any():
        where = f" in the region {bbox}" if bbox is not None else ""
        raise RasterError(f"{source}: every cell of {variable!r} is missing{where}; the file holds no usable rain")
    x = x0 + dx * np.arange(nx)
    y = y0 - dy * np.arange(ny)
    transform = (dx, 0.0, round(x0 - dx / 2, 10), 0.0, -dy, round(y0 + dy / 2, 10))
    return xr.DataArray(
        out,
        dims=("time", "y", "x"),
        coords={
            "time": ("time", np.asarray(times, dtype="datetime64[ns]")),
            "y": ("y", y, {"standard_name": "latitude", "units": "degrees_north"}),
            "x": ("x", x, {"standard_name": "longitude", "units": "degrees_east"}),
        },
        name=NAME,
        attrs={
            "standard_name": "rainfall_rate",
            "long_name": "rain rate",
            "units": "mm/h",
            "crs": WGS84,
            "transform": transform,
            "step_hours": float(step_hours),
            "source": source,
            "variable": variable,
        },
    )


def _step_from_times(times: NDArray[np.datetime64], given: float | None, source: str) -> float:
    """The step: ``given``, else the smallest spacing of the times (gaps are then missing steps)."""
    if given is not None:
        return float(given)
    if len(times) > 1:
        spacing = np.diff(np.sort(times)).astype("timedelta64[ms]").astype(np.int64) / 3_600_000.0
        step = float(spacing.min())
        if step <= 0:
            raise RasterError(f"{source}: repeated time steps; each step must appear once")
        return step
    raise RasterError(
        f"{source}: one time step and no step duration in the file; pass step_hours= (e.g. 1.0 for hourly rain)"
    )


def _times_arg(time: datetime | Sequence[datetime] | None, count: int, source: str) -> NDArray[np.datetime64] | None:
    if time is None:
        return None
    items = [time] if isinstance(time, datetime) else list(time)
    if len(items) != count:
        raise RasterError(f"{source}: {count} time steps in the file but {len(items)} times given")
    return np.array([_utc64(t) for t in items], dtype="datetime64[ns]")


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
    if rcrs.to_epsg() != 4326 and rcrs != rasterio.crs.CRS.from_user_input("OGC:CRS84"):
        raise RasterError(
            f"{source}: CRS {rcrs.to_string()!r} is not WGS84; reproject to EPSG:4326 (e.g. gdalwarp -t_srs EPSG:4326)"
        )


def _tag(tags: Mapping[str, str], *names: str) -> str | None:
    lower = {k.lower(): v for k, v in tags.items()}
    for name in names:
        if name.lower() in lower and str(lower[name.lower()]).strip():
            return str(lower[name.lower()])
    return None


def read_geotiff(
    path: str | Path,
    *,
    time: datetime | Sequence[datetime] | None = None,
    step_hours: float | None = None,
    bbox: BBox | None = None,
) -> xr.DataArray:
    """Read a GeoTIFF or COG of rain rates (one band per time step) with rasterio.

    Metadata read (GDAL metadata, case-insensitive keys):

    * time of each band: band tag ``TIME`` (ISO 8601, the start of the step; no offset means UTC), else a
      dataset tag ``TIME`` for a one-band file, else GDAL's NetCDF export ``NETCDF_DIM_time`` per band with
      the dataset tag ``time#units``; else the ``time`` argument;
    * units: the band unit type (``gdal_edit.py -units``), else band tag ``units``, else dataset tag ``units``;
    * step duration: ``step_hours`` argument, else tag ``STEP_HOURS`` (dataset or band 1), else the smallest
      spacing between band times;
    * nodata, scales and offsets of the bands.

    Parameters
    ----------
    path
        The file.
    time
        Start time(s) of the band(s) (timezone-aware), for files without time tags.
    step_hours
        Duration of each band.
    bbox
        ``(west, south, east, north)``: keep only the cells that meet it.

    Returns
    -------
    xarray.DataArray
        See the module docstring.

    Raises
    ------
    RasterError
        Unreadable or truncated file, missing CRS or a non-WGS84 CRS, rotated grid, missing or unknown
        units, no time, or no valid cell.
    """
    source = str(path)
    try:
        with rasterio.open(path) as src:
            crs = src.crs
            transform = src.transform
            count, height, width = src.count, src.height, src.width
            nodatas = src.nodatavals
            unit_types = src.units
            scales, offsets = src.scales, src.offsets
            tags = src.tags()
            band_tags = [src.tags(i) for i in range(1, count + 1)]
            raw = src.read()
    except rasterio.errors.RasterioError as exc:
        raise RasterError(
            f"{source}: cannot read as GeoTIFF ({exc}); the file may be truncated or corrupt: download it again"
        ) from exc
    _geographic_wgs84(crs, source)
    a, b, c, d, e, f = (float(v) for v in tuple(transform)[:6])
    if b != 0 or d != 0:
        raise RasterError(
            f"{source}: the grid is rotated (transform {tuple(transform)[:6]}); warp it to a north-up grid"
        )
    lon = c + a * (np.arange(width) + 0.5)
    lat = f + e * (np.arange(height) + 0.5)

    units = next((u for u in unit_types if u), None) or _tag(band_tags[0], "units") or _tag(tags, "units")
    _unit_factor(units, source, "band 1")  # refuse wrong units before converting the data

    values: NDArray[Any] = raw
    fills = {float(v) for v in nodatas if v is not None and not math.isnan(v)}
    scaled = any(s != 1.0 for s in scales) or any(o != 0.0 for o in offsets)
    if scaled or not np.issubdtype(raw.dtype, np.floating):
        values = raw.astype(np.float64)
        for fill in fills:
            values[raw == fill] = np.nan
        fills = set()
        values = values * np.asarray(scales, dtype=np.float64)[:, None, None]
        values = values + np.asarray(offsets, dtype=np.float64)[:, None, None]

    times = _times_arg(time, count, source)
    if times is None:
        times = _geotiff_times(tags, band_tags, source)
    if step_hours is None:
        step_text = _tag(tags, "STEP_HOURS") or _tag(band_tags[0], "STEP_HOURS")
        if step_text is not None:
            try:
                step_hours = float(step_text)
            except ValueError:
                raise RasterError(f"{source}: tag STEP_HOURS {step_text!r} is not a number of hours") from None
    step = _step_from_times(times, step_hours, source)
    return _assemble(
        values,
        times,
        lat,
        lon,
        units=units,
        variable="band 1" if count == 1 else f"bands 1-{count}",
        source=source,
        step_hours=step,
        missing=sorted(fills),
        res=(abs(a), abs(e)),
        bbox=bbox,
    )


def _geotiff_times(tags: Mapping[str, str], band_tags: list[dict[str, str]], source: str) -> NDArray[np.datetime64]:
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
    raise RasterError(
        f"{source}: no time for the bands; tag each band with TIME=<ISO 8601 start, UTC> "
        "(or pass time= for a single-band file)"
    )


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


def _find_variable(ds: xr.Dataset, variable: str | None, source: str) -> str:
    names = [str(n) for n in ds.data_vars if ds[n].ndim >= 2]
    if variable is not None:
        if variable not in ds.variables:
            raise RasterError(f"{source}: no variable {variable!r}; the file has {', '.join(names) or 'none'}")
        return variable
    by_std = [n for n in names if _text(ds[n].attrs.get("standard_name", "")) in _RATE_STANDARD_NAMES]
    by_units = [n for n in names if (_units_of(ds[n].attrs) or "").strip().lower() in _UNITS]
    by_name = [n for n in names if n in _RATE_VAR_NAMES]
    for found in (by_std, by_units, by_name):
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise RasterError(f"{source}: several rain variables ({', '.join(found)}); pass variable= to choose one")
    raise RasterError(
        f"{source}: no rain-rate variable found (by standard_name, units or name) among {', '.join(names) or 'none'}; "
        "pass variable="
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
) -> xr.DataArray:
    """Read a CF NetCDF rain-rate variable (NetCDF-4 via h5netcdf, classic NetCDF via scipy).

    The variable is ``variable``, else the one whose ``standard_name`` is a rain rate (``rainfall_rate``,
    ``precipitation_flux``, ...), else the one with rain-rate units, else a usual name (``precipitation``,
    ``precip``, ...). Its dimensions are recognised by their coordinates: latitude/longitude by units
    ``degrees_north``/``degrees_east`` (or ``standard_name``), time by ``<unit> since <time>`` units; other
    dimensions must have length 1. The CRS comes from the CF ``grid_mapping`` variable (``latitude_longitude``
    or a ``crs_wkt`` of WGS84); without one, lat/lon coordinates in degrees are taken as WGS84, which is
    what CF implies. Time values are the start of each step unless the time has CF ``bounds``, whose lower
    bounds are used (and whose width is the step); otherwise the step is ``step_hours`` or the smallest
    spacing of the times. Missing values (``_FillValue``/``missing_value``) become NaN.

    Parameters
    ----------
    path
        The file.
    variable
        The rain variable's name.
    group
        A NetCDF-4 group (e.g. ``"Grid"``).
    time
        Start time(s) when the variable has no time dimension.
    step_hours
        Duration of each step.
    bbox
        ``(west, south, east, north)``: keep only the cells that meet it.

    Returns
    -------
    xarray.DataArray
        See the module docstring.

    Raises
    ------
    RasterError
        Unreadable file, no rain variable, no or unknown units, no CRS information (no grid mapping and no
        lat/lon coordinates in degrees), a projected grid, irregular spacing, or no valid cell.
    """
    file = Path(path)
    source = str(path)
    ds = _open_dataset(file, group)
    name = _find_variable(ds, variable, source)
    var = ds[name]
    units = _units_of(var.attrs)
    _unit_factor(units, source, name)
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

    times: NDArray[np.datetime64] | None
    step = step_hours
    if "time" in roles:
        tvar = ds[roles["time"]]
        bounds_name = _text(tvar.attrs.get("bounds", ""))
        tunits = _units_of(tvar.attrs)
        if tunits is None:
            raise RasterError(f"{source}: time coordinate has no units; use CF units such as 'hours since 1970-01-01'")
        calendar = _text(tvar.attrs.get("calendar", "standard"))
        if bounds_name and bounds_name in ds.variables:
            bnds = decode_cf_time(np.asarray(ds[bounds_name].values).ravel(), tunits, source, calendar)
            bnds = bnds.reshape(-1, 2)
            times = bnds[:, 0]
            widths = (bnds[:, 1] - bnds[:, 0]).astype("timedelta64[ms]").astype(np.int64) / 3_600_000.0
            if step is None:
                if not np.allclose(widths, widths[0]) or widths[0] <= 0:
                    raise RasterError(f"{source}: time bounds have unequal or empty widths; ews needs a fixed step")
                step = float(widths[0])
        else:
            times = decode_cf_time(np.asarray(tvar.values), tunits, source, calendar)
        var = var.transpose(roles["time"], roles["lat"], roles["lon"])
    else:
        times = _times_arg(time, 1, source)
        if times is None:
            raise RasterError(f"{source}: {name!r} has no time dimension; pass time= (the start of the step, UTC)")
        var = var.transpose(roles["lat"], roles["lon"]).expand_dims("time")
    if time is not None and "time" in roles:
        times = _times_arg(time, var.shape[0], source)
    assert times is not None  # noqa: S101  (narrowing for mypy; every branch above sets it)
    step = _step_from_times(times, step, source)
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
    )


# ------------------------------------------------------------------------------------------------ GSMaP


def gsmap_time(path: str | Path) -> datetime:
    """The start time (UTC) in a GSMaP file name, ``gsmap_<product>.YYYYMMDD.HHMM[.<version>].dat[.gz]``.

    Accepted names include ``gsmap_nrt.20260924.0300.dat.gz`` (NRT hourly), ``gsmap_gauge_nrt...``,
    ``gsmap_now...`` and ``gsmap_mvk.20260924.0300.v8.0000.0.dat.gz``.

    Raises
    ------
    RasterError
        The name does not follow the pattern (pass ``time=`` to :func:`read_gsmap` instead).
    """
    name = Path(path).name
    match = _GSMAP_NAME.match(name)
    if not match:
        raise RasterError(
            f"{path}: cannot read the time from the name (expected gsmap_nrt.YYYYMMDD.HH00.dat.gz); pass time="
        )
    try:
        return datetime.strptime(match.group("date") + match.group("hhmm"), "%Y%m%d%H%M").replace(tzinfo=UTC)
    except ValueError:
        raise RasterError(f"{path}: the date in the name is not a valid date; pass time=") from None


def read_gsmap(
    path: str | Path,
    *,
    time: datetime | None = None,
    step_hours: float = 1.0,
    bbox: BBox | None = None,
) -> xr.DataArray:
    """Read a GSMaP hourly binary file (NRT, gauge-calibrated, NOW) per JAXA's flat format.

    The file (gzip-compressed or not) is 3600 x 1200 little-endian float32 rain rates in mm/h on 0.1 degree
    cells: rows from 59.95N southwards to 59.95S, columns from 0.05E eastwards to 359.95E (rolled here to
    -179.95..179.95). Negative values are missing. The time is ``time``, else the one in the file name
    (:func:`gsmap_time`), taken as the start of an hour (JAXA's hourly files are named by the hour they
    begin); for half-hourly GSMaP_NOW files pass ``step_hours=0.5`` after checking JAXA's convention.

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

    Returns
    -------
    xarray.DataArray
        See the module docstring.

    Raises
    ------
    RasterError
        Truncated or corrupt file (wrong byte count or broken gzip stream), no time, or no valid cell.
    """
    file = Path(path)
    source = str(path)
    magic = _magic(file)
    when = _utc64(time) if time is not None else _utc64(gsmap_time(file))
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
        np.array([when], dtype="datetime64[ns]"),
        np.round(lat, 2),
        np.round(lon, 2),
        units="mm/h",
        variable="gsmap hourly rain",
        source=source,
        step_hours=step_hours,
        negative_missing=True,
        bbox=bbox,
    )


# ------------------------------------------------------------------------------------------------ IMERG


def _imerg_step(grid: Any, root: Any, tunits: str, source: str) -> float | None:
    if "time_bnds" in grid:
        bnds = decode_cf_time(np.asarray(grid["time_bnds"][...]).ravel(), tunits, source).reshape(-1, 2)
        widths = (bnds[:, 1] - bnds[:, 0]).astype("timedelta64[s]").astype(np.int64) / 3600.0
        if len(widths) and widths[0] > 0 and np.allclose(widths, widths[0]):
            return float(widths[0])
    header = _text(root.attrs.get("FileHeader", ""))
    match = re.search(r"TimeInterval=([A-Z_]+)", header)
    if match:
        if match.group(1) not in _IMERG_INTERVALS:
            raise RasterError(f"{source}: IMERG TimeInterval={match.group(1)} is not a rain-rate step ews uses")
        return _IMERG_INTERVALS[match.group(1)]
    return None


def read_imerg(
    path: str | Path,
    *,
    variable: str | None = None,
    step_hours: float | None = None,
    bbox: BBox | None = None,
) -> xr.DataArray:
    """Read NASA GPM IMERG (V06/V07, HDF5 or NetCDF-4) with h5py.

    Layout: group ``Grid`` (or the root), dataset ``precipitation`` (V07; V06 half-hourly:
    ``precipitationCal``) with dimensions (time, lon, lat) (read from its ``DimensionNames`` attribute or its
    NetCDF dimension scales, else from the shape), ``Grid/lat``, ``Grid/lon`` (cell centres, south-west
    origin) and ``Grid/time`` in CF units (parsed: V06 counts from 1970-01-01, V07 from 1980-01-06). The
    ``calendar="julian"`` label of V07 files is ignored: their epoch is the GPS epoch, a Gregorian date.
    The step is the width of ``Grid/time_bnds``, else ``TimeInterval`` of the ``FileHeader`` attribute
    (``HALF_HOUR`` = 0.5 h), else ``step_hours``; ``Grid/time`` (or the lower bound) is the step's start.
    ``_FillValue`` (-9999.9) becomes NaN.

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

    Returns
    -------
    xarray.DataArray
        See the module docstring.

    Raises
    ------
    RasterError
        Unreadable file, missing datasets or units, an unknown dimension order, or no valid cell.
    """
    file = Path(path)
    source = str(path)
    if not _magic(file).startswith(_HDF5_MAGIC):
        raise RasterError(f"{source}: not an HDF5/NetCDF-4 file, so not IMERG; check the file")
    try:
        with h5py.File(file, "r") as root:
            grid = root["Grid"] if "Grid" in root else root
            names = [variable] if variable else ["precipitation", "precipitationCal"]
            name = next((n for n in names if n in grid), None)
            if name is None:
                raise RasterError(f"{source}: no dataset {' or '.join(names)} in {grid.name}; is this IMERG?")
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
            step = step_hours if step_hours is not None else _imerg_step(grid, root, tunits, source)
            order = _imerg_order(dset, len(times), len(lat), len(lon), source)
            units = _units_of(dset.attrs)
            fill = dset.attrs.get("_FillValue", dset.attrs.get("CodeMissingValue", IMERG_FILL))
            raw = np.asarray(dset[...])
    except (OSError, KeyError) as exc:
        raise RasterError(f"{source}: cannot read as IMERG HDF5 ({exc}); the file may be truncated or corrupt") from exc
    values = np.transpose(raw, order)  # -> (time, lat, lon): a view, _assemble copies only what it keeps
    step = _step_from_times(times, step, source)
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
        f"{file}: unknown rainfall format (not GeoTIFF, NetCDF, HDF5 or GSMaP gzip); pass kind= or check the file"
    )


def open_rainfall(
    path: str | Path,
    *,
    kind: Kind = "auto",
    variable: str | None = None,
    time: datetime | Sequence[datetime] | None = None,
    step_hours: float | None = None,
    bbox: BBox | None = None,
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
        Start time(s) for files that carry none (timezone-aware).
    step_hours
        Duration of each step, overriding the file.
    bbox
        ``(west, south, east, north)`` in degrees: keep only the cells that meet it.

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
        files = sorted(p for p in file.iterdir() if p.is_file() and not p.name.startswith("."))
        if not files:
            raise RasterError(f"{file}: folder holds no rainfall file; check the path")
        return open_rainfall_series(files, kind=kind, variable=variable, bbox=bbox)
    if not file.is_file():
        raise RasterError(f"{file}: rainfall file not found; check the path")
    chosen = _detect(file) if kind == "auto" else kind
    if chosen == "geotiff":
        return read_geotiff(file, time=time, step_hours=step_hours, bbox=bbox)
    if chosen == "netcdf":
        return read_netcdf(file, variable=variable, time=time, step_hours=step_hours, bbox=bbox)
    if chosen == "gsmap":
        if time is not None and not isinstance(time, datetime):
            raise RasterError(f"{file}: a GSMaP file holds one hour; pass one time")
        return read_gsmap(file, time=time, step_hours=1.0 if step_hours is None else step_hours, bbox=bbox)
    if chosen == "imerg":
        return read_imerg(file, variable=variable, step_hours=step_hours, bbox=bbox)
    raise RasterError(f"{file}: unknown kind {kind!r}; use auto, geotiff, netcdf, gsmap or imerg")


def open_rainfall_series(
    paths: Iterable[str | Path],
    *,
    kind: Kind = "auto",
    variable: str | None = None,
    bbox: BBox | None = None,
) -> xr.DataArray:
    """Read several rainfall files on one grid (e.g. 24 hourly GSMaP files) into one time series.

    Returns
    -------
    xarray.DataArray
        The steps of all files in time order; ``attrs["source"]`` is the file with the newest step and
        ``attrs["sources"]`` all files.

    Raises
    ------
    RasterError
        No file, files on different grids or with different step durations, or a time step in two files.
    """
    arrays = [open_rainfall(p, kind=kind, variable=variable, bbox=bbox) for p in paths]
    if not arrays:
        raise RasterError("no rainfall file given; check the rainfall folder or pattern")
    first = arrays[0]
    for other in arrays[1:]:
        same = (
            other.shape[1:] == first.shape[1:]
            and np.allclose(other.attrs["transform"], first.attrs["transform"], rtol=0, atol=1e-9)
            and other.attrs["step_hours"] == first.attrs["step_hours"]
        )
        if not same:
            raise RasterError(
                f"{other.attrs['source']}: grid or step differs from {first.attrs['source']} "
                f"({other.attrs['transform']}/{other.attrs['step_hours']} h vs "
                f"{first.attrs['transform']}/{first.attrs['step_hours']} h); use files of one product"
            )
    combined = xr.concat(arrays, dim="time", combine_attrs="override").sortby("time")
    times = combined["time"].values
    if len(np.unique(times)) != len(times):
        dup = pd.Index(times)[pd.Index(times).duplicated()][0]
        raise RasterError(f"time step {_iso(np.datetime64(dup))} appears in two files; remove the duplicate")
    newest = max(arrays, key=lambda a: a["time"].values.max())
    combined.attrs = dict(first.attrs)
    combined.attrs["source"] = newest.attrs["source"]
    combined.attrs["sources"] = tuple(str(a.attrs["source"]) for a in arrays)
    return combined


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

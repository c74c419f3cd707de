"""Deterministic synthetic satellite rainfall (storm cells moving over a region), written in real formats.

:func:`storm_field` is pure: Gaussian storm cells with rates up to about 40 mm/h drift eastwards across
the region, so that the demo region gets Waspada and Siaga villages and no rain elsewhere. The writers
use the library each format's producers use, not the one ews reads it with where there is a choice:
GDAL (rasterio) for GeoTIFF, the netCDF4 library for CF NetCDF (ews reads it with h5netcdf), plain bytes
and gzip for GSMaP, h5py with IMERG's HDF5 layout. Every write is atomic (a temporary file in the same
folder, then ``os.replace``).
"""

from __future__ import annotations

import contextlib
import gzip
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import h5py  # type: ignore[import-untyped, unused-ignore]
import numpy as np
import rasterio
from numpy.typing import NDArray

from ews.store.artifacts import write_bytes_atomic

FORMATS = ("geotiff", "netcdf", "gsmap", "imerg")
"""What :func:`write_synthetic_rain` writes by default."""
ALL_FORMATS = (*FORMATS, "imerg-gis")
"""Every format it can write (``imerg-gis``: NASA's global IMERG GIS GeoTIFFs, one per half hour)."""
GSMAP_MISSING = np.float32(-999.9)
IMERG_FILL = np.float32(-9999.9)
_EPOCHS = {"V06B": datetime(1970, 1, 1, tzinfo=UTC), "V07B": datetime(1980, 1, 6, tzinfo=UTC)}


@dataclass(frozen=True)
class StormCell:
    """One Gaussian storm cell.

    Its centre is at ``(lon, lat)`` at ``t_peak`` hours after the first time and moves ``(u, v)``
    degrees per hour; its rate is ``peak`` mm/h at the centre at ``t_peak``, falling off with ``radius``
    (degrees, one standard deviation) in space and ``duration`` (hours) in time.
    """

    lon: float
    lat: float
    u: float
    v: float
    peak: float
    radius: float
    t_peak: float
    duration: float


def _hours(times: Sequence[datetime] | NDArray[np.datetime64], origin: datetime | None) -> NDArray[np.float64]:
    if not len(times):
        return np.zeros(0)
    stamps = np.array([_naive_utc(t) for t in times], dtype="datetime64[ns]")
    zero = stamps[0] if origin is None else _naive_utc(origin)
    return (stamps - zero).astype("timedelta64[ms]").astype(np.float64) / 3_600_000.0


def _naive_utc(t: object) -> np.datetime64:
    if isinstance(t, datetime):
        if t.tzinfo is None:
            raise ValueError(f"{t.isoformat()}: give timezone-aware times")
        return np.datetime64(t.astimezone(UTC).replace(tzinfo=None), "ns")
    return np.datetime64(np.asarray(t, dtype="datetime64[ns]").astype(np.int64).item(), "ns")


def storm_cells(
    bounds: tuple[float, float, float, float], total_hours: float, *, seed: int, count: int = 3
) -> tuple[StormCell, ...]:
    """Draw ``count`` storm cells crossing ``bounds`` (west, south, east, north) over ``total_hours``.

    The first cell is the strongest (40 mm/h) and passes over the middle of the region halfway through,
    so every seed gives the demo some heavy rain; the others are weaker (12-30 mm/h) and placed at random.
    Cells cross the region in 4-8 hours, so a village gets one or two hours of heavy rain (Waspada or
    Siaga from the hourly rate; 24-hour totals mostly stay below BMKG's 150 mm "ekstrem").
    """
    west, south, east, north = bounds
    rng = np.random.default_rng(seed)
    width, height = max(east - west, 0.05), max(north - south, 0.05)
    size = max(width, height)
    cells = []
    for i in range(count):
        radius = max(0.03, size * float(rng.uniform(0.12, 0.25)))
        # A cell crosses the region and its own size in 4-8 hours: a point gets one or two hours of rain.
        speed = (width + 6 * radius) / float(rng.uniform(4.0, 8.0))
        heading = float(rng.uniform(-0.4, 0.4))  # radians around east: storms drift roughly eastwards here
        t_peak = total_hours * (0.5 if i == 0 else float(rng.uniform(0.15, 0.85)))
        cells.append(
            StormCell(
                lon=(west + east) / 2 + (0.0 if i == 0 else float(rng.uniform(-0.5, 0.5)) * width),
                lat=(south + north) / 2 + (0.0 if i == 0 else float(rng.uniform(-0.5, 0.5)) * height),
                u=speed * float(np.cos(heading)),
                v=speed * float(np.sin(heading)),
                peak=40.0 if i == 0 else float(rng.uniform(12.0, 30.0)),
                radius=radius,
                t_peak=t_peak,
                duration=float(rng.uniform(1.5, 3.0)),
            )
        )
    return tuple(cells)


def storm_field(
    lons: NDArray[np.floating[Any]] | Sequence[float],
    lats: NDArray[np.floating[Any]] | Sequence[float],
    times: Sequence[datetime] | NDArray[np.datetime64],
    *,
    seed: int,
    cells: int | Sequence[StormCell] = 3,
    origin: datetime | None = None,
) -> NDArray[np.float32]:
    """Rain rates of moving storm cells on a lon/lat grid (pure, deterministic for a seed).

    Parameters
    ----------
    lons, lats
        Cell centres in degrees (any order; the output follows them).
    times
        Times of the steps (timezone-aware datetimes or UTC datetime64); each step's rate is the one at
        its time.
    seed
        Seed of the cell positions, speeds and strengths.
    cells
        How many cells to draw (see :func:`storm_cells`), or the cells themselves.
    origin
        The time the cells' ``t_peak`` counts from (default: the first time).

    Returns
    -------
    numpy.ndarray
        float32 ``(time, lat, lon)`` rain rates in mm/h: the sum of the cells, capped at the strongest
        cell's peak where cells overlap; rates below 0.1 mm/h are 0.
    """
    lon = np.asarray(lons, dtype=np.float64)
    lat = np.asarray(lats, dtype=np.float64)
    hours = _hours(times, origin)
    if isinstance(cells, int):
        bounds = (float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max()))
        span = float(hours[-1]) if len(hours) else 0.0
        chosen = storm_cells(bounds, span, seed=seed, count=cells)
    else:
        chosen = tuple(cells)
    field = np.zeros((len(hours), len(lat), len(lon)), dtype=np.float64)
    for cell in chosen:
        dt = hours - cell.t_peak
        cx = cell.lon + cell.u * dt
        cy = cell.lat + cell.v * dt
        envelope = cell.peak * np.exp(-(dt**2) / (2 * cell.duration**2))
        gx = np.exp(-((lon[None, :] - cx[:, None]) ** 2) / (2 * cell.radius**2))  # (time, lon)
        gy = np.exp(-((lat[None, :] - cy[:, None]) ** 2) / (2 * cell.radius**2))  # (time, lat)
        field += envelope[:, None, None] * gy[:, :, None] * gx[:, None, :]
    if chosen:
        np.minimum(field, max(cell.peak for cell in chosen), out=field)  # overlapping cells: no rate above the peak
    field[field < 0.1] = 0.0
    return field.astype(np.float32)


# ---------------------------------------------------------------------------------------------- writers


@contextlib.contextmanager
def _atomic(path: Path) -> Iterator[Path]:
    """A temporary sibling of ``path`` that replaces it when the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _iso(t: datetime) -> str:
    if t.tzinfo is None:
        raise ValueError(f"{t.isoformat()}: give timezone-aware times")
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_geotiff(
    path: str | Path,
    data: NDArray[np.floating[Any]],
    *,
    transform: tuple[float, float, float, float, float, float],
    times: Sequence[datetime],
    crs: str = "EPSG:4326",
    nodata: float = -9999.0,
    units: str = "mm/h",
    step_hours: float | None = None,
) -> Path:
    """Write rain rates as a tiled, deflate-compressed GeoTIFF with GDAL (rasterio), one band per step.

    Parameters
    ----------
    path
        The file to write.
    data
        ``(time, rows, cols)`` in the row order of ``transform`` (a south-up transform, ``e > 0``, is kept
        as is); NaN is written as ``nodata``.
    transform
        rasterio Affine ``(a, b, c, d, e, f)``.
    times
        Start of each step (timezone-aware); written as band tags ``TIME`` in UTC.
    crs, nodata, units
        Written as the CRS, the nodata value, the band unit type and the dataset tag ``units``.
    step_hours
        Written as the dataset tag ``STEP_HOURS`` when given.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    target = Path(path)
    array = np.asarray(data, dtype=np.float32)
    if array.ndim != 3 or array.shape[0] != len(times):
        raise ValueError(f"data {array.shape} must be (time, rows, cols) with {len(times)} steps")
    array = np.where(np.isnan(array), np.float32(nodata), array)
    profile = {
        "driver": "GTiff",
        "width": array.shape[2],
        "height": array.shape[1],
        "count": array.shape[0],
        "dtype": "float32",
        "crs": crs,
        "transform": rasterio.Affine(*transform),
        "nodata": nodata,
        "compress": "deflate",
    }
    if array.shape[1] >= 16 and array.shape[2] >= 16:
        profile |= {"tiled": True, "blockxsize": 16, "blockysize": 16}
    with _atomic(target) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(array)
            tags = {"units": units}
            if step_hours is not None:
                tags["STEP_HOURS"] = f"{step_hours:g}"
            dst.update_tags(**tags)
            for i, when in enumerate(times, start=1):
                dst.update_tags(i, TIME=_iso(when))
                dst.set_band_unit(i, units)
                dst.set_band_description(i, f"rain rate from {_iso(when)}")
    return target


def write_netcdf(
    path: str | Path,
    data: NDArray[np.floating[Any]],
    lats: NDArray[np.floating[Any]] | Sequence[float],
    lons: NDArray[np.floating[Any]] | Sequence[float],
    times: Sequence[datetime],
    *,
    units: str = "mm/h",
    step_hours: float | None = None,
    fill_value: float = -9999.0,
) -> Path:
    """Write CF-1.8 NetCDF-4 rain rates with the netCDF4 library (a dev dependency, imported here).

    Variables: ``time`` ("hours since" the first time, UTC; with ``time_bnds`` when ``step_hours`` is
    given), ``lat``/``lon`` (degrees_north/degrees_east), ``crs`` (``latitude_longitude`` grid mapping on
    WGS84) and ``precipitation(time, lat, lon)`` with ``units``, ``standard_name="rainfall_rate"`` (only
    for rate units), ``_FillValue`` and ``grid_mapping="crs"``. NaN is written as missing.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    import netCDF4  # dev dependency: only tests and benchmarks write NetCDF (the demo writes GeoTIFF)

    target = Path(path)
    array = np.asarray(data, dtype=np.float32)
    lat = np.asarray(lats, dtype=np.float64)
    lon = np.asarray(lons, dtype=np.float64)
    if array.shape != (len(times), len(lat), len(lon)):
        raise ValueError(f"data {array.shape} must be (time, lat, lon) = ({len(times)}, {len(lat)}, {len(lon)})")
    origin = times[0].astimezone(UTC)
    offsets = np.array([(t.astimezone(UTC) - origin).total_seconds() / 3600.0 for t in times])
    with _atomic(target) as tmp, netCDF4.Dataset(tmp, "w", format="NETCDF4") as nc:
        nc.Conventions = "CF-1.8"
        nc.title = "ews synthetic rain rates"
        nc.source = "ews.synthetic_rain"
        nc.createDimension("time", None)
        nc.createDimension("lat", len(lat))
        nc.createDimension("lon", len(lon))
        tvar = nc.createVariable("time", "f8", ("time",))
        tvar.units = f"hours since {origin:%Y-%m-%d %H:%M:%S}"
        tvar.calendar = "standard"
        tvar.standard_name = "time"
        tvar.axis = "T"
        tvar[:] = offsets
        if step_hours is not None:
            nc.createDimension("nv", 2)
            tvar.bounds = "time_bnds"
            bnds = nc.createVariable("time_bnds", "f8", ("time", "nv"))
            bnds[:] = np.stack([offsets, offsets + step_hours], axis=1)
        for name, values, std, unit, axis in (
            ("lat", lat, "latitude", "degrees_north", "Y"),
            ("lon", lon, "longitude", "degrees_east", "X"),
        ):
            var = nc.createVariable(name, "f8", (name,))
            var.standard_name, var.units, var.axis = std, unit, axis
            var[:] = values
        crs = nc.createVariable("crs", "i4", ())
        crs.grid_mapping_name = "latitude_longitude"
        crs.semi_major_axis = 6378137.0
        crs.inverse_flattening = 298.257223563
        crs.longitude_of_prime_meridian = 0.0
        pr = nc.createVariable("precipitation", "f4", ("time", "lat", "lon"), fill_value=np.float32(fill_value))
        if units.strip().lower() in ("mm/h", "mm h-1", "mm/hr", "kg m-2 s-1"):
            pr.standard_name = "rainfall_rate"
        pr.long_name = "rain rate"
        pr.units = units
        pr.grid_mapping = "crs"
        pr[:] = np.ma.masked_invalid(array)
    return target


def gsmap_name(time: datetime) -> str:
    """JAXA's GSMaP NRT hourly file name for the hour starting at ``time``: ``gsmap_nrt.YYYYMMDD.HH00.dat.gz``."""
    return f"gsmap_nrt.{time.astimezone(UTC):%Y%m%d.%H}00.dat.gz"


def write_gsmap(
    path: str | Path,
    field: NDArray[np.floating[Any]],
    time: datetime,
    *,
    lats: NDArray[np.floating[Any]] | Sequence[float] | None = None,
    lons: NDArray[np.floating[Any]] | Sequence[float] | None = None,
) -> Path:
    """Write one GSMaP NRT hourly file: gzip of 3600 x 1200 little-endian float32, missing = -999.9.

    Parameters
    ----------
    path
        The file, or a folder to write :func:`gsmap_name` in.
    field
        mm/h: either the whole GSMaP grid (1200 rows from 59.95N southwards, 3600 columns from 0.05E
        eastwards), or a ``(lat, lon)`` patch whose centres ``lats``/``lons`` lie on GSMaP's 0.1 degree
        centres (longitudes -180..180 or 0..360); cells outside the patch and NaN are written as missing.
    time
        Start of the hour (timezone-aware); names the file when ``path`` is a folder.
    lats, lons
        Centres of the patch's rows and columns (degrees), or None for the whole grid.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    target = Path(path)
    if target.is_dir():
        target = target / gsmap_name(time)
    values = np.asarray(field, dtype=np.float32)
    if lats is None and lons is None:
        if values.shape != (1200, 3600):
            raise ValueError(f"field {values.shape}: give the whole (1200, 3600) grid or lats and lons of a patch")
        grid = values.copy()
    else:
        if lats is None or lons is None:
            raise ValueError("give both lats and lons of the patch")
        rows = np.rint((59.95 - np.asarray(lats, dtype=np.float64)) / 0.1).astype(int)
        cols = np.rint((np.mod(np.asarray(lons, dtype=np.float64), 360.0) - 0.05) / 0.1).astype(int) % 3600
        if rows.min() < 0 or rows.max() >= 1200:
            raise ValueError("GSMaP covers 59.95S..59.95N only")
        grid = np.full((1200, 3600), GSMAP_MISSING, dtype=np.float32)
        grid[np.ix_(rows, cols)] = values
    grid[~np.isfinite(grid)] = GSMAP_MISSING
    write_bytes_atomic(target, gzip.compress(grid.astype("<f4").tobytes(), mtime=0))
    return target


def imerg_name(time: datetime, step_hours: float = 0.5, version: str = "V07B") -> str:
    """An IMERG early-run file name, e.g. ``3B-HHR-E.MS.MRG.3IMERG.20260924-S030000-E032959.0180.V07B.RT-H5``."""
    start = time.astimezone(UTC)
    end = start + timedelta(hours=step_hours) - timedelta(seconds=1)
    minutes = start.hour * 60 + start.minute
    return f"3B-HHR-E.MS.MRG.3IMERG.{start:%Y%m%d}-S{start:%H%M%S}-E{end:%H%M%S}.{minutes:04d}.{version}.RT-H5"


def imerg_gis_name(time: datetime, version: str = "V07B") -> str:
    """NASA's IMERG Early half-hourly GIS file name for the half hour starting at ``time``.

    ``3B-HHR-E.MS.MRG.3IMERG.YYYYMMDD-SHHMMSS-EHHMMSS.MMMM.V07B.30min.tif``: ``MMMM`` counts the minutes
    from 00:00 UTC to the start; ``E`` is the last second of the half hour.
    """
    start = time.astimezone(UTC)
    end = start + timedelta(minutes=29, seconds=59)
    minutes = start.hour * 60 + start.minute
    return f"3B-HHR-E.MS.MRG.3IMERG.{start:%Y%m%d}-S{start:%H%M%S}-E{end:%H%M%S}.{minutes:04d}.{version}.30min.tif"


IMERG_GIS_MISSING = 29999


def write_imerg_gis(
    path: str | Path,
    field: NDArray[np.floating[Any]],
    lats: NDArray[np.floating[Any]] | Sequence[float],
    lons: NDArray[np.floating[Any]] | Sequence[float],
) -> Path:
    """Write one IMERG GIS GeoTIFF as NASA's PPS does: the global 0.1 degree grid as two-byte integers.

    Values are the rate in 0.1 mm/h (PPS README.GIS), rows from 89.95N southwards and columns from
    179.95W eastwards, 29999 where there is no estimate; like PPS's files, no nodata, units or time tags
    (the time is in the name: :func:`imerg_gis_name`).

    Parameters
    ----------
    path
        The file to write.
    field
        mm/h ``(lat, lon)`` of a patch whose cell centres ``lats``/``lons`` lie on the 0.1 degree grid; the
        rest of the globe is written as 0 between 60S and 60N and missing beyond (as in Early files).
    lats, lons
        Centres of the patch's rows and columns (degrees).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    grid = np.zeros((1800, 3600), dtype=np.int16)
    grid[:300] = IMERG_GIS_MISSING
    grid[-300:] = IMERG_GIS_MISSING
    rows = np.rint((89.95 - np.asarray(lats, dtype=np.float64)) / 0.1).astype(int)
    cols = np.rint((np.asarray(lons, dtype=np.float64) + 179.95) / 0.1).astype(int)
    values = np.asarray(field, dtype=np.float64)
    scaled = np.where(np.isfinite(values), np.rint(values * 10.0), IMERG_GIS_MISSING).astype(np.int16)
    grid[np.ix_(rows, cols)] = scaled
    profile = {
        "driver": "GTiff", "width": 3600, "height": 1800, "count": 1, "dtype": "int16", "crs": "EPSG:4326",
        "transform": rasterio.Affine(0.1, 0.0, -180.0, 0.0, -0.1, 90.0), "compress": "deflate",
    }  # fmt: skip
    target = Path(path)
    with _atomic(target) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        dst.write(grid, 1)
    return target


def _fixed(text: str) -> np.bytes_:
    return np.bytes_(text.encode("ascii"))


def write_imerg(
    path: str | Path,
    data: NDArray[np.floating[Any]],
    lats: NDArray[np.floating[Any]] | Sequence[float],
    lons: NDArray[np.floating[Any]] | Sequence[float],
    times: Sequence[datetime],
    *,
    step_hours: float = 0.5,
    version: Literal["V06B", "V07B"] = "V07B",
) -> Path:
    """Write IMERG-layout HDF5 with h5py: ``Grid/precipitation`` (time, lon, lat) in mm/hr, fill -9999.9.

    V07B files count ``Grid/time`` in seconds since 1980-01-06 (with ``Grid/time_bnds``); V06B files in
    seconds since 1970-01-01, with the rain in ``precipitationCal``. Latitudes and longitudes are
    written ascending (IMERG's south-west origin); ``data`` may be the global grid or a region.

    Parameters
    ----------
    path
        The file to write.
    data
        mm/h ``(time, lat, lon)`` in the order of ``lats``/``lons``; NaN is written as the fill value.
    lats, lons
        Cell centres in degrees.
    times
        Start of each step (timezone-aware).
    step_hours
        Duration of each step (``time_bnds`` and the ``TimeInterval`` of ``FileHeader``).
    version
        ``"V07B"`` or ``"V06B"`` (see above).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    target = Path(path)
    array = np.asarray(data, dtype=np.float32)
    lat = np.asarray(lats, dtype=np.float32)
    lon = np.asarray(lons, dtype=np.float32)
    if array.shape != (len(times), len(lat), len(lon)):
        raise ValueError(f"data {array.shape} must be (time, lat, lon) = ({len(times)}, {len(lat)}, {len(lon)})")
    yo, xo = np.argsort(lat), np.argsort(lon)
    ordered = array[:, yo][:, :, xo]
    stored = np.ascontiguousarray(np.transpose(np.where(np.isnan(ordered), IMERG_FILL, ordered), (0, 2, 1)))
    epoch = _EPOCHS[version]
    seconds = np.array([int((t.astimezone(UTC) - epoch).total_seconds()) for t in times], dtype=np.int32)
    units = f"seconds since {epoch:%Y-%m-%d %H:%M:%S} UTC"
    interval = {0.5: "HALF_HOUR", 1.0: "HOUR", 24.0: "DAY"}.get(step_hours, "HALF_HOUR")
    start = times[0].astimezone(UTC)
    with _atomic(target) as tmp, h5py.File(tmp, "w") as h5:
        h5.attrs["FileHeader"] = _fixed(
            f"AlgorithmID=3IMERGHH;\nFileName={target.name};\nStartGranuleDateTime={start:%Y-%m-%dT%H:%M:%S}.000Z;\n"
            f"TimeInterval={interval};\nProductVersion={version};\nEmptyGranule=NOT_EMPTY;\n"
        )
        grid = h5.create_group("Grid")
        grid.attrs["GridHeader"] = _fixed("BinMethod=ARITHMETIC_MEAN;\nRegistration=CENTER;\nOrigin=SOUTHWEST;\n")
        for name, values, unit in (("lat", lat[yo], "degrees_north"), ("lon", lon[xo], "degrees_east")):
            ds = grid.create_dataset(name, data=values)
            ds.attrs["DimensionNames"] = _fixed(name)
            ds.attrs["units"] = _fixed(unit)
        tds = grid.create_dataset("time", data=seconds)
        tds.attrs["DimensionNames"] = _fixed("time")
        tds.attrs["units"] = _fixed(units)
        tds.attrs["calendar"] = _fixed("julian" if version == "V07B" else "standard")
        if version == "V07B":
            bnds = np.stack([seconds, seconds + int(step_hours * 3600)], axis=1).astype(np.int32)
            bds = grid.create_dataset("time_bnds", data=bnds)
            bds.attrs["DimensionNames"] = _fixed("time,nv")
            bds.attrs["units"] = _fixed(units)
            tds.attrs["bounds"] = _fixed("time_bnds")
        name = "precipitation" if version == "V07B" else "precipitationCal"
        pds = grid.create_dataset(name, data=stored, compression="gzip", compression_opts=4, chunks=True)
        pds.attrs["DimensionNames"] = _fixed("time,lon,lat")
        pds.attrs["units"] = _fixed("mm/hr")
        pds.attrs["_FillValue"] = IMERG_FILL
        pds.attrs["CodeMissingValue"] = _fixed("-9999.9")
    return target


# ------------------------------------------------------------------------------------------------ demo


def _centres(lo: float, hi: float, cell: float, offset: float = 0.0) -> NDArray[np.float64]:
    """Cell centres ``offset + cell * (k + 0.5)`` covering ``lo..hi``."""
    first = np.floor((lo - offset) / cell)
    last = np.ceil((hi - offset) / cell)
    return np.round(offset + cell * (np.arange(first, last) + 0.5), 6)


def write_synthetic_rain(
    folder: str | Path,
    *,
    region_bounds: tuple[float, float, float, float],
    start: datetime,
    hours: int,
    seed: int = 2026,
    formats: Sequence[str] = FORMATS,
) -> dict[str, Path]:
    """Write ``hours`` hours of synthetic rain over a region in each requested format.

    The storm cells are drawn once for the region (with a 0.25 degree margin) so every format shows the
    same storms, each on its own grid: GeoTIFF and NetCDF hourly on a 0.01 degree grid over the region
    and margin; GSMaP one global file per hour in ``gsmap/``; IMERG one half-hourly region file per step
    in ``imerg/`` (0.1 degree, the global grid's cells); with ``imerg-gis``, NASA's global GIS GeoTIFFs,
    one per half hour, in ``imerg-gis/``.

    Parameters
    ----------
    folder
        Where to write (created).
    region_bounds
        ``(west, south, east, north)`` of the region in degrees.
    start
        Start of the first hour (timezone-aware).
    hours
        Number of hours.
    seed
        Seed of the storms.
    formats
        Any of ``geotiff``, ``netcdf``, ``gsmap``, ``imerg`` (the default: all four) and ``imerg-gis``.

    Returns
    -------
    dict
        Format -> the file (GeoTIFF, NetCDF) or folder of files (GSMaP, IMERG).
    """
    unknown = sorted(set(formats) - set(ALL_FORMATS))
    if unknown:
        raise ValueError(f"unknown rain format {', '.join(unknown)}; use {', '.join(ALL_FORMATS)}")
    if hours < 1:
        raise ValueError("hours must be at least 1")
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    west, south, east, north = region_bounds
    margin = 0.25
    outer = (west - margin, south - margin, east + margin, north + margin)
    hourly = [start + timedelta(hours=h) for h in range(hours)]
    cells = storm_cells(region_bounds, float(hours), seed=seed)
    stamp = f"{start.astimezone(UTC):%Y%m%dT%H%MZ}"
    written: dict[str, Path] = {}
    if "geotiff" in formats or "netcdf" in formats:
        lons = _centres(outer[0], outer[2], 0.01)
        lats = _centres(outer[1], outer[3], 0.01)[::-1]
        # The rate of an hour is the mean of its half-hour snapshots, so all formats agree on totals.
        field = _hourly_mean(lons, lats, start, hours, cells)
        if "geotiff" in formats:
            transform = (0.01, 0.0, float(lons[0] - 0.005), 0.0, -0.01, float(lats[0] + 0.005))
            written["geotiff"] = write_geotiff(
                root / f"rain_{stamp}.tif", field, transform=transform, times=hourly, step_hours=1.0
            )
        if "netcdf" in formats:
            written["netcdf"] = write_netcdf(root / f"rain_{stamp}.nc", field, lats, lons, hourly, step_hours=1.0)
    if "gsmap" in formats:
        lons = _centres(outer[0], outer[2], 0.1)
        lats = _centres(outer[1], outer[3], 0.1)[::-1]
        field = _hourly_mean(lons, lats, start, hours, cells)
        out = root / "gsmap"
        out.mkdir(exist_ok=True)
        for k, when in enumerate(hourly):
            write_gsmap(out / gsmap_name(when), field[k], when, lats=lats, lons=lons)
        written["gsmap"] = out
    for kind in ("imerg", "imerg-gis"):  # half-hourly: HDF5 (one step per file) or NASA's GIS GeoTIFFs
        if kind not in formats:
            continue
        lons = _centres(outer[0], outer[2], 0.1)
        lats = _centres(outer[1], outer[3], 0.1)
        steps = [start + timedelta(minutes=30 * k) for k in range(2 * hours)]
        field = _half_hourly(lons, lats, start, steps, cells)
        out = root / kind
        out.mkdir(exist_ok=True)
        for k, when in enumerate(steps):
            if kind == "imerg":
                write_imerg(out / imerg_name(when), field[k : k + 1], lats, lons, [when])
            else:
                write_imerg_gis(out / imerg_gis_name(when), field[k], lats, lons)
        written[kind] = out
    return written


def _half_hourly(
    lons: NDArray[np.float64],
    lats: NDArray[np.float64],
    start: datetime,
    steps: Sequence[datetime],
    cells: Sequence[StormCell],
) -> NDArray[np.float32]:
    """Rate of each half hour: the field at the middle of the half hour (cells timed from ``start``)."""
    mids = [t + timedelta(minutes=15) for t in steps]
    return storm_field(lons, lats, mids, seed=0, cells=cells, origin=start)


def _hourly_mean(
    lons: NDArray[np.float64], lats: NDArray[np.float64], start: datetime, hours: int, cells: Sequence[StormCell]
) -> NDArray[np.float32]:
    halves = _half_hourly(lons, lats, start, [start + timedelta(minutes=30 * k) for k in range(2 * hours)], cells)
    return np.asarray(halves.reshape(hours, 2, len(lats), len(lons)).mean(axis=1), dtype=np.float32)

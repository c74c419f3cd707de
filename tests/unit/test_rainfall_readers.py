"""Rainfall readers: each format read from files built by hand or by a different library than the reader's."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from pathlib import Path

import h5py
import netCDF4
import numpy as np
import pytest
import rasterio
import rasterio.shutil
import xarray as xr

from ews.errors import RasterError, StaleSourceError
from ews.ingest.rainfall import (
    check_fresh,
    gsmap_time,
    open_rainfall,
    open_rainfall_series,
    read_geotiff,
    read_gsmap,
    read_imerg,
    read_netcdf,
    step_end,
)
from ews.synthetic_rain import (
    storm_field,
    write_geotiff,
    write_gsmap,
    write_imerg,
    write_netcdf,
    write_synthetic_rain,
)

T0 = datetime(2026, 9, 24, 3, 0, tzinfo=UTC)
HOURS = [T0 + timedelta(hours=h) for h in range(3)]


def assert_contract(da: xr.DataArray) -> None:
    """The DataArray contract every reader honours (see ews.ingest.rainfall)."""
    assert da.dims == ("time", "y", "x")
    assert da.attrs["units"] == "mm/h"
    assert da.attrs["crs"] == "EPSG:4326"
    assert da["time"].dtype == np.dtype("datetime64[ns]")
    a, b, c, d, e, f = da.attrs["transform"]
    assert b == 0
    assert d == 0
    assert a > 0
    assert e < 0
    assert np.all(np.diff(da["y"].values) < 0), "north-up: latitude descending"
    assert np.all(np.diff(da["x"].values) > 0)
    assert np.allclose(da["x"].values, c + a * (np.arange(da.sizes["x"]) + 0.5))
    assert np.allclose(da["y"].values, f + e * (np.arange(da.sizes["y"]) + 0.5))
    assert -180 <= da["x"].values.min()
    assert da["x"].values.max() <= 180
    assert isinstance(da.attrs["step_hours"], float)
    assert da.attrs["step_hours"] > 0


def value_at(da: xr.DataArray, lon: float, lat: float, step: int = 0) -> float:
    cell = da.isel(time=step).sel(x=lon, y=lat, method="nearest")
    assert abs(float(cell["x"]) - lon) < 1e-6, "no cell centred at this longitude"
    assert abs(float(cell["y"]) - lat) < 1e-6, "no cell centred at this latitude"
    return float(cell)


# ---------------------------------------------------------------------------------------------- GeoTIFF


def test_geotiff_south_up_odd_origin_lands_values_at_right_place(tmp_path: Path) -> None:
    # A south-up source (e > 0: row 0 is the southern edge) with 0.01 degree cells and an origin that is not
    # a round number. Row 1, column 3 has centre lon 106.8237 + 3.5 * 0.01 = 106.8587,
    # lat -6.4123 + 1.5 * 0.01 = -6.3973.
    data = np.zeros((2, 5, 7), dtype=np.float32)
    data[0, 1, 3] = 7.0
    data[1, 4, 0] = 3.0  # northernmost row, westernmost column: lon 106.8287, lat -6.3673
    transform = (0.01, 0.0, 106.8237, 0.0, 0.01, -6.4123)
    path = write_geotiff(tmp_path / "south_up.tif", data, transform=transform, times=HOURS[:2], step_hours=1.0)

    da = open_rainfall(path)

    assert_contract(da)
    assert value_at(da, 106.8587, -6.3973) == pytest.approx(7.0)
    assert value_at(da, 106.8287, -6.3673, step=1) == pytest.approx(3.0)
    assert da.isel(time=0, y=0, x=0).item() == 0.0  # north-west after flipping is the old row 4 of step 0
    assert da.attrs["transform"] == pytest.approx((0.01, 0.0, 106.8237, 0.0, -0.01, -6.3623))
    assert list(da["time"].values) == [np.datetime64("2026-09-24T03:00"), np.datetime64("2026-09-24T04:00")]
    assert da.attrs["step_hours"] == 1.0
    assert da.attrs["source"] == str(path)


def test_geotiff_converts_daily_units_and_reads_step_from_band_times(tmp_path: Path) -> None:
    data = np.full((3, 2, 2), 48.0, dtype=np.float32)
    path = write_geotiff(tmp_path / "d.tif", data, transform=(0.5, 0, 100, 0, -0.5, 0), times=HOURS, units="mm/day")

    da = read_geotiff(path)

    assert float(da.max()) == pytest.approx(2.0)  # 48 mm/day = 2 mm/h
    assert da.attrs["step_hours"] == 1.0  # no STEP_HOURS tag: the band times' spacing


def test_cog_keeps_tags_and_reads(tmp_path: Path) -> None:
    data = np.arange(2 * 32 * 32, dtype=np.float32).reshape(2, 32, 32) / 100
    src = write_geotiff(tmp_path / "a.tif", data, transform=(0.02, 0, 95.0, 0, -0.02, 6.0), times=HOURS[:2])
    cog = tmp_path / "a_cog.tif"
    rasterio.shutil.copy(src, cog, driver="COG")

    da = open_rainfall(cog)

    assert_contract(da)
    np.testing.assert_allclose(da.values, data)


def test_single_band_geotiff_needs_time(tmp_path: Path) -> None:
    path = tmp_path / "one.tif"
    profile = {"driver": "GTiff", "width": 2, "height": 2, "count": 1, "dtype": "float32", "crs": "EPSG:4326"}
    with rasterio.open(path, "w", transform=rasterio.Affine(0.1, 0, 110, 0, -0.1, -7), **profile) as dst:
        dst.write(np.ones((1, 2, 2), dtype=np.float32))
        dst.update_tags(units="mm/h")

    with pytest.raises(RasterError, match=r"one\.tif: band 1 has no start time or step duration.*--time.*--step-hours"):
        read_geotiff(path)
    da = read_geotiff(path, time=T0, step_hours=1.0)
    assert da["time"].values[0] == np.datetime64("2026-09-24T03:00")


def test_projected_geotiff_is_refused(tmp_path: Path) -> None:
    data = np.ones((1, 2, 2), dtype=np.float32)
    path = write_geotiff(
        tmp_path / "utm.tif", data, transform=(1000, 0, 700000, 0, -1000, 9200000), times=HOURS[:1], crs="EPSG:32749"
    )
    with pytest.raises(RasterError, match=r"utm\.tif: projected CRS .*reproject to EPSG:4326"):
        open_rainfall(path, step_hours=1.0)


@pytest.mark.parametrize("cog", [False, True])
def test_truncated_geotiff(tmp_path: Path, cog: bool) -> None:
    rng = np.random.default_rng(1)
    data = rng.gamma(1.0, 5.0, size=(3, 64, 64)).astype(np.float32)
    path = write_geotiff(tmp_path / "full.tif", data, transform=(0.01, 0, 100, 0, -0.01, 0), times=HOURS)
    if cog:
        rasterio.shutil.copy(path, tmp_path / "cog.tif", driver="COG")
        path = tmp_path / "cog.tif"
    blob = path.read_bytes()
    cut = tmp_path / "cut.tif"
    cut.write_bytes(blob[: len(blob) // 2])

    with pytest.raises(RasterError, match=r"cut\.tif: cannot read as GeoTIFF .*truncated or corrupt"):
        open_rainfall(cut)


def test_all_missing_raster_is_refused(tmp_path: Path) -> None:
    data = np.full((1, 3, 3), np.nan, dtype=np.float32)
    path = write_geotiff(tmp_path / "empty.tif", data, transform=(0.1, 0, 110, 0, -0.1, -7), times=HOURS[:1])
    with pytest.raises(RasterError, match=r"empty\.tif: every cell .* is missing"):
        open_rainfall(path, step_hours=1.0)


def test_partly_missing_raster_keeps_nan(tmp_path: Path) -> None:
    data = np.ones((1, 2, 2), dtype=np.float32)
    data[0, 0, 0] = np.nan
    path = write_geotiff(tmp_path / "part.tif", data, transform=(0.1, 0, 110, 0, -0.1, -7), times=HOURS[:1])
    da = open_rainfall(path, step_hours=1.0)
    assert int(np.isnan(da.values).sum()) == 1


def test_bbox_keeps_cells_that_meet_it(tmp_path: Path) -> None:
    data = np.arange(100, dtype=np.float32).reshape(1, 10, 10)
    path = write_geotiff(tmp_path / "b.tif", data, transform=(0.1, 0, 110, 0, -0.1, -7), times=HOURS[:1])
    da = open_rainfall(path, step_hours=1.0, bbox=(110.25, -7.55, 110.45, -7.35))
    # Columns 2..4 (110.2-110.5) and rows 3..5 (-7.3..-7.6) meet the box.
    assert da.shape == (1, 3, 3)
    assert da.attrs["transform"] == pytest.approx((0.1, 0, 110.2, 0, -0.1, -7.3))
    assert float(da[0, 0, 0]) == 32.0
    with pytest.raises(RasterError, match="does not cover the region"):
        open_rainfall(path, step_hours=1.0, bbox=(120.0, -1.0, 121.0, 0.0))


# ------------------------------------------------------------------------------------------------ GSMaP


def gsmap_buffer() -> np.ndarray:
    """A GSMaP grid built from JAXA's layout only: row r centre 59.95 - 0.1 r, column c centre 0.05 + 0.1 c."""
    grid = np.full((1200, 3600), -999.9, dtype="<f4")
    grid[672, 1127] = 12.5  # (59.95 - 7.25) / 0.1 = 672 -> -7.25 N; (112.75 - 0.05) / 0.1 = 1127 -> 112.75 E
    grid[0, 0] = 1.0  # 59.95 N, 0.05 E
    grid[1199, 3599] = 2.0  # 59.95 S, 359.95 E = -0.05 E
    grid[600, 1800] = 3.0  # -0.05 N, 180.05 E = -179.95 E
    grid[700, 1100] = 0.0  # a dry cell stays 0, not missing
    return grid


def test_gsmap_hand_built_buffer_values_at_jaxa_positions(tmp_path: Path) -> None:
    path = tmp_path / "gsmap_nrt.20260924.0300.dat.gz"
    path.write_bytes(gzip.compress(gsmap_buffer().tobytes()))

    da = open_rainfall(path)

    assert_contract(da)
    assert da.shape == (1, 1200, 3600)
    assert value_at(da, 112.75, -7.25) == pytest.approx(12.5)
    assert value_at(da, 0.05, 59.95) == pytest.approx(1.0)
    assert value_at(da, -0.05, -59.95) == pytest.approx(2.0)
    assert value_at(da, -179.95, -0.05) == pytest.approx(3.0)
    assert value_at(da, 110.05, -10.05) == 0.0
    assert int(np.isfinite(da.values).sum()) == 5  # -999.9 is missing
    assert da.attrs["transform"] == pytest.approx((0.1, 0.0, -180.0, 0.0, -0.1, 60.0))
    assert da["time"].values[0] == np.datetime64("2026-09-24T03:00")
    assert da.attrs["step_hours"] == 1.0
    assert da.dtype == np.float32


def test_gsmap_uncompressed_with_bbox_and_time_argument(tmp_path: Path) -> None:
    path = tmp_path / "rain.dat"
    path.write_bytes(gsmap_buffer().tobytes())
    with pytest.raises(RasterError, match="cannot read the time from the name"):
        read_gsmap(path)
    da = read_gsmap(path, time=T0, bbox=(112.0, -8.0, 113.0, -7.0))
    assert da.shape == (1, 10, 10)
    assert value_at(da, 112.75, -7.25) == pytest.approx(12.5)


def test_gsmap_writer_round_trip_patch(tmp_path: Path) -> None:
    lats = np.array([-7.15, -7.25])
    lons = np.array([112.65, 112.75, 112.85])
    field = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.float32)
    path = write_gsmap(tmp_path, field, T0, lats=lats, lons=lons)
    assert path.name == "gsmap_nrt.20260924.0300.dat.gz"
    da = read_gsmap(path, bbox=(112.6, -7.3, 112.9, -7.1))
    np.testing.assert_allclose(da.values[0], field)


@pytest.mark.parametrize("damage", ["short_payload", "cut_gzip"])
def test_truncated_gsmap(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "gsmap_nrt.20260924.0300.dat.gz"
    raw = gsmap_buffer().tobytes()
    if damage == "short_payload":
        path.write_bytes(gzip.compress(raw[: len(raw) // 2]))
    else:
        blob = gzip.compress(raw)
        path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(RasterError, match=r"gsmap_nrt\.20260924\.0300\.dat\.gz: truncated"):
        open_rainfall(path)


def test_gsmap_time_from_names() -> None:
    assert gsmap_time("gsmap_nrt.20260924.0300.dat.gz") == T0
    assert gsmap_time("/x/gsmap_mvk.20260924.0300.v8.0000.0.dat.gz") == T0
    with pytest.raises(RasterError, match=r"cannot read the time from the name.*--time"):
        gsmap_time("rain_20260924.dat.gz")


# ------------------------------------------------------------------------------------------------ IMERG


def test_imerg_hand_built_transposed_global(tmp_path: Path) -> None:
    # IMERG V06 layout built by hand with h5py: (time, lon, lat), lat/lon ascending from the south-west.
    lon = (-179.95 + 0.1 * np.arange(3600)).astype(np.float32)
    lat = (-89.95 + 0.1 * np.arange(1800)).astype(np.float32)
    precip = np.full((1, 3600, 1800), -9999.9, dtype=np.float32)
    precip[0, 2927, 827] = 5.0  # lon -179.95 + 292.7 = 112.75, lat -89.95 + 82.7 = -7.25
    precip[0, 0, 1799] = 1.5  # lon -179.95, lat 89.95
    path = tmp_path / "3B-HHR.MS.MRG.3IMERG.20260924-S030000-E032959.0180.V06B.HDF5"
    with h5py.File(path, "w") as h5:
        h5.attrs["FileHeader"] = np.bytes_(b"AlgorithmID=3IMERGHH;\nTimeInterval=HALF_HOUR;\n")
        grid = h5.create_group("Grid")
        grid["lon"], grid["lat"] = lon, lat
        grid["time"] = np.array([int(T0.timestamp())], dtype=np.int32)
        grid["time"].attrs["units"] = np.bytes_(b"seconds since 1970-01-01 00:00:00 UTC")
        grid["precipitationCal"] = precip
        grid["precipitationCal"].attrs["units"] = np.bytes_(b"mm/hr")
        grid["precipitationCal"].attrs["_FillValue"] = np.float32(-9999.9)

    da = open_rainfall(path)

    assert_contract(da)
    assert da.shape == (1, 1800, 3600)
    assert value_at(da, 112.75, -7.25) == pytest.approx(5.0)
    assert value_at(da, -179.95, 89.95) == pytest.approx(1.5)
    assert int(np.isfinite(da.values).sum()) == 2
    assert da.attrs["transform"] == pytest.approx((0.1, 0.0, -180.0, 0.0, -0.1, 90.0))
    assert da["time"].values[0] == np.datetime64("2026-09-24T03:00")
    assert da.attrs["step_hours"] == 0.5


def test_imerg_v07_gps_epoch_and_time_bounds(tmp_path: Path) -> None:
    lats = np.array([-7.35, -7.25, -7.15])
    lons = np.array([112.65, 112.75])
    data = np.arange(6, dtype=np.float32).reshape(1, 3, 2)
    path = write_imerg(tmp_path / "v07.RT-H5", data, lats, lons, [T0])
    with h5py.File(path) as h5:
        assert h5["Grid/time"].attrs["units"] == b"seconds since 1980-01-06 00:00:00 UTC"
        assert h5["Grid/precipitation"].shape == (1, 2, 3)  # (time, lon, lat) on disk

    da = read_imerg(path)

    assert da["time"].values[0] == np.datetime64("2026-09-24T03:00")
    assert da.attrs["step_hours"] == 0.5
    assert value_at(da, 112.75, -7.35) == pytest.approx(1.0)  # data[0, lat=-7.35, lon=112.75]
    assert value_at(da, 112.65, -7.15) == pytest.approx(4.0)


def test_imerg_as_netcdf4_written_by_netcdf4(tmp_path: Path) -> None:
    path = tmp_path / "3B-HHR-E.MS.MRG.3IMERG.20260924-S030000-E032959.0180.V07B.nc4"
    with netCDF4.Dataset(path, "w") as nc:
        grid = nc.createGroup("Grid")
        grid.createDimension("time", 1)
        grid.createDimension("lon", 3)
        grid.createDimension("lat", 2)
        t = grid.createVariable("time", "i4", ("time",))
        t.units = "seconds since 1970-01-01 00:00:00 UTC"
        t[:] = [int(T0.timestamp())]
        la = grid.createVariable("lat", "f4", ("lat",))
        la.units = "degrees_north"
        la[:] = [-7.35, -7.25]
        lo = grid.createVariable("lon", "f4", ("lon",))
        lo.units = "degrees_east"
        lo[:] = [112.65, 112.75, 112.85]
        p = grid.createVariable("precipitation", "f4", ("time", "lon", "lat"), fill_value=np.float32(-9999.9))
        p.units = "mm/hr"
        p[:] = np.array([[[1, 2], [3, -9999.9], [5, 6]]], dtype=np.float32)

    da = open_rainfall(path, step_hours=0.5)

    assert_contract(da)
    assert value_at(da, 112.85, -7.25) == pytest.approx(6.0)
    assert value_at(da, 112.65, -7.35) == pytest.approx(1.0)
    assert np.isnan(value_at(da, 112.75, -7.25))


# ----------------------------------------------------------------------------------------------- NetCDF


def test_netcdf_from_netcdf4_library(tmp_path: Path) -> None:
    lats = np.array([-7.0, -7.1, -7.2])
    lons = np.array([110.0, 110.1])
    data = np.arange(12, dtype=np.float32).reshape(2, 3, 2)
    path = write_netcdf(tmp_path / "r.nc", data, lats, lons, HOURS[:2], step_hours=1.0)

    da = open_rainfall(path)

    assert_contract(da)
    assert value_at(da, 110.1, -7.2, step=1) == pytest.approx(11.0)
    assert da.attrs["step_hours"] == 1.0
    assert da.attrs["variable"] == "precipitation"


def test_classic_netcdf_south_first_0_360_flux_units(tmp_path: Path) -> None:
    # Written by scipy (NetCDF-3) through xarray: lat ascending, longitudes 0..360, kg m-2 s-1.
    lat = np.array([-0.5, 0.5])
    lon = np.array([0.5, 90.5, 180.5, 270.5])
    flux = np.zeros((1, 2, 4), dtype=np.float32)
    flux[0, 0, 3] = 1.0 / 3600  # lat -0.5, lon 270.5 = -89.5: 1 mm/h
    ds = xr.Dataset(
        {"pr": (("time", "lat", "lon"), flux, {"units": "kg m-2 s-1", "standard_name": "precipitation_flux"})},
        coords={
            "time": ("time", [0.0], {"units": "hours since 2026-09-24 10:00:00+07:00"}),
            "lat": ("lat", lat, {"units": "degrees_north"}),
            "lon": ("lon", lon, {"units": "degrees_east"}),
        },
    )
    path = tmp_path / "classic.nc"
    ds.to_netcdf(path, engine="scipy")

    da = open_rainfall(path, step_hours=3.0)

    assert_contract(da)
    assert list(da["x"].values) == [-179.5, -89.5, 0.5, 90.5]
    assert value_at(da, -89.5, -0.5) == pytest.approx(1.0)
    assert da["time"].values[0] == np.datetime64("2026-09-24T03:00")  # 10:00+07:00 in UTC


def nc_file(path: Path, *, x_units: str | None, units: str | None, mapping: str | None = None) -> Path:
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("time", 1)
        nc.createDimension("y", 2)
        nc.createDimension("x", 2)
        t = nc.createVariable("time", "f8", ("time",))
        t.units = "hours since 2026-09-24 03:00"
        t[:] = [0]
        for name, axis_units in (("y", x_units and x_units.replace("east", "north")), ("x", x_units)):
            v = nc.createVariable(name, "f8", (name,))
            if axis_units:
                v.units = axis_units
            v[:] = [0.0, 1000.0] if x_units == "m" else [0.0, 0.1]
        if mapping:
            crs = nc.createVariable("crs", "i4", ())
            crs.grid_mapping_name = mapping
        p = nc.createVariable("rain", "f4", ("time", "y", "x"))
        if units:
            p.units = units
        if mapping:
            p.grid_mapping = "crs"
        p[:] = np.ones((1, 2, 2))
    return path


def test_netcdf_in_metres_without_grid_mapping_has_no_crs(tmp_path: Path) -> None:
    path = nc_file(tmp_path / "metres.nc", x_units="m", units="mm/h")
    with pytest.raises(RasterError, match=r"metres\.nc: no CRS information for 'rain'"):
        open_rainfall(path, step_hours=1.0)


def test_netcdf_without_coordinate_units_has_no_crs(tmp_path: Path) -> None:
    path = nc_file(tmp_path / "bare.nc", x_units=None, units="mm/h")
    with pytest.raises(RasterError, match=r"bare\.nc: no CRS information"):
        open_rainfall(path, step_hours=1.0)


def test_netcdf_projected_grid_mapping_is_refused(tmp_path: Path) -> None:
    path = nc_file(tmp_path / "tm.nc", x_units="m", units="mm/h", mapping="transverse_mercator")
    with pytest.raises(RasterError, match=r"tm\.nc: grid mapping 'transverse_mercator' is projected.*reproject"):
        open_rainfall(path, step_hours=1.0)


def test_netcdf_variable_without_units(tmp_path: Path) -> None:
    path = nc_file(tmp_path / "nounits.nc", x_units="degrees_east", units=None)
    with pytest.raises(RasterError, match=r"nounits\.nc: variable 'rain' has no units"):
        read_netcdf(path, variable="rain", step_hours=1.0)


def test_netcdf_wrong_units(tmp_path: Path) -> None:
    path = nc_file(tmp_path / "kelvin.nc", x_units="degrees_east", units="K")
    with pytest.raises(RasterError, match=r"kelvin\.nc: variable 'rain' has units 'K', not a rain rate"):
        read_netcdf(path, variable="rain", step_hours=1.0)


def test_netcdf_irregular_grid(tmp_path: Path) -> None:
    data = np.ones((1, 2, 3), dtype=np.float32)
    path = write_netcdf(tmp_path / "irr.nc", data, [-7.0, -7.1], [110.0, 110.1, 110.5], HOURS[:1], step_hours=1.0)
    with pytest.raises(RasterError, match=r"irr\.nc: longitude spacing is irregular"):
        open_rainfall(path)


# ---------------------------------------------------------------------------------- series, staleness


def test_synthetic_rain_in_every_format_agrees(tmp_path: Path) -> None:
    bounds = (110.10, -8.95, 110.37, -8.83)
    out = write_synthetic_rain(tmp_path, region_bounds=bounds, start=T0, hours=3)
    assert set(out) == {"geotiff", "netcdf", "gsmap", "imerg"}
    assert not list(tmp_path.rglob("*.tmp")), "atomic writes leave no temporary file"

    read = {kind: open_rainfall(path, bbox=bounds) for kind, path in out.items()}

    for da in read.values():
        assert_contract(da)
        assert step_end(da) == T0 + timedelta(hours=3)
        assert da["time"].values[0] == np.datetime64("2026-09-24T03:00")
    np.testing.assert_array_equal(read["geotiff"].values, read["netcdf"].values)
    assert read["imerg"].attrs["step_hours"] == 0.5
    assert read["imerg"].sizes["time"] == 6
    # GSMaP hourly rates are the means of IMERG's two half hours on the same 0.1 degree cells.
    gsmap_total = (read["gsmap"] * 1.0).sum("time")
    imerg_total = (read["imerg"] * 0.5).sum("time")
    np.testing.assert_allclose(gsmap_total.values, imerg_total.values, rtol=1e-5)
    assert float(read["geotiff"].max()) > 10.0  # the strongest cell peaks 1.5 h after the start: heavy rain


def test_storm_field_is_deterministic() -> None:
    lons = np.linspace(110.0, 110.5, 11)
    lats = np.linspace(-8.7, -9.0, 7)
    times = [T0 + timedelta(hours=h) for h in range(24)]
    a = storm_field(lons, lats, times, seed=7)
    b = storm_field(lons, lats, times, seed=7)
    c = storm_field(lons, lats, times, seed=8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == (24, 7, 11)
    assert a.dtype == np.float32
    assert 20.0 < float(a.max()) <= 40.0
    assert float(a[0].max()) == 0.0  # no rain twelve hours before the strongest cell peaks


def test_series_rejects_duplicates_and_other_grids(tmp_path: Path) -> None:
    data = np.ones((1, 2, 2), dtype=np.float32)
    a = write_geotiff(tmp_path / "a.tif", data, transform=(0.1, 0, 110, 0, -0.1, -7), times=HOURS[:1], step_hours=1)
    b = write_geotiff(tmp_path / "b.tif", data, transform=(0.1, 0, 110, 0, -0.1, -7), times=HOURS[:1], step_hours=1)
    c = write_geotiff(tmp_path / "c.tif", data, transform=(0.2, 0, 110, 0, -0.2, -7), times=HOURS[1:2], step_hours=1)
    with pytest.raises(RasterError, match="appears in two files"):
        open_rainfall_series([a, b])
    with pytest.raises(RasterError, match=r"c\.tif: grid or step differs"):
        open_rainfall_series([a, c])


def test_missing_file() -> None:
    with pytest.raises(RasterError, match=r"nowhere\.tif: rainfall file not found"):
        open_rainfall("/nonexistent/nowhere.tif")


def test_check_fresh(tmp_path: Path) -> None:
    data = np.ones((1, 2, 2), dtype=np.float32)
    path = write_geotiff(tmp_path / "old.tif", data, transform=(0.1, 0, 110, 0, -0.1, -7), times=HOURS[:1])
    da = open_rainfall(path, step_hours=1.0)  # the step ends 04:00Z
    check_fresh(da, T0 + timedelta(hours=4), timedelta(hours=3))  # 3 h old: fresh enough
    with pytest.raises(StaleSourceError, match=r"old\.tif: newest rain ends 2026-09-24T04:00Z, 3 h 01 min before"):
        check_fresh(da, T0 + timedelta(hours=4, minutes=1), timedelta(hours=3))

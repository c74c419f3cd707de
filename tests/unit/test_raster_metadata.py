"""What rasters do not say themselves: times in product file names, the region's rain.products, hints.

The names follow the products' own conventions: JAXA's GSMaP ``gsmap_<product>.YYYYMMDD.HHMM...`` (the
hour a file begins) and NASA's IMERG ``3B-HHR[-E|-L].MS.MRG.3IMERG.YYYYMMDD-SHHMMSS-EHHMMSS...`` (start and
end of the half hour, inclusive to the second).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import rasterio

from ews.config import RainRules, region_from_mapping, time_pattern_regex
from ews.errors import ConfigError, RasterError
from ews.ingest.rainfall import RasterHints, name_time, open_rainfall, open_raster, product_hints, read_geotiff

T = datetime(2026, 9, 28, 9, 30, tzinfo=UTC)


# ------------------------------------------------------------------------------------------ file names


@pytest.mark.parametrize(
    "name",
    [
        "gsmap_nrt.20260928.0930.dat.gz",
        "gsmap_gauge_nrt.20260928.0930.dat",
        "gsmap_mvk.20260928.0930.v8.0000.0.dat.gz",
        "gsmap_now.20260928.0930.tif",
        "GSMaP_NRT.20260928.0930.nc",
        "gsmap_nrt.20260928.0930",
    ],
)
def test_gsmap_names_give_the_start_and_no_step(name: str) -> None:
    # GSMaP's hourly and half-hourly (NOW) products share the pattern: the name gives no duration.
    assert name_time(name) == (T, None)
    assert name_time(f"/data/rain/{name}", "gsmap") == (T, None)


@pytest.mark.parametrize(
    ("name", "start", "step"),
    [
        # Half-hourly early, late and final runs: S093000-E095959 is 09:30:00 to 09:59:59, 0.5 h.
        ("3B-HHR-E.MS.MRG.3IMERG.20260928-S093000-E095959.0570.V07B.HDF5", T, 0.5),
        ("3B-HHR-L.MS.MRG.3IMERG.20260928-S093000-E095959.0570.V07B.RT-H5", T, 0.5),
        ("3B-HHR.MS.MRG.3IMERG.20260928-S093000-E095959.0570.V07B.nc4", T, 0.5),
        ("3B-HHR-E.MS.MRG.3IMERG.20260928-S093000-E095959.0570.V07B.tif", T, 0.5),
        # The last half hour of a day ends at 23:59:59.
        (
            "3B-HHR.MS.MRG.3IMERG.20260928-S233000-E235959.1410.V07B.HDF5",
            datetime(2026, 9, 28, 23, 30, tzinfo=UTC),
            0.5,
        ),
        # Daily: 00:00:00 to 23:59:59 is 24 h.
        ("3B-DAY.MS.MRG.3IMERG.20260928-S000000-E235959.V07B.nc4", datetime(2026, 9, 28, tzinfo=UTC), 24.0),
        # Monthly files name only their first day: the month's length is not in the name.
        ("3B-MO.MS.MRG.3IMERG.20260901-S000000-E235959.09.V07B.HDF5", datetime(2026, 9, 1, tzinfo=UTC), None),
        # A GIS file totals the window it names, ending at E + 1 s: .3hr. ending 10:00 started 07:00.
        (
            "3B-HHR-L.MS.MRG.3IMERG.20260928-S093000-E095959.0570.V07B.3hr.tif",
            datetime(2026, 9, 28, 7, 0, tzinfo=UTC),
            3.0,
        ),
    ],
)
def test_imerg_names_give_start_and_step(name: str, start: datetime, step: float | None) -> None:
    assert name_time(name) == (start, step)
    assert name_time(name, "imerg") == (start, step)


def test_a_strftime_pattern_is_found_anywhere_in_the_name() -> None:
    assert name_time("hujan_20260928_0930_jatim.tif", "hujan_%Y%m%d_%H%M") == (T, None)
    assert name_time("rr-2026271-09.tif", "%Y%j-%H") == (datetime(2026, 9, 28, 9, tzinfo=UTC), None)
    assert name_time("other.tif", "hujan_%Y%m%d_%H%M") is None


def test_names_that_do_not_match_give_none() -> None:
    assert name_time("rain.tif") is None
    assert name_time("gsmap_nrt.2026092.0930.dat.gz") is None  # 7-digit date
    assert name_time("gsmap_nrt.20260928.0930.dat.gz", "imerg") is None  # only the pattern asked for
    assert name_time("3B-HHR.MS.MRG.3IMERG.20260928-S093000-E095959.HDF5", "gsmap") is None


def test_an_impossible_date_in_a_name_is_an_error() -> None:
    with pytest.raises(
        RasterError, match=r"gsmap_nrt\.20261399\.0930\.tif: the date in the file name is not a valid date"
    ):
        name_time("gsmap_nrt.20261399.0930.tif")


@pytest.mark.parametrize(
    ("pattern", "message"),
    [("%Y%q", "%q is not supported"), ("%H%M", "needs a year"), ("%Y%m_%H", "needs a year .* and a day")],
)
def test_bad_time_patterns_are_refused(pattern: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        time_pattern_regex(pattern)


# ------------------------------------------------------------------------------------ rain.products


def region(products: object, tmp_path: Path) -> RainRules:
    data = {
        "id": "test",
        "name": "Test",
        "province_code": "35",
        "boundaries": {"path": "villages.geojson"},
        "rain": {"products": products},
    }
    return region_from_mapping(data, source=str(tmp_path / "test.yaml"), base=tmp_path, env={}).rain


def test_products_validate_units_time_and_pattern(tmp_path: Path) -> None:
    rules = region([{"match": "3B-HHR*", "units": "mm/hr", "time_pattern": "imerg"}], tmp_path)
    assert rules.products[0].units == "mm/hr"
    for entry, message in (
        ({"match": "x", "unit": "mm/h"}, r"test\.yaml: unknown key 'rain\.products\.0\.unit'"),
        ({"match": "x", "units": "K"}, r"key 'rain\.products\.0\.units'.*not a rain rate"),
        ({"match": "x", "time": "2026-09-28T09:30:00"}, r"key 'rain\.products\.0\.time'.*time zone"),
        ({"match": "x", "time_pattern": "%Y"}, r"key 'rain\.products\.0\.time_pattern'.*needs a year"),
        ({"match": "x", "time": "2026-09-28T09:30Z", "time_pattern": "gsmap"}, r"rain\.products\.0.*not both"),
        ({"match": "x", "step_hours": -1}, r"key 'rain\.products\.0\.step_hours'"),
        ({"units": "mm/h"}, r"key 'rain\.products\.0\.match'"),
    ):
        with pytest.raises(ConfigError, match=message):
            region([entry], tmp_path)


def test_products_match_names_folders_and_path_globs(tmp_path: Path) -> None:
    rules = region(
        [
            {"match": "3B-HHR*.tif", "units": "mm/hr"},
            {"match": "gsmap/", "units": "mm/h", "step_hours": 1},  # relative to the region file's folder
            {"match": str(tmp_path / "bmkg" / "*.nc"), "units": "mm/h"},
        ],
        tmp_path,
    )
    found = rules.product_for(Path("/anywhere/3B-HHR-E.MS.MRG.3IMERG.20260928-S093000-E095959.0570.V07B.tif"))
    assert found is not None
    assert found[0] == 0
    found = rules.product_for(tmp_path / "gsmap" / "gsmap_nrt.20260928.0930.tif", tmp_path)
    assert found is not None
    assert found[0] == 1
    found = rules.product_for(tmp_path / "bmkg" / "hujan.nc", tmp_path)
    assert found is not None
    assert found[0] == 2
    assert rules.product_for(tmp_path / "elsewhere" / "hujan.tif", tmp_path) is None


def test_product_hints_name_the_region_keys(tmp_path: Path) -> None:
    rules = region([{"match": "plain*.tif", "units": "mm/h"}], tmp_path)
    region_file = tmp_path / "test.yaml"
    hints = product_hints(rules, tmp_path / "plain.tif", region_file)
    assert hints.units == "mm/h"
    assert hints.name_of("step_hours") == f"rain.products[0].step_hours in {region_file}"
    ask = hints.ask(["time", "step_hours"], tmp_path / "plain.tif")
    assert "rain.products[0].time, rain.products[0].step_hours" in ask
    assert "match 'plain*.tif'" in ask
    none = product_hints(rules, tmp_path / "other.tif", region_file)
    assert none.units is None
    assert "rain: products: [{match: 'other.tif', units: mm/h}]" in none.ask(["units"], tmp_path / "other.tif")


def test_flag_hints_name_the_flags() -> None:
    hints = RasterHints(origin="flags")
    assert hints.name_of("units") == "--units"
    text = hints.ask(["units", "step_hours"], Path("x.tif"))
    assert text.startswith("give --units mm/h --step-hours 1")
    assert "=" not in text, "no Python argument names"
    # Without a context the message names both ways.
    assert "--time" in RasterHints().ask(["time"], Path("x.tif"))
    assert "rain: products" in RasterHints().ask(["time"], Path("x.tif"))


# ---------------------------------------------------------------------------------------- readers


def tif(path: Path, bands: int = 1, **tags: str) -> Path:
    profile = {"driver": "GTiff", "width": 3, "height": 2, "count": bands, "dtype": "float32", "crs": "EPSG:4326"}
    with rasterio.open(path, "w", transform=rasterio.Affine(0.1, 0, 112.5, 0, -0.1, -7.1), **profile) as dst:
        dst.write(np.arange(6 * bands, dtype=np.float32).reshape(bands, 2, 3))
        if tags:
            dst.update_tags(**tags)
    return path


def test_hints_fill_what_a_geotiff_lacks(tmp_path: Path) -> None:
    path = tif(tmp_path / "plain.tif", bands=2)
    da = read_geotiff(path, hints=RasterHints(units="mm/day", time=T, step_hours=1.0))
    # mm/day -> mm/h is / 24; band 2 starts one step after band 1.
    np.testing.assert_allclose(da.values[1, 0], np.array([6.0, 7.0, 8.0]) / 24.0, rtol=1e-6)
    assert list(da["time"].values) == [np.datetime64("2026-09-28T09:30"), np.datetime64("2026-09-28T10:30")]
    assert da.attrs["step_hours"] == 1.0


def test_time_and_step_come_from_an_imerg_named_geotiff(tmp_path: Path) -> None:
    path = tif(tmp_path / "3B-HHR-E.MS.MRG.3IMERG.20260928-S093000-E095959.0570.V07B.tif", units="mm/hr")
    da = open_rainfall(path)
    assert da["time"].values[0] == np.datetime64("2026-09-28T09:30")
    assert da.attrs["step_hours"] == 0.5


def test_a_hint_that_disagrees_with_the_file_is_an_error(tmp_path: Path) -> None:
    path = tif(tmp_path / "tagged.tif", units="mm/h", TIME="2026-09-28T09:30Z", STEP_HOURS="1")
    with pytest.raises(RasterError, match=r"tagged\.tif: the file says units 'mm/h', but --units says 'mm/day'"):
        read_geotiff(path, hints=RasterHints(units="mm/day", origin="flags"))
    with pytest.raises(RasterError, match=r"the file says the first step starts 2026-09-28T09:30Z, but --time says"):
        read_geotiff(path, hints=RasterHints(time=datetime(2026, 9, 28, 9, tzinfo=UTC), origin="flags"))
    # Agreeing hints (mm/hr is mm/h) are fine.
    read_geotiff(path, hints=RasterHints(units="mm/hr", time=T, step_hours=1.0, origin="flags"))


def test_an_explicit_time_pattern_must_match_the_name(tmp_path: Path) -> None:
    path = tif(tmp_path / "rain.tif", units="mm/h", STEP_HOURS="1")
    with pytest.raises(RasterError, match=r"rain\.tif: the file name does not match --time-pattern 'hujan_%Y%m%d'"):
        read_geotiff(path, hints=RasterHints(time_pattern="hujan_%Y%m%d", origin="flags"))


def test_one_time_for_a_folder_of_files_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "rain"
    folder.mkdir()
    tif(folder / "a.tif", units="mm/h", STEP_HOURS="1")
    tif(folder / "b.tif", units="mm/h", STEP_HOURS="1")
    with pytest.raises(RasterError, match=r"rain: --time gives the start of one file, but it applies to 2 files"):
        open_rainfall(folder, hints=RasterHints(time=T, origin="flags"))


def test_open_raster_reads_any_netcdf_variable_without_units_or_time(tmp_path: Path) -> None:
    path = tmp_path / "dem.nc"
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("lat", 2)
        nc.createDimension("lon", 3)
        la = nc.createVariable("lat", "f8", ("lat",))
        la.units = "degrees_north"
        la[:] = [-7.15, -7.25]
        lo = nc.createVariable("lon", "f8", ("lon",))
        lo.units = "degrees_east"
        lo[:] = [112.55, 112.65, 112.75]
        z = nc.createVariable("elevation", "f4", ("lat", "lon"))
        z[:] = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.float32)
    da = open_raster(path)
    assert da.dims == ("band", "y", "x")
    assert da.attrs["units"] == ""
    assert np.isnat(da["time"].values[0])
    np.testing.assert_allclose(da.values[0], [[1, 2, 3], [4, 5, 6]])
    # As rain it is refused, naming what to give.
    with pytest.raises(RasterError, match=r"no rain-rate variable .*elevation.*--variable"):
        open_rainfall(path, hints=RasterHints(origin="flags"))
    with pytest.raises(RasterError, match=r"variable 'elevation' has no units, start time or step duration.*--units"):
        open_rainfall(path, hints=RasterHints(variable="elevation", origin="flags"))

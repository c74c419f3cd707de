"""Rasters as users have them: a plain GeoTIFF with no tags, a projected one, product-named files.

`ews zonal` gives plain statistics of any raster (no units, no time needed); rain (`--hours`, `ews run
--rain`) needs units, times and a step, from the file, its name, the `ews zonal` flags or the region's
`rain.products`. Every refusal is one line naming the flag or region key to set, and a raster that cannot
be used never stops a run: it is reported DEGRADED and the run still publishes.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import rasterio
from pyproj import Transformer
from rasterio.transform import Affine

from hostile.conftest import CliResult, surabaya_kelurahan, write_region

pytestmark = pytest.mark.shared_data

# 0.01 degree cells over Kota Surabaya (its kelurahan span about 112.59..112.85 E, 7.35..7.19 S).
SURABAYA = Affine(0.01, 0.0, 112.5, 0.0, -0.01, -7.1)
ROWS, COLS = 35, 45
RAIN = 12.5  # mm/h: lebat (>= 10 mm/h), so Waspada for every village in a run
START = "2026-09-28T09:00:00Z"
AT = "2026-09-28T10:30:00Z"  # 30 min after the hour of rain ends: fresh


def plain_tif(path: Path, bands: list[float] | None = None, **profile: Any) -> Path:
    """A float32 GeoTIFF with no tags at all (no units, no TIME, no STEP_HOURS): one constant per band."""
    values = bands or [RAIN]
    options = {"driver": "GTiff", "width": COLS, "height": ROWS, "count": len(values), "dtype": "float32",
               "crs": "EPSG:4326", "transform": SURABAYA} | profile  # fmt: skip
    with rasterio.open(path, "w", **options) as ds:
        for i, value in enumerate(values, start=1):
            ds.write(np.full((options["height"], options["width"]), value, np.float32), i)
    return path


def table(result: CliResult) -> pd.DataFrame:
    assert result.code == 0, result.err
    return pd.read_csv(io.StringIO(result.out), dtype={"id": str, "time": str, "units": str}, keep_default_na=False)


def run_args(region: Path, rain: Path, tmp: Path, name: str) -> list[str | Path]:
    return ["run", "--region", region, "--rain", rain, "--out", tmp / name, "--at", AT, "-q",
            "--database", f"sqlite:///{tmp / 'ews.db'}", "--outbox", tmp / f"{name}.jsonl",
            "--cache-dir", tmp / "cache"]  # fmt: skip


# ------------------------------------------------------------------------------------------ ews zonal


def test_zonal_on_a_plain_geotiff_gives_mean_and_max_per_village(
    ews_cli: Callable[..., CliResult], shared_data: Path, tmp_path: Path
) -> None:
    raster = plain_tif(tmp_path / "plain.tif")
    rows = table(ews_cli("zonal", raster, "--boundaries", surabaya_kelurahan(shared_data)))
    assert len(rows) == 152
    assert list(rows.columns) == ["id", "name", "time", "units", "mean", "max"]
    # A constant raster: every village's mean and max is that constant.
    np.testing.assert_allclose(rows["mean"].astype(float), RAIN)
    np.testing.assert_allclose(rows["max"].astype(float), RAIN)
    assert set(rows["units"]) == {""}, "no units in the file and no --units: shown empty, not guessed"
    assert set(rows["time"]) == {""}, "no time in the file: shown empty"


def test_zonal_hours_on_a_plain_geotiff_names_the_flags_then_works_with_them(
    ews_cli: Callable[..., CliResult], shared_data: Path, tmp_path: Path
) -> None:
    raster = plain_tif(tmp_path / "plain.tif")
    boundaries = surabaya_kelurahan(shared_data)
    refused = ews_cli("zonal", raster, "--boundaries", boundaries, "--hours", "1")
    assert refused.code == 2
    assert refused.out == ""
    line = refused.line_with("plain.tif", "--units", "--time", "--step-hours")
    assert len(refused.err.strip().splitlines()) == 1
    assert "time=" not in line
    assert "step_hours=" not in line
    # Units given, still no time: only what is missing is asked for.
    refused = ews_cli("zonal", raster, "--boundaries", boundaries, "--hours", "1", "--units", "mm/h")
    assert refused.code == 2
    line = refused.line_with("plain.tif", "--time", "--step-hours")
    assert "--units" not in line

    rows = table(ews_cli("zonal", raster, "--boundaries", boundaries, "--hours", "1",
                         "--units", "mm/h", "--time", START, "--step-hours", "1"))  # fmt: skip
    assert len(rows) == 152
    np.testing.assert_allclose(rows["mean"].astype(float), RAIN)  # 12.5 mm/h for 1 h = 12.5 mm
    assert set(rows["units"]) == {"mm"}
    assert set(rows["time"]) == {"2026-09-28T10:00:00Z"}  # the end of the hour


def test_zonal_units_flag_labels_plain_values_and_converts_rain_rates(
    ews_cli: Callable[..., CliResult], shared_data: Path, tmp_path: Path
) -> None:
    raster = plain_tif(tmp_path / "depth.tif", bands=[0.75])
    boundaries = surabaya_kelurahan(shared_data)
    rows = table(ews_cli("zonal", raster, "--boundaries", boundaries, "--units", "m"))
    assert set(rows["units"]) == {"m"}
    np.testing.assert_allclose(rows["mean"].astype(float), 0.75)
    # A rain rate in another unit is converted, as in a run: 24 mm/day = 1 mm/h.
    rain = plain_tif(tmp_path / "daily.tif", bands=[24.0])
    rows = table(ews_cli("zonal", rain, "--boundaries", boundaries, "--units", "mm/day"))
    assert set(rows["units"]) == {"mm/h"}
    np.testing.assert_allclose(rows["mean"].astype(float), 1.0, rtol=1e-6)


def test_zonal_refuses_a_flag_that_contradicts_the_file(
    ews_cli: Callable[..., CliResult], shared_data: Path, tmp_path: Path
) -> None:
    raster = plain_tif(tmp_path / "tagged.tif")
    with rasterio.open(raster, "r+") as ds:
        ds.update_tags(units="mm/day", TIME=START, STEP_HOURS="24")
    boundaries = surabaya_kelurahan(shared_data)
    refused = ews_cli("zonal", raster, "--boundaries", boundaries, "--hours", "24", "--units", "mm/h")
    assert refused.code == 2
    refused.line_with("tagged.tif", "'mm/day'", "--units")
    refused = ews_cli("zonal", raster, "--boundaries", boundaries, "--hours", "24", "--step-hours", "1")
    assert refused.code == 2
    refused.line_with("tagged.tif", "24 h", "--step-hours")
    # What the file says is enough: 24 mm/day over 24 h.
    rows = table(ews_cli("zonal", raster, "--boundaries", boundaries, "--hours", "24"))
    np.testing.assert_allclose(rows["mean"].astype(float), RAIN, rtol=1e-6)


def test_zonal_multiband_plain_geotiff_band_and_hours(
    ews_cli: Callable[..., CliResult], shared_data: Path, tmp_path: Path
) -> None:
    raster = plain_tif(tmp_path / "three.tif", bands=[1.0, 2.0, 4.0])
    boundaries = surabaya_kelurahan(shared_data)
    rows = table(ews_cli("zonal", raster, "--boundaries", boundaries, "--band", "3"))
    np.testing.assert_allclose(rows["mean"].astype(float), 4.0)
    refused = ews_cli("zonal", raster, "--boundaries", boundaries, "--band", "4")
    assert refused.code == 2
    refused.line_with("--band 4", "3 band(s)")
    # Bands start at --time and follow every --step-hours: the last 2 h are bands 2 and 3 (2 + 4 mm).
    rows = table(ews_cli("zonal", raster, "--boundaries", boundaries, "--hours", "2", "--units", "mm/h",
                         "--time", "2026-09-28T16:00+07:00", "--step-hours", "1"))  # fmt: skip
    np.testing.assert_allclose(rows["mean"].astype(float), 6.0)
    assert set(rows["time"]) == {"2026-09-28T12:00:00Z"}
    # With a time but no step, a multi-band file cannot be laid out in time.
    refused = ews_cli("zonal", raster, "--boundaries", boundaries, "--hours", "1", "--units", "mm/h",
                      "--time", START)  # fmt: skip
    assert refused.code == 2
    assert "--step-hours" in refused.line_with("three.tif", "step duration")


def test_zonal_on_a_projected_geotiff_reprojects_the_villages(
    ews_cli: Callable[..., CliResult], shared_data: Path, tmp_path: Path
) -> None:
    # A flood-depth-like raster in UTM 49S (metres), 500 m cells over Surabaya, no tags.
    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:32749", always_xy=True)
    x0, y1 = to_utm.transform(112.5, -7.1)
    x1, y0 = to_utm.transform(112.95, -7.45)
    width, height = int((x1 - x0) // 500) + 2, int((y1 - y0) // 500) + 2
    raster = plain_tif(tmp_path / "utm.tif", bands=[0.5], crs="EPSG:32749", width=width, height=height,
                       transform=Affine(500.0, 0.0, round(x0, -3), 0.0, -500.0, round(y1, -3)))  # fmt: skip
    boundaries = surabaya_kelurahan(shared_data)
    rows = table(ews_cli("zonal", raster, "--boundaries", boundaries))
    assert len(rows) == 152
    np.testing.assert_allclose(rows["mean"].astype(float), 0.5)
    # As rain, a projected grid is refused with what to do.
    refused = ews_cli("zonal", raster, "--boundaries", boundaries, "--hours", "1", "--units", "mm/h",
                      "--time", START, "--step-hours", "1")  # fmt: skip
    assert refused.code == 2
    refused.line_with("utm.tif", "projected", "gdalwarp -t_srs EPSG:4326")


def test_zonal_reads_time_and_step_from_an_imerg_name(
    ews_cli: Callable[..., CliResult], shared_data: Path, tmp_path: Path
) -> None:
    raster = plain_tif(tmp_path / "3B-HHR-E.MS.MRG.3IMERG.20260928-S093000-E095959.0570.V07B.tif")
    boundaries = surabaya_kelurahan(shared_data)
    rows = table(ews_cli("zonal", raster, "--boundaries", boundaries))
    assert set(rows["time"]) == {"2026-09-28T09:30:00Z"}
    # Half an hour at 12.5 mm/h = 6.25 mm; units still have to be given (the name has none).
    refused = ews_cli("zonal", raster, "--boundaries", boundaries, "--hours", "0.5")
    assert refused.code == 2
    line = refused.line_with("3IMERG", "--units")
    assert "--time" not in line
    assert "--step-hours" not in line
    rows = table(ews_cli("zonal", raster, "--boundaries", boundaries, "--hours", "0.5", "--units", "mm/hr"))
    np.testing.assert_allclose(rows["mean"].astype(float), 6.25)
    assert set(rows["time"]) == {"2026-09-28T10:00:00Z"}


def test_zonal_refuses_bad_flags_naming_them(
    ews_cli: Callable[..., CliResult], shared_data: Path, tmp_path: Path
) -> None:
    raster = plain_tif(tmp_path / "plain.tif")
    boundaries = surabaya_kelurahan(shared_data)
    for argv, needle in (
        (["--time", "2026-09-28T09:00"], "--time"),  # no offset
        (["--time", "yesterday"], "--time"),
        (["--step-hours", "0"], "--step-hours"),
        (["--hours", "-1"], "--hours"),
        (["--time-pattern", "%Y%q"], "--time-pattern"),
        (["--time", START, "--time-pattern", "imerg"], "--time-pattern"),
        (["--hours", "1", "--units", "kelvin", "--time", START, "--step-hours", "1"], "--units"),
    ):
        refused = ews_cli("zonal", raster, "--boundaries", boundaries, *argv)
        assert refused.code == 2, argv
        refused.line_with(needle)


# -------------------------------------------------------------------------------------------- ews run


def test_run_on_a_plain_geotiff_without_region_keys_is_degraded_and_still_publishes(
    ews_cli: Callable[..., CliResult], shared_data: Path, tmp_path: Path
) -> None:
    region = write_region(tmp_path / "region", shared_data)
    raster = plain_tif(tmp_path / "plain.tif")
    result = ews_cli(*run_args(region, raster, tmp_path, "out"))
    assert result.code == 1
    line = result.line_with("DEGRADED", "plain.tif", "rain: products", "match: 'plain.tif'", "units:", "time:",
                            "step_hours:", str(region))  # fmt: skip
    assert "time=" not in line
    report = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert any("plain.tif" in p["message"] for p in report["problems"])
    assert (tmp_path / "out" / "risk_map.html").is_file(), "the run still published its outputs"


def test_run_on_a_plain_geotiff_with_region_keys_uses_it(
    ews_cli: Callable[..., CliResult], shared_data: Path, tmp_path: Path
) -> None:
    extra = f'rain:\n  products:\n    - {{match: "plain*.tif", units: mm/h, time: "{START}", step_hours: 1}}\n'
    region = write_region(tmp_path / "region", shared_data, extra=extra)
    raster = plain_tif(tmp_path / "plain.tif")
    result = ews_cli(*run_args(region, raster, tmp_path, "out"))
    assert result.code == 0, result.err
    report = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert report["problems"] == []
    assert report["levels"]["Waspada"] == 152  # 12.5 mm in the last hour: lebat everywhere


def test_run_names_the_missing_key_of_a_matching_product(
    ews_cli: Callable[..., CliResult], shared_data: Path, tmp_path: Path
) -> None:
    extra = "rain:\n  products:\n    - {match: plain*.tif, units: mm/h}\n"
    region = write_region(tmp_path / "region", shared_data, extra=extra)
    raster = plain_tif(tmp_path / "plain.tif")
    result = ews_cli(*run_args(region, raster, tmp_path, "out"))
    assert result.code == 1
    line = result.line_with("DEGRADED", "plain.tif", "rain.products[0].time", "rain.products[0].step_hours")
    assert "rain.products[0].units" not in line


def test_run_reads_gsmap_named_geotiffs_of_a_folder_with_product_keys(
    ews_cli: Callable[..., CliResult], shared_data: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "gsmap"
    folder.mkdir()
    plain_tif(folder / "gsmap_nrt.20260928.0800.tif", bands=[2.0])
    plain_tif(folder / "gsmap_nrt.20260928.0900.tif", bands=[RAIN])
    extra = "rain:\n  products:\n    - {match: gsmap/, units: mm/h, step_hours: 1}\n"  # relative to the region file
    region = write_region(tmp_path, shared_data, extra=extra)
    result = ews_cli(*run_args(region, folder, tmp_path, "out"))
    assert result.code == 0, result.err
    report = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert report["levels"]["Waspada"] == 152  # the newest hour (09:00-10:00Z) is lebat


def test_run_region_key_that_contradicts_the_file_is_named(
    ews_cli: Callable[..., CliResult], shared_data: Path, tmp_path: Path
) -> None:
    raster = plain_tif(tmp_path / "tagged.tif")
    with rasterio.open(raster, "r+") as ds:
        ds.update_tags(units="mm/day", TIME=START, STEP_HOURS="1")
    region = write_region(
        tmp_path / "region", shared_data, extra="rain:\n  products:\n    - {match: '*.tif', units: mm/h}\n"
    )
    result = ews_cli(*run_args(region, raster, tmp_path, "out"))
    assert result.code == 1
    result.line_with("DEGRADED", "tagged.tif", "'mm/day'", "rain.products[0].units")


def test_run_refuses_bad_product_keys_naming_them(
    ews_cli: Callable[..., CliResult], shared_data: Path, tmp_path: Path
) -> None:
    raster = plain_tif(tmp_path / "plain.tif")
    for entry, needle in (
        ("{match: x, unit: mm/h}", "rain.products.0.unit"),
        ("{match: x, units: kelvin}", "rain.products.0.units"),
        ("{match: x, time: 2026-09-28T09:00:00}", "rain.products.0.time"),
        ("{match: x, time_pattern: '%Y%Q'}", "rain.products.0.time_pattern"),
        ("{match: x, step_hours: 0}", "rain.products.0.step_hours"),
    ):
        region = write_region(tmp_path / "region", shared_data, extra=f"rain:\n  products:\n    - {entry}\n")
        result = ews_cli(*run_args(region, raster, tmp_path, "out"))
        assert result.code == 2, entry
        result.line_with(str(region), needle)


def test_run_survives_an_unexpected_error_in_one_raster(
    ews_cli: Callable[..., CliResult], shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ews.ingest.rainfall
    import ews.sources

    extra = f'rain:\n  products:\n    - {{match: "*.tif", units: mm/h, time: "{START}", step_hours: 1}}\n'
    region = write_region(tmp_path / "region", shared_data, extra=extra)
    good = plain_tif(tmp_path / "good.tif")
    broken = plain_tif(tmp_path / "broken.tif")
    real = ews.ingest.rainfall.open_rainfall

    def flaky(path: str | Path, **kwargs: Any) -> Any:
        if Path(path).name == "broken.tif":
            raise ZeroDivisionError("float division by zero")
        return real(path, **kwargs)

    monkeypatch.setattr(ews.sources, "open_rainfall", flaky)
    argv = run_args(region, good, tmp_path, "out")
    argv[argv.index("--rain") + 1 : argv.index("--rain") + 2] = [broken, good]
    result = ews_cli(*argv)
    assert result.code == 1
    result.line_with("DEGRADED", "internal error", "broken.tif", "ZeroDivisionError: float division by zero")
    report = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert report["levels"]["Waspada"] == 152, "the good raster was still used"

"""`ews zonal` on the real Jawa Timur villages agrees with exactextract (mean and max) to 1e-6."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from rasterio.transform import Affine

from ews.cli import main
from ews.ingest.boundaries import read_boundaries

exactextract = pytest.importorskip("exactextract", reason="exactextract is a dev dependency (pip install -e .[dev])")


@pytest.fixture(scope="module")
def jatim(jatim_villages_dir: Path) -> pd.DataFrame:
    return read_boundaries(jatim_villages_dir)


@pytest.fixture(scope="module")
def rain_tif(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic 0.01 degree float32 raster over Jawa Timur, origin off the round numbers, with gaps."""
    path = tmp_path_factory.mktemp("zonal") / "rain.tif"
    rng = np.random.default_rng(7)
    rows, cols = 700, 620
    data = rng.gamma(0.8, 6.0, size=(rows, cols)).astype(np.float32)
    data[rng.uniform(size=data.shape) < 0.002] = -9999.0  # nodata cells
    transform = Affine(0.01, 0.0, 110.8137, 0.0, -0.01, -4.6071)
    with rasterio.open(
        path, "w", driver="GTiff", width=cols, height=rows, count=1, dtype="float32", crs="EPSG:4326",
        transform=transform, nodata=-9999.0,
    ) as ds:  # fmt: skip
        ds.write(data, 1)
        ds.update_tags(units="mm/h", TIME="2026-11-28T06:00:00Z")
    return path


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_zonal_matches_exactextract_on_real_villages(
    jatim: pd.DataFrame, jatim_villages_dir: Path, rain_tif: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = run(
        ["zonal", str(rain_tif), "--boundaries", str(jatim_villages_dir), "--stats", "mean,max,frac_above:20",
         "--cache-dir", str(tmp_path / "cache")],
        capsys,
    )  # fmt: skip
    assert code == 0
    ours = pd.read_csv(io.StringIO(out), dtype={"id": str}).set_index("id")
    assert len(ours) == len(jatim) == 8492
    assert {"mean", "max", "frac_above_20", "time", "units"} <= set(ours.columns)
    assert ours["units"].iloc[0] == "mm/h"
    ref = exactextract.exact_extract(
        str(rain_tif), jatim[["code", "geometry"]], ["mean", "max"], include_cols=["code"], output="pandas"
    ).set_index("code")
    ref = ref.loc[ours.index]
    np.testing.assert_allclose(ours["mean"].to_numpy(), ref["mean"].to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(ours["max"].to_numpy(), ref["max"].to_numpy(), rtol=1e-6)
    # Villages smaller than a cell (about 1.2 km2 here) are included, with a value.
    small = jatim.loc[jatim.to_crs("EPSG:6933").area < 1.0e6, "code"]
    assert len(small) > 0
    assert ours.loc[small, "mean"].notna().all()
    # The weights were cached: the same grid and boundaries reuse the file.
    cached = list((tmp_path / "cache").glob("zonal-*.npz"))
    assert len(cached) == 1


def test_zonal_reports_a_grid_that_misses_the_region(
    jatim_villages_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "small.tif"
    with rasterio.open(
        path, "w", driver="GTiff", width=50, height=50, count=1, dtype="float32", crs="EPSG:4326",
        transform=Affine(0.01, 0.0, 112.5, 0.0, -0.01, -7.5),
    ) as ds:  # fmt: skip
        ds.write(np.ones((50, 50), np.float32), 1)
        ds.update_tags(units="mm/h", TIME="2026-11-28T06:00:00Z")
    code, out, err = run(["zonal", str(path), "--boundaries", str(jatim_villages_dir)], capsys)
    assert code != 0
    assert out == ""
    assert "does not cover" in err
    assert "of 8492 villages" in err


def test_zonal_refuses_an_unknown_statistic_and_a_band_out_of_range(
    jatim_villages_dir: Path, rain_tif: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["zonal", str(rain_tif), "--boundaries", str(jatim_villages_dir), "--stats", "median"], capsys)
    assert code != 0
    assert "unknown statistic 'median'" in err
    code, _, err = run(["zonal", str(rain_tif), "--boundaries", str(jatim_villages_dir), "--band", "3"], capsys)
    assert code != 0
    assert "has 1 band" in err


def test_zonal_totals_over_hours_from_a_series(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from datetime import UTC, datetime

    from ews.synthetic import synthetic_bounds, write_synthetic_region
    from ews.synthetic_rain import write_synthetic_rain

    region = write_synthetic_region(tmp_path / "region")
    start = datetime(2026, 11, 28, 0, tzinfo=UTC)
    files = write_synthetic_rain(tmp_path / "rain", region_bounds=synthetic_bounds(), start=start, hours=6,
                                 formats=("netcdf",))  # fmt: skip
    boundaries = str(region.parent / "villages.geojson")
    totals = {}
    for hours in (1, 3, 6):
        code, out, err = run(["zonal", str(files["netcdf"]), "--boundaries", boundaries, "--hours", str(hours),
                              "--stats", "mean,max"], capsys)  # fmt: skip
        assert code == 0, err
        table = pd.read_csv(io.StringIO(out), dtype={"id": str}).set_index("id")
        assert set(table["units"]) == {"mm"}
        assert set(table["time"]) == {"2026-11-28T06:00:00Z"}
        totals[hours] = table["mean"]
    # Totals grow with the window (rain is never negative) and the 1-hour total is the last band.
    assert (totals[3] >= totals[1] - 1e-9).all()
    assert (totals[6] >= totals[3] - 1e-9).all()
    code, out, _ = run(["zonal", str(files["netcdf"]), "--boundaries", boundaries, "--band", "6"], capsys)
    last = pd.read_csv(io.StringIO(out), dtype={"id": str}).set_index("id")["mean"]
    np.testing.assert_allclose(totals[1].to_numpy(), last.to_numpy(), rtol=1e-6)
    # More hours than the file holds is an error naming the missing hours.
    code, _, err = run(["zonal", str(files["netcdf"]), "--boundaries", boundaries, "--hours", "24"], capsys)
    assert code != 0
    assert "missing" in err or "cover" in err

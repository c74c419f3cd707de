"""`ews affected` on the real BMKG alerts and the real kecamatan boundaries (acceptance)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from ews.cli import main

CASES = {
    # alert file -> (kecamatan file, the kecamatan BMKG names in the description)
    "siaga_cap-id-CGT20260924002_alert.xml": ("75", {"DENGILO", "MANANGGU"}),
    "siaga_cap-en-CGT20260924002_alert.xml": ("75", {"DENGILO", "MANANGGU"}),
    "rallsix66_CKT20261010004_alert_en.xml": (
        "64",
        {"BUSANG", "GUNUNG TABUR", "LONG BAGUN", "MUARA MUNTAI", "MUARA WIS", "SEGAH", "TABALAR", "TABANG"},
    ),
}


def affected(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["affected", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("alert", sorted(CASES))
def test_finds_every_kecamatan_bmkg_names(
    alert: str, cap_dir: Path, kec_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    province, named = CASES[alert]
    boundaries = kec_dir / f"wilayah_boundaries_kec_{province}.geojson"
    code, out, err = affected(capsys, "--cap", str(cap_dir / alert), "--boundaries", str(boundaries))
    assert code == 0, err
    rows = pd.read_csv(io.StringIO(out), dtype={"id": str})
    assert list(rows.columns[:4]) == ["id", "name", "fraction", "area_km2"]
    found = {str(n).upper() for n in rows["name"]}
    assert named <= found, f"missing {named - found}"
    # BMKG draws areas as unions of kecamatan: the named ones are (nearly) wholly covered, the rest
    # only grazed — and the named ones come first (largest fraction first).
    by_name = dict(zip(rows["name"].str.upper(), rows["fraction"], strict=True))
    assert min(by_name[n] for n in named) > 0.8
    assert max(f for n, f in by_name.items() if n not in named) < 0.26
    assert set(rows["name"].head(len(named)).str.upper()) == named
    assert rows["fraction"].is_monotonic_decreasing


def test_min_fraction_and_geojson(cap_dir: Path, kec_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = affected(
        capsys,
        "--cap", str(cap_dir / "siaga_cap-id-CGT20260924002_alert.xml"),
        "--boundaries", str(kec_dir / "wilayah_boundaries_kec_75.geojson"),
        "--min-fraction", "0.5", "--format", "geojson",
    )  # fmt: skip
    assert code == 0
    collection = json.loads(out)
    names = [f["properties"]["name"] for f in collection["features"]]
    assert names == ["Dengilo", "Mananggu"]
    assert collection["features"][0]["geometry"]["type"] in ("Polygon", "MultiPolygon")
    assert set(collection["features"][0]["properties"]) >= {"id", "name", "fraction", "area_km2"}


def test_population_exposed_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import geopandas as gpd
    from shapely.geometry import box

    # Two villages, the warning covers all of the first and none of the second.
    path = tmp_path / "desa.gpkg"
    gpd.GeoDataFrame(
        {"kode": ["35.78.01.1001", "35.78.01.1002"], "nama": ["A", "B"], "jiwa": [1000, 2000]},
        geometry=[box(112.70, -7.30, 112.75, -7.25), box(112.80, -7.30, 112.85, -7.25)],
        crs="EPSG:4326",
    ).to_file(path, engine="pyogrio")
    alert = tmp_path / "alert.xml"
    from tests_support import minimal_cap

    alert.write_bytes(minimal_cap("-7.31,112.69 -7.31,112.76 -7.24,112.76 -7.24,112.69 -7.31,112.69"))
    code, out, _ = affected(capsys, "--cap", str(alert), "--boundaries", str(path), "--population-field", "jiwa")
    assert code == 0
    rows = pd.read_csv(io.StringIO(out), dtype={"id": str})
    assert rows["id"].tolist() == ["35.78.01.1001"]
    assert rows["population_exposed"].tolist() == pytest.approx([1000.0])


def test_bad_inputs_exit_nonzero_and_say_why(
    tmp_path: Path, cap_dir: Path, kec_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    boundaries = str(kec_dir / "wilayah_boundaries_kec_75.geojson")
    # A batch with one bad file: the good alert is still processed, the bad one named, exit 1.
    (tmp_path / "good.xml").write_bytes((cap_dir / "siaga_cap-id-CGT20260924002_alert.xml").read_bytes())
    (tmp_path / "bad.xml").write_bytes(b"<<<")
    code, out, err = affected(capsys, "--cap", str(tmp_path), "--boundaries", boundaries)
    assert code == 1
    assert "Dengilo" in out
    assert "bad.xml" in err
    assert "not well-formed" in err
    # Missing id field: error naming the file and the field, exit 2, nothing on stdout.
    code, out, err = affected(
        capsys, "--cap", str(tmp_path / "good.xml"), "--boundaries", boundaries, "--id-field", "id"
    )
    assert code == 2
    assert out == ""
    assert "has no field 'id'" in err
    assert "wilayah_boundaries_kec_75.geojson" in err


def test_the_installed_command(cap_dir: Path, kec_dir: Path) -> None:
    ews = Path(sys.executable).with_name("ews")
    result = subprocess.run(
        [str(ews), "affected", "--cap", str(cap_dir / "siaga_cap-id-CGT20260924002_alert.xml"),
         "--boundaries", str(kec_dir / "wilayah_boundaries_kec_75.geojson"), "--min-fraction", "0.5"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1].startswith("75.04.08,Dengilo,0.99")

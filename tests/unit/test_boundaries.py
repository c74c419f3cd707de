"""Boundary files in every supported format, with bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import Polygon, box

from ews.errors import BoundaryError
from ews.ingest.boundaries import read_boundaries


def frame() -> gpd.GeoDataFrame:
    bowtie = Polygon([(112.0, -7.0), (112.1, -7.1), (112.1, -7.0), (112.0, -7.1), (112.0, -7.0)])
    return gpd.GeoDataFrame(
        {
            "kode": ["35.78.01.1001", "35.78.01.1002"],
            "nama": ["Karang Pilang", "Kebraon"],
            "jiwa": [100, 200],
        },
        geometry=[box(112.6, -7.35, 112.7, -7.3), bowtie],
        crs="EPSG:4326",
    )


@pytest.mark.parametrize("suffix", [".geojson", ".gpkg", ".shp", ".parquet"])
def test_every_format_reads_the_same(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"desa{suffix}"
    if suffix == ".parquet":
        frame().to_parquet(path)
    else:
        frame().to_file(path, engine="pyogrio")
    villages = read_boundaries(path, keep=("jiwa",))
    assert villages["code"].tolist() == ["35.78.01.1001", "35.78.01.1002"]
    assert villages["kecamatan"].tolist() == ["35.78.01", "35.78.01"]
    assert villages["kabkota"].tolist() == ["35.78", "35.78"]
    assert villages["province"].tolist() == [
        "35",
        "35",
    ]
    assert villages["jiwa"].tolist() == [100, 200]
    # The bow-tie was repaired into a valid polygon and reported by its code.
    assert villages.geometry.is_valid.all()
    assert villages.attrs["repaired"] == ["35.78.01.1002"]


def test_level2_numeric_codes(tmp_path: Path) -> None:
    features = [
        {
            "type": "Feature",
            "properties": {"kode": k, "nama": n},
            "geometry": box(112 + i, -8, 113 + i, -7).__geo_interface__,  # boundaries must lie in Indonesia
        }
        for i, (k, n) in enumerate([(35.1, "Kabupaten Malang"), (35.78, "Kota Surabaya")])
    ]
    path = tmp_path / "kab.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    villages = read_boundaries(path)
    assert villages["code"].tolist() == ["35.10", "35.78"]
    assert villages["level"].tolist() == [2, 2]


def test_missing_id_field_names_file_and_fields(tmp_path: Path) -> None:
    path = tmp_path / "desa.geojson"
    frame().rename(columns={"kode": "code_x"}).to_file(path, engine="pyogrio")
    with pytest.raises(BoundaryError, match=r"desa.geojson: has no field 'kode' \(fields: code_x, nama, jiwa\)"):
        read_boundaries(path)


def test_duplicate_and_bad_codes(tmp_path: Path) -> None:
    path = tmp_path / "dup.geojson"
    dup = frame().assign(kode=["35.78.01.1001", "35.78.01.1001"])
    dup.to_file(path, engine="pyogrio")
    with pytest.raises(BoundaryError, match=r"duplicate codes 35\.78\.01\.1001"):
        read_boundaries(path)
    bad = frame().assign(kode=["35.78.01.1001", "Surabaya"])
    bad.to_file(tmp_path / "bad.geojson", engine="pyogrio")
    with pytest.raises(BoundaryError, match=r"bad.geojson: feature 1, field 'kode': not a Kemendagri code: 'Surabaya'"):
        read_boundaries(tmp_path / "bad.geojson")


def test_missing_file_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(BoundaryError, match="boundary file not found"):
        read_boundaries(tmp_path / "nope.geojson")
    with pytest.raises(BoundaryError, match="folder holds no boundary file"):
        read_boundaries(tmp_path)


def test_not_a_geo_file(tmp_path: Path) -> None:
    path = tmp_path / "x.geojson"
    path.write_text("{not json")
    with pytest.raises(BoundaryError, match=r"x\.geojson: cannot read as a boundary file"):
        read_boundaries(path)


def test_real_jatim_villages(jatim_villages_dir: Path) -> None:
    villages = read_boundaries(jatim_villages_dir)
    assert len(villages) == 8492
    assert villages["code"].str.match(r"^35\.\d{2}\.\d{2}\.\d{4}$").all()
    assert villages["kabkota"].nunique() == 38
    assert villages.geometry.is_valid.all()

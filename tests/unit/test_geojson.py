"""ews.review.geojson: the village file written in one pass reads back as GDAL's own GeoJSON does."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import MultiPolygon, Point, Polygon, box

from ews.review.geojson import write_geojson


def _frame() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "code": pd.array(["35.78.01.1001", "35.78.01.1002", None, "35.78.01.1004"], dtype="string"),
            "name": ["Ngagel Rejo", 'Désa "Élok"\nbaris dua', "Ж", ""],
            "fraction": [0.30000000000000004, np.nan, 1.234e-20, 123456.789],
            "level": [1, 2, 3, 0],
            "estimated": [True, False, True, False],
            "population": [1200.0, None, 0.0, 5.5],
        },
        geometry=[
            box(112.7, -7.3, 112.71, -7.29),
            MultiPolygon([box(112.0, -7.0, 112.1, -6.9), box(112.2, -7.0, 112.3, -6.9)]),
            None,
            Polygon([(112.5, -7.5), (112.6, -7.5), (112.6, -7.4), (112.5, -7.5)]),
        ],
        crs="EPSG:4326",
    )


def test_reads_back_as_gdal_s_file_does(tmp_path: Path) -> None:
    frame = _frame()
    write_geojson(tmp_path / "ours.geojson", frame, name="villages")
    frame.to_file(tmp_path / "gdal.geojson", driver="GeoJSON", engine="pyogrio")
    ours = gpd.read_file(tmp_path / "ours.geojson", engine="pyogrio")
    gdal = gpd.read_file(tmp_path / "gdal.geojson", engine="pyogrio")
    assert list(ours.columns) == list(gdal.columns) == list(frame.columns)
    assert ours.crs.equals(gdal.crs)
    pd.testing.assert_frame_equal(
        pd.DataFrame(ours.drop(columns="geometry")), pd.DataFrame(gdal.drop(columns="geometry")), check_exact=False
    )
    assert list(ours.geometry.isna()) == [False, False, True, False]
    for a, b in zip(ours.geometry, gdal.geometry, strict=True):
        assert (a is None and b is None) or a.equals(b)
    raw = json.loads((tmp_path / "ours.geojson").read_text(encoding="utf-8"))
    assert raw["name"] == "villages"
    assert raw["features"][1]["properties"]["name"] == 'Désa "Élok"\nbaris dua'
    assert raw["features"][1]["properties"]["fraction"] is None
    assert raw["features"][2]["geometry"] is None
    assert raw["features"][0]["properties"]["estimated"] is True


def test_an_empty_table_is_an_empty_collection(tmp_path: Path) -> None:
    write_geojson(tmp_path / "empty.geojson", _frame().iloc[:0], name="warnings")
    assert json.loads((tmp_path / "empty.geojson").read_text(encoding="utf-8"))["features"] == []


def test_geometry_only(tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame(geometry=[Point(112.7, -7.3)], crs="EPSG:4326")
    write_geojson(tmp_path / "points.geojson", frame, name="points")
    back = gpd.read_file(tmp_path / "points.geojson", engine="pyogrio")
    assert back.geometry.iloc[0].equals(Point(112.7, -7.3))


@pytest.mark.parametrize("staged", [False, True])
def test_another_crs_goes_through_gdal(tmp_path: Path, staged: bool) -> None:
    frame = _frame().dropna(subset=["code"]).to_crs("EPSG:32749")  # UTM 49S: GDAL says so in the file
    write_geojson(tmp_path / "utm.geojson", frame, name="villages", staged=staged)
    back = gpd.read_file(tmp_path / "utm.geojson", engine="pyogrio")
    assert back.crs.to_epsg() == 32749
    assert len(back) == len(frame)


def test_a_table_longer_than_a_chunk_is_written_whole_and_in_order(tmp_path: Path) -> None:
    n = 4_500  # chunks of 2,000 rows: 2,000 + 2,000 + 500
    frame = gpd.GeoDataFrame(
        {"code": [f"35.78.01.{i:04d}" for i in range(n)], "level": [i % 4 for i in range(n)]},
        geometry=[box(112 + i * 1e-4, -7.0, 112 + i * 1e-4 + 5e-5, -6.99) for i in range(n)],
        crs="EPSG:4326",
    )
    write_geojson(tmp_path / "many.geojson", frame, name="villages", staged=True)
    back = gpd.read_file(tmp_path / "many.geojson", engine="pyogrio")
    assert list(back["code"]) == list(frame["code"])
    assert list(back["level"]) == list(frame["level"])
    assert back.geometry.iloc[-1].equals(frame.geometry.iloc[-1])


def test_names_with_unicode_line_separators_stay_one_feature_each(tmp_path: Path) -> None:
    # JSON keeps U+2028, U+2029 and U+0085 as they are; a writer that split its records at them would break.
    names = ["Desa\u2028Satu", "Desa\u2029Dua", "Desa\x85Tiga", "Desa\x1cEmpat"]
    frame = gpd.GeoDataFrame(
        {"name": names}, geometry=[box(112 + i * 0.01, -7.0, 112.005 + i * 0.01, -6.99) for i in range(4)],
        crs="EPSG:4326",
    )  # fmt: skip
    write_geojson(tmp_path / "odd.geojson", frame, name="villages", staged=True)
    raw = json.loads((tmp_path / "odd.geojson").read_text(encoding="utf-8"))
    assert [f["properties"]["name"] for f in raw["features"]] == names

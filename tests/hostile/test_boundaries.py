"""Boundary files that are not what they claim: points, lines, a lying CRS, metres, another province.

Each is refused before anything is published, with one line naming the file, what was found and what
to do; a few areas outside the province stay a note.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
from tests_support import minimal_cap

from ews.errors import BoundaryError
from ews.ingest.boundaries import read_boundaries

from .conftest import SURABAYA_BOX, CliResult, surabaya_kelurahan, write_region

RunCli = Callable[..., CliResult]
AT = "2026-11-28T18:00:00+07:00"


@pytest.fixture
def surabaya_file(shared_data: Path) -> Path:
    """The 152 real kelurahan of Kota Surabaya (GeoJSON, lon/lat, no crs member)."""
    return surabaya_kelurahan(shared_data)


@pytest.fixture
def surabaya(surabaya_file: Path) -> gpd.GeoDataFrame:
    return gpd.read_file(surabaya_file, engine="pyogrio")


def geojson(path: Path, frame: gpd.GeoDataFrame, *, crs_member: str | None = None) -> Path:
    """Write ``frame``'s coordinates as they are, with the given ``crs`` member or none at all."""
    record: dict[str, Any] = json.loads(frame.to_json(drop_id=True))
    record.pop("crs", None)
    if crs_member:
        record["crs"] = {"type": "name", "properties": {"name": crs_member}}
    path.write_text(json.dumps(record), encoding="utf-8")
    return path


def run(ews_cli: RunCli, folder: Path, region: Path) -> CliResult:
    cap = folder / "cap.xml"
    cap.write_bytes(minimal_cap(SURABAYA_BOX))
    return ews_cli(
        "run", "--region", region, "--cap", cap, "--out", folder / "out", "--database",
        f"sqlite:///{folder / 'ews.db'}", "--outbox", folder / "outbox.jsonl", "--at", AT, "-q",
    )  # fmt: skip


def assert_refused_before_publishing(result: CliResult, folder: Path) -> None:
    assert result.code == 2
    assert not (folder / "out").exists()
    assert not (folder / "outbox.jsonl").exists()


def test_a_crs_member_that_says_utm_over_lon_lat_is_refused(
    ews_cli: RunCli, shared_data: Path, surabaya: gpd.GeoDataFrame, tmp_path: Path
) -> None:
    lying = geojson(tmp_path / "surabaya.geojson", surabaya, crs_member="urn:ogc:def:crs:EPSG::32749")
    result = run(ews_cli, tmp_path, write_region(tmp_path / "region", shared_data, boundaries=lying))
    assert_refused_before_publishing(result, tmp_path)
    line = result.line_with(str(lying), "coordinates 112.59..112.85, -7.35..-7.19 read as EPSG:32749")
    assert "outside Indonesia" in line
    assert "the file says EPSG:32749 (WGS 84 / UTM zone 49S) but the coordinates look like lon/lat" in line
    assert "remove the 'crs' member (GeoJSON is lon/lat by definition)" in line


def test_metres_without_a_crs_member_are_refused(ews_cli: RunCli, surabaya: gpd.GeoDataFrame, tmp_path: Path) -> None:
    metres = geojson(tmp_path / "utm.geojson", surabaya.to_crs("EPSG:32749"))
    cap = tmp_path / "cap.xml"
    cap.write_bytes(minimal_cap(SURABAYA_BOX))
    result = ews_cli("affected", "--cap", cap, "--boundaries", metres)
    assert result.code == 2
    assert result.out == ""
    line = result.line_with(str(metres), "read as EPSG:4326 are outside Indonesia")
    assert "coordinates 675569..703892, 9187052..9204864" in line
    assert "look projected (metres)" in line
    assert "reproject the file to EPSG:4326" in line


def test_swapped_lat_lon_is_refused(
    ews_cli: RunCli, shared_data: Path, surabaya: gpd.GeoDataFrame, tmp_path: Path
) -> None:
    import shapely

    swapped = surabaya.set_geometry(shapely.transform(surabaya.geometry.values, lambda xy: xy[:, ::-1]))
    path = geojson(tmp_path / "swapped.geojson", swapped)
    result = run(ews_cli, tmp_path, write_region(tmp_path / "region", shared_data, boundaries=path))
    assert_refused_before_publishing(result, tmp_path)
    result.line_with(str(path), "outside Indonesia", "look like lat, lon (swapped): write them as lon, lat")


def test_some_features_in_metres_are_named(
    ews_cli: RunCli, shared_data: Path, surabaya: gpd.GeoDataFrame, tmp_path: Path
) -> None:
    mixed = surabaya.copy()
    metres = surabaya.geometry.iloc[[5, 6, 7]].to_crs("EPSG:32749")
    mixed.loc[mixed.index[[5, 6, 7]], "geometry"] = list(metres)
    path = geojson(tmp_path / "mixed.geojson", mixed)
    result = run(ews_cli, tmp_path, write_region(tmp_path / "region", shared_data, boundaries=path))
    assert_refused_before_publishing(result, tmp_path)
    line = result.line_with(
        str(path),
        f"3 of 152 features lie outside Indonesia (lon 94..141.5, lat -11.5..6.5), e.g. {surabaya['kode'].iloc[5]} (",
    )
    assert "look projected (metres)" in line
    assert "or remove those features" in line


@pytest.mark.parametrize(
    ("shape", "kind"), [("centroid", "point layer (Point)"), ("boundary", "line layer (LineString, MultiLineString)")]
)
def test_a_point_or_line_layer_is_refused(
    ews_cli: RunCli, shared_data: Path, surabaya: gpd.GeoDataFrame, tmp_path: Path, shape: str, kind: str
) -> None:
    frame = surabaya.set_geometry(getattr(surabaya.to_crs("EPSG:32749"), shape).to_crs("EPSG:4326"))
    path = geojson(tmp_path / f"{shape}.geojson", frame)
    result = run(ews_cli, tmp_path, write_region(tmp_path / "region", shared_data, boundaries=path))
    assert_refused_before_publishing(result, tmp_path)
    line = result.line_with(str(path), f"a {kind}, not polygons")
    assert "boundaries must be the areas' polygons" in line


def test_non_polygon_features_of_a_mixed_layer_are_counted(
    ews_cli: RunCli, shared_data: Path, surabaya: gpd.GeoDataFrame, tmp_path: Path
) -> None:
    mixed = surabaya.copy()
    rows = mixed.index[[10, 20, 30]]
    mixed.loc[rows, "geometry"] = list(surabaya.to_crs("EPSG:32749").geometry.loc[rows].centroid.to_crs("EPSG:4326"))
    path = geojson(tmp_path / "mixed.geojson", mixed)
    result = run(ews_cli, tmp_path, write_region(tmp_path / "region", shared_data, boundaries=path))
    assert_refused_before_publishing(result, tmp_path)
    code = surabaya["kode"].iloc[10]
    line = result.line_with(str(path), f"3 of 152 features are not polygons (e.g. {code}: Point)")
    assert "remove them or replace them by the areas' polygons" in line


def test_a_geopackage_point_layer_names_the_polygon_layers(surabaya: gpd.GeoDataFrame, tmp_path: Path) -> None:
    path = tmp_path / "surabaya.gpkg"
    points = surabaya.set_geometry(surabaya.to_crs("EPSG:32749").centroid.to_crs("EPSG:4326"))
    points.to_file(path, layer="titik", engine="pyogrio")
    surabaya.to_file(path, layer="desa", engine="pyogrio")
    with pytest.raises(BoundaryError, match=r"surabaya\.gpkg \(layer titik\): a point layer \(Point\), not polygons.*"
                       r"polygon layers in this file: desa \(set boundaries\.layer\)"):  # fmt: skip
        read_boundaries(path, layer="titik")
    assert len(read_boundaries(path, layer="desa")) == 152


def test_boundaries_of_another_province_are_refused(ews_cli: RunCli, shared_data: Path, tmp_path: Path) -> None:
    bali = shared_data / "boundaries" / "wilayah_boundaries_geojson" / "kec" / "wilayah_boundaries_kec_51.geojson"
    result = run(ews_cli, tmp_path, write_region(tmp_path / "region", shared_data, boundaries=bali))
    assert_refused_before_publishing(result, tmp_path)
    line = result.line_with(str(bali), "areas are outside province 35 of region jawa-timur", "found province 51 (")
    assert "point 'boundaries.path' at province 35's boundaries, or set 'province_code'" in line


def test_a_few_areas_of_another_province_stay_a_note(
    ews_cli: RunCli, shared_data: Path, surabaya_file: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "boundaries"
    folder.mkdir()
    (folder / "surabaya.geojson").write_bytes(surabaya_file.read_bytes())
    bali = shared_data / "boundaries" / "wilayah_boundaries_geojson" / "kec" / "wilayah_boundaries_kec_51.geojson"
    geojson(folder / "bali.geojson", gpd.read_file(bali, engine="pyogrio").iloc[:2])
    result = run(ews_cli, tmp_path, write_region(tmp_path / "region", shared_data, boundaries=folder))
    assert result.code == 0, result.err
    assert "NOTE 2 areas are outside province 35: 51." in result.out
    assert (tmp_path / "out" / "report.json").exists()


def test_a_region_over_several_provinces_lists_them(
    ews_cli: RunCli, shared_data: Path, surabaya_file: Path, tmp_path: Path
) -> None:
    # A national (or multi-province) region: its villages are in every province it lists, none is "outside".
    folder = tmp_path / "boundaries"
    folder.mkdir()
    (folder / "surabaya.geojson").write_bytes(surabaya_file.read_bytes())
    bali = shared_data / "boundaries" / "wilayah_boundaries_geojson" / "kec" / "wilayah_boundaries_kec_51.geojson"
    (folder / "bali.geojson").write_bytes(bali.read_bytes())
    refused = run(ews_cli, tmp_path / "one", write_region(tmp_path / "one" / "region", shared_data, boundaries=bali))
    assert refused.code == 2
    assert "(a region over several provinces lists them all in 'provinces')" in refused.err
    region = write_region(tmp_path / "two" / "region", shared_data, boundaries=folder, extra='provinces: ["35", "51"]')
    result = run(ews_cli, tmp_path / "two", region)
    assert result.code == 0, result.err
    assert "outside province" not in result.out
    assert (tmp_path / "two" / "out" / "report.json").exists()

"""The tsunami coast from the land, not from the layer: synthetic villages beside synthetic neighbours.

Distances are worked out at the equator, where 0.001 degree is about 111 m in both directions (and in
EASE-Grid 2.0, the equal-area projection the coast is derived in, within 0.2 % there).
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pytest
import shapely

from ews.config import region_from_mapping
from ews.errors import BoundaryError, ConfigError
from ews.exposure.coverage import VillageLayer
from ews.hazard.earthquake import COAST_GAP_M, LAND_GAP_M, coast_key, coastal_villages, surrounding_land
from ews.ingest.boundaries import digest_land_files, list_land_files, read_land
from ews.store import coast_cache
from ews.store.coast_cache import Coast, cached_coast

WGS84 = "EPSG:4326"


def grid3() -> VillageLayer:
    """3 x 3 villages of 0.1 degree (~11 km) from (110.0, 0.0); code 99.01.01.1<ix><iy>."""
    codes = [f"99.01.01.10{ix}{iy}" for ix in range(3) for iy in range(3)]
    cells = [
        shapely.box(110 + ix / 10, iy / 10, 110 + (ix + 1) / 10, (iy + 1) / 10) for ix in range(3) for iy in range(3)
    ]
    table = gpd.GeoDataFrame({"code": codes, "name": codes}, geometry=cells, crs=WGS84)
    return VillageLayer.from_villages(table)


RIM = {f"99.01.01.10{ix}{iy}" for ix in range(3) for iy in range(3)} - {"99.01.01.1011"}
WEST_MIDDLE = "99.01.01.1001"  # ix 0, iy 1: its only outer edge is the west one


def west_neighbour(gap_deg: float) -> gpd.GeoSeries:
    """A neighbour's land west of the villages, as tall as they are, ``gap_deg`` apart from them."""
    return gpd.GeoSeries([shapely.box(109.7, 0.0, 110.0 - gap_deg, 0.3)], crs=WGS84)


def test_a_land_border_is_not_coast_and_the_sea_edge_is() -> None:
    layer = grid3()
    # Without land every village on the rim is "coastal", the west middle one on its land border too.
    assert coastal_villages(layer) == RIM
    # With the neighbour west of them (touching), the west middle village touches land only: inland.
    # The west corners still have sea to the south and north, the east column to the east.
    assert coastal_villages(layer, land=west_neighbour(0.0)) == RIM - {WEST_MIDDLE}
    # The same from lon/lat polygons.
    assert coastal_villages(layer, land=list(west_neighbour(0.0))) == RIM - {WEST_MIDDLE}
    # No land at all (an island region): the outline is the coast.
    assert coastal_villages(layer, land=[]) == RIM


def test_a_digitising_gap_to_the_neighbour_closes_a_sea_channel_does_not() -> None:
    layer = grid3()
    # The villages grow 100 m, the land 250 m: a gap of up to ~350 m between them closes. This gap is open
    # to the sea at both ends, so only its width decides.
    assert COAST_GAP_M + LAND_GAP_M == 350.0
    assert coastal_villages(layer, land=west_neighbour(0.003)) == RIM - {WEST_MIDDLE}  # ~334 m: closed
    assert coastal_villages(layer, land=west_neighbour(0.0035)) == RIM  # ~390 m: a channel of sea


def test_a_wide_gap_enclosed_by_land_is_a_hole_not_sea() -> None:
    layer = grid3()
    # The villages sit in a 1 km moat inside the neighbour's land (a frame 20 km wide around them): the moat
    # is far wider than any tolerance but enclosed, so a hole of the land; the sea is beyond the frame.
    outer = shapely.box(109.8, -0.2, 110.5, 0.5)
    inner = shapely.box(110.0 - 0.009, -0.009, 110.3 + 0.009, 0.3 + 0.009)
    frame = gpd.GeoSeries([outer.difference(inner)], crs=WGS84)
    assert coastal_villages(layer, land=frame) == set()


def test_far_land_is_cut_off_and_changes_nothing() -> None:
    layer = grid3()
    # Land 1 degree (~111 km) east is beyond the 10 km margin: the coast is the outline.
    far = gpd.GeoSeries([shapely.box(111.4, 0.0, 111.7, 0.3)], crs=WGS84)
    assert coastal_villages(layer, land=far) == RIM


def test_land_needs_a_crs() -> None:
    with pytest.raises(ValueError, match="land GeoSeries has no CRS"):
        coastal_villages(grid3(), land=gpd.GeoSeries([shapely.box(109.7, 0.0, 110.0, 0.3)]))


def test_the_regions_own_areas_are_left_out_of_the_land() -> None:
    land = gpd.GeoDataFrame(
        {"code": ["35", "33", "35.78", "35.15", "35.78.12", "35.15.01", "35.78.12.1001", "35.78.12.1006"]},
        geometry=[shapely.box(110, 0, 111, 1)] * 8,
        crs=WGS84,
    )
    # A Kota Surabaya region of two kelurahan of one kecamatan.
    around = surrounding_land(land, ["35.78.12.1001", "35.78.12.1002"])
    # Left out: its province, kab/kota, kecamatan and its own village. Kept: Jawa Tengah, Sidoarjo and its
    # kecamatan, and a village of Surabaya the region does not have (land that fills a gap in the layer).
    assert around.own == ("35", "35.78", "35.78.12", "35.78.12.1001")
    assert list(around.land["code"]) == ["33", "35.15", "35.15.01", "35.78.12.1006"]
    # A region of kecamatan: a village inside one of them is the region too.
    assert (
        "35.15.01.2001"
        in surrounding_land(
            gpd.GeoDataFrame({"code": ["35.15.01.2001"]}, geometry=[shapely.box(0, 0, 1, 1)], crs=WGS84), ["35.15.01"]
        ).own
    )


def test_the_cache_key_follows_every_input() -> None:
    layer = grid3()
    codes = list(layer.table["code"])
    geoms = layer.table.geometry.values
    key = coast_key(codes, geoms, "kode:abc")
    assert key == coast_key(codes, geoms, "kode:abc")
    moved = geoms.copy()
    moved[0] = shapely.box(110.0, 0.0, 110.1, 0.1001)
    others = {
        coast_key(codes, moved, "kode:abc"),
        coast_key([*codes[:-1], "99.01.01.1099"], geoms, "kode:abc"),
        coast_key(codes, geoms, "kode:abd"),
        coast_key(codes, geoms, "none"),
        coast_key(codes, geoms, "kode:abc", gap_m=50.0),
        coast_key(codes, geoms, "kode:abc", land_gap_m=500.0),
    }
    assert key not in others
    assert len(others) == 6


def test_cached_coast_from_memory_then_disk_then_computed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(coast_cache, "_MEMORY", {})
    calls: list[int] = []

    def compute() -> Coast:
        calls.append(1)
        return Coast(frozenset({"99.01.01.1000", "99.01.01.1002"}), land_kept=3, land_own=1)

    key = "ab" * 32
    first = cached_coast(tmp_path, key, compute)
    assert (first.origin, len(calls)) == ("computed", 1)
    assert first.coast == Coast(frozenset({"99.01.01.1000", "99.01.01.1002"}), 3, 1)
    assert cached_coast(tmp_path, key, compute).origin == "memory"
    monkeypatch.setattr(coast_cache, "_MEMORY", {})  # a new process
    again = cached_coast(tmp_path, key, compute)
    assert (again.origin, again.coast, len(calls)) == ("disk", first.coast, 1)
    # A file that is not this key's, not JSON, or with a bad count is rebuilt, never trusted.
    file = tmp_path / f"coast-{key[:32]}.json"
    for bad in (json.dumps({"key": "cd" * 32, "codes": ["x"]}), "{not json", json.dumps({"key": key, "codes": [],
                "land_kept": "many"})):  # fmt: skip
        file.write_text(bad)
        monkeypatch.setattr(coast_cache, "_MEMORY", {})
        rebuilt = cached_coast(tmp_path, key, compute)
        assert (rebuilt.origin, rebuilt.coast) == ("computed", first.coast)
    assert len(calls) == 4
    assert json.loads(file.read_text()) == {
        "key": key, "codes": ["99.01.01.1000", "99.01.01.1002"], "land_kept": 3, "land_own": 1
    }  # fmt: skip
    # Without a cache folder: memory only.
    monkeypatch.setattr(coast_cache, "_MEMORY", {})
    assert cached_coast(None, "ef" * 32, compute).origin == "computed"
    assert cached_coast(None, "ef" * 32, compute).origin == "memory"


# -- the region file and the land files ------------------------------------------------------------------


def region(earthquake: object, base: Path) -> object:
    data = {"id": "t", "name": "T", "province_code": "35", "boundaries": {"path": "v.geojson"}}
    if earthquake is not None:
        data["earthquake"] = earthquake
    return region_from_mapping(data, source=str(base / "t.yaml"), base=base, env={"D": "/data"})


def test_land_in_the_region_file(tmp_path: Path) -> None:
    # One path or several, relative to the region file or from the environment; [] is "no land border".
    one = region({"land": "land/kec_33.geojson"}, tmp_path).earthquake  # type: ignore[attr-defined]
    assert one.land == (tmp_path / "land" / "kec_33.geojson",)
    two = region({"land": ["${D}/kec_33.geojson", "${D}/bali"], "land_id_field": "kd"}, tmp_path)
    assert two.earthquake.land == (Path("/data/kec_33.geojson"), Path("/data/bali"))  # type: ignore[attr-defined]
    assert two.earthquake.land_id_field == "kd"  # type: ignore[attr-defined]
    assert region({"land": []}, tmp_path).earthquake.land == ()  # type: ignore[attr-defined]
    assert region(None, tmp_path).earthquake.land is None  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("earthquake", "message"),
    [
        ({"land": [""]}, r"t\.yaml: key 'earthquake\.land': Value error, an empty path"),
        ({"land": 5}, r"t\.yaml: key 'earthquake\.land': Input should be a valid tuple"),
        ({"land_id_field": ""}, r"t\.yaml: key 'earthquake\.land_id_field'"),
        ({"lands": []}, r"t\.yaml: unknown key 'earthquake\.lands'"),
    ],
)
def test_bad_land_keys_name_the_file_and_key(tmp_path: Path, earthquake: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        region(earthquake, tmp_path)


def test_land_files_that_cannot_be_used_are_named(tmp_path: Path) -> None:
    with pytest.raises(BoundaryError, match=r"missing\.geojson: boundary file not found; check 'earthquake\.land'$"):
        list_land_files([tmp_path / "missing.geojson"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(BoundaryError, match=r"empty: folder holds no boundary file .*point 'earthquake\.land' at one"):
        list_land_files([tmp_path / "empty"])
    no_code = tmp_path / "nocode.geojson"
    gpd.GeoDataFrame({"id": ["33"]}, geometry=[shapely.box(110, -7, 111, -6)], crs=WGS84).to_file(no_code)
    files = list_land_files([no_code])
    assert files == [no_code]
    with pytest.raises(
        BoundaryError,
        match=r"earthquake\.land: .*nocode\.geojson: has no field 'kode' \(fields: id\); "
        r"set 'earthquake\.land_id_field'",
    ):
        read_land(files)
    land = read_land(files, id_field="id")
    assert list(land["code"]) == ["33"]
    assert land.attrs["files"] == [str(no_code)]
    # The digest follows the bytes, not the name or the time.
    copy = tmp_path / "copy.geojson"
    copy.write_bytes(no_code.read_bytes())
    assert digest_land_files([copy]) == digest_land_files(files)
    assert digest_land_files([copy, copy]) != digest_land_files(files)

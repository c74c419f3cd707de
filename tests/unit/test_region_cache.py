"""The prepared villages cached per boundary set: hit when the file is unchanged, miss when it changed."""

from __future__ import annotations

import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from geopandas.testing import assert_geodataframe_equal
from shapely.geometry import Polygon, box

import ews.store.region_cache as region_cache
from ews.config import open_region
from ews.errors import BoundaryError
from ews.exposure.coverage import VillageLayer
from ews.ingest.boundaries import digest_boundaries, read_boundaries
from ews.pipeline import open_region_data
from ews.store.region_cache import open_villages

V1, V2 = "35.78.01.1001", "35.78.01.1002"


def villages(names: tuple[str, str] = ("Karang Pilang", "Kebraon")) -> gpd.GeoDataFrame:
    """Two villages; the second a bow tie (self-intersecting), which read_boundaries repairs."""
    bowtie = Polygon([(112.6, -7.3), (112.7, -7.35), (112.7, -7.3), (112.6, -7.35), (112.6, -7.3)])
    return gpd.GeoDataFrame(
        {"kode": [V1, V2], "nama": list(names), "jiwa": [100, 200]},
        geometry=[box(112.6, -7.35, 112.7, -7.3).buffer(0), bowtie],
        crs="EPSG:4326",
    )


@pytest.fixture(autouse=True)
def no_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with an empty per-process cache (the disk cache is the tests' subject)."""
    monkeypatch.setattr(region_cache, "_MEMORY", {})
    monkeypatch.setattr(region_cache, "_DIGESTS", {})


@pytest.fixture
def boundary(tmp_path: Path) -> Path:
    path = tmp_path / "desa.gpkg"
    villages().to_file(path, engine="pyogrio")
    return path


def forget() -> None:
    """Drop the per-process copies: the next open reads the disk cache (as the next run's process does)."""
    region_cache._MEMORY.clear()
    region_cache._DIGESTS.clear()


@pytest.mark.parametrize("batch", [10_000, 1], ids=["one-batch", "a-batch-per-row"])
def test_a_miss_then_a_hit_give_the_same_villages(
    boundary: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    # The cache is projected and written a batch of rows at a time (memory): batches change nothing read back.
    monkeypatch.setattr(region_cache, "_BATCH", batch)
    cache = tmp_path / "cache"
    first = open_villages(cache, boundary, keep=("jiwa",))
    assert not first.cached
    assert len(list(cache.glob("villages-*.arrow"))) == 1
    forget()
    second = open_villages(cache, boundary, keep=("jiwa",))
    assert second.cached
    assert second.key == first.key
    # The same as reading and preparing the file: attributes, geometry, projection, areas, repaired codes.
    expected = VillageLayer.from_villages(read_boundaries(boundary, keep=("jiwa",)))
    assert_geodataframe_equal(second.layer.table, expected.table)
    assert second.layer.table.attrs["repaired"] == [V2]
    assert np.array_equal(second.layer.area_km2, expected.area_km2)
    assert shapely.equals_exact(second.layer.projected, expected.projected, 0).all()
    assert 0 in second.layer.tree.query(expected.projected[0].centroid)  # the index is over the projected shapes
    assert shapely.equals_exact(first.layer.projected, expected.projected, 0).all()  # the cold run's, read back


def test_the_table_handed_out_is_a_copy(boundary: Path, tmp_path: Path) -> None:
    first = open_villages(tmp_path / "cache", boundary)
    first.layer.table["extra"] = 1
    first.layer.table.attrs["repaired"].append("x")
    again = open_villages(tmp_path / "cache", boundary)  # from memory
    assert again.cached
    assert "extra" not in again.layer.table.columns
    assert again.layer.table.attrs["repaired"] == [V2]


def test_a_changed_boundary_file_misses(boundary: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = open_villages(cache, boundary)
    villages(("Karang Pilang", "Kebraon Baru")).to_file(boundary, engine="pyogrio")
    second = open_villages(cache, boundary)
    assert not second.cached
    assert second.key != first.key
    assert second.layer.table["name"].tolist() == ["Karang Pilang", "Kebraon Baru"]
    # Other fields read from the same file are another table too.
    assert open_villages(cache, boundary, keep=("jiwa",)).key != second.key


def test_an_unreadable_cache_file_is_rebuilt(boundary: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache = tmp_path / "cache"
    open_villages(cache, boundary)
    (file,) = cache.glob("villages-*.arrow")
    file.write_bytes(b"not an arrow file")
    forget()
    with caplog.at_level(logging.WARNING):
        again = open_villages(cache, boundary)
    assert not again.cached
    assert "unreadable" in caplog.text
    forget()
    assert open_villages(cache, boundary).cached  # written again


def test_a_refused_boundary_file_keeps_its_message_and_caches_nothing(tmp_path: Path) -> None:
    path = tmp_path / "desa.gpkg"
    villages().rename(columns={"kode": "id"}).to_file(path, engine="pyogrio")
    with pytest.raises(BoundaryError, match=r"has no field 'kode' \(fields: id, nama, jiwa\); set id_field/name_field"):
        open_villages(tmp_path / "cache", path)
    assert list((tmp_path / "cache").glob("villages-*")) == []


def test_a_cached_run_still_names_the_repaired_geometries(boundary: Path, tmp_path: Path) -> None:
    region = tmp_path / "tiny.yaml"
    region.write_text(
        'id: tiny\nname: Tiny\nprovince_code: "35"\n'
        f"boundaries: {{path: {boundary.name}, id_field: kode, name_field: nama}}\n"
    )
    config = open_region(region, {})
    note = f"1 boundary geometries were invalid and repaired: {V2}"
    first = open_region_data(config, cache_dir=tmp_path / "cache")
    forget()
    second = open_region_data(config, cache_dir=tmp_path / "cache")
    assert note in first.notes
    assert note in second.notes
    assert second.boundary_key == first.boundary_key
    assert_geodataframe_equal(second.villages, first.villages)


def test_a_shapefile_digest_covers_its_attributes(tmp_path: Path) -> None:
    path = tmp_path / "desa.shp"
    villages().to_file(path, engine="pyogrio")
    before = digest_boundaries(path)
    shp = path.read_bytes()
    villages(("Karang Pilang", "Kebraon Baru")).to_file(path, engine="pyogrio")
    assert path.read_bytes() == shp  # the names live in the .dbf only
    assert digest_boundaries(path) != before


def test_an_unchanged_file_is_not_hashed_again(boundary: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    first = open_villages(cache, boundary)
    forget()

    def no_hashing(path: object, **_: object) -> str:
        raise AssertionError("the boundary file was hashed again")

    monkeypatch.setattr(region_cache, "digest_boundaries", no_hashing)
    again = open_villages(cache, boundary)  # from the digest record beside the cache: size, times, inode
    assert again.cached
    assert again.key == first.key
    monkeypatch.undo()
    forget()
    villages(("Karang Pilang", "Kebraon Baru")).to_file(boundary, engine="pyogrio")  # a write moves its times
    assert open_villages(cache, boundary).key != first.key


def test_the_projected_polygons_are_read_only_when_asked_for(boundary: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    open_villages(cache, boundary)
    forget()
    opened = open_villages(cache, boundary)
    assert opened.cached
    assert not opened.layer.prepared.loaded  # a raster cycle never asks: the polygons stay on disk
    again = opened.layer.with_table(opened.layer.table.assign(extra=1))
    assert again.prepared is opened.layer.prepared  # shared: made at most once
    expected = VillageLayer.from_villages(read_boundaries(boundary))
    assert shapely.equals_exact(again.projected, expected.projected, 0).all()
    assert opened.layer.prepared.loaded


def test_a_cache_file_replaced_under_a_run_is_refused(boundary: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    open_villages(cache, boundary)
    forget()
    opened = open_villages(cache, boundary)
    (file,) = cache.glob("villages-*.arrow")
    other = tmp_path / "other.gpkg"
    villages().iloc[:1].to_file(other, engine="pyogrio")
    open_villages(tmp_path / "elsewhere", other)
    (elsewhere,) = (tmp_path / "elsewhere").glob("villages-*.arrow")
    elsewhere.replace(file)  # another boundary set's cache where this one's was
    with pytest.raises(BoundaryError, match="changed while in use"):
        _ = opened.layer.projected

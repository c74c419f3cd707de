"""CAP areas (ews.cap.areas): which villages form one area, and the outline its alert draws."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import shapely
from shapely.geometry import MultiPolygon, Polygon, box

from ews.cap.areas import TOUCH_DEGREES, area_outline, area_polygons, components, kecamatan_of
from ews.errors import CapError
from ews.ingest.boundaries import read_boundaries


def test_neighbours_of_one_key_are_one_area_and_other_keys_or_distant_ones_are_not() -> None:
    a, b = box(0, 0, 1, 1), box(1 + TOUCH_DEGREES / 2, 0, 2, 1)  # a digitising gap under the touch distance
    far = box(5, 5, 6, 6)
    assert components(["k", "k", "k"], [a, b, far]) == [[0, 1], [2]]
    assert components(["k", "j", "k"], [a, b, far]) == [[0], [1], [2]]
    assert components(["k", "k"], [a, box(1 + 3 * TOUCH_DEGREES, 0, 2, 1)]) == [[0], [1]]
    assert components([], []) == []


def test_the_outline_closes_hairline_gaps_and_drops_holes_but_keeps_islands_apart() -> None:
    ring = box(0, 0, 3, 3).difference(box(1, 1, 2, 2))  # a village around an enclave at another level
    gap = box(3 + TOUCH_DEGREES / 2, 0, 4, 3)
    outline = area_outline([ring, gap])
    assert isinstance(outline, Polygon)
    assert not outline.interiors
    assert outline.area == pytest.approx(12.0, rel=1e-4)
    island = box(10, 10, 11, 11)
    apart = area_outline([ring, island])
    assert isinstance(apart, MultiPolygon)
    assert len(apart.geoms) == 2


def test_an_invalid_member_is_repaired_not_dropped() -> None:
    bowtie = Polygon([(0, 0), (2, 2), (2, 0), (0, 2)])  # self-intersecting, as digitised boundaries can be
    outline = area_outline([bowtie, box(2, 0, 3, 2)])
    assert outline.is_valid
    assert outline.covers(shapely.Point(0.2, 1.0))
    assert outline.covers(shapely.Point(2.5, 1.0))


def test_a_large_outline_is_simplified_to_the_budget_and_an_empty_area_is_an_error() -> None:
    circle = shapely.Point(110, -7).buffer(0.5, quad_segs=2000)  # 8,000 points
    texts = area_polygons([circle], "area x", max_vertices=300)
    assert len(texts) == 1
    assert 4 <= texts[0].count(" ") + 1 <= 300
    with pytest.raises(CapError, match="area x"):
        area_polygons([circle], "area x", max_vertices=3)
    with pytest.raises(CapError, match="empty geometry"):
        area_outline([Polygon()])


def test_each_real_surabaya_kecamatan_outline_covers_its_villages_and_adds_only_slivers(
    jatim_villages_dir: Path,
) -> None:
    villages = read_boundaries(jatim_villages_dir / "wilayah_boundaries_kel_35.78.geojson")
    codes = [str(c) for c in villages["code"]]
    geometries = np.asarray(shapely.make_valid(np.asarray(villages.geometry.values, dtype=object)), dtype=object)
    keys = [kecamatan_of(c) for c in codes]
    areas = components(keys, list(geometries))
    assert len({keys[g[0]] for g in areas}) == len(set(keys)) >= 30
    for group in areas:
        members = geometries[group]
        outline = area_outline(list(members))
        union = shapely.union_all(members)
        assert outline.is_valid
        # Every village lies inside; what the outline adds is enclaves and gaps, not land around the area.
        assert all(outline.buffer(TOUCH_DEGREES).covers(shapely.point_on_surface(m)) for m in members)
        assert union.difference(outline.buffer(2 * TOUCH_DEGREES)).area < 1e-10  # ~1 m²: slivers only
        # Filled: enclaves, and bays that a hairline gap between two villages closes into one.
        shells = shapely.union_all([Polygon(p.exterior) for p in shapely.get_parts(union)])
        assert outline.difference(shells.buffer(2 * TOUCH_DEGREES)).area <= 1e-2 * union.area
        parts = len(outline.geoms) if isinstance(outline, MultiPolygon) else 1
        assert parts <= len(group)

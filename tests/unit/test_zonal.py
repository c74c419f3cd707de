"""Exact coverage weights and zonal statistics on hand-made shapes with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import MultiPolygon, Polygon, box

from ews.errors import RasterError
from ews.exposure.zonal import Grid, ZonalWeights, coverage_weights, parse_stats, zonal_stats

# A 10 x 10 grid of 1-degree cells: x 100..110, y 0..-10 (north-up).
GRID = Grid((1.0, 0.0, 100.0, 0.0, -1.0, 0.0), (10, 10))


def weights_of(*geoms: shapely.Geometry, grid: Grid = GRID) -> ZonalWeights:
    return coverage_weights(grid, [f"v{i}" for i in range(len(geoms))], np.array(geoms, dtype=object))


def as_dict(w: ZonalWeights, k: int) -> dict[tuple[int, int], float]:
    lo, hi = w.indptr[k], w.indptr[k + 1]
    cols = w.grid.shape[1]
    return {(int(c) // cols, int(c) % cols): float(f) for c, f in zip(w.cells[lo:hi], w.fraction[lo:hi], strict=True)}


def test_a_cell_aligned_square_covers_its_cells_fully() -> None:
    w = weights_of(box(101, -3, 103, -1))  # columns 1-2, rows 1-2
    assert as_dict(w, 0) == {(1, 1): 1.0, (1, 2): 1.0, (2, 1): 1.0, (2, 2): 1.0}


def test_a_square_off_the_grid_lines_splits_cells_by_area() -> None:
    w = weights_of(box(101.5, -2.25, 102.5, -1.25))
    got = as_dict(w, 0)
    assert got == pytest.approx({(1, 1): 0.375, (1, 2): 0.375, (2, 1): 0.125, (2, 2): 0.125})
    assert w.cell_area[0] == pytest.approx(1.0)


def test_a_village_smaller_than_a_cell_gets_its_share() -> None:
    w = weights_of(box(104.2, -6.7, 104.3, -6.6))
    assert as_dict(w, 0) == pytest.approx({(6, 4): 0.01})
    stats = zonal_stats(w, np.arange(100, dtype=np.float64).reshape(10, 10), parse_stats("mean,max"))
    assert stats["mean"][0] == pytest.approx(64.0)
    assert stats["max"][0] == 64.0


def test_a_triangle_across_cells() -> None:
    # Right triangle with legs 2 cells: half of the 2x2 block, split 0.5/1/0/0.5 by the diagonal.
    w = weights_of(Polygon([(101, -3), (103, -3), (101, -1)]))
    got = as_dict(w, 0)
    assert got == pytest.approx({(1, 1): 0.5, (2, 1): 1.0, (2, 2): 0.5})
    assert w.cell_area[0] == pytest.approx(2.0)


def test_holes_subtract_and_multipolygon_parts_add() -> None:
    holed = Polygon(box(101, -4, 104, -1).exterior.coords, [box(102, -3, 103, -2).exterior.coords])
    multi = MultiPolygon([box(105, -2, 106, -1), box(107.5, -9, 108, -8)])
    w = weights_of(holed, multi)
    hole = as_dict(w, 0)
    assert (2, 2) not in hole
    assert sum(hole.values()) == pytest.approx(8.0)
    assert as_dict(w, 1) == pytest.approx({(1, 5): 1.0, (8, 7): 0.5})


def test_ring_orientation_does_not_matter() -> None:
    ccw = Polygon([(101.2, -1.2), (103.7, -1.2), (103.7, -2.9), (101.2, -2.9)])
    cw = Polygon(list(ccw.exterior.coords)[::-1])
    a, b = weights_of(ccw), weights_of(cw)
    assert as_dict(a, 0) == pytest.approx(as_dict(b, 0))


def test_a_grid_that_does_not_cover_the_villages_is_refused() -> None:
    with pytest.raises(RasterError, match=r"does not cover 1 of 2 villages \(e\.g\. v1\)"):
        weights_of(box(101, -2, 102, -1), box(109.5, -2, 111, -1))


def test_nan_cells_are_left_out_and_an_all_missing_village_is_nan_not_zero() -> None:
    data = np.full((10, 10), 10.0)
    data[1, 1] = np.nan
    data[5, 5] = np.nan
    w = weights_of(box(101, -2, 103, -1), box(105.25, -5.75, 105.75, -5.25))
    stats = zonal_stats(w, data, parse_stats("mean,max,frac_above:5,valid_fraction"))
    assert stats["mean"][0] == 10.0
    assert stats["valid_fraction"][0] == pytest.approx(0.5)
    assert stats["frac_above_5"][0] == 1.0
    assert np.isnan(stats["mean"][1])
    assert np.isnan(stats["max"][1])
    assert np.isnan(stats["frac_above_5"][1])


def test_frac_above_is_the_covered_share_at_or_above_the_threshold() -> None:
    data = np.zeros((10, 10))
    data[:, 2] = 25.0  # column 2 is wet
    w = weights_of(box(101.5, -2, 103, -1))  # half of column 1, all of column 2
    stats = zonal_stats(w, data, parse_stats("frac_above:20,mean,max,min,sum,count"))
    assert stats["frac_above_20"][0] == pytest.approx(1 / 1.5)
    assert stats["mean"][0] == pytest.approx(25.0 / 1.5)
    assert (stats["max"][0], stats["min"][0], stats["count"][0]) == (25.0, 0.0, 2.0)
    assert stats["sum"][0] == pytest.approx(25.0)


def test_parse_stats_names_the_bad_entry() -> None:
    assert [s.column for s in parse_stats("mean, max,frac_above:20")] == ["mean", "max", "frac_above_20"]
    with pytest.raises(ValueError, match="'median'"):
        parse_stats("mean,median")
    with pytest.raises(ValueError, match="frac_above needs a number"):
        parse_stats("frac_above:lots")


def test_weights_round_trip_through_plain_arrays() -> None:
    w = weights_of(box(101.5, -2.25, 102.5, -1.25), box(104.2, -6.7, 104.3, -6.6))
    back = ZonalWeights.from_arrays(w.to_arrays())
    assert back.grid == w.grid
    assert back.codes.tolist() == ["v0", "v1"]
    np.testing.assert_array_equal(back.cells, w.cells)
    np.testing.assert_array_equal(back.fraction, w.fraction)


def test_a_south_up_or_rotated_grid_is_refused() -> None:
    with pytest.raises(RasterError, match="north-up"):
        Grid((1.0, 0.0, 100.0, 0.0, 1.0, -10.0), (10, 10))


coords = st.floats(min_value=100.05, max_value=109.95, allow_nan=False)
lat = st.floats(min_value=-9.95, max_value=-0.05, allow_nan=False)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(coords, lat), min_size=3, max_size=12), st.sampled_from([1.0, 0.5, 0.37]))
def test_fractions_sum_to_the_polygon_area_and_each_cell_matches_shapely(
    points: list[tuple[float, float]], cell: float
) -> None:
    polygon = shapely.make_valid(Polygon(points))
    polygon = shapely.union_all([g for g in shapely.get_parts(polygon) if g.geom_type == "Polygon"])
    if polygon.is_empty or polygon.area < 1e-9:
        return
    n = int(np.ceil(10 / cell))
    grid = Grid((cell, 0.0, 100.0, 0.0, -cell, 0.0), (n, n))
    w = weights_of(polygon, grid=grid)
    assert w.cell_area[0] * cell * cell == pytest.approx(polygon.area, rel=1e-9, abs=1e-12)
    for (r, c), frac in as_dict(w, 0).items():
        cell_box = box(100 + c * cell, -(r + 1) * cell, 100 + (c + 1) * cell, -r * cell)
        assert frac * cell * cell == pytest.approx(polygon.intersection(cell_box).area, abs=1e-9)
        assert 0 <= frac <= 1.0


@pytest.mark.parametrize("chunk", [1, 12, 40])
def test_the_chunk_size_changes_nothing(monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    # Villages are taken in chunks bounded by vertex count (memory); a chunk may hold one village or many.
    shapes = [
        box(101.5, -2.25, 102.5, -1.25),
        Polygon([(103.1, -3.1), (105.9, -3.3), (104.2, -5.8)]),
        MultiPolygon([box(106.2, -1.2, 106.8, -0.4), box(107.1, -1.9, 108.6, -1.1)]),
        box(101.1, -9.9, 109.9, -6.1).difference(box(103.0, -9.0, 104.0, -8.0)),
        box(104.2, -6.7, 104.3, -6.6),
    ]
    whole = weights_of(*shapes)
    monkeypatch.setattr("ews.exposure.zonal._CHUNK_VERTICES", chunk)
    chunked = weights_of(*shapes)
    np.testing.assert_array_equal(chunked.indptr, whole.indptr)
    np.testing.assert_array_equal(chunked.cells, whole.cells)
    np.testing.assert_array_equal(chunked.fraction, whole.fraction)

"""Display geometry for the maps (ews.review.display) and its cache per boundary set (ews.store.display_cache).

A 3 x 3 block of 0.1-degree villages whose edges are drawn as circles' worth of points (a wiggly border of
200 vertices per side), plus a village far off that is a sliver thinner than the coarse tolerance.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import shapely
from shapely.geometry import Polygon, box

import ews.store.display_cache as display_cache
from ews.review.display import TOLERANCES, VIEW_DIVISOR, display_geometry
from ews.store.display_cache import cached_display


def wiggly(x: float, y: float, size: float = 0.1) -> Polygon:
    """A square whose edges wobble by 1e-5 degrees (about a metre) at 200 points a side."""
    t = np.linspace(0, 1, 200, endpoint=False)
    wobble = 1e-5 * np.sin(40 * np.pi * t)
    sides = [
        np.column_stack([x + size * t, y + wobble]),
        np.column_stack([x + size + wobble, y + size * t]),
        np.column_stack([x + size * (1 - t), y + size + wobble]),
        np.column_stack([x + wobble, y + size * (1 - t)]),
    ]
    return Polygon(np.round(np.concatenate(sides), 9))  # neighbours share their corners exactly, as in real data


CODES = [f"35.01.0{i // 3 + 1}.200{i % 3 + 1}" for i in range(9)] + ["35.02.01.2001"]
GEOMS = np.array(
    [wiggly(112.0 + 0.1 * (i % 3), -7.5 + 0.1 * (i // 3)) for i in range(9)] + [box(113.0, -7.5, 113.5, -7.4995)],
    dtype=object,
)


@pytest.fixture
def computed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per display geometry computed (not found in memory or on disk)."""
    monkeypatch.setattr(display_cache, "_MEMORY", {})
    seen: list[int] = []
    real = display_cache.display_levels

    def counting(geometries: np.ndarray) -> list[np.ndarray]:
        seen.append(1)
        return real(geometries)

    monkeypatch.setattr(display_cache, "display_levels", counting)
    return seen


def test_every_level_is_simpler_and_keeps_every_village_drawable() -> None:
    display = display_geometry(CODES, GEOMS)
    rows = np.arange(len(CODES))
    full = shapely.get_num_coordinates(GEOMS)
    for i, _ in enumerate(TOLERANCES):
        level = display.levels[i].take(rows)
        assert (shapely.area(level) > 0).all()  # the sliver (0.0005 deg thick) keeps a finer shape
        # 801 vertices a square; the wobble (1e-5) is below every tolerance: 5 are left.
        assert shapely.get_num_coordinates(level)[:9].tolist() == [5] * 9
        assert shapely.get_num_coordinates(level)[9] == full[9] == 5
    assert np.allclose(shapely.area(display.levels[2].take(rows))[:9], 0.01, rtol=1e-3)


def test_the_outline_is_the_block_and_the_sliver_without_inner_edges() -> None:
    outline = display_geometry(CODES, GEOMS).outline
    parts = shapely.get_parts(outline)
    assert len(parts) == 2  # the 3 x 3 block dissolved into one polygon, and the sliver
    block = max(parts, key=lambda p: p.area)
    assert block.area == pytest.approx(0.09, rel=1e-3)
    assert not block.interiors  # no hairline gaps left between the simplified neighbours
    assert shapely.get_num_coordinates(block) < 20


@pytest.mark.parametrize(
    ("span", "level"),
    [(0.1, None), (TOLERANCES[0] * VIEW_DIVISOR, 0), (5.0, 1), (TOLERANCES[2] * VIEW_DIVISOR * 2, 2)],
    ids=["city: full geometry", "finest", "province", "nation"],
)
def test_a_view_gets_the_coarsest_level_finer_than_it_needs(span: float, level: int | None) -> None:
    display = display_geometry(CODES, GEOMS)
    assert display.level_for(span) == level
    picked = display.for_view([CODES[4], CODES[0]], span)
    if level is None:
        assert picked is None
    else:
        assert picked is not None
        assert [g.centroid.x for g in picked] == pytest.approx([112.15, 112.05], abs=1e-4)  # in the order asked
    assert display.for_view(["99.99.99.9999"], 5.0) is None  # not of this set: the caller draws its own


def test_the_display_geometry_is_saved_once_and_read_back_the_same(tmp_path: Path, computed: list[int]) -> None:
    first = cached_display(tmp_path, "boundary-k1", CODES, GEOMS)
    assert cached_display(tmp_path, "boundary-k1", CODES, GEOMS) is first  # memory
    display_cache._MEMORY.clear()  # a new process
    again = cached_display(tmp_path, "boundary-k1", CODES, GEOMS)
    assert len(computed) == 1
    assert len(list(tmp_path.glob("display-*.arrow"))) == 1
    rows = np.array([9, 0], dtype=np.int64)
    for i in range(len(TOLERANCES)):
        assert shapely.equals_exact(first.levels[i].take(rows), again.levels[i].take(rows), 0).all()
    assert again.outline.equals(first.outline)
    assert again.codes.tolist() == CODES


def test_another_boundary_set_or_a_broken_file_is_computed_again(tmp_path: Path, computed: list[int]) -> None:
    cached_display(tmp_path, "boundary-k1", CODES, GEOMS)
    cached_display(tmp_path, "boundary-k2", CODES, GEOMS)  # a changed boundary file has another key
    assert len(computed) == 2
    for file in tmp_path.glob("display-*.arrow"):
        file.write_bytes(b"not arrow")
    display_cache._MEMORY.clear()
    cached_display(tmp_path, "boundary-k1", CODES, GEOMS)
    assert len(computed) == 3
    # Without a boundary key (villages from no file) nothing is kept: computed as the maps ask.
    files = sorted(tmp_path.iterdir())
    assert cached_display(tmp_path, None, CODES, GEOMS) is not cached_display(tmp_path, None, CODES, GEOMS)
    assert sorted(tmp_path.iterdir()) == files
    assert len(computed) == 3


def test_without_a_cache_folder_only_what_a_map_draws_is_simplified(computed: list[int]) -> None:
    lazy = cached_display(None, "boundary-k1", CODES, GEOMS)
    eager = display_geometry(CODES, GEOMS)
    assert computed == []  # nothing simplified up front
    for span in (5.0, 50.0):
        taken, expected = lazy.for_view(CODES[::-1], span), eager.for_view(CODES[::-1], span)
        assert taken is not None
        assert expected is not None
        assert shapely.equals(taken, expected).all()
    assert lazy.outline.equals(eager.outline)  # made when first drawn
    assert cached_display(None, "boundary-k1", CODES, GEOMS) is lazy  # and kept in memory

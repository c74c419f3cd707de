"""Zonal weights cached per (grid, boundary set key) (ews.store.zonal_cache): two 1 x 1 degree villages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from shapely.geometry import box

import ews.store.zonal_cache as zonal_cache
from ews.exposure.zonal import Grid, ZonalWeights
from ews.store.zonal_cache import cached_weights

CODES = ["35.01.01.2001", "35.01.01.2002"]
GEOMS = np.array([box(112.0, -8.0, 113.0, -7.0), box(113.0, -8.0, 114.0, -7.0)], dtype=object)
GRID = Grid((0.5, 0.0, 112.0, 0.0, -0.5, -7.0), (2, 4))  # 0.5-degree cells over both villages


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per weights computed (not found in memory or on disk)."""
    monkeypatch.setattr(zonal_cache, "_MEMORY", {})
    seen: list[int] = []
    real = zonal_cache.coverage_weights

    def counting(grid: Grid, codes: list[str], geometries: np.ndarray) -> ZonalWeights:
        seen.append(1)
        return real(grid, codes, geometries)

    monkeypatch.setattr(zonal_cache, "coverage_weights", counting)
    return seen


def test_weights_are_found_by_grid_and_boundary_key_without_hashing_geometry(tmp_path: Path, built: list[int]) -> None:
    cache = tmp_path / "cache"
    first = cached_weights(cache, GRID, CODES, GEOMS, boundary_key="k1")
    # Each village covers 2 x 2 half-degree cells whole: eight weights of 1.
    assert first.fraction.tolist() == [1.0] * 8
    zonal_cache._MEMORY.clear()  # a new process: from the file
    again = cached_weights(cache, GRID, CODES, GEOMS, boundary_key="k1")
    assert again.cells.tolist() == first.cells.tolist()
    assert len(built) == 1
    # Another boundary set (a changed file has another key), or another grid: built again, in its own file.
    cached_weights(cache, GRID, CODES, GEOMS, boundary_key="k2")
    cached_weights(cache, Grid((0.25, 0.0, 112.0, 0.0, -0.25, -7.0), (4, 8)), CODES, GEOMS, boundary_key="k1")
    assert len(built) == 3
    assert len(list(cache.glob("zonal-*.npz"))) == 3


def test_a_cached_file_for_other_codes_is_rebuilt(tmp_path: Path, built: list[int]) -> None:
    cache = tmp_path / "cache"
    cached_weights(cache, GRID, CODES, GEOMS, boundary_key="k1")
    zonal_cache._MEMORY.clear()
    # The same key handed other villages (never by a region; a guard): the file's codes do not match.
    other = cached_weights(cache, GRID, CODES[::-1], GEOMS[::-1], boundary_key="k1")
    assert other.codes.tolist() == CODES[::-1]
    assert len(built) == 2


def test_without_a_boundary_key_the_geometry_is_the_key(tmp_path: Path, built: list[int]) -> None:
    cached_weights(tmp_path, GRID, CODES, GEOMS)
    moved = np.array([GEOMS[0], box(113.0, -8.0, 114.0, -7.5)], dtype=object)
    changed = cached_weights(tmp_path, GRID, CODES, moved)
    assert changed.fraction.sum() == pytest.approx(6.0)  # the second village lost half its cells
    assert len(built) == 2

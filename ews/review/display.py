"""Village geometry simplified for the maps, once per boundary set, and the region's outline (pure).

A national boundary set (84,000 villages of ~100 vertices) is far finer than any map of it: at the scale of
the whole country a pixel is ~7 km and a village a few pixels. :func:`display_geometry` simplifies every
village once at a few tolerances (:data:`TOLERANCES`, Douglas-Peucker) and dissolves the villages into one
outline of the region (:data:`OUTLINE_TOLERANCE`); :meth:`DisplayGeometry.for_view` then hands a map the
coarsest level that is still finer than its view needs (the HTML page's own simplification, 1/2000 of the
view), or the full geometry for a view small enough that nothing coarse would do. :mod:`ews.store.display_cache`
keeps the result on disk beside the zonal weights.

A village that a tolerance would simplify away (a sliver, a small island) keeps its finer shape: every
village stays drawable at every level.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry.base import BaseGeometry

__all__ = [
    "DISPLAY_FORMAT",
    "OUTLINE_TOLERANCE",
    "TOLERANCES",
    "VIEW_DIVISOR",
    "DisplayGeometry",
    "Geometries",
    "GeometryColumn",
    "Simplified",
    "display_geometry",
    "display_levels",
    "lazy_display",
    "region_outline",
]

DISPLAY_FORMAT = "ews-display-1"
"""Bump when the levels, the outline or their meaning change: a cache of another format is rebuilt."""

TOLERANCES = (1e-4, 1e-3, 1e-2)
"""Degrees (about 11 m, 110 m and 1.1 km): the levels of detail kept per village."""

OUTLINE_TOLERANCE = 1e-3
"""Degrees: the dissolved outline is made from this level and simplified at this tolerance."""

VIEW_DIVISOR = 2000.0
"""A view ``span`` degrees across needs detail down to ``span / VIEW_DIVISOR`` (the HTML map's simplification)."""

_HOLE_SHARE = 4.0  # holes of the outline smaller than (4 x tolerance)^2 are gaps between simplified villages


class GeometryColumn(Protocol):
    """One level of detail: a geometry per village, of which a map takes the rows it draws."""

    def take(self, rows: NDArray[np.int64]) -> NDArray[np.object_]:
        """The geometries of ``rows`` (positions in the set's codes)."""
        ...


@dataclass(frozen=True)
class Geometries:
    """A level held as shapely geometries (as computed); a cache may hold its levels as WKB and decode on take."""

    values: NDArray[np.object_]

    def take(self, rows: NDArray[np.int64]) -> NDArray[np.object_]:
        """The geometries of ``rows``."""
        return np.asarray(self.values[rows], dtype=object)


@dataclass(frozen=True)
class Simplified:
    """A level simplified when taken, only for the rows a map draws (no cache folder to keep every level in)."""

    values: NDArray[np.object_]
    tolerance: float

    def take(self, rows: NDArray[np.int64]) -> NDArray[np.object_]:
        """The geometries of ``rows`` simplified at :attr:`tolerance` (a vanishing one keeps its shape)."""
        return _simplified(np.asarray(self.values[rows], dtype=object), self.tolerance)


@dataclass(frozen=True)
class DisplayGeometry:
    """A boundary set's villages at each level of :data:`TOLERANCES`, and its dissolved outline (EPSG:4326).

    ``levels[i]`` holds one geometry per code, in the order of ``codes``; ``outline_of`` makes the outline
    (called once, when a map first needs it: :attr:`outline`).
    """

    codes: NDArray[np.str_]
    levels: tuple[GeometryColumn, ...]
    outline_of: Callable[[], BaseGeometry]

    @property
    def outline(self) -> BaseGeometry:
        """The region's dissolved, simplified outline (:func:`region_outline`)."""
        found: BaseGeometry | None = self.__dict__.get("_outline")
        if found is None:
            found = self.outline_of()
            object.__setattr__(self, "_outline", found)  # a cache of a frozen value: set once
        return found

    def level_for(self, span: float) -> int | None:
        """The coarsest level finer than a view ``span`` degrees across needs; ``None``: the full geometry."""
        fine_enough = [i for i, tol in enumerate(TOLERANCES) if tol <= span / VIEW_DIVISOR]
        return fine_enough[-1] if fine_enough else None

    def for_view(self, codes: Sequence[str], span: float) -> NDArray[np.object_] | None:
        """The geometry of ``codes`` (any order, all in the set) for a view ``span`` degrees across.

        ``None`` when the view needs the full geometry (or a code is not in the set).
        """
        level = self.level_for(span)
        if level is None:
            return None
        index = self._index()
        try:
            rows = np.fromiter((index[c] for c in codes), dtype=np.int64, count=len(codes))
        except KeyError:
            return None
        return self.levels[level].take(rows)

    def _index(self) -> dict[str, int]:
        found: dict[str, int] | None = self.__dict__.get("_by_code")
        if found is None:
            found = {str(c): i for i, c in enumerate(self.codes)}
            object.__setattr__(self, "_by_code", found)  # a cache of a frozen value: set once
        return found


def _drawable(geometries: NDArray[np.object_]) -> NDArray[np.bool_]:
    return np.asarray(
        ~shapely.is_empty(geometries)
        & (shapely.area(geometries) > 0)
        & np.isin(shapely.get_type_id(geometries), (3, 6)),  # Polygon, MultiPolygon
        dtype=bool,
    )


def display_levels(geometries: NDArray[np.object_]) -> list[NDArray[np.object_]]:
    """Every village simplified at each of :data:`TOLERANCES` (one geometry array per tolerance).

    A village that would vanish at a level (empty, no area) keeps its shape of the level below.
    """
    finer = np.asarray(geometries, dtype=object)
    levels: list[NDArray[np.object_]] = []
    for tolerance in TOLERANCES:
        finer = _simplified(finer, tolerance)
        levels.append(finer)
    return levels


def _simplified(geometries: NDArray[np.object_], tolerance: float) -> NDArray[np.object_]:
    simple = np.asarray(shapely.simplify(geometries, tolerance, preserve_topology=False), dtype=object)
    keep = _drawable(simple)
    simple[~keep] = geometries[~keep]
    return simple


def region_outline(levels: Sequence[NDArray[np.object_]]) -> BaseGeometry:
    """The villages' dissolved outline, simplified at :data:`OUTLINE_TOLERANCE`, from :func:`display_levels`.

    A morphological closing of the :data:`OUTLINE_TOLERANCE` level: every village grown by twice the
    tolerance, the union, shrunk back. Real boundaries are not noded edge to edge (neighbours overlap and
    leave hairline gaps), which makes a plain union slow (7-14 s for Jawa Timur's 8,492 villages) and full of
    slivers; grown, they overlap cleanly (0.8 s). Straits narrower than four tolerances (~440 m) close up,
    far below a pixel of any map the outline is drawn on.
    """
    base = np.asarray(levels[TOLERANCES.index(OUTLINE_TOLERANCE)], dtype=object)
    reach = 2 * OUTLINE_TOLERANCE
    grown = shapely.buffer(base[_drawable(base)], reach, quad_segs=1, join_style="mitre")
    closed = shapely.buffer(shapely.union_all(grown), -reach, quad_segs=1, join_style="mitre")
    return _outline(closed, OUTLINE_TOLERANCE)


def display_geometry(codes: Sequence[str], geometries: NDArray[np.object_]) -> DisplayGeometry:
    """Simplify every village at each of :data:`TOLERANCES` and dissolve them into the region's outline.

    Parameters
    ----------
    codes : sequence of str
        Village codes, one per geometry.
    geometries : numpy.ndarray of shapely geometries
        Polygons or MultiPolygons in EPSG:4326 (lon, lat), as the maps draw them.

    Returns
    -------
    DisplayGeometry
        The levels (a village that would vanish at a level keeps its shape of the level below) and the
        outline (:func:`region_outline`).
    """
    levels = display_levels(geometries)
    outline = region_outline(levels)
    return DisplayGeometry(np.asarray([str(c) for c in codes]), tuple(Geometries(a) for a in levels), lambda: outline)


def lazy_display(codes: Sequence[str], geometries: NDArray[np.object_]) -> DisplayGeometry:
    """:func:`display_geometry` computed as a map needs it: the rows it draws, the outline when drawn.

    For a process without a cache folder: a regional map pays ~0.1 s for the villages it draws instead of
    simplifying the whole set (and the outline, seconds) on every run.
    """
    source = np.asarray(geometries, dtype=object)

    def outline() -> BaseGeometry:
        level = _simplified(source, OUTLINE_TOLERANCE)
        return region_outline([level if t == OUTLINE_TOLERANCE else source for t in TOLERANCES])

    levels = tuple(Simplified(source, t) for t in TOLERANCES)
    return DisplayGeometry(np.asarray([str(c) for c in codes]), levels, outline)


def _outline(union: BaseGeometry, tolerance: float) -> BaseGeometry:
    """``union`` without its small holes (gaps between villages simplified apart), each part simplified.

    A part that ``tolerance`` would simplify away (a small island) is kept as it is.
    """
    smallest = (_HOLE_SHARE * tolerance) ** 2
    parts = []
    for part in shapely.get_parts(union):
        if part.geom_type != "Polygon":
            continue
        holes = [ring for ring in part.interiors if shapely.Polygon(ring).area >= smallest]
        parts.append(shapely.Polygon(part.exterior, holes))
    if not parts:
        return shapely.MultiPolygon()
    whole = np.array(parts, dtype=object)
    simple = np.asarray(shapely.simplify(whole, tolerance, preserve_topology=False), dtype=object)
    keep = _drawable(simple)
    simple[~keep] = whole[~keep]  # a small island stays on the map, at its finer shape
    return shapely.MultiPolygon(list(shapely.get_parts(simple)))

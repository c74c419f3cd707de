"""Exact zonal statistics of a raster per village, through a cached sparse weight matrix (pure).

A village's statistics need the fraction of each grid cell its polygon covers. ews computes those
fractions **exactly** (as exactextract does), not by cell centres: a village smaller than a cell still
gets its share of the cells it touches, and a cell on a village border is split by area.

How (:func:`coverage_weights`): every ring of every polygon is taken into grid space (one unit per cell)
and each edge is cut at every grid line it crosses, so that each piece lies in one cell. For a simple
ring, the area of the polygon inside cell ``(i, j)`` is the signed sum, over the pieces in column
``j``, of the area between each piece and the bottom of the cell: ``du * (i + 1 - v_mid)`` for pieces
in row ``i`` and ``du`` (a full cell height) for pieces in the rows above. The second term is an
exclusive cumulative sum down each column of each polygon's bounding box. Everything is vectorised with
numpy over all polygons of a chunk; there is no per-polygon Python loop. Holes are rings with the
opposite orientation and subtract themselves; multipolygon parts add up.

The result, :class:`ZonalWeights`, is a CSR matrix (villages x grid cells) of coverage fractions. It
depends only on the grid and the boundary set, so it is built once per (grid, boundaries) pair and
cached (see :func:`boundary_weights_key` and :func:`weights_key`); each new raster then costs one gather
and a few reductions over the non-zero weights (:func:`zonal_stats`).

Fractions are planar in the raster's own coordinates (degrees for the lon/lat rainfall grids), like
exactextract's: a cell's area changes by well under 0.1 % across one village at Indonesia's latitudes.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray

from ews.errors import RasterError

# Vertices per vectorised chunk: bounds the temporary arrays (~60 MB). 2,000,000 took 0.45 GB more at national
# scale and was slower (5.2 s vs 3.2 s for 84,000 villages: the arrays fall out of the CPU caches).
_CHUNK_VERTICES = 250_000


@dataclass(frozen=True)
class Grid:
    """A regular north-up grid: rasterio Affine ``(a, b, c, d, e, f)`` with ``b = d = 0`` and ``e < 0``.

    ``x = c + a * (col + 0.5)`` and ``y = f + e * (row + 0.5)`` are cell centres; ``shape`` is
    ``(rows, cols)``.
    """

    transform: tuple[float, float, float, float, float, float]
    shape: tuple[int, int]
    crs: str = "EPSG:4326"

    def __post_init__(self) -> None:
        a, b, _, d, e, _ = self.transform
        if b != 0 or d != 0 or a <= 0 or e >= 0:
            raise RasterError(
                f"grid transform {self.transform} is not a regular north-up grid (need a > 0, b = d = 0, e < 0); "
                "flip or warp the raster first"
            )
        if self.shape[0] <= 0 or self.shape[1] <= 0:
            raise RasterError(f"grid shape {self.shape} is empty")

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(west, south, east, north)`` of the whole grid."""
        a, _, c, _, e, f = self.transform
        rows, cols = self.shape
        return (c, f + e * rows, c + a * cols, f)

    def key(self) -> str:
        """A stable text key of the grid (transform rounded to 1e-12, shape and CRS)."""
        parts = [f"{v:.12g}" for v in self.transform] + [str(n) for n in self.shape] + [self.crs]
        return ",".join(parts)


@dataclass(frozen=True)
class ZonalWeights:
    """Coverage fractions of grid cells per village, as CSR arrays.

    Row ``k`` (village ``codes[k]``) holds ``fraction[indptr[k]:indptr[k+1]]`` for the cells whose flat
    indices (``row * cols + col`` in ``grid``) are ``cells[indptr[k]:indptr[k+1]]``, in ascending order.
    ``cell_area`` is each village's covered area in cells (``sum`` of its fractions).
    """

    grid: Grid
    codes: NDArray[np.str_]
    indptr: NDArray[np.int64]
    cells: NDArray[np.int64]
    fraction: NDArray[np.float64]

    @property
    def nnz(self) -> int:
        """Number of (village, cell) pairs with a positive fraction."""
        return int(self.cells.size)

    @functools.cached_property
    def cell_area(self) -> NDArray[np.float64]:
        """Sum of coverage fractions per village (its area in cells)."""
        return _row_sums(self.fraction, self.indptr)

    def to_arrays(self) -> dict[str, NDArray[np.generic]]:
        """Plain arrays for an ``.npz`` cache file (see :meth:`from_arrays`)."""
        return {
            "transform": np.asarray(self.grid.transform, dtype=np.float64),
            "shape": np.asarray(self.grid.shape, dtype=np.int64),
            "crs": np.asarray(self.grid.crs),
            "codes": self.codes,
            "indptr": self.indptr,
            "cells": self.cells,
            "fraction": self.fraction,
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, NDArray[np.generic]]) -> ZonalWeights:
        """Rebuild weights from :meth:`to_arrays` output (e.g. a loaded ``.npz``)."""
        t = [float(v) for v in arrays["transform"]]
        grid = Grid(
            transform=(t[0], t[1], t[2], t[3], t[4], t[5]),
            shape=(int(arrays["shape"][0]), int(arrays["shape"][1])),
            crs=str(arrays["crs"]),
        )
        return cls(
            grid=grid,
            codes=np.asarray(arrays["codes"]).astype(str),
            indptr=np.asarray(arrays["indptr"], dtype=np.int64),
            cells=np.asarray(arrays["cells"], dtype=np.int64),
            fraction=np.asarray(arrays["fraction"], dtype=np.float64),
        )


def weights_key(grid: Grid, codes: Sequence[str], geometries: NDArray[np.object_]) -> str:
    """A cache key for (grid, boundary set): SHA-256 over the grid and every village's code and WKB.

    The key for villages that come from no boundary file (tests, a table built in memory); a region's
    villages are keyed by their boundary set instead (:func:`boundary_weights_key`), which does not hash
    every vertex on every run (0.36 s a run at 84,000 villages).
    """
    digest = hashlib.sha256(grid.key().encode())
    for code, wkb in zip(codes, shapely.to_wkb(geometries, hex=False), strict=True):
        digest.update(str(code).encode())
        digest.update(wkb)
    return digest.hexdigest()


def boundary_weights_key(grid: Grid, boundary_key: str) -> str:
    """A cache key for (grid, boundary set) from the boundary set's own key.

    ``boundary_key`` names the villages as read from their boundary files: the prepared villages' key
    (:func:`ews.store.region_cache.village_key`, a SHA-256 over the files' bytes, the fields read and the
    format), already computed once per run, so the weights' key costs nothing more.
    """
    return hashlib.sha256(f"zonal-weights-v1|{grid.key()}|{boundary_key}".encode()).hexdigest()


def _row_sums(values: NDArray[np.floating], indptr: NDArray[np.int64]) -> NDArray[np.float64]:
    """Sum of each CSR row (0 for an empty row)."""
    return _reduce(np.add, values, indptr, 0.0)


def _rings(geometries: NDArray[np.object_]) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]]:
    """Coordinates of every ring, oriented (exteriors counter-clockwise, holes clockwise).

    Returns the coordinates, the ring index of each coordinate, and the geometry index of each ring.
    """
    oriented = shapely.orient_polygons(geometries, exterior_cw=False)
    parts, part_owner = shapely.get_parts(oriented, return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    coords, ring_of_coord = shapely.get_coordinates(rings, return_index=True)
    return coords, ring_of_coord.astype(np.int64), part_owner[ring_part].astype(np.int64)


def coverage_weights(
    grid: Grid, codes: Sequence[str], geometries: NDArray[np.object_], *, allow_outside: bool = False
) -> ZonalWeights:
    """Exact coverage fraction of every grid cell by every village polygon.

    Parameters
    ----------
    grid
        The raster's grid (north-up).
    codes
        Village codes, one per geometry (kept in order).
    geometries
        Polygons or MultiPolygons in the grid's CRS (lon/lat for the rainfall grids).
    allow_outside
        Accept villages that reach beyond the grid (their outside part is dropped). By default such
        a grid is refused: statistics of a half-covered village would look like real values.

    Returns
    -------
    ZonalWeights
        One CSR row per village, in the order given; a village smaller than a cell has one or a few
        entries with fractions that sum to its area in cells.

    Raises
    ------
    RasterError
        The grid does not cover every village (the message names how many and a few codes), or a
        geometry is not polygonal.
    """
    geoms = np.asarray(geometries, dtype=object)
    n = len(geoms)
    if len(codes) != n:
        raise ValueError(f"{len(codes)} codes for {n} geometries")
    kinds = shapely.get_type_id(geoms)
    bad = np.flatnonzero(~np.isin(kinds, (3, 6)))  # Polygon, MultiPolygon
    if bad.size:
        raise RasterError(f"village {codes[bad[0]]}: geometry is not a polygon; repair the boundary file")
    west, south, east, north = grid.bounds
    b = shapely.bounds(geoms)
    outside = np.flatnonzero((b[:, 0] < west) | (b[:, 1] < south) | (b[:, 2] > east) | (b[:, 3] > north))
    if outside.size and not allow_outside:
        sample = ", ".join(str(codes[i]) for i in outside[:5])
        raise RasterError(
            f"the raster grid ({west:.4f}..{east:.4f} E, {south:.4f}..{north:.4f} N) does not cover "
            f"{outside.size} of {n} villages (e.g. {sample}); use a raster that covers the whole region"
        )
    rows_n, cols_n = grid.shape
    a, _, c, _, e, f = grid.transform

    owners_all: list[NDArray[np.int64]] = []
    cells_all: list[NDArray[np.int64]] = []
    fracs_all: list[NDArray[np.float64]] = []
    # Chunks of whole geometries, bounded by vertex count.
    counts = shapely.get_num_coordinates(geoms)
    start = 0
    while start < n:
        stop = start + 1
        total = int(counts[start])
        while stop < n and total + int(counts[stop]) <= _CHUNK_VERTICES:
            total += int(counts[stop])
            stop += 1
        coords, ring_of, ring_owner = _rings(geoms[start:stop])
        u = (coords[:, 0] - c) / a
        v = (coords[:, 1] - f) / e  # rows grow downwards (e < 0)
        owner, cells, frac = _chunk_weights(u, v, ring_of, ring_owner, stop - start, rows_n, cols_n)
        owners_all.append(owner + start)
        cells_all.append(cells)
        fracs_all.append(frac)
        start = stop

    owner = np.concatenate(owners_all) if owners_all else np.empty(0, np.int64)
    cells = np.concatenate(cells_all) if cells_all else np.empty(0, np.int64)
    frac = np.concatenate(fracs_all) if fracs_all else np.empty(0, np.float64)
    order = np.lexsort((cells, owner))
    owner, cells, frac = owner[order], cells[order], frac[order]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(owner, minlength=n), out=indptr[1:])
    return ZonalWeights(grid=grid, codes=np.asarray(codes).astype(str), indptr=indptr, cells=cells, fraction=frac)


def _chunk_weights(
    u: NDArray[np.float64],
    v: NDArray[np.float64],
    ring_of: NDArray[np.int64],
    ring_owner: NDArray[np.int64],
    n_geoms: int,
    rows_n: int,
    cols_n: int,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """Coverage fractions for the polygons of one chunk (grid-space coordinates ``u`` right, ``v`` down)."""
    # Edges: consecutive coordinates of the same ring (rings are closed, so no wrap-around is needed).
    same = ring_of[1:] == ring_of[:-1]
    u0, v0, u1, v1 = u[:-1][same], v[:-1][same], u[1:][same], v[1:][same]
    edge_owner = ring_owner[ring_of[:-1][same]]

    # Cut every edge where it crosses an integer u (column line) or v (row line).
    def crossings(p0: NDArray[np.float64], p1: NDArray[np.float64]) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        lo, hi = np.minimum(p0, p1), np.maximum(p0, p1)
        first = np.floor(lo) + 1.0
        count = np.maximum(np.ceil(hi) - first, 0).astype(np.int64)  # integers k with lo < k < hi
        edge = np.repeat(np.arange(p0.size, dtype=np.int64), count)
        offsets = np.arange(edge.size, dtype=np.int64) - np.repeat(np.cumsum(count) - count, count)
        k = first[edge] + offsets
        t = (k - p0[edge]) / (p1[edge] - p0[edge])
        return edge, t

    eu, tu = crossings(u0, u1)
    ev, tv = crossings(v0, v1)
    n_edges = u0.size
    edge_ids = np.concatenate([np.arange(n_edges), eu, ev, np.arange(n_edges)])
    ts = np.concatenate([np.zeros(n_edges), tu, tv, np.ones(n_edges)])
    order = np.lexsort((ts, edge_ids))
    edge_ids, ts = edge_ids[order], ts[order]
    # Pieces between consecutive cut points of the same edge.
    keep = edge_ids[1:] == edge_ids[:-1]
    pe = edge_ids[:-1][keep]
    ta, tb = ts[:-1][keep], ts[1:][keep]
    du_e, dv_e = u1 - u0, v1 - v0
    ua, ub = u0[pe] + ta * du_e[pe], u0[pe] + tb * du_e[pe]
    va, vb = v0[pe] + ta * dv_e[pe], v0[pe] + tb * dv_e[pe]
    du = ub - ua  # vertical pieces add nothing to the areas but still mark their cell as crossed
    umid, vmid = 0.5 * (ua + ub), 0.5 * (va + vb)
    col = np.floor(umid).astype(np.int64)
    row = np.floor(vmid).astype(np.int64)
    owner = edge_owner[pe]

    # Bounding box of each geometry in cells, and a column-major flat index inside it.
    r0 = np.full(n_geoms, np.iinfo(np.int64).max)
    r1 = np.full(n_geoms, -1, dtype=np.int64)
    c0 = np.full(n_geoms, np.iinfo(np.int64).max)
    c1 = np.full(n_geoms, -1, dtype=np.int64)
    np.minimum.at(r0, owner, row)
    np.maximum.at(r1, owner, row)
    np.minimum.at(c0, owner, col)
    np.maximum.at(c1, owner, col)
    present = r1 >= 0
    nrows = np.where(present, r1 - r0 + 1, 0)
    ncols = np.where(present, c1 - c0 + 1, 0)
    size = nrows * ncols
    base = np.cumsum(size) - size
    total = int(size.sum())
    flat = base[owner] + (col - c0[owner]) * nrows[owner] + (row - r0[owner])
    own_part = np.bincount(flat, weights=du * (row + 1.0 - vmid), minlength=total)
    below = np.bincount(flat, weights=du, minlength=total)
    # Exclusive cumulative sum of `below` down each column segment of each bounding box.
    cum = np.cumsum(below)
    excl = cum - below
    seg_len = np.repeat(nrows, ncols)  # one segment per (geometry, column)
    seg_start = np.cumsum(seg_len) - seg_len
    seg_base = np.repeat(excl[seg_start], seg_len)
    # Orientation: exterior rings are counter-clockwise in (x, y); with rows growing downwards the
    # signed integral above comes out negative for them.
    area = -(own_part + excl - seg_base)
    # A cell no edge passes through is wholly inside or outside: its value is a whole number up to
    # rounding, so round it (overlapping parts of a MultiPolygon may count twice: clipped below).
    # Cells an edge crosses keep their exact share, down to slivers of 1e-15 cell (exactextract keeps
    # any positive share too; rounding noise here is around 1e-16).
    crossed = np.bincount(flat, minlength=total) > 0
    area = np.where(crossed, area, np.rint(area))
    # A boundary piece of positive length strictly inside a cell means the village's interior meets
    # that cell, however little (exactextract lists such cells too, down to 1e-22): keep them for
    # max/min even when their share rounds to nothing. Pieces along a grid line prove nothing.
    through = ((ub != ua) | (vb != va)) & (umid != np.floor(umid)) & (vmid != np.floor(vmid))
    touched = np.bincount(flat[through], minlength=total) > 0

    # Map each bounding-box slot back to (geometry, row, col).
    slot_owner = np.repeat(np.arange(n_geoms, dtype=np.int64), size)
    local = np.arange(total, dtype=np.int64) - np.repeat(base, size)
    slot_col = c0[slot_owner] + local // np.maximum(nrows[slot_owner], 1)
    slot_row = r0[slot_owner] + local % np.maximum(nrows[slot_owner], 1)
    inside = ((area > 1e-15) | touched) & (slot_row >= 0) & (slot_row < rows_n) & (slot_col >= 0) & (slot_col < cols_n)
    fraction = np.clip(area[inside], 0.0, 1.0)
    return slot_owner[inside], slot_row[inside] * cols_n + slot_col[inside], fraction


STAT_NAMES = ("mean", "max", "min", "sum", "count", "valid_fraction")


@dataclass(frozen=True)
class StatRequest:
    """One statistic to compute per village.

    ``mean``, ``max``, ``min``, ``sum``, ``count`` (cells touched), ``valid_fraction``, or ``frac_above``
    with a ``threshold`` (share of the village's valid area where value >= threshold).
    """

    name: str
    threshold: float | None = None

    @property
    def column(self) -> str:
        """The output column name (``frac_above_20`` for ``frac_above:20``)."""
        if self.threshold is None:
            return self.name
        return f"{self.name}_{self.threshold:g}"


def parse_stats(text: str) -> list[StatRequest]:
    """Parse ``"mean,max,frac_above:20"`` into requests; raise ValueError naming a bad entry."""
    out: list[StatRequest] = []
    for raw in (p.strip() for p in text.split(",")):
        if not raw:
            continue
        name, _, arg = raw.partition(":")
        if name == "frac_above":
            try:
                threshold = float(arg)
            except ValueError:
                raise ValueError(f"statistic {raw!r}: frac_above needs a number, e.g. frac_above:20") from None
            if not math.isfinite(threshold):
                raise ValueError(f"statistic {raw!r}: the threshold must be finite")
            out.append(StatRequest(name, threshold))
        elif name in STAT_NAMES and not arg:
            out.append(StatRequest(name))
        else:
            raise ValueError(f"unknown statistic {raw!r}; use {', '.join(STAT_NAMES)} or frac_above:<value>")
    if not out:
        raise ValueError("no statistic requested; e.g. --stats mean,max,frac_above:20")
    return out


def _reduce(op: np.ufunc, values: NDArray[np.floating], indptr: NDArray[np.int64], empty: float) -> NDArray[np.float64]:
    """``op`` over each CSR row; ``empty`` for rows without entries (``reduceat`` alone would misfile them)."""
    counts = np.diff(indptr)
    if values.size and bool((counts > 0).all()):
        return np.asarray(op.reduceat(values, indptr[:-1]), dtype=np.float64)
    out = np.full(counts.size, empty, dtype=np.float64)
    nonempty = counts > 0
    if values.size and nonempty.any():
        out[nonempty] = op.reduceat(values, indptr[:-1][nonempty])
    return out


def zonal_stats(
    weights: ZonalWeights, values: NDArray[np.floating], stats: Sequence[StatRequest]
) -> dict[str, NDArray[np.float64]]:
    """Statistics of one raster band per village, in one pass over the non-zero weights.

    Parameters
    ----------
    weights
        Coverage fractions for the raster's grid (:func:`coverage_weights`).
    values
        The band, shape ``weights.grid.shape``; NaN marks missing cells (convert nodata first).
    stats
        What to compute (:func:`parse_stats`).

    Returns
    -------
    dict
        Column name -> one value per village (``weights.codes`` order). ``mean`` is the
        coverage-weighted mean over valid cells (exactextract's ``mean``); ``max``/``min`` are over
        valid cells the village touches; ``frac_above_T`` is the covered share of valid area with
        value >= T; ``valid_fraction`` the share of the village's area that has data. A village with
        no valid cell gets NaN (never 0: missing rain is not "no rain").
    """
    if values.shape != weights.grid.shape:
        raise RasterError(f"raster band of shape {values.shape} does not match the weights' grid {weights.grid.shape}")
    v = values.reshape(-1)[weights.cells]  # the one gather; stays in the raster's dtype
    indptr = weights.indptr
    missing = np.isnan(v)
    if missing.any():
        w = np.where(missing, 0.0, weights.fraction)
        v0 = np.where(missing, v.dtype.type(0), v)
        valid_area = _row_sums(w, indptr)
    else:
        w, v0, valid_area = weights.fraction, v, weights.cell_area
    no_data = valid_area <= 0.0
    out: dict[str, NDArray[np.float64]] = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        for req in stats:
            if req.name == "mean":
                out[req.column] = np.where(no_data, np.nan, _row_sums(w * v0, indptr) / valid_area)
            elif req.name == "sum":
                out[req.column] = np.where(no_data, np.nan, _row_sums(w * v0, indptr))
            elif req.name == "max":
                out[req.column] = _reduce(np.fmax, v, indptr, np.nan)  # fmax skips NaN
            elif req.name == "min":
                out[req.column] = _reduce(np.fmin, v, indptr, np.nan)
            elif req.name == "count":
                out[req.column] = np.diff(indptr).astype(np.float64)
            elif req.name == "valid_fraction":
                total = weights.cell_area
                out[req.column] = np.where(total > 0, valid_area / total, np.nan)
            elif req.name == "frac_above":
                assert req.threshold is not None  # noqa: S101 - parse_stats guarantees it
                hit = _row_sums(np.where(v0 >= req.threshold, w, 0.0), indptr)
                out[req.column] = np.where(no_data, np.nan, hit / valid_area)
            else:
                raise ValueError(f"unknown statistic {req.name!r}")
    return out


def exposed_people(population: NDArray[np.float64], frac_above: NDArray[np.float64]) -> NDArray[np.float64]:
    """People exposed above a threshold: population x share of the village's area above it.

    Population is taken as spread evenly over the village (ews has no gridded population); NaN where
    either is unknown.
    """
    return np.asarray(population, dtype=np.float64) * np.asarray(frac_above, dtype=np.float64)

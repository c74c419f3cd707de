"""Fraction of each village covered by a hazard polygon, in an equal-area projection (pure)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from shapely.geometry.base import BaseGeometry

# WGS 84 / NSIDC EASE-Grid 2.0 Global: cylindrical equal-area, accurate for areas at Indonesia's
# latitudes (within 11 degrees of the equator) and valid for the whole archipelago in one CRS.
EQUAL_AREA = "EPSG:6933"
WGS84 = "EPSG:4326"


class ProjectedVillages:
    """The villages' polygons in :data:`EQUAL_AREA`, prepared, and their spatial index: made when first asked for.

    ``source`` is the array itself or what makes it (a cache's reader): a cycle that asks no overlap question
    (a raster run: its zonal weights are cached) never decodes the polygons, nor holds them in memory. Shared by
    the layers of one boundary set, so they are made at most once.
    """

    def __init__(self, source: NDArray[np.object_] | Callable[[], NDArray[np.object_]]) -> None:
        self._source = source
        self._geometries: NDArray[np.object_] | None = None
        self._tree: shapely.STRtree | None = None

    @property
    def geometries(self) -> NDArray[np.object_]:
        """The projected polygons (prepared), in the table's order."""
        if self._geometries is None:
            found = self._source() if callable(self._source) else self._source
            shapely.prepare(found)
            self._geometries, self._source = found, found
        return self._geometries

    @property
    def tree(self) -> shapely.STRtree:
        """An STRtree over :attr:`geometries`."""
        if self._tree is None:
            self._tree = shapely.STRtree(self.geometries)
        return self._tree

    @property
    def loaded(self) -> bool:
        """Whether the polygons have been made (for tests and benchmarks)."""
        return self._geometries is not None


@dataclass(frozen=True)
class VillageLayer:
    """Villages prepared once per run for many overlap queries.

    ``table`` keeps the attributes in EPSG:4326; ``projected`` holds the same polygons in
    :data:`EQUAL_AREA` (metres), ``area_km2`` their areas and ``tree`` a spatial index over them; both are
    made when first used (:class:`ProjectedVillages`).
    """

    table: gpd.GeoDataFrame
    prepared: ProjectedVillages
    area_km2: NDArray[np.float64]

    @property
    def projected(self) -> NDArray[np.object_]:
        """The polygons in :data:`EQUAL_AREA` (metres), prepared."""
        return self.prepared.geometries

    @property
    def tree(self) -> shapely.STRtree:
        """A spatial index over :attr:`projected`."""
        return self.prepared.tree

    def with_table(self, table: gpd.GeoDataFrame) -> VillageLayer:
        """The same villages (same order) with another attribute table; the projected polygons are shared."""
        return VillageLayer(table, self.prepared, self.area_km2)

    @classmethod
    def from_villages(cls, villages: gpd.GeoDataFrame) -> VillageLayer:
        """Project ``villages`` (EPSG:4326, column ``code``) and index them."""
        if villages.crs is None or not villages.crs.equals(WGS84):
            raise ValueError("villages must be in EPSG:4326 (lon, lat); reproject with to_crs('EPSG:4326')")
        projected = villages.geometry.to_crs(EQUAL_AREA).values.to_numpy()
        return cls(
            table=villages.reset_index(drop=True),
            prepared=ProjectedVillages(projected),
            area_km2=shapely.area(projected) / 1e6,
        )


def to_equal_area(geometry: BaseGeometry) -> BaseGeometry:
    """Project one EPSG:4326 geometry into :data:`EQUAL_AREA`."""
    return gpd.GeoSeries([geometry], crs=WGS84).to_crs(EQUAL_AREA).iloc[0]


def village_coverage(layer: VillageLayer, hazard: BaseGeometry) -> pd.DataFrame:
    """How much of each village a hazard polygon covers.

    Parameters
    ----------
    layer
        Villages prepared by :meth:`VillageLayer.from_villages`.
    hazard
        Hazard area in EPSG:4326 (lon, lat), e.g. the union of a warning's polygons.

    Returns
    -------
    pandas.DataFrame
        One row per village the hazard touches with positive area: ``index`` (row in ``layer.table``),
        ``code``, ``name``, ``fraction`` (covered area / village area, 0-1), ``area_km2`` (village)
        and ``covered_km2``; largest fraction first, ties by code.
    """
    empty = pd.DataFrame(
        {"index": pd.Series(dtype=int), "code": pd.Series(dtype=str), "name": pd.Series(dtype=str),
         "fraction": pd.Series(dtype=float), "area_km2": pd.Series(dtype=float),
         "covered_km2": pd.Series(dtype=float)}
    )  # fmt: skip
    if hazard.is_empty:
        return empty
    shape = to_equal_area(hazard)
    shapely.prepare(shape)
    candidates = layer.tree.query(shape, predicate="intersects")
    if len(candidates) == 0:
        return empty
    # Villages wholly inside the hazard need no intersection: their covered area is their area.
    inside = set(layer.tree.query(shape, predicate="contains").tolist())
    covered = np.empty(len(candidates))
    partial = np.array([i not in inside for i in candidates], dtype=bool)
    covered[~partial] = layer.area_km2[candidates[~partial]]
    if partial.any():
        pieces = shapely.intersection(layer.projected[candidates[partial]], shape)
        covered[partial] = shapely.area(pieces) / 1e6
    area = layer.area_km2[candidates]
    fraction = np.clip(np.divide(covered, area, out=np.zeros_like(covered), where=area > 0), 0.0, 1.0)
    table = layer.table
    out = pd.DataFrame(
        {
            "index": candidates,
            "code": table["code"].to_numpy()[candidates],
            "name": table["name"].to_numpy()[candidates],
            "fraction": fraction,
            "area_km2": area,
            "covered_km2": covered,
        }
    )
    out = out[out["covered_km2"] > 0]
    return out.sort_values(["fraction", "code"], ascending=[False, True], kind="stable").reset_index(drop=True)

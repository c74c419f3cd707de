"""Read administrative boundaries (GeoJSON, GeoPackage, Shapefile, GeoParquet) into a villages table."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely

from ews.codes import code_level, normalize_code, parent_code
from ews.errors import BoundaryError

SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".parquet", ".geoparquet")
WGS84 = "EPSG:4326"


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in SUFFIXES)
        if not files:
            raise BoundaryError(
                f"{path}: folder holds no boundary file ({', '.join(SUFFIXES)}); point 'boundaries.path' at one"
            )
        return files
    if not path.exists():
        raise BoundaryError(f"{path}: boundary file not found; check 'boundaries.path' or --boundaries")
    return [path]


def _read_one(file: Path, layer: str | None) -> gpd.GeoDataFrame:
    try:
        if file.suffix.lower() in (".parquet", ".geoparquet"):
            frame = gpd.read_parquet(file)
        else:
            frame = gpd.read_file(file, layer=layer, engine="pyogrio")
    except Exception as exc:  # pyogrio/arrow raise many types; all mean "cannot read this file"
        raise BoundaryError(f"{file}: cannot read as a boundary file: {exc}") from exc
    return frame


def read_boundaries(
    path: str | Path,
    *,
    id_field: str = "kode",
    name_field: str = "nama",
    layer: str | None = None,
    keep: tuple[str, ...] = (),
) -> gpd.GeoDataFrame:
    """Read boundary polygons into a table keyed by Kemendagri code.

    Parameters
    ----------
    path
        A boundary file, or a folder whose boundary files are concatenated.
    id_field, name_field
        Fields holding the Kemendagri code and the name.
    layer
        Layer of a multi-layer file (GeoPackage).
    keep
        Other fields to carry along (for example a population column).

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``code`` (dotted string), ``name``, ``level`` (1-4), ``province``, ``kabkota`` (level >= 2),
        ``kecamatan`` (level >= 3), the ``keep`` fields and ``geometry`` in EPSG:4326 (lon, lat), with
        invalid geometries repaired. ``attrs["repaired"]`` lists the codes whose geometry was repaired.

    Raises
    ------
    BoundaryError
        A file is missing or unreadable, lacks the id or name field, holds a code that is not a
        Kemendagri code or a duplicate code, or a geometry that cannot be repaired into a polygon.
    """
    root = Path(path)
    frames = []
    for file in _files(root):
        frame = _read_one(file, layer)
        for field in (id_field, name_field, *keep):
            if field not in frame.columns:
                available = ", ".join(c for c in frame.columns if c != "geometry")
                raise BoundaryError(
                    f"{file}: has no field '{field}' (fields: {available}); set id_field/name_field to one of them"
                )
        if frame.crs is None:
            raise BoundaryError(f"{file}: has no coordinate reference system; save it with one (EPSG:4326)")
        frame = frame.to_crs(WGS84) if not frame.crs.equals(WGS84) else frame
        codes = []
        for row, raw in enumerate(frame[id_field]):
            try:
                codes.append(normalize_code(raw))
            except ValueError as exc:
                raise BoundaryError(f"{file}: feature {row}, field '{id_field}': {exc}") from None
        table = gpd.GeoDataFrame(
            {"code": codes, "name": frame[name_field].astype(str).str.strip(), **{k: frame[k] for k in keep}},
            geometry=frame.geometry.values,
            crs=WGS84,
        )
        table.attrs["files"] = [str(file)]
        frames.append(table)
    villages = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    villages = gpd.GeoDataFrame(villages, geometry="geometry", crs=WGS84)
    duplicated = villages["code"][villages["code"].duplicated()]
    if len(duplicated):
        raise BoundaryError(f"{root}: duplicate codes {', '.join(sorted(set(duplicated))[:10])}; each area once")
    return _with_parents(_repaired(villages, root))


def _repaired(villages: gpd.GeoDataFrame, root: Path) -> gpd.GeoDataFrame:
    geoms = villages.geometry.values
    missing = villages["code"][villages.geometry.isna() | shapely.is_empty(geoms)]
    if len(missing):
        raise BoundaryError(f"{root}: no geometry for {', '.join(missing[:10])}; fix or remove these features")
    invalid = ~shapely.is_valid(geoms)
    repaired: list[str] = []
    if invalid.any():
        fixed = shapely.make_valid(geoms[invalid])
        # make_valid may return a collection with stray lines: keep the polygonal part only.
        fixed = [_polygonal(g) for g in fixed]
        bad = [c for c, g in zip(villages["code"][invalid], fixed, strict=True) if g is None]
        if bad:
            raise BoundaryError(f"{root}: geometry of {', '.join(bad[:10])} cannot be repaired into a polygon")
        villages = villages.copy()
        villages.loc[invalid, "geometry"] = fixed
        repaired = list(villages["code"][invalid])
    villages.attrs["repaired"] = repaired
    return villages


def _polygonal(geom: shapely.Geometry) -> shapely.Geometry | None:
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    if geom.geom_type == "GeometryCollection":
        parts = [g for g in geom.geoms if g.geom_type in ("Polygon", "MultiPolygon") and not g.is_empty]
        if parts:
            return shapely.union_all(parts)
    return None


def _with_parents(villages: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    levels = villages["code"].map(code_level)
    villages = villages.assign(
        level=levels,
        province=villages["code"].map(lambda c: parent_code(c, 1)),
        kabkota=[parent_code(c, 2) if lv >= 2 else "" for c, lv in zip(villages["code"], levels, strict=True)],
        kecamatan=[parent_code(c, 3) if lv >= 3 else "" for c, lv in zip(villages["code"], levels, strict=True)],
    )
    return villages

"""Read administrative boundaries (GeoJSON, GeoPackage, Shapefile, GeoParquet) into a villages table.

Every file is checked before it is used: it must hold polygons (not a point or line layer), have a
coordinate reference system, and, once reprojected to EPSG:4326, lie within Indonesia
(:data:`ews.ingest.bmkg_cap.INDONESIA_BBOX`). A file whose coordinates do not match the CRS it declares
(a GeoJSON ``crs`` member saying UTM over lon/lat coordinates, metres with no ``crs`` member, swapped
lat/lon) is refused with what was found and what to do, instead of yielding villages in Antarctica.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS

from ews.codes import code_level, normalize_code, parent_code
from ews.errors import BoundaryError, DataValidationError
from ews.ingest.bmkg_cap import INDONESIA_BBOX

SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".parquet", ".geoparquet")
SHAPEFILE_SIDECARS = (".dbf", ".shx", ".prj", ".cpg")
WGS84 = "EPSG:4326"
POLYGONAL = ("Polygon", "MultiPolygon")


def _files(path: Path, option: str = "boundaries.path") -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in SUFFIXES)
        if not files:
            raise BoundaryError(
                f"{path}: folder holds no boundary file ({', '.join(SUFFIXES)}); point '{option}' at one"
            )
        return files
    if not path.exists():
        flag = " or --boundaries" if option == "boundaries.path" else ""
        raise BoundaryError(f"{path}: boundary file not found; check '{option}'{flag}")
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
    option: str = "boundaries.path",
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
    option
        The region-file key that gave ``path``, named in the errors' hints.

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
    for file in _files(root, option):
        frame = _read_one(file, layer)
        for field in (id_field, name_field, *keep):
            if field not in frame.columns:
                available = ", ".join(c for c in frame.columns if c != "geometry")
                key = "id_field/name_field" if option == "boundaries.path" else f"'{option}_id_field'"
                raise BoundaryError(f"{file}: has no field '{field}' (fields: {available}); set {key} to one of them")
        if not len(frame):
            raise BoundaryError(f"{file}: holds no features; point '{option}' at the areas' polygons")
        codes = []
        for row, raw in enumerate(frame[id_field]):
            try:
                codes.append(normalize_code(raw))
            except ValueError as exc:
                raise BoundaryError(f"{file}: feature {row}, field '{id_field}': {exc}") from None
        _check_polygonal(file, frame, codes, layer)
        raw_bounds = frame.geometry.bounds.to_numpy()
        if frame.crs is None:
            hint = " (the coordinates look like lon/lat)" if _in_indonesia(_total(raw_bounds)) else ""
            raise BoundaryError(
                f"{file}: has no coordinate reference system; save it with the one its coordinates are in{hint}, "
                "e.g. EPSG:4326"
            )
        source_crs = CRS.from_user_input(frame.crs)
        frame = frame.to_crs(WGS84) if not frame.crs.equals(WGS84) else frame
        _check_extent(file, frame, codes, raw_bounds, source_crs)
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


def list_boundary_files(path: str | Path, *, option: str = "boundaries.path") -> list[Path]:
    """Every file a boundary set is made of: the file (or a folder's boundary files) and shapefiles' sidecars.

    A shapefile's attributes (the codes, the names) and CRS live in its sidecar files: they count too.

    Raises
    ------
    BoundaryError
        The file or folder is missing, or the folder holds no boundary file.
    """
    files = _files(Path(path), option)
    sidecars = [f.with_suffix(s) for f in files if f.suffix.lower() == ".shp" for s in SHAPEFILE_SIDECARS]
    return [*files, *(f for f in sidecars if f.exists())]


def digest_boundaries(path: str | Path, *, option: str = "boundaries.path") -> str:
    """SHA-256 over the bytes of the boundary file (or of each boundary file of a folder, in the order read).

    A shapefile's sidecar files (``.dbf``, ``.shx``, ``.prj``, ``.cpg``) are hashed with it.

    The key of the prepared village table cached per boundary set (:mod:`ews.store.region_cache`): a changed,
    added or removed file changes it.

    Raises
    ------
    BoundaryError
        The file or folder is missing, the folder holds no boundary file, or a file cannot be read.
    """
    digest = hashlib.sha256()
    for file in list_boundary_files(path, option=option):
        try:
            with file.open("rb") as handle:
                one = hashlib.file_digest(handle, "sha256")
        except OSError as exc:
            raise BoundaryError(f"{file}: cannot read the boundary file ({exc.strerror}); check '{option}'") from None
        digest.update(file.name.encode() + b"\0" + one.digest())
    return digest.hexdigest()


LAND_OPTION = "earthquake.land"


def list_land_files(paths: Sequence[str | Path]) -> list[Path]:
    """The boundary files of ``earthquake.land``: each path a file, or a folder whose boundary files count.

    Raises
    ------
    BoundaryError
        A path does not exist, or a folder holds no boundary file (the message names it).
    """
    return [file for path in paths for file in _files(Path(path), LAND_OPTION)]


def digest_land_files(files: Sequence[Path]) -> str:
    """SHA-256 over the bytes of each land file, in order: the land's part of the coast cache key.

    Raises
    ------
    BoundaryError
        A file cannot be read (the message names it).
    """
    digest = hashlib.sha256()
    for file in files:
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise BoundaryError(f"{file}: cannot read the land file ({exc.strerror}); check '{LAND_OPTION}'") from None
        digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()


def read_land(files: Sequence[Path], *, id_field: str = "kode") -> gpd.GeoDataFrame:
    """Read the polygons of the land around a region (``earthquake.land``), one table for all files.

    Each file is checked as :func:`read_boundaries` checks a boundary file (polygons, a CRS, within
    Indonesia, a Kemendagri code in ``id_field``); the code lets the region's own areas be told apart
    from its neighbours'. A code may recur across files (the same province at two levels).

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``code`` and ``geometry`` (EPSG:4326); ``attrs["files"]`` lists the files.

    Raises
    ------
    BoundaryError
        A file is missing, unreadable or not usable as boundaries; the message names it and the key.
    """
    frames = []
    for file in files:
        try:
            table = read_boundaries(file, id_field=id_field, name_field=id_field, option=LAND_OPTION)
        except BoundaryError as exc:
            raise BoundaryError(f"{LAND_OPTION}: {exc}") from None
        frames.append(table[["code", "geometry"]])
    if not frames:
        land = gpd.GeoDataFrame({"code": pd.Series(dtype=str)}, geometry=gpd.GeoSeries([], crs=WGS84), crs=WGS84)
    else:
        land = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=WGS84)
    land.attrs["files"] = [str(f) for f in files]
    return land


def _check_polygonal(file: Path, frame: gpd.GeoDataFrame, codes: list[str], layer: str | None) -> None:
    """Refuse a point or line layer, and the non-polygon features of a mixed one."""
    kinds = frame.geometry.geom_type
    present = kinds.notna().to_numpy()
    bad = present & ~kinds.isin(POLYGONAL).to_numpy()
    if not bad.any():
        return
    if bad.sum() == present.sum():
        found = sorted(set(kinds[bad]))
        what = (
            "point"
            if all("Point" in k for k in found)
            else "line"
            if all("Line" in k for k in found)
            else "non-polygon"
        )
        where = ""
        if file.suffix.lower() == ".gpkg":
            polygon_layers = [str(name) for name, kind in _layers(file) if kind and "polygon" in str(kind).lower()]
            where = (
                f"; polygon layers in this file: {', '.join(polygon_layers)} (set boundaries.layer)"
                if polygon_layers
                else "; this file has no polygon layer"
            )
        layer_note = f" (layer {layer})" if layer else ""
        raise BoundaryError(
            f"{file}{layer_note}: a {what} layer ({', '.join(found)}), not polygons: boundaries must be the "
            f"areas' polygons (Polygon or MultiPolygon), not their centroids or outlines{where}"
        )
    first = int(np.flatnonzero(bad)[0])
    raise BoundaryError(
        f"{file}: {int(bad.sum())} of {len(frame)} features are not polygons (e.g. {codes[first]}: "
        f"{kinds.iloc[first]}); remove them or replace them by the areas' polygons"
    )


def _layers(file: Path) -> list[tuple[object, object]]:
    try:
        return [(name, kind) for name, kind in pyogrio.list_layers(file)]
    except Exception:  # only a hint for the message: a file that lists no layers has none to suggest
        return []


def _total(bounds: np.ndarray) -> tuple[float, float, float, float]:
    """The total (minx, miny, maxx, maxy) of per-feature bounds, ignoring features without geometry."""
    if not len(bounds) or np.isnan(bounds).all():
        return (np.nan, np.nan, np.nan, np.nan)
    return (
        float(np.nanmin(bounds[:, 0])),
        float(np.nanmin(bounds[:, 1])),
        float(np.nanmax(bounds[:, 2])),
        float(np.nanmax(bounds[:, 3])),
    )


def _in_indonesia(bounds: tuple[float, float, float, float]) -> bool:
    west, south, east, north = INDONESIA_BBOX
    minx, miny, maxx, maxy = bounds
    return bool(np.isfinite(bounds).all() and minx >= west and maxx <= east and miny >= south and maxy <= north)


def _number(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.2f}"


def _span(bounds: tuple[float, float, float, float]) -> str:
    minx, miny, maxx, maxy = bounds
    if not np.isfinite(bounds).all():
        return "not finite (the coordinates cannot be placed on the Earth in this CRS)"
    return f"{_number(minx)}..{_number(maxx)}, {_number(miny)}..{_number(maxy)}"


def _diagnosis(file: Path, raw: tuple[float, float, float, float], crs: CRS) -> str:
    """Why coordinates ``raw`` (as read, in ``crs``) may have missed Indonesia, and what to do."""
    minx, miny, maxx, maxy = raw
    name = f"{crs.to_string()} ({crs.name})"
    geojson = file.suffix.lower() in (".geojson", ".json")
    if crs.is_projected and _in_indonesia(raw):
        fix = "remove the 'crs' member (GeoJSON is lon/lat by definition)" if geojson else "set its CRS to EPSG:4326"
        return f"the file says {name} but the coordinates look like lon/lat: {fix}"
    if _in_indonesia((miny, minx, maxy, maxx)):
        return "the coordinates look like lat, lon (swapped): write them as lon, lat"
    if crs.is_geographic and np.isfinite(raw).all() and max(abs(minx), abs(maxx), abs(miny), abs(maxy)) > 360:
        why = ", as a GeoJSON without a 'crs' member is" if geojson else ""
        return (
            f"the coordinates look projected (metres) but the file is read as {name}{why}: reproject the file "
            "to EPSG:4326, or save it with the CRS its coordinates are in (e.g. EPSG:32749, UTM zone 49S)"
        )
    return f"check the file's coordinate reference system: it says {name}; it must be the one its coordinates are in"


def _check_extent(file: Path, frame: gpd.GeoDataFrame, codes: list[str], raw_bounds: np.ndarray, crs: CRS) -> None:
    """Refuse features that, reprojected to EPSG:4326, fall outside Indonesia (a wrong or lying CRS)."""
    west, south, east, north = INDONESIA_BBOX
    bounds = frame.geometry.bounds.to_numpy()
    located = ~np.isnan(raw_bounds).any(axis=1)  # features without geometry are reported by _repaired
    with np.errstate(invalid="ignore"):
        inside = (
            np.isfinite(bounds).all(axis=1)
            & (bounds[:, 0] >= west)
            & (bounds[:, 2] <= east)
            & (bounds[:, 1] >= south)
            & (bounds[:, 3] <= north)
        )
    outside = located & ~inside
    if not outside.any():
        return
    box = f"Indonesia (lon {west:g}..{east:g}, lat {south:g}..{north:g})"
    raw = _total(raw_bounds[outside])
    found = _total(bounds[outside])
    read = f"coordinates {_span(raw)} read as {crs.to_string()}"
    if not crs.equals(WGS84):
        read += f" (in EPSG:4326: {_span(found)})"
    if outside.sum() == located.sum():
        raise BoundaryError(f"{file}: {read} are outside {box}; {_diagnosis(file, raw, crs)}")
    first = int(np.flatnonzero(outside)[0])
    raise BoundaryError(
        f"{file}: {int(outside.sum())} of {len(frame)} features lie outside {box}, e.g. {codes[first]} "
        f"({read}); {_diagnosis(file, raw, crs)}, or remove those features"
    )


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


def read_area_names(paths: Sequence[Path]) -> dict[str, str]:
    """``code -> name`` from the region's ``area_names`` CSV files (columns ``code`` and ``name``).

    Raises
    ------
    DataValidationError
        A file cannot be read or lacks the columns.
    """
    names: dict[str, str] = {}
    for path in paths:
        try:
            with path.open(newline="", encoding="utf-8") as handle:
                reader = csv.DictReader(handle)
                if not {"code", "name"} <= set(reader.fieldnames or []):
                    raise DataValidationError(f"{path}: area names need columns 'code' and 'name'")
                names.update((row["code"].strip(), row["name"].strip()) for row in reader)
        except OSError as exc:
            raise DataValidationError(f"{path}: cannot read area names ({exc.strerror})") from None
    return names

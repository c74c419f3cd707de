"""A GeoJSON FeatureCollection of a table, written in one pass: the village file of a national cycle in a second.

GDAL's GeoJSON driver (``to_file(driver="GeoJSON")``) formats every coordinate one by one: ~3 s for the 16,000
leveled villages of a national rain cycle (~100 vertices each, 83 MB), paid every cycle whose levels changed.
Here the geometries are encoded by GEOS in one vectorised call (:func:`shapely.to_geojson`) and the properties by
pandas' JSON encoder (one call for all rows), then joined: the same FeatureCollection (RFC 7946, WGS 84
longitude/latitude, GDAL's ``name`` and CRS84 ``crs`` members, one feature per line, ``null`` for a missing
value or geometry) in about a fifth of the time. A table in another CRS goes through GDAL, which knows how to
say so.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import TextIO

import geopandas as gpd
import shapely

from ews.store.artifacts import write_text_atomic

__all__ = ["write_geojson"]

_CHUNK = 2000
_CRS84 = '{ "type": "name", "properties": { "name": "urn:ogc:def:crs:OGC:1.3:CRS84" } }'


def write_geojson(path: Path, frame: gpd.GeoDataFrame, *, name: str, staged: bool = False) -> None:
    """Write ``frame`` as a GeoJSON FeatureCollection named ``name`` (the layer name GDAL would give).

    ``staged``: ``path`` is inside an :func:`ews.store.artifacts.atomic_folder` staging folder, so it is written
    plainly (the folder swap makes it durable); otherwise it is written atomically (a temporary file, fsync,
    rename). Properties keep their columns' order and JSON types (numbers with 15 decimals, ``true``/``false``,
    ``null`` for NaN/None/NA, times in ISO 8601); text is UTF-8, not escaped.
    """
    if frame.crs is not None and not frame.crs.equals("EPSG:4326"):
        frame.to_file(path, driver="GeoJSON", engine="pyogrio")
        return
    if staged:
        with path.open("w", encoding="utf-8") as out:
            _write(out, frame, name)
    else:
        buffer = io.StringIO()
        _write(buffer, frame, name)
        write_text_atomic(path, buffer.getvalue())


def _write(out: TextIO, frame: gpd.GeoDataFrame, name: str) -> None:
    # By chunks of rows: a national file is ~80 MB of text, never held whole (nor its parts) when staged.
    out.write(f'{{\n"type": "FeatureCollection",\n"name": {json.dumps(name, ensure_ascii=False)},\n"crs": {_CRS84},\n')
    out.write('"features": [\n')
    geometry = frame.geometry.name
    first = True
    for start in range(0, len(frame), _CHUNK):
        part = frame.iloc[start : start + _CHUNK]
        shapes = shapely.to_geojson(part.geometry.to_numpy())
        table = part.drop(columns=[geometry])
        if len(table.columns):
            lines = table.to_json(
                orient="records", lines=True, double_precision=15, force_ascii=False, date_format="iso"
            )
            # One record per "\n" (pandas escapes it in values); not splitlines(): a name may hold U+2028 or
            # U+0085, which JSON keeps as they are and splitlines() would cut at.
            records = lines.rstrip("\n").split("\n")
        else:
            records = ["{}"] * len(part)
        features = ",\n".join(
            f'{{ "type": "Feature", "properties": {p}, "geometry": {"null" if g is None else g} }}'
            for p, g in zip(records, shapes, strict=True)
        )
        out.write(features if first else ",\n" + features)
        first = False
    out.write("\n]\n}\n")

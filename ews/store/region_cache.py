"""A region's villages prepared once per boundary set and cached on disk: a run does not re-read nor re-project them.

Reading a national boundary file and projecting its 84,000 polygons to equal area costs seconds per run; the
prepared table (codes, names, kecamatan and kab/kota, the fields kept such as a population column, the geometry in
EPSG:4326, the projected geometry and the area) is written once as an Arrow IPC (Feather v2) file with GeoParquet's
``geo`` metadata and WKB geometry, uncompressed, so that it is memory-mapped rather than decoded (Parquet's page
decoding alone costs 0.5-1 s at 84,000 villages; ``geopandas.read_feather`` reads it too). It sits in the cache
folder the zonal weights use, named after a SHA-256 over the boundary files' bytes and the fields read
(:func:`ews.ingest.boundaries.digest_boundaries`). A changed boundary file gets a new
key, so a stale table is never used. The first read of a boundary set goes through
:func:`ews.ingest.boundaries.read_boundaries` and its checks; the codes of repaired geometries are kept in the cache,
so every run still names them. Files are written atomically; a file that cannot be read is rebuilt, not trusted.
The projected polygons are decoded only when a cycle first asks an overlap question
(:class:`ews.exposure.coverage.ProjectedVillages`): a raster cycle, whose zonal weights are cached, never holds
them (about 220 MB at 84,000 villages).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]  # no stubs (pyproject lists no override)
import pyproj
import shapely
from numpy.typing import NDArray

from ews.errors import BoundaryError
from ews.exposure.coverage import EQUAL_AREA, WGS84, ProjectedVillages, VillageLayer
from ews.ingest.boundaries import digest_boundaries, list_boundary_files, read_boundaries
from ews.store.artifacts import write_text_atomic

log = logging.getLogger(__name__)
FORMAT = "ews-villages-1"  # bump when the cached columns or their meaning change
_META = b"ews"
_PROJECTED, _AREA = "_projected_wkb", "_area_km2"
_BATCH = 10_000  # rows per record batch of the cache file
_MEMORY: dict[str, tuple[gpd.GeoDataFrame, ProjectedVillages, NDArray[np.float64]]] = {}
_MEMORY_MAX = 4  # per process: a worker keeps the prepared region between cycles
_DIGESTS: dict[str, tuple[list[list[object]], str]] = {}  # boundary path -> (its files' stats, their digest)


@dataclass(frozen=True)
class PreparedVillages:
    """A region's villages ready for overlap queries, and where they came from.

    ``layer.table`` is :func:`ews.ingest.boundaries.read_boundaries`'s table (``attrs["repaired"]`` included);
    ``key`` the boundary set's cache key; ``cached`` whether it was read from the cache (memory or disk).
    """

    layer: VillageLayer
    key: str
    cached: bool


def village_key(
    path: str | Path,
    *,
    id_field: str,
    name_field: str,
    layer: str | None,
    keep: tuple[str, ...],
    cache_dir: Path | None = None,
) -> str:
    """The cache key of a boundary set read with these fields: its files' digest, the fields and the format.

    The GEOS and PROJ versions count too: they make the repaired geometries and the projection. The files'
    digest is remembered (in memory and in ``cache_dir``) with each file's size, times and inode, and the bytes
    are hashed again only when one of these changed (any write moves a file's status-change time).

    Raises
    ------
    BoundaryError
        The boundary file or folder is missing or unreadable.
    """
    fields = json.dumps([FORMAT, id_field, name_field, layer, list(keep), shapely.geos_version_string,
                         pyproj.proj_version_str])  # fmt: skip
    return hashlib.sha256(f"{_digest(Path(path), cache_dir)}\0{fields}".encode()).hexdigest()


def _stats(path: Path) -> list[list[object]] | None:
    """(file, size, mtime_ns, ctime_ns, inode) of each file of the boundary set; None if one cannot be read."""
    try:
        files = list_boundary_files(path)
        return [[str(f), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino] for f in files for st in [f.stat()]]
    except (OSError, BoundaryError):
        return None  # digest_boundaries says what is wrong


def _digest(path: Path, cache_dir: Path | None) -> str:
    name = str(path.resolve())
    stats = _stats(path)
    known = _DIGESTS.get(name)
    if stats is not None and known is not None and known[0] == stats:
        return known[1]
    record = cache_dir / f"boundary-digest-{hashlib.sha256(name.encode()).hexdigest()[:16]}.json" if cache_dir else None
    if stats is not None and record is not None and record.is_file():
        try:
            saved = json.loads(record.read_text(encoding="utf-8"))
            if saved["path"] == name and saved["stats"] == stats and isinstance(saved["digest"], str):
                _DIGESTS[name] = (stats, saved["digest"])
                return str(saved["digest"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("boundary digest record %s is unreadable (%s); hashing the files again", record, exc)
    digest = digest_boundaries(path)
    if stats is None or stats != _stats(path):  # changed while hashed: remember nothing
        return digest
    _DIGESTS[name] = (stats, digest)
    if record is not None:
        write_text_atomic(record, json.dumps({"path": name, "stats": stats, "digest": digest}))
    return digest


def open_villages(
    cache_dir: Path | None,
    path: str | Path,
    *,
    id_field: str = "kode",
    name_field: str = "nama",
    layer: str | None = None,
    keep: tuple[str, ...] = (),
) -> PreparedVillages:
    """The villages of a boundary set, projected and indexed: from memory, then ``cache_dir``, else read and saved.

    ``cache_dir=None`` keeps them in memory only (for this process).

    Raises
    ------
    BoundaryError
        The boundaries cannot be used (see :func:`ews.ingest.boundaries.read_boundaries`); nothing is cached then.
    """
    key = village_key(path, id_field=id_field, name_field=name_field, layer=layer, keep=keep, cache_dir=cache_dir)
    found = _MEMORY.get(key)
    if found is not None:
        table, prepared, area = found
        return PreparedVillages(VillageLayer(_copy(table), prepared, area), key, cached=True)
    file = cache_dir / f"villages-{key[:32]}.arrow" if cache_dir is not None else None
    loaded = _load(file, key) if file is not None and file.is_file() else None
    if loaded is None:
        table = read_boundaries(path, id_field=id_field, name_field=name_field, layer=layer, keep=keep)
        table = table.reset_index(drop=True)
        fresh = _project(table.geometry.to_numpy())
        area = shapely.area(fresh) / 1e6
        # Saved: the projected polygons are read back from the file when asked for, like a later run's (a cold
        # cycle does not hold them beside everything else it builds).
        if file is not None and _save(file, key, table, fresh, area):
            prepared = ProjectedVillages(functools.partial(_projected, file, key, len(table)))
        else:
            prepared = ProjectedVillages(fresh)
        del fresh
    else:
        table, prepared, area = loaded
    if len(_MEMORY) >= _MEMORY_MAX:
        _MEMORY.pop(next(iter(_MEMORY)))
    _MEMORY[key] = (table, prepared, area)
    return PreparedVillages(VillageLayer(_copy(table), prepared, area), key, cached=loaded is not None)


def _project(outlines: NDArray[np.object_]) -> NDArray[np.object_]:
    """The outlines in the equal-area projection, a batch at a time.

    The same coordinates as one ``to_crs`` of them all, without the whole table's coordinate arrays in memory at
    once (~450 MB nationally).
    """
    out = np.empty(len(outlines), dtype=object)
    for start in range(0, len(outlines), _BATCH):
        part = gpd.GeoSeries(outlines[start : start + _BATCH], crs=WGS84).to_crs(EQUAL_AREA)
        out[start : start + _BATCH] = part.values.to_numpy()
    return out


def _copy(table: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """A copy the caller may change (the geometries themselves are immutable and shared)."""
    out = table.copy(deep=True)
    out.attrs = {k: list(v) if isinstance(v, list) else v for k, v in table.attrs.items()}
    return out


def _save(
    file: Path, key: str, table: gpd.GeoDataFrame, projected: NDArray[np.object_], area: NDArray[np.float64]
) -> bool:
    """Write the cache file; ``False`` (with a warning) when the table cannot be cached.

    Written by batches of rows: the outlines' WKB (geographic and projected, ~140 MB each nationally) are made
    and written a batch at a time, never the whole table's at once beside the polygons themselves (a cold cycle's
    memory peak was here: +750 MB).
    """
    geometry = table.geometry.name
    try:
        fields = pa.Table.from_pandas(pd.DataFrame(table.drop(columns=[geometry])), preserve_index=False)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        # e.g. a kept field mixing numbers and text: the run goes on uncached, and says why.
        log.warning("boundary cache: %s cannot be written as Arrow (%s); it is read from the file each run", file, exc)
        return False
    # attrs hold the repaired codes (and the files read): named on every run, cached or not.
    meta = {"key": key, "format": FORMAT, "rows": len(table), "columns": list(map(str, table.columns)),
            "attrs": dict(table.attrs)}  # fmt: skip
    try:
        text = json.dumps(meta)
    except TypeError as exc:
        log.warning("boundary cache: %s not written (%s); the boundaries are read from the file each run", file, exc)
        return False
    schema = fields.schema
    for name, kind in (("geometry", pa.binary()), (_PROJECTED, pa.binary()), (_AREA, pa.float64())):
        schema = schema.append(pa.field(name, kind))
    schema = schema.with_metadata({**(fields.schema.metadata or {}), _META: text.encode()})
    outlines = table.geometry.to_numpy()
    file.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=file.name, suffix=".tmp", dir=file.parent)
    try:
        with os.fdopen(fd, "wb") as handle, pa.ipc.new_file(handle, schema) as writer:
            for start in range(0, len(table), _BATCH):
                rows = slice(start, start + _BATCH)
                columns = [
                    *fields.slice(start, _BATCH).columns,
                    pa.chunked_array([pa.array(shapely.to_wkb(outlines[rows]), type=pa.binary())]),
                    pa.chunked_array([pa.array(shapely.to_wkb(projected[rows]), type=pa.binary())]),
                    pa.chunked_array([pa.array(area[rows], type=pa.float64())]),
                ]
                writer.write_table(pa.Table.from_arrays(columns, schema=schema))
        os.replace(tmp, file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def _load(file: Path, key: str) -> tuple[gpd.GeoDataFrame, ProjectedVillages, NDArray[np.float64]] | None:
    try:
        # Memory-mapped: the columns are read in place (the buffers keep the mapping alive), not decoded.
        arrow = pa.ipc.open_file(pa.memory_map(str(file), "r")).read_all()
        meta = json.loads((arrow.schema.metadata or {})[_META])
        if meta.get("key") != key or meta.get("format") != FORMAT or meta.get("rows") != arrow.num_rows:
            log.warning("boundary cache %s does not match its key; rebuilding it", file)
            return None
        area = arrow.column(_AREA).to_numpy().astype(np.float64)
        geometry = shapely.from_wkb(arrow.column("geometry").to_numpy(zero_copy_only=False))
        frame = arrow.drop_columns(["geometry", _PROJECTED, _AREA]).to_pandas()
    except (OSError, ValueError, KeyError, TypeError, pa.ArrowException, shapely.errors.ShapelyError) as exc:
        log.warning("boundary cache %s is unreadable (%s); rebuilding it", file, exc)
        return None
    table = gpd.GeoDataFrame(frame.assign(geometry=geometry)[meta["columns"]], geometry="geometry", crs=WGS84)
    table.attrs = dict(meta["attrs"])
    return table, ProjectedVillages(functools.partial(_projected, file, key, len(table))), area


def _projected(file: Path, key: str, rows: int) -> NDArray[np.object_]:
    """The projected polygons of a cache file, read when a cycle first asks an overlap question.

    The file is the one :func:`_load` checked; were it replaced since (another process rebuilt the same key's
    cache), its key and rows are checked again, and a mismatch is an error, never other villages' polygons.
    """
    arrow = pa.ipc.open_file(pa.memory_map(str(file), "r")).read_all()
    meta = json.loads((arrow.schema.metadata or {})[_META])
    if meta.get("key") != key or arrow.num_rows != rows:
        raise BoundaryError(f"boundary cache {file} changed while in use; run again (it is rebuilt if damaged)")
    found: NDArray[np.object_] = shapely.from_wkb(arrow.column(_PROJECTED).to_numpy(zero_copy_only=False))
    return found

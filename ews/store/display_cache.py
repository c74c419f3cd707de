"""The maps' display geometry cached on disk per boundary set, so a run does not simplify 84,000 villages (edge).

:func:`ews.review.display.display_geometry` (villages simplified at a few tolerances, the region's dissolved
outline) costs seconds at national scale and depends only on the boundary set. It is kept in memory per
process and in ``cache_dir`` (the folder of the zonal weights and the prepared villages) as one uncompressed
Arrow IPC file ``display-<key>.arrow``: a ``code`` column and one WKB column per level, the outline's WKB
and the key in the schema metadata. It is memory-mapped on load, not decoded.

The key is the boundary set's (``RegionData.boundary_key``: a SHA-256 over the boundary files' bytes and the
fields read) with :data:`ews.review.display.DISPLAY_FORMAT`, so a changed boundary file or another way of
simplifying never reuses a stale file; a file whose key, format or codes differ, or that cannot be read, is
rebuilt, not trusted. Files are written atomically (a crash leaves the old file or none).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa  # type: ignore[import-untyped]  # no stubs
import shapely
from numpy.typing import NDArray

from ews.review.display import (
    DISPLAY_FORMAT,
    TOLERANCES,
    DisplayGeometry,
    Geometries,
    display_levels,
    lazy_display,
    region_outline,
)

__all__ = ["cached_display"]

log = logging.getLogger(__name__)
_META = b"ews"
_OUTLINE = b"ews-outline"
_MEMORY: dict[str, DisplayGeometry] = {}  # per process: a worker keeps it between cycles
_MEMORY_MAX = 4


def _level_column(i: int) -> str:
    return f"wkb_{i}"


class _StoredLevel:
    """A level as the memory-mapped WKB column of the cache file: only the rows a map draws are decoded."""

    def __init__(self, column: pa.ChunkedArray) -> None:
        self.column = column

    def take(self, rows: NDArray[np.int64]) -> NDArray[np.object_]:
        wkb = self.column.take(pa.array(rows, type=pa.int64())).to_numpy(zero_copy_only=False)
        return np.asarray(shapely.from_wkb(wkb), dtype=object)


def cached_display(
    cache_dir: Path | None, boundary_key: str | None, codes: Sequence[str], geometries: NDArray[np.object_]
) -> DisplayGeometry:
    """The display geometry of the villages, from memory, then ``cache_dir``, else computed (and saved).

    ``boundary_key=None`` (villages from no boundary file) keeps nothing; ``cache_dir=None`` keeps it in memory
    only. Without a file to keep it in, it is computed as the maps need it (:func:`lazy_display`): the villages
    they draw, the outline only when drawn.
    """
    wanted = [str(c) for c in codes]
    if boundary_key is None:
        return lazy_display(wanted, geometries)
    key = hashlib.sha256(f"{DISPLAY_FORMAT}|{boundary_key}".encode()).hexdigest()
    found = _MEMORY.get(key)
    if found is not None and len(found.codes) == len(wanted) and found.codes.tolist() == wanted:
        return found
    file = cache_dir / f"display-{key[:32]}.arrow" if cache_dir is not None else None
    display = _load(file, key, wanted) if file is not None and file.is_file() else None
    if display is None:
        display = _computed(file, key, wanted, geometries) if file is not None else lazy_display(wanted, geometries)
    if len(_MEMORY) >= _MEMORY_MAX:
        _MEMORY.pop(next(iter(_MEMORY)))
    _MEMORY[key] = display
    return display


def _computed(file: Path, key: str, codes: list[str], geometries: NDArray[np.object_]) -> DisplayGeometry:
    levels = display_levels(geometries)
    outline = region_outline(levels)
    _save(file, key, codes, levels, outline)
    return DisplayGeometry(np.asarray(codes), tuple(Geometries(a) for a in levels), lambda: outline)


def _save(file: Path, key: str, codes: list[str], levels: list[NDArray[np.object_]], outline: shapely.Geometry) -> None:
    columns = {"code": pa.array(codes, type=pa.string())}
    for i, level in enumerate(levels):
        columns[_level_column(i)] = pa.array(shapely.to_wkb(level).tolist(), type=pa.binary())
    meta = {"key": key, "format": DISPLAY_FORMAT, "rows": len(codes), "tolerances": list(TOLERANCES)}
    table = pa.table(columns).replace_schema_metadata(
        {_META: json.dumps(meta).encode(), _OUTLINE: shapely.to_wkb(outline)}
    )
    file.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=file.name, suffix=".tmp", dir=file.parent)
    try:
        with os.fdopen(fd, "wb") as handle, pa.ipc.new_file(handle, table.schema) as writer:
            writer.write_table(table)
        os.replace(tmp, file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load(file: Path, key: str, codes: list[str]) -> DisplayGeometry | None:
    try:
        table = pa.ipc.open_file(pa.memory_map(str(file), "r")).read_all()
        metadata = table.schema.metadata or {}
        meta = json.loads(metadata[_META])
        stored = table.column("code").to_pylist()
        if (
            meta.get("key") != key
            or meta.get("format") != DISPLAY_FORMAT
            or meta.get("tolerances") != list(TOLERANCES)
            or stored != codes
        ):
            log.warning("display geometry cache %s does not match its key; rebuilding it", file)
            return None
        levels = tuple(_StoredLevel(table.column(_level_column(i))) for i in range(len(TOLERANCES)))
        outline = shapely.from_wkb(metadata[_OUTLINE])
        if not isinstance(outline, shapely.Geometry):
            raise TypeError(f"outline is {type(outline).__name__}, not a geometry")
    except (OSError, ValueError, KeyError, TypeError, pa.ArrowException, shapely.errors.ShapelyError) as exc:
        log.warning("display geometry cache %s is unreadable (%s); rebuilding it", file, exc)
        return None
    return DisplayGeometry(np.asarray(stored), levels, lambda: outline)

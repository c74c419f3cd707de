"""Zonal weights cached on disk per (grid, boundary set), so a new raster costs one pass (edge).

The key is :func:`ews.exposure.zonal.boundary_weights_key` of the grid and the boundary set's key (the
prepared villages' :func:`ews.store.region_cache.village_key`: a SHA-256 over the boundary files' bytes and
the fields read, computed once per run), else, for villages from no boundary file,
:func:`ews.exposure.zonal.weights_key` (a SHA-256 over the grid and every village's code and geometry, 0.36 s
a run at 84,000 villages); either way a changed boundary file or another grid can never
reuse stale weights, and a loaded file whose grid or codes differ from the request is rebuilt. Files are written
atomically (a crash leaves either the old file or none); a file that cannot be read is rebuilt, not
trusted.
"""

from __future__ import annotations

import logging
import os
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ews.exposure.zonal import Grid, ZonalWeights, boundary_weights_key, coverage_weights, weights_key

log = logging.getLogger(__name__)
_MEMORY: dict[str, ZonalWeights] = {}  # per process: a scheduler worker reuses weights across runs
_MEMORY_MAX = 8


def cached_weights(
    cache_dir: Path | None,
    grid: Grid,
    codes: Sequence[str],
    geometries: NDArray[np.object_],
    *,
    boundary_key: str | None = None,
) -> ZonalWeights:
    """Weights for ``grid`` and the villages, from memory, then ``cache_dir``, else computed and saved.

    ``cache_dir=None`` keeps them in memory only. ``boundary_key`` is the villages' boundary set key
    (``RegionData.boundary_key``); without it the key hashes every geometry.
    """
    key = boundary_weights_key(grid, boundary_key) if boundary_key else weights_key(grid, codes, geometries)
    found = _MEMORY.get(key)
    if found is not None:
        return found
    path = cache_dir / f"zonal-{key[:32]}.npz" if cache_dir is not None else None
    weights: ZonalWeights | None = None
    if path is not None and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as data:
                weights = ZonalWeights.from_arrays({k: data[k] for k in data.files})
            if weights.grid != grid or weights.codes.tolist() != [str(c) for c in codes]:
                log.warning("zonal weights cache %s does not match its key; rebuilding it", path)
                weights = None
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            log.warning("zonal weights cache %s is unreadable (%s); rebuilding it", path, exc)
            weights = None
    if weights is None:
        weights = coverage_weights(grid, codes, geometries)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as fh:
                    np.savez(fh, **weights.to_arrays())  # type: ignore[arg-type]
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
    if len(_MEMORY) >= _MEMORY_MAX:
        _MEMORY.pop(next(iter(_MEMORY)))
    _MEMORY[key] = weights
    return weights

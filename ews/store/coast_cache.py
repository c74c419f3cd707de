"""Coastal village codes cached on disk per boundary set and land, so a scheduled run derives them once (edge).

The key is :func:`ews.hazard.earthquake.coast_key`: a SHA-256 over the derivation's version and
tolerances, every village's code and geometry, and the bytes of the land files, so a changed boundary
file, land file or method can never reuse a stale coast. Files are written atomically (a crash leaves
either the old file or none); a file that cannot be read, or whose key differs, is rebuilt, not trusted.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from ews.store.artifacts import write_text_atomic

log = logging.getLogger(__name__)


class Coast(NamedTuple):
    """Coastal codes, and how many land features were kept and left out as the region's own (None: no land)."""

    codes: frozenset[str]
    land_kept: int | None = None
    land_own: int | None = None


class CachedCoast(NamedTuple):
    """A :class:`Coast` and where it came from: ``"memory"``, ``"disk"`` or ``"computed"``."""

    coast: Coast
    origin: str


_MEMORY: dict[str, Coast] = {}  # per process: a scheduler worker reuses the coast across runs
_MEMORY_MAX = 8


def _optional_int(value: object) -> int | None:
    if value is None or isinstance(value, int):
        return value
    raise ValueError(f"not a count: {value!r}")


def cached_coast(cache_dir: Path | None, key: str, compute: Callable[[], Coast]) -> CachedCoast:
    """The coast for ``key``, from memory, then ``cache_dir``, else ``compute()`` and saved.

    ``cache_dir=None`` keeps it in memory only. An exception from ``compute`` propagates and nothing is
    stored.
    """
    found = _MEMORY.get(key)
    if found is not None:
        return CachedCoast(found, "memory")
    path = cache_dir / f"coast-{key[:32]}.json" if cache_dir is not None else None
    coast: Coast | None = None
    origin = "disk"
    if path is not None and path.is_file():
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            if record.get("key") == key and isinstance(record.get("codes"), list):
                coast = Coast(
                    frozenset(str(c) for c in record["codes"]),
                    _optional_int(record.get("land_kept")),
                    _optional_int(record.get("land_own")),
                )
            else:
                log.warning("coast cache %s does not match its key; rebuilding it", path)
        except (OSError, ValueError, AttributeError) as exc:
            log.warning("coast cache %s is unreadable (%s); rebuilding it", path, exc)
    if coast is None:
        coast = compute()
        origin = "computed"
        if path is not None:
            saved = {"key": key, "codes": sorted(coast.codes), "land_kept": coast.land_kept, "land_own": coast.land_own}
            write_text_atomic(path, json.dumps(saved))
    if len(_MEMORY) >= _MEMORY_MAX:
        _MEMORY.pop(next(iter(_MEMORY)))
    _MEMORY[key] = coast
    return CachedCoast(coast, origin)

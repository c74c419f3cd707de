"""CAP polygon text cached per village outline, in memory and on disk beside the zonal weights (edge).

The ``<polygon>`` texts of a village (:func:`ews.cap.writer.polygon_rings`, about half of each CAP file and
~0.3 ms of Python per village) depend only on its geometry, which changes only with a new boundary file. So
they are computed once per outline: the key is a SHA-1 over :data:`ews.cap.writer.POLYGON_TEXT_VERSION` and
the geometry's WKB, so an edited outline, another boundary edition or a changed writer can never reuse stale
text, and several boundary sets share one file without interfering.

On disk the texts live in one SQLite file in the cache folder, ``cap-polygons-v<version>.sqlite`` (key ->
texts joined by newlines, which polygon text never contains), read only for the villages a cycle renders.
The cache is an optimisation and never a reason to fail a cycle: a file that cannot be opened or is locked
is skipped with a warning (the texts are computed), and a file that is not a SQLite database is replaced.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import shapely
from shapely.geometry.base import BaseGeometry

from ews.cap.areas import AREA_TEXT_VERSION
from ews.cap.writer import POLYGON_TEXT_VERSION

log = logging.getLogger(__name__)

_MEMORY: dict[bytes, tuple[str, ...]] = {}  # per process: a warm worker renders from memory
_MEMORY_MAX = 200_000  # a national boundary set (84,000 villages at ~100 vertices: ~130 MB of text)
_CHUNK = 500  # keys per SELECT (SQLite allows 999 parameters in old builds)
_PREFIX = f"ews.cap.polygons/{POLYGON_TEXT_VERSION}\n".encode()


def polygon_keys(geometries: Sequence[BaseGeometry]) -> list[bytes]:
    """The cache key of each geometry: SHA-1 over the text version and its WKB (one vectorised WKB pass)."""
    wkb = shapely.to_wkb(list(geometries)) if len(geometries) else []
    return [hashlib.sha1(_PREFIX + bytes(b), usedforsecurity=False).digest() for b in wkb]


def cached_polygon_texts(
    cache_dir: Path | None,
    geometries: Sequence[BaseGeometry],
    compute: Callable[[int], Sequence[str]],
) -> list[tuple[str, ...]]:
    """The CAP polygon texts of each geometry: from memory, then ``cache_dir``, else ``compute(i)`` and saved.

    Parameters
    ----------
    cache_dir
        Folder of the disk cache (the zonal weights' cache folder); ``None`` keeps the texts in memory only.
    geometries
        Village outlines, lon/lat.
    compute
        ``compute(i)`` gives the texts of ``geometries[i]`` (``polygon_rings`` naming the village and message in
        its errors); an exception propagates and nothing more is stored.

    Returns
    -------
    list of tuple of str
        One entry per geometry, in order.
    """
    return cached_texts(cache_dir, polygon_keys(geometries), compute)


def area_key(member_keys: Sequence[bytes], max_vertices: int) -> bytes:
    """The cache key of an area alert's polygon texts: its members' outline keys (any order) and the budget."""
    head = f"ews.cap.area/{AREA_TEXT_VERSION}/{max_vertices}\n".encode()
    return hashlib.sha1(head + b"".join(sorted(member_keys)), usedforsecurity=False).digest()


def cached_texts(
    cache_dir: Path | None, keys: Sequence[bytes], compute: Callable[[int], Sequence[str]]
) -> list[tuple[str, ...]]:
    """:func:`cached_polygon_texts` for texts whose keys the caller made (an area's: :func:`area_key`)."""
    found: dict[bytes, tuple[str, ...]] = {k: _MEMORY[k] for k in keys if k in _MEMORY}
    path = cache_dir / f"cap-polygons-v{POLYGON_TEXT_VERSION}.sqlite" if cache_dir is not None else None
    missing = [k for k in dict.fromkeys(keys) if k not in found]
    if path is not None and missing:
        found.update(_read(path, missing))
    new: dict[bytes, tuple[str, ...]] = {}
    for i, key in enumerate(keys):
        if key not in found:
            found[key] = new[key] = tuple(compute(i))
    if path is not None and new:
        _write(path, new)
    for key in keys:
        if key not in _MEMORY:
            if len(_MEMORY) >= _MEMORY_MAX:
                _MEMORY.pop(next(iter(_MEMORY)))
            _MEMORY[key] = found[key]
    return [found[k] for k in keys]


@contextlib.contextmanager
def _database(path: Path) -> Iterator[sqlite3.Connection]:
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=10)
    try:
        connection.execute("PRAGMA journal_mode=WAL")  # readers never wait for another run's writer
        connection.execute("PRAGMA synchronous=NORMAL")  # a lost cache entry is recomputed; no fsync per write
        connection.execute("CREATE TABLE IF NOT EXISTS polygons (key BLOB PRIMARY KEY, texts TEXT NOT NULL)")
        yield connection
    finally:
        connection.close()


def _read(path: Path, keys: Sequence[bytes]) -> dict[bytes, tuple[str, ...]]:
    if not path.is_file():
        return {}
    out: dict[bytes, tuple[str, ...]] = {}
    try:
        with _database(path) as db:
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                for key, texts in db.execute(f"SELECT key, texts FROM polygons WHERE key IN ({marks})", chunk):  # noqa: S608
                    if isinstance(key, bytes) and isinstance(texts, str) and texts:
                        out[key] = tuple(texts.split("\n"))
    except sqlite3.DatabaseError as exc:
        _trouble(path, exc)
        return {}
    return out


def _write(path: Path, texts: dict[bytes, tuple[str, ...]]) -> None:
    try:
        with _database(path) as db, db:
            db.executemany(
                "INSERT OR IGNORE INTO polygons (key, texts) VALUES (?, ?)",
                [(key, "\n".join(value)) for key, value in texts.items()],
            )
    except sqlite3.DatabaseError as exc:
        _trouble(path, exc)


def _trouble(path: Path, exc: sqlite3.DatabaseError) -> None:
    if isinstance(exc, sqlite3.OperationalError):  # locked, read-only, disk full: leave the file alone
        log.warning("CAP polygon cache %s not usable this cycle (%s); polygon texts computed", path, exc)
        return
    log.warning("CAP polygon cache %s is not a readable SQLite file (%s); replacing it", path, exc)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)

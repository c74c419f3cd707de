"""The risk map page of a cycle whose map did not change: the last one's, with the new instant.

An unchanged national cycle drew the same 5 MB page again (1.6-2 s) to change one phrase: "keadaan 3 Des 2026
22:15 WIB", the instant the run judged the warnings at. :func:`write_page` keeps, beside the page, a digest of
everything the page is drawn from except that instant (the villages and their levels, the warning areas, the
title, the rain layer, the outline, the drawing code) and the phrase as written; a cycle with the same digest
whose previous page is still the one listed (inode, size, modification time, as for the village files) writes
that page with the phrase replaced: the same text :func:`ews.review.riskmap.risk_map_html` would render (a test
compares them). Anything else (no manifest, another digest, an edited file, the phrase not found as often as
written) renders the page.
"""

from __future__ import annotations

import hashlib
import html
import json
from dataclasses import replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ews.review import riskmap
from ews.review.riskmap import MapTitle, Outline, RasterLayer, as_of_phrase, risk_map_html
from ews.store.artifacts import file_stat, write_text_atomic

__all__ = ["PAGE", "write_page"]

PAGE = "risk_map.html"
_MANIFEST = "risk_map_page.json"
_FORMAT = "ews-map-page/1"
_CODE: list[str] = []  # the drawing code's digest, once per process


def write_page(
    staging: Path,
    previous: Path | None,
    villages: gpd.GeoDataFrame,
    areas: gpd.GeoDataFrame,
    title: MapTitle,
    *,
    raster: RasterLayer | None = None,
    outline: Outline | None = None,
) -> bool:
    """Write ``staging/risk_map.html`` (and its manifest); ``True`` when it is the previous page, re-dated.

    The arguments are :func:`ews.review.riskmap.risk_map_html`'s; ``previous`` the last published folder.
    """
    try:
        digest: str | None = _digest(villages, areas, title, raster, outline)
    except (TypeError, ValueError):  # a column pandas cannot hash: drawn every time
        digest = None
    phrase = as_of_phrase(title)
    shown = html.escape(phrase, quote=True) if phrase is not None else None
    page = _redated(previous, digest, shown) if digest is not None else None
    reused = page is not None
    if page is None:
        page = risk_map_html(villages, areas, title, raster=raster, outline=outline)
    write_text_atomic(staging / PAGE, page)
    if digest is None:
        return False
    count = page.count(shown) if shown else 0
    listed: dict[str, object] = {
        "format": _FORMAT, "digest": digest, "phrase": shown, "count": count, "stat": file_stat(staging / PAGE)
    }  # fmt: skip
    if title.exercise:  # every output of an exercise run says so
        listed["exercise"] = "LATIHAN"
    write_text_atomic(staging / _MANIFEST, json.dumps(listed, ensure_ascii=False, indent=1))
    return reused


def _redated(previous: Path | None, digest: str, shown: str | None) -> str | None:
    """The previous page with its instant replaced by ``shown``, when it was drawn from the same ``digest``."""
    if previous is None:
        return None
    try:
        listed = json.loads((previous / _MANIFEST).read_text(encoding="utf-8"))
        if not isinstance(listed, dict) or listed.get("format") != _FORMAT or listed.get("digest") != digest:
            return None
        if file_stat(previous / PAGE) != listed.get("stat"):
            return None  # edited or replaced since it was published
        page = (previous / PAGE).read_text(encoding="utf-8")
    except (OSError, ValueError):
        return None
    old, count = listed.get("phrase"), listed.get("count")
    if (old is None) != (shown is None) or not isinstance(count, int):
        return None
    if old is None or shown is None:
        return page
    if not isinstance(old, str) or not old or count < 1 or page.count(old) != count:
        return None
    return page.replace(old, shown)


def _digest(
    villages: gpd.GeoDataFrame,
    areas: gpd.GeoDataFrame,
    title: MapTitle,
    raster: RasterLayer | None,
    outline: Outline | None,
) -> str:
    """Everything the page is drawn from but the instant: the frames by value, the rain by its cells."""
    h = hashlib.sha256(f"{_FORMAT}\0{_code()}\0{replace(title, as_of=None)!r}\0".encode())
    for frame in (villages, areas):
        geometry = frame.geometry.name
        h.update(repr([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode())
        h.update(pd.util.hash_pandas_object(pd.DataFrame(frame.drop(columns=[geometry])), index=True).to_numpy())
        for wkb in shapely.to_wkb(frame.geometry.to_numpy()):
            h.update(b"\0" if wkb is None else wkb)
    if raster is not None:
        values = np.ascontiguousarray(raster.values)  # hashed in place, not copied (a national raster: 32 MB)
        h.update(repr((values.shape, str(values.dtype), raster.bounds, raster.label, raster.source)).encode())
        h.update(values.data)
    if outline is not None:
        h.update(f"outline {outline.villages}\0".encode())
        h.update(shapely.to_wkb(outline.geometry))
    return h.hexdigest()


def _code() -> str:
    """The page's drawing code (``ews.review.riskmap``): a changed ews draws the page anew."""
    if not _CODE:
        source = Path(riskmap.__file__).read_bytes()
        _CODE.append(hashlib.sha256(source).hexdigest())
    return _CODE[0]

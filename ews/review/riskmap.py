"""Risk maps of villages by warning level under the areas of the warnings in force: a PNG and an offline HTML page.

Both renderers are pure: they take GeoDataFrames and a :class:`MapTitle` and return ``bytes``/``str``
(:func:`risk_map_figure` returns the PNG's Matplotlib figure itself, so tests can read what it says); the
caller writes the artefact. The PNG uses Matplotlib's object API with the Agg canvas (never pyplot), so it
is headless and safe to call from several threads. The HTML page is one self-contained file with an inline
SVG, CSS and script: no external URL, so it opens offline (e.g. on a laptop in a BPBD post).

A map says what the run knows, and nothing it does not:

- the title names the region and the warnings in force (how many, which hazards, who issued them);
- villages whose alert this run cancelled or ended are hatched and labelled DICABUT / BERAKHIR, never
  filled like an active level;
- each drawn area is named after whoever drew it: BMKG's CAP polygon is "area peringatan BMKG" only when
  BMKG sent it; ews's own tsunami circle or shaking radius is named as ews's estimate;
- the view covers every village with a level or an ended alert (with a margin), whatever the areas say;
- kab/kota names are written once each where they do not collide;
- an exercise (CAP status Exercise/Test) is stamped LATIHAN.
"""

from __future__ import annotations

import functools
import html
import io
import itertools
import json
import math
import re
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from matplotlib import patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.path import Path
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

from ews.errors import DataValidationError
from ews.types import Level

__all__ = [
    "ENDED_WORDS",
    "EXERCISE_WORD",
    "LEVEL_COLOURS",
    "WARNING_COLOUR",
    "WARNING_LABEL",
    "ActiveWarning",
    "MapTitle",
    "Outline",
    "RasterLayer",
    "as_of_phrase",
    "risk_map_figure",
    "risk_map_html",
    "risk_map_png",
]

LEVEL_COLOURS: dict[Level, str] = {
    Level.NONE: "#e0e0e0",
    Level.WASPADA: "#f7d038",
    Level.SIAGA: "#f28c28",
    Level.AWAS: "#d7301f",
}
"""Fill colour per level, shared by the PNG and the HTML map."""

WARNING_COLOUR = "#1f3b8c"
"""Outline colour of warning areas drawn by their issuer (BMKG's CAP polygons)."""

ESTIMATE_COLOUR = "#00796b"
"""Outline colour (dashed) of areas ews drew itself: the tsunami circle, the shaking radius."""

ENDED_WORDS: dict[str, str] = {"cancel": "DICABUT", "end": "BERAKHIR"}
"""The word on the map per kind of ended alert: ``cancel`` (the issuer cancelled it), ``end`` (expired or
no longer covered: the all-clear). The same words as ews's own CAP and messages."""

ENDED_MEANING: dict[str, str] = {"cancel": "peringatan dicabut", "end": "peringatan berakhir"}
ENDED_COLOURS: dict[str, str] = {"cancel": "#6a3d9a", "end": "#525252"}
ENDED_HATCH: dict[str, str] = {"cancel": "xxxx", "end": "////"}
ENDED_FILL = "#f4f4f4"

EXERCISE_WORD = "LATIHAN"
EXERCISE_NOTE = "LATIHAN / EXERCISE: bukan peringatan sungguhan"
EXERCISE_COLOUR = "#3949ab"

NONE_LABEL = "tidak terdampak"
WARNING_LABEL = "area peringatan BMKG"
UNKNOWN_PEOPLE = "tidak diketahui"

VILLAGE_COLUMNS = ("code", "name", "level", "fraction", "population_exposed", "kecamatan", "geometry")
VILLAGE_OPTIONAL = ("ended", "kabkota")
WARNING_COLUMNS = ("identifier", "event", "geometry")
WARNING_OPTIONAL = ("label", "estimate")

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des")
_MAX_IDS = 3
_MARGIN = 0.10
_MIN_SPAN_DEG = 0.01  # about 1 km: a single point-like extent still gets a readable frame
_SVG_SIZE = 1000.0  # the longer side of the initial viewBox, in SVG user units
_SIMPLIFY_DIVISOR = 2000.0
_FIGSIZE = (10.0, 8.0)  # inches
_AXES = (0.08, 0.10, 0.64, 0.74)  # left, bottom, width, height as fractions of the figure
_LEVELS_DESC = (Level.AWAS, Level.SIAGA, Level.WASPADA)
_LABEL_PT = 7.5  # kab/kota names on the PNG, in points
_ENDED_LABEL_PT = 9.0  # DICABUT / BERAKHIR on the PNG
_HTML_LABEL_UNITS = 13.0  # kab/kota names on the SVG, in user units of the 1000-unit view
_CHAR_WIDTH = 0.58  # average glyph width of DejaVu Sans (mixed case) in em, a little generous (0.555 measured)
_LEGEND_WRAP = 34  # characters per legend line: the legend fits beside the map
_HAZARDS_SHOWN = 4  # hazard groups spelled out in the title; the rest are counted
_LABEL_TRIES = 12  # villages of a group tried for its label, most central first
_THIN_BELOW_PX = 2.5  # villages narrower than this on the PNG (a national map) are edged in their own fill colour

Bounds = tuple[float, float, float, float]
RAIN_CMAP = "Blues"
_RASTER_MIN = 0.5  # mm: less is drawn transparent (BMKG's lower bound of light rain per day)
_HTML_RASTER_MAX_PX = 1200  # longer side of the raster image embedded in the HTML page
_HTML_INLINE_ROWS = 2000  # more listed villages than this: their data goes in once, as JSON (a national page)


@dataclass(frozen=True)
class RasterLayer:
    """A raster (e.g. the 24-hour rain accumulation) drawn under the village levels.

    ``values`` is north-up, rows from ``bounds[3]`` (north) to ``bounds[1]`` (south); NaN and values
    below 0.5 are transparent. ``label`` names the quantity and its units for the legend; ``source`` says
    where it comes from and who processed it (e.g. ``"curah hujan satelit – perkiraan EWS"``), a legend
    line of its own when given.
    """

    values: np.ndarray
    bounds: Bounds
    label: str
    source: str = ""

    @classmethod
    def from_transform(
        cls, values: np.ndarray, transform: Sequence[float], label: str, source: str = ""
    ) -> RasterLayer:
        """From a north-up rasterio Affine ``(a, 0, c, 0, e, f)``."""
        a, _, c, _, e, f = (float(v) for v in transform[:6])
        rows, cols = values.shape
        return cls(values, (c, f + e * rows, c + a * cols, f), label, source)

    def vmax(self) -> float:
        """Top of the colour scale: the 99.5th percentile, at least 20 (mm)."""
        return self._top

    @functools.cached_property
    def _top(self) -> float:
        # Once per layer: the PNG and the HTML page both ask, twice each (a national raster: 0.13 s a time).
        finite = self.values[np.isfinite(self.values)]
        return max(20.0, float(np.percentile(finite, 99.5))) if finite.size else 20.0

    def rgba(self, max_px: int | None = None, *, top: float | None = None) -> np.ndarray:
        """The layer coloured with :data:`RAIN_CMAP` as an RGBA array (transparent where dry or missing).

        ``top`` is the value at the top of the scale (default :meth:`vmax`).
        """
        from matplotlib import colormaps

        values = self.values
        if max_px is not None:
            step = max(1, int(np.ceil(max(values.shape) / max_px)))
            values = values[::step, ::step]
        scaled = np.clip(np.nan_to_num(values, nan=0.0) / (self.vmax() if top is None else top), 0.0, 1.0)
        rgba = colormaps[RAIN_CMAP](0.25 + 0.75 * scaled)
        rgba[..., 3] = np.where(np.isfinite(values) & (values >= _RASTER_MIN), 0.75, 0.0)
        return np.asarray(rgba)

    def rgba_in(self, view: Bounds, max_px: int) -> tuple[np.ndarray, Bounds] | None:
        """:meth:`rgba` of the cells in ``view`` only, at most ``max_px`` on the longer side, and their bounds.

        The colour scale stays the whole layer's (:meth:`vmax`), as the legend says; ``None`` when no cell is
        in view. A national raster (4,620 x 1,720 cells) is coloured in 0.2 s instead of 2.8 s.
        """
        rows, cols = self.values.shape
        west, south, east, north = self.bounds
        cell_x, cell_y = (east - west) / cols, (north - south) / rows
        c0 = max(0, math.floor((view[0] - west) / cell_x))
        c1 = min(cols, math.ceil((view[2] - west) / cell_x))
        r0 = max(0, math.floor((north - view[3]) / cell_y))
        r1 = min(rows, math.ceil((north - view[1]) / cell_y))
        if c0 >= c1 or r0 >= r1:
            return None
        bounds = (west + c0 * cell_x, north - r1 * cell_y, west + c1 * cell_x, north - r0 * cell_y)
        window = RasterLayer(self.values[r0:r1, c0:c1], bounds, self.label, self.source)
        return window.rgba(max_px, top=self.vmax()), bounds


@dataclass(frozen=True)
class Outline:
    """The region's outline, standing for its untouched villages where a map does not draw them one by one.

    A national map draws its thousands of leveled villages over one dissolved, simplified outline of the
    region (:mod:`ews.review.display`) instead of every village of the country. It is filled like an
    untouched village (unfilled over a rain layer); ``villages`` is how many untouched villages of the view
    it stands for, the legend's count of "tidak terdampak".
    """

    geometry: BaseGeometry
    villages: int


@dataclass(frozen=True)
class ActiveWarning:
    """One warning in force in the region this run, as the title names it.

    Attributes
    ----------
    identifier : str
        Its identifier (a BMKG CAP identifier, or ews's own such as ``ews.gempa.…``).
    event : str
        The hazard as its issuer names it, e.g. ``"Hujan Lebat dan Petir"``.
    source : str
        Who issued it or drew its area, e.g. ``"BMKG"`` or ``"info gempa BMKG, perkiraan EWS"``.
    exercise : bool
        CAP status Exercise/Test/Draft: marked LATIHAN in a run that is not an exercise as a whole.
    """

    identifier: str
    event: str
    source: str
    exercise: bool = False


@dataclass(frozen=True)
class MapTitle:
    """What the title block of a risk map says.

    Attributes
    ----------
    region : str
        The region's name from its configuration, e.g. ``"Jawa Timur"``: the heading is the region, never
        the area one of the warnings happens to describe.
    active : tuple of ActiveWarning
        The warnings in force that give a village of the region a level; the heading counts them, the
        next line names their hazards and issuers, the ids line lists three identifiers and counts the rest.
    valid_from, valid_until : datetime or None
        Validity of the warning(s) in force (earliest start, latest end), timezone-aware and already in
        the local zone ``zone_name``.
    zone_name : str
        ``"WIB"``, ``"WITA"`` or ``"WIT"``.
    population_note : str or None
        A footnote on how people were counted, or ``None`` for no footnote.
    as_of : datetime or None
        The instant the run judged the warnings at (local zone), shown as "keadaan".
    exercise : bool
        The whole run is an exercise: every output says LATIHAN.
    """

    region: str
    active: tuple[ActiveWarning, ...]
    valid_from: datetime | None
    valid_until: datetime | None
    zone_name: str
    population_note: str | None
    as_of: datetime | None = None
    exercise: bool = False

    @property
    def warning_ids(self) -> tuple[str, ...]:
        """Identifiers of the warnings in force, in title order."""
        return tuple(w.identifier for w in self.active)


@dataclass(frozen=True)
class _Village:
    code: str
    name: str
    kecamatan: str
    level: Level
    fraction: float
    people: float | None
    geometry: BaseGeometry | None
    ended: str = ""  # "" (the level stands), "cancel" or "end": the level is the one that ended
    kabkota: str = ""

    @property
    def shown(self) -> bool:
        """Whether the village is in the focus of the map: it has a level, or an alert that ended this run."""
        return self.level > Level.NONE or bool(self.ended)


@dataclass(frozen=True)
class _Area:
    identifier: str
    geometry: BaseGeometry
    label: str
    estimate: bool


@dataclass(frozen=True)
class _Label:
    text: str
    x: float
    y: float
    kind: str  # "kabkota", or an ended kind ("cancel", "end")


# --------------------------------------------------------------------------------------------- inputs


def _check_frame(frame: Any, columns: Sequence[str], what: str) -> None:
    if not isinstance(frame, gpd.GeoDataFrame):
        raise DataValidationError(f"{what} must be a geopandas GeoDataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"{what} GeoDataFrame is missing column(s) {', '.join(repr(c) for c in missing)}; "
            f"it needs {', '.join(columns)}"
        )
    if len(frame) == 0:
        return  # an empty frame has nothing to misplace, whatever its CRS
    if frame.crs is None:
        raise DataValidationError(f"{what} GeoDataFrame has no CRS; set it with .set_crs('EPSG:4326')")
    if frame.crs.to_epsg() != 4326:
        raise DataValidationError(
            f"{what} GeoDataFrame is in {frame.crs.to_string()}, not EPSG:4326 (lon/lat); "
            f"reproject it with .to_crs('EPSG:4326')"
        )


def _villages(frame: Any) -> list[_Village]:
    _check_frame(frame, VILLAGE_COLUMNS, "villages")
    out: list[_Village] = []
    for row in frame.itertuples(index=False):
        code = str(row.code)
        try:
            level = Level(int(row.level))
        except (TypeError, ValueError):
            raise DataValidationError(
                f"village {code}: level {row.level!r} is not an integer 0..3 (none, Waspada, Siaga, Awas)"
            ) from None
        fraction = _float_or_nan(row.fraction)
        if not -1e-9 <= fraction <= 1.0 + 1e-9:  # NaN fails this too
            raise DataValidationError(f"village {code}: fraction {row.fraction!r} is not between 0 and 1")
        ended = _text(getattr(row, "ended", ""))
        if ended and ended not in ENDED_WORDS:
            raise DataValidationError(
                f"village {code}: ended {ended!r} is not '' (level stands), 'cancel' (DICABUT) or 'end' (BERAKHIR)"
            )
        people = None if _is_missing(row.population_exposed) else float(row.population_exposed)
        geometry = row.geometry if isinstance(row.geometry, BaseGeometry) else None
        out.append(
            _Village(
                code=code,
                name=str(row.name),
                kecamatan=_text(row.kecamatan),
                level=level,
                fraction=min(max(fraction, 0.0), 1.0),
                people=people,
                geometry=geometry,
                ended=ended,
                kabkota=_text(getattr(row, "kabkota", "")),
            )
        )
    # Draw higher levels last so their outlines are not hidden under neighbours.
    out.sort(key=lambda v: (int(v.level), v.code))
    return out


def _warnings(frame: Any) -> list[_Area]:
    _check_frame(frame, WARNING_COLUMNS, "warnings")
    out: list[_Area] = []
    for row in frame.itertuples(index=False):
        if not isinstance(row.geometry, BaseGeometry) or row.geometry.is_empty:
            continue
        label = _text(getattr(row, "label", "")) or WARNING_LABEL
        estimate = getattr(row, "estimate", False)
        out.append(_Area(str(row.identifier), row.geometry, label, bool(estimate) and not _is_missing(estimate)))
    out.sort(key=lambda a: a.identifier)
    return out


def _text(value: object) -> str:
    return "" if _is_missing(value) else str(value)


def _float_or_nan(value: Any) -> float:
    try:
        return math.nan if _is_missing(value) else float(value)
    except (TypeError, ValueError):
        return math.nan


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


# ---------------------------------------------------------------------------------------- geometry


def _polygons(geometry: BaseGeometry | None) -> list[Polygon]:
    """Polygonal parts of any geometry (points and lines have no area to fill and are dropped)."""
    if geometry is None or geometry.is_empty:
        return []
    if isinstance(geometry, Polygon):
        return [geometry]
    if isinstance(geometry, MultiPolygon):
        return list(geometry.geoms)
    parts: list[Polygon] = []
    for part in shapely.get_parts(geometry):
        if isinstance(part, Polygon | MultiPolygon) or part.geom_type == "GeometryCollection":
            parts.extend(_polygons(part))
    return parts


def _bounds(geometries: Iterable[BaseGeometry | None]) -> Bounds | None:
    boxes = [g.bounds for g in geometries if g is not None and not g.is_empty]
    if not boxes:
        return None
    array = np.asarray(boxes, dtype=float)
    return (
        float(array[:, 0].min()),
        float(array[:, 1].min()),
        float(array[:, 2].max()),
        float(array[:, 3].max()),
    )


def _view_extent(villages: Sequence[_Village], areas: Sequence[_Area]) -> Bounds:
    """Every village with a level or an ended alert, plus a margin; else the areas; else all villages.

    The warning areas do not widen the view: a warning polygon far away (another province's nowcast in
    the same feed, a 300 km tsunami circle) must not shrink the villages that matter to specks.
    """
    box = (
        _bounds(v.geometry for v in villages if v.shown)
        or _bounds(a.geometry for a in areas)
        or _bounds(v.geometry for v in villages)
    )
    if box is None:
        return (0.0, 0.0, 1.0, 1.0)
    minx, miny, maxx, maxy = box
    width = max(maxx - minx, _MIN_SPAN_DEG)
    height = max(maxy - miny, _MIN_SPAN_DEG)
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    half_w = width * (1 + 2 * _MARGIN) / 2
    half_h = height * (1 + 2 * _MARGIN) / 2
    return (cx - half_w, cy - half_h, cx + half_w, cy + half_h)


def _fit(extent: Bounds, box_ratio: float) -> Bounds:
    """Grow ``extent`` about its centre so its projected width/height equals ``box_ratio``."""
    minx, miny, maxx, maxy = extent
    kx = _lon_factor(extent)
    width, height = (maxx - minx) * kx, maxy - miny
    if width / height < box_ratio:
        width = height * box_ratio
    else:
        height = width / box_ratio
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    return (cx - width / kx / 2, cy - height / 2, cx + width / kx / 2, cy + height / 2)


def _lon_factor(extent: Bounds) -> float:
    """cos(latitude) mid-extent: the length of a degree of longitude in degrees of latitude."""
    return max(math.cos(math.radians((extent[1] + extent[3]) / 2)), 0.01)


def _in_view(geometry: BaseGeometry, view: Bounds) -> bool:
    minx, miny, maxx, maxy = geometry.bounds
    return bool(minx <= view[2] and maxx >= view[0] and miny <= view[3] and maxy >= view[1])


def _short_kabkota(name: str) -> str:
    """``"Kabupaten Malang"`` -> ``"Kab. Malang"`` (Kota names stay whole): shorter labels collide less."""
    for long, short in (("Kabupaten ", "Kab. "), ("KABUPATEN ", "KAB. ")):
        if name.startswith(long):
            return short + name[len(long) :]
    return name


def _label_places(villages: Sequence[_Village], view: Bounds, char_height: float) -> list[_Label]:
    """Where to write DICABUT / BERAKHIR (once per kind) and each kab/kota's name (once), without overlaps.

    Each group is labelled on a village of its own (inside the view), the one nearest the area-weighted
    centre of its villages whose label box overlaps no label placed before (up to 12 tried), so the name
    sits on land that belongs to it. The ended words go first, then kab/kota by area in view, largest
    first; a group with no free spot is left unlabelled.
    ``char_height`` is the font size in degrees of latitude.
    """
    drawn = [v for v in villages if v.geometry is not None and not v.geometry.is_empty]
    if not drawn:
        return []
    geoms = np.array([v.geometry for v in drawn], dtype=object)
    points = shapely.point_on_surface(geoms)
    xs, ys = shapely.get_x(points), shapely.get_y(points)
    areas = np.asarray(shapely.area(geoms), dtype=float)
    minx, miny, maxx, maxy = view
    inside = (xs >= minx) & (xs <= maxx) & (ys >= miny) & (ys <= maxy)
    kx = _lon_factor(view)

    groups: list[tuple[int, float, str, str, np.ndarray]] = []  # (priority, -area, text, kind, indices)
    for kind, word in ENDED_WORDS.items():
        idx = np.flatnonzero(inside & np.array([v.ended == kind for v in drawn]))
        if len(idx):
            groups.append((0, -float(areas[idx].sum()), word, kind, idx))
    by_kabkota: dict[str, list[int]] = {}
    for i, v in enumerate(drawn):
        if v.kabkota and inside[i]:
            by_kabkota.setdefault(v.kabkota, []).append(i)
    for name, members in by_kabkota.items():
        idx = np.asarray(members)
        groups.append((1, -float(areas[idx].sum()), _short_kabkota(name), "kabkota", idx))
    groups.sort(key=lambda g: (g[0], g[1], g[2]))

    placed: list[tuple[float, float, float, float]] = []
    out: list[_Label] = []
    for _, _, text, kind, idx in groups:
        weight = np.maximum(areas[idx], 1e-12)
        cx, cy = float(np.average(xs[idx], weights=weight)), float(np.average(ys[idx], weights=weight))
        nearest = idx[np.argsort(((xs[idx] - cx) * kx) ** 2 + (ys[idx] - cy) ** 2, kind="stable")]
        size = char_height * (_ENDED_LABEL_PT / _LABEL_PT if kind != "kabkota" else 1.0)
        half_w = _CHAR_WIDTH * size * len(text) / 2 / kx  # in degrees of longitude
        half_h = 0.6 * size
        pad_x, pad_y = 0.1 * size / kx, 0.1 * size
        for i in nearest[:_LABEL_TRIES]:  # the most central villages of the group first
            # Keep the whole label in view, sliding it sideways if it sticks out.
            x = min(max(float(xs[i]), minx + half_w), maxx - half_w)
            y = min(max(float(ys[i]), miny + half_h), maxy - half_h)
            box = (x - half_w - pad_x, y - half_h - pad_y, x + half_w + pad_x, y + half_h + pad_y)
            if not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed):
                placed.append(box)
                out.append(_Label(text, x, y, kind))
                break
    return out


# ------------------------------------------------------------------------------------------- text


def _when(moment: datetime) -> str:
    return f"{moment.day} {_MONTHS[moment.month - 1]} {moment.year} {moment:%H:%M}"


def _validity(title: MapTitle) -> str:
    """``"Berlaku 24 Sep 2026 15:27–17:27 WITA"``, spelling out both dates when they differ."""
    start, end, zone = title.valid_from, title.valid_until, title.zone_name
    if not title.active:
        text = "Tidak ada peringatan yang berlaku"
    elif start is not None and end is not None:
        if start.date() == end.date():
            text = f"Berlaku {_when(start)}–{end:%H:%M} {zone}"
        else:
            text = f"Berlaku {_when(start)} – {_when(end)} {zone}"
    elif start is not None:
        text = f"Berlaku mulai {_when(start)} {zone}"
    elif end is not None:
        text = f"Berlaku sampai {_when(end)} {zone}"
    else:
        text = "Waktu berlaku tidak diketahui"
    phrase = as_of_phrase(title)
    if phrase is not None:
        text += f" · {phrase}"
    return text


def as_of_phrase(title: MapTitle) -> str | None:
    """How a map states the instant its run judged the warnings at (``"keadaan 24 Sep 2026 18:05 WITA"``)."""
    return None if title.as_of is None else f"keadaan {_when(title.as_of)} {title.zone_name}"


def _ids_line(ids: Sequence[str]) -> str:
    if not ids:
        return ""
    shown = ", ".join(ids[:_MAX_IDS])
    rest = len(ids) - _MAX_IDS
    return f"Peringatan: {shown} +{rest}" if rest > 0 else f"Peringatan: {shown}"


def _heading(title: MapTitle) -> str:
    """``"Jawa Timur: 2 peringatan aktif"``: the region and how many warnings are in force there."""
    prefix = f"{EXERCISE_WORD} – " if title.exercise else ""
    count = len(title.active)
    what = f"{count} peringatan aktif" if count else "tidak ada peringatan aktif"
    return f"{prefix}{title.region}: {what}"


def _hazards_line(title: MapTitle) -> str:
    """The hazards in force and who issued them: ``"Hujan Lebat dan Petir (BMKG) ×2 · Gempabumi (…)"``."""
    groups: dict[tuple[str, str, bool], int] = {}
    for w in title.active:
        key = (w.event or "peringatan", w.source, w.exercise and not title.exercise)
        groups[key] = groups.get(key, 0) + 1
    parts = [
        f"{event} ({source})" + (f" ×{n}" if n > 1 else "") + (f" [{EXERCISE_WORD}]" if exercise else "")
        for (event, source, exercise), n in groups.items()
    ]
    rest = len(parts) - _HAZARDS_SHOWN
    shown = " · ".join(parts[:_HAZARDS_SHOWN])
    return f"{shown} · +{rest} lainnya" if rest > 0 else shown


def _counts(villages: Sequence[_Village], outline: Outline | None = None) -> dict[Level, int]:
    """Villages per level whose level stands (an ended alert is counted by :func:`_ended_counts`).

    The untouched villages an ``outline`` stands for count as untouched.
    """
    counts = dict.fromkeys(Level, 0)
    for village in villages:
        if not village.ended:
            counts[village.level] += 1
    if outline is not None:
        counts[Level.NONE] += outline.villages
    return counts


def _ended_counts(villages: Sequence[_Village]) -> dict[str, int]:
    counts = dict.fromkeys(ENDED_WORDS, 0)
    for village in villages:
        if village.ended:
            counts[village.ended] += 1
    return counts


def _legend_labels(counts: dict[Level, int]) -> list[tuple[Level, str]]:
    labels = [(level, f"{level.label} ({counts[level]} desa)") for level in _LEVELS_DESC]
    labels.append((Level.NONE, f"{NONE_LABEL} ({counts[Level.NONE]} desa)"))
    return labels


def _ended_labels(counts: dict[str, int]) -> list[tuple[str, str]]:
    """``("cancel", "DICABUT: peringatan dicabut (12 desa)")`` for each kind present."""
    return [(k, f"{ENDED_WORDS[k]}: {ENDED_MEANING[k]} ({n} desa)") for k, n in counts.items() if n]


def _area_legend(areas: Sequence[_Area]) -> list[tuple[str, bool, int]]:
    """(label, ews's own estimate, how many) per kind of area drawn: the issuer's polygons first."""
    counts: dict[tuple[bool, str], int] = {}
    for a in areas:
        counts[(a.estimate, a.label)] = counts.get((a.estimate, a.label), 0) + 1
    return [(label, estimate, n) for (estimate, label), n in sorted(counts.items())]


def _level_text(village: _Village) -> str:
    """What the tooltip and table say of the level: ``"Siaga"``, or ``"DICABUT (sebelumnya Siaga)"``."""
    if village.ended:
        word = ENDED_WORDS[village.ended]
        return f"{word} (sebelumnya {village.level.label})" if village.level else word
    return village.level.label if village.level else NONE_LABEL


def _people_text(people: float | None) -> str:
    if people is None:
        return UNKNOWN_PEOPLE
    return f"{round(people):,}".replace(",", ".")  # Indonesian thousands separator


def _percent(fraction: float) -> str:
    return f"{fraction * 100:.0f}%"


def _wrap(text: str) -> str:
    """A legend label on lines of :data:`_LEGEND_WRAP` characters; a count such as "(7 desa)" is never split."""
    kept = re.sub(r"\((\d+) desa\)", "(\\1\u00a0desa)", text)  # textwrap breaks on ASCII spaces only
    return textwrap.fill(kept, width=_LEGEND_WRAP, break_on_hyphens=False)


# -------------------------------------------------------------------------------------------- PNG


def _typical_pixels(villages: Sequence[_Village], view: Bounds, width_px: float) -> float:
    """The median village's width in pixels (the side of a square of its area) in a view ``width_px`` wide."""
    geoms = np.array([v.geometry for v in villages if v.geometry is not None], dtype=object)
    if not len(geoms):
        return math.inf
    side = float(np.median(np.sqrt(shapely.area(geoms))))
    return side / max(view[2] - view[0], 1e-12) * width_px


def _mpl_paths(shapes: Sequence[Sequence[Polygon]]) -> list[Path | None]:
    """:func:`_mpl_path` of each village's polygons, the rings taken apart in one vectorised pass."""
    parts = [polygon for polygons in shapes for polygon in polygons]
    if not parts:
        return [None] * len(shapes)
    owner = np.repeat(np.arange(len(shapes)), [len(polygons) for polygons in shapes])
    rings, ring_part = shapely.get_rings(shapely.orient_polygons(np.array(parts, dtype=object)), return_index=True)
    xy, ring_of = shapely.get_coordinates(rings, return_index=True)
    sizes = np.bincount(ring_of, minlength=len(rings))
    kept = sizes[ring_of] >= 4  # a closed ring: 3 distinct points + the closing one
    xy, ring_of = xy[kept], ring_of[kept]
    start = np.r_[True, ring_of[1:] != ring_of[:-1]] if len(ring_of) else np.zeros(0, dtype=bool)
    end = np.r_[ring_of[1:] != ring_of[:-1], True] if len(ring_of) else np.zeros(0, dtype=bool)
    codes = np.full(len(xy), Path.LINETO, dtype=np.uint8)
    codes[start], codes[end] = Path.MOVETO, Path.CLOSEPOLY
    village = owner[ring_part][ring_of]  # non-decreasing: parts, rings and points come in village order
    bounds = np.searchsorted(village, np.arange(len(shapes) + 1))
    return [Path(xy[a:b], codes[a:b]) if b > a else None for a, b in itertools.pairwise(bounds.tolist())]


def _mpl_path(polygons: Sequence[Polygon]) -> Path | None:
    """One compound path; exteriors counter-clockwise and holes clockwise so any fill rule keeps holes."""
    vertices: list[np.ndarray] = []
    codes: list[np.ndarray] = []
    for polygon in polygons:
        polygon = orient(polygon, sign=1.0)
        for ring in (polygon.exterior, *polygon.interiors):
            xy = np.asarray(ring.coords, dtype=float)[:, :2]
            if len(xy) < 4:  # a closed ring: 3 distinct points + the closing one
                continue
            ring_codes = np.full(len(xy), Path.LINETO, dtype=np.uint8)
            ring_codes[0] = Path.MOVETO
            ring_codes[-1] = Path.CLOSEPOLY
            vertices.append(xy)
            codes.append(ring_codes)
    if not vertices:
        return None
    return Path(np.concatenate(vertices), np.concatenate(codes))


def risk_map_figure(
    villages: gpd.GeoDataFrame,
    warnings: gpd.GeoDataFrame,
    title: MapTitle,
    *,
    dpi: int = 120,
    raster: RasterLayer | None = None,
    outline: Outline | None = None,
) -> Figure:
    """Draw the static risk map on a Matplotlib figure (what :func:`risk_map_png` saves).

    The figure can be read back: ``figure.get_suptitle()`` is the heading, the legend's texts name the
    levels, ended alerts and areas drawn, ``axes.get_xlim()``/``get_ylim()`` the view. Village fills are the
    collection with gid ``levels``; ended alerts ``ended-cancel``/``ended-end``; areas ``areas-issuer`` and
    ``areas-estimate``; map texts have gid ``label-kabkota``, ``label-cancel``, ``label-end`` and
    ``exercise``; the region's outline (when given) ``outline``.

    Parameters and raises as :func:`risk_map_png`.
    """
    rows = _villages(villages)
    every_area = _warnings(warnings)
    extent = _view_extent(rows, every_area)
    box_ratio = (_AXES[2] * _FIGSIZE[0]) / (_AXES[3] * _FIGSIZE[1])
    view = _fit(extent, box_ratio)
    areas = [a for a in every_area if _in_view(a.geometry, view)]  # one out of view is not in the legend
    counts = _counts(rows, outline)
    # Villages a few pixels across (a national map) are outlined in their own colour: white edges would
    # wash their fills out to nothing.
    thin = _typical_pixels(rows, view, _AXES[2] * _FIGSIZE[0] * dpi) < _THIN_BELOW_PX
    ended_counts = _ended_counts(rows)

    figure = Figure(figsize=_FIGSIZE, dpi=dpi)
    FigureCanvasAgg(figure)
    axes = figure.add_axes(_AXES)

    level_paths: list[Path] = []
    fills: list[str] = []
    ended_paths: dict[str, list[Path]] = {k: [] for k in ENDED_WORDS}
    for village, path in zip(rows, _mpl_paths([_polygons(v.geometry) for v in rows]), strict=True):
        if path is None:
            continue
        if village.ended:
            ended_paths[village.ended].append(path)
            continue
        level_paths.append(path)
        unfilled = raster is not None and village.level is Level.NONE
        fills.append("none" if unfilled else LEVEL_COLOURS[village.level])
    if raster is not None:
        shown = raster.rgba_in(view, 2 * round(_AXES[2] * _FIGSIZE[0] * dpi))  # twice the map's pixels at most
        if shown is not None:
            (west, south, east, north) = shown[1]
            axes.imshow(
                shown[0], extent=(west, east, south, north), origin="upper", interpolation="nearest",
                aspect="auto", zorder=0,
            )  # fmt: skip
    if outline is not None:
        shape = _mpl_path(_polygons(outline.geometry))
        if shape is not None:
            axes.add_collection(
                PathCollection(
                    [shape], facecolors="none" if raster is not None else LEVEL_COLOURS[Level.NONE],
                    edgecolors="#9e9e9e", linewidths=0.5, zorder=0.9, gid="outline",
                ),
                autolim=False,
            )  # fmt: skip
    if level_paths:
        axes.add_collection(
            PathCollection(
                level_paths,
                facecolors=fills,
                edgecolors="face" if thin else "#9e9e9e" if raster is not None else "#ffffff",
                linewidths=0.3 if thin else 0.5,
                zorder=1,
                alpha=0.85 if raster is not None else None,
                gid="levels",
            ),
            autolim=False,
        )
    for kind, paths in ended_paths.items():
        if paths:  # hatched and outlined in the kind's colour: never a level's fill
            axes.add_collection(
                PathCollection(
                    paths, facecolors=ENDED_FILL, edgecolors=ENDED_COLOURS[kind], hatch=ENDED_HATCH[kind],
                    linewidths=0.3 if thin else 0.6, zorder=1.5, gid=f"ended-{kind}",
                ),
                autolim=False,
            )  # fmt: skip
    for estimate in (False, True):
        drawn = (_mpl_path(_polygons(a.geometry)) for a in areas if a.estimate is estimate)
        outlines = [p for p in drawn if p is not None]
        if outlines:
            axes.add_collection(
                PathCollection(
                    outlines, facecolors="none", edgecolors=ESTIMATE_COLOUR if estimate else WARNING_COLOUR,
                    linewidths=1.5, linestyles="--" if estimate else "-", zorder=2,
                    gid="areas-estimate" if estimate else "areas-issuer",
                ),
                autolim=False,
            )  # fmt: skip

    minx, miny, maxx, maxy = view
    axes.set_xlim(minx, maxx)
    axes.set_ylim(miny, maxy)
    axes.set_aspect(1 / _lon_factor(extent))
    axes.set_xlabel("Bujur")
    axes.set_ylabel("Lintang")
    axes.ticklabel_format(useOffset=False, style="plain")
    axes.tick_params(labelsize=8)
    axes.set_facecolor("#f5f8fb")

    # parse_math=False: names come from data files and a "$" must not switch to mathtext.
    char_height = (maxy - miny) * (_LABEL_PT / 72) / (_AXES[3] * _FIGSIZE[1])
    halo = [patheffects.withStroke(linewidth=2.5, foreground="white")]
    for label in _label_places(rows, view, char_height):
        kabkota = label.kind == "kabkota"
        axes.text(
            label.x, label.y, label.text, ha="center", va="center", fontsize=_LABEL_PT if kabkota else _ENDED_LABEL_PT,
            color="#1a1a1a" if kabkota else ENDED_COLOURS[label.kind], weight="normal" if kabkota else "bold",
            zorder=4, clip_on=True, parse_math=False, path_effects=halo, gid=f"label-{label.kind}",
        )  # fmt: skip
    if title.exercise:
        axes.text(
            0.5, 0.5, EXERCISE_WORD, transform=axes.transAxes, ha="center", va="center", fontsize=64, rotation=30,
            color=EXERCISE_COLOUR, alpha=0.22, weight="bold", zorder=5, gid="exercise",
        )  # fmt: skip

    handles = [
        Patch(facecolor=LEVEL_COLOURS[level], edgecolor="#9e9e9e", linewidth=0.5, label=label)
        for level, label in _legend_labels(counts)
    ]
    handles += [
        Patch(facecolor=ENDED_FILL, edgecolor=ENDED_COLOURS[kind], hatch=ENDED_HATCH[kind], label=_wrap(label))
        for kind, label in _ended_labels(ended_counts)
    ]
    handles += [
        Patch(facecolor="none", edgecolor=ESTIMATE_COLOUR if estimate else WARNING_COLOUR, linewidth=1.5,
              linestyle="--" if estimate else "-", label=_wrap(f"{label} ({n})"))
        for label, estimate, n in _area_legend(areas)
    ]  # fmt: skip
    if raster is not None:
        from matplotlib import colormaps

        cmap = colormaps[RAIN_CMAP]
        if raster.source:
            handles.append(Patch(facecolor=cmap(0.6), edgecolor="none", alpha=0.75, label=_wrap(raster.source)))
        top = raster.vmax()
        for frac in (0.0, 0.5, 1.0):
            value = _RASTER_MIN if frac == 0.0 else frac * top
            handles.append(Patch(facecolor=cmap(0.25 + 0.75 * frac), edgecolor="none", alpha=0.75,
                                 label=f"{raster.label}: {value:.0f}"))  # fmt: skip
    legend = axes.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.03, 1.0), borderaxespad=0.0, fontsize=9)
    for entry in legend.get_texts():  # labels carry CAP senders and event names from the data
        entry.set_parse_math(False)

    # The title block, top down; each line's height follows the lines it wrapped to (points of 72/inch).
    top = 1.0 - 6 / (72 * _FIGSIZE[1])
    heading = textwrap.fill(_heading(title), width=80)
    figure.suptitle(heading, x=0.5, y=top, ha="center", va="top", fontsize=13, weight="bold", parse_math=False)
    top -= (heading.count("\n") + 1) * 17 / (72 * _FIGSIZE[1])
    lines = [(textwrap.fill(_hazards_line(title), width=120), 9.5, "#222222")]
    lines.append((_validity(title), 10.0, "#222222"))
    ids = _ids_line(title.warning_ids)
    if ids:
        lines.append((ids, 8.0, "#555555"))
    for text, size, colour in lines:
        if not text:
            continue
        figure.text(0.5, top, text, ha="center", va="top", fontsize=size, color=colour, parse_math=False)
        top -= (text.count("\n") + 1) * (size * 1.35) / (72 * _FIGSIZE[1])
    if title.exercise:
        figure.text(
            0.02, 1.0 - 6 / (72 * _FIGSIZE[1]), EXERCISE_WORD, ha="left", va="top", fontsize=12, weight="bold",
            color="white", bbox={"facecolor": EXERCISE_COLOUR, "edgecolor": "none", "pad": 3}, gid="exercise-badge",
        )  # fmt: skip
        figure.text(
            0.98, 0.015, EXERCISE_NOTE, ha="right", va="bottom", fontsize=8, weight="bold", color=EXERCISE_COLOUR,
            parse_math=False, gid="exercise-note",
        )  # fmt: skip
    if title.population_note:
        note = textwrap.fill(title.population_note, width=100 if title.exercise else 140)
        figure.text(0.02, 0.015, note, ha="left", va="bottom", fontsize=7, color="#555555", parse_math=False)
    return figure


def risk_map_png(
    villages: gpd.GeoDataFrame,
    warnings: gpd.GeoDataFrame,
    title: MapTitle,
    *,
    dpi: int = 120,
    raster: RasterLayer | None = None,
    outline: Outline | None = None,
) -> bytes:
    """Render a static risk map: villages filled by level, ended alerts hatched, warning areas outlined.

    Parameters
    ----------
    villages : geopandas.GeoDataFrame
        EPSG:4326. Columns ``code`` (str), ``name`` (str), ``level`` (int 0..3), ``fraction`` (0..1),
        ``population_exposed`` (people, NaN when unknown), ``kecamatan`` (str) and ``geometry``
        (Polygon/MultiPolygon). Untouched neighbours come with level 0. Optional: ``ended`` (``""``,
        ``"cancel"`` or ``"end"``: the village's alert was cancelled or ended this run; ``level`` is then
        the level that ended) and ``kabkota`` (the kab/kota name, written once per kab/kota).
    warnings : geopandas.GeoDataFrame
        EPSG:4326. Columns ``identifier``, ``event`` and ``geometry`` (warning areas); may be empty.
        Optional: ``label`` (the legend's name for the area, default ``"area peringatan BMKG"``) and
        ``estimate`` (bool: ews drew the area itself; dashed).
    title : MapTitle
        Text of the title block and footnote.
    dpi : int, default 120
        Resolution; the figure is 10 x 8 inches.
    raster : RasterLayer, optional
        Drawn under the villages (e.g. rain); villages without a level are then left unfilled.
    outline : Outline, optional
        The region's outline, drawn under the villages as the untouched villages it stands for (a national
        map draws only its leveled and ended villages).

    Returns
    -------
    bytes
        A PNG without software or time metadata, so equal inputs give equal bytes. Its ``Title`` text
        chunk is the heading (``"LATIHAN – …"`` for an exercise).

    Raises
    ------
    ValueError
        (:class:`ews.errors.DataValidationError`) A column is missing, the CRS is not EPSG:4326, or a
        village has a level outside 0..3, a fraction outside 0..1 or an unknown ``ended`` value.
    """
    figure = risk_map_figure(villages, warnings, title, dpi=dpi, raster=raster, outline=outline)
    buffer = io.BytesIO()
    metadata = {"Software": None, "Title": f"Peta risiko: {_heading(title)}"}
    figure.savefig(buffer, format="png", dpi=dpi, metadata=metadata)
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------- HTML


class _Projection:
    """Equirectangular lon/lat -> SVG user units: x grows east, y grows south, north-west corner at 0, 0."""

    def __init__(self, extent: Bounds) -> None:
        minx, miny, maxx, maxy = extent
        self.kx = _lon_factor(extent)
        self.west = minx
        self.north = maxy
        self.scale = _SVG_SIZE / max((maxx - minx) * self.kx, maxy - miny)
        self.width = (maxx - minx) * self.kx * self.scale
        self.height = (maxy - miny) * self.scale

    def ring(self, coords: Any) -> str:
        xy = np.asarray(coords, dtype=float)[:, :2]
        if len(xy) < 4:  # a closed ring: 3 distinct points + the closing one
            return ""
        x = (xy[:-1, 0] - self.west) * self.kx * self.scale
        y = (self.north - xy[:-1, 1]) * self.scale
        points = " ".join(f"{_num(a)} {_num(b)}" for a, b in zip(x, y, strict=True))
        return f"M{points}Z"

    def path(self, polygons: Sequence[Polygon]) -> str:
        return "".join(
            self.ring(ring.coords) for polygon in polygons for ring in (polygon.exterior, *polygon.interiors)
        )


def _num(value: float) -> str:
    """Two decimals of a 1000-unit viewBox: 1e-5 of the view, invisible, and short."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in {"-0", ""} else text


def _all_simplified(geometries: Sequence[BaseGeometry | None], tolerance: float) -> list[list[Polygon]]:
    """:func:`_simplified` of each geometry, in one vectorised call (a national map draws thousands)."""
    if tolerance <= 0 or not geometries:
        return [_polygons(g) for g in geometries]
    shapes = np.array([g if g is not None else shapely.Polygon() for g in geometries], dtype=object)
    simple = shapely.simplify(shapes, tolerance, preserve_topology=True)
    return [_polygons(s) or _polygons(g) for s, g in zip(simple, geometries, strict=True)]


def _simplified(geometry: BaseGeometry | None, tolerance: float) -> list[Polygon]:
    polygons = _polygons(geometry)
    if not polygons or tolerance <= 0:
        return polygons
    simple = _polygons(MultiPolygon(polygons).simplify(tolerance, preserve_topology=True))
    return simple or polygons  # a sliver may simplify away; keep it drawable


def _attr(value: object) -> str:
    return html.escape(str(value), quote=True)


_CSS = """
body{font-family:system-ui,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:1rem;color:#222;background:#fff}
h1{font-size:1.3rem;margin:0 0 .2rem}
.valid{font-size:1rem;margin:0 0 .2rem}
.hazards{font-size:.95rem;margin:0 0 .2rem}
.ids{font-size:.8rem;color:#555;margin:0 0 .6rem}
.exercise{display:inline-block;background:#3949ab;color:#fff;font-weight:bold;padding:.2rem .6rem;
border-radius:3px;margin:0 0 .4rem}
.note{font-size:.8rem;color:#555}
.layout{display:flex;flex-wrap:wrap;gap:1rem;align-items:flex-start}
.mapwrap{position:relative;flex:1 1 640px;border:1px solid #ccc;background:#f5f8fb}
#map{display:block;width:100%;height:70vh;cursor:grab;touch-action:none;user-select:none}
#map.dragging{cursor:grabbing}
path{vector-effect:non-scaling-stroke}
path.v{stroke:#fff;stroke-width:.6}
path.v:hover,path.v.pinned{stroke:#000;stroke-width:2}
path.w{fill:none;stroke:#1f3b8c;stroke-width:2;pointer-events:none}
path.o{stroke:#9e9e9e;stroke-width:.6;pointer-events:none}
path.w.e{stroke:#00796b;stroke-dasharray:6 4}
path.v.end-cancel{stroke:#6a3d9a;stroke-width:1}
path.v.end-end{stroke:#525252;stroke-width:1}
text.k{fill:#1a1a1a;stroke:#fff;stroke-width:3px;paint-order:stroke;stroke-linejoin:round;
text-anchor:middle;dominant-baseline:central;pointer-events:none}
text.k.cancel{fill:#6a3d9a;font-weight:bold}
text.k.end{fill:#525252;font-weight:bold}
text.x{fill:#3949ab;opacity:.22;font-weight:bold;text-anchor:middle;dominant-baseline:central;
pointer-events:none}
#tip{position:absolute;pointer-events:none;background:rgba(255,255,255,.96);border:1px solid #888;
border-radius:4px;padding:.3rem .5rem;font-size:.85rem;box-shadow:0 1px 4px rgba(0,0,0,.25);max-width:22rem}
#tip .t{font-weight:bold}
.legend{list-style:none;padding:0;margin:0;font-size:.9rem}
.legend li{margin:.25rem 0;display:flex;align-items:center;gap:.4rem}
.sw{display:inline-block;width:1.1rem;height:.8rem;border:1px solid #9e9e9e}
.sw.w{background:transparent;border:2px solid #1f3b8c}
.sw.e{background:transparent;border:2px dashed #00796b}
.sw.cancel{background:repeating-linear-gradient(45deg,#6a3d9a 0 2px,#f4f4f4 2px 5px);
border-color:#6a3d9a}
.sw.end{background:repeating-linear-gradient(45deg,#525252 0 2px,#f4f4f4 2px 5px);
border-color:#525252}
.controls{margin:.4rem 0;font-size:.8rem;color:#555}
table{border-collapse:collapse;margin-top:1rem;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}
td.num{text-align:right}
"""

# Text goes in with textContent, never innerHTML: names come from data files.
_SCRIPT = """
(function () {
  "use strict";
  var svg = document.getElementById("map");
  var wrap = svg.parentNode;
  var tip = document.getElementById("tip");
  var home = svg.getAttribute("viewBox").split(" ").map(Number);
  var vb = home.slice();
  var pinned = null;
  var drag = null;
  var moved = false;
  var store = document.getElementById("villages");
  var data = store ? JSON.parse(store.textContent) : null;
  if (data) {
    var body = document.querySelector("#affected tbody");
    var rows = document.createDocumentFragment();
    data.rows.forEach(function (r, i) {
      var tr = document.createElement("tr");
      tr.dataset.code = r[0];
      [String(i + 1), r[1], r[0], data.kec[r[2]], r[3], r[4], r[5]].forEach(function (text, j) {
        var td = document.createElement("td");
        td.textContent = text;
        if (j === 0 || j > 4) { td.className = "num"; }
        tr.appendChild(td);
      });
      rows.appendChild(tr);
    });
    body.appendChild(rows);
  }
  function setView() { svg.setAttribute("viewBox", vb.join(" ")); }
  function people(s) { return s === "" ? "tidak diketahui" : Number(s).toLocaleString("id-ID"); }
  function place(ev) {
    var r = wrap.getBoundingClientRect();
    tip.style.left = (ev.clientX - r.left + 14) + "px";
    tip.style.top = (ev.clientY - r.top + 14) + "px";
  }
  function show(p, ev) {
    var d = p.dataset;
    var r = d.row !== undefined && data ? data.rows[Number(d.row)] : null;
    var lines = r ? [
      r[1] + " (" + r[0] + ")",
      "Kecamatan: " + data.kec[r[2]],
      "Tingkat: " + r[3],
      "Cakupan: " + r[4],
      "Penduduk terdampak: " + r[5]
    ] : [
      d.name + " (" + d.code + ")",
      "Kecamatan: " + d.kecamatan,
      "Tingkat: " + d.levelLabel,
      "Cakupan: " + (Number(d.fraction) * 100).toFixed(0) + "%",
      "Penduduk terdampak: " + people(d.people)
    ];
    tip.textContent = "";
    lines.forEach(function (text, i) {
      var div = document.createElement("div");
      div.textContent = text;
      if (i === 0) { div.className = "t"; }
      tip.appendChild(div);
    });
    tip.hidden = false;
    place(ev);
  }
  function unpin() {
    if (pinned) { pinned.classList.remove("pinned"); }
    pinned = null;
    tip.hidden = true;
  }
  svg.addEventListener("mouseover", function (ev) {
    if (!pinned && ev.target.classList.contains("v")) { show(ev.target, ev); }
  });
  svg.addEventListener("mousemove", function (ev) { if (!pinned && !tip.hidden) { place(ev); } });
  svg.addEventListener("mouseout", function (ev) {
    if (!pinned && ev.target.classList.contains("v")) { tip.hidden = true; }
  });
  svg.addEventListener("click", function (ev) {
    if (moved) { return; }
    var t = ev.target;
    if (t.classList.contains("v") && t !== pinned) {
      unpin();
      pinned = t;
      t.classList.add("pinned");
      show(t, ev);
    } else {
      unpin();
    }
  });
  function unitsPerPixel() {
    return Math.max(vb[2] / svg.clientWidth, vb[3] / svg.clientHeight);
  }
  svg.addEventListener("wheel", function (ev) {
    ev.preventDefault();
    var f = ev.deltaY < 0 ? 1 / 1.2 : 1.2;
    var pt = svg.createSVGPoint();
    pt.x = ev.clientX;
    pt.y = ev.clientY;
    var p = pt.matrixTransform(svg.getScreenCTM().inverse());
    vb = [p.x - (p.x - vb[0]) * f, p.y - (p.y - vb[1]) * f, vb[2] * f, vb[3] * f];
    setView();
  }, { passive: false });
  svg.addEventListener("pointerdown", function (ev) {
    if (ev.button !== 0) { return; }
    drag = { x: ev.clientX, y: ev.clientY, vb: vb.slice(), k: unitsPerPixel() };
    moved = false;
  });
  window.addEventListener("pointermove", function (ev) {
    if (!drag) { return; }
    var dx = ev.clientX - drag.x;
    var dy = ev.clientY - drag.y;
    if (!moved && Math.abs(dx) + Math.abs(dy) > 3) {
      moved = true;
      svg.classList.add("dragging");
    }
    if (moved) {
      vb = [drag.vb[0] - dx * drag.k, drag.vb[1] - dy * drag.k, drag.vb[2], drag.vb[3]];
      setView();
    }
  });
  window.addEventListener("pointerup", function () {
    drag = null;
    svg.classList.remove("dragging");
  });
  document.getElementById("reset").addEventListener("click", function () {
    vb = home.slice();
    setView();
  });
})();
"""


def _raster_image(raster: RasterLayer, projection: _Projection) -> str:
    """An SVG ``<image>`` with the raster as an embedded PNG (no external URL)."""
    import base64

    from matplotlib.image import imsave

    buffer = io.BytesIO()
    imsave(buffer, raster.rgba(_HTML_RASTER_MAX_PX), format="png", metadata={"Software": None})  # type: ignore[dict-item]
    west, south, east, north = raster.bounds
    x = (west - projection.west) * projection.kx * projection.scale
    y = (projection.north - north) * projection.scale
    width = (east - west) * projection.kx * projection.scale
    height = (north - south) * projection.scale
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (
        f'<image class="r" x="{_num(x)}" y="{_num(y)}" width="{_num(width)}" height="{_num(height)}" '
        f'preserveAspectRatio="none" style="image-rendering:pixelated" href="data:image/png;base64,{data}"'
        f' aria-label="{_attr(raster.label)}"/>'
    )


# Hatches for ended alerts, in user units of the view (the same look as the PNG's, never a level's fill).
_PATTERNS = "".join(
    f'<pattern id="hatch-{kind}" patternUnits="userSpaceOnUse" width="7" height="7" '
    f'patternTransform="rotate({45 if kind == "end" else -45})"><rect width="7" height="7" fill="{ENDED_FILL}"/>'
    f'<line x1="0" y1="0" x2="0" y2="7" stroke="{ENDED_COLOURS[kind]}" stroke-width="2.5"/></pattern>'
    for kind in ENDED_WORDS
)


def risk_map_html(
    villages: gpd.GeoDataFrame,
    warnings: gpd.GeoDataFrame,
    title: MapTitle,
    *,
    raster: RasterLayer | None = None,
    outline: Outline | None = None,
) -> str:
    """Render an interactive risk map as one self-contained HTML page that works offline.

    The page holds an inline SVG (one ``<path class="v">`` per village filled by level, or hatched with
    ``class="v end-cancel"``/``"v end-end"`` when its alert was cancelled or ended this run; warning areas as
    unfilled ``<path class="w">`` on top, ``class="w e"`` and dashed when ews drew them itself; kab/kota
    names and DICABUT/BERAKHIR as ``<text class="k">``), a legend with village counts and the source of each
    area, the title block, a tooltip per village on hover or click, wheel zoom and drag pan, and a table of
    the villages with a level (highest level and largest fraction first), then those whose alert ended.
    Geometries are simplified to 1/2000 of the view and coordinates rounded, to keep the page small. A page
    listing more than 2,000 villages (a national one) carries their data once, as a JSON element
    (``<script type="application/json" id="villages">``) from which its script builds the table and the
    tooltips, their paths pointing at a row (``data-row``) instead of repeating it: 15,000 leveled villages
    make a page of ~2.4 MB instead of ~6.8 MB. All text from the inputs is HTML-escaped. An exercise says
    LATIHAN in the page title, a banner and across the map.

    Parameters
    ----------
    villages : geopandas.GeoDataFrame
        As for :func:`risk_map_png`.
    warnings : geopandas.GeoDataFrame
        As for :func:`risk_map_png`.
    title : MapTitle
        Text of the title block and footnote.
    raster : RasterLayer, optional
        Embedded as a PNG under the villages (e.g. rain); villages without a level are then unfilled.
    outline : Outline, optional
        The region's outline, one ``<path class="o">`` under the villages standing for the untouched ones.

    Returns
    -------
    str
        The HTML document (UTF-8 text; no external URL).

    Raises
    ------
    ValueError
        (:class:`ews.errors.DataValidationError`) A column is missing, the CRS is not EPSG:4326, or a
        village has a level outside 0..3, a fraction outside 0..1 or an unknown ``ended`` value.
    """
    rows = _villages(villages)
    every_area = _warnings(warnings)
    extent = _view_extent(rows, every_area)
    areas = [a for a in every_area if _in_view(a.geometry, extent)]
    counts = _counts(rows, outline)
    projection = _Projection(extent)
    tolerance = max(extent[2] - extent[0], extent[3] - extent[1]) / _SIMPLIFY_DIVISOR

    outline_path = ""
    if outline is not None:
        fill = "none" if raster is not None else LEVEL_COLOURS[Level.NONE]
        outline_path = (
            f'<path class="o" fill="{fill}" d="{projection.path(_simplified(outline.geometry, tolerance))}"/>\n'
        )
    listed = _listed(rows)
    compact = len(listed) > _HTML_INLINE_ROWS
    row_of = {v.code: i for i, v in enumerate(listed)} if compact else {}
    village_paths = []
    for v, shape in zip(rows, _all_simplified([v.geometry for v in rows], tolerance), strict=True):
        d = projection.path(shape)
        people = "" if v.people is None else str(round(v.people))
        if v.ended:
            fill, css = f"url(#hatch-{v.ended})", f"v end-{v.ended}"
        else:
            fill, css = "none" if raster is not None and v.level is Level.NONE else LEVEL_COLOURS[v.level], "v"
        if v.code in row_of:  # its tooltip reads the table's row (the JSON), not attributes of its own
            village_paths.append(f'<path class="{css}" fill="{fill}" d="{d}" data-row="{row_of[v.code]}"/>')
            continue
        village_paths.append(
            f'<path class="{css}" fill="{fill}" d="{d}" data-code="{_attr(v.code)}" '
            f'data-name="{_attr(v.name)}" data-kecamatan="{_attr(v.kecamatan)}" data-level="{int(v.level)}" '
            f'data-level-label="{_attr(_level_text(v))}" '
            + (f'data-ended="{v.ended}" ' if v.ended else "")
            + f'data-fraction="{round(v.fraction, 4)}" data-people="{people}"/>'
        )
    warning_paths = [
        f'<path class="{"w e" if a.estimate else "w"}" d="{projection.path(_simplified(a.geometry, tolerance))}" '
        f'data-id="{_attr(a.identifier)}" data-label="{_attr(a.label)}"/>'
        for a in areas
    ]
    char_height = _HTML_LABEL_UNITS / projection.scale
    labels = []
    for label in _label_places(rows, extent, char_height):
        x = (label.x - projection.west) * projection.kx * projection.scale
        y = (projection.north - label.y) * projection.scale
        size = _HTML_LABEL_UNITS * (1.0 if label.kind == "kabkota" else _ENDED_LABEL_PT / _LABEL_PT)
        css = "k" if label.kind == "kabkota" else f"k {label.kind}"
        labels.append(
            f'<text class="{css}" x="{_num(x)}" y="{_num(y)}" font-size="{_num(size)}">{_attr(label.text)}</text>'
        )
    if title.exercise:
        labels.append(
            f'<text class="x" x="{_num(projection.width / 2)}" y="{_num(projection.height / 2)}" '
            f'font-size="{_num(min(projection.width, projection.height) / 5)}" '
            f'transform="rotate(-30 {_num(projection.width / 2)} {_num(projection.height / 2)})">{EXERCISE_WORD}</text>'
        )
    view_box = f"0 0 {_num(projection.width)} {_num(projection.height)}"
    heading = _heading(title)
    svg = (
        f'<svg id="map" viewBox="{view_box}" fill-rule="evenodd" role="img" '
        f'aria-label="{_attr("Peta risiko " + heading)}">\n'
        f"<defs>{_PATTERNS}</defs>\n"
        + (_raster_image(raster, projection) + "\n" if raster is not None else "")
        + outline_path
        + "<g>\n"
        + "\n".join(village_paths)
        + "\n</g>\n"
        "<g>\n" + "\n".join(warning_paths) + "\n</g>\n"
        "<g>\n" + "\n".join(labels) + "\n</g>\n</svg>"
    )

    legend_items = [
        f'<li><span class="sw" style="background:{LEVEL_COLOURS[level]}"></span>{_attr(label)}</li>'
        for level, label in _legend_labels(counts)
    ]
    legend_items += [
        f'<li><span class="sw {kind}"></span>{_attr(label)}</li>' for kind, label in _ended_labels(_ended_counts(rows))
    ]
    legend_items += [
        f'<li><span class="sw {"e" if estimate else "w"}"></span>{_attr(label)} ({n})</li>'
        for label, estimate, n in _area_legend(areas)
    ]
    if raster is not None:
        from matplotlib import colormaps
        from matplotlib.colors import to_hex

        cmap = colormaps[RAIN_CMAP]
        stops = ",".join(to_hex(cmap(0.25 + 0.75 * f)) for f in (0.0, 0.5, 1.0))
        source = f" ({raster.source})" if raster.source else ""
        legend_items.append(
            f'<li><span class="sw" style="background:linear-gradient(90deg,{stops})"></span>'
            f"{_attr(raster.label)}: {_RASTER_MIN:g}-{raster.vmax():.0f}{_attr(source)}</li>"
        )

    ids = _ids_line(title.warning_ids)
    hazards = _hazards_line(title)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="id">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_attr('Peta risiko: ' + heading)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        '<header class="title">',
        f'<p class="exercise">{_attr(EXERCISE_NOTE)}</p>' if title.exercise else "",
        f"<h1>{_attr(heading)}</h1>",
        f'<p class="hazards">{_attr(hazards)}</p>' if hazards else "",
        f'<p class="valid">{_attr(_validity(title))}</p>',
        f'<p class="ids">{_attr(ids)}</p>' if ids else "",
        "</header>",
        '<div class="layout">',
        f'<div class="mapwrap">{svg}<div id="tip" hidden></div></div>',
        '<aside><ul class="legend">',
        *legend_items,
        "</ul>",
        '<p class="controls">Gulir untuk zoom, seret untuk menggeser, klik desa untuk detail. '
        '<button id="reset" type="button">Tampilan awal</button></p>',
        "</aside>",
        "</div>",
        _table(rows, compact=compact),
        f'<p class="note">{_attr(title.population_note)}</p>' if title.population_note else "",
        f"<script>{_SCRIPT}</script>",
        "</body>",
        "</html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"


def _listed(rows: Sequence[_Village]) -> list[_Village]:
    """The table's villages in its order: levels in force (highest, then largest fraction), then ended alerts."""
    affected = sorted(
        (v for v in rows if v.level > Level.NONE and not v.ended), key=lambda v: (-int(v.level), -v.fraction, v.code)
    )
    ended = sorted((v for v in rows if v.ended), key=lambda v: (v.ended, -int(v.level), v.code))
    return [*affected, *ended]


_TABLE_HEAD = (
    '<table id="affected">\n<thead><tr><th>No</th><th>Desa</th><th>Kode</th><th>Kecamatan</th>'
    "<th>Tingkat</th><th>Cakupan</th><th>Penduduk terdampak</th></tr></thead>\n"
)


def _json_script(listed: Sequence[_Village]) -> str:
    """The listed villages once, as JSON the page's script builds the table and the tooltips from.

    ``{"kec": [kecamatan names], "rows": [[code, name, kecamatan index, level, cakupan, people], ...]}``
    with the texts the table shows; ``<``, ``>`` and ``&`` are escaped so no name can close the element.
    """
    kecamatan: dict[str, int] = {}
    data = [
        [
            v.code,
            v.name,
            kecamatan.setdefault(v.kecamatan, len(kecamatan)),
            _level_text(v),
            "–" if v.ended else _percent(v.fraction),
            "–" if v.ended else _people_text(v.people),
        ]
        for v in listed
    ]
    text = json.dumps({"kec": list(kecamatan), "rows": data}, ensure_ascii=False, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f'<script type="application/json" id="villages">{text}</script>'


def _table(rows: Sequence[_Village], *, compact: bool = False) -> str:
    listed = _listed(rows)
    if not listed:
        return '<p class="empty">Tidak ada desa dengan tingkat peringatan.</p>'
    if compact:  # the rows come from the JSON (see _json_script), built by the page's script
        return _TABLE_HEAD + "<tbody></tbody>\n</table>\n" + _json_script(listed)
    body = "\n".join(
        f'<tr data-code="{_attr(v.code)}"><td class="num">{i}</td><td>{_attr(v.name)}</td>'
        f"<td>{_attr(v.code)}</td><td>{_attr(v.kecamatan)}</td><td>{_attr(_level_text(v))}</td>"
        + (
            '<td class="num">–</td><td class="num">–</td></tr>'
            if v.ended
            else f'<td class="num">{_percent(v.fraction)}</td><td class="num">{_people_text(v.people)}</td></tr>'
        )
        for i, v in enumerate(listed, start=1)
    )
    return f"{_TABLE_HEAD}<tbody>\n{body}\n</tbody>\n</table>"

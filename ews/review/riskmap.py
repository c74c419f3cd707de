"""Risk maps of villages by warning level under BMKG warning polygons: a PNG and an offline HTML page.

Both renderers are pure: they take GeoDataFrames and a :class:`MapTitle` and return ``bytes``/``str``;
the caller writes the artefact. The PNG uses Matplotlib's object API with the Agg canvas (never pyplot),
so it is headless and safe to call from several threads. The HTML page is one self-contained file with an
inline SVG, CSS and script: no external URL, so it opens offline (e.g. on a laptop in a BPBD post).
"""

from __future__ import annotations

import html
import io
import math
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
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

__all__ = ["LEVEL_COLOURS", "WARNING_COLOUR", "MapTitle", "risk_map_html", "risk_map_png"]

LEVEL_COLOURS: dict[Level, str] = {
    Level.NONE: "#e0e0e0",
    Level.WASPADA: "#f7d038",
    Level.SIAGA: "#f28c28",
    Level.AWAS: "#d7301f",
}
"""Fill colour per level, shared by the PNG and the HTML map."""

WARNING_COLOUR = "#1f3b8c"
"""Outline colour of BMKG warning polygons."""

NONE_LABEL = "tidak terdampak"
WARNING_LABEL = "area peringatan BMKG"
UNKNOWN_PEOPLE = "tidak diketahui"

VILLAGE_COLUMNS = ("code", "name", "level", "fraction", "population_exposed", "kecamatan", "geometry")
WARNING_COLUMNS = ("identifier", "event", "geometry")

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des")
_MAX_IDS = 3
_MARGIN = 0.10
_MIN_SPAN_DEG = 0.01  # about 1 km: a single point-like extent still gets a readable frame
_SVG_SIZE = 1000.0  # the longer side of the initial viewBox, in SVG user units
_SIMPLIFY_DIVISOR = 2000.0
_FIGSIZE = (10.0, 8.0)  # inches
_AXES = (0.08, 0.10, 0.64, 0.74)  # left, bottom, width, height as fractions of the figure
_LEVELS_DESC = (Level.AWAS, Level.SIAGA, Level.WASPADA)

Bounds = tuple[float, float, float, float]
RAIN_CMAP = "Blues"
_RASTER_MIN = 0.5  # mm: less is drawn transparent (BMKG's lower bound of light rain per day)
_HTML_RASTER_MAX_PX = 1200  # longer side of the raster image embedded in the HTML page


@dataclass(frozen=True)
class RasterLayer:
    """A raster (e.g. the 24-hour rain accumulation) drawn under the village levels.

    ``values`` is north-up, rows from ``bounds[3]`` (north) to ``bounds[1]`` (south); NaN and values
    below 0.5 are transparent. ``label`` names the quantity and its units for the legend.
    """

    values: np.ndarray
    bounds: Bounds
    label: str

    @classmethod
    def from_transform(cls, values: np.ndarray, transform: Sequence[float], label: str) -> RasterLayer:
        """From a north-up rasterio Affine ``(a, 0, c, 0, e, f)``."""
        a, _, c, _, e, f = (float(v) for v in transform[:6])
        rows, cols = values.shape
        return cls(values, (c, f + e * rows, c + a * cols, f), label)

    def vmax(self) -> float:
        """Top of the colour scale: the 99.5th percentile, at least 20 (mm)."""
        finite = self.values[np.isfinite(self.values)]
        return max(20.0, float(np.percentile(finite, 99.5))) if finite.size else 20.0

    def rgba(self, max_px: int | None = None) -> np.ndarray:
        """The layer coloured with :data:`RAIN_CMAP` as an RGBA array (transparent where dry or missing)."""
        from matplotlib import colormaps

        values = self.values
        if max_px is not None:
            step = max(1, int(np.ceil(max(values.shape) / max_px)))
            values = values[::step, ::step]
        scaled = np.clip(np.nan_to_num(values, nan=0.0) / self.vmax(), 0.0, 1.0)
        rgba = colormaps[RAIN_CMAP](0.25 + 0.75 * scaled)
        rgba[..., 3] = np.where(np.isfinite(values) & (values >= _RASTER_MIN), 0.75, 0.0)
        return np.asarray(rgba)


@dataclass(frozen=True)
class MapTitle:
    """What the title block of a risk map says.

    Attributes
    ----------
    event : str
        The hazard as BMKG names it, e.g. ``"Hujan Lebat dan Petir"``.
    area_desc : str
        The area the map covers, e.g. ``"Gorontalo"``.
    warning_ids : tuple of str
        CAP identifiers of the warnings shown; the title lists three and counts the rest.
    valid_from, valid_until : datetime or None
        Validity of the warning(s), timezone-aware and already in the local zone ``zone_name``.
    zone_name : str
        ``"WIB"``, ``"WITA"`` or ``"WIT"``.
    population_note : str or None
        A footnote on how people were counted, or ``None`` for no footnote.
    """

    event: str
    area_desc: str
    warning_ids: tuple[str, ...]
    valid_from: datetime | None
    valid_until: datetime | None
    zone_name: str
    population_note: str | None


@dataclass(frozen=True)
class _Village:
    code: str
    name: str
    kecamatan: str
    level: Level
    fraction: float
    people: float | None
    geometry: BaseGeometry | None


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
        people = None if _is_missing(row.population_exposed) else float(row.population_exposed)
        geometry = row.geometry if isinstance(row.geometry, BaseGeometry) else None
        out.append(
            _Village(
                code=code,
                name=str(row.name),
                kecamatan="" if _is_missing(row.kecamatan) else str(row.kecamatan),
                level=level,
                fraction=min(max(fraction, 0.0), 1.0),
                people=people,
                geometry=geometry,
            )
        )
    # Draw higher levels last so their outlines are not hidden under neighbours.
    out.sort(key=lambda v: (int(v.level), v.code))
    return out


def _warnings(frame: Any) -> list[tuple[str, BaseGeometry]]:
    _check_frame(frame, WARNING_COLUMNS, "warnings")
    out = [
        (str(row.identifier), row.geometry)
        for row in frame.itertuples(index=False)
        if isinstance(row.geometry, BaseGeometry) and not row.geometry.is_empty
    ]
    out.sort(key=lambda item: item[0])
    return out


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


def _view_extent(villages: Sequence[_Village], warnings: Sequence[tuple[str, BaseGeometry]]) -> Bounds:
    """Warnings and affected villages plus a margin; else all villages; else the warnings; else a unit box."""
    focus = [g for _, g in warnings] + [v.geometry for v in villages if v.level > Level.NONE]
    box = _bounds(focus) or _bounds(v.geometry for v in villages)
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


# ------------------------------------------------------------------------------------------- text


def _when(moment: datetime) -> str:
    return f"{moment.day} {_MONTHS[moment.month - 1]} {moment.year} {moment:%H:%M}"


def _validity(title: MapTitle) -> str:
    """``"Berlaku 24 Sep 2026 15:27–17:27 WITA"``, spelling out both dates when they differ."""
    start, end, zone = title.valid_from, title.valid_until, title.zone_name
    if start is not None and end is not None:
        if start.date() == end.date():
            return f"Berlaku {_when(start)}–{end:%H:%M} {zone}"
        return f"Berlaku {_when(start)} – {_when(end)} {zone}"
    if start is not None:
        return f"Berlaku mulai {_when(start)} {zone}"
    if end is not None:
        return f"Berlaku sampai {_when(end)} {zone}"
    return "Waktu berlaku tidak diketahui"


def _ids_line(ids: Sequence[str]) -> str:
    if not ids:
        return ""
    shown = ", ".join(ids[:_MAX_IDS])
    rest = len(ids) - _MAX_IDS
    return f"Peringatan: {shown} +{rest}" if rest > 0 else f"Peringatan: {shown}"


def _heading(title: MapTitle) -> str:
    return f"{title.event} – {title.area_desc}" if title.area_desc else title.event


def _counts(villages: Sequence[_Village]) -> dict[Level, int]:
    counts = dict.fromkeys(Level, 0)
    for village in villages:
        counts[village.level] += 1
    return counts


def _legend_labels(counts: dict[Level, int]) -> list[tuple[Level, str]]:
    labels = [(level, f"{level.label} ({counts[level]} desa)") for level in _LEVELS_DESC]
    labels.append((Level.NONE, f"{NONE_LABEL} ({counts[Level.NONE]} desa)"))
    return labels


def _people_text(people: float | None) -> str:
    if people is None:
        return UNKNOWN_PEOPLE
    return f"{round(people):,}".replace(",", ".")  # Indonesian thousands separator


def _percent(fraction: float) -> str:
    return f"{fraction * 100:.0f}%"


# -------------------------------------------------------------------------------------------- PNG


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


def risk_map_png(
    villages: gpd.GeoDataFrame,
    warnings: gpd.GeoDataFrame,
    title: MapTitle,
    *,
    dpi: int = 120,
    raster: RasterLayer | None = None,
) -> bytes:
    """Render a static risk map: villages filled by level, BMKG warning polygons outlined.

    Parameters
    ----------
    villages : geopandas.GeoDataFrame
        EPSG:4326. Columns ``code`` (str), ``name`` (str), ``level`` (int 0..3), ``fraction`` (0..1),
        ``population_exposed`` (people, NaN when unknown), ``kecamatan`` (str) and ``geometry``
        (Polygon/MultiPolygon). Untouched neighbours come with level 0.
    warnings : geopandas.GeoDataFrame
        EPSG:4326. Columns ``identifier``, ``event`` and ``geometry`` (warning polygons); may be empty.
    title : MapTitle
        Text of the title block and footnote.
    dpi : int, default 120
        Resolution; the figure is 10 x 8 inches.
    raster : RasterLayer, optional
        Drawn under the villages (e.g. rain); villages without a level are then left unfilled.

    Returns
    -------
    bytes
        A PNG without software or time metadata, so equal inputs give equal bytes.

    Raises
    ------
    ValueError
        (:class:`ews.errors.DataValidationError`) A column is missing, the CRS is not EPSG:4326, or a
        village has a level outside 0..3 or a fraction outside 0..1.
    """
    rows = _villages(villages)
    polygons = _warnings(warnings)
    extent = _view_extent(rows, polygons)
    counts = _counts(rows)

    figure = Figure(figsize=_FIGSIZE, dpi=dpi)
    FigureCanvasAgg(figure)
    axes = figure.add_axes(_AXES)

    paths: list[Path] = []
    fills: list[str] = []
    for village in rows:
        path = _mpl_path(_polygons(village.geometry))
        if path is not None:
            paths.append(path)
            unfilled = raster is not None and village.level is Level.NONE
            fills.append("none" if unfilled else LEVEL_COLOURS[village.level])
    if raster is not None:
        west, south, east, north = raster.bounds
        axes.imshow(
            raster.rgba(), extent=(west, east, south, north), origin="upper", interpolation="nearest",
            aspect="auto", zorder=0,
        )  # fmt: skip
    if paths:
        axes.add_collection(
            PathCollection(
                paths,
                facecolors=fills,
                edgecolors="#9e9e9e" if raster is not None else "#ffffff",
                linewidths=0.5,
                zorder=1,
                alpha=0.85 if raster is not None else None,
            ),
            autolim=False,
        )
    outlines = [p for p in (_mpl_path(_polygons(g)) for _, g in polygons) if p is not None]
    if outlines:
        axes.add_collection(
            PathCollection(outlines, facecolors="none", edgecolors=WARNING_COLOUR, linewidths=1.5, zorder=2),
            autolim=False,
        )

    # Widen the view to the shape of the axes box so the map fills it instead of shrinking it.
    minx, miny, maxx, maxy = _fit(extent, box_ratio=(_AXES[2] * _FIGSIZE[0]) / (_AXES[3] * _FIGSIZE[1]))
    axes.set_xlim(minx, maxx)
    axes.set_ylim(miny, maxy)
    axes.set_aspect(1 / _lon_factor(extent))
    axes.set_xlabel("Bujur")
    axes.set_ylabel("Lintang")
    axes.ticklabel_format(useOffset=False, style="plain")
    axes.tick_params(labelsize=8)
    axes.set_facecolor("#f5f8fb")

    handles = [
        Patch(facecolor=LEVEL_COLOURS[level], edgecolor="#9e9e9e", linewidth=0.5, label=label)
        for level, label in _legend_labels(counts)
    ]
    handles.append(Patch(facecolor="none", edgecolor=WARNING_COLOUR, linewidth=1.5, label=WARNING_LABEL))
    if raster is not None:
        from matplotlib import colormaps

        cmap = colormaps[RAIN_CMAP]
        top = raster.vmax()
        for frac in (0.0, 0.5, 1.0):
            value = _RASTER_MIN if frac == 0.0 else frac * top
            handles.append(Patch(facecolor=cmap(0.25 + 0.75 * frac), edgecolor="none", alpha=0.75,
                                 label=f"{raster.label}: {value:.0f}"))  # fmt: skip
    axes.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.03, 1.0), borderaxespad=0.0, fontsize=9)

    # parse_math=False: names come from data files and a "$" must not switch to mathtext.
    heading = textwrap.fill(_heading(title), width=80)
    figure.text(0.5, 0.965, heading, ha="center", va="top", fontsize=13, weight="bold", parse_math=False)
    figure.text(0.5, 0.905, _validity(title), ha="center", va="top", fontsize=11, parse_math=False)
    ids = _ids_line(title.warning_ids)
    if ids:
        figure.text(0.5, 0.875, ids, ha="center", va="top", fontsize=8, color="#555555", parse_math=False)
    if title.population_note:
        note = textwrap.fill(title.population_note, width=140)
        figure.text(0.02, 0.015, note, ha="left", va="bottom", fontsize=7, color="#555555", parse_math=False)

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
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
.ids{font-size:.8rem;color:#555;margin:0 0 .6rem}
.note{font-size:.8rem;color:#555}
.layout{display:flex;flex-wrap:wrap;gap:1rem;align-items:flex-start}
.mapwrap{position:relative;flex:1 1 640px;border:1px solid #ccc;background:#f5f8fb}
#map{display:block;width:100%;height:70vh;cursor:grab;touch-action:none;user-select:none}
#map.dragging{cursor:grabbing}
path{vector-effect:non-scaling-stroke}
path.v{stroke:#fff;stroke-width:.6}
path.v:hover,path.v.pinned{stroke:#000;stroke-width:2}
path.w{fill:none;stroke:#1f3b8c;stroke-width:2;pointer-events:none}
#tip{position:absolute;pointer-events:none;background:rgba(255,255,255,.96);border:1px solid #888;
border-radius:4px;padding:.3rem .5rem;font-size:.85rem;box-shadow:0 1px 4px rgba(0,0,0,.25);max-width:22rem}
#tip .t{font-weight:bold}
.legend{list-style:none;padding:0;margin:0;font-size:.9rem}
.legend li{margin:.25rem 0;display:flex;align-items:center;gap:.4rem}
.sw{display:inline-block;width:1.1rem;height:.8rem;border:1px solid #9e9e9e}
.sw.w{background:transparent;border:2px solid #1f3b8c}
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
  function setView() { svg.setAttribute("viewBox", vb.join(" ")); }
  function people(s) { return s === "" ? "tidak diketahui" : Number(s).toLocaleString("id-ID"); }
  function place(ev) {
    var r = wrap.getBoundingClientRect();
    tip.style.left = (ev.clientX - r.left + 14) + "px";
    tip.style.top = (ev.clientY - r.top + 14) + "px";
  }
  function show(p, ev) {
    var d = p.dataset;
    var lines = [
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


def risk_map_html(
    villages: gpd.GeoDataFrame, warnings: gpd.GeoDataFrame, title: MapTitle, *, raster: RasterLayer | None = None
) -> str:
    """Render an interactive risk map as one self-contained HTML page that works offline.

    The page holds an inline SVG (one ``<path class="v">`` per village filled by level, warning polygons as
    unfilled ``<path class="w">`` on top), a legend with village counts, the title block, a tooltip per
    village on hover or click, wheel zoom and drag pan, and a table of the villages with a level, highest
    level and largest fraction first. Geometries are simplified to 1/2000 of the view and coordinates
    rounded, to keep the page small. All text from the inputs is HTML-escaped.

    Parameters
    ----------
    villages : geopandas.GeoDataFrame
        EPSG:4326. Columns ``code`` (str), ``name`` (str), ``level`` (int 0..3), ``fraction`` (0..1),
        ``population_exposed`` (people, NaN when unknown), ``kecamatan`` (str) and ``geometry``.
    warnings : geopandas.GeoDataFrame
        EPSG:4326. Columns ``identifier``, ``event`` and ``geometry`` (warning polygons); may be empty.
    title : MapTitle
        Text of the title block and footnote.
    raster : RasterLayer, optional
        Embedded as a PNG under the villages (e.g. rain); villages without a level are then unfilled.

    Returns
    -------
    str
        The HTML document (UTF-8 text; no external URL).

    Raises
    ------
    ValueError
        (:class:`ews.errors.DataValidationError`) A column is missing, the CRS is not EPSG:4326, or a
        village has a level outside 0..3 or a fraction outside 0..1.
    """
    rows = _villages(villages)
    polygons = _warnings(warnings)
    extent = _view_extent(rows, polygons)
    counts = _counts(rows)
    projection = _Projection(extent)
    tolerance = max(extent[2] - extent[0], extent[3] - extent[1]) / _SIMPLIFY_DIVISOR

    village_paths = []
    for v in rows:
        d = projection.path(_simplified(v.geometry, tolerance))
        people = "" if v.people is None else str(round(v.people))
        fill = "none" if raster is not None and v.level is Level.NONE else LEVEL_COLOURS[v.level]
        village_paths.append(
            f'<path class="v" fill="{fill}" d="{d}" data-code="{_attr(v.code)}" '
            f'data-name="{_attr(v.name)}" data-kecamatan="{_attr(v.kecamatan)}" data-level="{int(v.level)}" '
            f'data-level-label="{_attr(v.level.label if v.level else NONE_LABEL)}" '
            f'data-fraction="{round(v.fraction, 4)}" data-people="{people}"/>'
        )
    warning_paths = [
        f'<path class="w" d="{projection.path(_simplified(g, tolerance))}" data-id="{_attr(ident)}"/>'
        for ident, g in polygons
    ]
    view_box = f"0 0 {_num(projection.width)} {_num(projection.height)}"
    svg = (
        f'<svg id="map" viewBox="{view_box}" fill-rule="evenodd" role="img" '
        f'aria-label="{_attr("Peta risiko " + _heading(title))}">\n'
        + (_raster_image(raster, projection) + "\n" if raster is not None else "")
        + "<g>\n"
        + "\n".join(village_paths)
        + "\n</g>\n"
        "<g>\n" + "\n".join(warning_paths) + "\n</g>\n</svg>"
    )

    legend_items = [
        f'<li><span class="sw" style="background:{LEVEL_COLOURS[level]}"></span>{_attr(label)}</li>'
        for level, label in _legend_labels(counts)
    ]
    legend_items.append(f'<li><span class="sw w"></span>{_attr(WARNING_LABEL)} ({len(polygons)})</li>')
    if raster is not None:
        from matplotlib import colormaps
        from matplotlib.colors import to_hex

        cmap = colormaps[RAIN_CMAP]
        stops = ",".join(to_hex(cmap(0.25 + 0.75 * f)) for f in (0.0, 0.5, 1.0))
        legend_items.append(
            f'<li><span class="sw" style="background:linear-gradient(90deg,{stops})"></span>'
            f"{_attr(raster.label)}: {_RASTER_MIN:g}-{raster.vmax():.0f}</li>"
        )

    heading = _heading(title)
    ids = _ids_line(title.warning_ids)
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
        f"<h1>{_attr(heading)}</h1>",
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
        _table(rows),
        f'<p class="note">{_attr(title.population_note)}</p>' if title.population_note else "",
        f"<script>{_SCRIPT}</script>",
        "</body>",
        "</html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"


def _table(rows: Sequence[_Village]) -> str:
    affected = sorted((v for v in rows if v.level > Level.NONE), key=lambda v: (-int(v.level), -v.fraction, v.code))
    if not affected:
        return '<p class="empty">Tidak ada desa dengan tingkat peringatan.</p>'
    body = "\n".join(
        f'<tr data-code="{_attr(v.code)}"><td class="num">{i}</td><td>{_attr(v.name)}</td>'
        f"<td>{_attr(v.code)}</td><td>{_attr(v.kecamatan)}</td><td>{_attr(v.level.label)}</td>"
        f'<td class="num">{_percent(v.fraction)}</td><td class="num">{_people_text(v.people)}</td></tr>'
        for i, v in enumerate(affected, start=1)
    )
    return (
        '<table id="affected">\n<thead><tr><th>No</th><th>Desa</th><th>Kode</th><th>Kecamatan</th>'
        "<th>Tingkat</th><th>Cakupan</th><th>Penduduk terdampak</th></tr></thead>\n"
        f"<tbody>\n{body}\n</tbody>\n</table>"
    )

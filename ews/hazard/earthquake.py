"""BMKG earthquakes -> estimated shaking intensity (MMI) per village -> levels (pure).

Intensity
---------
The median Modified Mercalli intensity comes from the intensity prediction equation (IPE) of
Allen, T. I., Wald, D. J. and Worden, C. B. (2012), "Intensity attenuation for active crustal
regions", *Journal of Seismology* 16(3): 409-433, doi:10.1007/s10950-012-9278-7, in its
hypocentral-distance form without a site term::

    MMI  = c0 + c1 M + c2 ln(sqrt(Rhyp^2 + Rm^2)) + S
    Rm   = m1 + m2 exp(M - 5)
    S    = c4 ln(Rhyp / 50)  for Rhyp > 50 km, else 0
    Rhyp = sqrt(epicentral distance^2 + depth^2)

with c0 = 2.085, c1 = 1.428, c2 = -1.402, c4 = 0.078, m1 = -0.209, m2 = 2.042. The coefficients were
checked against GEM's OpenQuake implementation, ``gem/oq-engine:openquake/hazardlib/gsim/allen_2012_ipe.py``
(class ``AllenEtAl2012Rhypo``, commit 27444273d94a113bf256ca7080485a7c1e6aaf34), and the function
reproduces OpenQuake's test table ``openquake/hazardlib/tests/gsim/data/a12ipe/AWW_IPE_RHYPO_MEAN.csv``
(generated there by an independent Matlab implementation; see ``tests/unit/test_quake_levels.py``).
The paper's stated range is M 5-7.9 and Rhyp < 300 km in active shallow crust; deep intraslab events
(much of Indonesia's seismicity) are outside it, so the estimate is a first-order screening value, not a
ShakeMap. ``Rhyp`` is floored at 1 km (the smallest distance of the reference table), which also keeps
MMI non-decreasing in magnitude (at ``Rhyp`` -> 0 the finite-fault term ``Rm`` would invert it for M < 6.7).
MMI is clipped to [1, 12].

Distance to a village
---------------------
The epicentral distance of a village is the distance from the epicentre to the *nearest point* of its
polygon (0 when the epicentre lies inside it), not to its centroid: a large village is shaken where it is
closest. Polygons are projected into an azimuthal-equidistant projection centred on the epicentre
(WGS 84 ellipsoid), where the distance from the origin to any point is its geodesic distance; the
nearest point of a polygon is then found in the plane (error well under 0.1 % for village-sized polygons
at a few hundred km).

Levels
------
A village's level is the highest level whose ``QuakeRules.mmi`` threshold its MMI reaches. ``held`` equals
``level``: an event's shaking is computed once and does not wobble between runs, so there is no
hysteresis margin. When BMKG says the event may cause a tsunami, every coastal village within
``QuakeRules.tsunami_radius_km`` (distance to its polygon) is at Awas at once.

Tsunami: how an alert ends
--------------------------
An event's message is one thread (:func:`link_revisions` makes BMKG's revised solutions Updates of the
first). Its identifier says what BMKG said: ``ews.gempa.<event_id>`` for shaking only,
``ews.gempa.<event_id>.tsunami`` when ``Potensi`` says the event may cause a tsunami, so the store knows
afterwards which events were tsunami alerts. A tsunami alert expires ``QuakeRules.tsunami_max_hours``
after the event, not ``valid_hours`` (its shaking-only villages, in the same message, share that expiry),
and says so in ``details["tsunami_ends"] = "max-hours"``: expiring, it ends without BMKG's end notice, and
the alert step must tell the command center. BMKG ends a tsunami warning by re-serving the event with
another ``Potensi``: an end notice ("Peringatan dini tsunami telah berakhir", :attr:`Earthquake.tsunami_ended`)
or, after a tsunami reading, "Tidak berpotensi tsunami". Either becomes a ``Cancel``
``ews.gempa.<event_id>.end`` of the event's thread (``details["tsunami_ends"] = "end-notice"``) with no
villages, so every village keeps the hazard it was told about (tsunami advice for the tsunami villages).
The Cancel's identifier and content are a function of the event and the thread's solutions: BMKG
re-serving the end notice gives the same message again, which ends nothing twice. An end for an event
never alerted cancels nothing and alerts nobody; a reading that does not say (``gempadirasakan`` carries
no ``Potensi``) never ends or lowers a tsunami alert.

Coast
-----
Without an authoritative list (``QuakeRules.coastal``), :func:`coastal_villages` takes as coastal the
villages that touch the sea: the outer outline of *all land* around the region, the union of the
region's villages and the polygons of the land around it (``QuakeRules.land``: the neighbouring
provinces' boundaries, less the region's own areas, see :func:`surrounding_land`). A land border with
a neighbour is then inside the land, not on its outline. Two tolerances close the gaps between layers
that were digitised apart (see :data:`COAST_GAP_M`, :data:`LAND_GAP_M`); a wider gap that is enclosed
(between the region and its neighbour, or between villages) is a hole of the union, and holes are not
sea. Without land, a land border is on the outline and counts as coast (the caller says so in the run).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import ArrayLike, NDArray
from pyproj import CRS, Transformer
from shapely.geometry.base import BaseGeometry

from ews.config import QuakeRules
from ews.exposure.coverage import WGS84, VillageLayer
from ews.types import HazardMessage, Level, VillageHazard, Warning

# Allen, Wald & Worden (2012), hypocentral-distance IPE (see the module docstring for the source).
C0, C1, C2, C4 = 2.085, 1.428, -1.402, 0.078
M1, M2 = -0.209, 2.042
ANELASTIC_FROM_KM = 50.0
MIN_RHYP_KM = 1.0
MMI_RANGE = (1.0, 12.0)

FUTURE_TOLERANCE = timedelta(minutes=5)
"""An event stamped later than ``now`` by more than this is refused (clock skew or a bad feed)."""

SEVERITY = {Level.AWAS: "Extreme", Level.SIAGA: "Severe", Level.WASPADA: "Moderate"}
"""CAP severity of a message from its highest village level (the inverse of ``LevelRules.severity``)."""

COAST_GAP_M = 100.0
"""Village polygons are grown by this (ground metres) before their union, closing slivers and gaps narrower
than twice this between villages of one layer (they are digitised apart by tens of metres in places); a
village within twice this of the land's outline is coastal (the outline lies this far out to sea from
the villages' own shore, so a village up to this far from the shore still counts)."""

LAND_GAP_M = 250.0
"""The land around the region is grown by this (m): with :data:`COAST_GAP_M` it closes gaps of up to
350 m between the region's villages and a neighbour's polygons, also where both meet the sea. Neighbouring
layers are coarser (kecamatan and kab/kota polygons, simplified upstream) and do not line up with the
villages: along Jawa Timur's border the kel/35 villages and the Jawa Tengah kecamatan of the shared data
lie up to about 600 m apart, but those gaps are enclosed, so holes, not sea. Measured on the shared data,
the coast of Jawa Timur (Jawa Tengah and Bali kecamatan as land) is the same for 100 m to 1,000 m, and
that of Kota Surabaya alone (the other Jawa Timur kecamatan as land) for 100 m to 500 m; at 1,000 m the
neighbours' grown shore covers real coastal kelurahan where a land border meets the sea (Romokalisari
beside Gresik, Medokan Ayu beside Sidoarjo). A sea channel narrower than about 350 m between the region
and its neighbour is closed too."""

_LAND_MARGIN_M = 10_000.0
"""Land farther than this (m) beyond the villages' bounding box cannot touch their outline and is cut off."""

COAST_METHOD = "coast-v2"
"""Names the derivation in the cache key: change it when :func:`coastal_villages` changes its answer."""

_CIRCLE_SEGMENTS = 16  # per quarter circle


@dataclass(frozen=True)
class Earthquake:
    """One BMKG earthquake as the TEWS feeds report it.

    ``event_id`` is :func:`quake_event_id` of the origin time and epicentre: the same event read from
    autogempa, gempaterkini or gempadirasakan, or resent later, has the same id.
    ``time`` is the origin time in UTC. ``lat``/``lon`` are degrees (WGS 84; south and west negative),
    ``depth_km`` the hypocentre depth. ``tsunami`` is True only when ``potensi`` says BMKG expects a
    tsunami; ``tsunami_ended`` is True when ``potensi`` says BMKG has ended the event's tsunami warning
    ("Peringatan dini tsunami telah berakhir", "... dinyatakan berakhir", "diakhiri"; ``tsunami`` is then
    False). ``notes`` explain anything read with a caveat (an unknown ``Potensi`` text, a duplicate that
    disagreed, a probable revision of another record).
    """

    event_id: str
    time: datetime
    lat: float
    lon: float
    magnitude: float
    depth_km: float
    region: str
    tsunami: bool
    potensi: str | None = None
    felt: str | None = None
    shakemap: str | None = None
    source: str = ""
    notes: tuple[str, ...] = field(default=())
    tsunami_ended: bool = False


class QuakeOutcome(NamedTuple):
    """What :func:`quake_message` decided: a message, or ``None`` and the reason in words."""

    message: HazardMessage | None
    reason: str


def quake_event_id(time: datetime, lat: float, lon: float) -> str:
    """Identify an event by its UTC origin time to the second and its epicentre rounded to 0.01 degree.

    BMKG's feeds give coordinates with two decimals and times to the second, so every feed and every
    resend of one event yields the same id, e.g. ``"20211214T032023Z_7.59S_122.24E"`` (safe in a CAP
    identifier: no spaces, commas, ``<`` or ``&``). A revised solution (another second or a moved
    epicentre) is another id.

    Raises
    ------
    ValueError
        ``time`` has no time zone.
    """
    if time.tzinfo is None:
        raise ValueError(f"earthquake time {time.isoformat()} has no time zone; give it in UTC")
    utc = time.astimezone(UTC)
    la, lo = round(lat, 2), round(lon, 2)
    ns = "S" if la < 0 else "N"
    ew = "W" if lo < 0 else "E"
    return f"{utc:%Y%m%dT%H%M%S}Z_{abs(la):.2f}{ns}_{abs(lo):.2f}{ew}"


MESSAGE_PREFIX = "ews.gempa."
TSUNAMI_SUFFIX = ".tsunami"
"""Ends the identifier of a message for a reading with tsunami potential (``ews.gempa.<event_id>.tsunami``)."""
END_SUFFIX = ".end"
"""Ends the identifier of the Cancel made from BMKG's end of a tsunami warning (``ews.gempa.<event_id>.end``)."""
END_AFTER = timedelta(seconds=1)
"""A Cancel is sent this long after the latest solution of its event, so it orders after every message of
the thread (an older message is a replay for the lifecycle) whichever solution BMKG's end names."""
TSUNAMI_EVENT = "Gempabumi Berpotensi Tsunami"

_PUNCTUATION = re.compile(r"[^0-9a-z]+")


def potensi_words(potensi: str | None) -> str:
    """BMKG's ``Potensi`` text folded for matching: lower case, punctuation and runs of spaces as one space."""
    return _PUNCTUATION.sub(" ", (potensi or "").lower()).strip()


def says_no_tsunami(potensi: str | None) -> bool:
    """Whether ``Potensi`` states that the event does not cause a tsunami ("Tidak berpotensi tsunami")."""
    return potensi_words(potensi).startswith("tidak berpotensi tsunami")


def quake_message_id(event_id: str, kind: str = "") -> str:
    """The identifier of a message about event ``event_id``: ``kind`` ``""``, ``"tsunami"`` or ``"end"``.

    Raises
    ------
    ValueError
        ``kind`` is none of those.
    """
    suffix = {"": "", "tsunami": TSUNAMI_SUFFIX, "end": END_SUFFIX}.get(kind)
    if suffix is None:
        raise ValueError(f"quake_message_id: kind {kind!r} is not '', 'tsunami' or 'end'")
    return f"{MESSAGE_PREFIX}{event_id}{suffix}"


def intensity_mmi(magnitude: ArrayLike, depth_km: ArrayLike, distance_km: ArrayLike) -> NDArray[np.float64]:
    """Median MMI from Allen, Wald & Worden (2012), hypocentral-distance form.

    Parameters
    ----------
    magnitude
        Moment magnitude (BMKG's ``Magnitude``); broadcasts with the other arguments.
    depth_km
        Hypocentre depth in km (>= 0).
    distance_km
        Epicentral (great-circle) distance in km (>= 0).

    Returns
    -------
    numpy.ndarray
        MMI (float64, broadcast shape), clipped to [1, 12].

    Raises
    ------
    ValueError
        A depth or distance is negative or not finite, or a magnitude is not finite.
    """
    m = np.asarray(magnitude, dtype=np.float64)
    h = np.asarray(depth_km, dtype=np.float64)
    d = np.asarray(distance_km, dtype=np.float64)
    if not (np.all(np.isfinite(m)) and np.all(np.isfinite(h)) and np.all(np.isfinite(d))):
        raise ValueError("intensity_mmi: magnitude, depth and distance must be finite numbers")
    if np.any(h < 0) or np.any(d < 0):
        raise ValueError("intensity_mmi: depth_km and distance_km must be >= 0 (km)")
    rhyp = np.maximum(np.hypot(d, h), MIN_RHYP_KM)
    rm = M1 + M2 * np.exp(m - 5.0)
    anelastic = np.where(rhyp > ANELASTIC_FROM_KM, C4 * np.log(rhyp / ANELASTIC_FROM_KM), 0.0)
    mmi = C0 + C1 * m + C2 * np.log(np.sqrt(rhyp**2 + rm**2)) + anelastic
    out: NDArray[np.float64] = np.clip(mmi, *MMI_RANGE)
    return out


def shaking_radius_km(magnitude: float, depth_km: float, mmi: float, *, max_km: float = 2000.0) -> float:
    """Epicentral distance (km) out to which :func:`intensity_mmi` reaches ``mmi``; 0 if nowhere.

    MMI falls monotonically with distance, so the radius is found by bisection (to 10 m).
    """
    if float(intensity_mmi(magnitude, depth_km, 0.0)) < mmi:
        return 0.0
    if float(intensity_mmi(magnitude, depth_km, max_km)) >= mmi:
        return max_km
    lo, hi = 0.0, max_km
    while hi - lo > 0.01:
        mid = (lo + hi) / 2
        if float(intensity_mmi(magnitude, depth_km, mid)) >= mmi:
            lo = mid
        else:
            hi = mid
    return lo


def _aeqd(lat: float, lon: float) -> CRS:
    return CRS.from_proj4(f"+proj=aeqd +lat_0={lat} +lon_0={lon} +datum=WGS84 +units=m +no_defs")


def village_distances_km(lat: float, lon: float, geometries: ArrayLike) -> NDArray[np.float64]:
    """Geodesic distance (km) from an epicentre to the nearest point of each polygon.

    Parameters
    ----------
    lat, lon
        Epicentre in degrees (WGS 84).
    geometries
        Village polygons in EPSG:4326 (lon, lat), e.g. ``layer.table.geometry.values``.

    Returns
    -------
    numpy.ndarray
        One distance per geometry in km; 0 where the epicentre lies inside the polygon.
    """
    geoms = np.asarray(geometries, dtype=object)
    forward = Transformer.from_crs(WGS84, _aeqd(lat, lon), always_xy=True)

    def project(coords: NDArray[np.float64]) -> NDArray[np.float64]:
        x, y = forward.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    projected = shapely.transform(geoms, project)
    metres: NDArray[np.float64] = shapely.distance(projected, shapely.Point(0.0, 0.0))
    return np.asarray(metres, dtype=np.float64) / 1000.0


def _circle(lat: float, lon: float, radius_km: float) -> BaseGeometry:
    """A geodesic circle around the epicentre as a lon/lat polygon (empty for radius 0)."""
    if radius_km <= 0:
        return shapely.Polygon()
    inverse = Transformer.from_crs(_aeqd(lat, lon), WGS84, always_xy=True)
    disc = shapely.Point(0.0, 0.0).buffer(radius_km * 1000.0, quad_segs=_CIRCLE_SEGMENTS)

    def unproject(coords: NDArray[np.float64]) -> NDArray[np.float64]:
        x, y = inverse.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    result: BaseGeometry = shapely.transform(disc, unproject)
    return result


def _lonlat(geometries: gpd.GeoSeries | Sequence[BaseGeometry], what: str) -> gpd.GeoSeries:
    """Polygons (a GeoSeries with a CRS, or lon/lat polygons) as a GeoSeries in EPSG:4326."""
    series = geometries if isinstance(geometries, gpd.GeoSeries) else gpd.GeoSeries(list(geometries), crs=WGS84)
    if series.crs is None:
        raise ValueError(f"coastal_villages: the {what} GeoSeries has no CRS; set it (EPSG:4326 for lon/lat)")
    return series.to_crs(WGS84)


def _sea_rings(union: BaseGeometry) -> NDArray[np.object_]:
    """The exterior rings of ``union`` that face the sea: not those of land inside another part's hole."""
    parts = shapely.get_parts(union)
    parts = parts[shapely.get_type_id(parts) == shapely.GeometryType.POLYGON]
    rings = shapely.get_exterior_ring(parts)
    # A part inside another part's shell lies in one of its holes (parts of a union never overlap): an
    # island in a lake, or the region inside a gap wider than the tolerances all round. Not on the sea.
    inner, outer = shapely.STRtree(shapely.polygons(rings)).query(parts, predicate="within")
    lake = np.zeros(len(parts), dtype=bool)
    lake[inner[inner != outer]] = True
    kept: NDArray[np.object_] = rings[~lake]
    return kept


def coastal_villages(
    villages: VillageLayer | gpd.GeoSeries | Sequence[BaseGeometry],
    codes: Sequence[str] | None = None,
    *,
    land: gpd.GeoSeries | Sequence[BaseGeometry] | None = None,
    gap_m: float = COAST_GAP_M,
    land_gap_m: float = LAND_GAP_M,
) -> set[str]:
    """Codes of the villages that touch the sea: the outer outline of all land, the villages and ``land``.

    The villages are grown by ``gap_m`` and the land around them by ``land_gap_m``, and all are unioned,
    so slivers and digitising gaps close (:data:`COAST_GAP_M`, :data:`LAND_GAP_M` say how wide and why).
    Only the *exterior* rings of that union count, and not those of land lying in a hole of other land:
    holes are lakes or enclosed gaps, not sea. A village within ``2 * gap_m`` of such a ring is coastal.
    Without ``land`` the outline of the villages alone is taken, and a land border with a neighbour
    counts as coast. Distances are ground metres: the polygons are projected azimuthal-equidistant
    about the centre of the villages' bounding box (WGS 84), whose scale error is below 0.5 % within
    1,000 km of it (a province) and below 3 % at 2,600 km (the far ends of Indonesia).

    Parameters
    ----------
    villages
        A :class:`~ews.exposure.coverage.VillageLayer` (codes from its table), a GeoSeries with a CRS,
        or polygons in EPSG:4326 (lon, lat).
    codes
        Village codes, one per geometry; required unless ``villages`` is a ``VillageLayer``.
    land
        Polygons of the land around the region (a GeoSeries with a CRS, or lon/lat polygons), without
        the region's own areas (:func:`surrounding_land`); an empty one means the region has no land
        border. Land beyond 10 km of the villages' bounding box is cut off first.
    gap_m
        Growth of the villages, in metres.
    land_gap_m
        Growth of the land around them, in metres.

    Returns
    -------
    set of str
        The coastal village codes.

    Raises
    ------
    ValueError
        ``codes`` is missing or its length differs from the number of geometries; a GeoSeries has no CRS.
    """
    if isinstance(villages, VillageLayer):
        lonlat = gpd.GeoSeries(villages.table.geometry.values, crs=WGS84)
        keys = list(villages.table["code"]) if codes is None else list(codes)
    else:
        lonlat = _lonlat(villages, "villages")
        if codes is None:
            raise ValueError("coastal_villages: give one code per geometry (codes=...)")
        keys = list(codes)
    if len(keys) != len(lonlat):
        raise ValueError(f"coastal_villages: {len(keys)} codes for {len(lonlat)} geometries")
    if len(keys) == 0:
        return set()
    west, south, east, north = lonlat.total_bounds
    local = _aeqd((south + north) / 2, (west + east) / 2)
    metres = lonlat.to_crs(local).values.to_numpy()
    # Simplifying first (well below the gap) makes the union several times faster on village layers.
    pieces = [shapely.buffer(shapely.simplify(metres, gap_m / 4), gap_m)]
    if land is not None and len(land):
        minx, miny, maxx, maxy = shapely.total_bounds(metres)
        margin = max(_LAND_MARGIN_M, 4 * (gap_m + land_gap_m))
        box = shapely.box(minx - margin, miny - margin, maxx + margin, maxy + margin)
        around = _lonlat(land, "land")
        # Far land goes first, in degrees (twice the margin; 1 degree > 109 km within Indonesia's latitudes),
        # so that a national layer is not projected about a centre thousands of km away.
        reach = 2 * margin / 111_000.0
        around = around[around.intersects(shapely.box(west - reach, south - reach, east + reach, north + reach))]
        around = around.to_crs(local).values.to_numpy()
        # Cut far away: the cut edges are >= 10 km from every village, so never within reach of one.
        around = shapely.intersection(around, box)
        around = around[~shapely.is_empty(around)]
        pieces.append(shapely.buffer(shapely.simplify(around, land_gap_m / 4), land_gap_m))
    rings = _sea_rings(shapely.union_all(np.concatenate(pieces)))
    hits = shapely.STRtree(metres).query(rings, predicate="dwithin", distance=2 * gap_m)
    return {str(keys[i]) for i in np.unique(hits[1])}


class SurroundingLand(NamedTuple):
    """What :func:`surrounding_land` kept (the neighbours' polygons) and left out (the region's own)."""

    land: gpd.GeoDataFrame
    own: tuple[str, ...]


def surrounding_land(land: gpd.GeoDataFrame, codes: Sequence[str]) -> SurroundingLand:
    """The land around a region: ``land`` without the features that are the region's own areas.

    A land feature is the region itself in another geometry when its code is a region village's code or
    one of its parents (the province ``35`` or kecamatan ``35.78.01`` of a Jawa Timur village), or when a
    region code is its parent (a finer layer of the region). Left in, its shore would cover the villages'
    own shore. So give the land at a level where the region is made of whole features: for a kab/kota
    region, the province's kecamatan (those of the region are left out, the others are land).

    Parameters
    ----------
    land
        Polygons with a ``code`` column (dotted Kemendagri codes), e.g. from
        :func:`ews.ingest.boundaries.read_land`.
    codes
        The region's village codes (dotted).

    Returns
    -------
    SurroundingLand
        The kept features (same columns) and the sorted codes of those left out.
    """
    region = pd.Series(list(codes), dtype=str)
    own = set(region)
    parents = set().union(*(set(region.str[:n]) for n in (2, 5, 8)))
    code = land["code"].astype(str)
    mine = code.isin(own | parents)
    for n in (2, 5, 8):
        mine |= code.str[:n].isin(own)
    dropped = tuple(sorted(set(code[mine])))
    return SurroundingLand(land[~mine.to_numpy()].reset_index(drop=True), dropped)


def coast_key(
    codes: Sequence[str],
    geometries: ArrayLike,
    land: str,
    *,
    gap_m: float = COAST_GAP_M,
    land_gap_m: float = LAND_GAP_M,
) -> str:
    """A cache key for the coast of a boundary set: SHA-256 over every input of :func:`coastal_villages`.

    Parameters
    ----------
    codes, geometries
        The villages (codes and EPSG:4326 polygons), hashed as code and WKB each.
    land
        A digest of the land around them (e.g. the SHA-256 of its files), or ``"none"`` when no land is
        given (the outline of the villages alone).
    gap_m, land_gap_m
        The tolerances (m).
    """
    digest = hashlib.sha256(f"{COAST_METHOD}|{gap_m!r}|{land_gap_m!r}|{land}".encode())
    geoms = np.asarray(geometries, dtype=object)
    for code, wkb in zip(codes, shapely.to_wkb(geoms, hex=False), strict=True):
        digest.update(str(code).encode())
        digest.update(wkb)
    return digest.hexdigest()


def _level_of(mmi: NDArray[np.float64], thresholds: dict[Level, float]) -> NDArray[np.int64]:
    levels = np.zeros(mmi.shape, dtype=np.int64)
    for level in sorted(thresholds):
        levels[mmi >= thresholds[level]] = int(level)
    return levels


_NO_TSUNAMI = "Tidak berpotensi tsunami."
_TSUNAMI = "BERPOTENSI TSUNAMI: warga pesisir segera menjauhi pantai menuju tempat tinggi."
_TSUNAMI_UNKNOWN = "Pantau informasi resmi BMKG tentang potensi tsunami."


def _tsunami_sentence(event: Earthquake) -> str:
    if event.tsunami:
        return _TSUNAMI
    if says_no_tsunami(event.potensi):
        return _NO_TSUNAMI
    return _TSUNAMI_UNKNOWN


def quake_message(
    region_id: str,
    event: Earthquake,
    layer: VillageLayer,
    rules: QuakeRules,
    coastal: set[str],
    now: datetime,
) -> QuakeOutcome:
    """Turn one earthquake into a hazard message for a region's villages, or say why not.

    Parameters
    ----------
    region_id
        The region (named in the area description and details).
    event
        The earthquake (from :mod:`ews.ingest.bmkg_quake`).
    layer
        The region's villages.
    rules
        MMI thresholds, minimum magnitude, tsunami radius, validity and maximum age.
    coastal
        Codes of the coastal villages (:func:`coastal_villages` or ``QuakeRules.coastal``).
    now
        The run time (timezone-aware); decides whether the event is late, replayed or in the future.

    Returns
    -------
    QuakeOutcome
        ``(message, reason)``. ``message`` is ``None`` when the magnitude is below
        ``rules.min_magnitude``, the event is older than ``rules.max_age_hours`` at ``now`` (a late or
        replayed event), stamped more than :data:`FUTURE_TOLERANCE` after ``now``, or when no village
        reaches a level; ``reason`` says which. When BMKG has ended the event's tsunami warning
        (``event.tsunami_ended``) the message is a ``Cancel`` ``ews.gempa.<event_id>.end`` without villages
        (see the module docstring, and :func:`link_revisions` for the thread it ends). Otherwise it is an
        ``Alert`` with identifier ``ews.gempa.<event_id>`` (``ews.gempa.<event_id>.tsunami`` when BMKG says
        the event may cause a tsunami; the same for the same event from any feed or resend), severity
        from the highest village level (:data:`SEVERITY`), ``villages`` sorted by code with ``value`` =
        MMI, expiring ``rules.valid_hours`` after the event (``rules.tsunami_max_hours`` for a tsunami).

    Raises
    ------
    ValueError
        ``now`` or ``event.time`` has no time zone.
    """
    if now.tzinfo is None or event.time.tzinfo is None:
        raise ValueError("quake_message: now and event.time must be timezone-aware")
    label = f"event {event.event_id} (M{event.magnitude:.1f})"
    if event.magnitude < rules.min_magnitude:
        return QuakeOutcome(None, f"{label}: magnitude below min_magnitude {rules.min_magnitude:g}; not alerted")
    age = now - event.time
    if age > timedelta(hours=rules.max_age_hours):
        hours = age.total_seconds() / 3600
        return QuakeOutcome(
            None,
            f"{label}: late or replayed event, {hours:.1f} h old at {now.isoformat()} "
            f"(max_age_hours {rules.max_age_hours:g}); not alerted",
        )
    if -age > FUTURE_TOLERANCE:
        return QuakeOutcome(
            None,
            f"{label}: origin time {event.time.isoformat()} is after the run time {now.isoformat()}; "
            "check the feed and the clock",
        )

    table = layer.table
    codes = table["code"].to_numpy().astype(str)
    distance = village_distances_km(event.lat, event.lon, table.geometry.values)
    shaking_km = shaking_radius_km(event.magnitude, event.depth_km, min(rules.mmi.values(), default=math.inf))
    # Whether this event could have alerted the region at all (by shaking, or as a tsunami): only then can
    # BMKG's end of its tsunami warning end anything here.
    in_reach = bool(np.any(distance <= max(shaking_km, rules.tsunami_radius_km)))
    if event.tsunami_ended:
        if not in_reach:
            return QuakeOutcome(
                None, f"{label}: BMKG ended the tsunami warning ({event.potensi}); no village of {region_id} within "
                f"reach of the event (tsunami radius {rules.tsunami_radius_km:g} km), nothing to end"
            )  # fmt: skip
        return QuakeOutcome(
            _end_message(region_id, event, rules),
            f"{label}: BMKG ended the tsunami warning ({event.potensi}); the event's alert is cancelled",
        )
    mmi = intensity_mmi(event.magnitude, event.depth_km, distance)
    levels = _level_of(mmi, rules.mmi)
    tsunami_hit = np.zeros(len(codes), dtype=bool)
    if event.tsunami:
        is_coastal = np.fromiter((c in coastal for c in codes), dtype=bool, count=len(codes))
        tsunami_hit = is_coastal & (distance <= rules.tsunami_radius_km)
        levels[tsunami_hit] = int(Level.AWAS)
    alerted = np.flatnonzero(levels > int(Level.NONE))
    max_mmi = float(mmi.max()) if len(mmi) else float("nan")
    if len(alerted) == 0:
        reason = f"{label}: no village of {region_id} reaches a level (max MMI {max_mmi:.1f}" + (
            ", no coastal village within the tsunami radius)" if event.tsunami else ")"
        )
        if in_reach and says_no_tsunami(event.potensi):
            # Read alone, "Tidak berpotensi tsunami" here alerts nobody; after a tsunami reading of the event it
            # is BMKG's end of the warning. link_revisions keeps this Cancel only then.
            end = _end_message(region_id, event, rules, conditional=True)
            return QuakeOutcome(end, reason + "; BMKG says no tsunami: ends a tsunami alert of the event, if one")
        return QuakeOutcome(None, reason)

    order = alerted[np.argsort(codes[alerted], kind="stable")]
    villages = tuple(
        VillageHazard(code=str(codes[i]), level=Level(int(levels[i])), held=Level(int(levels[i])),
                      value=round(float(mmi[i]), 2), fraction=1.0,
                      cause="tsunami" if tsunami_hit[i] else "gempa")
        for i in order
    )  # fmt: skip
    top = Level(int(levels[alerted].max()))
    radius = max(shaking_km, rules.tsunami_radius_km) if event.tsunami else shaking_km
    event_name = TSUNAMI_EVENT if event.tsunami else "Gempabumi"
    sentence = _tsunami_sentence(event)
    headline = f"Gempabumi M{event.magnitude:.1f}, kedalaman {event.depth_km:g} km, {event.region}. {sentence}"
    counts = ", ".join(
        f"{int((levels[alerted] == int(lv)).sum())} {lv.label}" for lv in (Level.AWAS, Level.SIAGA, Level.WASPADA)
    )
    description = (
        f"{headline} Waktu gempa {event.time.isoformat()} (UTC). Perkiraan guncangan ews: MMI maksimum "
        f"{max_mmi:.1f} di wilayah {region_id}; {counts} desa/kelurahan. Intensitas dihitung dari magnitudo, "
        "kedalaman dan jarak (Allen, Wald & Worden 2012), bukan pengamatan."
        + (f" BMKG: {event.potensi}." if event.potensi else "")
        + (f" Dirasakan: {event.felt}." if event.felt else "")
    )
    warning = Warning(
        identifier=quake_message_id(event.event_id, "tsunami" if event.tsunami else ""),
        sender="ews",
        sent=event.time,
        status="Actual",
        msg_type="Alert",
        references=(),
        language="id",
        event=event_name,
        urgency="Immediate",
        severity=SEVERITY[top],
        certainty="Observed",
        effective=event.time,
        expires=event.time + timedelta(hours=rules.tsunami_max_hours if event.tsunami else rules.valid_hours),
        headline=headline,
        description=description,
        web="https://www.bmkg.go.id/gempabumi/",
        area_desc=f"{region_id}: {len(villages)} desa/kelurahan",
        geometry=_circle(event.lat, event.lon, radius),
        polygon_count=0,
        source=event.source,
        notes=event.notes,
    )
    details: dict[str, str | float | int | bool | None] = {
        "event_id": event.event_id,
        "magnitude": event.magnitude,
        "depth_km": event.depth_km,
        "tsunami": event.tsunami,
        "lat": event.lat,
        "lon": event.lon,
        "max_mmi": round(max_mmi, 2),
        "region": event.region,
        "potensi": event.potensi,
        "felt": event.felt,
        "shakemap": event.shakemap,
        "shaking_radius_km": round(shaking_km, 1),
        "tsunami_radius_km": rules.tsunami_radius_km if event.tsunami else None,
        "tsunami_villages": int(tsunami_hit.sum()),
        # Without BMKG's end notice a tsunami alert ends by expiring at event + tsunami_max_hours: the alert
        # step tells the command center "no end notice received" then, never an ordinary end.
        "tsunami_ends": "max-hours" if event.tsunami else None,
        "tsunami_max_hours": rules.tsunami_max_hours,
        "region_id": region_id,
    }
    reason = f"{label}: {counts} in {region_id} (max MMI {max_mmi:.1f})"
    return QuakeOutcome(HazardMessage(warning=warning, metric="mmi", villages=villages, details=details), reason)


def _end_message(region_id: str, event: Earthquake, rules: QuakeRules, *, conditional: bool = False) -> HazardMessage:
    """The Cancel for BMKG's end of the tsunami warning of ``event`` (an end notice in ``Potensi``).

    It references the event's tsunami message; :func:`link_revisions` points it at the thread really
    alerted (a revised solution's, or the shaking-only message of an event first read without tsunami).
    ``conditional``: made from a "Tidak berpotensi tsunami" reading (``details["end_if_tsunami"]``), an end
    only of a tsunami reading of the event; :func:`link_revisions` drops it when there is none.
    """
    shaking_km = shaking_radius_km(event.magnitude, event.depth_km, min(rules.mmi.values(), default=math.inf))
    headline = (
        f"Gempabumi M{event.magnitude:.1f}, kedalaman {event.depth_km:g} km, {event.region}. "
        f"BMKG: {(event.potensi or '').rstrip('. ')}."
    )
    said = (
        "BMKG kini menyatakan gempa ini tidak berpotensi tsunami"
        if conditional
        else "BMKG mengakhiri peringatan dini tsunami untuk gempa ini"
    )
    sent = event.time + END_AFTER
    warning = Warning(
        identifier=quake_message_id(event.event_id, "end"),
        sender="ews",
        sent=sent,
        status="Actual",
        msg_type="Cancel",
        references=(quake_message_id(event.event_id, "tsunami"),),
        language="id",
        event=TSUNAMI_EVENT,
        urgency="Past",
        severity="Minor",
        certainty="Observed",
        effective=sent,
        expires=None,
        headline=headline,
        description=(
            f"{headline} Waktu gempa {event.time.isoformat()} (UTC). {said}: peringatan gempa dan tsunami ews "
            "untuk gempa ini dicabut."
        ),
        web="https://www.bmkg.go.id/gempabumi/",
        area_desc=f"{region_id}: akhir peringatan",
        geometry=_circle(event.lat, event.lon, max(shaking_km, rules.tsunami_radius_km)),
        polygon_count=0,
        source=event.source,
        notes=event.notes,
    )
    details: dict[str, str | float | int | bool | None] = {
        "event_id": event.event_id,
        "magnitude": event.magnitude,
        "depth_km": event.depth_km,
        "tsunami": False,
        "tsunami_ended": True,
        "lat": event.lat,
        "lon": event.lon,
        "region": event.region,
        "potensi": event.potensi,
        "felt": event.felt,
        "shakemap": event.shakemap,
        "end_notice": event.potensi,
        "end_if_tsunami": conditional,
        "tsunami_ends": "end-notice",
        "tsunami_max_hours": rules.tsunami_max_hours,
        "region_id": region_id,
    }
    return HazardMessage(warning=warning, metric="mmi", villages=(), details=details)


REVISION_WINDOW = timedelta(minutes=2)
REVISION_KM = 50.0
_EVENT_ID = re.compile(r"^(\d{8}T\d{6})Z_(\d+\.\d+)([NS])_(\d+\.\d+)([EW])$")


def parse_event_id(event_id: str) -> tuple[datetime, float, float] | None:
    """``(time UTC, lat, lon)`` of an id made by :func:`quake_event_id`; None for anything else."""
    m = _EVENT_ID.match(event_id)
    if m is None:
        return None
    when = datetime.strptime(m.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    lat = float(m.group(2)) * (-1 if m.group(3) == "S" else 1)
    lon = float(m.group(4)) * (-1 if m.group(5) == "W" else 1)
    return when, lat, lon


def parse_message_id(identifier: str) -> tuple[str, str, tuple[datetime, float, float]] | None:
    """``(event_id, kind, (time, lat, lon))`` of an id made by :func:`quake_message_id`; None for others.

    ``kind`` is ``""`` (shaking only), ``"tsunami"`` or ``"end"``.
    """
    if not identifier.startswith(MESSAGE_PREFIX):
        return None
    event_id, kind = identifier[len(MESSAGE_PREFIX) :], ""
    for suffix in (TSUNAMI_SUFFIX, END_SUFFIX):
        if event_id.endswith(suffix):
            event_id, kind = event_id[: -len(suffix)], suffix[1:]
            break
    where = parse_event_id(event_id)
    return None if where is None else (event_id, kind, where)


def _km_between(a: tuple[datetime, float, float], b: tuple[datetime, float, float]) -> float:
    la1, lo1, la2, lo2 = map(math.radians, (a[1], a[2], b[1], b[2]))
    h = math.sin((la2 - la1) / 2) ** 2 + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(min(1.0, h)))


@dataclass(frozen=True)
class _Solution:
    """A message of an earthquake thread seen before (``known``: stored) or earlier in this batch."""

    identifier: str
    kind: str  # "" shaking only | "tsunami" | "end"
    where: tuple[datetime, float, float]
    known: bool


def _same_event(a: tuple[datetime, float, float], b: tuple[datetime, float, float]) -> bool:
    return abs(a[0] - b[0]) <= REVISION_WINDOW and _km_between(a, b) <= REVISION_KM


def _root(same: Sequence[_Solution]) -> str | None:
    """The message a new one of the same event references: the first stored solution, else the batch's first."""
    alerts = [s for s in same if s.kind != "end"]
    chosen = [s for s in alerts if s.known] or alerts
    return min(chosen, key=lambda s: (s.where[0], s.identifier)).identifier if chosen else None


def _as_end(message: HazardMessage, event_id: str) -> HazardMessage:
    """The Cancel that a shaking-only reading ("Tidak berpotensi tsunami") of a tsunami event amounts to."""
    w = message.warning
    warning = replace(
        w,
        identifier=quake_message_id(event_id, "end"),
        msg_type="Cancel",
        event=TSUNAMI_EVENT,
        urgency="Past",
        severity="Minor",
        expires=None,
        area_desc=w.area_desc.split(":")[0] + ": akhir peringatan",
        description=(
            f"{w.headline} BMKG kini menyatakan gempa ini tidak berpotensi tsunami: peringatan gempa dan tsunami "
            "ews untuk gempa ini dicabut."
        ),
    )
    potensi = message.details.get("potensi")
    details = {
        **dict(message.details),
        "tsunami": False,
        "tsunami_ended": True,
        "end_notice": potensi,
        "tsunami_ends": "end-notice",
    }
    for key in ("max_mmi", "shaking_radius_km", "tsunami_radius_km", "tsunami_villages"):
        details.pop(key, None)  # facts of the shaking estimate: the Cancel announces none
    return HazardMessage(warning=warning, metric=message.metric, villages=(), details=details)


def link_revisions(messages: Sequence[HazardMessage], known: Iterable[str]) -> list[HazardMessage]:
    """Put every message of one earthquake into one thread, and end it when BMKG ends its tsunami warning.

    BMKG revises an event within minutes (the 2021-12-14 Flores Sea event was first M7.5 at 03:20:22,
    then M7.4 at 03:20:23, 2 km apart) and each solution gets its own :func:`quake_event_id`; BMKG also
    re-serves an event with another ``Potensi``. Messages are of one event when their origins are within
    :data:`REVISION_WINDOW` and :data:`REVISION_KM` (the same event id, or a revised solution). Against
    ``known`` (identifiers of stored messages, :meth:`~ews.store.repository.Store.warning_threads`) and
    the earlier messages of ``messages``:

    * a new message of an event already known or seen becomes an ``Update`` referencing the first
      solution (stored ones first), so the lifecycle treats it as a change to the same alert (an
      escalation, an update or nothing), never as a second alert;
    * a Cancel made from BMKG's end notice (``ews.gempa.<event_id>.end``, :func:`quake_message`)
      references that solution and is sent :data:`END_AFTER` after the latest solution of the event, so it
      ends the thread whichever solution it names. An end for an event never stored or seen is left as
      it is: it references a thread that does not exist and cancels nothing;
    * a shaking-only reading of an event stored as a tsunami alert becomes that Cancel when BMKG says
      "Tidak berpotensi tsunami" (BMKG's tsunami warning is over), and is dropped when it does not say
      (``gempadirasakan`` carries no ``Potensi``): silence neither ends nor lowers a tsunami alert. A
      "Tidak berpotensi tsunami" reading that alerts no village here is already such a Cancel
      (``details["end_if_tsunami"]``, :func:`quake_message`): kept when a tsunami reading of the event is
      stored or in ``messages``, dropped otherwise;
    * once an end of the event is stored, its other readings are dropped: a copy served late by a feed
      after BMKG's end never alerts again.

    Other messages pass through unchanged. The result keeps the order of ``messages``, less the dropped.
    """
    solutions: list[_Solution] = []
    for ident in known:
        parsed = parse_message_id(ident)
        if parsed is not None:
            solutions.append(_Solution(ident, parsed[1], parsed[2], known=True))
    known_ids = {s.identifier for s in solutions}
    quakes = sorted(
        ((m, parsed) for m in messages if (parsed := parse_message_id(m.warning.identifier)) is not None),
        key=lambda pair: (pair[0].warning.sent, pair[0].warning.identifier),
    )
    linked: dict[str, HazardMessage | None] = {}  # identifier in ``messages`` -> what it becomes (None: dropped)
    ends: list[tuple[str, HazardMessage, tuple[datetime, float, float]]] = []
    # Readings first, in the order BMKG made them; the ends after, once every solution of the batch is seen.
    for m, (event_id, kind, where) in quakes:
        ident = m.warning.identifier
        if kind == "end":
            ends.append((ident, m, where))
            continue
        same = [s for s in solutions if s.identifier != ident and _same_event(s.where, where)]
        if any(s.kind == "end" and s.known for s in same):
            linked[ident] = None  # BMKG ended this event's warning before: a late copy changes nothing
            continue
        if kind == "" and any(s.kind == "tsunami" and s.known for s in same):
            potensi = m.details.get("potensi")
            linked[ident] = None
            if says_no_tsunami(potensi if isinstance(potensi, str) else None):
                ends.append((ident, _as_end(m, event_id), where))
            continue
        root = _root(same)
        if ident not in known_ids and root is not None:
            warning = replace(m.warning, msg_type="Update", references=(root,))
            linked[ident] = replace(m, warning=warning, details={**dict(m.details), "revision_of": root})
        solutions.append(_Solution(ident, kind, where, known=False))
    made: set[str] = set()
    for ident, m, where in ends:
        if m.warning.identifier in made:
            linked[ident] = None  # one Cancel per end, however many readings said it
            continue
        same = [s for s in solutions if s.kind != "end" and _same_event(s.where, where)]
        if m.details.get("end_if_tsunami") and not any(s.kind == "tsunami" for s in same):
            linked[ident] = None  # "Tidak berpotensi tsunami" of an event never read as a tsunami: nothing ends
            continue
        made.add(m.warning.identifier)
        root = _root(same)
        if root is None:  # never alerted here: the Cancel finds no thread and alerts nobody
            linked[ident] = m
            continue
        sent = max([where[0], *(s.where[0] for s in same)]) + END_AFTER
        warning = replace(m.warning, references=(root,), sent=sent, effective=sent)
        linked[ident] = replace(m, warning=warning, details={**dict(m.details), "end_of": root})
    out = [linked.get(m.warning.identifier, m) for m in messages]
    return [m for m in out if m is not None]

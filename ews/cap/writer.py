"""ews' own CAP 1.2 alerts: one ``<alert>`` per area (or village) and version, plus an Atom index (pure).

Each message has two ``<info>`` blocks, ``id`` then ``en``, with the same codes, times and area; only the
texts differ. A cycle publishes area alerts (:mod:`ews.cap.areas`: the contiguous villages of one kecamatan at
one level): a short name (``areaDesc``, under 50 characters), one ``<polygon>`` per exterior ring of the
villages' union (``lat,lon`` pairs, 4 decimals, about 11 m) and each village's Kemendagri code as ``<geocode>``
``KEMENDAGRI``; the description names the villages. A message about one village (``CapArea`` without
``members``) names it and its outline. CAP has no holes: an area with a hole is announced over its outer ring,
which errs on the side of warning too many people rather than too few.

Level mapping (severity, urgency, certainty)
---------------------------------------------
======================  ==========  ==========  =========  ============
ews level / transition  severity    urgency     certainty  responseType
======================  ==========  ==========  =========  ============
Waspada (be alert)      Moderate    Expected    Likely     Monitor
Siaga (be ready)        Severe      Expected    Likely     Prepare
Awas (act now)          Extreme     Immediate   Likely     Evacuate
all-clear, expire       Minor       Past        Observed   AllClear
cancel                  Minor       Past        Observed   AllClear
======================  ==========  ==========  =========  ============

* Severity grades the expected impact, which is what the level is about, so it rises with every level.
* Urgency is the time left to respond: Awas means "act now" (Immediate); Waspada and Siaga ask people to
  watch and get ready within the hour (Expected).
* Certainty stays Likely: a level comes from BMKG's warning combined with a model of its impact on the
  village, not from an observation of that impact, and a higher level is no more certain than a lower one.
* The mapping is monotonic (a higher level never gets a lower severity, urgency or certainty), and reading
  the values back with :func:`ews.impact.levels.village_level` and the default rules gives the same level.
* The ``ews:level`` ``<eventCode>`` carries the level itself (``Waspada``/``Siaga``/``Awas``) so that
  consumers need not invert the mapping.

Lifecycle (msgType)
-------------------
* ``new`` -> ``Alert`` (or ``Update`` when it references earlier versions, e.g. a village that re-enters a
  thread after an all-clear).
* ``escalate``, ``update``, ``de-escalate`` -> ``Update`` referencing the versions it replaces.
* ``all-clear`` and ``expire`` -> ``Update`` with responseType ``AllClear`` and urgency ``Past``. In CAP a
  ``Cancel`` means that the earlier message is withdrawn (it was wrong or no longer applies), whereas an
  all-clear is new information about a real event: "it is over". Consumers such as Google Public Alerts
  show an AllClear update to people who saw the warning; a Cancel may just make the warning disappear.
* ``cancel`` (BMKG cancelled its warning) -> ``Cancel``; it still carries both ``<info>`` blocks, saying
  that the warning was cancelled.
* An ending message takes effect when it is sent (``effective`` = ``sent``) and expires
  :data:`END_VALIDITY` after it is sent, or with the source warning if that is later, so that feeds list
  "the warning is over" for a while instead of dropping it at once (or never).

Times are written as CAP 1.2 requires, ``YYYY-MM-DDThh:mm:ss+hh:mm`` in the datetime's own offset (WIB, WITA
or WIT as given), without fractional seconds (they are dropped) and never with ``Z`` (UTC is ``-00:00``).
"""

from __future__ import annotations

import hashlib
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from urllib.parse import urlparse

import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from ews.alerts.model import Transition
from ews.errors import CapError
from ews.types import Level

__all__ = [
    "AREA_DESC_MAX",
    "ATOM_NS",
    "CAP_NS",
    "END_CAP",
    "END_VALIDITY",
    "HEADLINE_MAX",
    "POLYGON_TEXT_VERSION",
    "SENDER_NAME",
    "CapArea",
    "CapMessage",
    "CapReference",
    "FeedEntry",
    "area_desc",
    "atom_feed",
    "atom_feed_of",
    "cap_identifier",
    "cap_time",
    "event_in_english",
    "feed_entry",
    "level_to_cap",
    "msg_types_for",
    "polygon_rings",
    "to_cap_xml",
]

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
ATOM_NS = "http://www.w3.org/2005/Atom"
SENDER_NAME = "ews (data: BMKG)"
HEADLINE_MAX = 160
"""Longest ``<headline>`` written, in characters (CAP recommends a headline fit in 160)."""
END_VALIDITY = timedelta(hours=1)
"""How long an all-clear/expire/cancel message stays valid when the source warning has already ended."""
END_CAP = ("Minor", "Past", "Observed")
"""(severity, urgency, certainty) of every message that ends an alert: all-clear, expire and cancel."""

_STATUSES = ("Actual", "Exercise", "Test")
_MSG_TYPES: dict[Transition, tuple[str, ...]] = {
    Transition.NEW: ("Alert", "Update"),
    Transition.ESCALATE: ("Update",),
    Transition.UPDATE: ("Update",),
    Transition.DEESCALATE: ("Update",),
    Transition.ALL_CLEAR: ("Update",),
    Transition.EXPIRE: ("Update",),
    Transition.CANCEL: ("Cancel",),
}
_LEVEL_CAP: dict[Level, tuple[str, str, str]] = {
    Level.WASPADA: ("Moderate", "Expected", "Likely"),
    Level.SIAGA: ("Severe", "Expected", "Likely"),
    Level.AWAS: ("Extreme", "Immediate", "Likely"),
}
_RESPONSE = {Level.WASPADA: "Monitor", Level.SIAGA: "Prepare", Level.AWAS: "Evacuate"}
_REGION_ID = re.compile(r"[a-z0-9][a-z0-9_-]*")
# Areas are usually desa/kelurahan; a region may also be drawn at kecamatan or kab/kota level.
_VILLAGE_CODE = re.compile(r"[0-9]{2}\.[0-9]{2}(\.[0-9]{2}(\.[0-9]{4})?)?")
# CAP and Google Public Alerts forbid whitespace, commas and the XML-restricted '<' and '&' in
# <identifier> and <sender>, since <references> joins them with commas and spaces.
_CAP_TOKEN_FORBIDDEN = re.compile(r"[\s,<&]")
# Characters XML 1.0 cannot carry at all (control characters other than tab, newline, return).
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
# Below ~1 m² a ring is a digitising sliver, not a place; parse_cap rejects such polygons too.
_MIN_RING_AREA = 1e-10
_MAX_DECIMALS = 12
POLYGON_TEXT_VERSION = 1
"""Version of :func:`polygon_rings`' output: raise it when the text it writes for a geometry changes (caches)."""

# BMKG's common event names in English. Keys are compared case-insensitively with single spaces.
_EVENTS_EN: dict[str, str] = {
    "hujan lebat": "Heavy Rain",
    "hujan sangat lebat": "Very Heavy Rain",
    "hujan ekstrem": "Extreme Rain",
    "hujan sedang": "Moderate Rain",
    "hujan sedang hingga lebat": "Moderate to Heavy Rain",
    "hujan sedang-lebat": "Moderate to Heavy Rain",
    "hujan lebat dan petir": "Heavy Rain and Thunderstorms",
    "hujan lebat disertai petir": "Heavy Rain with Thunderstorms",
    "hujan lebat dan angin kencang": "Heavy Rain and Strong Winds",
    "hujan lebat disertai angin kencang": "Heavy Rain with Strong Winds",
    "hujan lebat disertai petir dan angin kencang": "Heavy Rain with Thunderstorms and Strong Winds",
    "hujan lebat dan petir disertai angin kencang": "Heavy Rain and Thunderstorms with Strong Winds",
    "hujan lebat, petir dan angin kencang": "Heavy Rain, Thunderstorms and Strong Winds",
    "hujan disertai petir": "Rain with Thunderstorms",
    "petir": "Lightning",
    "hujan petir": "Thunderstorm",
    "angin kencang": "Strong Winds",
    "hujan es": "Hail",
    "puting beliung": "Whirlwind (puting beliung)",
    "banjir": "Flood",
    "banjir bandang": "Flash Flood",
    "tanah longsor": "Landslide",
    "gelombang tinggi": "High Waves",
    "thunderstorm": "Thunderstorm",
}

_MONTHS = {
    "id": ("Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des"),
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
}
_GLOSS_EN = {Level.WASPADA: "be alert", Level.SIAGA: "be ready", Level.AWAS: "act now"}
_INSTRUCTION = {
    "id": {
        Level.WASPADA: "Tetap waspada, batasi aktivitas di luar rumah, pantau informasi resmi BMKG dan BPBD.",
        Level.SIAGA: (
            "Bersiap mengungsi: amankan dokumen penting, siapkan tas siaga, jauhi sungai dan lereng rawan "
            "longsor, ikuti arahan BPBD/Tagana."
        ),
        Level.AWAS: (
            "SEGERA MENGUNGSI ke tempat yang lebih tinggi atau lokasi pengungsian resmi. Ikuti arahan petugas "
            "BPBD/Tagana. Darurat: 112."
        ),
    },
    "en": {
        Level.WASPADA: "Stay alert, limit outdoor activities, follow official BMKG and BPBD updates.",
        Level.SIAGA: (
            "Prepare to evacuate: secure important documents, pack an emergency bag, keep away from rivers and "
            "landslide-prone slopes, follow BPBD/Tagana instructions."
        ),
        Level.AWAS: (
            "EVACUATE NOW to higher ground or the designated shelter. Follow the instructions of BPBD/Tagana "
            "officers. Emergency: 112."
        ),
    },
}
_HAZARD_INSTRUCTION = {
    ("id", "banjir"): (
        "Jauhi bantaran dan arus banjir, pindahkan barang ke tempat tinggi; bila diminta, segera mengungsi ke tempat "
        "yang lebih tinggi. Matikan listrik. Ikuti arahan BPBD/Tagana. Darurat: 112."
    ),
    ("id", "longsor"): (
        "Jauhi lereng dan tebing, waspadai retakan tanah dan rembesan air; bila diminta, segera mengungsi ke tempat "
        "aman. Ikuti arahan BPBD/Tagana. Darurat: 112."
    ),
    ("en", "banjir"): (
        "Keep away from riverbanks and flood water, move belongings up high; when told, evacuate to higher ground. "
        "Switch off electricity. Follow BPBD/Tagana instructions. Emergency: 112."
    ),
    ("en", "longsor"): (
        "Keep away from slopes and cliffs, watch for ground cracks and seeping water; when told, evacuate to a safe "
        "place. Follow BPBD/Tagana instructions. Emergency: 112."
    ),
    ("id", "gempa"): (
        "Tetap tenang. Keluar dari bangunan yang rusak, jauhi tembok dan kaca, waspadai gempa susulan. "
        "Ikuti arahan BPBD/Tagana. Darurat: 112."
    ),
    ("id", "tsunami"): (
        "SEGERA JAUHI PANTAI menuju tempat tinggi atau ikuti jalur evakuasi tsunami. Jangan menunggu air laut "
        "surut. Darurat: 112."
    ),
    ("en", "gempa"): (
        "Stay calm. Leave damaged buildings, keep away from walls and glass, expect aftershocks. Follow BPBD/Tagana "
        "instructions. Emergency: 112."
    ),
    ("en", "tsunami"): (
        "LEAVE THE COAST NOW for high ground or the tsunami evacuation route. Do not wait for the sea to recede. "
        "Emergency: 112."
    ),
}
_HAZARD_END_INSTRUCTION = {
    ("id", "banjir"): "Peringatan telah berakhir. Kembali ke rumah hanya bila air surut dan petugas menyatakan aman.",
    ("id", "longsor"): "Peringatan telah berakhir. Jangan kembali ke lereng terdampak sebelum dinyatakan aman.",
    ("en", "banjir"): "The warning is over. Go home only when the water has gone down and officers say it is safe.",
    ("en", "longsor"): "The warning is over. Do not return to affected slopes before they are declared safe.",
    ("id", "gempa"): "Peringatan telah berakhir. Waspadai gempa susulan dan periksa kerusakan bangunan.",
    ("id", "tsunami"): "Peringatan telah berakhir. Kembali ke pantai hanya bila BMKG/BPBD menyatakan aman.",
    ("en", "gempa"): "The warning is over. Expect aftershocks and check buildings for damage.",
    ("en", "tsunami"): "The warning is over. Return to the coast only when BMKG/BPBD say it is safe.",
}
_END_INSTRUCTION = {
    ("id", False): "Peringatan telah berakhir. Tetap berhati-hati terhadap genangan dan pohon tumbang.",
    ("id", True): "Peringatan telah dicabut.",
    ("en", False): "The warning is over. Stay careful around standing water and fallen trees.",
    ("en", True): "The warning has been cancelled.",
}
_STATUS_PREFIX = {
    "Actual": {"id": "", "en": ""},
    "Exercise": {"id": "LATIHAN - ", "en": "EXERCISE - "},
    "Test": {"id": "UJI - ", "en": "TEST - "},
}
_END_WORD = {
    Transition.ALL_CLEAR: {"id": "BERAKHIR", "en": "OVER"},
    Transition.EXPIRE: {"id": "BERAKHIR", "en": "OVER"},
    Transition.CANCEL: {"id": "DICABUT", "en": "CANCELLED"},
}


@dataclass(frozen=True)
class CapReference:
    """An earlier CAP message that a message updates or cancels (CAP ``<references>`` entry)."""

    sender: str
    identifier: str
    sent: datetime


@dataclass(frozen=True)
class CapArea:
    """The place a message is about: one village, or an area alert's villages (``members``).

    ``geometry`` is a Polygon or MultiPolygon in lon/lat (EPSG:4326). ``polygons``: the ``<polygon>`` texts when
    already known (``polygon_rings(geometry)``, or :func:`ews.cap.areas.area_polygons` for an area, from a cache
    per boundary set, since outlines never change between cycles); ``None`` computes them from ``geometry``.
    They are written as given.
    """

    village_code: str
    village_name: str
    kecamatan_name: str
    kabkota_name: str
    geometry: BaseGeometry | None
    polygons: tuple[str, ...] | None = None
    members: tuple[tuple[str, str], ...] = ()
    """An area alert's villages, ``(code, name)`` sorted by code (:mod:`ews.cap.areas`); empty: the one village
    ``village_code`` (then ``village_code`` is the area's kecamatan code and ``village_name`` unused)."""

    @property
    def is_area(self) -> bool:
        """An area alert (one message for ``members``), not the message of one village."""
        return bool(self.members)


@dataclass(frozen=True)
class CapMessage:
    """One version of ews' alert for one village, ready to be written as CAP 1.2.

    ``level`` is the level announced; for ``cancel``/``all-clear``/``expire`` it is the level being ended.
    ``effective``/``expires`` come from the source warning and are timezone-aware in the village's local
    zone, whose name (WIB/WITA/WIT) is ``zone_name``. ``status`` is ``Actual``, ``Exercise`` or ``Test``;
    ``msg_type`` ``Alert``, ``Update`` or ``Cancel`` (see :func:`msg_types_for`).
    """

    identifier: str
    sender: str
    sent: datetime
    status: str
    msg_type: str
    references: tuple[CapReference, ...]
    level: Level
    transition: Transition
    event: str
    effective: datetime
    expires: datetime | None
    source_warning_id: str
    source_web: str
    area: CapArea
    zone_name: str
    issuer: str = "BMKG"  # who issued the source warning (ews's own satellite alerts: the region's issuer)
    hazard: str = "cuaca"  # what people act on: "cuaca" | "banjir" | "longsor" | "gempa" | "tsunami" (instruction)


def cap_identifier(region_id: str, thread_id: str, village_code: str, seq: int) -> str:
    """The CAP ``<identifier>`` of one alert version for one village.

    Format: ``ews.<region>.<h>.<village code>.<seq>``, where ``h`` is the first 12 hex digits of the SHA-1
    of ``thread_id`` (BMKG identifiers may hold characters CAP forbids, and their length varies). Only
    letters, digits, ``.``, ``-`` and ``_`` occur. The parts can be told apart again (the region has no dot,
    ``h`` is fixed-width, the sequence is the last part), so different inputs give different identifiers
    barring a 48-bit hash collision between two thread ids.

    Parameters
    ----------
    region_id
        The region's id (``regions/<id>.yaml``): lower-case letters, digits, ``-`` and ``_``.
    thread_id
        Identifier of the first BMKG message of the warning thread.
    village_code
        Kemendagri desa/kelurahan code, e.g. ``"35.78.01.1001"``.
    seq
        Version number of the village's alert in the thread (>= 0).

    Raises
    ------
    CapError
        A region id or village code of the wrong shape, an empty thread id, or a negative ``seq``.
    """
    if not _REGION_ID.fullmatch(region_id):
        raise CapError(f"region id {region_id!r} cannot go into a CAP identifier; use [a-z0-9][a-z0-9_-]*")
    if not _VILLAGE_CODE.fullmatch(village_code):
        raise CapError(f"area code {village_code!r} is not a Kemendagri code like '35.78.01.1001' or '35.78.01'")
    if not thread_id:
        raise CapError("empty thread id: pass the identifier of the thread's first BMKG message")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise CapError(f"alert version {seq!r} must be a non-negative integer")
    digest = hashlib.sha1(thread_id.encode("utf-8"), usedforsecurity=False).hexdigest()[:12]
    return f"ews.{region_id}.{digest}.{village_code}.{seq}"


def level_to_cap(level: Level) -> tuple[str, str, str]:
    """CAP ``(severity, urgency, certainty)`` for an ews level; see the module docstring for the table.

    Raises
    ------
    CapError
        For ``Level.NONE``: there is nothing to announce.
    """
    try:
        return _LEVEL_CAP[Level(level)]
    except (KeyError, ValueError):
        raise CapError(f"level {level!r} has no CAP mapping; only Waspada, Siaga and Awas are announced") from None


def msg_types_for(transition: Transition) -> tuple[str, ...]:
    """The CAP ``msgType`` values allowed for a transition (first = the usual one).

    Raises
    ------
    CapError
        For ``unchanged`` and ``ignored``, which send nothing.
    """
    try:
        return _MSG_TYPES[transition]
    except KeyError:
        raise CapError(f"transition {transition.value!r} sends no message, so it has no CAP msgType") from None


def event_in_english(event: str) -> str:
    """English name of a BMKG event (``"Hujan Lebat dan Petir"`` -> ``"Heavy Rain and Thunderstorms"``).

    Unknown events are returned unchanged.
    """
    key = " ".join(event.split()).lower()
    return _EVENTS_EN.get(key, event)


def cap_time(moment: datetime, what: str = "time") -> str:
    """A datetime as a CAP 1.2 time in its own offset: ``2026-11-28T17:00:00+07:00``.

    Fractional seconds are dropped; UTC is written ``-00:00`` as CAP 1.2 section 3.3.2 asks.

    Raises
    ------
    CapError
        A naive datetime, or an offset that is not a whole number of minutes.
    """
    offset = moment.utcoffset()
    if offset is None:
        raise CapError(f"{what} {moment.isoformat()} has no timezone; CAP times need an offset such as +07:00")
    seconds = int(offset.total_seconds())
    if seconds % 60 or offset.microseconds:
        raise CapError(f"{what} {moment.isoformat()}: offset {offset} is not whole minutes; CAP cannot write it")
    sign = "-" if seconds <= 0 else "+"
    hours, minutes = divmod(abs(seconds) // 60, 60)
    return f"{moment:%Y-%m-%dT%H:%M:%S}{sign}{hours:02d}:{minutes:02d}"


def _whole_seconds(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def _clean(text: str) -> str:
    return _XML_ILLEGAL.sub("", text)


def _format_coord(value: float, decimals: int | None) -> str:
    if decimals is None:  # exact: the shortest text that reads back as the same float, never in e-notation
        text = format(Decimal(repr(value)), "f")
    else:
        text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _ring_text(coords: Sequence[tuple[float, float]], where: str) -> str:
    """``lat,lon`` text of one ring (lon/lat input), at the fewest decimals >= 4 that keep it a valid ring.

    Rounding can fold a thin spike onto itself or collapse a tiny ring; the coordinates are then written
    with more decimals and, as a last resort, exactly (the input ring itself, which is valid).
    """
    for decimals in (*range(4, _MAX_DECIMALS + 1), None):
        points: list[tuple[float, float]] = []
        for lon, lat in coords:
            point = (lon, lat) if decimals is None else (round(lon, decimals), round(lat, decimals))
            if not points or point != points[-1]:
                points.append(point)
        if len(points) > 1 and points[0] == points[-1]:
            points.pop()
        points.append(points[0])
        if len(points) < 4:
            continue
        ring = Polygon(points)
        if ring.is_valid and ring.area >= _MIN_RING_AREA:
            return " ".join(f"{_format_coord(lat, decimals)},{_format_coord(lon, decimals)}" for lon, lat in points)
    raise CapError(
        f"{where}: a ring of the village boundary is not a simple polygon "
        f"({shapely.is_valid_reason(Polygon(coords))}); repair the boundary (e.g. shapely.make_valid)"
    )


def polygon_rings(geometry: BaseGeometry, where: str = "area") -> list[str]:
    """CAP ``<polygon>`` texts (``"lat,lon lat,lon ..."``) for the exterior rings of a lon/lat geometry.

    Each ring is rounded to 4 decimals (about 11 m), consecutive points that rounding made equal are merged
    and the ring is closed again; if that leaves fewer than 4 points or a ring that touches or crosses
    itself, more decimals are kept (up to 12, then the exact coordinates). Holes are dropped (CAP cannot
    express them) and rings under about 1 m² (digitising slivers) are skipped.

    Parameters
    ----------
    geometry
        Polygon or MultiPolygon in EPSG:4326, (lon, lat) order.
    where
        Names the village in error messages.

    Raises
    ------
    CapError
        Another geometry type, an empty geometry, coordinates outside lon -180..180 / lat -90..90 (a
        projected CRS?), or a ring that cannot be written as a simple polygon.
    """
    if isinstance(geometry, Polygon):
        parts = [geometry]
    elif isinstance(geometry, MultiPolygon):
        parts = list(geometry.geoms)
    else:
        raise CapError(f"{where}: geometry is a {geometry.geom_type}; a CAP area needs a Polygon or MultiPolygon")
    if geometry.is_empty:
        raise CapError(f"{where}: empty geometry; a CAP alert from ews must locate the village")
    minx, miny, maxx, maxy = geometry.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90) or not all(
        math.isfinite(v) for v in (minx, miny, maxx, maxy)
    ):
        raise CapError(
            f"{where}: bounds {minx:.3f},{miny:.3f},{maxx:.3f},{maxy:.3f} are not lon/lat degrees; "
            "reproject the village boundary to EPSG:4326"
        )
    texts = []
    for part in parts:
        if part.is_empty:
            continue
        outline = Polygon(part.exterior)
        if outline.is_valid and outline.area < _MIN_RING_AREA:
            continue
        texts.append(_ring_text([(float(x), float(y)) for x, y, *_ in part.exterior.coords], where))
    if not texts:
        raise CapError(f"{where}: every ring is smaller than about 1 m²; a CAP alert from ews must locate the village")
    return texts


AREA_DESC_MAX = 49
"""Longest ``<areaDesc>`` written (Google Public Alerts: under 50 characters; it may be used in a title)."""


def area_desc(names: Sequence[str], kecamatan: str, kabkota: str) -> str:
    """A short ``<areaDesc>`` (at most :data:`AREA_DESC_MAX` characters, cut at a word).

    One village: "<village>, Kec. <kecamatan>"; several: "Kec. <kecamatan>, <kab/kota>".
    """
    text = f"{names[0]}, Kec. {kecamatan}" if len(names) == 1 else f"Kec. {kecamatan}, {kabkota}"
    text = " ".join(text.split())
    if len(text) <= AREA_DESC_MAX:
        return text
    cut = text[: AREA_DESC_MAX - 1]
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,") + "…"


def _check_token(value: str, what: str) -> None:
    if not value or _CAP_TOKEN_FORBIDDEN.search(value):
        raise CapError(f"{what} {value!r} must be non-empty without spaces, commas, '<' or '&' (CAP 1.2)")


def _date_time(moment: datetime, zone_name: str, language: str) -> str:
    return f"{moment.day} {_MONTHS[language][moment.month - 1]} {moment.year} {moment:%H:%M} {zone_name}".strip()


def _headline(message: CapMessage, language: str, event: str) -> str:
    level = message.level.label.upper()
    prefix = _STATUS_PREFIX[message.status][language]
    end = _END_WORD.get(message.transition)
    area = message.area
    if area.is_area and len(area.members) > 1:
        n = len(area.members)
        where = (
            f"{n} desa/kelurahan, Kec. {area.kecamatan_name}"
            if language == "id"
            else (f"{n} villages, Kec. {area.kecamatan_name}")
        )
    else:
        where = f"{area.members[0][1] if area.is_area else area.village_name}, {area.kecamatan_name}"
    place = "di" if language == "id" else "in"
    if end is not None:
        text = f"{prefix}{end[language]}: {level} {event} {place} {where}"
    else:
        text = f"{prefix}{level}: {event} {place} {where}"
    text = " ".join(_clean(text).split())
    return text if len(text) <= HEADLINE_MAX else text[: HEADLINE_MAX - 1].rstrip() + "…"


AREA_NAMES_LISTED = 20
"""Villages named in an area alert's description; the others are counted ("dan 12 lainnya")."""


def _area_place(area: CapArea, language: str) -> str:
    """The place a description names: the village, or an area's villages (the first :data:`AREA_NAMES_LISTED`)."""
    if not area.is_area or len(area.members) == 1:
        name = area.members[0][1] if area.is_area else area.village_name
        if language == "id":
            return f"Desa/Kelurahan {name}, Kec. {area.kecamatan_name}, {area.kabkota_name}"
        return f"{name} (Kec. {area.kecamatan_name}, {area.kabkota_name})"
    names = [name for _, name in area.members[:AREA_NAMES_LISTED]]
    rest = len(area.members) - len(names)
    n = len(area.members)
    if language == "id":
        listed = ", ".join(names) + (f" dan {rest} lainnya" if rest else "")
        return f"{n} desa/kelurahan di Kec. {area.kecamatan_name}, {area.kabkota_name} ({listed})"
    listed = ", ".join(names) + (f" and {rest} more" if rest else "")
    return f"{n} villages in Kec. {area.kecamatan_name}, {area.kabkota_name} ({listed})"


def _description(message: CapMessage, language: str, event: str, expires: datetime | None) -> str:
    area = message.area
    level = message.level.label.upper()
    zone = message.zone_name
    t = message.transition
    src = message.issuer
    if language == "id":
        place = _area_place(area, "id")
        if t is Transition.CANCEL:
            text = f"{src} mencabut peringatan {event}. Peringatan {level} untuk {place} dicabut."
        elif t is Transition.EXPIRE:
            text = f"Peringatan {level} {event} untuk {place} telah berakhir (masa berlaku peringatan {src} habis)."
        elif t is Transition.ALL_CLEAR:
            text = (
                f"Peringatan {level} {event} untuk {place} telah berakhir: "
                f"wilayah ini tidak lagi termasuk area peringatan {src}."
            )
        else:
            change = {
                Transition.ESCALATE: f"Tingkat peringatan naik menjadi {level}. ",
                Transition.DEESCALATE: f"Tingkat peringatan turun menjadi {level}. ",
                Transition.UPDATE: "Peringatan diperbarui. ",
            }.get(t, "")
            since = _date_time(message.effective, zone, "id")
            until = f" sampai {_date_time(expires, zone, 'id')}" if expires is not None else ""
            text = (
                f"{change}{src} memperingatkan {event}. {place} berada di wilayah peringatan dengan tingkat "
                f"{level}, berlaku mulai {since}{until}."
            )
        text += f" Sumber: peringatan {src} {message.source_warning_id}."
    else:
        place = _area_place(area, "en")
        gloss = _GLOSS_EN[message.level]
        if t is Transition.CANCEL:
            text = f"{src} has cancelled its {event} warning. The {level} alert for {place} is cancelled."
        elif t is Transition.EXPIRE:
            text = f"The {level} alert for {event} in {place} is over (the {src} warning has expired)."
        elif t is Transition.ALL_CLEAR:
            text = f"The {level} alert for {event} in {place} is over: the {src} warning no longer covers this area."
        else:
            change = {
                Transition.ESCALATE: f"The alert level has been raised to {level}. ",
                Transition.DEESCALATE: f"The alert level has been lowered to {level}. ",
                Transition.UPDATE: "The alert has been updated. ",
            }.get(t, "")
            since = _date_time(message.effective, zone, "en")
            until = f" until {_date_time(expires, zone, 'en')}" if expires is not None else ""
            text = (
                f"{change}{src} warns of {event}. {place} is in the warned area at level {level} ({gloss}), "
                f"from {since}{until}."
            )
        text += f" Source: {src} warning {message.source_warning_id}."
    return _clean(text)


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    node = ET.SubElement(parent, tag)
    if text is not None:
        node.text = _clean(text)
    return node


def _pair(parent: ET.Element, tag: str, name: str, value: str) -> None:
    node = _sub(parent, tag)
    _sub(node, "valueName", name)
    _sub(node, "value", value)


def _escape_text(text: str) -> str:
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    return text


def _escape_attribute(text: str) -> str:
    text = _escape_text(text).replace('"', "&quot;")
    return text.replace("\r", "&#13;").replace("\n", "&#10;").replace("\t", "&#09;")


def _xml_text(root: ET.Element, indent: str) -> str:
    """``root`` as XML text, its children indented two spaces deeper than ``indent`` (which starts with a newline)."""
    parts: list[str] = []
    append = parts.append

    def write(node: ET.Element, indent: str) -> None:
        tag = node.tag
        attributes = "".join(f' {k}="{_escape_attribute(v)}"' for k, v in node.attrib.items()) if node.attrib else ""
        if len(node):
            append(f"<{tag}{attributes}>")
            inner = indent + "  "
            for child in node:
                append(inner)
                write(child, inner)
            append(f"{indent}</{tag}>")
        elif node.text:
            append(f"<{tag}{attributes}>{_escape_text(node.text)}</{tag}>")
        else:
            append(f"<{tag}{attributes} />")

    write(root, indent)
    return "".join(parts)


_DECLARATION = "<?xml version='1.0' encoding='utf-8'?>\n"


def _document(root: ET.Element) -> bytes:
    """``root`` as UTF-8 XML with declaration, indented by two spaces per level.

    The same bytes as ``ET.indent(root)`` followed by ``ET.tostring(root, "utf-8", xml_declaration=True)`` for
    the trees ews builds (unqualified tags, elements holding either text or children), in a fraction of the
    time: ElementTree's writer makes several calls per element through a text codec, which was most of the
    cost of a CAP file. ``tests/unit/test_cap_writer.py`` checks the two agree.
    """
    return (_DECLARATION + _xml_text(root, "\n")).encode("utf-8", "xmlcharrefreplace")


def _check(message: CapMessage) -> None:
    if message.status not in _STATUSES:
        raise CapError(f"{message.identifier}: status {message.status!r}; ews writes one of {', '.join(_STATUSES)}")
    allowed = msg_types_for(message.transition)
    if message.msg_type not in allowed:
        raise CapError(
            f"{message.identifier}: msgType {message.msg_type!r} does not fit transition "
            f"{message.transition.value!r}; use {' or '.join(allowed)}"
        )
    if message.msg_type in ("Update", "Cancel") and not message.references:
        raise CapError(
            f"{message.identifier}: msgType {message.msg_type} needs <references> to the versions it replaces"
        )
    if not _clean(message.event).strip():
        raise CapError(f"{message.identifier}: empty event; CAP 1.2 requires <event> (pass BMKG's event text)")
    _check_token(message.identifier, "identifier")
    _check_token(message.sender, "sender")
    for ref in message.references:
        _check_token(ref.sender, f"{message.identifier}: referenced sender")
        _check_token(ref.identifier, f"{message.identifier}: referenced identifier")
    if message.source_web and not (urlparse(message.source_web).scheme and urlparse(message.source_web).netloc):
        raise CapError(f"{message.identifier}: web {message.source_web!r} is not an absolute URL (CAP <web>)")


def _times(message: CapMessage) -> tuple[datetime, datetime, datetime | None]:
    sent = _whole_seconds(message.sent)
    for moment, what in ((message.sent, "sent"), (message.effective, "effective"), (message.expires, "expires")):
        if moment is not None:
            cap_time(moment, f"{message.identifier}: {what}")
    if message.transition.ends:
        candidates = [sent + END_VALIDITY]
        if message.expires is not None:
            candidates.append(_whole_seconds(message.expires))
        return sent, sent, max(candidates)
    effective = _whole_seconds(message.effective)
    expires = _whole_seconds(message.expires) if message.expires is not None else None
    if expires is not None and expires <= effective:
        raise CapError(
            f"{message.identifier}: expires {cap_time(expires)} is not after effective {cap_time(effective)}"
        )
    if expires is not None and expires <= sent:
        raise CapError(
            f"{message.identifier}: expires {cap_time(expires)} is not after sent {cap_time(sent)}; an expired "
            "warning is not announced (send an expire all-clear instead)"
        )
    return sent, effective, expires


def to_cap_xml(message: CapMessage) -> bytes:
    """Write one message as a CAP 1.2 ``<alert>`` (UTF-8, with XML declaration).

    Element order follows the OASIS schema. See the module docstring for the level mapping, the lifecycle
    and the time format.

    Parameters
    ----------
    message
        The alert version; its datetimes must be timezone-aware.

    Returns
    -------
    bytes
        The document, which passes :class:`ews.cap.validate.CapValidator` and
        :func:`ews.ingest.bmkg_cap.parse_cap`.

    Raises
    ------
    CapError
        Inconsistent input: a status or msgType ews does not write, an Update/Cancel without references,
        ``Level.NONE``, an identifier or sender with spaces/commas/``<``/``&``, a naive datetime, an
        announcement whose ``expires`` is not after ``effective`` and ``sent``, a relative ``source_web``,
        or a geometry that cannot be written as CAP polygons (message names the village).
    """
    _check(message)
    severity, urgency, certainty = level_to_cap(message.level)
    ends = message.transition.ends
    if ends:
        severity, urgency, certainty = END_CAP
    sent, effective, expires = _times(message)
    area = message.area
    if area.is_area:
        where = f"{message.identifier}: area of {len(area.members)} village(s) in kecamatan {area.village_code}"
    else:
        where = f"{message.identifier}: village {area.village_code} {area.village_name}"
    if area.polygons is not None:
        polygons = list(area.polygons)
    elif area.geometry is not None:
        polygons = polygon_rings(area.geometry, where)
    else:
        raise CapError(f"{where}: neither an outline nor polygon texts; a CAP alert from ews must locate its area")

    alert = ET.Element("alert", {"xmlns": CAP_NS})
    _sub(alert, "identifier", message.identifier)
    _sub(alert, "sender", message.sender)
    _sub(alert, "sent", cap_time(sent))
    _sub(alert, "status", message.status)
    _sub(alert, "msgType", message.msg_type)
    _sub(alert, "scope", "Public")
    if message.status != "Actual":
        _sub(alert, "note", f"{message.status}: not a real warning / bukan peringatan sungguhan")
    if message.references:
        _sub(
            alert,
            "references",
            " ".join(f"{r.sender},{r.identifier},{cap_time(_whole_seconds(r.sent))}" for r in message.references),
        )
    for language in ("id", "en"):
        event = _clean(message.event) if language == "id" else _clean(event_in_english(message.event))
        info = _sub(alert, "info")
        _sub(info, "language", language)
        _sub(info, "category", "Geo" if message.hazard in ("gempa", "tsunami", "longsor") else "Met")
        _sub(info, "event", event)
        _sub(info, "responseType", "AllClear" if ends else _RESPONSE[message.level])
        _sub(info, "urgency", urgency)
        _sub(info, "severity", severity)
        _sub(info, "certainty", certainty)
        _pair(info, "eventCode", "ews:level", message.level.label)
        _sub(info, "effective", cap_time(effective))
        if expires is not None:
            _sub(info, "expires", cap_time(expires))
        _sub(info, "senderName", SENDER_NAME if message.issuer == "BMKG" else f"ews ({message.issuer})")
        _sub(info, "headline", _headline(message, language, event))
        _sub(info, "description", _description(message, language, event, expires))
        cancel = message.transition is Transition.CANCEL
        if ends:
            instruction = (
                _END_INSTRUCTION[(language, True)]
                if cancel
                else _HAZARD_END_INSTRUCTION.get((language, message.hazard), _END_INSTRUCTION[(language, False)])
            )
        else:
            instruction = _HAZARD_INSTRUCTION.get((language, message.hazard), _INSTRUCTION[language][message.level])
        _sub(info, "instruction", instruction)
        if message.source_web:
            _sub(info, "web", message.source_web)
        _pair(info, "parameter", "ews:transition", message.transition.value)
        _pair(info, "parameter", "ews:sourceIdentifier", message.source_warning_id)
        area_node = _sub(info, "area")
        if area.is_area:
            names = [name for _, name in area.members]
            _sub(area_node, "areaDesc", _clean(area_desc(names, area.kecamatan_name, area.kabkota_name)))
        else:
            _sub(area_node, "areaDesc", f"{area.village_name}, Kec. {area.kecamatan_name}, {area.kabkota_name}")
        for text in polygons:
            _sub(area_node, "polygon", text)
        for code in [c for c, _ in area.members] or [area.village_code]:
            _pair(area_node, "geocode", "KEMENDAGRI", code)
    return _document(alert)


def _headline_id(message: CapMessage) -> str:
    return _headline(message, "id", _clean(message.event))


@dataclass(frozen=True)
class FeedEntry:
    """One message's ``<entry>`` in the Atom index, already written (see :func:`feed_entry`).

    A published message never changes, so neither does its entry: a cycle can keep it (e.g. in the CAP folder's
    manifest) and list the message again without rebuilding it. ``sent`` orders the feed.
    """

    identifier: str
    sent: datetime
    xml: str


def feed_entry(message: CapMessage, link: str) -> FeedEntry:
    """The Atom ``<entry>`` of a message whose CAP file is at ``link``.

    ``id`` = ``urn:ews:cap:<CAP identifier>``, ``title`` = the Indonesian headline, ``updated`` = ``sent``, a
    ``link`` to the CAP file (``type="application/cap+xml"``) and the Indonesian description as ``summary``.

    Raises
    ------
    CapError
        A naive ``sent``.
    """
    sent = _whole_seconds(message.sent)
    cap_time(message.sent, f"{message.identifier}: sent")
    entry = ET.Element("entry")
    _sub(entry, "id", f"urn:ews:cap:{message.identifier}")  # Atom ids must be absolute IRIs
    _sub(entry, "title", _headline_id(message))
    _sub(entry, "updated", cap_time(sent))
    ET.SubElement(entry, "link", {"href": link, "type": "application/cap+xml"})
    _sub(entry, "summary", _description(message, "id", _clean(message.event), message.expires))
    return FeedEntry(message.identifier, sent, _xml_text(entry, "\n  "))


def atom_feed(
    messages: Sequence[CapMessage],
    *,
    feed_id: str,
    title: str,
    updated: datetime,
    link_for: Callable[[CapMessage], str],
) -> bytes:
    """An Atom 1.0 index of CAP messages (e.g. the active alerts), newest first.

    Entries (see :func:`feed_entry`) are ordered by ``sent`` (as instants) descending, then by identifier
    ascending.

    Parameters
    ----------
    messages
        The messages to list.
    feed_id, title
        The feed's ``<id>`` (an absolute IRI, e.g. its URL) and ``<title>``.
    updated
        The feed's ``<updated>`` (timezone-aware).
    link_for
        URL of a message's CAP file.

    Raises
    ------
    CapError
        A naive ``updated`` or ``sent``.
    """
    return atom_feed_of([feed_entry(m, link_for(m)) for m in messages], feed_id=feed_id, title=title, updated=updated)


def atom_feed_of(entries: Sequence[FeedEntry], *, feed_id: str, title: str, updated: datetime) -> bytes:
    """:func:`atom_feed` from entries already written (kept from an earlier cycle or just made), in the same order.

    Raises
    ------
    CapError
        A naive ``updated`` or entry ``sent``.
    """
    feed = ET.Element("feed", {"xmlns": ATOM_NS})
    _sub(feed, "id", feed_id)
    _sub(feed, "title", title)
    _sub(feed, "updated", cap_time(updated, "feed updated"))
    author = _sub(feed, "author")
    _sub(author, "name", SENDER_NAME)
    for entry in entries:
        if entry.sent.utcoffset() is None:
            raise CapError(f"{entry.identifier}: sent {entry.sent.isoformat()} has no timezone")
    ordered = sorted(entries, key=lambda e: e.identifier)
    ordered.sort(key=lambda e: e.sent, reverse=True)  # stable: ties keep identifier order
    head = _xml_text(feed, "\n")
    closing = "\n</feed>"
    body = "".join(f"\n  {e.xml}" for e in ordered)
    return (_DECLARATION + head[: -len(closing)] + body + closing).encode("utf-8", "xmlcharrefreplace")

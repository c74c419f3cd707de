"""BMKG nowcast warnings: the RSS index and CAP 1.2 alerts, from a file, a folder or a URL.

CAP is parsed with defusedxml (no DTDs, entities or external references) and validated for structure
and meaning: required elements, CAP enumerations, times with offsets, and closed, simple polygons.
BMKG writes polygon points as ``lat,lon``; geometries here are ``(lon, lat)`` in EPSG:4326.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urljoin, urlparse

import defusedxml
import defusedxml.ElementTree as SafeET
import shapely
from pyproj import Geod
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

from ews.errors import CapError, FetchError
from ews.ingest.http import fetch_bytes
from ews.types import Warning, WarningAlias

log = logging.getLogger(__name__)

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
DEFAULT_BASE_URL = "https://www.bmkg.go.id"
RSS_PATH = "/alerts/nowcast/{lang}/rss.xml"
# Indonesia with a margin: a polygon wholly outside this box is suspicious (swapped lat/lon?).
INDONESIA_BBOX = (94.0, -11.5, 141.5, 6.5)

_STATUS = {"Actual", "Exercise", "System", "Test", "Draft"}
_MSG_TYPE = {"Alert", "Update", "Cancel", "Ack", "Error"}
_SCOPE = {"Public", "Restricted", "Private"}
_URGENCY = {"Immediate", "Expected", "Future", "Past", "Unknown"}
_SEVERITY = {"Extreme", "Severe", "Moderate", "Minor", "Unknown"}
_CERTAINTY = {"Observed", "Likely", "Possible", "Unlikely", "Unknown"}
_CAP_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}([+-]\d{2}:\d{2}|Z)$")
_NAMED = re.compile(r"(?:khususnya di|especially in:?)\s*([^\n]*)", re.IGNORECASE)
# The list ends at a full stop after a word; "Bl." / "Kec." / "Gn." (up to 3 letters) abbreviate inside a name.
_LIST_END = re.compile(r"(?<![.\s])(?<!\b\w)(?<!\b\w\w)(?<!\b\w\w\w)\.(?=\s|$)")
_GEOD = Geod(ellps="WGS84")
# A CAP alert or an RSS index is a few kB (BMKG's largest seen: 12 kB); anything near this is not one.
MAX_DOCUMENT_BYTES = 2 * 1024 * 1024
# ~1e-10 square degrees is about a square metre: anything smaller is a line drawn as a polygon.
MIN_AREA_DEG2 = 1e-10


@dataclass(frozen=True)
class RssItem:
    """One entry of BMKG's nowcast RSS index."""

    title: str
    link: str
    guid: str
    pub_date: str


@dataclass(frozen=True)
class SourceProblem:
    """A file or URL of a batch that could not be used, and why (shown to operators)."""

    source: str
    message: str


@dataclass
class CapBatch:
    """Warnings read from one ``--cap`` source, and the problems met on the way."""

    warnings: list[Warning] = field(default_factory=list)
    problems: list[SourceProblem] = field(default_factory=list)
    duplicates: int = 0


def _q(tag: str) -> str:
    return f"{{{CAP_NS}}}{tag}"


def _parse_xml(data: bytes, source: str) -> ET.Element:
    if not data.strip():
        raise CapError(f"{source}: empty file; expected a CAP 1.2 <alert> or an RSS index")
    if len(data) > MAX_DOCUMENT_BYTES:
        raise CapError(
            f"{source}: {len(data):,} bytes; a CAP alert or RSS index is a few kB (limit {MAX_DOCUMENT_BYTES:,}): "
            "refused unread"
        )
    try:
        root: ET.Element = SafeET.fromstring(data, forbid_dtd=True)
    except defusedxml.DTDForbidden:
        raise CapError(f"{source}: refused: contains a DTD (<!DOCTYPE>); CAP never needs one") from None
    except defusedxml.EntitiesForbidden:
        raise CapError(f"{source}: refused: declares XML entities (entity-expansion risk)") from None
    except defusedxml.DefusedXmlException as exc:
        raise CapError(f"{source}: refused unsafe XML ({type(exc).__name__})") from None
    except ET.ParseError as exc:
        raise CapError(f"{source}: not well-formed XML ({exc}); is it a CAP/RSS file?") from None
    return root


def _text(parent: ET.Element, tag: str, source: str, *, required: bool = False) -> str:
    node = parent.find(_q(tag))
    value = (node.text or "").strip() if node is not None else ""
    if required and not value:
        raise CapError(f"{source}: <{tag}> is missing or empty; CAP 1.2 requires it")
    return value


def _time(value: str, tag: str, source: str) -> datetime:
    if not _CAP_TIME.match(value):
        raise CapError(f"{source}: <{tag}> {value!r} is not a CAP time (YYYY-MM-DDThh:mm:ss+hh:mm)")
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _enum(value: str, allowed: set[str], tag: str, source: str) -> str:
    if value == "Very Likely":  # CAP 1.1 value that 1.2 keeps for backward compatibility
        value = "Likely"
    if value not in allowed:
        raise CapError(f"{source}: <{tag}> {value!r} is not one of {', '.join(sorted(allowed))}")
    return value


@dataclass(frozen=True)
class PolygonReading:
    """One CAP ``<polygon>`` as ews uses it: the usable (possibly repaired) area and what was done to it.

    ``geometry`` is a Polygon or MultiPolygon in lon/lat; ``note`` says how it was repaired (``None``: as
    drawn); ``key`` is the ring in canonical form (see :func:`canonical_ring`), for the warning's identity.
    """

    geometry: BaseGeometry
    note: str | None
    key: str


def _points(text: str, where: str) -> list[tuple[float, float]]:
    points: list[tuple[float, float]] = []
    for n, pair in enumerate(text.split(), start=1):
        parts = pair.split(",")
        try:
            lat, lon = (float(p) for p in parts)
        except ValueError:
            raise CapError(f"{where}: point {n} {pair[:40]!r} is not 'lat,lon'") from None
        if not -90 <= lat <= 90 and -90 <= lon <= 90:
            raise CapError(
                f"{where}: point {n} {pair!r} looks swapped: latitude {lat} is impossible; "
                "CAP polygons are 'lat,lon' (Indonesia: lat -11..6, lon 95..141)"
            )
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise CapError(f"{where}: point {n} {pair!r} is out of range (lat -90..90, lon -180..180)")
        points.append((lon, lat))
    return points


def canonical_ring(points: Sequence[tuple[float, float]]) -> str:
    """A ring as text that does not depend on where it starts or which way it runs.

    Coordinates are rounded to 3 decimals (as BMKG writes them) and the closing point is dropped; the
    ring starts at its smallest point and runs in the direction whose text sorts first. Two drawings of
    the same outline give the same text.
    """
    ring = [f"{lat:.3f},{lon:.3f}" for lon, lat in points]
    if len(ring) > 1 and ring[0] == ring[-1]:
        ring = ring[:-1]
    if not ring:
        return ""

    def rotated(seq: list[str]) -> list[str]:
        i = min(range(len(seq)), key=seq.__getitem__)
        return seq[i:] + seq[:i]

    forward, backward = rotated(ring), rotated(ring[::-1])
    return " ".join(min(forward, backward))


def read_polygon(text: str, where: str) -> PolygonReading:
    """Turn a CAP ``<polygon>`` string (``"lat,lon lat,lon ..."``) into a usable area in lon/lat.

    BMKG's polygons sometimes cross themselves (a tiny bow-tie near a vertex, a slight crossing of the
    outline). Such a polygon is repaired with ``shapely.make_valid``, keeping its polygonal parts, and the
    repair and the change of area are returned in ``note``: a warning is repaired and flagged, never dropped
    for a drawing error.

    Raises
    ------
    CapError
        The polygon cannot be used at all: fewer than four points, unparseable or out-of-range numbers,
        first and last points differ (not closed), or no area (all points on a line), also after repair.
    """
    points = _points(text, where)
    if len(points) < 4:
        raise CapError(f"{where}: {len(points)} points; a CAP polygon needs at least 4 (first = last)")
    if points[0] != points[-1]:
        raise CapError(
            f"{where}: not closed: first point {points[0][1]},{points[0][0]} differs from last "
            f"{points[-1][1]},{points[-1][0]}; CAP 1.2 requires the first and last pairs to be equal"
        )
    key = canonical_ring(points)
    polygon = Polygon(points)
    if polygon.is_valid:
        if polygon.area < MIN_AREA_DEG2:
            raise CapError(f"{where}: encloses no area (all points on a line); it cannot locate a warning")
        return PolygonReading(polygon, None, key)
    reason = shapely.is_valid_reason(polygon)
    parts = [g for g in shapely.get_parts(shapely.make_valid(polygon)) if g.geom_type in ("Polygon", "MultiPolygon")]
    repaired = shapely.union_all(parts) if parts else Polygon()
    if repaired.is_empty or repaired.area < MIN_AREA_DEG2:
        raise CapError(f"{where}: outline is not a simple polygon ({reason}) and encloses no area once repaired")
    drawn = float(polygon.area)  # the shoelace area of the outline as drawn
    change = (
        f"area change {(repaired.area - drawn) / drawn * 100:+.4f} %"
        if drawn > MIN_AREA_DEG2
        else "its lobes cancel out as drawn: area taken as repaired"
    )
    note = f"{where}: outline crosses itself ({reason}); repaired (shapely.make_valid, polygonal parts kept), {change}"
    return PolygonReading(repaired, note, key)


def polygon_from_cap(text: str, where: str) -> BaseGeometry:
    """The usable area of a CAP ``<polygon>`` (repaired if it crosses itself); see :func:`read_polygon`."""
    return read_polygon(text, where).geometry


def circle_from_cap(text: str, where: str) -> Polygon:
    """Turn a CAP ``<circle>`` (``"lat,lon radius_km"``) into a 64-point geodesic polygon."""
    try:
        centre, radius = text.split()
        lat, lon = (float(v) for v in centre.split(","))
        km = float(radius)
    except ValueError:
        raise CapError(f"{where}: {text!r} is not 'lat,lon radius_km'") from None
    if km <= 0:
        raise CapError(f"{where}: radius {km} km; it must be positive")
    azimuths = [i * 360.0 / 64 for i in range(64)]
    lons, lats, _ = _GEOD.fwd([lon] * 64, [lat] * 64, azimuths, [km * 1000.0] * 64)
    return Polygon(zip(lons, lats, strict=True))


def named_areas(description: str) -> tuple[str, ...]:
    """The area names BMKG lists after "khususnya di" / "especially in:", upper-cased.

    The list ends at the line's end or at a full stop after a word; a period after an abbreviation of up to
    three letters ("Bl. Limbangan", "Kec. Gayungan") belongs to the name.
    """
    match = _NAMED.search(description)
    if not match:
        return ()
    listed = match.group(1)
    end = _LIST_END.search(listed)
    if end is not None:
        listed = listed[: end.start()]
    names = [" ".join(n.split()).upper() for n in re.split(r",|\bdan\b|\band\b", listed, flags=re.IGNORECASE)]
    return tuple(n for n in names if n)


def content_key(
    *,
    sender: str,
    status: str,
    event_key: str,
    sent: datetime,
    effective: datetime | None,
    expires: datetime | None,
    shapes: Sequence[str],
) -> str:
    """A warning's identity by content: the same warning gives the same key whatever its identifier.

    BMKG re-serves a nowcast under a new identifier (another hour field or sequence number) and publishes
    its Indonesian and English editions under identifiers of their own; the content stays the same. The key
    hashes the sender, the status, the event (``event_key``: BMKG's OET event code, else the CAP category,
    severity, urgency and certainty, which do not depend on the edition's language), ``sent``, ``effective``
    and ``expires`` as instants (UTC) and the set of shapes in canonical form (:func:`canonical_ring`, so the
    order of the polygons, where each starts and which way it runs do not count).
    """

    def instant(value: datetime | None) -> str:
        return value.astimezone(UTC).isoformat() if value is not None else "-"

    parts = [sender.strip().lower(), status, event_key, instant(sent), instant(effective), instant(expires)]
    parts.extend(sorted(set(shapes)))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def _event_code(info: ET.Element) -> str:
    for code in info.findall(_q("eventCode")):
        name = (code.findtext(_q("valueName")) or "").strip().upper()
        value = (code.findtext(_q("value")) or "").strip()
        if name.startswith("OET") and value:
            return value
    return ""


def _outside_note(geometry: BaseGeometry) -> str | None:
    box = shapely.box(*INDONESIA_BBOX)
    if geometry.is_empty or geometry.intersects(box):
        return None
    minx, miny, maxx, maxy = geometry.bounds
    return (
        f"warning area lies outside Indonesia (lon {minx:.2f}..{maxx:.2f}, lat {miny:.2f}..{maxy:.2f}); "
        "it matches no village. CAP polygons are 'lat,lon': check the sender's coordinate order"
    )


def parse_cap(data: bytes, source: str, *, prefer_languages: tuple[str, ...] = ("id", "en")) -> Warning:
    """Parse and validate one CAP 1.2 alert.

    Parameters
    ----------
    data
        The file's bytes.
    source
        File path or URL, used in every error message.
    prefer_languages
        Which ``<info>`` to keep when there are several (first match on the language prefix).

    Raises
    ------
    CapError
        Unsafe or malformed XML, a missing or invalid element, or an invalid polygon; the message
        names the source, the element and what is wrong.
    """
    root = _parse_xml(data, source)
    if root.tag != _q("alert"):
        found = root.tag.split("}")[-1]
        ns = root.tag[1:].split("}")[0] if root.tag.startswith("{") else "no namespace"
        raise CapError(f"{source}: root element is <{found}> in {ns}; expected CAP 1.2 <alert> ({CAP_NS})")
    identifier = _text(root, "identifier", source, required=True)
    where = f"{source} [{identifier}]"
    sender = _text(root, "sender", source, required=True)
    sent = _time(_text(root, "sent", source, required=True), "sent", where)
    status = _enum(_text(root, "status", source, required=True), _STATUS, "status", where)
    msg_type = _enum(_text(root, "msgType", source, required=True), _MSG_TYPE, "msgType", where)
    _enum(_text(root, "scope", source, required=True), _SCOPE, "scope", where)
    references = tuple(_text(root, "references", source).split())
    if msg_type in ("Update", "Cancel") and not references:
        raise CapError(f"{where}: msgType {msg_type} without <references>; it must name the alert it replaces")

    infos = root.findall(_q("info"))
    if not infos:
        if msg_type == "Cancel":
            return Warning(
                identifier, sender, sent, status, msg_type, references, "", "", "Unknown", "Unknown",
                "Unknown", None, None, "", "", "", "", shapely.Polygon(), 0, source,
            )  # fmt: skip
        raise CapError(f"{where}: no <info> block; an {msg_type} must describe the event")
    info = infos[0]
    for lang in prefer_languages:
        chosen = [i for i in infos if _text(i, "language", source).lower().startswith(lang)]
        if chosen:
            info = chosen[0]
            break
    language = _text(info, "language", source) or "en-US"
    event = _text(info, "event", where, required=True)
    urgency = _enum(_text(info, "urgency", where, required=True), _URGENCY, "urgency", where)
    severity = _enum(_text(info, "severity", where, required=True), _SEVERITY, "severity", where)
    certainty = _enum(_text(info, "certainty", where, required=True), _CERTAINTY, "certainty", where)
    effective_text = _text(info, "effective", where) or _text(info, "onset", where)
    effective = _time(effective_text, "effective", where) if effective_text else sent
    expires_text = _text(info, "expires", where)
    expires = _time(expires_text, "expires", where) if expires_text else None
    if expires is not None and expires <= effective:
        raise CapError(f"{where}: <expires> {expires_text} is not after <effective> {effective_text}")

    shapes: list[BaseGeometry] = []
    shape_keys: list[str] = []
    notes: list[str] = []
    unusable = 0
    hint_points: list[tuple[float, float]] = []
    area_names: list[str] = []
    for a, area in enumerate(info.findall(_q("area")), start=1):
        desc = _text(area, "areaDesc", where, required=True)
        area_names.append(desc)
        for p, node in enumerate(area.findall(_q("polygon")), start=1):
            text = node.text or ""
            at = f"{where}: area {a} '{desc}', polygon {p}"
            try:
                reading = read_polygon(text, at)
            except CapError as exc:
                # One polygon that cannot be used drops only itself; the others still locate the warning.
                unusable += 1
                with contextlib.suppress(CapError):
                    hint_points.extend(_points(text, at))
                shape_keys.append(" ".join(text.split()))
                notes.append(f"{exc}: polygon dropped, the alert's other shapes are used")
                continue
            shapes.append(reading.geometry)
            shape_keys.append(reading.key)
            if reading.note:
                notes.append(reading.note)
        for c, node in enumerate(area.findall(_q("circle")), start=1):
            shapes.append(circle_from_cap(node.text or "", f"{where}: area {a} '{desc}', circle {c}"))
            shape_keys.append("circle " + " ".join((node.text or "").split()))
    description = _text(info, "description", where)
    names = named_areas(description)
    if not shapes and msg_type in ("Alert", "Update"):
        if not names:
            raise CapError(
                f"{where}: no usable <polygon> or <circle> in any <area> and no kecamatan named in the "
                "description; ews cannot locate this warning"
                + (f" ({unusable} polygon(s) dropped: {notes[0]})" if unusable else "")
            )
        notes.append(
            f"LOCATED BY NAME: {'all ' + str(unusable) if unusable else 'no'} polygon(s) usable; the warning is "
            f"targeted by the {len(names)} kecamatan named in its description ({', '.join(names)})"
        )
    geometry = shapely.union_all(shapes) if shapes else shapely.Polygon()
    outside = _outside_note(geometry)
    if outside:
        notes.append(outside)
    for note in notes:
        log.warning("%s", note if note.startswith(source) else f"{where}: {note}")
    event_code = _event_code(info)
    category = _text(info, "category", where)
    event_key = event_code or f"{category}|{severity}|{urgency}|{certainty}"
    key = content_key(
        sender=sender, status=status, event_key=event_key, sent=sent, effective=effective, expires=expires,
        shapes=shape_keys,
    )  # fmt: skip
    return Warning(
        identifier=identifier,
        sender=sender,
        sent=sent,
        status=status,
        msg_type=msg_type,
        references=references,
        language=language,
        event=event,
        urgency=urgency,
        severity=severity,
        certainty=certainty,
        effective=effective,
        expires=expires,
        headline=_text(info, "headline", where),
        description=description,
        web=_text(info, "web", where),
        area_desc=", ".join(area_names),
        geometry=geometry,
        polygon_count=len(shapes),
        source=source,
        named_areas=names,
        notes=tuple(notes),
        event_code=event_code,
        content_key=key,
        unusable_polygons=unusable,
        location_hint=shapely.MultiPoint(hint_points) if hint_points else None,
    )


def parse_rss(data: bytes, source: str, problems: list[SourceProblem] | None = None) -> list[RssItem]:
    """Parse BMKG's RSS 2.0 index into its items (title, CAP link, guid = CAP identifier, date).

    With ``problems``, an item that cannot be used (no ``<link>``) is recorded there and the other items
    are still returned: one bad item never hides the rest of the index. Without it, such an item raises.

    Raises
    ------
    CapError
        Unsafe or malformed XML, not RSS 2.0, or (without ``problems``) an item without a link.
    """
    root = _parse_xml(data, source)
    if root.tag != "rss" or root.find("channel") is None:
        raise CapError(f"{source}: not an RSS 2.0 index (root <{root.tag}>)")
    items = []
    for n, item in enumerate(root.iter("item"), start=1):
        link = (item.findtext("link") or "").strip()
        title = (item.findtext("title") or "").strip()
        guid = (item.findtext("guid") or "").strip()
        if not link:
            message = f"{source}: item {n} ({guid or title or 'no guid or title'}) has no <link> to its CAP file"
            if problems is None:
                raise CapError(message)
            problems.append(SourceProblem(f"{source} item {n}", f"{message}: item skipped, the others are read"))
            log.error("%s", message)
            continue
        items.append(RssItem(title=title, link=link, guid=guid, pub_date=(item.findtext("pubDate") or "").strip()))
    return items


def is_rss(data: bytes) -> bool:
    """Tell an RSS index from a CAP alert by a cheap look at the document's start."""
    head = data[:2048].lstrip()
    return b"<rss" in head


def rebase(link: str, base_url: str) -> str:
    """Move a CAP link from the RSS onto ``base_url`` (keeps the path): for mirrors and test servers."""
    path = urlparse(link).path
    return urljoin(base_url.rstrip("/") + "/", path.lstrip("/"))


Fetcher = Callable[[str], bytes]


def _rank(warning: Warning, prefer_languages: tuple[str, ...]) -> int:
    lang = warning.language.lower()
    return next((i for i, p in enumerate(prefer_languages) if lang.startswith(p)), len(prefer_languages))


def read_warnings(
    source: str,
    *,
    base_url: str = DEFAULT_BASE_URL,
    fetch: Fetcher | None = None,
    prefer_languages: tuple[str, ...] = ("id", "en"),
) -> CapBatch:
    """Read every warning from a CAP file, an RSS index, a folder, a URL, or ``bmkg[:id|:en]``.

    One bad file does not stop the batch: it is recorded in ``problems`` (with the file and the
    reason) and logged; the rest are read. The same identifier read twice is kept once.

    Parameters
    ----------
    source
        A path to a CAP or RSS file, a folder of them, an http(s) URL, or ``bmkg`` / ``bmkg:en`` for
        the live nowcast index under ``base_url``.
    base_url
        Where BMKG's files are served (``EWS_BMKG_BASE_URL``); links in an index are moved onto it.
    fetch
        Function that GETs a URL (default: :func:`ews.ingest.http.fetch_bytes`).
    prefer_languages
        When BMKG publishes one identifier in several languages, keep the first of these.
    """
    get = fetch or fetch_bytes
    batch = CapBatch()
    by_identifier: dict[str, int] = {}  # identifier -> index in batch.warnings
    by_content: dict[str, int] = {}  # content key -> index in batch.warnings

    def problem(where: str, message: str) -> None:
        log.error("%s", message)
        batch.problems.append(SourceProblem(where, message))

    def alias(w: Warning) -> WarningAlias:
        return WarningAlias(w.identifier, w.source, w.language, w.event, w.headline)

    def keep(warning: Warning) -> None:
        """Add a warning, or merge it into the copy of it already read (same identifier or same content)."""
        i = by_identifier.get(warning.identifier)
        if i is None and warning.content_key:
            i = by_content.get(warning.content_key)
        if i is None:
            by_identifier[warning.identifier] = len(batch.warnings)
            if warning.content_key:
                by_content[warning.content_key] = len(batch.warnings)
            batch.warnings.append(warning)
            return
        batch.duplicates += 1
        kept = batch.warnings[i]
        # One warning, two copies (a re-served file, or the other language's edition): the preferred
        # language stays the warning; the other copy is kept as its alias, for audit and its text.
        first, second = (warning, kept) if _rank(warning, prefer_languages) < _rank(kept, prefer_languages) else (
            kept, warning
        )  # fmt: skip
        others = [a for a in (*first.aliases, *second.aliases) if a.identifier != first.identifier]
        if second.identifier != first.identifier:
            others.append(alias(second))
        unique = {a.identifier: a for a in others}
        batch.warnings[i] = replace(first, aliases=tuple(unique.values()))
        by_identifier[warning.identifier] = i

    def add(data: bytes, where: str) -> None:
        try:
            warning = parse_cap(data, where, prefer_languages=prefer_languages)
        except CapError as exc:
            problem(where, str(exc))
            return
        except Exception as exc:  # one file fails alone, whatever went wrong in it
            problem(where, f"{where}: internal error while reading this CAP file ({type(exc).__name__}: {exc}); "
                           "the file was skipped, the others are read (please report it)")  # fmt: skip
            return
        keep(warning)

    def fetch_or_note(url: str, what: str) -> bytes | None:
        try:
            return get(url)
        except FetchError as exc:
            problem(url, f"DEGRADED: {what} not fetched: {exc}")
            return None

    def from_index(data: bytes, where: str, local_dir: Path | None) -> None:
        try:
            items = parse_rss(data, where, batch.problems)
        except CapError as exc:
            problem(where, str(exc))
            return
        for item in items:
            name = Path(urlparse(item.link).path).name
            local = local_dir / name if local_dir is not None else None
            if local is not None and local.is_file():
                add(_read_file(local), str(local))
                continue
            url = rebase(item.link, base_url)
            body = fetch_or_note(url, f"CAP file of RSS item {item.guid or item.title or name}")
            if body is not None:
                add(body, url)

    def from_bytes(data: bytes, where: str, local_dir: Path | None) -> None:
        if is_rss(data):
            from_index(data, where, local_dir)
        else:
            add(data, where)

    if source == "bmkg" or source.startswith("bmkg:"):
        lang = source.partition(":")[2] or "id"
        url = urljoin(base_url.rstrip("/") + "/", RSS_PATH.format(lang=lang).lstrip("/"))
        index = fetch_or_note(url, "BMKG nowcast index (EWS_BMKG_BASE_URL)")
        if index is not None:
            from_index(index, url, None)
    elif source.startswith(("http://", "https://")):
        body = fetch_or_note(source, "CAP source")
        if body is not None:
            from_bytes(body, source, None)
    else:
        path = Path(source)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".xml", ".cap"))
            if not files:
                raise CapError(f"{path}: folder holds no .xml/.cap files")
            for file in files:
                try:
                    data = _read_file(file)
                except CapError as exc:
                    problem(str(file), str(exc))
                    continue
                if is_rss(data):
                    continue  # the folder's CAP files are read directly; an index would read them twice
                add(data, str(file))
        elif path.is_file():
            try:
                data = _read_file(path)
            except CapError as exc:
                problem(str(path), str(exc))
            else:
                from_bytes(data, str(path), path.parent)
        else:
            raise CapError(f"{source}: no such file or folder, and not a URL or 'bmkg'")
    return batch


def _read_file(path: Path) -> bytes:
    """A local CAP/RSS file's bytes, refusing (unread) one too large to be either."""
    try:
        size = path.stat().st_size
        if size > MAX_DOCUMENT_BYTES:
            raise CapError(
                f"{path}: {size:,} bytes; a CAP alert or RSS index is a few kB (limit {MAX_DOCUMENT_BYTES:,}): "
                "refused unread"
            )
        return path.read_bytes()
    except OSError as exc:
        raise CapError(f"{path}: cannot read ({exc.strerror})") from None

"""BMKG earthquake feeds (TEWS): autogempa (JSON/XML), gempaterkini and gempadirasakan.

The feeds live under ``https://data.bmkg.go.id/DataMKG/TEWS/``; each is ``{"Infogempa": {"gempa": ...}}``
where ``gempa`` is one record (autogempa) or a list (gempaterkini: the last 15 events of M5+,
gempadirasakan: the last 15 felt events). ``autogempa.xml`` holds the same fields with the epicentre
in ``<point><coordinates>lat,lon</coordinates></point>``. XML is parsed with defusedxml.

Each record becomes an :class:`~ews.hazard.earthquake.Earthquake`:

* ``time`` from ``DateTime`` (UTC), checked against ``Tanggal``/``Jam`` (local WIB/WITA/WIT) when both
  are present; ``Tanggal``/``Jam`` alone are used when ``DateTime`` is missing;
* ``lat``/``lon`` from ``Coordinates`` (``"lat,lon"``) and/or ``Lintang``/``Bujur`` (``"7.59 LS"``,
  ``"122.24 BT"``); when both are present they must agree to 0.01 degree;
* ``magnitude`` from ``Magnitude``, ``depth_km`` from ``Kedalaman`` (``"10 km"``), ``region`` from
  ``Wilayah``, ``felt`` from ``Dirasakan``, ``shakemap`` from ``Shakemap``;
* ``tsunami`` from ``Potensi``: ``"Potensi tsunami untuk diteruskan pada masyarakat"`` (or text starting
  ``"Berpotensi tsunami"``) is True; ``"Tidak berpotensi tsunami"`` and the felt-event text
  ``"Gempa ini dirasakan untuk diteruskan pada masyarakat"`` are False; anything else, or no
  ``Potensi`` (gempadirasakan carries none), is False with a note saying so;
* ``tsunami_ended`` from ``Potensi`` too: BMKG ends a tsunami warning by re-serving the event with an end
  notice there ("Peringatan dini tsunami telah berakhir", "... dinyatakan berakhir", "... diakhiri",
  "BMKG mengakhiri ...", "Pengakhiran ...", "... dicabut"). The text is matched case-insensitively with
  punctuation and runs of spaces folded (``"TELAH  BERAKHIR."``, ``"di-akhiri"``); such a text is an end
  (``tsunami`` False) unless the verb is negated ("belum berakhir": the warning stands, ``tsunami`` True,
  with a note). The hazard layer turns an end, and a "Tidak berpotensi tsunami" re-serve of an event
  alerted as a tsunami, into the Cancel of the event's thread (:mod:`ews.hazard.earthquake`).

The feeds resend old events, and gempaterkini may list one event several times (the 2021-12-14 M7.4
Flores Sea event appears 3 times): records with the same ``event_id`` collapse to one, the first kept,
with ``felt``/``shakemap`` filled from the others and a note if they disagreed. When one copy carries
BMKG's end notice the event is ended (the end comes after the warning: the other copies are stale);
otherwise one copy saying "tsunami" is enough to warn.

Limits (:data:`LIMITS`, see :mod:`ews.ingest.limits`): a feed larger than 1 MiB or nested deeper than
32 levels is refused whole, before it is parsed. A record that holds a number longer than 40 characters
(or JSON's ``NaN``/``Infinity``), or repeats a key (JSON) or an element (XML), is malformed like any
other: with ``problems=`` only that record is skipped, with the reason; BMKG's feeds never repeat one.
"""

from __future__ import annotations

import csv
import logging
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import defusedxml

from ews.codes import normalize_code
from ews.errors import DataValidationError, QuakeError
from ews.hazard.earthquake import Earthquake, potensi_words, quake_event_id, says_no_tsunami
from ews.ingest.http import fetch_bytes
from ews.ingest.limits import (
    MIB,
    DocumentLimits,
    KeyedObject,
    check_number_text,
    load_json,
    read_limited,
    refusal,
    repeated_key_reason,
    repeated_keys,
    shown,
    xml_root,
)

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://data.bmkg.go.id/DataMKG/TEWS/"
FEEDS = ("autogempa.json", "gempaterkini.json", "gempadirasakan.json")
"""The live feeds that ``read_quakes("bmkg")`` reads under ``base_url``."""

SUFFIXES = (".json", ".xml")
LIMITS = DocumentLimits(max_bytes=1 * MIB, max_depth=32, max_number_chars=40)
"""What a gempa feed may be: BMKG's are under 10 KB, 4 levels deep, numbers of a few characters."""
COORD_TOLERANCE = 0.011  # degrees: Coordinates and Lintang/Bujur are both rounded to 0.01
REVISION_WINDOW = timedelta(minutes=2)  # two records this close in time and space are likely one event
REVISION_KM = 50.0

_ZONES = {"WIB": 7, "WITA": 8, "WIT": 9, "UTC": 0}
_MONTHS = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "mei": 5, "may": 5, "jun": 6, "jul": 7, "agu": 8, "agt": 8,
    "ags": 8, "aug": 8, "sep": 9, "okt": 10, "oct": 10, "nov": 11, "des": 12, "dec": 12,
}  # fmt: skip
_DEPTH = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:km)?\s*$", re.IGNORECASE)
_HEMI = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(LS|LU|BT|BB)\s*$", re.IGNORECASE)
_TANGGAL = re.compile(r"^\s*(\d{1,2})[\s-]+([A-Za-z]{3,})[\s-]+(\d{4})\s*$")
_JAM = re.compile(r"^\s*(\d{1,2}):(\d{2}):(\d{2})\s*([A-Z]{2,4})?\s*$")
# BMKG's end of a tsunami warning, in Potensi folded by potensi_words (lower case, no punctuation).
_END_VERB = r"(?:berakhir|di ?akhiri|mengakhiri|pengakhiran|dicabut)"
_ENDED = re.compile(rf"\b{_END_VERB}\b")
_NOT_ENDED = re.compile(rf"\b(?:belum|tidak|bukan)(?: (?:juga|pernah))?(?: (?:telah|sudah|dinyatakan))? {_END_VERB}\b")

Fetcher = Callable[[str], bytes]


def _parse_json(data: bytes, source: str) -> list[object]:
    doc = load_json(data, source, LIMITS, QuakeError, "BMKG gempa feed")
    info = doc.get("Infogempa") if isinstance(doc, dict) else None
    for where, obj in (("the document", doc), ("Infogempa", info)):
        keys = repeated_keys(obj)
        if keys:  # the feed's envelope: which "gempa" would be the real one?
            raise QuakeError(f"{source}: {where}: {repeated_key_reason(keys[0])}; the feed is not used")
    gempa = info.get("gempa") if isinstance(info, dict) else None
    if isinstance(gempa, dict):
        return [gempa]
    if isinstance(gempa, list):
        return list(gempa)
    raise QuakeError(
        f'{source}: field Infogempa.gempa is missing or not a record/list; expected {{"Infogempa": {{"gempa": ...}}}}'
    )


def _parse_xml(data: bytes, source: str) -> list[object]:
    try:
        root = xml_root(data, source, LIMITS, QuakeError, "BMKG autogempa.xml")
    except defusedxml.DTDForbidden:
        raise QuakeError(f"{source}: refused: contains a DTD (<!DOCTYPE>); autogempa.xml never needs one") from None
    except defusedxml.EntitiesForbidden:
        raise QuakeError(f"{source}: refused: declares XML entities (entity-expansion/XXE risk)") from None
    except defusedxml.DefusedXmlException as exc:
        raise QuakeError(f"{source}: refused unsafe XML ({type(exc).__name__})") from None
    except ET.ParseError as exc:
        raise QuakeError(f"{source}: not well-formed XML ({exc}); expected autogempa.xml") from None
    if root.tag != "Infogempa":
        raise QuakeError(f"{source}: root element is <{root.tag}>; expected <Infogempa> (autogempa.xml)")
    records: list[object] = []
    for gempa in root.findall("gempa"):
        record = KeyedObject()
        repeated: list[str] = []
        for child in gempa:
            key = "Coordinates" if child.tag == "point" else child.tag
            if key in record:
                repeated.append(key)  # <point> and its Coordinates count as one key
                continue
            if child.tag == "point":
                coords = child.find("coordinates")
                if coords is not None and coords.text is not None:
                    record["Coordinates"] = coords.text.strip()
            else:
                record[child.tag] = (child.text or "").strip()
        record.repeated = tuple(dict.fromkeys(repeated))
        records.append(record)
    if not records:
        raise QuakeError(f"{source}: field gempa is missing; expected <Infogempa><gempa>...</gempa></Infogempa>")
    return records


def _text(record: Mapping[str, object], key: str) -> str | None:
    value = record.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    text = str(value).strip()
    return text or None


def _float(text: str, where: str, key: str, hint: str) -> float:
    too_long = check_number_text(text, LIMITS)
    if too_long is not None:
        raise QuakeError(f"{where}: field {key}: {too_long}; {hint}")
    try:
        value = float(text)
    except ValueError:
        raise QuakeError(f"{where}: field {key} {shown(text)} is not a number; {hint}") from None
    if not math.isfinite(value):
        raise QuakeError(f"{where}: field {key} {shown(text)} is not a finite number; {hint}")
    return value


def _local_time(tanggal: str, jam: str, where: str) -> datetime:
    date = _TANGGAL.match(tanggal)
    if date is None or date.group(2)[:3].lower() not in _MONTHS:
        raise QuakeError(f"{where}: field Tanggal {shown(tanggal)} is not a date like '14 Des 2021'")
    clock = _JAM.match(jam)
    zone = (clock.group(4) or "WIB") if clock else ""
    if clock is None or zone not in _ZONES:
        raise QuakeError(f"{where}: field Jam {shown(jam)} is not a time like '10:20:23 WIB' (WIB, WITA or WIT)")
    try:
        return datetime(
            int(date.group(3)), _MONTHS[date.group(2)[:3].lower()], int(date.group(1)),
            int(clock.group(1)), int(clock.group(2)), int(clock.group(3)),
            tzinfo=timezone(timedelta(hours=_ZONES[zone])),
        )  # fmt: skip
    except ValueError as exc:
        raise QuakeError(
            f"{where}: fields Tanggal/Jam {shown(tanggal)} {shown(jam)} are not a valid time ({exc})"
        ) from None


def _origin_time(record: Mapping[str, object], where: str) -> datetime:
    stamp = _text(record, "DateTime")
    tanggal, jam = _text(record, "Tanggal"), _text(record, "Jam")
    local = _local_time(tanggal, jam, where) if tanggal and jam else None
    if stamp is None:
        if local is None:
            raise QuakeError(f"{where}: field DateTime is missing (and no Tanggal/Jam); cannot date the event")
        return local.astimezone(UTC)
    try:
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        raise QuakeError(
            f"{where}: field DateTime {shown(stamp)} is not ISO 8601 (2021-12-14T03:20:23+00:00)"
        ) from None
    if when.tzinfo is None:
        raise QuakeError(f"{where}: field DateTime {shown(stamp)} has no UTC offset; BMKG writes +00:00")
    if local is not None and local != when:
        raise QuakeError(
            f"{where}: field DateTime {shown(stamp)} disagrees with Tanggal/Jam {shown(tanggal)} {shown(jam)} "
            f"({local.astimezone(UTC).isoformat()}); the record is inconsistent, check the feed"
        )
    return when.astimezone(UTC)


def _hemisphere(text: str, key: str, where: str) -> float:
    match = _HEMI.match(text)
    expected = ("LS", "LU") if key == "Lintang" else ("BT", "BB")
    example = "'7.59 LS'" if key == "Lintang" else "'122.24 BT'"
    if match is None or match.group(2).upper() not in expected:
        raise QuakeError(f"{where}: field {key} {shown(text)} does not parse; expected e.g. {example}")
    value = _float(match.group(1), where, key, f"expected e.g. {example}")
    return -value if match.group(2).upper() in ("LS", "BB") else value


def _epicentre(record: Mapping[str, object], where: str) -> tuple[float, float]:
    coords = _text(record, "Coordinates")
    lintang, bujur = _text(record, "Lintang"), _text(record, "Bujur")
    pair: tuple[float, float] | None = None
    if coords is not None:
        parts = coords.split(",")
        if len(parts) != 2:
            raise QuakeError(
                f"{where}: field Coordinates {shown(coords)} does not parse; expected 'lat,lon' (-7.59,122.24)"
            )
        hint = "expected 'lat,lon' in degrees, e.g. -7.59,122.24"
        pair = (
            _float(parts[0].strip(), where, "Coordinates", hint),
            _float(parts[1].strip(), where, "Coordinates", hint),
        )
    hemi: tuple[float, float] | None = None
    if lintang is not None and bujur is not None:
        hemi = (_hemisphere(lintang, "Lintang", where), _hemisphere(bujur, "Bujur", where))
    chosen = pair or hemi
    if chosen is None:
        raise QuakeError(f"{where}: field Coordinates is missing (and no Lintang/Bujur); cannot place the event")
    if (
        pair is not None
        and hemi is not None
        and (abs(pair[0] - hemi[0]) > COORD_TOLERANCE or abs(pair[1] - hemi[1]) > COORD_TOLERANCE)
    ):
        raise QuakeError(
            f"{where}: field Coordinates {shown(coords)} disagrees with Lintang/Bujur {shown(lintang)} {shown(bujur)}; "
            "a sign or order mix-up? check the feed"
        )
    lat, lon = chosen
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise QuakeError(f"{where}: field Coordinates ({lat}, {lon}) is outside lat -90..90 / lon -180..180")
    return lat, lon


def _tsunami(potensi: str | None) -> tuple[bool, bool, str | None]:
    """``(tsunami, ended, note)`` from BMKG's ``Potensi`` text (see the module docstring)."""
    if potensi is None:
        return False, False, "no Potensi in this feed: tsunami potential unknown, taken as none"
    text = potensi_words(potensi)
    if _ENDED.search(text):
        if _NOT_ENDED.search(text):
            return True, False, f"Potensi {shown(potensi)} says the tsunami warning has not ended: taken as standing"
        return False, True, None
    if says_no_tsunami(potensi):
        return False, False, None
    if text.startswith(("potensi tsunami untuk diteruskan", "berpotensi tsunami")):
        return True, False, None
    if text.startswith("gempa ini dirasakan untuk diteruskan"):
        return False, False, None
    return False, False, f"unknown Potensi text {shown(potensi)}: taken as no tsunami; check BMKG"


def _record(record: object, index: int, source: str) -> Earthquake:
    where = f"{source}: record {index}"
    refused = refusal(record)
    if refused is not None:
        field, reason = refused
        raise QuakeError(f"{where}: field {field}: {reason}" if field else f"{where}: {reason}")
    if not isinstance(record, dict):
        raise QuakeError(f"{where}: is a {type(record).__name__}, not a gempa record; check the feed")
    time = _origin_time(record, where)
    lat, lon = _epicentre(record, where)
    mag_text = _text(record, "Magnitude")
    if mag_text is None:
        raise QuakeError(f"{where}: field Magnitude is missing; an event without magnitude cannot be assessed")
    magnitude = _float(mag_text, where, "Magnitude", "expected e.g. '7.4'")
    if not 0 <= magnitude < 10:
        raise QuakeError(f"{where}: field Magnitude {shown(mag_text)} is outside 0-10; check the feed")
    depth_text = _text(record, "Kedalaman")
    if depth_text is None:
        raise QuakeError(f"{where}: field Kedalaman is missing; the depth is needed for the shaking estimate")
    depth = _DEPTH.match(depth_text)
    if depth is None:
        raise QuakeError(f"{where}: field Kedalaman {shown(depth_text)} does not parse; expected e.g. '10 km'")
    depth_km = _float(depth.group(1), where, "Kedalaman", "expected e.g. '10 km'")
    potensi = _text(record, "Potensi")
    tsunami, ended, note = _tsunami(potensi)
    return Earthquake(
        event_id=quake_event_id(time, lat, lon),
        time=time,
        lat=lat,
        lon=lon,
        magnitude=magnitude,
        depth_km=depth_km,
        region=_text(record, "Wilayah") or "",
        tsunami=tsunami,
        potensi=potensi,
        felt=_text(record, "Dirasakan"),
        shakemap=_text(record, "Shakemap"),
        source=source,
        notes=(note,) if note else (),
        tsunami_ended=ended,
    )


def merge_quakes(quakes: Iterable[Earthquake]) -> list[Earthquake]:
    """Collapse records of one event (same ``event_id``), keeping the first; sort by time then id.

    BMKG's end notice in any copy ends the event (the copies without it are older); otherwise one copy
    saying "tsunami" is enough to warn. ``potensi`` is the text of the copy that decided.
    """
    kept: dict[str, Earthquake] = {}
    for quake in quakes:
        first = kept.get(quake.event_id)
        if first is None:
            kept[quake.event_id] = quake
            continue
        notes = list(first.notes)
        said = (first.magnitude, first.depth_km, first.tsunami, first.tsunami_ended)
        if said != (quake.magnitude, quake.depth_km, quake.tsunami, quake.tsunami_ended):
            notes.append(
                f"{quake.source} repeats this event as M{quake.magnitude:g}, {quake.depth_km:g} km, "
                f"tsunami={quake.tsunami}, ended={quake.tsunami_ended}; kept M{first.magnitude:g}, "
                f"{first.depth_km:g} km from {first.source}"
            )
        ended = first.tsunami_ended or quake.tsunami_ended
        tsunami = (first.tsunami or quake.tsunami) and not ended  # one feed saying "tsunami" is enough to warn
        if ended and (first.tsunami or quake.tsunami):
            notes.append("one copy carries BMKG's end of the tsunami warning, another the warning: taken as ended")
        decided = next(
            (q for q in (first, quake) if (q.tsunami_ended if ended else q.tsunami) and q.potensi),
            None,
        )
        kept[quake.event_id] = replace(
            first,
            tsunami=tsunami,
            tsunami_ended=ended,
            felt=first.felt or quake.felt,
            shakemap=first.shakemap or quake.shakemap,
            potensi=decided.potensi if decided is not None else (first.potensi or quake.potensi),
            notes=tuple(dict.fromkeys(notes)),
        )
    return sorted(kept.values(), key=lambda q: (q.time, q.event_id))


def _km(a: Earthquake, b: Earthquake) -> float:
    """Great-circle distance (haversine, km) between two epicentres."""
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    dp, dl = p2 - p1, math.radians(b.lon - a.lon)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))


def _flag_revisions(quakes: list[Earthquake]) -> list[Earthquake]:
    """Note records so close in time and place that they are probably two solutions of one event.

    BMKG publishes a first automatic solution and a revision (2021-12-14: M7.5 at 03:20:22 and M7.4 at
    03:20:23); their ids differ. They are kept (the id must stay a pure function of the record), noted.
    """
    notes = [list(q.notes) for q in quakes]
    for i, a in enumerate(quakes):
        for j in range(i + 1, len(quakes)):
            b = quakes[j]
            if b.time - a.time > REVISION_WINDOW:
                break
            if _km(a, b) <= REVISION_KM:
                notes[i].append(f"probably the same event as {b.event_id} (a revised solution?)")
                notes[j].append(f"probably the same event as {a.event_id} (a revised solution?)")
    return [replace(q, notes=tuple(dict.fromkeys(n))) for q, n in zip(quakes, notes, strict=True)]


def parse_quakes(data: bytes, source: str, problems: list[str] | None = None) -> list[Earthquake]:
    """Parse one BMKG gempa feed (autogempa JSON/XML, gempaterkini or gempadirasakan JSON).

    Parameters
    ----------
    data
        The feed's bytes; JSON or XML is detected from the first non-blank character.
    source
        File name or URL, used in error messages and kept on each event.
    problems
        When given, a malformed *record* is skipped and its error appended here, so one bad record
        does not hide the other events of the feed; without it (the default) the first bad record
        raises. A feed that is not JSON/XML at all, or whose every record is bad, always raises.

    Returns
    -------
    list of Earthquake
        One per distinct event (duplicates collapsed), oldest first.

    Raises
    ------
    QuakeError
        The feed is empty, larger or deeper than :data:`LIMITS`, not JSON/XML, unsafe XML (DTD,
        entities), lacks ``Infogempa.gempa`` (or repeats it), or a record has a missing or malformed
        field, an over-long number or a repeated key; the message names the source, record index
        (0-based) and field.
    """
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head:
        raise QuakeError(f"{source}: empty feed; expected BMKG autogempa/gempaterkini/gempadirasakan JSON or XML")
    records = _parse_xml(data, source) if head.startswith(b"<") else _parse_json(data, source)
    if problems is None:
        return _flag_revisions(merge_quakes(_record(record, i, source) for i, record in enumerate(records)))
    good: list[Earthquake] = []
    bad: list[QuakeError] = []
    for i, record in enumerate(records):
        try:
            good.append(_record(record, i, source))
        except QuakeError as exc:
            bad.append(exc)
    if bad and not good:
        raise bad[0]
    problems.extend(str(exc) for exc in bad)
    return _flag_revisions(merge_quakes(good))


def _feed_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
    if not files:
        raise QuakeError(f"{folder}: folder holds no gempa feed (.json or .xml); point the source at one")
    return files


def read_quakes(
    source: str,
    *,
    base_url: str = DEFAULT_BASE_URL,
    fetch: Fetcher | None = None,
    problems: list[str] | None = None,
) -> list[Earthquake]:
    """Read earthquakes from a feed file, a folder of feeds, a URL, or ``"bmkg"`` (the live feeds).

    Events read from several feeds are merged by ``event_id`` (a resent event is one event); when
    any feed says an event may cause a tsunami, the merged event does.

    Parameters
    ----------
    source
        A path to a feed file, a folder of ``.json``/``.xml`` feeds, an http(s) URL, or ``bmkg`` for
        :data:`FEEDS` under ``base_url``.
    base_url
        Where BMKG's TEWS feeds are served (tests point it at a loopback server).
    fetch
        Function that GETs a URL (default: :func:`ews.ingest.http.fetch_bytes`).
    problems
        Collects malformed records instead of raising (see :func:`parse_quakes`), and, in a folder of
        several feeds, a feed that cannot be read at all (the other feeds are still read).

    Returns
    -------
    list of Earthquake
        Distinct events, oldest first.

    Raises
    ------
    QuakeError
        A feed is malformed, or ``source`` is neither a file, a folder, a URL nor ``bmkg``.
    FetchError
        A URL could not be fetched (transient: the scheduler may retry).
    """
    get = fetch or fetch_bytes
    found: list[Earthquake] = []
    if source == "bmkg":
        base = base_url if base_url.endswith("/") else base_url + "/"
        for feed in FEEDS:
            url = base + feed
            found.extend(parse_quakes(get(url), url, problems))
    elif source.startswith(("http://", "https://")):
        found.extend(parse_quakes(get(source), source, problems))
    else:
        path = Path(source)
        if path.is_dir():
            files = _feed_files(path)
        elif path.is_file():
            files = [path]
        else:
            raise QuakeError(f"{source}: no such file or folder, and not an http(s) URL or 'bmkg'")
        for file in files:
            try:
                data = read_limited(file, str(file), LIMITS, QuakeError, "BMKG gempa feed")
                found.extend(parse_quakes(data, str(file), problems))
            except QuakeError as exc:
                if problems is None or len(files) == 1:
                    raise
                problems.append(f"{exc}: feed skipped, the folder's other feeds are read")  # one file fails alone
    merged = _flag_revisions(merge_quakes(found))
    log.info("read %d earthquake(s) from %s", len(merged), source)
    return merged


def read_coastal_codes(path: str | Path) -> set[str]:
    """Read the coastal village codes a region gives in ``earthquake.coastal`` (a CSV with ``code``).

    Codes are normalised to dotted Kemendagri strings (``3578011001`` -> ``35.78.01.1001``).

    Raises
    ------
    DataValidationError
        The file is missing or unreadable, has no ``code`` column, or a row's code is not a
        Kemendagri code; the message names the file (and row).
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise DataValidationError(
            f"{file}: cannot read the coastal villages CSV ({exc.strerror}); check 'earthquake.coastal'"
        ) from None
    reader = csv.DictReader(text.splitlines())
    columns = [c.strip() for c in (reader.fieldnames or [])]
    if "code" not in columns:
        raise DataValidationError(
            f"{file}: coastal villages CSV has no 'code' column (columns: {', '.join(columns) or 'none'}); "
            "add a header row with 'code' holding Kemendagri village codes"
        )
    codes: set[str] = set()
    for row_number, row in enumerate(reader, start=2):
        raw = {k.strip(): v for k, v in row.items() if k is not None}.get("code")
        if raw is None or not raw.strip():
            continue
        try:
            codes.add(normalize_code(raw))
        except ValueError as exc:
            raise DataValidationError(f"{file}: row {row_number}: column code: {exc}") from None
    return codes

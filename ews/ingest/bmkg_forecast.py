"""BMKG forecasts: adm4 village JSON and DigitalForecast XML, from files, folders or BMKG's servers.

* adm4 (``api.bmkg.go.id/publik/prakiraan-cuaca?adm4=<code>``): 3-hourly steps for 3 days, updated twice
  a day. BMKG allows about 60 requests per minute per IP: :func:`fetch_adm4` paces its requests.
* DigitalForecast (``data.bmkg.go.id/DataMKG/MEWS/DigitalForecast/DigitalForecast-<Province>.xml``):
  6-hourly weather codes, temperature, humidity and wind per kab/kota (and some ports), parsed with
  defusedxml (no DTDs, entities or external references).

Parsing is strict where a wrong value would change a warning (village code, times, rain amounts,
weather codes) and tolerant of extra keys. Times: the adm4 ``datetime`` field must carry its zone
(``...Z``); DigitalForecast times (``YYYYMMDDhhmm``) and the adm4 ``analysis_date`` carry none and are
UTC by BMKG's convention (the 00/12 UTC model runs; the adm4 ``utc_datetime`` fields confirm it).
The parsed types are defined in :mod:`ews.hazard.forecast` and re-exported here.

Limits (:data:`ADM4_LIMITS`, :data:`DIGITALFORECAST_LIMITS`, see :mod:`ews.ingest.limits`): an adm4
payload over 1 MiB or a DigitalForecast over 16 MiB, or either nested deeper than 32 levels, is refused
before it is parsed; so is an adm4 payload holding a number longer than 40 characters (or ``NaN``) or
an object that repeats a key, and a DigitalForecast whose ``latitude``/``longitude``/``h`` is longer.
One village's payload is one record: :func:`read_adm4` reports it and reads the others.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import defusedxml

from ews.codes import local_zone, normalize_code
from ews.config import ForecastRules
from ews.errors import DataValidationError, FetchError, ForecastError, StaleSourceError
from ews.hazard.forecast import (
    DigitalForecast,
    ForecastArea,
    ForecastParameter,
    ForecastStep,
    SeriesValue,
    VillageForecast,
)
from ews.ingest.bmkg_cap import SourceProblem
from ews.ingest.http import fetch_bytes
from ews.ingest.limits import (
    MIB,
    DocumentLimits,
    check_number_text,
    load_json,
    read_limited,
    refusal,
    shown,
    xml_root,
)

log = logging.getLogger(__name__)

ADM4_URL = "https://api.bmkg.go.id/publik/prakiraan-cuaca"
DIGITALFORECAST_URL = "https://data.bmkg.go.id/DataMKG/MEWS/DigitalForecast/DigitalForecast-{province}.xml"
ADM4_STEP_HOURS = 3.0
_XML_NS = "{http://www.w3.org/XML/1998/namespace}"
_OFFSET = re.compile(r"^([+-])(\d{2}):?(\d{2})$")
_DF_TIME = re.compile(r"^\d{12}(\d{2})?$")

ADM4_LIMITS = DocumentLimits(max_bytes=1 * MIB, max_depth=32, max_number_chars=40)
"""What an adm4 payload may be: BMKG's are about 12 KB, 7 levels deep, numbers of a few characters."""
DIGITALFORECAST_LIMITS = DocumentLimits(max_bytes=16 * MIB, max_depth=32, max_number_chars=40)
"""What a DigitalForecast file may be: a province is about 0.5 MB, 6 elements deep."""

Fetcher = Callable[[str], bytes]


@dataclass
class ForecastBatch:
    """Adm4 forecasts read from files or fetched, and the sources that failed (with the reason)."""

    forecasts: list[VillageForecast] = field(default_factory=list)
    problems: list[SourceProblem] = field(default_factory=list)

    @property
    def codes(self) -> list[str]:
        """The village codes read, in order."""
        return [f.code for f in self.forecasts]


# -- adm4 JSON ----------------------------------------------------------------------------------------


def _number(value: object, where: str, name: str) -> float:
    """A required JSON number (or numeric string); ForecastError naming ``where`` and ``name`` otherwise."""
    if value is None:
        raise ForecastError(f"{where}: field '{name}' is missing or null; BMKG always sends it")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ForecastError(f"{where}: field '{name}' {shown(value)} is not a number")
    try:
        number = float(value)
    except ValueError:
        raise ForecastError(f"{where}: field '{name}' {shown(value)} is not a number") from None
    if not math.isfinite(number):
        raise ForecastError(f"{where}: field '{name}' {shown(value)} is not a finite number")
    return number


def _soft_number(value: object) -> float | None:
    """Tolerant reading for fields no level depends on (t, hu, tcc, ws, vs): junk becomes ``None``."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _offset(text: str) -> timedelta | None:
    match = _OFFSET.match(text.strip())
    if not match:
        return None
    sign = -1 if match.group(1) == "-" else 1
    return sign * timedelta(hours=int(match.group(2)), minutes=int(match.group(3)))


def _zone_for(code: str, offset: timedelta) -> tuple[timezone, str]:
    try:
        zone, name = local_zone(code)
    except DataValidationError:
        zone, name = timezone(offset), ""
    if zone.utcoffset(None) != offset:
        return timezone(offset), ""
    return zone, name


def _valid_time(step: Mapping[str, Any], where: str) -> datetime:
    raw = step.get("datetime")
    name = "datetime"
    if raw is None and "utc_datetime" in step:
        # Older payloads only have utc_datetime: its name says the zone.
        raw, name = step["utc_datetime"], "utc_datetime"
    if not isinstance(raw, str) or not raw.strip():
        raise ForecastError(f"{where}: field 'datetime' is missing; each step needs its valid time")
    try:
        value = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ForecastError(f"{where}: field '{name}' {shown(raw)} is not an ISO 8601 time") from None
    if value.tzinfo is None:
        if name == "utc_datetime":
            return value.replace(tzinfo=UTC)
        raise ForecastError(
            f"{where}: field 'datetime' {shown(raw)} has no time zone; a forecast time must say its zone "
            "(BMKG writes e.g. 2026-09-24T07:00:00Z)"
        )
    return value.astimezone(UTC)


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ForecastError(f"{where} is missing or not an object")
    return value


def parse_adm4(data: bytes, source: str) -> VillageForecast:
    """Parse one adm4 village forecast payload (within :data:`ADM4_LIMITS`: see :mod:`ews.ingest.limits`).

    Parameters
    ----------
    data
        The JSON bytes as BMKG serves them.
    source
        The file or URL, named in errors.

    Returns
    -------
    VillageForecast
        Steps sorted by valid time (UTC), each with its local time in the village's zone.

    Raises
    ------
    ForecastError
        Larger or deeper than :data:`ADM4_LIMITS`, or holding a number longer than its limit (or
        ``NaN``) or an object that repeats a key, anywhere; not JSON; no ``lokasi.adm4`` or not a
        village code; no ``data[0].cuaca`` steps; a step whose ``datetime`` is missing or has no zone,
        whose ``local_datetime`` disagrees with it, whose ``tp`` (mm) or ``weather`` is missing or not
        a number, or that repeats a valid time. The message names the file, the step (index over all
        steps, 0-based) or the path of the value, and the field.
    """
    if not data.strip():
        raise ForecastError(f"{source}: empty file; expected BMKG's prakiraan-cuaca JSON")
    doc = load_json(data, source, ADM4_LIMITS, ForecastError, "BMKG prakiraan-cuaca adm4 payload")
    refused = refusal(doc)
    if refused is not None:
        path, reason = refused
        where = f"field '{path}'" if path else "the document"
        raise ForecastError(f"{source}: {where}: {reason}; the forecast is not used")
    doc = _mapping(doc, f"{source}: the document")
    entries = doc.get("data")
    if not isinstance(entries, list) or not entries:
        raise ForecastError(f"{source}: field 'data' is missing or empty; an adm4 payload has data[0].cuaca")
    entry = _mapping(entries[0], f"{source}: field 'data[0]'")
    top: Mapping[str, Any] = doc["lokasi"] if isinstance(doc.get("lokasi"), dict) else {}
    inner: Mapping[str, Any] = entry["lokasi"] if isinstance(entry.get("lokasi"), dict) else {}
    lokasi: dict[str, Any] = {**inner, **top}
    raw_code = lokasi.get("adm4")
    if raw_code in (None, ""):
        raise ForecastError(f"{source}: field 'lokasi.adm4' is missing; cannot tell which village this forecast is for")
    try:
        code = normalize_code(raw_code)
    except ValueError as exc:
        reason = str(exc) if len(str(exc)) <= 120 else f"not a Kemendagri code: {shown(raw_code)}"
        raise ForecastError(f"{source}: field 'lokasi.adm4': {reason}") from None
    if code.count(".") != 3:
        raise ForecastError(f"{source}: field 'lokasi.adm4' {shown(raw_code)} is not a village (adm4) code")

    cuaca = entry.get("cuaca")
    if not isinstance(cuaca, list) or not cuaca:
        raise ForecastError(f"{source}: field 'data[0].cuaca' is missing or empty; no forecast steps")
    # BMKG nests steps per local day (cuaca[day][step]); accept a flat list as well.
    flat: list[tuple[str, object]] = []
    for d, day in enumerate(cuaca):
        if isinstance(day, list):
            flat.extend((f"cuaca[{d}][{s}]", item) for s, item in enumerate(day))
        else:
            flat.append((f"cuaca[{d}]", day))
    if not flat:
        raise ForecastError(f"{source}: field 'data[0].cuaca' is missing or empty; no forecast steps")

    offset = _offset(str(inner.get("timezone", ""))) or _offset(str(top.get("timezone", "")))
    raw_steps: list[tuple[str, Mapping[str, Any], datetime]] = []
    for i, (path, item) in enumerate(flat):
        where = f"{source}: step {i} ({path})"
        step = _mapping(item, where)
        raw_steps.append((where, step, _valid_time(step, where)))
    if offset is None:
        offset = _offset_from_local(raw_steps) or local_zone(code)[0].utcoffset(None) or timedelta(0)
    zone, zone_name = _zone_for(code, offset)

    steps: list[ForecastStep] = []
    for where, step, valid in raw_steps:
        local = valid.astimezone(zone)
        given = step.get("local_datetime")
        if isinstance(given, str) and given.strip():
            try:
                stated = datetime.fromisoformat(given.strip())
            except ValueError:
                raise ForecastError(f"{where}: field 'local_datetime' {shown(given)} is not an ISO 8601 time") from None
            if stated.replace(tzinfo=None) != local.replace(tzinfo=None):
                raise ForecastError(
                    f"{where}: field 'local_datetime' {shown(given)} disagrees with 'datetime' {valid:%Y-%m-%dT%H:%MZ} "
                    f"at UTC{_fmt_offset(offset)}; the payload is inconsistent"
                )
        tp = _number(step.get("tp"), where, "tp")
        weather = _number(step.get("weather"), where, "weather")
        if tp < 0:
            raise ForecastError(f"{where}: field 'tp' {tp} is negative; rain (mm) cannot be")
        if weather != int(weather):
            raise ForecastError(f"{where}: field 'weather' {weather} is not a whole BMKG weather code")
        steps.append(
            ForecastStep(
                valid=valid,
                local=local,
                tp=tp,
                weather=int(weather),
                weather_desc=str(step.get("weather_desc") or ""),
                weather_desc_en=str(step.get("weather_desc_en") or ""),
                t=_soft_number(step.get("t")),
                hu=_soft_number(step.get("hu")),
                tcc=_soft_number(step.get("tcc")),
                ws=_soft_number(step.get("ws")),
                wd=str(step.get("wd") or ""),
                vs=_soft_number(step.get("vs")),
            )
        )
    steps.sort(key=lambda s: s.valid)
    for a, b in itertools.pairwise(steps):
        if a.valid == b.valid:
            raise ForecastError(
                f"{source}: two steps share the valid time {a.valid:%Y-%m-%dT%H:%MZ}; a payload lists each once"
            )

    analysis = None
    analysis_raw = next((s.get("analysis_date") for _, s, _ in raw_steps if s.get("analysis_date")), None)
    if isinstance(analysis_raw, str):
        try:
            parsed = datetime.fromisoformat(analysis_raw.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ForecastError(
                f"{source}: field 'analysis_date' {shown(analysis_raw)} is not an ISO 8601 time"
            ) from None
        analysis = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)

    return VillageForecast(
        code=code,
        village=str(lokasi.get("desa") or ""),
        kecamatan=str(lokasi.get("kecamatan") or ""),
        kabkota=str(lokasi.get("kotkab") or ""),
        province=str(lokasi.get("provinsi") or ""),
        lat=_soft_number(lokasi.get("lat")),
        lon=_soft_number(lokasi.get("lon")),
        timezone=str(top.get("timezone") or inner.get("timezone") or ""),
        utc_offset=offset,
        zone_name=zone_name,
        analysis=analysis,
        steps=tuple(steps),
        source=source,
        step_hours=ADM4_STEP_HOURS,
    )


def _fmt_offset(offset: timedelta) -> str:
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _offset_from_local(steps: list[tuple[str, Mapping[str, Any], datetime]]) -> timedelta | None:
    for _, step, valid in steps:
        given = step.get("local_datetime")
        if isinstance(given, str):
            try:
                return datetime.fromisoformat(given.strip()) - valid.replace(tzinfo=None)
            except ValueError:
                return None
    return None


def _json_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() == ".json")
    return [path]


def read_adm4(paths: str | Path | Iterable[str | Path]) -> ForecastBatch:
    """Read adm4 forecasts from JSON files and folders of them (``*.json``).

    A file that cannot be read or parsed is recorded in ``problems`` (and logged); the others are read.

    Parameters
    ----------
    paths
        One path or several; a folder contributes its ``*.json`` files in name order.

    Returns
    -------
    ForecastBatch
        The forecasts in reading order and the problems.
    """
    items = [paths] if isinstance(paths, str | Path) else list(paths)
    batch = ForecastBatch()
    for item in items:
        root = Path(item)
        if not root.exists():
            problem = SourceProblem(str(root), f"{root}: no such file or folder; check the forecast path")
            log.error("%s", problem.message)
            batch.problems.append(problem)
            continue
        for file in _json_files(root):
            try:
                data = read_limited(file, str(file), ADM4_LIMITS, ForecastError, "BMKG adm4 payload")
                batch.forecasts.append(parse_adm4(data, str(file)))
            except ForecastError as exc:
                batch.problems.append(SourceProblem(str(file), str(exc)))
                log.error("%s", exc)
    return batch


def adm4_url(code: str, base_url: str = ADM4_URL) -> str:
    """The URL of one village's forecast.

    ``base_url`` is BMKG's endpoint (``?adm4=<code>`` is appended) or a template containing ``{code}``
    (a mirror or recorded site serving one file per village, e.g. ``http://host/adm4/{code}.json``).
    """
    if "{code}" in base_url:
        return base_url.replace("{code}", quote(code))
    sep = "&" if "?" in base_url else "?"
    return f"{base_url}{sep}adm4={quote(code)}"


def fetch_adm4(
    codes: Iterable[str],
    *,
    base_url: str = ADM4_URL,
    min_interval_s: float = 1.0,
    fetch: Fetcher = fetch_bytes,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> ForecastBatch:
    """Fetch the adm4 forecasts of many villages, paced to respect BMKG's rate limit.

    Requests start at least ``min_interval_s`` apart (BMKG allows about 60 per minute per IP, so the
    default 1.0 s keeps within it; retries inside ``fetch`` add their own back-off). A code that fails
    (bad code, fetch error after retries, bad payload, or a payload for another village) is recorded in
    ``problems`` and logged; the other codes are still fetched.

    Parameters
    ----------
    codes
        Village codes (dotted or undotted; duplicates are fetched once).
    base_url
        BMKG's endpoint or a ``{code}`` template (see :func:`adm4_url`).
    min_interval_s
        Least time between the starts of two requests, in seconds.
    fetch
        GETs a URL and returns its body (default :func:`ews.ingest.http.fetch_bytes`: time-out and retries).
    sleep, clock
        Injected for tests: ``time.sleep`` and ``time.monotonic``.

    Returns
    -------
    ForecastBatch
        The forecasts fetched, in code order, and one problem per failed code.
    """
    batch = ForecastBatch()
    seen: set[str] = set()
    last_start: float | None = None
    for raw in codes:
        try:
            code = normalize_code(raw)
        except ValueError as exc:
            batch.problems.append(SourceProblem(str(raw), f"adm4 code {shown(raw)}: {exc}"))
            log.error("adm4 code %r: %s", raw, exc)
            continue
        if code in seen:
            continue
        seen.add(code)
        if code.count(".") != 3:
            message = f"adm4 code {shown(code)} is not a village code (xx.xx.xx.xxxx)"
            batch.problems.append(SourceProblem(code, message))
            log.error("%s", message)
            continue
        url = adm4_url(code, base_url)
        if last_start is not None:
            wait = last_start + min_interval_s - clock()
            if wait > 0:
                sleep(wait)
        last_start = clock()
        try:
            forecast = parse_adm4(fetch(url), url)
        except (FetchError, ForecastError) as exc:
            batch.problems.append(SourceProblem(url, str(exc)))
            log.error("%s", exc)
            continue
        if forecast.code != code:
            message = f"{url}: asked for village {code} but the payload is for {forecast.code}; not used"
            batch.problems.append(SourceProblem(url, message))
            log.error("%s", message)
            continue
        batch.forecasts.append(forecast)
    return batch


# -- DigitalForecast XML ------------------------------------------------------------------------------


def _parse_xml(data: bytes, source: str) -> ET.Element:
    if not data.strip():
        raise ForecastError(f"{source}: empty file; expected a BMKG DigitalForecast XML")
    try:
        root = xml_root(data, source, DIGITALFORECAST_LIMITS, ForecastError, "BMKG DigitalForecast file")
    except defusedxml.DTDForbidden:
        raise ForecastError(f"{source}: refused: contains a DTD (<!DOCTYPE>); DigitalForecast never has one") from None
    except defusedxml.EntitiesForbidden:
        raise ForecastError(f"{source}: refused: declares XML entities (entity-expansion risk)") from None
    except defusedxml.DefusedXmlException as exc:
        raise ForecastError(f"{source}: refused unsafe XML ({type(exc).__name__})") from None
    except ET.ParseError as exc:
        raise ForecastError(f"{source}: not well-formed XML ({exc}); truncated download?") from None
    return root


def _df_time(text: str | None, where: str, name: str) -> datetime:
    value = (text or "").strip()
    if not _DF_TIME.match(value):
        raise ForecastError(f"{where}: {name} {shown(value)} is not a BMKG time (YYYYMMDDhhmm, UTC)")
    try:
        parsed = datetime.strptime(value[:12], "%Y%m%d%H%M")
    except ValueError:
        raise ForecastError(f"{where}: {name} {shown(value)} is not a valid date and time") from None
    seconds = int(value[12:]) if len(value) == 14 else 0
    if seconds > 59:
        raise ForecastError(f"{where}: {name} {shown(value)} is not a valid date and time")
    return parsed.replace(second=seconds, tzinfo=UTC)


def _long_number(text: str, where: str) -> None:
    too_long = check_number_text(text, DIGITALFORECAST_LIMITS)
    if too_long is not None:
        raise ForecastError(f"{where}: {too_long}; the file is not used")


def _float_attr(node: ET.Element, name: str, where: str) -> float:
    raw = node.get(name)
    _long_number(raw or "", f"{where}: attribute '{name}'")
    try:
        value = float(raw) if raw is not None else math.nan
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ForecastError(f"{where}: attribute '{name}' {shown(raw)} is missing or not a number")
    return value


def _value(text: str) -> float | str:
    if check_number_text(text, DIGITALFORECAST_LIMITS) is not None:
        return text  # never converted: stays text (a weather code then fails as "not a code")
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


def _parameter(node: ET.Element, where: str) -> ForecastParameter:
    pid = node.get("id") or ""
    if not pid:
        raise ForecastError(f"{where}: a <parameter> has no 'id'")
    series = []
    for n, tr in enumerate(node.iter("timerange")):
        here = f"{where}, parameter '{pid}', timerange {n}"
        when = _df_time(tr.get("datetime"), here, "attribute 'datetime'")
        values: dict[str, float | str] = {}
        for v in tr.iter("value"):
            unit = v.get("unit") or ""
            values[unit] = _value((v.text or "").strip())
        if pid == "weather":
            icon = values.get("icon")
            if not isinstance(icon, float) or icon != int(icon):
                raise ForecastError(f'{here}: <value unit="icon"> {shown(icon)} is not a BMKG weather code')
        h_raw = tr.get("h")
        _long_number(h_raw or "", f"{here}: attribute 'h'")
        h = int(h_raw) if h_raw is not None and h_raw.lstrip("-").isdigit() else None
        series.append(SeriesValue(time=when, values=values, h=h, day=tr.get("day") or ""))
    return ForecastParameter(
        id=pid, description=node.get("description") or "", kind=node.get("type") or "", series=tuple(series)
    )


def parse_digitalforecast(data: bytes, source: str) -> DigitalForecast:
    """Parse a BMKG DigitalForecast province file.

    Parameters
    ----------
    data
        The XML bytes.
    source
        The file or URL, named in errors.

    Returns
    -------
    DigitalForecast
        Issue time (UTC) and every ``<area>`` with its parameters (``weather`` codes, ``t``, ``hu``,
        ``ws``, ``wd``, daily ``tmax``/``tmin``/``humax``/``humin``), times in UTC.

    Raises
    ------
    ForecastError
        Larger or deeper than :data:`DIGITALFORECAST_LIMITS`, or a ``latitude``, ``longitude`` or ``h``
        longer than its number limit; unsafe XML (DTD, entities: refused before expansion), not
        well-formed or truncated, not a DigitalForecast (``<data><forecast>``), no
        ``<issue><timestamp>``, an area without ``id`` or numeric ``latitude``/``longitude``, a bad
        ``datetime``, or a weather value that is not a code (a value longer than the number limit is
        never converted). The message names the file, the area and the field.
    """
    root = _parse_xml(data, source)
    forecast = root.find("forecast")
    if root.tag != "data" or forecast is None:
        raise ForecastError(f"{source}: not a DigitalForecast file (root <{root.tag}>, expected <data><forecast>)")
    stamp = forecast.findtext("issue/timestamp")
    if stamp is None:
        raise ForecastError(f"{source}: field <issue><timestamp> is missing; cannot tell when it was issued")
    issued = _df_time(stamp, source, "field <issue><timestamp>")
    areas = []
    seen: set[str] = set()
    for n, node in enumerate(forecast.iter("area")):
        area_id = (node.get("id") or "").strip()
        if not area_id:
            raise ForecastError(f"{source}: area {n} has no attribute 'id'")
        where = f"{source}: area {area_id}"
        if area_id in seen:
            raise ForecastError(f"{where}: listed twice; each area appears once")
        seen.add(area_id)
        names = {
            (name.get(f"{_XML_NS}lang") or name.get("lang") or ""): (name.text or "").strip()
            for name in node.iter("name")
        }
        params = {}
        for p in node.iter("parameter"):
            param = _parameter(p, where)
            params[param.id] = param
        areas.append(
            ForecastArea(
                id=area_id,
                description=(node.get("description") or "").strip(),
                domain=(node.get("domain") or "").strip(),
                kind=(node.get("type") or "").strip(),
                tags=(node.get("tags") or "").strip(),
                lat=_float_attr(node, "latitude", where),
                lon=_float_attr(node, "longitude", where),
                names=names,
                parameters=params,
            )
        )
    if not areas:
        raise ForecastError(f"{source}: no <area> in the forecast; the file is empty or truncated")
    return DigitalForecast(issued=issued, domain=(forecast.get("domain") or ""), areas=tuple(areas), source=source)


def read_digitalforecast(path: str | Path) -> DigitalForecast:
    """Read one DigitalForecast file.

    Raises
    ------
    ForecastError
        The file cannot be read, or :func:`parse_digitalforecast` rejects it.
    """
    file = Path(path)
    data = read_limited(file, str(file), DIGITALFORECAST_LIMITS, ForecastError, "BMKG DigitalForecast file")
    return parse_digitalforecast(data, str(file))


def fetch_digitalforecast(
    province: str, *, url_template: str = DIGITALFORECAST_URL, fetch: Fetcher = fetch_bytes
) -> DigitalForecast:
    """Fetch and parse the DigitalForecast of one province (``"JawaTimur"``).

    Raises
    ------
    FetchError
        The file could not be fetched (transient: the scheduler may retry).
    ForecastError
        The file is malformed.
    """
    url = url_template.format(province=quote(province))
    return parse_digitalforecast(fetch(url), url)


# -- freshness ----------------------------------------------------------------------------------------


def check_forecast_fresh(issued: datetime | None, now: datetime, rules: ForecastRules, source: str) -> None:
    """Refuse a forecast older than ``rules.max_age_hours`` at ``now``.

    Parameters
    ----------
    issued
        The forecast's issue time (adm4 ``analysis``, DigitalForecast ``issued``), timezone-aware;
        ``None`` (unknown) is refused too.
    now
        The run time, timezone-aware.
    rules
        The region's forecast rules.
    source
        The file or URL, named in the message.

    Raises
    ------
    StaleSourceError
        The forecast is too old (or its age unknown): the run must report itself degraded.
    """
    if issued is None:
        raise StaleSourceError(f"{source}: the forecast has no issue time, so its age is unknown; not used")
    age = (now - issued).total_seconds() / 3600
    if age > rules.max_age_hours:
        raise StaleSourceError(
            f"{source}: forecast issued {issued.astimezone(UTC):%Y-%m-%d %H:%M} UTC is {age:.1f} h old "
            f"(max_age_hours {rules.max_age_hours:g}); fetch a newer one or raise forecast.max_age_hours"
        )


__all__ = [
    "ADM4_URL",
    "DIGITALFORECAST_URL",
    "DigitalForecast",
    "ForecastArea",
    "ForecastBatch",
    "ForecastParameter",
    "ForecastStep",
    "SeriesValue",
    "VillageForecast",
    "adm4_url",
    "check_forecast_fresh",
    "fetch_adm4",
    "fetch_digitalforecast",
    "parse_adm4",
    "parse_digitalforecast",
    "read_adm4",
    "read_digitalforecast",
]

"""Check CAP 1.2 documents against the OASIS schema and the rules consumers apply beyond it.

The XSD checks structure, element order, enumerations and the time pattern. Consumers such as Google
Public Alerts (``google/cap-library``) also reject what the schema lets through; :class:`CapValidator`
checks those rules too:

* ``<identifier>`` and ``<sender>``: non-empty, no whitespace, commas, ``<`` or ``&``;
* ``<references>``: whitespace-separated ``sender,identifier,sent`` triples with a valid CAP time;
* times (``sent``, ``effective``, ``onset``, ``expires``, and those in references): explicit ``+hh:mm``/``-hh:mm``
  offset, no ``Z``, no fractional seconds, a real date;
* ``expires`` after ``sent`` and after ``effective``;
* ``<polygon>``: at least 4 ``lat,lon`` points, first = last, lat -90..90, lon -180..180, a simple
  (non-self-intersecting) ring; ``<circle>``: ``lat,lon radius`` with a positive radius;
* ``Update``/``Cancel`` name what they replace in ``<references>``; ``Alert``/``Update`` carry an ``<info>``;
* ``<restriction>`` only with scope Restricted, ``<addresses>`` only with scope Private, ``<web>`` absolute.

Reading the schema file is the only I/O; documents are parsed without DTDs, entity expansion or network.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from urllib.parse import urlparse

import shapely
from lxml import etree  # type: ignore[import-untyped]
from shapely.geometry import Polygon

from ews.errors import DataValidationError

__all__ = ["CapValidator"]

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
_NS = {"cap": CAP_NS}
_CAP_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}", re.ASCII)
_FRACTION = re.compile(r"T\d{2}:\d{2}:\d{2}\.\d+", re.ASCII)
_OFFSET = re.compile(r"([+-]\d{2}:\d{2}|Z)\Z", re.ASCII)
_FORBIDDEN = re.compile(r"[\s,<&]")


def _parser() -> object:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False
    )


def _line(node: object) -> str:
    return f"line {getattr(node, 'sourceline', None) or '?'}"


def _text(parent: object, tag: str) -> tuple[object | None, str]:
    node = parent.find(f"cap:{tag}", _NS)  # type: ignore[attr-defined]
    if node is None:
        return None, ""
    return node, str(node.text or "").strip()


def _time(value: str, what: str, where: str, problems: list[str]) -> datetime | None:
    """Parse a CAP time, or add a problem saying what is wrong with it."""
    if value.endswith(("Z", "z")):
        problems.append(f"{where}: <{what}> {value!r} uses 'Z'; CAP 1.2 forbids zone letters, write +00:00 or -00:00")
        return None
    if _FRACTION.search(value):
        problems.append(f"{where}: <{what}> {value!r} has fractional seconds; CAP 1.2 times are whole seconds")
        return None
    if not _OFFSET.search(value):
        problems.append(f"{where}: <{what}> {value!r} has no UTC offset; CAP 1.2 times end in +hh:mm or -hh:mm")
        return None
    if not _CAP_TIME.fullmatch(value):
        problems.append(f"{where}: <{what}> {value!r} is not a CAP time like 2026-11-28T17:00:00+07:00")
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        problems.append(f"{where}: <{what}> {value!r} is not a real date and time")
        return None


def _token(value: str, what: str, where: str, problems: list[str]) -> None:
    if not value:
        problems.append(f"{where}: <{what}> is empty")
    elif _FORBIDDEN.search(value):
        problems.append(
            f"{where}: <{what}> {value!r} must not contain spaces, commas or the restricted characters '<' and '&'"
        )


def _polygon(text: str, where: str, problems: list[str]) -> None:
    points: list[tuple[float, float]] = []
    for n, pair in enumerate(text.split(), start=1):
        parts = pair.split(",")
        try:
            lat, lon = (float(p) for p in parts)
        except ValueError:
            problems.append(f"{where}: point {n} {pair!r} is not 'lat,lon'")
            return
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            problems.append(f"{where}: point {n} {pair!r} is out of range (lat -90..90, lon -180..180)")
            return
        points.append((lon, lat))
    if len(points) < 4:
        problems.append(f"{where}: {len(points)} points; a CAP polygon needs at least 4 (first = last)")
        return
    if points[0] != points[-1]:
        problems.append(f"{where}: polygon is not closed: the first and last points must be equal")
        return
    ring = Polygon(points)
    if not ring.is_valid:
        problems.append(
            f"{where}: polygon is not a simple ring ({shapely.is_valid_reason(ring)}); it must not cross itself"
        )


def _circle(text: str, where: str, problems: list[str]) -> None:
    try:
        centre, radius = text.split()
        lat, lon = (float(v) for v in centre.split(","))
        km = float(radius)
    except ValueError:
        problems.append(f"{where}: circle {text!r} is not 'lat,lon radius_km'")
        return
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or not km > 0:
        problems.append(f"{where}: circle {text!r} has a centre out of range or a radius that is not positive")


class CapValidator:
    """Validate CAP 1.2 documents: the OASIS XSD plus the extra rules listed in the module docstring.

    Parameters
    ----------
    xsd_path
        The OASIS ``CAP-v1.2.xsd`` (in the shared data: ``cap_schema/CAP-v1.2.xsd``).

    Raises
    ------
    DataValidationError
        The schema file is missing or is not a usable XML schema.
    """

    def __init__(self, xsd_path: Path) -> None:
        path = Path(xsd_path)
        if not path.is_file():
            raise DataValidationError(
                f"CAP schema not found at {path}: set EWS_SHARED_DATA to the shared data folder "
                "(it holds cap_schema/CAP-v1.2.xsd) or pass the schema path"
            )
        try:
            self._schema = etree.XMLSchema(etree.parse(str(path), _parser()))
        except (etree.XMLSyntaxError, etree.XMLSchemaParseError) as exc:
            raise DataValidationError(
                f"{path}: not a usable XML schema ({exc}); expected the OASIS CAP 1.2 XSD"
            ) from None
        self.xsd_path = path

    def problems(self, xml: bytes) -> list[str]:
        """Everything wrong with one document, each as ``"line N: ..."``; ``[]`` when it is valid CAP 1.2.

        Schema errors come first, then the extra rules. A document that is not well-formed XML gives one
        problem and is not checked further.
        """
        try:
            root = etree.fromstring(xml, _parser())
        except etree.XMLSyntaxError as exc:
            return [f"line {exc.lineno}: not well-formed XML: {exc.msg}"]
        problems: list[str] = []
        if root.getroottree().docinfo.doctype:
            problems.append("line 1: the document declares a DTD (<!DOCTYPE>); CAP never needs one")
        if not self._schema.validate(root):
            problems.extend(f"line {e.line}: {e.message}" for e in self._schema.error_log)
        if root.tag != f"{{{CAP_NS}}}alert":
            if not problems:
                problems.append(f"{_line(root)}: root element is {root.tag}; expected CAP 1.2 <alert>")
            return problems
        problems.extend(self._rules(root))
        return problems

    def _rules(self, root: object) -> list[str]:
        problems: list[str] = []
        for tag in ("identifier", "sender"):
            node, value = _text(root, tag)
            if node is not None:
                _token(value, tag, _line(node), problems)
        sent_node, sent_text = _text(root, "sent")
        sent = _time(sent_text, "sent", _line(sent_node), problems) if sent_node is not None else None
        _, msg_type = _text(root, "msgType")
        _, scope = _text(root, "scope")
        ref_node, references = _text(root, "references")
        if ref_node is not None:
            for n, entry in enumerate(references.split(), start=1):
                where = f"{_line(ref_node)}: references entry {n}"
                parts = entry.split(",")
                if len(parts) != 3:
                    problems.append(
                        f"{where} {entry!r} has {len(parts)} comma-separated parts; "
                        "each entry must be sender,identifier,sent"
                    )
                    continue
                _token(parts[0], "references sender", where, problems)
                _token(parts[1], "references identifier", where, problems)
                _time(parts[2], "references sent", where, problems)
        if msg_type in ("Update", "Cancel") and not references:
            problems.append(
                f"{_line(root)}: msgType {msg_type} without <references>; it must name the message(s) it replaces"
            )
        restriction_node, restriction = _text(root, "restriction")
        if restriction and scope != "Restricted":
            problems.append(f"{_line(restriction_node)}: <restriction> is only for scope Restricted, not {scope}")
        addresses_node, addresses = _text(root, "addresses")
        if addresses and scope != "Private":
            problems.append(f"{_line(addresses_node)}: <addresses> is only for scope Private, not {scope}")
        infos = root.findall("cap:info", _NS)  # type: ignore[attr-defined]
        if msg_type in ("Alert", "Update") and not infos:
            problems.append(f"{_line(root)}: msgType {msg_type} without <info>; it must describe the event")
        for i, info in enumerate(infos, start=1):
            problems.extend(self._info_rules(info, i, sent))
        return problems

    def _info_rules(self, info: object, i: int, sent: datetime | None) -> list[str]:
        problems: list[str] = []
        times: dict[str, datetime | None] = {}
        for tag in ("effective", "onset", "expires"):
            node, value = _text(info, tag)
            times[tag] = _time(value, tag, f"{_line(node)}: info {i}", problems) if node is not None else None
        expires = times["expires"]
        if expires is not None:
            node, value = _text(info, "expires")
            for tag, other in (("sent", sent), ("effective", times["effective"])):
                if other is not None and expires <= other:
                    problems.append(f"{_line(node)}: info {i}: <expires> {value} is not after <{tag}>")
        web_node, web = _text(info, "web")
        if web and not (urlparse(web).scheme and urlparse(web).netloc):
            problems.append(f"{_line(web_node)}: info {i}: <web> {web!r} is not an absolute URI")
        for a, area in enumerate(info.findall("cap:area", _NS), start=1):  # type: ignore[attr-defined]
            for p, node in enumerate(area.findall("cap:polygon", _NS), start=1):
                _polygon(str(node.text or ""), f"{_line(node)}: info {i} area {a} polygon {p}", problems)
            for c, node in enumerate(area.findall("cap:circle", _NS), start=1):
                _circle(str(node.text or ""), f"{_line(node)}: info {i} area {a} circle {c}", problems)
        return problems

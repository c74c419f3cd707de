"""What ews's readers of BMKG's JSON and XML feeds accept: size, nesting depth, number length, repeated keys.

BMKG's earthquake feeds are a few KB, an adm4 forecast about 12 KB and a DigitalForecast province file
about 0.5 MB, nested at most 7 levels, with numbers of at most 20 characters. A document far outside
that is a broken download or a hostile server, and must not take the run down with it: Python's own
parsers raise ``RecursionError`` on 100,000 nested arrays and ``ValueError`` on an integer of more than
4,300 digits, and a repeated JSON key would silently keep its last value. These helpers refuse each of
those with the caller's :class:`~ews.errors.DataValidationError` subclass, naming the file and the limit:

* **size**: a document larger than :attr:`DocumentLimits.max_bytes` is not parsed;
* **nesting**: JSON is pre-scanned for the depth of its brackets (outside strings) and XML is counted
  while it is parsed; deeper than :attr:`DocumentLimits.max_depth` is refused before Python recurses;
* **numbers**: a JSON number literal (or a numeric text the caller checks with :func:`check_number_text`)
  longer than :attr:`DocumentLimits.max_number_chars` characters is not converted. JSON's ``NaN`` and
  ``Infinity`` (not JSON, but accepted by Python) are refused the same way;
* **repeated keys**: an object that repeats a key is kept with the repetition marked.

Numbers and repeated keys are *marked* in place instead of raising, so that a reader can reject only
the record holding them (:func:`refusal` finds the first mark in a record) and keep the rest of a feed.
"""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import defusedxml.ElementTree as SafeET

from ews.errors import DataValidationError

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True)
class DocumentLimits:
    """The largest document a reader accepts.

    Attributes
    ----------
    max_bytes
        Size of the whole document, in bytes.
    max_depth
        Nesting of JSON arrays/objects, or of XML elements (the root is depth 1).
    max_number_chars
        Length of one number literal, in characters (digits, sign, point and exponent).
    """

    max_bytes: int
    max_depth: int = 32
    max_number_chars: int = 40


@dataclass(frozen=True)
class Refused:
    """A JSON value the parser refused to build (an over-long number, ``NaN``), kept where it was."""

    reason: str


class KeyedObject(dict[str, object]):
    """A JSON object whose ``repeated`` keys appeared more than once (the first value is kept)."""

    repeated: tuple[str, ...] = ()


class _TooDeepError(Exception):
    """Raised by the XML depth counter; turned into the caller's error."""


# A JSON string (with escapes), or one bracket. Unrolled loop: linear time on any input.
_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[{]|[\]}]', re.DOTALL)


def check_size(data: bytes, source: str, limits: DocumentLimits, error: type[DataValidationError], what: str) -> None:
    """Refuse ``data`` larger than ``limits.max_bytes``.

    Raises
    ------
    DataValidationError
        (the ``error`` subclass) naming ``source``, its size and the limit.
    """
    if len(data) > limits.max_bytes:
        raise error(
            f"{source}: refused: {len(data):,} bytes, larger than the {limits.max_bytes:,} bytes ews accepts "
            f"for a {what}; is it the right file (or a broken download)?"
        )


def read_limited(
    path: str | os.PathLike[str], source: str, limits: DocumentLimits, error: type[DataValidationError], what: str
) -> bytes:
    """Read a file, but never more than ``limits.max_bytes + 1`` bytes of it.

    Parameters
    ----------
    path
        The file.
    source
        How to name it in messages.
    limits, error, what
        As for :func:`load_json`.

    Raises
    ------
    DataValidationError
        (the ``error`` subclass) when the file cannot be read or is larger than the limit.
    """
    try:
        with Path(path).open("rb") as stream:
            data: bytes = stream.read(limits.max_bytes + 1)
    except OSError as exc:
        raise error(f"{source}: cannot read ({exc.strerror}); check the path and permissions") from None
    check_size(data, source, limits, error, what)
    return data


def json_depth_exceeds(text: str, max_depth: int) -> bool:
    """Whether the arrays/objects of JSON ``text`` nest deeper than ``max_depth`` (brackets in strings ignored).

    Stops at the first bracket beyond the limit, so 100,000 nested arrays cost ``max_depth`` steps.
    """
    depth = 0
    for match in _JSON_TOKEN.finditer(text):
        first = match.group()[0]
        if first in "[{":
            depth += 1
            if depth > max_depth:
                return True
        elif first in "]}":
            depth -= 1
    return False


def load_json(data: bytes, source: str, limits: DocumentLimits, error: type[DataValidationError], what: str) -> object:
    """Parse JSON within ``limits``: too large or too deep is refused, long numbers and repeated keys marked.

    Parameters
    ----------
    data
        The document (UTF-8, with or without a byte-order mark; UTF-16/32 as :func:`json.loads` detects).
    source
        The file or URL, named in messages.
    limits
        What to accept.
    error
        The error to raise (``QuakeError``, ``ForecastError``).
    what
        What the document should be, for messages ("BMKG gempa feed like autogempa.json").

    Returns
    -------
    object
        As :func:`json.loads`, except that objects are :class:`KeyedObject` and a number longer than
        ``limits.max_number_chars`` (or ``NaN``/``Infinity``) is a :class:`Refused` mark.

    Raises
    ------
    DataValidationError
        (the ``error`` subclass) for a document too large, not text, nested too deeply, or not JSON.
    """
    check_size(data, source, limits, error, what)
    encoding = json.detect_encoding(data)
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        name = encoding.upper().removesuffix("-SIG")
        raise error(f"{source}: not {name} text ({exc.reason}); expected a {what}") from None
    text = text.removeprefix("\ufeff")
    if json_depth_exceeds(text, limits.max_depth):
        raise error(
            f"{source}: refused: arrays/objects nested more than {limits.max_depth} levels deep, the limit "
            f"for a {what} (BMKG's nest fewer than 10); the file was not parsed"
        )

    def number(convert: type[int] | type[float]) -> Callable[[str], object]:
        def parse(literal: str) -> object:
            too_long = check_number_text(literal, limits)
            return convert(literal) if too_long is None else Refused(too_long)

        return parse

    def constant(name: str) -> Refused:
        return Refused(f"{name} is not a JSON number (BMKG never sends it)")

    def keyed(pairs: list[tuple[str, object]]) -> KeyedObject:
        obj = KeyedObject()
        repeated: list[str] = []
        for key, value in pairs:
            if key in obj:
                repeated.append(key)
            else:
                obj[key] = value
        if repeated:
            obj.repeated = tuple(dict.fromkeys(repeated))
        return obj

    try:
        return json.loads(
            text,
            parse_int=number(int),
            parse_float=number(float),
            parse_constant=constant,
            object_pairs_hook=keyed,
        )
    except json.JSONDecodeError as exc:
        raise error(
            f"{source}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); expected a {what}"
        ) from None
    except RecursionError:  # the pre-scan bounds the depth; this is the last line of defence
        raise error(f"{source}: refused: nested too deeply to parse; expected a {what}") from None


def repeated_keys(value: object) -> tuple[str, ...]:
    """The keys a parsed JSON object repeated (empty for anything else)."""
    return value.repeated if isinstance(value, KeyedObject) else ()


def repeated_key_reason(key: str) -> str:
    """The message for a key that appears twice."""
    return f"key {key!r} appears twice; BMKG's feeds never repeat a key"


def _walk(value: object, path: str) -> Iterator[tuple[str, object]]:
    stack = [(path, value)]
    while stack:
        here, item = stack.pop()
        yield here, item
        if isinstance(item, dict):
            stack.extend((f"{here}.{k}" if here else str(k), v) for k, v in reversed(list(item.items())))
        elif isinstance(item, list):
            stack.extend((f"{here}[{i}]", v) for i, v in reversed(list(enumerate(item))))


def refusal(value: object, path: str = "") -> tuple[str, str] | None:
    """The first mark :func:`load_json` left in ``value``: ``(where, reason)``, or ``None`` if it is clean.

    ``where`` is the dotted path below ``path`` (``"cuaca[0][3]"``; empty for ``value`` itself).
    """
    for here, item in _walk(value, path):
        if isinstance(item, Refused):
            return here, item.reason
        keys = repeated_keys(item)
        if keys:
            return here, repeated_key_reason(keys[0])
    return None


def shown(value: object, limit: int = 80) -> str:
    """``repr(value)``, cut to about ``limit`` characters so that a hostile value cannot flood a message or log."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(str(value)):,} characters)"


def check_number_text(text: str, limits: DocumentLimits) -> str | None:
    """Why numeric ``text`` (from XML, or a JSON string) is refused as too long, or ``None``."""
    if len(text) > limits.max_number_chars:
        return (
            f"a number of {len(text):,} characters ({text[:12]}...), longer than the "
            f"{limits.max_number_chars} characters ews accepts for one number"
        )
    return None


class _DepthLimitedBuilder:
    """An ElementTree target that refuses elements nested deeper than ``max_depth``."""

    def __init__(self, max_depth: int) -> None:
        self._builder = ET.TreeBuilder()
        self._depth = 0
        self._max = max_depth

    def start(self, tag: str, attrs: dict[str, str]) -> ET.Element:
        self._depth += 1
        if self._depth > self._max:
            raise _TooDeepError
        return self._builder.start(tag, attrs)

    def end(self, tag: str) -> ET.Element:
        self._depth -= 1
        return self._builder.end(tag)

    def data(self, text: str) -> None:
        self._builder.data(text)

    def close(self) -> ET.Element:
        return self._builder.close()


def xml_root(
    data: bytes, source: str, limits: DocumentLimits, error: type[DataValidationError], what: str
) -> ET.Element:
    """Parse XML with defusedxml (no DTD, entities or external references) within ``limits``.

    Unsafe or malformed XML raises defusedxml's and ElementTree's own exceptions, which the caller words
    for its format; size and depth are refused here.

    Raises
    ------
    DataValidationError
        (the ``error`` subclass) for a document too large or nested too deeply.
    defusedxml.DefusedXmlException, xml.etree.ElementTree.ParseError
        Unsafe or not well-formed XML.
    """
    check_size(data, source, limits, error, what)
    parser = SafeET.DefusedXMLParser(target=_DepthLimitedBuilder(limits.max_depth), forbid_dtd=True)
    try:
        parser.feed(data)
        root: ET.Element = parser.close()
    except _TooDeepError:
        raise error(
            f"{source}: refused: elements nested more than {limits.max_depth} levels deep, the limit for a "
            f"{what} (BMKG's nest fewer than 10); the file was not parsed"
        ) from None
    return root

"""Kemendagri administrative codes: normalisation, parents and time zones (pure)."""

from __future__ import annotations

import math
import re
from datetime import timedelta, timezone

from ews.errors import DataValidationError

_PART_WIDTHS = (2, 2, 2, 4)
_DOTTED = re.compile(r"^\d{2}(\.\d{2}(\.\d{2}(\.\d{4})?)?)?$")
_LEVEL2_FLOAT = re.compile(r"^\d{2}\.\d{1,2}$")


def normalize_code(raw: object) -> str:
    """Return a Kemendagri code as a dotted string.

    Accepts dotted strings (``"35.78.01.1001"``), undotted digit strings (``"3578011001"``), integers
    (province ``35``) and the floats that level-2 GeoJSON files carry (``35.1`` means ``35.10``).

    Raises
    ------
    ValueError
        When the value cannot be a code; the message shows the value.
    """
    if isinstance(raw, bool) or raw is None:
        raise ValueError(f"not a Kemendagri code: {raw!r}")
    if isinstance(raw, float):
        if math.isnan(raw):
            raise ValueError("not a Kemendagri code: empty (NaN)")
        # Level-2 files store "35.10" as the number 35.1: two decimals recover it.
        if raw == int(raw) and 11 <= raw <= 99:
            return f"{int(raw):02d}"
        return f"{raw:.2f}"
    if isinstance(raw, int):
        text = str(raw)
    else:
        text = str(raw).strip()
    if _DOTTED.match(text):
        return text
    if _LEVEL2_FLOAT.match(text):
        prov, kab = text.split(".")
        return f"{prov}.{kab.ljust(2, '0')}"
    if text.isdigit() and len(text) in (2, 4, 6, 10):
        parts, pos = [], 0
        for width in _PART_WIDTHS:
            if pos >= len(text):
                break
            parts.append(text[pos : pos + width])
            pos += width
        return ".".join(parts)
    raise ValueError(f"not a Kemendagri code: {raw!r} (expected e.g. '35.78.01.1001' or 3578011001)")


def code_level(code: str) -> int:
    """1 province, 2 kabupaten/kota, 3 kecamatan, 4 desa/kelurahan."""
    return code.count(".") + 1


def parent_code(code: str, level: int) -> str:
    """The ancestor of ``code`` at ``level`` (1-4); ``parent_code("35.78.01.1001", 2) == "35.78"``."""
    parts = code.split(".")
    if not 1 <= level <= len(parts):
        raise ValueError(f"code {code!r} has no level-{level} parent")
    return ".".join(parts[:level])


def province_of(code: str) -> int:
    """The province number of any code."""
    return int(code[:2])


_WIB = {11, 12, 13, 14, 15, 16, 17, 18, 19, 21, 31, 32, 33, 34, 35, 36, 61, 62}
_WITA = {51, 52, 53, 63, 64, 65, 71, 72, 73, 74, 75, 76}
_WIT = {81, 82, 91, 92, 93, 94, 95, 96, 97}


def local_zone(code: str) -> tuple[timezone, str]:
    """The civil time zone (fixed offset) and its Indonesian name for the province of ``code``.

    Raises
    ------
    DataValidationError
        For a province number outside the Kemendagri list.
    """
    prov = province_of(code)
    if prov in _WIB:
        return timezone(timedelta(hours=7), "WIB"), "WIB"
    if prov in _WITA:
        return timezone(timedelta(hours=8), "WITA"), "WITA"
    if prov in _WIT:
        return timezone(timedelta(hours=9), "WIT"), "WIT"
    raise DataValidationError(f"province code {prov:02d} (from {code!r}) is not an Indonesian province")


def is_kelurahan(code: str) -> bool:
    """A village code whose 4-digit part starts with 1 is an urban kelurahan; 2 a rural desa."""
    return code_level(code) == 4 and code.rsplit(".", 1)[1].startswith("1")

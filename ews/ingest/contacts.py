"""Read the resident subscribers and Tagana units files a region configures.

Subscribers CSV columns: ``phone, village_code, language (id|en), channel (sms|whatsapp),
consent_source, consent_time``. Tagana CSV columns: ``unit_id, name, kabkota_code, kecamatan_codes
(";"-separated, empty = whole kab/kota), coordinator, phone (may be empty), channel``.
A bad row is an error naming the file, the line and the column; a phone number is never echoed.
"""

from __future__ import annotations

import csv
from pathlib import Path

from ews.codes import normalize_code
from ews.contacts import normalize_phone, recipient_id
from ews.errors import DataValidationError
from ews.types import Recipient, TaganaUnit

SUBSCRIBER_COLUMNS = ("phone", "village_code", "language", "channel", "consent_source", "consent_time")
TAGANA_COLUMNS = ("unit_id", "name", "kabkota_code", "kecamatan_codes", "coordinator", "phone", "channel")


def _rows(path: Path, columns: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:  # -sig: a BOM from spreadsheets is fine
            reader = csv.DictReader(handle)
            missing = [c for c in columns if c not in (reader.fieldnames or [])]
            if missing:
                raise DataValidationError(f"{path}: missing column(s) {', '.join(missing)}; expected {columns}")
            return [(n, {k: (v or "").strip() for k, v in row.items()}) for n, row in enumerate(reader, start=2)]
    except OSError as exc:
        raise DataValidationError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise DataValidationError(f"{path}: not UTF-8 (byte {exc.start}); save the file as UTF-8") from None


def _choice(value: str, allowed: tuple[str, ...], where: str, column: str) -> str:
    if value not in allowed:
        raise DataValidationError(f"{where}: column '{column}' is {value!r}; use one of {', '.join(allowed)}")
    return value


def read_subscribers(path: Path) -> list[Recipient]:
    """Residents who consented to warnings for a village; duplicates (same number, village, channel) merge."""
    out: dict[tuple[str, str, str], Recipient] = {}
    for line, row in _rows(path, SUBSCRIBER_COLUMNS):
        where = f"{path}: line {line}"
        try:
            phone = normalize_phone(row["phone"])
        except ValueError as exc:
            raise DataValidationError(f"{where}: column 'phone': {exc}") from None
        try:
            village = normalize_code(row["village_code"])
        except ValueError as exc:
            raise DataValidationError(f"{where}: column 'village_code': {exc}") from None
        if not row["consent_source"] or not row["consent_time"]:
            raise DataValidationError(f"{where}: consent_source and consent_time are required (UU 27/2022)")
        language = _choice(row["language"] or "id", ("id", "en"), where, "language")
        channel = _choice(row["channel"] or "sms", ("sms", "whatsapp"), where, "channel")
        out.setdefault((phone, village, channel), Recipient(recipient_id(phone), phone, village, language, channel))
    return list(out.values())


def read_tagana(path: Path) -> list[TaganaUnit]:
    """Tagana units and their coordinators' contacts."""
    units = []
    for line, row in _rows(path, TAGANA_COLUMNS):
        where = f"{path}: line {line}"
        phone = None
        if row["phone"]:
            try:
                phone = normalize_phone(row["phone"])
            except ValueError as exc:
                raise DataValidationError(f"{where}: column 'phone': {exc}") from None
        try:
            kabkota = normalize_code(row["kabkota_code"])
            kecamatan = tuple(normalize_code(c) for c in row["kecamatan_codes"].split(";") if c.strip())
        except ValueError as exc:
            raise DataValidationError(f"{where}: {exc}") from None
        channel = _choice(row["channel"] or "whatsapp", ("sms", "whatsapp"), where, "channel")
        units.append(TaganaUnit(row["unit_id"], row["name"], kabkota, kecamatan, row["coordinator"], phone, channel))
    return units

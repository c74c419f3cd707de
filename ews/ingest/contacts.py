"""Read the contact files a region configures: resident subscribers, the exercise list and Tagana units.

This is the one validation path for every contact file, whichever command reads it (``ews run``,
``ews subscribers import``, the DAG). A file is read strictly and as a whole:

- UTF-8 (a byte-order mark from a spreadsheet is fine), a header naming the expected columns;
- every line is checked and *every* bad line is reported (``<file>: line N: column 'c' <reason>``),
  not just the first; if any line is bad nothing is read from the file (so nothing is imported);
- a value that may be a phone number is never echoed: not the phone column's value, nor a number
  typed into another column (personal data, UU 27/2022);
- phone numbers are parsed strictly (:func:`ews.contacts.normalize_phone`): letters and separators
  other than spaces, dashes, dots and parentheses are refused instead of guessed at;
- one leading ``'`` that :func:`spreadsheet_safe` put before a cell (``'+628…``, ``'=…``) is removed,
  so a file written by ``ews subscribers export`` imports back unchanged. In the phone column a single
  leading ``'`` is always removed (no number starts with one).

Subscribers and exercise-list columns: ``phone, village_code, language (id|en), channel (sms|whatsapp),
consent_source, consent_time`` and optionally ``opted_out_at, opt_out_source`` (as written by the export).
Tagana columns: ``unit_id, name, kabkota_code, kecamatan_codes (";"-separated, empty = whole kab/kota),
coordinator, phone (may be empty), channel`` and optionally ``step`` (1 = paged at once, the default; 2, 3... =
paged later by the unit's escalation policy) and ``role`` (``coordinator``, the default, or ``bpbd`` for the
kab/kota BPBD duty contact). A line whose cells are all empty is skipped.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ews.codes import code_level, local_zone, normalize_code, parent_code
from ews.contacts import can_receive_messages, looks_like_phone, normalize_phone, recipient_id
from ews.errors import DataValidationError
from ews.store.repository import SubscriberRecord
from ews.types import Recipient, TaganaUnit

SUBSCRIBER_COLUMNS = ("phone", "village_code", "language", "channel", "consent_source", "consent_time")
OPT_OUT_COLUMNS = ("opted_out_at", "opt_out_source")
TAGANA_COLUMNS = ("unit_id", "name", "kabkota_code", "kecamatan_codes", "coordinator", "phone", "channel")
LANGUAGES = ("id", "en")
CHANNELS = ("sms", "whatsapp")
ROLES = ("coordinator", "bpbd")
MAX_STEP = 9
# A cell starting with one of these is run as a formula by spreadsheets (OWASP, "CSV Injection").
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell: str) -> str:
    """Neutralise a CSV cell a spreadsheet would run as a formula by putting a ``'`` before it.

    A cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading ``'``
    (OWASP's advice for CSV injection), so ``+6289990000123`` is written ``'+6289990000123``. A cell
    that already starts with ``'`` followed by one of those (or by another ``'``) gets one too, so that
    :func:`from_spreadsheet` gives back exactly the original text.
    """
    if cell.startswith(FORMULA_TRIGGERS) or (cell.startswith("'") and cell[1:2] in (*FORMULA_TRIGGERS, "'")):
        return "'" + cell
    return cell


def from_spreadsheet(cell: str) -> str:
    """Undo :func:`spreadsheet_safe`: drop the one ``'`` it put before a cell (``'+628…`` -> ``+628…``)."""
    if cell.startswith("'") and cell[1:2] and cell[1:2] in (*FORMULA_TRIGGERS, "'"):
        return cell[1:]
    return cell


@dataclass(frozen=True)
class SubscriberFile:
    """A validated subscribers (or exercise-list) CSV: its good rows and, per rejected row, ``"line N: reason"``."""

    path: Path
    rows_read: int
    records: tuple[SubscriberRecord, ...]
    problems: tuple[str, ...]
    digest: str = ""
    """SHA-256 (hex) of the bytes that were read: the file's identity in ``contact_files``."""


@dataclass(frozen=True)
class TaganaFile:
    """A validated Tagana CSV: its good units and, per rejected row, ``"line N: reason"``."""

    path: Path
    rows_read: int
    units: tuple[TaganaUnit, ...]
    problems: tuple[str, ...]


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DataValidationError(f"{path}: cannot read ({exc.strerror}); check the path in the region file") from None


def file_digest(path: Path) -> str:
    """SHA-256 (hex) of a contact file's bytes: cheap, and what :attr:`SubscriberFile.digest` holds.

    Raises
    ------
    DataValidationError
        The file cannot be read (the message names it).
    """
    return hashlib.sha256(_read(path)).hexdigest()


def _decode(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataValidationError(
            f"{path}: not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); save it as UTF-8 "
            "(in Excel: 'CSV UTF-8'; in LibreOffice: character set 'Unicode (UTF-8)') and try again"
        ) from None


def _lines(
    path: Path, columns: Sequence[str], data: bytes | None = None
) -> Iterator[tuple[int, dict[str, str] | None]]:
    """``(line, row)`` per non-blank data line; ``row`` is None when it has more fields than the header.

    ``data`` is the file's bytes when the caller has read them already.
    """
    reader = csv.DictReader(io.StringIO(_decode(path, _read(path) if data is None else data), newline=""))
    header = [name.strip() for name in (reader.fieldnames or [])]
    missing = [c for c in columns if c not in header]
    if missing:
        raise DataValidationError(
            f"{path}: missing column(s) {', '.join(missing)}; the first line must be the header {','.join(columns)}"
        )
    reader.fieldnames = header
    for raw in reader:
        if None in raw:
            yield reader.line_num, None
            continue
        row = {k: (v or "").strip() for k, v in raw.items()}
        if not any(row.values()):
            continue
        # Undo the export's formula neutralisation; the phone column never starts with a quote at all.
        row = {k: from_spreadsheet(v) for k, v in row.items()}
        if row.get("phone", "").startswith("'"):
            row["phone"] = row["phone"][1:].strip()
        yield reader.line_num, row


def _shown(value: str) -> str:
    """``value`` quoted when it is safe to print, else a description (it may be a phone number)."""
    if len(value) <= 24 and sum(c.isdigit() for c in value) < 5:
        return repr(value)
    return "a value not shown here (it may be personal data)"


def _choice(value: str, allowed: tuple[str, ...], column: str) -> str | None:
    if value in allowed:
        return None
    return f"column '{column}' is {_shown(value)}; use {' or '.join(allowed)}"


def _phone(value: str) -> tuple[str | None, str | None]:
    if not value:
        return None, "column 'phone' is empty"
    try:
        phone = normalize_phone(value)
    except ValueError as exc:
        return None, f"column 'phone' {exc}"
    if not can_receive_messages(phone):
        return None, "column 'phone' is a landline number: SMS and WhatsApp need a mobile number (08…)"
    return phone, None


def _code(raw: str) -> str | None:
    """The dotted Kemendagri code of ``raw`` in an Indonesian province, or None."""
    try:
        code = normalize_code(raw)
        local_zone(code)
    except (ValueError, DataValidationError):
        return None
    return code


def _village(raw: str, known: Collection[str] | None, region_name: str) -> tuple[str | None, str | None]:
    code = _code(raw)
    if code is None:
        # The value is not echoed: a number typed into the wrong column must not end up in a report.
        return None, "column 'village_code' is not a Kemendagri code (e.g. 35.78.01.1001)"
    if looks_like_phone(code):
        # Ten digits such as 6281234567 make a well-formed code of province 62: no village has such a code.
        return None, "column 'village_code' looks like a phone number (not shown), not a Kemendagri code"
    if known is not None and code not in known:
        return (
            None,
            f"village code {code} is not in the boundaries of region {region_name}; check the code or the region",
        )
    return code, None


def _instant(text: str, column: str) -> tuple[datetime | None, str | None]:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None, f"column '{column}' is not an ISO 8601 time (e.g. 2026-01-15T09:30:00+07:00)"
    if value.tzinfo is None or value.utcoffset() is None:
        return None, f"column '{column}' needs a time zone offset (e.g. +07:00 for WIB)"
    return value, None


_SHARED_INSTANTS = 10_000


def read_subscriber_file(
    path: Path, village_codes: Collection[str] | None = None, region_name: str = "?"
) -> SubscriberFile:
    """Read and validate a subscribers (or exercise-list) CSV, collecting a reason for every rejected line.

    Parameters
    ----------
    path
        The CSV file (UTF-8).
    village_codes
        The region's boundary codes; when given, a row for any other village is rejected.
    region_name
        Names the region in those rejections.

    Returns
    -------
    SubscriberFile
        Every valid row (duplicates included: the store merges them) and, for each bad line,
        ``"line N: column 'c' <reason>"`` (several reasons of one line joined by ``"; "``). No
        problem repeats a phone number. ``digest`` is the SHA-256 of the bytes read.

    Raises
    ------
    DataValidationError
        The file cannot be read, is not UTF-8, or lacks a required column.
    """
    records: list[SubscriberRecord] = []
    problems: list[str] = []
    rows_read = 0
    data = _read(path)
    # Parsing a number (phonenumbers) is most of the cost of a line: each distinct text is parsed once.
    phones: dict[str, tuple[str | None, str | None]] = {}
    villages: dict[str, tuple[str | None, str | None]] = {}  # a village has many subscribers
    # Values many rows share (language, channel, consent source, consent time) kept once, not once per row.
    shared: dict[str, str] = {}
    instants: dict[str, tuple[datetime | None, str | None]] = {}
    for line, row in _lines(path, SUBSCRIBER_COLUMNS, data):
        rows_read += 1
        if row is None:
            problems.append(f"line {line}: more fields than the header has columns (a ',' inside a value?)")
            continue
        reasons: list[str] = []
        raw_phone = row["phone"]
        found = phones.get(raw_phone)
        if found is None:
            found = phones[raw_phone] = _phone(raw_phone)
        phone, why = found
        reasons += [why] if why else []
        raw_village = row["village_code"]
        checked = villages.get(raw_village)
        if checked is None:
            checked = villages[raw_village] = _village(raw_village, village_codes, region_name)
        village, why = checked
        reasons += [why] if why else []
        language = shared.setdefault(row["language"] or "id", row["language"] or "id")
        channel = shared.setdefault(row["channel"] or "sms", row["channel"] or "sms")
        reasons += [r for r in (_choice(language, LANGUAGES, "language"), _choice(channel, CHANNELS, "channel")) if r]
        consent_time = None
        if not row["consent_source"]:
            reasons.append("column 'consent_source' is empty: consent is required (UU 27/2022)")
        if not row["consent_time"]:
            reasons.append("column 'consent_time' is empty: consent is required (UU 27/2022)")
        else:
            found_time = instants.get(row["consent_time"])
            if found_time is None:
                found_time = _instant(row["consent_time"], "consent_time")
                if len(instants) < _SHARED_INSTANTS:  # times of a form are mostly distinct: a bounded share
                    instants[row["consent_time"]] = found_time
            consent_time, why = found_time
            reasons += [why] if why else []
        opted_out_at = None
        if row.get("opted_out_at"):
            opted_out_at, why = _instant(row["opted_out_at"], "opted_out_at")
            reasons += [why] if why else []
        if reasons or phone is None or village is None or consent_time is None:
            problems.append(f"line {line}: {'; '.join(reasons)}")
            continue
        records.append(
            SubscriberRecord(
                phone=phone,
                village_code=village,
                language=language,
                channel=channel,
                consent_source=shared.setdefault(row["consent_source"], row["consent_source"]),
                consent_time=consent_time,
                opted_out_at=opted_out_at,
                opt_out_source=(row.get("opt_out_source") or "import") if opted_out_at else None,
            )
        )
    return SubscriberFile(path, rows_read, tuple(records), tuple(problems), hashlib.sha256(data).hexdigest())


def _step(value: str) -> tuple[int, str | None]:
    """The escalation step of a Tagana contact line (empty: 1, paged at once)."""
    if not value:
        return 1, None
    if value.isdigit() and 1 <= int(value) <= MAX_STEP:
        return int(value), None
    return 1, (
        f"column 'step' is {_shown(value)}; use a whole number from 1 (paged at once) to {MAX_STEP} "
        "(paged later, by the unit's escalation policy)"
    )


def read_tagana_file(path: Path) -> TaganaFile:
    """Read and validate a Tagana units CSV, collecting a reason for every rejected line.

    A unit may have several lines (one per coordinator). ``kabkota_code`` must be a kab/kota code
    (``35.78``) and each of ``kecamatan_codes`` a kecamatan of it (``35.78.01``); ``phone`` may be empty
    (the unit's notices are then recorded as ``no-contact``).

    Raises
    ------
    DataValidationError
        The file cannot be read, is not UTF-8, or lacks a required column.
    """
    units: list[TaganaUnit] = []
    problems: list[str] = []
    rows_read = 0
    for line, row in _lines(path, TAGANA_COLUMNS):
        rows_read += 1
        if row is None:
            problems.append(f"line {line}: more fields than the header has columns (a ',' inside a value?)")
            continue
        reasons: list[str] = []
        if not row["unit_id"]:
            reasons.append("column 'unit_id' is empty: give each unit an id (e.g. TGN-3578)")
        phone, why = _phone(row["phone"]) if row["phone"] else (None, None)
        reasons += [why] if why else []
        kabkota = _code(row["kabkota_code"])
        if kabkota is None or code_level(kabkota) != 2:
            reasons.append("column 'kabkota_code' is not a kab/kota code (e.g. 35.78)")
            kabkota = None
        kecamatan: list[str] = []
        for raw in (c.strip() for c in row["kecamatan_codes"].split(";")):
            if not raw:
                continue
            code = _code(raw)
            if code is None or code_level(code) != 3 or looks_like_phone(code):
                reasons.append("column 'kecamatan_codes' holds a value that is not a kecamatan code (e.g. 35.78.01)")
            elif kabkota is not None and parent_code(code, 2) != kabkota:
                reasons.append(
                    f"column 'kecamatan_codes': kecamatan {code} is not in kab/kota {kabkota}; "
                    "list only the unit's own kecamatan"
                )
            else:
                kecamatan.append(code)
        channel = row["channel"] or "whatsapp"
        reasons += [why] if (why := _choice(channel, CHANNELS, "channel")) else []
        step, why = _step(row.get("step", ""))
        reasons += [why] if why else []
        role = row.get("role", "") or "coordinator"
        reasons += [why] if (why := _choice(role, ROLES, "role")) else []
        if reasons or kabkota is None:
            problems.append(f"line {line}: {'; '.join(reasons)}")
            continue
        units.append(
            TaganaUnit(
                row["unit_id"], row["name"], kabkota, tuple(kecamatan), row["coordinator"], phone, channel, step, role
            )
        )
    return TaganaFile(path, rows_read, tuple(units), tuple(problems))


def contact_file_error(path: Path, role: str, problems: Sequence[str]) -> DataValidationError:
    """The error for a contact file with bad lines: one line per bad line, each naming the file.

    ``role`` names the file's part in the region (``subscribers``, ``exercise_list``, ``tagana``).
    """
    if len(problems) == 1:
        return DataValidationError(
            f"{path}: {problems[0]}; nothing was read from this {role} file: fix the line and run again"
        )
    lines = [f"{path}: {len(problems)} bad lines in this {role} file, nothing was read from it: fix them and run again"]
    lines += [f"{path}: {p}" for p in problems]
    return DataValidationError("\n".join(lines))


def read_subscribers(path: Path, role: str = "subscribers") -> list[Recipient]:
    """Residents (or exercise-list staff) who consented to warnings for a village, all lines or none.

    Duplicates (same number, village and channel) merge. Opt-outs in the file are not applied here:
    the store holds them (see :func:`ews.subscribers.import_subscriber_file`).

    Raises
    ------
    DataValidationError
        Any line is bad: the message lists every bad line (file, line, column, reason), never a number.
    """
    parsed = read_subscriber_file(path)
    if parsed.problems:
        raise contact_file_error(path, role, parsed.problems)
    out: dict[tuple[str, str, str], Recipient] = {}
    ids: dict[str, str] = {}
    for r in parsed.records:
        key = (r.phone, r.village_code, r.channel)
        if key not in out:
            rid = ids.get(r.phone) or ids.setdefault(r.phone, recipient_id(r.phone))
            out[key] = Recipient(rid, r.phone, r.village_code, r.language, r.channel)
    return list(out.values())


def read_tagana(path: Path) -> list[TaganaUnit]:
    """Tagana units and their coordinators' contacts, all lines or none.

    Raises
    ------
    DataValidationError
        Any line is bad: the message lists every bad line (file, line, column, reason), never a number.
    """
    parsed = read_tagana_file(path)
    if parsed.problems:
        raise contact_file_error(path, "tagana", parsed.problems)
    return list(parsed.units)

"""Import and export the residents' subscriptions held in the ews database (personal data, UU 27/2022).

The import file is the region's subscribers CSV (columns of :data:`ews.ingest.contacts.SUBSCRIBER_COLUMNS`,
optionally ``opted_out_at`` and ``opt_out_source`` as written by the export). It is read strictly: UTF-8
(a byte-order mark is fine), every row validated, and all or nothing — if any row is rejected nothing
is written. Rejections name the line and the reason, never the phone number. Duplicates (same number,
village and channel) are merged, and an opt-out already recorded survives any re-import.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ews.codes import local_zone, normalize_code
from ews.contacts import normalize_phone
from ews.errors import DataValidationError
from ews.ingest.contacts import SUBSCRIBER_COLUMNS
from ews.store.artifacts import write_text_atomic
from ews.store.repository import EXPORT_COLUMNS, ImportReport, Store, SubscriberRecord

LANGUAGES = ("id", "en")
CHANNELS = ("sms", "whatsapp")
OPT_OUT_COLUMNS = ("opted_out_at", "opt_out_source")


@dataclass(frozen=True)
class SubscriberFile:
    """A validated subscribers CSV: its good rows and, per rejected row, ``"line N: reason"``."""

    path: Path
    rows_read: int
    records: tuple[SubscriberRecord, ...]
    problems: tuple[str, ...]


def _decode(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataValidationError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataValidationError(
            f"{path}: not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); save it as UTF-8 "
            "(in Excel: 'CSV UTF-8'; in LibreOffice: character set 'Unicode (UTF-8)') and import it again"
        ) from None


def _instant(text: str, column: str) -> tuple[datetime | None, str | None]:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None, f"column '{column}' is not an ISO 8601 time (e.g. 2026-01-15T09:30:00+07:00)"
    if value.tzinfo is None or value.utcoffset() is None:
        return None, f"column '{column}' needs a time zone offset (e.g. +07:00 for WIB)"
    return value, None


def _village(raw: str, known: Collection[str] | None, region_name: str) -> tuple[str | None, str | None]:
    # The value is not echoed until it is known to be a plausible code: a number typed into the wrong
    # column must not end up in a report.
    try:
        code = normalize_code(raw)
        local_zone(code)
    except (ValueError, DataValidationError):
        return None, "column 'village_code' is not a Kemendagri code (e.g. 35.78.01.1001)"
    if known is not None and code not in known:
        return None, f"village code {code} is not in the boundaries of region {region_name}"
    return code, None


def _choice(value: str, allowed: tuple[str, ...], column: str) -> str | None:
    if value in allowed:
        return None
    shown = repr(value) if len(value) <= 12 and sum(c.isdigit() for c in value) < 5 else "a value"
    return f"column '{column}' is {shown}; use {' or '.join(allowed)}"


def read_subscriber_file(
    path: Path, village_codes: Collection[str] | None = None, region_name: str = "?"
) -> SubscriberFile:
    """Read and validate a subscribers CSV, collecting a reason for every rejected row.

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
        Every valid row (duplicates included: the store merges them) and the problems of the others.

    Raises
    ------
    DataValidationError
        The file cannot be read, is not UTF-8, or lacks a required column.
    """
    reader = csv.DictReader(io.StringIO(_decode(path), newline=""))
    header = [name.strip() for name in (reader.fieldnames or [])]
    missing = [c for c in SUBSCRIBER_COLUMNS if c not in header]
    if missing:
        raise DataValidationError(
            f"{path}: missing column(s) {', '.join(missing)}; the header must have {', '.join(SUBSCRIBER_COLUMNS)}"
        )
    reader.fieldnames = header
    records: list[SubscriberRecord] = []
    problems: list[str] = []
    rows_read = 0
    for raw in reader:
        rows_read += 1
        line = reader.line_num
        if None in raw:
            problems.append(f"line {line}: more fields than the header has columns")
            continue
        row = {k: (v or "").strip() for k, v in raw.items()}
        reasons: list[str] = []
        phone = None
        if not row["phone"]:
            reasons.append("column 'phone' is empty")
        else:
            try:
                phone = normalize_phone(row["phone"])
            except ValueError as exc:
                reasons.append(f"column 'phone': {exc}")
        village, why = _village(row["village_code"], village_codes, region_name)
        if why:
            reasons.append(why)
        language = row["language"] or "id"
        channel = row["channel"] or "sms"
        reasons.extend(
            r for r in (_choice(language, LANGUAGES, "language"), _choice(channel, CHANNELS, "channel")) if r
        )
        consent_time = None
        if not row["consent_source"]:
            reasons.append("column 'consent_source' is empty: consent is required (UU 27/2022)")
        if not row["consent_time"]:
            reasons.append("column 'consent_time' is empty: consent is required (UU 27/2022)")
        else:
            consent_time, why = _instant(row["consent_time"], "consent_time")
            if why:
                reasons.append(why)
        opted_out_at = None
        if row.get("opted_out_at"):
            opted_out_at, why = _instant(row["opted_out_at"], "opted_out_at")
            if why:
                reasons.append(why)
        if reasons:
            problems.append(f"line {line}: {'; '.join(reasons)}")
            continue
        if phone is None or village is None or consent_time is None:  # pragma: no cover - a reason was recorded
            continue
        records.append(
            SubscriberRecord(
                phone=phone,
                village_code=village,
                language=language,
                channel=channel,
                consent_source=row["consent_source"],
                consent_time=consent_time,
                opted_out_at=opted_out_at,
                opt_out_source=(row.get("opt_out_source") or "import") if opted_out_at else None,
            )
        )
    return SubscriberFile(path, rows_read, tuple(records), tuple(problems))


def region_village_codes(region_file: Path, env: dict[str, str] | None = None) -> tuple[str, frozenset[str]]:
    """The id and the boundary codes of a region file (``regions/<id>.yaml``).

    Raises
    ------
    ConfigError, BoundaryError
        The region file or its boundaries cannot be read.
    """
    from ews.config import open_region
    from ews.ingest.boundaries import read_boundaries

    config = open_region(region_file, os.environ if env is None else env)
    b = config.boundaries
    areas = read_boundaries(b.path, id_field=b.id_field, name_field=b.name_field, layer=b.layer)
    return config.id, frozenset(str(c) for c in areas["code"])


def import_subscriber_file(
    store: Store, path: Path, village_codes: Collection[str] | None = None, region_name: str = "?"
) -> ImportReport:
    """Validate a subscribers CSV and, only if every row is valid, import it in one transaction.

    Returns
    -------
    ImportReport
        ``ok`` false (and nothing written) when a row was rejected; ``problems`` lists them by line.

    Raises
    ------
    DataValidationError
        The file cannot be read, is not UTF-8, or lacks a required column (nothing written).
    StoreError
        The database refused the import (nothing written).
    """
    parsed = read_subscriber_file(path, village_codes, region_name)
    if parsed.problems:
        return ImportReport(rows_read=parsed.rows_read, problems=parsed.problems)
    report = store.import_subscribers(parsed.records)
    return ImportReport(
        rows_read=parsed.rows_read,
        imported=report.imported,
        updated=report.updated,
        unchanged=report.unchanged,
        merged_duplicates=report.merged_duplicates,
        opted_out=report.opted_out,
    )


def format_import_report(path: Path, report: ImportReport) -> str:
    """The report printed by ``ews subscribers import`` (no phone numbers)."""
    lines = [f"ews subscribers import: {path}", f"  rows read            {report.rows_read:>6}"]
    if not report.ok:
        lines.append(f"  rows rejected        {len(report.problems):>6}")
        lines.extend(f"    REJECTED {p}" for p in report.problems)
        lines.append("  nothing was imported: fix the rows above and import the whole file again")
        return "\n".join(lines)
    lines += [
        f"  imported (new)       {report.imported:>6}",
        f"  updated              {report.updated:>6}",
        f"  unchanged            {report.unchanged:>6}",
        f"  duplicates merged    {report.merged_duplicates:>6}",
        f"  stay opted out       {report.opted_out:>6}",
    ]
    if report.opted_out:
        lines.append("  NOTE opted-out numbers were kept opted out: an import never re-subscribes anyone")
    return "\n".join(lines)


def _csv_text(rows: list[dict[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def subscribers_csv(store: Store) -> str:
    """Every subscription with its consent and opt-out state as CSV text (:data:`EXPORT_COLUMNS`)."""
    return _csv_text(store.export_subscribers())


def export_subscriber_file(store: Store, out: Path) -> int:
    """Write the export CSV to ``out`` atomically and return the number of subscriptions written."""
    rows = store.export_subscribers()
    write_text_atomic(out, _csv_text(rows))
    return len(rows)

"""Import and export the residents' subscriptions held in the ews database (personal data, UU 27/2022).

The import file is the region's subscribers CSV (columns of :data:`ews.ingest.contacts.SUBSCRIBER_COLUMNS`,
optionally ``opted_out_at`` and ``opt_out_source`` as written by the export). It is read by the same
validator as every other contact file (:func:`ews.ingest.contacts.read_subscriber_file`): UTF-8 (a
byte-order mark is fine), every line validated, and all or nothing — if any line is rejected nothing is
written. Rejections name the file, the line, the column and the reason, never the phone number.
Duplicates (same number, village and channel) are merged, and an opt-out already recorded survives any
re-import.

The export neutralises every cell a spreadsheet would run as a formula (OWASP, CSV injection): a cell
starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading ``'``. Phone numbers
are E.164, so they are written ``'+628…``; the import removes that quote again, so an export imports back
unchanged (:func:`ews.ingest.contacts.from_spreadsheet`).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Collection
from dataclasses import replace
from pathlib import Path

from ews.ingest.contacts import SubscriberFile, file_digest, read_subscriber_file, spreadsheet_safe
from ews.store.artifacts import write_text_atomic
from ews.store.repository import EXPORT_COLUMNS, ImportReport, Store
from ews.store.subscribers import ContactFileDigest

__all__ = [
    "SubscriberFile",
    "export_subscriber_file",
    "format_import_report",
    "import_subscriber_file",
    "read_subscriber_file",
    "region_village_codes",
    "subscribers_csv",
    "sync_subscriber_file",
]


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


def sync_subscriber_file(
    store: Store, region: str, path: Path, parsed: SubscriberFile | None = None
) -> ImportReport | None:
    """Import a region's subscribers file only if it changed since its last import; ``None`` if it did not.

    The file's identity is the SHA-256 of its bytes, recorded in ``contact_files`` for (``region``,
    ``subscribers``) in the same transaction as the import: a failed or refused import records nothing, so the
    file is tried again next run. An unchanged file is not parsed at all.

    Parameters
    ----------
    store
        Where the subscriptions and the digest of the file last imported are.
    region
        The region's id (the file's owner in ``contact_files``).
    path
        The region's subscribers CSV.
    parsed
        The file as read already this run (:func:`read_subscriber_file`); it is not read again.

    Returns
    -------
    ImportReport or None
        As :func:`import_subscriber_file` (``ok`` false and nothing written when a row was rejected), or ``None``
        when the store holds this very file already.

    Raises
    ------
    DataValidationError
        The file cannot be read, is not UTF-8, or lacks a required column (nothing written).
    StoreError
        The database refused the import (nothing written).
    """
    digest = parsed.digest if parsed is not None else file_digest(path)
    if store.contact_file_digest(region, "subscribers") == digest:
        return None
    # The digest recorded is the one of the bytes parsed (the file may have changed since it was hashed).
    parsed = parsed or read_subscriber_file(path, None, region)
    if parsed.problems:
        return ImportReport(rows_read=parsed.rows_read, problems=parsed.problems)
    stamp = ContactFileDigest(region, "subscribers", str(path), parsed.digest)
    report = store.import_subscribers(parsed.records, contact_file=stamp)
    return replace(report, rows_read=parsed.rows_read)


def format_import_report(path: Path, report: ImportReport) -> str:
    """The report printed by ``ews subscribers import`` (no phone numbers)."""
    lines = [f"ews subscribers import: {path}", f"  rows read            {report.rows_read:>6}"]
    if not report.ok:
        lines.append(f"  rows rejected        {len(report.problems):>6}")
        lines.extend(f"    REJECTED {path}: {p}" for p in report.problems)
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
    # Every cell, not only the phone: consent and opt-out sources are free text typed by people.
    writer.writerows({k: spreadsheet_safe(v) for k, v in row.items()} for row in rows)
    return buffer.getvalue()


def subscribers_csv(store: Store) -> str:
    """Every subscription with its consent and opt-out state as CSV text (:data:`EXPORT_COLUMNS`).

    Cells a spreadsheet would run as a formula are written with a leading ``'`` (``'+628…``); see the
    module docstring.
    """
    return _csv_text(store.export_subscribers())


def export_subscriber_file(store: Store, out: Path) -> int:
    """Write the export CSV (as :func:`subscribers_csv`) to ``out`` atomically; return the number of rows."""
    rows = store.export_subscribers()
    write_text_atomic(out, _csv_text(rows))
    return len(rows)

"""A region's subscribers file in the store: imported only when its digest changed, parsed once per run, set-based.

Every test runs on SQLite and on PostgreSQL (the ``store`` fixture). Numbers are from ews's fictional range.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

import ews.ingest.contacts
import ews.pipeline
import ews.subscribers
from ews.config import RegionConfig, open_region
from ews.contacts import recipient_id
from ews.errors import StoreError
from ews.ingest.contacts import SUBSCRIBER_COLUMNS, SubscriberFile
from ews.pipeline import RegionData, open_region_data, sync_region_contacts
from ews.store.models import ContactFile, Subscriber
from ews.store.repository import Store, SubscriberRecord
from ews.store.subscribers import ContactFileDigest
from ews.subscribers import sync_subscriber_file

from .factories import T0, phone

V1, V2, ELSEWHERE = "35.78.01.1001", "35.78.01.1002", "35.78.09.1009"
CONSENT = "form BPBD Surabaya,2026-01-15T09:30:00+07:00"


def write_subscribers(path: Path, *rows: tuple[str, str]) -> Path:
    """A subscribers CSV of (number, village) rows, language id, channel sms."""
    lines = [",".join(SUBSCRIBER_COLUMNS), *(f"{n},{v},id,sms,{CONSENT}" for n, v in rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def region(tmp_path: Path) -> RegionConfig:
    """A two-village region (V1, V2) whose subscribers file is ``tmp_path/subscribers.csv`` (one subscriber)."""

    def square(x: float) -> dict[str, object]:
        ring = [[x, -7.3], [x + 0.01, -7.3], [x + 0.01, -7.29], [x, -7.29], [x, -7.3]]
        return {"type": "Polygon", "coordinates": [ring]}

    features = [
        {"type": "Feature", "properties": {"kode": code, "nama": name}, "geometry": square(x)}
        for code, name, x in ((V1, "Desa Satu", 112.70), (V2, "Desa Dua", 112.72))
    ]
    (tmp_path / "villages.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    write_subscribers(tmp_path / "subscribers.csv", (phone(1), V1))
    file = tmp_path / "tiny.yaml"
    file.write_text(
        'id: tiny\nname: Tiny\nprovince_code: "35"\n'
        "boundaries: {path: villages.geojson, id_field: kode, name_field: nama}\n"
        "subscribers: subscribers.csv\n"
    )
    return open_region(file, {})


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The paths every subscribers parse read, wherever it was called from."""
    seen: list[Path] = []
    real = ews.ingest.contacts.read_subscriber_file

    def counting(path: Path, *args: Any, **kwargs: Any) -> SubscriberFile:
        seen.append(path)
        return real(path, *args, **kwargs)

    for module in (ews.pipeline, ews.subscribers):
        monkeypatch.setattr(module, "read_subscriber_file", counting)
    return seen


def cycle(store: Store, config: RegionConfig, cache: Path) -> RegionData:
    """What a run does with the region's contacts: open the region with the store, then sync its contacts."""
    data = open_region_data(config, store=store, cache_dir=cache)
    sync_region_contacts(store, config, data)
    return data


def rows(store: Store) -> list[Any]:
    s = Subscriber
    with store.engine.connect() as connection:
        return list(connection.execute(select(s.phone_e164, s.village_code, s.recipient_id).order_by(s.id)))


# -- imported only when changed ------------------------------------------------------------------------


def test_an_unchanged_file_is_neither_parsed_nor_imported(
    store: Store, region: RegionConfig, tmp_path: Path, parses: list[Path]
) -> None:
    first = cycle(store, region, tmp_path / "cache")
    assert parses == [region.subscribers]  # once per run: open_region_data's parse is the one imported
    assert first.subscriber_file is not None
    assert not first.subscribers_unchanged
    assert region.subscribers is not None
    digest = hashlib.sha256(region.subscribers.read_bytes()).hexdigest()
    assert store.contact_file_digest("tiny") == digest
    assert [r.phone for r in store.subscribers()] == [phone(1)]

    parses.clear()
    second = cycle(store, region, tmp_path / "cache")
    assert parses == []  # not even parsed
    assert second.subscribers_unchanged
    assert second.subscriber_file is None
    assert second.problems == []
    assert [r.phone for r in store.subscribers()] == [phone(1)]


def test_a_changed_file_is_imported_once(
    store: Store, region: RegionConfig, tmp_path: Path, parses: list[Path]
) -> None:
    assert region.subscribers is not None
    cycle(store, region, tmp_path / "cache")
    write_subscribers(region.subscribers, (phone(1), V1), (phone(2), V2))
    parses.clear()
    cycle(store, region, tmp_path / "cache")
    assert parses == [region.subscribers]
    assert sorted(r.phone for r in store.subscribers()) == [phone(1), phone(2)]
    assert store.contact_file_digest("tiny") == hashlib.sha256(region.subscribers.read_bytes()).hexdigest()
    with store.engine.connect() as connection:
        recorded = connection.execute(select(ContactFile.path, ContactFile.rows)).one()
    assert tuple(recorded) == (str(region.subscribers), 2)


def test_sync_reports_unchanged_as_none(store: Store, tmp_path: Path) -> None:
    file = write_subscribers(tmp_path / "subs.csv", (phone(1), V1), (phone(1), V1))
    report = sync_subscriber_file(store, "tiny", file)
    assert report is not None
    assert (report.rows_read, report.imported, report.merged_duplicates) == (2, 1, 1)
    assert sync_subscriber_file(store, "tiny", file) is None
    # Another region with the same file has its own record: imported for it (nothing new to write).
    other = sync_subscriber_file(store, "other", file)
    assert other is not None
    assert (other.imported, other.unchanged) == (0, 1)


# -- refused and failed imports record nothing -------------------------------------------------------------


def test_a_refused_file_is_degraded_and_the_store_keeps_alerting(
    store: Store, region: RegionConfig, tmp_path: Path
) -> None:
    assert region.subscribers is not None
    cycle(store, region, tmp_path / "cache")
    before = store.contact_file_digest("tiny")
    write_subscribers(region.subscribers, (phone(1), V1), ("0899-9000-0101O", V2))  # a letter O for a zero
    data = cycle(store, region, tmp_path / "cache")
    (problem,) = data.problems
    assert problem["message"].startswith("DEGRADED: subscribers file not imported")
    assert "line 3: column 'phone' has letters" in problem["message"]
    assert "0899" not in problem["message"]
    assert data.refused(region.subscribers)
    assert store.contact_file_digest("tiny") == before  # the refused file is tried again next run
    assert [r.phone for r in store.subscribers()] == [phone(1)]  # those in the store still get alerts

    refused = sync_subscriber_file(store, "tiny", region.subscribers)
    assert refused is not None
    assert not refused.ok
    assert store.contact_file_digest("tiny") == before


def test_a_failed_import_records_no_digest(store: Store) -> None:
    stamp = ContactFileDigest("tiny", "subscribers", "subs.csv", "0" * 64)
    good = SubscriberRecord(phone(1), V1, "id", "sms", "form", T0)
    bad = SubscriberRecord(phone(2), V1, "jv", "sms", "form", T0)
    with pytest.raises(StoreError, match="subscriber row 2: language"):
        store.import_subscribers([good, bad], contact_file=stamp)
    assert store.contact_file_digest("tiny") is None
    assert store.subscribers() == []


# -- the rules of an import ------------------------------------------------------------------------------


def test_an_opt_out_survives_a_changed_file(store: Store, region: RegionConfig, tmp_path: Path) -> None:
    assert region.subscribers is not None
    cycle(store, region, tmp_path / "cache")
    assert store.opt_out(phone(1), "whatsapp STOP", T0)
    # The file changes (a new village for the same number, and a new neighbour): imported, and still opted out.
    write_subscribers(region.subscribers, (phone(1), V1), (phone(1), V2), (phone(3), V2))
    cycle(store, region, tmp_path / "cache")
    assert [r.phone for r in store.subscribers()] == [phone(3)]
    out = {(r["phone"], r["village_code"]): r["opt_out_source"] for r in store.export_subscribers()}
    assert out == {(phone(1), V1): "whatsapp STOP", (phone(1), V2): "whatsapp STOP", (phone(3), V2): ""}


def test_every_row_written_has_its_recipient_id(store: Store, tmp_path: Path) -> None:
    numbers = [phone(n) for n in range(1, 8)]
    store.import_subscribers([SubscriberRecord(p, V1, "id", "sms", "form", T0) for p in numbers])
    assert [(p, rid) for p, _, rid in rows(store)] == [(p, recipient_id(p)) for p in numbers]
    # A row stored without one (before revision 0008, or by another writer) is read with its hash, and a
    # re-import fills the column in without counting the row as updated.
    with store.engine.begin() as connection:
        connection.execute(update(Subscriber).where(Subscriber.phone_e164 == phone(3)).values(recipient_id=None))
    assert {r.phone: r.recipient_id for r in store.subscribers([V1])}[phone(3)] == recipient_id(phone(3))
    again = store.import_subscribers([SubscriberRecord(p, V1, "id", "sms", "form", T0) for p in numbers])
    assert (again.imported, again.updated, again.unchanged) == (0, 0, 7)
    assert all(rid == recipient_id(p) for p, _, rid in rows(store))


def test_subscribers_read_by_village_in_order_across_chunks(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    import ews.store.subscribers

    monkeypatch.setattr(ews.store.subscribers, "_READ_CHUNK", 2)  # four villages: two chunks
    villages = [f"35.78.01.{1001 + n}" for n in range(4)]
    records = [
        SubscriberRecord(phone(10 * k + n), v, "id", channel, "form", T0)
        for k, v in enumerate(reversed(villages))
        for n, channel in enumerate(("whatsapp", "sms"))
    ]
    store.import_subscribers(records)
    found = store.subscribers(villages[1:])
    assert [(r.village_code, r.channel) for r in found] == [(v, c) for v in villages[1:] for c in ("sms", "whatsapp")]
    assert store.subscriber_villages() == set(villages)


def test_the_note_on_villages_outside_the_region(store: Store, region: RegionConfig, tmp_path: Path) -> None:
    assert region.subscribers is not None
    write_subscribers(region.subscribers, (phone(1), V1), (phone(2), ELSEWHERE))
    note = f"subscribers in 1 village(s) outside this region's boundaries get no alerts from it: {ELSEWHERE}"
    parsed = cycle(store, region, tmp_path / "cache")  # from the parse
    assert any(n.startswith(note) for n in parsed.notes)
    # Another province's subscriber in the store (another region's) is not this region's business.
    store.import_subscribers([SubscriberRecord(phone(3), "36.01.01.2001", "id", "sms", "form", T0)])
    unchanged = cycle(store, region, tmp_path / "cache")  # from the store
    assert unchanged.subscribers_unchanged
    assert any(n.startswith(note) for n in unchanged.notes), unchanged.notes


def test_a_run_without_a_store_parses_and_the_sync_imports_that_parse(
    store: Store, region: RegionConfig, tmp_path: Path, parses: list[Path]
) -> None:
    # The DAG's publish step opens the region on its own; its parse is what the sync imports.
    data = open_region_data(region)
    sync_region_contacts(store, region, data)
    assert parses == [region.subscribers]
    assert [r.phone for r in store.subscribers()] == [phone(1)]
    # A step that does not import the file does not read it.
    parses.clear()
    assert open_region_data(region, subscribers=False).subscriber_file is None
    assert parses == []

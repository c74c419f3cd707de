"""``ews subscribers import|export`` and the subscriber methods: strict, all-or-nothing, opt-outs kept."""

from __future__ import annotations

import csv
import json
import logging
from datetime import timedelta
from pathlib import Path

import pytest

from ews.cli import main
from ews.contacts import recipient_id
from ews.ingest.contacts import SUBSCRIBER_COLUMNS, spreadsheet_safe
from ews.store.repository import EXPORT_COLUMNS, Store, SubscriberRecord
from ews.subscribers import read_subscriber_file

from .factories import T0, phone

HEADER = ",".join(SUBSCRIBER_COLUMNS)
V1, V2, UNKNOWN = "35.78.01.1001", "35.78.01.1002", "35.78.02.1001"


def row(number: str, village: str = V1, language: str = "id", channel: str = "sms") -> str:
    return f"{number},{village},{language},{channel},form BPBD Surabaya,2026-01-15T09:30:00+07:00"


def write_csv(path: Path, *rows: str, header: str = HEADER) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def snapshot(store: Store) -> list[dict[str, str]]:
    return store.export_subscribers()


@pytest.fixture
def seeded(store: Store) -> Store:
    """A store holding one subscriber, to show that failed imports leave the table as it was."""
    store.import_subscribers([SubscriberRecord(phone(99), V1, "id", "sms", "paper form", T0)], at=T0)
    return store


@pytest.fixture
def region_file(tmp_path: Path) -> Path:
    """A two-village region (V1, V2) with its GeoJSON boundaries."""

    def square(x: float) -> dict[str, object]:
        ring = [[x, -7.3], [x + 0.01, -7.3], [x + 0.01, -7.29], [x, -7.29], [x, -7.3]]
        return {"type": "Polygon", "coordinates": [ring]}

    features = [
        {"type": "Feature", "properties": {"kode": code, "nama": name}, "geometry": square(x)}
        for code, name, x in ((V1, "Desa Satu", 112.70), (V2, "Desa Dua", 112.72))
    ]
    (tmp_path / "villages.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    region = tmp_path / "tiny.yaml"
    region.write_text(
        'id: tiny\nname: Tiny\nprovince_code: "35"\n'
        "boundaries: {path: villages.geojson, id_field: kode, name_field: nama}\n"
    )
    return region


# -- valid imports --------------------------------------------------------------------------------------


def test_import_a_valid_file(
    store: Store,
    database_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    numbers = [phone(1), "0" + phone(2)[3:], phone(3)[1:]]  # E.164, national and 62-prefixed forms
    file = write_csv(tmp_path / "subs.csv", row(numbers[0]), row(numbers[1], V2, "en", "whatsapp"), row(numbers[2], V2))
    code, out, err = run(capsys, "subscribers", "import", str(file), "--database", database_url)
    assert code == 0, err
    assert "rows read                 3" in out
    assert "imported (new)            3" in out
    recipients = store.subscribers()
    assert {(r.phone, r.village_code, r.language, r.channel) for r in recipients} == {
        (phone(1), V1, "id", "sms"),
        (phone(2), V2, "en", "whatsapp"),
        (phone(3), V2, "id", "sms"),
    }
    assert recipients[0].recipient_id == recipient_id(recipients[0].phone)
    assert [r.phone for r in store.subscribers([V1])] == [phone(1)]
    for n in (1, 2, 3):  # never in the report nor in the logs
        assert f"{n:04d}" not in out + err + caplog.text


def test_bom_and_crlf_are_accepted(store: Store, tmp_path: Path) -> None:
    file = tmp_path / "excel.csv"
    file.write_bytes(b"\xef\xbb\xbf" + ("\r\n".join([HEADER, row(phone(1)), row(phone(2))]) + "\r\n").encode())
    parsed = read_subscriber_file(file)
    assert parsed.problems == ()
    assert [r.phone for r in parsed.records] == [phone(1), phone(2)]


def test_duplicates_are_merged(
    store: Store, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # One number written two ways, same village and channel: one subscription. Another channel is no duplicate.
    file = write_csv(tmp_path / "subs.csv", row(phone(1)), row("0" + phone(1)[3:]), row(phone(1), channel="whatsapp"))
    code, out, _ = run(capsys, "subscribers", "import", str(file), "--database", database_url)
    assert code == 0
    assert "duplicates merged         1" in out
    assert "imported (new)            2" in out
    assert len(store.subscribers()) == 2


def test_reimport_updates_and_counts(store: Store, tmp_path: Path) -> None:
    from ews.subscribers import import_subscriber_file

    file = write_csv(tmp_path / "subs.csv", row(phone(1)), row(phone(2)))
    first = import_subscriber_file(store, file)
    assert (first.imported, first.updated, first.unchanged) == (2, 0, 0)
    write_csv(file, row(phone(1)), row(phone(2), language="en"), row(phone(3)))
    second = import_subscriber_file(store, file)
    assert (second.imported, second.updated, second.unchanged) == (1, 1, 1)
    assert {r.phone: r.language for r in store.subscribers()}[phone(2)] == "en"


def test_an_import_larger_than_a_batch_writes_every_row_once(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    # New rows are written a batch at a time as they are made (memory at a million rows): 3 batches and a rest.
    import ews.store.subscribers as subscribers

    monkeypatch.setattr(subscribers, "_WRITE_CHUNK", 3)
    monkeypatch.setattr(subscribers, "_COPY_CHUNK", 3)
    rows = [SubscriberRecord(phone(n), V1, "id", "sms", "form", T0) for n in range(1, 11)]
    rows.append(SubscriberRecord(phone(4), V1, "en", "sms", "form", T0))  # a duplicate: merged, first wins
    report = store.import_subscribers(rows, at=T0)
    assert (report.imported, report.merged_duplicates) == (10, 1)
    found = store.subscribers()
    assert sorted(r.phone for r in found) == sorted(phone(n) for n in range(1, 11))
    assert {r.phone: r.language for r in found}[phone(4)] == "id"
    assert all(r.recipient_id == recipient_id(r.phone) for r in found)
    again = store.import_subscribers(rows, at=T0)
    assert (again.imported, again.unchanged) == (0, 10)


# -- rejected files: nothing written --------------------------------------------------------------------


def test_invalid_numbers_reject_the_whole_file(
    seeded: Store, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(seeded)
    bad_short, bad_text = "08999123", "not-a-number"
    file = write_csv(tmp_path / "subs.csv", row(phone(1)), row(bad_short), row(phone(2)), row(bad_text))
    code, out, err = run(capsys, "subscribers", "import", str(file), "--database", database_url)
    assert code == 2
    assert "line 3: column 'phone'" in err
    assert "line 5: column 'phone'" in err
    assert "nothing was imported" in err
    assert bad_short not in out + err
    assert bad_short[1:] not in out + err
    assert bad_text not in out + err
    assert snapshot(seeded) == before


def test_other_bad_values_are_listed_per_line(seeded: Store, tmp_path: Path) -> None:
    file = write_csv(
        tmp_path / "subs.csv",
        row(phone(1), language="jv"),
        row(phone(2), channel="telegram"),
        f"{phone(3)},{V1},id,sms,,",
        f"{phone(4)},{V1},id,sms,form,2026-01-15 09:30",
        row(phone(5), village="081234567890"),  # a number in the village column is not echoed either
    )
    parsed = read_subscriber_file(file)
    assert parsed.records == ()
    text = "\n".join(parsed.problems)
    assert "line 2: column 'language' is 'jv'" in text
    assert "line 3: column 'channel' is 'telegram'" in text
    assert "line 4: column 'consent_source' is empty" in text
    assert "line 5: column 'consent_time' needs a time zone offset" in text
    assert "line 6: column 'village_code' is not a Kemendagri code" in text
    assert "081234567890" not in text


def test_unknown_village_with_region_rejects_the_file(
    seeded: Store, database_url: str, tmp_path: Path, region_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(seeded)
    file = write_csv(tmp_path / "subs.csv", row(phone(1), V1), row(phone(2), UNKNOWN), row(phone(3), "3578011002"))
    code, _, err = run(
        capsys, "subscribers", "import", str(file), "--region", str(region_file), "--database", database_url
    )
    assert code == 2
    assert f"line 3: village code {UNKNOWN} is not in the boundaries of region tiny" in err
    assert "line 4" not in err  # 3578011002 is V2 written without dots
    assert snapshot(seeded) == before


def test_wrong_encoding_rejects_the_file(
    seeded: Store, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(seeded)
    file = tmp_path / "latin1.csv"
    text = f"{HEADER}\n{phone(1)},{V1},id,sms,formulir Désa Wonokromo,2026-01-15T09:30:00+07:00\n"
    file.write_bytes(text.encode("latin-1"))
    code, _, err = run(capsys, "subscribers", "import", str(file), "--database", database_url)
    assert code == 2
    assert str(file) in err
    assert "save it as UTF-8" in err
    assert snapshot(seeded) == before


def test_missing_columns_reject_the_file(
    seeded: Store, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(seeded)
    file = write_csv(tmp_path / "subs.csv", f"{phone(1)},{V1},id,sms", header="phone,village_code,language,channel")
    code, _, err = run(capsys, "subscribers", "import", str(file), "--database", database_url)
    assert code == 2
    assert "missing column(s) consent_source, consent_time" in err
    assert snapshot(seeded) == before


# -- opt-out --------------------------------------------------------------------------------------------


def test_opt_out_is_honoured_and_kept_on_reimport(
    store: Store, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = write_csv(tmp_path / "subs.csv", row(phone(1)), row(phone(2)))
    assert run(capsys, "subscribers", "import", str(file), "--database", database_url)[0] == 0
    assert store.opt_out("0" + phone(1)[3:], "sms STOP", T0)
    assert not store.opt_out(phone(1), "sms STOP", T0)  # already out
    assert not store.opt_out(phone(50), "sms STOP", T0)  # never subscribed
    assert [r.phone for r in store.subscribers()] == [phone(2)]
    assert len(store.subscribers(include_opted_out=True)) == 2

    # Re-importing the same file, or subscribing the number to another village, does not re-subscribe it.
    write_csv(file, row(phone(1)), row(phone(2)), row(phone(1), V2))
    code, out, _ = run(capsys, "subscribers", "import", str(file), "--database", database_url)
    assert code == 0
    assert "stay opted out            2" in out
    assert "never re-subscribes" in out
    assert [r.phone for r in store.subscribers()] == [phone(2)]
    exported = {(r["phone"], r["village_code"]): r for r in store.export_subscribers()}
    assert exported[(phone(1), V1)]["opt_out_source"] == "sms STOP"
    assert exported[(phone(1), V2)]["opted_out_at"] == T0.isoformat()


def test_opt_out_of_an_invalid_number_does_not_echo_it(store: Store) -> None:
    from ews.errors import StoreError

    with pytest.raises(StoreError, match="opt_out") as info:
        store.opt_out("12345", "sms STOP", T0)
    assert "12345" not in str(info.value)


# -- export ---------------------------------------------------------------------------------------------


def test_export_round_trips(
    store: Store, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = write_csv(tmp_path / "subs.csv", row(phone(1)), row(phone(2), V2, "en", "whatsapp"))
    assert run(capsys, "subscribers", "import", str(file), "--database", database_url)[0] == 0
    store.opt_out(phone(2), "call to BPBD", T0 + timedelta(days=1))
    out = tmp_path / "export" / "subscribers.csv"
    code, _, err = run(capsys, "subscribers", "export", "--out", str(out), "--database", database_url)
    assert code == 0
    assert "2 subscription(s)" in err
    with out.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == EXPORT_COLUMNS
    # Cells a spreadsheet would run as formulas carry a leading ' (OWASP): '+628... for every phone.
    assert rows == [{k: spreadsheet_safe(v) for k, v in r.items()} for r in store.export_subscribers()]
    assert all(r["phone"].startswith("'+62") for r in rows)

    # The export is a valid import file: into the same store it changes nothing ...
    parsed = read_subscriber_file(out)
    assert parsed.problems == ()
    again = store.import_subscribers(parsed.records)
    assert (again.imported, again.updated, again.unchanged, again.opted_out) == (0, 0, 2, 1)
    # ... and into an empty one it restores the same subscriptions, opt-out included.
    fresh = Store.from_url(f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        fresh.import_subscribers(parsed.records)
        strip = [{k: v for k, v in r.items() if k != "created_at"} for r in fresh.export_subscribers()]
        assert strip == [{k: v for k, v in r.items() if k != "created_at"} for r in store.export_subscribers()]
        assert [r.phone for r in fresh.subscribers()] == [phone(1)]
    finally:
        fresh.close()


def test_export_to_stdout(store: Store, database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "subscribers", "export", "--database", database_url)
    assert code == 0
    assert out == ",".join(EXPORT_COLUMNS) + "\n"


def test_database_from_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.setenv("EWS_DATABASE_URL", url)
    file = write_csv(tmp_path / "subs.csv", row(phone(1)))
    assert run(capsys, "subscribers", "import", str(file))[0] == 0
    store = Store.from_url(url)
    try:
        assert len(store.subscribers()) == 1
    finally:
        store.close()


def test_unreachable_database_exits_2_without_the_password(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "subscribers", "export", "--database", "postgresql://u:secret@127.0.0.1:1/x")
    assert code == 2
    assert "postgresql://u:***@127.0.0.1:1/x" in err
    assert "secret" not in out + err

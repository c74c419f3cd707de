"""Strict phone parsing, values never echoed, and the export's spreadsheet neutralisation (pure)."""

from __future__ import annotations

from pathlib import Path

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ews.contacts import can_receive_messages, looks_like_phone, normalize_phone
from ews.errors import DataValidationError
from ews.ingest.contacts import from_spreadsheet, read_subscriber_file, read_tagana, spreadsheet_safe

E164 = "+6289990000123"  # ews's fictional range


@pytest.mark.parametrize(
    "written",
    [
        "+6289990000123",
        "6289990000123",
        "089990000123",
        "0899-9000-0123",
        "0899 9000 0123",
        "0899.9000.0123",
        "(0899) 9000-0123",
        "+62 899-9000-0123",
        "(+62) 899 9000 0123",
        "  0899 9000 0123\u00a0",  # a no-break space copied from a web page
    ],
)
def test_the_usual_ways_of_writing_a_number(written: str) -> None:
    assert normalize_phone(written) == E164


@pytest.mark.parametrize(
    ("written", "reason"),
    [
        ("0899-9000-0101O", "has letters"),  # a letter O for a zero
        ("0899-9000-01l3", "has letters"),  # a letter l for a one
        ("tel:+6289990000123", "has letters"),
        ("0899-9000-0123 ext 5", "has letters"),
        ("0899-9000-01;03", "characters other than digits"),  # ";" is an extension to phonenumbers
        ("0899-9000-0123#", "characters other than digits"),
        ("0899/9000/0123", "characters other than digits"),
        ("0899 9000 0123, 0899 9000 0124", "characters other than digits"),
        ("0899+90000123", "characters other than digits"),
        ("++6289990000123", "characters other than digits"),
        ("\uff10\uff18\uff19\uff19\uff19\uff10\uff10\uff10\uff10\uff11\uff12\uff13", "characters other than digits"),
        ("", "is empty"),
        ("--", "is not a phone number"),
        ("0899900", "is not a valid number"),
        ("0899 9000 0123 0899 9000 0124", "is not a phone number"),  # two numbers run together
    ],
)
def test_anything_else_is_refused_without_repeating_it(written: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as info:
        normalize_phone(written)
    assert not any(c.isdigit() for c in str(info.value))


@pytest.mark.parametrize("written", ["0899-9000-0101O", "0899-9000-01;03"])
def test_phonenumbers_alone_would_read_another_persons_number(written: str) -> None:
    # Why normalize_phone checks the characters first: the library keeps a valid number from these.
    assert phonenumbers.is_valid_number(phonenumbers.parse(written, "ID"))


def test_landlines_cannot_receive_alerts() -> None:
    assert can_receive_messages(E164)
    # A village code typed into the phone column reads as a valid Surabaya landline.
    assert not can_receive_messages(normalize_phone("35.78.01.1001"))


@pytest.mark.parametrize(
    ("text", "phone_like"),
    [
        ("0899-9000-0123", True),
        ("+62 899 9000 0123", True),
        ("62.89.99", False),  # too short for a mobile number
        ("62.81.23.4567", True),
        ("35.78.01.1001", False),
        ("3578011001", False),
        ("Wonocolo", False),
    ],
)
def test_looks_like_phone(text: str, phone_like: bool) -> None:
    assert looks_like_phone(text) is phone_like


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ("+6289990000123", "'+6289990000123"),
        ('=HYPERLINK("http://example.invalid")', '\'=HYPERLINK("http://example.invalid")'),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("-1+2", "'-1+2"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("'=1", "''=1"),  # already quoted text keeps its own quote through export and import
        ("''", "'''"),
        ("formulir BPBD", "formulir BPBD"),
        ("'kutipan", "'kutipan"),
        ("35.78.01.1001", "35.78.01.1001"),
        ("2026-01-15T02:30:00+00:00", "2026-01-15T02:30:00+00:00"),
        ("", ""),
    ],
)
def test_spreadsheet_neutralisation(cell: str, written: str) -> None:
    assert spreadsheet_safe(cell) == written
    assert from_spreadsheet(written) == cell


@given(st.text(max_size=12))
def test_neutralisation_round_trips_any_text(cell: str) -> None:
    written = spreadsheet_safe(cell)
    assert not written.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert from_spreadsheet(written) == cell


def write(path: Path, header: str, *rows: str) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


SUBS = "phone,village_code,language,channel,consent_source,consent_time"
TAGANA = "unit_id,name,kabkota_code,kecamatan_codes,coordinator,phone,channel"
CONSENT = "form,2026-01-15T09:30:00+07:00"


def test_every_bad_line_is_reported_and_nothing_kept(tmp_path: Path) -> None:
    path = write(
        tmp_path / "subs.csv",
        SUBS,
        f"'+6289990000123,35.78.01.1001,id,sms,{CONSENT}",  # the export's quote: fine
        f"0899-9000-0101O,35.78.01.1001,id,sms,{CONSENT}",
        ",,,,,",  # an empty spreadsheet row: skipped
        f"35.78.01.1001,0899-9000-0124,id,sms,{CONSENT}",
        f"0899-9000-0125,35.78.01.1001,id,sms,{CONSENT},extra",
        f"0899-9000-0126,6281234567,id,sms,{CONSENT}",  # reads as code 62.81.23.4567 (province 62)
    )
    parsed = read_subscriber_file(path, village_codes={"35.78.01.1001"}, region_name="jawa-timur")
    assert [r.phone for r in parsed.records] == [E164]
    assert parsed.rows_read == 5
    assert parsed.problems == (
        "line 3: column 'phone' has letters (an O for a zero?); write the number in digits",
        "line 5: column 'phone' is a landline number: SMS and WhatsApp need a mobile number (08…); "
        "column 'village_code' is not a Kemendagri code (e.g. 35.78.01.1001)",
        "line 6: more fields than the header has columns (a ',' inside a value?)",
        "line 7: column 'village_code' looks like a phone number (not shown), not a Kemendagri code",
    )


def test_tagana_errors_name_every_line(tmp_path: Path) -> None:
    path = write(
        tmp_path / "tagana.csv",
        TAGANA,
        "TGN-3578,Tagana Kota Surabaya,35.78,35.78.01;35.78.02,Koordinator,0899-9000-0127,whatsapp",
        ",Tagana Tanpa Id,35.78,,Koordinator,,sms",
        "TGN-3578-9,Tagana,35.78.01,,Koordinator,,sms",
        "TGN-3578-8,Tagana,35.78,0899 9000 0128,Koordinator,,sms",
    )
    message = (
        rf"{path}: 3 bad lines in this tagana file, nothing was read from it: fix them and run again\n"
        rf"{path}: line 3: column 'unit_id' is empty.*\n"
        rf"{path}: line 4: column 'kabkota_code' is not a kab/kota code \(e\.g\. 35\.78\)\n"
        rf"{path}: line 5: column 'kecamatan_codes' holds a value that is not a kecamatan code"
    )
    with pytest.raises(DataValidationError, match=message) as info:
        read_tagana(path)
    assert "0128" not in str(info.value)


def test_a_file_without_its_header_names_the_columns_not_the_first_line(tmp_path: Path) -> None:
    path = write(tmp_path / "subs.csv", f"0899-9000-0129,35.78.01.1001,id,sms,{CONSENT}")
    with pytest.raises(DataValidationError, match=r"subs\.csv: missing column\(s\) phone, village_code") as info:
        read_subscriber_file(path)
    assert "0129" not in str(info.value)

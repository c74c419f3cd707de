"""Phone numbers in the wrong place: every contact file, read by any command, never echoes one.

Each test feeds a contact file as a careless user would fill it in (a number in the village column,
a letter O for a zero, two numbers in one cell) and checks: the exit code, one line per bad line naming
the file, the line and the column, nothing imported or published, and no full number anywhere (the
``ews_cli`` fixture checks stdout, stderr and the log; :func:`assert_no_written_phone` the files).
Only fictional numbers (+62 8999 00xx xxxx) are used.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from tests_support import minimal_cap

from ews.store.repository import Store

from .conftest import SURABAYA_BOX, CliResult, assert_no_phone, write_region

RunCli = Callable[..., CliResult]
AT = "2026-11-28T18:00:00+07:00"  # the CAP of minimal_cap is in force 17:00-20:00 WIB
CONSENT = ("form BPBD Surabaya", "2026-01-15T09:30:00+07:00")
V1, V2 = "35.78.01.1001", "35.78.01.1002"  # Karang Pilang, Kebraon (Kota Surabaya)
GOOD = ("+6289990000123", V1, "id", "sms", *CONSENT)
# phonenumbers reads "0899-9000-0101O" (letter O) as +6289990000101, a valid number: another person's.
LETTER_O, LETTER_O_READ_AS = "0899-9000-0101O", "+6289990000101"


def run_argv(folder: Path, region: Path) -> list[str | Path]:
    cap = folder / "cap.xml"
    cap.write_bytes(minimal_cap(SURABAYA_BOX))
    return [
        "run", "--region", region, "--cap", cap, "--out", folder / "out", "--database", database(folder),
        "--outbox", folder / "outbox.jsonl", "--at", AT, "-q",
    ]  # fmt: skip


def database(folder: Path) -> str:
    return f"sqlite:///{folder / 'ews.db'}"


def subscriptions(folder: Path) -> list[dict[str, str]]:
    store = Store.from_url(database(folder))
    try:
        return store.export_subscribers()
    finally:
        store.close()


def assert_no_written_phone(folder: Path, *inputs: Path) -> None:
    """No full number in any file ews wrote under ``folder`` (the database included), inputs aside."""
    for path in folder.rglob("*"):
        if path.is_file() and path not in inputs:
            assert_no_phone(path.read_bytes().decode("utf-8", errors="replace"))


def test_run_lists_every_bad_subscriber_line_and_imports_nothing(
    ews_cli: RunCli, shared_data: Path, tmp_path: Path
) -> None:
    region = write_region(
        tmp_path,
        shared_data,
        subscribers=[
            GOOD,
            (V1, "0899-9000-0124", "id", "sms", *CONSENT),  # columns swapped: the number in village_code
            (LETTER_O, V1, "id", "sms", *CONSENT),
            ("0899-9000-01;03", V2, "id", "sms", *CONSENT),  # an extension: read as +62899900001 ext. 03
            ("+6289990000125", V2, "0899-9000-0126", "sms", *CONSENT),  # a number in the language column
        ],
    )
    subs = tmp_path / "subscribers.csv"
    # GOOD was imported before the file was edited badly: the run must still warn that resident.
    earlier = tmp_path / "earlier.csv"
    earlier.write_text(
        "phone,village_code,language,channel,consent_source,consent_time\n" + ",".join(GOOD) + "\n", encoding="utf-8"
    )
    assert ews_cli("subscribers", "import", earlier, "--database", database(tmp_path)).code == 0
    result = ews_cli(*run_argv(tmp_path, region))
    assert result.code == 1  # finished, degraded: the bad file is not used, the warning still goes out
    assert "4 bad lines" in result.line_with(str(subs), "nothing was read")
    result.line_with("DEGRADED: subscribers file not imported", str(subs))
    result.line_with(str(subs), "line 3:", "column 'village_code' is not a Kemendagri code")
    result.line_with(str(subs), "line 4:", "column 'phone' has letters")
    result.line_with(str(subs), "line 5:", "column 'phone' has characters other than digits")
    result.line_with(str(subs), "line 6:", "column 'language'", "not shown")
    assert "line 2:" not in result.err  # the good line
    assert [r["phone"] for r in subscriptions(tmp_path)] == [GOOD[0]]  # nothing of the bad file imported
    assert (tmp_path / "out" / "report.json").exists()  # the run's other outputs were published
    assert list((tmp_path / "out" / "cap").glob("*.xml"))
    sent = [json.loads(x) for x in (tmp_path / "outbox.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [m["to"] for m in sent if m["audience"] == "resident"] == ["+62899*****123"]
    assert_no_written_phone(tmp_path, subs, earlier, tmp_path / "ews.db")  # the store holds the imported number


def test_run_lists_bad_tagana_lines_and_imports_no_contact(ews_cli: RunCli, shared_data: Path, tmp_path: Path) -> None:
    region = write_region(
        tmp_path,
        shared_data,
        subscribers=[GOOD],
        tagana=[
            ("TGN-3578", "Tagana Kota Surabaya", "35.78", "", "Koordinator", "0899-9000-0127", "whatsapp"),
            ("TGN-3578", "Tagana Kota Surabaya", "35.78", "", "Wakil", "0899 9000 01O8", "sms"),
            ("TGN-3578-01", "Tagana Karang Pilang", "0899-9000-0129", "35.78.01", "Koordinator", "", "whatsapp"),
            ("TGN-3578-02", "Tagana Gayungan", "35.78", "35.15.01", "Koordinator", "", "telegram"),
        ],
    )
    tagana = tmp_path / "tagana.csv"
    result = ews_cli(*run_argv(tmp_path, region))
    assert result.code == 1
    result.line_with("DEGRADED: tagana file not used", str(tagana))
    result.line_with(str(tagana), "3 bad lines", "tagana")
    result.line_with(str(tagana), "line 3:", "column 'phone' has letters")
    result.line_with(str(tagana), "line 4:", "column 'kabkota_code' is not a kab/kota code")
    line = result.line_with(str(tagana), "line 5:", "kecamatan 35.78.01 is not in kab/kota 35.78".replace(
        "35.78.01", "35.15.01"))  # fmt: skip
    assert "column 'channel' is 'telegram'" in line
    assert (tmp_path / "out" / "report.json").exists()
    assert [r["phone"] for r in subscriptions(tmp_path)] == [GOOD[0]]  # the subscribers file was fine
    sent = [json.loads(x) for x in (tmp_path / "outbox.jsonl").read_text(encoding="utf-8").splitlines()]
    assert all(m["to"] is None for m in sent if m["audience"] == "tagana")  # no contact from the refused file
    assert_no_written_phone(tmp_path, tagana, tmp_path / "subscribers.csv", tmp_path / "ews.db")


def test_run_checks_the_exercise_list_the_same_way(ews_cli: RunCli, shared_data: Path, tmp_path: Path) -> None:
    staff = tmp_path / "staff.csv"
    staff.write_text(
        "phone,village_code,language,channel,consent_source,consent_time\n"
        f"0899 9000 0130 / 0899 9000 0131,{V1},id,sms,{','.join(CONSENT)}\n",  # two numbers in one cell
        encoding="utf-8",
    )
    region = write_region(tmp_path, shared_data, subscribers=[GOOD], extra=f"exercise_list: {staff}\n")
    result = ews_cli(*run_argv(tmp_path, region))
    assert result.code == 1
    result.line_with("DEGRADED: exercise_list file not used", str(staff))
    line = result.line_with(str(staff), "line 2:", "column 'phone'", "exercise_list")
    assert "nothing was read" in line
    assert (tmp_path / "out" / "report.json").exists()
    assert [r["phone"] for r in subscriptions(tmp_path)] == [GOOD[0]]
    assert_no_written_phone(tmp_path, staff, tmp_path / "subscribers.csv", tmp_path / "ews.db")


def test_import_lists_every_bad_line_by_file_and_imports_nothing(ews_cli: RunCli, tmp_path: Path) -> None:
    subs = tmp_path / "subs.csv"
    with subs.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["phone", "village_code", "language", "channel", "consent_source", "consent_time"])
        writer.writerow(GOOD)
        writer.writerow([LETTER_O, V1, "id", "sms", *CONSENT])
        writer.writerow(["+62 8999 0000 0132", "0899.9000.0133", "id", "sms", *CONSENT])
        writer.writerow(["+6289990000134", V1, "id", "0899-9000-0135", *CONSENT])
    result = ews_cli("subscribers", "import", subs, "--database", database(tmp_path))
    assert result.code == 2
    result.line_with(str(subs), "line 3:", "column 'phone' has letters")
    result.line_with(str(subs), "line 4:", "column 'village_code'")
    result.line_with(str(subs), "line 5:", "column 'channel'", "not shown")
    assert "nothing was imported" in result.err
    assert subscriptions(tmp_path) == []
    assert_no_written_phone(tmp_path, subs)


def test_opt_out_of_a_mistyped_number_opts_nobody_out(ews_cli: RunCli, tmp_path: Path) -> None:
    subs = tmp_path / "subs.csv"
    subs.write_text(
        "phone,village_code,language,channel,consent_source,consent_time\n"
        f"{LETTER_O_READ_AS},{V1},id,sms,{','.join(CONSENT)}\n",
        encoding="utf-8",
    )
    assert ews_cli("subscribers", "import", subs, "--database", database(tmp_path)).code == 0
    stop = tmp_path / "stop.txt"
    stop.write_text(f"{LETTER_O}\n0899-9000-01;01\n", encoding="utf-8")
    result = ews_cli("subscribers", "opt-out", stop, "--source", "call to BPBD", "--database", database(tmp_path))
    assert result.code == 1
    assert "0 number(s) opted out" in result.out
    result.line_with("not a valid number on line(s) 1, 2", "nothing recorded")
    # The resident whose number the typo would have become still hears the warnings.
    assert [r["opted_out_at"] for r in subscriptions(tmp_path)] == [""]


def test_export_neutralises_formulas_and_imports_back_unchanged(ews_cli: RunCli, tmp_path: Path) -> None:
    subs = tmp_path / "subs.csv"
    with subs.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["phone", "village_code", "language", "channel", "consent_source", "consent_time"])
        writer.writerow(["+6289990000140", V1, "id", "sms", '=HYPERLINK("http://example.invalid","klik")', CONSENT[1]])
        writer.writerow(["0899-9000-0141", V1, "en", "whatsapp", "@SUM(1+1)", CONSENT[1]])
        writer.writerow(["62 899 9000 0142", V2, "id", "sms", "-1+2", CONSENT[1]])
        writer.writerow(["(+62) 899 9000 0143", V2, "id", "sms", "+formulir", CONSENT[1]])
    assert ews_cli("subscribers", "import", subs, "--database", database(tmp_path)).code == 0
    export = tmp_path / "export" / "subscribers.csv"
    result = ews_cli("subscribers", "export", "--out", export, "--database", database(tmp_path))
    assert result.code == 0
    assert "4 subscription(s)" in result.line_with(str(export))
    with export.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    cells = [cell for row in rows for cell in row.values() if cell]
    assert not [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))]  # nothing a spreadsheet runs
    assert sorted(r["phone"] for r in rows) == [f"'+628999000014{n}" for n in range(4)]
    assert {r["consent_source"] for r in rows} == {
        '\'=HYPERLINK("http://example.invalid","klik")',
        "'@SUM(1+1)",
        "'-1+2",
        "'+formulir",
    }

    # Into a fresh store, the export restores exactly what was there: the quotes are removed on import.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    again = ews_cli("subscribers", "import", export, "--database", database(fresh))
    assert again.code == 0
    assert "imported (new)            4" in again.out

    def strip(rows: list[dict[str, str]]) -> list[dict[str, str]]:
        return [{k: v for k, v in r.items() if k != "created_at"} for r in rows]

    assert strip(subscriptions(fresh)) == strip(subscriptions(tmp_path))
    assert {r["consent_source"] for r in subscriptions(fresh)} == {
        '=HYPERLINK("http://example.invalid","klik")',
        "@SUM(1+1)",
        "-1+2",
        "+formulir",
    }


def test_export_to_stdout_is_neutralised_too(
    ews_cli: RunCli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    subs = tmp_path / "subs.csv"
    subs.write_text(
        "phone,village_code,language,channel,consent_source,consent_time\n"
        f"+6289990000150,{V1},id,sms,=1+1,{CONSENT[1]}\n",
        encoding="utf-8",
    )
    assert ews_cli("subscribers", "import", subs, "--database", database(tmp_path)).code == 0
    # ews_cli refuses full numbers on stdout, and the export prints them by design: call main directly.
    from ews.cli import main

    capsys.readouterr()
    assert main(["subscribers", "export", "--database", database(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1].startswith("'+6289990000150,35.78.01.1001,id,sms,'=1+1,")


def test_the_dag_steps_use_the_same_validator(shared_data: Path, tmp_path: Path) -> None:
    # The DAG's assess and publish tasks read the region through open_region_data, as ews run does.
    from ews.config import open_region
    from ews.pipeline import open_region_data

    region = write_region(tmp_path, shared_data, subscribers=[(LETTER_O, V1, "id", "sms", *CONSENT)])
    data = open_region_data(open_region(region, {}))
    (problem,) = data.problems
    assert problem["message"].startswith("DEGRADED: subscribers file not imported")
    assert re.search(r"subscribers\.csv: line 2: column 'phone' has letters", problem["message"])
    assert data.subscriber_file is None
    assert data.refused(tmp_path / "subscribers.csv")
    assert_no_phone(json.dumps(data.problems))


def test_a_run_on_good_contacts_written_by_hand_or_by_the_export(
    ews_cli: RunCli, shared_data: Path, tmp_path: Path
) -> None:
    region = write_region(
        tmp_path,
        shared_data,
        subscribers=[
            ("'+6289990000160", V1, "id", "sms", *CONSENT),  # as ews subscribers export writes it
            ("(+62) 899-9000-0161", "35.78.01.1003", "en", "whatsapp", *CONSENT),
        ],
        tagana=[("TGN-3578", "Tagana Kota Surabaya", "35.78", "", "Koordinator", "0899.9000.0162", "whatsapp")],
    )
    result = ews_cli(*run_argv(tmp_path, region))
    assert result.code == 0, result.err
    assert sorted(r["phone"] for r in subscriptions(tmp_path)) == ["+6289990000160", "+6289990000161"]
    assert (tmp_path / "out" / "report.json").exists()
    # The outbox and the report show masked numbers only (the maps hold coordinates the pattern would mistake).
    outbox = (tmp_path / "outbox.jsonl").read_text(encoding="utf-8")
    assert "+62899*****160" in outbox
    assert_no_phone(outbox, (tmp_path / "out" / "report.json").read_text(encoding="utf-8"))


def test_a_subscriber_outside_the_region_is_named_by_village_not_number(
    ews_cli: RunCli, shared_data: Path, tmp_path: Path
) -> None:
    sidoarjo = ("+6289990000170", "35.15.01.2001", "id", "sms", *CONSENT)  # a village of another kab/kota
    region = write_region(tmp_path, shared_data, subscribers=[GOOD, sidoarjo])
    result = ews_cli(*run_argv(tmp_path, region))
    assert result.code == 0
    result.line_with("subscribers in 1 village(s) outside this region's boundaries", "35.15.01.2001")


def test_opt_out_file_that_is_not_utf8_is_refused_by_name(ews_cli: RunCli, tmp_path: Path) -> None:
    stop = tmp_path / "stop-list.txt"
    stop.write_bytes("0899-9000-0123 \u2013 Bu S\u00e9ti\n".encode("cp1252"))
    result = ews_cli("subscribers", "opt-out", stop, "--source", "call to BPBD", "--database", database(tmp_path))
    assert result.code == 2
    assert "save it as UTF-8" in result.line_with(str(stop), "not UTF-8")


def test_a_database_error_never_repeats_the_statement_s_values(tmp_path: Path) -> None:
    """A statement's bound values (a phone number among them) stay out of SQLAlchemy's error text."""
    import sqlalchemy as sa

    store = Store.from_url(f"sqlite:///{tmp_path / 'ews.db'}")
    try:
        with pytest.raises(sa.exc.DBAPIError) as caught, store.engine.connect() as connection:
            connection.execute(sa.text("INSERT INTO no_such_table VALUES (:phone)"), {"phone": "+6281234567890"})
    finally:
        store.close()
    assert "6281234567890" not in str(caught.value)
    assert "SQL parameters hidden" in str(caught.value)

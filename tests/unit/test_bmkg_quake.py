"""BMKG earthquake feeds: real autogempa/gempaterkini/gempadirasakan files and every kind of bad input."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from tests_support import FLORES

from ews.errors import DataValidationError, FetchError, QuakeError
from ews.ingest.bmkg_quake import parse_quakes, read_coastal_codes, read_quakes

TSUNAMI_FEED = "arraysyams_gempaterkini_2021-12-14_tsunami-potential.json"
FLORES_ID = "20211214T032023Z_7.59S_122.24E"


@pytest.fixture(scope="module")
def gempa_dir(shared_data: Path) -> Path:
    return shared_data / "bmkg" / "gempa"


def feed(*records: dict[str, str], single: bool = False) -> bytes:
    """A BMKG gempa JSON feed: autogempa shape (one record) or gempaterkini shape (a list)."""
    gempa: object = records[0] if single else list(records)
    return json.dumps({"Infogempa": {"gempa": gempa}}).encode()


def to_xml(record: dict[str, str]) -> bytes:
    """The autogempa.xml shape of a JSON record: Coordinates become <point><coordinates>."""
    parts = []
    for key, value in record.items():
        if key == "Coordinates":
            parts.append(f"<point><coordinates>{escape(value)}</coordinates></point>")
        else:
            parts.append(f"<{key}>{escape(value)}</{key}>")
    return f'<?xml version="1.0"?><Infogempa><gempa>{"".join(parts)}</gempa></Infogempa>'.encode()


def with_(**changes: str | None) -> dict[str, str]:
    record = {**FLORES, **changes}
    return {k: v for k, v in record.items() if v is not None}


# -- the real feeds ----------------------------------------------------------------------------------


def test_every_real_feed_parses(gempa_dir: Path) -> None:
    files = sorted(gempa_dir.iterdir())
    assert len(files) == 8
    for file in files:
        quakes = parse_quakes(file.read_bytes(), file.name)
        assert quakes, file.name
        for q in quakes:
            assert q.time.utcoffset() is not None
            assert q.time.utcoffset().total_seconds() == 0
            assert -11.5 < q.lat < 6.5
            assert 94 < q.lon < 141.5
            assert 0 < q.magnitude < 10
            assert q.depth_km >= 0
            assert q.source == file.name


def test_flores_m74_collapses_to_one_event_with_tsunami_potential(gempa_dir: Path) -> None:
    quakes = parse_quakes((gempa_dir / TSUNAMI_FEED).read_bytes(), TSUNAMI_FEED)
    # 15 records; the M7.4 event is listed three times -> 13 distinct events.
    assert len(quakes) == 13
    flores = [q for q in quakes if q.event_id == FLORES_ID]
    assert len(flores) == 1
    q = flores[0]
    assert q.time == datetime(2021, 12, 14, 3, 20, 23, tzinfo=UTC)
    assert (q.lat, q.lon, q.magnitude, q.depth_km) == (-7.59, 122.24, 7.4, 10.0)
    assert q.tsunami is True
    assert q.potensi == "Potensi tsunami untuk diteruskan pada masyarakat"
    assert q.region == "113 km BaratLaut LARANTUKA-NTT"
    assert q.felt is None
    # BMKG's first solution (M7.5, 1 s earlier, 12 km) is another id, kept and flagged as a likely revision.
    first = next(x for x in quakes if x.event_id == "20211214T032022Z_7.59S_122.26E")
    assert first.tsunami is True
    assert any(FLORES_ID in note for note in first.notes)
    assert all(not x.tsunami for x in quakes if x.magnitude < 7)
    # Oldest first.
    assert [x.time for x in quakes] == sorted(x.time for x in quakes)


def test_event_id_is_stable_across_feeds_and_resends(gempa_dir: Path) -> None:
    terkini = parse_quakes((gempa_dir / TSUNAMI_FEED).read_bytes(), TSUNAMI_FEED)
    auto = parse_quakes(feed(with_(Dirasakan="V Larantuka", Shakemap="20211214102023.mmi.jpg"), single=True), "auto")
    xml = parse_quakes(to_xml(FLORES), "autogempa.xml")
    assert [q.event_id for q in auto] == [q.event_id for q in xml] == [FLORES_ID]
    assert FLORES_ID in {q.event_id for q in terkini}
    assert auto[0].felt == "V Larantuka"
    assert auto[0].shakemap == "20211214102023.mmi.jpg"


def test_autogempa_json_and_xml_give_the_same_event(gempa_dir: Path) -> None:
    # The real XML (Poso 2022) and its JSON twin, and the real JSON (Sumedang 2024) and its XML twin.
    xml_file = gempa_dir / "alfanalfarisy_autogempa_2022-08-22.xml"
    from_xml = parse_quakes(xml_file.read_bytes(), "x")
    record = {
        "Tanggal": "22 Agu 2022", "Jam": "19:08:45 WIB", "DateTime": "2022-08-22T12:08:45+00:00",
        "Coordinates": "-1.85,120.88", "Lintang": "1.85 LS", "Bujur": "120.88 BT", "Magnitude": "4.2",
        "Kedalaman": "5 km", "Wilayah": "Pusat gempa berada di darat 8 km TimurLaut Poso",
        "Potensi": "Gempa ini dirasakan untuk diteruskan pada masyarakat", "Dirasakan": "II - III Tomata",
        "Shakemap": "20220822190845.mmi.jpg",
    }  # fmt: skip
    assert from_xml == parse_quakes(feed(record, single=True), "x")
    q = from_xml[0]
    assert (q.event_id, q.magnitude, q.depth_km, q.tsunami, q.notes) == (
        "20220822T120845Z_1.85S_120.88E",
        4.2,
        5.0,
        False,
        (),
    )
    json_file = gempa_dir / "aldii-ls_autogempa_2024-01-10.json"
    sumedang = json.loads(json_file.read_bytes())["Infogempa"]["gempa"]
    assert parse_quakes(json_file.read_bytes(), "s") == parse_quakes(to_xml(sumedang), "s")


def test_gempadirasakan_has_no_potensi_and_says_so(gempa_dir: Path) -> None:
    quakes = parse_quakes((gempa_dir / "siaga_gempadirasakan_2026-09-24_first2of15.json").read_bytes(), "d")
    assert len(quakes) == 2
    assert all(q.potensi is None and not q.tsunami for q in quakes)
    assert all("no Potensi" in q.notes[0] for q in quakes)
    assert quakes[1].felt == "II - III Kab. Manggarai"


def test_read_quakes_folder_merges_and_dedupes(gempa_dir: Path) -> None:
    quakes = read_quakes(str(gempa_dir))
    ids = [q.event_id for q in quakes]
    # + 27: the disaster-season gempadirasakan and gempaterkini of Sep 2026 (30 events, 3 in both feeds).
    assert len(ids) == len(set(ids)) == 13 + 15 + 1 + 1 + 1 + 2 + 27
    assert FLORES_ID in ids


def test_read_quakes_bmkg_over_loopback(tmp_path: Path, gempa_dir: Path, serve_dir: object) -> None:
    site = tmp_path / "DataMKG" / "TEWS"
    site.mkdir(parents=True)
    shutil.copy(gempa_dir / "siaga_autogempa_2026-09-24.json", site / "autogempa.json")
    shutil.copy(gempa_dir / TSUNAMI_FEED, site / "gempaterkini.json")
    shutil.copy(gempa_dir / "siaga_gempadirasakan_2026-09-24_first2of15.json", site / "gempadirasakan.json")
    base = serve_dir(tmp_path) + "/DataMKG/TEWS"  # type: ignore[operator]
    quakes = read_quakes("bmkg", base_url=base)
    assert len(quakes) == 1 + 13 + 2
    assert [q.event_id for q in quakes] == [q.event_id for q in read_quakes(str(site))]
    assert any(q.source.endswith("/gempaterkini.json") and q.event_id == FLORES_ID for q in quakes)
    one = read_quakes(base + "/autogempa.json")
    assert [q.magnitude for q in one] == [1.8]
    (site / "gempadirasakan.json").unlink()
    with pytest.raises(FetchError, match=r"gempadirasakan\.json: HTTP 404"):
        read_quakes("bmkg", base_url=base)


def test_resend_with_felt_report_merges_into_one_event(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_bytes(feed(FLORES))
    (tmp_path / "b.json").write_bytes(feed(with_(Dirasakan="IV Maumere"), single=True))
    quakes = read_quakes(str(tmp_path))
    assert len(quakes) == 1
    assert quakes[0].felt == "IV Maumere"
    assert quakes[0].tsunami is True


# -- fields --------------------------------------------------------------------------------------------


def test_lintang_bujur_alone_and_northern_hemisphere() -> None:
    [q] = parse_quakes(feed(with_(Coordinates=None, Lintang="3.99 LU", Bujur="128.00 BT")), "f")
    assert (q.lat, q.lon) == (3.99, 128.0)
    [q] = parse_quakes(feed(with_(Lintang=None, Bujur=None)), "f")
    assert (q.lat, q.lon) == (-7.59, 122.24)


def test_tanggal_jam_used_when_datetime_missing() -> None:
    [q] = parse_quakes(feed(with_(DateTime=None, Tanggal="14 Des 2021", Jam="11:20:23 WITA")), "f")
    assert q.time == datetime(2021, 12, 14, 3, 20, 23, tzinfo=UTC)


def test_potensi_texts() -> None:
    [q] = parse_quakes(feed(with_(Potensi="Tidak berpotensi tsunami")), "f")
    assert (q.tsunami, q.notes) == (False, ())
    [q] = parse_quakes(feed(with_(Potensi="Berpotensi tsunami")), "f")
    assert q.tsunami is True
    [q] = parse_quakes(feed(with_(Potensi="Hati-hati gempa susulan")), "f")
    assert q.tsunami is False
    assert "unknown Potensi text 'Hati-hati gempa susulan'" in q.notes[0]


def test_duplicate_that_disagrees_is_noted() -> None:
    quakes = parse_quakes(feed(FLORES, with_(Magnitude="7.3")), "f")
    assert len(quakes) == 1
    assert quakes[0].magnitude == 7.4
    assert "repeats this event as M7.3" in quakes[0].notes[0]


# -- malformed feeds -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", r"f\.json: empty feed"),
        (b'{"Infogempa": {"gempa": [', r"f\.json: not valid JSON \(line 1"),
        (b'{"Infogempa": {}}', r"f\.json: field Infogempa\.gempa is missing"),
        (b"[1, 2]", r"f\.json: field Infogempa\.gempa is missing"),
        (b'{"Infogempa": {"gempa": ["x"]}}', r"f\.json: record 0: is a str"),
        (feed(FLORES, with_(Magnitude=None)), r"f\.json: record 1: field Magnitude is missing"),
        (feed(with_(Magnitude="besar")), r"f\.json: record 0: field Magnitude 'besar' is not a number"),
        (feed(with_(Magnitude="NaN")), r"record 0: field Magnitude 'NaN' is not a finite number"),
        (
            feed(with_(Kedalaman="dangkal")),
            r"record 0: field Kedalaman 'dangkal' does not parse; expected e\.g\. '10 km'",
        ),
        (feed(with_(Kedalaman=None)), r"record 0: field Kedalaman is missing"),
        (feed(with_(Coordinates="-7.59;122.24")), r"record 0: field Coordinates '-7\.59;122\.24' does not parse"),
        (feed(with_(Coordinates="-7.59,abc")), r"record 0: field Coordinates 'abc' is not a number"),
        (feed(with_(Coordinates="7.59,122.24")), r"record 0: field Coordinates '7\.59,122\.24' disagrees with Lintang"),
        (feed(with_(Coordinates=None, Lintang="7.59 XX")), r"record 0: field Lintang '7\.59 XX' does not parse"),
        (feed(with_(Coordinates=None, Lintang=None)), r"record 0: field Coordinates is missing"),
        (feed(with_(Coordinates="-97.59,122.24", Lintang=None)), r"record 0: field Coordinates .* is outside"),
        (feed(with_(DateTime="14/12/2021 03:20")), r"record 0: field DateTime '14/12/2021 03:20' is not ISO 8601"),
        (feed(with_(DateTime="2021-12-14T03:20:23")), r"record 0: field DateTime .* has no UTC offset"),
        (feed(with_(DateTime="2021-12-14T04:20:23+00:00")), r"record 0: field DateTime .* disagrees with Tanggal/Jam"),
        (feed(with_(Jam="10.20 WIB")), r"record 0: field Jam '10\.20 WIB' is not a time"),
        (feed(with_(Tanggal="14 Xyz 2021")), r"record 0: field Tanggal '14 Xyz 2021' is not a date"),
        (feed(with_(DateTime=None, Tanggal=None)), r"record 0: field DateTime is missing"),
        (b"<Infogempa><gempa><Magnitude>5</Magnitude>", r"f\.json: not well-formed XML"),
        (b"<rss></rss>", r"f\.json: root element is <rss>; expected <Infogempa>"),
        (b"<Infogempa></Infogempa>", r"f\.json: field gempa is missing"),
    ],
)
def test_malformed_feeds_name_file_record_and_field(data: bytes, match: str) -> None:
    with pytest.raises(QuakeError, match=match):
        parse_quakes(data, "f.json")


def test_xxe_and_entity_expansion_are_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("-7.59,122.24")
    xxe = (
        f'<?xml version="1.0"?><!DOCTYPE Infogempa [<!ENTITY xxe SYSTEM "file://{secret}">]>'
        "<Infogempa><gempa><point><coordinates>&xxe;</coordinates></point></gempa></Infogempa>"
    ).encode()
    with pytest.raises(QuakeError, match=r"autogempa\.xml: refused: contains a DTD"):
        parse_quakes(xxe, "autogempa.xml")
    bomb = b'<!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><Infogempa><gempa>&b;</gempa></Infogempa>'
    with pytest.raises(QuakeError, match="refused"):
        parse_quakes(bomb, "autogempa.xml")


def test_read_quakes_bad_sources(tmp_path: Path) -> None:
    with pytest.raises(QuakeError, match="no such file or folder, and not an http"):
        read_quakes(str(tmp_path / "missing.json"))
    with pytest.raises(QuakeError, match="folder holds no gempa feed"):
        read_quakes(str(tmp_path))
    (tmp_path / "bad.json").write_bytes(b"{")
    with pytest.raises(QuakeError, match=r"bad\.json: not valid JSON"):
        read_quakes(str(tmp_path))


# -- coastal CSV ---------------------------------------------------------------------------------------


def test_read_coastal_codes(tmp_path: Path) -> None:
    good = tmp_path / "coastal.csv"
    good.write_text("code,name\n35.78.01.1001,Sukomanunggal\n3578011002,X\n,\n", encoding="utf-8")
    assert read_coastal_codes(good) == {"35.78.01.1001", "35.78.01.1002"}
    no_code = tmp_path / "nocode.csv"
    no_code.write_text("kode,nama\n35.78.01.1001,Sukomanunggal\n", encoding="utf-8")
    with pytest.raises(
        DataValidationError, match=r"nocode\.csv: coastal villages CSV has no 'code' column \(columns: kode, nama\)"
    ):
        read_coastal_codes(no_code)
    bad = tmp_path / "bad.csv"
    bad.write_text("code\nnot-a-code\n", encoding="utf-8")
    with pytest.raises(DataValidationError, match=r"bad\.csv: row 2: column code"):
        read_coastal_codes(bad)
    with pytest.raises(DataValidationError, match="cannot read the coastal villages CSV"):
        read_coastal_codes(tmp_path / "missing.csv")


def test_one_bad_record_does_not_hide_the_other_events_when_problems_are_collected() -> None:
    data = feed(FLORES, with_(Magnitude="besar"))
    with pytest.raises(QuakeError, match="record 1"):
        parse_quakes(data, "gempaterkini.json")  # strict by default
    problems: list[str] = []
    events = parse_quakes(data, "gempaterkini.json", problems)
    assert [e.event_id for e in events] == [FLORES_ID]
    assert len(problems) == 1
    assert "record 1" in problems[0]
    assert "Magnitude" in problems[0]
    # Every record bad: the feed is unusable, it raises even when collecting.
    with pytest.raises(QuakeError):
        parse_quakes(feed(with_(Magnitude="besar")), "gempaterkini.json", [])


def test_one_unreadable_feed_in_a_folder_skips_only_itself(tmp_path: Path, gempa_dir: Path) -> None:
    good = gempa_dir / "muhk01_gempaterkini_2023-07-12.json"
    (tmp_path / "a_good.json").write_bytes(good.read_bytes())
    (tmp_path / "b_nested.json").write_text("[" * 100_000 + "]" * 100_000)
    problems: list[str] = []
    quakes = read_quakes(str(tmp_path), problems=problems)
    assert len(quakes) == len(read_quakes(str(good)))
    (problem,) = problems
    assert "b_nested.json" in problem
    assert "feed skipped, the folder's other feeds are read" in problem
    with pytest.raises(QuakeError, match=r"b_nested\.json"):
        read_quakes(str(tmp_path))  # strict without a problems list


def test_copies_from_several_feeds_merge_like_copies_in_one(gempa_dir: Path, tmp_path: Path) -> None:
    # A felt-report copy of the Flores event without Potensi (as gempadirasakan serves it), read from a second
    # path, never takes away the tsunami that gempaterkini states; BMKG's end notice in any copy ends it.
    from ews.ingest.bmkg_quake import merge_quakes

    doc = json.loads((gempa_dir / TSUNAMI_FEED).read_text())
    records = doc["Infogempa"]["gempa"]
    silent = [{k: v for k, v in r.items() if k != "Potensi"} for r in records]
    (tmp_path / "felt.json").write_text(json.dumps({"Infogempa": {"gempa": silent}}))
    real = read_quakes(str(gempa_dir / TSUNAMI_FEED))
    felt = read_quakes(str(tmp_path / "felt.json"))
    merged = {q.event_id: q for q in merge_quakes([*real, *felt])}
    assert any(q.tsunami for q in merged.values())
    assert {i for i, q in merged.items() if q.tsunami} == {q.event_id for q in real if q.tsunami}
    ended = [{**r, "Potensi": "Peringatan dini tsunami telah berakhir"} for r in records]
    (tmp_path / "end.json").write_text(json.dumps({"Infogempa": {"gempa": ended}}))
    after = merge_quakes([*real, *read_quakes(str(tmp_path / "end.json"))])
    assert not any(q.tsunami for q in after)

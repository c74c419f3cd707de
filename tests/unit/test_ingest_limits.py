"""Limits of the JSON/XML readers of BMKG's feeds: size, nesting, number length, repeated keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests_support import FLORES

from ews.errors import ForecastError, QuakeError
from ews.ingest import bmkg_forecast, bmkg_quake
from ews.ingest.bmkg_forecast import parse_adm4, parse_digitalforecast, read_adm4, read_digitalforecast
from ews.ingest.bmkg_quake import parse_quakes, read_quakes
from ews.ingest.limits import (
    DocumentLimits,
    KeyedObject,
    Refused,
    json_depth_exceeds,
    load_json,
    read_limited,
    refusal,
    shown,
    xml_root,
)

SMALL = DocumentLimits(max_bytes=200, max_depth=3, max_number_chars=5)

FLORES_ID = "20211214T032023Z_7.59S_122.24E"
# An M5.0 two hours later, far away: a second, valid event.
OTHER = {**FLORES, "Jam": "12:20:23 WIB", "DateTime": "2021-12-14T05:20:23+00:00", "Magnitude": "5.0",
         "Coordinates": "-2.00,100.00", "Lintang": "2.00 LS", "Bujur": "100.00 BT"}  # fmt: skip


def feed(*records: str) -> bytes:
    return ('{"Infogempa": {"gempa": [' + ", ".join(records) + "]}}").encode()


# -- the helpers -----------------------------------------------------------------------------------------


def test_depth_prescan_ignores_brackets_in_strings_and_stops_early() -> None:
    assert not json_depth_exceeds('[[["[[[[[[", "\\"[[[["]]]', 3)  # 3 levels; the rest are in strings
    assert json_depth_exceeds("[[[[]]]]", 3)
    assert json_depth_exceeds("[" * 100_000, 3)  # unclosed: refused at the 4th bracket, never parsed
    assert not json_depth_exceeds('{"a": {"b": [1, {"c": 2}]}}', 4)


def test_load_json_marks_long_numbers_constants_and_repeated_keys() -> None:
    doc = load_json(
        b'{"a": 123456, "b": 12345, "c": -1.5e3, "d": NaN, "e": 1, "e": 2}', "t.json", SMALL, QuakeError, "x"
    )
    assert isinstance(doc, KeyedObject)
    assert isinstance(doc["a"], Refused)  # 6 characters > 5
    assert "a number of 6 characters" in doc["a"].reason
    assert doc["b"] == 12345
    assert isinstance(doc["c"], Refused)  # "-1.5e3" is 6 characters
    assert isinstance(doc["d"], Refused)
    assert "NaN is not a JSON number" in doc["d"].reason
    assert doc["e"] == 1  # the first value is kept, and the repetition marked
    assert doc.repeated == ("e",)
    assert refusal(doc) == ("", "key 'e' appears twice; BMKG's feeds never repeat a key")
    assert refusal({"x": [1, {"y": Refused("no")}]}) == ("x[1].y", "no")
    assert refusal({"x": [1, 2]}) is None


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"[" * 201, r"t\.json: refused: 201 bytes, larger than the 200 bytes ews accepts for a x"),
        (b"[[[[1]]]]", r"t\.json: refused: arrays/objects nested more than 3 levels deep"),
        (b"\xff\xfe\x00", r"t\.json: not UTF-16"),
        (b'{"a": \xff}', r"t\.json: not UTF-8 text"),
        (b'{"a": }', r"t\.json: not valid JSON \(line 1, column 7"),
    ],
)
def test_load_json_refusals_name_the_file_and_the_limit(data: bytes, match: str) -> None:
    with pytest.raises(QuakeError, match=match):
        load_json(data, "t.json", SMALL, QuakeError, "x")


def test_python_limits_never_surface() -> None:
    # What json.loads does with these by itself: ValueError (int digits) and RecursionError.
    limits = DocumentLimits(max_bytes=1_000_000)
    assert isinstance(load_json(b"[" + b"9" * 5001 + b"]", "t", limits, QuakeError, "x"), list)
    with pytest.raises(QuakeError, match="nested more than 32 levels"):
        load_json(b"[" * 100_000 + b"]" * 100_000, "t", limits, QuakeError, "x")


def test_xml_depth_and_size() -> None:
    assert xml_root(b"<a><b><c/></b></a>", "t.xml", SMALL, ForecastError, "x").tag == "a"
    with pytest.raises(ForecastError, match=r"t\.xml: refused: elements nested more than 3 levels deep"):
        xml_root(b"<a><b><c><d/></c></b></a>", "t.xml", SMALL, ForecastError, "x")
    with pytest.raises(ForecastError, match=r"t\.xml: refused: 201 bytes"):
        xml_root(b"<a>" + b" " * 194 + b"</a>", "t.xml", SMALL, ForecastError, "x")


def test_read_limited_reads_no_more_than_the_limit(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    big.write_bytes(b" " * 10_000)
    with pytest.raises(ForecastError, match=r"big\.json: refused: 201 bytes, larger than the 200"):
        read_limited(big, str(big), SMALL, ForecastError, "x")  # 201: it stopped reading after the limit
    with pytest.raises(ForecastError, match=r"missing\.json: cannot read"):
        read_limited(tmp_path / "missing.json", str(tmp_path / "missing.json"), SMALL, ForecastError, "x")


def test_shown_cuts_long_values() -> None:
    assert shown("besar") == "'besar'"
    assert shown("x" * 5000) == "'" + "x" * 79 + "... (5,000 characters)"


# -- earthquake feeds ------------------------------------------------------------------------------------


def test_a_repeated_key_rejects_only_its_record() -> None:
    twice = json.dumps(OTHER).replace('"Magnitude": "5.0"', '"Magnitude": "5.0", "Magnitude": "9.9"')
    data = feed(json.dumps(FLORES), twice)
    with pytest.raises(QuakeError, match=r"f\.json: record 1: key 'Magnitude' appears twice; BMKG's feeds never"):
        parse_quakes(data, "f.json")  # strict by default
    problems: list[str] = []
    assert [q.event_id for q in parse_quakes(data, "f.json", problems)] == [FLORES_ID]
    assert problems == ["f.json: record 1: key 'Magnitude' appears twice; BMKG's feeds never repeat a key"]


def test_a_repeated_element_in_autogempa_xml_rejects_its_record() -> None:
    xml = (
        b"<Infogempa><gempa><DateTime>2021-12-14T03:20:23+00:00</DateTime>"
        b"<point><coordinates>-7.59,122.24</coordinates></point><point><coordinates>-2,100</coordinates></point>"
        b"<Magnitude>7.4</Magnitude><Kedalaman>10 km</Kedalaman></gempa></Infogempa>"
    )
    with pytest.raises(QuakeError, match=r"autogempa\.xml: record 0: key 'Coordinates' appears twice"):
        parse_quakes(xml, "autogempa.xml")


def test_a_repeated_envelope_key_rejects_the_feed() -> None:
    data = b'{"Infogempa": {"gempa": [], "gempa": []}}'
    with pytest.raises(QuakeError, match=r"f\.json: Infogempa: key 'gempa' appears twice.*the feed is not used"):
        parse_quakes(data, "f.json", [])


@pytest.mark.parametrize(
    ("record", "match"),
    [
        ('{"Magnitude": ' + "1" * 5001 + "}", r"record 1: field Magnitude: a number of 5,001 characters"),
        ('{"Magnitude": NaN}', r"record 1: field Magnitude: NaN is not a JSON number"),
        ("1" * 5001, r"record 1: a number of 5,001 characters"),
        (json.dumps({**OTHER, "Magnitude": "5" * 400}), r"record 1: field Magnitude: a number of 400 characters"),
        (json.dumps({**OTHER, "Kedalaman": "1" * 400 + " km"}), r"record 1: field Kedalaman: a number of 400"),
        (json.dumps({**OTHER, "Coordinates": None, "Lintang": "7" * 50 + " LS"}), r"record 1: field Lintang: a num"),
    ],
)
def test_an_over_long_number_rejects_only_its_record(record: str, match: str) -> None:
    data = feed(json.dumps(FLORES), record)
    with pytest.raises(QuakeError, match=match):
        parse_quakes(data, "f.json")
    problems: list[str] = []
    assert [q.event_id for q in parse_quakes(data, "f.json", problems)] == [FLORES_ID]
    assert len(problems) == 1
    assert len(problems[0]) < 300  # the value is never echoed whole


def test_a_deep_or_large_feed_is_refused_whole(tmp_path: Path) -> None:
    with pytest.raises(QuakeError, match=r"f\.json: refused: arrays/objects nested more than 32 levels deep"):
        parse_quakes(b'{"Infogempa": {"gempa": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}", "f.json", [])
    xml = b"<Infogempa><gempa>" + b"<a>" * 100 + b"</a>" * 100 + b"</gempa></Infogempa>"
    with pytest.raises(QuakeError, match=r"a\.xml: refused: elements nested more than 32 levels deep"):
        parse_quakes(xml, "a.xml", [])
    big = tmp_path / "gempaterkini.json"
    big.write_bytes(feed(json.dumps(FLORES)) + b" " * bmkg_quake.LIMITS.max_bytes)
    with pytest.raises(QuakeError, match=r"gempaterkini\.json: refused: 1,048,\d+ bytes, larger than the 1,048,576"):
        read_quakes(str(big))


def test_a_long_non_numeric_value_is_not_echoed_whole() -> None:
    with pytest.raises(QuakeError, match=r"field Tanggal 'x{79}\.\.\. \(100,000 characters\) is not a date") as info:
        parse_quakes(feed(json.dumps({**FLORES, "DateTime": None, "Tanggal": "x" * 100_000})), "f.json")
    assert len(str(info.value)) < 300


# -- forecasts -------------------------------------------------------------------------------------------


def adm4(tp: str = "0", extra: str = "") -> bytes:
    step = (
        '{"datetime": "2026-09-24T07:00:00Z", "local_datetime": "2026-09-24 14:00:00", "tp": ' + tp + ", "
        '"weather": 2' + extra + "}"
    )
    return ('{"lokasi": {"adm4": "32.73.01.1001"}, "data": [{"cuaca": [[' + step + "]]}]}").encode()


def test_a_good_adm4_payload_still_parses() -> None:
    assert parse_adm4(adm4(), "ok.json").steps[0].tp == 0


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (adm4(extra=', "tp": 80'), r"a\.json: field 'data\[0\]\.cuaca\[0\]\[0\]': key 'tp' appears twice.*not used"),
        (adm4(tp="9" * 5001), r"a\.json: field 'data\[0\]\.cuaca\[0\]\[0\]\.tp': a number of 5,001 characters"),
        (adm4(tp="NaN"), r"a\.json: field 'data\[0\]\.cuaca\[0\]\[0\]\.tp': NaN is not a JSON number"),
        (b'{"lokasi": {}, "lokasi": {}}', r"a\.json: the document: key 'lokasi' appears twice"),
        (b'{"data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", r"a\.json: refused: arrays/objects nested more"),
        (b" " * (bmkg_forecast.ADM4_LIMITS.max_bytes + 1), r"a\.json: empty file"),
        (b"{}" + b" " * bmkg_forecast.ADM4_LIMITS.max_bytes, r"a\.json: refused: 1,048,578 bytes"),
        (
            ('{"lokasi": {"adm4": "' + "3" * 10_000 + '"}, "data": [{"cuaca": [[]]}]}').encode(),
            r"a\.json: field 'lokasi\.adm4': not a Kemendagri code: '3{79}\.\.\. \(10,000 characters\)",
        ),
    ],
)
def test_hostile_adm4_payloads_are_refused_naming_file_and_field(data: bytes, match: str) -> None:
    with pytest.raises(ForecastError, match=match):
        parse_adm4(data, "a.json")


def test_read_adm4_keeps_the_other_files(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_bytes(adm4())
    (tmp_path / "b.json").write_bytes(adm4(extra=', "weather": 3'))
    (tmp_path / "c.json").write_bytes(b"{}" + b" " * bmkg_forecast.ADM4_LIMITS.max_bytes)
    batch = read_adm4(tmp_path)
    assert batch.codes == ["32.73.01.1001"]
    assert [Path(p.source).name for p in batch.problems] == ["b.json", "c.json"]
    assert "key 'weather' appears twice" in batch.problems[0].message
    assert "refused: 1,048,577 bytes" in batch.problems[1].message  # read stops one byte past the limit


def digitalforecast(area: str) -> bytes:
    return (
        '<data><forecast domain="local"><issue><timestamp>20240403025110</timestamp></issue>'
        + area
        + "</forecast></data>"
    ).encode()


AREA = (
    '<area id="501306" latitude="{lat}" longitude="112.71109"><name xml:lang="id_ID">Kota Surabaya</name>'
    '<parameter id="weather" type="hourly"><timerange type="hourly" h="{h}" datetime="202404030000">'
    '<value unit="icon">{icon}</value></timerange></parameter></area>'
)


def test_a_good_digitalforecast_still_parses() -> None:
    df = parse_digitalforecast(digitalforecast(AREA.format(lat="-7.27981", h="0", icon="60")), "jt.xml")
    assert df.areas[0].parameters["weather"].series[0].h == 0


@pytest.mark.parametrize(
    ("area", "match"),
    [
        (AREA.format(lat="-7.27981", h="9" * 5001, icon="60"), r"jt\.xml: area 501306, parameter 'weather', "
         r"timerange 0: attribute 'h': a number of 5,001 characters"),
        (AREA.format(lat="1" * 5001, h="0", icon="60"), r"jt\.xml: area 501306: attribute 'latitude': a number of 5,0"),
        (AREA.format(lat="-7.27981", h="0", icon="6" * 5001), r"<value unit=\"icon\"> '6{79}\.\.\. \(5,001 characters"),
        ("<area>" * 40 + "</area>" * 40, r"jt\.xml: refused: elements nested more than 32 levels deep"),
    ],
)  # fmt: skip
def test_hostile_digitalforecasts_are_refused_naming_file_and_field(area: str, match: str) -> None:
    with pytest.raises(ForecastError, match=match):
        parse_digitalforecast(digitalforecast(area), "jt.xml")


def test_a_digitalforecast_file_over_the_limit_is_not_read_whole(tmp_path: Path) -> None:
    big = tmp_path / "DigitalForecast-JawaTimur.xml"
    with big.open("wb") as out:
        out.write(digitalforecast(AREA.format(lat="-7.27981", h="0", icon="60")))
        out.truncate(bmkg_forecast.DIGITALFORECAST_LIMITS.max_bytes + 5000)  # a sparse tail of NULs
    with pytest.raises(ForecastError, match=r"DigitalForecast-JawaTimur\.xml: refused: 16,777,217 bytes"):
        read_digitalforecast(big)

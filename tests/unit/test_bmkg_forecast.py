"""BMKG forecasts at the edge: adm4 JSON and DigitalForecast XML, real samples and every kind of bad input."""

from __future__ import annotations

import functools
import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ews.config import ForecastRules
from ews.errors import FetchError, ForecastError, StaleSourceError
from ews.ingest.bmkg_forecast import (
    adm4_url,
    check_forecast_fresh,
    fetch_adm4,
    fetch_digitalforecast,
    parse_adm4,
    parse_digitalforecast,
    read_adm4,
    read_digitalforecast,
)
from ews.ingest.http import fetch_bytes

BANDUNG = "siaga_prakiraan-cuaca_adm4-32.73.01.1001_2026-09-24.json"
JATIM_2024 = "DigitalForecast-JawaTimur_2024-04-03.xml"
JATIM_2016 = "DigitalForecast-JawaTimur_2016-11-17.xml"


@pytest.fixture(scope="module")
def bandung_bytes(shared_data: Path) -> bytes:
    return (shared_data / "bmkg" / "prakiraan" / BANDUNG).read_bytes()


@pytest.fixture(scope="module")
def df_dir(shared_data: Path) -> Path:
    return shared_data / "bmkg" / "digitalforecast"


def step(valid: str = "2026-09-24T07:00:00Z", local: str | None = "2026-09-24 14:00:00", **over: Any) -> dict[str, Any]:
    """One adm4 step as BMKG writes it (only the keys that matter, plus one unknown key)."""
    data: dict[str, Any] = {
        "datetime": valid,
        "tp": 0,
        "weather": 2,
        "weather_desc": "Cerah Berawan",
        "weather_desc_en": "Partly Cloudy",
        "t": 28,
        "hu": 52,
        "analysis_date": "2026-09-24T00:00:00",
        "future_key": "ignored",
    }
    if local is not None:
        data["local_datetime"] = local
    data.update(over)
    return data


def payload(steps: list[dict[str, Any]] | None = None, *, code: object = "32.73.01.1001", **lokasi: Any) -> bytes:
    """A minimal adm4 payload: top-level lokasi and data[0].cuaca as one day-array."""
    top: dict[str, Any] = {"adm4": code, "desa": "Sukarasa", "timezone": "Asia/Jakarta", "lat": -6.87, "lon": 107.58}
    top.update(lokasi)
    if code is None:
        del top["adm4"]
    inner = {"adm4": code, "timezone": "+0700"} if code is not None else {"timezone": "+0700"}
    body = {"lokasi": top, "data": [{"lokasi": inner, "cuaca": [steps if steps is not None else [step()]]}]}
    return json.dumps(body).encode()


# -- adm4: the real Bandung payload ------------------------------------------------------------------


def test_real_bandung_payload(bandung_bytes: bytes) -> None:
    fc = parse_adm4(bandung_bytes, BANDUNG)
    assert fc.code == "32.73.01.1001"
    assert (fc.village, fc.kecamatan, fc.kabkota, fc.province) == ("Sukarasa", "Sukasari", "Kota Bandung", "Jawa Barat")
    assert fc.lat == pytest.approx(-6.8742274703)
    assert fc.lon == pytest.approx(107.5853961716)
    assert fc.timezone == "Asia/Jakarta"
    assert (fc.utc_offset, fc.zone_name) == (timedelta(hours=7), "WIB")
    assert fc.analysis == datetime(2026, 9, 24, 0, 0, tzinfo=UTC)
    assert fc.step_hours == 3.0
    # 3 day-arrays of 4, 8, 8 steps flattened: 20 steps, 3 h apart, from 07:00Z (14:00 WIB).
    assert len(fc.steps) == 20
    assert all(b.valid - a.valid == timedelta(hours=3) for a, b in itertools.pairwise(fc.steps))
    first, last = fc.steps[0], fc.steps[-1]
    assert first.valid == datetime(2026, 9, 24, 7, tzinfo=UTC)
    assert first.valid.utcoffset() == timedelta(0)
    assert first.local.isoformat() == "2026-09-24T14:00:00+07:00"
    assert first.local.tzname() == "WIB"
    assert first.local == first.valid  # the same instant
    assert last.valid == datetime(2026, 9, 26, 16, tzinfo=UTC)
    assert last.local.isoformat() == "2026-09-26T23:00:00+07:00"
    # 19:00Z on the 24th is already 02:00 on the 25th in Bandung: the local day differs from the UTC day.
    night = fc.steps[4]
    assert (night.valid.day, night.local.day, night.local.hour) == (24, 25, 2)
    # Rain: 2.2 mm in each of two steps (14:00 and 17:00 WIB on the 26th), weather 61 "Hujan Ringan".
    rainy = [(s.local.strftime("%d %H:%M"), s.tp, s.weather, s.weather_desc) for s in fc.steps if s.tp > 0]
    assert rainy == [("26 14:00", 2.2, 61, "Hujan Ringan"), ("26 17:00", 2.2, 61, "Hujan Ringan")]
    assert sum(s.tp for s in fc.steps) == pytest.approx(4.4)
    assert {s.weather for s in fc.steps} == {0, 1, 2, 61}
    assert (first.t, first.hu, first.tcc, first.ws, first.wd, first.vs) == (28.0, 52.0, 64.0, 1.4, "NW", None)
    assert first.weather_desc_en == "Partly Cloudy"


def test_tolerates_extra_keys_and_a_flat_step_list() -> None:
    body = json.loads(payload([step(), step("2026-09-24T10:00:00Z", "2026-09-24 17:00:00", tp="1.5")]))
    body["new_top_level"] = {"x": 1}
    body["lokasi"]["new_field"] = "y"
    body["data"][0]["cuaca"] = body["data"][0]["cuaca"][0]  # flat, not nested per day
    fc = parse_adm4(json.dumps(body).encode(), "flat.json")
    assert [s.tp for s in fc.steps] == [0.0, 1.5]
    assert fc.steps[1].local.isoformat() == "2026-09-24T17:00:00+07:00"


def test_undotted_code_is_normalised_and_offset_from_local_times() -> None:
    # No "+0700" anywhere: the offset comes from local_datetime - datetime.
    body = json.loads(payload(code="3578011001", timezone="Asia/Jakarta"))
    body["data"][0]["lokasi"] = {}
    fc = parse_adm4(json.dumps(body).encode(), "sby.json")
    assert fc.code == "35.78.01.1001"
    assert (fc.utc_offset, fc.zone_name) == (timedelta(hours=7), "WIB")


def test_steps_are_sorted_by_valid_time() -> None:
    data = payload([step("2026-09-24T10:00:00Z", "2026-09-24 17:00:00"), step()])
    fc = parse_adm4(data, "unsorted.json")
    assert [s.valid.hour for s in fc.steps] == [7, 10]


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        (b"", r"bad\.json: empty file"),
        (b"{not json", r"bad\.json: not valid JSON"),
        (b"[]", r"bad\.json: the document is missing or not an object"),
        (json.dumps({"lokasi": {"adm4": "32.73.01.1001"}}).encode(), r"bad\.json: field 'data' is missing"),
        (payload(code=None), r"bad\.json: field 'lokasi\.adm4' is missing"),
        (payload(code="32.73.01"), r"bad\.json: field 'lokasi\.adm4' '32\.73\.01' is not a village"),
        (payload(code="Bandung"), r"bad\.json: field 'lokasi\.adm4': not a Kemendagri code"),
        (payload([]), r"bad\.json: field 'data\[0\]\.cuaca' is missing or empty"),
        (
            payload([step(), step("2026-09-24T10:00:00Z", "2026-09-24 17:00:00", tp="banyak")]),
            r"bad\.json: step 1 \(cuaca\[0\]\[1\]\): field 'tp' 'banyak' is not a number",
        ),
        (payload([step(tp=None)]), r"bad\.json: step 0 \(cuaca\[0\]\[0\]\): field 'tp' is missing or null"),
        (payload([step(tp=True)]), r"step 0 .*field 'tp' True is not a number"),
        (payload([step(tp=-1)]), r"step 0 .*field 'tp' -1\.0 is negative"),
        (payload([step(weather="cerah")]), r"step 0 .*field 'weather' 'cerah' is not a number"),
        (payload([step(weather=60.5)]), r"step 0 .*field 'weather' 60\.5 is not a whole BMKG weather code"),
        (
            payload([step(), step("2026-09-24T10:00:00", "2026-09-24 17:00:00")]),
            r"bad\.json: step 1 \(cuaca\[0\]\[1\]\): field 'datetime' '2026-09-24T10:00:00' has no time zone",
        ),
        (payload([step(datetime=None)]), r"step 0 .*field 'datetime' is missing"),
        (payload([step("24/09/2026 07:00")]), r"step 0 .*field 'datetime' '24/09/2026 07:00' is not an ISO 8601"),
        (
            payload([step(local="2026-09-24 15:00:00")]),
            r"step 0 .*field 'local_datetime' '2026-09-24 15:00:00' disagrees with 'datetime'",
        ),
        (payload([step(), step()]), r"bad\.json: two steps share the valid time 2026-09-24T07:00Z"),
        (payload([step(analysis_date="kemarin")]), r"bad\.json: field 'analysis_date' 'kemarin'"),
    ],
)
def test_bad_adm4_payloads_name_file_and_field(data: bytes, pattern: str) -> None:
    with pytest.raises(ForecastError, match=pattern):
        parse_adm4(data, "bad.json")


def test_optional_fields_are_tolerated() -> None:
    fc = parse_adm4(payload([step(t="n/a", hu=None, ws=None, weather_desc=None)]), "soft.json")
    s = fc.steps[0]
    assert (s.t, s.hu, s.ws, s.weather_desc) == (None, None, None, "")


def test_read_adm4_reports_bad_files_and_keeps_the_rest(tmp_path: Path, bandung_bytes: bytes) -> None:
    (tmp_path / "a_good.json").write_bytes(bandung_bytes)
    (tmp_path / "b_bad.json").write_bytes(payload([step(tp="x")]))
    (tmp_path / "notes.txt").write_text("not a forecast")
    batch = read_adm4([tmp_path, tmp_path / "missing.json"])
    assert batch.codes == ["32.73.01.1001"]
    assert [Path(p.source).name for p in batch.problems] == ["b_bad.json", "missing.json"]
    assert "field 'tp'" in batch.problems[0].message
    assert "no such file or folder" in batch.problems[1].message


# -- adm4: fetching ----------------------------------------------------------------------------------


def test_adm4_url_forms() -> None:
    assert adm4_url("32.73.01.1001") == "https://api.bmkg.go.id/publik/prakiraan-cuaca?adm4=32.73.01.1001"
    assert adm4_url("32.73.01.1001", "http://mirror/x?fmt=json") == "http://mirror/x?fmt=json&adm4=32.73.01.1001"
    assert adm4_url("32.73.01.1001", "http://h/adm4/{code}.json") == "http://h/adm4/32.73.01.1001.json"


def test_fetch_adm4_over_loopback_reports_each_failure(tmp_path: Path, bandung_bytes: bytes, serve_dir: Any) -> None:
    site = tmp_path / "site" / "adm4"
    site.mkdir(parents=True)
    other = json.loads(bandung_bytes)
    other["lokasi"]["adm4"] = other["data"][0]["lokasi"]["adm4"] = "32.73.01.1002"
    (site / "32.73.01.1001.json").write_bytes(bandung_bytes)
    (site / "32.73.01.1002.json").write_bytes(json.dumps(other).encode())
    (site / "32.73.01.1003.json").write_bytes(bandung_bytes)  # a payload for another village
    (site / "32.73.01.1004.json").write_bytes(b"<html>Too Many Requests</html>")
    base = serve_dir(tmp_path / "site") + "/adm4/{code}.json"
    sleeps: list[float] = []
    batch = fetch_adm4(
        ["3273011001", "32.73.01.1002", "32.73.01.1003", "32.73.01.1004", "32.73.01.1005", "32.73.01.1001", "xx"],
        base_url=base,
        fetch=functools.partial(fetch_bytes, retries=0, timeout=5.0),
        sleep=sleeps.append,
        clock=lambda: 100.0,  # a clock that never moves: every request after the first waits the full interval
    )
    assert batch.codes == ["32.73.01.1001", "32.73.01.1002"]
    reasons = {Path(p.source).name: p.message for p in batch.problems}
    assert "asked for village 32.73.01.1003 but the payload is for 32.73.01.1001" in reasons["32.73.01.1003.json"]
    assert "not valid JSON" in reasons["32.73.01.1004.json"]
    assert "HTTP 404" in reasons["32.73.01.1005.json"]
    assert "not a Kemendagri code" in reasons["xx"]
    # five distinct valid codes were requested (the repeated 1001 is fetched once): four waits between them
    assert sleeps == [1.0, 1.0, 1.0, 1.0]


def test_fetch_adm4_paces_by_the_clock() -> None:
    now = [0.0]
    sleeps: list[float] = []
    urls: list[str] = []

    def fake_fetch(url: str) -> bytes:
        urls.append(url)
        now[0] += 0.25  # each request takes 0.25 s
        code = url.rsplit("=", 1)[1]
        return payload(code=code)

    def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    batch = fetch_adm4(
        ["35.78.01.1001", "35.78.01.1002", "35.78.01.1003"],
        min_interval_s=1.0,
        fetch=fake_fetch,
        sleep=fake_sleep,
        clock=lambda: now[0],
    )
    assert batch.codes == ["35.78.01.1001", "35.78.01.1002", "35.78.01.1003"]
    assert sleeps == [0.75, 0.75]  # 1.0 s between starts, 0.25 s of which the request itself used
    assert urls[0] == "https://api.bmkg.go.id/publik/prakiraan-cuaca?adm4=35.78.01.1001"


def test_fetch_adm4_keeps_going_after_fetch_errors() -> None:
    def flaky(url: str) -> bytes:
        if url.endswith("1001"):
            raise FetchError(f"{url}: failed after 4 attempts (timed out); the source may be down")
        return payload(code=url.rsplit("=", 1)[1])

    batch = fetch_adm4(["35.78.01.1001", "35.78.01.1002"], fetch=flaky, sleep=lambda s: None, min_interval_s=0)
    assert batch.codes == ["35.78.01.1002"]
    assert batch.problems[0].source.endswith("adm4=35.78.01.1001")
    assert "timed out" in batch.problems[0].message


# -- DigitalForecast ---------------------------------------------------------------------------------


def test_real_jawa_timur_2024(df_dir: Path) -> None:
    df = read_digitalforecast(df_dir / JATIM_2024)
    assert df.issued == datetime(2024, 4, 3, 2, 51, 10, tzinfo=UTC)
    assert len(df.areas) == 39
    land = [a for a in df.areas if a.is_land]
    assert len(land) == 38
    port = next(a for a in df.areas if not a.is_land)
    assert (port.id, port.kind, port.domain, port.name) == ("1200076", "sea", "Pelabuhan", "Surabaya")
    assert port.parameters == {}
    sby = next(a for a in df.areas if a.id == "501306")
    assert (sby.description, sby.name, sby.names["en_US"], sby.kind, sby.domain) == (
        "Surabaya",
        "Kota Surabaya",
        "Surabaya",
        "land",
        "Jawa Timur",
    )
    assert (sby.lat, sby.lon) == (pytest.approx(-7.27981), pytest.approx(112.71109))
    assert set(sby.parameters) == {"hu", "humax", "humin", "t", "tmax", "tmin", "wd", "weather", "ws"}
    weather = sby.weather()
    assert len(weather) == 12
    assert weather[0] == (datetime(2024, 4, 3, 0, tzinfo=UTC), 1)
    assert weather[-1][0] == datetime(2024, 4, 5, 18, tzinfo=UTC)
    assert all(b[0] - a[0] == timedelta(hours=6) for a, b in itertools.pairwise(weather))
    assert [c for _, c in weather] == [1, 0, 60, 3, 1, 1, 60, 60, 1, 1, 95, 1]
    ws = sby.parameters["ws"]
    assert ws.kind == "hourly"
    assert set(ws.series[0].values) == {"Kt", "MPH", "KPH", "MS"}
    assert ws.series[0].h == 0
    wd = sby.parameters["wd"].series[0].values
    assert isinstance(wd["CARD"], str)
    assert isinstance(wd["deg"], float)
    tmax = sby.parameters["tmax"]
    assert tmax.kind == "daily"
    assert [v.day for v in tmax.series] == ["20240403", "20240404", "20240405"]
    assert len(sby.parameters["t"].numbers("C")) == 12
    # Kota and Kabupaten of one name are separate areas with separate ids and names.
    blitar = {a.name: a.id for a in df.areas if "Blitar" in a.name}
    assert blitar == {"Kab. Blitar": "5002271", "Kota Blitar": "501275"}


def test_real_jawa_timur_2016_has_no_area_types(df_dir: Path) -> None:
    df = read_digitalforecast(df_dir / JATIM_2016)
    assert df.issued == datetime(2016, 11, 17, 3, 45, 19, tzinfo=UTC)
    assert len(df.areas) == 34
    assert {a.kind for a in df.areas} == {""}
    # The port is told apart by its domain/tags "Pelabuhan" when type is empty.
    assert [a.id for a in df.areas if not a.is_land] == ["1200076"]
    codes = {c for a in df.areas for _, c in a.weather()}
    assert {100, 101, 102, 103, 104} <= codes  # night icons


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE data [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<data><forecast><issue><timestamp>&xxe;</timestamp></issue></forecast></data>"""

BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE data [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>
<data><forecast><issue><timestamp>&c;</timestamp></issue></forecast></data>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE data SYSTEM "http://attacker.invalid/evil.dtd">
<data><forecast><issue><timestamp>20240403025110</timestamp></issue></forecast></data>"""


def area_xml(
    *, area_id: str = "501306", lat: str = "-7.27981", weather: str = "60", dt: str = "202404030000", extra: str = ""
) -> str:
    return (
        f'<area id="{area_id}" latitude="{lat}" longitude="112.71109" type="land" description="Surabaya" '
        f'domain="Jawa Timur"><name xml:lang="id_ID">Kota Surabaya</name>'
        f'<parameter id="weather" description="Weather" type="hourly">'
        f'<timerange type="hourly" h="0" datetime="{dt}"><value unit="icon">{weather}</value></timerange>'
        f"</parameter>{extra}</area>"
    )


def df_xml(areas: str | None = None, stamp: str | None = "20240403025110") -> bytes:
    issue = f"<issue><timestamp>{stamp}</timestamp></issue>" if stamp is not None else ""
    body = area_xml() if areas is None else areas
    head = '<?xml version="1.0"?><data source="meteofactory"><forecast domain="local">'
    return f"{head}{issue}{body}</forecast></data>".encode()


def test_minimal_digitalforecast() -> None:
    df = parse_digitalforecast(df_xml(), "mini.xml")
    assert df.areas[0].weather() == ((datetime(2024, 4, 3, tzinfo=UTC), 60),)
    assert df.domain == "local"
    assert df.source == "mini.xml"


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        (XXE, r"jt\.xml: refused: contains a DTD"),
        (BOMB, r"jt\.xml: refused: contains a DTD"),
        (EXTERNAL_DTD, r"jt\.xml: refused: contains a DTD"),
        (b"", r"jt\.xml: empty file"),
        (b"<rss><channel/></rss>", r"jt\.xml: not a DigitalForecast file \(root <rss>"),
        (df_xml(stamp=None), r"jt\.xml: field <issue><timestamp> is missing"),
        (df_xml(stamp="2024-04-03"), r"jt\.xml: field <issue><timestamp> '2024-04-03' is not a BMKG time"),
        (df_xml(""), r"jt\.xml: no <area>"),
        (df_xml(area_xml(area_id="")), r"jt\.xml: area 0 has no attribute 'id'"),
        (
            df_xml(area_xml(lat="utara")),
            r"jt\.xml: area 501306: attribute 'latitude' 'utara' is missing or not a number",
        ),
        (
            df_xml(area_xml(weather="hujan")),
            r"jt\.xml: area 501306, parameter 'weather', timerange 0: <value unit=\"icon\"> 'hujan' is not a BMKG",
        ),
        (
            df_xml(area_xml(dt="2024040300")),
            r"jt\.xml: area 501306, parameter 'weather', timerange 0: attribute 'datetime' '2024040300'",
        ),
        (df_xml(area_xml(dt="202413030000")), r"attribute 'datetime' '202413030000' is not a valid date"),
        (df_xml(area_xml() + area_xml()), r"jt\.xml: area 501306: listed twice"),
    ],
)
def test_bad_digitalforecast_names_file_and_field(data: bytes, pattern: str) -> None:
    with pytest.raises(ForecastError, match=pattern):
        parse_digitalforecast(data, "jt.xml")


def test_xxe_reads_nothing() -> None:
    # The DTD is refused before any entity is resolved: nothing from /etc/passwd can reach the message.
    with pytest.raises(ForecastError, match="refused") as info:
        parse_digitalforecast(XXE, "xxe.xml")
    assert "root:" not in str(info.value)


def test_truncated_real_file_is_rejected(df_dir: Path, tmp_path: Path) -> None:
    data = (df_dir / JATIM_2024).read_bytes()
    cut = tmp_path / "DigitalForecast-JawaTimur.xml"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ForecastError, match=r"DigitalForecast-JawaTimur\.xml: not well-formed XML .*truncated"):
        read_digitalforecast(cut)


def test_missing_file_is_a_forecast_error(tmp_path: Path) -> None:
    with pytest.raises(ForecastError, match=r"nope\.xml: cannot read"):
        read_digitalforecast(tmp_path / "nope.xml")


def test_fetch_digitalforecast_over_loopback(tmp_path: Path, df_dir: Path, serve_dir: Any) -> None:
    site = tmp_path / "DataMKG" / "MEWS" / "DigitalForecast"
    site.mkdir(parents=True)
    (site / "DigitalForecast-JawaTimur.xml").write_bytes((df_dir / JATIM_2024).read_bytes())
    base = serve_dir(tmp_path)
    template = base + "/DataMKG/MEWS/DigitalForecast/DigitalForecast-{province}.xml"
    fetch = functools.partial(fetch_bytes, retries=0, timeout=5.0)
    df = fetch_digitalforecast("JawaTimur", url_template=template, fetch=fetch)
    assert len(df.areas) == 39
    assert df.source.endswith("DigitalForecast-JawaTimur.xml")
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch_digitalforecast("JawaBarat", url_template=template, fetch=fetch)


# -- freshness -----------------------------------------------------------------------------------------


def test_check_forecast_fresh() -> None:
    rules = ForecastRules(max_age_hours=12)
    issued = datetime(2024, 4, 3, 2, 51, tzinfo=UTC)
    check_forecast_fresh(issued, issued + timedelta(hours=12), rules, "jt.xml")  # exactly at the limit: fresh
    with pytest.raises(StaleSourceError, match=r"jt\.xml: forecast issued 2024-04-03 02:51 UTC is 12\.5 h old"):
        check_forecast_fresh(issued, issued + timedelta(hours=12.5), rules, "jt.xml")
    with pytest.raises(StaleSourceError, match=r"x\.json: the forecast has no issue time"):
        check_forecast_fresh(None, issued, rules, "x.json")

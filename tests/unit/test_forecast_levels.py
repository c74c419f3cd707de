"""Forecast rain categories and levels per village (pure), DigitalForecast areas -> kab/kota, the message.

Default rules used throughout unless a test says otherwise (ews.config): hourly lower bounds ringan 1,
sedang 5, lebat 10, sangat_lebat 20 mm/h; daily ringan 0.5, sedang 20, lebat 50, sangat_lebat 100, ekstrem
150 mm/24 h; lebat -> Waspada, sangat_lebat -> Siaga, ekstrem -> Awas; hysteresis 0.2; lead 24 h; cap Siaga.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import box

from ews.config import ForecastRules, RainRules
from ews.hazard.forecast import (
    WEATHER_CATEGORY,
    DigitalForecast,
    ForecastArea,
    ForecastLevel,
    ForecastLevels,
    ForecastParameter,
    ForecastStep,
    RainStep,
    SeriesValue,
    VillageForecast,
    VillageForecastLevel,
    adm4_levels,
    area_steps,
    digitalforecast_levels,
    forecast_level,
    forecast_message,
    match_areas,
    merge_levels,
    rain_category,
)
from ews.ingest.bmkg_forecast import parse_adm4, read_digitalforecast
from ews.ingest.boundaries import read_boundaries
from ews.types import Level

NOW = datetime(2026, 11, 28, 0, 0, tzinfo=UTC)
RAIN = RainRules()
RULES = ForecastRules()
H = timedelta(hours=1)


def series(*mm: float | None, start: datetime = NOW, hours: float = 3.0, weather: int | None = 1) -> list[RainStep]:
    """Consecutive steps from ``start``: one amount (mm per step) each, the same weather code."""
    return [RainStep(start + i * hours * H, hours, m, weather) for i, m in enumerate(mm)]


def level_of(steps: list[RainStep], rules: ForecastRules = RULES, rain: RainRules = RAIN) -> ForecastLevel:
    return forecast_level(steps, NOW, rain, rules)


# -- categories ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "bounds", "expected"),
    [
        (0.0, "hourly", None),
        (0.99, "hourly", None),
        (1.0, "hourly", "ringan"),
        (4.99, "hourly", "ringan"),
        (5.0, "hourly", "sedang"),
        (10.0, "hourly", "lebat"),
        (20.0, "hourly", "sangat_lebat"),
        (500.0, "hourly", "sangat_lebat"),  # BMKG has no hourly ekstrem
        (0.49, "daily", None),
        (0.5, "daily", "ringan"),
        (50.0, "daily", "lebat"),
        (99.99, "daily", "lebat"),
        (150.0, "daily", "ekstrem"),
        (None, "daily", None),
    ],
)
def test_rain_category_lower_bounds(value: float | None, bounds: str, expected: str | None) -> None:
    table = RAIN.hourly_mm if bounds == "hourly" else RAIN.daily_mm
    assert rain_category(value, table) == expected


def test_rain_category_scaled_for_hysteresis() -> None:
    # lebat's 10 mm/h bound x (1 - 0.2) = 8 mm/h
    assert rain_category(8.0, RAIN.hourly_mm, 0.8) == "lebat"
    assert rain_category(7.99, RAIN.hourly_mm, 0.8) == "sedang"


def test_weather_category_table_covers_the_sample_codes() -> None:
    # Every code seen in the real samples (see WEATHER_CATEGORY's docstring) is in the table.
    seen = {0, 1, 2, 3, 4, 5, 10, 45, 60, 61, 80, 95, 100, 101, 102, 103, 104}
    assert seen <= set(WEATHER_CATEGORY)
    assert {c for c, cat in WEATHER_CATEGORY.items() if cat == "lebat"} == {63, 95, 97}
    assert all(WEATHER_CATEGORY[c] is None for c in (0, 1, 2, 3, 4, 5, 10, 45, 100, 104))


# -- levels from amounts -------------------------------------------------------------------------------


def test_hourly_rate_at_the_lebat_bound() -> None:
    # 30 mm in a 3-h step = 10 mm/h: exactly lebat -> Waspada; the 24-h sum (30) is only sedang.
    result = level_of(series(30.0))
    assert (result.level, result.held, result.category) == (Level.WASPADA, Level.WASPADA, "lebat")
    assert (result.first_threat, result.threat_end, result.max_mm, result.steps) == (NOW, NOW + 3 * H, 30.0, 1)


def test_just_below_the_bound_is_held_only() -> None:
    # 29.97 mm / 3 h = 9.99 mm/h: sedang, no level; held bound is 8 mm/h -> held Waspada.
    result = level_of(series(29.97))
    assert (result.level, result.held, result.category, result.held_category) == (
        Level.NONE,
        Level.WASPADA,
        "sedang",
        "lebat",
    )
    assert result.first_threat is None
    assert result.threat_end is None


def test_held_bound_exactly_and_just_below() -> None:
    # 24 mm / 3 h = 8.0 mm/h = 10 x (1 - 0.2): held lebat. 23.97 mm -> 7.99 mm/h (sedang; 24-h sum 23.97 is
    # sedang too, below the held daily lebat bound 40): nothing held.
    assert level_of(series(24.0)).held == Level.WASPADA
    below = level_of(series(23.97))
    assert (below.level, below.held, below.held_category) == (Level.NONE, Level.NONE, "sedang")


def test_sangat_lebat_gives_siaga() -> None:
    result = level_of(series(60.0))  # 20 mm/h
    assert (result.level, result.category) == (Level.SIAGA, "sangat_lebat")


def test_daily_sum_reaches_lebat_on_the_eighth_step() -> None:
    # 8 steps of 6.25 mm (2.08 mm/h, ringan): the 24-h sum reaches 50 mm (lebat) at the 8th step (start +21 h).
    result = level_of(series(*[6.25] * 8))
    assert (result.level, result.category, result.max_mm) == (Level.WASPADA, "lebat", 50.0)
    assert result.first_threat == NOW + 21 * H
    assert result.threat_end == NOW + 24 * H


def test_daily_sum_below_bound_is_held() -> None:
    # 7 x 6.25 = 43.75 mm: sedang (no level); >= 40 mm (50 x 0.8): held Waspada.
    result = level_of(series(*[6.25] * 7))
    assert (result.level, result.held, result.max_mm) == (Level.NONE, Level.WASPADA, 43.75)


def test_rolling_sum_spans_24_hours_only() -> None:
    # 27 mm (9 mm/h, sedang) then eight steps of 3 mm: the 24 h ending with the 8th step hold 27 + 7 x 3 = 48;
    # at the 9th the 27 mm step has left the window (8 x 3 = 24). A 27-hour sum would reach 51 (lebat).
    result = level_of(series(27.0, *[3.0] * 8), rules=ForecastRules(lead_hours=30))
    assert (result.level, result.max_mm, result.steps) == (Level.NONE, 48.0, 9)
    assert result.held == Level.WASPADA  # 48 >= 40


def test_level_capped_at_max_level() -> None:
    # 8 x 18.75 = 150 mm/24 h: ekstrem -> Awas, capped at Siaga by default (a forecast is not an observation).
    steps = series(*[18.75] * 8)
    capped = level_of(steps)
    assert (capped.level, capped.held, capped.category) == (Level.SIAGA, Level.SIAGA, "ekstrem")
    assert level_of(steps, rules=ForecastRules(max_level=Level.AWAS)).level == Level.AWAS


# -- levels from weather codes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "level", "category"),
    [(95, Level.WASPADA, "lebat"), (97, Level.WASPADA, "lebat"), (63, Level.WASPADA, "lebat"),
     (61, Level.NONE, "ringan"), (60, Level.NONE, "ringan"), (80, Level.NONE, "ringan"), (3, Level.NONE, None)],
)  # fmt: skip
def test_weather_code_minimum(code: int, level: Level, category: str | None) -> None:
    result = level_of(series(0.0, weather=code))
    assert (result.level, result.category) == (level, category)
    # A code is not an amount: the hysteresis margin does not move it.
    assert result.held == level


def test_weather_code_without_amounts() -> None:
    # DigitalForecast-like: no mm at all; a thunderstorm code alone gives lebat; max_mm stays unknown.
    result = level_of(series(None, None, hours=6.0, weather=95))
    assert (result.level, result.max_mm, result.threat_end) == (Level.WASPADA, None, NOW + 12 * H)


def test_highest_of_rate_sum_and_code() -> None:
    # 60 mm (sangat_lebat by rate) with code 95 (lebat): the amount wins.
    assert level_of(series(60.0, weather=95)).level == Level.SIAGA


def test_unknown_weather_code_is_reported() -> None:
    result = level_of(series(0.0, weather=99))
    assert (result.level, result.unknown_codes) == (Level.NONE, (99,))


# -- lead window ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset_h", "level"),
    [(-3.0, Level.NONE), (-0.01, Level.NONE), (0.0, Level.WASPADA), (24.0, Level.WASPADA), (24.01, Level.NONE)],
)
def test_lead_window_edges(offset_h: float, level: Level) -> None:
    result = level_of(series(30.0, start=NOW + offset_h * H))
    assert result.level == level
    assert result.steps == (1 if level > Level.NONE else 0)


def test_steps_before_now_do_not_enter_the_24h_sum() -> None:
    # 8 steps of 6.25 mm starting 12 h ago: only the 4 from now on count (25 mm, sedang), not 50 mm.
    result = level_of(series(*[6.25] * 8, start=NOW - 12 * H))
    assert (result.level, result.max_mm, result.steps) == (Level.NONE, 25.0, 4)


def test_lead_time_and_threat_end_span_all_threatening_steps() -> None:
    # Dry, dry, heavy (+6 h), dry, heavy (+12 h): first threat at +6 h, threat ends at +15 h.
    result = level_of(series(0.0, 0.0, 30.0, 0.0, 30.0))
    assert (result.first_threat, result.threat_end) == (NOW + 6 * H, NOW + 15 * H)


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        forecast_level(series(1.0), NOW.replace(tzinfo=None), RAIN, RULES)


# -- adm4 forecasts ------------------------------------------------------------------------------------


def village_forecast(code: str, tps: list[float], weather: int = 1, analysis: datetime = NOW) -> VillageForecast:
    wib = timezone(timedelta(hours=7), "WIB")
    steps = tuple(
        ForecastStep(NOW + 3 * i * H, (NOW + 3 * i * H).astimezone(wib), tp, weather, "", "")
        for i, tp in enumerate(tps)
    )
    return VillageForecast(
        code, "", "", "", "", None, None, "Asia/Jakarta", 7 * H, "WIB", analysis, steps, f"{code}.json"
    )


def test_adm4_levels_keep_newest_and_report_unknown_codes() -> None:
    old = village_forecast("35.78.01.1001", [30.0], analysis=NOW - 12 * H)
    new = village_forecast("35.78.01.1001", [0.0], analysis=NOW)
    other = village_forecast("35.78.01.1002", [0.0], weather=99)
    stray = village_forecast("35.78.99.1001", [30.0])
    result = adm4_levels([old, new, other, stray], NOW, RAIN, RULES, villages=["35.78.01.1001", "35.78.01.1002"])
    assert set(result.villages) == {"35.78.01.1001", "35.78.01.1002"}
    assert result.villages["35.78.01.1001"].level == Level.NONE  # the newer analysis wins
    assert result.villages["35.78.01.1001"].source_kind == "adm4"
    notes = " | ".join(result.notes)
    assert "not in the region's boundaries, left out: 35.78.99.1001" in notes
    assert "unknown BMKG weather code(s) [99]" in notes


def test_adm4_levels_on_the_real_bandung_payload(shared_data: Path) -> None:
    path = shared_data / "bmkg" / "prakiraan" / "siaga_prakiraan-cuaca_adm4-32.73.01.1001_2026-09-24.json"
    fc = parse_adm4(path.read_bytes(), path.name)
    assert fc.analysis is not None
    rules = ForecastRules(lead_hours=72)
    result = adm4_levels([fc], fc.analysis, RAIN, rules).villages["32.73.01.1001"]
    # Two steps of 2.2 mm (0.73 mm/h: below ringan's 1 mm/h) sum to 4.4 mm/24 h (ringan); code 61 is ringan.
    assert (result.level, result.held, result.forecast.category, result.forecast.max_mm) == (
        Level.NONE,
        Level.NONE,
        "ringan",
        pytest.approx(4.4),
    )
    assert result.forecast.steps == 20
    # Within 24 h of the 00Z analysis only 6 steps (07Z .. 22Z) are in the window, all dry.
    day = adm4_levels([fc], fc.analysis, RAIN, ForecastRules(lead_hours=24)).villages["32.73.01.1001"]
    assert (day.forecast.steps, day.forecast.max_mm, day.forecast.category) == (6, 0.0, None)


# -- DigitalForecast areas -> kab/kota -------------------------------------------------------------------


@pytest.fixture(scope="module")
def jatim_kab(shared_data: Path) -> gpd.GeoDataFrame:
    return read_boundaries(
        shared_data / "boundaries" / "wilayah_boundaries_geojson" / "kab" / "wilayah_boundaries_kab_35.geojson"
    )


@pytest.fixture(scope="module")
def jatim_2024(shared_data: Path) -> DigitalForecast:
    return read_digitalforecast(shared_data / "bmkg" / "digitalforecast" / "DigitalForecast-JawaTimur_2024-04-03.xml")


def test_real_areas_map_onto_real_kabkota(jatim_2024: DigitalForecast, jatim_kab: gpd.GeoDataFrame) -> None:
    matches = {m.area_id: m for m in match_areas(jatim_2024, jatim_kab)}
    assert len(matches) == 39
    mapped = [m.kabkota for m in matches.values() if m.kabkota is not None]
    # Every one of the 38 land areas lands on its own kab/kota, and together they cover all 38 of Jawa Timur.
    assert len(mapped) == 38
    assert set(mapped) == set(jatim_kab["code"])
    assert matches["501306"].kabkota == "35.78"  # Surabaya
    assert matches["501306"].method == "point+name"
    port = matches["1200076"]
    assert (port.kabkota, port.method) == (None, "none")
    assert "port/sea area" in port.note
    # Kota and Kabupaten of one name are not confused.
    by_name = {m.area_name: m.kabkota for m in matches.values()}
    pairs = {
        "Blitar": ("35.72", "35.05"),
        "Kediri": ("35.71", "35.06"),
        "Malang": ("35.73", "35.07"),
        "Madiun": ("35.77", "35.19"),
        "Mojokerto": ("35.76", "35.16"),
        "Pasuruan": ("35.75", "35.14"),
        "Probolinggo": ("35.74", "35.13"),
    }
    for name, (kota, kab) in pairs.items():
        assert (by_name[f"Kota {name}"], by_name[f"Kab. {name}"]) == (kota, kab), name
    # Kota Blitar's point (-8.0973, 112.1375) lies just inside Kabupaten Blitar: the name decides, with a note.
    blitar = matches["501275"]
    assert (blitar.kabkota, blitar.method) == ("35.72", "name")
    assert "lies in 35.05" in blitar.note
    assert sum(1 for m in matches.values() if m.method == "point+name") == 37


def test_real_2016_file_leaves_five_kabupaten_uncovered(shared_data: Path, jatim_kab: gpd.GeoDataFrame) -> None:
    df = read_digitalforecast(shared_data / "bmkg" / "digitalforecast" / "DigitalForecast-JawaTimur_2016-11-17.xml")
    matches = match_areas(df, jatim_kab)
    mapped = {m.kabkota for m in matches if m.kabkota}
    assert len(mapped) == 33
    missing = set(jatim_kab["code"]) - mapped
    assert missing == {
        "35.05",
        "35.06",
        "35.13",
        "35.14",
        "35.16",
    }  # Kab. Blitar, Kediri, Probolinggo, Pasuruan, Mojokerto
    villages = ["35.05.01.2001", "35.78.01.1001"]
    result = digitalforecast_levels(df, matches, villages, df.issued, RAIN, RULES)
    assert set(result.villages) == {"35.78.01.1001"}
    assert any("no DigitalForecast area for kab/kota 35.05" in n for n in result.notes)


def synthetic_kab() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"code": ["35.19", "35.77"], "name": ["Kabupaten Madiun", "Kota Madiun"]},
        geometry=[box(111.0, -8.0, 111.5, -7.0), box(111.5, -7.7, 111.6, -7.6)],
        crs="EPSG:4326",
    )


def synthetic_area(
    area_id: str, description: str, lat: float, lon: float, name: str = "", kind: str = "land"
) -> ForecastArea:
    names = {"id_ID": name} if name else {}
    return ForecastArea(area_id, description, "Jawa Timur", kind, "", lat, lon, names, {})


def test_match_rules_on_synthetic_polygons() -> None:
    areas = (
        synthetic_area("1", "Madiun", -7.65, 111.55),  # ambiguous name, point in the kota
        synthetic_area("2", "Madiun", -7.5, 112.5),  # ambiguous name, point in neither: the nearest
        synthetic_area("3", "Caruban", -7.5, 111.2),  # not a kab/kota name, point in the kabupaten
        synthetic_area("4", "Laut Jawa", -6.0, 112.0),  # nothing fits
        synthetic_area("5", "Madiun", -7.5, 111.2, name="Kota Madiun"),  # kota by name though the point is in the kab
        synthetic_area("6", "Madiun", -7.5, 111.2, kind="sea"),
    )
    df = DigitalForecast(NOW, "local", areas, "synthetic.xml")
    got = {m.area_id: (m.kabkota, m.method) for m in match_areas(df, synthetic_kab())}
    assert got == {
        "1": ("35.77", "point+name"),
        "2": ("35.77", "nearest"),
        "3": ("35.19", "point"),
        "4": (None, "none"),
        "5": ("35.77", "name"),
        "6": (None, "none"),
    }


def test_two_areas_on_one_kabkota_take_the_worse() -> None:
    def with_weather(area: ForecastArea, code: int) -> ForecastArea:
        param = ForecastParameter("weather", "Weather", "hourly", (SeriesValue(NOW + 6 * H, {"icon": float(code)}),))
        return ForecastArea(
            area.id,
            area.description,
            area.domain,
            area.kind,
            area.tags,
            area.lat,
            area.lon,
            area.names,
            {"weather": param},
        )

    a = with_weather(synthetic_area("1", "Madiun", -7.65, 111.55, name="Kota Madiun"), 1)
    b = with_weather(synthetic_area("2", "Madiun", -7.62, 111.52, name="Kota Madiun"), 95)
    df = DigitalForecast(NOW, "local", (a, b), "two.xml")
    result = digitalforecast_levels(df, match_areas(df, synthetic_kab()), ["35.77.01.1001"], NOW, RAIN, RULES)
    village = result.villages["35.77.01.1001"]
    assert (village.level, village.source_kind, village.source_id) == (Level.WASPADA, "digitalforecast", "1,2")
    assert any("both map to 35.77" in n for n in result.notes)


def test_area_steps_last_as_long_as_the_spacing(jatim_2024: DigitalForecast) -> None:
    sby = next(a for a in jatim_2024.areas if a.id == "501306")
    steps = area_steps(sby)
    assert len(steps) == 12
    assert {s.hours for s in steps} == {6.0}
    assert all(s.mm is None for s in steps)


def test_digitalforecast_levels_on_real_villages(
    jatim_2024: DigitalForecast, jatim_kab: gpd.GeoDataFrame, jatim_villages_dir: Path
) -> None:
    villages = read_boundaries(jatim_villages_dir / "wilayah_boundaries_kel_35.73.geojson")  # Kota Malang
    kab_malang = read_boundaries(jatim_villages_dir / "wilayah_boundaries_kel_35.07.geojson")
    surabaya = read_boundaries(jatim_villages_dir / "wilayah_boundaries_kel_35.78.geojson")
    codes = [*villages["code"], *kab_malang["code"], *surabaya["code"]]
    matches = match_areas(jatim_2024, jatim_kab)
    now = datetime(2024, 4, 3, 3, 0, tzinfo=UTC)
    result = digitalforecast_levels(jatim_2024, matches, codes, now, RAIN, RULES)
    assert len(result.villages) == len(codes) == 57 + 390 + 152
    # In the 24 h from 03:00Z the window holds 06Z, 12Z, 18Z and 00Z. Kota Malang has a thunderstorm (95) at
    # 06Z: Waspada from 06Z (3 h lead) to 12Z. Kabupaten Malang has codes 1, 1, 3, 3 and Surabaya 0, 60, 3, 1.
    kota = result.villages["35.73.01.1001"]
    assert (kota.level, kota.source_id, kota.forecast.first_threat) == (Level.WASPADA, "501290", now + 3 * H)
    assert kota.forecast.threat_end == now + 9 * H
    assert {result.villages[c].level for c in villages["code"]} == {Level.WASPADA}
    assert {result.villages[c].level for c in kab_malang["code"]} == {Level.NONE}
    assert {result.villages[c].source_id for c in kab_malang["code"]} == {"501284"}
    assert {result.villages[c].level for c in surabaya["code"]} == {Level.NONE}
    # Over 72 h Surabaya's thunderstorm at 2024-04-05 12Z counts.
    later = digitalforecast_levels(
        jatim_2024, matches, list(surabaya["code"]), now, RAIN, ForecastRules(lead_hours=72)
    ).villages["35.78.01.1001"]
    assert (later.level, later.forecast.first_threat) == (Level.WASPADA, datetime(2024, 4, 5, 12, tzinfo=UTC))


def test_adm4_beats_digitalforecast_for_one_village() -> None:
    adm4 = ForecastLevels({"35.78.01.1001": vfl("35.78.01.1001", Level.NONE, kind="adm4")}, ("a",))
    digital = ForecastLevels(
        {c: vfl(c, Level.WASPADA, kind="digitalforecast") for c in ("35.78.01.1001", "35.78.01.1002")}, ("d",)
    )
    merged = merge_levels(adm4, digital)
    assert merged.villages["35.78.01.1001"].source_kind == "adm4"
    assert merged.villages["35.78.01.1001"].level == Level.NONE
    assert merged.villages["35.78.01.1002"].source_kind == "digitalforecast"
    assert merged.notes == ("a", "d")


# -- the forecast message ------------------------------------------------------------------------------


def vfl(
    code: str,
    level: Level,
    held: Level | None = None,
    *,
    first_h: float = 6.0,
    end_h: float = 9.0,
    mm: float | None = 55.0,
    kind: str = "adm4",
) -> VillageForecastLevel:
    threat = level > Level.NONE
    forecast = ForecastLevel(
        level=level,
        held=held if held is not None else level,
        category="lebat" if threat else None,
        held_category=None,
        first_threat=NOW + first_h * H if threat else None,
        threat_end=NOW + end_h * H if threat else None,
        max_mm=mm,
        steps=8,
    )
    return VillageForecastLevel(code, forecast, kind, code)  # type: ignore[arg-type]


ISSUED = datetime(2026, 11, 27, 19, 30, tzinfo=timezone(timedelta(hours=7)))  # 12:30 UTC


def test_forecast_message_fields() -> None:
    villages = {
        "35.78.01.1001": vfl("35.78.01.1001", Level.WASPADA, first_h=6, end_h=9, mm=55.0),
        "35.78.01.1002": vfl("35.78.01.1002", Level.SIAGA, first_h=9, end_h=15, mm=120.0),
        "35.78.01.1003": vfl("35.78.01.1003", Level.NONE, Level.WASPADA, mm=45.0),  # held only: listed
        "35.78.01.1004": vfl("35.78.01.1004", Level.NONE, mm=3.0),  # nothing: not listed
    }
    msg = forecast_message("jatim", villages, ISSUED, NOW, "adm4 x 4", RAIN, RULES)
    w = msg.warning
    assert w.identifier == "ews.forecast.jatim.20261127T1230Z"
    assert (w.msg_type, w.references, w.sender, w.status, w.language) == (
        "Update",
        ("ews.forecast.jatim",),
        "ews",
        "Actual",
        "id",
    )
    assert w.sent == ISSUED
    assert (w.event, w.certainty, w.urgency, w.severity) == ("Prakiraan Hujan Lebat", "Likely", "Future", "Severe")
    assert w.effective == NOW + 6 * H
    assert w.expires == NOW + 15 * H
    assert w.geometry.is_empty
    assert w.polygon_count == 0
    assert w.source == "adm4 x 4"
    # 06:00Z is 13:00 WIB (Surabaya)
    assert (
        w.headline
        == "Prakiraan hujan lebat dalam 6 jam (mulai 28/11 13:00 WIB) di 2 desa/kelurahan; tingkat tertinggi Siaga"
    )
    assert msg.metric == "mm"
    assert [(v.code, v.level, v.held, v.value, v.fraction) for v in msg.villages] == [
        ("35.78.01.1001", Level.WASPADA, Level.WASPADA, 55.0, 1.0),
        ("35.78.01.1002", Level.SIAGA, Level.SIAGA, 120.0, 1.0),
        ("35.78.01.1003", Level.NONE, Level.WASPADA, 45.0, 1.0),
    ]
    assert msg.details == {
        "lead_hours": 6.0,
        "first_threat": "2026-11-28T06:00:00+00:00",
        "max_mm": 120.0,
        "source_kind": "adm4",
        "window_hours": 24.0,
        "villages_adm4": 3,
        "villages_digitalforecast": 0,
    }


@pytest.mark.parametrize(("first_h", "urgency"), [(0.0, "Expected"), (3.0, "Expected"), (3.5, "Future")])
def test_urgency_by_lead_time(first_h: float, urgency: str) -> None:
    msg = forecast_message("r", [vfl("35.78.01.1001", Level.WASPADA, first_h=first_h)], ISSUED, NOW, "s", RAIN, RULES)
    assert msg.warning.urgency == urgency
    assert msg.warning.severity == "Moderate"


def test_threat_now_says_so() -> None:
    msg = forecast_message("r", [vfl("35.78.01.1001", Level.WASPADA, first_h=0.0)], ISSUED, NOW, "s", RAIN, RULES)
    assert msg.warning.headline.startswith("Prakiraan hujan lebat mulai sekarang")
    assert msg.details["lead_hours"] == 0.0


def test_no_threat_message_is_an_all_clear_for_everyone() -> None:
    # A newer forecast with no threat lists no village: the lifecycle sends all-clears to those alerted before.
    villages = [vfl("35.78.01.1001", Level.NONE), vfl("35.78.01.1002", Level.NONE, kind="digitalforecast")]
    msg = forecast_message("jatim", villages, ISSUED, NOW, "s", RAIN, RULES)
    assert msg.villages == ()
    assert msg.warning.expires == ISSUED + timedelta(hours=RULES.valid_hours)
    assert msg.warning.effective == ISSUED
    assert msg.warning.severity == "Minor"
    assert msg.warning.headline == "Tidak ada prakiraan hujan lebat dalam 24 jam ke depan"
    assert msg.details["lead_hours"] is None
    assert msg.details["first_threat"] is None


def test_digitalforecast_villages_carry_no_amount() -> None:
    village = vfl("35.73.01.1001", Level.WASPADA, mm=None, kind="digitalforecast")
    msg = forecast_message("jatim", [village], ISSUED, NOW, "df.xml", RAIN, RULES)
    assert msg.villages[0].value == 0.0
    assert msg.details["max_mm"] is None
    assert msg.details["source_kind"] == "digitalforecast"
    assert msg.details["villages_digitalforecast"] == 1


def test_message_from_real_levels_end_to_end() -> None:
    # From steps to the message: a heavy step at +3 h in one village, nothing in the other.
    fc_wet = village_forecast("35.78.01.1001", [0.0, 30.0, 0.0])
    fc_dry = village_forecast("35.78.01.1002", [0.0, 0.0, 0.0])
    levels = adm4_levels([fc_wet, fc_dry], NOW, RAIN, RULES)
    msg = forecast_message("jatim", levels.villages, NOW, NOW, "adm4", RAIN, RULES)
    assert [(v.code, v.level, v.value) for v in msg.villages] == [("35.78.01.1001", Level.WASPADA, 30.0)]
    assert (msg.warning.effective, msg.warning.expires, msg.warning.urgency) == (NOW + 3 * H, NOW + 6 * H, "Expected")
    assert msg.warning.identifier == "ews.forecast.jatim.20261128T0000Z"

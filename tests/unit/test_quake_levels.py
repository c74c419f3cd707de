"""Shaking intensity per village, levels and tsunami-coast alerts for BMKG earthquakes."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import given
from hypothesis import strategies as st

from ews.config import QuakeRules
from ews.exposure.coverage import VillageLayer
from ews.hazard.earthquake import (
    Earthquake,
    coastal_villages,
    intensity_mmi,
    quake_event_id,
    quake_message,
    shaking_radius_km,
    village_distances_km,
)
from ews.ingest.bmkg_quake import parse_quakes
from ews.ingest.boundaries import read_boundaries
from ews.types import Level

T0 = datetime(2026, 9, 24, 3, 0, 0, tzinfo=UTC)
KM_PER_DEG = 111.32  # one degree of longitude at the equator (WGS 84), for hand-worked distances


def quake(**changes: object) -> Earthquake:
    base = Earthquake(
        event_id=quake_event_id(T0, 0.05, 110.05),
        time=T0,
        lat=0.05,
        lon=110.05,
        magnitude=6.0,
        depth_km=10.0,
        region="uji",
        tsunami=False,
        potensi="Tidak berpotensi tsunami",
    )
    event = replace(base, **changes)  # type: ignore[arg-type]
    return replace(event, event_id=quake_event_id(event.time, event.lat, event.lon))


def grid(nx: int, ny: int, size: float = 0.1, x0: float = 110.0, y0: float = 0.0) -> VillageLayer:
    """``nx`` x ``ny`` square villages of ``size`` degrees from (x0, y0); codes 99.01.01.1<ix><iy>."""
    cells = [
        (
            f"99.01.01.1{ix:02d}{iy}",
            shapely.box(x0 + ix * size, y0 + iy * size, x0 + (ix + 1) * size, y0 + (iy + 1) * size),
        )
        for ix in range(nx)
        for iy in range(ny)
    ]
    table = gpd.GeoDataFrame(
        {"code": [c for c, _ in cells], "name": [c for c, _ in cells]}, geometry=[g for _, g in cells], crs="EPSG:4326"
    )
    return VillageLayer.from_villages(table)


# -- the intensity prediction equation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("magnitude", "rhyp", "expected"),
    [
        # OpenQuake's test table for AllenEtAl2012Rhypo (gem/oq-engine:openquake/hazardlib/tests/gsim/data/
        # a12ipe/AWW_IPE_RHYPO_MEAN.csv, from an independent Matlab implementation of the paper).
        (5.0, 1.0, 8.1928149),
        (5.0, 50.0, 3.7394023),
        (6.0, 10.0, 7.2488079),
        (6.0, 100.0, 4.2486195),
        (7.0, 20.0, 7.5721877),
        (7.0, 300.0, 4.2223319),
    ],
)
def test_ipe_matches_openquake_reference(magnitude: float, rhyp: float, expected: float) -> None:
    # Rhyp given as pure depth and as pure epicentral distance: the equation only sees Rhyp.
    assert intensity_mmi(magnitude, rhyp, 0.0) == pytest.approx(expected, abs=1e-6)
    assert intensity_mmi(magnitude, 0.0, rhyp) == pytest.approx(expected, abs=1e-6)


def test_ipe_by_hand() -> None:
    # M6, depth 30 km, epicentral 40 km: Rhyp = 50 km (3-4-5), no anelastic term at exactly 50 km.
    # Rm = -0.209 + 2.042 e = 5.342; MMI = 2.085 + 8.568 - 1.402 ln(sqrt(2500 + 28.54)) = 5.160.
    rm = -0.209 + 2.042 * np.e
    by_hand = 2.085 + 1.428 * 6 - 1.402 * np.log(np.sqrt(50**2 + rm**2))
    assert intensity_mmi(6.0, 30.0, 40.0) == pytest.approx(by_hand)
    assert by_hand == pytest.approx(5.1604, abs=1e-3)
    # Broadcasting, and the clip to [1, 12].
    out = intensity_mmi(np.array([3.0, 9.5]), 10.0, np.array([[0.0], [1500.0]]))
    assert out.shape == (2, 2)
    assert out.min() >= 1.0
    assert out.max() <= 12.0
    assert intensity_mmi(3.0, 10.0, 1500.0) == 1.0


def test_ipe_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="must be >= 0"):
        intensity_mmi(6.0, -1.0, 10.0)
    with pytest.raises(ValueError, match="finite"):
        intensity_mmi(float("nan"), 10.0, 10.0)


magnitudes = st.floats(min_value=3.0, max_value=9.0)
depths = st.floats(min_value=0.0, max_value=700.0)
distances = st.floats(min_value=0.0, max_value=2000.0)


@given(magnitudes, depths, distances, distances)
def test_mmi_never_rises_with_distance(m: float, h: float, d1: float, d2: float) -> None:
    near, far = sorted((d1, d2))
    assert intensity_mmi(m, h, far) <= intensity_mmi(m, h, near) + 1e-12


@given(magnitudes, magnitudes, depths, distances)
def test_mmi_never_falls_with_magnitude(m1: float, m2: float, h: float, d: float) -> None:
    small, big = sorted((m1, m2))
    assert intensity_mmi(big, h, d) >= intensity_mmi(small, h, d) - 1e-12


def test_shaking_radius_inverts_the_ipe() -> None:
    r = shaking_radius_km(6.5, 10.0, 5.0)
    assert intensity_mmi(6.5, 10.0, r) >= 5.0
    assert intensity_mmi(6.5, 10.0, r + 0.02) < 5.0
    assert shaking_radius_km(3.0, 10.0, 7.0) == 0.0


# -- distances and the coast ---------------------------------------------------------------------------


def test_distance_is_to_the_nearest_point_of_the_polygon() -> None:
    big = shapely.box(110.0, 0.0, 111.0, 1.0)
    small = shapely.box(112.0, 0.0, 112.1, 0.1)
    d = village_distances_km(0.5, 110.9, np.array([big, small], dtype=object))
    # Inside the big village -> 0, although its centroid is 0.4 deg (~44 km) away.
    assert d[0] == 0.0
    # Along the equator-ish parallel 0.5 N to the small box's nearest corner (112.0, 0.1): ~1.1 deg east.
    assert d[1] == pytest.approx(np.hypot(1.1 * KM_PER_DEG, 0.4 * 110.6), rel=5e-3)


def test_coastal_villages_are_the_rim_of_the_layer() -> None:
    layer = grid(3, 3)
    rim = coastal_villages(layer)
    assert rim == set(layer.table["code"]) - {"99.01.01.1011"}
    # The same from plain lon/lat polygons and codes.
    assert coastal_villages(list(layer.table.geometry), list(layer.table["code"])) == rim
    with pytest.raises(ValueError, match="one code per geometry"):
        coastal_villages(list(layer.table.geometry))


def test_a_narrow_gap_between_villages_is_not_coast() -> None:
    # 3 x 3 villages whose columns are 50 m apart (a digitising gap open to the outside at both ends):
    # the gaps close, so the middle village is still inland; with 2 km gaps it would be on the "coast".
    def cells(gap_deg: float) -> list[shapely.Polygon]:
        return [
            shapely.box(110 + ix * (0.1 + gap_deg), iy * 0.1, 110 + ix * (0.1 + gap_deg) + 0.1, (iy + 1) * 0.1)
            for ix in range(3)
            for iy in range(3)
        ]

    codes = [f"99.01.01.10{i}" for i in range(9)]
    assert coastal_villages(cells(0.00045), codes) == set(codes) - {"99.01.01.104"}
    assert coastal_villages(cells(0.018), codes) == set(codes)


# -- levels and messages on a small synthetic region ---------------------------------------------------


def test_levels_fall_with_distance_and_message_fields() -> None:
    layer = grid(20, 1)
    out = quake_message("uji", quake(), layer, QuakeRules(), set(), T0 + timedelta(minutes=5))
    message = out.message
    assert message is not None
    by_code = {v.code: v for v in message.villages}
    # Epicentre inside the first village: Rhyp = depth = 10 km -> MMI 7.25 (reference table) -> Awas.
    first = by_code["99.01.01.1000"]
    assert first.value == pytest.approx(7.25, abs=0.01)
    assert first.level == first.held == Level.AWAS
    values = [by_code[c].value for c in sorted(by_code)]
    assert values == sorted(values, reverse=True)
    # M6 at 10 km reaches MMI 5 out to ~50 km, so villages > 0.5 deg away get nothing.
    assert len(message.villages) < 20
    assert "99.01.01.1190" not in by_code
    w = message.warning
    assert w.identifier == f"ews.gempa.{quake().event_id}"
    assert (w.msg_type, w.status, w.sender, w.references, w.language) == ("Alert", "Actual", "ews", (), "id")
    assert (w.urgency, w.certainty, w.severity, w.event) == ("Immediate", "Observed", "Extreme", "Gempabumi")
    assert w.sent == w.effective == T0
    assert w.expires == T0 + timedelta(hours=6)
    assert w.headline == "Gempabumi M6.0, kedalaman 10 km, uji. Tidak berpotensi tsunami."
    assert w.polygon_count == 0
    assert w.geometry.contains(shapely.Point(110.05, 0.05))
    assert message.metric == "mmi"
    assert message.details["max_mmi"] == pytest.approx(7.25, abs=0.01)
    assert message.details["tsunami"] is False
    assert (message.details["lat"], message.details["lon"]) == (0.05, 110.05)


def test_weaker_event_gives_lower_severity() -> None:
    out = quake_message("uji", quake(magnitude=4.5, depth_km=5.0), grid(5, 1), QuakeRules(), set(), T0)
    assert out.message is not None
    top = max(v.level for v in out.message.villages)
    assert out.message.warning.severity == {Level.SIAGA: "Severe", Level.WASPADA: "Moderate"}[top]


def test_tsunami_puts_coastal_villages_in_radius_at_awas() -> None:
    layer = grid(30, 3)  # 3 deg by 0.3 deg; the rim is "coast"
    coast = coastal_villages(layer)
    event = quake(
        magnitude=7.0, depth_km=30.0, tsunami=True, potensi="Potensi tsunami untuk diteruskan pada masyarakat"
    )
    out = quake_message("uji", event, layer, QuakeRules(tsunami_radius_km=150), coast, T0)
    assert out.message is not None
    awas = {v.code for v in out.message.villages if v.level == Level.AWAS}
    distances = dict(
        zip(layer.table["code"], village_distances_km(event.lat, event.lon, layer.table.geometry.values), strict=True)
    )
    assert {c for c in coast if distances[c] <= 150} <= awas
    assert all(distances[c] > 150 for c in coast - awas)
    # Inland (middle row) villages get only their shaking level.
    inland = {c for c in layer.table["code"] if c.endswith("1")}
    assert all(intensity_mmi(7.0, 30.0, distances[c]) >= 7.0 for c in inland & awas)
    w = out.message.warning
    assert w.event == "Gempabumi Berpotensi Tsunami"
    assert "BERPOTENSI TSUNAMI" in w.headline
    assert out.message.details["tsunami_villages"] == len({c for c in coast if distances[c] <= 150})


@pytest.mark.parametrize(
    ("event", "now", "reason"),
    [
        (quake(magnitude=3.9), T0, "magnitude below min_magnitude 4"),
        (quake(), T0 + timedelta(hours=24, seconds=1), "late or replayed event, 24.0 h old"),
        (quake(), T0 - timedelta(minutes=6), "is after the run time"),
        (quake(lat=5.0, lon=140.0, magnitude=5.0), T0, "no village of uji reaches a level"),
    ],
)
def test_events_not_alerted_say_why(event: Earthquake, now: datetime, reason: str) -> None:
    out = quake_message("uji", event, grid(3, 3), QuakeRules(), set(), now)
    assert out.message is None
    assert reason in out.reason


def test_small_clock_skew_and_old_but_allowed_events_are_alerted() -> None:
    assert quake_message("uji", quake(), grid(3, 3), QuakeRules(), set(), T0 - timedelta(minutes=4)).message
    assert quake_message("uji", quake(), grid(3, 3), QuakeRules(), set(), T0 + timedelta(hours=23)).message


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        quake_message("uji", quake(), grid(3, 3), QuakeRules(), set(), datetime(2026, 9, 24, 3))


def test_same_event_from_autogempa_and_gempaterkini_gives_the_same_message() -> None:
    record = {
        "Tanggal": "24 Sep 2026", "Jam": "10:00:00 WIB", "DateTime": "2026-09-24T03:00:00+00:00",
        "Coordinates": "0.05,110.05", "Lintang": "0.05 LU", "Bujur": "110.05 BT", "Magnitude": "6.0",
        "Kedalaman": "10 km", "Wilayah": "uji", "Potensi": "Tidak berpotensi tsunami",
    }  # fmt: skip
    auto = {**record, "Dirasakan": "V uji", "Shakemap": "20260924100000.mmi.jpg"}
    [a] = parse_quakes(json.dumps({"Infogempa": {"gempa": auto}}).encode(), "autogempa.json")
    [b] = parse_quakes(json.dumps({"Infogempa": {"gempa": [record, record]}}).encode(), "gempaterkini.json")
    layer = grid(10, 2)
    first = quake_message("uji", a, layer, QuakeRules(), set(), T0 + timedelta(minutes=2)).message
    resent = quake_message("uji", b, layer, QuakeRules(), set(), T0 + timedelta(hours=3)).message
    assert first is not None
    assert resent is not None
    assert first.warning.identifier == resent.warning.identifier == "ews.gempa.20260924T030000Z_0.05N_110.05E"
    assert first.villages == resent.villages
    assert (first.warning.sent, first.warning.expires) == (resent.warning.sent, resent.warning.expires)


# -- real boundaries -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bali(kec_dir: Path) -> VillageLayer:
    return VillageLayer.from_villages(read_boundaries(kec_dir / "wilayah_boundaries_kec_51.geojson"))


@pytest.fixture(scope="module")
def jatim(jatim_villages_dir: Path) -> VillageLayer:
    return VillageLayer.from_villages(read_boundaries(jatim_villages_dir))


@pytest.fixture(scope="module")
def jatim_coast(jatim: VillageLayer) -> set[str]:
    return coastal_villages(jatim)


@pytest.fixture(scope="module")
def flores(shared_data: Path) -> Earthquake:
    name = "arraysyams_gempaterkini_2021-12-14_tsunami-potential.json"
    quakes = parse_quakes((shared_data / "bmkg" / "gempa" / name).read_bytes(), name)
    return next(q for q in quakes if q.event_id == "20211214T032023Z_7.59S_122.24E")


# Bangli regency is landlocked; Ubud, Petang, Baturiti... lie inland too.
BALI_INLAND = {"Bangli", "Susut", "Tembuku", "Kintamani", "Ubud", "Tegallalang", "Payangan", "Petang", "Baturiti"}
BALI_COAST = {"Kuta", "Kuta Selatan", "Denpasar Selatan", "Nusa Penida", "Karangasem", "Abang", "Buleleng", "Negara"}


def test_bali_coast_from_the_outline(bali: VillageLayer) -> None:
    coast = coastal_villages(bali)
    names = dict(zip(bali.table["code"], bali.table["name"], strict=True))
    coastal_names = {names[c] for c in coast}
    assert coastal_names >= BALI_COAST
    assert not coastal_names & BALI_INLAND


def test_flores_tsunami_event_puts_coastal_bali_at_awas(bali: VillageLayer, flores: Earthquake) -> None:
    coast = coastal_villages(bali)
    names = dict(zip(bali.table["code"], bali.table["name"], strict=True))
    now = flores.time + timedelta(minutes=10)
    out = quake_message("bali", flores, bali, QuakeRules(tsunami_radius_km=1000), coast, now)
    assert out.message is not None
    villages = out.message.villages
    assert {v.code for v in villages} == coast
    assert all(v.level == Level.AWAS for v in villages)
    # ~725-840 km away, M7.4 shakes Bali at MMI 3-4: every level here is the tsunami's.
    assert all(3.0 < v.value < 4.0 for v in villages)
    assert not {names[v.code] for v in villages} & BALI_INLAND
    d = dict(
        zip(bali.table["code"], village_distances_km(flores.lat, flores.lon, bali.table.geometry.values), strict=True)
    )
    nearest = min(coast, key=d.__getitem__)
    assert names[nearest] == "Abang"
    assert d[nearest] == pytest.approx(725, abs=3)
    assert out.message.warning.severity == "Extreme"
    # The identifier says BMKG said "tsunami": the store knows afterwards which events were tsunami alerts.
    assert out.message.warning.identifier == "ews.gempa.20211214T032023Z_7.59S_122.24E.tsunami"
    # With the default 300 km radius Bali is out of reach.
    assert quake_message("bali", flores, bali, QuakeRules(), coast, now).message is None


@pytest.mark.slow
def test_flores_event_with_default_radius_leaves_jawa_timur_alone(
    jatim: VillageLayer, jatim_coast: set[str], flores: Earthquake
) -> None:
    out = quake_message("jatim", flores, jatim, QuakeRules(), jatim_coast, flores.time + timedelta(minutes=10))
    assert out.message is None
    assert "no village of jatim reaches a level" in out.reason


@pytest.mark.slow
def test_synthetic_m65_in_jawa_timur(jatim: VillageLayer) -> None:
    # Shallow M6.5 under Kabupaten Malang (-8.1, 112.6).
    event = quake(lat=-8.1, lon=112.6, magnitude=6.5, depth_km=10.0)
    out = quake_message("jatim", event, jatim, QuakeRules(), set(), T0 + timedelta(minutes=3))
    assert out.message is not None
    levels = {v.code: v for v in out.message.villages}
    d = dict(
        zip(jatim.table["code"], village_distances_km(event.lat, event.lon, jatim.table.geometry.values), strict=True)
    )
    near = [c for c in d if d[c] < 10]
    assert near
    assert all(levels[c].level >= Level.SIAGA for c in near)
    assert any(levels[c].level == Level.AWAS for c in near)
    # Nothing 150 km or more away (Madura's east, Banyuwangi, the Kangean islands).
    assert all(d[c] < 150 for c in levels)
    far = [c for c in d if d[c] > 150]
    assert len(far) > 1000
    # MMI decreases with distance across the whole layer.
    order = sorted(levels, key=d.__getitem__)
    values = [levels[c].value for c in order]
    assert all(a >= b - 1e-9 for a, b in itertools.pairwise(values))
    assert out.message.warning.severity == "Extreme"


@pytest.mark.slow
def test_jawa_timur_coast_includes_the_sea_shore_and_not_the_interior(
    jatim: VillageLayer, jatim_coast: set[str]
) -> None:
    kab = jatim.table.set_index("code")["kabkota"]
    coastal_kab = {kab[c] for c in jatim_coast}
    # Sumenep (35.29, islands) and Banyuwangi (35.10) are on the sea; Kota Madiun (35.77) is inland.
    assert {"35.29", "35.10"} <= coastal_kab
    assert "35.77" not in coastal_kab
    # A small share of all villages: the rim, not the interior.
    assert 0.03 < len(jatim_coast) / len(jatim.table) < 0.15

"""The village tables of a run (ews.review.tables): levels in force, and how ended alerts ended (pure).

Hand-made villages V1..V4 and impact rows; the same rule as the map (ews.review.scene.village_standing).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry import box

from ews.impact.assess import IMPACT_COLUMNS, exposed_total, level_counts
from ews.review.scene import EndedAlert, map_scene, village_standing
from ews.review.tables import TABLE_COLUMNS, ended_counts, village_table
from ews.types import Level, Warning

WIB = timezone(timedelta(hours=7))
NOW = datetime(2026, 11, 28, 19, 5, tzinfo=WIB)
V1, V2, V3, V4 = "35.01.01.2001", "35.01.01.2002", "35.01.01.2003", "35.78.01.1004"
LIVE, CANCEL, EXPIRED = "W-live", "W-cancel", "W-expired"


def villages() -> gpd.GeoDataFrame:
    codes = [V1, V2, V3, V4]
    return gpd.GeoDataFrame(
        {
            "code": codes,
            "name": ["Satu", "Dua", "Tiga", "Empat"],
            "kecamatan": [c[:8] for c in codes],
            "kecamatan_name": ["Kec A", "Kec A", "Kec A", "Kec B"],
            "kabkota": [c[:5] for c in codes],
            "kabkota_name": ["Kabupaten Satu"] * 3 + ["Kota Dua"],
            "population": [1000.0, 2000.0, 3000.0, 4000.0],
            "population_source": ["test"] * 4,
            "area_km2": [1.0, 2.0, 3.0, 4.0],
        },
        geometry=[box(112.0 + 0.01 * i, -7.50, 112.01 + 0.01 * i, -7.49) for i in range(4)],
        crs="EPSG:4326",
    )


def warning(identifier: str, msg_type: str = "Alert", expires: datetime | None = None) -> Warning:
    return Warning(
        identifier=identifier, sender="cuaca.ekstrem@bmkg.go.id", sent=NOW - timedelta(hours=1), status="Actual",
        msg_type=msg_type, references=(), language="id", event="Hujan Lebat", urgency="Immediate",
        severity="Severe", certainty="Observed", effective=NOW - timedelta(hours=1),
        expires=expires or NOW + timedelta(hours=2), headline="", description="", web="", area_desc="Jawa Timur",
        geometry=box(112.0, -7.50, 112.03, -7.49), polygon_count=1, source="test",
    )  # fmt: skip


def rows(*items: tuple[str, str, int, float]) -> pd.DataFrame:
    """Impact rows (village, warning, level, fraction), with every column of ews.impact.assess.impacts."""
    table = villages().set_index("code")
    out = pd.DataFrame(
        {
            "code": [i[0] for i in items],
            "warning_id": [i[1] for i in items],
            "level": [i[2] for i in items],
            "fraction": [i[3] for i in items],
        }
    )
    for column in ("name", "kecamatan", "kecamatan_name", "kabkota", "kabkota_name", "population_source"):
        out[column] = out["code"].map(table[column])
    out["population"] = out["code"].map(table["population"])
    out["area_km2"] = out["code"].map(table["area_km2"])
    out["covered_km2"] = out["area_km2"] * out["fraction"]
    out["population_exposed"] = out["population"] * out["fraction"]
    out["event"] = "Hujan Lebat"
    out["level_label"] = [Level(v).label for v in out["level"]]
    return out[IMPACT_COLUMNS]


WARNINGS = [warning(LIVE), warning(CANCEL, "Cancel"), warning(EXPIRED, expires=NOW - timedelta(minutes=5))]
# V1: Siaga under the live warning (and the Cancel repeats the old polygon over it); V2: only the Cancel;
# V3: only the expired warning (its alert ended in an earlier run); V4: an alert that expired out of the feed.
ROWS = rows((V1, LIVE, 2, 0.6), (V1, CANCEL, 3, 0.9), (V2, CANCEL, 3, 0.8), (V3, EXPIRED, 2, 0.7))
ENDED = {
    V1: EndedAlert(V1, "cancel", Level.AWAS, "T-old"),  # still leveled by the live warning: not ended
    V2: EndedAlert(V2, "cancel", Level.AWAS, "T-old"),
    V4: EndedAlert(V4, "end", Level.WASPADA, "T-gone"),
}


def test_only_warnings_in_force_give_a_level() -> None:
    table = village_table(villages(), ROWS, WARNINGS, now=NOW, ended=ENDED).set_index("code")
    assert dict(table["level_label"]) == {V1: "Siaga", V2: "none", V3: "none", V4: "none"}
    assert dict(table["status"]) == {V1: "BERLAKU", V2: "DICABUT", V3: "", V4: "BERAKHIR"}
    assert dict(table["ended_level"]) == {V1: "", V2: "Awas", V3: "", V4: "Waspada"}
    assert dict(table["ended_thread"]) == {V1: "", V2: "T-old", V3: "", V4: "T-gone"}
    assert dict(table["warning_id"]) == {V1: LIVE, V2: CANCEL, V3: EXPIRED, V4: ""}
    assert dict(table["warnings"]) == {V1: 1, V2: 0, V3: 0, V4: 0}
    assert dict(table["population_exposed"]) == {V1: 600.0, V2: 0.0, V3: 0.0, V4: 0.0}
    assert table.loc[V4, "name"] == "Empat"
    assert table.loc[V4, "population"] == 4000.0
    assert level_counts(table) == {"Awas": 0, "Siaga": 1, "Waspada": 0}
    assert exposed_total(table) == 600.0
    assert ended_counts(table) == {"DICABUT": 1, "BERAKHIR": 1}


def test_rows_and_columns_come_in_the_documented_order() -> None:
    table = village_table(villages(), ROWS, WARNINGS, now=NOW, ended=ENDED)
    assert list(table.columns) == TABLE_COLUMNS
    after = list(table.columns).index("level_label") + 1
    assert list(table.columns[after : after + 3]) == ["status", "ended_level", "ended_thread"]
    assert list(table["code"]) == [V1, V2, V4, V3]  # in force, DICABUT, BERAKHIR, the rest


def test_the_map_and_the_table_agree() -> None:
    table = village_table(villages(), ROWS, WARNINGS, now=NOW, ended=ENDED).set_index("code")
    drawn = map_scene(
        villages(), ROWS, WARNINGS, region_name="Jawa Timur", now=NOW, tz=WIB, zone_name="WIB", ended=ENDED
    ).villages.set_index("code")
    words = {"cancel": "DICABUT", "end": "BERAKHIR"}
    ended_on_map = {c: words[k] for c, k in drawn["ended"].items() if k}
    assert ended_on_map == {c: s for c, s in table["status"].items() if s in ("DICABUT", "BERAKHIR")}
    leveled_on_map = {c: int(lv) for c, lv in drawn["level"].items() if lv and c not in ended_on_map}
    assert leveled_on_map == {c: int(lv) for c, lv in table["level"].items() if lv}
    standing = village_standing(ROWS, WARNINGS, NOW, ENDED)
    assert set(standing.ended) == {V2, V4}


def test_a_run_with_nothing_writes_the_header_only() -> None:
    empty = rows()
    table = village_table(villages(), empty, [], now=NOW, ended={})
    assert list(table.columns) == TABLE_COLUMNS
    assert table.empty
    assert level_counts(table) == {"Awas": 0, "Siaga": 0, "Waspada": 0}
    assert ended_counts(table) == {"DICABUT": 0, "BERAKHIR": 0}
    assert np.isclose(exposed_total(table) or 0.0, 0.0)

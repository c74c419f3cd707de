"""What a run's risk map shows (ews.review.scene): levels in force only, ended alerts, true sources, exercises.

Four hand-made villages in two kab/kota near 112.0E 7.5S, each a 0.01-degree square in a row:

    V1 V2 V3 (Kabupaten Satu)    V4 (Kota Dua), and V9 far away at 113E (Kota Jauh)
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import Point, Polygon, box

from ews.alerts.model import VillageState
from ews.review.scene import (
    EndedAlert,
    area_source,
    ended_alerts,
    exercise_marks,
    in_force,
    is_bmkg,
    is_exercise_run,
    issuer,
    map_scene,
)
from ews.types import HazardMessage, Level, Warning

WIB = timezone(timedelta(hours=7))
NOW = datetime(2026, 11, 28, 19, 5, tzinfo=WIB)
BMKG = "cuaca.ekstrem@bmkg.go.id"
V1, V2, V3, V4, V9 = "35.01.01.2001", "35.01.01.2002", "35.01.01.2003", "35.78.01.1004", "35.79.01.1009"


def village_table() -> gpd.GeoDataFrame:
    codes = [V1, V2, V3, V4, V9]
    shapes = [box(112.0 + 0.01 * i, -7.50, 112.01 + 0.01 * i, -7.49) for i in range(4)]
    shapes.append(box(113.0, -7.50, 113.01, -7.49))
    return gpd.GeoDataFrame(
        {
            "code": codes,
            "name": ["Satu", "Dua", "Tiga", "Empat", "Sembilan"],
            "kecamatan_name": ["Kec A", "Kec A", "Kec A", "Kec B", "Kec C"],
            "kabkota_name": ["Kabupaten Satu"] * 3 + ["Kota Dua", "Kota Jauh"],
        },
        geometry=shapes,
        crs="EPSG:4326",
    )


def warning(identifier: str, **changes: object) -> Warning:
    fields: dict[str, object] = {
        "identifier": identifier,
        "sender": BMKG,
        "sent": NOW - timedelta(hours=1),
        "status": "Actual",
        "msg_type": "Alert",
        "references": (),
        "language": "id",
        "event": "Hujan Lebat disertai Petir",
        "urgency": "Immediate",
        "severity": "Severe",
        "certainty": "Observed",
        "effective": NOW - timedelta(hours=1),
        "expires": NOW + timedelta(hours=2),
        "headline": "",
        "description": "",
        "web": "",
        "area_desc": "Banten",  # what BMKG wrote: never the map's title
        "geometry": box(112.0, -7.50, 112.02, -7.49),
        "polygon_count": 1,
        "source": "test",
    }
    fields.update(changes)
    return Warning(**fields)  # type: ignore[arg-type]


def impact_rows(*rows: tuple[str, str, int]) -> pd.DataFrame:
    """(village, warning, level) rows with the fraction the level came from."""
    return pd.DataFrame(
        {
            "code": [r[0] for r in rows],
            "warning_id": [r[1] for r in rows],
            "level": [r[2] for r in rows],
            "fraction": [0.6] * len(rows),
            "population_exposed": [100.0] * len(rows),
        }
    )


def state(village: str, thread: str, level: Level, active: bool, warning_id: str = "W1") -> VillageState:
    return VillageState("r", village, thread, level, 1, warning_id, NOW, None, 0.5, active)


def scene(rows: pd.DataFrame, warnings: list[Warning], **kw: object):  # type: ignore[no-untyped-def]
    return map_scene(
        village_table(), rows, warnings, region_name="Jawa Timur", now=NOW, tz=WIB, zone_name="WIB",
        **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def levels_of(frame: gpd.GeoDataFrame) -> dict[str, tuple[int, str]]:
    return {str(r.code): (int(r.level), str(r.ended)) for r in frame.itertuples()}


# ---------------------------------------------------------------------------------------- in force


def test_in_force_is_neither_a_cancel_nor_expired() -> None:
    assert in_force(warning("W1"), NOW)
    assert not in_force(warning("W1", expires=NOW), NOW)  # expired at the run's instant, as the lifecycle says
    assert not in_force(warning("W1", msg_type="Cancel"), NOW)
    assert in_force(warning("W1", expires=None), NOW)


def test_only_warnings_in_force_give_a_level_on_the_map() -> None:
    expired = warning("W2", expires=NOW - timedelta(minutes=5))
    cancel = warning("W3", msg_type="Cancel", references=(f"{BMKG},W0,x",))
    rows = impact_rows((V1, "W1", 2), (V2, "W2", 3), (V3, "W3", 3))
    result = scene(rows, [warning("W1"), expired, cancel])
    # V2 (expired) and V3 (a Cancel repeating its polygon) were drawn red before: now no level.
    assert levels_of(result.villages) == {V1: (2, ""), V2: (0, "")}  # V1 and its neighbour
    assert result.title.warning_ids == ("W1",)
    assert list(result.areas["identifier"]) == ["W1"]  # only the area of a warning in force is outlined


def test_the_title_is_the_region_and_the_warnings_in_force_never_an_area_desc() -> None:
    quake = warning(
        "ews.gempa.20261128T110000Z_9.20S_112.40E", sender="ews", event="Gempabumi Berpotensi Tsunami",
        sent=NOW - timedelta(minutes=30), effective=NOW - timedelta(minutes=30), expires=NOW + timedelta(hours=5),
    )  # fmt: skip
    other_province = warning("W8", geometry=box(106.0, -6.5, 106.3, -6.2))  # in force, no village here
    rows = impact_rows((V1, "W1", 2), (V2, quake.identifier, 3))
    title = scene(rows, [warning("W1"), quake, other_province]).title
    assert title.region == "Jawa Timur"
    assert [(w.identifier, w.source) for w in title.active] == [
        ("W1", "BMKG"),
        (quake.identifier, "info gempa BMKG, perkiraan EWS"),
    ]
    assert title.valid_from == NOW - timedelta(hours=1)
    assert title.valid_until == NOW + timedelta(hours=5)
    assert title.as_of == NOW
    assert not title.exercise
    assert "Banten" not in repr(title)


def test_no_warning_in_force_leaves_no_validity() -> None:
    title = scene(impact_rows(), []).title
    assert title.active == ()
    assert (title.valid_from, title.valid_until) == (None, None)


def test_one_warning_without_expiry_makes_the_end_unknown() -> None:
    rows = impact_rows((V1, "W1", 1), (V2, "W2", 1))
    title = scene(rows, [warning("W1"), warning("W2", expires=None)]).title
    assert title.valid_until is None


# ---------------------------------------------------------------------------------------- ended alerts


def test_ended_alerts_tell_a_cancel_from_an_end() -> None:
    before = [
        state(V1, "T1", Level.SIAGA, True),
        state(V2, "T2", Level.WASPADA, True),
        state(V3, "T1", Level.AWAS, True),
    ]
    after = [
        state(V1, "T1", Level.NONE, False, warning_id="C1"),  # cancelled by C1, a Cancel of this run
        state(V2, "T2", Level.NONE, False, warning_id="W2"),  # expired (or the threat passed)
        state(V3, "T1", Level.NONE, False, warning_id="C1"),
        state(V3, "T9", Level.SIAGA, True, warning_id="W9"),  # ...but still alerted by another thread
    ]
    assert ended_alerts(before, after, {"C1"}) == {
        V1: EndedAlert(V1, "cancel", Level.SIAGA, "T1"),
        V2: EndedAlert(V2, "end", Level.WASPADA, "T2"),
    }


def test_a_village_ended_by_two_threads_tells_the_cancel() -> None:
    before = [state(V1, "T1", Level.AWAS, True), state(V1, "T2", Level.WASPADA, True)]
    after = [state(V1, "T1", Level.NONE, False, "W1"), state(V1, "T2", Level.NONE, False, "C2")]
    assert ended_alerts(before, after, {"C2"})[V1] == EndedAlert(V1, "cancel", Level.WASPADA, "T2")


def test_an_alert_still_active_or_already_over_is_not_ended() -> None:
    before = [state(V1, "T1", Level.SIAGA, True), state(V2, "T2", Level.SIAGA, False)]
    after = [state(V1, "T1", Level.AWAS, True), state(V2, "T2", Level.NONE, False)]
    assert ended_alerts(before, after, set()) == {}


def test_ended_villages_are_drawn_as_ended_unless_a_level_stands() -> None:
    ended = {
        V1: EndedAlert(V1, "cancel", Level.SIAGA, "T1"),
        V2: EndedAlert(V2, "end", Level.AWAS, "T2"),
    }
    rows = impact_rows((V2, "W5", 1))  # V2 has a level in force again from another warning
    result = scene(rows, [warning("W5")], ended=ended)
    drawn = levels_of(result.villages)
    assert drawn[V1] == (2, "cancel")  # the level that ended, for the tooltip; drawn hatched, not filled
    assert drawn[V2] == (1, "")
    v1 = result.villages.set_index("code").loc[V1]
    assert v1["fraction"] == 0.0
    assert pd.isna(v1["population_exposed"])


def test_the_villages_drawn_are_the_focus_and_its_neighbours() -> None:
    result = scene(impact_rows((V1, "W1", 2)), [warning("W1")], ended={V4: EndedAlert(V4, "end", Level.SIAGA, "T")})
    assert set(result.villages["code"]) == {V1, V2, V3, V4}  # V9 is far away
    assert set(result.villages["kabkota"]) == {"Kabupaten Satu", "Kota Dua"}
    assert scene(impact_rows(), []).villages.empty


# ---------------------------------------------------------------------------------------- sources


def test_is_bmkg() -> None:
    assert is_bmkg("cuaca.ekstrem@bmkg.go.id")
    assert is_bmkg("info@data.bmkg.go.id")
    assert not is_bmkg("demo@ews.invalid")
    assert not is_bmkg("bmkg.go.id.example.org")
    assert not is_bmkg("ews")


def quake(tsunami: bool) -> HazardMessage:
    w = warning(
        "ews.gempa.20261128T110000Z_9.20S_112.40E", sender="ews", event="Gempabumi Berpotensi Tsunami",
        geometry=Point(112.4, -9.2).buffer(2.7),
    )  # fmt: skip
    details = {"tsunami": tsunami, "shaking_radius_km": 84.6, "tsunami_radius_km": 300.0 if tsunami else None}
    return HazardMessage(warning=w, metric="mmi", villages=(), details=details)


@pytest.mark.parametrize(
    ("make", "estimate_by", "expected"),
    [
        (lambda: (warning("W1"), None), "perkiraan EWS", ("area peringatan BMKG", False)),
        (lambda: (warning("W1", sender="demo@ews.invalid"), None), "perkiraan EWS",
         ("area peringatan CAP demo@ews.invalid", False)),
        (lambda: (quake(True).warning, quake(True)), "perkiraan EWS",
         ("radius tsunami 300 km dari pusat gempa – perkiraan EWS", True)),
        (lambda: (quake(False).warning, quake(False)), "perkiraan Pusdalops BPBD Jatim",
         ("radius guncangan gempa 85 km – perkiraan Pusdalops BPBD Jatim", True)),
        (lambda: (quake(True).warning, None), "perkiraan EWS",
         ("area Gempabumi Berpotensi Tsunami – perkiraan EWS", True)),
        (lambda: (warning("ews.rain.jawa-timur.20261128T1100Z", sender="ews"), None), "perkiraan EWS",
         ("area hujan satelit – perkiraan EWS", True)),
    ],
    ids=["bmkg", "other-sender", "tsunami", "shaking-command-center", "no-details", "rain"],
)  # fmt: skip
def test_area_source_names_who_drew_the_area(make, estimate_by, expected) -> None:  # type: ignore[no-untyped-def]
    w, hazard = make()
    assert area_source(w, hazard, estimate_by) == expected


def test_issuer_names_bmkg_only_for_bmkg() -> None:
    assert issuer(warning("W1")) == "BMKG"
    assert issuer(warning("W1", sender="demo@ews.invalid")) == "demo@ews.invalid"
    assert issuer(quake(True).warning) == "info gempa BMKG, perkiraan EWS"
    assert issuer(warning("ews.rain.r.1", sender="ews")) == "hujan satelit, perkiraan EWS"
    assert issuer(warning("ews.forecast.r.1", sender="ews")) == "prakiraan cuaca BMKG"


def test_the_scene_labels_each_area_with_its_source() -> None:
    tsunami = quake(True)
    rows = impact_rows((V1, "W1", 2), (V2, tsunami.warning.identifier, 3))
    areas = scene(rows, [warning("W1"), tsunami.warning], hazards=[tsunami]).areas
    assert dict(zip(areas["identifier"], zip(areas["label"], areas["estimate"], strict=True), strict=True)) == {
        "W1": ("area peringatan BMKG", False),
        tsunami.warning.identifier: ("radius tsunami 300 km dari pusat gempa – perkiraan EWS", True),
    }


# ---------------------------------------------------------------------------------------- exercises


def test_an_exercise_run_is_one_whose_every_warning_is_an_exercise() -> None:
    drill = [warning("W1", status="Exercise"), warning("W2", status="Test")]
    assert is_exercise_run(drill)
    assert not is_exercise_run([*drill, warning("W3")])  # a real warning is never stamped a drill
    assert not is_exercise_run([])
    assert exercise_marks(["W1", "W3", "W2"], {"W1", "W2"}) == ["LATIHAN", "", "LATIHAN"]


def test_the_title_of_an_exercise_run_says_so() -> None:
    drill = warning("W1", status="Exercise")
    title = scene(impact_rows((V1, "W1", 2)), [drill]).title
    assert title.exercise
    mixed = scene(impact_rows((V1, "W1", 2), (V2, "W2", 1)), [drill, replace(drill, identifier="W2", status="Actual")])
    assert not mixed.title.exercise
    assert [w.exercise for w in mixed.title.active] == [True, False]


def test_an_empty_geometry_is_not_outlined() -> None:
    rain = warning("ews.rain.r.1", sender="ews", geometry=Polygon())
    result = scene(impact_rows((V1, rain.identifier, 1)), [rain])
    assert result.areas.empty
    assert result.title.warning_ids == (rain.identifier,)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [({}, "perkiraan EWS"), ({"command_center": {"name": "Pusdalops BPBD Jatim"}}, "perkiraan Pusdalops BPBD Jatim")],
    ids=["no-command-center", "command-center"],
)
def test_ews_estimates_are_named_after_the_command_center_when_the_region_has_one(extra, expected, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from ews.config import region_from_mapping
    from ews.pipeline import _estimate_by

    data = {"id": "r", "name": "R", "province_code": "35", "boundaries": {"path": "v.geojson"}, **extra}
    assert _estimate_by(region_from_mapping(data, source="r.yaml", base=tmp_path, env={})) == expected


# ---------------------------------------------------------------------------------- national scale


def test_many_untouched_neighbours_give_way_to_the_region_outline(monkeypatch: pytest.MonkeyPatch) -> None:
    import ews.review.scene as scene_module
    from ews.review.display import display_geometry

    table = village_table()
    display = display_geometry(table["code"].tolist(), table.geometry.to_numpy())
    ended = {V4: EndedAlert(V4, "end", Level.SIAGA, "T")}
    # In view: V1 (Siaga) and V4 (ended), and between them V2 and V3, untouched.
    monkeypatch.setattr(scene_module, "NEIGHBOURS_DRAWN", 1)
    national = scene(impact_rows((V1, "W1", 2)), [warning("W1")], ended=ended, display=display)
    assert levels_of(national.villages) == {V1: (2, ""), V4: (2, "end")}  # only what the analyst must see
    assert national.outline is not None
    assert national.outline.villages == 2  # V2 and V3: the legend still counts them as untouched
    assert national.outline.geometry.equals(display.outline)
    monkeypatch.setattr(scene_module, "NEIGHBOURS_DRAWN", 2)
    regional = scene(impact_rows((V1, "W1", 2)), [warning("W1")], ended=ended, display=display)
    assert set(regional.villages["code"]) == {V1, V2, V3, V4}  # few enough: drawn one by one, as before
    assert regional.outline is None

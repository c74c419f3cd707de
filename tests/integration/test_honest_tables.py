"""Honest tables (issue 11.6): ``summary.csv``, ``villages.*`` and the run's level counts tell only levels in force.

BMKG's real Gorontalo nowcast (CGT20260924002, 2026-09-24 15:27-17:27 WITA; Dengilo and Mananggu at Siaga,
Tolinggula at Waspada) on the Gorontalo kecamatan, then the run that cancels it or the one after it expired:
those villages say DICABUT / BERAKHIR with the level that ended, and are counted at no level, exactly as the
map draws them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

from ews.channels.outbox import FileOutbox
from ews.cli import _print_report
from ews.config import RegionConfig, open_region
from ews.pipeline import RunReport, run_slice
from ews.store.repository import Store

ALERT_ID = "2.49.0.1.360.0.2026.09.24.07.75.002"
CANCEL_ID = "2.49.0.1.360.0.2026.09.24.08.75.009"
OTHER_ID = "2.49.0.1.360.0.2026.09.24.08.75.010"
SIAGA = {"75.04.08", "75.02.05"}  # Dengilo, Mananggu: the polygon covers almost all of them
WASPADA = {"75.05.05"}  # Tolinggula: 5 % covered
ALERTED = SIAGA | WASPADA
GRAZED = {"75.04.05", "75.04.09"}  # Paguat, Buntulia: under min_fraction, touched at no level


def wita(hhmm: str) -> datetime:
    return datetime.fromisoformat(f"2026-09-24T{hhmm}:00+08:00")


@pytest.fixture
def gorontalo(kec_dir: Path, tmp_path: Path) -> RegionConfig:
    path = tmp_path / "gorontalo.yaml"
    path.write_text(
        "id: gorontalo-kec\nname: Gorontalo\nprovince_code: '75'\n"
        f"boundaries: {{path: {kec_dir / 'wilayah_boundaries_kec_75.geojson'}}}\n"
    )
    return open_region(path)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = Store.from_url(database_url)
    yield opened
    opened.close()


@pytest.fixture
def alert_xml(cap_dir: Path) -> str:
    return (cap_dir / "siaga_cap-id-CGT20260924002_alert.xml").read_text(encoding="utf-8")


def cancel_of(alert: str) -> str:
    """BMKG's Cancel of the alert: same polygons (as BMKG repeats them), a reference to the alert."""
    refs = f"cuaca.ekstrem@bmkg.go.id,{ALERT_ID},2026-09-24T15:07:00+08:00"
    return (
        alert.replace(f"<identifier>{ALERT_ID}</identifier>", f"<identifier>{CANCEL_ID}</identifier>")
        .replace("<sent>2026-09-24T15:07:00+08:00</sent>", "<sent>2026-09-24T16:00:00+08:00</sent>")
        .replace("<msgType>Alert</msgType>", f"<msgType>Cancel</msgType>\n  <references>{refs}</references>")
    )


def run(config: RegionConfig, store: Store, out: Path, now: datetime, caps: list[str]) -> RunReport:
    feed = out.with_name(out.name + "-feed")
    feed.mkdir()
    for i, cap in enumerate(caps):
        (feed / f"{i}.xml").write_text(cap, encoding="utf-8")
    source = str(feed) if caps else None  # None: a run with no CAP warnings at all
    return run_slice(config, source, out, now=now, store=store, channel=FileOutbox(out.parent / "sent.jsonl"))


def summary(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "summary.csv", dtype=str, keep_default_na=False).set_index("code")


def levels(table: pd.DataFrame) -> dict[str, str]:
    return {code: label for code, label in table["level_label"].items() if label != "none"}


def printed(report: RunReport, capsys: pytest.CaptureFixture[str]) -> str:
    _print_report(report)
    return capsys.readouterr().out


def test_a_cancelled_warning_leaves_no_level_in_the_tables(
    gorontalo: RegionConfig, store: Store, alert_xml: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = run(gorontalo, store, tmp_path / "1", wita("15:30"), [alert_xml])
    assert first.levels == {"Awas": 0, "Siaga": 2, "Waspada": 1}
    table = summary(tmp_path / "1")
    assert levels(table) == {**dict.fromkeys(SIAGA, "Siaga"), **dict.fromkeys(WASPADA, "Waspada")}
    assert set(table.index[table["status"] == "BERLAKU"]) == ALERTED
    assert set(table.index[table["status"] == ""]) == GRAZED
    assert set(table["ended_level"]) == {""}

    # 16:05: BMKG cancels it; the Cancel repeats the polygons, so its impact rows would say Siaga again.
    second = run(gorontalo, store, tmp_path / "2", wita("16:05"), [cancel_of(alert_xml)])
    assert second.transitions == {"cancel": 3}
    assert second.levels == {"Awas": 0, "Siaga": 0, "Waspada": 0}
    assert second.people_exposed == 0
    assert second.ended == {"DICABUT": 3, "BERAKHIR": 0}
    report = json.loads((tmp_path / "2" / "report.json").read_text())
    assert report["levels"] == {"Awas": 0, "Siaga": 0, "Waspada": 0}
    assert report["ended"] == {"DICABUT": 3, "BERAKHIR": 0}
    lines = printed(second, capsys)
    assert "    Siaga         0" in lines
    assert "    Waspada       0" in lines

    table = summary(tmp_path / "2")
    assert levels(table) == {}
    assert set(table["level"]) == {"0"}
    cancelled = table[table["status"] == "DICABUT"]
    assert set(cancelled.index) == ALERTED
    assert dict(cancelled["ended_level"]) == {**dict.fromkeys(SIAGA, "Siaga"), **dict.fromkeys(WASPADA, "Waspada")}
    assert set(cancelled["ended_thread"]) == {ALERT_ID}
    assert set(cancelled["warning_id"]) == {CANCEL_ID}  # the warning of this run that touched them
    assert set(table["population_exposed"].astype(float)) == {0.0}
    assert set(table["warnings"]) == {"0"}  # no warning in force over any of them
    assert set(table.index[table["status"] == ""]) == GRAZED
    assert list(table.index[:3]) == ["75.04.08", "75.02.05", "75.05.05"]  # the higher level that ended first
    # The village files say the same, with geometry.
    villages = gpd.read_file(tmp_path / "2" / "villages.gpkg").set_index("code")
    assert set(villages["level"]) == {0}
    assert set(villages.index[villages["status"] == "DICABUT"]) == ALERTED
    # One rule for the map and the tables: the map draws exactly these villages as DICABUT.
    page = (tmp_path / "2" / "risk_map.html").read_text(encoding="utf-8")
    assert page.count('class="v end-cancel"') == len(cancelled)

    # Ten minutes later BMKG still serves the Cancel: nothing ends any more, nothing is leveled.
    third = run(gorontalo, store, tmp_path / "3", wita("16:15"), [cancel_of(alert_xml)])
    assert third.levels == {"Awas": 0, "Siaga": 0, "Waspada": 0}
    assert third.ended == {"DICABUT": 0, "BERAKHIR": 0}
    table = summary(tmp_path / "3")
    assert levels(table) == {}
    assert set(table["status"]) == {""}


def test_an_expired_warning_still_served_leaves_no_level(
    gorontalo: RegionConfig, store: Store, alert_xml: str, tmp_path: Path
) -> None:
    run(gorontalo, store, tmp_path / "1", wita("15:30"), [alert_xml])
    # 17:30: past its 17:27 expiry, BMKG's feed still carries the alert.
    later = run(gorontalo, store, tmp_path / "2", wita("17:30"), [alert_xml])
    assert later.transitions["expire"] == 3
    assert later.levels == {"Awas": 0, "Siaga": 0, "Waspada": 0}
    assert later.ended == {"DICABUT": 0, "BERAKHIR": 3}
    assert json.loads((tmp_path / "2" / "report.json").read_text())["levels"]["Siaga"] == 0
    table = summary(tmp_path / "2")
    assert levels(table) == {}
    ended = table[table["status"] == "BERAKHIR"]
    assert set(ended.index) == ALERTED
    assert dict(ended["ended_level"]) == {**dict.fromkeys(SIAGA, "Siaga"), **dict.fromkeys(WASPADA, "Waspada")}
    assert set(ended["warning_id"]) == {ALERT_ID}
    page = (tmp_path / "2" / "risk_map.html").read_text(encoding="utf-8")
    assert page.count('class="v end-end"') == len(ended)


def test_an_alert_that_expired_out_of_the_feed_is_still_listed_as_ended(
    gorontalo: RegionConfig, store: Store, alert_xml: str, tmp_path: Path
) -> None:
    run(gorontalo, store, tmp_path / "1", wita("15:30"), [alert_xml])
    later = run(gorontalo, store, tmp_path / "2", wita("17:30"), [])  # BMKG no longer serves it
    assert later.transitions == {"expire": 3}
    assert later.levels == {"Awas": 0, "Siaga": 0, "Waspada": 0}
    table = summary(tmp_path / "2")
    # The map draws them as BERAKHIR; the table lists them too (no warning of this run touched them).
    assert set(table.index) == ALERTED
    assert set(table["status"]) == {"BERAKHIR"}
    assert set(table["warning_id"]) == {""}
    assert set(table["ended_thread"]) == {ALERT_ID}
    assert table.loc["75.04.08", "name"] == "Dengilo"
    assert set(table["level_label"]) == {"none"}


def test_a_village_still_under_another_warning_keeps_that_level(
    gorontalo: RegionConfig, store: Store, alert_xml: str, tmp_path: Path
) -> None:
    other = alert_xml.replace(ALERT_ID, OTHER_ID)  # a second nowcast over the same area, still in force
    run(gorontalo, store, tmp_path / "1", wita("15:30"), [alert_xml, other])
    second = run(gorontalo, store, tmp_path / "2", wita("16:05"), [cancel_of(alert_xml), other])
    assert second.levels == {"Awas": 0, "Siaga": 2, "Waspada": 1}
    assert second.ended == {"DICABUT": 0, "BERAKHIR": 0}
    table = summary(tmp_path / "2")
    assert levels(table) == {**dict.fromkeys(SIAGA, "Siaga"), **dict.fromkeys(WASPADA, "Waspada")}
    assert set(table.loc[sorted(ALERTED), "warning_id"]) == {OTHER_ID}
    assert set(table.loc[sorted(ALERTED), "status"]) == {"BERLAKU"}
    assert set(table.loc[sorted(ALERTED), "warnings"]) == {"1"}  # the Cancel is not a warning in force

"""Whole runs: the demo region, Jawa Timur with estimated population, atomic outputs, no phone leaks."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from tests_support import minimal_cap

from ews.channels.outbox import FileOutbox
from ews.cli import main
from ews.config import RegionConfig, open_region
from ews.pipeline import RunReport, run_slice
from ews.store.repository import Store
from ews.synthetic import write_synthetic_region, write_synthetic_warning

NOW = datetime.fromisoformat("2026-11-28T18:00:00+07:00")
# An Indonesian mobile number in any of its written forms, not a run of digits inside a decimal.
FULL_NUMBER = re.compile(r"(?<![\d.])(?:\+?62|0)8\d{7,11}(?![\d.])")
OUTPUTS = {
    "villages.gpkg",
    "villages.geojson",
    "summary.csv",
    "risk_map.png",
    "risk_map.html",
    "outbox.jsonl",
}


def run(config: RegionConfig, source: str, out: Path, *, now: datetime, db: Path | None = None) -> RunReport:
    """One run with its own SQLite store beside ``out`` (or ``db``) and a dry-run outbox."""
    store = Store.from_url(f"sqlite:///{db or out.parent / 'ews.db'}")
    try:
        return run_slice(config, source, out, now=now, store=store, channel=FileOutbox(out.parent / "outbox.jsonl"))
    finally:
        store.close()


@pytest.fixture
def demo(tmp_path: Path) -> tuple[Path, Path]:
    region = write_synthetic_region(tmp_path / "region")
    warning = write_synthetic_warning(tmp_path / "warnings", NOW)
    return region, warning


def test_demo_command_writes_every_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = main(["demo", "--out", str(out), "--work", str(tmp_path / "work"), "--at", NOW.isoformat()])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert OUTPUTS <= {p.name for p in out.iterdir()}
    for label in ("Awas", "Siaga", "Waspada", "people exposed", "resident sms", "tagana", str(out)):
        assert label in printed.out
    assert "reading boundaries" in printed.err  # progress lines
    summary = pd.read_csv(out / "summary.csv", dtype={"code": str})
    assert {"Awas", "Siaga", "Waspada"} <= set(summary["level_label"])
    # The demo's synthetic satellite rain is a second thread beside the CAP warning.
    assert summary["warning_id"].str.startswith("ews.rain.demo.").any()
    assert summary["warning_id"].str.startswith("2.49.0.1.360.").any()
    assert summary["population_exposed"].notna().all()


def test_outbox_masks_every_number(demo: tuple[Path, Path], tmp_path: Path) -> None:
    region, warning = demo
    out = tmp_path / "out"
    report = run(open_region(region), str(warning), out, now=NOW)
    lines = [json.loads(x) for x in (out / "outbox.jsonl").read_text().splitlines()]
    assert sum(report.messages.values()) == len(lines) > 0
    for line in lines:
        assert line["to"] is None or "*" in line["to"]
        assert not FULL_NUMBER.search(json.dumps(line)), line
    # Nothing personal anywhere in the outputs.
    for path in out.iterdir():
        if path.suffix in (".csv", ".json", ".jsonl", ".html", ".geojson"):
            assert not FULL_NUMBER.search(path.read_text()), path.name
    residents = [x for x in lines if x["audience"] == "resident"]
    assert {x["channel"] for x in residents} == {"sms", "whatsapp"}
    assert {x["language"] for x in residents} == {"id", "en"}
    assert all(x["segments"] <= 2 for x in residents if x["channel"] == "sms")
    keys = [x["dedup_key"] for x in lines]
    assert len(keys) == len(set(keys))  # one message per recipient, channel and warning


def test_village_files_are_real_geodata(demo: tuple[Path, Path], tmp_path: Path) -> None:
    region, warning = demo
    run(open_region(region), str(warning), tmp_path / "out", now=NOW)
    gpkg = gpd.read_file(tmp_path / "out" / "villages.gpkg", layer="villages")
    geojson = gpd.read_file(tmp_path / "out" / "villages.geojson")
    assert len(gpkg) == len(geojson) > 0
    assert gpkg.crs.to_epsg() == 4326
    assert {"code", "name", "level", "fraction", "population_exposed", "population_source"} <= set(gpkg.columns)


def test_expired_warning_sends_nothing(demo: tuple[Path, Path], tmp_path: Path) -> None:
    region, warning = demo
    later = datetime.fromisoformat("2026-11-29T06:00:00+07:00")
    report = run(open_region(region), str(warning), tmp_path / "out", now=later)
    assert report.messages == {}
    assert any("expired" in n for n in report.notes)
    # An expired warning gives no level (issue 11.6): the touched villages are listed, at none.
    assert report.levels == {"Awas": 0, "Siaga": 0, "Waspada": 0}
    summary = pd.read_csv(tmp_path / "out" / "summary.csv", keep_default_na=False)
    assert len(summary) > 0
    assert set(summary["level_label"]) == {"none"}
    assert set(summary["status"]) == {""}  # its alert never started: nothing ended in this run


def test_test_status_never_reaches_residents(tmp_path: Path) -> None:
    region = write_synthetic_region(tmp_path / "region")
    alert = tmp_path / "test.xml"
    alert.write_bytes(minimal_cap("-8.90,110.15 -8.90,110.30 -8.85,110.30 -8.85,110.15 -8.90,110.15", status="Test"))
    report = run(open_region(region), str(alert), tmp_path / "out", now=NOW)
    assert report.messages == {}
    assert any("status Test" in n for n in report.notes)


def test_failed_run_leaves_previous_outputs_untouched(demo: tuple[Path, Path], tmp_path: Path) -> None:
    region, warning = demo
    out = tmp_path / "out"
    run(open_region(region), str(warning), out, now=NOW)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    # Break the region: the boundary file loses its id field. The run must fail and write nothing.
    villages = region.parent / "villages.geojson"
    villages.write_text(villages.read_text().replace('"kode"', '"code_x"'))
    with pytest.raises(Exception, match="has no field 'kode'"):
        run(open_region(region), str(warning), out, now=NOW)
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no half-written folder


def test_bad_input_through_the_command(
    demo: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    region, warning = demo
    batch = tmp_path / "batch"
    batch.mkdir()
    (batch / "1.xml").write_bytes(warning.read_bytes())
    (batch / "2.xml").write_bytes(b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>')
    code = main(
        [
            "run",
            "--region",
            str(region),
            "--cap",
            str(batch),
            "--out",
            str(tmp_path / "o"),
            "--at",
            NOW.isoformat(),
            "--database",
            f"sqlite:///{tmp_path / 'cli.db'}",
            "--outbox",
            str(tmp_path / "cli-outbox.jsonl"),
        ]
    )
    printed = capsys.readouterr()
    assert code == 1
    assert "REJECTED" in printed.out
    assert "2.xml" in printed.out
    assert "refused" in printed.out
    assert (tmp_path / "o" / "risk_map.png").exists()


def test_generation_is_deterministic(tmp_path: Path) -> None:
    a = write_synthetic_region(tmp_path / "a").parent
    b = write_synthetic_region(tmp_path / "b").parent
    for name in ("villages.geojson", "subscribers.csv", "tagana.csv", "areas.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes()


def test_jawa_timur_estimates_are_labelled(shared_data: Path, tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    config = open_region(repo / "regions" / "jawa-timur.yaml", {"EWS_SHARED_DATA": str(shared_data)})
    alert = tmp_path / "surabaya.xml"
    # A warning over south Surabaya (Wonocolo / Gayungan / Jambangan).
    alert.write_bytes(minimal_cap("-7.34,112.70 -7.34,112.74 -7.31,112.74 -7.31,112.70 -7.34,112.70"))
    report = run(config, str(alert), tmp_path / "out", now=NOW)
    assert report.population_estimated
    assert report.people_exposed
    assert report.people_exposed > 0
    summary = pd.read_csv(tmp_path / "out" / "summary.csv", dtype={"code": str, "kabkota": str})
    assert summary["population_source"].str.startswith("estimate").all()
    assert summary["population_estimated"].all()
    # South Surabaya borders Sidoarjo (35.15): both kab/kota are touched.
    assert set(summary["kabkota"]) <= {"35.78", "35.15"}
    assert "35.78" in set(summary["kabkota"])
    assert "ESTIMASI" in (tmp_path / "out" / "risk_map.html").read_text()
    gpkg = gpd.read_file(tmp_path / "out" / "villages.gpkg")
    assert gpkg["population_source"].str.startswith("estimate").all()
    # No Tagana unit is configured for the real region: said loudly, and the notice is still rendered.
    assert "35.78" in report.unreachable_tagana
    assert [k for k in report.messages if k.startswith("tagana")] == ["tagana sms NO CONTACT"]
    assert any("NO TAGANA CONTACT" in n for n in report.notes)
    tagana = [json.loads(x) for x in (tmp_path / "out" / "outbox.jsonl").read_text().splitlines() if '"tagana"' in x]
    assert tagana
    assert all(t["status"] == "no-contact" and "estimasi" in t["text"] for t in tagana)


def test_run_log_records_transitions_and_messages(demo: tuple[Path, Path], tmp_path: Path) -> None:
    from sqlalchemy import select

    from ews.store.models import RunLog

    region, warning = demo
    report = run(open_region(region), str(warning), tmp_path / "out", now=NOW)
    store = Store.from_url(f"sqlite:///{tmp_path / 'ews.db'}")
    try:
        with store.engine.connect() as connection:
            logged = connection.execute(select(RunLog.status, RunLog.counts)).one()
    finally:
        store.close()
    assert logged.status == "ok"
    assert logged.counts["new"] == report.transitions["new"] > 0
    assert logged.counts["resident sms"] == report.messages["resident sms"] > 0
    assert logged.counts["queued"] == sum(report.messages.values())


def test_unchanged_village_files_are_linked_from_the_last_run(demo: tuple[Path, Path], tmp_path: Path) -> None:
    from datetime import timedelta

    region, warning = demo
    out = tmp_path / "out"
    run(open_region(region), str(warning), out, now=NOW)
    first = {name: (out / name).stat().st_ino for name in ("villages.gpkg", "villages.geojson", "summary.csv")}
    levels = pd.read_csv(out / "summary.csv")["level"].tolist()
    # The same warning ten minutes later: the same village table, so the same files (linked, not written).
    run(open_region(region), str(warning), out, now=NOW + timedelta(minutes=10))
    assert {name: (out / name).stat().st_ino for name in first} == first
    assert pd.read_csv(out / "summary.csv")["level"].tolist() == levels
    assert (out / "risk_map.png").stat().st_size > 0  # the PNG is drawn anew (its title says when)
    page = (out / "risk_map.html").read_text(encoding="utf-8")  # the page: the last one, with the new instant
    listed = json.loads((out / "risk_map_page.json").read_text(encoding="utf-8"))
    assert listed["phrase"] == "keadaan 28 Nov 2026 18:10 WIB"
    assert "keadaan 28 Nov 2026 18:10 WIB" in page
    assert "keadaan 28 Nov 2026 18:00 WIB" not in page
    # A file edited by hand since is not trusted: everything is written again.
    (out / "summary.csv").write_text((out / "summary.csv").read_text() + "\n", encoding="utf-8")
    run(open_region(region), str(warning), out, now=NOW + timedelta(minutes=20))
    assert (out / "villages.gpkg").stat().st_ino != first["villages.gpkg"]
    assert pd.read_csv(out / "summary.csv")["level"].tolist() == levels
    # The warning expired: the village table changed, and so do the files.
    report = run(open_region(region), str(warning), out, now=datetime.fromisoformat("2026-11-29T06:00:00+07:00"))
    assert report.levels == {"Awas": 0, "Siaga": 0, "Waspada": 0}
    assert set(pd.read_csv(out / "summary.csv", keep_default_na=False)["level_label"]) == {"none"}
    assert set(gpd.read_file(out / "villages.gpkg")["level_label"]) == {"none"}

"""Staging and assessing rain/forecast/quake sources: live-like fetches on loopback, broken inputs degrade."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ews.channels.outbox import FileOutbox
from ews.config import open_region
from ews.pipeline import run_slice
from ews.sources import HazardSources, load_staged, stage_sources
from ews.store.repository import Store
from ews.synthetic import synthetic_bounds, write_synthetic_region, write_synthetic_warning
from ews.synthetic_rain import write_synthetic_rain

T = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)


def test_bmkg_quakes_are_fetched_into_the_run_folder(tmp_path: Path, shared_data: Path, serve_dir: object) -> None:
    site = tmp_path / "tews"
    site.mkdir()
    gempa = shared_data / "bmkg" / "gempa"
    (site / "autogempa.json").write_bytes((gempa / "siaga_autogempa_2026-09-24.json").read_bytes())
    (site / "gempaterkini.json").write_bytes((gempa / "muhk01_gempaterkini_2023-07-12.json").read_bytes())
    # gempadirasakan.json is missing: a 404 is a problem of this run, not a crash.
    url = serve_dir(site)  # type: ignore[operator]
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    summary = stage_sources(HazardSources(quakes=("bmkg",)), run_dir, quake_base_url=url + "/")
    assert summary["quakes"] == 2
    assert summary["problems"] == 1
    staged, problems = load_staged(run_dir)
    assert [Path(p).name for p in staged["quakes"]] == ["00-autogempa.json", "00-gempaterkini.json"]
    assert all(Path(p).is_relative_to(run_dir) for p in staged["quakes"])
    assert "gempadirasakan.json" in problems[0]["source"]
    assert problems[0]["message"].startswith("DEGRADED")


def test_a_broken_raster_degrades_the_run_but_the_cap_warning_still_goes_out(tmp_path: Path) -> None:
    config = open_region(write_synthetic_region(tmp_path / "region"))
    warning = write_synthetic_warning(tmp_path / "warnings", T)
    rain = write_synthetic_rain(
        tmp_path / "rain", region_bounds=synthetic_bounds(), start=T - timedelta(hours=3), hours=3,
        formats=("geotiff",),
    )["geotiff"]  # fmt: skip
    broken = tmp_path / "broken.tif"
    broken.write_bytes(rain.read_bytes()[: rain.stat().st_size // 2])
    store = Store.from_url(f"sqlite:///{tmp_path / 'ews.db'}")
    try:
        report = run_slice(
            config, str(warning), tmp_path / "out", now=T, store=store, channel=FileOutbox(tmp_path / "o.jsonl"),
            sources=HazardSources(rain=(str(broken), str(rain))), cache_dir=tmp_path / "cache",
        )  # fmt: skip
    finally:
        store.close()
    degraded = [p for p in report.problems if p["message"].startswith("DEGRADED")]
    assert len(degraded) == 1
    assert degraded[0]["source"] == str(broken)
    assert "broken.tif" in degraded[0]["message"]
    sent = [json.loads(x) for x in (tmp_path / "out" / "outbox.jsonl").read_text().splitlines()]
    assert any(str(m["warning_id"]).startswith("2.49.0.1.360.") for m in sent)  # BMKG's warning
    assert any(str(m["warning_id"]).startswith("ews.rain.demo.") for m in sent)  # the good raster
    # Only 3 hours of rain: hourly categories only, and the report says so.
    assert any("no 24-hour accumulation" in n for n in report.notes)
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["problems"] == report.problems


def test_run_needs_a_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ews.cli import main

    region = write_synthetic_region(tmp_path / "region")
    code = main(["run", "--region", str(region), "--database", f"sqlite:///{tmp_path / 'ews.db'}"])
    assert code == 2
    assert "give --cap, --rain, --forecast and/or --quakes" in capsys.readouterr().err


def test_forecast_bmkg_fetches_the_regions_digitalforecast(
    tmp_path: Path, shared_data: Path, serve_dir: object, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    from ews.cli import main

    site = tmp_path / "mews"
    site.mkdir()
    recorded = shared_data / "bmkg" / "digitalforecast" / "DigitalForecast-JawaTimur_2024-04-03.xml"
    (site / "DigitalForecast-JawaTimur.xml").write_bytes(recorded.read_bytes())
    url = serve_dir(site)  # type: ignore[operator]
    monkeypatch.setenv("EWS_BMKG_DIGITALFORECAST_URL", url + "/DigitalForecast-{province}.xml")
    region = Path(__file__).resolve().parents[2] / "regions" / "jawa-timur.yaml"
    out = tmp_path / "out"
    code = main([
        "run", "--region", str(region), "--forecast", "bmkg", "--at", "2024-04-03T03:00:00+00:00", "-q",
        "--database", f"sqlite:///{tmp_path / 'ews.db'}", "--outbox", str(tmp_path / "o.jsonl"), "--out", str(out),
        "--cache-dir", str(tmp_path / "cache"),
    ])  # fmt: skip
    printed = capsys.readouterr()
    assert code == 0, printed.err
    report = json.loads((out / "report.json").read_text())
    assert report["levels"]["Waspada"] > 0
    assert report["problems"] == []

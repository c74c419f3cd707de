"""Whole runs on satellite rain, BMKG forecasts and earthquakes: the same lifecycle, ledger and outputs.

Rain runs on the synthetic demo region with synthetic GeoTIFF rain; earthquakes on the real BMKG feed of
the 2021-12-14 Flores Sea M7.4 (tsunami potential) over real Bali kecamatan; forecasts on the real
Jawa Timur DigitalForecast over the real Jawa Timur villages.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from ews.channels.outbox import FileOutbox
from ews.cli import main
from ews.config import RegionConfig, open_region
from ews.pipeline import RunReport, run_slice
from ews.sources import HazardSources
from ews.store.repository import Store
from ews.synthetic import synthetic_bounds, write_synthetic_region
from ews.synthetic_rain import write_geotiff, write_synthetic_rain

T = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)


def run(
    config: RegionConfig, out: Path, now: datetime, sources: HazardSources, db: Path, cap: str | None = None
) -> tuple[RunReport, list[dict[str, object]]]:
    store = Store.from_url(f"sqlite:///{db}")
    try:
        report = run_slice(
            config, cap, out, now=now, store=store, channel=FileOutbox(db.parent / "all-outbox.jsonl"),
            sources=sources, cache_dir=db.parent / "cache",
        )  # fmt: skip
    finally:
        store.close()
    lines = [json.loads(x) for x in (out / "outbox.jsonl").read_text().splitlines()]
    return report, lines


@pytest.fixture
def demo_region(tmp_path: Path) -> RegionConfig:
    return open_region(write_synthetic_region(tmp_path / "region"))


def dry_raster(folder: Path, start: datetime, hours: int) -> Path:
    west, _, _, north = synthetic_bounds()
    cols, rows = 40, 20
    transform = (0.01, 0.0, west - 0.05, 0.0, -0.01, north + 0.03)
    times = [start + timedelta(hours=h) for h in range(hours)]
    return write_geotiff(folder / "dry.tif", np.zeros((hours, rows, cols)), transform=transform, times=times)


def test_rain_alerts_once_then_clears_and_a_stale_raster_degrades_the_run(
    demo_region: RegionConfig, tmp_path: Path
) -> None:
    rain = write_synthetic_rain(
        tmp_path / "rain", region_bounds=synthetic_bounds(), start=T - timedelta(hours=24), hours=24,
        formats=("geotiff",),
    )["geotiff"]  # fmt: skip
    db = tmp_path / "ews.db"
    sources = HazardSources(rain=(str(rain),))

    report, sent = run(demo_region, tmp_path / "o1", T, sources, db)
    assert report.transitions.get("new", 0) > 0
    assert not report.problems
    rain_msgs = [m for m in sent if str(m["warning_id"]).startswith("ews.rain.demo.")]
    assert rain_msgs
    assert all(m["text"].startswith(("EWS ", "*PERINGATAN DINI EWS", "*EWS EARLY WARNING", "MOBILISASI")) or
               "EWS" in str(m["text"]) for m in rain_msgs)  # fmt: skip
    assert not any("BMKG" in str(m["text"]).split("\n")[0] for m in rain_msgs if m["audience"] == "resident")
    sms = next(m for m in rain_msgs if m["audience"] == "resident" and m["channel"] == "sms" and m["language"] == "id")
    assert "hingga pemberitahuan berikutnya" in str(sms["text"])  # a standing thread announces no end time
    alerted = Counter((m["recipient_id"], m["village_code"], m["channel"]) for m in rain_msgs)
    assert max(alerted.values()) == 1
    # The risk map shows the rain under the levels.
    html = (tmp_path / "o1" / "risk_map.html").read_text()
    assert 'class="r"' in html
    assert "data:image/png;base64," in html

    # The same raster ten minutes later: nothing is sent again.
    report2, sent2 = run(demo_region, tmp_path / "o2", T + timedelta(minutes=10), sources, db)
    assert sent2 == []
    assert "new" not in report2.transitions

    # The next hourly raster: villages whose level holds hear nothing ("until further notice" still holds).
    newer = write_synthetic_rain(
        tmp_path / "rain2", region_bounds=synthetic_bounds(), start=T - timedelta(hours=23), hours=24,
        formats=("geotiff",),
    )["geotiff"]  # fmt: skip
    report_n, _ = run(demo_region, tmp_path / "on", T + timedelta(hours=1), HazardSources(rain=(str(newer),)), db)
    assert "update" not in report_n.transitions
    assert report_n.transitions.get("unchanged", 0) > 0

    # A dry hour after: everyone alerted hears the threat has passed, once.
    dry = dry_raster(tmp_path / "dry", T - timedelta(hours=22), 24)
    report3, sent3 = run(demo_region, tmp_path / "o3", T + timedelta(hours=2), HazardSources(rain=(str(dry),)), db)
    assert report3.transitions.get("all-clear", 0) > 0
    ended = Counter((m["recipient_id"], m["village_code"], m["channel"]) for m in sent3 if m["audience"] == "resident")
    heard = {k for k in alerted if k[0].startswith("r-")}
    assert set(ended) == {k for k in heard if k in ended}
    assert max(ended.values()) == 1
    assert {k[1] for k in ended} == {k[1] for k in heard}

    # Later still, only the old raster: the run says it is degraded (stale source), loudly.
    report4, _ = run(demo_region, tmp_path / "o4", T + timedelta(hours=6), HazardSources(rain=(str(dry),)), db)
    assert any("DEGRADED" in p["message"] and "stale" in p["message"] for p in report4.problems)
    assert not any("DEGRADED" in n for n in report4.notes)  # said once, as a problem (not again as a note)


@pytest.fixture
def bali_region(kec_dir: Path, tmp_path: Path) -> RegionConfig:
    path = tmp_path / "bali.yaml"
    path.write_text(
        "id: bali-kec\nname: Bali (kecamatan)\nprovince_code: '51'\n"
        f"boundaries: {{path: {kec_dir / 'wilayah_boundaries_kec_51.geojson'}}}\n"
        "earthquake: {tsunami_radius_km: 1000}\n"
    )
    return open_region(path)


def test_the_flores_tsunami_event_puts_coastal_bali_at_awas_once(
    bali_region: RegionConfig, shared_data: Path, tmp_path: Path
) -> None:
    feed = shared_data / "bmkg" / "gempa" / "arraysyams_gempaterkini_2021-12-14_tsunami-potential.json"
    now = datetime(2021, 12, 14, 4, 0, tzinfo=UTC)
    db = tmp_path / "ews.db"
    report, _ = run(bali_region, tmp_path / "q1", now, HazardSources(quakes=(str(feed),)), db)
    assert report.levels["Awas"] == 35
    assert report.levels["Siaga"] == report.levels["Waspada"] == 0
    store = Store.from_url(f"sqlite:///{db}")
    try:
        states = store.active_alerts(bali_region.id)
        threads = {s.thread_id for s in states}
        # BMKG's first solution (M7.5) and the final one (M7.4) are one thread: no village twice.
        assert len(threads) == 1
        assert len({s.village_code for s in states}) == len(states) == 35
        versions = [v for s in states for v in store.versions_of(bali_region.id, s.thread_id, s.village_code)]
        assert Counter(v.transition.value for v in versions)["new"] == 35
    finally:
        store.close()

    # The feed again ten minutes later (BMKG resends old events): nothing new.
    report2, _ = run(bali_region, tmp_path / "q2", now + timedelta(minutes=10), HazardSources(quakes=(str(feed),)), db)
    assert "new" not in report2.transitions

    # Two days later the same feed is a late replay: no alert, and the old alerts have expired.
    later = now + timedelta(days=2)
    report3, _ = run(bali_region, tmp_path / "q3", later, HazardSources(quakes=(str(feed),)), db)
    assert "new" not in report3.transitions
    assert report3.transitions.get("expire", 0) == 35
    assert any("late or replayed" in n for n in report3.notes)


def test_a_digitalforecast_warns_whole_kabkota_a_day_ahead(shared_data: Path, tmp_path: Path) -> None:
    config = open_region(
        Path(__file__).resolve().parents[2] / "regions" / "jawa-timur.yaml", {"EWS_SHARED_DATA": str(shared_data)}
    )
    feed = shared_data / "bmkg" / "digitalforecast" / "DigitalForecast-JawaTimur_2024-04-03.xml"
    now = datetime(2024, 4, 3, 3, 0, tzinfo=UTC)
    report, _ = run(config, tmp_path / "f1", now, HazardSources(forecast=(str(feed),)), tmp_path / "ews.db")
    assert not report.problems
    summary = pd.read_csv(tmp_path / "f1" / "summary.csv", dtype={"code": str, "kabkota": str})
    leveled = summary[summary["level"] > 0]
    per_kabkota = leveled.groupby("kabkota").size()
    # Thunderstorms (code 95/97 -> lebat -> Waspada) within 24 h; Kota Malang at 06Z, Kabupaten Malang none.
    assert per_kabkota["35.73"] == 57
    assert "35.07" not in per_kabkota.index
    assert set(leveled["level_label"]) == {"Waspada"}  # capped at forecast.max_level and weather codes only
    # A kab/kota forecast covers every village of that kab/kota.
    villages = gpd.read_file(tmp_path / "f1" / "villages.gpkg")
    assert len(villages) == len(leveled)
    assert report.transitions["new"] == len(leveled)


def test_cap_files_of_unchanged_alerts_are_copied_byte_for_byte(demo_region: RegionConfig, tmp_path: Path) -> None:
    rain = write_synthetic_rain(
        tmp_path / "rain", region_bounds=synthetic_bounds(), start=T - timedelta(hours=24), hours=24,
        formats=("geotiff",),
    )["geotiff"]  # fmt: skip
    db = tmp_path / "ews.db"
    sources = HazardSources(rain=(str(rain),))
    run(demo_region, tmp_path / "out", T, sources, db)
    first = {p.name: p.read_bytes() for p in (tmp_path / "out" / "cap").glob("*.xml")}
    assert first
    # A file that is not what this store published (another <sent>) is rendered again, not trusted.
    victim = sorted(first)[0]
    text = first[victim].decode()
    sent = text[text.index("<sent>") + 6 : text.index("</sent>")]
    foreign = text.replace(f"<sent>{sent}</sent>", "<sent>2000-01-01T00:00:00+07:00</sent>")
    (tmp_path / "out" / "cap" / victim).write_text(foreign)
    later = T + timedelta(minutes=10)
    run(demo_region, tmp_path / "out", later, sources, db)  # same out dir: copies from the last snapshot
    run(demo_region, tmp_path / "fresh", later, sources, db)  # no snapshot: renders everything
    copied = {p.name: p.read_bytes() for p in (tmp_path / "out" / "cap").glob("*.xml")}
    rendered = {p.name: p.read_bytes() for p in (tmp_path / "fresh" / "cap").glob("*.xml")}
    assert copied == rendered == first


def subscribed_bali(bali_region: RegionConfig, kec_dir: Path, tmp_path: Path, extra: str = "") -> Path:
    """The Bali region with one fictional subscriber per kecamatan (SMS in Indonesian, WhatsApp in English)."""
    features = json.loads((kec_dir / "wilayah_boundaries_kec_51.geojson").read_text())["features"]
    rows = ["phone,village_code,language,channel,consent_source,consent_time"]
    for i, f in enumerate(features):
        language, channel = ("en", "whatsapp") if i % 2 else ("id", "sms")
        rows.append(f"+62899900{i:06d},{f['properties']['kode']},{language},{channel},test,2021-01-01T00:00:00+08:00")
    (tmp_path / "subscribers.csv").write_text("\n".join(rows) + "\n")
    region = tmp_path / "bali-subscribed.yaml"
    region.write_text(
        Path(str(bali_region.source_file)).read_text() + f"subscribers: {tmp_path / 'subscribers.csv'}\n" + extra
    )
    return region


def test_the_flores_tsunami_messages_give_bmkgs_facts_and_end_with_tsunami_advice(
    bali_region: RegionConfig, kec_dir: Path, shared_data: Path, tmp_path: Path
) -> None:
    config = open_region(subscribed_bali(bali_region, kec_dir, tmp_path))
    feed = shared_data / "bmkg" / "gempa" / "arraysyams_gempaterkini_2021-12-14_tsunami-potential.json"
    now = datetime(2021, 12, 14, 4, 0, tzinfo=UTC)
    db = tmp_path / "ews.db"
    _, sent = run(config, tmp_path / "q1", now, HazardSources(quakes=(str(feed),)), db)
    residents = [m for m in sent if m["audience"] == "resident"]
    assert residents
    for m in residents:
        text = str(m["text"])
        assert "M7.4" in text, text  # BMKG's final solution
        assert "113 km BaratLaut LARANTUKA-NTT" in text
        assert "10:20 WIB" in text or "11:20 WITA" in text  # the origin time, local (Bali is WITA)
        assert "BERPOTENSI TSUNAMI" in text or "TSUNAMI POSSIBLE" in text
        assert "pantai" in text.lower() or "coast" in text.lower()
        assert "hujan" not in text.lower()
        assert "rain" not in text.lower()
    # Two days later the alerts have expired: the end says what to do after a tsunami warning, not after rain.
    _, ended = run(config, tmp_path / "q3", now + timedelta(days=2), HazardSources(quakes=(str(feed),)), db)
    ends = [m for m in ended if m["audience"] == "resident"]
    assert ends
    for m in ends:
        text = str(m["text"]).lower()
        assert "genangan" not in text
        assert "standing water" not in text
    assert any("pantai" in str(m["text"]) or "coast" in str(m["text"]) for m in ends if m["channel"] == "whatsapp")


def test_ews_own_alerts_are_signed_by_the_region_never_bmkg(tmp_path: Path) -> None:
    region = write_synthetic_region(tmp_path / "region")
    region.write_text(region.read_text() + "command_center: {name: Pusdalops Contoh, issuer: BPBD Contoh}\n")
    rain = write_synthetic_rain(
        tmp_path / "rain", region_bounds=synthetic_bounds(), start=T - timedelta(hours=24), hours=24,
        formats=("geotiff",),
    )["geotiff"]  # fmt: skip
    _, sent = run(open_region(region), tmp_path / "o1", T, HazardSources(rain=(str(rain),)), tmp_path / "ews.db")
    residents = [m for m in sent if m["audience"] == "resident"]
    assert residents
    for m in residents:
        first = str(m["text"]).split("\n")[0]
        assert "BPBD Contoh" in first, first
        assert "BMKG" not in first
        assert "EWS" not in first
    assert any("diolah BPBD Contoh" in str(m["text"]) for m in residents if m["channel"] == "whatsapp")


def test_a_held_tsunami_approved_by_thread_keeps_bmkgs_facts_and_the_tsunami_advice(
    bali_region: RegionConfig, kec_dir: Path, shared_data: Path, tmp_path: Path
) -> None:
    region = subscribed_bali(bali_region, kec_dir, tmp_path, "alerts: {review_levels: [Awas]}\n")
    feed = shared_data / "bmkg" / "gempa" / "arraysyams_gempaterkini_2021-12-14_tsunami-potential.json"
    now = datetime(2021, 12, 14, 4, 0, tzinfo=UTC)
    db = tmp_path / "ews.db"
    report, sent = run(open_region(region), tmp_path / "q1", now, HazardSources(quakes=(str(feed),)), db)
    assert report.pending
    assert not [m for m in sent if m["audience"] == "resident"]  # Awas waits for the analyst
    store = Store.from_url(f"sqlite:///{db}")
    try:
        (thread,) = store.pending_threads("bali-kec")
        assert {v.hazard for v in store.pending_versions("bali-kec")} == {"tsunami"}
    finally:
        store.close()
    # Queued, not sent: the dispatcher runs on the real clock, long after this 2021 event's warning expired.
    code = main(["alerts", "approve", thread.thread_id, "--region", str(region), "--database", f"sqlite:///{db}",
                 "--queue-only", "--by", "analis"])  # fmt: skip
    assert code == 0
    store = Store.from_url(f"sqlite:///{db}")
    try:
        queued = store.lease("inspect", now, limit=1000)
    finally:
        store.close()
    approved = [{"audience": q.audience, "text": q.body} for q in queued]
    residents = [m for m in approved if m["audience"] == "resident"]
    assert residents
    for m in residents:
        text = str(m["text"])
        assert "M7.4" in text, text
        assert "113 km BaratLaut LARANTUKA-NTT" in text
        assert "BERPOTENSI TSUNAMI" in text or "TSUNAMI POSSIBLE" in text
        assert "BMKG" in text.split("\n")[0]
        assert "pantai" in text.lower() or "coast" in text.lower()

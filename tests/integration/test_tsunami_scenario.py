"""Acceptance: the real 2021-12-14 Flores Sea tsunami warning through the review gate to BMKG's end notice.

The real gempaterkini feed (M7.4, "Potensi tsunami untuk diteruskan pada masyarakat") over the real Bali kecamatan,
one fictional subscriber per kecamatan, and a review gate that holds Awas. The run holds the tsunami thread; an
analyst approves it by thread (``ews alerts approve THREAD``); BMKG's end notice (that feed re-served with the event's
``Potensi`` saying the warning has ended) ends it. Every resident message names BMKG, gives tsunami advice only, and
none goes to Kabupaten Bangli, Bali's one regency without a coast.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_hazard_runs import bali_region, run, subscribed_bali
from test_tsunami_end_run import end_notice

from ews.channels.outbox import FileOutbox
from ews.cli import main
from ews.config import RegionConfig, open_region
from ews.dispatch import Dispatcher
from ews.sources import HazardSources
from ews.store.repository import Store

__all__ = ["bali_region"]  # the fixture, imported for pytest

FEED = Path("bmkg") / "gempa" / "arraysyams_gempaterkini_2021-12-14_tsunami-potential.json"
NOW = datetime(2021, 12, 14, 4, 0, tzinfo=UTC)
INLAND = "51.06."  # Kabupaten Bangli: no coast
WEATHER = (
    "genangan",
    "standing water",
    "hujan",
    "rain",
    "sungai",
    "river",
    "mengungsi ke tempat yang lebih tinggi atau",
)


def check(texts: list[str], what: str) -> None:
    assert texts, f"no resident message {what}"
    for text in texts:
        lowered = text.lower()
        assert "BMKG" in text, f"{what}: BMKG is not named as the issuer:\n{text}"
        assert "pantai" in lowered or "coast" in lowered, f"{what}: no tsunami advice:\n{text}"
        assert not [w for w in WEATHER if w in lowered], f"{what}: weather advice in a tsunami message:\n{text}"


@pytest.mark.slow
def test_hold_approve_by_thread_then_bmkg_ends_it(
    bali_region: RegionConfig, kec_dir: Path, shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    region = subscribed_bali(bali_region, kec_dir, tmp_path, "alerts: {review_levels: [Awas]}\n")
    config = open_region(region)
    db = tmp_path / "ews.db"
    url = f"sqlite:///{db}"
    real = HazardSources(quakes=(str(shared_data / FEED),))

    # 1. The warning arrives: every coastal kecamatan is at Awas, held for review; nothing reaches residents.
    report, sent = run(config, tmp_path / "q1", NOW, real, db)
    assert report.levels["Awas"] >= 30
    assert [m for m in sent if m["audience"] == "resident"] == []
    (thread_line,) = report.pending_review  # one thread: BMKG's revised solutions are one alert
    store = Store.from_url(url)
    try:
        (held,) = store.pending_threads(config.id)
        pending = store.pending_versions(config.id)
    finally:
        store.close()
    assert held.thread_id in thread_line
    assert {v.hazard for v in pending} == {"tsunami"}
    assert not [v for v in pending if v.village_code.startswith(INLAND)]  # no inland kecamatan is "coastal"

    # 2. The analyst approves the thread, and `ews send` delivers it (on the scenario's clock: the 2021 warning is
    # long past on the real one).
    args = ["--region", str(region), "--database", url, "--by", "analyst-1", "--queue-only"]
    assert main(["alerts", "approve", held.thread_id, *args]) == 0
    assert f"{held.versions} alert version(s) approved by analyst-1" in capsys.readouterr().out
    outbox = tmp_path / "sent.jsonl"
    store = Store.from_url(url)
    try:
        channel = FileOutbox(outbox)
        Dispatcher(store, {"sms": channel, "whatsapp": channel}, clock=lambda: NOW + timedelta(minutes=5)).run()
    finally:
        store.close()
    approved = [m for m in map(json.loads, outbox.read_text().splitlines()) if m["audience"] == "resident"]
    assert len({m["village_code"] for m in approved}) == len(approved) >= 30  # one subscriber per kecamatan, once
    assert not [m for m in approved if str(m["village_code"]).startswith(INLAND)]
    check([str(m["text"]) for m in approved], "approved")
    assert all("M7.4" in str(m["text"]) for m in approved)  # BMKG's final solution leads

    # 3. BMKG ends the warning: one end message to each resident who was told, with tsunami advice.
    ended_feed = HazardSources(quakes=(str(end_notice(shared_data, tmp_path / "end")),))
    report, ended = run(config, tmp_path / "q3", NOW + timedelta(hours=2), ended_feed, db)
    assert "new" not in report.transitions
    assert "escalate" not in report.transitions
    ends = [m for m in ended if m["audience"] == "resident"]
    assert sorted(str(m["village_code"]) for m in ends) == sorted(str(m["village_code"]) for m in approved)
    check([str(m["text"]) for m in ends], "end")
    assert not any("NO END NOTICE" in n for n in report.notes)  # BMKG ended it: no "no end notice" alarm
    # Nothing more afterwards: the end notice served again sends nothing.
    _, again = run(config, tmp_path / "q4", NOW + timedelta(hours=2, minutes=10), ended_feed, db)
    assert [m for m in again if m["audience"] == "resident"] == []


def test_no_end_notice_by_the_maximum_is_said_loudly(
    bali_region: RegionConfig, kec_dir: Path, shared_data: Path, tmp_path: Path
) -> None:
    config = open_region(subscribed_bali(bali_region, kec_dir, tmp_path))
    db = tmp_path / "ews.db"
    real = HazardSources(quakes=(str(shared_data / FEED),))
    _, sent = run(config, tmp_path / "q1", NOW, real, db)
    told = sorted(str(m["village_code"]) for m in sent if m["audience"] == "resident")
    assert told
    # 12 h 10 min on, the feed still serves the warning and BMKG never said it ended: tsunami_max_hours (12).
    report, ended = run(config, tmp_path / "q2", NOW + timedelta(hours=12, minutes=10), real, db)
    assert set(report.transitions) == {"expire"}
    (note,) = [n for n in report.notes if n.startswith("NO END NOTICE")]
    assert "earthquake.tsunami_max_hours = 12 h" in note
    ends = [m for m in ended if m["audience"] == "resident"]
    assert sorted(str(m["village_code"]) for m in ends) == told
    for m in ends:
        text = str(m["text"])
        assert ("batas waktu" in text.lower()) or ("timed out" in text.lower()), text
        assert "BERAKHIR" not in text.split("\n")[0]
        assert "pantai" in text.lower() or "coast" in text.lower(), text

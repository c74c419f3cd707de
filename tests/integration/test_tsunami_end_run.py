"""Whole runs (ews.alerting.alert_step through run_slice) of a tsunami alert that BMKG ends.

The real gempaterkini feed of 2021-12-14 (Flores Sea M7.4, tsunami potential) over the real Bali kecamatan with
one fictional subscriber per kecamatan; BMKG's end notice is that feed with the event's ``Potensi`` changed,
written to the test's temporary folder (never into the repository or the shared data).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from test_hazard_runs import bali_region, run, subscribed_bali

from ews.config import RegionConfig, open_region
from ews.hazard.earthquake import quake_message_id
from ews.sources import HazardSources

__all__ = ["bali_region"]  # the fixture, imported for pytest

FEED = Path("bmkg") / "gempa" / "arraysyams_gempaterkini_2021-12-14_tsunami-potential.json"
FINAL_AT = "2021-12-14T03:20:23+00:00"  # BMKG's final solution (M7.4); its first (M7.5) stays "tsunami" here
NOW = datetime(2021, 12, 14, 4, 0, tzinfo=UTC)


def end_notice(shared_data: Path, folder: Path) -> Path:
    doc = json.loads((shared_data / FEED).read_bytes())
    for record in doc["Infogempa"]["gempa"]:
        if record["DateTime"] == FINAL_AT:
            record["Potensi"] = "Peringatan dini tsunami telah berakhir"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "gempaterkini.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def residents(lines: list[dict[str, object]]) -> list[dict[str, object]]:
    return [m for m in lines if m["audience"] == "resident"]


def test_bmkgs_end_notice_ends_the_tsunami_alert_once_with_tsunami_advice(
    bali_region: RegionConfig, kec_dir: Path, shared_data: Path, tmp_path: Path
) -> None:
    config = open_region(subscribed_bali(bali_region, kec_dir, tmp_path))
    db = tmp_path / "ews.db"
    real = HazardSources(quakes=(str(shared_data / FEED),))
    _, sent = run(config, tmp_path / "q1", NOW, real, db)
    heard = {(m["recipient_id"], m["village_code"], m["channel"]) for m in residents(sent)}
    assert heard

    # Seven hours on, past valid_hours (6): a tsunami alert stands until BMKG ends it (or tsunami_max_hours).
    report, later = run(config, tmp_path / "q2", NOW + timedelta(hours=6, minutes=20), real, db)
    assert "expire" not in report.transitions
    assert not residents(later)

    ended_feed = HazardSources(quakes=(str(end_notice(shared_data, tmp_path / "end")),))
    report, ended = run(config, tmp_path / "q3", NOW + timedelta(hours=6, minutes=30), ended_feed, db)
    assert "new" not in report.transitions
    assert "escalate" not in report.transitions
    assert report.transitions.get("cancel") == 35  # every village of the thread
    ends = residents(ended)
    told = [(m["recipient_id"], m["village_code"], m["channel"]) for m in ends]
    assert sorted(told) == sorted(heard)  # everyone who heard the alert, once
    assert {m["warning_id"] for m in ends} == {quake_message_id("20211214T032023Z_7.59S_122.24E", "end")}
    for m in ends:
        text = str(m["text"]).lower()
        for weather in ("hujan", "genangan", "rain", "standing water"):
            assert weather not in text, text
    assert all("pantai" in str(m["text"]) or "coast" in str(m["text"]) for m in ends if m["channel"] == "whatsapp")

    # BMKG re-serves the end notice, then a feed still serves the old tsunami text: nothing more is sent.
    report, again = run(config, tmp_path / "q4", NOW + timedelta(hours=6, minutes=40), ended_feed, db)
    assert not again
    assert not {"new", "cancel", "update", "escalate"} & set(report.transitions)
    report, stale = run(config, tmp_path / "q5", NOW + timedelta(hours=7), real, db)
    assert not stale
    assert not {"new", "cancel", "update", "escalate"} & set(report.transitions)
    # And the alert ended by BMKG does not expire again at tsunami_max_hours.
    report, _ = run(config, tmp_path / "q6", NOW + timedelta(hours=13), HazardSources(), db)
    assert "expire" not in report.transitions

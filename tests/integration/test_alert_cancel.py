"""An analyst cancels ews's own satellite-rain alerts: everyone alerted is told once, like a BMKG Cancel."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ews.channels.outbox import FileOutbox
from ews.cli import main
from ews.config import open_region
from ews.pipeline import run_slice
from ews.sources import HazardSources
from ews.store.repository import Store
from ews.synthetic import synthetic_bounds, write_synthetic_region
from ews.synthetic_rain import write_synthetic_rain

T = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)


def rain_run(region: Path, rain: Path, db: Path, out: Path, now: datetime) -> list[dict[str, object]]:
    store = Store.from_url(f"sqlite:///{db}")
    try:
        run_slice(
            open_region(region), None, out, now=now, store=store, channel=FileOutbox(db.parent / "all.jsonl"),
            sources=HazardSources(rain=(str(rain),)), cache_dir=db.parent / "cache",
        )  # fmt: skip
    finally:
        store.close()
    return [json.loads(x) for x in (out / "outbox.jsonl").read_text().splitlines()]


def test_cancel_a_rain_thread(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    region = write_synthetic_region(tmp_path / "region")
    rain = write_synthetic_rain(
        tmp_path / "rain", region_bounds=synthetic_bounds(), start=T - timedelta(hours=24), hours=24,
        formats=("geotiff",),
    )["geotiff"]  # fmt: skip
    db = tmp_path / "ews.db"
    first = rain_run(region, rain, db, tmp_path / "o1", T)
    heard = Counter((m["recipient_id"], m["village_code"], m["channel"]) for m in first if m["audience"] == "resident")
    assert heard

    code = main([
        "alerts", "cancel", "ews.rain.demo", "--region", str(region), "--reason", "artefak satelit",
        "--by", "analis-1", "--at", (T + timedelta(minutes=20)).isoformat(), "--database", f"sqlite:///{db}",
        "--outbox", str(tmp_path / "cancel.jsonl"), "--out", str(tmp_path / "oc"),
    ])  # fmt: skip
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "cancelled by analis-1" in printed.out
    ended = [json.loads(x) for x in (tmp_path / "oc" / "outbox.jsonl").read_text().splitlines()]
    told = Counter((m["recipient_id"], m["village_code"], m["channel"]) for m in ended if m["audience"] == "resident")
    assert set(told) == set(heard)
    assert max(told.values()) == 1
    sms = next(m for m in ended if m["channel"] == "sms" and m["language"] == "id" and m["audience"] == "resident")
    assert "DICABUT oleh EWS" in str(sms["text"])
    # The CAP output carries the Cancel.
    caps = list((tmp_path / "oc" / "cap").glob("*.xml"))
    assert caps
    assert any("<msgType>Cancel</msgType>" in p.read_text() for p in caps)

    # The same raster again: older than the cancel, so nothing is sent.
    assert rain_run(region, rain, db, tmp_path / "o2", T + timedelta(minutes=30)) == []
    # Cancelling again: nothing active in that thread any more, and the error says what is.
    code = main([
        "alerts", "cancel", "ews.rain.demo", "--region", str(region), "--reason", "x",
        "--database", f"sqlite:///{db}", "--outbox", str(tmp_path / "cancel.jsonl"), "--out", str(tmp_path / "oc2"),
    ])  # fmt: skip
    assert code == 2
    assert "has no active alert" in capsys.readouterr().err

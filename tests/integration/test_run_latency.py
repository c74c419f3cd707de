"""The run report gives the latency of the run's own messages (issue 12.7), and a replay's gives none.

BMKG's real Gorontalo nowcast (CGT20260924002) re-sent a minute ago, one fictional subscriber in Dengilo: the run
queues and (dry run) delivers that message; ``report.json`` and the printed report say how long after the CAP's
``<sent>`` it was first seen, decided, queued and accepted. A second run has no new message and no figures; the
same CAP replayed at its own time (``--at`` in 2026-09) gives none either, rather than figures that mix the
replayed instant with the clock.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ews.channels.outbox import FileOutbox
from ews.cli import _print_report
from ews.config import RegionConfig, open_region
from ews.pipeline import run_slice
from ews.store.repository import Store
from ews.testing.retime import retimed_cap


@pytest.fixture
def gorontalo(kec_dir: Path, tmp_path: Path) -> RegionConfig:
    (tmp_path / "subscribers.csv").write_text(
        "phone,village_code,language,channel,consent_source,consent_time\n"
        "+628999400001,75.04.08,id,sms,test,2026-01-01T00:00:00+08:00\n"
    )
    path = tmp_path / "gorontalo.yaml"
    path.write_text(
        "id: gorontalo-kec\nname: Gorontalo\nprovince_code: '75'\n"
        f"boundaries: {{path: {kec_dir / 'wilayah_boundaries_kec_75.geojson'}}}\n"
        f"subscribers: {tmp_path / 'subscribers.csv'}\n"
    )
    return open_region(path)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = Store.from_url(database_url)
    yield opened
    opened.close()


def feed(folder: Path, cap: bytes) -> str:
    folder.mkdir()
    (folder / "0.xml").write_bytes(cap)
    return str(folder)


def test_a_live_run_reports_its_messages_latency_from_the_caps_sent(
    gorontalo: RegionConfig, store: Store, cap_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    recorded = (cap_dir / "siaga_cap-id-CGT20260924002_alert.xml").read_bytes()
    source = feed(tmp_path / "feed", retimed_cap(recorded, now - timedelta(minutes=1)))
    outbox = FileOutbox(tmp_path / "sent.jsonl")

    first = run_slice(gorontalo, source, tmp_path / "1", now=now, store=store, channel=outbox)
    assert first.messages["resident sms"] == 1
    latency = first.latency
    assert set(latency) >= {"seen", "decided", "queued", "handed", "accepted"}
    # The resident's message and the two Tagana notices (no contact) were queued; only the resident's was accepted.
    assert latency["queued"]["n"] == 3
    assert latency["accepted"]["n"] == 1
    for stage in ("seen", "decided", "queued", "accepted"):
        # Not before the CAP's <sent> plus the minute it waited on the site; stages in order.
        assert 60 <= latency[stage]["median_s"] <= latency[stage]["worst_s"] < 3600, (stage, latency)
    assert latency["seen"]["worst_s"] <= latency["queued"]["median_s"] <= latency["accepted"]["median_s"]
    report = json.loads((tmp_path / "1" / "report.json").read_text())
    assert report["latency"] == json.loads(json.dumps(latency))
    _print_report(first)
    printed = capsys.readouterr().out
    assert "latency of this run's messages (from the source's <sent>):" in printed
    assert "    source sent -> accepted by the provider: median " in printed

    # The same warning again: nothing new is queued, so no figures (earlier messages are not this run's).
    second = run_slice(gorontalo, source, tmp_path / "2", now=now + timedelta(seconds=30), store=store, channel=outbox)
    assert second.messages.get("resident sms", 0) == 0
    assert second.latency == {}


def test_a_replay_reports_no_latency(
    gorontalo: RegionConfig, store: Store, cap_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recorded = (cap_dir / "siaga_cap-id-CGT20260924002_alert.xml").read_bytes()
    at = datetime.fromisoformat("2026-09-24T15:30:00+08:00")
    replay = run_slice(
        gorontalo, feed(tmp_path / "feed", recorded), tmp_path / "1", now=at, store=store,
        channel=FileOutbox(tmp_path / "sent.jsonl"),
    )  # fmt: skip
    assert replay.messages["resident sms"] == 1
    assert replay.latency == {}
    assert json.loads((tmp_path / "1" / "report.json").read_text())["latency"] == {}
    _print_report(replay)
    assert "latency" not in capsys.readouterr().out

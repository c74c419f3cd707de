"""Acceptance: a BMKG nowcast and ews's own satellite-rain thread over the same villages give one message each.

Real Jawa Timur boundaries (8,492 villages), a store on SQLite and on PostgreSQL, fictional subscribers in every
Surabaya kelurahan and a Tagana unit for Kota Surabaya. A BMKG Awas nowcast and a Waspada rain assessment cover
the same kelurahan; then BMKG cancels and only the rain remains; then the rain passes. Each resident hears one
message per run: at the higher level naming both, then one "TURUN ke WASPADA", then one all-clear.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from tests_support import minimal_cap, surabaya_region

from ews.channels.outbox import FileOutbox
from ews.config import open_region
from ews.contacts import recipient_id
from ews.pipeline import RunReport, run_slice
from ews.sources import HazardSources
from ews.store.repository import Store
from ews.synthetic_rain import write_geotiff

REPO = Path(__file__).resolve().parents[2]
SENDER = "cuaca.ekstrem@bmkg.go.id"
A1, C1 = "2.49.0.1.360.0.2026.11.28.10.35.001", "2.49.0.1.360.0.2026.11.28.11.35.002"
# A box over central Surabaya: BMKG's nowcast and the rain raster cover the same kelurahan.
WEST, SOUTH, EAST, NORTH = 112.700, -7.300, 112.760, -7.250
BOX = f"{SOUTH},{WEST} {SOUTH},{EAST} {NORTH},{EAST} {NORTH},{WEST} {SOUTH},{WEST}"


TEGALSARI, DARMO = "35.78.05.1001", "35.78.04.1005"
FAMILY = recipient_id("+62899910000021")  # the Tegalsari subscriber (21st kelurahan), who follows Darmo too


def t(hhmm: str) -> datetime:
    return datetime.fromisoformat(f"2026-11-28T{hhmm}:00+07:00")


@pytest.fixture
def surabaya(tmp_path: Path, shared_data: Path, jatim_villages_dir: Path) -> Path:
    # The Tegalsari subscriber (21st kelurahan, whatsapp, id) also follows Darmo, their parents' kelurahan.
    return surabaya_region(
        tmp_path, jatim_villages_dir, prefix="+628999100", extra=[("+62899910000021", DARMO, "id", "whatsapp")]
    )


def rain(folder: Path, end: datetime, mm_per_hour: float) -> Path:
    """Three hourly bands over all of Jawa Timur ending at ``end``: the last at ``mm_per_hour`` over the box."""
    res = 0.01
    west, east, south, north = (
        110.80,
        116.60,
        -9.00,
        -4.80,
    )  # all of it, the Masalembu islands too: ews refuses a partial raster
    cols, rows = round((east - west) / res), round((north - south) / res)
    field = np.zeros((3, rows, cols), dtype=np.float32)
    r0, r1 = round((north - NORTH) / res), round((north - SOUTH) / res)
    c0, c1 = round((WEST - west) / res), round((EAST - west) / res)
    field[2, r0:r1, c0:c1] = mm_per_hour
    start = end - timedelta(hours=3)
    folder.mkdir(parents=True, exist_ok=True)
    return write_geotiff(
        folder / f"rain_{start:%Y%m%dT%H%M}.tif", field, transform=(res, 0.0, west, 0.0, -res, north),
        times=[start + timedelta(hours=h) for h in range(3)], step_hours=1.0,
    )  # fmt: skip


def outbox(report: RunReport) -> list[dict[str, object]]:
    path = report.out_dir / "outbox.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.slow
def test_two_threads_one_message_per_person_per_run(
    surabaya: Path, tmp_path: Path, shared_data: Path, database_url: str
) -> None:
    config = open_region(surabaya, {"EWS_SHARED_DATA": str(shared_data)})
    store = Store.from_url(database_url)
    channel = FileOutbox(tmp_path / "channel.jsonl")
    feeds = tmp_path / "feeds"
    feeds.mkdir()

    def cycle(name: str, cap: bytes | None, now: datetime, mm: float) -> RunReport:
        source = None
        if cap is not None:
            (feeds / f"{name}.xml").write_bytes(cap)
            source = str(feeds / f"{name}.xml")
        raster = rain(tmp_path / f"rain-{name}", now.replace(minute=0), mm)
        return run_slice(
            config, source, tmp_path / name, now=now, store=store, channel=channel,
            sources=HazardSources(rain=(str(raster),)),
        )  # fmt: skip

    try:
        # 1. BMKG: Awas over the box; ews's satellite rain: 12 mm/h, "lebat", Waspada, over the same kelurahan.
        alert = minimal_cap(
            BOX, identifier=A1, severity="Extreme", effective="2026-11-28T17:00:00+07:00",
            expires="2026-11-28T20:00:00+07:00",
        )  # fmt: skip
        first = cycle("1-both", alert, t("17:05"), 12.0)
        sent = outbox(first)
        residents = [m for m in sent if m["audience"] == "resident"]
        assert residents
        per_person = Counter((m["recipient_id"], m["channel"]) for m in residents)
        assert max(per_person.values()) == 1  # one message per person (and channel) per run
        (family,) = [m for m in residents if m["recipient_id"] == FAMILY and m["channel"] == "whatsapp"]
        other = "Tegalsari" if family["village_code"] == DARMO else "Darmo"
        assert f"{other}: Hujan Lebat disertai Petir (BMKG, AWAS)" in str(family["text"])  # the other one, named
        both = [
            m for m in residents
            if "AWAS" in str(m["text"]).split("\n")[0] and "EWS, WASPADA" in str(m["text"])
        ]  # fmt: skip
        # Where both threads cover the kelurahan the message is BMKG's Awas and names ews's rain too.
        assert len(both) >= 5, [m["text"] for m in residents[:3]]
        for m in both:
            text = str(m["text"])
            head = text.split("\n")[0]
            assert "BMKG" in head
            assert "AWAS" in head
            assert "Tetap waspada" not in text  # the higher level's advice, not the lower one's
            assert ("Juga: Hujan Lebat (EWS, WASPADA)" in text) or ("Also: Hujan Lebat (EWS, WASPADA)" in text)
        tagana = [m for m in sent if m["audience"] == "tagana"]
        assert len(tagana) == 1  # one notice for the unit, for both threads
        assert "Hujan Lebat (EWS" in str(tagana[0]["text"])
        told = {(m["recipient_id"], m["village_code"], m["channel"]) for m in both}

        # 2. BMKG cancels; the rain goes on: one "TURUN ke WASPADA" update, not a new alert, no all-clear.
        cancel = minimal_cap(
            "", identifier=C1, msg_type="Cancel", references=f"{SENDER},{A1},2026-11-28T17:00:00+07:00",
            effective="2026-11-28T17:35:00+07:00",
        )  # fmt: skip
        second = cycle("2-cancel", cancel, t("17:40"), 12.0)
        sent2 = [m for m in outbox(second) if m["audience"] == "resident"]
        mine2 = [m for m in sent2 if (m["recipient_id"], m["village_code"], m["channel"]) in told]
        assert Counter((m["recipient_id"], m["village_code"], m["channel"]) for m in mine2) == Counter(told)
        for m in mine2:
            first_line = str(m["text"]).split("\n")[0]
            assert ("TURUN ke WASPADA" in first_line) or ("LOWERED to WASPADA" in first_line), m["text"]
            assert "EWS" in first_line  # ews's rain thread leads now
            assert ("Berakhir: Hujan Lebat disertai Petir (BMKG)" in str(m["text"])) or (
                "Ended: Hujan Lebat disertai Petir (BMKG)" in str(m["text"])
            )
            assert "SEGERA MENGUNGSI" not in str(m["text"])
            assert "EVACUATE NOW" not in str(m["text"])

        tagana2 = [m for m in outbox(second) if m["audience"] == "tagana"]
        assert len(tagana2) == 1  # one notice: lowered where the rain remains, ended where only BMKG was
        assert "PERINGATAN TURUN" in str(tagana2[0]["text"])
        assert "MOBILISASI" not in str(tagana2[0]["text"])

        # 3. The rain has passed: one all-clear each, for those who heard the situation.
        third = cycle("3-dry", None, t("19:05"), 0.0)
        sent3 = [m for m in outbox(third) if m["audience"] == "resident"]
        mine3 = [m for m in sent3 if (m["recipient_id"], m["village_code"], m["channel"]) in told]
        assert Counter((m["recipient_id"], m["village_code"], m["channel"]) for m in mine3) == Counter(told)
        assert all("BERAKHIR" in str(m["text"]) or "OVER" in str(m["text"]) for m in mine3)
        tagana3 = [m for m in outbox(third) if m["audience"] == "tagana"]
        assert len(tagana3) == 1
        assert "BERAKHIR" in str(tagana3[0]["text"])

        # 4. Nothing more: a repeat of the dry cycle sends nothing.
        fourth = cycle("4-dry", None, t("19:10"), 0.0)
        assert [m for m in outbox(fourth) if m["audience"] == "resident"] == []
    finally:
        store.close()

"""Acceptance: a warning over part of Surabaya, an Update that grows it to Siaga, then a Cancel.

Real Jawa Timur boundaries (8,492 villages), a store on SQLite and on PostgreSQL, fictional subscribers in
every Surabaya kelurahan and a Tagana unit for Kota Surabaya. Checked at each step: the transitions, the
send-ledger rows, the messages in the dry-run outbox and the CAP 1.2 files (valid against the OASIS XSD).
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from lxml import etree
from tests_support import minimal_cap, surabaya_region

from ews.cap.validate import CapValidator
from ews.channels.outbox import FileOutbox
from ews.config import open_region
from ews.pipeline import RunReport, run_slice
from ews.store.repository import Store

REPO = Path(__file__).resolve().parents[2]
CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"
SENDER = "cuaca.ekstrem@bmkg.go.id"
A1, U1, C1 = (
    "2.49.0.1.360.0.2026.11.28.10.35.001",
    "2.49.0.1.360.0.2026.11.28.10.35.002",
    "2.49.0.1.360.0.2026.11.28.11.35.003",
)
SMALL = "-7.345,112.670 -7.345,112.700 -7.325,112.700 -7.325,112.670 -7.345,112.670"
LARGE = "-7.360,112.660 -7.360,112.720 -7.310,112.720 -7.310,112.660 -7.360,112.660"


def t(hhmm: str) -> datetime:
    return datetime.fromisoformat(f"2026-11-28T{hhmm}:00+07:00")


@pytest.fixture
def surabaya(tmp_path: Path, shared_data: Path, jatim_villages_dir: Path) -> Path:
    """The Jawa Timur region with fictional subscribers in all Surabaya kelurahan and one Tagana unit."""
    return surabaya_region(tmp_path, jatim_villages_dir)


def outbox(report: RunReport) -> list[dict[str, object]]:
    return [json.loads(x) for x in (report.out_dir / "outbox.jsonl").read_text().splitlines()]


def cap_files(report: RunReport) -> dict[str, etree._Element]:
    return {p.stem: etree.parse(str(p)).getroot() for p in sorted((report.out_dir / "cap").glob("*.xml"))}


def surabaya_alerted(report: RunReport) -> set[str]:
    """Villages of Kota Surabaya (where the fixture has subscribers) with a level in this run."""
    with (report.out_dir / "summary.csv").open() as handle:
        return {r["code"] for r in csv.DictReader(handle) if r["code"].startswith("35.78.") and int(r["level"]) > 0}


def ledger_rows(store: Store) -> int:
    return sum(n for k, n in store.counts("jawa-timur").items() if k.startswith("ledger_"))


@pytest.mark.slow
def test_surabaya_alert_update_cancel(surabaya: Path, tmp_path: Path, shared_data: Path, database_url: str) -> None:
    config = open_region(surabaya, {"EWS_SHARED_DATA": str(shared_data)})
    validator = CapValidator(shared_data / "cap_schema" / "CAP-v1.2.xsd")
    store = Store.from_url(database_url)
    channel = FileOutbox(tmp_path / "channel.jsonl")
    feeds = tmp_path / "feeds"
    feeds.mkdir()

    def cycle(name: str, cap: bytes, now: str) -> RunReport:
        (feeds / f"{name}.xml").write_bytes(cap)
        report = run_slice(
            config, str(feeds / f"{name}.xml"), tmp_path / name, now=t(now), store=store, channel=channel
        )
        for ident, root in cap_files(report).items():  # every CAP file ews writes is valid CAP 1.2
            problems = validator.problems(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
            assert problems == [], (ident, problems)
        return report

    try:
        # 1. Alert, Moderate/Expected/Likely over a small box: Waspada, nobody above it, no Tagana.
        alert = minimal_cap(
            SMALL,
            identifier=A1,
            severity="Moderate",
            urgency="Expected",
            certainty="Likely",
            effective="2026-11-28T17:00:00+07:00",
            expires="2026-11-28T20:00:00+07:00",
        )
        first = cycle("1-alert", alert, "17:05")
        assert set(first.transitions) == {"new"}
        n_first = first.transitions["new"]
        assert n_first >= 3
        assert first.levels["Waspada"] == n_first
        assert first.levels["Siaga"] == first.levels["Awas"] == 0
        sent1 = outbox(first)
        assert {m["audience"] for m in sent1} == {"resident"}  # Tagana is mobilised from Siaga up
        # One subscriber per Surabaya kelurahan; the box also touches Sidoarjo (35.15), which has none.
        assert len(sent1) == len(surabaya_alerted(first)) == ledger_rows(store)
        assert {m["village_code"] for m in sent1} == surabaya_alerted(first)
        caps1 = cap_files(first)
        # One alert per contiguous area of a kecamatan: every announced village in exactly one of them.
        codes1 = [
            g.findtext(f"{CAP}value") for r in caps1.values() for g in r.findall(f"{CAP}info[1]/{CAP}area/{CAP}geocode")
        ]
        assert len(codes1) == len(set(codes1)) == n_first
        assert len(caps1) < n_first  # neighbours at one level share an alert
        assert {r.findtext(f"{CAP}msgType") for r in caps1.values()} == {"Alert"}

        # 1b. The same cycle again: nothing new in the ledger, nothing sent.
        again = cycle("1-again", alert, "17:10")
        assert set(again.transitions) == {"unchanged"}
        assert outbox(again) == []
        assert ledger_rows(store) == len(sent1)

        # 2. Update: larger area, Severe -> Siaga where most of a village is covered.
        refs = f"{SENDER},{A1},2026-11-28T17:00:00+07:00"
        update = minimal_cap(
            LARGE,
            identifier=U1,
            severity="Severe",
            urgency="Expected",
            certainty="Likely",
            msg_type="Update",
            references=refs,
            effective="2026-11-28T17:30:00+07:00",
            expires="2026-11-28T21:00:00+07:00",
        )
        second = cycle("2-update", update, "17:35")
        assert second.transitions["escalate"] >= 1
        assert second.transitions["new"] >= 1
        assert second.levels["Siaga"] >= 1
        sent2 = outbox(second)
        tagana2 = [m for m in sent2 if m["audience"] == "tagana" and m["to"]]
        assert len(tagana2) == 1
        assert "SIAP TGN-3578" in str(tagana2[0]["text"])
        # Siaga villages outside Surabaya have no Tagana unit configured: rendered, flagged, never silent.
        unreached = [m for m in sent2 if m["audience"] == "tagana" and not m["to"]]
        assert all(m["status"] == "no-contact" for m in unreached)
        assert (not unreached) or any("NO TAGANA CONTACT" in n for n in second.notes)
        assert all(
            "NAIK ke SIAGA" in str(m["text"]) or "RAISED to SIAGA" in str(m["text"])
            for m in sent2
            if m["audience"] == "resident"
            and m["village_code"] in {str(x["village_code"]) for x in sent1}
            and m["level"] == "Siaga"
        )
        escalated = [
            r
            for r in cap_files(second).values()
            if r.findtext(f"{CAP}msgType") == "Update"
            and r.find(f"{CAP}info/{CAP}parameter[{CAP}valueName='ews:transition']") is not None
        ]
        assert escalated
        first_ids = set(caps1)
        for root in escalated:
            references = (root.findtext(f"{CAP}references") or "").split()
            assert all(r.split(",")[1] in first_ids for r in references)  # earlier ews versions only
        rows_after_update = ledger_rows(store)
        # One ledger row per resident message, and one per (Tagana unit, village version): a grouped notice
        # covers every Siaga village of the unit's area (all of them newly Siaga in this cycle).
        with (second.out_dir / "summary.csv").open() as handle:
            siaga_up = sum(int(r["level"]) >= 2 for r in csv.DictReader(handle))
        residents2 = [m for m in sent2 if m["audience"] == "resident"]
        assert rows_after_update == len(sent1) + len(residents2) + siaga_up

        # 3. Cancel: everyone who heard anything is told, by the ledger, and nothing else is sent.
        cancel = minimal_cap(
            "",
            identifier=C1,
            msg_type="Cancel",
            references=f"{refs} {SENDER},{U1},2026-11-28T17:30:00+07:00",
            effective="2026-11-28T18:00:00+07:00",
            expires="2026-11-28T21:00:00+07:00",
        )
        third = cycle("3-cancel", cancel, "18:05")
        assert set(third.transitions) == {"cancel"}
        sent3 = outbox(third)
        heard = {(m["recipient_id"], m["village_code"]) for m in sent1 + sent2 if m["audience"] == "resident"}
        told = {(m["recipient_id"], m["village_code"]) for m in sent3 if m["audience"] == "resident"}
        assert heard == told
        assert all("DICABUT" in str(m["text"]) or "CANCELLED" in str(m["text"]) for m in sent3)
        assert len([m for m in sent3 if m["audience"] == "tagana" and m["to"]]) == 1
        caps3 = cap_files(third)
        assert {r.findtext(f"{CAP}msgType") for r in caps3.values()} == {"Cancel"}
        residents3 = [m for m in sent3 if m["audience"] == "resident"]
        assert ledger_rows(store) == rows_after_update + len(residents3) + siaga_up
        assert store.active_alerts("jawa-timur") == []

        # Nobody got two messages for one alert version (the channel saw every send of every cycle).
        keys = Counter(json.loads(x)["dedup_key"] for x in (tmp_path / "channel.jsonl").read_text().splitlines())
        assert max(keys.values()) == 1
    finally:
        store.close()


def test_unknown_references_are_explained(surabaya: Path, tmp_path: Path, shared_data: Path) -> None:
    config = open_region(surabaya, {"EWS_SHARED_DATA": str(shared_data)})
    store = Store.from_url(f"sqlite:///{tmp_path / 'ews.db'}")
    try:
        cancel = tmp_path / "cancel.xml"
        cancel.write_bytes(
            minimal_cap(
                "", identifier="C9", msg_type="Cancel", references=f"{SENDER},NEVER-SEEN,2026-11-28T17:00:00+07:00"
            )
        )
        report = run_slice(
            config, str(cancel), tmp_path / "o1", now=t("18:00"), store=store, channel=FileOutbox(tmp_path / "c.jsonl")
        )
        assert report.transitions == {}
        assert any("Cancel of unknown warning NEVER-SEEN" in n for n in report.notes)
        assert any("no village was alerted, nothing to cancel" in n for n in report.notes)
        update = tmp_path / "update.xml"
        update.write_bytes(
            minimal_cap(
                SMALL, identifier="U9", msg_type="Update", references=f"{SENDER},ALSO-UNSEEN,2026-11-28T17:00:00+07:00"
            )
        )
        report = run_slice(
            config, str(update), tmp_path / "o2", now=t("18:00"), store=store, channel=FileOutbox(tmp_path / "c.jsonl")
        )
        assert any("Update of unknown warning ALSO-UNSEEN" in n for n in report.notes)
        assert set(report.transitions) == {"new"}  # still warns: an Update is a warning in force
    finally:
        store.close()

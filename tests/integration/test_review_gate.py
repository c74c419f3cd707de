"""Review gate, volume guard, `ews alerts list/approve/reject`, and CAP Exercise kept from residents."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from tests_support import minimal_cap

from ews.channels.outbox import FileOutbox
from ews.cli import _print_report, main
from ews.config import open_region
from ews.pipeline import RunReport, run_slice
from ews.store.repository import QueuedMessage, Store
from ews.synthetic import write_synthetic_region, write_synthetic_warning

NOW = datetime.fromisoformat("2026-11-28T18:00:00+07:00")


def region_with(tmp_path: Path, extra: str) -> Path:
    region = write_synthetic_region(tmp_path / "region")
    region.write_text(region.read_text() + extra)
    return region


def run(region: Path, source: Path, tmp_path: Path, db: str, now: datetime = NOW) -> RunReport:
    store = Store.from_url(db)
    try:
        return run_slice(
            open_region(region),
            str(source),
            tmp_path / "out",
            now=now,
            store=store,
            channel=FileOutbox(tmp_path / "outbox.jsonl"),
        )
    finally:
        store.close()


def queued_by_a_run(region: Path, tmp_path: Path) -> list[QueuedMessage]:
    """What a run on the synthetic warning leaves in the send ledger (``--queue-only``), as ``ews send`` takes it."""
    warning = write_synthetic_warning(tmp_path / "w", NOW)
    store = Store.from_url(f"sqlite:///{tmp_path / 'ews.db'}")
    try:
        run_slice(open_region(region), str(warning), tmp_path / "out", now=NOW, store=store, channel=None)
        return store.lease("inspect", NOW, limit=500)
    finally:
        store.close()


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_awas_waits_for_approval_then_goes_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    region = region_with(tmp_path, "alerts: {review_levels: [Awas]}\n")
    # `alerts approve` sends on the real clock: the warning must be in force now, not at a fixed time.
    now = datetime.now(UTC).replace(microsecond=0)
    warning = write_synthetic_warning(tmp_path / "w", now)
    db = f"sqlite:///{tmp_path / 'ews.db'}"
    report = run(region, warning, tmp_path, db, now)
    assert report.pending
    assert any("PENDING APPROVAL" in n for n in report.notes)
    sent = lines(tmp_path / "outbox.jsonl")
    assert sent
    assert all(m["level"] != "Awas" for m in sent)  # Siaga and Waspada went out, Awas waits

    assert main(["alerts", "list", "--database", db, "--region", "demo"]) == 0
    listed = capsys.readouterr().out
    assert f"pending review: {len(report.pending)} version(s) in 1 thread(s)" in listed
    assert "ews alerts approve " in listed
    assert "--region demo" in listed

    first, second = report.pending[0], report.pending[1]
    outbox = tmp_path / "approved.jsonl"
    args = ["--region", str(region), "--database", db, "--outbox", str(outbox), "--by", "analyst-1"]
    assert main(["alerts", "approve", str(first), *args]) == 0
    approved = lines(outbox)
    assert approved
    assert {m["level"] for m in approved} == {"Awas"}
    assert "approved by analyst-1" in capsys.readouterr().out
    # A decided version stays decided: approving again is refused and sends nothing more.
    assert main(["alerts", "approve", str(first), *args]) == 2
    assert "approved" in capsys.readouterr().err
    assert len(lines(outbox)) == len(approved)
    assert main(["alerts", "reject", str(second), "--region", str(region), "--database", db]) == 0
    assert len(lines(outbox)) == len(approved)

    # The next cycle does not resend what was approved, nor what was sent already.
    again = run(region, warning, tmp_path, db, now)
    assert again.messages == {}


def test_the_gate_holds_and_approves_a_whole_thread(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    region = region_with(tmp_path, "alerts: {review_levels: [Siaga, Awas]}\n")
    now = datetime.now(UTC).replace(microsecond=0)
    warning = write_synthetic_warning(tmp_path / "w", now)
    db = f"sqlite:///{tmp_path / 'ews.db'}"
    report = run(region, warning, tmp_path, db, now)
    assert len(report.pending) >= 2
    (held,) = report.pending_review  # one thread, all its held villages
    store = Store.from_url(db)
    try:
        (thread,) = store.pending_threads("demo")
    finally:
        store.close()
    assert thread.versions == len(report.pending)
    assert thread.thread_id in held

    # Until decided, every run says so, even one that holds nothing new.
    again = run(region, warning, tmp_path, db, now)
    assert again.pending == []
    assert again.pending_review == report.pending_review

    # --region takes the id too (looked up in $EWS_REGIONS_DIR); one command approves the thread's villages.
    monkeypatch.setenv("EWS_REGIONS_DIR", str(region.parent))
    outbox = tmp_path / "approved.jsonl"
    args = ["--region", "demo", "--database", db, "--outbox", str(outbox), "--by", "analyst-2"]
    assert region.name == "demo.yaml"
    assert main(["alerts", "approve", thread.thread_id, *args]) == 0
    out = capsys.readouterr().out
    assert f"{thread.thread_id}: {thread.versions} alert version(s) approved by analyst-2" in out
    assert "still pending in demo: 0 version(s) in 0 thread(s)" in out
    approved = lines(outbox)
    assert {m["level"] for m in approved} >= {"Siaga"}
    assert len({m["recipient_id"] for m in approved if m["audience"] == "resident"}) == len(
        [m for m in approved if m["audience"] == "resident"]
    )  # one message per resident
    assert main(["alerts", "approve", "--all", *args]) == 2  # nothing left: said so, exit 2
    assert "nothing pending" in capsys.readouterr().err
    assert run(region, warning, tmp_path, db, now).pending_review == []


def test_volume_guard_holds_a_large_send(tmp_path: Path) -> None:
    region = region_with(tmp_path, "alerts: {max_recipients: 5}\n")
    warning = write_synthetic_warning(tmp_path / "w", NOW)
    report = run(region, warning, tmp_path, f"sqlite:///{tmp_path / 'ews.db'}")
    assert report.messages == {}
    assert len(report.pending) == sum(report.levels.values())


def test_exercise_goes_to_the_exercise_list_only(tmp_path: Path) -> None:
    (tmp_path / "exercise.csv").write_text(
        "phone,village_code,language,channel,consent_source,consent_time\n"
        "+6289990008001,35.99.01.1001,id,sms,staff list,2026-01-01T00:00:00+07:00\n"
    )
    region = region_with(tmp_path, f"exercise_list: {tmp_path / 'exercise.csv'}\n")
    alert = tmp_path / "exercise.xml"
    alert.write_bytes(
        minimal_cap(
            "-8.90,110.15 -8.90,110.30 -8.85,110.30 -8.85,110.15 -8.90,110.15",
            status="Exercise",
            effective="2026-11-28T17:00:00+07:00",
            expires="2026-11-28T20:00:00+07:00",
        )
    )
    report = run(region, alert, tmp_path, f"sqlite:///{tmp_path / 'ews.db'}")
    sent = lines(tmp_path / "outbox.jsonl")
    assert sent
    residents = [m for m in sent if m["audience"] != "tagana"]
    assert {m["audience"] for m in residents} == {"exercise"}
    # The one staff member, once for the thread (not once per village), the count of villages in the mark.
    assert len(residents) == 1
    assert str(residents[0]["text"]).startswith("LATIHAN/EXERCISE")
    assert sum(n for label, n in report.levels.items() if label != "Aman") > 1
    assert "desa/kel.)" in str(residents[0]["text"])
    # Tagana rehearse their mobilisation: a notice marked LATIHAN, one per unit.
    tagana = [m for m in sent if m["audience"] == "tagana"]
    assert tagana
    assert all(str(m["text"]).startswith("LATIHAN/EXERCISE: ") for m in tagana)
    assert all("MOBILISASI" in str(m["text"]) for m in tagana)
    assert len({m["recipient_id"] for m in tagana}) == len(tagana)
    assert any("exercise list only" in n for n in report.notes)
    caps = list((tmp_path / "out" / "cap").glob("*.xml"))
    assert caps
    assert all(b"<status>Exercise</status>" in p.read_bytes() for p in caps)


def test_whatsapp_messages_carry_their_sms_fallback_when_the_region_asks(tmp_path: Path) -> None:
    region = region_with(tmp_path, "messages: {whatsapp_fallback_sms: true}\n")
    queued = queued_by_a_run(region, tmp_path)
    whatsapp = [q for q in queued if q.channel == "whatsapp" and q.audience == "resident"]
    assert whatsapp
    assert all(q.fallback_body and len(q.fallback_body) < len(q.body) for q in whatsapp)
    assert all(q.fallback_body is None for q in queued if q.channel == "sms")


def test_tagana_notices_carry_the_command_center_and_an_sms_fallback(tmp_path: Path) -> None:
    region = region_with(
        tmp_path,
        'command_center: {name: Pusdalops Contoh, phone: "0351 000 000", whatsapp: "+6289990009999",'
        " ack_minutes: 20}\n",
    )
    queued = queued_by_a_run(region, tmp_path)
    tagana = {q.channel: q for q in queued if q.audience == "tagana"}
    assert set(tagana) == {"sms", "whatsapp"}  # Pos Barat on WhatsApp, Pos Timur on SMS
    deadline = "18:20 WIB"  # the run at 18:00 WIB + ack_minutes
    # WhatsApp: reply to this message, by when, and the command center's number; its SMS rendering rides along.
    assert f"SIAP TGN-3599-01 paling lambat {deadline}" in tagana["whatsapp"].body
    assert "Pusdalops Contoh (pusat komando): 0351 000 000" in tagana["whatsapp"].body
    fallback = tagana["whatsapp"].fallback_body
    assert fallback is not None
    assert f'Konfirmasi: WA "SIAP TGN-3599-01" ke +6289990009999 s.d. {deadline}.' in fallback
    # SMS: no replies on SMS in Indonesia, so a WhatsApp number to confirm to, and the deadline.
    assert f'WA "SIAP TGN-3599-02" ke +6289990009999 s.d. {deadline}' in tagana["sms"].body
    assert tagana["sms"].fallback_body is None


def test_a_run_that_reaches_nobody_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    region = write_synthetic_region(tmp_path / "region")
    kept = [x for x in region.read_text().splitlines() if not x.startswith(("tagana:", "subscribers:"))]
    region.write_text("\n".join(kept) + "\n")
    warning = write_synthetic_warning(tmp_path / "w", NOW)
    report = run(region, warning, tmp_path, f"sqlite:///{tmp_path / 'ews.db'}")
    assert sum(n for label, n in report.levels.items() if label != "Aman") > 0
    assert set(report.messages) <= {"tagana sms NO CONTACT", "tagana whatsapp NO CONTACT"}  # nothing delivered
    (note,) = [n for n in report.notes if n.startswith("NOBODY REACHED")]
    assert "no subscriber, exercise-list member or Tagana contact" in note
    _print_report(report)
    out = capsys.readouterr().out
    assert "NOBODY REACHED: no subscriber or Tagana contact in the alerted villages (see NOTE)" in out
    assert "NOTE NOBODY REACHED" in out


def test_the_announced_hazard_travels_through_approval_and_the_end(tmp_path: Path) -> None:
    region = region_with(tmp_path, "alerts: {review_levels: [Waspada, Siaga, Awas]}\n")
    now = datetime.now(UTC).replace(microsecond=0)
    warning = write_synthetic_warning(tmp_path / "w", now)
    db = f"sqlite:///{tmp_path / 'ews.db'}"
    assert run(region, warning, tmp_path, db, now).pending
    store = Store.from_url(db)
    try:
        assert {v.hazard for v in store.pending_versions("demo")} == {"cuaca"}
        # As if the thread had been a tsunami warning: the stored hazard is what the approval must announce.
        with store.engine.begin() as connection:
            connection.execute(text("UPDATE alert_versions SET hazard = 'tsunami'"))
    finally:
        store.close()
    outbox = tmp_path / "approved.jsonl"
    args = ["--region", str(region), "--database", db, "--outbox", str(outbox), "--by", "analyst-3"]
    assert main(["alerts", "approve", "--all", *args]) == 0
    resident = [m for m in lines(outbox) if m["audience"] == "resident"]
    assert resident
    for m in resident:
        text_ = str(m["text"]).lower()
        assert "pantai" in text_ or "coast" in text_, m["text"]
        rain_advice = ("genangan", "standing water", "mengungsi ke tempat yang lebih tinggi atau lokasi")
        assert not any(w in text_ for w in rain_advice), m["text"]
    # The warning runs out: the end is announced with the tsunami's advice, never rain's.
    later = now + timedelta(days=1)
    ended = run(region, warning, tmp_path, db, later)
    assert ended.transitions.get("expire")
    ends = [m for m in lines(tmp_path / "outbox.jsonl") if m["audience"] == "resident" and m["channel"] == "whatsapp"]
    # A tsunami that runs out without BMKG's end notice "timed out": never "over", and no rain advice.
    ends = [m for m in ends if "BATAS WAKTU" in str(m["text"]) or "TIMED OUT" in str(m["text"])]
    assert ends
    assert not any("BERAKHIR" in str(m["text"]).split("\n")[0] for m in ends)
    for m in ends:
        assert "pantai" in str(m["text"]) or "coast" in str(m["text"]), m["text"]
        assert "genangan" not in str(m["text"])
        assert "standing water" not in str(m["text"])

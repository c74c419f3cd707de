"""Acceptance (issue 13, point 1): Tagana mobilisation with escalation, on SQLite and PostgreSQL.

The synthetic demo region (two Tagana posts), a Siaga warning over villages of both, an injectable clock:
both posts are notified; one acknowledges by a signed WhatsApp ``SIAP <code>``; the other does not and, after
its policy's delay, ``escalate_due`` pages its second coordinator (a ledger row, a page event, sent through the
local Twilio stub), who acknowledges; the board shows both mobilised; the warning ends and the stand-down goes
to everyone paged; escalating again pages nobody twice.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from twilio.request_validator import RequestValidator

from ews.center.mobilise import AckLinks, acknowledge, escalate_due, read_ack_token
from ews.channels.outbox import FileOutbox
from ews.channels.twilio import TwilioSms, twilio_client
from ews.config import open_region
from ews.contacts import fictional_phone, recipient_id
from ews.dispatch import Dispatcher
from ews.pipeline import RunReport, run_slice
from ews.store.repository import Store
from ews.synthetic import write_synthetic_region, write_synthetic_warning
from ews.testing.twilio_server import TwilioStub
from ews.web.app import create_app

T = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
SID, TOKEN, SENDER = (
    "AC" + "2" * 32,
    "mobilisation-token-not-a-secret",
    "+15005550006",
)  # a loopback stub's fake credentials
PUBLIC = "https://ews.example.invalid"
LINKS = AckLinks(PUBLIC, b"k" * 32)
BARAT, TIMUR = "TGN-3599-01", "TGN-3599-02"
BARAT_1, TIMUR_1, TIMUR_2, BPBD = (fictional_phone(n) for n in (9001, 9002, 9003, 9004))
TAGANA = (
    "unit_id,name,kabkota_code,kecamatan_codes,coordinator,phone,channel,step,role\n"
    f"{BARAT},Tagana Kab. Contoh Pos Barat,35.99,35.99.01;35.99.02,Koordinator Pos Barat,{BARAT_1},whatsapp,1,\n"
    f"{TIMUR},Tagana Kab. Contoh Pos Timur,35.99,35.99.03,Koordinator Pos Timur,{TIMUR_1},sms,,\n"
    f"{TIMUR},Tagana Kab. Contoh Pos Timur,35.99,35.99.03,Wakil Pos Timur,{TIMUR_2},sms,2,coordinator\n"
    f"{TIMUR},Tagana Kab. Contoh Pos Timur,35.99,35.99.03,Piket BPBD Kab. Contoh,{BPBD},sms,3,bpbd\n"
)


def region_files(folder: Path, policy: str = "") -> Path:
    region = write_synthetic_region(folder)
    (folder / "tagana.csv").write_text(TAGANA, encoding="utf-8")
    if policy:
        region.write_text(region.read_text(encoding="utf-8") + policy, encoding="utf-8")
    return region


def outbox(report: RunReport) -> list[dict[str, object]]:
    return [json.loads(x) for x in (report.out_dir / "outbox.jsonl").read_text().splitlines()]


def reply(client: TestClient, sid: str, phone: str, body: str) -> str:
    params = {"MessageSid": sid, "From": f"whatsapp:{phone}", "Body": body}
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC + "/twilio/inbound", params)
    answer = client.post("/twilio/inbound", data=params, headers={"X-Twilio-Signature": signature})
    assert answer.status_code == 200
    return answer.text


@pytest.mark.slow
def test_two_units_one_escalated_both_mobilised_then_stood_down(tmp_path: Path, database_url: str) -> None:
    region = region_files(tmp_path / "region")
    config = open_region(region)
    warning = write_synthetic_warning(tmp_path / "feed", T)
    store = Store.from_url(database_url)
    clock = {"now": T}
    client = TestClient(create_app(store, TOKEN, PUBLIC, clock=lambda: clock["now"]), base_url="http://testserver")
    try:
        first = run_slice(config, str(warning), tmp_path / "o1", now=T, store=store, channel=FileOutbox(tmp_path / "a"))
        tagana = [m for m in outbox(first) if m["audience"] == "tagana"]
        # Both posts notified at once, each by its step-1 coordinator only: the later steps wait.
        assert sorted(m["recipient_id"] for m in tagana) == sorted(map(recipient_id, [BARAT_1, TIMUR_1]))
        board = {m.unit_id: m for m in store.mobilisations()}
        assert set(board) == {BARAT, TIMUR}
        assert {m.status for m in board.values()} == {"open"}
        assert store.mobilisation_board()["open"] == 2

        # Pos Barat acknowledges by WhatsApp; Pos Timur stays silent.
        clock["now"] = T + timedelta(minutes=3)
        assert "TERMOBILISASI" in reply(client, "SM-ack-1", BARAT_1, "siap tgn-3599-01")
        assert "TERMOBILISASI" in reply(client, "SM-ack-1", BARAT_1, "siap tgn-3599-01")  # a replay counts once
        assert store.mobilisation(board[BARAT].id).acks == 1  # type: ignore[union-attr]
        assert escalate_due(store, at=T + timedelta(minutes=9), links=LINKS).pages == 0  # before the 10 min delay

        # 10 minutes: Pos Timur's second coordinator is paged, by SMS with a link, through the Twilio stub.
        done = escalate_due(store, at=T + timedelta(minutes=10), links=LINKS)
        assert done.pages == 1
        events = store.mobilisation_events(board[TIMUR].id)
        [page] = [e for e in events if e.kind == "page" and e.step == 2]
        assert page.recipient_id == recipient_id(TIMUR_2)
        assert page.target is not None
        assert page.target.startswith("Wakil Pos Timur")
        assert page.ledger_id == done.ledger_ids[0]
        assert page.delivery == "queued"
        with TwilioStub(SID, TOKEN) as stub:
            client_sms = TwilioSms(twilio_client(SID, TOKEN, base_url=stub.url, timeout=5.0), from_number=SENDER,
                                   messaging_service_sid=None, status_callback=None)  # fmt: skip
            Dispatcher(
                store, {"sms": client_sms, "whatsapp": FileOutbox(tmp_path / "wa")}, settle_seconds=0,
                clock=lambda: T + timedelta(minutes=10),
            ).run()  # fmt: skip
            [sent] = stub.messages_to(TIMUR_2)
        body = str(sent["body"])
        assert "ESKALASI tahap 2" in body
        assert "Koordinator Pos Timur belum menjawab" in body
        assert f"SIAP {TIMUR}" in body
        link = body.split(f"{PUBLIC}/ack/")[1].split()[0].rstrip(".")
        assert read_ack_token(link, LINKS.secret) == (board[TIMUR].id, recipient_id(TIMUR_2))
        assert store.mobilisation_board()["escalated"] == 1
        assert [e.delivery for e in store.mobilisation_events(board[TIMUR].id) if e.step == 2] == ["sent"]

        # The second coordinator acknowledges (the link); the BPBD step never fires.
        mid, who = read_ack_token(link, LINKS.secret)
        result = acknowledge(store, unit_id=TIMUR, responder=who, via="link", at=T + timedelta(minutes=12),
                             mobilisation_id=mid)  # fmt: skip
        assert result.mobilised
        assert escalate_due(store, at=T + timedelta(minutes=25), links=LINKS).pages == 0
        board_now = store.mobilisation_board()
        assert board_now["mobilised"] == 2
        assert board_now["open"] == board_now["acknowledged"] == 0
        # The board reads every card's events at once: the same as each one's own.
        ids = [m.id for m in board.values()]
        assert store.events_of(ids) == {i: store.mobilisation_events(i) for i in ids}
        actions = [a.action for a in store.audit_entries(subject=f"mobilisation:{board[TIMUR].id}")]
        assert {
            "mobilisation opened",
            "mobilisation page",
            "mobilisation acknowledged",
            "mobilisation mobilised",
        } <= set(actions)

        # The warning expires: the stand-down goes to everyone paged (the second coordinator too).
        end = run_slice(config, None, tmp_path / "o2", now=T + timedelta(hours=4), store=store,
                        channel=FileOutbox(tmp_path / "a"))  # fmt: skip
        ended = [m for m in outbox(end) if m["audience"] == "tagana"]
        assert sorted(m["recipient_id"] for m in ended) == sorted(map(recipient_id, [BARAT_1, TIMUR_1, TIMUR_2]))
        assert {m.status for m in store.mobilisations()} == {"stood-down"}
        assert store.mobilisation_board()["stood-down"] == 2
        assert escalate_due(store, at=T + timedelta(hours=5), links=LINKS).pages == 0
        pages = [e for e in store.mobilisation_events(board[TIMUR].id) if e.kind == "page" and e.recipient_id]
        assert len(pages) == len({(e.round, e.step, e.recipient_id) for e in pages}) == 2
    finally:
        store.close()


def test_a_policy_change_does_not_change_an_open_mobilisation(tmp_path: Path, database_url: str) -> None:
    region = region_files(tmp_path / "region", "mobilisation:\n  steps:\n    - {targets: 1, delay_minutes: 0}\n")
    warning = write_synthetic_warning(tmp_path / "feed", T)
    store = Store.from_url(database_url)
    try:
        run_slice(open_region(region), str(warning), tmp_path / "o1", now=T, store=store,
                  channel=FileOutbox(tmp_path / "a"))  # fmt: skip
        [timur] = [m for m in store.mobilisations() if m.unit_id == TIMUR]
        assert [s["targets"] for s in timur.policy["steps"]] == [[1]]
        # The region file now escalates to step 2 after 5 minutes, quorum 2: the open mobilisation keeps its own.
        region.write_text(
            region.read_text(encoding="utf-8").replace(
                "    - {targets: 1, delay_minutes: 0}\n",
                "    - {targets: 1, delay_minutes: 0}\n    - {targets: 2, delay_minutes: 5}\n  quorum: 2\n",
            ),
            encoding="utf-8",
        )
        run_slice(open_region(region), str(warning), tmp_path / "o2", now=T + timedelta(minutes=6), store=store,
                  channel=FileOutbox(tmp_path / "a"))  # fmt: skip
        [again] = [m for m in store.mobilisations() if m.unit_id == TIMUR]
        assert again.id == timur.id
        assert again.policy == timur.policy
        assert again.quorum == 1
        # The new policy would page step 2 at 5 minutes; the frozen one (one step, fired by the pipeline) pages
        # nothing until its repeat round at 0 + 30 minutes, and then step 1 again.
        assert escalate_due(store, at=T + timedelta(minutes=29)).pages == 0
        repeat = escalate_due(store, at=T + timedelta(minutes=30))
        assert repeat.pages == 2  # both posts' step-1 coordinators, round 2
        assert escalate_due(store, at=T + timedelta(minutes=31)).pages == 0
    finally:
        store.close()

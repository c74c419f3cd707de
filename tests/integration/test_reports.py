"""Report routing (kanalisasi) end to end on SQLite and PostgreSQL: residents' WhatsApp reports through the signed
webhook, placed by subscription, named place or shared location on Surabaya's real kelurahan boundaries, linked
to the active warning, deduplicated, moved forward with each change told once through the Twilio stub, and
escalated when overdue with an injected clock."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from twilio.request_validator import RequestValidator

from ews.alerts.model import VillageState
from ews.center.places import Gazetteer
from ews.center.reports import (
    RegionDesk,
    ReportError,
    ReportIntake,
    escalate_overdue,
    intake_report,
    set_report_status,
)
from ews.channels.twilio import TwilioSms, TwilioWhatsApp, twilio_client
from ews.command.rules import RoutingRules
from ews.dispatch import Dispatcher
from ews.ingest.boundaries import read_area_names, read_boundaries
from ews.store.repository import Store, SubscriberRecord
from ews.testing.twilio_server import TwilioStub
from ews.types import Level
from ews.web.app import create_app

TOKEN = "test-auth-token-not-a-secret"  # noqa: S105 - a token for the loopback test only
SID = "AC" + "7" * 32
PUBLIC = "https://ews.example.invalid"
T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)  # 17:00 WIB
RESIDENT = "+62899900000011"  # ews's reserved fictional range, never a person
NEIGHBOUR = "+62899900000012"
STRANGER = "+62899900000013"
DUTY = "+62899900009999"
KARANG_PILANG = "35.78.01.1001"
KEBRAON = "35.78.01.1002"
SIDOSERMO = "35.78.02.1001"


@pytest.fixture(scope="module")
def gazetteer(jatim_villages_dir: Path, shared_data: Path) -> Gazetteer:
    villages = read_boundaries(jatim_villages_dir / "wilayah_boundaries_kel_35.78.geojson")
    names = read_area_names([shared_data / "wilayah_codes" / "idn-area-data_districts.csv"])
    return Gazetteer.from_villages(villages, names)


@pytest.fixture
def intake(gazetteer: Gazetteer) -> ReportIntake:
    desk = RegionDesk("jawa-timur", "35", RoutingRules(), gazetteer, "Pusdalops", DUTY, "whatsapp")
    return ReportIntake([desk])


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store.from_url(database_url)
    s.import_subscribers(
        [
            SubscriberRecord(RESIDENT, KARANG_PILANG, "id", "whatsapp", "test", T0),
            SubscriberRecord(NEIGHBOUR, KARANG_PILANG, "en", "whatsapp", "test", T0),
        ]
    )
    yield s
    s.close()


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(store: Store, intake: ReportIntake, clock: Clock) -> TestClient:
    app = create_app(store, TOKEN, PUBLIC, clock=clock, reports=intake)
    return TestClient(app, base_url="http://testserver")


def report(client: TestClient, sid: str, body: str, sender: str = RESIDENT, **extra: str) -> str:
    params = {"MessageSid": sid, "From": f"whatsapp:{sender}", "Body": body, **extra}
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC + "/twilio/inbound", params)
    response = client.post("/twilio/inbound", data=params, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200
    return response.text


def ledger_rows(store: Store) -> list[tuple[str, str, str]]:
    with store.engine.connect() as connection:
        rows = connection.execute(text("SELECT recipient_id, audience, topic FROM send_ledger ORDER BY id"))
        return [tuple(r) for r in rows]


def test_a_whatsapp_report_is_routed_placed_by_subscription_and_answered_in_the_reply(
    client: TestClient, store: Store
) -> None:
    reply = report(client, "SM1", "Tolong!! ada warga terjebak banjir, air sudah sampai atap")
    # Rescue goes to Tagana within 15 minutes: 10:00 UTC + 15 min is 17:15 WIB.
    assert "Laporan #1" in reply
    assert "Tagana" in reply
    assert "17:15 WIB" in reply
    (only,) = store.reports()
    assert (only.category, only.unit, only.status) == ("rescue", "Tagana", "routed")
    assert (only.village_code, only.located_by) == (KARANG_PILANG, "subscription")
    assert only.deadline_at == T0 + timedelta(minutes=15)
    assert only.reporter == "warga (whatsapp)".replace("whatsapp", "WhatsApp")
    assert [e.kind for e in store.report_events(only.id)] == ["received", "routed"]
    assert ledger_rows(store) == []  # the first answer is the webhook's reply, never also queued
    assert len(store.inbound("report")) == 1  # the inbound message is kept as before
    assert [a.action for a in store.audit_entries(subject=f"report:{only.id}")] == ["report.routed"]


def test_a_named_place_and_a_shared_location_place_the_report(
    client: TestClient, store: Store, gazetteer: Gazetteer
) -> None:
    report(client, "SM1", "jalan rusak parah di Kebraon, jembatan putus", sender=STRANGER)
    point = gazetteer_point(gazetteer, SIDOSERMO)
    report(client, "SM2", "", sender="+62899900000014", Latitude=str(point[0]), Longitude=str(point[1]))
    by_id = {r.id: r for r in store.reports()}
    assert (by_id[1].village_code, by_id[1].located_by, by_id[1].category) == (KEBRAON, "place", "infrastructure")
    assert (by_id[2].village_code, by_id[2].located_by, by_id[2].category) == (SIDOSERMO, "location", "unclassified")
    assert by_id[2].unit == "Operator piket"  # never dropped: the duty operator reads it


def gazetteer_point(gazetteer: Gazetteer, code: str) -> tuple[float, float]:
    # A point surely inside the village: search a grid over Surabaya for one the gazetteer puts there.
    for i in range(60):
        for j in range(60):
            lat, lon = -7.20 - i * 0.003, 112.60 + j * 0.006
            if gazetteer.locate(lat, lon) == code:
                return lat, lon
    raise AssertionError(f"no grid point in {code}")


def test_the_report_is_linked_to_the_warning_active_over_its_village(client: TestClient, store: Store) -> None:
    store.save_states(
        "jawa-timur",
        [VillageState("jawa-timur", KARANG_PILANG, "CJT1", Level.SIAGA, 1, "CJT1", T0, None, 0.8, True)],
        at=T0,
    )
    report(client, "SM1", "rumah kebanjiran, butuh makanan dan selimut")
    assert store.report(1).thread_id == "CJT1"
    report(client, "SM2", "banjir di Kebraon, butuh makanan", sender=STRANGER)
    assert store.report(2).thread_id is None  # no warning over Kebraon


def test_repeats_join_the_open_report_and_a_replay_is_stored_once(
    client: TestClient, store: Store, clock: Clock
) -> None:
    first = report(client, "SM1", "ada orang terjebak di lantai 2, air naik")
    assert report(client, "SM1", "ada orang terjebak di lantai 2, air naik") == first  # Twilio retried
    clock.now = T0 + timedelta(minutes=10)
    joined = report(client, "SM2", "someone trapped on the roof please help", sender=NEIGHBOUR)  # same village
    assert "joined to report #1" in joined  # NEIGHBOUR chose English
    clock.now = T0 + timedelta(minutes=45)
    later = report(client, "SM3", "masih ada yang terjebak!!")
    assert "Laporan #3" in later  # 45 min after: a new report, routed again
    rows = {r.id: r for r in store.reports()}
    assert sorted(rows) == [1, 2, 3]
    assert (rows[2].duplicate_of, rows[2].language, rows[3].duplicate_of) == (1, "en", None)
    assert store.report_counts() == {
        "received": 0, "routed": 2, "in-progress": 0, "resolved": 0, "overdue": 2, "duplicates": 1,
    }  # fmt: skip
    assert [e.kind for e in store.report_events(2)] == ["received", "duplicate"]


def test_each_status_change_is_told_once_to_every_reporter(
    client: TestClient, store: Store, intake: ReportIntake, clock: Clock
) -> None:
    report(client, "SM1", "ada orang terjebak, air naik terus")
    clock.now = T0 + timedelta(minutes=5)
    report(client, "SM2", "tolong ada yang terjebak", sender=NEIGHBOUR)  # joins #1
    at = T0 + timedelta(minutes=8)
    for _ in range(2):  # an operator double-clicks; a retried request
        record = set_report_status(store, 1, "in-progress", actor="op1", role="operator", note="Tim menuju", at=at)
    assert record.status == "in-progress"
    assert store.report(2).status == "in-progress"  # the repeat follows
    set_report_status(store, 1, "resolved", actor="op1", role="operator", at=at + timedelta(minutes=30), intake=intake)
    set_report_status(store, 1, "resolved", actor="op1", role="operator", at=at + timedelta(minutes=31), intake=intake)
    assert sorted(topic for _, _, topic in ledger_rows(store)) == [
        "report:1:in-progress", "report:1:in-progress", "report:1:resolved", "report:1:resolved",
    ]  # fmt: skip
    assert [e.kind for e in store.report_events(1)] == ["received", "routed", "in-progress", "resolved"]
    assert store.report_events(1)[2].ledger_id is not None
    with pytest.raises(ReportError, match="only moves forward"):
        set_report_status(store, 1, "routed", actor="op1", role="operator", at=at)
    with pytest.raises(ReportError, match="joined to report 1"):
        set_report_status(store, 2, "resolved", actor="op1", role="operator", at=at)

    # Both wrote to us within the last 24 hours: WhatsApp's session window is open for free text.
    with TwilioStub(SID, TOKEN, whatsapp_open=[RESIDENT, NEIGHBOUR]) as stub:
        sent_at = at + timedelta(minutes=32)
        channel = TwilioWhatsApp(
            twilio_client(SID, TOKEN, base_url=stub.url, timeout=5.0), from_number="+15005550006", content_sids={},
            status_callback=None, clock=lambda: sent_at,
        )  # fmt: skip
        for _ in range(2):  # the second run finds nothing left to send
            Dispatcher(store, {"whatsapp": channel}, settle_seconds=0, clock=lambda: sent_at).run(until_empty=True)
        assert stub.count(f"whatsapp:{RESIDENT}") == 2  # in progress, resolved: each once
        assert stub.count(f"whatsapp:{NEIGHBOUR}") == 2
        bodies = [m["body"] for m in stub.messages_to(f"whatsapp:{NEIGHBOUR}")]
    assert any("is handling report #1" in b and "Tim menuju" in b for b in bodies)  # in English for NEIGHBOUR
    assert any("has been resolved" in b for b in bodies)


def test_a_whatsapp_answer_outside_the_24_hour_window_goes_again_by_sms(
    store: Store, gazetteer: Gazetteer, clock: Clock
) -> None:
    """With messages.whatsapp_fallback_sms, a status answer WhatsApp refuses (63016) is sent by SMS, once."""
    desk = RegionDesk("jawa-timur", "35", RoutingRules(), gazetteer, "Pusdalops", DUTY, "whatsapp", sms_fallback=True)
    intake = ReportIntake([desk])
    client = TestClient(create_app(store, TOKEN, PUBLIC, clock=clock, reports=intake), base_url="http://testserver")
    report(client, "SM1", "ada orang terjebak, air naik terus")
    later = T0 + timedelta(days=2)  # the reporter wrote two days ago: WhatsApp's session window has closed
    set_report_status(store, 1, "resolved", actor="op1", role="operator", at=later, intake=intake)
    with TwilioStub(SID, TOKEN, whatsapp_open=[]) as stub:
        client_ = twilio_client(SID, TOKEN, base_url=stub.url, timeout=5.0)
        channels = {
            "whatsapp": TwilioWhatsApp(client_, from_number="+15005550006", content_sids={}, status_callback=None,
                                       clock=lambda: later),
            "sms": TwilioSms(client_, from_number="+15005550006", messaging_service_sid=None, status_callback=None,
                             clock=lambda: later),
        }  # fmt: skip
        for _ in range(2):
            Dispatcher(store, channels, settle_seconds=0, clock=lambda: later).run(until_empty=True)
        assert stub.count(f"whatsapp:{RESIDENT}") == 0
        assert stub.count(RESIDENT) == 1
        [sms] = stub.messages_to(RESIDENT)
    assert "#1" in sms["body"]
    assert sorted((audience, topic) for _, audience, topic in ledger_rows(store)) == [
        ("reporter", "report:1:resolved"), ("reporter", "report:1:resolved"),
    ]  # fmt: skip  # the refused WhatsApp row and its SMS


def test_overdue_reports_escalate_once_per_check_and_page_the_duty_number(
    client: TestClient, store: Store, intake: ReportIntake
) -> None:
    report(client, "SM1", "ada warga terjebak, air naik")  # rescue: 15 min
    report(client, "SM2", "butuh makanan dan air bersih di pengungsian", sender=STRANGER)  # relief: 180 min
    assert escalate_overdue(store, at=T0 + timedelta(minutes=14), intake=intake) == []
    first = escalate_overdue(store, at=T0 + timedelta(minutes=16), intake=intake)
    assert [(e.report_id, e.escalations, e.deadline_at) for e in first] == [(1, 1, T0 + timedelta(minutes=30))]
    assert escalate_overdue(store, at=T0 + timedelta(minutes=16), intake=intake) == []  # the same check again
    # The scheduler was away for an hour: one escalation, and a deadline after now again.
    late = escalate_overdue(store, at=T0 + timedelta(minutes=75), intake=intake)
    assert [(e.report_id, e.escalations, e.deadline_at) for e in late] == [(1, 2, T0 + timedelta(minutes=90))]
    pages = [topic for _, audience, topic in ledger_rows(store) if audience == "tagana"]
    assert pages == ["report:1:escalated:1", "report:1:escalated:2"]
    assert store.reports()[0].id == 1  # open and earliest deadline first: the overdue one
    set_report_status(store, 1, "resolved", actor="op1", role="operator", at=T0 + timedelta(minutes=80))
    assert [e.report_id for e in escalate_overdue(store, at=T0 + timedelta(hours=5), intake=intake)] == [2]
    assert store.report(1).escalations == 2
    assert [e.kind for e in store.report_events(1)].count("escalated") == 2


def test_agency_and_operator_reports_without_a_number_get_no_message(store: Store, intake: ReportIntake) -> None:
    agency = intake_report(
        store, source="agency", source_ref="BPBD-SBY-0042", body="Tanggul jebol di Kebraon, jalan terputus",
        at=T0, reporter_label="BPBD Kota Surabaya", intake=intake,
    )  # fmt: skip
    assert (agency.village_code, agency.located_by, agency.unit) == (KEBRAON, "place", "BPBD / Dinas PUPR")
    typed = intake_report(
        store, source="operator", source_ref="form-1", body="warga lapor lewat telepon, butuh obat",
        at=T0, village_code=SIDOSERMO, reporter_label="telepon", intake=intake, actor="op1", role="operator",
    )  # fmt: skip
    assert (typed.located_by, typed.village_code) == ("operator", SIDOSERMO)
    for rid in (agency.report_id, typed.report_id):
        set_report_status(store, rid, "resolved", actor="op1", role="operator", at=T0 + timedelta(minutes=9))
    assert ledger_rows(store) == []
    assert store.report(agency.report_id).reporter == "BPBD Kota Surabaya"
    assert intake_report(
        store, source="agency", source_ref="BPBD-SBY-0042", body="(sent again)", at=T0, intake=intake
    ).replayed
    with pytest.raises(ReportError, match="not in this region"):
        intake_report(
            store, source="operator", source_ref="form-2", body="x", at=T0, village_code="35.01.01.2001", intake=intake
        )


def test_an_operator_report_with_a_resident_number_is_answered_through_the_ledger(
    store: Store, intake: ReportIntake
) -> None:
    result = intake_report(
        store, source="operator", source_ref="form-9", body="ada korban luka kena reruntuhan", at=T0,
        reporter_phone="0899-9000-0013", channel="sms", intake=intake, actor="op1", role="operator",
    )  # fmt: skip
    assert result.answer_ledger_id is not None
    assert ledger_rows(store) == [(f"{store.report(1).reporter_id}", "reporter", "report:1:routed")]


def test_no_phone_number_in_logs(
    client: TestClient, store: Store, intake: ReportIntake, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    report(client, "SM1", f"tolong terjebak, hubungi saya {RESIDENT}")
    set_report_status(store, 1, "in-progress", actor="op1", role="operator", at=T0 + timedelta(minutes=1))
    escalate_overdue(store, at=T0 + timedelta(hours=1), intake=intake)
    with pytest.raises(ReportError) as refused:
        intake_report(store, source="operator", source_ref="f", body="x", at=T0, reporter_phone="0899 ABC 0011")
    logged = caplog.text + str(refused.value)
    for number in (RESIDENT, RESIDENT[1:], DUTY, DUTY[1:], "0899 ABC 0011"):
        assert number not in logged
    assert "report 1" in caplog.text


def test_the_reports_command_adds_lists_moves_and_escalates(
    tmp_path: Path, database_url: str, jatim_villages_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ews.cli import main
    from ews.testing.regions import write_subscribed_region

    region = write_subscribed_region(
        tmp_path, jatim_villages_dir / "wilayah_boundaries_kel_35.78.geojson", [], region_id="surabaya",
        name="Surabaya", province_code="35",
    )  # fmt: skip
    db = ["--database", database_url]
    add = ["reports", "add", "--region", str(region), "--text", "pohon tumbang menutup jalan di Kebraon"]
    assert main([*add, "--by", "op1", "--ref", "call-1", *db]) == 0
    assert main([*add, "--by", "op1", "--ref", "call-1", *db]) == 0  # the same call typed twice: stored once
    out = capsys.readouterr().out
    assert "report #1: routed: infrastructure -> BPBD / Dinas PUPR" in out
    assert "place 35.78.01.1002 (place)" in out
    assert "already stored" in out
    assert main(["reports", "status", "1", "in-progress", "--by", "op1", *db]) == 0
    assert main(["reports", "list", *db]) == 0
    listed = capsys.readouterr().out
    assert "#1\tin-progress" in listed
    assert "in-progress 1" in listed
    assert main(["reports", "escalate", "--region", str(region), *db]) == 0  # not overdue yet (4 h)
    assert "0 report(s) escalated" in capsys.readouterr().err
    assert main(["reports", "status", "1", "routed", "--by", "op1", *db]) == 2  # never backwards
    assert "only moves forward" in capsys.readouterr().err

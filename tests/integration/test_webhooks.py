"""Twilio webhooks: real HMAC-SHA1 signatures, forged and replayed requests, out-of-order statuses,
STOP opt-outs honoured by the next send, Tagana acknowledgements, and reports."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from twilio.request_validator import RequestValidator

from ews.alerts.model import Decision, Transition
from ews.contacts import recipient_id
from ews.store.repository import Outcome, Store, SubscriberRecord
from ews.types import Level, TaganaUnit
from ews.web.app import create_app
from ews.web.inbound import classify

TOKEN = "test-auth-token-not-a-secret"  # noqa: S105 - a token for the loopback test only
PUBLIC = "https://ews.example.invalid"
T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
RESIDENT = "+62899900000011"
COORDINATOR = "+62899900009001"


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store.from_url(database_url)
    s.import_subscribers([SubscriberRecord(RESIDENT, "35.78.01.1001", "id", "whatsapp", "test", T0)])
    s.save_tagana([TaganaUnit("TGN-3578", "Tagana Kota Surabaya", "35.78", (), "Koordinator", COORDINATOR, "whatsapp")])
    yield s
    s.close()


@pytest.fixture
def client(store: Store) -> TestClient:
    return TestClient(create_app(store, TOKEN, PUBLIC, clock=lambda: T0), base_url="http://testserver")


def post(client: TestClient, path: str, params: dict[str, str], *, token: str = TOKEN, signed: bool = True):
    # Signed the way Twilio signs: HMAC-SHA1 over the public URL + sorted parameters, base64.
    headers = {"X-Twilio-Signature": RequestValidator(token).compute_signature(PUBLIC + path, params)} if signed else {}
    return client.post(path, data=params, headers=headers)


def sent_version(store: Store, provider_id: str, *, channel: str = "whatsapp", fallback: str | None = None) -> int:
    """One alert version sent to RESIDENT (queued, leased and settled as the dispatcher does)."""
    decision = Decision(
        "jawa-timur",
        "35.78.01.1001",
        "A1",
        Transition.NEW,
        Level.NONE,
        Level.SIAGA,
        1,
        "A1",
        T0,
        None,
        0.9,
        True,
        False,
        "test",
    )
    version = store.add_alert_version(decision, f"ews.jawa-timur.{provider_id}.35.78.01.1001.1", "auto", at=T0)
    store.enqueue(
        version,
        recipient_id(RESIDENT),
        "resident",
        channel,
        address=RESIDENT,
        body="teks panjang",
        language="id",
        priority=1,
        valid_until=None,
        fallback_body=fallback,
    )
    leased = store.lease("w", T0)
    store.finish_many([Outcome(leased[0].ledger_id, "sent", provider_id)], worker="w")
    return version


def test_forged_or_missing_signature_is_refused_and_changes_nothing(client: TestClient, store: Store) -> None:
    stop = {"MessageSid": "SM1", "From": f"whatsapp:{RESIDENT}", "Body": "STOP"}
    assert post(client, "/twilio/inbound", stop, signed=False).status_code == 403
    assert post(client, "/twilio/inbound", stop, token="another-token").status_code == 403  # noqa: S106
    tampered = post(client, "/twilio/inbound", {**stop})
    assert tampered.status_code == 200  # the genuine one passes...
    forged = dict(stop, Body="YA")  # ...but a body changed after signing does not
    headers = {"X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(PUBLIC + "/twilio/inbound", stop)}
    assert client.post("/twilio/inbound", data=forged, headers=headers).status_code == 403
    assert len(store.inbound()) == 1


def test_stop_opts_out_confirms_and_is_honoured(client: TestClient, store: Store) -> None:
    assert [r.phone for r in store.subscribers()] == [RESIDENT]
    reply = post(client, "/twilio/inbound", {"MessageSid": "SM2", "From": f"whatsapp:{RESIDENT}", "Body": " berhenti "})
    assert reply.status_code == 200
    assert "berhenti menerima" in reply.text
    assert store.subscribers() == []  # the next send finds nobody to message
    exported = store.export_subscribers()[0]
    assert exported["opt_out_source"].startswith("whatsapp BERHENTI")
    assert RESIDENT not in reply.text


def test_replayed_inbound_is_stored_once(client: TestClient, store: Store) -> None:
    report = {"MessageSid": "SM3", "From": f"whatsapp:{RESIDENT}", "Body": "Air sudah masuk rumah di RT 02"}
    assert post(client, "/twilio/inbound", report).status_code == 200
    assert post(client, "/twilio/inbound", report).status_code == 200
    stored = store.inbound("report")
    assert len(stored) == 1
    assert stored[0]["sender_id"] == recipient_id(RESIDENT)
    assert RESIDENT not in str(stored)


def test_tagana_acknowledgement(client: TestClient, store: Store) -> None:
    reply = post(
        client, "/twilio/inbound", {"MessageSid": "SM4", "From": f"whatsapp:{COORDINATOR}", "Body": "siap tgn-3578"}
    )
    assert "TGN-3578" in reply.text
    acks = store.inbound("ack")
    assert [(a["unit_id"], a["sender_id"]) for a in acks] == [("TGN-3578", recipient_id(COORDINATOR))]
    # The same words from someone who is not that unit's coordinator are only a report.
    post(client, "/twilio/inbound", {"MessageSid": "SM5", "From": f"whatsapp:{RESIDENT}", "Body": "SIAP TGN-3578"})
    assert len(store.inbound("ack")) == 1
    assert len(store.inbound("report")) == 1


def test_status_callbacks_never_go_backwards(client: TestClient, store: Store) -> None:
    sent_version(store, "SMabc")
    for status in ("delivered", "sent", "queued", "delivered"):  # late, duplicated and out of order
        assert post(client, "/twilio/status", {"MessageSid": "SMabc", "MessageStatus": status}).status_code == 204
    assert store.delivery_status("SMabc") == "delivered"
    post(client, "/twilio/status", {"MessageSid": "SMabc", "MessageStatus": "read"})
    assert store.delivery_status("SMabc") == "read"
    # A callback for someone else's message is accepted and ignored.
    assert post(client, "/twilio/status", {"MessageSid": "SMzzz", "MessageStatus": "delivered"}).status_code == 204
    assert store.delivery_status("SMzzz") is None


def test_replayed_status_callback_changes_nothing(client: TestClient, store: Store) -> None:
    sent_version(store, "SMdef")
    callback = {"MessageSid": "SMdef", "MessageStatus": "undelivered", "ErrorCode": "30003"}
    post(client, "/twilio/status", callback)
    post(client, "/twilio/status", callback)
    assert store.delivery_status("SMdef") == "undelivered"


@pytest.mark.parametrize(
    ("body", "kind", "code"),
    [
        ("STOP", "opt-out", None),
        ("stop.", "opt-out", None),
        ("Unsubscribe", "opt-out", None),
        ("YA TGN-1", "ack", "TGN-1"),
        ("siap  tgn-3578 !", "ack", "TGN-3578"),
        ("stop the flooding please", "report", None),
        ("SIAP", "report", None),
    ],
)
def test_classify(body: str, kind: str, code: str | None) -> None:
    meaning = classify(body)
    assert (meaning.kind, meaning.code) == (kind, code)


def test_whatsapp_failed_by_callback_falls_back_to_sms_once(client: TestClient, store: Store) -> None:
    sent_version(store, "SMwa1", fallback="sms pendek")
    failed = {"MessageSid": "SMwa1", "MessageStatus": "failed", "ErrorCode": "63016"}
    assert post(client, "/twilio/status", failed).status_code == 204
    assert post(client, "/twilio/status", failed).status_code == 204  # replayed: no second fallback
    queued = store.lease("w2", T0)
    assert [(q.channel, q.body) for q in queued] == [("sms", "sms pendek")]

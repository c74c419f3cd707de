"""The loopback Twilio stub, driven by the official ``twilio`` client: shapes, errors, callbacks, faults."""

from __future__ import annotations

import http.server
import re
import threading
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from ews.channels.twilio import RoutedHttpClient, twilio_client
from ews.testing.twilio_server import TwilioStub, segment_count

SID = "AC" + "1f" * 16
TOKEN = "0123456789abcdef0123456789abcdef"  # noqa: S105 - the stub's fake credential
SENDER = "+15005550006"
RESIDENT = "+6289990000101"  # ews's fictional range: the stub accepts it, real Twilio must never see it
OTHER = "+6289990000102"


@pytest.fixture
def stub() -> Iterator[TwilioStub]:
    with TwilioStub(SID, TOKEN) as running:
        yield running


def client_for(stub: TwilioStub, timeout: float = 5.0, token: str = TOKEN) -> Client:
    return twilio_client(SID, token, base_url=stub.url, timeout=timeout)


class Receiver:
    """A loopback webhook endpoint recording (url, params, signature) of every POST."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, str], str]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                params = dict(urllib.parse.parse_qsl(body))
                outer.calls.append((outer.url + self.path, params, self.headers["X-Twilio-Signature"]))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return None

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.close()


def test_create_fetch_and_list_have_twilio_shapes(stub: TwilioStub) -> None:
    client = client_for(stub)
    created = client.messages.create(to=RESIDENT, from_=SENDER, body="Awas banjir")
    assert re.fullmatch(r"SM[0-9a-f]{32}", created.sid)
    assert created.account_sid == SID
    assert created.status == "queued"
    assert created.to == RESIDENT
    assert created.from_ == SENDER
    assert created.num_segments == "1"
    assert created.error_code is None
    assert created.date_created.tzinfo is not None  # parsed from RFC 2822 by the client
    assert created.uri == f"/2010-04-01/Accounts/{SID}/Messages/{created.sid}.json"

    fetched = client.messages(created.sid).fetch()
    assert (fetched.sid, fetched.body) == (created.sid, "Awas banjir")

    listed = client.messages.list(to=RESIDENT)
    assert [message.sid for message in listed] == [created.sid]
    assert len(stub.messages) == 1
    assert stub.messages[0]["body"] == "Awas banjir"


def test_messaging_service_messages_are_accepted_not_queued(stub: TwilioStub) -> None:
    created = client_for(stub).messages.create(to=RESIDENT, messaging_service_sid="MG" + "0" * 32, body="x")
    assert created.status == "accepted"
    assert created.messaging_service_sid == "MG" + "0" * 32


def test_fetch_of_unknown_sid_is_404_20404(stub: TwilioStub) -> None:
    with pytest.raises(TwilioRestException) as caught:
        client_for(stub).messages("SM" + "0" * 32).fetch()
    assert (caught.value.status, caught.value.code) == (404, 20404)


def test_list_filters_by_number_and_date_and_pages_newest_first() -> None:
    # The stub clock steps one hour per message: 00:00, 01:00, ... so date filters have exact answers.
    start = datetime(2026, 1, 10, tzinfo=UTC)
    ticks = iter(start + timedelta(hours=hour) for hour in range(100))
    with TwilioStub(SID, TOKEN, clock=lambda: next(ticks)) as stub:
        client = client_for(stub)
        sids = [client.messages.create(to=RESIDENT, from_=SENDER, body=f"m{i}").sid for i in range(5)]
        client.messages.create(to=OTHER, from_=SENDER, body="other")

        listed = client.messages.list(to=RESIDENT, page_size=2)  # 3 pages of 2, 2, 1
        assert [message.sid for message in listed] == sids[::-1]
        pages = [r for r in stub.requests if r.method == "GET"]
        assert len(pages) == 3
        assert "Page=1" in pages[1].path
        assert "Page=2" in pages[2].path

        # messages m2 (02:00), m3 (03:00) and m4 (04:00) were created at or after 02:00
        window = client.messages.list(to=RESIDENT, date_sent_after=start + timedelta(hours=2))
        assert [message.body for message in window] == ["m4", "m3", "m2"]
        early = client.messages.list(date_sent_before=start + timedelta(hours=1))
        assert sorted(message.body for message in early) == ["m0", "m1"]
        assert [message.body for message in client.messages.list(from_=SENDER, to=OTHER)] == ["other"]


def test_wrong_auth_token_is_401_with_code_20003(stub: TwilioStub) -> None:
    with pytest.raises(TwilioRestException, match="Authenticate") as caught:
        client_for(stub, token=TOKEN.upper()).messages.create(to=RESIDENT, from_=SENDER, body="x")
    assert (caught.value.status, caught.value.code) == (401, 20003)
    assert stub.messages == []


@pytest.mark.parametrize(
    ("to", "code"),
    [
        ("+62", 21211),  # too short for E.164
        ("0812345678", 21211),  # national format, no +
        ("+6289990000900", 21610),  # opted out
        ("+6289990000901", 21614),  # landline
        ("whatsapp:+6289990000101", 63016),  # free text, window closed
    ],
)
def test_validation_errors_come_back_as_twilio_rest_exceptions(to: str, code: int) -> None:
    with TwilioStub(SID, TOKEN, opted_out={"+6289990000900"}, not_mobile={"+6289990000901"}) as stub:
        sender = "whatsapp:" + SENDER if to.startswith("whatsapp:") else SENDER
        with pytest.raises(TwilioRestException) as caught:
            client_for(stub).messages.create(to=to, from_=sender, body="x")
        assert (caught.value.status, caught.value.code) == (400, code)
        assert caught.value.msg.startswith("Unable to create record: ")
        assert stub.messages == []


def test_whatsapp_free_text_in_open_window_and_templates_anytime() -> None:
    with TwilioStub(SID, TOKEN, whatsapp_open={RESIDENT}) as stub:
        client = client_for(stub)
        client.messages.create(to="whatsapp:" + RESIDENT, from_="whatsapp:" + SENDER, body="free text")
        client.messages.create(
            to="whatsapp:" + OTHER, from_="whatsapp:" + SENDER, content_sid="HX" + "0" * 32, content_variables="{}"
        )
        assert [m["to"] for m in stub.messages] == ["whatsapp:" + RESIDENT, "whatsapp:" + OTHER]
        assert stub.messages[1]["content_sid"] == "HX" + "0" * 32


def test_mixed_channels_are_refused_with_21910(stub: TwilioStub) -> None:
    with pytest.raises(TwilioRestException) as caught:
        client_for(stub).messages.create(to="whatsapp:" + RESIDENT, from_=SENDER, content_sid="HX1")
    assert caught.value.code == 21910


def test_status_callbacks_are_signed_like_twilio(receiver: Receiver) -> None:
    with TwilioStub(SID, TOKEN, undelivered={OTHER}) as stub:
        client = client_for(stub)
        hook = receiver.url + "/twilio/status?region=demo"
        ok = client.messages.create(to=RESIDENT, from_=SENDER, body="x", status_callback=hook)
        lost = client.messages.create(to=OTHER, from_=SENDER, body="y", status_callback=hook)
        stub.wait_for_callbacks(4)

    validator = RequestValidator(TOKEN)
    assert len(receiver.calls) == 4
    for url, params, signature in receiver.calls:
        assert url == hook
        assert validator.validate(url, params, signature)
        assert not RequestValidator("another-token").validate(url, params, signature)
        assert params["AccountSid"] == SID
    by_sid = {
        sid: [(p["MessageStatus"], p.get("ErrorCode")) for _, p, _ in receiver.calls if p["MessageSid"] == sid]
        for sid in (ok.sid, lost.sid)
    }
    assert by_sid[ok.sid] == [("sent", None), ("delivered", None)]
    assert by_sid[lost.sid] == [("sent", None), ("undelivered", "30003")]
    assert {m["sid"]: m["status"] for m in stub.messages} == {ok.sid: "delivered", lost.sid: "undelivered"}


def test_callbacks_can_be_duplicated_and_reversed(receiver: Receiver) -> None:
    with TwilioStub(SID, TOKEN, duplicate_callbacks=True, reverse_callbacks=True) as stub:
        client_for(stub).messages.create(to=RESIDENT, from_=SENDER, body="x", status_callback=receiver.url + "/s")
        stub.wait_for_callbacks(4)
    assert [params["MessageStatus"] for _, params, _ in receiver.calls] == ["delivered", "delivered", "sent", "sent"]


def test_window_errors_can_arrive_asynchronously_as_twilio_does(receiver: Receiver) -> None:
    with TwilioStub(SID, TOKEN, window_errors_async=True) as stub:
        created = client_for(stub).messages.create(
            to="whatsapp:" + RESIDENT, from_="whatsapp:" + SENDER, body="free text", status_callback=receiver.url
        )
        assert created.status == "queued"
        stub.wait_for_callbacks(1)
        assert client_for(stub).messages(created.sid).fetch().error_code == 63016
    assert [(p["MessageStatus"], p["ErrorCode"]) for _, p, _ in receiver.calls] == [("failed", "63016")]


def test_fictional_numbers_are_accepted_by_the_stub(stub: TwilioStub) -> None:
    client_for(stub).messages.create(to=RESIDENT, from_=SENDER, body="demo")
    assert [m["to"] for m in stub.messages] == [RESIDENT]


def fault_sequence(seed: int) -> list[str | None]:
    with TwilioStub(SID, TOKEN, seed=seed, fault_rate=0.5, fault_kinds=("429", "500")) as stub:
        client = client_for(stub)
        outcomes = []
        for i in range(20):
            try:
                outcomes.append(client.messages.create(to=RESIDENT, from_=SENDER, body=str(i)).status)
            except TwilioRestException as exc:  # a loop of creates, some refused: not the call under test
                outcomes.append((exc.status, exc.code))
        assert set(outcomes) <= {"queued", (429, 20429), (500, 20500)}
        faults = [record.fault for record in stub.requests]
        assert len(stub.messages) == faults.count(None)
        return faults


def test_fault_injection_is_reproducible_from_the_seed() -> None:
    first = fault_sequence(7)
    assert first == fault_sequence(7)
    assert first != fault_sequence(8)
    assert {"429", "500", None} == set(first)


def test_scripted_429_carries_retry_after_and_code_20429() -> None:
    with TwilioStub(SID, TOKEN, retry_after=3) as stub:
        client = client_for(stub)
        stub.fail_next("429")
        with pytest.raises(TwilioRestException) as caught:
            client.messages.create(to=RESIDENT, from_=SENDER, body="x")
        assert (caught.value.status, caught.value.code) == (429, 20429)
        http_client = client.http_client
        assert isinstance(http_client, RoutedHttpClient)
        assert http_client.last_response is not None
        assert http_client.last_response.headers["Retry-After"] == "3"
        client.messages.create(to=RESIDENT, from_=SENDER, body="x")  # the script is used up
        assert [(r.status, r.fault) for r in stub.requests] == [(429, "429"), (201, None)]


def test_accept_then_hang_creates_the_message_even_though_the_client_timed_out() -> None:
    with TwilioStub(SID, TOKEN, hang_seconds=30) as stub:
        stub.fail_next("hang")
        client = client_for(stub, timeout=0.3)
        with pytest.raises(Exception, match="timed out"):
            client.messages.create(to=RESIDENT, from_=SENDER, body="x")
        assert [m["to"] for m in stub.messages] == [RESIDENT]  # the stub stop() cuts the hang short


def test_slow_answers_still_succeed() -> None:
    with TwilioStub(SID, TOKEN, slow_seconds=0.05) as stub:
        stub.fail_next("slow")
        assert client_for(stub).messages.create(to=RESIDENT, from_=SENDER, body="x").status == "queued"
        assert stub.requests[0].fault == "slow"


def test_unknown_fault_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        TwilioStub().fail_next("teapot")


@pytest.mark.parametrize(
    ("body", "segments"),
    [("a" * 160, 1), ("a" * 161, 2), ("a" * 306, 2), ("a" * 307, 3), ("é" * 160, 1), ("ā" * 70, 1), ("ā" * 71, 2)],
)
def test_segment_count_follows_gsm7_and_ucs2_limits(body: str, segments: int) -> None:
    assert segment_count(body) == segments

"""The loopback Twilio stub, driven by the official ``twilio`` client: shapes, errors, callbacks, faults."""

from __future__ import annotations

import http.server
import json
import re
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
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


# -- late creates: recorded only after the hold ---------------------------------------------------------------


def test_late_create_appears_only_after_the_hold_though_the_client_timed_out() -> None:
    with TwilioStub(SID, TOKEN, late_seconds=2.0) as stub:
        stub.fail_next("late")
        client = client_for(stub, timeout=0.3)
        with pytest.raises(Exception, match="timed out"):
            client.messages.create(to=RESIDENT, from_=SENDER, body="x")
        # Reconciling right after the timeout finds nothing: the provider has not completed the create yet.
        assert client.messages.list(to=RESIDENT) == []
        assert stub.count(RESIDENT) == 0
        assert stub.pending_late == 1
        assert stub.wait_for_late(timeout=10)
        listed = client.messages.list(to=RESIDENT)
        [message] = stub.messages
        [early_list, late_list] = [r for r in stub.requests if r.method == "GET"]
        [create] = [r for r in stub.requests if r.method == "POST"]

    assert [m.sid for m in listed] == [message["sid"]]
    assert (create.fault, create.status, create.to, create.body) == ("late", 201, RESIDENT, "x")
    # On the stub's own clock: created 2 s after the request arrived, after the first list and before the second.
    assert message["arrived_monotonic"] == create.time
    assert message["created_monotonic"] >= create.time + 2.0
    assert early_list.time < message["created_monotonic"] <= late_list.time
    assert create.answered is not None
    assert create.answered >= message["created_monotonic"]


def test_late_create_answers_a_client_that_waits_long_enough() -> None:
    with TwilioStub(SID, TOKEN, late_seconds=0.2) as stub:
        stub.fail_next("late")
        created = client_for(stub, timeout=5).messages.create(to=RESIDENT, from_=SENDER, body="x")
        [message] = stub.messages
    assert created.sid == message["sid"]
    assert created.status == "queued"
    assert message["created_monotonic"] - message["arrived_monotonic"] >= 0.2


def test_stop_completes_pending_late_creates_at_once() -> None:
    with TwilioStub(SID, TOKEN, late_seconds=60) as stub:
        stub.fail_next("late")
        with pytest.raises(Exception, match="timed out"):
            client_for(stub, timeout=0.2).messages.create(to=RESIDENT, from_=SENDER, body="x")
        assert stub.messages == []
    assert [m["to"] for m in stub.messages] == [RESIDENT]
    assert stub.pending_late == 0


def test_late_holds_are_drawn_from_a_range_and_mixed_faults_follow_the_seed() -> None:
    def run(seed: int) -> list[str | None]:
        mix = {"429": 0.3, "500": 0.2, "late": 0.2}
        with TwilioStub(SID, TOKEN, seed=seed, fault_mix=mix, late_seconds=(0.05, 0.1)) as stub:
            client = client_for(stub)
            for i in range(30):
                try:
                    client.messages.create(to=RESIDENT, from_=SENDER, body=str(i))
                except TwilioRestException:  # a loop of creates, some refused: not the call under test
                    pass
            assert stub.wait_for_late()
            faults = [r.fault for r in stub.requests]
            held = [m["created_monotonic"] - m["arrived_monotonic"] for m in stub.messages]
            late = [b for b, f in zip(range(30), faults, strict=True) if f == "late"]
            assert sum(h >= 0.05 for h in held) == len(late)
            assert len(stub.messages) == faults.count(None) + faults.count("late")
            return faults

    first = run(3)
    assert first == run(3)
    assert first != run(4)
    assert {"429", "500", "late", None} == set(first)


def test_fault_mix_and_list_kinds_are_validated() -> None:
    with pytest.raises(ValueError, match="sum to at most 1"):
        TwilioStub(fault_mix={"429": 0.7, "500": 0.5})
    with pytest.raises(ValueError, match="unknown fault kinds"):
        TwilioStub(fault_mix={"teapot": 0.1})
    with pytest.raises(ValueError, match="unknown list fault kinds"):
        TwilioStub(list_fault_kinds=("hang",))
    with pytest.raises(ValueError, match="unknown list fault kind"):
        TwilioStub().fail_next_list("late")
    with pytest.raises(ValueError, match="late_seconds"):
        TwilioStub(late_seconds=(2.0, 1.0))


# -- list-call faults: what the real client raises ------------------------------------------------------------


@pytest.mark.parametrize(("kind", "status"), [("429", 429), ("500", 500)])
def test_list_faults_raise_the_base_twilio_exception_not_the_rest_one(kind: str, status: int) -> None:
    with TwilioStub(SID, TOKEN, retry_after=4) as stub:
        client = client_for(stub)
        client.messages.create(to=RESIDENT, from_=SENDER, body="x")
        stub.fail_next_list(kind)
        with pytest.raises(TwilioException, match="Unable to fetch page") as caught:
            client.messages.list(to=RESIDENT)
        # twilio 9 raises the base class here (Page.process_response), with the response as its second argument.
        assert not isinstance(caught.value, TwilioRestException)
        response = caught.value.args[1]
        assert response.status_code == status
        assert (response.headers.get("Retry-After") == "4") is (kind == "429")
        assert json.loads(response.text)["code"] == {"429": 20429, "500": 20500}[kind]
        assert len(client.messages.list(to=RESIDENT)) == 1  # the script is used up
        gets = [r for r in stub.requests if r.method == "GET"]
        assert [(r.status, r.fault, r.retry_after) for r in gets] == [
            (status, kind, 4 if kind == "429" else None),
            (200, None, None),
        ]


def test_a_list_with_bad_credentials_raises_the_base_exception_too(stub: TwilioStub) -> None:
    # Not an injected fault: the same client behaviour for a 401, which create reports as TwilioRestException.
    with pytest.raises(TwilioException, match="Unable to fetch page") as caught:
        client_for(stub, token=TOKEN.upper()).messages.list(to=RESIDENT)
    assert not isinstance(caught.value, TwilioRestException)
    assert caught.value.args[1].status_code == 401


def test_a_list_fault_on_a_later_page_raises_too(stub: TwilioStub) -> None:
    client = client_for(stub)
    for i in range(2):
        client.messages.create(to=RESIDENT, from_=SENDER, body=str(i))
    first = client.messages.page(to=RESIDENT, page_size=1)
    assert len(list(first)) == 1
    stub.fail_next_list("500")
    with pytest.raises(TwilioException, match="Unable to fetch page"):
        first.next_page()


def test_list_faults_leave_fetch_and_create_alone(stub: TwilioStub) -> None:
    client = client_for(stub)
    stub.fail_next_list("429", 2)
    created = client.messages.create(to=RESIDENT, from_=SENDER, body="x")
    assert client.messages(created.sid).fetch().sid == created.sid
    with pytest.raises(TwilioException, match="Unable to fetch page"):
        client.messages.list(to=RESIDENT)


def test_random_list_faults_follow_their_own_seed_and_spare_the_create_sequence() -> None:
    def run(list_rate: float) -> tuple[list[str | None], list[str | None]]:
        with TwilioStub(SID, TOKEN, seed=5, fault_rate=0.3, list_fault_rate=list_rate) as stub:
            client = client_for(stub)
            for i in range(20):
                try:
                    client.messages.create(to=RESIDENT, from_=SENDER, body=str(i))
                except TwilioRestException:  # a loop of creates, some refused: not the call under test
                    pass
                try:
                    client.messages.list(to=RESIDENT, limit=1)
                except TwilioException:  # a loop of lists, some failing: not the call under test
                    pass
            posts = [r.fault for r in stub.requests if r.method == "POST"]
            gets = [r.fault for r in stub.requests if r.method == "GET"]
            return posts, gets

    posts, gets = run(0.5)
    assert (posts, gets) == run(0.5)
    assert {"429", "500", None} == set(gets)
    assert run(0.0) == (posts, [None] * 20)  # list faults draw from a generator of their own


# -- server down: unreachable for a while, back on the same port ----------------------------------------------


def test_pause_refuses_connections_until_resumed_on_the_same_port(stub: TwilioStub) -> None:
    client = client_for(stub)
    url = stub.url
    client.messages.create(to=RESIDENT, from_=SENDER, body="before")
    stub.pause()
    assert stub.down
    with pytest.raises(requests.exceptions.ConnectionError, match="Connection refused"):
        client.messages.create(to=RESIDENT, from_=SENDER, body="during")
    with pytest.raises(requests.exceptions.ConnectionError, match="Connection refused"):
        client.messages.list(to=RESIDENT)
    with pytest.raises(RuntimeError, match="already paused"):
        stub.pause()
    stub.resume()
    assert not stub.down
    assert stub.url == url
    client.messages.create(to=RESIDENT, from_=SENDER, body="after")
    assert [m["body"] for m in stub.messages] == ["before", "after"]
    [outage] = stub.outages
    assert outage.mode == "refuse"
    assert outage.end is not None
    assert [r.time for r in stub.requests if outage.start <= r.time <= outage.end] == []


def wait_until_up(stub: TwilioStub, limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while stub.down and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not stub.down, f"stub still down after {limit} s"


def test_pause_for_seconds_comes_back_by_itself(stub: TwilioStub) -> None:
    stub.pause(0.3)
    with pytest.raises(requests.exceptions.ConnectionError, match="Connection refused"):
        client_for(stub).messages.create(to=RESIDENT, from_=SENDER, body="during")
    wait_until_up(stub)
    client_for(stub).messages.create(to=RESIDENT, from_=SENDER, body="after")
    [outage] = stub.outages
    assert outage.end is not None
    assert outage.end - outage.start >= 0.3
    assert [m["body"] for m in stub.messages] == ["after"]


def test_pause_in_reset_mode_resets_every_connection(stub: TwilioStub) -> None:
    client = client_for(stub)
    stub.pause(mode="reset")
    with pytest.raises(requests.exceptions.ConnectionError, match=r"reset|aborted"):
        client.messages.create(to=RESIDENT, from_=SENDER, body="during")
    stub.resume()
    client.messages.create(to=RESIDENT, from_=SENDER, body="after")
    assert [m["body"] for m in stub.messages] == ["after"]
    assert [(r.fault, r.status) for r in stub.requests] == [("reset", 0), (None, 201)]
    with pytest.raises(ValueError, match="unknown pause mode"):
        stub.pause(mode="teapot")


def test_a_late_create_completes_while_the_server_is_down() -> None:
    with TwilioStub(SID, TOKEN, late_seconds=0.5) as stub:
        stub.fail_next("late")
        with pytest.raises(Exception, match="timed out"):
            client_for(stub, timeout=0.2).messages.create(to=RESIDENT, from_=SENDER, body="x")
        stub.pause()
        assert stub.wait_for_late(timeout=10)
        assert stub.count(RESIDENT, "x") == 1
        stub.resume()
        assert [m.body for m in client_for(stub).messages.list(to=RESIDENT)] == ["x"]


# -- bookkeeping: per-recipient index, latency, what each request carried -------------------------------------


def test_counts_per_recipient_and_body_come_from_an_index(stub: TwilioStub) -> None:
    client = client_for(stub)
    for to, text in [(RESIDENT, "a"), (RESIDENT, "a"), (RESIDENT, "b"), (OTHER, "a")]:
        client.messages.create(to=to, from_=SENDER, body=text)
    assert stub.sent_counts() == Counter({(RESIDENT, "a"): 2, (RESIDENT, "b"): 1, (OTHER, "a"): 1})
    assert (stub.count(RESIDENT), stub.count(RESIDENT, "a"), stub.count(OTHER, "b")) == (3, 2, 0)
    assert [m["body"] for m in stub.messages_to(RESIDENT)] == ["a", "a", "b"]
    assert [m.body for m in client.messages.list(to=RESIDENT)] == ["b", "a", "a"]


def test_latency_delays_every_answer_on_the_stub_clock() -> None:
    with TwilioStub(SID, TOKEN, latency=0.05) as stub:
        client = client_for(stub)
        client.messages.create(to=RESIDENT, from_=SENDER, body="x")
        client.messages.list(to=RESIDENT)
        with pytest.raises(TwilioRestException, match="Authenticate"):
            client_for(stub, token=TOKEN.upper()).messages.create(to=RESIDENT, from_=SENDER, body="x")
        records = stub.requests
    assert len(records) == 3
    assert all(r.answered is not None and r.answered - r.time >= 0.05 for r in records)


def test_create_records_carry_recipient_body_and_retry_after() -> None:
    with TwilioStub(SID, TOKEN, retry_after=2) as stub:
        client = client_for(stub)
        stub.fail_next("429")
        with pytest.raises(TwilioRestException, match="Too Many Requests"):
            client.messages.create(to=RESIDENT, from_=SENDER, body="x")
        client.messages.create(to=RESIDENT, from_=SENDER, body="x")
        refused, accepted = stub.requests
    assert (refused.to, refused.body, refused.status, refused.retry_after) == (RESIDENT, "x", 429, 2)
    assert (accepted.to, accepted.body, accepted.status, accepted.retry_after) == (RESIDENT, "x", 201, None)

"""Twilio SMS/WhatsApp channels over loopback to the Twilio stub: results, error classes, guards, log hygiene."""

from __future__ import annotations

import json
import logging
import socket
import time
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from twilio.rest import Client

from ews.channels.base import SendResult
from ews.channels.twilio import (
    MAX_VALIDITY_SECONDS,
    RateLimited,
    RoutedHttpClient,
    TransientSendError,
    TwilioConfigError,
    TwilioSms,
    TwilioWhatsApp,
    reaches_twilio,
    twilio_client,
    validity_seconds,
)
from ews.errors import ConfigError, EwsError
from ews.testing.twilio_server import TwilioStub
from ews.types import Level, RenderedMessage

SID = "AC" + "7e" * 16
TOKEN = "f00dfeedf00dfeedf00dfeedf00dfeed"  # noqa: S105 - the stub's fake credential
SENDER = "+15005550006"
FICTIONAL = "+6289990000101"
REAL_LOOKING = "+6281234567890"  # only ever sent to the loopback stub
NOW = datetime(2026, 9, 24, 7, 0, tzinfo=UTC)


def message(
    to: str = FICTIONAL, *, text: str = "Siaga banjir di desa Anda", audience: str = "resident"
) -> RenderedMessage:
    return RenderedMessage(
        audience=audience,
        channel="sms",
        language="id",
        to=to,
        village_code="35.78.01.1001",
        level=Level.SIAGA,
        warning_id="2.49.0.1.360.0.2026.09.24.07.75.002",
        text=text,
        segments=1,
        shortened=False,
        recipient_id="r-0123456789abcdef",
    )


@pytest.fixture
def stub() -> Iterator[TwilioStub]:
    with TwilioStub(SID, TOKEN, opted_out={"+6289990000900"}, not_mobile={"+6289990000901"}) as running:
        yield running


def sms(stub: TwilioStub, *, timeout: float = 5.0, token: str = TOKEN, callback: str | None = None) -> TwilioSms:
    client = twilio_client(SID, token, base_url=stub.url, timeout=timeout)
    return TwilioSms(
        client, from_number=SENDER, messaging_service_sid=None, status_callback=callback, clock=lambda: NOW
    )


def test_sms_send_returns_sent_with_the_message_sid(stub: TwilioStub) -> None:
    result = sms(stub, callback="http://127.0.0.1:9/unused").send(message(), "key-1")
    assert result.status == "sent"
    assert result.provider_id is not None
    assert result.provider_id.startswith("SM")
    assert result.provider_status == "queued"  # what Twilio said of it: not an error
    assert result.detail == ""
    [created] = stub.messages
    assert (created["sid"], created["to"], created["from"]) == (result.provider_id, FICTIONAL, SENDER)
    assert created["body"] == "Siaga banjir di desa Anda"
    assert created["validity_period"] is None
    assert created["status_callback"] == "http://127.0.0.1:9/unused"


def test_messaging_service_takes_the_place_of_from(stub: TwilioStub) -> None:
    client = twilio_client(SID, TOKEN, base_url=stub.url, timeout=5)
    channel = TwilioSms(client, from_number=None, messaging_service_sid="MG" + "0" * 32, status_callback=None)
    assert channel.send(message(), "k").provider_status == "accepted"
    assert stub.messages[0]["messaging_service_sid"] == "MG" + "0" * 32
    assert stub.messages[0]["from"] is None


def test_sms_needs_a_sender() -> None:
    client = twilio_client(SID, TOKEN, base_url="http://127.0.0.1:9", timeout=1)
    with pytest.raises(ConfigError, match="from_number or a messaging_service_sid"):
        TwilioSms(client, from_number=None, messaging_service_sid=None, status_callback=None)


@pytest.mark.parametrize(
    ("remaining", "expected"),
    [
        (timedelta(hours=1), 3600),
        (timedelta(seconds=0.2), 1),  # rounded up: Twilio's minimum is 1 s
        (timedelta(hours=1, milliseconds=1), 3601),  # rounded up, never cut short
        (timedelta(days=1), MAX_VALIDITY_SECONDS),  # clamped to Twilio's 4 h ceiling
    ],
)
def test_validity_period_follows_the_warning_expiry(stub: TwilioStub, remaining: timedelta, expected: int) -> None:
    assert sms(stub).send(message(), "k", valid_until=NOW + remaining).status == "sent"
    assert stub.messages[0]["validity_period"] == expected


def test_validity_compares_instants_across_offsets() -> None:
    # 15:00 WITA (+08:00) is 07:00 UTC: 30 minutes after 06:30 UTC.
    wita = datetime(2026, 9, 24, 15, 0, tzinfo=datetime.fromisoformat("2026-01-01T00:00+08:00").tzinfo)
    assert validity_seconds(wita, datetime(2026, 9, 24, 6, 30, tzinfo=UTC)) == 1800


@pytest.mark.parametrize("past", [timedelta(0), timedelta(seconds=1), timedelta(hours=5)])
def test_expired_warning_is_not_sent_and_twilio_is_not_called(stub: TwilioStub, past: timedelta) -> None:
    result = sms(stub).send(message(), "k", valid_until=NOW - past)
    assert result.status == "expired"
    assert "expired" in result.detail
    assert stub.requests == []


def test_no_number_is_no_contact_without_a_request(stub: TwilioStub) -> None:
    assert sms(stub).send(message(to=""), "k") == SendResult("no-contact")
    assert stub.requests == []


def test_429_raises_rate_limited_with_retry_after_from_the_header() -> None:
    with TwilioStub(SID, TOKEN, retry_after=1) as stub:
        channel = sms(stub)
        stub.fail_next("429")
        with pytest.raises(RateLimited, match="HTTP 429") as caught:
            channel.send(message(), "k")
        assert caught.value.retry_after == 1.0
        assert caught.value.code == 20429
        assert not caught.value.ambiguous
        assert isinstance(caught.value, TransientSendError)

        time.sleep(caught.value.retry_after)  # what a dispatcher does; the gap is measured on the stub's clock
        assert channel.send(message(), "k").status == "sent"
        first, second = stub.requests
        assert (first.status, second.status) == (429, 201)
        assert second.time - first.time >= caught.value.retry_after
        assert len(stub.messages) == 1


def test_500_raises_transient_not_ambiguous(stub: TwilioStub) -> None:
    stub.fail_next("500")
    with pytest.raises(TransientSendError, match="HTTP 500") as caught:
        sms(stub).send(message(), "k")
    assert (caught.value.ambiguous, caught.value.status, caught.value.code) == (False, 500, 20500)
    assert stub.messages == []


def test_accept_then_hang_is_an_ambiguous_transient_error_and_the_message_exists() -> None:
    with TwilioStub(SID, TOKEN, hang_seconds=30) as stub:
        stub.fail_next("hang")
        channel = sms(stub, timeout=0.3)
        with pytest.raises(TransientSendError, match="MAY have been created") as caught:
            channel.send(message(), "k")
        assert caught.value.ambiguous
        # The stub did create it: a dispatcher that resent blindly would send twice. Reconcile instead:
        assert [m["to"] for m in stub.messages] == [FICTIONAL]
        found = channel.client.messages.list(to=FICTIONAL, date_sent_after=NOW - timedelta(days=1))
        assert [m.body for m in found] == ["Siaga banjir di desa Anda"]


def test_dropped_connection_after_create_is_ambiguous(stub: TwilioStub) -> None:
    stub.fail_next("drop")
    with pytest.raises(TransientSendError, match="connection error") as caught:
        sms(stub).send(message(), "k")
    assert caught.value.ambiguous
    assert len(stub.messages) == 1


def test_refused_connection_is_transient_and_not_ambiguous() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = twilio_client(SID, TOKEN, base_url=f"http://127.0.0.1:{port}", timeout=2)
    channel = TwilioSms(client, from_number=SENDER, messaging_service_sid=None, status_callback=None)
    with pytest.raises(TransientSendError, match="not sent; retry") as caught:
        channel.send(message(), "k")
    assert not caught.value.ambiguous


@pytest.mark.parametrize(
    ("to", "code"),
    [("+62", 21211), ("+6289990000900", 21610), ("+6289990000901", 21614)],
)
def test_permanent_refusals_are_failed_results_with_the_code(stub: TwilioStub, to: str, code: int) -> None:
    result = sms(stub).send(message(to=to), "k")
    assert result.status == "failed"
    assert result.detail.startswith(f"twilio {code}: ")
    assert result.provider_id is None


def test_wrong_credentials_raise_a_config_error_not_a_recipient_failure(stub: TwilioStub) -> None:
    with pytest.raises(TwilioConfigError, match="code 20003") as caught:
        sms(stub, token=TOKEN.upper()).send(message(), "k")
    assert isinstance(caught.value, EwsError)
    assert caught.value.status == 401


def explode(*args: object, **kwargs: object) -> object:
    raise AssertionError("a request was made to the real Twilio")


@pytest.mark.parametrize("base_url", [None, "https://api.twilio.com", "https://api.sydney.au1.twilio.com"])
def test_fictional_numbers_never_reach_the_real_twilio(monkeypatch: pytest.MonkeyPatch, base_url: str | None) -> None:
    client = twilio_client(SID, TOKEN, base_url=base_url, timeout=1)
    monkeypatch.setattr(client.http_client.session, "send", explode)
    assert reaches_twilio(client)
    for channel in (
        TwilioSms(client, from_number=SENDER, messaging_service_sid=None, status_callback=None),
        TwilioWhatsApp(client, from_number=SENDER, content_sids={}, status_callback=None),
    ):
        assert channel.send(message(), "k") == SendResult("failed", detail="fictional number")


def test_a_client_the_channel_does_not_know_counts_as_real_twilio() -> None:
    assert reaches_twilio(Client(SID, TOKEN))


def test_whatsapp_uses_the_audience_template_with_the_text_as_variable_1(stub: TwilioStub) -> None:
    client = twilio_client(SID, TOKEN, base_url=stub.url, timeout=5)
    channel = TwilioWhatsApp(
        client,
        from_number=SENDER,
        content_sids={"warning_resident": "HX" + "1" * 32},
        templates={"resident": "warning_resident"},
        status_callback=None,
    )
    result = channel.send(message(text="Awas: banjir – segera mengungsi"), "k")
    assert result.status == "sent"
    [created] = stub.messages
    assert (created["to"], created["from"]) == ("whatsapp:" + FICTIONAL, "whatsapp:" + SENDER)
    assert created["content_sid"] == "HX" + "1" * 32
    assert json.loads(created["content_variables"]) == {"1": "Awas: banjir – segera mengungsi"}
    assert created["body"] == ""


def test_whatsapp_without_template_sends_free_text_and_a_closed_window_fails_permanently() -> None:
    with TwilioStub(SID, TOKEN, whatsapp_open={FICTIONAL}) as stub:
        client = twilio_client(SID, TOKEN, base_url=stub.url, timeout=5)
        channel = TwilioWhatsApp(client, from_number="whatsapp:" + SENDER, content_sids={}, status_callback=None)
        assert channel.send(message(audience="tagana"), "open").status == "sent"
        closed = channel.send(message(to="+6289990000102", audience="tagana"), "closed")
        assert closed.status == "failed"
        assert closed.detail.startswith("twilio 63016: ")
        assert [m["body"] for m in stub.messages] == ["Siaga banjir di desa Anda"]


def test_base_url_override_keeps_path_and_query() -> None:
    routed = RoutedHttpClient(timeout=1, base_url="http://127.0.0.1:8080/proxy/")
    url = f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages.json?To=%2B62&Page=1"
    assert routed.reroute(url) == f"http://127.0.0.1:8080/proxy/2010-04-01/Accounts/{SID}/Messages.json?To=%2B62&Page=1"
    assert not routed.reaches_twilio


@pytest.mark.parametrize("bad", ["127.0.0.1:8080", "ftp://host", "http://", "http://host?x=1"])
def test_malformed_base_url_is_a_config_error(bad: str) -> None:
    with pytest.raises(ConfigError, match="EWS_TWILIO_BASE_URL"):
        twilio_client(SID, TOKEN, base_url=bad, timeout=1)


@pytest.mark.parametrize("timeout", [0, -1.0])
def test_timeout_must_be_positive(timeout: float) -> None:
    with pytest.raises(ConfigError, match="positive"):
        twilio_client(SID, TOKEN, base_url=None, timeout=timeout)


def test_no_number_token_or_account_sid_in_logs_exceptions_or_results(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, including twilio's and urllib3's
    texts: list[str] = []
    with TwilioStub(SID, TOKEN, opted_out={REAL_LOOKING}, hang_seconds=30) as stub:
        channel = sms(stub, timeout=0.3)
        texts.append(repr(channel.send(message(to=REAL_LOOKING), "opted-out")))
        texts.append(repr(channel.send(message(to="+991234"), "invalid")))
        for kind in ("429", "500", "hang", "drop"):
            stub.fail_next(kind)
            with pytest.raises(TransientSendError) as caught:
                channel.send(message(to="+6281234567891"), kind)
            # Raised "from None": a printed traceback (what Airflow logs) shows no Twilio or requests error text
            # (tb=None: the frames of this test quote its own numbers).
            assert caught.value.__suppress_context__
            texts.append("".join(traceback.format_exception(type(caught.value), caught.value, None)))
        with pytest.raises(TwilioConfigError) as config:
            sms(stub, token=TOKEN.upper()).send(message(to="+6281234567891"), "auth")
        texts.append("".join(traceback.format_exception(type(config.value), config.value, None)))
        texts.append(repr(channel.send(message(to="+6281234567892"), "ok")))
        assert len(channel.client.messages.list(to="+6281234567892")) == 1  # a reconcile: the number in the query
    texts += [record.getMessage() for record in caplog.records]
    assert len(caplog.records) >= 8
    joined = "\n".join(texts)
    for secret in (REAL_LOOKING, "991234", "6281234567891", "6281234567892", TOKEN, TOKEN.upper(), SID):
        assert secret not in joined, secret
    assert "r-0123456789abcdef" in joined  # the pseudonymous id is what identifies the recipient

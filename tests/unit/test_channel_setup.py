"""Twilio settings from the environment (``ews send``) and from an Airflow Connection (``ews_dispatch``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ews.channels.outbox import FileOutbox
from ews.channels.setup import TwilioSettings, delivery_channels
from ews.errors import ConfigError

SID, TOKEN = "AC" + "1" * 32, "secret-token"


def test_no_credentials_means_the_dry_run_outbox(tmp_path: Path) -> None:
    assert TwilioSettings.from_env({}) is None
    channels, where = delivery_channels(None, outbox=tmp_path / "out.jsonl")
    assert isinstance(channels["sms"], FileOutbox)
    assert "dry-run" in where


def test_a_connection_gives_the_same_settings_as_the_environment() -> None:
    env = {
        "TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN, "EWS_TWILIO_BASE_URL": "http://127.0.0.1:9",
        "EWS_TWILIO_SMS_FROM": "+15005550006", "EWS_TWILIO_WHATSAPP_FROM": "+15005550007",
        "EWS_TWILIO_CONTENT_SIDS": '{"awas": "HX1"}', "EWS_PUBLIC_URL": "https://ews.example.org",
    }  # fmt: skip
    extra = (
        '{"base_url": "http://127.0.0.1:9", "sms_from": "+15005550006", "whatsapp_from": "+15005550007", '
        '"content_sids": {"awas": "HX1"}, "public_url": "https://ews.example.org"}'
    )
    assert TwilioSettings.from_connection("twilio_default", SID, TOKEN, extra) == TwilioSettings.from_env(env)


def test_the_token_never_shows_in_the_settings_or_the_description(tmp_path: Path) -> None:
    extra = {"base_url": "http://127.0.0.1:9", "sms_from": "+15005550006"}
    settings = TwilioSettings.from_connection("twilio_default", SID, TOKEN, extra)
    assert TOKEN not in repr(settings)
    channels, where = delivery_channels(settings, outbox=tmp_path / "o.jsonl")
    assert set(channels) == {"sms"}  # no WhatsApp sender configured: no WhatsApp channel
    assert TOKEN not in where
    assert "127.0.0.1:9" in where


@pytest.mark.parametrize(
    ("login", "password", "extra", "message"),
    [
        ("", TOKEN, None, "login to the Twilio Account SID"),
        (SID, None, None, "password to the auth"),
        (SID, TOKEN, "{not json", "extra is not JSON"),
        (SID, TOKEN, "[1]", "extra must be a JSON object"),
        (SID, TOKEN, '{"sms_form": "+1"}', "unknown extra key.*sms_form"),
        (SID, TOKEN, '{"content_sids": "{bad"}', "content_sids is not JSON"),
    ],
)
def test_a_bad_connection_is_named_with_what_to_fix(
    login: str, password: str | None, extra: object, message: str
) -> None:
    with pytest.raises(ConfigError, match=f"connection twilio_default.*{message}|{message}") as caught:
        TwilioSettings.from_connection("twilio_default", login, password, extra)
    assert TOKEN not in str(caught.value)

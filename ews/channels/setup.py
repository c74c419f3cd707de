"""Which channels deliver: Twilio (SMS, WhatsApp) from settings, or the dry-run outbox when there are none.

The settings come from the environment (``ews send``: ``TWILIO_ACCOUNT_SID``, ``TWILIO_AUTH_TOKEN``,
``EWS_TWILIO_*``) or from an Airflow Connection (the ``ews_dispatch`` DAG: ``twilio_default``, whose login is
the Account SID, password the auth token and extra the ``EWS_TWILIO_*`` values by their short names). The
auth token is a secret: it is never logged, and :func:`delivery_channels` says where messages go without it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ews.channels.base import Channel
from ews.errors import ConfigError

EXTRA_KEYS = ("base_url", "sms_from", "messaging_service_sid", "whatsapp_from", "content_sids", "public_url")
"""What a ``twilio_default`` Connection's extra may hold (JSON object), each the ``EWS_TWILIO_*`` value of the CLI."""


@dataclass(frozen=True)
class TwilioSettings:
    """How to reach Twilio: credentials, sender numbers, WhatsApp templates and the status callback base URL."""

    account_sid: str
    auth_token: str = field(repr=False)
    base_url: str | None = None  # a Twilio-compatible server (tests, a proxy); None: api.twilio.com
    sms_from: str | None = None
    messaging_service_sid: str | None = None
    whatsapp_from: str | None = None
    content_sids: Mapping[str, str] = field(default_factory=dict)
    public_url: str | None = None  # where ``ews serve`` answers Twilio's status callbacks

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TwilioSettings | None:
        """The CLI's settings; ``None`` without ``TWILIO_ACCOUNT_SID`` and ``TWILIO_AUTH_TOKEN`` (dry run)."""
        sid, token = env.get("TWILIO_ACCOUNT_SID", ""), env.get("TWILIO_AUTH_TOKEN", "")
        if not sid or not token:
            return None
        return cls(
            sid, token, base_url=env.get("EWS_TWILIO_BASE_URL") or None,
            sms_from=env.get("EWS_TWILIO_SMS_FROM") or None,
            messaging_service_sid=env.get("EWS_TWILIO_MESSAGING_SERVICE_SID") or None,
            whatsapp_from=env.get("EWS_TWILIO_WHATSAPP_FROM") or None,
            content_sids=_content_sids(env.get("EWS_TWILIO_CONTENT_SIDS") or "{}", "EWS_TWILIO_CONTENT_SIDS"),
            public_url=env.get("EWS_PUBLIC_URL") or None,
        )  # fmt: skip

    @classmethod
    def from_connection(cls, conn_id: str, login: str | None, password: str | None, extra: Any) -> TwilioSettings:
        """Settings from an Airflow Connection's fields (``extra``: a JSON object or its text).

        Raises
        ------
        ConfigError
            No login or password, an extra that is not a JSON object, or an unknown key in it (named).
        """
        if not login or not password:
            raise ConfigError(
                f"Airflow connection {conn_id}: set its login to the Twilio Account SID and its password to the auth "
                "token (or delete the connection to deliver to the dry-run outbox)"
            )
        if isinstance(extra, str):
            try:
                extra = json.loads(extra) if extra.strip() else {}
            except json.JSONDecodeError as exc:
                raise ConfigError(
                    f"Airflow connection {conn_id}: extra is not JSON ({exc.msg}); use a JSON object"
                ) from None
        extra = extra or {}
        if not isinstance(extra, dict):
            raise ConfigError(f"Airflow connection {conn_id}: extra must be a JSON object with {', '.join(EXTRA_KEYS)}")
        unknown = sorted(set(extra) - set(EXTRA_KEYS))
        if unknown:
            raise ConfigError(
                f"Airflow connection {conn_id}: unknown extra key(s) {', '.join(unknown)}; use {', '.join(EXTRA_KEYS)}"
            )

        def text(key: str) -> str | None:
            value = extra.get(key)
            return str(value).strip() or None if value is not None else None

        sids = extra.get("content_sids") or {}
        if isinstance(sids, str):
            sids = _content_sids(sids, f"connection {conn_id} extra content_sids")
        if not isinstance(sids, dict):
            raise ConfigError(f"Airflow connection {conn_id}: extra content_sids must be an object of template SIDs")
        return cls(
            login, password, base_url=text("base_url"), sms_from=text("sms_from"),
            messaging_service_sid=text("messaging_service_sid"), whatsapp_from=text("whatsapp_from"),
            content_sids={str(k): str(v) for k, v in sids.items()}, public_url=text("public_url"),
        )  # fmt: skip


def _content_sids(text: str, where: str) -> dict[str, str]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where} is not JSON ({exc.msg}); give an object of WhatsApp template SIDs") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a JSON object of WhatsApp template SIDs")
    return {str(k): str(v) for k, v in value.items()}


def delivery_channels(
    settings: TwilioSettings | None, *, outbox: Path, timeout: float = 10.0
) -> tuple[dict[str, Channel], str]:
    """The channels by name (``sms``, ``whatsapp``) and a description of where they deliver (no secret in it).

    Without settings every message goes to the dry-run outbox file ``outbox``. WhatsApp needs ``whatsapp_from``.
    """
    from ews.channels.outbox import FileOutbox

    if settings is None:
        box = FileOutbox(outbox)
        return {"sms": box, "whatsapp": box}, f"dry-run outbox {outbox} (no Twilio credentials)"
    from ews.channels.twilio import TwilioSms, TwilioWhatsApp, twilio_client

    client = twilio_client(settings.account_sid, settings.auth_token, base_url=settings.base_url, timeout=timeout)
    callback = f"{settings.public_url.rstrip('/')}/twilio/status" if settings.public_url else None
    channels: dict[str, Channel] = {
        "sms": TwilioSms(
            client, from_number=settings.sms_from, messaging_service_sid=settings.messaging_service_sid,
            status_callback=callback,
        ),
    }  # fmt: skip
    if settings.whatsapp_from:
        channels["whatsapp"] = TwilioWhatsApp(
            client, from_number=settings.whatsapp_from, content_sids=dict(settings.content_sids),
            status_callback=callback,
        )  # fmt: skip
    where = f"Twilio ({'base URL ' + settings.base_url if settings.base_url else 'api.twilio.com'})"
    return channels, where

"""The Twilio webhooks of ``ews serve``: status callbacks and inbound messages, each with a verified signature.

Every request must carry a valid ``X-Twilio-Signature`` (HMAC-SHA1 of the public URL and the sorted form
parameters with the auth token); a forged or missing one gets 403 and changes nothing. Twilio signs the
URL it called, so behind a proxy set ``EWS_PUBLIC_URL`` to the public base URL. Without an auth token every
request is refused.

- ``POST /twilio/status``: a message status; stored only if it moves the delivery forward, so duplicated
  or out-of-order callbacks never move a delivery backwards. A WhatsApp message reported failed after it
  was accepted (e.g. 63016, outside the 24-hour window) gets its SMS fallback queued, where the region
  configured one (``ews send`` delivers it).
- ``POST /twilio/inbound``: ``STOP``/``BERHENTI``/``UNSUBSCRIBE`` opt the number out (confirmed to the
  sender, honoured by the next send); ``SIAP <code>``/``YA <code>`` from a coordinator of Tagana unit
  ``<code>`` acknowledges its open mobilisation (:func:`ews.center.mobilise.acknowledge`); anything else is
  stored as a report and, with the report desks (``reports``), routed and answered with its number, unit and
  deadline (:mod:`ews.center.reports`). A replayed webhook (same MessageSid) is stored once.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import datetime
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from fastapi import APIRouter, Request, Response
from twilio.request_validator import RequestValidator

from ews.center.mobilise import acknowledge
from ews.center.reports import ReportError, ReportIntake, intake_report
from ews.contacts import normalize_phone, recipient_id
from ews.errors import StoreError
from ews.store.repository import Store
from ews.web.inbound import classify

log = logging.getLogger(__name__)

CONFIRM_OPT_OUT = (
    "Anda telah berhenti menerima peringatan dini dari ews. Untuk berlangganan lagi, hubungi BPBD setempat. "
    "/ You will no longer receive ews warnings."
)
CONFIRM_REPORT = "Terima kasih, laporan Anda diterima oleh pusat komando."


def _twiml(text: str | None) -> Response:
    body = f"<Message>{escape(text)}</Message>" if text else ""
    return Response(f'<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>', media_type="application/xml")


def _coordinate(params: dict[str, str], name: str) -> float | None:
    try:
        value = float(params.get(name, ""))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _take_report(
    store: Store, reports: ReportIntake, params: dict[str, str], channel: str, phone: str, at: datetime
) -> str:
    """Route a resident's report (WhatsApp may share a location: Latitude/Longitude) and give its answer."""
    try:
        result = intake_report(
            store, source=channel, source_ref=params.get("MessageSid", ""), body=params.get("Body", ""), at=at,
            reporter_phone=phone, channel=channel, latitude=_coordinate(params, "Latitude"),
            longitude=_coordinate(params, "Longitude"), intake=reports,
        )  # fmt: skip
    except ReportError as exc:
        # Stored as an inbound message but not routed (no MessageSid): said loudly, and the sender still answered.
        log.warning("NOT ROUTED: report from %s: %s", recipient_id(phone), exc)
        return CONFIRM_REPORT
    return result.answer


def webhook_router(
    store: Store,
    auth_token: str | None,
    public_url: str,
    now: Callable[[], datetime],
    reports: ReportIntake | None = None,
) -> APIRouter:
    """The two webhooks over ``store`` (see the module docstring); not in the OpenAPI schema."""
    validator = RequestValidator(auth_token) if auth_token else None
    base = public_url.rstrip("/")
    router = APIRouter(include_in_schema=False)

    async def verified(request: Request) -> dict[str, str] | None:
        if validator is None:
            log.warning("rejected %s: TWILIO_AUTH_TOKEN is not set, so no webhook can be verified", request.url.path)
            return None
        raw = (await request.body()).decode("utf-8", errors="replace")
        params = dict(parse_qsl(raw, keep_blank_values=True))
        url = base + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        signature = request.headers.get("X-Twilio-Signature", "")
        if not signature or not validator.validate(url, params, signature):
            log.warning("rejected %s: missing or invalid X-Twilio-Signature", request.url.path)
            return None
        return params

    @router.post("/twilio/status")
    async def status(request: Request) -> Response:
        params = await verified(request)
        if params is None:
            return Response("invalid signature", status_code=403)
        sid, state = params.get("MessageSid", ""), params.get("MessageStatus", "")
        code = params.get("ErrorCode", "")
        try:
            moved = store.record_status(sid, state, f"twilio {code}" if code else "", at=now())
        except StoreError as exc:
            return Response(str(exc), status_code=400)
        log.info("status %s -> %s (%s)", sid, state, "recorded" if moved else "not newer, ignored")
        if moved and state.lower() in ("failed", "undelivered"):
            fallback = store.fail_over(sid, at=now())
            if fallback is not None:
                log.info("status %s: WhatsApp failed (%s), SMS fallback queued as ledger row %s", sid, code, fallback)
        return Response(status_code=204)

    @router.post("/twilio/inbound")
    async def inbound(request: Request) -> Response:
        params = await verified(request)
        if params is None:
            return Response("invalid signature", status_code=403)
        sender = params.get("From", "")
        channel = "whatsapp" if sender.startswith("whatsapp:") else "sms"
        try:
            phone = normalize_phone(sender.removeprefix("whatsapp:"))
        except ValueError:
            return Response("unreadable sender number", status_code=400)
        who, sid, body = recipient_id(phone), params.get("MessageSid", ""), params.get("Body", "")
        meaning = classify(body)
        at = now()
        if meaning.kind == "opt-out":
            store.record_inbound(sid, channel, who, "opt-out", body, at=at)
            store.opt_out(phone, f"{channel} {body.strip().upper()[:20]}", at)
            log.info("opt-out from %s", who)
            return _twiml(CONFIRM_OPT_OUT)
        if meaning.kind == "ack" and meaning.code in {u.upper() for u in store.coordinator_units(who)}:
            version = store.latest_tagana_version(who)
            store.record_inbound(sid, channel, who, "ack", body, unit_id=meaning.code, alert_version_id=version, at=at)
            acked = acknowledge(store, unit_id=meaning.code, responder=who, via=channel, at=at)
            log.info("Tagana %s acknowledged (version %s) by %s: %s", meaning.code, version, who, acked.outcomes)
            return _twiml(acked.reply())
        store.record_inbound(sid, channel, who, "report", body, at=at)
        if reports is None:
            return _twiml(CONFIRM_REPORT)
        return _twiml(_take_report(store, reports, params, channel, phone, at))

    return router

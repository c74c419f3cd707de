"""``ews serve``: Twilio status callbacks and inbound WhatsApp replies, each with a verified signature.

Every request must carry a valid ``X-Twilio-Signature`` (HMAC-SHA1 of the public URL and the sorted form
parameters with the auth token); a forged or missing one gets 403 and changes nothing. Twilio signs the
URL it called, so behind a proxy set ``EWS_PUBLIC_URL`` to the public base URL.

- ``POST /twilio/status``: a message status; stored only if it moves the delivery forward, so duplicated
  or out-of-order callbacks never move a delivery backwards. A WhatsApp message reported failed after it
  was accepted (e.g. 63016, outside the 24-hour window) gets its SMS fallback queued, where the region
  configured one (``ews send`` delivers it).
- ``POST /twilio/inbound``: ``STOP``/``BERHENTI``/``UNSUBSCRIBE`` opt the number out (confirmed to the
  sender, honoured by the next send); ``SIAP <code>``/``YA <code>`` from a coordinator of Tagana unit
  ``<code>`` acknowledges its latest mobilisation; anything else is stored as a report and, with the report
  desks (``reports``), routed and answered with its number, unit and deadline (:mod:`ews.center.reports`).
  A replayed webhook (same MessageSid) is stored once.

A request body over 64 KiB (:data:`~ews.web.body_limit.MAX_BODY_BYTES`) gets 413 before it is read.

The command center is served beside them: ``/login`` and ``/logout`` (:mod:`ews.web.login`), the JSON API under
``/api`` (:mod:`ews.web.api`, documented at ``/openapi.json``; no Swagger page, which would load from a CDN),
the dashboard when :mod:`ews.web.dashboard` is installed, ``/ack/{token}`` (Tagana acknowledgement links for SMS
coordinators, :mod:`ews.web.ack`) and ``/static``. Who may do what:
:mod:`ews.web.auth`.
"""

from __future__ import annotations

import logging
import math
import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles
from twilio.request_validator import RequestValidator

from ews.center.mobilise import acknowledge
from ews.center.reports import ReportError, ReportIntake, intake_report
from ews.contacts import normalize_phone, recipient_id
from ews.errors import StoreError
from ews.store.repository import Store
from ews.web.ack import ack_router
from ews.web.api import api_router
from ews.web.auth import WebSettings
from ews.web.body_limit import MAX_BODY_BYTES, BodyLimit
from ews.web.inbound import classify
from ews.web.login import auth_router

if TYPE_CHECKING:
    from ews.config import RegionConfig

log = logging.getLogger(__name__)

CONFIRM_OPT_OUT = (
    "Anda telah berhenti menerima peringatan dini dari ews. Untuk berlangganan lagi, hubungi BPBD setempat. "
    "/ You will no longer receive ews warnings."
)
CONFIRM_ACK = "Terima kasih, kesiapan {unit} tercatat."
CONFIRM_REPORT = "Terima kasih, laporan Anda diterima oleh pusat komando."


STATIC_DIR = Path(__file__).parent / "static"


def _mount_command_center(app: FastAPI, region_configs: Mapping[str, RegionConfig]) -> None:
    """Login, the JSON API, the dashboard with ``/static`` (when :mod:`ews.web.dashboard` is there) or ``/static``."""
    import importlib
    import importlib.util

    app.include_router(auth_router)
    app.include_router(api_router)
    app.include_router(ack_router)
    if importlib.util.find_spec("ews.web.dashboard") is not None:
        dashboard = importlib.import_module("ews.web.dashboard")
        views = importlib.import_module("ews.web.views")
        dashboard.mount_dashboard(app, views.DashboardRegions(dict(region_configs)))
    elif STATIC_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


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


def create_app(
    store: Store,
    auth_token: str | None,
    public_url: str,
    *,
    clock: Callable[[], datetime] | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    reports: ReportIntake | None = None,
    settings: WebSettings | None = None,
    region_configs: Mapping[str, RegionConfig] | None = None,
) -> FastAPI:
    """The webhook and command-center application.

    Parameters
    ----------
    store
        Where statuses, opt-outs, acknowledgements and reports are recorded.
    auth_token
        The Twilio auth token that signs requests (from ``TWILIO_AUTH_TOKEN``; never logged). ``None``: the
        webhooks refuse every request (a command center without Twilio serves only the dashboard and API).
    public_url
        The base URL Twilio calls (``https://ews.example.go.id``); signatures are checked against it.
    clock
        Source of "now" (tests pass a fixed one).
    max_body_bytes
        Larger request bodies get 413 before they are read (:class:`~ews.web.body_limit.BodyLimit`).
    reports
        The report desks (:class:`ews.center.reports.ReportIntake`): with them a report is routed, placed,
        deduplicated and answered with its number, unit and deadline (:func:`ews.center.reports.intake_report`);
        without them it is only stored and acknowledged.
    settings
        Sessions, cookies, login limits and the secret key (:meth:`WebSettings.from_env`, read once at startup);
        default: a random key for this process only.
    region_configs
        The regions served, by id: an approval from the API or the dashboard queues its messages with them.
    """
    validator = RequestValidator(auth_token) if auth_token else None
    base = public_url.rstrip("/")
    now = clock or (lambda: datetime.now(UTC))
    app = FastAPI(title="ews command center", docs_url=None, redoc_url=None, openapi_url="/openapi.json")
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.state.store, app.state.clock = store, now
    app.state.settings = settings or WebSettings(secrets.token_hex(32).encode("ascii"), secret_generated=True)
    app.state.region_configs = dict(region_configs or {})
    app.state.reports = reports
    _mount_command_center(app, app.state.region_configs)

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

    @app.post("/twilio/status", include_in_schema=False)
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

    @app.post("/twilio/inbound", include_in_schema=False)
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

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app

"""Tagana acknowledgement links for SMS-only coordinators: ``GET /ack/{token}`` and ``POST /ack/{token}``.

An escalation page sent by SMS carries ``{EWS_PUBLIC_URL}/ack/<token>`` (:func:`ews.center.mobilise.ack_token`,
signed with ``EWS_SECRET_KEY``, the same bytes as :attr:`ews.web.auth.WebSettings.secret_key`). The signed token
is the credential: no login. ``GET`` shows a small page in Bahasa Indonesia naming the unit and the warning, with
one "SIAP" button, and never changes anything (link previewers and SMS apps fetch links). ``POST`` records the
acknowledgement in the coordinator's pseudonymous id from the token (``via="link"``), once per round however
often it is sent, and shows what happened.

A token that is malformed, forged or altered, or whose mobilisation no longer exists or has stood down, gets the
same 404 page with no detail. The signature is checked before the database is touched, so a bad token costs an
HMAC and nothing else; a forged one cannot be guessed (96-bit HMAC-SHA256), so there is no rate limit here.
The pages are ``no-store``, ``noindex`` and send no referrer (the token is in the URL).
"""

from __future__ import annotations

import logging
from datetime import UTC
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from ews.center.mobilise import acknowledge, read_ack_token
from ews.codes import local_zone
from ews.store.mobilisations import LIVE, MobilisationRecord
from ews.types import Level
from ews.web.auth import now_of, settings_of, store_of

log = logging.getLogger(__name__)

ack_router = APIRouter(include_in_schema=False)
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
MAX_TOKEN = 120  # "<id>.<16 hex>.<16 base64url>" is about 40 characters
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Frame-Options": "DENY",
}


def _found(request: Request, token: str) -> tuple[MobilisationRecord, str] | None:
    """The live mobilisation and the coordinator's id of a valid token, or None (checked before any query)."""
    if len(token) > MAX_TOKEN:
        return None
    try:
        mobilisation_id, recipient = read_ack_token(token, settings_of(request).secret_key)
    except ValueError:
        return None
    record = store_of(request).mobilisation(mobilisation_id)
    if record is None or record.status not in LIVE:
        return None
    return record, recipient


def _page(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(request, name, context, status_code=status_code, headers=HEADERS)


def _not_found(request: Request) -> HTMLResponse:
    return _page(request, "ack_invalid.html", {}, status_code=404)


def _opened(record: MobilisationRecord) -> str:
    try:
        zone, name = local_zone(record.villages[0]) if record.villages else (UTC, "UTC")
    except ValueError:
        zone, name = UTC, "UTC"
    return f"{record.opened_at.astimezone(zone):%d-%m-%Y %H:%M} {name}"


def _context(record: MobilisationRecord, token: str) -> dict[str, Any]:
    return {
        "m": record,
        "token": token,
        "level": Level(int(record.level)).label,
        "villages": len(record.villages),
        "opened": _opened(record),
    }


@ack_router.get("/ack/{token}", response_class=HTMLResponse)
def ack_page(request: Request, token: str) -> HTMLResponse:
    """The confirmation page: the unit and the warning, and one "SIAP" button. Changes nothing."""
    found = _found(request, token)
    if found is None:
        return _not_found(request)
    record, _ = found
    return _page(request, "ack.html", _context(record, token))


@ack_router.post("/ack/{token}", response_class=HTMLResponse)
def ack_submit(request: Request, token: str) -> HTMLResponse:
    """Acknowledge the token's mobilisation for its coordinator (``via="link"``); audited by ``acknowledge``."""
    found = _found(request, token)
    if found is None:
        return _not_found(request)
    record, recipient = found
    result = acknowledge(
        store_of(request), unit_id=record.unit_id, responder=recipient, via="link", at=now_of(request),
        mobilisation_id=record.id,
    )  # fmt: skip
    log.info("Tagana %s acknowledged by link (mobilisation %s) by %s: %s", record.unit_id, record.id, recipient,
             result.outcomes)  # fmt: skip
    return _page(request, "ack_done.html", {**_context(record, token), "reply": result.reply(),
                                            "duplicate": result.duplicate})  # fmt: skip

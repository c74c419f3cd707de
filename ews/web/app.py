"""``ews serve``: the Twilio webhooks and the command center in one FastAPI application.

- the Twilio webhooks ``/twilio/status`` and ``/twilio/inbound``, each with a verified signature
  (:mod:`ews.web.webhooks`);
- ``/login`` and ``/logout`` (:mod:`ews.web.login`), the JSON API under ``/api`` (:mod:`ews.web.api`, documented at
  ``/openapi.json``; no Swagger page, which would load from a CDN), the dashboard and ``/static``
  (:mod:`ews.web.dashboard`), ``/ack/{token}`` (Tagana acknowledgement links for SMS coordinators,
  :mod:`ews.web.ack`). Who may do what: :mod:`ews.web.auth`.

A request body over 64 KiB (:data:`~ews.web.body_limit.MAX_BODY_BYTES`) gets 413 before it is read.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fastapi import FastAPI

from ews.center.reports import ReportIntake
from ews.store.repository import Store
from ews.web.ack import ack_router
from ews.web.api import api_router
from ews.web.auth import WebSettings
from ews.web.body_limit import MAX_BODY_BYTES, BodyLimit
from ews.web.dashboard import mount_dashboard
from ews.web.login import auth_router
from ews.web.views import DashboardRegions
from ews.web.webhooks import webhook_router

if TYPE_CHECKING:
    from ews.config import RegionConfig


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
    now = clock or (lambda: datetime.now(UTC))
    app = FastAPI(title="ews command center", docs_url=None, redoc_url=None, openapi_url="/openapi.json")
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.state.store, app.state.clock = store, now
    app.state.settings = settings or WebSettings(secrets.token_hex(32).encode("ascii"), secret_generated=True)
    app.state.region_configs = dict(region_configs or {})
    app.state.reports = reports
    app.include_router(webhook_router(store, auth_token, public_url, now, reports))
    app.include_router(auth_router)
    app.include_router(api_router)
    app.include_router(ack_router)
    mount_dashboard(app, DashboardRegions(app.state.region_configs))

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app

"""The command center's dashboard: server-rendered pages, htmx fragments that refresh every 15 s, the map's data.

Pages (each scoped to the user's regions): ``/dashboard`` (overview: counts, latest runs with any degraded state
shown loudly, active warnings with their timeline and latency), ``/dashboard/map``, ``/dashboard/warnings`` (with
delivery counts per warning), ``/dashboard/tagana`` (the board; operators acknowledge), ``/dashboard/reports``
(the queue, overdue first; operators move a report on and type in one taken by phone), ``/dashboard/review``
(analysts approve or reject) and ``/dashboard/audit`` (admins). A page's ``?fragment=1`` is its live part alone,
what htmx polls.

The map loads ``/dashboard/regions/{region}/villages.geojson`` once (built once per region, cached by the
browser: ETag and ``Cache-Control``), then ``levels.json`` on every refresh and ``warnings.geojson`` only when
the set of active warnings changed.

Every state change is a POST behind :func:`ews.web.auth.require` and :func:`ews.web.auth.csrf_protect`, recorded
in the audit log. No page shows a phone number: report texts have any number in them masked (for operators and
above) or removed (for viewers).

The app provides ``app.state.store`` (:class:`~ews.store.repository.Store`), ``app.state.regions``
(:class:`~ews.web.views.DashboardRegions`) and optionally ``app.state.clock`` (a callable returning "now").
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import Scope

from ews.codes import local_zone
from ews.errors import DataValidationError, EwsError, StoreError
from ews.store.repository import Store
from ews.web import i18n, views
from ews.web.auth import User, csrf_token, current_user, new_token, now_of, require, store_of

HERE = Path(__file__).parent
TEMPLATES = Jinja2Templates(directory=str(HERE / "templates"))
TEMPLATES.env.globals["duration"] = views.duration
TEMPLATES.env.globals["LEVEL_COLOURS"] = views.LEVEL_COLOURS
TIME_FORMAT = "%Y-%m-%d %H:%M"

dashboard_router = APIRouter(include_in_schema=False)

_NUMBER = re.compile(r"(?:\+|\b)\d[\d .\-]{6,}\d\b")


def redact_numbers(text: str, *, masked: bool) -> str:
    """``text`` with anything like a phone number masked to its last 3 digits (``masked``) or removed."""

    def hide(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group(0))
        return f"•••{digits[-3:]}" if masked else "[nomor]"

    return _NUMBER.sub(hide, text)


# -- local time -------------------------------------------------------------------------------------------------


def zone_for(
    regions: views.DashboardRegions | None, where: str | None, visible: Sequence[str] = ()
) -> tuple[tzinfo, str]:
    """The civil time zone and its name (WIB, WITA, WIT) for ``where``: a region id, or a Kemendagri code.

    Without ``where`` (or one not understood), the zone of the ``visible`` regions when they share one, else UTC.
    """
    configs = regions.configs if regions is not None else {}
    if where:
        config = configs.get(where)
        try:
            return local_zone(config.province_code if config is not None else where)
        except (DataValidationError, ValueError):
            pass
    zones = set()
    for region in visible:
        if region in configs:
            zones.add(local_zone(configs[region].province_code))
    if len(zones) == 1:
        return zones.pop()
    return UTC, "UTC"


def local_time(moment: datetime | None, zone: tuple[tzinfo, str], fmt: str = TIME_FORMAT) -> str:
    """``moment`` in ``zone`` with the zone's name (``2026-12-02 20:40 WIB``); ``–`` for None (naive = UTC)."""
    if moment is None:
        return "–"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    tz, name = zone
    return f"{moment.astimezone(tz).strftime(fmt)} {name}"


@pass_context
def _local_filter(context: Context, moment: datetime | None, where: str | None = None, fmt: str = TIME_FORMAT) -> str:
    """Jinja ``{{ when|local(region_or_code) }}``: a time in the region's local zone, named (WIB/WITA/WIT)."""
    request = context.get("request")
    regions = getattr(request.app.state, "regions", None) if request is not None else None
    return local_time(moment, zone_for(regions, where, context.get("regions") or ()), fmt)


@pass_context
def _zone_name(context: Context, where: str | None = None) -> str:
    """Jinja ``{{ zone_name(region) }}``: the name of the zone :func:`_local_filter` shows times in."""
    request = context.get("request")
    regions = getattr(request.app.state, "regions", None) if request is not None else None
    return zone_for(regions, where, context.get("regions") or ())[1]


TEMPLATES.env.filters["local"] = _local_filter
TEMPLATES.env.globals["zone_name"] = _zone_name


def _store(request: Request) -> Store:
    return store_of(request)


def _regions(request: Request) -> views.DashboardRegions:
    regions: views.DashboardRegions = request.app.state.regions
    return regions


def _now(request: Request) -> datetime:
    return now_of(request)


def _language(request: Request, user: User | None) -> str:
    return i18n.language_of(
        request.query_params.get("lang"), request.cookies.get(i18n.COOKIE), user.language if user else None
    )


def _render(
    request: Request,
    user: User,
    template: str,
    context: Mapping[str, Any],
    *,
    status_code: int = 200,
) -> HTMLResponse:
    lang = _language(request, user)
    regions = _regions(request)
    visible = regions.visible(user)
    fragment = request.query_params.get("fragment") == "1" or bool(request.headers.get("HX-Request"))
    name = f"_{template}" if fragment else template
    response = TEMPLATES.TemplateResponse(
        request,
        name,
        {
            "user": user,
            "t": i18n.translator(lang),
            "lang": lang,
            "other_lang": "en" if lang == "id" else "id",
            "csrf": csrf_token(request),
            "csrf_header": json.dumps({"X-CSRF-Token": csrf_token(request)}),
            "regions": visible,
            "region_names": {r: regions.configs[r].name for r in visible},
            "now": _now(request),
            "page": template.removesuffix(".html"),
            **context,
        },
        status_code=status_code,
    )
    if request.query_params.get("lang") in i18n.LANGUAGES:
        response.set_cookie(i18n.COOKIE, lang, max_age=365 * 86400, samesite="lax", httponly=True)
    response.headers["Cache-Control"] = "no-store"
    return response


def _after_change(request: Request, page: str) -> Response | None:
    """A plain form post (no htmx) goes back to its page; htmx gets the fragment instead (``None``)."""
    if request.headers.get("HX-Request"):
        return None
    return RedirectResponse(page, status_code=303)


UserDep = Annotated[User, Depends(current_user)]


class CachedStatic(StaticFiles):
    """``/static``: the package's CSS, JS and vendored files with ETag, Last-Modified and a day's Cache-Control.

    A day, not a year: the file names carry no version, and a changed ``dashboard.js`` must reach every
    browser by the next day at the latest (the ETag revalidates it sooner when the browser asks).
    """

    async def get_response(self, path: str, scope: Scope) -> Response:
        """The file with its caching headers (a 304 keeps them too)."""
        response = await super().get_response(path, scope)
        if response.status_code in (200, 304):
            response.headers["Cache-Control"] = "public, max-age=86400"
            response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def mount_dashboard(app: FastAPI, regions: views.DashboardRegions) -> None:
    """Add the dashboard to ``app``: its pages and map data, ``/static``, gzip, and the regions it serves.

    ``app.state`` must hold what :mod:`ews.web.auth` reads (store, settings, clock).
    """
    app.state.regions = regions
    # Pages, fragments and GeoJSON compress 5-10x: what matters on a slow connection.
    app.add_middleware(GZipMiddleware, minimum_size=1000)
    app.include_router(dashboard_router)
    app.mount("/static", CachedStatic(directory=HERE / "static"), name="static")


# -- pages -------------------------------------------------------------------------------------------------


@dashboard_router.get("/", include_in_schema=False)
def root() -> RedirectResponse:
    """The dashboard is the site's front page."""
    return RedirectResponse("/dashboard", status_code=303)


@dashboard_router.get("/dashboard", response_class=HTMLResponse)
def overview(request: Request, user: UserDep) -> HTMLResponse:
    """Counts, the latest runs (degraded state first and loud), the active warnings with their timeline."""
    store, regions = _store(request), _regions(request)
    visible = regions.visible(user)
    runs = views.latest_runs(store, visible, _now(request))
    counts = {r: store.counts(r) for r in visible}
    warnings = views.active_warnings(store, regions, visible, user)
    return _render(
        request,
        user,
        "overview.html",
        {
            "runs": sorted(runs, key=lambda r: (not r.degraded, r.region, r.source)),
            "degraded": [r for r in runs if r.degraded],
            "counts": counts,
            "warnings": warnings,
            "pending": views.pending_reviews(store, regions, visible, user),
            "report_counts": views.report_counts(store, regions, visible, user, _now(request)),
            "board": views.board(store, user, _now(request), events=False),
        },
    )


@dashboard_router.get("/dashboard/map", response_class=HTMLResponse)
def map_page(request: Request, user: UserDep) -> HTMLResponse:
    """The map of village levels and warning areas (Leaflet, no tiles)."""
    visible = _regions(request).visible(user)
    chosen = request.query_params.get("region")
    region = chosen if chosen in visible else (visible[0] if visible else None)
    bounds = _regions(request).map(region).bounds if region else None
    return _render(request, user, "map.html", {"region": region, "bounds": bounds})


@dashboard_router.get("/dashboard/warnings", response_class=HTMLResponse)
def warnings_page(request: Request, user: UserDep) -> HTMLResponse:
    """Active warnings with villages per level, timeline, latency and delivery counts."""
    store, regions = _store(request), _regions(request)
    warnings = views.active_warnings(store, regions, regions.visible(user), user)
    return _render(request, user, "warnings.html", {"warnings": warnings})


@dashboard_router.get("/dashboard/tagana", response_class=HTMLResponse)
def tagana_page(request: Request, user: UserDep, notice: str = "") -> HTMLResponse:
    """The Tagana board: open, escalated, acknowledged, mobilised and recently stood down, each with its events."""
    board = views.board(_store(request), user, _now(request))
    return _render(request, user, "tagana.html", {"board": board, "notice": notice})


@dashboard_router.get("/dashboard/reports", response_class=HTMLResponse)
def reports_page(request: Request, user: UserDep, notice: str = "", taken: str = "", again: str = "") -> HTMLResponse:
    """The report queue with routing and deadlines, overdue first; operators also get the form to type one in.

    ``?taken=<id>`` (where a plain form post lands, PRG) says what became of the report just typed in.
    """
    t = i18n.translator(_language(request, user))
    said = (
        _taken(t, _store(request), user, int(taken), again=again == "1", at=_now(request), regions=_regions(request))
        if taken.isdigit()
        else ""
    )
    return _render(request, user, "reports.html", _reports_context(request, user, notice=notice, taken=said))


def _reports_context(
    request: Request, user: User, *, notice: str = "", taken: str = "", form: ReportForm | None = None
) -> dict[str, Any]:
    store, regions = _store(request), _regions(request)
    visible = regions.visible(user)
    queue = views.report_queue(store, regions, visible, user, _now(request))
    for item in queue:
        item.text = redact_numbers(item.text, masked=user.at_least("operator"))
    if form is None and user.at_least("operator") and visible:
        form = ReportForm(new_token(), region=visible[0])
    return {"reports": queue, "notice": notice, "form": form, "taken": taken}


@dashboard_router.get("/dashboard/review", response_class=HTMLResponse)
def review_page(request: Request, user: UserDep, notice: str = "") -> HTMLResponse:
    """What the review gate holds (analysts and admins decide)."""
    store, regions = _store(request), _regions(request)
    pending = views.pending_reviews(store, regions, regions.visible(user), user)
    return _render(request, user, "review.html", {"pending": pending, "notice": notice})


@dashboard_router.get("/dashboard/audit", response_class=HTMLResponse)
def audit_page(request: Request, user: Annotated[User, Depends(require("admin"))]) -> HTMLResponse:
    """The newest audit entries of the admin's regions."""
    entries = _store(request).audit_entries(regions=user.regions, limit=300)
    return _render(request, user, "audit.html", {"entries": entries})


# -- map data ----------------------------------------------------------------------------------------------


def _region_map(request: Request, user: User, region: str) -> views.RegionMap:
    if region not in _regions(request).visible(user):
        raise HTTPException(status_code=404, detail=f"no region {region!r} among yours")
    return _regions(request).map(region)


@dashboard_router.get("/dashboard/regions/{region}/villages.geojson")
def villages_geojson(request: Request, region: str, user: UserDep) -> Response:
    """The region's village polygons (simplified, rounded), built once; revalidated by ETag."""
    found = _region_map(request, user, region)
    headers = {"ETag": found.etag, "Cache-Control": "private, max-age=3600", "Vary": "Cookie"}
    if request.headers.get("if-none-match") == found.etag:
        return Response(status_code=304, headers=headers)
    # Every village of the region is drawn (grey when the user does not see it): geometry is public (BIG's).
    return Response(found.geojson, media_type="application/geo+json", headers=headers)


@dashboard_router.get("/dashboard/regions/{region}/levels.json")
def levels_json(request: Request, region: str, user: UserDep) -> Response:
    """The highest active level per village the user sees, and a key of the set of active warnings."""
    body = views.village_levels(_store(request), _region_map(request, user, region), user)
    return Response(json.dumps(body, separators=(",", ":")), media_type="application/json",
                    headers={"Cache-Control": "no-store"})  # fmt: skip


@dashboard_router.get("/dashboard/regions/{region}/warnings.geojson")
def warnings_geojson(request: Request, region: str, user: UserDep) -> Response:
    """The active warnings' areas over the user's villages."""
    body = views.warning_areas(_store(request), _region_map(request, user, region), user)
    return Response(json.dumps(body, separators=(",", ":")), media_type="application/geo+json",
                    headers={"Cache-Control": "no-store"})  # fmt: skip


# -- state changes -------------------------------------------------------------------------------------------


@dashboard_router.post("/dashboard/review/decide", response_class=HTMLResponse)
def review_decide(
    request: Request,
    user: Annotated[User, Depends(require("analyst"))],
    region: Annotated[str, Form()],
    thread: Annotated[str, Form()],
    decision: Annotated[str, Form()],
) -> Response:
    """Approve (queue at once, as ``ews alerts approve``) or reject the pending versions of a thread the user sees."""
    t = i18n.translator(_language(request, user))
    if decision not in ("approve", "reject"):
        raise HTTPException(status_code=400, detail="decision must be 'approve' or 'reject'")
    regions = _regions(request)
    if region not in regions.visible(user):
        raise HTTPException(status_code=403, detail=f"region {region!r} is not among yours")
    try:
        decided, queued = views.decide_review(
            _store(request), regions, region, thread, decision, user, at=_now(request)
        )
    except EwsError as exc:
        return _refused(request, user, "review.html", str(exc))
    key = "review.approved" if decision == "approve" else "review.rejected"
    notice = t(key, thread=thread, n=len(decided), queued=queued)
    return _after_change(request, "/dashboard/review") or review_page(request, user, notice=notice)


@dashboard_router.post("/dashboard/reports/{report_id}/status", response_class=HTMLResponse)
def report_status(
    request: Request,
    report_id: int,
    user: Annotated[User, Depends(require("operator"))],
    status: Annotated[str, Form()],
    note: Annotated[str, Form()] = "",
) -> Response:
    """Move a report on (routed, in progress, resolved); its reporter is told by the report's rules."""
    t = i18n.translator(_language(request, user))
    try:
        views.set_status(
            _store(request), report_id, status, note, user, at=_now(request),
            intake=getattr(request.app.state, "reports", None),
        )  # fmt: skip
    except EwsError as exc:
        return _refused(request, user, "reports.html", str(exc))
    notice = t("reports.set", id=report_id, status=t(f"report.{status}"))
    return _after_change(request, "/dashboard/reports") or reports_page(request, user, notice=notice)


@dataclass
class ReportForm:
    """The operator's report form as rendered: its one-time token and, after a refusal, what was typed.

    What was typed comes back with any number in it masked, and the reporter's phone never comes back
    (``phone_dropped`` says it was given); ``errors`` are the messages per field.
    """

    token: str
    region: str = ""
    village: str = ""
    text: str = ""
    label: str = ""
    errors: dict[str, str] = field(default_factory=dict)
    phone_dropped: bool = False


def _taken(
    t: Callable[..., str],
    store: Store,
    user: User,
    report_id: int,
    *,
    again: bool,
    at: datetime,
    regions: views.DashboardRegions | None = None,
) -> str:
    """What became of a report just typed in: its number, unit and deadline, or the report it joined."""
    try:
        record = store.report(report_id, now=at)
    except StoreError:
        return ""
    if not (user.sees(record.village_code) or user.sees(record.region)):
        return ""
    zone = zone_for(regions, record.village_code or record.region)
    deadline = local_time(record.deadline_at, zone, "%m-%d %H:%M")
    if record.duplicate_of is not None:
        said = t("reports.form.joined", id=record.id, joined=record.duplicate_of, unit=record.unit, deadline=deadline)
    else:
        said = t("reports.form.taken", id=record.id, unit=record.unit, deadline=deadline)
    if record.reporter_id:
        said += " " + t("reports.form.sms")
    return f"{t('reports.form.again')} {said}" if again else said


@dashboard_router.post("/dashboard/reports", response_class=HTMLResponse)
def report_take(
    request: Request,
    user: Annotated[User, Depends(require("operator"))],
    form_token: Annotated[str, Form()] = "",
    region: Annotated[str, Form()] = "",
    village: Annotated[str, Form()] = "",
    text: Annotated[str, Form()] = "",
    label: Annotated[str, Form()] = "",
    phone: Annotated[str, Form()] = "",
) -> Response:
    """Take a report an operator typed in (a phone call): stored once per form token, routed, audited.

    A plain post lands on ``/dashboard/reports?taken=<id>`` (PRG); htmx gets the form again, fresh, with what
    became of the report, and the queue out of band. Bad input: the form again with the problems by field, nothing
    stored (422; 409 for htmx, which the page swaps in place).
    """
    t = i18n.translator(_language(request, user))
    htmx = bool(request.headers.get("HX-Request"))
    try:
        result = views.take_report(
            _store(request), _regions(request), user, token=form_token, region=region, village=village, text=text,
            label=label, phone=phone, at=_now(request), intake=getattr(request.app.state, "reports", None),
        )  # fmt: skip
    except views.ReportFormError as exc:
        form = ReportForm(
            form_token if views.FORM_TOKEN.fullmatch(form_token) else new_token(), region=region,
            village=redact_numbers(village[:64], masked=True),
            text=redact_numbers(text[: views.MAX_REPORT_TEXT], masked=True),
            label=redact_numbers(label[: views.MAX_REPORTER_LABEL], masked=True),
            errors={name: t(key, **fields) for name, (key, fields) in exc.problems.items()},
            phone_dropped=bool(phone.strip()),
        )  # fmt: skip
        context = _reports_context(request, user, form=form)
        return _render(request, user, "reports_form.html" if htmx else "reports.html", context,
                       status_code=409 if htmx else 422)  # fmt: skip
    if not htmx:
        again = "&again=1" if result.replayed else ""
        return RedirectResponse(f"/dashboard/reports?taken={result.report_id}{again}", status_code=303)
    said = _taken(
        t, _store(request), user, result.report_id, again=result.replayed, at=_now(request), regions=_regions(request)
    )
    context = {**_reports_context(request, user, taken=said), "oob": True}
    return _render(request, user, "reports_form.html", context)


@dashboard_router.post("/dashboard/tagana/{mobilisation_id}/ack", response_class=HTMLResponse)
def tagana_ack(request: Request, mobilisation_id: int, user: Annotated[User, Depends(require("operator"))]) -> Response:
    """Acknowledge a mobilisation for its unit in the operator's name (``via="dashboard"``).

    :func:`ews.center.mobilise.acknowledge` records the event and audits it. A mobilisation outside the user's
    regions is answered 404, as if it did not exist; one stood down 409.
    """
    t = i18n.translator(_language(request, user))
    try:
        result = views.acknowledge_mobilisation(_store(request), mobilisation_id, user, at=_now(request))
    except LookupError:
        raise HTTPException(404, f"there is no mobilisation {mobilisation_id} in your regions") from None
    except (EwsError, ValueError) as exc:
        return _refused(request, user, "tagana.html", str(exc))
    if not result.acknowledged:
        return _refused(request, user, "tagana.html", t("tagana.nothing", id=mobilisation_id))
    _, status, acks, quorum = result.outcomes[0]
    key = "tagana.again" if result.duplicate else "tagana.acked"
    notice = t(key, id=mobilisation_id, unit=result.unit_id, status=t("mob." + status), acks=acks, quorum=quorum)
    return _after_change(request, "/dashboard/tagana") or tagana_page(request, user, notice=notice)


def _refused(request: Request, user: User, template: str, why: str) -> HTMLResponse:
    """A refused change: 409 with the reason (htmx shows it in place; see dashboard.js)."""
    page = {"review.html": review_page, "reports.html": reports_page, "tagana.html": tagana_page}[template]
    response = page(request, user, notice=why)
    response.status_code = 409
    return response

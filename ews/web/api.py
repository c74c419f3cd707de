"""The command center's JSON API (``/api``), documented at ``/openapi.json``, with the pages' authorisation.

Every endpoint needs a session: a bearer token from ``POST /api/session`` (other agencies' systems) or the
dashboard's cookie (then a state change also needs the ``X-CSRF-Token`` header). Roles are checked by
:func:`ews.web.auth.require`; a user sees and changes only what lies in its regions (:meth:`User.sees`): an
alert version outside them is answered 404, as if it did not exist. Every state change is audited.

No response holds a phone number.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from ews.errors import StoreError
from ews.store.repository import AlertVersionRecord
from ews.web.auth import User, audit, csrf_token, now_of, require, store_of
from ews.web.login import Problem

if TYPE_CHECKING:
    from ews.config import RegionConfig

api_router = APIRouter(prefix="/api", tags=["command center"], responses={401: {"model": Problem}})

Viewer = Annotated[User, Depends(require("viewer"))]
Operator = Annotated[User, Depends(require("operator"))]
Analyst = Annotated[User, Depends(require("analyst"))]
Admin = Annotated[User, Depends(require("admin"))]
RegionId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")]
_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"  # PostgreSQL refuses NUL in text: refused here as 422, not there as 500
_MAX_ID = 2**31 - 1  # ids are PostgreSQL integers
_NO_NUL = r"^[^\x00]*$"
_CODE = r"^\d{2}(\.\d{2}){0,2}(\.\d{4})?$"


class Me(BaseModel):
    """The logged-in user; ``csrf_token`` goes in the ``X-CSRF-Token`` header of a cookie session's changes."""

    username: str
    role: Literal["viewer", "operator", "analyst", "admin"]
    regions: list[str]
    language: str
    csrf_token: str


class VillageLevel(BaseModel):
    """What ews last announced for one village in one warning thread."""

    village_code: str
    thread_id: str
    level: Literal["none", "Waspada", "Siaga", "Awas"]
    level_value: int = Field(ge=0, le=3)
    seq: int
    warning_id: str
    warning_sent: datetime
    expires: datetime | None
    fraction: float
    active: bool


class PendingVersion(BaseModel):
    """An alert version held for review."""

    id: int
    region: str
    thread_id: str
    village_code: str
    seq: int
    transition: str
    level: str
    level_before: str
    hazard: str
    exercise: bool
    reason: str
    created_at: datetime


class PendingThread(BaseModel):
    """What waits for review in one thread, counted over the villages the user sees."""

    region: str
    thread_id: str
    versions: int
    villages: int
    level: str
    since: datetime
    exercise: bool


class ReviewQueue(BaseModel):
    """The review queue in the user's regions: by thread, and every version."""

    threads: list[PendingThread]
    versions: list[PendingVersion]


class DecisionRequest(BaseModel):
    """A reviewer's decision on one alert version."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"]


class DecisionResult(BaseModel):
    """A decision taken: the version's new status and the messages queued for ``ews send``."""

    version_id: int
    status: Literal["approved", "rejected"]
    queued: int


class AuditLine(BaseModel):
    """One audit entry: who did what, on what, when."""

    id: int
    at: datetime
    actor: str
    role: str
    action: str
    subject: str
    region: str | None
    detail: dict[str, Any]


def _region_configs(request: Request) -> Mapping[str, RegionConfig]:
    configs: Mapping[str, RegionConfig] = getattr(request.app.state, "region_configs", {})
    return configs


def sees_version(user: User, version: AlertVersionRecord) -> bool:
    """Whether ``user`` sees an alert version: its village, or its whole region (by region id)."""
    return user.sees(version.village_code) or user.sees(version.region)


def _pending(version: AlertVersionRecord) -> PendingVersion:
    return PendingVersion(
        id=version.id, region=version.region, thread_id=version.thread_id, village_code=version.village_code,
        seq=version.seq, transition=str(version.transition.value), level=version.level.label,
        level_before=version.level_before.label, hazard=version.hazard, exercise=version.exercise,
        reason=version.reason, created_at=version.created_at,
    )  # fmt: skip


def decide_version(request: Request, user: User, version_id: int, decision: str) -> DecisionResult:
    """Approve (queue at once, as ``ews alerts approve``) or reject one pending alert version ``user`` sees; audited.

    Raises
    ------
    HTTPException
        404 for a version that does not exist or lies outside the user's regions, 409 for one decided already
        or an approval in a region this server does not serve.
    """
    from ews.pipeline import decide_review

    store = store_of(request)
    try:
        version = store.alert_version(version_id)
    except StoreError:
        version = None
    if version is None or not sees_version(user, version):
        raise HTTPException(404, f"there is no alert version {version_id} in your regions")
    config = _region_configs(request).get(version.region)
    status = "approved" if decision == "approve" else "rejected"
    try:
        if config is not None:
            decided, queued = decide_review(store, config, status, user.username, ids=[version_id])
        elif status == "rejected":  # what decide_review does for a rejection, which needs no region data
            decided, queued = store.decide_pending(version.region, status, user.username, ids=[version_id]), 0
        else:
            raise HTTPException(
                409,
                f"this server does not serve region {version.region!r}, so it cannot queue the messages: start "
                f"ews serve with --region {version.region}",
            )
    except StoreError as exc:
        raise HTTPException(409, str(exc)) from None
    audit(
        request, user, f"review.{decision}", f"alert_version:{version_id}", region=version.village_code[:5],
        detail={"region": version.region, "thread": version.thread_id, "versions": [v.id for v in decided],
                "queued": queued},
    )  # fmt: skip
    return DecisionResult(version_id=version_id, status=status, queued=queued)  # type: ignore[arg-type]


@api_router.get("/me", response_model=Me, summary="The logged-in user")
def me(request: Request, user: Viewer) -> Me:
    """Who the session belongs to, with its role, regions and CSRF token."""
    return Me(username=user.username, role=user.role, regions=list(user.regions), language=user.language,  # type: ignore[arg-type]
              csrf_token=csrf_token(request))  # fmt: skip


@api_router.get(
    "/regions/{region}/villages",
    response_model=list[VillageLevel],
    responses={403: {"model": Problem}},
    summary="Village levels of a region",
)
def villages(
    request: Request,
    region: RegionId,
    user: Viewer,
    active: Annotated[bool, Query(description="only villages under an active alert")] = False,
) -> list[VillageLevel]:
    """Every village state of ``region`` (by thread, then village) in the user's regions."""
    states = store_of(request).village_states(region)
    return [
        VillageLevel(
            village_code=s.village_code, thread_id=s.thread_id, level=s.level.label,  # type: ignore[arg-type]
            level_value=int(s.level), seq=s.seq, warning_id=s.warning_id, warning_sent=s.warning_sent,
            expires=s.expires, fraction=s.fraction, active=s.active,
        )
        for s in states
        if user.sees(s.village_code) and (s.active or not active)
    ]  # fmt: skip


@api_router.get("/alerts/pending", response_model=ReviewQueue, summary="The review queue")
def pending(
    request: Request,
    user: Viewer,
    region: Annotated[
        str | None, Query(max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$", description="one region id (default: all)")
    ] = None,
) -> ReviewQueue:
    """Alert versions held for review in the user's villages (oldest first), and the same by thread."""
    versions = [v for v in store_of(request).pending_versions(region) if sees_version(user, v)]
    groups: dict[tuple[str, str], list[AlertVersionRecord]] = {}
    for v in versions:
        groups.setdefault((v.region, v.thread_id), []).append(v)
    threads = [
        PendingThread(
            region=r, thread_id=t, versions=len(vs), villages=len({v.village_code for v in vs}),
            level=max(v.level for v in vs).label, since=min(v.created_at for v in vs),
            exercise=any(v.exercise for v in vs),
        )
        for (r, t), vs in groups.items()
    ]  # fmt: skip
    threads.sort(key=lambda t: t.since)
    return ReviewQueue(threads=threads, versions=[_pending(v) for v in versions])


@api_router.post(
    "/alerts/{version_id}/decision",
    response_model=DecisionResult,
    responses={403: {"model": Problem}, 404: {"model": Problem}, 409: {"model": Problem}},
    summary="Approve or reject an alert version",
)
def decision(
    request: Request,
    version_id: Annotated[int, Path(ge=1, le=_MAX_ID)],
    body: DecisionRequest,
    user: Analyst,
) -> DecisionResult:
    """Approve (its messages are queued at once for ``ews send``) or reject a pending version (analyst or above)."""
    return decide_version(request, user, version_id, body.decision)


@api_router.get("/audit", response_model=list[AuditLine], responses={403: {"model": Problem}}, summary="The audit log")
def audit_log(
    request: Request,
    user: Admin,
    subject: Annotated[str | None, Query(max_length=200, pattern=_PRINTABLE)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[AuditLine]:
    """The newest audit entries first (admin only); an admin of some regions sees only the entries of those."""
    entries = store_of(request).audit_entries(subject=subject, limit=limit)
    return [
        AuditLine(id=e.id, at=e.at, actor=e.actor, role=e.role, action=e.action, subject=e.subject, region=e.region,
                  detail=dict(e.detail))
        for e in entries
        if user.sees(e.region)
    ]  # fmt: skip


# -- reports ----------------------------------------------------------------------------------------------------


class ReportIn(BaseModel):
    """A report forwarded by another agency's system (or typed by an operator's tool)."""

    model_config = ConfigDict(extra="forbid")

    reference: str = Field(min_length=1, max_length=128, pattern=_PRINTABLE, description="the sender's own id")
    text: str = Field(min_length=1, max_length=2000, pattern=_NO_NUL)
    reporter: str = Field(default="", max_length=100, pattern=_PRINTABLE, description="who reports, in words")
    region: str | None = Field(default=None, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    village_code: str | None = Field(default=None, max_length=13, pattern=_CODE)
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    language: Literal["id", "en"] | None = None


class ReportTaken(BaseModel):
    """What became of a report: its number, the unit it went to and by when it must be answered."""

    report_id: int
    status: str
    category: str
    unit: str
    deadline_at: datetime
    duplicate_of: int | None
    village_code: str | None
    answer: str


class ReportStatusIn(BaseModel):
    """A report's next status, with a short note for the reporter."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["routed", "in-progress", "resolved"]
    note: str = Field(default="", max_length=280, pattern=_NO_NUL)


class ReportOut(BaseModel):
    """A report as the API shows it (never a phone number)."""

    id: int
    status: str
    category: str
    unit: str
    region: str | None
    village_code: str | None
    received_at: datetime
    deadline_at: datetime
    overdue: bool


@api_router.post(
    "/reports",
    response_model=ReportTaken,
    status_code=201,
    responses={403: {"model": Problem}, 422: {"model": Problem}},
    summary="Forward a report",
)
def post_report(request: Request, body: ReportIn, user: Operator) -> ReportTaken:
    """Take a report from another agency (operator role or above): classified, located, routed and audited.

    The same ``reference`` from the same user is taken once.
    """
    from ews.center.reports import ReportError, intake_report

    if body.village_code is not None and not user.sees(body.village_code):
        raise HTTPException(403, f"village {body.village_code} is not in your regions")
    try:
        result = intake_report(
            store_of(request), source="agency", source_ref=f"{user.username}:{body.reference}", body=body.text,
            at=now_of(request), region=body.region, language=body.language,
            reporter_label=body.reporter or user.username, latitude=body.latitude, longitude=body.longitude,
            village_code=body.village_code, intake=getattr(request.app.state, "reports", None), actor=user.username,
            role=user.role,
        )  # fmt: skip
    except (ReportError, StoreError) as exc:
        raise HTTPException(422, str(exc)) from None
    return ReportTaken(
        report_id=result.report_id, status=result.status, category=str(result.routing.category.value),
        unit=result.unit, deadline_at=result.deadline_at, duplicate_of=result.duplicate_of,
        village_code=result.village_code, answer=result.answer,
    )  # fmt: skip


@api_router.post(
    "/reports/{report_id}/status",
    response_model=ReportOut,
    responses={403: {"model": Problem}, 404: {"model": Problem}, 409: {"model": Problem}},
    summary="Move a report on",
)
def post_report_status(
    request: Request,
    report_id: Annotated[int, Path(ge=1, le=_MAX_ID)],
    body: ReportStatusIn,
    user: Operator,
) -> ReportOut:
    """Move a report in the user's regions forward (operator or above); its reporter is told once; audited."""
    from ews.center.reports import ReportError, set_report_status

    store, now = store_of(request), now_of(request)
    try:
        found = store.report(report_id, now=now)
    except StoreError:
        found = None
    if found is None or not (user.sees(found.village_code) or user.sees(found.region)):
        raise HTTPException(404, f"there is no report {report_id} in your regions")
    try:
        done = set_report_status(store, report_id, body.status, actor=user.username, role=user.role, note=body.note,
                                 at=now, intake=getattr(request.app.state, "reports", None))  # fmt: skip
    except ReportError as exc:
        raise HTTPException(409, str(exc)) from None
    return ReportOut(
        id=done.id, status=done.status, category=done.category, unit=done.unit, region=done.region,
        village_code=done.village_code, received_at=done.received_at, deadline_at=done.deadline_at,
        overdue=done.overdue,
    )  # fmt: skip


# -- Tagana mobilisations ---------------------------------------------------------------------------------------

MobilisationStatus = Literal["open", "acknowledged", "mobilised", "stood-down"]


class MobilisationEventOut(BaseModel):
    """One recorded step of a mobilisation: who was paged when, through which channel, delivered or not; acks.

    ``who`` is a paged contact's name and role, a responder (a user name or a coordinator's pseudonymous id) or
    ``ews``; never a number.
    """

    at: datetime
    kind: str
    round: int
    step: int | None
    who: str
    channel: str | None
    delivery: Literal["queued", "sent", "delivered", "failed"] | None
    detail: str


class MobilisationOut(BaseModel):
    """A Tagana mobilisation (one unit called out for one warning thread); times in UTC."""

    id: int
    region: str
    unit_id: str
    unit_name: str
    thread_id: str
    status: MobilisationStatus
    escalated: bool
    level: Literal["none", "Waspada", "Siaga", "Awas"]
    level_value: int = Field(ge=0, le=3)
    villages: list[str]
    round: int
    acks: int
    quorum: int
    opened_at: datetime
    acknowledged_at: datetime | None
    mobilised_at: datetime | None
    ended_at: datetime | None
    next_page_at: datetime | None
    events: list[MobilisationEventOut] | None = Field(default=None, description="with ?events=true")


class AckOut(BaseModel):
    """What an acknowledgement did: the mobilisation's status and this round's acknowledgements."""

    mobilisation_id: int
    unit_id: str
    status: MobilisationStatus
    acks: int
    quorum: int
    duplicate: bool = Field(description="this user had acknowledged this round already: nothing changed")


def _mobilisation_out(record: Any, events: list[Any] | None) -> MobilisationOut:
    from ews.types import Level

    return MobilisationOut(
        id=record.id, region=record.region, unit_id=record.unit_id, unit_name=record.unit_name,
        thread_id=record.thread_id, status=record.status, escalated=record.escalated,
        level=Level(int(record.level)).label, level_value=int(record.level),  # type: ignore[arg-type]
        villages=list(record.villages), round=record.round, acks=record.acks, quorum=record.quorum,
        opened_at=record.opened_at, acknowledged_at=record.acknowledged_at, mobilised_at=record.mobilised_at,
        ended_at=record.ended_at, next_page_at=record.next_page_at,
        events=None if events is None else [
            MobilisationEventOut(
                at=e.at, kind=e.kind, round=e.round, step=e.step,
                who=(e.target if e.kind == "page" else e.actor) or e.recipient_id or "ews",
                channel=e.channel, delivery=e.delivery, detail=e.detail,
            )
            for e in events
        ],
    )  # fmt: skip


@api_router.get("/mobilisations", response_model=list[MobilisationOut], summary="Tagana mobilisations")
def mobilisations(
    request: Request,
    user: Viewer,
    status: Annotated[list[MobilisationStatus] | None, Query(description="only these statuses")] = None,
    region: Annotated[
        str | None, Query(max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$", description="one region id (default: all)")
    ] = None,
    events: Annotated[bool, Query(description="each with its recorded steps")] = False,
) -> list[MobilisationOut]:
    """The mobilisations in the user's regions, the newest first (``next_page_at``: when the next page is due)."""
    from ews.web.views import sees_mobilisation

    store = store_of(request)
    records = [
        r
        for r in store.mobilisations(list(user.regions), statuses=status, now=now_of(request))
        if sees_mobilisation(user, r) and (region is None or r.region == region)
    ]
    every = store.events_of([r.id for r in records]) if events else {}
    return [_mobilisation_out(r, every.get(r.id, []) if events else None) for r in records]


@api_router.post(
    "/mobilisations/{mobilisation_id}/ack",
    response_model=AckOut,
    responses={403: {"model": Problem}, 404: {"model": Problem}, 409: {"model": Problem}},
    summary="Acknowledge a mobilisation for its unit",
)
def ack_mobilisation(
    request: Request,
    mobilisation_id: Annotated[int, Path(ge=1, le=_MAX_ID)],
    user: Operator,
) -> AckOut:
    """Acknowledge a live mobilisation in the user's regions for its unit, in the user's name (operator or above).

    Counted once per user and round; at the quorum the unit is mobilised. Audited.
    """
    from ews.web.views import acknowledge_mobilisation

    try:
        result = acknowledge_mobilisation(store_of(request), mobilisation_id, user, at=now_of(request))
    except LookupError:
        raise HTTPException(404, f"there is no mobilisation {mobilisation_id} in your regions") from None
    except (StoreError, ValueError) as exc:
        raise HTTPException(409, str(exc)) from None
    if not result.acknowledged:
        raise HTTPException(409, f"mobilisation {mobilisation_id} is no longer open to acknowledge")
    mid, status, acks, quorum = result.outcomes[0]
    return AckOut(mobilisation_id=mid, unit_id=result.unit_id, status=status, acks=acks, quorum=quorum,
                  duplicate=result.duplicate)  # fmt: skip

"""What the dashboard shows, assembled from the store and the regions' files, scoped to what a user sees.

:class:`DashboardRegions` holds the regions ``ews serve`` serves (id -> :class:`~ews.config.RegionConfig`) and,
built once per region on first use, their village geometry as small GeoJSON (simplified to 1/2000 of the
region's extent, coordinates rounded to 5 decimals, about 1 m). Levels and warning areas change every run and
are served apart from it (:func:`village_levels`, :func:`warning_areas`), so a refresh never resends geometry.

A user sees a region when they see one of its kab/kota (:meth:`ews.web.auth.User.sees`), and inside it only the
villages, mobilisations and reports of the codes they see.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

from ews.config import RegionConfig, open_region
from ews.errors import ConfigError, EwsError, StoreError
from ews.latency import summarise
from ews.store.dashboard import DeliveryCounts
from ews.store.repository import Store
from ews.types import Level
from ews.web.auth import User

if TYPE_CHECKING:
    from ews.center.reports import IntakeResult, ReportIntake

SIMPLIFY_DIVISOR = 2000.0  # as the risk map: 1/2000 of the region's extent
DECIMALS = 5  # ~1 m at the equator
STALE_AFTER = timedelta(minutes=30)  # a source not heard from for this long is shown as stale
LEVEL_COLOURS: Mapping[int, str] = {0: "#d9d9d9", 1: "#f7d038", 2: "#f28c28", 3: "#d7301f"}
"""Map fill per level: none grey (drawn translucent), Waspada yellow, Siaga orange, Awas red (the risk map's)."""


def _round(geometry: BaseGeometry) -> BaseGeometry:
    return shapely.transform(geometry, lambda xy: np.round(xy, DECIMALS))


def _geojson_geometry(geometry: BaseGeometry, tolerance: float) -> dict[str, Any] | None:
    simple = geometry.simplify(tolerance, preserve_topology=True)
    if simple.is_empty:  # a sliver simplified away: keep it drawable
        simple = geometry
    out: dict[str, Any] = mapping(_round(simple))
    return out


@dataclass(frozen=True)
class RegionMap:
    """A region's villages for the map: codes, names and the simplified GeoJSON (bytes, built once)."""

    region: str
    name: str
    codes: tuple[str, ...]
    names: Mapping[str, str]
    kabkota: frozenset[str]
    bounds: tuple[float, float, float, float]  # west, south, east, north (degrees)
    geojson: bytes
    etag: str

    def visible_codes(self, user: User) -> list[str]:
        """The village codes of the region ``user`` sees (all of them when their regions name this one)."""
        if user.sees(self.region):
            return list(self.codes)
        return [c for c in self.codes if user.sees(c)]


def region_map(config: RegionConfig) -> RegionMap:
    """Read a region's boundaries and build its :class:`RegionMap`.

    Raises
    ------
    BoundaryError
        The boundary file cannot be used (see :func:`ews.ingest.boundaries.read_boundaries`).
    """
    from ews.ingest.boundaries import read_boundaries

    b = config.boundaries
    villages = read_boundaries(b.path, id_field=b.id_field, name_field=b.name_field, layer=b.layer)
    west, south, east, north = (float(v) for v in villages.total_bounds)
    tolerance = max(east - west, north - south) / SIMPLIFY_DIVISOR
    features = [
        {
            "type": "Feature",
            "properties": {"code": str(code), "name": str(name)},
            "geometry": _geojson_geometry(geometry, tolerance),
        }
        for code, name, geometry in zip(villages["code"], villages["name"], villages.geometry, strict=True)
    ]
    body = json.dumps({"type": "FeatureCollection", "features": features}, separators=(",", ":")).encode()
    codes = tuple(str(c) for c in villages["code"])
    return RegionMap(
        region=config.id,
        name=config.name,
        codes=codes,
        names={str(c): str(n) for c, n in zip(villages["code"], villages["name"], strict=True)},
        kabkota=frozenset(c[:5] for c in codes),
        bounds=(round(west, DECIMALS), round(south, DECIMALS), round(east, DECIMALS), round(north, DECIMALS)),
        geojson=body,
        etag='"' + hashlib.sha256(body).hexdigest()[:32] + '"',
    )


@dataclass
class DashboardRegions:
    """The regions a server serves: id -> config, each region's :class:`RegionMap` built once on first use."""

    configs: Mapping[str, RegionConfig]
    _maps: dict[str, RegionMap] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_files(cls, paths: Iterable[str | Path], env: Mapping[str, str] | None = None) -> DashboardRegions:
        """Open region files (``regions/x.yaml``, the demo's ``region/demo.yaml``).

        Raises
        ------
        ConfigError
            A file is invalid, or two files have the same region id.
        """
        configs: dict[str, RegionConfig] = {}
        for path in paths:
            config = open_region(Path(path), os.environ if env is None else env)
            if config.id in configs:
                raise ConfigError(f"{path}: region id {config.id!r} is given twice (--region-file)")
            configs[config.id] = config
        return cls(configs)

    def map(self, region: str) -> RegionMap:
        """The region's map (built on first call; later calls return the same object).

        Raises
        ------
        KeyError
            The server does not serve this region.
        """
        found = self._maps.get(region)
        if found is not None:
            return found
        config = self.configs[region]
        with self._lock:
            if region not in self._maps:
                self._maps[region] = region_map(config)
            return self._maps[region]

    def visible(self, user: User) -> list[str]:
        """The ids of the regions ``user`` sees (one of their kab/kota at least), in id order."""
        return [r for r in sorted(self.configs) if user.sees(r) or any(user.sees(k) for k in self.map(r).kabkota)]


# -- levels and warning areas (refreshed, no village geometry) ------------------------------------------------


def village_levels(store: Store, region: RegionMap, user: User) -> dict[str, Any]:
    """``{"levels": {code: level}, "areas": key}``: the highest active level per visible village.

    ``areas`` changes when the set of active warnings does: the page then fetches :func:`warning_areas` again.
    """
    visible = set(region.visible_codes(user))
    levels: dict[str, int] = {}
    threads: set[str] = set()
    for s in store.active_alerts(region.region):
        if s.village_code in visible:
            levels[s.village_code] = max(levels.get(s.village_code, 0), int(s.level))
            threads.add(s.thread_id)
    key = hashlib.sha256("\n".join(sorted(threads)).encode()).hexdigest()[:16]
    return {"region": region.region, "levels": levels, "areas": key, "colours": dict(LEVEL_COLOURS)}


def warning_areas(store: Store, region: RegionMap, user: User) -> dict[str, Any]:
    """The active warnings' areas over the user's villages as GeoJSON (simplified, rounded)."""
    visible = set(region.visible_codes(user))
    level: dict[str, int] = {}
    for s in store.active_alerts(region.region):
        if s.village_code in visible:
            level[s.thread_id] = max(level.get(s.thread_id, 0), int(s.level))
    west, south, east, north = region.bounds
    tolerance = max(east - west, north - south) / SIMPLIFY_DIVISOR
    features = [
        {
            "type": "Feature",
            "properties": {
                "thread": h.thread_id,
                "identifier": h.identifier,
                "event": h.event,
                "level": level[h.thread_id],
                "expires": h.expires.isoformat() if h.expires else None,
            },
            "geometry": _geojson_geometry(h.geometry, tolerance),
        }
        for h in store.thread_heads(level)
        if not h.geometry.is_empty
    ]
    return {"type": "FeatureCollection", "features": features}


# -- overview and warnings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunLine:
    """The newest finished run of one source of a region."""

    region: str
    source: str
    status: str
    finished_at: datetime | None
    problems: tuple[str, ...]
    stale: bool

    @property
    def degraded(self) -> bool:
        """Not a clean run, or too old to trust."""
        return self.status != "ok" or self.stale


def latest_runs(store: Store, regions: Sequence[str], now: datetime) -> list[RunLine]:
    """The newest run per source of ``regions``, problems as text (never a phone number: the store has none)."""
    out = []
    for r in store.latest_runs():
        if r["region"] not in regions:
            continue
        problems = tuple(
            f"{p.get('source', '')}: {p.get('message', '')}" if isinstance(p, Mapping) else str(p)
            for p in (r["problems"] or ())
        )
        finished = r["finished_at"]
        stale = finished is None or now - finished > STALE_AFTER
        out.append(RunLine(r["region"], r["source"], r["status"], finished, problems, stale))
    return out


@dataclass(frozen=True)
class StageLatency:
    """One stage of a warning's messages: when it first happened and the delay from the source's ``<sent>``."""

    stage: str
    first: datetime | None
    median_s: float | None
    p90_s: float | None
    worst_s: float | None


@dataclass(frozen=True)
class WarningView:
    """One active warning thread in a region: its newest warning, villages per level, timeline and deliveries."""

    region: str
    thread_id: str
    identifier: str
    event: str
    sent: datetime
    expires: datetime | None
    level: Level
    villages: Mapping[int, int]  # level -> villages at it
    timeline: tuple[StageLatency, ...]
    deliveries: DeliveryCounts


STAGES = ("seen", "decided", "queued", "handed", "accepted", "delivered")


def _timeline(rows: Sequence[Mapping[str, Any]]) -> tuple[StageLatency, ...]:
    summary = summarise(rows)
    out = []
    for stage in STAGES:
        times = [r[stage] for r in rows if r.get(stage) is not None]
        s = summary.get(stage)
        out.append(
            StageLatency(
                stage,
                min(times) if times else None,
                s["median_s"] if s else None,
                s["p90_s"] if s else None,
                s["worst_s"] if s else None,
            )
        )
    return tuple(out)


def active_warnings(store: Store, regions: DashboardRegions, visible: Sequence[str], user: User) -> list[WarningView]:
    """The active warning threads over the user's villages, highest level first, each with its timeline."""
    out: list[WarningView] = []
    for region in visible:
        codes = set(regions.map(region).visible_codes(user))
        per_thread: dict[str, dict[int, int]] = {}
        for s in store.active_alerts(region):
            if s.village_code in codes:
                counts = per_thread.setdefault(s.thread_id, {})
                counts[int(s.level)] = counts.get(int(s.level), 0) + 1
        if not per_thread:
            continue
        deliveries = store.delivery_counts(region, per_thread)
        for head in store.thread_heads(per_thread):
            counts = per_thread[head.thread_id]
            out.append(
                WarningView(
                    region=region,
                    thread_id=head.thread_id,
                    identifier=head.identifier,
                    event=head.event,
                    sent=head.sent,
                    expires=head.expires,
                    level=Level(max(counts)),
                    villages=dict(sorted(counts.items(), reverse=True)),
                    timeline=_timeline(store.message_timelines(region, head.thread_id, grouped=True)),
                    deliveries=deliveries.get(head.thread_id, DeliveryCounts()),
                )
            )
    return sorted(out, key=lambda w: (-int(w.level), w.sent), reverse=False)


@dataclass(frozen=True)
class PendingView:
    """The versions of one thread waiting for review in the villages a user sees."""

    region: str
    thread_id: str
    version_ids: tuple[int, ...]
    villages: int
    level: Level
    since: datetime
    exercise: bool
    reasons: tuple[str, ...]


def _pending(store: Store, regions: DashboardRegions, region: str, user: User) -> dict[str, list[Any]]:
    codes = set(regions.map(region).visible_codes(user))
    by_thread: dict[str, list[Any]] = {}
    for v in store.pending_versions(region):
        if v.village_code in codes:
            by_thread.setdefault(v.thread_id, []).append(v)
    return by_thread


def pending_reviews(store: Store, regions: DashboardRegions, visible: Sequence[str], user: User) -> list[PendingView]:
    """What waits for review in the villages the user sees, by thread, oldest first."""
    out = []
    for region in visible:
        for thread, versions in _pending(store, regions, region, user).items():
            out.append(
                PendingView(
                    region=region,
                    thread_id=thread,
                    version_ids=tuple(v.id for v in versions),
                    villages=len({v.village_code for v in versions}),
                    level=max(v.level for v in versions),
                    since=min(v.created_at for v in versions),
                    exercise=any(v.exercise for v in versions),
                    reasons=tuple(sorted({v.reason for v in versions if v.reason})),
                )
            )
    return sorted(out, key=lambda p: p.since)


def decide_review(
    store: Store,
    regions: DashboardRegions,
    region: str,
    thread: str,
    decision: str,
    user: User,
    *,
    at: datetime,
) -> tuple[list[Any], int]:
    """Approve or reject the pending versions of ``thread`` in the villages ``user`` sees, as ``ews alerts approve``.

    Approved versions are queued at once (:func:`ews.pipeline.decide_review`); ``ews send`` or the dispatch DAG
    delivers them. The decision is audited. Returns the versions decided and the messages queued.

    Raises
    ------
    StoreError
        Nothing of ``thread`` is pending in the user's villages (decided already, or not theirs).
    """
    from ews.pipeline import decide_review as decide

    versions = _pending(store, regions, region, user).get(thread, [])
    if not versions:
        raise StoreError(f"nothing of {thread} waits for review in your villages of {region} (decided already?)")
    status = "approved" if decision == "approve" else "rejected"
    ids = [v.id for v in versions]
    decided, queued = decide(store, regions.configs[region], status, user.username, ids=ids)
    kabkota = sorted({v.village_code[:5] for v in decided})
    store.record_audit(
        user.username, user.role, f"review.{decision}", f"thread:{thread}",
        region=kabkota[0] if len(kabkota) == 1 else regions.configs[region].province_code,
        detail={"region": region, "versions": [v.id for v in decided], "queued": queued}, at=at,
    )  # fmt: skip
    return decided, queued


def duration(seconds: float | None) -> str:
    """A delay in words for a table cell (``48 s``, ``18.8 min``, ``2.1 h``; ``–`` for none)."""
    if seconds is None:
        return "–"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


# -- reports ------------------------------------------------------------------------------------------------

REPORT_FLOW = ("received", "routed", "in-progress", "resolved")


@dataclass
class ReportView:
    """A report row of the queue (``text`` is redacted by the page before it is shown)."""

    id: int
    region: str | None
    received_at: datetime
    text: str
    category: str
    unit: str
    village: str
    deadline_at: datetime
    status: str
    overdue: bool
    next_statuses: tuple[str, ...]


def report_queue(
    store: Store, regions: DashboardRegions, visible: Sequence[str], user: User, now: datetime, limit: int = 200
) -> list[ReportView]:
    """The user's reports: open ones first, overdue (earliest deadline) first, then the resolved."""
    out = []
    for r in store.reports(regions=list(user.regions), limit=limit, now=now, include_duplicates=False):
        name = ""
        if r.village_code and r.region is not None and r.region in visible:
            name = regions.map(r.region).names.get(r.village_code, "")
        village = f"{name} ({r.village_code})" if name else (r.village_code or "–")
        after = REPORT_FLOW.index(r.status) + 1 if r.status in REPORT_FLOW else len(REPORT_FLOW)
        out.append(
            ReportView(
                id=r.id, region=r.region, received_at=r.received_at, text=r.body, category=r.category,
                unit=r.unit, village=village, deadline_at=r.deadline_at, status=r.status, overdue=r.overdue,
                next_statuses=tuple(s for s in REPORT_FLOW[after:] if s != "received"),
            )
        )  # fmt: skip
    return out


def report_counts(
    store: Store, regions: DashboardRegions, visible: Sequence[str], user: User, now: datetime
) -> dict[str, int]:
    """The user's reports per status, with ``open`` (not resolved) and ``overdue``."""
    counts = store.report_counts(list(user.regions), now=now)
    counts["open"] = sum(counts.get(s, 0) for s in REPORT_FLOW if s != "resolved")
    return counts


def set_status(
    store: Store,
    report_id: int,
    status: str,
    note: str,
    user: User,
    *,
    at: datetime,
    intake: Any = None,
) -> None:
    """Move a report the user sees on to ``status`` (:func:`ews.center.reports.set_report_status`, which audits).

    Raises
    ------
    StoreError
        No such report among the user's (the same words for one that exists elsewhere: nothing leaks).
    ReportError
        A move backwards, an unknown status, a repeat joined to another report.
    """
    from ews.center.reports import set_report_status

    found = store.report(report_id, now=at)
    if not (user.sees(found.village_code) or user.sees(found.region)):
        raise StoreError(f"report {report_id}: no such report among yours")
    set_report_status(
        store, report_id, status, actor=user.username, role=user.role, note=note.strip()[:500], at=at, intake=intake
    )


# -- a report typed in by an operator --------------------------------------------------------------------------

FORM_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")
"""The operator form's one-time token (:func:`ews.web.auth.new_token`): a double submit is stored once."""
MAX_REPORT_TEXT = 2000
MAX_REPORTER_LABEL = 120
_CODE = re.compile(r"\d{2}\.\d{2}\.\d{2}(?:\.\d{4})?")  # a kecamatan or village code


class ReportFormError(EwsError, ValueError):
    """What is wrong with an operator's report, per field: ``{field: (i18n key, fields of its message)}``."""

    def __init__(self, problems: Mapping[str, tuple[str, Mapping[str, object]]]) -> None:
        super().__init__("; ".join(f"{name}: {key}" for name, (key, _) in problems.items()))
        self.problems = dict(problems)


def form_village(region: RegionMap, user: User, given: str) -> tuple[str | None, tuple[str, dict[str, object]] | None]:
    """The village (or kecamatan) code an operator typed (a code, or a village name unique among theirs).

    Returns the code (``None`` when nothing was typed) and the problem with it, if any (an i18n key and its fields).
    """
    text = " ".join(given.split())
    if not text:
        return None, None
    visible = region.visible_codes(user)
    if _CODE.fullmatch(text):
        known = text in region.names or any(c.startswith(text + ".") for c in region.codes)
        if not known:
            return None, ("reports.form.village_unknown", {"village": text, "region": region.name})
        if not (user.sees(region.region) or user.sees(text)):
            return None, ("reports.form.village_not_yours", {"village": text})
        return text, None
    matches = sorted(c for c in visible if region.names.get(c, "").casefold() == text.casefold())
    if len(matches) == 1:
        return matches[0], None
    if matches:
        return None, ("reports.form.village_ambiguous", {"village": text, "codes": ", ".join(matches[:8])})
    return None, ("reports.form.village_unknown", {"village": text[:64], "region": region.name})


def take_report(
    store: Store,
    regions: DashboardRegions,
    user: User,
    *,
    token: str,
    region: str,
    village: str,
    text: str,
    label: str,
    phone: str,
    at: datetime,
    intake: ReportIntake | None = None,
) -> IntakeResult:
    """Take a report an operator typed in (:func:`ews.center.reports.intake_report`, which routes and audits it).

    ``token`` is the form's (one report per token and user); ``phone`` the reporter's number, optional: they are
    then told each status by SMS. Returns what the intake did.

    Raises
    ------
    ReportFormError
        Every problem found, by field; nothing is stored then.
    """
    from ews.center.reports import ReportError, intake_report
    from ews.contacts import normalize_phone

    problems: dict[str, tuple[str, Mapping[str, object]]] = {}
    if not FORM_TOKEN.fullmatch(token):
        problems["token"] = ("reports.form.bad_token", {})
    body = text.strip()
    if not body:
        problems["text"] = ("reports.form.text_empty", {})
    elif len(body) > MAX_REPORT_TEXT:
        problems["text"] = ("reports.form.text_long", {"n": MAX_REPORT_TEXT})
    reporter_label = " ".join(label.split())
    if len(reporter_label) > MAX_REPORTER_LABEL:
        problems["label"] = ("reports.form.label_long", {"n": MAX_REPORTER_LABEL})
    number = phone.strip()
    if number:
        try:
            normalize_phone(number)
        except ValueError:
            problems["phone"] = ("reports.form.phone_bad", {})
    code = None
    if region not in regions.visible(user):
        problems["region"] = ("reports.form.region_unknown", {})
    else:
        found = regions.map(region)
        code, problem = form_village(found, user, village)
        if problem is not None:
            problems["village"] = problem
        elif code is None and not user.sees(region):  # unplaced, it would be out of the user's own queue
            problems["village"] = ("reports.form.village_needed", {"region": found.name})
    if problems:
        raise ReportFormError(problems)
    try:
        return intake_report(
            store, source="operator", source_ref=f"{user.username}:{token}", body=body, at=at, region=region,
            village_code=code, reporter_phone=number or None, channel="sms" if number else None,
            reporter_label=reporter_label, intake=intake, actor=user.username, role=user.role,
        )  # fmt: skip
    except ReportError as exc:
        field_name = "village" if "village" in str(exc) else "phone" if "number" in str(exc) else "text"
        raise ReportFormError({field_name: ("reports.form.refused", {"why": str(exc)})}) from None


# -- the Tagana board --------------------------------------------------------------------------------------------

BOARD_COLUMNS = ("open", "escalated", "acknowledged", "mobilised", "stood-down")
"""The board's columns: open (step 1 only), escalated (open, a later step fired), acknowledged, mobilised, and
the mobilisations stood down within :data:`RECENT_STAND_DOWN`."""
RECENT_STAND_DOWN = timedelta(hours=24)


@dataclass(frozen=True)
class MobilisationEventView:
    """One recorded step of a mobilisation as the board shows it: never a number, a page's delivery from its row.

    ``who`` is the paged contact's name and role (a page), the responder (an acknowledgement: an operator's user
    name or a coordinator's pseudonymous id) or ``ews``; ``via`` the channel.
    """

    at: datetime
    kind: str
    round: int
    step: int | None
    who: str
    via: str | None
    delivery: str | None
    detail: str


@dataclass(frozen=True)
class MobilisationView:
    """One card of the Tagana board (:class:`~ews.store.mobilisations.MobilisationRecord` and its events)."""

    id: int
    region: str
    unit_id: str
    unit_name: str
    thread_id: str
    status: str
    column: str
    level: int
    villages: int
    round: int
    acks: int
    quorum: int
    opened_at: datetime
    acknowledged_at: datetime | None
    mobilised_at: datetime | None
    ended_at: datetime | None
    next_page_at: datetime | None
    events: tuple[MobilisationEventView, ...]

    @property
    def acknowledgeable(self) -> bool:
        """Whether an operator can still acknowledge it on the dashboard (live, not yet mobilised)."""
        return self.status in ("open", "acknowledged")


@dataclass(frozen=True)
class BoardColumn:
    """The cards of one column of the board."""

    key: str
    items: tuple[MobilisationView, ...]


@dataclass(frozen=True)
class Board:
    """The Tagana board of a user: the columns of :data:`BOARD_COLUMNS`."""

    columns: tuple[BoardColumn, ...]

    @property
    def total(self) -> int:
        """Cards on the board."""
        return sum(len(c.items) for c in self.columns)

    @property
    def open_count(self) -> int:
        """Mobilisations nobody acknowledged yet (open or escalated)."""
        return sum(len(c.items) for c in self.columns if c.key in ("open", "escalated"))

    def count(self, key: str) -> int:
        """Cards in column ``key``."""
        return next((len(c.items) for c in self.columns if c.key == key), 0)


def sees_mobilisation(user: User, record: Any) -> bool:
    """Whether ``user`` sees a mobilisation: its region (by id) or one of its villages."""
    return bool(user.sees(record.region) or any(user.sees(v) for v in record.villages))


def _column(record: Any) -> str:
    if record.status == "open" and record.escalated:
        return "escalated"
    return str(record.status)


def _event_view(event: Any, redact: Any) -> MobilisationEventView:
    if event.kind == "page":
        who = event.target or event.recipient_id or "?"
    else:
        who = event.actor or event.recipient_id or "ews"
    return MobilisationEventView(
        at=event.at, kind=event.kind, round=event.round, step=event.step, who=redact(who), via=event.channel,
        delivery=event.delivery, detail=redact(event.detail or ""),
    )  # fmt: skip


def mobilisation_view(store: Store, record: Any, user: User, events_of: Any = None) -> MobilisationView:
    """A board card of ``record`` with its events (names and roles only; any digits like a number masked).

    ``events_of``: the events of many mobilisations read at once (:meth:`Store.events_of`); default: read its own.
    """
    from ews.web.dashboard import redact_numbers

    def redact(text: str) -> str:
        return redact_numbers(text, masked=user.at_least("operator"))

    found = events_of.get(record.id, []) if events_of is not None else store.mobilisation_events(record.id)
    events = tuple(_event_view(e, redact) for e in found)
    return MobilisationView(
        id=record.id, region=record.region, unit_id=record.unit_id, unit_name=redact(record.unit_name),
        thread_id=record.thread_id, status=record.status, column=_column(record), level=int(record.level),
        villages=len(record.villages), round=record.round, acks=record.acks, quorum=record.quorum,
        opened_at=record.opened_at, acknowledged_at=record.acknowledged_at, mobilised_at=record.mobilised_at,
        ended_at=record.ended_at, next_page_at=record.next_page_at, events=events,
    )  # fmt: skip


def board(store: Store, user: User, now: datetime, *, events: bool = True) -> Board:
    """The user's Tagana board: live mobilisations by column (highest level, then oldest first).

    The ones stood down within :data:`RECENT_STAND_DOWN` too. One query for the mobilisations, one for all their
    events (``events=False``: none, for the overview's counts).
    """
    records = [
        r
        for r in store.mobilisations(list(user.regions), now=now)
        if sees_mobilisation(user, r)
        and (r.status != "stood-down" or (r.ended_at is not None and now - r.ended_at <= RECENT_STAND_DOWN))
    ]
    if events:
        every = store.events_of([r.id for r in records])
        cards = [mobilisation_view(store, r, user, every) for r in records]
    else:
        cards = [
            MobilisationView(
                r.id,
                r.region,
                r.unit_id,
                r.unit_name,
                r.thread_id,
                r.status,
                _column(r),
                int(r.level),
                len(r.villages),
                r.round,
                r.acks,
                r.quorum,
                r.opened_at,
                r.acknowledged_at,
                r.mobilised_at,
                r.ended_at,
                r.next_page_at,
                (),
            )
            for r in records
        ]
    cards.sort(key=lambda c: (-c.level, c.opened_at, c.id))
    return Board(tuple(BoardColumn(k, tuple(c for c in cards if c.column == k)) for k in BOARD_COLUMNS))


def acknowledge_mobilisation(store: Store, mobilisation_id: int, user: User, *, at: datetime) -> Any:
    """Acknowledge a mobilisation ``user`` sees for its unit, from the dashboard, in the user's name.

    :func:`ews.center.mobilise.acknowledge` records the event and the audit entries. Returns its
    :class:`~ews.center.mobilise.AckResult`.

    Raises
    ------
    LookupError
        No such mobilisation among the user's (the same for one that exists elsewhere: nothing leaks).
    StoreError
        It stood down: there is nothing to acknowledge any more.
    """
    from ews.center.mobilise import acknowledge

    found = store.mobilisation(mobilisation_id)
    if found is None or not sees_mobilisation(user, found):
        raise LookupError(f"mobilisation {mobilisation_id}: no such mobilisation among yours")
    if found.status not in ("open", "acknowledged", "mobilised"):
        raise StoreError(f"mobilisation {mobilisation_id} stood down: there is nothing to acknowledge")
    return acknowledge(
        store,
        unit_id=found.unit_id,
        responder=user.username,
        via="dashboard",
        at=at,
        mobilisation_id=mobilisation_id,
        role=user.role,
    )

"""The reports aggregate: reports to the command center, their routing, status changes and reporters.

A report is stored once per ``(source, source_ref)`` (a replayed webhook is not a second report). Its status
only moves forward (``received -> routed -> in-progress -> resolved``); every move is a guarded UPDATE that
names the status it moves from, so two operators (or a retried request) never move it twice. A repeat of an
open report (``duplicate_of``) follows its status. Reporters' numbers (personal data) are in ``reporters``
only; a :class:`ReportRecord` never carries one.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, insert, or_, select, update

from ews.contacts import recipient_id
from ews.errors import StoreError
from ews.store.base import StoreBase, _chunks, _now
from ews.store.models import REPORT_STATUSES, Reporter, ReportEvent, ReportRow, Subscriber, VillageStateRow

CONFIDENCE_VALUES = {"high": 1.0, "low": 0.5, "unclassified": 0.0}
"""How a routing's confidence label is stored (``reports.confidence`` is a number)."""


def _confidence_label(value: float) -> str:
    return "high" if value >= 1.0 else "low" if value > 0.0 else "unclassified"


_SOURCE_WORDS = {"whatsapp": "WhatsApp", "sms": "SMS", "operator": "operator", "agency": "instansi"}


@dataclass(frozen=True)
class NewReport:
    """A report to store with :meth:`ReportRepository.add_report` (already routed and located)."""

    source: str
    source_ref: str
    region: str | None
    reporter_id: str | None
    reporter_label: str
    language: str
    body: str
    category: str
    unit: str
    matched: Sequence[str]
    confidence: str
    village_code: str | None
    located_by: str | None
    latitude: float | None
    longitude: float | None
    thread_id: str | None
    status: str
    duplicate_of: int | None
    dedup_key: str
    received_at: datetime
    deadline_at: datetime


@dataclass(frozen=True)
class ReportRecord:
    """One report as the dashboard, the API and the CLI show it: never a phone number.

    ``reporter`` says who reported in words (``warga (WhatsApp)``, an agency's name, ``operator``);
    ``reporter_id`` is the pseudonymous id of a resident reporter (``None`` for agency and operator reports
    without a number). ``overdue`` is as of the ``now`` the query was given. ``village_name`` is filled by
    callers that hold the region's gazetteer (:meth:`ews.center.reports.ReportIntake.named`).
    """

    id: int
    source: str
    region: str | None
    reporter: str
    reporter_label: str
    reporter_id: str | None
    language: str
    body: str
    category: str
    unit: str
    matched: tuple[str, ...]
    confidence: str
    village_code: str | None
    located_by: str | None
    thread_id: str | None
    status: str
    duplicate_of: int | None
    received_at: datetime
    deadline_at: datetime
    overdue: bool
    escalations: int
    escalated_at: datetime | None
    updated_at: datetime
    resolved_at: datetime | None
    village_name: str | None = None


@dataclass(frozen=True)
class ReportEventRecord:
    """One recorded change of a report (see :class:`ews.store.models.ReportEvent`)."""

    id: int
    report_id: int
    at: datetime
    kind: str
    actor: str
    note: str
    ledger_id: int | None


@dataclass(frozen=True)
class ReporterContact:
    """Where to answer a resident reporter (personal data: use it to send and nowhere else)."""

    reporter_id: str
    phone: str
    channel: str
    language: str


def _record(r: Any, now: datetime) -> ReportRecord:
    who = r.reporter_label or (
        f"warga ({_SOURCE_WORDS.get(r.source, r.source)})" if r.reporter_id else _SOURCE_WORDS.get(r.source, r.source)
    )
    return ReportRecord(
        id=r.id, source=r.source, region=r.region, reporter=who, reporter_label=r.reporter_label,
        reporter_id=r.reporter_id, language=r.language, body=r.body, category=r.category, unit=r.unit,
        matched=tuple(r.matched or ()), confidence=_confidence_label(r.confidence), village_code=r.village_code,
        located_by=r.located_by, thread_id=r.thread_id, status=r.status, duplicate_of=r.duplicate_of,
        received_at=r.received_at, deadline_at=r.deadline_at,
        overdue=r.status != "resolved" and r.duplicate_of is None and now >= r.deadline_at,
        escalations=r.escalations, escalated_at=r.escalated_at, updated_at=r.updated_at, resolved_at=r.resolved_at,
    )  # fmt: skip


def _in_regions(regions: Collection[str] | None) -> ColumnElement[bool] | None:
    """Reports of some regions: by region id, or by a Kemendagri code prefix of their village (``35.78``)."""
    if regions is None or "*" in regions:
        return None
    r = ReportRow
    wanted = sorted(set(regions))
    by_code = [or_(r.village_code == p, r.village_code.like(p + ".%")) for p in wanted]
    return or_(r.region.in_(wanted), *by_code) if wanted else r.id.is_(None)


class ReportRepository(StoreBase):
    """Mixed into :class:`ews.store.repository.Store`; see the module docstring."""

    # -- reporters ---------------------------------------------------------------------------------------

    def save_reporter(self, phone: str, channel: str, language: str, at: datetime) -> str:
        """Record (or refresh) a resident reporter; their pseudonymous id. The number is personal data."""
        rid = recipient_id(phone)
        stmt = self._insert(Reporter).values(
            reporter_id=rid, phone_e164=phone, channel=channel, language=language, first_seen=at, last_seen=at
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["reporter_id"],
            set_={"channel": channel, "language": language, "last_seen": at},
        )
        with self._statement(f"reporter {rid}") as connection:
            connection.execute(stmt)
        return rid

    def reporter_contacts(self, reporter_ids: Collection[str]) -> list[ReporterContact]:
        """The numbers to answer these reporters on (personal data), in id order."""
        out: list[ReporterContact] = []
        with self.engine.connect() as connection:
            for chunk in _chunks(sorted(set(reporter_ids))):
                stmt = select(Reporter).where(Reporter.reporter_id.in_(chunk)).order_by(Reporter.reporter_id)
                out.extend(
                    ReporterContact(r.reporter_id, r.phone_e164, r.channel, r.language)
                    for r in connection.execute(stmt)
                )
        return out

    def reporter_language(self, reporter_id: str) -> str | None:
        """The language a reporter was last answered in, if they reported before."""
        with self.engine.connect() as connection:
            found = connection.execute(select(Reporter.language).where(Reporter.reporter_id == reporter_id))
            return found.scalar_one_or_none()

    def subscription(self, phone: str) -> tuple[str | None, str | None]:
        """A resident's subscribed village (only when they subscribed to one village) and language.

        Opted-out subscriptions count too: the person still lives there and chose that language.
        """
        s = Subscriber
        with self.engine.connect() as connection:
            rows = connection.execute(select(s.village_code, s.language).where(s.phone_e164 == phone)).all()
        villages = {v for v, _ in rows}
        languages = {lang for _, lang in rows}
        return (
            next(iter(villages)) if len(villages) == 1 else None,
            next(iter(languages)) if len(languages) == 1 else None,
        )

    def active_thread_over(self, region: str | None, code: str) -> str | None:
        """The warning thread active over a village (or any village of a kecamatan): the highest level, latest."""
        v = VillageStateRow
        stmt = (
            select(v.thread_id)
            .where(v.active.is_(True), or_(v.village_code == code, v.village_code.like(code + ".%")))
            .order_by(v.level.desc(), v.warning_sent.desc(), v.thread_id)
            .limit(1)
        )
        if region is not None:
            stmt = stmt.where(v.region == region)
        with self.engine.connect() as connection:
            return connection.execute(stmt).scalar_one_or_none()

    # -- reports -----------------------------------------------------------------------------------------

    def add_report(self, new: NewReport, events: Sequence[tuple[str, str, str]] = ()) -> tuple[int, bool]:
        """Store a report and its first events (``(kind, actor, note)``) in one transaction.

        Returns ``(id, True)``, or ``(id, False)`` when this ``(source, source_ref)`` was stored before (a
        replay: nothing is added).
        """
        if new.status not in REPORT_STATUSES:
            raise StoreError(f"report {new.source}:{new.source_ref}: status {new.status!r} is unknown")
        values = {
            "source": new.source, "source_ref": new.source_ref, "region": new.region, "reporter_id": new.reporter_id,
            "reporter_label": new.reporter_label, "language": new.language, "body": new.body,
            "category": new.category, "unit": new.unit, "matched": list(new.matched),
            "confidence": CONFIDENCE_VALUES.get(new.confidence, 0.0), "village_code": new.village_code,
            "located_by": new.located_by, "latitude": new.latitude, "longitude": new.longitude,
            "thread_id": new.thread_id, "status": new.status, "duplicate_of": new.duplicate_of,
            "dedup_key": new.dedup_key, "received_at": new.received_at, "deadline_at": new.deadline_at,
            "escalations": 0, "updated_at": new.received_at,
        }  # fmt: skip
        stmt = (
            self._insert(ReportRow)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["source", "source_ref"])
            .returning(ReportRow.id)
        )
        with self._tx(f"report {new.source}:{new.source_ref}") as connection:
            created = connection.execute(stmt).scalar_one_or_none()
            if created is None:
                r = ReportRow
                found = connection.execute(
                    select(r.id).where(r.source == new.source, r.source_ref == new.source_ref)
                ).scalar_one()
                return int(found), False
            if events:
                connection.execute(
                    insert(ReportEvent),
                    [
                        {"report_id": created, "at": new.received_at, "kind": k, "actor": a, "note": n}
                        for k, a, n in events
                    ],
                )
            return int(created), True

    def report_by_ref(self, source: str, source_ref: str, *, now: datetime | None = None) -> ReportRecord | None:
        """The report stored under ``(source, source_ref)``, if any."""
        r = ReportRow
        with self.engine.connect() as connection:
            row = connection.execute(select(r).where(r.source == source, r.source_ref == source_ref)).one_or_none()
        return None if row is None else _record(row, now or _now())

    def open_report_like(
        self,
        *,
        region: str | None,
        category: str,
        reporter_id: str | None,
        village_code: str | None,
        since: datetime,
    ) -> ReportRecord | None:
        """The earliest open, original report of ``category`` since ``since`` from this reporter or place."""
        if reporter_id is None and village_code is None:
            return None
        r = ReportRow
        who = [c for c in (
            r.reporter_id == reporter_id if reporter_id is not None else None,
            r.village_code == village_code if village_code is not None else None,
        ) if c is not None]  # fmt: skip
        stmt = (
            select(r)
            .where(
                r.category == category,
                r.status != "resolved",
                r.duplicate_of.is_(None),
                r.received_at >= since,
                or_(*who),
            )
            .order_by(r.received_at, r.id)
            .limit(1)
        )
        stmt = stmt.where(r.region == region) if region is not None else stmt.where(r.region.is_(None))
        with self.engine.connect() as connection:
            row = connection.execute(stmt).one_or_none()
        return None if row is None else _record(row, since)

    def report(self, report_id: int, *, now: datetime | None = None) -> ReportRecord:
        """One report.

        Raises
        ------
        StoreError
            No report has this id.
        """
        with self.engine.connect() as connection:
            row = connection.execute(select(ReportRow).where(ReportRow.id == report_id)).one_or_none()
        if row is None:
            raise StoreError(f"report {report_id}: no such report; see ews reports list")
        return _record(row, now or _now())

    def reports(
        self,
        regions: Collection[str] | None = None,
        statuses: Collection[str] | None = None,
        limit: int = 200,
        *,
        now: datetime | None = None,
        include_duplicates: bool = True,
    ) -> list[ReportRecord]:
        """Reports for the queue: open ones first, the earliest deadline (so the overdue) first, then resolved.

        ``regions``: region ids or Kemendagri code prefixes (``35``, ``35.78``) of the report's village;
        ``["*"]`` or ``None``: all. A report not located to a village matches by its region id only.
        """
        r = ReportRow
        closed = case((r.status == "resolved", 1), else_=0)
        stmt = select(r).order_by(closed, r.deadline_at, r.id).limit(limit)
        where = _in_regions(regions)
        if where is not None:
            stmt = stmt.where(where)
        if statuses is not None:
            stmt = stmt.where(r.status.in_(sorted(set(statuses))))
        if not include_duplicates:
            stmt = stmt.where(r.duplicate_of.is_(None))
        when = now or _now()
        with self.engine.connect() as connection:
            return [_record(row, when) for row in connection.execute(stmt)]

    def report_events(self, report_id: int) -> list[ReportEventRecord]:
        """A report's events, oldest first."""
        e = ReportEvent
        stmt = select(e).where(e.report_id == report_id).order_by(e.at, e.id)
        with self.engine.connect() as connection:
            return [
                ReportEventRecord(x.id, x.report_id, x.at, x.kind, x.actor, x.note, x.ledger_id)
                for x in connection.execute(stmt)
            ]

    def report_counts(self, regions: Collection[str] | None = None, *, now: datetime | None = None) -> dict[str, int]:
        """Original reports per status, ``overdue`` (open past their deadline) and ``duplicates`` (joined ones)."""
        r = ReportRow
        when = now or _now()
        overdue = func.sum(case((and_(r.status != "resolved", r.deadline_at <= when), 1), else_=0))
        stmt = select(r.status, func.count(), overdue).where(r.duplicate_of.is_(None)).group_by(r.status)
        dup = select(func.count()).select_from(r).where(r.duplicate_of.is_not(None))
        where = _in_regions(regions)
        if where is not None:
            stmt, dup = stmt.where(where), dup.where(where)
        counts = dict.fromkeys(REPORT_STATUSES, 0)
        late = 0
        with self.engine.connect() as connection:
            for status, n, o in connection.execute(stmt):
                counts[status] = int(n)
                late += int(o or 0)
            duplicates = int(connection.execute(dup).scalar_one())
        return {**counts, "overdue": late, "duplicates": duplicates}

    # -- changes -----------------------------------------------------------------------------------------

    def move_report(
        self, report_id: int, before: str, after: str, *, at: datetime, actor: str, note: str = ""
    ) -> int | None:
        """Move a report (and the repeats joined to it) from ``before`` to ``after``; the new event's id.

        ``None`` when the report is no longer in ``before`` (someone moved it first): nothing changes.
        """
        if after not in REPORT_STATUSES:
            known = ", ".join(REPORT_STATUSES)
            raise StoreError(f"report {report_id}: status {after!r} is unknown; use one of {known}")
        r = ReportRow
        values: dict[str, Any] = {"status": after, "updated_at": at}
        if after == "resolved":
            values["resolved_at"] = at
        with self._tx(f"report {report_id} -> {after}") as connection:
            moved = connection.execute(update(r).where(r.id == report_id, r.status == before).values(**values)).rowcount
            if not moved:
                return None
            connection.execute(update(r).where(r.duplicate_of == report_id, r.status != "resolved").values(**values))
            event = connection.execute(
                insert(ReportEvent)
                .values(report_id=report_id, at=at, kind=after, actor=actor, note=note)
                .returning(ReportEvent.id)
            ).scalar_one()
        return int(event)

    def add_report_event(
        self, report_id: int, kind: str, *, at: datetime, actor: str, note: str = "", ledger_id: int | None = None
    ) -> int:
        """Record an event (a note, a duplicate joined) on a report; its id."""
        with self._statement(f"report {report_id} event {kind}") as connection:
            found = connection.execute(
                insert(ReportEvent)
                .values(report_id=report_id, at=at, kind=kind, actor=actor, note=note, ledger_id=ledger_id)
                .returning(ReportEvent.id)
            ).scalar_one()
        return int(found)

    def link_report_answer(self, event_id: int, ledger_id: int) -> None:
        """Name the ledger row of the answer an event told the reporter (set once, after it was queued)."""
        e = ReportEvent
        with self._statement(f"report event {event_id}") as connection:
            connection.execute(update(e).where(e.id == event_id, e.ledger_id.is_(None)).values(ledger_id=ledger_id))

    def report_reporters(self, report_id: int) -> list[str]:
        """The resident reporters of a report and of the repeats joined to it (pseudonymous ids, sorted)."""
        r = ReportRow
        stmt = select(r.reporter_id).where(
            or_(r.id == report_id, r.duplicate_of == report_id), r.reporter_id.is_not(None)
        )
        with self.engine.connect() as connection:
            return sorted({x for x in connection.execute(stmt).scalars() if x})

    def overdue_reports(self, now: datetime, limit: int = 500) -> list[ReportRecord]:
        """Open original reports whose deadline is at or before ``now``, the most overdue first."""
        r = ReportRow
        stmt = (
            select(r)
            .where(r.status != "resolved", r.duplicate_of.is_(None), r.deadline_at <= now)
            .order_by(r.deadline_at, r.id)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [_record(row, now) for row in connection.execute(stmt)]

    def escalate_report(
        self, report_id: int, deadline_was: datetime, deadline: datetime, *, at: datetime, note: str
    ) -> tuple[int, int] | None:
        """Count one escalation and push the deadline, if the report still has ``deadline_was`` and is open.

        Returns ``(escalations, event id)``, or ``None`` when another run escalated or someone resolved it.
        """
        r = ReportRow
        with self._tx(f"escalate report {report_id}") as connection:
            moved = connection.execute(
                update(r)
                .where(r.id == report_id, r.deadline_at == deadline_was, r.status != "resolved")
                .values(escalations=r.escalations + 1, deadline_at=deadline, escalated_at=at, updated_at=at)
            ).rowcount
            if not moved:
                return None
            count = connection.execute(select(r.escalations).where(r.id == report_id)).scalar_one()
            event = connection.execute(
                insert(ReportEvent)
                .values(report_id=report_id, at=at, kind="escalated", actor="ews", note=note)
                .returning(ReportEvent.id)
            ).scalar_one()
        return int(count), int(event)

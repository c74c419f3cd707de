"""The mobilisations aggregate: Tagana mobilisations, their frozen policies and every recorded step.

A mobilisation is one Tagana unit called out for one warning thread (:class:`~ews.store.models.MobilisationRow`);
its events (:class:`~ews.store.models.MobilisationEvent`) record who was paged, when, through which channel and
which ledger row carries the page (its delivery is read from there), and every acknowledgement. The rules of
when to page live in :mod:`ews.command.escalation`; :mod:`ews.center.mobilise` drives them through these queries.
Events name contacts by name and role and by pseudonymous id, never by number.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy.exc import DBAPIError

from ews.errors import StoreError
from ews.store.base import StoreBase, _chunks, _now
from ews.store.models import AlertVersion, LedgerEntry, MobilisationEvent, MobilisationRow

LIVE = ("open", "acknowledged", "mobilised")
"""Statuses of a mobilisation that has not stood down."""


@dataclass(frozen=True)
class MobilisationRecord:
    """One mobilisation as the board shows it (no personal data).

    ``acks`` counts the responders who acknowledged this round, ``escalated`` says a step after the first
    fired, ``next_page_at`` when the next page falls due (None when nothing will page). The policy fields
    (``policy``, ``acked_level``, ``round_started_at``, ``first_round``, ``fired``) feed
    :mod:`ews.command.escalation`.
    """

    id: int
    region: str
    unit_id: str
    unit_name: str
    thread_id: str
    status: str
    level: int
    villages: tuple[str, ...]
    round: int
    opened_at: datetime
    acknowledged_at: datetime | None
    mobilised_at: datetime | None
    ended_at: datetime | None
    acks: int
    quorum: int
    escalated: bool
    next_page_at: datetime | None
    policy: Mapping[str, Any] = field(default_factory=dict)
    acked_level: int | None = None
    round_started_at: datetime | None = None
    alert_version_id: int | None = None
    first_round: int = 1
    fired: frozenset[tuple[int, int]] = frozenset()
    responders: frozenset[str] = frozenset()  # who acknowledged this round (pseudonymous ids, user names)


@dataclass(frozen=True)
class MobilisationEventRecord:
    """One recorded step of a mobilisation; ``delivery`` is its page's ledger state (queued/sent/delivered/failed)."""

    id: int
    mobilisation_id: int
    at: datetime
    kind: str
    round: int
    step: int | None
    target: str | None
    recipient_id: str | None
    channel: str | None
    ledger_id: int | None
    actor: str | None
    detail: str
    delivery: str | None


@dataclass(frozen=True)
class NewMobilisation:
    """A mobilisation to open (see :meth:`MobilisationRepository.open_mobilisations`)."""

    region: str
    unit_id: str
    unit_name: str
    thread_id: str
    level: int
    villages: tuple[str, ...]
    policy: Mapping[str, Any]
    alert_version_id: int | None


@dataclass(frozen=True)
class NewMobilisationEvent:
    """An event to record; a page is recorded once per (mobilisation, round, step, recipient)."""

    mobilisation_id: int
    kind: str
    round: int = 1
    step: int | None = None
    target: str | None = None
    recipient_id: str | None = None
    channel: str | None = None
    ledger_id: int | None = None
    actor: str | None = "ews"
    detail: str = ""


@dataclass(frozen=True)
class NewPage:
    """An escalation page to queue (:meth:`MobilisationRepository.queue_pages`): one message for a thread's versions.

    ``address`` is the contact's number (or ``''``: the row is settled ``no-contact``), stored in the ledger row
    only.
    """

    version_ids: tuple[int, ...]
    recipient_id: str
    channel: str
    address: str
    body: str
    fallback_body: str | None
    topic: str


class _Rollback(Exception):  # noqa: N818 - a signal, not an error: leaves a transaction without committing
    pass


_ROWS = 200  # ledger or event rows per multi-row INSERT (13 columns: well under SQLite's 32,766 parameters)


def _delivery(status: str | None, provider_status: str | None) -> str | None:
    if status is None:
        return None
    if status in ("failed", "expired") or (provider_status or "").lower() in ("failed", "undelivered"):
        return "failed"
    if (provider_status or "").lower() in ("delivered", "read"):
        return "delivered"
    if status in ("sent", "dry-run"):
        return "sent"
    return "queued"


def _matches(region: str, villages: Sequence[str], regions: Collection[str] | None) -> bool:
    if regions is None or "*" in regions:
        return True
    return region in regions or any(v == p or v.startswith(p + ".") for p in regions for v in villages)


class MobilisationRepository(StoreBase):
    """Mixed into :class:`ews.store.repository.Store`; see the module docstring."""

    def open_mobilisations(self, new: Sequence[NewMobilisation], *, at: datetime) -> dict[tuple[str, str], int]:
        """Open mobilisations (status open, round 1 from ``at``) with an ``opened`` event each, in one transaction.

        Returns (unit, thread) -> id. One that exists already (another run opened it) is left as it is and its
        id returned.
        """
        if not new:
            return {}
        m = MobilisationRow
        rows = [
            {"region": n.region, "unit_id": n.unit_id, "unit_name": n.unit_name, "thread_id": n.thread_id,
             "status": "open", "level": n.level, "acked_level": None, "villages": list(n.villages),
             "policy": dict(n.policy), "round": 1, "round_started_at": at, "alert_version_id": n.alert_version_id,
             "opened_at": at, "updated_at": at}
            for n in new
        ]  # fmt: skip
        with self._tx("open Tagana mobilisations") as connection:
            stmt = self._insert(m).on_conflict_do_nothing(index_elements=["unit_id", "thread_id"])
            connection.execute(stmt, rows)
            ids: dict[tuple[str, str], int] = {}
            for chunk in _chunks(sorted({n.thread_id for n in new})):
                found = select(m.id, m.unit_id, m.thread_id).where(m.thread_id.in_(chunk))
                for mid, unit, thread in connection.execute(found):
                    ids[(unit, thread)] = int(mid)
            wanted = {(n.unit_id, n.thread_id): n for n in new}
            ids = {k: v for k, v in ids.items() if k in wanted}
            connection.execute(
                insert(MobilisationEvent),
                [
                    {"mobilisation_id": ids[k], "at": at, "kind": "opened", "round": 1, "actor": "ews",
                     "detail": f"level {n.level}, {len(n.villages)} village(s)"}
                    for k, n in wanted.items()
                ],
            )  # fmt: skip
        return ids

    def update_mobilisations(self, changes: Sequence[tuple[int, Mapping[str, Any]]], *, at: datetime) -> None:
        """Set columns of several mobilisations (id, {column: value}) in one transaction; ``updated_at`` too."""
        if not changes:
            return
        m = MobilisationRow
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for mid, values in changes:
            by_columns.setdefault(tuple(sorted(values)), []).append({"_id": mid, **values, "updated_at": at})
        with self._tx("update Tagana mobilisations") as connection:
            for columns, rows in by_columns.items():
                stmt = (
                    update(m)
                    .where(m.id == bindparam("_id"))
                    .values({c: bindparam(c) for c in (*columns, "updated_at")})
                )
                connection.execute(stmt, rows)

    def add_mobilisation_events(self, events: Sequence[NewMobilisationEvent], *, at: datetime) -> list[int | None]:
        """Record events, in order, one multi-row INSERT per chunk; returns their ids.

        A page already recorded for its (mobilisation, round, step, recipient), before or earlier in ``events``,
        is left out and gives None.
        """
        if not events:
            return []
        e = MobilisationEvent
        rows = [
            {"mobilisation_id": ev.mobilisation_id, "at": at, "kind": ev.kind, "round": ev.round, "step": ev.step,
             "target": ev.target, "recipient_id": ev.recipient_id, "channel": ev.channel, "ledger_id": ev.ledger_id,
             "actor": ev.actor, "detail": ev.detail}
            for ev in events
        ]  # fmt: skip
        # Returned rows go back to their events by key (ids rise in the order of the rows); a page's key is unique.
        found: dict[tuple[Any, ...], list[int]] = {}
        with self._tx("record mobilisation events") as connection:
            for chunk in _chunks(rows, _ROWS):
                stmt = (
                    self._insert(e)
                    .values(list(chunk))
                    .on_conflict_do_nothing()  # only the partial unique index of pages can conflict
                    .returning(e.id, e.mobilisation_id, e.kind, e.round, e.step, e.recipient_id)
                )
                for eid, *key in connection.execute(stmt):
                    found.setdefault(tuple(key), []).append(int(eid))
        for ids in found.values():
            ids.sort(reverse=True)
        out: list[int | None] = []
        for ev in events:
            ids = found.get((ev.mobilisation_id, ev.kind, ev.round, ev.step, ev.recipient_id), [])
            out.append(ids.pop() if ids else None)
        return out

    def queue_pages(self, pages: Sequence[NewPage], *, at: datetime) -> list[int | None]:
        """Queue escalation pages in the send ledger in one transaction, one multi-row INSERT per chunk of rows.

        Per page as :meth:`~ews.store.ledger.LedgerRepository.enqueue_group` (audience ``tagana``, language
        ``id``, priority 1, no expiry): each of its versions not yet claimed for its (recipient, channel, topic)
        gets a row; the first of them carries the text, the others are grouped into it. Returns per page that
        row's id, or None when it has no version or every one was claimed before (by an earlier page too).

        Raises
        ------
        StoreError
            A recipient id is not a pseudonymous id (a phone number never goes there), or the database refused a
            row: the message is the first line of its error, never the statement's parameters (the numbers).
        """
        from ews.store.ledger import LedgerRepository

        for p in pages:
            LedgerRepository._check_recipient(p.recipient_id, "tagana")
        rows = [
            {"alert_version_id": v, "recipient_id": p.recipient_id, "audience": "tagana", "channel": p.channel,
             "topic": p.topic, "created_at": at, "status": "queued", "address": p.address, "body": None,
             "language": "id", "priority": 1, "valid_until": None, "attempts": 0}
            for p in pages
            for v in dict.fromkeys(p.version_ids)
        ]  # fmt: skip
        if not rows:
            return [None] * len(pages)
        what = f"queue {len(pages)} Tagana escalation page(s) (do their alert versions exist?)"
        failure: str | None = None
        out: list[int | None] = []
        try:
            with self._tx(what) as connection:
                try:
                    out = self._queue_rows(connection, pages, rows)
                except DBAPIError as exc:
                    # The driver's error carries the statement's parameters, the numbers among them: only its
                    # first line goes on, raised outside this handler (no chained exception holds the numbers).
                    failure = (str(exc.orig).strip().splitlines() or [type(exc.orig).__name__])[0]
                if failure is not None:
                    raise _Rollback
        except _Rollback:
            pass
        if failure is not None:
            raise StoreError(f"{what}: the database refused it ({failure})")
        return out

    def _queue_rows(
        self, connection: Connection, pages: Sequence[NewPage], rows: list[dict[str, Any]]
    ) -> list[int | None]:
        x = LedgerEntry
        new: dict[tuple[int, str, str, str], int] = {}
        for chunk in _chunks(rows, _ROWS):
            stmt = (
                self._insert(x)
                .values(list(chunk))
                .on_conflict_do_nothing(index_elements=["alert_version_id", "recipient_id", "channel", "topic"])
                .returning(x.id, x.alert_version_id, x.recipient_id, x.channel, x.topic)
            )
            for lid, version, recipient, channel, topic in connection.execute(stmt):
                new[(int(version or 0), recipient, channel, topic)] = int(lid)
        out: list[int | None] = []
        bodies: list[dict[str, Any]] = []
        grouped: list[dict[str, Any]] = []
        for p in pages:
            # A row goes to the first page that claimed it (two lines of one contact at one step: one page).
            keys = [(v, p.recipient_id, p.channel, p.topic) for v in dict.fromkeys(p.version_ids)]
            mine = [new.pop(k) for k in keys if k in new]
            if not mine:
                out.append(None)
                continue
            out.append(mine[0])
            bodies.append({"_id": mine[0], "_body": p.body, "_fallback": p.fallback_body})
            grouped += [{"_id": lid, "_lead": mine[0]} for lid in mine[1:]]
        if bodies:
            connection.execute(
                update(x)
                .where(x.id == bindparam("_id"))
                .values(body=bindparam("_body"), fallback_body=bindparam("_fallback")),
                bodies,
            )
        if grouped:
            connection.execute(
                update(x).where(x.id == bindparam("_id")).values(grouped_into=bindparam("_lead")), grouped
            )
        return out

    def mobilisations(
        self,
        regions: Collection[str] | None = None,
        statuses: Collection[str] | None = None,
        *,
        thread_ids: Collection[str] | None = None,
        ids: Collection[int] | None = None,
        unit_id: str | None = None,
        now: datetime | None = None,
    ) -> list[MobilisationRecord]:
        """Mobilisations, the newest first.

        ``regions``: region ids or Kemendagri code prefixes of their villages (``None`` or ``["*"]``: all);
        ``now`` (default: the clock) decides ``next_page_at``.
        Three queries whatever the number: the rows, their pages and their acknowledgements.
        """
        from ews.command.escalation import Policy, State, next_due

        m = MobilisationRow
        stmt = select(m).order_by(m.opened_at.desc(), m.id.desc())
        if statuses is not None:
            stmt = stmt.where(m.status.in_(sorted(set(statuses))))
        if thread_ids is not None:
            stmt = stmt.where(m.thread_id.in_(sorted(set(thread_ids))))
        if ids is not None:
            stmt = stmt.where(m.id.in_(sorted(set(ids))))
        if unit_id is not None:
            stmt = stmt.where(func.upper(m.unit_id) == unit_id.upper())
        e = MobilisationEvent
        with self.engine.connect() as connection:
            rows = [r for r in connection.execute(stmt) if _matches(r.region, r.villages, regions)]
            fired: dict[int, set[tuple[int, int]]] = {}
            renotified: dict[int, int] = {}
            acked: dict[int, dict[int, set[str]]] = {}
            for chunk in _chunks([r.id for r in rows]):
                events = select(e.mobilisation_id, e.kind, e.round, e.step, e.recipient_id, e.actor).where(
                    e.mobilisation_id.in_(chunk), e.kind.in_(("page", "ack", "renotify", "opened"))
                )
                for mid, kind, rnd, step, recipient, actor in connection.execute(events):
                    if kind == "page" and step is not None:
                        fired.setdefault(mid, set()).add((rnd, step))
                    elif kind in ("renotify", "opened"):
                        renotified[mid] = max(renotified.get(mid, 1), rnd)
                    elif kind == "ack":
                        acked.setdefault(mid, {}).setdefault(rnd, set()).add(recipient or actor or "?")
        out: list[MobilisationRecord] = []
        when = now or _now()
        for r in rows:
            policy = Policy.from_json(r.policy)
            state = State(
                r.status, r.round, r.round_started_at, renotified.get(r.id, 1), frozenset(fired.get(r.id, ()))
            )
            who = frozenset(acked.get(r.id, {}).get(r.round, set()))
            out.append(
                MobilisationRecord(
                    id=r.id, region=r.region, unit_id=r.unit_id, unit_name=r.unit_name, thread_id=r.thread_id,
                    status=r.status, level=r.level, villages=tuple(r.villages), round=r.round, opened_at=r.opened_at,
                    acknowledged_at=r.acknowledged_at, mobilised_at=r.mobilised_at, ended_at=r.ended_at,
                    acks=len(who), quorum=policy.quorum, escalated=any(step > 1 for _, step in state.fired),
                    next_page_at=next_due(policy, state, when),
                    policy=r.policy, acked_level=r.acked_level, round_started_at=r.round_started_at,
                    alert_version_id=r.alert_version_id, first_round=state.first_round, fired=state.fired,
                    responders=who,
                )
            )  # fmt: skip
        return out

    def mobilisation(self, mobilisation_id: int) -> MobilisationRecord | None:
        """One mobilisation by id, or None."""
        found = self.mobilisations(ids=[mobilisation_id])
        return found[0] if found else None

    def mobilisation_events(self, mobilisation_id: int) -> list[MobilisationEventRecord]:
        """A mobilisation's events, oldest first, each page with its delivery from its ledger row."""
        return self.events_of([mobilisation_id]).get(mobilisation_id, [])

    def events_of(self, mobilisation_ids: Sequence[int]) -> dict[int, list[MobilisationEventRecord]]:
        """:meth:`mobilisation_events` of many mobilisations: one query per chunk of ids (a whole board at once)."""
        e, x = MobilisationEvent, LedgerEntry
        out: dict[int, list[MobilisationEventRecord]] = {}
        with self.engine.connect() as connection:
            for chunk in _chunks(sorted(set(mobilisation_ids))):
                stmt = (
                    select(e, x.status, x.provider_status)
                    .outerjoin(x, x.id == e.ledger_id)
                    .where(e.mobilisation_id.in_(chunk))
                    .order_by(e.at, e.id)
                )
                for event in self._event_records(connection.execute(stmt)):
                    out.setdefault(event.mobilisation_id, []).append(event)
        return out

    @staticmethod
    def _event_records(rows: Iterable[Any]) -> list[MobilisationEventRecord]:
        return [
            MobilisationEventRecord(
                r.id,
                r.mobilisation_id,
                r.at,
                r.kind,
                r.round,
                r.step,
                r.target,
                r.recipient_id,
                r.channel,
                r.ledger_id,
                r.actor,
                r.detail,
                _delivery(r.status, r.provider_status) if r.ledger_id else None,
            )
            for r in rows
        ]

    def mobilisation_board(self, regions: Collection[str] | None = None) -> dict[str, int]:
        """The Tagana board's counts.

        Keys: open, acknowledged, mobilised, stood-down (by status) and escalated (live, a later step fired).
        """
        board = dict.fromkeys(("open", "acknowledged", "escalated", "mobilised", "stood-down"), 0)
        for r in self.mobilisations(regions):
            board[r.status] += 1
            if r.escalated and r.status in LIVE:
                board["escalated"] += 1
        return board

    def tagana_notices(
        self, region: str, thread_ids: Collection[str], recipient_ids: Collection[str]
    ) -> dict[tuple[str, str], tuple[int, str, str | None, str]]:
        """(thread, recipient) -> the latest alert notice ledger row to that Tagana contact in that thread.

        Each value is (ledger id, body, SMS fallback body, channel): what the pipeline told them (topic ``''``,
        not an escalation page), which a page repeats. One query per chunk of recipients; only the latest row's
        texts are read, not those of every notice the unit had in the thread.
        """
        e, a = LedgerEntry, AlertVersion
        out: dict[tuple[str, str], tuple[int, str, str | None, str]] = {}
        if not thread_ids or not recipient_ids:
            return out
        with self.engine.connect() as connection:
            for chunk in _chunks(sorted(set(recipient_ids))):
                latest = (
                    select(a.thread_id, e.recipient_id, func.max(e.id).label("lid"))
                    .join(a, a.id == e.alert_version_id)
                    .where(
                        a.region == region, a.thread_id.in_(sorted(set(thread_ids))), e.recipient_id.in_(chunk),
                        e.audience == "tagana", e.topic == "", e.body.is_not(None),
                    )
                    .group_by(a.thread_id, e.recipient_id)
                    .subquery()
                )  # fmt: skip
                stmt = select(latest.c.thread_id, latest.c.recipient_id, e.id, e.body, e.fallback_body, e.channel).join(
                    e, e.id == latest.c.lid
                )
                for thread, recipient, lid, body, fallback, channel in connection.execute(stmt):
                    out[(thread, recipient)] = (int(lid), body or "", fallback, channel)
        return out

    def latest_versions(self, region: str, pairs: Collection[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """(thread, village) -> the newest alert version that went out (auto or approved), for many at once."""
        a = AlertVersion
        out: dict[tuple[str, str], int] = {}
        wanted = set(pairs)
        if not wanted:
            return out
        with self.engine.connect() as connection:
            for chunk in _chunks(sorted({v for _, v in wanted})):
                stmt = (
                    select(a.thread_id, a.village_code, func.max(a.id))
                    .where(a.region == region, a.village_code.in_(chunk), a.status.in_(("auto", "approved")))
                    .group_by(a.thread_id, a.village_code)
                )
                for thread, village, vid in connection.execute(stmt):
                    if (thread, village) in wanted:
                        out[(thread, village)] = int(vid)
        return out

    def paged_recipients(self, mobilisation_ids: Collection[int]) -> dict[int, list[tuple[int, int, str, str]]]:
        """Mobilisation id -> its pages as (round, step, recipient id, target), oldest first."""
        e = MobilisationEvent
        out: dict[int, list[tuple[int, int, str, str]]] = {}
        with self.engine.connect() as connection:
            for chunk in _chunks(sorted(set(mobilisation_ids))):
                stmt = (
                    select(e.mobilisation_id, e.round, e.step, e.recipient_id, e.target)
                    .where(e.mobilisation_id.in_(chunk), e.kind == "page", e.recipient_id.is_not(None))
                    .order_by(e.id)
                )
                for mid, rnd, step, recipient, target in connection.execute(stmt):
                    out.setdefault(mid, []).append((rnd, step or 0, recipient or "", target or ""))
        return out

    def ratchet_mobilised(self, wanted: Sequence[tuple[int, int, int]], *, at: datetime) -> list[int]:
        """Mobilise each (id, round, quorum) whose round has ``quorum`` distinct acknowledgements stored; the ids moved.

        The safety net of concurrent acknowledgements (two ``ews serve`` processes, each counting only its own):
        run after the acknowledgement events are committed, the last one to commit sees them all. One guarded
        UPDATE per mobilisation, only from ``open``/``acknowledged``; an already mobilised one is left alone.
        """
        m, e = MobilisationRow, MobilisationEvent
        moved: list[int] = []
        with self._tx("mobilise Tagana mobilisations at their quorum") as connection:
            for mid, rnd, quorum in wanted:
                acks = (
                    select(func.count(func.distinct(e.actor)))
                    .where(e.mobilisation_id == mid, e.kind == "ack", e.round == rnd)
                    .scalar_subquery()
                )
                stmt = (
                    update(m)
                    .where(m.id == mid, m.round == rnd, m.status.in_(("open", "acknowledged")), acks >= quorum)
                    .values(status="mobilised", mobilised_at=at, updated_at=at)
                    .returning(m.id)
                )
                moved += [int(i) for i in connection.execute(stmt).scalars()]
        return moved

    def live_mobilisation_ids(self, unit_id: str) -> list[int]:
        """Ids of a unit's mobilisations that have not stood down (case-insensitive unit id), newest first."""
        m = MobilisationRow
        stmt = (
            select(m.id)
            .where(func.upper(m.unit_id) == unit_id.upper(), m.status.in_(LIVE))
            .order_by(m.opened_at.desc(), m.id.desc())
        )
        with self.engine.connect() as connection:
            return [int(i) for i in connection.execute(stmt).scalars()]

"""The send ledger: one row per alert version x recipient x channel, and the dispatcher's state machine on it.

A row moves ``queued -> sending -> sent | failed | expired | dry-run``, with two ways back:

- **transient** (429, 5xx, no connection; nothing was created): ``sending -> queued`` with a due time;
- **unknown outcome** (a time-out after the request left, a reset, a worker killed or its lease lost):
  ``sending -> unsure``. The provider may have accepted the message, perhaps only seconds later (a create
  completed after the client gave up). An ``unsure`` row is reconciled only after ``settle_after``, against
  the provider's own record over the whole sending episode, which started at ``leased_at`` and is never
  moved by a take-over: found, it is ``sent``; not found, it is ``queued`` again.

Every change of a row a worker holds is **fenced**: it names the ``lease_version`` it took the row with, and
the database applies it only while the row still has that version. Taking a row (to send or to reconcile),
expiring a lease and releasing a row all bump the version, so a worker that lost its lease (paused, slow,
partitioned) can never record anything on a row another worker now holds, nor renew its lease.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, TextClause, bindparam, column, func, select, table, text, tuple_, update

from ews.errors import StoreError
from ews.store.base import _CHUNK, StoreBase, _chunks, _now
from ews.store.models import (
    AUDIENCES,
    AlertVersion,
    Delivery,
    LedgerEntry,
    MessageText,
    UtcDateTime,
    carries_message,
)
from ews.types import Level

_RECIPIENT_ID = re.compile(r"r-[0-9a-f]{16}")
FINAL = ("sent", "dry-run", "failed", "expired")
_QUEUED_COLUMNS = [
    getattr(LedgerEntry, name)
    for name in ("id", "alert_version_id", "recipient_id", "audience", "channel", "address", "body", "language",
                 "priority", "valid_until", "attempts", "claimed_at", "fallback_body", "lease_version", "leased_at",
                 "topic", "text_id")
]  # fmt: skip  # what a QueuedMessage is made of


_SHARED_BODY = MessageText.body.label("shared_body")
_SHARED_FALLBACK = MessageText.fallback_body.label("shared_fallback")


@dataclass(frozen=True)
class QueuedMessage:
    """A ledger row the dispatcher delivers: the rendered text and where it goes (``address`` is personal data).

    ``lease`` is the fencing token this worker holds the row with; ``leased_at`` the start of the sending
    episode (a message may have been created since then); ``reconcile``: the row was taken to settle an
    unknown outcome, not to be sent. A message about no alert version (``alert_version_id`` None: a report's
    status, told to its reporter) has no village, ``Level.NONE`` and no warning; ``topic`` tells apart several
    messages of one version to one person (a Tagana escalation page per step and round).
    """

    ledger_id: int
    alert_version_id: int | None
    recipient_id: str
    audience: str
    channel: str
    address: str
    body: str
    language: str
    priority: int
    valid_until: datetime | None
    attempts: int
    claimed_at: datetime | None
    fallback_body: str | None
    village_code: str
    level: Level
    warning_id: str
    lease: int = 0
    leased_at: datetime | None = None
    reconcile: bool = False
    topic: str = ""


@dataclass(frozen=True)
class Claim:
    """One message to queue with :meth:`LedgerRepository.enqueue_many`: the versions it claims, its text, its target.

    Like the arguments of :meth:`LedgerRepository.enqueue_group`, with the text rendered already: a resident's
    message depends on their village's situation, language and channel, not on which of its versions are new.
    ``address`` is personal data (the E.164 number).
    """

    version_ids: tuple[int, ...]
    recipient_id: str
    audience: str
    channel: str
    address: str
    body: str
    language: str
    priority: int
    valid_until: datetime | None
    fallback_body: str | None = None
    topic: str = ""


@dataclass(frozen=True)
class Outcome:
    """How one send ended, to record with :meth:`LedgerRepository.finish_many`.

    ``provider_status`` is what the provider said of the message (``queued``, ``accepted``); ``error`` only
    an error. ``lease`` fences the change (``None``: the worker's ownership alone is checked).
    """

    ledger_id: int
    status: str
    provider_id: str | None = None
    error: str | None = None
    provider_status: str | None = None
    lease: int | None = None


class LedgerRepository(StoreBase):
    """Queries of the send ledger (mixed into :class:`ews.store.repository.Store`)."""

    # -- send ledger ------------------------------------------------------------------------------------

    def enqueue(
        self,
        alert_version_id: int | None,
        recipient_id: str,
        audience: str,
        channel: str,
        *,
        address: str,
        body: str,
        language: str,
        priority: int,
        valid_until: datetime | None,
        fallback_body: str | None = None,
        topic: str = "",
        at: datetime | None = None,
    ) -> int | None:
        """Claim one send in the ledger and queue its message; the new ledger id, or ``None`` if claimed before.

        ``fallback_body`` (WhatsApp rows) is the SMS text to send instead if WhatsApp fails for good. With
        ``alert_version_id`` None the message belongs to no alert version and ``topic`` alone makes it unique
        for the recipient and channel (``report:7:routed``: a report's status, told once).
        """
        if alert_version_id is None:
            return self._enqueue_unversioned(
                recipient_id, audience, channel, topic, address=address, body=body, language=language,
                priority=priority, valid_until=valid_until, fallback_body=fallback_body, at=at,
            )  # fmt: skip
        return self.enqueue_group(
            [alert_version_id], recipient_id, audience, channel, address=address, render=lambda _: body,
            language=language, priority=priority, valid_until=valid_until, fallback_body=fallback_body, topic=topic,
            at=at,
        )  # fmt: skip

    def _enqueue_unversioned(
        self,
        recipient_id: str,
        audience: str,
        channel: str,
        topic: str,
        *,
        address: str,
        body: str,
        language: str,
        priority: int,
        valid_until: datetime | None,
        fallback_body: str | None,
        at: datetime | None,
    ) -> int | None:
        self._check_recipient(recipient_id, audience)
        if not topic:
            raise StoreError("enqueue: a message that belongs to no alert version needs a topic (e.g. report:7:routed)")
        e = LedgerEntry
        stmt = (
            self._insert(LedgerEntry)
            .values(
                alert_version_id=None, recipient_id=recipient_id, audience=audience, channel=channel, topic=topic,
                created_at=at or _now(), status="queued", address=address, body=body, fallback_body=fallback_body,
                language=language, priority=priority, valid_until=valid_until, attempts=0,
            )
            .on_conflict_do_nothing(
                index_elements=["recipient_id", "channel", "topic"], index_where=e.alert_version_id.is_(None)
            )
            .returning(LedgerEntry.id)
        )  # fmt: skip
        with self._statement(f"queue message {topic} for {recipient_id}") as connection:
            found = connection.execute(stmt).scalar_one_or_none()
        return int(found) if found is not None else None

    @staticmethod
    def _check_recipient(recipient_id: str, audience: str) -> None:
        if not _RECIPIENT_ID.fullmatch(recipient_id):
            raise StoreError(
                "enqueue: recipient_id must be the pseudonymous id from ews.contacts.recipient_id ('r-' and 16 hex "
                "digits), never a phone number"
            )
        if audience not in AUDIENCES:
            raise StoreError(f"enqueue: audience {audience!r} is unknown; use one of {', '.join(AUDIENCES)}")

    def enqueue_group(
        self,
        alert_version_ids: Sequence[int],
        recipient_id: str,
        audience: str,
        channel: str,
        *,
        address: str,
        render: Callable[[Sequence[int]], str],
        language: str,
        priority: int,
        valid_until: datetime | None,
        fallback_body: str | None = None,
        render_fallback: Callable[[Sequence[int]], str] | None = None,
        topic: str = "",
        at: datetime | None = None,
    ) -> int | None:
        """Claim several alert versions for one recipient and queue ONE message covering the new ones.

        In one transaction: each version not yet claimed for this recipient and channel gets a ledger row;
        ``render`` receives those versions' ids and returns the message text, stored on the first row; the
        others are grouped into it (they settle with it). Returns that row's id, or ``None`` when every
        version was claimed before (nothing new to say). A crash can leave no claim without its message.
        ``render_fallback`` (or a fixed ``fallback_body``) gives the SMS text sent if WhatsApp fails for good.
        ``topic`` ('' for an alert's message) lets one version reach one person more than once, once per topic.
        """
        self._check_recipient(recipient_id, audience)
        when = at or _now()
        e = LedgerEntry
        versions = ", ".join(map(str, alert_version_ids))
        with self._tx(f"queue alert version {versions} for {recipient_id} (does it exist?)") as connection:
            new: list[tuple[int, int]] = []
            for version_id in alert_version_ids:
                stmt = (
                    self._insert(LedgerEntry)
                    .values(
                        alert_version_id=version_id, recipient_id=recipient_id, audience=audience, channel=channel,
                        topic=topic, created_at=when, status="queued", address=address, body=None, language=language,
                        priority=priority, valid_until=valid_until, attempts=0,
                    )
                    .on_conflict_do_nothing(index_elements=["alert_version_id", "recipient_id", "channel", "topic"])
                    .returning(LedgerEntry.id)
                )  # fmt: skip
                found = connection.execute(stmt).scalar_one_or_none()
                if found is not None:
                    new.append((version_id, int(found)))
            if not new:
                return None
            lead = new[0][1]
            body = render([v for v, _ in new])
            if render_fallback is not None:
                fallback_body = render_fallback([v for v, _ in new])
            connection.execute(update(e).where(e.id == lead).values(body=body, fallback_body=fallback_body))
            others = [lid for _, lid in new[1:]]
            if others:
                connection.execute(update(e).where(e.id.in_(others)).values(grouped_into=lead))
        return lead

    def enqueue_many(self, claims: Sequence[Claim], *, at: datetime | None = None) -> list[int | None]:
        """Queue many messages in one transaction, set-based; per claim its lead ledger id, or ``None``.

        The same rules as :meth:`enqueue_group`, for a whole cycle at once: every (version, recipient, channel,
        topic) not claimed before gets a row, by multi-row ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` (the
        database decides which claims are new, so two workers racing still queue each message once); a claim's
        first new row carries its text and the claim's other new rows are grouped into it. ``None``: every version
        of that claim was claimed before (nothing new to say). No statement per message.
        """
        if not claims:
            return []
        for c in claims:
            self._check_recipient(c.recipient_id, c.audience)
        when = at or _now()
        e = LedgerEntry
        rows: list[dict[str, Any]] = []
        for c in claims:
            for n, version_id in enumerate(dict.fromkeys(c.version_ids)):
                first = n == 0
                rows.append(
                    {
                        "alert_version_id": version_id, "recipient_id": c.recipient_id, "audience": c.audience,
                        "channel": c.channel, "topic": c.topic, "created_at": when, "status": "queued",
                        "address": c.address, "body": c.body if first else None,
                        "fallback_body": c.fallback_body if first else None, "language": c.language,
                        "priority": c.priority, "valid_until": c.valid_until, "attempts": 0,
                    }
                )  # fmt: skip
        leads: list[int | None] = []
        with self._tx(f"queue {len(claims)} message(s) ({len(rows)} claim(s))") as connection:
            found = self._insert_new(
                connection, LedgerEntry, rows, conflict=("alert_version_id", "recipient_id", "channel", "topic"),
                returning=("id", "alert_version_id", "recipient_id", "channel", "topic"),
            )  # fmt: skip
            new = {(v, r, ch, t): int(i) for i, v, r, ch, t in found}
            bodies: list[dict[str, Any]] = []
            grouped: list[dict[str, Any]] = []
            for c in claims:
                ids = [
                    (v, new[key])
                    for v in dict.fromkeys(c.version_ids)
                    if (key := (v, c.recipient_id, c.channel, c.topic)) in new
                ]
                if not ids:
                    leads.append(None)
                    continue
                lead_version, lead = ids[0]
                leads.append(lead)
                if lead_version != c.version_ids[0]:  # the first version was claimed before: the lead has no text
                    bodies.append({"row": lead, "new_body": c.body, "new_fallback": c.fallback_body})
                grouped.extend({"row": lid, "lead": lead} for _, lid in ids[1:])
            if bodies:
                connection.execute(
                    update(e).where(e.id == bindparam("row")).values(body=bindparam("new_body"),
                                                                     fallback_body=bindparam("new_fallback")),
                    bodies,
                )  # fmt: skip
            if grouped:
                connection.execute(update(e).where(e.id == bindparam("row")).values(grouped_into=bindparam("lead")),
                                   grouped)  # fmt: skip
        return leads

    def supersede_queued(self, lead_ids: Sequence[int], *, at: datetime | None = None) -> int:
        """Withdraw older resident messages still waiting that the given newer ones replace; return how many.

        A resident's message states their village's whole situation (:mod:`ews.alerts.situation`), so an
        older message for the same person, channel and village that has not left yet (``queued``: never leased)
        is out of date: were it sent after the newer one, an alert would arrive after its own cancel. It is
        marked ``expired`` with the reason, in one statement per chunk; rows in flight are left alone.
        """
        if not lead_ids:
            return 0
        when = at or _now()
        leads = sorted(set(lead_ids))
        with self._tx("withdraw superseded queued messages") as connection:
            # The new leads go into a temporary table, and one query walks from them to the older rows, by index
            # all the way: the new row (a lead, or grouped into one: a person's several villages are one message),
            # its version, the same recipient and channel's older rows, their versions of the same village.
            # Never a scan of everything queued, never a statement per message.
            if self._postgres:
                connection.exec_driver_sql("CREATE TEMP TABLE ews_new_leads (id INTEGER PRIMARY KEY) ON COMMIT DROP")
                driver = connection.connection.driver_connection
                with driver.cursor() as cursor, cursor.copy("COPY ews_new_leads (id) FROM STDIN") as copy:  # type: ignore[union-attr]
                    for i in leads:
                        copy.write_row((i,))
                connection.exec_driver_sql("ANALYZE ews_new_leads")  # a temporary table has no statistics otherwise
            else:
                connection.exec_driver_sql("CREATE TEMP TABLE IF NOT EXISTS ews_new_leads (id INTEGER PRIMARY KEY)")
                connection.exec_driver_sql("DELETE FROM ews_new_leads")
                connection.execute(text("INSERT INTO ews_new_leads (id) VALUES (:id)"), [{"id": i} for i in leads])
            stale = withdraw_stale(connection, _SUPERSEDED.text, when, postgres=self._postgres)
            connection.exec_driver_sql("DROP TABLE ews_new_leads")
        return stale

    def _queued_rows(
        self, connection: Connection, ids: Sequence[int], *, reconcile: bool = False
    ) -> list[QueuedMessage]:
        e, a, t = LedgerEntry, AlertVersion, MessageText
        stmt = (
            select(e, a.village_code, a.level, a.warning_id, _SHARED_BODY, _SHARED_FALLBACK)
            .outerjoin(a, a.id == e.alert_version_id)
            .outerjoin(t, t.id == e.text_id)
            .where(e.id.in_(ids))
            .order_by(e.priority, e.id)
        )
        return self._queued(connection.execute(stmt).all(), reconcile=reconcile)

    def _queued(self, rows: Iterable[Any], *, reconcile: bool = False) -> list[QueuedMessage]:
        return [
            QueuedMessage(
                r.id, r.alert_version_id, r.recipient_id, r.audience, r.channel, r.address or "",
                (r.body if r.body is not None else r.shared_body) or "", r.language or "id", r.priority,
                r.valid_until, r.attempts, r.claimed_at,
                r.fallback_body if r.body is not None or r.text_id is None else r.shared_fallback,
                r.village_code or "", Level(r.level or 0), r.warning_id or "", r.lease_version, r.leased_at, reconcile,
                r.topic or "",
            )
            for r in rows
        ]  # fmt: skip

    def _take(self, worker: str, now: datetime, limit: int, *, unsure: bool) -> list[QueuedMessage]:
        e = LedgerEntry
        if unsure:
            where = [e.status == "unsure", e.settle_after <= now]
        else:
            where = [
                e.status == "queued",
                carries_message(),
                e.next_attempt_at.is_(None) | (e.next_attempt_at <= now),
            ]
        due = select(e.id).where(*where).order_by(e.priority, e.id).limit(limit)
        if self._postgres:
            due = due.with_for_update(skip_locked=True)
        values: dict[str, Any] = {"status": "sending", "claimed_at": now, "worker": worker,
                                  "lease_version": e.lease_version + 1}  # fmt: skip
        if not unsure:
            values["leased_at"] = now  # a new sending episode starts; a reconciliation keeps the old one's start
        if self._postgres:
            with self._statement(f"take ledger rows for {worker}") as connection:
                # One round trip: lock the due rows (skipping those another worker holds), mark them, read them.
                locked = due.cte("due")
                taken = update(e).where(e.id == locked.c.id).values(values).returning(*_QUEUED_COLUMNS).cte("taken")
                a, t = AlertVersion, MessageText
                stmt = (
                    select(taken, a.village_code, a.level, a.warning_id, _SHARED_BODY, _SHARED_FALLBACK)
                    .outerjoin(a, a.id == taken.c.alert_version_id)
                    .outerjoin(t, t.id == taken.c.text_id)
                    .order_by(taken.c.priority, taken.c.id)
                )
                return self._queued(connection.execute(stmt).all(), reconcile=unsure)
        with self._tx(f"take ledger rows for {worker}") as connection:
            ids = list(connection.execute(due).scalars())
            if not ids:
                return []
            connection.execute(update(e).where(e.id.in_(ids)).values(values))
            return self._queued_rows(connection, ids, reconcile=unsure)

    def lease(self, worker: str, now: datetime, limit: int = 50) -> list[QueuedMessage]:
        """Take up to ``limit`` queued messages that are due, mark them 'sending' for ``worker``, return them.

        Endings (priority 0) come first, then oldest first. On PostgreSQL the rows are locked with
        ``FOR UPDATE SKIP LOCKED``, so several workers take disjoint batches; SQLite serialises writers.
        Taking a row starts its sending episode (``leased_at``) and bumps its fencing token.
        """
        return self._take(worker, now, limit, unsure=False)

    def take_unsure(self, worker: str, now: datetime, limit: int = 50) -> list[QueuedMessage]:
        """Take up to ``limit`` 'unsure' rows whose settle time has come, to reconcile them (``reconcile=True``)."""
        return self._take(worker, now, limit, unsure=True)

    def expire_leases(self, now: datetime, lease_seconds: float, settle_seconds: float) -> int:
        """Turn 'sending' rows whose lease ran out (their worker died or stalled) into 'unsure', in one statement.

        Their outcome is unknown: the worker may have sent them. They are reconciled ``settle_seconds`` from now
        (a request still in flight from the old worker has landed by then), over their whole episode.
        """
        e = LedgerEntry
        stmt = (
            update(e)
            .where(e.status == "sending", e.claimed_at < now - timedelta(seconds=lease_seconds))
            .values(status="unsure", settle_after=now + timedelta(seconds=settle_seconds), worker=None,
                    lease_version=e.lease_version + 1, error="lease ran out mid-send (worker died or stalled)")
        )  # fmt: skip
        with self._tx("expire lost leases") as connection:
            return int(connection.execute(stmt).rowcount or 0)

    def _mine(self, q: QueuedMessage, worker: str) -> Any:
        e = LedgerEntry
        return update(e).where(
            e.id == q.ledger_id, e.worker == worker, e.status == "sending", e.lease_version == q.lease
        )

    def touch(self, q: QueuedMessage, worker: str, now: datetime) -> bool:
        """Renew ``worker``'s lease on a row it holds; ``False`` (fail closed: do not send) if it lost the row."""
        return q.ledger_id in self.touch_many([q], worker, now)

    def touch_many(self, rows: Sequence[QueuedMessage], worker: str, now: datetime) -> set[int]:
        """Renew ``worker``'s lease on the rows it still holds, in one statement; returns their ids.

        A row missing from the answer was lost (taken over, expired, released): fail closed, do not send it.
        """
        if not rows:
            return set()
        e = LedgerEntry
        held: set[int] = set()
        with self._tx(f"renew lease on {len(rows)} ledger row(s)") as connection:
            for chunk in _chunks(list(rows), _CHUNK // 2):  # two parameters a row
                stmt = (
                    update(e)
                    .where(tuple_(e.id, e.lease_version).in_([(q.ledger_id, q.lease) for q in chunk]),
                           e.worker == worker, e.status == "sending")
                    .values(claimed_at=now)
                    .returning(e.id)
                )  # fmt: skip
                held.update(int(i) for i in connection.execute(stmt).scalars())
        return held

    def requeue(self, q: QueuedMessage, when: datetime, error: str, *, worker: str, attempt: bool = True) -> bool:
        """Put a row ``worker`` holds back in the queue, due at ``when``; ``attempt``: count a provider attempt.

        For transient failures (nothing was created) and for reconciliations that found nothing.
        """
        e = LedgerEntry
        stmt = (
            self._mine(q, worker)
            .values(status="queued", next_attempt_at=when, error=error, claimed_at=None, worker=None, leased_at=None,
                    settle_after=None, attempts=e.attempts + (1 if attempt else 0), lease_version=e.lease_version + 1)
            .returning(e.id)
        )  # fmt: skip
        with self._tx(f"requeue ledger row {q.ledger_id}") as connection:
            return connection.execute(stmt).scalar_one_or_none() is not None

    def mark_unsure(self, q: QueuedMessage, settle_after: datetime, why: str, *, worker: str) -> bool:
        """A send whose outcome is unknown: reconcile it at ``settle_after`` (it keeps its episode's start)."""
        e = LedgerEntry
        stmt = (
            self._mine(q, worker)
            .values(status="unsure", settle_after=settle_after, error=why, worker=None, claimed_at=None,
                    lease_version=e.lease_version + 1)
            .returning(e.id)
        )  # fmt: skip
        with self._tx(f"mark ledger row {q.ledger_id} unsure") as connection:
            return connection.execute(stmt).scalar_one_or_none() is not None

    def release(self, rows: Sequence[QueuedMessage], *, worker: str, now: datetime) -> int:
        """Give rows ``worker`` holds but did not send back to the queue at once (no attempt counted).

        Rows taken to be reconciled go back to 'unsure' (their outcome is still unknown). One statement each.
        """
        e = LedgerEntry
        count = 0
        with self._tx(f"release {len(rows)} ledger row(s) of {worker}") as connection:
            for reconcile in (False, True):
                mine = [q for q in rows if q.reconcile is reconcile]
                if not mine:
                    continue
                target: dict[str, Any] = (
                    {"status": "unsure", "settle_after": now} if reconcile
                    else {"status": "queued", "leased_at": None}
                )  # fmt: skip
                stmt = (
                    update(e)
                    .where(e.id == bindparam("lid"), e.lease_version == bindparam("v"), e.worker == worker,
                           e.status == "sending")
                    .values(**target, worker=None, claimed_at=None, lease_version=e.lease_version + 1)
                )  # fmt: skip
                result = connection.execute(stmt, [{"lid": q.ledger_id, "v": q.lease} for q in mine])
                count += int(result.rowcount or 0)
        return count

    def finish(
        self,
        ledger_id: int,
        status: str,
        *,
        provider_id: str | None = None,
        error: str | None = None,
        worker: str | None = None,
        lease: int | None = None,
        provider_status: str | None = None,
        at: datetime | None = None,
    ) -> bool:
        """Settle one send (see :meth:`finish_many`); ``False`` if ``worker`` no longer holds its lease."""
        outcome = Outcome(ledger_id, status, provider_id, error, provider_status, lease)
        return bool(self.finish_many([outcome], worker=worker, at=at))

    def finish_many(
        self, outcomes: Sequence[Outcome], *, worker: str | None = None, at: datetime | None = None
    ) -> list[int]:
        """Settle sends in one transaction: 'sent', 'dry-run', 'failed' (permanent) or 'expired'.

        Rows grouped into a settled row (one Tagana notice, many villages) settle with it. With ``worker``,
        only rows still 'sending' under that worker (and, where the outcome carries one, under its fencing
        token) change: a row another worker took over is left to that worker. Returns the settled ids.
        """
        for o in outcomes:
            if o.status not in FINAL:
                raise StoreError(f"finish: status {o.status!r} is not final; use {', '.join(FINAL)}")
        if not outcomes:
            return []
        e, when = LedgerEntry, at or _now()
        ids = [o.ledger_id for o in outcomes]
        if self._postgres:
            return self._finish_many_postgres(outcomes, worker, when)
        with self._tx(f"settle {len(outcomes)} ledger row(s)") as connection:
            owned = select(e.id, e.lease_version).where(e.id.in_(ids))
            if worker is not None:
                owned = owned.where(e.worker == worker, e.status == "sending")
            if self._postgres:
                owned = owned.with_for_update()  # nobody takes them over between this check and the update
            versions: dict[int, int] = {int(i): int(v) for i, v in connection.execute(owned)}
            settled = [o for o in outcomes if o.ledger_id in versions and o.lease in (None, versions[o.ledger_id])]
            if not settled:
                return []
            rows = [
                {"lid": o.ledger_id, "st": o.status, "pid": o.provider_id, "err": o.error, "ps": o.provider_status}
                for o in settled
            ]
            connection.execute(
                update(e)
                .where(e.id == bindparam("lid"))
                .values(status=bindparam("st"), provider_id=bindparam("pid"), error=bindparam("err"),
                        provider_status=bindparam("ps"), worker=None, settle_after=None),
                rows,
            )  # fmt: skip
            mine = [o.ledger_id for o in settled]
            # Rows grouped into a settled one (a Tagana notice for many villages) settle with it.
            leads = set(connection.execute(select(e.grouped_into).where(e.grouped_into.in_(mine))).scalars())
            for o in settled:
                if o.ledger_id in leads:
                    connection.execute(
                        update(e)
                        .where(e.grouped_into == o.ledger_id, e.status == "queued")
                        .values(status=o.status, provider_id=o.provider_id)
                    )
            connection.execute(
                self._insert(Delivery),
                [
                    {"ledger_id": o.ledger_id, "provider_id": o.provider_id, "status": o.status,
                     "detail": o.error or o.provider_status or "", "updated_at": when}
                    for o in settled
                ],
            )  # fmt: skip
        return mine

    def _finish_many_postgres(self, outcomes: Sequence[Outcome], worker: str | None, when: datetime) -> list[int]:
        """:meth:`finish_many` in one statement (one round trip per batch, on the send path).

        The UPDATE's own row locks and re-check of its WHERE on a row changed meanwhile (READ COMMITTED) do
        what SELECT ... FOR UPDATE does on SQLite's path: a row taken over since is left alone.
        """
        stmt = _FINISH_OWNED if worker is not None else _FINISH_ANY
        params: dict[str, Any] = {
            "lids": [o.ledger_id for o in outcomes], "sts": [o.status for o in outcomes],
            "pids": [o.provider_id for o in outcomes], "errs": [o.error for o in outcomes],
            "pss": [o.provider_status for o in outcomes], "leases": [o.lease for o in outcomes],
            "worker": worker, "when": when,
        }  # fmt: skip
        with self._statement(f"settle {len(outcomes)} ledger row(s)") as connection:
            done = {int(i) for i in connection.execute(stmt, params).scalars()}
        return [o.ledger_id for o in outcomes if o.ledger_id in done]

    def queue_counts(self) -> dict[str, int]:
        """Ledger rows that carry a message, per status (``queued``, ``sending``, ``unsure``, ``sent``...)."""
        e = LedgerEntry
        stmt = select(e.status, func.count()).where(carries_message()).group_by(e.status)
        with self.engine.connect() as connection:
            return {status: int(n) for status, n in connection.execute(stmt)}

    def oldest_waiting(self) -> datetime | None:
        """When the oldest message still waiting to leave (``queued`` or ``sending``) was queued; ``None``: none."""
        e = LedgerEntry
        # The column itself, not min(): its type reads the instant back aware on SQLite too.
        stmt = (
            select(e.created_at)
            .where(e.status.in_(("queued", "sending")), carries_message())
            .order_by(e.created_at)
            .limit(1)
        )
        with self.engine.connect() as connection:
            value: datetime | None = connection.execute(stmt).scalar_one_or_none()
        return value

    def next_due(self) -> datetime | None:
        """When the next queued row is due or the next unsure row may be reconciled (``None``: nothing waits)."""
        e = LedgerEntry
        with self.engine.connect() as connection:
            queued = connection.execute(
                select(func.min(func.coalesce(e.next_attempt_at, e.created_at))).where(e.status == "queued")
            ).scalar_one_or_none()
            unsure = connection.execute(
                select(func.min(e.settle_after)).where(e.status == "unsure")
            ).scalar_one_or_none()
        found = [t for t in (queued, unsure) if t is not None]
        return min(found) if found else None

    def failed_rows(self, region: str | None = None, thread_id: str | None = None) -> list[dict[str, Any]]:
        """Rows that ended 'failed', with the version they belong to and the provider's reason (no number)."""
        e, a = LedgerEntry, AlertVersion
        stmt = (
            select(e.id, e.recipient_id, e.audience, e.channel, e.error, e.attempts, a.region, a.thread_id,
                   a.village_code, a.seq)
            .join(a, a.id == e.alert_version_id)
            .where(e.status == "failed")
            .order_by(e.id)
        )  # fmt: skip
        if region is not None:
            stmt = stmt.where(a.region == region)
        if thread_id is not None:
            stmt = stmt.where(a.thread_id == thread_id)
        with self.engine.connect() as connection:
            return [dict(r._mapping) for r in connection.execute(stmt)]

    def thread_deliveries(self, region: str, thread_id: str) -> dict[str, int]:
        """Ledger rows of a thread's versions per status (``sent``, ``failed``, ``queued``...), one query."""
        e, a = LedgerEntry, AlertVersion
        stmt = (
            select(e.status, func.count())
            .join(a, a.id == e.alert_version_id)
            .where(a.region == region, a.thread_id == thread_id)
            .group_by(e.status)
        )
        with self.engine.connect() as connection:
            return {str(status): int(n) for status, n in connection.execute(stmt)}


_NEWER = """
    SELECT e.id FROM ews_new_leads l
    JOIN send_ledger n ON {join}
    JOIN alert_versions nv ON nv.id = n.alert_version_id
    JOIN send_ledger e ON e.recipient_id = n.recipient_id AND e.channel = n.channel AND e.id < n.id
    JOIN alert_versions ov ON ov.id = e.alert_version_id AND ov.region = nv.region AND ov.village_code = nv.village_code
    WHERE e.status = 'queued' AND e.audience = 'resident' AND e.grouped_into IS NULL
      AND e.id NOT IN (SELECT id FROM ews_new_leads)
"""
# Older queued resident messages that a new lead (or a row grouped into it) speaks for again.
_STALE = table("ews_stale", column("id"))  # the temporary table of rows a cycle withdraws
_SUPERSEDED = text(_NEWER.format(join="n.id = l.id") + " UNION " + _NEWER.format(join="n.grouped_into = l.id"))


def withdraw_stale(connection: Connection, stale: str, when: datetime, *, postgres: bool) -> int:
    """Mark ``expired`` the queued rows the query ``stale`` selects (ids), and the rows grouped into them; how many.

    In the caller's transaction: the ids into a temporary table, then two updates, each by its index. A row in
    flight (leased) is left alone: it is no longer ``queued``.
    """
    e = LedgerEntry
    why = "superseded: a newer message for the same village replaced it before it was sent"
    connection.execute(text("CREATE TEMP TABLE ews_stale AS " + stale))
    found = int(connection.exec_driver_sql("SELECT count(*) FROM ews_stale").scalar_one())
    if found:
        gone = select(_STALE.c.id)
        for mine in (e.id.in_(gone), e.grouped_into.in_(gone)):
            connection.execute(
                update(e).where(mine, e.status == "queued").values(status="expired", claimed_at=when, error=why)
            )
    connection.exec_driver_sql("DROP TABLE ews_stale")
    return found


def _finish_statement(owner: str) -> TextClause:
    """The one statement of :meth:`LedgerRepository._finish_many_postgres` (``owner``: the worker's fence)."""
    return text(
        f"""
            WITH v AS (
                SELECT * FROM unnest(CAST(:lids AS integer[]), CAST(:sts AS varchar[]), CAST(:pids AS varchar[]),
                                     CAST(:errs AS text[]), CAST(:pss AS varchar[]), CAST(:leases AS integer[]))
                    AS v(lid, st, pid, err, ps, lease)
            ), done AS (
                UPDATE send_ledger AS e
                SET status = v.st, provider_id = v.pid, error = v.err, provider_status = v.ps, worker = NULL,
                    settle_after = NULL
                FROM v
                WHERE e.id = v.lid AND {owner}e.lease_version = COALESCE(v.lease, e.lease_version)
                RETURNING e.id, v.st, v.pid, v.err, v.ps
            ), grouped AS (
                UPDATE send_ledger AS g SET status = done.st, provider_id = done.pid
                FROM done WHERE g.grouped_into = done.id AND g.status = 'queued'
            ), logged AS (
                INSERT INTO deliveries (ledger_id, provider_id, status, detail, updated_at)
                SELECT done.id, done.pid, done.st, COALESCE(NULLIF(done.err, ''), NULLIF(done.ps, ''), ''), :when
                FROM done
            )
            SELECT id FROM done
            """  # noqa: S608 - the only interpolation is a fixed condition
    ).bindparams(bindparam("when", type_=UtcDateTime()))


_FINISH_OWNED = _finish_statement("e.worker = :worker AND e.status = 'sending' AND ")
_FINISH_ANY = _finish_statement("")

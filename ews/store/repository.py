"""The ews database behind small transactional methods: one call, one transaction.

:class:`Store` returns ews dataclasses (:class:`~ews.alerts.model.VillageState`, :class:`~ews.types.Recipient`)
or the frozen records defined here, never ORM objects. Upserts and the send-ledger claim use
``INSERT … ON CONFLICT`` on SQLite and PostgreSQL alike, so that two tasks racing for the same row cannot
both win and neither fails.

Phone numbers are personal data (UU 27/2022): only subscriber and coordinator methods see them, the send
ledger stores :func:`ews.contacts.recipient_id`, and no message or log line here contains a number.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, case, delete, func, select, update
from sqlalchemy.exc import DBAPIError

from ews.alerts.model import Decision, Transition, VillageState
from ews.contacts import normalize_phone, recipient_id
from ews.errors import StoreError
from ews.store.base import _chunks, _now
from ews.store.ledger import LedgerRepository, Outcome, QueuedMessage
from ews.store.models import (
    CHANNELS,
    LANGUAGES,
    LEDGER_STATUSES,
    VERSION_STATUSES,
    AlertVersion,
    Base,
    Delivery,
    InboundMessage,
    LedgerEntry,
    RunLog,
    SourceDocument,
    Subscriber,
    TaganaCoordinator,
    TaganaUnitRow,
    VillageStateRow,
    WarningRow,
)
from ews.store.warnings import WarningRepository
from ews.types import Level, Recipient, TaganaUnit

log = logging.getLogger(__name__)

EXPORT_COLUMNS = (
    "phone",
    "village_code",
    "language",
    "channel",
    "consent_source",
    "consent_time",
    "opted_out_at",
    "opt_out_source",
    "created_at",
)
"""Columns of :meth:`Store.export_subscribers` (the import columns, then the opt-out state)."""

_RECIPIENT_ID = re.compile(r"r-[0-9a-f]{16}")
# How far a delivery has gone, per Twilio status: reports only ever move it forward.
STATUS_RANK = {
    "accepted": 1, "scheduled": 1, "queued": 1, "sending": 2, "sent": 3, "canceled": 4, "failed": 4,
    "undelivered": 4, "delivered": 5, "read": 6,
}  # fmt: skip
_M = TypeVar("_M", bound=Base)


@dataclass(frozen=True)
class AlertVersionRecord:
    """One stored alert version (see :meth:`Store.add_alert_version`)."""

    id: int
    region: str
    thread_id: str
    village_code: str
    seq: int
    transition: Transition
    level: Level
    level_before: Level
    warning_id: str
    cap_identifier: str
    status: str  # "auto" | "pending" | "approved" | "rejected"
    exercise: bool
    reason: str
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    hazard: str = ""  # "cuaca" | "gempa" | "tsunami" ("" for versions stored before it was kept)
    facts: tuple[tuple[str, str], ...] = ()  # what its message stated (an earthquake's magnitude, depth...)


@dataclass(frozen=True)
class PendingThread:
    """Versions of one thread waiting for review (see :meth:`Store.pending_threads`)."""

    region: str
    thread_id: str
    versions: int
    villages: int
    level: Level  # the highest level held
    since: datetime  # the oldest held version's creation
    exercise: bool

    def line(self) -> str:
        """One line for a report or a terminal (no personal data)."""
        mark = " LATIHAN" if self.exercise else ""
        return (
            f"{self.thread_id}: {self.versions} version(s), {self.villages} village(s), up to {self.level.label}"
            f"{mark}, waiting since {self.since.isoformat()}"
        )


class OptOutChecker:
    """``checker(address)``: has this number opted out? One held autocommit connection, one read per call.

    Each read is its own statement outside any transaction, so it sees every opt-out committed before it
    (a STOP recorded mid-batch stops the very next send), without a pool checkout per message. A broken
    connection is replaced once before the error is raised. Close it with :meth:`close` (or ``with``).

    :meth:`ask` splits a read in two: the question goes to the database now, the answer is read when it is
    needed. The dispatcher asks just before a send and reads the answer just before the request leaves (see
    :func:`ews.channels.base.at_the_wire`), so on PostgreSQL the round trip overlaps building the request.
    """

    _NAME = b"ews_opt_out"
    _SQL = "SELECT 1 FROM subscribers WHERE phone_e164 = {} AND opted_out_at IS NOT NULL LIMIT 1"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._postgres = engine.dialect.name == "postgresql"
        self._connection: Connection | None = None
        self._prepared: Any = None  # the libpq connection the early read is prepared on
        self._outstanding: _EarlyAnswer | None = None

    def _connect(self) -> Connection:
        if self._connection is None:
            self._connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return self._connection

    def _ask(self, address: str) -> bool:
        # One read per send, on the hot path: straight through the driver (its statement is prepared once).
        connection = self._connect()
        raw: Any = connection.connection.driver_connection
        if self.engine.dialect.name == "postgresql":
            return raw.execute(self._SQL.format("%s"), (address,), prepare=True).fetchone() is not None
        return raw.execute(self._SQL.format("?"), (address,)).fetchone() is not None

    def __call__(self, address: str) -> bool:
        """Whether ``address`` (E.164) opted out of any subscription."""
        self._settle()
        try:
            return self._ask(address)
        except Exception as exc:  # the driver's own errors (sqlite3 / psycopg), below SQLAlchemy
            if not _driver_error(exc):
                raise
            self._discard()  # a dropped connection: one fresh try, then the error goes up
            return self._ask(address)

    def ask(self, address: str) -> Callable[[], bool]:
        """Send the question for ``address`` now; the returned callable waits for the answer (once, then cached).

        The answer is as of when the database runs the read, i.e. after this call: an opt-out committed
        before ``ask`` is always seen. Only one question is outstanding: a new one (or any other read)
        settles the previous first. SQLite answers at once.
        """
        self._settle()
        if not self._postgres:
            answer = self(address)
            return lambda: answer
        try:
            pgconn = self._pgconn()
            pgconn.send_query_prepared(self._NAME, [address.encode()])
            while pgconn.flush():
                pass
        except Exception as exc:
            if not (_driver_error(exc) or isinstance(exc, StoreError)):
                raise
            self._discard()
            answer = self(address)  # the one fresh try, answered at once
            return lambda: answer
        self._outstanding = _EarlyAnswer(self, pgconn, address)
        return self._outstanding

    def _pgconn(self) -> Any:
        """The held connection's libpq handle, with the read prepared on it (once per connection)."""
        if self._prepared is not None and self._connection is not None:
            return self._prepared
        from psycopg import pq

        raw: Any = self._connect().connection.driver_connection
        pgconn = raw.pgconn
        if self._prepared is not pgconn:
            result = pgconn.prepare(self._NAME, self._SQL.format("$1").encode(), None)
            state = result.error_field(pq.DiagnosticField.SQLSTATE)
            if result.status != pq.ExecStatus.COMMAND_OK and state != b"42P05":  # 42P05: prepared already
                raise StoreError(f"cannot prepare the opt-out read: {result.error_message.decode(errors='replace')}")
            self._prepared = pgconn
        return pgconn

    def _settle(self) -> None:
        if self._outstanding is not None:
            self._outstanding()

    def close(self) -> None:
        """Return the held connection."""
        self._release(broken=False)

    def _discard(self) -> None:
        """Drop a connection that failed: closed for good, not returned to the pool."""
        self._release(broken=True)

    def _release(self, *, broken: bool) -> None:
        outstanding, self._outstanding = self._outstanding, None
        if outstanding is not None:
            outstanding.abandon()
            broken = broken or outstanding.broken
        if self._connection is not None:
            with contextlib.suppress(Exception):
                if broken:
                    self._connection.invalidate()
                self._connection.close()
            self._connection = None
        self._prepared = None

    def __enter__(self) -> OptOutChecker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _EarlyAnswer:
    """The answer to one :meth:`OptOutChecker.ask` on PostgreSQL, read from the connection when first called."""

    def __init__(self, checker: OptOutChecker, pgconn: Any, address: str) -> None:
        self._checker, self._pgconn, self._address = checker, pgconn, address
        self._answer: bool | None = None
        self._abandoned = False
        self.broken = False

    def __call__(self) -> bool:
        if self._answer is None:
            # Abandoned (its connection was closed before it was read): asked again, never assumed.
            self._answer = self._checker(self._address) if self._abandoned else self._read()
        return self._answer

    def _read(self) -> bool:
        from psycopg import pq

        checker = self._checker
        if checker._outstanding is self:
            checker._outstanding = None
        try:
            results = []
            while (result := self._pgconn.get_result()) is not None:
                results.append(result)
            if not results or results[0].status != pq.ExecStatus.TUPLES_OK:
                raise StoreError("the opt-out read failed: " + (
                    results[0].error_message.decode(errors="replace") if results else "no answer"))  # fmt: skip
            return bool(results[0].ntuples)
        except Exception as exc:
            if not (_driver_error(exc) or isinstance(exc, StoreError)):
                raise
            checker._discard()  # a dropped connection or a failed read: one fresh try, then the error goes up
            return checker(self._address)

    def abandon(self) -> None:
        """Read and drop the answer (the connection is being closed); :attr:`broken` if that failed."""
        self._abandoned = True
        try:
            while self._pgconn.get_result() is not None:
                pass
        except Exception:  # any failure here only means the connection is not reusable
            self.broken = True


def _driver_error(exc: BaseException) -> bool:
    """Whether ``exc`` is the database driver's own (sqlite3 / psycopg), raised below SQLAlchemy."""
    return isinstance(exc, DBAPIError | OSError) or type(exc).__module__.split(".")[0] in ("sqlite3", "psycopg")


@dataclass(frozen=True)
class SubscriberRecord:
    """One validated subscription to import. ``phone`` is E.164 (personal data); times are aware.

    ``opted_out_at``/``opt_out_source`` carry an opt-out recorded elsewhere (a re-imported export).
    """

    phone: str
    village_code: str
    language: str
    channel: str
    consent_source: str
    consent_time: datetime
    opted_out_at: datetime | None = None
    opt_out_source: str | None = None


@dataclass(frozen=True)
class ImportReport:
    """What a subscriber import did, or why it wrote nothing (``problems``, one line per rejected row).

    ``opted_out`` counts imported subscriptions that stay opted out: an opt-out is never undone by an import.
    """

    rows_read: int
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    merged_duplicates: int = 0
    opted_out: int = 0
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether the import was written (no row was rejected)."""
        return not self.problems


class Store(WarningRepository, LedgerRepository):
    """The ews database: warnings, village states, alert versions, the send ledger, subscribers and runs.

    Parameters
    ----------
    engine
        An engine from :func:`ews.store.db.open_store` (schema at the latest revision). SQLite and
        PostgreSQL are supported. A :class:`Store` is safe to share between threads.
    """

    # -- village states ---------------------------------------------------------------------------------

    def village_states(self, region: str) -> list[VillageState]:
        """Every village state of a region, active and inactive, by thread then village."""
        s = VillageStateRow
        stmt = select(s).where(s.region == region).order_by(s.thread_id, s.village_code)
        with self.engine.connect() as connection:
            return [self._state(r) for r in connection.execute(stmt).mappings()]

    def active_alerts(self, region: str) -> list[VillageState]:
        """The region's villages under an active alert (level above none), highest level first."""
        s = VillageStateRow
        stmt = (
            select(s)
            .where(s.region == region, s.active.is_(True), s.level > int(Level.NONE))
            .order_by(s.level.desc(), s.village_code, s.thread_id)
        )
        with self.engine.connect() as connection:
            return [self._state(r) for r in connection.execute(stmt).mappings()]

    def active_threads(self, region: str) -> set[str]:
        """The threads that have at least one village under an active alert in the region (one query)."""
        s = VillageStateRow
        stmt = select(s.thread_id).where(s.region == region, s.active.is_(True), s.level > int(Level.NONE)).distinct()
        with self.engine.connect() as connection:
            return set(connection.execute(stmt).scalars())

    def region_threads(self, region: str) -> set[str]:
        """Every thread with a village state in the region, active or not (one query)."""
        s = VillageStateRow
        with self.engine.connect() as connection:
            return set(connection.execute(select(s.thread_id).where(s.region == region).distinct()).scalars())

    @staticmethod
    def _state(r: Any) -> VillageState:
        return VillageState(
            region=r["region"],
            village_code=r["village_code"],
            thread_id=r["thread_id"],
            level=Level(r["level"]),
            seq=r["seq"],
            warning_id=r["warning_id"],
            warning_sent=r["warning_sent"],
            expires=r["expires"],
            fraction=r["fraction"],
            active=bool(r["active"]),
        )

    def save_states(self, region: str, states: Sequence[VillageState], *, at: datetime | None = None) -> None:
        """Insert or replace village states (by region, village, thread) in one transaction.

        Raises
        ------
        StoreError
            A state belongs to another region.
        """
        wrong = sorted({s.region for s in states} - {region})
        if wrong:
            raise StoreError(f"save_states for region {region!r} was given states of region(s) {', '.join(wrong)}")
        if not states:
            return
        updated_at = at or _now()
        rows = [
            {
                "region": s.region,
                "village_code": s.village_code,
                "thread_id": s.thread_id,
                "level": int(s.level),
                "seq": s.seq,
                "warning_id": s.warning_id,
                "warning_sent": s.warning_sent,
                "expires": s.expires,
                "fraction": float(s.fraction),
                "active": s.active,
                "updated_at": updated_at,
            }
            for s in states
        ]
        keys = ("region", "village_code", "thread_id")
        stmt = self._insert(VillageStateRow)
        stmt = stmt.on_conflict_do_update(
            index_elements=list(keys), set_={k: stmt.excluded[k] for k in rows[0] if k not in keys}
        )
        with self._tx(f"village states of region {region}") as connection:
            connection.execute(stmt, rows)

    # -- alert versions ---------------------------------------------------------------------------------

    def add_alert_version(
        self,
        decision: Decision,
        cap_identifier: str,
        status: str,
        *,
        at: datetime | None = None,
        hazard: str | None = None,
        facts: Sequence[tuple[str, str]] = (),
    ) -> int:
        """Record the alert version a decision announces and return its id.

        Idempotent: the same (region, thread, village, seq) returns the id stored first and changes nothing.

        Parameters
        ----------
        decision
            The decision; its ``seq`` numbers the version.
        cap_identifier
            The identifier of the CAP message ews publishes for it (unique).
        status
            ``"auto"`` (sent without review), ``"pending"`` (waits for a reviewer), ``"approved"`` or ``"rejected"``.
        at
            When it was recorded (aware; default now).
        hazard
            What residents act on (``"cuaca"``, ``"gempa"``, ``"tsunami"``), for the advice of later messages.
        facts
            What its message states, as (name, value) pairs (an earthquake's magnitude, depth, epicentre...).

        Raises
        ------
        StoreError
            Unknown status, or ``cap_identifier`` already used by another version.
        """
        if status not in VERSION_STATUSES:
            raise StoreError(f"alert version status {status!r} is unknown; use one of {', '.join(VERSION_STATUSES)}")
        d = decision
        stmt = (
            self._insert(AlertVersion)
            .values(
                region=d.region,
                thread_id=d.thread_id,
                village_code=d.village_code,
                seq=d.seq,
                transition=str(d.transition),
                level=int(d.level),
                level_before=int(d.level_before),
                warning_id=d.warning_id,
                cap_identifier=cap_identifier,
                status=status,
                exercise=d.exercise,
                reason=d.reason,
                created_at=at or _now(),
                hazard=hazard or None,
                facts=[list(f) for f in facts] or None,
            )
            .on_conflict_do_nothing(index_elements=["region", "thread_id", "village_code", "seq"])
        )
        a = AlertVersion
        where = (a.region == d.region, a.thread_id == d.thread_id, a.village_code == d.village_code, a.seq == d.seq)
        what = f"alert version {d.region}/{d.thread_id}/{d.village_code}#{d.seq} (CAP {cap_identifier})"
        with self._tx(what) as connection:
            connection.execute(stmt)
            found = connection.execute(select(a.id).where(*where)).scalar_one()
        return int(found)

    def alert_version(self, version_id: int) -> AlertVersionRecord:
        """One alert version by id.

        Raises
        ------
        StoreError
            No such version.
        """
        with self.engine.connect() as connection:
            row = connection.execute(select(AlertVersion).where(AlertVersion.id == version_id)).mappings().first()
        if row is None:
            raise StoreError(f"there is no alert version {version_id}")
        return self._version(row)

    def versions_of(self, region: str, thread_id: str, village_code: str) -> list[AlertVersionRecord]:
        """Every stored version of one village's alert in one thread, by ``seq`` (for CAP references)."""
        a = AlertVersion
        stmt = (
            select(a)
            .where(a.region == region, a.thread_id == thread_id, a.village_code == village_code)
            .order_by(a.seq)
        )
        with self.engine.connect() as connection:
            return [self._version(r) for r in connection.execute(stmt).mappings()]

    def current_versions(self, region: str, keys: Iterable[tuple[str, str, int]]) -> list[AlertVersionRecord]:
        """The versions numbered ``seq`` of each ``(thread_id, village_code, seq)``, in one query per thread.

        Used to list the CAP messages of every active alert without a query per village.
        """
        by_thread: dict[str, dict[tuple[str, int], None]] = {}
        for thread, village, seq in keys:
            by_thread.setdefault(thread, {})[(village, seq)] = None
        a = AlertVersion
        out: list[AlertVersionRecord] = []
        with self.engine.connect() as connection:
            for thread, wanted in sorted(by_thread.items()):
                stmt = select(a).where(a.region == region, a.thread_id == thread).order_by(a.village_code, a.seq)
                for row in connection.execute(stmt).mappings():
                    if (row["village_code"], row["seq"]) in wanted:
                        out.append(self._version(row))
        return out

    def version_hazards(self, region: str, threads: Iterable[str]) -> dict[tuple[str, str], str]:
        """(thread, village) -> the hazard of its latest version that recorded one, for ``threads`` of ``region``."""
        a = AlertVersion
        found: dict[tuple[str, str], tuple[int, str]] = {}
        with self.engine.connect() as connection:
            for chunk in _chunks(sorted(set(threads))):
                stmt = select(a.thread_id, a.village_code, a.seq, a.hazard).where(
                    a.region == region, a.thread_id.in_(chunk), a.hazard.is_not(None)
                )
                for thread, village, seq, hazard in connection.execute(stmt):
                    if (thread, village) not in found or seq > found[(thread, village)][0]:
                        found[(thread, village)] = (int(seq), str(hazard))
        return {key: hazard for key, (_, hazard) in found.items()}

    def pending_versions(self, region: str | None = None) -> list[AlertVersionRecord]:
        """Alert versions waiting for review (of one region, or all), oldest first."""
        stmt = select(AlertVersion).where(AlertVersion.status == "pending").order_by(AlertVersion.id)
        if region is not None:
            stmt = stmt.where(AlertVersion.region == region)
        with self.engine.connect() as connection:
            return [self._version(r) for r in connection.execute(stmt).mappings()]

    @staticmethod
    def _version(r: Any) -> AlertVersionRecord:
        return AlertVersionRecord(
            id=r["id"],
            region=r["region"],
            thread_id=r["thread_id"],
            village_code=r["village_code"],
            seq=r["seq"],
            transition=Transition(r["transition"]),
            level=Level(r["level"]),
            level_before=Level(r["level_before"]),
            warning_id=r["warning_id"],
            cap_identifier=r["cap_identifier"],
            status=r["status"],
            exercise=bool(r["exercise"]),
            reason=r["reason"],
            created_at=r["created_at"],
            decided_by=r["decided_by"],
            decided_at=r["decided_at"],
            hazard=r.get("hazard") or "",
            facts=tuple((str(k), str(v)) for k, v in (r.get("facts") or ())),
        )

    def set_version_status(self, version_id: int, status: str, by: str, *, at: datetime | None = None) -> None:
        """Approve or reject a pending alert version, recording who decided and when.

        Raises
        ------
        StoreError
            ``status`` is not ``"approved"``/``"rejected"``, the version does not exist, or it is not pending
            (a decision is final: the message says its current status).
        """
        if status not in ("approved", "rejected"):
            raise StoreError(f"a reviewer can set an alert version to 'approved' or 'rejected', not {status!r}")
        if not by.strip():
            raise StoreError(f"approving or rejecting alert version {version_id} needs the reviewer's name (by)")
        a = AlertVersion
        stmt = (
            update(a)
            .where(a.id == version_id, a.status == "pending")
            .values(status=status, decided_by=by, decided_at=at or _now())
        )
        with self._tx(f"alert version {version_id}") as connection:
            if connection.execute(stmt).rowcount == 1:
                return
            current = connection.execute(select(a.status).where(a.id == version_id)).scalar_one_or_none()
        if current is None:
            raise StoreError(f"there is no alert version {version_id}")
        raise StoreError(
            f"alert version {version_id} is {current!r}, not 'pending': only pending versions can be approved "
            "or rejected; a decided version stays decided (issue a new version to change what was sent)"
        )

    def decide_pending(
        self,
        region: str,
        status: str,
        by: str,
        *,
        threads: Sequence[str] = (),
        ids: Sequence[int] = (),
        every: bool = False,
        at: datetime | None = None,
    ) -> list[AlertVersionRecord]:
        """Approve or reject, in one statement, pending versions of ``region``; returns those decided (oldest first).

        Chosen are the versions in ``threads``, those with ``ids``, or ``every`` pending one. A version decided
        already stays so.

        Raises
        ------
        StoreError
            A bad ``status`` or ``by``, nothing selected, an id of another region, or a selection with
            nothing pending (the message says what the selection holds).
        """
        if status not in ("approved", "rejected"):
            raise StoreError(f"a reviewer can set alert versions to 'approved' or 'rejected', not {status!r}")
        if not by.strip():
            raise StoreError("approving or rejecting alert versions needs the reviewer's name (by)")
        if not (threads or ids or every):
            raise StoreError("say which alert versions to decide: a thread id, a version id, or all pending")
        a = AlertVersion
        chosen = a.region == region
        if not every:
            chosen &= a.thread_id.in_(list(threads)) | a.id.in_(list(ids))
        stmt = (
            update(a)
            .where(chosen, a.status == "pending")
            .values(status=status, decided_by=by, decided_at=at or _now())
            .returning(*AlertVersion.__table__.c)
        )
        with self._tx(f"decide alert versions of {region}") as connection:
            foreign = []
            if ids:
                others = select(a.id, a.region).where(a.id.in_(list(ids)), a.region != region)
                foreign = list(connection.execute(others))
            if foreign:
                raise StoreError(
                    "alert version(s) "
                    + ", ".join(f"{i} (region {r})" for i, r in foreign)
                    + f" do not belong to region {region}"
                )
            decided = sorted((self._version(r) for r in connection.execute(stmt).mappings()), key=lambda v: v.id)
            if decided:
                return decided
            held = connection.execute(
                select(a.status, func.count()).where(chosen).group_by(a.status)
            ).all()  # fmt: skip
        what = ", ".join([*threads, *map(str, ids)]) or "all"
        if not held:
            raise StoreError(f"no alert version of region {region} matches {what} (see ews alerts list)")
        counts = ", ".join(f"{n} {s}" for s, n in sorted(held))
        raise StoreError(f"nothing pending in {what} of region {region} ({counts}): a decision is final")

    def pending_threads(self, region: str | None = None) -> list[PendingThread]:
        """What waits for review, by thread: versions, villages, the highest level, the oldest (in one query)."""
        a = AlertVersion
        stmt = (
            select(a.region, a.thread_id, func.count(), func.count(func.distinct(a.village_code)),
                   func.max(a.level), func.min(a.created_at), func.max(case((a.exercise, 1), else_=0)))
            .where(a.status == "pending")
            .group_by(a.region, a.thread_id)
            .order_by(func.min(a.created_at))
        )  # fmt: skip
        if region is not None:
            stmt = stmt.where(a.region == region)
        with self.engine.connect() as connection:
            rows = connection.execute(stmt).all()
        return [
            PendingThread(
                region=r[0], thread_id=r[1], versions=int(r[2]), villages=int(r[3]), level=Level(int(r[4])),
                since=r[5], exercise=bool(r[6]),
            )
            for r in rows
        ]  # fmt: skip

    def opt_out_checker(self) -> OptOutChecker:
        """A reusable :meth:`is_opted_out` on one held autocommit connection, for the dispatcher's hot loop."""
        return OptOutChecker(self.engine)

    def is_opted_out(self, address: str) -> bool:
        """Whether this number opted out (of any subscription): it is then sent nothing more, endings included."""
        s = Subscriber
        stmt = select(func.count()).where(s.phone_e164 == address, s.opted_out_at.is_not(None))
        # A single read, once per message: autocommit skips the transaction (and SQLite's write lock).
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            return bool(connection.execute(stmt).scalar_one())

    def record_status(self, provider_id: str, status: str, detail: str = "", *, at: datetime | None = None) -> bool:
        """A provider's status report, kept only if it moves that delivery forward.

        Status callbacks arrive late, twice or out of order; a delivery never goes backwards (a late "sent"
        after "delivered" changes nothing) and a repeated one is not stored twice. Returns ``False`` for
        those and for a ``provider_id`` no send carries.
        """
        rank = STATUS_RANK.get(status.lower())
        if rank is None:
            raise StoreError(f"record_status: unknown provider status {status!r}; one of {', '.join(STATUS_RANK)}")
        with self._tx(f"status report {provider_id}") as connection:
            ledger_id = connection.execute(
                select(Delivery.ledger_id).where(Delivery.provider_id == provider_id).limit(1)
            ).scalar_one_or_none()
            if ledger_id is None:
                return False
            seen = connection.execute(select(Delivery.status).where(Delivery.ledger_id == ledger_id)).scalars().all()
            if any(STATUS_RANK.get(s.lower(), 0) >= rank for s in seen):
                return False
            connection.execute(
                self._insert(Delivery).values(
                    ledger_id=ledger_id, provider_id=provider_id, status=status.lower(), detail=detail,
                    updated_at=at or _now(),
                )
            )  # fmt: skip
        return True

    def fail_over(self, provider_id: str, *, at: datetime | None = None) -> int | None:
        """Queue the SMS text of a WhatsApp message the provider reported failed after accepting it.

        Real Twilio accepts a WhatsApp message and reports "outside the 24-hour window" (63016) later, by
        status callback. Returns the new SMS ledger row, or ``None`` when there is nothing to do (not a
        WhatsApp row of ours, no SMS text stored because the region has no fallback, or already queued).
        """
        e = LedgerEntry
        with self.engine.connect() as connection:
            row = connection.execute(
                select(e).where(e.provider_id == provider_id, e.channel == "whatsapp", e.grouped_into.is_(None))
            ).first()
        if row is None or not row.fallback_body:
            return None
        return self.enqueue(
            row.alert_version_id, row.recipient_id, row.audience, "sms", address=row.address or "",
            body=row.fallback_body, language=row.language or "id", priority=row.priority,
            valid_until=row.valid_until, at=at,
        )  # fmt: skip

    def delivery_status(self, provider_id: str) -> str | None:
        """The furthest status reached by the send with this provider id (``None``: unknown)."""
        with self.engine.connect() as connection:
            ledger_id = connection.execute(
                select(Delivery.ledger_id).where(Delivery.provider_id == provider_id).limit(1)
            ).scalar_one_or_none()
            if ledger_id is None:
                return None
            seen = connection.execute(select(Delivery.status).where(Delivery.ledger_id == ledger_id)).scalars().all()
        return max(seen, key=lambda s: STATUS_RANK.get(s.lower(), 0)) if seen else None

    # -- inbound ----------------------------------------------------------------------------------------

    def record_inbound(
        self,
        provider_sid: str,
        channel: str,
        sender_id: str,
        kind: str,
        body: str,
        *,
        unit_id: str | None = None,
        alert_version_id: int | None = None,
        at: datetime | None = None,
    ) -> bool:
        """Store a message someone sent us; ``False`` if this provider sid was stored already (a replay)."""
        if not _RECIPIENT_ID.fullmatch(sender_id):
            raise StoreError("record_inbound: sender_id must be a pseudonymous recipient id, never a phone number")
        stmt = (
            self._insert(InboundMessage)
            .values(
                provider_sid=provider_sid, channel=channel, sender_id=sender_id, kind=kind, body=body,
                unit_id=unit_id, alert_version_id=alert_version_id, received_at=at or _now(),
            )
            .on_conflict_do_nothing(index_elements=["provider_sid"])
            .returning(InboundMessage.id)
        )  # fmt: skip
        with self._tx(f"inbound message {provider_sid}") as connection:
            return connection.execute(stmt).scalar_one_or_none() is not None

    def inbound(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Stored inbound messages (newest first), optionally of one kind, for the command center."""
        stmt = select(InboundMessage).order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc())
        if kind is not None:
            stmt = stmt.where(InboundMessage.kind == kind)
        with self.engine.connect() as connection:
            return [dict(r) for r in connection.execute(stmt).mappings()]

    def coordinator_units(self, sender_id: str) -> list[str]:
        """Tagana units whose coordinator has this (pseudonymous) number."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(TaganaCoordinator.unit_id, TaganaCoordinator.phone_e164).where(
                    TaganaCoordinator.phone_e164.is_not(None)
                )
            ).all()
        return sorted({unit for unit, phone in rows if phone and recipient_id(phone) == sender_id})

    def latest_tagana_version(self, sender_id: str) -> int | None:
        """The newest alert version sent to this Tagana coordinator (what a 'SIAP' acknowledges)."""
        e = LedgerEntry
        stmt = select(func.max(e.alert_version_id)).where(e.recipient_id == sender_id, e.audience == "tagana")
        with self.engine.connect() as connection:
            found = connection.execute(stmt).scalar_one_or_none()
        return int(found) if found is not None else None

    def thread_recipients(self, region: str, thread_id: str) -> list[tuple[str, str, str]]:
        """Everyone in the ledger for any version of a thread: ``(recipient_id, audience, channel)``, sorted.

        This is who must hear a cancel or an all-clear (every ledger status is included).
        """
        e, a = LedgerEntry, AlertVersion
        stmt = (
            select(e.recipient_id, e.audience, e.channel)
            .join(a, a.id == e.alert_version_id)
            .where(a.region == region, a.thread_id == thread_id)
            .distinct()
            .order_by(e.recipient_id, e.audience, e.channel)
        )
        with self.engine.connect() as connection:
            return [(r, aud, ch) for r, aud, ch in connection.execute(stmt)]

    def version_recipients(self, region: str, thread_id: str, village_code: str) -> list[tuple[str, str, str]]:
        """Like :meth:`thread_recipients`, for one village: who heard any version of its alert in the thread."""
        e, a = LedgerEntry, AlertVersion
        stmt = (
            select(e.recipient_id, e.audience, e.channel)
            .join(a, a.id == e.alert_version_id)
            .where(a.region == region, a.thread_id == thread_id, a.village_code == village_code)
            .distinct()
            .order_by(e.recipient_id, e.audience, e.channel)
        )
        with self.engine.connect() as connection:
            return [(r, aud, ch) for r, aud, ch in connection.execute(stmt)]

    def heard_by(
        self, region: str, pairs: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], set[tuple[str, str, str]]]:
        """(thread, village) -> who heard any version of that village's alert in that thread.

        Like :meth:`version_recipients` for many pairs at once: one query per chunk of villages (not one per
        village), for the endings of a whole cycle. Each value holds (recipient, audience, channel).
        """
        wanted = set(pairs)
        e, a = LedgerEntry, AlertVersion
        out: dict[tuple[str, str], set[tuple[str, str, str]]] = {}
        with self.engine.connect() as connection:
            for chunk in _chunks(sorted({v for _, v in wanted})):
                stmt = (
                    select(a.thread_id, a.village_code, e.recipient_id, e.audience, e.channel)
                    .join(a, a.id == e.alert_version_id)
                    .where(a.region == region, a.village_code.in_(chunk))
                    .distinct()
                )
                for thread, village, recipient, audience, channel in connection.execute(stmt):
                    if (thread, village) in wanted:
                        out.setdefault((thread, village), set()).add((recipient, audience, channel))
        return out

    # -- counts and runs --------------------------------------------------------------------------------

    def counts(self, region: str) -> dict[str, int]:
        """Numbers for dashboards and the run log.

        Keys: ``active_villages`` (level above none), ``villages_<level label>``, ``versions_<status>`` and
        ``ledger_<status>`` (0 when none) for the region's alert versions, plus ``subscribers`` and
        ``opted_out`` (all regions: subscriptions have no region).
        """
        s, a, e = VillageStateRow, AlertVersion, LedgerEntry
        out: dict[str, int] = {"active_villages": 0}
        out.update({f"villages_{lvl.label.lower()}": 0 for lvl in Level if lvl is not Level.NONE})
        out.update({f"versions_{st}": 0 for st in VERSION_STATUSES})
        out.update({f"ledger_{st}": 0 for st in LEDGER_STATUSES})
        with self.engine.connect() as connection:
            levels = connection.execute(
                select(s.level, func.count())
                .where(s.region == region, s.active.is_(True), s.level > int(Level.NONE))
                .group_by(s.level)
            )
            for level, n in levels:
                out[f"villages_{Level(level).label.lower()}"] = int(n)
                out["active_villages"] += int(n)
            versions = connection.execute(select(a.status, func.count()).where(a.region == region).group_by(a.status))
            out.update({f"versions_{st}": int(n) for st, n in versions})
            ledger = connection.execute(
                select(e.status, func.count())
                .join(a, a.id == e.alert_version_id)
                .where(a.region == region)
                .group_by(e.status)
            )
            out.update({f"ledger_{st}": int(n) for st, n in ledger})
            total = connection.execute(select(func.count()).select_from(Subscriber)).scalar_one()
            opted = connection.execute(
                select(func.count()).select_from(Subscriber).where(Subscriber.opted_out_at.is_not(None))
            ).scalar_one()
        out["subscribers"] = int(total) - int(opted)
        out["opted_out"] = int(opted)
        return out

    def start_run(self, region: str, source: str, at: datetime) -> int:
        """Open a run-log entry (status ``"running"``) and return its id."""
        stmt = (
            self._insert(RunLog)
            .values(region=region, started_at=at, source=source, status="running", counts={}, problems=[])
            .returning(RunLog.id)
        )
        with self._tx(f"run of region {region}") as connection:
            return int(connection.execute(stmt).scalar_one())

    def finish_run(
        self,
        run_id: int,
        status: str,
        counts: dict[str, Any],
        problems: Sequence[Any],
        *,
        at: datetime | None = None,
    ) -> None:
        """Close a run-log entry with its outcome; ``counts`` and ``problems`` must be JSON-serialisable.

        Raises
        ------
        StoreError
            No such run.
        """
        stmt = (
            update(RunLog)
            .where(RunLog.id == run_id)
            .values(status=status, counts=dict(counts), problems=list(problems), finished_at=at or _now())
        )
        with self._tx(f"run {run_id}") as connection:
            if connection.execute(stmt).rowcount != 1:
                raise StoreError(f"there is no run {run_id} to finish (start_run returns the id)")

    def last_ledger_id(self) -> int:
        """The newest send-ledger row's id (0 when empty): what a run queues comes after it."""
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.max(LedgerEntry.id))).scalar() or 0)

    def message_timelines(
        self, region: str, thread_id: str | None = None, *, after_ledger_id: int | None = None
    ) -> list[dict[str, Any]]:
        """Each message of the region (of one thread, or queued after a ledger row) with its life's instants.

        Keys: ``audience``, ``channel``, ``sent`` (its source's ``<sent>``), ``seen`` (first fetched by ews),
        ``decided`` (its alert version stored), ``queued``, ``handed`` (its sending episode began), ``accepted``
        (the provider took it, or the dry-run outbox wrote it) and ``delivered`` (the provider reported it
        delivered); ``None`` where it has not happened. One query (no personal data: no address, no text).
        """
        e, a, w, s, d = LedgerEntry, AlertVersion, WarningRow, SourceDocument, Delivery
        seen = select(s.identifier, func.min(s.received_at).label("at")).group_by(s.identifier).subquery()
        took = (
            select(d.ledger_id, func.min(d.updated_at).label("at"))
            .where(d.status.in_(("sent", "dry-run")))
            .group_by(d.ledger_id)
            .subquery()
        )
        arrived = (
            select(d.ledger_id, func.min(d.updated_at).label("at"))
            .where(d.status == "delivered")
            .group_by(d.ledger_id)
            .subquery()
        )
        stmt = (
            select(
                e.audience, e.channel, w.sent, seen.c.at.label("seen"), a.created_at.label("decided"),
                e.created_at.label("queued"), e.leased_at.label("handed"), took.c.at.label("accepted"),
                arrived.c.at.label("delivered"),
            )
            .join(a, a.id == e.alert_version_id)
            .outerjoin(w, w.identifier == a.warning_id)
            .outerjoin(seen, seen.c.identifier == a.warning_id)
            .outerjoin(took, took.c.ledger_id == e.id)
            .outerjoin(arrived, arrived.c.ledger_id == e.id)
            .where(a.region == region, e.grouped_into.is_(None), e.body.is_not(None))
        )  # fmt: skip
        if thread_id is not None:
            stmt = stmt.where(a.thread_id == thread_id)
        if after_ledger_id is not None:
            stmt = stmt.where(e.id > after_ledger_id)
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(stmt)]

    def latest_runs(self) -> list[dict[str, Any]]:
        """The newest finished run of each region and source (each pipeline DAG's), in one query.

        Keys: region, source, status, finished_at, problems. An empty rain run never hides a degraded nowcast run.
        """
        r = RunLog
        newest = (
            select(func.max(r.id).label("id")).where(r.finished_at.is_not(None)).group_by(r.region, r.source).subquery()
        )
        stmt = select(r.region, r.source, r.status, r.finished_at, r.problems).join(newest, newest.c.id == r.id)
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(stmt.order_by(r.region))]

    # -- Tagana -----------------------------------------------------------------------------------------

    def save_tagana(self, units: Sequence[TaganaUnit]) -> None:
        """Replace every Tagana unit and coordinator with ``units`` (one row per unit and coordinator)."""
        with self._tx("Tagana units") as connection:
            connection.execute(delete(TaganaCoordinator))
            connection.execute(delete(TaganaUnitRow))
            seen: set[str] = set()
            for u in units:
                if u.unit_id not in seen:
                    seen.add(u.unit_id)
                    connection.execute(
                        self._insert(TaganaUnitRow).values(
                            unit_id=u.unit_id,
                            name=u.name,
                            kabkota_code=u.kabkota_code,
                            kecamatan_codes=list(u.kecamatan_codes),
                        )
                    )
                if u.coordinator or u.phone:
                    connection.execute(
                        self._insert(TaganaCoordinator).values(
                            unit_id=u.unit_id, name=u.coordinator, phone_e164=u.phone, channel=u.channel
                        )
                    )

    def tagana_units(self) -> list[TaganaUnit]:
        """Tagana units, one entry per coordinator (a unit without one has ``coordinator=""``, ``phone=None``)."""
        u, c = TaganaUnitRow, TaganaCoordinator
        stmt = (
            select(u.unit_id, u.name, u.kabkota_code, u.kecamatan_codes, c.name, c.phone_e164, c.channel)
            .outerjoin(c, c.unit_id == u.unit_id)
            .order_by(u.unit_id, c.id)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(stmt).all()
        return [
            TaganaUnit(unit, name, kab, tuple(kec), coord or "", phone, channel or "whatsapp")
            for unit, name, kab, kec, coord, phone, channel in rows
        ]

    # -- subscribers (personal data) --------------------------------------------------------------------

    def import_subscribers(self, rows: Sequence[SubscriberRecord], *, at: datetime | None = None) -> ImportReport:
        """Insert or update subscriptions in one transaction; an opt-out already recorded is always kept.

        Rows with the same (phone, village, channel) are merged, the first one winning. An existing
        subscription gets the row's language and consent; if it was opted out it stays opted out, and a
        new subscription of a number that opted out anywhere is stored opted out too (re-subscribing
        needs an explicit step, not a re-import).

        Raises
        ------
        StoreError
            A row has an unknown language or channel, or a naive consent time.
        """
        for n, r in enumerate(rows, start=1):
            if r.language not in LANGUAGES or r.channel not in CHANNELS:
                raise StoreError(f"subscriber row {n}: language must be id|en and channel sms|whatsapp")
            if r.consent_time.tzinfo is None:
                raise StoreError(f"subscriber row {n}: consent_time needs a time zone offset")
        merged: dict[tuple[str, str, str], SubscriberRecord] = {}
        for r in rows:
            merged.setdefault((r.phone, r.village_code, r.channel), r)
        created = at or _now()
        imported = updated = unchanged = opted_out = 0
        s = Subscriber
        with self._tx("subscriber import") as connection:
            existing: dict[tuple[str, str, str], Any] = {}
            phone_opt_out: dict[str, tuple[datetime, str | None]] = {}
            for chunk in _chunks(sorted({r.phone for r in merged.values()})):
                for row in connection.execute(select(s).where(s.phone_e164.in_(chunk))).mappings():
                    existing[(row["phone_e164"], row["village_code"], row["channel"])] = row
                    if row["opted_out_at"] is not None:
                        phone_opt_out.setdefault(row["phone_e164"], (row["opted_out_at"], row["opt_out_source"]))
            new_rows: list[dict[str, Any]] = []
            for key, r in merged.items():
                old = existing.get(key)
                if old is None:
                    kept = phone_opt_out.get(r.phone)
                    out_at, out_source = kept if kept else (r.opted_out_at, r.opt_out_source)
                    new_rows.append(
                        {
                            "phone_e164": r.phone,
                            "village_code": r.village_code,
                            "language": r.language,
                            "channel": r.channel,
                            "consent_source": r.consent_source,
                            "consent_time": r.consent_time,
                            "opted_out_at": out_at,
                            "opt_out_source": out_source,
                            "created_at": created,
                        }
                    )
                    imported += 1
                    opted_out += out_at is not None
                    continue
                changes: dict[str, Any] = {}
                for column, value in (
                    ("language", r.language),
                    ("consent_source", r.consent_source),
                    ("consent_time", r.consent_time),
                ):
                    if old[column] != value:
                        changes[column] = value
                if old["opted_out_at"] is None and r.opted_out_at is not None:
                    changes.update(opted_out_at=r.opted_out_at, opt_out_source=r.opt_out_source)
                if changes:
                    connection.execute(update(s).where(s.id == old["id"]).values(**changes))
                    updated += 1
                else:
                    unchanged += 1
                opted_out += old["opted_out_at"] is not None or r.opted_out_at is not None
            if new_rows:
                connection.execute(self._insert(Subscriber), new_rows)
        report = ImportReport(
            rows_read=len(rows),
            imported=imported,
            updated=updated,
            unchanged=unchanged,
            merged_duplicates=len(rows) - len(merged),
            opted_out=opted_out,
        )
        log.info(
            "subscribers: %d imported, %d updated, %d unchanged, %d duplicates merged, %d stay opted out",
            imported,
            updated,
            unchanged,
            report.merged_duplicates,
            opted_out,
        )
        return report

    def subscribers(
        self, village_codes: Iterable[str] | None = None, include_opted_out: bool = False
    ) -> list[Recipient]:
        """Subscribed residents (of some villages, or all), opted-out ones only if asked; by village, channel.

        The result holds phone numbers (personal data): use them to send and nowhere else.
        """
        s = Subscriber
        base = select(s.phone_e164, s.village_code, s.language, s.channel).order_by(s.village_code, s.channel, s.id)
        if not include_opted_out:
            base = base.where(s.opted_out_at.is_(None))
        statements = (
            [base]
            if village_codes is None
            else [base.where(s.village_code.in_(c)) for c in _chunks(sorted(set(village_codes)))]
        )
        out: list[Recipient] = []
        with self.engine.connect() as connection:
            for stmt in statements:
                out.extend(
                    Recipient(recipient_id(phone), phone, village, language, channel)
                    for phone, village, language, channel in connection.execute(stmt)
                )
        if village_codes is not None:
            out.sort(key=lambda r: r.village_code)  # chunks are each sorted; keep the documented order
        return out

    def opt_out(self, phone: str, source: str, at: datetime) -> bool:
        """Opt a number out of every subscription; ``True`` if anything changed (``False``: unknown or already out).

        Parameters
        ----------
        phone
            The number (E.164, or a form :func:`ews.contacts.normalize_phone` accepts).
        source
            How the person opted out (``"sms STOP"``, ``"call to BPBD"``…), kept as evidence.
        at
            When (aware).

        Raises
        ------
        StoreError
            ``phone`` is not a valid number (the message does not repeat it).
        """
        try:
            e164 = normalize_phone(phone)
        except ValueError as exc:
            raise StoreError(f"opt_out: {exc}") from None
        s = Subscriber
        stmt = (
            update(s)
            .where(s.phone_e164 == e164, s.opted_out_at.is_(None))
            .values(opted_out_at=at, opt_out_source=source)
        )
        with self._tx(f"opt-out of {recipient_id(e164)}") as connection:
            changed = connection.execute(stmt).rowcount
        log.info("opt-out of %s: %d subscription(s) changed", recipient_id(e164), changed)
        return changed > 0

    def export_subscribers(self) -> list[dict[str, str]]:
        """Every subscription with its consent and opt-out state, as text (:data:`EXPORT_COLUMNS`), for the data owner.

        Times are ISO 8601 in UTC; empty strings where there is no opt-out.
        """
        s = Subscriber
        stmt = select(s).order_by(s.village_code, s.phone_e164, s.channel)

        def iso(value: datetime | None) -> str:
            return value.isoformat() if value is not None else ""

        with self.engine.connect() as connection:
            rows = connection.execute(stmt).mappings().all()
        return [
            {
                "phone": r["phone_e164"],
                "village_code": r["village_code"],
                "language": r["language"],
                "channel": r["channel"],
                "consent_source": r["consent_source"],
                "consent_time": iso(r["consent_time"]),
                "opted_out_at": iso(r["opted_out_at"]),
                "opt_out_source": r["opt_out_source"] or "",
                "created_at": iso(r["created_at"]),
            }
            for r in rows
        ]


__all__ = [
    "EXPORT_COLUMNS",
    "AlertVersionRecord",
    "ImportReport",
    "Outcome",
    "QueuedMessage",
    "Store",
    "SubscriberRecord",
]

"""The subscribers aggregate: subscriptions with their consent, opt-outs, imports and exports.

Phone numbers are personal data (UU 27/2022): these methods see them, return them only to send, and no
message or log line here contains a number (:func:`ews.contacts.recipient_id` names one instead). An
opt-out is never undone by an import; :class:`OptOutChecker` is the dispatcher's read of it before each send.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, String, any_, bindparam, func, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError

from ews.contacts import normalize_phone, recipient_id
from ews.errors import StoreError
from ews.store.base import _ANALYZE_AFTER, StoreBase, _chunks, _now
from ews.store.models import CHANNELS, LANGUAGES, ContactFile, Subscriber
from ews.types import Recipient

log = logging.getLogger(__name__)
_READ_CHUNK = 5000  # bound values per IN (...) of a bulk read: below SQLite's 32,766 and PostgreSQL's 65,535
_WRITE_CHUNK = 5000  # rows per executemany of an import (the driver batches them further)
_COPY_CHUNK = 50_000  # rows per PostgreSQL COPY of an import

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


def _copy_rows(connection: Connection, table: str, rows: Sequence[dict[str, Any]]) -> None:
    """PostgreSQL: ``COPY`` the rows (dicts with the same keys: column names) into ``table``, in the transaction.

    One stream instead of a statement per row (psycopg's executemany); psycopg adapts each value (aware
    datetimes to ``timestamptz``), so the instants are stored as SQLAlchemy would store them.
    """
    columns = list(rows[0])
    raw: Any = connection.connection.driver_connection
    with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([row[c] for c in columns])


def _driver_error(exc: BaseException) -> bool:
    """Whether ``exc`` is the database driver's own (sqlite3 / psycopg), raised below SQLAlchemy."""
    return isinstance(exc, DBAPIError | OSError) or type(exc).__module__.split(".")[0] in ("sqlite3", "psycopg")


@dataclass(frozen=True, slots=True)  # slots: a million of them in a national import (~200 bytes each saved)
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
class ContactFileDigest:
    """A region's contact file as imported: recorded in ``contact_files`` with the import (``kind``: subscribers)."""

    region: str
    kind: str
    path: str
    digest: str


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


class SubscriberRepository(StoreBase):
    """Queries of subscriptions and opt-outs (mixed into :class:`ews.store.repository.Store`)."""

    # -- subscribers (personal data) --------------------------------------------------------------------

    def import_subscribers(
        self,
        rows: Sequence[SubscriberRecord],
        *,
        at: datetime | None = None,
        contact_file: ContactFileDigest | None = None,
    ) -> ImportReport:
        """Insert or update subscriptions in one transaction; an opt-out already recorded is always kept.

        Rows with the same (phone, village, channel) are merged, the first one winning. An existing
        subscription gets the row's language and consent; if it was opted out it stays opted out, and a
        new subscription of a number that opted out anywhere is stored opted out too (re-subscribing
        needs an explicit step, not a re-import). Every row written gets its ``recipient_id``.

        Set-based: the existing subscriptions of the file's numbers are read in a few chunked selects, the
        new ones inserted and the changed ones updated by one statement each (batched by the driver).
        ``contact_file`` (the file the rows come from) is recorded in ``contact_files`` in the same
        transaction, so a failed import records nothing.

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
        ids = {phone: recipient_id(phone) for phone in {r.phone for r in merged.values()}}  # one hash per number
        imported = updated = unchanged = opted_out = 0
        s = Subscriber
        with self._tx("subscriber import") as connection:
            existing: dict[tuple[str, str, str], Any] = {}
            phone_opt_out: dict[str, tuple[datetime, str | None]] = {}
            columns = (s.id, s.phone_e164, s.village_code, s.channel, s.language, s.consent_source, s.consent_time,
                       s.opted_out_at, s.opt_out_source, s.recipient_id)  # fmt: skip
            for chunk in _chunks(sorted(ids), _READ_CHUNK):
                for row in connection.execute(select(*columns).where(self._among(s.phone_e164, chunk))):
                    existing[(row.phone_e164, row.village_code, row.channel)] = row
                    if row.opted_out_at is not None:
                        phone_opt_out.setdefault(row.phone_e164, (row.opted_out_at, row.opt_out_source))
            # New rows are written a batch at a time as they are made (a million rows' dicts held at once were most
            # of a cold national cycle's memory peak); changed ones, few, are collected and updated at the end.
            new_rows: list[dict[str, Any]] = []
            changes: list[dict[str, Any]] = []

            def write_new() -> None:
                if self._postgres:
                    _copy_rows(connection, Subscriber.__tablename__, new_rows)
                else:
                    connection.execute(self._insert(Subscriber), new_rows)
                new_rows.clear()

            batch_rows = _COPY_CHUNK if self._postgres else _WRITE_CHUNK
            for key, r in merged.items():
                old = existing.get(key)
                if old is None:
                    kept = phone_opt_out.get(r.phone)
                    out_at, out_source = kept if kept else (r.opted_out_at, r.opt_out_source)
                    new_rows.append(
                        {
                            "phone_e164": r.phone,
                            "recipient_id": ids[r.phone],
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
                    if len(new_rows) >= batch_rows:
                        write_new()
                    continue
                out_at, out_source = old.opted_out_at, old.opt_out_source
                if out_at is None and r.opted_out_at is not None:
                    out_at, out_source = r.opted_out_at, r.opt_out_source
                differs = (
                    old.language != r.language
                    or old.consent_source != r.consent_source
                    or old.consent_time != r.consent_time
                    or out_at != old.opted_out_at
                )
                if differs or old.recipient_id is None:
                    changes.append(
                        {
                            "row_id": old.id,
                            "new_language": r.language,
                            "new_consent_source": r.consent_source,
                            "new_consent_time": r.consent_time,
                            "new_opted_out_at": out_at,
                            "new_opt_out_source": out_source,
                            "new_recipient_id": ids[r.phone],
                        }
                    )
                updated += differs
                unchanged += not differs
                opted_out += out_at is not None
            if new_rows:
                write_new()
            if changes:
                # (a bind parameter may not share a column's name in an UPDATE's SET: hence "new_")
                statement = (
                    update(s)
                    .where(s.id == bindparam("row_id"))
                    .values({name[4:]: bindparam(name) for name in changes[0] if name != "row_id"})
                )
                for batch in _chunks(changes, _WRITE_CHUNK):
                    connection.execute(statement, batch)
            if contact_file is not None:
                self._record_contact_file(connection, contact_file, len(rows), created)
            if self._postgres and imported + len(changes) >= _ANALYZE_AFTER:
                # Fresh statistics at once: a cycle's plans over the subscribers (the fan-out joins them) must not
                # take a million rows for the few thousand autovacuum last counted.
                connection.exec_driver_sql("ANALYZE subscribers")
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

    def _among(self, column: Any, values: Sequence[str]) -> Any:
        """``column IN (values)``; on PostgreSQL ``= ANY(array)``, one parameter instead of one per value.

        (Binding thousands of separate parameters costs psycopg more than the read itself.)
        """
        if self._postgres:
            return column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(String)))
        return column.in_(values)

    def _record_contact_file(self, connection: Connection, file: ContactFileDigest, rows: int, at: datetime) -> None:
        values = {"region": file.region, "kind": file.kind, "path": file.path, "digest": file.digest, "rows": rows,
                  "imported_at": at}  # fmt: skip
        insert = self._insert(ContactFile).values(**values)
        connection.execute(
            insert.on_conflict_do_update(
                index_elements=["region", "kind"],
                set_={k: insert.excluded[k] for k in ("path", "digest", "rows", "imported_at")},
            )
        )

    def contact_file_digest(self, region: str, kind: str = "subscribers") -> str | None:
        """The digest of the region's contact file of ``kind`` last imported (None: never imported)."""
        c = ContactFile
        with self.engine.connect() as connection:
            return connection.execute(select(c.digest).where(c.region == region, c.kind == kind)).scalar_one_or_none()

    def subscriber_villages(self) -> set[str]:
        """The villages that have subscriptions (opted out or not, as in a file): one read of the village index."""
        s = Subscriber
        with self.engine.connect() as connection:
            return set(connection.execute(select(s.village_code).distinct()).scalars())

    def subscribers(
        self, village_codes: Iterable[str] | None = None, include_opted_out: bool = False
    ) -> list[Recipient]:
        """Subscribed residents (of some villages, or all), opted-out ones only if asked; by village, channel.

        Reads the village index (chunks of village codes), and each subscription's stored ``recipient_id``
        (hashing the number only for a row stored without one). The result holds phone numbers (personal
        data): use them to send and nowhere else.
        """
        s = Subscriber
        base = select(s.phone_e164, s.village_code, s.language, s.channel, s.recipient_id).order_by(
            s.village_code, s.channel, s.id
        )
        if not include_opted_out:
            base = base.where(s.opted_out_at.is_(None))
        statements = (
            [base]
            if village_codes is None
            else [base.where(self._among(s.village_code, c)) for c in _chunks(sorted(set(village_codes)), _READ_CHUNK)]
        )
        out: list[Recipient] = []
        with self.engine.connect() as connection:
            for stmt in statements:
                out.extend(
                    Recipient(rid or recipient_id(phone), phone, village, language, channel)
                    for phone, village, language, channel, rid in connection.execute(stmt)
                )
        # Chunks are sorted village codes in order, each ordered by village: the result is in the documented order.
        return out

    def subscription_counts(self, village_codes: Iterable[str]) -> dict[tuple[str, str, str], int]:
        """Current (not opted-out) subscriptions per (village, language, channel) of these villages; one read per chunk.

        What a cycle renders for (one text per village, language and channel) and how many it reaches, without
        reading a subscriber.
        """
        s = Subscriber
        base = (
            select(s.village_code, s.language, s.channel, func.count())
            .where(s.opted_out_at.is_(None))
            .group_by(s.village_code, s.language, s.channel)
        )
        out: dict[tuple[str, str, str], int] = {}
        with self.engine.connect() as connection:
            for chunk in _chunks(sorted(set(village_codes)), _READ_CHUNK):
                for village, language, channel, n in connection.execute(base.where(self._among(s.village_code, chunk))):
                    out[(village, language, channel)] = int(n)
        return out

    def shared_subscriptions(self, village_codes: Iterable[str]) -> list[Recipient]:
        """The current subscriptions, among these villages, of each number subscribed to more than one of them.

        Such a person (number and channel) gets one message naming all their villages, so they are told one by
        one; everyone else is reached by village (:meth:`ews.store.fanout.FanOutRepository.fan_out`). The villages
        go into a temporary table: one query whatever their number. Holds phone numbers (personal data).
        """
        codes = sorted(set(village_codes))
        if not codes:
            return []
        mine = "FROM subscribers s JOIN ews_codes c ON c.village_code = s.village_code WHERE s.opted_out_at IS NULL"
        query = (
            f"SELECT s.phone_e164, s.village_code, s.language, s.channel, s.recipient_id {mine} "
            f"AND (s.phone_e164, s.channel) IN (SELECT s.phone_e164, s.channel {mine} "
            "GROUP BY s.phone_e164, s.channel HAVING count(*) > 1) ORDER BY s.village_code, s.channel, s.id"
        )
        with self._tx("read the subscriptions of people of several villages") as connection:
            self._fill_temp(connection, "ews_codes", [("village_code", "VARCHAR(16)")], [(c,) for c in codes],
                            key=("village_code",))  # fmt: skip
            rows = connection.exec_driver_sql(query).all()
            if not self._postgres:
                connection.exec_driver_sql("DELETE FROM ews_codes")
        return [Recipient(rid or recipient_id(phone), phone, village, language, channel)
                for phone, village, language, channel, rid in rows]  # fmt: skip

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

    # -- opt-out reads ------------------------------------------------------------------------------------

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

"""SQLAlchemy models of the ews database: warnings, village states, alert versions, contacts and the send ledger.

These classes stay inside :mod:`ews.store`: :class:`ews.store.repository.Store` returns ews dataclasses and
plain tuples, never these objects. The schema itself is created by the Alembic revisions in
``ews/store/migrations/versions`` (a test checks that they match these models on SQLite and PostgreSQL).

Every time is timezone-aware, stored in UTC and read back with ``tzinfo=UTC`` on both databases. Phone
numbers (personal data, UU 27/2022) live only in ``subscribers`` and ``tagana_coordinators``; the send
ledger holds the pseudonymous :func:`ews.contacts.recipient_id`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

VERSION_STATUSES = ("auto", "pending", "approved", "rejected")
AUDIENCES = ("resident", "tagana", "exercise")
LEDGER_STATUSES = ("queued", "sending", "unsure", "sent", "failed", "expired", "dry-run")
CHANNELS = ("sms", "whatsapp")
LANGUAGES = ("id", "en")

# Deterministic constraint names, so that migrations can refer to them on every database.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware instant stored in UTC; read back aware (``tzinfo=UTC``) on SQLite and PostgreSQL.

    SQLite has no time zone type and drops ``tzinfo``: the value is converted to UTC before it is stored,
    so the naive text is UTC by construction and gets its zone back on reading. A naive ``datetime`` is
    refused, because its instant is ambiguous across WIB/WITA/WIT.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert an aware datetime to UTC (naive UTC for SQLite); refuse a naive one."""
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} given to the store; give a time zone offset")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return the stored instant with ``tzinfo=UTC``."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of the ews tables."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


class SourceDocument(Base):
    """One fetched document (a CAP file, an RSS index) by identifier and content hash: replays are detected."""

    __tablename__ = "source_documents"
    __table_args__ = (UniqueConstraint("identifier", "content_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    identifier: Mapped[str] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(128))
    received_at: Mapped[datetime]


class WarningRow(Base):
    """A BMKG CAP warning header and its area (WKT, WGS84 lon/lat), keyed by CAP identifier."""

    __tablename__ = "warnings"

    identifier: Mapped[str] = mapped_column(String(255), primary_key=True)
    thread_id: Mapped[str] = mapped_column(String(255), index=True)
    sender: Mapped[str] = mapped_column(String(255))
    sent: Mapped[datetime]
    msg_type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32))
    references: Mapped[list[Any]]
    event: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(String(32))
    urgency: Mapped[str] = mapped_column(String(32))
    certainty: Mapped[str] = mapped_column(String(32))
    effective: Mapped[datetime | None]
    expires: Mapped[datetime | None]
    geometry_wkt: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text)
    # Identity by content (ews.ingest.bmkg_cap.content_key) and BMKG's OET event code; null for older rows.
    content_key: Mapped[str | None] = mapped_column(String(64), index=True)
    event_code: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str | None] = mapped_column(String(16))


class WarningAliasRow(Base):
    """Another identifier under which a stored warning was served: a re-served copy or the other edition."""

    __tablename__ = "warning_aliases"
    __table_args__ = (CheckConstraint(_in("reason", ("re-served", "edition")), name="reason"),)

    identifier: Mapped[str] = mapped_column(String(255), primary_key=True)
    canonical: Mapped[str] = mapped_column(ForeignKey("warnings.identifier", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(Text)
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    times_seen: Mapped[int] = mapped_column(Integer)


class VillageStateRow(Base):
    """What ews last announced for one village in one warning thread (see :class:`ews.alerts.model.VillageState`)."""

    __tablename__ = "village_states"

    region: Mapped[str] = mapped_column(String(64), primary_key=True)
    village_code: Mapped[str] = mapped_column(String(16), primary_key=True)
    thread_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    level: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    warning_id: Mapped[str] = mapped_column(String(255))
    warning_sent: Mapped[datetime]
    expires: Mapped[datetime | None]
    fraction: Mapped[float] = mapped_column(Float)
    active: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime]


class AlertVersion(Base):
    """One announced version of a village's alert in a thread: the unit that is reviewed, sent and logged."""

    __tablename__ = "alert_versions"
    __table_args__ = (
        UniqueConstraint("region", "thread_id", "village_code", "seq"),
        CheckConstraint(_in("status", VERSION_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    region: Mapped[str] = mapped_column(String(64))
    thread_id: Mapped[str] = mapped_column(String(255))
    village_code: Mapped[str] = mapped_column(String(16))
    seq: Mapped[int] = mapped_column(Integer)
    transition: Mapped[str] = mapped_column(String(32))
    level: Mapped[int] = mapped_column(Integer)
    level_before: Mapped[int] = mapped_column(Integer)
    warning_id: Mapped[str] = mapped_column(String(255))
    cap_identifier: Mapped[str] = mapped_column(String(255), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    exercise: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    decided_by: Mapped[str | None] = mapped_column(String(255))
    decided_at: Mapped[datetime | None]
    # What residents act on ("cuaca", "gempa", "tsunami"): kept so that approval, updates and endings give the
    # advice of the hazard that was announced, even when its source says nothing more (NULL: before 0005).
    hazard: Mapped[str | None] = mapped_column(String(16))
    # The facts its message states, as [[name, value], ...] (an earthquake: magnitude, depth_km, epicentre,
    # tsunami), so an approval or a later message says the same (NULL: none, or before 0006).
    facts: Mapped[list[Any] | None] = mapped_column(JSON)


class Subscriber(Base):
    """A resident's consented subscription to warnings for one village on one channel (personal data)."""

    __tablename__ = "subscribers"
    __table_args__ = (
        UniqueConstraint("phone_e164", "village_code", "channel"),
        CheckConstraint(_in("language", LANGUAGES), name="language"),
        CheckConstraint(_in("channel", CHANNELS), name="channel"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    phone_e164: Mapped[str] = mapped_column(String(20), index=True)
    village_code: Mapped[str] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(8))
    channel: Mapped[str] = mapped_column(String(16))
    consent_source: Mapped[str] = mapped_column(Text)
    consent_time: Mapped[datetime]
    opted_out_at: Mapped[datetime | None]
    opt_out_source: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]


class TaganaUnitRow(Base):
    """A Tagana unit of a kabupaten/kota; ``kecamatan_codes`` empty means the whole kabupaten/kota."""

    __tablename__ = "tagana_units"

    unit_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    kabkota_code: Mapped[str] = mapped_column(String(16))
    kecamatan_codes: Mapped[list[Any]]


class TaganaCoordinator(Base):
    """A coordinator of a Tagana unit and the number to reach them on (may be missing)."""

    __tablename__ = "tagana_coordinators"
    __table_args__ = (CheckConstraint(_in("channel", CHANNELS), name="channel"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    unit_id: Mapped[str] = mapped_column(ForeignKey("tagana_units.unit_id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(Text)
    phone_e164: Mapped[str | None] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(16))


class LedgerEntry(Base):
    """A claim to send one alert version to one (pseudonymous) recipient on one channel: at most once."""

    __tablename__ = "send_ledger"
    __table_args__ = (
        UniqueConstraint("alert_version_id", "recipient_id", "channel"),
        CheckConstraint(_in("audience", AUDIENCES), name="audience"),
        CheckConstraint(_in("status", LEDGER_STATUSES), name="status"),
        Index("ix_send_ledger_status_priority_id", "status", "priority", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_version_id: Mapped[int] = mapped_column(ForeignKey("alert_versions.id"))
    recipient_id: Mapped[str] = mapped_column(String(64))
    audience: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))
    # The message to deliver (filled when a message is queued for the dispatcher; empty for old claims).
    # ``address`` is the E.164 number: personal data, like subscribers.phone_e164, never logged.
    address: Mapped[str | None] = mapped_column(String(32))
    body: Mapped[str | None] = mapped_column(Text)
    fallback_body: Mapped[str | None] = mapped_column(Text)  # the SMS text if WhatsApp fails for good
    language: Mapped[str | None] = mapped_column(String(8))
    priority: Mapped[int] = mapped_column(Integer, default=1)  # 0: cancels and all-clears go first
    valid_until: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    claimed_at: Mapped[datetime | None]  # when a worker marked it 'sending' or renewed its lease
    worker: Mapped[str | None] = mapped_column(String(64))
    provider_id: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    # Fencing and unknown outcomes (ews.store.ledger): the token every change of a held row must name, the
    # start of the sending episode (a message may exist since then), when an 'unsure' row may be reconciled,
    # and what the provider said of a sent message (apart from any error).
    lease_version: Mapped[int] = mapped_column(Integer, default=0)
    leased_at: Mapped[datetime | None]
    settle_after: Mapped[datetime | None]
    provider_status: Mapped[str | None] = mapped_column(String(32))
    grouped_into: Mapped[int | None] = mapped_column(Integer, index=True)  # the row whose message covers this one


class Delivery(Base):
    """A provider's report on one ledger entry (accepted, delivered, failed...)."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ledger_id: Mapped[int] = mapped_column(ForeignKey("send_ledger.id"), index=True)
    provider_id: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime]


class RunLog(Base):
    """One pipeline run for a region: when, from what source, how it ended, counts and problems."""

    __tablename__ = "run_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    region: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    source: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(32))
    counts: Mapped[dict[str, Any]]
    problems: Mapped[list[Any]]


INBOUND_KINDS = ("opt-out", "ack", "report")


class InboundMessage(Base):
    """A message a person sent us (WhatsApp replies): an opt-out, a Tagana acknowledgement, or a report.

    ``provider_sid`` is unique, so a webhook delivered twice is stored once. ``sender_id`` is the
    pseudonymous :func:`ews.contacts.recipient_id` of the number, never the number.
    """

    __tablename__ = "inbound_messages"
    __table_args__ = (CheckConstraint(_in("kind", INBOUND_KINDS), name="kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    provider_sid: Mapped[str] = mapped_column(String(64), unique=True)
    channel: Mapped[str] = mapped_column(String(16))
    sender_id: Mapped[str] = mapped_column(String(40), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    body: Mapped[str] = mapped_column(Text)
    unit_id: Mapped[str | None] = mapped_column(String(64))
    alert_version_id: Mapped[int | None] = mapped_column(ForeignKey("alert_versions.id"))
    received_at: Mapped[datetime]

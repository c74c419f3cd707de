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
    ColumnElement,
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
    or_,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

VERSION_STATUSES = ("auto", "pending", "approved", "rejected")
AUDIENCES = ("resident", "tagana", "exercise", "reporter")
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
        Index("ix_alert_versions_region_village", "region", "village_code"),
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


class CapAreaRow(Base):
    """One published CAP area alert: the villages of one kecamatan, contiguous, at one level, in one thread.

    The partition a cycle published, kept so that the next cycle can tell which area alerts are unchanged (same
    ``digest``) and which ones a new alert replaces (``<references>``), and so that a lost output folder is
    rendered again to the same bytes. ``members``: ``[[village_code, seq], ...]`` (the village alert versions
    it publishes); ``refs``: ``[[identifier, sent ISO], ...]`` (the area alerts it replaces, as written);
    ``live``: the area is in force now (an ending, or an area since replaced, is not).
    """

    __tablename__ = "cap_areas"
    __table_args__ = (
        Index("ix_cap_areas_region_live", "region", "live"),
        Index("ix_cap_areas_region_digest", "region", "digest"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    region: Mapped[str] = mapped_column(String(64))
    thread_id: Mapped[str] = mapped_column(String(255))
    identifier: Mapped[str] = mapped_column(String(255), unique=True)
    digest: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    sent: Mapped[datetime]
    live: Mapped[bool] = mapped_column(Boolean)
    members: Mapped[list[Any]] = mapped_column(JSON)
    refs: Mapped[list[Any]] = mapped_column(JSON)


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
    # The pseudonymous id of the number (ews.contacts.recipient_id), kept so that a cycle does not hash it again.
    recipient_id: Mapped[str | None] = mapped_column(String(40), index=True)
    village_code: Mapped[str] = mapped_column(String(16), index=True)
    language: Mapped[str] = mapped_column(String(8))
    channel: Mapped[str] = mapped_column(String(16))
    consent_source: Mapped[str] = mapped_column(Text)
    consent_time: Mapped[datetime]
    opted_out_at: Mapped[datetime | None]
    opt_out_source: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]


class ContactFile(Base):
    """The digest of a region's contact file last imported (``kind``: ``subscribers``): an unchanged file is skipped."""

    __tablename__ = "contact_files"

    region: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    digest: Mapped[str] = mapped_column(String(64))
    rows: Mapped[int] = mapped_column(Integer)
    imported_at: Mapped[datetime]


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
    # The escalation step that pages this contact (1: at once; 2, 3...: after the policy's delays) and its role:
    # a unit coordinator, or the kab/kota BPBD duty contact.
    step: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    role: Mapped[str] = mapped_column(String(16), default="coordinator", server_default="coordinator")


class LedgerEntry(Base):
    """A claim to send one alert version to one (pseudonymous) recipient on one channel: at most once."""

    __tablename__ = "send_ledger"
    __table_args__ = (
        UniqueConstraint("alert_version_id", "recipient_id", "channel", "topic"),
        # A message about no alert version (a report's status, told to its reporter) is unique by its topic.
        Index(
            "uq_send_ledger_unversioned_topic", "recipient_id", "channel", "topic", unique=True,
            sqlite_where=text("alert_version_id IS NULL"), postgresql_where=text("alert_version_id IS NULL"),
        ),
        CheckConstraint(_in("audience", AUDIENCES), name="audience"),
        CheckConstraint(_in("status", LEDGER_STATUSES), name="status"),
        Index("ix_send_ledger_status_priority_id", "status", "priority", "id"),
        Index("ix_send_ledger_recipient_channel", "recipient_id", "channel"),  # a person's messages (supersede)
    )  # fmt: skip

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # NULL only for messages that belong to no alert version (audience 'reporter': a report's status).
    alert_version_id: Mapped[int | None] = mapped_column(ForeignKey("alert_versions.id"))
    # '' for an alert's message to a recipient; a Tagana escalation page names its mobilisation, step and round
    # ('mob:12:s2:r1') and a reporter's message its report and status ('report:7:routed'), each at most once.
    topic: Mapped[str] = mapped_column(String(96), default="", server_default="")
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
    # The shared text this row delivers (a village's subscribers share one), when it has no ``body`` of its own.
    text_id: Mapped[int | None] = mapped_column(ForeignKey("message_texts.id"))


def carries_message() -> ColumnElement[bool]:
    """A ledger row that carries a message to deliver: its own text, or a shared one (not a grouped claim)."""
    e = LedgerEntry
    return or_(e.body.is_not(None), e.text_id.is_not(None))


class MessageText(Base):
    """A message text stored once and referenced by every ledger row that delivers it (by its digest)."""

    __tablename__ = "message_texts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    body: Mapped[str] = mapped_column(Text)
    fallback_body: Mapped[str | None] = mapped_column(Text)  # the SMS text if WhatsApp fails for good
    created_at: Mapped[datetime]


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


# -- the command center: Tagana mobilisations, reports, users, sessions and the audit log ------------------------

MOBILISATION_STATUSES = ("open", "acknowledged", "mobilised", "stood-down")
MOBILISATION_EVENTS = ("opened", "page", "ack", "mobilised", "renotify", "update", "stand-down")
ACK_VIA = ("whatsapp", "sms", "dashboard", "link")


class MobilisationRow(Base):
    """A Tagana unit called out for one warning thread, with the escalation policy frozen when it opened.

    One per unit and thread. ``policy`` is the :class:`ews.command.escalation.Policy` in force at opening (as
    JSON): a later change of the region file does not change an open mobilisation. ``round`` counts the
    passes through the policy (repeats, and a re-notification after the acknowledgement timeout).
    """

    __tablename__ = "mobilisations"
    __table_args__ = (
        UniqueConstraint("unit_id", "thread_id"),
        CheckConstraint(_in("status", MOBILISATION_STATUSES), name="status"),
        Index("ix_mobilisations_status_region", "status", "region"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    region: Mapped[str] = mapped_column(String(64))
    unit_id: Mapped[str] = mapped_column(String(64))  # no foreign key: a unit file's reload keeps history
    unit_name: Mapped[str] = mapped_column(Text)
    thread_id: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    level: Mapped[int] = mapped_column(Integer)  # the highest level over the unit's villages now
    acked_level: Mapped[int | None] = mapped_column(Integer)  # the level when the current round was acknowledged
    villages: Mapped[list[Any]]  # the covered villages at or above the unit's level
    policy: Mapped[dict[str, Any]]
    round: Mapped[int] = mapped_column(Integer, default=1)
    round_started_at: Mapped[datetime]
    alert_version_id: Mapped[int | None] = mapped_column(ForeignKey("alert_versions.id"))  # the latest it pages
    opened_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None]
    mobilised_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class MobilisationEvent(Base):
    """One recorded step of a mobilisation: opened, a page (to whom, which channel, its ledger row), an ack...

    A page is unique by (mobilisation, round, step, recipient): a step fires at most once per round. Delivery
    is read from the page's ledger row (``ledger_id``). ``target`` names the contact (never the number).
    """

    __tablename__ = "mobilisation_events"
    __table_args__ = (
        CheckConstraint(_in("kind", MOBILISATION_EVENTS), name="kind"),
        Index("uq_mobilisation_events_page", "mobilisation_id", "kind", "round", "step", "recipient_id", unique=True,
              sqlite_where=text("kind = 'page'"), postgresql_where=text("kind = 'page'")),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    mobilisation_id: Mapped[int] = mapped_column(ForeignKey("mobilisations.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(16))
    round: Mapped[int] = mapped_column(Integer, default=1)
    step: Mapped[int | None] = mapped_column(Integer)
    target: Mapped[str | None] = mapped_column(Text)  # the contact's name and role
    recipient_id: Mapped[str | None] = mapped_column(String(40))
    channel: Mapped[str | None] = mapped_column(String(16))  # whatsapp/sms, or dashboard/link for an ack
    ledger_id: Mapped[int | None] = mapped_column(ForeignKey("send_ledger.id"))
    actor: Mapped[str | None] = mapped_column(Text)  # who did it: "ews", a coordinator's id, a user name
    detail: Mapped[str] = mapped_column(Text, default="")


REPORT_SOURCES = ("whatsapp", "sms", "operator", "agency")
REPORT_STATUSES = ("received", "routed", "in-progress", "resolved")


class Reporter(Base):
    """Whom to answer about a report (personal data, like ``subscribers``): a resident's number and language."""

    __tablename__ = "reporters"
    __table_args__ = (CheckConstraint(_in("language", LANGUAGES), name="language"),)

    reporter_id: Mapped[str] = mapped_column(String(40), primary_key=True)  # ews.contacts.recipient_id
    phone_e164: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(8))
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]


class ReportRow(Base):
    """A report that reached the command center, its routing (category, unit, deadline), place and status.

    ``source_ref`` (a MessageSid, an agency's own reference, an operator form's token) is unique per source,
    so a replay is stored once. ``duplicate_of`` points at the open report it repeats (same reporter or place,
    same category, soon after): it is answered with that report and not routed again.
    """

    __tablename__ = "reports"
    __table_args__ = (
        UniqueConstraint("source", "source_ref"),
        CheckConstraint(_in("source", REPORT_SOURCES), name="source"),
        CheckConstraint(_in("status", REPORT_STATUSES), name="status"),
        Index("ix_reports_status_deadline", "status", "deadline_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(16))
    source_ref: Mapped[str] = mapped_column(String(128))
    region: Mapped[str | None] = mapped_column(String(64))
    reporter_id: Mapped[str | None] = mapped_column(String(40), index=True)  # a resident (pseudonymous)
    reporter_label: Mapped[str] = mapped_column(Text, default="")  # an agency's name, an operator's "by phone"
    language: Mapped[str] = mapped_column(String(8), default="id")
    body: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(32))
    unit: Mapped[str] = mapped_column(Text)
    matched: Mapped[list[Any]]
    confidence: Mapped[float] = mapped_column(Float, default=0.0)
    village_code: Mapped[str | None] = mapped_column(String(16), index=True)
    located_by: Mapped[str | None] = mapped_column(String(16))  # subscription | place | location | operator
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    thread_id: Mapped[str | None] = mapped_column(String(255))  # the active warning over that village
    status: Mapped[str] = mapped_column(String(16))
    duplicate_of: Mapped[int | None] = mapped_column(ForeignKey("reports.id"))
    dedup_key: Mapped[str] = mapped_column(String(64), index=True)
    received_at: Mapped[datetime]
    deadline_at: Mapped[datetime]
    escalations: Mapped[int] = mapped_column(Integer, default=0)  # times it went overdue and was escalated
    escalated_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]


class ReportEvent(Base):
    """A change of a report: routed, in progress, resolved, escalated, a note; who made it and when."""

    __tablename__ = "report_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(16))  # a status, or "escalated" / "note" / "duplicate"
    actor: Mapped[str] = mapped_column(Text)
    note: Mapped[str] = mapped_column(Text, default="")
    ledger_id: Mapped[int | None] = mapped_column(ForeignKey("send_ledger.id"))  # the reporter's answer


ROLES = ("viewer", "operator", "analyst", "admin")


class UserRow(Base):
    """A command-center user: an argon2 password hash, a role and the regions (kab/kota or province codes) it sees."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(_in("role", ROLES), name="role"),
        CheckConstraint(_in("language", LANGUAGES), name="language"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16))
    regions: Mapped[list[Any]]  # ["*"]: every region
    language: Mapped[str] = mapped_column(String(8), default="id")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]


class WebSession(Base):
    """A logged-in browser: the SHA-256 of its cookie token (never the token), its CSRF token and expiry."""

    __tablename__ = "web_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    last_seen: Mapped[datetime]
    expires_at: Mapped[datetime]


class LoginAttempt(Base):
    """A login attempt, for rate limiting: ``key`` is a hash of the user name and client address, never either."""

    __tablename__ = "login_attempts"
    __table_args__ = (Index("ix_login_attempts_key_at", "key", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    ok: Mapped[bool] = mapped_column(Boolean)


class AuditEntry(Base):
    """Every state change made through the command center: who, what, on what, when (never a phone number)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(Text)  # a user name, "ews" (automatic), a coordinator's pseudonymous id
    role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64))  # "review.approve", "mobilisation.ack", "report.status"...
    subject: Mapped[str] = mapped_column(Text)  # "alert_version:12", "mobilisation:3", "report:7"
    region: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]]

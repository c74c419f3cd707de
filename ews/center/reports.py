"""Report routing (kanalisasi) with an answer for every reporter: intake, status changes, overdue escalation.

:func:`intake_report` takes one report (a resident's WhatsApp or SMS message through the webhook, a report an
operator typed in, one an agency forwarded) and, in this order:

1. stores it once per ``(source, source_ref)``: a replayed webhook returns the stored report and its answer;
2. classifies it with the region's routing rules (:func:`ews.command.routing.report_routing`);
3. links it to a place: the village an operator gave (``operator``), else the village holding the location
   the reporter shared (``location``), else the one village or kecamatan the text names unambiguously
   (``place``, see :mod:`ews.center.places`), else the reporter's subscription when it is for one village
   (``subscription``); and to the warning thread active over that place (``village_states``);
4. joins it to an open report of the same category from the same reporter or place received in the last 30
   minutes (:data:`ews.command.deadlines.DUPLICATE_WINDOW`): stored with ``duplicate_of``, not routed again,
   the reporter told which report it joined; it then follows that report's status;
5. otherwise routes it at once (``received -> routed``): the category's unit and deadline.

The reporter is answered in their language: the one given, else their subscription's, else the one they
were answered in before, else English when the text reads as English (:func:`text_language`: at least two
English function words and no Indonesian one), else Bahasa Indonesia. A WhatsApp or SMS report's first answer
is the webhook's reply (:attr:`IntakeResult.answer`), never also queued; an operator's or agency's report with
a resident's number gets it through the send ledger; one without a number gets no message (its status is in
the API and the dashboard).

:func:`set_report_status` moves a report forward only (``received -> routed -> in-progress -> resolved``;
resolved is final); each move is recorded (event and audit) and told to the reporters of the report and of
the repeats joined to it through the send ledger, once per status (topic ``report:<id>:<status>``): a repeated
call changes nothing and tells nobody again. :func:`escalate_overdue` escalates open reports past their
deadline (:mod:`ews.command.deadlines`) and pages the region's duty number (``command_center.whatsapp``, else
``command_center.phone``) once per escalation (topic ``report:<id>:escalated:<n>``).

No phone number is logged, raised or returned: reporters are named by their pseudonymous id.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from ews.codes import local_zone
from ews.command.deadlines import DUPLICATE_WINDOW, OPEN_STATUSES, escalation
from ews.command.lexicon import Category
from ews.command.routing import ReportRouting, report_routing
from ews.command.rules import RoutingRules
from ews.contacts import normalize_phone, recipient_id
from ews.errors import EwsError
from ews.messages.report_status import ReportStatus, ReportStatusRenderer, report_language
from ews.store.models import REPORT_SOURCES
from ews.store.reports import NewReport, ReportRecord

if TYPE_CHECKING:
    from ews.center.places import Gazetteer
    from ews.config import RegionConfig
    from ews.store.repository import Store

log = logging.getLogger(__name__)

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "alert_templates"
STATUS_ORDER = ("received", "routed", "in-progress", "resolved")
"""A report's statuses in the only order it may move through (a move may skip ahead)."""

ANSWER_VALID = timedelta(hours=24)
"""A status answer not delivered within a day is stale (a newer one will have been queued): it expires."""

_ENGLISH = frozenset({"the", "is", "are", "we", "our", "my", "there", "please", "help", "need", "house", "people"})
_INDONESIAN = frozenset(
    {"yang", "di", "ada", "dan", "tidak", "sudah", "kami", "saya", "air", "rumah", "tolong", "warga", "ini", "ke"}
)
_WORD = re.compile(r"[a-z]+")


class ReportError(EwsError, ValueError):
    """A report or a status change that cannot be taken: the message says what and what to do."""


def text_language(text: str) -> str | None:
    """``en`` when the text reads as English (two English function words or more, no Indonesian one), else None."""
    words = set(_WORD.findall(text.lower()))
    return "en" if len(words & _ENGLISH) >= 2 and not words & _INDONESIAN else None


@dataclass(frozen=True)
class RegionDesk:
    """One region's report desk: its routing rules, gazetteer, time zone and duty contact.

    ``duty_phone``/``duty_channel``: where an overdue report is paged (the region's ``command_center``
    WhatsApp, else its phone by SMS; ``None``: nobody is paged, the dashboard shows it first).
    ``sms_fallback``: a reporter's WhatsApp answer that fails for good (outside WhatsApp's 24-hour window, say)
    goes again by SMS (``messages.whatsapp_fallback_sms``, as for alerts).
    """

    region: str
    province_code: str
    rules: RoutingRules
    places: Gazetteer | None = None
    center_name: str = "Pusdalops"
    duty_phone: str | None = None
    duty_channel: str = "sms"
    sms_fallback: bool = False

    @classmethod
    def from_config(cls, config: RegionConfig, places: Gazetteer | None = None) -> RegionDesk:
        """From a validated region file; the duty number is normalised to E.164 (left out if it is not one)."""
        center = config.command_center
        phone, channel = None, "sms"
        for raw, kind in ((center.whatsapp, "whatsapp"), (center.phone, "sms")):
            if raw:
                try:
                    phone, channel = normalize_phone(raw), kind
                    break
                except ValueError:
                    log.warning("region %s: command_center %s is not a mobile number; not paged", config.id, kind)
        return cls(
            config.id, config.province_code, config.routing, places, center.name, phone, channel,
            config.messages.whatsapp_fallback_sms,
        )  # fmt: skip

    @property
    def zone(self) -> tuple[timezone, str]:
        """The region's civil time zone and its name (WIB, WITA, WIT)."""
        return local_zone(self.province_code)


class ReportIntake:
    """What the webhook, the CLI and the scheduler need to take reports: a :class:`RegionDesk` per region.

    Parameters
    ----------
    desks
        One per region; the first is where a report that names no region and cannot be placed goes.
    templates_dir
        The ``alert_templates/`` folder (``report_status.{id,en}.j2``).
    """

    def __init__(self, desks: Sequence[RegionDesk], *, templates_dir: Path = TEMPLATES_DIR) -> None:
        if not desks:
            raise ReportError("a report intake needs at least one region; give the region files (--region)")
        self.desks = {d.region: d for d in desks}
        self.default = desks[0].region
        self._templates = templates_dir
        self._renderers: dict[str, ReportStatusRenderer] = {}

    @classmethod
    def from_configs(cls, configs: Iterable[RegionConfig], *, read_places: bool = True) -> ReportIntake:
        """Desks for validated region files, reading each region's boundaries once when ``read_places``."""
        from ews.center.places import Gazetteer

        return cls([RegionDesk.from_config(c, Gazetteer.from_region(c) if read_places else None) for c in configs])

    def desk(self, region: str | None) -> RegionDesk | None:
        """The desk of ``region`` (``None``: the default one); ``None`` for a region it does not serve."""
        return self.desks.get(region or self.default)

    def renderer(self, desk: RegionDesk | None) -> ReportStatusRenderer:
        """The status-message renderer signed with the desk's command center name."""
        name = desk.center_name if desk else "Pusdalops"
        if name not in self._renderers:
            self._renderers[name] = ReportStatusRenderer(self._templates, center=name)
        return self._renderers[name]

    def region_for(
        self, *, village_code: str | None, latitude: float | None, longitude: float | None, text: str
    ) -> str:
        """The region a report belongs to: the one holding its village, its location or its named place."""
        for desk in self.desks.values():
            places = desk.places
            if places is None:
                continue
            if village_code is not None and village_code in places:
                return desk.region
            if latitude is not None and longitude is not None and places.locate(latitude, longitude):
                return desk.region
        for desk in self.desks.values():
            if desk.places is not None and desk.places.place_in(text) is not None:
                return desk.region
        return self.default

    def named(self, records: Sequence[ReportRecord]) -> list[ReportRecord]:
        """The records with ``village_name`` filled from their region's gazetteer."""
        out = []
        for r in records:
            desk = self.desks.get(r.region or "")
            name = desk.places.name(r.village_code) if desk and desk.places and r.village_code else None
            out.append(replace(r, village_name=name) if name else r)
        return out


@dataclass(frozen=True)
class IntakeResult:
    """What :func:`intake_report` did.

    ``answer``: the text to give the reporter now (the webhook's TwiML reply; for a report without a
    resident's number, what the operator's screen shows). ``answer_ledger_id``: the ledger row that carries it
    when it was queued instead (an operator's or agency's report with a resident's number). ``replayed``:
    the ``(source, source_ref)`` was stored before and nothing changed.
    """

    report_id: int
    routing: ReportRouting
    status: str
    unit: str
    deadline_at: datetime
    duplicate_of: int | None
    village_code: str | None
    located_by: str | None
    thread_id: str | None
    language: str
    answer: str
    answer_ledger_id: int | None = None
    replayed: bool = False


def _local(moment: datetime, desk: RegionDesk | None, code: str | None) -> tuple[datetime, str]:
    if code:
        zone, name = local_zone(code)
    elif desk is not None:
        zone, name = desk.zone
    else:
        return moment, "UTC"
    return moment.astimezone(zone), name


def _answer_text(
    intake: ReportIntake | None,
    desk: RegionDesk | None,
    what: str,
    record: ReportRecord,
    *,
    language: str,
    channel: str,
    note: str = "",
) -> str:
    renderer = intake.renderer(desk) if intake else ReportStatusRenderer(TEMPLATES_DIR)
    deadline, zone_name = _local(record.deadline_at, desk, record.village_code)
    status = ReportStatus(
        what,
        record.duplicate_of if what == "joined" and record.duplicate_of else record.id,
        record.unit,
        deadline if what in ("routed", "joined", "escalated") else None,
        zone_name,
        joined_to=record.duplicate_of,
        note=note,
    )
    return renderer.render(status, language=language, channel=channel if channel in ("sms", "whatsapp") else "sms")


def _phone(raw: str | None) -> str | None:
    if not raw:
        return None
    try:
        return normalize_phone(raw.removeprefix("whatsapp:"))
    except ValueError as exc:
        raise ReportError(f"the reporter's number {exc}; give an Indonesian mobile number") from None


def intake_report(
    store: Store,
    *,
    source: str,
    source_ref: str,
    body: str,
    at: datetime,
    region: str | None = None,
    reporter_phone: str | None = None,
    channel: str | None = None,
    language: str | None = None,
    reporter_label: str = "",
    latitude: float | None = None,
    longitude: float | None = None,
    village_code: str | None = None,
    rules: RoutingRules | None = None,
    places: Gazetteer | None = None,
    intake: ReportIntake | None = None,
    actor: str = "ews",
    role: str = "system",
) -> IntakeResult:
    """Take one report: store, classify, locate, join or route it, and say what to answer (module docstring).

    Parameters
    ----------
    store
        Where reports, reporters, events, the audit log and queued answers go.
    source
        ``whatsapp`` or ``sms`` (a resident through the webhook: the answer is the reply, not queued),
        ``operator`` or ``agency``.
    source_ref
        Unique per source: Twilio's MessageSid, the agency's own reference, the operator form's token.
    body
        The report's text (may be empty for a shared location).
    at
        When it was received (aware).
    region
        The region id; ``None``: the region holding its village, location or named place (``intake``).
    reporter_phone
        A resident's number (personal data: stored in ``reporters`` only, never logged).
    channel
        Where to answer a resident (``whatsapp``/``sms``); WhatsApp and SMS reports answer where they came from.
    language
        The reporter's language when known (an operator's choice); see the module docstring otherwise.
    reporter_label
        Who reported, in words, when it is not a resident (``BPBD Kab. Sidoarjo``, ``telepon ke Pusdalops``).
    latitude, longitude
        A location the reporter shared (WGS84 degrees).
    village_code
        The village (or kecamatan) an operator chose.
    rules, places
        The region's routing rules and gazetteer; default: those of ``intake``'s desk, else built-in rules
        and no gazetteer.
    intake
        The desks of the regions served (rules, gazetteer, zone, command center name).
    actor, role
        Who took it, for the audit log (``ews`` for the webhook; an operator's user name).

    Returns
    -------
    IntakeResult

    Raises
    ------
    ReportError
        An unknown source, an empty reference, an unreadable number, or an operator's village that is not in
        the region.
    """
    if source not in REPORT_SOURCES:
        raise ReportError(f"report source {source!r} is unknown; use one of {', '.join(REPORT_SOURCES)}")
    if not source_ref:
        raise ReportError(f"a {source} report needs its reference (MessageSid, agency reference or form token)")
    if at.tzinfo is None or at.utcoffset() is None:
        raise ReportError(f"received at {at.isoformat()} has no time zone; give an aware datetime")
    phone = _phone(reporter_phone)
    if region is None and intake is not None:
        sub_village = store.subscription(phone)[0] if phone else None
        region = intake.region_for(
            village_code=village_code or sub_village, latitude=latitude, longitude=longitude, text=body
        )
    desk = intake.desk(region) if intake else None
    answer_channel = source if source in ("whatsapp", "sms") else (channel if channel in ("whatsapp", "sms") else "sms")

    stored = store.report_by_ref(source, source_ref, now=at)
    if stored is not None:
        return _replayed(store, stored, intake, desk, rules, answer_channel)

    rules = rules if rules is not None else (desk.rules if desk else None)
    places = places if places is not None else (desk.places if desk else None)
    routing = report_routing(body, rules)
    sub_village, sub_language = store.subscription(phone) if phone else (None, None)

    code, located_by = _located(body, village_code, latitude, longitude, sub_village, places)
    thread = store.active_thread_over(region, code) if code else None
    reporter_id = recipient_id(phone) if phone else None
    lang = report_language(
        language or sub_language or (store.reporter_language(reporter_id) if reporter_id else None)
        or text_language(body) or "id"
    )  # fmt: skip
    if phone:
        store.save_reporter(phone, answer_channel, lang, at)

    prior = store.open_report_like(
        region=region, category=str(routing.category), reporter_id=reporter_id, village_code=code,
        since=at - DUPLICATE_WINDOW,
    )  # fmt: skip
    new = NewReport(
        source=source, source_ref=source_ref, region=region, reporter_id=reporter_id,
        reporter_label=reporter_label, language=lang, body=body, category=str(routing.category),
        unit=prior.unit if prior else routing.unit, matched=routing.terms, confidence=str(routing.confidence),
        village_code=code, located_by=located_by, latitude=latitude, longitude=longitude, thread_id=thread,
        status=prior.status if prior else "routed", duplicate_of=prior.id if prior else None,
        dedup_key=f"{routing.category}|{code or reporter_id or source_ref}"[:64],
        received_at=at, deadline_at=prior.deadline_at if prior else routing.due(at),
    )  # fmt: skip
    terms = ", ".join(routing.terms) or "no keyword"
    events = (
        [("received", actor, ""), ("duplicate", actor, f"joined to report #{prior.id}")]
        if prior
        else [("received", actor, ""), ("routed", actor, f"{routing.unit} ({routing.category}: {terms})")]
    )
    report_id, created = store.add_report(new, events)
    record = store.report(report_id, now=at)
    if not created:  # another request stored it between our look and our insert
        return _replayed(store, record, intake, desk, rules, answer_channel)
    action = "report.duplicate" if prior else "report.routed"
    store.record_audit(
        actor, role, action, f"report:{report_id}", region=code or region, at=at,
        detail={"source": source, "category": str(routing.category), "unit": record.unit,
                "deadline_at": record.deadline_at.isoformat(), "located_by": located_by, "thread_id": thread,
                "duplicate_of": prior.id if prior else None, "reporter_id": reporter_id},
    )  # fmt: skip
    what = "joined" if prior else "routed"
    answer = _answer_text(intake, desk, what, record, language=lang, channel=answer_channel)
    ledger_id = None
    if reporter_id and phone and source not in ("whatsapp", "sms"):
        ledger_id = store.enqueue(
            None, reporter_id, "reporter", answer_channel, address=phone, body=answer, language=lang, priority=1,
            valid_until=at + ANSWER_VALID, topic=f"report:{report_id}:{what}", at=at,
        )  # fmt: skip
    log.info(
        "report %s from %s (%s): %s -> %s, %s by %s%s",
        report_id, reporter_id or source, source, routing.category, record.unit, code or "no place",
        located_by or "-", f", joined to #{prior.id}" if prior else "",
    )  # fmt: skip
    return IntakeResult(
        report_id, routing, record.status, record.unit, record.deadline_at, record.duplicate_of, code, located_by,
        thread, lang, answer, ledger_id,
    )  # fmt: skip


def _located(
    body: str,
    village_code: str | None,
    latitude: float | None,
    longitude: float | None,
    subscribed: str | None,
    places: Gazetteer | None,
) -> tuple[str | None, str | None]:
    if village_code:
        if places is not None and village_code not in places:
            raise ReportError(
                f"village {village_code} is not in this region's boundaries; give a village or kecamatan code of it"
            )
        return village_code, "operator"
    if places is not None:
        if latitude is not None and longitude is not None:
            found = places.locate(latitude, longitude)
            if found:
                return found, "location"
        place = places.place_in(body)
        if place is not None:
            return place.code, "place"
    if subscribed:
        return subscribed, "subscription"
    return None, None


def _replayed(
    store: Store,
    record: ReportRecord,
    intake: ReportIntake | None,
    desk: RegionDesk | None,
    rules: RoutingRules | None,
    channel: str,
) -> IntakeResult:
    routing = report_routing(record.body, rules if rules is not None else (desk.rules if desk else None))
    what = "joined" if record.duplicate_of else "routed"
    answer = _answer_text(intake, desk, what, record, language=record.language, channel=channel)
    return IntakeResult(
        record.id, routing, record.status, record.unit, record.deadline_at, record.duplicate_of,
        record.village_code, record.located_by, record.thread_id, record.language, answer, None, replayed=True,
    )  # fmt: skip


def set_report_status(
    store: Store,
    report_id: int,
    status: str,
    *,
    actor: str,
    role: str,
    note: str = "",
    at: datetime,
    intake: ReportIntake | None = None,
) -> ReportRecord:
    """Move a report forward to ``status`` and tell its reporters, once (see the module docstring).

    Parameters
    ----------
    store
        The store.
    report_id
        The report (not a repeat joined to another: change that one).
    status
        ``routed``, ``in-progress`` or ``resolved`` (or the current status: then nothing changes, and an
        answer that a crash left unqueued is queued; the ledger's topic keeps it to one).
    actor, role
        Who changes it (a user name and role), for the event and the audit log.
    note
        A short note for the reporter and the record (``Tim menuju lokasi``).
    at
        When (aware).
    intake
        The desks (the region's time zone and command center name for the message).

    Returns
    -------
    ReportRecord
        The report after the change.

    Raises
    ------
    ReportError
        An unknown status, a move backwards or out of ``resolved``, or a repeat joined to another report.
    StoreError
        No such report.
    """
    if status not in STATUS_ORDER:
        raise ReportError(f"report status {status!r} is unknown; use one of {', '.join(STATUS_ORDER)}")
    current = store.report(report_id, now=at)
    if current.duplicate_of is not None:
        raise ReportError(
            f"report {report_id} is joined to report {current.duplicate_of}; change report {current.duplicate_of}"
        )
    if STATUS_ORDER.index(status) < STATUS_ORDER.index(current.status):
        raise ReportError(
            f"report {report_id} is {current.status}; a report only moves forward "
            f"({' -> '.join(STATUS_ORDER)}), so it cannot go back to {status}"
        )
    event_id = None
    if status != current.status:
        event_id = store.move_report(report_id, current.status, status, at=at, actor=actor, note=note)
        if event_id is not None:
            store.record_audit(
                actor, role, "report.status", f"report:{report_id}", region=current.village_code or current.region,
                at=at, detail={"from": current.status, "to": status, "note": note},
            )  # fmt: skip
            log.info("report %s: %s -> %s by %s", report_id, current.status, status, actor)
    record = store.report(report_id, now=at)
    if record.status == status and status in ("in-progress", "resolved"):
        # Routing is told by the intake's own answer; later moves through the ledger, once per topic.
        desk = intake.desk(record.region) if intake else None
        ledger_ids = _tell_reporters(store, record, status, note, at, intake, desk)
        if event_id is not None and ledger_ids:
            store.link_report_answer(event_id, ledger_ids[0])
    return record


def _tell_reporters(
    store: Store,
    record: ReportRecord,
    status: str,
    note: str,
    at: datetime,
    intake: ReportIntake | None,
    desk: RegionDesk | None,
) -> list[int]:
    queued = []
    for contact in store.reporter_contacts(store.report_reporters(record.id)):
        text = _answer_text(intake, desk, status, record, language=contact.language, channel=contact.channel, note=note)
        fallback = None
        if contact.channel == "whatsapp" and desk is not None and desk.sms_fallback:
            fallback = _answer_text(intake, desk, status, record, language=contact.language, channel="sms", note=note)
        found = store.enqueue(
            None, contact.reporter_id, "reporter", contact.channel, address=contact.phone, body=text,
            language=report_language(contact.language), priority=1, valid_until=at + ANSWER_VALID,
            fallback_body=fallback, topic=f"report:{record.id}:{status}", at=at,
        )  # fmt: skip
        if found is not None:
            queued.append(found)
    return queued


@dataclass(frozen=True)
class EscalatedReport:
    """One report escalated by :func:`escalate_overdue`: its count, new deadline and the duty page queued."""

    report_id: int
    region: str | None
    unit: str
    escalations: int
    deadline_at: datetime
    page_ledger_id: int | None


def escalate_overdue(
    store: Store, *, at: datetime, intake: ReportIntake | None = None, limit: int = 500
) -> list[EscalatedReport]:
    """Escalate every open report past its deadline, once per check (:func:`ews.command.deadlines.escalation`).

    Each escalation is an ``escalated`` event and an audit entry, pushes the deadline on by the category's
    deadline (the region's rules, else the built-in ones) and, where the region has a duty number, queues a
    page to it (topic ``report:<id>:escalated:<n>``: at most once per escalation, even if two checks race).
    The dashboard lists overdue reports first. Returns the reports escalated by this call.
    """
    out = []
    for report in store.overdue_reports(at, limit):
        if report.status not in OPEN_STATUSES:
            continue
        desk = intake.desk(report.region) if intake else None
        rules = desk.rules if desk else RoutingRules()
        decided = escalation(report.status, report.deadline_at, rules.deadline(Category(report.category)), at)
        if decided is None:
            continue
        note = f"overdue since {report.deadline_at.isoformat()} ({decided.periods_late} period(s)); {report.unit}"
        done = store.escalate_report(report.id, report.deadline_at, decided.deadline, at=at, note=note)
        if done is None:
            continue
        count, event_id = done
        store.record_audit(
            "ews", "system", "report.escalated", f"report:{report.id}", region=report.village_code or report.region,
            at=at, detail={"escalations": count, "deadline_at": decided.deadline.isoformat(), "unit": report.unit},
        )  # fmt: skip
        page = None
        if desk is not None and desk.duty_phone:
            escalated = replace(report, deadline_at=decided.deadline, escalations=count)
            text = _answer_text(intake, desk, "escalated", escalated, language="id", channel=desk.duty_channel)
            page = store.enqueue(
                None, recipient_id(desk.duty_phone), "tagana", desk.duty_channel, address=desk.duty_phone, body=text,
                language="id", priority=0, valid_until=decided.deadline, topic=f"report:{report.id}:escalated:{count}",
                at=at,
            )  # fmt: skip
            if page is not None:
                store.link_report_answer(event_id, page)
        log.warning("report %s overdue: escalation %s, new deadline %s", report.id, count, decided.deadline.isoformat())
        out.append(EscalatedReport(report.id, report.region, report.unit, count, decided.deadline, page))
    return out

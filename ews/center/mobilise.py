"""Tagana mobilisation with escalation: open, page, acknowledge, re-notify and stand down (issue 13, point 1).

The rules of when to page are pure (:mod:`ews.command.escalation`); this module drives them over the store:

- :func:`sync_mobilisations`, once per pipeline cycle after the alert step, opens a mobilisation per (unit,
  thread) when a covered village reaches the unit's level (Tagana's, ``levels.tagana_min_level``) in a version
  that went out, freezing the unit's policy (``mobilisation:`` in the region file). Step 1 is the pipeline's own
  Tagana notice to the unit's step-1 contacts: it is recorded as fired, with its ledger row. It follows the
  level and villages, re-opens a round when an acknowledged mobilisation's level rose and its ``ack_timeout``
  passed, and stands a mobilisation down when no covered village of the thread remains at the unit's level (the
  end notice itself goes out through the alert step's ``tagana_end_*`` path, to everyone paged).
- :func:`escalate_due` pages the due steps of every open mobilisation (the ``ews_command`` DAG, every minute;
  ``ews tagana escalate``): the unit's notice as the pipeline rendered it from the Tagana templates, behind a
  line saying it is an escalation, who did not answer and how to acknowledge, fitted to SMS or WhatsApp.
  Each page is a send-ledger row with topic ``mob:<id>:s<step>:r<round>`` for the thread's versions (so the
  updates and the end notice reach that contact too) and a ``page`` event.
- :func:`acknowledge` records an acknowledgement (a WhatsApp ``SIAP <code>``, the dashboard, a link) and moves
  the mobilisation to acknowledged or, at the quorum, mobilised.

Every state change is an event of the mobilisation and an audit entry (actor ``ews`` when automatic).
Nothing here holds or logs a phone number outside the ledger row a page is queued in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING

from ews.alerting import tagana_recipient_id
from ews.codes import parent_code
from ews.command.escalation import Page, Policy, State, due_pages, needs_renotify, status_after_ack
from ews.messages.gsm7 import sms_segments, to_gsm7
from ews.messages.render import SMS_MAX_SEGMENTS, WHATSAPP_MAX_CHARS
from ews.store.audit import AuditItem
from ews.store.mobilisations import LIVE, MobilisationRecord, NewMobilisation, NewMobilisationEvent, NewPage

if TYPE_CHECKING:
    from ews.alerts.model import VillageState
    from ews.config import RegionConfig
    from ews.store.repository import AlertVersionRecord, Store
    from ews.types import TaganaUnit

log = logging.getLogger(__name__)

ACK_VIA = ("whatsapp", "sms", "dashboard", "link")
"""How an acknowledgement arrives: a coordinator's reply, an operator on the dashboard, a signed link."""


@dataclass
class MobilisationReport:
    """What one :func:`sync_mobilisations` call changed (ids of mobilisations)."""

    opened: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    renotified: list[int] = field(default_factory=list)
    stood_down: list[int] = field(default_factory=list)
    reopened: list[int] = field(default_factory=list)


@dataclass
class EscalationReport:
    """What one :func:`escalate_due` call paged: pages queued to a number, and steps with nobody to page.

    A contact line without a number still gets its ledger row (settled ``no-contact``, like the pipeline's
    notices), but it is not a page: a step whose contacts all lack a number is in ``no_contact``.
    """

    pages: int = 0
    ledger_ids: list[int] = field(default_factory=list)
    no_contact: list[tuple[int, int]] = field(default_factory=list)  # (mobilisation, step)
    mobilisations: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class AckLinks:
    """Where SMS coordinators acknowledge by link (``{public_url}/ack/<token>``) and the key that signs tokens."""

    public_url: str
    secret: bytes

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AckLinks | None:
        """From ``EWS_PUBLIC_URL`` and ``EWS_SECRET_KEY`` (the key the web app checks links with); None without them."""
        url, key = env.get("EWS_PUBLIC_URL", ""), env.get("EWS_SECRET_KEY", "")
        return cls(url, key.encode("utf-8")) if url and key else None


@dataclass(frozen=True)
class AckResult:
    """What an acknowledgement did, per mobilisation: its id, new status and this round's acknowledgements."""

    unit_id: str
    outcomes: tuple[tuple[int, str, int, int], ...]  # (mobilisation id, status, acks, quorum)
    duplicate: bool = False  # the responder had acknowledged this round already

    @property
    def acknowledged(self) -> bool:
        """Whether there was anything live to acknowledge."""
        return bool(self.outcomes)

    @property
    def mobilised(self) -> bool:
        """Whether every acknowledged mobilisation of the unit is now mobilised (quorum reached)."""
        return bool(self.outcomes) and all(status == "mobilised" for _, status, _, _ in self.outcomes)

    def reply(self) -> str:
        """The answer to the responder (Bahasa Indonesia, GSM-7, short)."""
        if not self.outcomes:
            return f"Tidak ada mobilisasi {self.unit_id} yang terbuka untuk dikonfirmasi."
        if self.mobilised:
            return f"Terima kasih, kesiapan {self.unit_id} tercatat. Unit {self.unit_id} kini TERMOBILISASI."
        counts = ", ".join(f"{acks}/{quorum}" for _, _, acks, quorum in self.outcomes)
        return f"Terima kasih, kesiapan {self.unit_id} tercatat ({counts} konfirmasi; menunggu yang lain)."


# -- acknowledgement links --------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _signature(payload: str, secret: bytes) -> str:
    return _b64(hmac.new(secret, payload.encode("ascii"), hashlib.sha256).digest()[:12])


def ack_token(mobilisation_id: int, recipient_id: str, secret: bytes) -> str:
    """A URL-safe token that acknowledges ``mobilisation_id`` for ``recipient_id`` (pseudonymous, no number).

    HMAC-SHA256 (truncated to 96 bits) over both; :func:`read_ack_token` checks it.
    """
    payload = f"{mobilisation_id}.{recipient_id.removeprefix('r-')}"
    return f"{payload}.{_signature(payload, secret)}"


def read_ack_token(token: str, secret: bytes) -> tuple[int, str]:
    """The (mobilisation id, recipient id) of a token from :func:`ack_token`.

    Raises
    ------
    ValueError
        The token is malformed or its signature does not match (a forged or mistyped link).
    """
    parts = token.strip().split(".")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isalnum():
        raise ValueError("not an acknowledgement token of ews: the link is incomplete or mistyped")
    payload = f"{parts[0]}.{parts[1]}"
    if not hmac.compare_digest(_signature(payload, secret), parts[2]):
        raise ValueError("the acknowledgement link's signature does not match: it was altered or is not from ews")
    return int(parts[0]), f"r-{parts[1]}"


# -- sync with the alert lifecycle ------------------------------------------------------------------------------


def _covers(unit: TaganaUnit, village_code: str) -> bool:
    return parent_code(village_code, 2) == unit.kabkota_code and (
        not unit.kecamatan_codes or parent_code(village_code, 3) in unit.kecamatan_codes
    )


def _target(unit: TaganaUnit) -> str:
    return f"{unit.coordinator or 'tanpa kontak'} ({unit.role}, tahap {unit.step})"


def sync_mobilisations(
    store: Store,
    region: str,
    config: RegionConfig,
    units: Sequence[TaganaUnit],
    *,
    at: datetime,
    states: Sequence[VillageState] | None = None,
    current: Sequence[AlertVersionRecord] | None = None,
) -> MobilisationReport:
    """Bring the region's mobilisations in line with its alerts after a pipeline cycle (module docstring).

    Parameters
    ----------
    store
        The ews store the cycle wrote its village states, alert versions and Tagana notices to.
    region
        The region id (``config.id``).
    config
        The region: its Tagana level and ``mobilisation:`` policies (frozen into a mobilisation when it opens).
    units
        The region's Tagana contacts, one per line of ``tagana.csv`` (``TaganaUnit.step``, ``.role``).
    at
        The cycle's instant (the injectable clock).
    states, current
        The region's village states and the current versions of its active ones, as the cycle's alert step
        left them (:class:`ews.alerting.AlertReport`); read from the store when not given.

    Returns
    -------
    MobilisationReport
        Ids opened, updated, re-notified, re-opened and stood down. A constant number of queries per call.
    """
    report = MobilisationReport()
    minimum = int(config.levels.tagana_min_level)
    states = [s for s in (store.village_states(region) if states is None else states)
              if s.active and int(s.level) >= minimum]  # fmt: skip
    went_out = store.latest_versions(region, {(s.thread_id, s.village_code) for s in states})
    wanted_keys = {(s.thread_id, s.village_code, s.seq) for s in states}
    if current is None:
        current = store.current_versions(region, sorted(wanted_keys))
    else:  # the caller's are the active alerts' (level above none): any other wanted is read
        missing = wanted_keys - {(v.thread_id, v.village_code, v.seq) for v in current}
        if missing:
            current = [*current, *store.current_versions(region, sorted(missing))]
    current_of = {
        (v.thread_id, v.village_code): v for v in current if (v.thread_id, v.village_code, v.seq) in wanted_keys
    }
    by_unit: dict[str, list[TaganaUnit]] = {}
    for u in units:
        by_unit.setdefault(u.unit_id, []).append(u)
    by_kabkota: dict[str, list[TaganaUnit]] = {}  # a village is looked up among its kab/kota's units only
    for contacts in by_unit.values():
        by_kabkota.setdefault(contacts[0].kabkota_code, []).append(contacts[0])
    # (unit, thread) -> {village: level}: covered villages at the unit's level in a version that went out.
    wanted: dict[tuple[str, str], dict[str, int]] = {}
    for s in states:
        version = current_of.get((s.thread_id, s.village_code))
        if version is None or version.status not in ("auto", "approved") or version.exercise:
            continue
        for unit in by_kabkota.get(parent_code(s.village_code, 2), ()):
            if _covers(unit, s.village_code):
                wanted.setdefault((unit.unit_id, s.thread_id), {})[s.village_code] = int(s.level)
    # The live mobilisations, and the stood-down ones of the threads wanted (they may re-open): not the history.
    threads = {thread for _, thread in wanted}
    ended = store.mobilisations([region], ["stood-down"], thread_ids=threads, now=at) if threads else []
    live = store.mobilisations([region], LIVE, now=at)
    existing = {(m.unit_id, m.thread_id): m for m in [*ended, *live]}
    changes: list[tuple[int, dict[str, object]]] = []
    events: list[NewMobilisationEvent] = []
    audits: list[AuditItem] = []
    new: list[NewMobilisation] = []
    # (mobilisation, unit, thread, frozen policy, round) whose round begins with the pipeline's notice to step 1.
    first: list[tuple[int, str, str, Mapping[str, object], int]] = []
    for key, villages in sorted(wanted.items()):
        unit_id, thread = key
        level = max(villages.values())
        codes = tuple(sorted(villages))
        newest = max((went_out[(thread, v)] for v in codes if (thread, v) in went_out), default=None)
        m = existing.get(key)
        if m is None:
            policy = config.mobilisation.policy_for(unit_id)
            new.append(
                NewMobilisation(
                    region, unit_id, by_unit[unit_id][0].name, thread, level, codes, policy.to_json(), newest
                )
            )
            continue
        if m.status == "stood-down":  # the warning came back over the unit's villages: a new round
            changes.append((m.id, {"status": "open", "level": level, "villages": list(codes), "round": m.round + 1,
                                   "round_started_at": at, "acked_level": None, "acknowledged_at": None,
                                   "mobilised_at": None, "ended_at": None, "alert_version_id": newest}))  # fmt: skip
            events.append(NewMobilisationEvent(m.id, "renotify", m.round + 1, detail=f"re-opened at level {level}"))
            audits.append(AuditItem("ews", "system", "mobilisation re-opened", f"mobilisation:{m.id}", region,
                                    {"level": level, "round": m.round + 1}))  # fmt: skip
            report.reopened.append(m.id)
            first.append((m.id, unit_id, thread, m.policy, m.round + 1))  # the cycle's notice of the return
            continue
        policy = Policy.from_json(m.policy)
        if needs_renotify(policy, m.status, level, m.acked_level, m.acknowledged_at, at):
            again = {"status": "open", "level": level, "villages": list(codes), "round": m.round + 1,
                     "round_started_at": at, "acked_level": None, "alert_version_id": newest}  # fmt: skip
            changes.append((m.id, again))
            events.append(
                NewMobilisationEvent(m.id, "renotify", m.round + 1, detail=f"level rose {m.acked_level} -> {level}")
            )
            audits.append(AuditItem("ews", "system", "mobilisation re-notified", f"mobilisation:{m.id}", region,
                                    {"level": level, "round": m.round + 1}))  # fmt: skip
            report.renotified.append(m.id)
            if newest != m.alert_version_id:  # this cycle's rise went out as the pipeline's notice: that is step 1
                first.append((m.id, unit_id, thread, m.policy, m.round + 1))
        elif level != m.level or codes != m.villages or newest != m.alert_version_id:
            changes.append((m.id, {"level": level, "villages": list(codes), "alert_version_id": newest}))
            if level != m.level or codes != m.villages:
                events.append(
                    NewMobilisationEvent(m.id, "update", m.round, detail=f"level {level}, {len(codes)} village(s)")
                )
                report.updated.append(m.id)
    for key, m in sorted(existing.items()):
        if key not in wanted and m.status in LIVE:
            changes.append((m.id, {"status": "stood-down", "ended_at": at}))
            events.append(
                NewMobilisationEvent(m.id, "stand-down", m.round, detail="the warning ended for its villages")
            )
            audits.append(AuditItem("ews", "system", "mobilisation stood down", f"mobilisation:{m.id}", region))
            report.stood_down.append(m.id)
    opened = store.open_mobilisations(new, at=at)
    for n in new:
        mid = opened[(n.unit_id, n.thread_id)]
        report.opened.append(mid)
        audits.append(AuditItem("ews", "system", "mobilisation opened", f"mobilisation:{mid}", region,
                                {"unit": n.unit_id, "thread": n.thread_id, "level": n.level}))  # fmt: skip
        first.append((mid, n.unit_id, n.thread_id, n.policy, 1))
    # Step 1 of an opened or re-opened mobilisation is the pipeline's own notice to the step-1 contacts (this
    # cycle's, or a past one's): escalate_due does not page them a second time.
    step_one = {unit: [u for u in by_unit[unit] if u.step == 1] for _, unit, _, _, _ in first}
    notices = store.tagana_notices(
        region,
        {thread for _, _, thread, _, _ in first},
        {tagana_recipient_id(u) for us in step_one.values() for u in us},
    )
    for mid, unit_id, thread, frozen, rnd in first:
        targets = Policy.from_json(frozen).steps[0].targets
        told = [u for u in step_one[unit_id] if 1 in targets]
        for u in told:
            rid = tagana_recipient_id(u)
            notice = notices.get((thread, rid))
            events.append(NewMobilisationEvent(
                mid, "page", rnd, 1, _target(u), rid, u.channel if u.phone else None,
                notice[0] if notice else None,
                detail="the pipeline's Tagana notice" if notice else "no notice found in the ledger",
            ))  # fmt: skip
            audits.append(AuditItem("ews", "system", "mobilisation page", f"mobilisation:{mid}", region,
                                    {"round": rnd, "step": 1, "recipient": rid}))  # fmt: skip
        if not told:
            nobody = "no step-1 contact: nobody notified at once"
            events.append(NewMobilisationEvent(mid, "page", rnd, 1, detail=nobody))
            audits.append(AuditItem("ews", "system", "mobilisation page", f"mobilisation:{mid}", region,
                                    {"round": rnd, "step": 1, "recipient": None, "nobody": nobody}))  # fmt: skip
    store.update_mobilisations(changes, at=at)
    store.add_mobilisation_events(events, at=at)
    store.record_audit_many(audits, at=at)
    return report


# -- escalation -------------------------------------------------------------------------------------------------


def _header(m: MobilisationRecord, page: Page, silent: Sequence[str], link: str | None, sms: bool) -> str:
    who = ", ".join(dict.fromkeys(silent)) or "kontak sebelumnya"
    how = f"balas SIAP {m.unit_id}" + (f" atau buka {link}" if link else "")
    if sms:
        return f"ESKALASI tahap {page.step}: {who} belum menjawab. Konfirmasi: {how}."
    return f"*ESKALASI tahap {page.step}*: {who} belum menjawab. Konfirmasi: {how}."


def page_text(header: str, notice: str, channel: str) -> str:
    """The escalation line before the unit's notice, fitted to the channel.

    SMS: GSM-7 in at most :data:`~ews.messages.render.SMS_MAX_SEGMENTS` parts; the notice's lines are dropped
    from the end until it fits (its first line names the warning, the level and the villages), down to the
    escalation line alone. WhatsApp: at most :data:`~ews.messages.render.WHATSAPP_MAX_CHARS` characters.
    """
    if channel == "sms":
        lines = to_gsm7(notice).splitlines()
        head = to_gsm7(header)
        while lines:
            text = "\n".join([head, *lines])
            if sms_segments(text) <= SMS_MAX_SEGMENTS:
                return text
            lines.pop()
        return head
    text = f"{header}\n\n{notice}"
    return text if len(text) <= WHATSAPP_MAX_CHARS else text[: WHATSAPP_MAX_CHARS - 2].rstrip() + ".."


def escalate_due(store: Store, *, at: datetime, links: AckLinks | None = None) -> EscalationReport:
    """Page the due steps of every open mobilisation; repeat rounds (module docstring). Idempotent.

    Parameters
    ----------
    store
        The ews store (all regions).
    at
        Now (the injectable clock).
    links
        With them, SMS contacts get a signed link to acknowledge (``{public_url}/ack/<token>``); WhatsApp
        contacts always reply ``SIAP <code>``.

    Returns
    -------
    EscalationReport
        Ledger rows queued (the dispatcher sends them), and steps that had nobody to page.
    """
    report = EscalationReport()
    due: list[tuple[MobilisationRecord, list[Page]]] = []
    for m in store.mobilisations(statuses=["open"], now=at):
        policy = Policy.from_json(m.policy)
        state = State(m.status, m.round, m.round_started_at or m.opened_at, m.first_round, m.fired)
        pages = due_pages(policy, state, at)
        if pages:
            due.append((m, pages))
    if not due:
        return report
    contacts: dict[str, list[TaganaUnit]] = {}
    for u in store.tagana_units():
        contacts.setdefault(u.unit_id, []).append(u)
    paged = store.paged_recipients([m.id for m, _ in due])
    regions = {m.region for m, _ in due}
    notices: dict[tuple[str, str, str], tuple[int, str, str | None, str]] = {}
    versions: dict[tuple[str, str, str], int] = {}
    for region in regions:
        mine = [m for m, _ in due if m.region == region]
        ids = {tagana_recipient_id(u) for m in mine for u in contacts.get(m.unit_id, [])}
        found = store.tagana_notices(region, {m.thread_id for m in mine}, ids)
        notices.update({(region, t, r): v for (t, r), v in found.items()})
        latest = store.latest_versions(region, {(m.thread_id, v) for m in mine for v in m.villages})
        versions.update({(region, t, v): i for (t, v), i in latest.items()})
    changes: list[tuple[int, dict[str, object]]] = []
    events: list[NewMobilisationEvent] = []
    audits: list[AuditItem] = []
    pages_out: list[NewPage] = []
    queued: list[tuple[int, bool]] = []  # per page: its event's index, whether its contact has a number
    for m, pages in due:
        unit = contacts.get(m.unit_id, [])
        told = {tagana_recipient_id(u): notices.get((m.region, m.thread_id, tagana_recipient_id(u))) for u in unit}
        stored = [n for n in told.values() if n is not None]
        version_ids = [
            versions[(m.region, m.thread_id, v)] for v in m.villages if (m.region, m.thread_id, v) in versions
        ]
        if m.alert_version_id is not None and not version_ids:
            version_ids = [m.alert_version_id]
        newest = pages[-1]
        if newest.round != m.round:
            changes.append((m.id, {"round": newest.round, "round_started_at": newest.round_started_at}))
        for page in pages:
            silent = [t for rnd, step, _, t in paged.get(m.id, []) if rnd == page.round and step < page.step]
            silent = silent or [t for _, _, _, t in paged.get(m.id, [])]
            targets = [u for u in unit if u.step in page.targets]
            topic = f"mob:{m.id}:s{page.step}:r{page.round}"
            for u in targets:
                rid = tagana_recipient_id(u)
                sms = u.channel == "sms"
                link = (
                    f"{links.public_url.rstrip('/')}/ack/{ack_token(m.id, rid, links.secret)}"
                    if links and sms
                    else None
                )
                names = [s.split(" (")[0] for s in silent]
                own = told[rid]
                text = page_text(_header(m, page, names, link, sms), _notice_for(u.channel, own, stored), u.channel)
                fallback = None
                if u.channel == "whatsapp" and u.phone:
                    fallback = page_text(_header(m, page, names, None, True), _notice_for("sms", own, stored), "sms")
                queued.append((len(events), bool(u.phone)))
                pages_out.append(NewPage(tuple(version_ids), rid, u.channel, u.phone or "", text, fallback, topic))
                events.append(NewMobilisationEvent(
                    m.id, "page", page.round, page.step, _target(u), rid, u.channel if u.phone else None, None,
                    detail="escalation page" if u.phone else "escalation page: no number for this contact",
                ))  # fmt: skip
                audits.append(AuditItem("ews", "system", "mobilisation page", f"mobilisation:{m.id}", m.region,
                                        {"round": page.round, "step": page.step, "recipient": rid}))  # fmt: skip
            if not targets:
                nobody = f"no contact of step(s) {page.targets} in tagana.csv"
                events.append(NewMobilisationEvent(m.id, "page", page.round, page.step, detail=nobody))
                audits.append(AuditItem("ews", "system", "mobilisation page", f"mobilisation:{m.id}", m.region,
                                        {"round": page.round, "step": page.step, "recipient": None,
                                         "nobody": nobody}))  # fmt: skip
            if not any(u.phone for u in targets):
                report.no_contact.append((m.id, page.step))
        report.mobilisations.append(m.id)
    # Every page in one transaction of the ledger (None: queued before, or no version of the thread went out).
    for (index, numbered), lid in zip(queued, store.queue_pages(pages_out, at=at), strict=True):
        events[index] = replace(events[index], ledger_id=lid)
        if lid is not None and numbered:
            report.pages += 1
            report.ledger_ids.append(lid)
    store.update_mobilisations(changes, at=at)
    store.add_mobilisation_events(events, at=at)
    store.record_audit_many(audits, at=at)
    if report.no_contact:
        log.warning("Tagana escalation: %d step(s) had no contact to page", len(report.no_contact))
    return report


def _notice_for(
    channel: str,
    own: tuple[int, str, str | None, str] | None,
    stored: Sequence[tuple[int, str, str | None, str]],
) -> str:
    """The unit's notice text for ``channel``: the contact's own, else a step-1 contact's, SMS text for SMS."""
    for _, body, fallback, ch in [*([own] if own else []), *sorted(stored, key=lambda n: -n[0])]:
        if channel == "sms":
            if ch == "sms":
                return body
            if fallback:
                return fallback
        else:
            return body
    return "MOBILISASI Tagana: lihat pemberitahuan pusat komando."


# -- acknowledgement --------------------------------------------------------------------------------------------


def acknowledge(
    store: Store,
    *,
    unit_id: str,
    responder: str,
    via: str,
    at: datetime,
    mobilisation_id: int | None = None,
    role: str | None = None,
) -> AckResult:
    """Record ``responder``'s acknowledgement of a unit's live mobilisations (or of one).

    Parameters
    ----------
    store
        The ews store.
    unit_id
        The unit (any case, as in ``SIAP tgn-3578``).
    responder
        A coordinator's pseudonymous id (a reply, a link) or an operator's user name (the dashboard).
    via
        ``whatsapp``, ``sms``, ``dashboard`` or ``link``.
    at
        When (the injectable clock).
    mobilisation_id
        Only this mobilisation (a link, a dashboard button); default: every live one of the unit.
    role
        The responder's role for the audit log (an operator's, from the dashboard); default ``tagana`` for a
        coordinator and ``user`` for the dashboard.

    Returns
    -------
    AckResult
        Per mobilisation its status and this round's acknowledgements (one per responder and round).

    Raises
    ------
    ValueError
        ``via`` is not one of :data:`ACK_VIA`, or ``mobilisation_id`` is not one of the unit's.
    """
    if via not in ACK_VIA:
        raise ValueError(f"acknowledgement via {via!r}: use one of {', '.join(ACK_VIA)}")
    ids = store.live_mobilisation_ids(unit_id)
    if mobilisation_id is not None:
        found = store.mobilisation(mobilisation_id)
        if found is None or found.unit_id.upper() != unit_id.upper():
            raise ValueError(f"mobilisation {mobilisation_id} is not one of unit {unit_id}'s")
        ids = [i for i in ids if i == mobilisation_id]
    records = store.mobilisations(ids=ids, now=at) if ids else []
    outcomes: list[tuple[int, str, int, int]] = []
    changes: list[tuple[int, dict[str, object]]] = []
    events: list[NewMobilisationEvent] = []
    audits: list[AuditItem] = []
    duplicate = False
    role = role or ("user" if via == "dashboard" else "tagana")
    for m in records:
        policy = Policy.from_json(m.policy)
        if responder in m.responders:
            duplicate = True
            outcomes.append((m.id, m.status, m.acks, m.quorum))
            continue
        acks = m.acks + 1
        status = status_after_ack(policy, m.status, acks)
        values: dict[str, object] = {"status": status}
        if m.status == "open":
            values.update(acknowledged_at=at, acked_level=m.level)
        if status == "mobilised" and m.status != "mobilised":
            values["mobilised_at"] = at
        changes.append((m.id, values))
        events.append(NewMobilisationEvent(
            m.id, "ack", m.round, channel=via, recipient_id=responder if via != "dashboard" else None,
            actor=responder, detail=f"{acks}/{policy.quorum} this round",
        ))  # fmt: skip
        audits.append(AuditItem(responder, role, "mobilisation acknowledged", f"mobilisation:{m.id}", m.region,
                                {"via": via, "acks": acks, "quorum": policy.quorum}))  # fmt: skip
        if status == "mobilised" and m.status != "mobilised":
            events.append(
                NewMobilisationEvent(m.id, "mobilised", m.round, actor="ews", detail=f"quorum {policy.quorum}")
            )
            audits.append(AuditItem("ews", "system", "mobilisation mobilised", f"mobilisation:{m.id}", m.region))
        outcomes.append((m.id, status, acks, policy.quorum))
    store.update_mobilisations(changes, at=at)
    store.add_mobilisation_events(events, at=at)
    # Another process may have counted its own acknowledgement beside this one: with every ack stored, the
    # quorum is checked again in the database (the last to commit sees them all).
    unsure = [
        (m.id, m.round, Policy.from_json(m.policy).quorum)
        for m in records
        if m.responders.isdisjoint({responder}) and (m.id, "mobilised") not in {(o[0], o[1]) for o in outcomes}
    ]
    late = set(store.ratchet_mobilised(unsure, at=at)) if unsure else set()
    for m in records:
        if m.id in late:
            store.add_mobilisation_events(
                [NewMobilisationEvent(m.id, "mobilised", m.round, actor="ews", detail="quorum, with another ack")],
                at=at,
            )
            audits.append(AuditItem("ews", "system", "mobilisation mobilised", f"mobilisation:{m.id}", m.region))
    outcomes = [(mid, "mobilised" if mid in late else status, acks, quorum) for mid, status, acks, quorum in outcomes]
    store.record_audit_many(audits, at=at)
    return AckResult(unit_id.upper(), tuple(outcomes), duplicate)


def board_lines(store: Store, regions: Sequence[str] | None = None, *, at: datetime) -> list[str]:
    """The Tagana board as text lines (``ews tagana board``): the counts, then one line per live mobilisation."""
    counts = store.mobilisation_board(regions)
    lines = ["  ".join(f"{k}: {n}" for k, n in counts.items())]
    for m in store.mobilisations(regions, now=at):
        if m.status not in LIVE:
            continue
        nxt = f", next page {m.next_page_at:%Y-%m-%d %H:%M} UTC" if m.next_page_at else ""
        lines.append(
            f"#{m.id} {m.unit_id} ({m.unit_name}) {m.status}, level {m.level}, {len(m.villages)} village(s), "
            f"round {m.round}, acks {m.acks}/{m.quorum}{', escalated' if m.escalated else ''}{nxt} [{m.thread_id}]"
        )
    return lines

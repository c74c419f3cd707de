"""The alert step of a run: warnings and impacts -> lifecycle decisions -> review gate -> sends and CAP files.

Edge composition (it uses the store and a channel); every rule lives in a pure module:
:mod:`ews.alerts.lifecycle` decides, :mod:`ews.messages` renders, :mod:`ews.cap` writes CAP.

Exactly-once per recipient comes from the send ledger: a message is rendered and handed to the channel only
after :meth:`ews.store.repository.Store.claim` created its ledger row, so a cycle run twice (or two
workers racing) sends nothing twice. Ending messages (cancel, all-clear, expiry) go to whoever the ledger
says heard that village's alert in that thread, never to whoever the geometry happens to cover now, and
they are never held for review.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ews.alerts.identity import ActiveThread, alias_of, continued_thread, edition_reason
from ews.alerts.lifecycle import Outcome, ThreadMessage, decide, latest_per_thread, reference_ids, thread_of
from ews.alerts.model import Decision, Transition, VillageState
from ews.alerts.situation import Announcement, Part, announce
from ews.cap.writer import (
    cap_identifier,
)
from ews.cap_output import publish_cap
from ews.codes import local_zone, parent_code
from ews.config import CommandCenter, RegionConfig
from ews.contacts import recipient_id
from ews.errors import StoreError
from ews.hazard.earthquake import link_revisions
from ews.messages.render import MessageRenderer, TaganaContact, hazard_from_event
from ews.review.scene import is_bmkg
from ews.store.records import warning_to_record
from ews.store.repository import AlertVersionRecord, Claim, FanOut, NewVersion, Store
from ews.store.warnings import WarningHeader
from ews.types import AlsoWarning, HazardMessage, Level, Recipient, TaganaUnit, VillageAlert, Warning

log = logging.getLogger(__name__)


@dataclass
class AlertReport:
    """What the alert step did (no personal data): transitions, versions held for review, messages queued."""

    transitions: dict[str, int] = field(default_factory=dict)
    pending: list[int] = field(default_factory=list)
    queued: int = 0
    skipped_duplicates: int = 0
    cap_files: int = 0
    notes: list[str] = field(default_factory=list)
    villages_to_tell: int = 0  # villages with something to announce this cycle
    reachable: int = 0  # residents, exercise-list members and Tagana contacts those announcements go to
    # The region's village states before and after the step, and the current version of each active one: what the
    # rest of the cycle (the ended alerts, the Tagana mobilisations) would otherwise read again.
    states_before: list[VillageState] = field(default_factory=list)
    states: list[VillageState] = field(default_factory=list)
    current: list[AlertVersionRecord] = field(default_factory=list)


def renderer_for(config: RegionConfig, templates_dir: Path) -> MessageRenderer:
    """The region's message renderer: residents are told its ``command_center`` info line and how to stop."""
    center = config.command_center
    return MessageRenderer(templates_dir, info=center.info or center.phone or "", stop_whatsapp=center.whatsapp or "")


def tagana_recipient_id(unit: TaganaUnit) -> str:
    """The ledger id of a Tagana unit's coordinator (pseudonymous; a unit without a contact gets its own)."""
    return recipient_id(unit.phone or f"tagana-unit:{unit.unit_id}")


@dataclass
class Recorded:
    """What :func:`record_warnings` made of a cycle's warnings: the thread of each, and which were copies."""

    threads: dict[str, str]
    aliases: dict[str, str]  # identifier of a copy -> identifier of the warning it repeats


def record_warnings(
    store: Store,
    warnings: Sequence[Warning],
    received_at: datetime,
    notes: list[str] | None = None,
    *,
    region: str | None = None,
) -> Recorded:
    """Store the source documents and warnings of a cycle; return each one's thread and the copies among them.

    Messages are threaded oldest first, so an Update and its Alert land in one thread whatever order
    they were fetched in. An Update or Cancel whose references are all unknown is noted in ``notes``.
    Identity is by content (:mod:`ews.alerts.identity`): a warning whose content was stored under another
    identifier is recorded as an alias of it (and gets no thread: it sends nothing); the aliases read in the
    same batch (``Warning.aliases``) are recorded too. With ``region``, a referenceless Alert that repeats the
    area of an active thread of that region continues it.
    """
    known = store.warning_threads()
    by_content = store.warnings_by_content({w.content_key for w in warnings if w.content_key})
    active = store.thread_heads(store.active_threads(region)) if region else []
    threads: dict[str, str] = {}
    aliases: dict[str, str] = {}
    alias_rows: list[tuple[str, str, str, str, str]] = []
    for w in sorted(warnings, key=lambda w: (w.sent, w.identifier)):
        canonical = alias_of(w, by_content)
        if canonical is not None:
            aliases[w.identifier] = canonical
            known[w.identifier] = by_content[w.content_key][1]  # its Updates and Cancel reach that thread
            reason = edition_reason(by_content[w.content_key][2], w.language)
            alias_rows.append((w.identifier, canonical, reason, w.language, w.source))
            alias_rows.extend((a.identifier, canonical, edition_reason(w.language, a.language), a.language, a.source)
                              for a in w.aliases if a.identifier != canonical)  # fmt: skip
            if notes is not None:
                notes.append(
                    f"{w.identifier}: the same warning as {canonical} (same sender, event, times and polygons) "
                    f"served again under another identifier ({w.source}): recorded as its alias, nothing sent"
                )
            continue
        refs = reference_ids(w.references)
        own_thread = w.sender == "ews"  # ews's standing rain/forecast threads: every message is an Update
        if (
            notes is not None
            and not own_thread
            and w.msg_type in ("Update", "Cancel")
            and not any(r in known for r in refs)
        ):
            notes.append(
                f"{w.identifier}: {w.msg_type} of unknown warning {', '.join(refs)}: "
                f"taken as thread {refs[0] if refs else w.identifier} (its Alert may arrive later)"
            )
        thread = thread_of(w.identifier, w.msg_type, w.references, known)
        if w.identifier not in known:
            head = continued_thread(w, active, received_at)
            if head is not None:
                thread = head.thread_id
                if notes is not None:
                    notes.append(
                        f"{w.identifier}: a new Alert from {w.sender} for the same event over the area of active "
                        f"thread {thread} (last {head.identifier}), without <references>: it continues that thread; "
                        "villages already alerted hear only of a change, newly covered villages are alerted"
                    )
        known[w.identifier] = thread
        threads[w.identifier] = thread
        if w.content_key:
            by_content.setdefault(w.content_key, (w.identifier, thread, w.language))
        digest = hashlib.sha256(json.dumps(warning_to_record(w), sort_keys=True).encode()).hexdigest()
        store.record_source(w.identifier, w.source, digest, received_at)
        store.save_warning(w, thread)
        for a in w.aliases:  # copies read in this batch: aliases of this warning, in its thread
            if a.identifier != w.identifier:
                alias_rows.append((a.identifier, w.identifier, edition_reason(w.language, a.language), a.language,
                                   a.source))  # fmt: skip
                known.setdefault(a.identifier, thread)
        if w.msg_type == "Alert" and not w.geometry.is_empty:
            active.append(
                ActiveThread(
                    thread, w.identifier, w.sender, w.status, w.event, w.event_code, w.sent, w.expires, w.geometry
                )
            )
    store.save_aliases(alias_rows, at=received_at)
    return Recorded(threads, aliases)


def lifecycle_step(
    store: Store,
    config: RegionConfig,
    warnings: Sequence[Warning],
    rows: pd.DataFrame,
    threads: dict[str, str],
    now: datetime,
    hazards: Sequence[HazardMessage] = (),
    states: Sequence[VillageState] | None = None,
) -> Outcome:
    """Decide this cycle's transitions from the stored states, the warnings and their impact rows.

    ``hazards`` are messages ews assessed itself (rain, forecast, earthquake); their warnings must be
    in ``warnings`` too. Their villages' levels are used as they are (see ``assessed`` in
    :func:`ews.alerts.lifecycle.decide`). ``states``: the region's stored states, if already read.
    """
    messages = [
        ThreadMessage(
            threads[w.identifier],
            w.identifier,
            w.sent,
            w.msg_type,
            w.status,
            w.severity,
            w.urgency,
            w.certainty,
            w.expires,
        )
        for w in warnings
    ]
    coverage: dict[str, dict[str, float]] = {}
    for thread, message in latest_per_thread(messages).items():
        mine = rows[rows["warning_id"] == message.identifier] if len(rows) else rows
        coverage[thread] = {
            str(c): float(f) for c, f in zip(mine.get("code", []), mine.get("fraction", []), strict=True)
        }
    by_identifier = {h.warning.identifier: h for h in hazards}
    assessed: dict[str, dict[str, tuple[Level, Level]]] = {}
    for thread, message in latest_per_thread(messages).items():
        hazard = by_identifier.get(message.identifier)
        if hazard is None:
            continue
        assessed[thread] = {v.code: (v.level, v.held) for v in hazard.villages}
        coverage[thread] = {v.code: v.fraction for v in hazard.villages}
    standing = {
        thread for thread, m in latest_per_thread(messages).items() if _is_standing(by_identifier.get(m.identifier))
    }
    if states is None:
        states = store.village_states(config.id)
    return decide(config.id, states, messages, coverage, now, config.levels, config.alerts, assessed, standing)


def _is_standing(hazard: HazardMessage | None) -> bool:
    """Whether a hazard message belongs to a standing thread (its expiry is a data-validity window)."""
    return hazard is not None and bool(hazard.details.get("standing"))


def issuer_of(warning: Warning | WarningHeader | None, own: str = "EWS") -> tuple[str, str]:
    """Who a message names as its issuer and its source line: never BMKG for ews's own rain assessment.

    ``own`` is how the region signs ews's own alerts (``command_center.issuer``). A CAP sender that is not
    BMKG (another agency's feed, the demo's synthetic warning) is named by its own address, never as BMKG.
    """
    if warning is None:
        return "BMKG", "BMKG"
    if warning.sender != "ews":
        if is_bmkg(warning.sender):
            return "BMKG", "BMKG"
        # "demo@ews.invalid" -> "DEMO": short and GSM-7, as it leads every SMS.
        name = re.sub(r"[^A-Z0-9.-]", "", warning.sender.split("@")[0].upper())[:16] or "CAP"
        return name, warning.sender
    if warning.identifier.startswith("ews.rain."):
        return own, f"curah hujan satelit, diolah {own}"
    if warning.identifier.startswith("ews.forecast."):
        return "BMKG", "prakiraan cuaca BMKG"
    if warning.identifier.startswith("ews.gempa."):
        return "BMKG", "info gempa BMKG, estimasi guncangan EWS"
    return own, own


def _no_end_notice(decisions: Sequence[Decision], causes: Mapping[tuple[str, str], str], max_hours: float) -> list[str]:
    """A loud note for each tsunami warning that ended by its maximum duration, not by BMKG's end notice."""
    threads: dict[str, int] = {}
    for d in decisions:
        if d.transition is Transition.EXPIRE and causes.get((d.warning_id, d.village_code)) == "tsunami":
            threads[d.thread_id] = threads.get(d.thread_id, 0) + 1
    return [
        f"NO END NOTICE: tsunami warning {thread} reached its maximum duration (earthquake.tsunami_max_hours = "
        f"{max_hours:g} h) "
        f"without BMKG's end notice; its {n} coastal village(s) were told it expired and to stay off the coast "
        "until BMKG/BPBD declare it safe. Confirm the end with BMKG (InaTEWS) before residents return"
        for thread, n in sorted(threads.items())
    ]


def quake_facts(hazard: HazardMessage) -> tuple[tuple[str, str], ...]:
    """What a resident reads first about an earthquake: magnitude, depth, epicentre and BMKG's tsunami word."""
    d = hazard.details
    magnitude, depth = d.get("magnitude"), d.get("depth_km")
    if not isinstance(magnitude, int | float) or isinstance(magnitude, bool):
        return ()
    potensi = str(d.get("potensi") or "").strip().lower()
    tsunami = "yes" if d.get("tsunami") else ("no" if potensi.startswith("tidak berpotensi tsunami") else "unknown")
    epicentre = str(d.get("region") or "").strip()
    for lead in ("Pusat gempa berada di ", "Pusat gempa di "):
        if epicentre.lower().startswith(lead.lower()):
            epicentre = epicentre[len(lead) :]
    return (
        ("magnitude", f"{float(magnitude):.1f}"),
        ("depth_km", f"{float(depth):g}" if isinstance(depth, int | float) else "?"),
        ("epicentre", epicentre),
        ("tsunami", tsunami),
    )


_MESSAGE_COLUMNS = ("name", "kecamatan_name", "kabkota_name", "population")


def _village_rows(villages: pd.DataFrame, codes: Collection[str]) -> dict[str, dict[str, Any]]:
    """Code -> what a message names of the village (its names, its population), for ``codes`` of the table only.

    Plain dicts, built in one pass: a pandas row look-up per decision costs more than the rest of its message.
    """
    wanted = villages[villages["code"].isin(list(codes))]
    columns = [c for c in _MESSAGE_COLUMNS if c in wanted.columns]
    rows = wanted[columns].to_dict("records")
    return dict(zip(wanted["code"], rows, strict=True))


def _village_alert(
    d: Decision,
    village: Mapping[str, Any],
    warning: Warning | WarningHeader | None,
    estimated: bool,
    standing: bool = False,
    cause: str = "",
    quake: tuple[tuple[str, str], ...] = (),
    own: str = "EWS",
) -> VillageAlert:
    tz, zone = local_zone(d.village_code)
    issuer, source_label = issuer_of(warning, own)
    ending = d.transition.ends
    exposed = float(village.get("population", np.nan)) * (d.fraction if not ending else 0.0)
    return VillageAlert(
        village_code=d.village_code,
        village_name=str(village["name"]),
        kecamatan_name=str(village["kecamatan_name"]),
        kabkota_name=str(village["kabkota_name"]),
        level=d.level_before if ending else d.level,
        event=warning.event if warning else "",
        headline=getattr(warning, "headline", "") if warning else "",
        effective=warning.effective.astimezone(tz) if warning and warning.effective else None,
        # A standing thread's expiry is a data-validity window, not an end to announce: "until further notice".
        expires=d.expires.astimezone(tz) if d.expires and not standing else None,
        zone_name=zone,
        warning_id=d.warning_id,
        web=getattr(warning, "web", "") if warning else "",
        fraction=d.fraction,
        population_exposed=None if np.isnan(exposed) else exposed,
        population_estimated=estimated,
        transition=d.transition.value,
        issuer=issuer,
        source_label=source_label,
        hazard=cause or (hazard_from_event(warning.event, getattr(warning, "headline", "")) if warning else "cuaca"),
        events=_editions(warning),
        quake=quake,
    )


def _editions(warning: Warning | WarningHeader | None) -> tuple[tuple[str, str], ...]:
    """(language, event) of every edition of a warning read with it: its own, then its aliases'."""
    if not isinstance(warning, Warning):
        return ()
    found: dict[str, str] = {}
    for language, event in ((warning.language, warning.event), *((a.language, a.event) for a in warning.aliases)):
        if event:
            found.setdefault(language.split("-")[0].lower(), event)
    return tuple(found.items())


class _StepOne:
    """The contacts notified at once for a village: step 1 of each covering unit, looked up by kab/kota.

    Later steps are paged by :func:`ews.center.mobilise.escalate_due`; once paged they are in the ledger for the
    thread's versions and hear its updates and its end. Built once per cycle: a national cycle asks for tens of
    thousands of villages among hundreds of units.
    """

    def __init__(self, units: Sequence[TaganaUnit]) -> None:
        self._by_kabkota: dict[str, list[TaganaUnit]] = {}
        for u in units:
            if u.step == 1:
                self._by_kabkota.setdefault(u.kabkota_code, []).append(u)
        self._found: dict[str, list[TaganaUnit]] = {}

    def __call__(self, village_code: str) -> list[TaganaUnit]:
        kecamatan = parent_code(village_code, 3)
        found = self._found.get(kecamatan)
        if found is None:
            found = self._found[kecamatan] = [
                u
                for u in self._by_kabkota.get(parent_code(village_code, 2), ())
                if not u.kecamatan_codes or kecamatan in u.kecamatan_codes
            ]
        return list(found)


@dataclass
class _Plan:
    """Who one sending decision goes to: people named one by one, and/or every current subscriber of the village.

    ``roster``: (language, channel) -> how many current subscriptions of the village, when the decision goes to
    all of them (they are reached in the database, :meth:`ews.store.fanout.FanOutRepository.fan_out`, never read
    one by one); ``None`` when ``residents`` alone are who hears it. ``heard_only``: the roster is only those of
    them the ledger says heard the thread's alert in the village (an ending), so its counts are an upper bound.
    """

    decision: Decision
    alert: VillageAlert
    residents: list[Recipient]
    units: list[TaganaUnit]
    audience: str
    roster: dict[tuple[str, str], int] | None = None
    heard_only: bool = False

    def reach(self) -> int:
        """How many residents' subscriptions it goes to."""
        return len(self.residents) + (sum(self.roster.values()) if self.roster else 0)


def plan_recipients(
    store: Store,
    config: RegionConfig,
    decisions: Sequence[Decision],
    villages: pd.DataFrame,
    warnings: dict[str, Warning],
    units: Sequence[TaganaUnit],
    exercise_list: Sequence[Recipient],
    estimated: bool,
    standing_ids: Collection[str] = (),
    causes: Mapping[tuple[str, str], str] | None = None,
    quakes: Mapping[str, tuple[tuple[str, str], ...]] | None = None,
) -> list[_Plan]:
    """Who each sending decision goes to. Endings: whoever the ledger says heard that village's alert.

    ``standing_ids``: identifiers of messages of standing threads (their expiry is not announced);
    ``causes``: (message identifier, village) -> what residents act on ("gempa", "tsunami"), for advice;
    ``quakes``: message identifier -> the earthquake's facts for the message (:func:`quake_facts`).
    """
    plans: list[_Plan] = []
    codes = {d.village_code for d in decisions if d.send}
    by_code = _village_rows(villages, codes)
    # Whoever heard a village's alert subscribed to that village; opted-out numbers are left out here,
    # so an opt-out is honoured even for a cancel or an all-clear. Other announcements go to every current
    # subscriber of the village: counted here per language and channel, reached in the database.
    # An ending reaches the residents who heard it in the database too (``heard_only``); the exercise-list
    # members and Tagana contacts who heard it are read here, and an exercise's ending goes by its own list.
    drill_ends = [d for d in decisions if d.send and d.transition.ends and d.exercise]
    live_ends = [d for d in decisions if d.send and d.transition.ends and not d.exercise]
    ending = {d.village_code for d in drill_ends}
    subscribed = store.subscribers(village_codes=ending) if ending else []
    everyone = {(r.recipient_id, r.village_code, r.channel): r for r in subscribed}
    rosters: dict[str, dict[tuple[str, str], int]] = {}
    going = {d.village_code for d in decisions if d.send and not d.exercise}
    for (village, language, channel), n in (store.subscription_counts(going) if going else {}).items():
        rosters.setdefault(village, {})[(language, channel)] = n
    unit_by_id = {tagana_recipient_id(u): u for u in units}
    step_one = _StepOne(units)
    exercise_by_id = {r.recipient_id: r for r in exercise_list}
    heard_by = store.heard_by(config.id, [(d.thread_id, d.village_code) for d in drill_ends])
    for key, others in store.heard_by(
        config.id, [(d.thread_id, d.village_code) for d in live_ends], audiences=("exercise", "tagana")
    ).items():
        heard_by.setdefault(key, set()).update(others)
    for d in decisions:
        if not d.send:
            continue
        alert = _village_alert(
            d, by_code[d.village_code], warnings.get(d.warning_id), estimated, d.warning_id in standing_ids,
            (causes or {}).get((d.warning_id, d.village_code), ""), (quakes or {}).get(d.warning_id, ()),
            config.command_center.issuer,
        )  # fmt: skip
        if d.transition.ends:
            heard = sorted(heard_by.get((d.thread_id, d.village_code), ()))
            residents = [
                everyone[(r, d.village_code, ch)]
                for r, aud, ch in heard
                if aud == "resident" and (r, d.village_code, ch) in everyone
            ]
            residents += [exercise_by_id[r] for r, aud, _ in heard if aud == "exercise" and r in exercise_by_id]
            mine = [unit_by_id[r] for r, aud, _ in heard if aud == "tagana" and r in unit_by_id]
            if d.exercise:
                plans.append(_Plan(d, alert, residents, mine, "exercise"))
            else:
                roster = dict(rosters.get(d.village_code, {}))
                plans.append(_Plan(d, alert, residents, mine, "resident", roster, heard_only=True))
        elif d.exercise:
            # In an exercise (CAP status Exercise, not Test or Draft) Tagana rehearse their mobilisation too (the
            # notice says LATIHAN); residents hear nothing.
            warning = warnings.get(d.warning_id)
            drill = warning is not None and warning.status == "Exercise"
            mine = step_one(d.village_code) if drill and d.level >= config.levels.tagana_min_level else []
            plans.append(
                _Plan(d, alert, [replace(r, village_code=d.village_code) for r in exercise_list], mine, "exercise")
            )
        else:
            mine = step_one(d.village_code) if d.level >= config.levels.tagana_min_level else []
            plans.append(_Plan(d, alert, [], mine, "resident", dict(rosters.get(d.village_code, {}))))
    return plans


def review_status(plans: Sequence[_Plan], config: RegionConfig) -> dict[tuple[str, str], str]:
    """``auto`` or ``pending`` per (thread, village): the region's review levels and volume limit.

    Endings always go out: a cancel or an all-clear is never held back.
    """
    rules = config.alerts
    volume: dict[str, int] = {}
    for p in plans:
        if not p.decision.transition.ends:
            volume[p.decision.thread_id] = volume.get(p.decision.thread_id, 0) + p.reach() + len(p.units)
    status = {}
    for p in plans:
        d = p.decision
        held = not d.transition.ends and (
            d.level in rules.review_levels
            or (rules.max_recipients is not None and volume.get(d.thread_id, 0) > rules.max_recipients)
        )
        status[(d.thread_id, d.village_code)] = "pending" if held else "auto"
    return status


@dataclass
class _VillagePlan:
    """One village's one message this cycle: its merged situation, the versions it covers, who hears it.

    ``version_ids`` are every version the message speaks for (this cycle's and the current version of each
    warning still active, the lead's first): claiming them all is what makes a later ending reach whoever
    heard the situation, whichever warning they first heard of.
    """

    village_code: str
    alert: VillageAlert
    version_ids: list[int]
    residents: list[Recipient]
    units: list[TaganaUnit]
    announcement: Announcement
    roster: dict[tuple[str, str], int] | None = None  # every current subscriber too (see _Plan)
    heard: tuple[str, ...] = ()  # the roster is only who heard one of these threads in the village (an ending)

    @property
    def ends(self) -> bool:
        return self.announcement.transition.ends

    def reach(self) -> int:
        """How many residents' subscriptions it goes to."""
        return len(self.residents) + (sum(self.roster.values()) if self.roster else 0)


@dataclass(frozen=True)
class _Told:
    """A warning thread as a village's residents know it: its part in the situation, its message, its version."""

    part: Part
    alert: VillageAlert
    version_id: int


def _part(thread_id: str, alert: VillageAlert, level: Level, sent: datetime) -> Part:
    # BMKG's own warning (a nowcast) leads a tie with ews's derived one (satellite rain over the same villages).
    return Part(thread_id, level, alert.hazard, not alert.warning_id.startswith("ews."), sent)


def told_parts(
    store: Store,
    config: RegionConfig,
    states: Iterable[VillageState],
    villages: pd.DataFrame,
    warnings: Mapping[str, Warning],
    estimated: bool,
) -> dict[tuple[str, str], _Told]:
    """(thread, village) -> what residents were told of each active state: its current version went out.

    A version still pending review (or rejected), an exercise or a version that ended the alert is not part of
    what residents know. Two queries per thread (versions, headers), none per village.
    """
    by_state = {(s.thread_id, s.village_code): s for s in states if s.active and s.level > Level.NONE and s.seq > 0}
    if not by_state:
        return {}
    versions = store.current_versions(config.id, [(t, v, s.seq) for (t, v), s in by_state.items()])
    headers: dict[str, WarningHeader] = {}
    for thread in sorted({t for t, _ in by_state}):
        headers.update({h.identifier: h for h in store.warning_headers(thread)})
    by_code = _village_rows(villages, {s.village_code for s in by_state.values()})
    out: dict[tuple[str, str], _Told] = {}
    for version in versions:
        key = (version.thread_id, version.village_code)
        state = by_state.get(key)
        if state is None or version.status not in ("auto", "approved") or version.exercise or version.transition.ends:
            continue
        if version.village_code not in by_code:
            continue
        source: Warning | WarningHeader | None = warnings.get(state.warning_id) or headers.get(state.warning_id)
        d = Decision(
            region=config.id, village_code=state.village_code, thread_id=state.thread_id,
            transition=Transition.UPDATE, level_before=state.level, level=state.level, seq=state.seq,
            warning_id=state.warning_id, warning_sent=state.warning_sent, expires=state.expires,
            fraction=state.fraction, send=False, exercise=False, reason="as told",
        )  # fmt: skip
        alert = _village_alert(
            d, by_code[state.village_code], source, estimated, state.warning_id.startswith("ews.rain."),
            version.hazard, version.facts, config.command_center.issuer,
        )  # fmt: skip
        out[key] = _Told(_part(state.thread_id, alert, state.level, state.warning_sent), alert, version.id)
    return out


def _also(alert: VillageAlert, ended: bool) -> AlsoWarning:
    return AlsoWarning(
        alert.event, alert.issuer, alert.hazard, alert.level, None if ended else alert.expires, alert.zone_name,
        ended, alert.events,
    )  # fmt: skip


def village_plans(
    store: Store,
    config: RegionConfig,
    plans: Sequence[_Plan],
    version_ids: Mapping[tuple[str, str], int],
    before: Mapping[tuple[str, str], _Told],
    after: Mapping[tuple[str, str], _Told],
    units: Sequence[TaganaUnit],
) -> list[_VillagePlan]:
    """Merge each village's warnings into one message (:func:`ews.alerts.situation.announce`), or none.

    ``plans`` are this cycle's sending decisions that go out now (not exercises: those go to the exercise
    list per thread); ``before``/``after`` what residents knew before this cycle and know after it (the
    ``after`` of a thread changed this cycle is its plan's). Endings go to whoever heard any ending warning
    of the village; other announcements to the village's subscribers and Tagana units, and, when the level
    drops below Tagana's, to the units that were mobilised.
    """
    by_village: dict[str, list[_Plan]] = {}
    for p in plans:
        by_village.setdefault(p.decision.village_code, []).append(p)
    before_by: dict[str, dict[str, _Told]] = {}
    for (thread, village), told in before.items():
        if village in by_village:
            before_by.setdefault(village, {})[thread] = told
    after_by: dict[str, dict[str, _Told]] = {}
    for (thread, village), told in after.items():
        if village in by_village:
            after_by.setdefault(village, {})[thread] = told
    said_by: dict[str, Announcement] = {}
    for village, mine in by_village.items():
        endings = {p.decision.thread_id: p.decision.transition for p in mine if p.decision.transition.ends}
        updated = {p.decision.thread_id for p in mine if p.decision.transition is Transition.UPDATE}
        said = announce(
            {t: x.part for t, x in before_by.get(village, {}).items()},
            {t: x.part for t, x in after_by.get(village, {}).items()},
            updated=updated,
            endings=endings,
        )
        if said is not None:
            said_by[village] = said
    # Lowered below Tagana's level: the units that were mobilised for the village hear of it. Still at it or
    # above: its step-1 contacts, and the later steps' contacts the escalation paged (they are in the ledger).
    lowered = [
        (thread, village)
        for village, said in said_by.items()
        if not said.transition.ends
        for thread in {*before_by.get(village, {}), *(p.decision.thread_id for p in by_village[village])}
    ]
    heard = store.heard_by(config.id, lowered) if lowered else {}
    unit_by_id = {tagana_recipient_id(u): u for u in units}
    step_one = _StepOne(units)
    out: list[_VillagePlan] = []
    for village, said in sorted(said_by.items()):
        mine = by_village[village]
        was = before_by.get(village, {})
        now = after_by.get(village, {})
        by_thread = {p.decision.thread_id: p for p in mine}

        def alert_of(
            thread: str,
            now: Mapping[str, _Told] = now,
            was: Mapping[str, _Told] = was,
            by_thread: Mapping[str, _Plan] = by_thread,
        ) -> VillageAlert:
            if thread in now:
                return now[thread].alert
            if thread in by_thread:  # ended this cycle: its ending decision's alert names the level that ends
                return by_thread[thread].alert
            return was[thread].alert

        lead = alert_of(said.lead)
        also = tuple(_also(alert_of(t), False) for t in said.others) + tuple(
            _also(alert_of(t), True) for t in said.ended
        )
        alert = replace(lead, transition=said.transition.value, level=said.level, also=also)
        ids = [version_ids[(said.lead, village)]] if (said.lead, village) in version_ids else []
        ids += [version_ids[(p.decision.thread_id, village)] for p in mine]
        ids += [x.version_id for x in now.values()]
        ids = list(dict.fromkeys(ids))
        going = [p for p in mine if not p.decision.transition.ends]
        # Not an ending: the village's subscribers; when only an ending moved the situation (the higher
        # warning ended, a lower one remains), whoever heard of the ending warning.
        pool = going if (going and not said.transition.ends) else mine
        residents = list({(r.recipient_id, r.channel): r for p in pool for r in p.residents}.values())
        rostered = [p for p in pool if p.roster is not None]
        roster = rostered[0].roster if rostered else None
        listeners = (
            tuple(sorted({p.decision.thread_id for p in rostered}))
            if rostered and all(p.heard_only for p in rostered)
            else ()
        )
        paged = {
            r: unit_by_id[r]
            for thread in {*was, *by_thread}
            for r, aud, _ in heard.get((thread, village), ())
            if aud == "tagana" and r in unit_by_id
        }
        if said.transition.ends:
            mobilised = list({tagana_recipient_id(u): u for p in mine for u in p.units}.values())
        elif said.level >= config.levels.tagana_min_level:
            mobilised = list({**{tagana_recipient_id(u): u for u in step_one(village)}, **paged}.values())
        else:
            mobilised = list(paged.values())
        out.append(_VillagePlan(village, alert, ids, residents, mobilised, said, roster, listeners))
    return out


def _other_village(alert: VillageAlert, ended: bool) -> AlsoWarning:
    """Another subscribed village of the same person, named in their one message (``Juga: Desa X: ...``)."""
    name = alert.village_name
    events = tuple((language, f"{name}: {event}") for language, event in alert.events)
    return AlsoWarning(
        f"{name}: {alert.event}" if alert.event else name, alert.issuer, alert.hazard, alert.level,
        None if ended else alert.expires, alert.zone_name, ended, events,
    )  # fmt: skip


def queue_villages(
    store: Store,
    plans: Sequence[_VillagePlan],
    renderer: MessageRenderer,
    report: AlertReport,
    *,
    whatsapp_fallback_sms: bool = False,
    command_center: CommandCenter | None = None,
    now: datetime | None = None,
    region: str = "",
) -> int:
    """Queue one message per resident (and channel), and one notice per Tagana unit.

    A resident's message is their village's situation (a person subscribed to several villages: the most
    serious one's, naming the others) and claims every version it covers (:class:`_VillagePlan`): a repeat
    of the cycle finds them claimed and sends nothing. A Tagana unit gets one notice for all its
    villages of the cycle: the mobilisation (naming how many of its villages ended, if some did), or, when
    all ended, the stand-down. Endings go first (priority 0) and never expire.
    """
    queued = 0
    # A person subscribed to several villages gets one message: the most serious village's, naming the others.
    # They are told one by one (and the exercise-list members an ending names); everyone else of a village is
    # reached by its text, in the database (one statement, whatever the number of subscribers).
    people: dict[tuple[str, str], list[tuple[_VillagePlan, Recipient]]] = {}
    for p in plans:
        for r in p.residents:
            people.setdefault((r.recipient_id, r.channel), []).append((p, r))
    by_village = {p.village_code: p for p in plans if p.roster}
    if by_village:
        everywhere = store.shared_subscriptions({p.village_code for p in plans})
        shared = [r for r in everywhere if r.village_code in by_village]
        # Of an ending's village, only those who heard it (the ledger) are in its plan.
        endings = [(t, p.village_code) for p in by_village.values() for t in p.heard]
        heard = (
            store.heard_by(region, endings, audiences=("resident",), recipients={r.recipient_id for r in shared})
            if endings and shared
            else {}
        )
        for r in shared:
            village = by_village[r.village_code]
            if village.heard and not any(
                (r.recipient_id, "resident", r.channel) in heard.get((t, r.village_code), ()) for t in village.heard
            ):
                continue
            told = people.setdefault((r.recipient_id, r.channel), [])
            if all(q is not village for q, _ in told):
                told.append((village, r))
    # A text depends on the village's situation, the language and the channel, not on the person: each distinct
    # text is rendered once (a person of several villages gets their own, naming the others).
    texts: dict[tuple[int, str, str], str] = {}

    def render(plan: _VillagePlan, alert: VillageAlert, r: Recipient, alone: bool) -> str:
        if not alone:
            return renderer.render_resident(alert, r).text
        key = (id(plan), r.language, r.channel)
        found = texts.get(key)
        if found is None:
            found = texts[key] = renderer.render_resident(alert, r).text
        return found

    def expiry(items: Sequence[_VillagePlan]) -> datetime | None:
        expiries = [p.alert.expires for p in items if not p.ends]
        if any(p.ends for p in items) or any(e is None for e in expiries):
            return None
        return max(e for e in expiries if e is not None)

    claims: list[Claim] = []
    for _, items in sorted(people.items()):
        items.sort(key=lambda x: (x[0].ends, -int(x[0].alert.level), x[0].village_code))
        lead, person = items[0]
        alert = lead.alert
        alone = len(items) == 1
        if not alone:
            alert = replace(alert, also=alert.also + tuple(_other_village(p.alert, p.ends) for p, _ in items[1:]))
        ids = tuple(dict.fromkeys(i for p, _ in items for i in p.version_ids))
        ending = all(p.ends for p, _ in items)
        fallback = None
        if whatsapp_fallback_sms and person.channel == "whatsapp":
            fallback = render(lead, alert, replace(person, channel="sms"), alone)
        claims.append(
            Claim(
                ids, person.recipient_id, "resident", person.channel, address=person.phone,
                body=render(lead, alert, person, alone), language=person.language, priority=0 if ending else 1,
                valid_until=expiry([p for p, _ in items]), fallback_body=fallback,
            )
        )  # fmt: skip
    leads = [lid for lid in store.enqueue_many(claims) if lid is not None]
    queued += len(leads)
    report.skipped_duplicates += len(claims) - len(leads)
    # A message still waiting from an earlier run (approved but not yet sent, a retry) is out of date now.
    withdrawn = store.supersede_queued(leads, at=now)
    # Everyone else: one text per village, language and channel, fanned out to its subscribers in the database.
    fans: list[FanOut] = []
    for p in by_village.values():
        for language, channel in sorted(p.roster or {}):
            stand_in = Recipient("", "", p.village_code, language, channel)
            fallback = None
            if whatsapp_fallback_sms and channel == "whatsapp":
                fallback = render(p, p.alert, replace(stand_in, channel="sms"), True)
            fans.append(
                FanOut(p.village_code, tuple(dict.fromkeys(p.version_ids)), language, channel,
                       render(p, p.alert, stand_in, True), 0 if p.ends else 1, expiry([p]), fallback, p.heard)
            )  # fmt: skip
    skip = {key for key, items in people.items() if any(q.roster for q, _ in items)}
    fanned = store.fan_out(fans, skip=skip, region=region, at=now)
    queued += fanned.queued
    report.skipped_duplicates += fanned.reached - fanned.queued
    withdrawn += fanned.withdrawn
    if withdrawn:
        report.notes.append(
            f"{withdrawn} resident message(s) still waiting from an earlier run were withdrawn: a newer message for "
            "the same village replaces them (an alert never arrives after its own cancel)"
        )
    center = command_center or CommandCenter()
    issued = now or datetime.now(UTC)
    # One notice per contact of a unit (a unit may have several coordinators), for all its villages.
    by_unit: dict[tuple[str, str], tuple[TaganaUnit, list[_VillagePlan]]] = {}
    for p in plans:
        for unit in p.units:
            by_unit.setdefault((unit.unit_id, tagana_recipient_id(unit)), (unit, []))[1].append(p)
    notices: list[Claim] = []
    villages_of: list[int] = []
    for _, (unit, mine) in sorted(by_unit.items()):
        going = [p for p in mine if not p.ends]
        shown = going or mine
        ended = len(mine) - len(going) if going else 0
        zone, _name = local_zone(shown[0].village_code)
        contact = TaganaContact(
            center.name,
            center.phone,
            center.whatsapp,
            (issued + timedelta(minutes=center.ack_minutes)).astimezone(zone),
        )
        alerts = [p.alert for p in shown]
        expiries = [p.alert.expires for p in going]
        ids = tuple(dict.fromkeys(i for p in (*going, *(p for p in mine if p.ends)) for i in p.version_ids))
        fallback = None
        if unit.channel == "whatsapp" and unit.phone:
            fallback = renderer.render_tagana(replace(unit, channel="sms"), alerts, contact, ended=ended).text
        notices.append(
            Claim(
                ids, tagana_recipient_id(unit), "tagana", unit.channel, address=unit.phone or "",
                body=renderer.render_tagana(unit, alerts, contact, ended=ended).text, language="id",
                priority=1 if going else 0,
                valid_until=None if len(going) < len(mine) or any(e is None for e in expiries)
                else max(e for e in expiries if e is not None),
                fallback_body=fallback,
            )
        )  # fmt: skip
        villages_of.append(len(mine))
    for lid, n in zip(store.enqueue_many(notices), villages_of, strict=True):
        if lid is None:
            report.skipped_duplicates += n
        else:
            queued += 1
    return queued


def queue_plans(
    store: Store,
    plans: Iterable[_Plan],
    version_ids: dict[tuple[str, str], int],
    renderer: MessageRenderer,
    report: AlertReport,
    *,
    whatsapp_fallback_sms: bool = False,
    command_center: CommandCenter | None = None,
    now: datetime | None = None,
) -> int:
    """Render and queue every message of the plans in the send ledger; return how many were queued.

    A Tagana notice tells its coordinator how to acknowledge on their channel, by when (``command_center``'s
    ``ack_minutes`` from ``now``) and the command center's duty number; a WhatsApp notice carries its SMS
    rendering, sent instead if WhatsApp fails for good.

    With ``whatsapp_fallback_sms`` a resident's WhatsApp message also carries its SMS rendering, which the
    dispatcher sends instead if WhatsApp fails for good (no template, outside the 24-hour window...).

    Each claim carries its rendered text, so the dispatcher can deliver (and re-deliver after a crash)
    without rendering again. Tagana notices are grouped per unit and thread: one notice, many villages.
    Endings get priority 0 (sent first) and no expiry (a cancel or all-clear always goes out).
    """
    queued = 0
    tagana: dict[tuple[str, str, str, bool], list[tuple[int, VillageAlert, TaganaUnit, _Plan]]] = {}
    # An exercise goes to each person on the exercise list once per thread (and per ending), not per village.
    drills: dict[tuple[str, str, str, bool], list[tuple[int, VillageAlert, Recipient, _Plan]]] = {}
    for p in plans:
        d = p.decision
        version_id = version_ids[(d.thread_id, d.village_code)]
        priority, valid_until = (0, None) if d.transition.ends else (1, d.expires)
        if p.audience == "exercise":
            for r in p.residents:
                drills.setdefault((r.recipient_id, r.channel, d.thread_id, d.transition.ends), []).append(
                    (version_id, p.alert, r, p)
                )
            for unit in p.units:
                tagana.setdefault((unit.unit_id, tagana_recipient_id(unit), d.thread_id, d.transition.ends), []).append(
                    (version_id, p.alert, unit, p)
                )
            continue
        for r in p.residents:
            message = renderer.render_resident(p.alert, r)
            text = message.text
            fallback = None
            if whatsapp_fallback_sms and r.channel == "whatsapp":
                fallback = renderer.render_resident(p.alert, replace(r, channel="sms")).text
            lid = store.enqueue(
                version_id,
                r.recipient_id,
                p.audience,
                r.channel,
                address=r.phone,
                body=text,
                language=message.language,
                priority=priority,
                valid_until=valid_until,
                fallback_body=fallback,
            )
            if lid is None:
                report.skipped_duplicates += 1
            else:
                queued += 1
        for unit in p.units:
            key = (unit.unit_id, tagana_recipient_id(unit), d.thread_id, d.transition.ends)
            tagana.setdefault(key, []).append((version_id, p.alert, unit, p))
    for _, group in sorted(drills.items(), key=lambda kv: kv[0]):
        person, first = group[0][2], group[0][3].decision
        alerts = {v: a for v, a, _, _ in group}

        def drill(
            new: Sequence[int], person: Recipient = person, alerts: dict[int, VillageAlert] = alerts, sms: bool = False
        ) -> str:
            # The most serious village of the thread stands for all of them; the count says how many.
            top = max((alerts[v] for v in new), key=lambda x: (x.level, x.fraction, x.village_code))
            who = replace(person, village_code=top.village_code, channel="sms" if sms else person.channel)
            more = f" (+{len(new) - 1} desa/kel.)" if len(new) > 1 else ""
            return renderer.render_resident(top, who, prefix=f"LATIHAN/EXERCISE{more}: ").text

        def drill_sms(new: Sequence[int], drill: Callable[..., str] = drill) -> str:
            return drill(new, sms=True)

        lid = store.enqueue_group(
            list(alerts), person.recipient_id, "exercise", person.channel, address=person.phone, render=drill,
            language=person.language, priority=0 if first.transition.ends else 1,
            valid_until=None if first.transition.ends else first.expires,
            render_fallback=drill_sms if whatsapp_fallback_sms and person.channel == "whatsapp" else None,
        )  # fmt: skip
        if lid is None:
            report.skipped_duplicates += len(group)
        else:
            queued += 1
    center = command_center or CommandCenter()
    issued = now or datetime.now(UTC)
    for _, items in sorted(tagana.items(), key=lambda kv: kv[0]):
        unit, first = items[0][2], items[0][3].decision
        by_version = {v: a for v, a, _, _ in items}
        zone, _name = local_zone(first.village_code)
        contact = TaganaContact(
            center.name,
            center.phone,
            center.whatsapp,
            (issued + timedelta(minutes=center.ack_minutes)).astimezone(zone),
        )

        mark = "LATIHAN/EXERCISE: " if first.exercise else ""

        def notice(
            new: Sequence[int],
            unit: TaganaUnit = unit,
            by_version: dict[int, VillageAlert] = by_version,
            contact: TaganaContact = contact,
            mark: str = mark,
            sms: bool = False,
        ) -> str:
            to = replace(unit, channel="sms") if sms else unit
            return renderer.render_tagana(to, [by_version[v] for v in new], contact, mark).text

        def sms_notice(new: Sequence[int], notice: Callable[..., str] = notice) -> str:
            return notice(new, sms=True)

        lid = store.enqueue_group(
            list(by_version),
            tagana_recipient_id(unit),
            "tagana",
            unit.channel,
            address=unit.phone or "",
            render=notice,
            language="id",
            priority=0 if first.transition.ends else 1,
            valid_until=None if first.transition.ends else first.expires,
            render_fallback=sms_notice if unit.channel == "whatsapp" and unit.phone else None,
        )
        if lid is None:
            report.skipped_duplicates += len(items)
        else:
            queued += 1
    return queued


def alert_step(
    store: Store,
    config: RegionConfig,
    villages: pd.DataFrame,
    warnings: Sequence[Warning],
    rows: pd.DataFrame,
    *,
    now: datetime,
    units: Sequence[TaganaUnit],
    exercise_list: Sequence[Recipient],
    estimated: bool,
    renderer: MessageRenderer,
    cap_dir: Path,
    hazards: Sequence[HazardMessage] = (),
    previous_cap_dir: Path | None = None,
    cache_dir: Path | None = None,
) -> AlertReport:
    """Run the whole alert step of one cycle; see the module docstring.

    ``villages`` is the region's table (``code``, ``name``, ``kecamatan_name``, ``kabkota_name``,
    ``population``, ``geometry``); ``rows`` the impact rows of this cycle (:func:`ews.impact.assess.impacts`).
    ``hazards`` are ews's own assessments (satellite rain, forecasts, earthquakes): they go through the
    same lifecycle, ledger, review gate and CAP output as BMKG's warnings. ``previous_cap_dir`` is the
    last published ``cap/`` folder: CAP files of unchanged active alerts are linked from it; ``cache_dir`` keeps
    the CAP polygon text of the boundary set.
    """
    report = AlertReport()
    hazards = link_revisions(hazards, store.warning_threads())  # BMKG's revised quake solutions: one thread
    warnings = [*warnings, *(h.warning for h in hazards)]
    recorded = record_warnings(store, warnings, now, report.notes, region=config.id)
    # A copy of a warning (re-served, or the other edition) is not a message of any thread: it changes nothing.
    warnings = [w for w in warnings if w.identifier not in recorded.aliases]
    stored = store.village_states(config.id)
    outcome = lifecycle_step(store, config, warnings, rows, recorded.threads, now, hazards, states=stored)
    report.notes.extend(outcome.notes)
    ignored: dict[tuple[str, str], int] = {}
    for d in outcome.decisions:
        report.transitions[d.transition.value] = report.transitions.get(d.transition.value, 0) + 1
        if d.transition is Transition.IGNORED:
            ignored[(d.warning_id, d.reason)] = ignored.get((d.warning_id, d.reason), 0) + 1
    report.notes.extend(f"{w}: {why}: nothing sent ({n} villages)" for (w, why), n in sorted(ignored.items()))
    by_id = {w.identifier: w for w in warnings}
    for header_id in {d.warning_id for d in outcome.decisions} - set(by_id):
        log.info("decision refers to stored warning %s not fetched this cycle", header_id)
    standing_ids = {h.warning.identifier for h in hazards if _is_standing(h)}
    causes = {(h.warning.identifier, v.code): v.cause for h in hazards for v in h.villages if v.cause}
    # What this cycle does not say again (an ending, an update of a quiet source) keeps the announced hazard:
    # a tsunami never ends with rain advice.
    quiet = [d for d in outcome.decisions if (d.warning_id, d.village_code) not in causes]
    if quiet:
        announced = store.version_hazards(config.id, {(d.thread_id, d.village_code) for d in quiet})
        for d in quiet:
            if (hazard := announced.get((d.thread_id, d.village_code))) is not None:
                causes[(d.warning_id, d.village_code)] = hazard
    report.notes.extend(_no_end_notice(outcome.decisions, causes, config.earthquake.tsunami_max_hours))
    quakes = {h.warning.identifier: facts for h in hazards if (facts := quake_facts(h))}
    plans = plan_recipients(
        store, config, outcome.decisions, villages, by_id, units, exercise_list, estimated, standing_ids, causes,
        quakes,
    )  # fmt: skip
    status = review_status(plans, config)
    keys = [(p.decision.thread_id, p.decision.village_code) for p in plans]
    ids = store.add_alert_versions(
        [
            NewVersion(p.decision, cap_identifier(config.id, *key, p.decision.seq), status[key], p.alert.hazard,
                       p.alert.quake)
            for p, key in zip(plans, keys, strict=True)
        ],
        at=now,
    )  # fmt: skip
    version_ids: dict[tuple[str, str], int] = dict(zip(keys, ids, strict=True))
    report.pending.extend(i for key, i in zip(keys, ids, strict=True) if status[key] == "pending")
    # States first: a crash after this point re-sends nothing (the ledger) and loses nothing (versions are
    # stored; unsent claims stay 'queued' for the delivery step to pick up). Only the states this cycle changed
    # are written: an unchanged national cycle would otherwise rewrite every active village's row.
    unchanged = set(stored)
    store.save_states(config.id, [s for s in outcome.states if s not in unchanged], at=now)
    go = [p for p in plans if status[(p.decision.thread_id, p.decision.village_code)] == "auto"]
    drills = [p for p in go if p.audience == "exercise"]
    live = [p for p in go if p.audience != "exercise"]
    # One message per village: its warnings merged, as residents knew them before and know them now.
    in_play = {p.decision.village_code for p in live}
    changed = {(p.decision.thread_id, p.decision.village_code) for p in plans}
    before = told_parts(store, config, [s for s in stored if s.village_code in in_play], villages, by_id, estimated)
    after = told_parts(
        store, config,
        [s for s in outcome.states if s.village_code in in_play and (s.thread_id, s.village_code) not in changed],
        villages, by_id, estimated,
    )  # fmt: skip
    for p in live:
        d = p.decision
        if not d.transition.ends and d.level > Level.NONE:
            key = (d.thread_id, d.village_code)
            after[key] = _Told(_part(d.thread_id, p.alert, d.level, d.warning_sent), p.alert, version_ids[key])
    merged = village_plans(store, config, live, version_ids, before, after, units)
    report.villages_to_tell = len({p.decision.village_code for p in drills} | {v.village_code for v in merged})
    report.reachable = sum(p.reach() + sum(1 for u in p.units if u.phone) for p in drills) + sum(
        v.reach() + sum(1 for u in v.units if u.phone) for v in merged
    )
    if report.villages_to_tell and not report.reachable:
        report.notes.append(
            f"NOBODY REACHED: {report.villages_to_tell} village(s) have an alert to announce, but no subscriber, "
            "exercise-list member or Tagana contact covers them: import subscribers (ews subscribers import) and "
            "give Tagana units a phone (tagana: in the region file)"
        )
    fallback, center = config.messages.whatsapp_fallback_sms, config.command_center
    report.queued = queue_plans(
        store, drills, version_ids, renderer, report, whatsapp_fallback_sms=fallback, command_center=center, now=now
    )
    report.queued += queue_villages(
        store,
        merged,
        renderer,
        report,
        whatsapp_fallback_sms=fallback,
        command_center=center,
        now=now,
        region=config.id,
    )
    if report.pending:
        held = sorted({thread for (thread, _), st in status.items() if st == "pending"})
        report.notes.append(
            f"PENDING APPROVAL: {len(report.pending)} alert version(s) in {len(held)} thread(s) wait for review: "
            + "; ".join(f"ews alerts approve {t} --region {config.id}" for t in held[:5])
            + (f" (and {len(held) - 5} more thread(s): ews alerts list)" if len(held) > 5 else "")
        )
    # CAP: every version that went out this cycle, plus the latest version of every active alert.
    written = [version_ids[(p.decision.thread_id, p.decision.village_code)] for p in go]
    report.states_before, report.states = list(stored), list(outcome.states)
    active = [s for s in outcome.states if s.active and s.level > Level.NONE]
    report.current = store.current_versions(config.id, [(s.thread_id, s.village_code, s.seq) for s in active])
    report.cap_files = publish_cap(
        store, config, villages, written, by_id, now, cap_dir, previous_cap_dir, cache_dir=cache_dir,
        active=(active, report.current),
    )  # fmt: skip
    return report


def dispatch_approved(
    store: Store,
    config: RegionConfig,
    villages: pd.DataFrame,
    versions: Sequence[AlertVersionRecord],
    *,
    units: Sequence[TaganaUnit],
    exercise_list: Sequence[Recipient],
    estimated: bool,
    renderer: MessageRenderer,
) -> AlertReport:
    """Queue the alert versions an analyst has just approved (a thread's, or several), in one pass.

    Of several approved versions of one village in one thread, the latest is what is sent; the ledger still
    guards against repeats.
    """
    for v in versions:
        if v.status != "approved":
            raise StoreError(f"alert version {v.id} is {v.status}, not approved: nothing to send")
        if v.region != config.id:
            raise StoreError(f"alert version {v.id} belongs to region {v.region}, not {config.id}")
    latest: dict[tuple[str, str], AlertVersionRecord] = {}
    for v in sorted(versions, key=lambda v: (v.seq, v.id)):
        latest[(v.thread_id, v.village_code)] = v
    headers = {
        (thread, h.identifier): h
        for thread in {t for t, _ in latest}
        for h in store.warning_headers(thread)
    }  # fmt: skip
    states = {(s.thread_id, s.village_code): s for s in store.village_states(config.id)}
    decisions = []
    for key, version in latest.items():
        header = headers.get((version.thread_id, version.warning_id))
        state = states.get(key)
        decisions.append(
            Decision(
                region=config.id, village_code=version.village_code, thread_id=version.thread_id,
                transition=version.transition, level_before=version.level_before, level=version.level,
                seq=version.seq, warning_id=version.warning_id,
                warning_sent=header.sent if header else version.created_at,
                expires=header.expires if header else None, fraction=state.fraction if state else 1.0, send=True,
                exercise=version.exercise, reason=f"approved: {version.reason}",
            )
        )  # fmt: skip
    report = AlertReport()
    causes = {(v.warning_id, v.village_code): v.hazard for v in latest.values() if v.hazard}  # the advice held
    quakes = {v.warning_id: v.facts for v in latest.values() if v.facts}  # and the facts it stated
    plans = plan_recipients(store, config, decisions, villages, {}, units, exercise_list, estimated, (), causes, quakes)
    for p in plans:  # the stored header stands in for the warning: event and times for the message
        header = headers.get((p.decision.thread_id, p.decision.warning_id))
        if header is not None:
            p.alert = replace(p.alert, event=header.event)
    version_ids = {key: v.id for key, v in latest.items()}
    drills = [p for p in plans if p.audience == "exercise"]
    live = [p for p in plans if p.audience != "exercise"]
    fallback, center = config.messages.whatsapp_fallback_sms, config.command_center
    report.queued = queue_plans(
        store, drills, version_ids, renderer, report, whatsapp_fallback_sms=fallback, command_center=center
    )
    # The approved warning joins each village's situation as residents know it (its other warnings).
    in_play = {p.decision.village_code for p in live}
    told = told_parts(store, config, [s for s in states.values() if s.village_code in in_play], villages, {}, estimated)
    approved_ids = set(version_ids.values())
    before = {key: t for key, t in told.items() if t.version_id not in approved_ids}
    after = dict(before)
    for p in live:
        d = p.decision
        key = (d.thread_id, d.village_code)
        current = told.get(key)
        if current is not None and current.version_id not in approved_ids:
            state = states.get(key)
            if state is not None and state.seq > d.seq:  # a later version already went out: this one is stale
                report.notes.append(
                    f"alert version {version_ids[key]} ({d.thread_id}, {d.village_code}) was approved after a later "
                    f"version (seq {state.seq}) went out: not sent"
                )
                continue
        after[key] = _Told(_part(d.thread_id, p.alert, d.level, d.warning_sent), p.alert, version_ids[key])
    fresh = [p for p in live if after.get((p.decision.thread_id, p.decision.village_code)) is not None
             and after[(p.decision.thread_id, p.decision.village_code)].version_id == version_ids[
                 (p.decision.thread_id, p.decision.village_code)]]  # fmt: skip
    merged = village_plans(store, config, fresh, version_ids, before, after, units)
    report.queued += queue_villages(
        store, merged, renderer, report, whatsapp_fallback_sms=fallback, command_center=center, region=config.id
    )
    return report

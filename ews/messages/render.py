"""Render alert messages for residents and Tagana units from the Jinja2 templates in ``alert_templates/``.

Pure apart from reading the templates. Template names are ``<audience>_<channel>.<language>.j2``
(``resident_sms.id.j2``, ``tagana_whatsapp.id.j2``); the variables each one takes are listed in its header
comment. SMS text is transliterated to GSM-7 and must fit :data:`SMS_MAX_SEGMENTS` parts: the renderer tries
the ``full``, ``short`` and ``minimal`` variants in turn and, only if even ``minimal`` is too long, shortens
the variable parts (names, event) at a word boundary, marking each cut with ``..``. WhatsApp text (Unicode,
at most 1024 characters) goes through the same steps.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import jinja2
from jinja2 import nodes

from ews.errors import TemplateError
from ews.messages.gsm7 import SEPTETS_PER_PART, gsm7_length, sms_segments, to_gsm7
from ews.types import AlsoWarning, Level, Recipient, RenderedMessage, TaganaUnit, VillageAlert

__all__ = [
    "CHANNELS",
    "LANGUAGES",
    "SMS_MAX_SEGMENTS",
    "TAGANA_TOP_VILLAGES",
    "VARIANTS",
    "WHATSAPP_MAX_CHARS",
    "MessageRenderer",
]

SMS_MAX_SEGMENTS = 2
"""An SMS may use at most this many concatenated parts (2 x 153 = 306 septets)."""

WHATSAPP_MAX_CHARS = 1024
"""Upper bound for a WhatsApp message body, in characters (the limit of a template body)."""

VARIANTS: tuple[str, ...] = ("full", "short", "minimal")
"""Template variants, from the most to the least content; the renderer tries them in this order until the
text fits (SMS: 2 parts; WhatsApp: 1024 characters). Resident WhatsApp templates ignore the variant."""

LANGUAGES: tuple[str, ...] = ("id", "en")
"""Languages with resident templates; any other language falls back to ``"id"``."""

CHANNELS: tuple[str, ...] = ("sms", "whatsapp")
"""Channels with templates."""

TAGANA_TOP_VILLAGES = 10
"""How many villages (highest level first) a Tagana notice may name."""

ENDINGS = frozenset({"cancel", "all-clear", "expire"})
"""Transitions that end an alert: they use the ``*_end_*`` templates, naming the level that ends."""

_CHANGE: dict[str, dict[str, str]] = {
    "id": {"escalate": "(naik)", "update": "(pembaruan)", "de-escalate": "(turun)"},
    "en": {"escalate": "(raised)", "update": "(update)", "de-escalate": "(lowered)"},
}

_HEADING: dict[str, dict[str, str]] = {
    "id": {"escalate": "NAIK ke {level}", "update": "{level} (pembaruan)", "de-escalate": "TURUN ke {level}"},
    "en": {"escalate": "RAISED to {level}", "update": "{level} (update)", "de-escalate": "LOWERED to {level}"},
}
"""How a message's first line states its level: the change leads ("TURUN ke WASPADA"), so it reads as one."""

_ALSO: dict[str, dict[str, str]] = {
    "id": {"active": "Juga", "ended": "Berakhir", "also_ended": "Juga berakhir", "until": "s.d."},
    "en": {"active": "Also", "ended": "Ended", "also_ended": "Also ended", "until": "until"},
}

_ELLIPSIS = ".."

_PLACE_MARK = "@@ews-"
_PLACE_TOKENS = {"village": "@@ews-village@@", "kecamatan": "@@ews-kecamatan@@", "kabkota": "@@ews-kabkota@@"}
"""The names a resident's text takes from its situation's text with place-holders (:meth:`MessageRenderer._fit`)."""
_MAX_SITUATIONS = 20_000
_SMS_BUDGET = SMS_MAX_SEGMENTS * SEPTETS_PER_PART

_MONTHS: dict[str, tuple[str, ...]] = {
    "id": ("Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des"),
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
}

_Context = dict[str, object]


_HAZARD_EVENT = {
    "id": {
        "cuaca": "Cuaca ekstrem", "banjir": "Banjir", "longsor": "Tanah longsor", "gempa": "Gempabumi",
        "tsunami": "Peringatan dini tsunami",
    },
    "en": {
        "cuaca": "Severe weather", "banjir": "Flood", "longsor": "Landslide", "gempa": "Earthquake",
        "tsunami": "Tsunami warning",
    },
}  # fmt: skip

HAZARDS: tuple[str, ...] = ("cuaca", "banjir", "longsor", "gempa", "tsunami")
"""What residents act on; each has its own advice in the templates (weather, flood, landslide, quake, tsunami)."""

_HAZARD_WORDS = (
    ("tsunami", ("tsunami",)),
    ("gempa", ("gempa", "gempabumi", "earthquake")),
    ("longsor", ("longsor", "landslide", "tanah bergerak", "gerakan tanah")),
    ("banjir", ("banjir", "flood", "flooding")),
)


def hazard_from_event(*texts: str) -> str:
    """The hazard a warning's own words name (``event``, ``headline``): flood, landslide... else weather.

    A word counts whole (``flood``, not inside another word); the first hazard of the list above wins.
    """
    words = set(re.findall(r"[a-z]+", " ".join(texts).lower()))
    joined = " ".join(texts).lower()
    for hazard, names in _HAZARD_WORDS:
        if any((name in words) if " " not in name else (name in joined) for name in names):
            return hazard
    return "cuaca"


def hazard_event(hazard: str, language: str) -> str:
    """A plain name of ``hazard`` for a message whose warning gave no event text."""
    names = _HAZARD_EVENT.get(language, _HAZARD_EVENT["id"])
    return names.get(hazard, names["cuaca"])


_TSUNAMI_WORDS = {
    "id": {"yes": "BERPOTENSI TSUNAMI", "no": "Tidak berpotensi tsunami", "unknown": "Info tsunami: pantau BMKG"},
    "en": {"yes": "TSUNAMI POSSIBLE", "no": "No tsunami potential", "unknown": "Tsunami: check BMKG"},
}


def _quake_context(alert: VillageAlert, language: str) -> _Context:
    """An earthquake's facts for the templates (``quake`` false for other hazards): BMKG's words first."""
    facts = dict(alert.quake)
    return {
        "quake": bool(facts),
        "magnitude": facts.get("magnitude", ""),
        "depth": facts.get("depth_km", ""),
        "quake_time": _clock(alert.effective, alert.zone_name),
        "tsunami_text": _TSUNAMI_WORDS.get(language, _TSUNAMI_WORDS["id"])[facts.get("tsunami", "unknown")],
    }


def heading(level: Level, transition: str, language: str) -> str:
    """The level as a message's first line states it: ``AWAS``, ``NAIK ke AWAS``, ``TURUN ke WASPADA``..."""
    pattern = _HEADING.get(language, _HEADING["id"]).get(transition, "{level}")
    return pattern.format(level=level.name)


def also_text(also: Sequence[AlsoWarning], language: str, *, ending: bool = False) -> str:
    """The other warnings of the village, named briefly (``Juga: Hujan Lebat (EWS, WASPADA) s.d. 17:30 WIB.``).

    Those still active first, then those that ended (``Berakhir: ...``; in an ending message every one has
    ended: ``Juga berakhir: ...``). Empty when there are none.
    """
    words = _ALSO.get(language, _ALSO["id"])

    def name(a: AlsoWarning) -> str:
        return dict(a.events).get(language, a.event) or hazard_event(a.hazard, language)

    active = [
        f"{name(a)} ({a.issuer}, {a.level.name})"
        + (f" {words['until']} {_clock(a.until, a.zone_name)}" if a.until else "")
        for a in also
        if not a.ended
    ]
    ended = [f"{name(a)} ({a.issuer})" for a in also if a.ended]
    out = []
    if active:
        out.append(f"{words['active']}: " + "; ".join(active) + ".")
    if ended:
        out.append(f"{words['also_ended' if ending else 'ended']}: " + "; ".join(ended) + ".")
    return " ".join(out)


@dataclass(frozen=True)
class TaganaContact:
    """What a mobilisation notice tells the coordinator about answering (see ``command_center`` in the region).

    ``ack_by`` is already in the villages' local zone (like :class:`VillageAlert`'s times). ``whatsapp`` is
    where an SMS coordinator replies ``SIAP <unit>``; ``phone`` the command center's duty number.
    """

    name: str
    phone: str | None
    whatsapp: str | None
    ack_by: datetime


def _clock(moment: datetime | None, zone_name: str) -> str:
    # The datetimes are already in the village's local zone; only the zone's name is added.
    return "" if moment is None else f"{moment:%H:%M} {zone_name}".strip()


def _date(moment: datetime | None, language: str) -> str:
    if moment is None:
        return ""
    return f"{moment.day} {_MONTHS[language][moment.month - 1]} {moment.year}"


def _population(value: float, language: str) -> str:
    # Half up, not Python's half-to-even: 12.5 people reads as 13.
    grouped = f"{math.floor(value + 0.5):,}"
    return grouped.replace(",", ".") if language == "id" else grouped


def _one_line(text: str) -> str:
    return " ".join(text.split())


_BLANKS = re.compile(r"[ \t]+")


def _normalise(text: str, *, keep_blank_lines: bool) -> str:
    lines = [_BLANKS.sub(" ", line).strip() for line in text.splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (keep_blank_lines and out and out[-1]):
            out.append(line)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out)


def _language(requested: str) -> str:
    # "en-GB", "EN" and "en_US" all mean English; anything without a template gets Bahasa Indonesia.
    base = requested.strip().lower().replace("_", "-").split("-")[0]
    return base if base in LANGUAGES else "id"


def _shorten(prefix: str, need: int, measure: Callable[[str], int]) -> str:
    """Cut at least ``need`` units off ``prefix``, preferring a word boundary."""
    target = measure(prefix) - need
    if target <= 0:
        return ""
    words = prefix.split(" ")
    for count in range(len(words) - 1, 0, -1):
        candidate = " ".join(words[:count])
        if measure(candidate) <= target:
            return candidate
    if len(words) > 1:
        # Not enough yet, but still a word boundary: the caller cuts again if the text does not fit.
        return words[0]
    # A single word longer than the whole budget allows (only seen with made-up names): cut inside it.
    # Every character costs at least one unit, so ``target`` characters are an upper bound.
    prefix = prefix[:target]
    while prefix and measure(prefix) > target:
        prefix = prefix[:-1]
    return prefix


class MessageRenderer:
    """Renders :class:`~ews.types.RenderedMessage` objects from the templates in one folder.

    Parameters
    ----------
    templates_dir : Path
        The folder holding ``resident_{sms,whatsapp}.{id,en}.j2`` and ``tagana_{sms,whatsapp}.id.j2``,
        normally the repository's ``alert_templates/``.
    info : str, optional
        Where residents get more information, a number or short link (the region's ``command_center.info``);
        default ``bmkg.go.id``.
    stop_whatsapp : str, optional
        The WhatsApp number where an SMS resident replies BERHENTI (``command_center.whatsapp``); without it
        SMS residents are told to call ``info``'s number to stop.

    Raises
    ------
    TemplateError
        If ``templates_dir`` is not a folder.
    """

    def __init__(self, templates_dir: Path, *, info: str = "", stop_whatsapp: str = "") -> None:
        if not templates_dir.is_dir():
            raise TemplateError(
                f"alert template folder {templates_dir} does not exist or is not a folder; "
                "pass the path of the repository's alert_templates/ folder"
            )
        self._dir = templates_dir
        # For residents: where to get more information (a number or short link) and, for SMS (Twilio has no
        # two-way SMS in Indonesia), the WhatsApp number where BERHENTI stops every subscription.
        self._info = info.strip() or "bmkg.go.id"
        self._stop_whatsapp = stop_whatsapp.strip()
        # A village's text is its situation's with the village's names put in (:meth:`_fit`): the situation's
        # texts with place-holders, per (template, channel, prefix, situation, other parts) and variant, or None
        # where a text with the names put in is not the text rendered with them.
        self._skeletons: dict[tuple[object, ...], dict[str, str | None]] = {}
        self._name_free: dict[str, bool] = {}
        self._fixed: dict[tuple[object, ...], _Context] = {}
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(templates_dir),
            undefined=jinja2.StrictUndefined,
            autoescape=False,  # noqa: S701 - plain-text SMS/WhatsApp bodies, never HTML
            keep_trailing_newline=False,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def render_resident(self, alert: VillageAlert, recipient: Recipient, prefix: str = "") -> RenderedMessage:
        """Render the message for one resident about their village.

        Parameters
        ----------
        alert : VillageAlert
            The village under the warning; its level must be Waspada or higher.
        recipient : Recipient
            The resident; gives the channel (``"sms"`` or ``"whatsapp"``) and the language (``"id"`` or
            ``"en"``; any other language gets Bahasa Indonesia).
        prefix : str, optional
            Text put in front (an exercise mark), counted in the SMS budget.

        Returns
        -------
        RenderedMessage
            ``audience="resident"``, ``to=recipient.phone``. SMS: GSM-7, at most 2 parts, ``segments`` the
            number of parts. WhatsApp: at most 1024 characters, ``segments=1``.

        Raises
        ------
        TemplateError
            If the level is ``NONE``, the recipient is subscribed to another village, the channel has no
            template, a template is missing or fails to render, or the text cannot be made to fit.
        """
        if alert.level is Level.NONE:
            raise TemplateError(
                f"village {alert.village_code} has level none under warning {alert.warning_id}: "
                "there is no resident message for it; send messages only for Waspada and above"
            )
        if recipient.village_code != alert.village_code:
            raise TemplateError(
                f"recipient {recipient.recipient_id} is subscribed to village {recipient.village_code}, "
                f"not {alert.village_code}; render each resident only with their own village's alert"
            )
        channel = self._channel(recipient.channel, f"recipient {recipient.recipient_id}")
        language = _language(recipient.language)
        ending = alert.transition in ENDINGS
        # The same for every village of a situation: built once per (situation, language) of the renderer.
        # (Equal instants in two zones are equal datetimes: their offsets are part of the key, their clocks differ.)
        situation = (
            language, alert.level, alert.transition, alert.expires, alert.effective, alert.zone_name, alert.web,
            alert.warning_id, alert.issuer, alert.source_label, alert.hazard, alert.quake,
            alert.expires.utcoffset() if alert.expires else None,
            alert.effective.utcoffset() if alert.effective else None,
        )  # fmt: skip
        found = self._fixed.get(situation)
        if found is None:
            if len(self._fixed) >= _MAX_SITUATIONS:
                self._fixed.clear()
            found = self._fixed[situation] = self._resident_fixed(alert, language)
        fixed = found
        parts = {
            # The village's other warnings, briefly; a part, so a long list is what gets shortened first.
            "also": also_text(alert.also, language, ending=ending),
            "village": alert.village_name,
            "kecamatan": alert.kecamatan_name,
            "kabkota": alert.kabkota_name,
            "epicentre": dict(alert.quake).get("epicentre", ""),
            # BMKG's own words in the resident's language when its edition in that language was read; never
            # empty (an ending whose warning was not read this cycle): the hazard's name then.
            "event": dict(alert.events).get(language, alert.event) or hazard_event(alert.hazard, language),
        }

        def context(values: Mapping[str, str], variant: str) -> _Context:
            return {**fixed, **values, "variant": variant}

        template = f"resident_end_{channel}.{language}.j2" if ending else f"resident_{channel}.{language}.j2"
        text, shortened = self._fit(template, channel, parts, context, prefix, situation=tuple(fixed.items()))
        return RenderedMessage(
            audience="resident",
            channel=channel,
            language=language,
            to=recipient.phone,
            village_code=alert.village_code,
            level=alert.level,
            warning_id=alert.warning_id,
            text=text,
            segments=sms_segments(text) if channel == "sms" else 1,
            shortened=shortened,
            recipient_id=recipient.recipient_id,
        )

    def _resident_fixed(self, alert: VillageAlert, language: str) -> _Context:
        """What a resident's text takes from the situation (not the village's names): level, times, source..."""
        return {
            "level": alert.level.name,
            "transition": alert.transition,
            "change": _CHANGE[language].get(alert.transition, ""),
            "until_time": _clock(alert.expires, alert.zone_name),
            "until_date": _date(alert.expires, language),
            "from_time": _clock(alert.effective, alert.zone_name),
            "from_date": _date(alert.effective, language),
            "web": alert.web.strip(),
            "warning_id": alert.warning_id,
            "issuer": alert.issuer,
            "source": alert.source_label,
            "hazard": alert.hazard,
            "heading": heading(alert.level, alert.transition, language),
            "info": self._info,
            "stop_whatsapp": self._stop_whatsapp,
            **_quake_context(alert, language),
        }

    def render_tagana(
        self,
        unit: TaganaUnit,
        alerts: Sequence[VillageAlert],
        contact: TaganaContact | None = None,
        prefix: str = "",
        *,
        ended: int = 0,
    ) -> RenderedMessage:
        """Render the mobilisation notice for one Tagana unit's coordinator.

        ``contact`` gives the command center's name and duty number, where an SMS coordinator replies
        (WhatsApp) and the acknowledgement deadline; without it the notice asks for the reply alone.

        Villages are ranked by level, then by ``fraction`` (both descending), then by name; a village that
        appears under several warnings counts once, at its highest level. The notice names the top villages,
        counts villages per level and sums the exposed population. It asks for an acknowledgement by replying
        ``SIAP <unit_id>`` on WhatsApp (Twilio has no two-way SMS in Indonesia).

        Parameters
        ----------
        unit : TaganaUnit
            The unit; gives the channel and the coordinator's phone (``to=""`` when none is configured).
        alerts : Sequence[VillageAlert]
            The alerts for villages in the unit's area; levels ``NONE`` are ignored.
        contact : TaganaContact, optional
            How and by when to acknowledge, and the command center's number.
        prefix : str, optional
            Text put in front (an exercise mark), counted in the SMS budget.
        ended : int, optional
            How many of the unit's villages ended this cycle besides those in ``alerts`` (named as a count).

        Returns
        -------
        RenderedMessage
            ``audience="tagana"``, ``language="id"``, ``recipient_id=unit.unit_id``, ``village_code`` and
            ``warning_id`` of the top-ranked village, ``level`` the highest level.

        Raises
        ------
        TemplateError
            If no alert is Waspada or above, the channel has no template, a template is missing or fails to
            render, or the text cannot be made to fit.
        """
        ranked: list[VillageAlert] = []
        seen: set[str] = set()
        for alert in sorted(
            alerts, key=lambda a: (-a.level, -a.fraction, a.village_name, a.village_code, a.warning_id)
        ):
            if alert.level is not Level.NONE and alert.village_code not in seen:
                seen.add(alert.village_code)
                ranked.append(alert)
        if not ranked:
            raise TemplateError(
                f"no alert of level Waspada or above for Tagana unit {unit.unit_id}; "
                "do not send a mobilisation notice without one"
            )
        channel = self._channel(unit.channel, f"Tagana unit {unit.unit_id}")
        top = ranked[0]
        known = [
            a.population_exposed
            for a in ranked
            if a.population_exposed is not None and math.isfinite(a.population_exposed)
        ]
        # A sum over villages with unknown population is a lower bound: call it an estimate too.
        estimated = any(a.population_estimated for a in ranked) or len(known) < len(ranked)
        expiries = [a.expires for a in ranked]
        until = None if any(e is None for e in expiries) else max(e for e in expiries if e is not None)
        ending = all(a.transition in ENDINGS for a in ranked)
        fixed: _Context = {
            "unit_id": unit.unit_id,
            "transition": top.transition,
            "level": top.level.name,
            "n_villages": len(ranked),
            "counts": [
                {"level": level.name, "n": n}
                for level in (Level.AWAS, Level.SIAGA, Level.WASPADA)
                if (n := sum(a.level is level for a in ranked))
            ],
            "people": _population(sum(known), "id") if known else "",
            "people_estimated": estimated,
            "until_time": _clock(until, top.zone_name),
            "until_date": _date(until, "id"),
            "warning_id": top.warning_id,
            "web": top.web.strip(),
            "issuer": top.issuer,
            "source": top.source_label,
            "hazard": top.hazard,
            "channel": channel,
            "center_name": contact.name if contact else "",
            "center_phone": (contact.phone or "") if contact else "",
            "reply_whatsapp": (contact.whatsapp or "") if contact else "",
            "ack_by": _clock(contact.ack_by if contact else None, top.zone_name),
            "n_ended": ended,
            # Every village went down (a higher warning ended, a lower one remains): not a new mobilisation.
            "lowered": all(a.transition == "de-escalate" for a in ranked),
        }
        shown = ranked[:TAGANA_TOP_VILLAGES]
        # The other warnings over the unit's villages (another source or hazard), each named once.
        others: dict[tuple[str, str], AlsoWarning] = {}
        top_event = top.event or hazard_event(top.hazard, "id")
        for a in ranked:
            lead = AlsoWarning(a.event, a.issuer, a.hazard, a.level, a.expires, a.zone_name, a.transition in ENDINGS)
            for item in (lead, *a.also):
                name = item.event or hazard_event(item.hazard, "id")
                # A mobilisation names the other warnings still active; a stand-down those that ended too.
                if item.ended == ending and (name, item.issuer) != (top_event, top.issuer):
                    others.setdefault((name, item.issuer), item)
        parts = {
            "unit_name": unit.name,
            "event": top_event,
            "also": also_text(list(others.values()), "id", ending=ending),
        }
        for index, alert in enumerate(shown):
            parts[f"name{index}"] = alert.village_name
            parts[f"kecamatan{index}"] = alert.kecamatan_name

        def context(values: Mapping[str, str], variant: str) -> _Context:
            villages = [
                {"name": values[f"name{i}"], "kecamatan": values[f"kecamatan{i}"], "level": a.level.name}
                for i, a in enumerate(shown)
            ]
            return {
                **fixed,
                "unit_name": values["unit_name"],
                "event": values["event"],
                "also": values["also"],
                "villages": villages,
                "variant": variant,
            }

        template = f"tagana_end_{channel}.id.j2" if ending else f"tagana_{channel}.id.j2"
        text, shortened = self._fit(template, channel, parts, context, prefix)
        return RenderedMessage(
            audience="tagana",
            channel=channel,
            language="id",
            to=unit.phone or "",
            village_code=top.village_code,
            level=top.level,
            warning_id=top.warning_id,
            text=text,
            segments=sms_segments(text) if channel == "sms" else 1,
            shortened=shortened,
            recipient_id=unit.unit_id,
        )

    def _channel(self, channel: str, who: str) -> str:
        key = channel.strip().lower()
        if key not in CHANNELS:
            raise TemplateError(
                f"{who} has channel {channel!r}, which has no alert template; use one of {', '.join(CHANNELS)}"
            )
        return key

    def _render(self, name: str, context: _Context) -> str:
        path = self._dir / name
        try:
            template = self._env.get_template(name)
        except jinja2.TemplateNotFound:
            raise TemplateError(
                f"alert template {path} not found; add it (one file per audience, channel and language) "
                "or point MessageRenderer at the repository's alert_templates/ folder"
            ) from None
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"alert template {path} line {exc.lineno}: {exc.message}; fix its syntax") from exc
        try:
            return template.render(context)
        except jinja2.UndefinedError as exc:
            raise TemplateError(
                f"alert template {path} uses an undefined variable: {exc.message}; "
                f"it may use only {', '.join(sorted(context))} (see the comment at its top)"
            ) from exc
        except jinja2.TemplateError as exc:
            raise TemplateError(f"alert template {path} does not render: {exc}") from exc

    def _fit_names(
        self,
        name: str,
        channel: str,
        prefix: str,
        situation: tuple[tuple[str, object], ...],
        originals: Mapping[str, str],
        finish: Callable[[Mapping[str, str], str], str],
        fits: Callable[[str], bool],
    ) -> str | None:
        """The first variant's text that fits, from the situation's texts with place-holders; None: render it."""
        names = {token: originals[key] for key, token in _PLACE_TOKENS.items() if key in originals}
        if len(names) != len(_PLACE_TOKENS) or not self._substitutable(name):
            return None
        if not all(names.values()) or any(_PLACE_MARK in value for value in names.values()):
            return None
        others = tuple((k, v) for k, v in originals.items() if k not in _PLACE_TOKENS)
        key = (name, channel, prefix, situation, others)
        try:
            skeletons = self._skeletons.get(key)
        except TypeError:  # a context value that cannot be a key
            return None
        if skeletons is None:
            if any(_PLACE_MARK in str(v) for _, v in (*situation, *others)) or _PLACE_MARK in prefix:
                return None
            if len(self._skeletons) >= _MAX_SITUATIONS:
                self._skeletons.clear()
            skeletons = self._skeletons[key] = {}
        for variant in VARIANTS:
            if variant in skeletons:
                skeleton = skeletons[variant]
                if skeleton is None:
                    return None
                text = skeleton
                for token, value in names.items():
                    text = text.replace(token, value)
            else:
                skeleton = finish({**originals, **_PLACE_TOKENS}, variant)
                text = finish(originals, variant)
                filled = skeleton
                for token, value in names.items():
                    filled = filled.replace(token, value)
                skeletons[variant] = skeleton if filled == text else None
                if filled != text:
                    return None
            if fits(text):
                return text
        return None

    def _substitutable(self, name: str) -> bool:
        """Whether template ``name`` uses the place names only as plain ``{{ village }}`` output.

        No filter, test, condition, assignment, include or macro on them: then its text with the names put in
        afterwards is the text rendered with them.
        """
        known = self._name_free.get(name)
        if known is None:
            try:
                source, _, _ = self._env.loader.get_source(self._env, name)  # type: ignore[union-attr]
                tree = self._env.parse(source)
            except jinja2.TemplateError:
                known = False  # _render reports it
            else:
                plain = {id(n) for out in tree.find_all(nodes.Output) for n in out.nodes if isinstance(n, nodes.Name)}
                uses = [n for n in tree.find_all(nodes.Name) if n.name in _PLACE_TOKENS]
                others = (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends, nodes.Macro, nodes.CallBlock)
                nested = next(iter(tree.find_all(others)), None) is not None
                known = not nested and all(id(n) in plain and n.ctx == "load" for n in uses)
            self._name_free[name] = known
        return known

    def _fit(
        self,
        name: str,
        channel: str,
        parts: Mapping[str, str],
        context: Callable[[Mapping[str, str], str], _Context],
        prefix: str = "",
        *,
        situation: tuple[tuple[str, object], ...] | None = None,
    ) -> tuple[str, bool]:
        """Render ``name`` to fit ``channel`` with ``prefix`` in front; return the text and if parts were cut.

        ``situation``: the context apart from ``parts``. Given, the text of a village whose situation was rendered
        before is that text with this village's names put in (a dictionary look-up and three replacements
        instead of a render): only where every name is non-empty (an empty one changes the spacing), the
        template uses the names as plain output (:meth:`_substitutable`), no other value holds a place-holder,
        and, checked on the situation's first village, the two texts are the same. A text that does not fit
        without cuts is rendered in full.
        """
        sms = channel == "sms"
        measure: Callable[[str], int] = gsm7_length if sms else len
        budget = _SMS_BUDGET if sms else WHATSAPP_MAX_CHARS

        def finish(values: Mapping[str, str], variant: str) -> str:
            raw = prefix + self._render(name, context(values, variant))
            return _normalise(to_gsm7(raw) if sms else raw, keep_blank_lines=not sms)

        def fits(text: str) -> bool:
            return sms_segments(text) <= SMS_MAX_SEGMENTS if sms else len(text) <= WHATSAPP_MAX_CHARS

        # Variables become one line each (a name must not inject line breaks) and, for SMS, GSM-7 already,
        # so that lengths are measured in septets and cuts fall on the words that will be sent.
        originals = {key: _one_line(to_gsm7(value) if sms else value) for key, value in parts.items()}
        if situation is not None:
            found = self._fit_names(name, channel, prefix, situation, originals, finish, fits)
            if found is not None:
                return found, False
        for variant in VARIANTS:
            text = finish(originals, variant)
            if fits(text):
                return text, False

        kept = dict(originals)

        def shown() -> dict[str, str]:
            return {k: v if v == originals[k] else v + _ELLIPSIS for k, v in kept.items()}

        while True:
            values = shown()
            candidates = [key for key, prefix in kept.items() if prefix]
            if not candidates:
                raise TemplateError(
                    f"alert template {self._dir / name} (variant {VARIANTS[-1]!r}) does not fit {channel} "
                    f"({budget} {'septets' if sms else 'characters'}) even with every name shortened; "
                    "shorten the template's fixed text"
                )
            # Cut the longest part that shows in the text, but only down to the next longest one, so that
            # the excess is shared out instead of wiping one name (the event, say) to "..".
            ranked = sorted(candidates, key=lambda k: (values[k] in text, measure(values[k])), reverse=True)
            key = ranked[0]
            need = measure(text) - budget
            if len(ranked) > 1 and values[ranked[1]] in text:
                need = min(need, measure(values[key]) - measure(values[ranked[1]]) + 1)
            need = max(need, 1)
            if kept[key] == originals[key]:
                need += len(_ELLIPSIS)  # the marker appended on the first cut costs room too
            kept[key] = _shorten(kept[key], need, measure)
            text = finish(shown(), VARIANTS[-1])
            if fits(text):
                return text, True

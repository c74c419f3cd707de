"""Domain types shared by every stage: levels, warnings, village impacts and rendered messages."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import NewType

from shapely.geometry.base import BaseGeometry

VillageCode = NewType("VillageCode", str)
"""A Kemendagri code as a dotted string, e.g. ``"35.78.01.1001"``."""


class Level(enum.IntEnum):
    """Indonesian warning levels, ordered so that ``Level.AWAS > Level.SIAGA``."""

    NONE = 0
    WASPADA = 1
    SIAGA = 2
    AWAS = 3

    @property
    def label(self) -> str:
        """The level as people read it: ``"Waspada"``, ``"Siaga"``, ``"Awas"`` (or ``"none"``)."""
        return "none" if self is Level.NONE else self.name.capitalize()

    @classmethod
    def from_label(cls, text: str) -> Level:
        """Parse ``"siaga"``/``"Siaga"``/``"none"``; raise ``ValueError`` naming the allowed values."""
        key = text.strip().upper()
        if key in {"NONE", "-", ""}:
            return cls.NONE
        try:
            return cls[key]
        except KeyError:
            raise ValueError(f"unknown level {text!r}; use one of none, Waspada, Siaga, Awas") from None


@dataclass(frozen=True)
class Warning:
    """One CAP 1.2 ``<alert>`` with its first ``<info>`` block, as BMKG publishes it.

    Times are timezone-aware and keep BMKG's local offsets; compare them as instants.
    ``geometry`` is the union of every ``<polygon>`` of every ``<area>`` in WGS84 (lon, lat).
    """

    identifier: str
    sender: str
    sent: datetime
    status: str
    msg_type: str
    references: tuple[str, ...]
    language: str
    event: str
    urgency: str
    severity: str
    certainty: str
    effective: datetime | None
    expires: datetime | None
    headline: str
    description: str
    web: str
    area_desc: str
    geometry: BaseGeometry
    polygon_count: int
    source: str
    named_areas: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())
    event_code: str = ""  # BMKG's OET event code (e.g. "OET-194"): the same in every language edition
    content_key: str = ""  # identity by content (see ews.ingest.bmkg_cap.content_key); "" = by identifier
    unusable_polygons: int = 0  # polygons that could not be used at all (dropped, with a note each)
    location_hint: BaseGeometry | None = None  # the points of unusable polygons: where the warning roughly is
    aliases: tuple[WarningAlias, ...] = ()  # other copies of this warning read in the same batch


@dataclass(frozen=True)
class WarningAlias:
    """Another copy of a warning under its own identifier: re-served by BMKG, or the other language's edition.

    It is kept for audit (which identifiers, from where, when); it never alerts anyone by itself.
    """

    identifier: str
    source: str
    language: str
    event: str = ""
    headline: str = ""


@dataclass(frozen=True)
class RenderedMessage:
    """One message ready for a channel. ``to`` is the E.164 number and never leaves the process."""

    audience: str  # "resident" | "tagana"
    channel: str  # "sms" | "whatsapp"
    language: str
    to: str
    village_code: str
    level: Level
    warning_id: str
    text: str
    segments: int
    shortened: bool
    recipient_id: str


@dataclass(frozen=True)
class AlsoWarning:
    """Another warning active in (or just ended for) the same village, named briefly in its one message.

    ``until`` is in the village's local zone (``zone_name``); ``events`` the (language, event) of its editions.
    """

    event: str
    issuer: str
    hazard: str
    level: Level
    until: datetime | None
    zone_name: str
    ended: bool = False
    events: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class VillageAlert:
    """What a message needs to know about one village under one warning (no personal data).

    ``event`` and ``headline`` are in the warning's language; templates translate the level.
    ``zone_name`` is WIB/WITA/WIT and ``effective``/``expires`` are already in that local zone.
    """

    village_code: str
    village_name: str
    kecamatan_name: str
    kabkota_name: str
    level: Level
    event: str
    headline: str
    effective: datetime | None
    expires: datetime | None
    zone_name: str
    warning_id: str
    web: str
    fraction: float
    population_exposed: float | None
    population_estimated: bool
    transition: str = "new"  # ews.alerts.model.Transition value; endings carry the level that ends
    issuer: str = "BMKG"  # who the message names as issuing it (ews's own satellite assessment: "EWS")
    hazard: str = "cuaca"  # which advice residents get: "cuaca" (rain, storms, floods), "gempa", "tsunami"
    source_label: str = "BMKG"  # the data behind it, for the "Sumber:" line
    events: tuple[tuple[str, str], ...] = ()  # (language, event) from the warning's other editions, e.g. ("en", …)
    # An earthquake's facts as BMKG gives them, for the message: magnitude, depth_km, epicentre (BMKG's
    # ``Wilayah``), tsunami ("yes" | "no" | "unknown", from ``Potensi``); empty for other hazards.
    quake: tuple[tuple[str, str], ...] = ()
    # The village's other warnings (another source or hazard), named briefly after the lead one
    # (:mod:`ews.alerts.situation`): one message per village, never two contradicting ones.
    also: tuple[AlsoWarning, ...] = ()


@dataclass(frozen=True)
class Recipient:
    """A resident subscribed to alerts for one village. ``phone`` is E.164 and is personal data."""

    recipient_id: str
    phone: str
    village_code: str
    language: str  # "id" | "en"
    channel: str  # "sms" | "whatsapp"


@dataclass(frozen=True)
class TaganaUnit:
    """A Tagana unit (per kabupaten/kota) and its coordinator's contact, if one is configured.

    ``kecamatan_codes`` empty means the unit covers its whole kabupaten/kota. ``step`` is the escalation step
    that pages this contact (1: the pipeline's own notice, at once; 2, 3...: later, by the unit's policy, see
    :mod:`ews.command.escalation`); ``role`` is ``coordinator`` or ``bpbd`` (the kab/kota BPBD duty contact).
    """

    unit_id: str
    name: str
    kabkota_code: str
    kecamatan_codes: tuple[str, ...]
    coordinator: str
    phone: str | None
    channel: str  # "sms" | "whatsapp"
    step: int = 1
    role: str = "coordinator"  # "coordinator" | "bpbd"


@dataclass(frozen=True)
class VillageHazard:
    """A level for one village from a source that is not a BMKG polygon (rain raster, forecast, earthquake).

    ``held`` is the level the same village would get with the source's hysteresis margin applied (a
    lower threshold): an active alert goes down only when ``held`` is below it too, so values wobbling
    around a threshold do not flap a village between levels. ``value`` is the quantity behind the
    level in ``HazardMessage.metric`` units; ``fraction`` is the share of the village affected (0-1).
    """

    code: str
    level: Level
    held: Level
    value: float
    fraction: float = 1.0
    cause: str = ""  # what residents must act on, for the advice in messages: "gempa", "tsunami" ("" = weather)


@dataclass(frozen=True)
class HazardMessage:
    """One message of a hazard thread made by ews itself, shaped like a BMKG warning for the lifecycle.

    ``warning`` carries identity and timing: ``identifier`` is unique per message, ``msg_type`` is
    ``Alert`` (an earthquake event) or ``Update`` referencing the thread root in ``references`` (a
    standing rain or forecast thread per region), ``sent`` orders messages (an older one is a replay),
    ``expires`` ends the alerts when no newer message comes. ``villages`` lists every village with a
    level (and may list villages at ``Level.NONE``: they are all-clear if they were alerted).
    ``details`` are facts for messages and maps (e.g. magnitude, lead time), all plain values.
    """

    warning: Warning
    metric: str
    villages: tuple[VillageHazard, ...]
    details: Mapping[str, str | float | int | bool | None] = field(default_factory=dict)

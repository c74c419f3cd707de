"""Region configuration: ``regions/<id>.yaml`` validated into a frozen :class:`RegionConfig`.

Unknown keys are errors, and every error names the file and the key. Paths in a region file may use
``${EWS_SHARED_DATA}`` (and any other environment variable); relative paths are resolved against the
folder of the region file. The environment is passed in explicitly: nothing here reads it on import.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ews.codes import normalize_code
from ews.command.escalation import Policy, Step
from ews.command.rules import RoutingRules
from ews.errors import ConfigError
from ews.types import Level

DEFAULT_SHARED_DATA = "../shared/data"
_VAR = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)\}")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BoundarySource(_Frozen):
    """Where the village (or kecamatan) polygons come from.

    ``path`` is a file (GeoJSON, GeoPackage, Shapefile, GeoParquet) or a folder whose files of one of
    those formats are read and concatenated.
    """

    path: Path
    id_field: str = "kode"
    name_field: str = "nama"
    layer: str | None = None


class PopulationSource(_Frozen):
    """Population per village: a column of the boundary file, a CSV per village, or an estimate.

    ``method`` chooses: ``column`` reads ``column`` from the boundary file; ``csv`` joins ``path`` on
    ``id_field``; ``kabkota_area_share`` spreads each kabupaten/kota total (``path``, ``id_field``,
    ``value_field``) over its villages in proportion to their area: an *estimate*, labelled so in every
    output; ``none`` leaves population unknown.
    """

    method: Literal["column", "csv", "kabkota_area_share", "none"] = "none"
    column: str | None = None
    path: Path | None = None
    id_field: str = "kode"
    value_field: str = "total"

    @model_validator(mode="after")
    def _needs(self) -> PopulationSource:
        if self.method == "column" and not self.column:
            raise ValueError("method 'column' needs 'column' (the population field of the boundary file)")
        if self.method in ("csv", "kabkota_area_share") and self.path is None:
            raise ValueError(f"method {self.method!r} needs 'path' (a CSV file)")
        return self


class LevelRules(_Frozen):
    """Thresholds that turn a warning and the fraction of a village it covers into a level.

    See README "Levels" for the full mapping.
    """

    severity: dict[str, Level] = Field(
        default_factory=lambda: {
            "Extreme": Level.AWAS,
            "Severe": Level.SIAGA,
            "Moderate": Level.WASPADA,
            "Minor": Level.WASPADA,
            "Unknown": Level.WASPADA,
        }
    )
    min_fraction: Annotated[float, Field(ge=0.0, le=1.0)] = 0.05
    partial_fraction: Annotated[float, Field(ge=0.0, le=1.0)] = 0.25
    strong_fraction: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5
    tagana_min_level: Level = Level.SIAGA

    @field_validator("severity", mode="before")
    @classmethod
    def _labels(cls, value: object) -> object:
        if isinstance(value, Mapping):
            return {k: Level.from_label(v) if isinstance(v, str) else v for k, v in value.items()}
        return value

    @field_validator("severity", mode="after")
    @classmethod
    def _all_severities(cls, value: dict[str, Level]) -> dict[str, Level]:
        allowed = ("Extreme", "Severe", "Moderate", "Minor", "Unknown")
        unknown = sorted(set(value) - set(allowed))
        if unknown:
            raise ValueError(f"unknown CAP severity {', '.join(unknown)}; use {', '.join(allowed)}")
        missing = [k for k in allowed if k not in value]
        if missing:
            raise ValueError(f"give a level for every CAP severity; missing {', '.join(missing)}")
        return value

    @field_validator("tagana_min_level", mode="before")
    @classmethod
    def _label(cls, value: object) -> object:
        return Level.from_label(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _ordered(self) -> LevelRules:
        if not self.min_fraction <= self.partial_fraction <= self.strong_fraction:
            raise ValueError("fractions must satisfy min_fraction <= partial_fraction <= strong_fraction")
        return self


class AlertRules(_Frozen):
    """How alerts live between cycles, and which need an analyst's approval before they go out.

    ``hysteresis`` is added to a village's covered fraction before a level may go *down*, so a warning
    whose edge wobbles between runs does not flap a village between levels. An Update with the same
    level is announced only when it moves the expiry by at least ``update_min_minutes``.
    ``review_levels``: decisions at these levels wait as pending until approved; so does any decision
    that would message more than ``max_recipients`` people (``None``: no limit).
    """

    hysteresis: Annotated[float, Field(ge=0.0, le=0.5)] = 0.1
    update_min_minutes: Annotated[int, Field(ge=0)] = 30
    review_levels: tuple[Level, ...] = ()
    max_recipients: Annotated[int, Field(ge=1)] | None = None

    @field_validator("review_levels", mode="before")
    @classmethod
    def _labels(cls, value: object) -> object:
        if isinstance(value, list | tuple):
            return tuple(Level.from_label(v) if isinstance(v, str) else v for v in value)
        return value


RAIN_CATEGORIES = ("ringan", "sedang", "lebat", "sangat_lebat", "ekstrem")
"""BMKG rain intensity categories, lowest first (light, moderate, heavy, very heavy, extreme)."""


def _level_map(value: object) -> object:
    if isinstance(value, Mapping):
        return {k: Level.from_label(v) if isinstance(v, str) else v for k, v in value.items()}
    return value


RAIN_RATE_UNITS: Mapping[str, float] = {
    "mm/h": 1.0,
    "mm/hr": 1.0,
    "mm/hour": 1.0,
    "mm h-1": 1.0,
    "mm h^-1": 1.0,
    "mm.h-1": 1.0,
    "mm hr-1": 1.0,
    "mm hr^-1": 1.0,
    "millimeter/hour": 1.0,
    "millimetre/hour": 1.0,
    "millimeters per hour": 1.0,
    "millimetres per hour": 1.0,
    "mm/3h": 1.0 / 3.0,
    "0.1 mm/h": 0.1,  # scaled integers: NASA's IMERG GIS GeoTIFFs (README.GIS: 30 min and 1 day files)
    "0.1 mm/hr": 0.1,
    "kg m-2 s-1": 3600.0,
    "kg m^-2 s^-1": 3600.0,
    "kg/m2/s": 3600.0,
    "kg m-2 s^-1": 3600.0,
    "mm/s": 3600.0,
    "mm s-1": 3600.0,
    "mm/day": 1.0 / 24.0,
    "mm/d": 1.0 / 24.0,
    "mm d-1": 1.0 / 24.0,
    "mm day-1": 1.0 / 24.0,
    "mm/24h": 1.0 / 24.0,
}
"""Rain-rate unit spellings (lower case, single spaces) -> factor to mm/h. Anything else is not a rain rate:
a wrong factor silently makes or hides a warning, so ews never guesses one."""


def rain_rate_factor(units: str) -> float | None:
    """The factor from ``units`` to mm/h, or None when ``units`` is not a rain-rate spelling ews knows."""
    return RAIN_RATE_UNITS.get(re.sub(r"\s+", " ", units.strip().lower()))


TIME_PATTERN_PRODUCTS = ("gsmap", "imerg")
"""Named file-name time patterns: ``gsmap_<product>.YYYYMMDD.HHMM...`` and IMERG's
``...3IMERG.YYYYMMDD-SHHMMSS-EHHMMSS...``."""

_TIME_DIRECTIVES = {"Y": r"\d{4}", "y": r"\d{2}", "m": r"\d{2}", "d": r"\d{2}", "j": r"\d{3}", "H": r"\d{2}"}
_TIME_DIRECTIVES |= {"M": r"\d{2}", "S": r"\d{2}"}


def time_pattern_regex(pattern: str) -> re.Pattern[str]:
    """A regular expression that finds the time written by a ``strftime`` pattern in a file name.

    Parameters
    ----------
    pattern
        E.g. ``"%Y%m%d_%H%M"`` (``hujan_20260928_0930.tif``): the directives ``%Y %y %m %d %j %H %M %S``
        and ``%%``; other characters are literal. It needs a year and a day (``%m%d`` or ``%j``). The
        whole match is parsed with :meth:`datetime.strptime`, as UTC.

    Raises
    ------
    ValueError
        An unknown directive, or no year or day.
    """
    parts: list[str] = []
    seen: set[str] = set()
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char != "%":
            parts.append(re.escape(char))
            i += 1
            continue
        code = pattern[i + 1 : i + 2]
        if code == "%":
            parts.append("%")
        elif code in _TIME_DIRECTIVES:
            parts.append(_TIME_DIRECTIVES[code])
            seen.add(code)
        else:
            raise ValueError(
                f"time pattern {pattern!r}: %{code} is not supported; use %Y %y %m %d %j %H %M %S "
                "(e.g. 'hujan_%Y%m%d_%H%M')"
            )
        i += 2
    if not seen & {"Y", "y"} or not ({"m", "d"} <= seen or "j" in seen):
        raise ValueError(f"time pattern {pattern!r} needs a year (%Y) and a day (%m%d or %j), e.g. '%Y%m%d_%H%M'")
    return re.compile("".join(parts))


class RainProduct(_Frozen):
    """What ews is told about one rain product whose files do not say it themselves (``rain.products``).

    The keys fill gaps only: what a file says (its units, band times, step) is used, and a key that
    disagrees with the file is an error. ``match`` chooses the files: a file-name glob without ``/``
    (``3B-HHR*.tif``, ``hujan_*.tif``), else a folder (``/data/imerg/``) or a path glob
    (``${EWS_SHARED_DATA}/rain/*.tif``); relative folders are relative to the region file's folder. The
    first entry that matches a file is its product.

    ``units``: the rain-rate units of the values (mm/h, mm/hr, kg m-2 s-1, mm/day, ...). ``step_hours``:
    the duration of each time step. ``time``: the start (ISO 8601 with an offset) of the file's first
    step, for a one-off file. ``time_pattern``: read that start from the file name instead: ``gsmap``,
    ``imerg`` (both are also recognised without this key) or a ``strftime`` pattern such as
    ``hujan_%Y%m%d_%H%M`` (UTC). ``variable``: the rain variable of NetCDF/HDF5 files.
    """

    match: Annotated[str, Field(min_length=1)]
    units: str | None = None
    step_hours: Annotated[float, Field(gt=0, le=744)] | None = None
    time: datetime | None = None
    time_pattern: str | None = None
    variable: str | None = None

    @field_validator("units")
    @classmethod
    def _rain_rate(cls, value: str | None) -> str | None:
        if value is not None and rain_rate_factor(value) is None:
            raise ValueError(f"{value!r} is not a rain rate ews knows; use mm/h, mm/hr, kg m-2 s-1, mm/3h or mm/day")
        return value

    @field_validator("time")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give a time zone offset, e.g. 2026-09-28T09:30:00Z or 2026-09-28T16:30:00+07:00")
        return value

    @field_validator("time_pattern")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        if value is not None and value not in TIME_PATTERN_PRODUCTS:
            time_pattern_regex(value)
        return value

    @model_validator(mode="after")
    def _one_time(self) -> RainProduct:
        if self.time is not None and self.time_pattern is not None:
            raise ValueError("give time (one file) or time_pattern (times in the file names), not both")
        return self

    def matches(self, file: Path, base: Path | None = None) -> bool:
        """Whether ``file`` belongs to this product (``base``: the folder of the region file)."""
        import fnmatch

        if "/" not in self.match and os.sep not in self.match:
            return fnmatch.fnmatchcase(file.name, self.match)
        root = Path(self.match)
        if not root.is_absolute() and base is not None:
            root = base / root
        full = os.path.abspath(file)
        if any(c in self.match for c in "*?["):
            return fnmatch.fnmatchcase(full, os.path.abspath(root))
        return Path(full).is_relative_to(os.path.abspath(root))


class RainRules(_Frozen):
    """BMKG rain intensity categories and the level each one gives (observed satellite rainfall).

    ``hourly_mm`` and ``daily_mm`` are the *lower bounds* of each category in mm per hour and mm per
    24 hours (BMKG's table; see DOMAIN notes and README "Rain levels"); a category missing from a table
    does not exist for that period (BMKG has no hourly "ekstrem"). ``levels`` maps a category to a level;
    categories not listed give no level. A village's value is the ``statistic`` (exact zonal mean or
    max) of the 1-hour and 24-hour accumulations; its level is the higher of the two. An active alert
    goes down only once the value is below ``(1 - hysteresis)`` x the threshold. An alert lasts
    ``valid_hours`` after the end of the newest raster; a raster older than ``max_age_minutes`` at run
    time is stale (the run is degraded, not silent). ``products`` says what rain files do not say
    themselves (units, times, step; see :class:`RainProduct`).
    """

    hourly_mm: dict[str, float] = Field(
        default_factory=lambda: {"ringan": 1.0, "sedang": 5.0, "lebat": 10.0, "sangat_lebat": 20.0}
    )
    daily_mm: dict[str, float] = Field(
        default_factory=lambda: {"ringan": 0.5, "sedang": 20.0, "lebat": 50.0, "sangat_lebat": 100.0, "ekstrem": 150.0}
    )
    levels: dict[str, Level] = Field(
        default_factory=lambda: {"lebat": Level.WASPADA, "sangat_lebat": Level.SIAGA, "ekstrem": Level.AWAS}
    )
    statistic: Literal["mean", "max"] = "mean"
    hysteresis: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.2
    valid_hours: Annotated[float, Field(gt=0)] = 3.0
    max_age_minutes: Annotated[float, Field(gt=0)] = 180.0
    products: tuple[RainProduct, ...] = ()

    def product_for(self, file: Path, base: Path | None = None) -> tuple[int, RainProduct] | None:
        """The first product (its index in ``products`` and itself) that ``file`` belongs to, if any."""
        return next(((i, p) for i, p in enumerate(self.products) if p.matches(file, base)), None)

    @field_validator("levels", mode="before")
    @classmethod
    def _labels(cls, value: object) -> object:
        return _level_map(value)

    @model_validator(mode="after")
    def _categories(self) -> RainRules:
        for name, table in (("hourly_mm", self.hourly_mm), ("daily_mm", self.daily_mm), ("levels", self.levels)):
            unknown = sorted(set(table) - set(RAIN_CATEGORIES))
            if unknown:
                raise ValueError(
                    f"{name}: unknown rain category {', '.join(unknown)}; use {', '.join(RAIN_CATEGORIES)}"
                )
        for name, table in (("hourly_mm", self.hourly_mm), ("daily_mm", self.daily_mm)):
            bounds = [table[c] for c in RAIN_CATEGORIES if c in table]
            if any(b <= a for a, b in itertools.pairwise(bounds)):
                raise ValueError(f"{name}: thresholds must rise with the category ({', '.join(RAIN_CATEGORIES)})")
        return self


ADM4_MAX_SECONDS = 25 * 60
"""The time a forecast run may spend pacing adm4 requests: ews_forecast's tasks time out after 30 min."""
ADM4_MAX_VILLAGES = 1500
"""At most this many adm4 villages a region (1,500 requests at BMKG's 1 per second: 25 min)."""


class ForecastRules(_Frozen):
    """BMKG forecasts (adm4 village JSON, DigitalForecast XML) -> forecast-based levels.

    Forecast rainfall is categorised with the region's ``rain`` tables (3-hourly amounts as hourly
    rates, rolling 24-hour sums as daily amounts; weather codes such as heavy rain or thunderstorm set a
    minimum category, see README). Only steps within ``lead_hours`` of the run count; a forecast level is
    capped at ``max_level`` (a forecast is not an observation). An alert lasts until the end of the
    last threatening step, or ``valid_hours`` after the forecast's issue when no newer forecast comes.

    ``adm4_villages``: the villages whose own adm4 forecast the ``adm4`` forecast source fetches (codes of
    the Kepmendagri 2022 edition BMKG uses), one request every ``adm4_interval_s`` seconds (1.0: BMKG allows
    about 60 requests a minute per IP; less only for a mirror). Not "all": at most
    :data:`ADM4_MAX_VILLAGES`, and at most :data:`ADM4_MAX_SECONDS` of pacing, so a run ends within its
    task's timeout; the region's other villages get their kab/kota's DigitalForecast.
    """

    lead_hours: Annotated[float, Field(gt=0, le=72)] = 24.0
    max_level: Level = Level.SIAGA
    valid_hours: Annotated[float, Field(gt=0)] = 24.0
    max_age_hours: Annotated[float, Field(gt=0)] = 24.0
    adm4_villages: tuple[str, ...] = ()
    adm4_interval_s: Annotated[float, Field(ge=0)] = 1.0

    @field_validator("max_level", mode="before")
    @classmethod
    def _label(cls, value: object) -> object:
        return Level.from_label(value) if isinstance(value, str) else value

    @field_validator("adm4_villages", mode="before")
    @classmethod
    def _villages(cls, value: object) -> object:
        if isinstance(value, str):
            raise ValueError(
                f"{value!r}: list the village codes (Kepmendagri 2022, as BMKG's adm4 uses), e.g. "
                "['35.78.01.1001', '35.78.01.1002']; 'all' is not allowed: BMKG allows about 60 requests a minute, "
                f"so a province's 8,492 villages take 2.4 h, longer than a run may (at most {ADM4_MAX_VILLAGES} at 1 s)"
            )
        if not isinstance(value, list | tuple):
            return value
        codes: list[str] = []
        for raw in value:
            try:
                code = normalize_code(raw)
            except ValueError as exc:
                raise ValueError(f"{raw!r}: {exc}") from None
            if code.count(".") != 3:
                raise ValueError(f"{raw!r} is not a village (desa/kelurahan) code xx.xx.xx.xxxx")
            if code not in codes:
                codes.append(code)
        return tuple(codes)

    @model_validator(mode="after")
    def _fits_a_run(self) -> ForecastRules:
        seconds = len(self.adm4_villages) * self.adm4_interval_s
        if len(self.adm4_villages) > ADM4_MAX_VILLAGES or seconds > ADM4_MAX_SECONDS:
            raise ValueError(
                f"adm4_villages: {len(self.adm4_villages)} villages at {self.adm4_interval_s:g} s each take "
                f"{seconds / 60:.0f} min, more than the {ADM4_MAX_SECONDS // 60} min a forecast run has for them "
                f"(at most {ADM4_MAX_VILLAGES} villages); list the villages that need their own forecast (the "
                "others get their kab/kota's DigitalForecast)"
            )
        return self


class QuakeRules(_Frozen):
    """BMKG earthquakes -> estimated shaking intensity (MMI) per village -> levels.

    ``mmi`` gives the lowest MMI for each level. An event with tsunami potential puts every coastal
    village within ``tsunami_radius_km`` of the epicentre at Awas at once. Coastal villages are read from
    ``coastal`` (a CSV with a ``code`` column) when given; else they are the villages that touch the sea,
    the outline of all land around the region: its villages and the ``land`` boundary files or folders
    (the neighbouring provinces' polygons, each feature with a Kemendagri code in ``land_id_field``), so a
    land border with a neighbour is not coast (:func:`ews.hazard.earthquake.coastal_villages`). ``land: []``
    says the region has no land border (an island); without ``land`` a land border counts as coast and a
    run that derives the coast says so (DEGRADED).
    Events with magnitude below ``min_magnitude`` or older than ``max_age_hours`` at run time are not
    alerted (BMKG's feeds resend old events). An earthquake alert expires ``valid_hours`` after the event.

    A tsunami alert (BMKG's ``Potensi`` says the event may cause a tsunami) lasts until BMKG ends it: its
    end notice ("Peringatan dini tsunami telah berakhir", "... dinyatakan berakhir", "diakhiri") or the event
    re-served as "Tidak berpotensi tsunami" cancels the event's thread. Without one, the alert expires
    ``tsunami_max_hours`` after the event (default 12), and its message carries
    ``details["tsunami_ends"] = "max-hours"`` so that the expiry is reported as "no end notice received from
    BMKG", never as an ordinary end. One event is one message, so its shaking-only villages share that
    expiry. ``tsunami_max_hours`` may not exceed ``max_age_hours``: an end notice is read only while the
    event is younger than that.
    """

    mmi: dict[Level, float] = Field(default_factory=lambda: {Level.WASPADA: 5.0, Level.SIAGA: 6.0, Level.AWAS: 7.0})
    min_magnitude: Annotated[float, Field(ge=0)] = 4.0
    tsunami_radius_km: Annotated[float, Field(gt=0)] = 300.0
    coastal: Path | None = None
    land: tuple[Path, ...] | None = None
    land_id_field: Annotated[str, Field(min_length=1)] = "kode"
    valid_hours: Annotated[float, Field(gt=0)] = 6.0
    tsunami_max_hours: Annotated[float, Field(gt=0)] = 12.0
    max_age_hours: Annotated[float, Field(gt=0)] = 24.0

    @field_validator("mmi", mode="before")
    @classmethod
    def _labels(cls, value: object) -> object:
        if isinstance(value, Mapping):
            return {Level.from_label(k) if isinstance(k, str) else k: v for k, v in value.items()}
        return value

    @field_validator("land", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return (value,) if isinstance(value, str | Path) else value

    @field_validator("land", mode="after")
    @classmethod
    def _no_blank(cls, value: tuple[Path, ...] | None) -> tuple[Path, ...] | None:
        if value is not None and any(str(p).strip() in ("", ".") for p in value):
            raise ValueError("an empty path; give boundary files or folders of the land around the region")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> QuakeRules:
        if Level.NONE in self.mmi:
            raise ValueError("mmi: give thresholds for Waspada, Siaga and Awas only")
        bounds = [self.mmi[lv] for lv in (Level.WASPADA, Level.SIAGA, Level.AWAS) if lv in self.mmi]
        if any(b <= a for a, b in itertools.pairwise(bounds)):
            raise ValueError("mmi: thresholds must rise from Waspada to Siaga to Awas")
        if self.tsunami_max_hours > self.max_age_hours:
            raise ValueError(
                f"tsunami_max_hours ({self.tsunami_max_hours:g}) exceeds max_age_hours ({self.max_age_hours:g}): "
                "BMKG's end notice of an event older than max_age_hours is not read, so the tsunami alert could "
                "only end by its maximum; lower tsunami_max_hours or raise max_age_hours"
            )
        return self


class MessageOptions(_Frozen):
    """Which resident channels and languages a region renders."""

    languages: tuple[Literal["id", "en"], ...] = ("id", "en")
    channels: tuple[Literal["sms", "whatsapp"], ...] = ("sms", "whatsapp")
    whatsapp_fallback_sms: bool = False  # a WhatsApp message that fails for good goes again by SMS


class CommandCenter(_Frozen):
    """The command center that Tagana coordinators answer to (a public institutional contact, not personal data).

    ``phone``: its duty number, given in every mobilisation notice. ``whatsapp``: the WhatsApp number where
    coordinators reply ``SIAP <unit>`` (ews's WhatsApp sender; Twilio has no two-way SMS in Indonesia, so a
    coordinator on SMS is told to reply there; residents on SMS are told to send BERHENTI there to stop).
    ``ack_minutes``: how long a coordinator has to acknowledge. ``info``: where residents get more
    information, a number or short link printed in every resident message (default ``bmkg.go.id``).
    """

    name: Annotated[str, Field(min_length=1, max_length=40)] = "Pusdalops"
    # How ews's own alerts (satellite rain) are signed in messages and CAP: never "BMKG". GSM-7, short.
    issuer: Annotated[str, Field(min_length=2, max_length=16, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ./-]*$")] = "EWS"
    phone: Annotated[str, Field(pattern=r"^\+?[0-9][0-9 -]{1,18}[0-9]$")] | None = None
    whatsapp: Annotated[str, Field(pattern=r"^\+[1-9][0-9]{7,14}$")] | None = None
    ack_minutes: Annotated[int, Field(ge=5, le=24 * 60)] = 30
    # GSM-7 and short: it is in every resident SMS.
    info: Annotated[str, Field(min_length=3, max_length=32, pattern=r"^[A-Za-z0-9+][A-Za-z0-9 ./:+-]*$")] | None = None


class EscalationStep(_Frozen):
    """One step of a ``mobilisation:`` policy: which contact steps of ``tagana.csv`` it pages, and when."""

    targets: tuple[Annotated[int, Field(ge=1, le=9)], ...] = Field(min_length=1)
    delay_minutes: Annotated[float, Field(ge=0, le=24 * 60)]

    @field_validator("targets", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, int) else value


class EscalationRules(_Frozen):
    """An escalation policy as written in the region file (see docs/mobilisation.md); :meth:`policy` is pure."""

    steps: tuple[EscalationStep, ...] = (
        EscalationStep(targets=(1,), delay_minutes=0),
        EscalationStep(targets=(2,), delay_minutes=10),
        EscalationStep(targets=(3,), delay_minutes=20),
    )
    repeat: Annotated[int, Field(ge=0, le=10)] = 1
    repeat_after_minutes: Annotated[float, Field(ge=0, le=24 * 60)] = 30
    quorum: Annotated[int, Field(ge=1, le=50)] = 1
    ack_timeout_minutes: Annotated[float, Field(ge=0, le=7 * 24 * 60)] = 60

    @model_validator(mode="after")
    def _valid(self) -> EscalationRules:
        self.policy()  # steps in order of delay...: the pure model's own checks
        if self.steps and (tuple(self.steps[0].targets) != (1,) or self.steps[0].delay_minutes != 0):
            raise ValueError(
                "the first step is the alert's own Tagana notice: it pages the contacts of step 1 at once "
                "({targets: 1, delay_minutes: 0}); to notify more contacts at once, give them step 1 in tagana.csv"
            )
        return self

    def policy(self) -> Policy:
        """The :class:`ews.command.escalation.Policy` these rules describe."""
        return Policy(
            steps=tuple(Step(tuple(s.targets), timedelta(minutes=s.delay_minutes)) for s in self.steps),
            repeat=self.repeat,
            repeat_after=timedelta(minutes=self.repeat_after_minutes),
            quorum=self.quorum,
            ack_timeout=timedelta(minutes=self.ack_timeout_minutes),
        )


class MobilisationRules(EscalationRules):
    """The region's ``mobilisation:`` block: the default escalation policy and per-unit overrides.

    ``units: {TGN-3578: {quorum: 2}}`` gives a unit its own policy; fields it leaves out come from the region's
    (not from the built-in defaults), so a unit changes only what differs.
    """

    units: dict[Annotated[str, Field(min_length=1, max_length=64)], EscalationRules] = {}

    @model_validator(mode="before")
    @classmethod
    def _inherit(cls, data: object) -> object:
        if not isinstance(data, Mapping) or not isinstance(data.get("units"), Mapping):
            return data
        shared = {k: v for k, v in data.items() if k != "units"}
        units = {
            unit: {**shared, **given} if isinstance(given, Mapping) else given for unit, given in data["units"].items()
        }
        return {**data, "units": units}

    def policy_for(self, unit_id: str) -> Policy:
        """The policy of ``unit_id``: its own override, or the region's."""
        own = self.units.get(unit_id)
        return own.policy() if own is not None else self.policy()


class FetchOptions(_Frozen):
    """How a region's sources are fetched over HTTP.

    ``allowed_redirect_hosts``: hosts (``mirror.example.org``: any port; ``host:port``: that port) that a
    source may redirect to. Without them, ews follows a redirect only within the host it fetches from
    (see :func:`ews.ingest.http.redirect_refusal`).
    """

    allowed_redirect_hosts: tuple[Annotated[str, Field(min_length=1, pattern=r"^[^\s/]+$")], ...] = ()


class RegionConfig(_Frozen):
    """A validated region: its boundaries, population, thresholds, responders and subscribers.

    ``area_names`` are CSV files with ``code`` and ``name`` columns naming kecamatan and kab/kota
    (used in messages and maps); ``routing`` routes inbound reports to units (:mod:`ews.command.rules`);
    ``tagana`` and ``subscribers`` are CSV files (see README);
    ``exercise_list`` (subscribers' columns) receives CAP status Test/Exercise alerts instead of residents.
    """

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")]
    name: str
    province_code: Annotated[str, Field(pattern=r"^\d{2}$")]
    # The provinces whose villages the region holds: its own by default; a national (or multi-province) region
    # lists them, and ``province_code`` is then the command center's own (its time zone heads maps and desks).
    provinces: tuple[Annotated[str, Field(pattern=r"^\d{2}$")], ...] = ()
    boundaries: BoundarySource
    population: PopulationSource = PopulationSource()
    levels: LevelRules = LevelRules()
    alerts: AlertRules = AlertRules()
    messages: MessageOptions = MessageOptions()
    command_center: CommandCenter = CommandCenter()
    rain: RainRules = RainRules()
    forecast: ForecastRules = ForecastRules()
    earthquake: QuakeRules = QuakeRules()
    fetch: FetchOptions = FetchOptions()
    routing: RoutingRules = RoutingRules()  # report routing (kanalisasi); see docs/routing.md
    mobilisation: MobilisationRules = MobilisationRules()  # Tagana escalation; see docs/mobilisation.md
    area_names: tuple[Path, ...] = ()
    tagana: Path | None = None
    subscribers: Path | None = None
    exercise_list: Path | None = None
    source_file: Path | None = None

    @property
    def province_codes(self) -> frozenset[str]:
        """Every province the region's villages may be in (``provinces``, or its ``province_code`` alone)."""
        return frozenset(self.provinces or (self.province_code,))


def parse_instant(text: str, what: str) -> datetime:
    """Parse an ISO 8601 instant that must carry its offset (``2026-09-24T15:30+08:00``).

    Raises
    ------
    ConfigError
        Not ISO 8601, or no offset (a local time without a zone is ambiguous across WIB/WITA/WIT);
        ``what`` names the option or param in the message.
    """
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{what} {text!r}: use ISO 8601 with an offset, e.g. 2026-09-24T15:30+08:00") from None
    if value.tzinfo is None:
        raise ConfigError(f"{what} {text!r}: give a time zone offset (e.g. +07:00 for WIB)")
    return value


def _expand(value: object, env: Mapping[str, str], where: str) -> object:
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in env:
                found = env[name]
            elif name == "EWS_SHARED_DATA":
                found = DEFAULT_SHARED_DATA
            else:
                raise ConfigError(f"{where}: environment variable {name} is not set; export it or edit the path")
            # A relative data root means "relative to where ews is run", like any command-line path.
            return str(Path(found).resolve()) if name == "EWS_SHARED_DATA" else found

        return _VAR.sub(sub, value)
    if isinstance(value, dict):
        return {k: _expand(v, env, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, env, where) for v in value]
    return value


def _resolve_paths(config: RegionConfig, base: Path) -> RegionConfig:
    def fix(p: Path | None) -> Path | None:
        if p is None:
            return None
        return p if p.is_absolute() else (base / p).resolve()

    boundaries = config.boundaries.model_copy(update={"path": fix(config.boundaries.path)})
    given = config.earthquake.land
    land = None if given is None else tuple(p for p in (fix(g) for g in given) if p is not None)
    population = config.population.model_copy(update={"path": fix(config.population.path)})
    return config.model_copy(
        update={
            "boundaries": boundaries,
            "population": population,
            "area_names": tuple(p for p in (fix(a) for a in config.area_names) if p is not None),
            "tagana": fix(config.tagana),
            "subscribers": fix(config.subscribers),
            "exercise_list": fix(config.exercise_list),
            "earthquake": config.earthquake.model_copy(
                update={"coastal": fix(config.earthquake.coastal), "land": land}
            ),
        }
    )


def region_from_mapping(data: object, *, source: str, base: Path, env: Mapping[str, str]) -> RegionConfig:
    """Validate an already-parsed region mapping; ``source`` names it in errors."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a region file must be a YAML mapping of keys, got {type(data).__name__}")
    expanded = _expand(data, env, source)
    try:
        config = RegionConfig.model_validate(expanded)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(top level)"
            if err["type"] == "extra_forbidden":
                problems.append(f"unknown key '{key}' (check its spelling against the README)")
            else:
                problems.append(f"key '{key}': {err['msg']}")
        raise ConfigError(f"{source}: " + "; ".join(problems)) from None
    return _resolve_paths(config, base).model_copy(update={"source_file": Path(source)})


MAX_REGION_BYTES = 1024 * 1024
"""The largest region file ews reads (a real one is a few KB)."""
MAX_REGION_DEPTH = 32
"""The deepest nesting of mappings/lists in a region file (a real one nests 3 levels)."""


class _RegionYamlRefusedError(Exception):
    """A region file uses YAML that ews does not accept; ``line`` is 1-based."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line = line
        self.reason = reason


class _RegionLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses aliases (``*name``) and nesting deeper than :data:`MAX_REGION_DEPTH`.

    An alias is refused when the document is composed, before any value is built: a "billion laughs"
    file (anchors of aliases of anchors) is refused at its first alias instead of growing without end.
    The nesting limit stops the composer (which recurses) before Python's recursion limit.
    """

    _depth = 0

    def compose_node(self, parent: yaml.nodes.Node | None, index: int) -> yaml.nodes.Node | None:
        if self.check_event(yaml.events.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]  # untyped in types-PyYAML
            raise _RegionYamlRefusedError(
                event.start_mark.line + 1,
                f"YAML aliases (*{event.anchor}) are not allowed in region files; write the value out",
            )
        self._depth += 1
        try:
            if self._depth > MAX_REGION_DEPTH:
                raise _RegionYamlRefusedError(
                    self.peek_event().start_mark.line + 1,  # type: ignore[no-untyped-call]
                    f"values nested more than {MAX_REGION_DEPTH} levels deep; a region file nests a few",
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def open_region(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> RegionConfig:
    """Read and validate ``regions/<id>.yaml``.

    The file is YAML read with a safe loader, at most :data:`MAX_REGION_BYTES` bytes of UTF-8, without
    aliases (``*name``: write the value out; anchors alone are harmless) and nested at most
    :data:`MAX_REGION_DEPTH` levels.

    Parameters
    ----------
    path
        The region file.
    env
        Variables for ``${NAME}`` in paths; pass ``os.environ`` from a front door.

    Raises
    ------
    ConfigError
        The file is missing, too large, not UTF-8, not YAML, uses an alias or nests too deeply, or has
        an unknown or invalid key (named in the message).
    """
    file = Path(path)
    try:
        with file.open("rb") as stream:
            raw = stream.read(MAX_REGION_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read region file ({exc.strerror}); check the --region path") from None
    if len(raw) > MAX_REGION_BYTES:
        raise ConfigError(
            f"region file {file}: larger than {MAX_REGION_BYTES:,} bytes; a region file is a few KB: "
            "is --region pointing at the right file?"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"region file {file}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8"
        ) from None
    try:
        data = yaml.load(text, Loader=_RegionLoader)  # noqa: S506 - a SafeLoader subclass
    except _RegionYamlRefusedError as exc:
        raise ConfigError(f"region file {file} line {exc.line}: {exc.reason}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML: {exc}") from None
    return region_from_mapping(data, source=str(file), base=file.resolve().parent, env=env or {})

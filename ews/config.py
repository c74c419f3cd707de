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
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

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


class RainRules(_Frozen):
    """BMKG rain intensity categories and the level each one gives (observed satellite rainfall).

    ``hourly_mm`` and ``daily_mm`` are the *lower bounds* of each category in mm per hour and mm per
    24 hours (BMKG's table; see DOMAIN notes and README "Rain levels"); a category missing from a table
    does not exist for that period (BMKG has no hourly "ekstrem"). ``levels`` maps a category to a level;
    categories not listed give no level. A village's value is the ``statistic`` (exact zonal mean or
    max) of the 1-hour and 24-hour accumulations; its level is the higher of the two. An active alert
    goes down only once the value is below ``(1 - hysteresis)`` x the threshold. An alert lasts
    ``valid_hours`` after the end of the newest raster; a raster older than ``max_age_minutes`` at run
    time is stale (the run is degraded, not silent).
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


class ForecastRules(_Frozen):
    """BMKG forecasts (adm4 village JSON, DigitalForecast XML) -> forecast-based levels.

    Forecast rainfall is categorised with the region's ``rain`` tables (3-hourly amounts as hourly
    rates, rolling 24-hour sums as daily amounts; weather codes such as heavy rain or thunderstorm set a
    minimum category, see README). Only steps within ``lead_hours`` of the run count; a forecast level is
    capped at ``max_level`` (a forecast is not an observation). An alert lasts until the end of the
    last threatening step, or ``valid_hours`` after the forecast's issue when no newer forecast comes.
    """

    lead_hours: Annotated[float, Field(gt=0, le=72)] = 24.0
    max_level: Level = Level.SIAGA
    valid_hours: Annotated[float, Field(gt=0)] = 24.0
    max_age_hours: Annotated[float, Field(gt=0)] = 24.0

    @field_validator("max_level", mode="before")
    @classmethod
    def _label(cls, value: object) -> object:
        return Level.from_label(value) if isinstance(value, str) else value


class QuakeRules(_Frozen):
    """BMKG earthquakes -> estimated shaking intensity (MMI) per village -> levels.

    ``mmi`` gives the lowest MMI for each level. An event with tsunami potential puts every coastal
    village within ``tsunami_radius_km`` of the epicentre at Awas at once. Coastal villages are read from
    ``coastal`` (a CSV with a ``code`` column) when given, else taken as the villages that touch the
    outline of the region's boundary layer (see README: a land border counts as coast there).
    Events with magnitude below ``min_magnitude`` or older than ``max_age_hours`` at run time are not
    alerted (BMKG's feeds resend old events). An earthquake alert expires ``valid_hours`` after the event.
    """

    mmi: dict[Level, float] = Field(default_factory=lambda: {Level.WASPADA: 5.0, Level.SIAGA: 6.0, Level.AWAS: 7.0})
    min_magnitude: Annotated[float, Field(ge=0)] = 4.0
    tsunami_radius_km: Annotated[float, Field(gt=0)] = 300.0
    coastal: Path | None = None
    valid_hours: Annotated[float, Field(gt=0)] = 6.0
    max_age_hours: Annotated[float, Field(gt=0)] = 24.0

    @field_validator("mmi", mode="before")
    @classmethod
    def _labels(cls, value: object) -> object:
        if isinstance(value, Mapping):
            return {Level.from_label(k) if isinstance(k, str) else k: v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _ordered(self) -> QuakeRules:
        if Level.NONE in self.mmi:
            raise ValueError("mmi: give thresholds for Waspada, Siaga and Awas only")
        bounds = [self.mmi[lv] for lv in (Level.WASPADA, Level.SIAGA, Level.AWAS) if lv in self.mmi]
        if any(b <= a for a, b in itertools.pairwise(bounds)):
            raise ValueError("mmi: thresholds must rise from Waspada to Siaga to Awas")
        return self


class MessageOptions(_Frozen):
    """Which resident channels and languages a region renders."""

    languages: tuple[Literal["id", "en"], ...] = ("id", "en")
    channels: tuple[Literal["sms", "whatsapp"], ...] = ("sms", "whatsapp")
    whatsapp_fallback_sms: bool = False  # a WhatsApp message that fails for good goes again by SMS


class RegionConfig(_Frozen):
    """A validated region: its boundaries, population, thresholds, responders and subscribers.

    ``area_names`` are CSV files with ``code`` and ``name`` columns naming kecamatan and kab/kota
    (used in messages and maps); ``tagana`` and ``subscribers`` are CSV files (see README);
    ``exercise_list`` (subscribers' columns) receives CAP status Test/Exercise alerts instead of residents.
    """

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")]
    name: str
    province_code: Annotated[str, Field(pattern=r"^\d{2}$")]
    boundaries: BoundarySource
    population: PopulationSource = PopulationSource()
    levels: LevelRules = LevelRules()
    alerts: AlertRules = AlertRules()
    messages: MessageOptions = MessageOptions()
    rain: RainRules = RainRules()
    forecast: ForecastRules = ForecastRules()
    earthquake: QuakeRules = QuakeRules()
    area_names: tuple[Path, ...] = ()
    tagana: Path | None = None
    subscribers: Path | None = None
    exercise_list: Path | None = None
    source_file: Path | None = None


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
    population = config.population.model_copy(update={"path": fix(config.population.path)})
    return config.model_copy(
        update={
            "boundaries": boundaries,
            "population": population,
            "area_names": tuple(p for p in (fix(a) for a in config.area_names) if p is not None),
            "tagana": fix(config.tagana),
            "subscribers": fix(config.subscribers),
            "exercise_list": fix(config.exercise_list),
            "earthquake": config.earthquake.model_copy(update={"coastal": fix(config.earthquake.coastal)}),
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


def open_region(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> RegionConfig:
    """Read and validate ``regions/<id>.yaml``.

    Parameters
    ----------
    path
        The region file.
    env
        Variables for ``${NAME}`` in paths; pass ``os.environ`` from a front door.

    Raises
    ------
    ConfigError
        The file is missing, is not YAML, or has an unknown or invalid key (named in the message).
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read region file ({exc.strerror}); check the --region path") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML: {exc}") from None
    return region_from_mapping(data, source=str(file), base=file.resolve().parent, env=env or {})

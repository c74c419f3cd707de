"""One function per pipeline step; the CLI and the Airflow DAG only call these.

Steps pass file paths (never arrays or phone numbers): ``fetch_warnings`` writes ``warnings.json``
into a run folder, ``assess_villages`` writes ``impacts.csv`` beside it, and ``publish_outputs``
renders messages and writes the review outputs atomically. :func:`run_slice` runs all three.
"""

from __future__ import annotations

import functools
import json
import logging
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import pandas as pd

from ews.channels.base import Channel, SendResult
from ews.channels.outbox import FileOutbox
from ews.codes import local_zone
from ews.config import RegionConfig
from ews.dispatch import Dispatcher
from ews.errors import BoundaryError, DataValidationError
from ews.exposure.coverage import VillageLayer
from ews.impact.assess import exposed_total, hazard_impacts, impacts, level_counts
from ews.impact.named_targets import kecamatan_coverage, kecamatan_index, named_area_notes, target_by_name
from ews.ingest.bmkg_cap import DEFAULT_BASE_URL, read_warnings
from ews.ingest.boundaries import read_area_names
from ews.ingest.contacts import (
    SubscriberFile,
    contact_file_error,
    file_digest,
    read_subscriber_file,
    read_subscribers,
    read_tagana,
)
from ews.ingest.http import fetch_bytes
from ews.ingest.population import attach_population
from ews.ingest.rain_urls import DAY_HOURS
from ews.sources import HazardSources, assess_hazards, load_hazards, load_underlay, stage_sources
from ews.store.artifacts import atomic_folder, file_stat, write_bytes_atomic, write_text_atomic
from ews.store.records import warning_from_record, warning_to_record
from ews.store.region_cache import open_villages
from ews.store.repository import AlertVersionRecord, Store
from ews.types import HazardMessage, Level, Recipient, RenderedMessage, TaganaUnit, Warning

if TYPE_CHECKING:  # matplotlib is imported on publish only
    from ews.review.riskmap import RasterLayer
    from ews.review.scene import EndedAlert

log = logging.getLogger(__name__)
LIVE_WITHIN = timedelta(minutes=10)
"""A run whose instant is this close to the clock is live: its report gives its messages' latency (a replay's not)."""
Progress = Callable[[str], None]
TEMPLATES_DIR = Path(__file__).resolve().parents[1] / "alert_templates"


def _quiet(_: str) -> None:
    return None


@dataclass
class RegionData:
    """A region's villages (with names and population), index, Tagana units and its subscribers file as read.

    Runs read the residents to alert from the store; the subscribers file only feeds it
    (:func:`sync_region_contacts`). ``subscriber_file`` is the file as parsed this run, ``None`` when it was not
    parsed: not configured, refused (see :meth:`refused`), left out (``subscribers=False``), or
    ``subscribers_unchanged`` — the store holds this very file already (same digest), so it is neither read
    nor imported again.
    """

    config: RegionConfig
    villages: gpd.GeoDataFrame
    layer: VillageLayer
    subscriber_file: SubscriberFile | None
    tagana: list[TaganaUnit]
    population_estimated: bool
    notes: list[str] = field(default_factory=list)
    exercise_list: list[Recipient] = field(default_factory=list)
    problems: list[dict[str, str]] = field(default_factory=list)  # contact files not used (DEGRADED)
    subscribers_unchanged: bool = False
    boundary_key: str | None = None  # the prepared villages' cache key (ews.store.region_cache.village_key)

    def refused(self, path: Path | None) -> bool:
        """Whether the contact file at ``path`` was refused (and so is not used this run)."""
        return path is not None and any(p["source"] == str(path) for p in self.problems)


def open_region_data(
    config: RegionConfig,
    progress: Progress = _quiet,
    *,
    store: Store | None = None,
    cache_dir: Path | None = None,
    subscribers: bool = True,
) -> RegionData:
    """Read everything a region configures: boundaries, population, names, subscribers, Tagana.

    The villages come prepared (projected, indexed) from the cache of their boundary set in ``cache_dir``
    (:func:`ews.store.region_cache.open_villages`; in memory only without one). With ``store``, the
    subscribers file is parsed only when its digest differs from the one of the file the store last imported
    for the region; ``subscribers=False`` leaves it out (a step that does not import it).

    Raises
    ------
    BoundaryError
        The boundaries cannot be used (see :func:`ews.ingest.boundaries.read_boundaries`), or more than
        half of their areas are outside the region's ``province_code``.
    DataValidationError
        A contact file (subscribers, exercise_list, tagana) has bad lines: every bad line of every file
        is listed (never a phone number), with a refused boundary file too, so one does not hide another.
    """
    # A contact file with bad lines is not used at all (never half of it), and the run goes on without it:
    # one typo must not stop a warning reaching everyone already in the store. Each is reported DEGRADED.
    refused: list[DataValidationError] = []
    problems: list[dict[str, str]] = []
    subscriber_file: SubscriberFile | None = None
    unchanged = False
    tagana: list[TaganaUnit] = []
    exercise: list[Recipient] = []
    unused = {
        "subscribers": "not imported: the subscribers already in the store still get this run's alerts",
        "tagana": "not used: the Tagana units recorded by the last good file are used",
        "exercise_list": "not used: Test/Exercise alerts reach nobody this run",
    }

    def contact_file(kind: str, path: Path, exc: DataValidationError) -> None:
        refused.append(exc)
        problems.append({"source": str(path), "message": f"DEGRADED: {kind} file {unused[kind]}; fix it: {exc}"})

    if config.subscribers and subscribers:
        try:
            imported = store.contact_file_digest(config.id, "subscribers") if store is not None else None
            unchanged = imported is not None and imported == file_digest(config.subscribers)
            if unchanged:
                progress(f"subscribers file {config.subscribers} unchanged since its import: not read")
            else:
                parsed = read_subscriber_file(config.subscribers, None, config.id)
                if parsed.problems:
                    raise contact_file_error(config.subscribers, "subscribers", parsed.problems)
                subscriber_file = parsed
        except DataValidationError as exc:
            contact_file("subscribers", config.subscribers, exc)
    if config.tagana:
        try:
            tagana = read_tagana(config.tagana)
        except DataValidationError as exc:
            contact_file("tagana", config.tagana, exc)
    if config.exercise_list:
        try:
            exercise = read_subscribers(config.exercise_list, role="exercise_list")
        except DataValidationError as exc:
            contact_file("exercise_list", config.exercise_list, exc)
    b = config.boundaries
    keep = (config.population.column,) if config.population.method == "column" and config.population.column else ()
    progress(f"reading boundaries {b.path}")
    try:
        prepared = open_villages(cache_dir, b.path, id_field=b.id_field, name_field=b.name_field, layer=b.layer,
                                 keep=keep)  # fmt: skip
    except BoundaryError as exc:
        raise (exc if not refused else DataValidationError("\n".join(map(str, [exc, *refused])))) from None
    villages = prepared.layer.table
    notes = []
    repaired = villages.attrs.get("repaired", [])
    if repaired:
        notes.append(f"{len(repaired)} boundary geometries were invalid and repaired: {', '.join(repaired[:10])}")
    province = ", ".join(sorted(config.province_codes))
    outside = villages[~villages["province"].isin(list(config.province_codes))]
    if 2 * len(outside) > len(villages):
        # Mostly another province: the wrong files (or the wrong province_code, which sets the time zone).
        found = ", ".join(f"{p} ({n})" for p, n in outside["province"].value_counts().head(5).items())
        wrong = BoundaryError(
            f"{b.path}: {len(outside)} of {len(villages)} areas are outside province {province} of region "
            f"{config.id} (found province {found}; e.g. {outside['code'].iloc[0]}); point 'boundaries.path' at "
            f"province {province}'s boundaries, or set 'province_code' to the province they are in (a region over "
            "several provinces lists them all in 'provinces')"
        )
        raise (wrong if not refused else DataValidationError("\n".join(map(str, [wrong, *refused])))) from None
    if len(outside):
        notes.append(f"{len(outside)} areas are outside province {province}: {outside['code'].iloc[0]} …")
    known = set(villages["code"].tolist())  # tolist: an Arrow string column iterates slowly
    if subscriber_file is not None:
        subscribed = {r.village_code for r in subscriber_file.records}
    elif unchanged and store is not None:
        # The file is the one the store holds: its villages are the store's (one read of the village index),
        # those of the provinces these boundaries cover (a shared store also holds other regions' subscribers).
        provinces = set(villages["province"].tolist())
        subscribed = {c for c in store.subscriber_villages() if c.split(".", 1)[0] in provinces}
    else:
        subscribed = set()
    elsewhere = sorted(c for c in subscribed | {r.village_code for r in exercise} if c not in known)
    if elsewhere:  # village codes only: no personal data
        notes.append(
            f"subscribers in {len(elsewhere)} village(s) outside this region's boundaries get no alerts from it: "
            f"{', '.join(elsewhere[:5])}{' …' if len(elsewhere) > 5 else ''} (a typo, or another region's subscriber)"
        )
    layer = prepared.layer
    villages = attach_population(layer.table, layer.area_km2, config.population)
    missing = villages.attrs.get("population_missing", [])
    if missing:
        notes.append(f"no population total for kab/kota {', '.join(missing)}: people exposed unknown there")
    names = read_area_names(config.area_names)
    # An area names itself when it is at that level (a kecamatan-level region needs no names file).
    own = dict(zip(villages["code"].tolist(), villages["name"].tolist(), strict=True))
    villages["kecamatan_name"] = villages["kecamatan"].map(lambda c: names.get(c) or own.get(c, c))
    villages["kabkota_name"] = villages["kabkota"].map(lambda c: names.get(c) or own.get(c, c))
    villages["area_km2"] = layer.area_km2
    estimated = bool(villages.attrs.get("population_estimated", False))
    layer = layer.with_table(villages)
    return RegionData(
        config, villages, layer, subscriber_file, tagana, estimated, notes, exercise, problems,
        subscribers_unchanged=unchanged, boundary_key=prepared.key,
    )  # fmt: skip


# -- step 1 ---------------------------------------------------------------------------------------


def fetch_warnings(
    source: str, run_dir: Path, *, base_url: str = DEFAULT_BASE_URL, allowed_hosts: Sequence[str] = ()
) -> dict[str, object]:
    """Read warnings from ``source`` and write ``run_dir/warnings.json`` (with the problems met).

    Returns a small summary (counts and the file path) that is safe for XCom.
    """
    batch = read_warnings(source, base_url=base_url, fetch=functools.partial(fetch_bytes, allowed_hosts=allowed_hosts))
    record = {
        "source": source,
        "warnings": [warning_to_record(w) for w in batch.warnings],
        "problems": [{"source": p.source, "message": p.message} for p in batch.problems],
        "duplicates": batch.duplicates,
    }
    path = run_dir / "warnings.json"
    write_text_atomic(path, json.dumps(record, ensure_ascii=False, indent=1))
    return {"path": str(path), "warnings": len(batch.warnings), "problems": len(batch.problems)}


def fetch_sources(
    sources: HazardSources,
    run_dir: Path,
    *,
    province: str | None = None,
    quake_base_url: str | None = None,
    forecast_url_template: str | None = None,
    allowed_hosts: Sequence[str] = (),
    config: RegionConfig | None = None,
    now: datetime | None = None,
    cache_dir: Path | None = None,
    adm4_base_url: str | None = None,
) -> dict[str, object]:
    """Stage this run's rain rasters, forecasts and earthquake feeds (see :func:`ews.sources.stage_sources`).

    ``province`` names the DigitalForecast that ``bmkg`` fetches (the region's name); ``quake_base_url``
    and ``forecast_url_template`` point ``bmkg`` at a mirror (default BMKG's servers). ``config`` (the
    region) gives how far back a rain URL source is fetched (24 h plus ``rain.max_age_minutes``); ``now``
    is the run time and ``cache_dir`` where downloaded rain steps are kept between runs. ``config`` also lists
    the villages the ``adm4`` forecast source fetches, and their pacing; ``adm4_base_url`` points it at a mirror.
    """
    options: dict[str, Any] = {}
    if quake_base_url:
        options["quake_base_url"] = quake_base_url
    if forecast_url_template:
        options["forecast_url_template"] = forecast_url_template
    if adm4_base_url:
        options["adm4_base_url"] = adm4_base_url
    if config is not None:
        options["rain_lookback"] = timedelta(hours=DAY_HOURS, minutes=config.rain.max_age_minutes)
        options["adm4_villages"] = config.forecast.adm4_villages
        options["adm4_interval_s"] = config.forecast.adm4_interval_s
    return stage_sources(
        sources, run_dir, province=province, allowed_hosts=allowed_hosts, now=now, cache_dir=cache_dir, **options
    )


def no_warnings(run_dir: Path) -> dict[str, object]:
    """Write an empty ``warnings.json``: a run on other sources only (rain, forecasts, earthquakes)."""
    path = run_dir / "warnings.json"
    record: dict[str, object] = {"source": None, "warnings": [], "problems": [], "duplicates": 0}
    write_text_atomic(path, json.dumps(record))
    return {"path": str(path), "warnings": 0, "problems": 0}


def _load_warnings(run_dir: Path) -> tuple[list[Warning], list[dict[str, str]]]:
    path = run_dir / "warnings.json"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataValidationError(f"{path}: cannot read the warnings of this run ({exc}); run fetch first") from None
    return [warning_from_record(r) for r in record["warnings"]], list(record["problems"])


# -- step 2 ---------------------------------------------------------------------------------------


def assess_villages(
    config: RegionConfig,
    run_dir: Path,
    progress: Progress = _quiet,
    *,
    region: RegionData | None = None,
    now: datetime | None = None,
    cache_dir: Path | None = None,
) -> dict[str, object]:
    """Intersect this run's warnings with the region's villages; write ``run_dir/impacts.csv``.

    When the run staged other sources (:func:`fetch_sources`: rain rasters, forecasts, earthquake feeds),
    they are assessed as of ``now`` too (``hazards.json``) and their villages join ``impacts.csv``.
    Zonal weights are cached in ``cache_dir``. ``region`` may be passed when the caller has already read
    it (one process running every step).
    """
    region = region or open_region_data(config, progress, cache_dir=cache_dir, subscribers=False)
    warnings, _ = _load_warnings(run_dir)
    problems: list[dict[str, str]] = []
    notes: list[str] = []
    index = kecamatan_index(region.villages) if any(w.named_areas for w in warnings) else None
    located: list[Warning] = []
    for w in warnings:
        if not w.geometry.is_empty:
            located.append(w)
        elif w.named_areas and w.msg_type in ("Alert", "Update") and index is not None:
            # No usable polygon: the warning is placed on the kecamatan its description names, loudly.
            target = target_by_name(w, index, config.province_code, w.location_hint)
            notes.extend(target.notes)
            if target.codes:
                located.append(replace(w, geometry=target.geometry))
            message = (
                f"DEGRADED: no usable polygon: located by the {len(target.codes)} kecamatan named in its "
                f"description ({', '.join(target.codes)})" if target.codes
                else "DEGRADED: no usable polygon and none of its named kecamatan found in the region: not located"
            )  # fmt: skip
            problems.append({"source": f"{w.source} [{w.identifier}]", "message": message})
    progress(f"intersecting {len(located)} warning(s) with {len(region.villages):,} villages")
    frames = []
    for w in located:  # one warning fails alone
        try:
            frames.append(impacts(region.layer, [w], config.levels))
        except Exception as exc:
            log.exception("intersecting %s failed", w.identifier)
            why = f"internal error ({type(exc).__name__}: {exc}); please report it"
            problems.append({"source": f"{w.source} [{w.identifier}]", "message": f"DEGRADED: not intersected: {why}"})
    rows = pd.concat(frames, ignore_index=True) if frames else impacts(region.layer, [], config.levels)
    if index is not None:
        for w in located:
            coverage = kecamatan_coverage(rows, region.villages, w.identifier)
            notes.extend(named_area_notes(w, coverage, index, config.province_code))
    write_text_atomic(
        run_dir / "assessment.json", json.dumps({"problems": problems, "notes": notes}, ensure_ascii=False)
    )
    hazard_count = 0
    if (run_dir / "sources.json").exists():
        if now is None:
            raise ValueError("assess_villages: give `now` when the run has rain, forecast or earthquake sources")
        progress("assessing rain, forecast and earthquake sources")
        assessment = assess_hazards(region, run_dir, now, cache_dir=cache_dir)
        hazard_count = len(assessment.messages)
        extra = hazard_impacts(region.villages, assessment.messages)
        if len(extra):
            rows = pd.concat([rows, extra], ignore_index=True) if len(rows) else extra
    path = run_dir / "impacts.csv"
    write_text_atomic(path, rows.to_csv(index=False))
    return {
        "path": str(path),
        "rows": len(rows),
        "villages": int(rows["code"].nunique()) if len(rows) else 0,
        "hazard_messages": hazard_count,
    }


# -- step 3 ---------------------------------------------------------------------------------------


@dataclass
class RunReport:
    """What a run did, for the CLI table and the DAG's logs (no personal data)."""

    out_dir: Path
    region: str
    warnings: int
    problems: list[dict[str, str]]
    notes: list[str]
    levels: dict[str, int]  # villages per level in force (an alert this run cancelled or ended is not counted)
    people_exposed: float | None
    population_estimated: bool
    messages: dict[str, int]
    unreachable_tagana: list[str]
    transitions: dict[str, int] = field(default_factory=dict)
    pending: list[int] = field(default_factory=list)  # versions this run held for review
    # Everything of the region still waiting for review (this run's and earlier runs'), one line per thread.
    pending_review: list[str] = field(default_factory=list)
    cap_files: int = 0
    queued: int | None = None  # messages left in the send ledger for `ews send` (None: delivered in the run)
    # Villages whose alert this run ended, per status word of summary.csv: {"DICABUT": n, "BERAKHIR": m}.
    ended: dict[str, int] = field(default_factory=dict)
    # This run's messages: per stage, the delay from their source's <sent> (ews.latency.summarise).
    latency: dict[str, dict[str, float]] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunReport:
        """The report :meth:`to_json` gave (what an ``ews worker`` answers)."""
        return cls(**{**data, "out_dir": Path(data["out_dir"])})

    def to_json(self) -> dict[str, object]:
        """A JSON-safe dict."""
        return {
            "out_dir": str(self.out_dir),
            "region": self.region,
            "warnings": self.warnings,
            "problems": self.problems,
            "notes": self.notes,
            "levels": self.levels,
            "ended": self.ended,
            "people_exposed": self.people_exposed,
            "population_estimated": self.population_estimated,
            "messages": self.messages,
            "unreachable_tagana": self.unreachable_tagana,
            "transitions": self.transitions,
            "pending": self.pending,
            "pending_review": self.pending_review,
            "cap_files": self.cap_files,
            "queued": self.queued,
            "latency": self.latency,
        }


def placeholder_units(villages: pd.DataFrame, units: Sequence[TaganaUnit]) -> list[TaganaUnit]:
    """A contact-less Tagana unit for every kab/kota of the region that no configured unit covers.

    Their notices are still rendered and recorded (status ``no-contact``), so a village is never left
    without a responder silently: the run names those kab/kota loudly.
    """
    covered = {u.kabkota_code for u in units if not u.kecamatan_codes}
    pairs = villages[["kabkota", "kabkota_name"]].drop_duplicates("kabkota")
    names = dict(zip(pairs["kabkota"].tolist(), pairs["kabkota_name"].tolist(), strict=True))
    return [
        TaganaUnit(f"TAGANA-{k}", f"Tagana {names[k]}", k, (), "", None, "sms")
        for k in sorted(set(names) - covered)
        if k and not any(u.kabkota_code == k for u in units)
    ]


def sync_region_contacts(store: Store, config: RegionConfig, region: RegionData) -> None:
    """Bring the region's subscribers file (if any) into the store, all or nothing; record its Tagana units.

    The file is imported only when its digest differs from the one of the file the store last imported for the
    region (:func:`ews.subscribers.sync_subscriber_file`), from the parse :func:`open_region_data` made (the
    file is not read twice). Opt-outs recorded in the store are kept: a file never re-subscribes someone who
    opted out.

    Raises
    ------
    DataValidationError
        A row of the subscribers file is invalid; nothing was imported (the report names the lines).
    """
    from ews.subscribers import format_import_report, sync_subscriber_file

    path = config.subscribers
    if path is not None and not region.refused(path) and not region.subscribers_unchanged:
        report = sync_subscriber_file(store, config.id, path, region.subscriber_file)
        if report is not None and not report.ok:
            raise DataValidationError(format_import_report(path, report))
    if region.tagana:
        store.save_tagana(region.tagana)


def _warning_notes(warnings: Sequence[Warning]) -> list[str]:
    notes: list[str] = []
    for w in warnings:
        notes.extend(n if n.startswith(w.source) else f"{w.identifier}: {n}" for n in w.notes)
        if w.status != "Actual":
            notes.append(f"{w.identifier}: status {w.status}: to the exercise list only, never to residents")
    return notes


def _load_assessment(run_dir: Path) -> tuple[list[dict[str, str]], list[str]]:
    """The problems and notes of the assess step (none when it wrote no ``assessment.json``)."""
    path = run_dir / "assessment.json"
    if not path.exists():
        return [], []
    record = json.loads(path.read_text(encoding="utf-8"))
    return list(record["problems"]), list(record["notes"])


def publish_outputs(
    config: RegionConfig,
    run_dir: Path,
    out_dir: Path,
    *,
    now: datetime,
    store: Store,
    channel: Channel | None,
    templates_dir: Path = TEMPLATES_DIR,
    progress: Progress = _quiet,
    region: RegionData | None = None,
    cache_dir: Path | None = None,
) -> RunReport:
    """Decide the alert lifecycle, send what it says, and write every review output into ``out_dir``.

    ``now`` decides which warnings are in force. Sends go through ``channel`` after the store's send
    ledger allowed them (so running a cycle twice sends nothing twice). ``out_dir`` is replaced atomically:
    maps, village files, ``summary.csv``, ``outbox.jsonl`` (this run's messages), ``cap/`` and ``report.json``.
    ``cache_dir`` keeps what is prepared once per boundary set (the prepared villages, the maps' display geometry).
    """
    from ews.alerting import alert_step, renderer_for
    from ews.center.mobilise import sync_mobilisations
    from ews.latency import summarise
    from ews.review.riskmap import RasterLayer  # matplotlib on publish
    from ews.review.scene import ended_alerts
    from ews.review.tables import ended_counts, village_table

    region = region or open_region_data(config, progress, store=store, cache_dir=cache_dir)
    warnings, problems = _load_warnings(run_dir)
    hazards = load_hazards(run_dir)
    problems = [*problems, *hazards.problems]
    rows = pd.read_csv(run_dir / "impacts.csv", dtype={"code": str, "kecamatan": str, "kabkota": str})
    assessed_problems, assessed_notes = _load_assessment(run_dir)
    problems = [*region.problems, *problems, *assessed_problems]
    notes = list(region.notes) + _warning_notes(warnings) + assessed_notes + hazards.notes
    table = region.villages
    sync_region_contacts(store, config, region)
    # A refused Tagana file: the units of the last good one, so no unit loses its notices over a typo.
    tagana = store.tagana_units() if region.refused(config.tagana) else region.tagana
    extra_units = placeholder_units(table, tagana)
    sources = sorted({w.source for w in warnings} | {h.warning.source for h in hazards.messages})
    run_id = store.start_run(config.id, ",".join(sources) or "-", now)
    with atomic_folder(out_dir) as staging:
        progress(
            "deciding alerts and sending (dry run)" if channel is not None else "deciding alerts and queueing them"
        )
        last_ledger_row = store.last_ledger_id()  # this run's messages come after it (their latency)
        alerts = alert_step(
            store, config, table, warnings, rows, now=now, units=[*tagana, *extra_units],
            exercise_list=region.exercise_list, estimated=region.population_estimated,
            renderer=renderer_for(config, templates_dir), cap_dir=staging / "cap", hazards=hazards.messages,
            previous_cap_dir=out_dir / "cap" if (out_dir / "cap").is_dir() else None, cache_dir=cache_dir,
        )  # fmt: skip
        notes.extend(alerts.notes)
        # Tagana mobilisations follow the alerts (opened, updated, stood down); escalate_due pages later steps.
        sync_mobilisations(store, config.id, config, tagana, at=now, states=alerts.states, current=alerts.current)
        both = _Tee(channel, FileOutbox(staging / "outbox.jsonl")) if channel is not None else None
        if both is not None:  # the dry-run outbox (or a channel given by the caller) delivers at once
            # The run's own clock stands still at `now`; the dry-run outbox knows at once what it holds.
            dispatcher = Dispatcher(
                store, {"sms": both, "whatsapp": both}, worker=f"run-{config.id}", clock=lambda: now, settle_seconds=0
            )
            delivered = dispatcher.run()
            if delivered.failed:
                why = ", ".join(f"{k} ({n})" for k, n in sorted(delivered.failures.items()))
                notes.append(f"{delivered.failed} message(s) failed for good: {why} (ews alerts show THREAD)")
        else:
            notes.append(f"{alerts.queued} message(s) queued for `ews send`")
        sent = both.sent if both is not None else []
        unreachable = sorted({m.village_code[:5] for m in sent if m.audience == "tagana" and not m.to})
        if unreachable:
            notes.append(f"NO TAGANA CONTACT for kab/kota {', '.join(unreachable)}: configure 'tagana' in the region")
        progress("drawing risk maps and writing outputs")
        underlay = load_underlay(run_dir)
        by = _estimate_by(config)
        raster = RasterLayer.from_transform(*underlay, f"curah hujan satelit – {by}") if underlay is not None else None
        shown = [*warnings, *(h.warning for h in hazards.messages)]
        cancels = {w.identifier for w in shown if w.msg_type == "Cancel"}
        # The map tells which alerts this run ended: the states before and after its alert step.
        before = [s for s in alerts.states_before if s.active and s.level > Level.NONE]
        ended = ended_alerts(before, alerts.states, cancels)
        # Levels in force only (the map's rule): a cancelled or expired warning's villages say how it ended.
        per_village = village_table(table, rows, shown, now=now, ended=ended)
        stamp = _write_review(
            staging, config, region, shown, per_village, rows=rows, now=now, ended=ended, hazards=hazards.messages,
            raster=raster, cache_dir=cache_dir, previous=out_dir if out_dir.is_dir() else None,
        )  # fmt: skip
        report = RunReport(
            out_dir=out_dir,
            region=config.id,
            # BMKG's end of a tsunami warning is a Cancel, not a warning (it shows in the transitions).
            warnings=len(warnings) + sum(1 for h in hazards.messages if h.warning.msg_type != "Cancel"),
            problems=problems,
            notes=notes,
            levels=level_counts(per_village),
            people_exposed=exposed_total(per_village),
            population_estimated=region.population_estimated,
            messages=_counts(sent),
            unreachable_tagana=unreachable,
            transitions=alerts.transitions,
            pending=alerts.pending,
            pending_review=[t.line() for t in store.pending_threads(config.id)],
            cap_files=alerts.cap_files,
            queued=None if channel is not None else alerts.queued,
            ended=ended_counts(per_village),
            # How long this run's messages took from their source's <sent> to being queued (and to the provider
            # when the dry-run outbox delivered them here): per stage, as `ews alerts show THREAD` gives it. Not
            # for a replay (`--at` long ago): its stages mix the replayed instant and the clock.
            latency=summarise(store.message_timelines(config.id, after_ledger_id=last_ledger_row, grouped=True))
            if abs(datetime.now(UTC) - now) < LIVE_WITHIN
            else {},
        )
        if not (staging / "outbox.jsonl").exists():
            write_text_atomic(staging / "outbox.jsonl", "")
        record = {**report.to_json(), **stamp}
        write_text_atomic(staging / "report.json", json.dumps(record, ensure_ascii=False, indent=1))
    counts = {**alerts.transitions, **report.messages, "queued": alerts.queued}
    store.finish_run(run_id, "partial" if problems else "ok", counts, problems)
    for note in notes:
        log.warning("%s", note)
    return report


def _counts(sent: Sequence[RenderedMessage]) -> dict[str, int]:
    out: dict[str, int] = {}
    for m in sent:
        name = f"{m.audience} {m.channel}" + ("" if m.to else " NO CONTACT")
        out[name] = out.get(name, 0) + 1
    return out


class _Tee:
    """Send through the real channel and copy each message into the run's own outbox file."""

    name = "tee"

    def __init__(self, channel: Channel, copy: FileOutbox) -> None:
        self.channel, self.copy = channel, copy
        self.sent: list[RenderedMessage] = []

    def send(self, message: RenderedMessage, ledger_key: str, *, valid_until: datetime | None = None) -> SendResult:
        result = self.channel.send(message, ledger_key, valid_until=valid_until)
        self.copy.send(message, ledger_key)
        self.sent.append(message)
        return result

    def find_sent(self, message: RenderedMessage, ledger_key: str, since: datetime) -> str | None:
        return self.channel.find_sent(message, ledger_key, since)


def _estimate_by(config: RegionConfig) -> str:
    """Whose estimate ews's own map areas are: the region's command center when it names one."""
    if "command_center" in config.model_fields_set:
        return f"perkiraan {config.command_center.name}"
    from ews.review.scene import DEFAULT_ESTIMATE_BY

    return DEFAULT_ESTIMATE_BY


def _write_review(
    staging: Path,
    config: RegionConfig,
    region: RegionData,
    warnings: Sequence[Warning],
    per_village: pd.DataFrame,
    *,
    rows: pd.DataFrame,
    now: datetime,
    ended: Mapping[str, EndedAlert],
    hazards: Sequence[HazardMessage] = (),
    raster: RasterLayer | None = None,
    cache_dir: Path | None = None,
    previous: Path | None = None,
) -> dict[str, object]:
    """Maps, village files and summary.csv for analysts (``raster``: a rain layer drawn under the levels).

    The village files (``villages.gpkg``/``.geojson``, ``summary.csv``, ``warnings.geojson``) of a run whose
    village table and warnings are those of the ``previous`` published folder are linked from it, not written
    again (:func:`_reuse_village_files`); the PNG map is always drawn (its title says when), the HTML page of
    an unchanged map is the previous one with the new instant (:mod:`ews.review.map_page`).

    What the maps show is :func:`ews.review.scene.map_scene`'s, drawn from the display geometry of the
    region's boundary set (simplified once, kept in ``cache_dir`` beside the zonal weights, in memory only
    without one: :mod:`ews.store.display_cache`); ``per_village`` is
    :func:`ews.review.tables.village_table` (levels in force, ``status`` DICABUT/BERAKHIR). When warnings of
    the run are exercises, the tables get a first column ``exercise`` (``LATIHAN`` on their rows); returns
    what ``report.json`` adds:
    ``exercise: "LATIHAN"`` for an exercise run, and the identifiers of its exercise warnings.
    """
    from ews.review.geojson import write_geojson
    from ews.review.map_page import write_page
    from ews.review.riskmap import risk_map_png
    from ews.review.scene import EXERCISE_COLUMN, exercise_ids, exercise_marks, is_exercise_run, map_scene
    from ews.store.display_cache import cached_display

    table = region.villages
    marked = exercise_ids(warnings)
    result = table[["code", "geometry"]].merge(per_village, on="code", how="inner")
    result = gpd.GeoDataFrame(result, geometry="geometry", crs=table.crs)
    tz, zone = local_zone(config.province_code)
    located = [w for w in warnings if not w.geometry.is_empty]
    warn_frame = gpd.GeoDataFrame(
        {"identifier": [w.identifier for w in located], "event": [w.event for w in located]},
        geometry=[w.geometry for w in located],
        crs="EPSG:4326",
    )
    # Simplified once per boundary set; without a key or a folder, only what the maps draw is simplified.
    codes = table["code"].astype(str).tolist()
    display = cached_display(cache_dir, region.boundary_key, codes, table.geometry.to_numpy())
    scene = map_scene(
        table, rows, warnings, region_name=config.name, now=now, tz=tz, zone_name=zone,
        estimate_by=_estimate_by(config), hazards=hazards, ended=ended,
        population_note=(
            "Penduduk terpapar: ESTIMASI dari total kab/kota dibagi menurut luas desa" if region.population_estimated
            else None
        ),
        display=display,
    )  # fmt: skip
    summary = per_village.drop(columns=["kecamatan_name", "kabkota_name"], errors="ignore")
    summary = summary.assign(population_estimated=region.population_estimated)
    if marked:  # first, where a spreadsheet shows it; a column, so programs still read every row
        for frame in (result, summary):
            frame.insert(0, EXERCISE_COLUMN, exercise_marks(frame.get("warning_id", []), marked))
        warn_frame.insert(0, EXERCISE_COLUMN, exercise_marks(warn_frame["identifier"], marked))
    digest = _village_files_digest(region.boundary_key, result, summary, warn_frame)
    drill = is_exercise_run(warnings)
    if not _reuse_village_files(previous, staging, digest, exercise=drill):
        if len(result):
            result.to_file(staging / "villages.gpkg", layer="villages", driver="GPKG", engine="pyogrio")
            write_geojson(staging / "villages.geojson", result, name="villages", staged=True)
        write_text_atomic(staging / "summary.csv", summary.to_csv(index=False, float_format="%.4f"))
        if len(warn_frame):
            write_geojson(staging / "warnings.geojson", warn_frame, name="warnings", staged=True)
        _write_village_manifest(staging, digest, exercise=drill)
    png = risk_map_png(scene.villages, scene.areas, scene.title, raster=raster, outline=scene.outline)
    write_bytes_atomic(staging / "risk_map.png", png)
    # The page of a map that did not change is the last one's with the new instant (ews.review.map_page).
    write_page(staging, previous, scene.villages, scene.areas, scene.title, raster=raster, outline=scene.outline)
    stamp: dict[str, object] = {}
    if is_exercise_run(warnings):
        stamp["exercise"] = "LATIHAN"
    if marked:
        stamp["exercise_warnings"] = sorted(marked)
    return stamp


_VILLAGE_FILES = ("villages.gpkg", "villages.geojson", "summary.csv", "warnings.geojson")
_VILLAGE_MANIFEST = "village_files.json"
_VILLAGE_FORMAT = "ews-village-files/1"


def _village_files_digest(
    boundary_key: str | None, result: pd.DataFrame, summary: pd.DataFrame, warn_frame: gpd.GeoDataFrame
) -> str | None:
    """What the village files are made of, as one digest (``None``: the boundary set has no key, never reused).

    The geometry by the boundary set's key (the prepared villages' cache key), the rest by value: every
    column's name, type and cells of the village table, ``summary.csv``'s and the warnings'.
    """
    if boundary_key is None:
        return None
    import hashlib

    h = hashlib.sha256(f"{_VILLAGE_FORMAT}\0{boundary_key}\0".encode())
    for frame in (result.drop(columns="geometry"), summary):
        h.update(repr([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode())
        h.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    h.update(repr([(str(c), str(t)) for c, t in warn_frame.dtypes.items()]).encode())
    h.update(pd.util.hash_pandas_object(warn_frame.drop(columns="geometry"), index=True).to_numpy().tobytes())
    for g in warn_frame.geometry:
        h.update(g.wkb)
    return h.hexdigest()


def _reuse_village_files(previous: Path | None, staging: Path, digest: str | None, *, exercise: bool) -> bool:
    """Link the previous folder's village files into ``staging`` when they were made of the same (``digest``).

    Only files still as the previous run's manifest lists them (inode, size, modification time) are linked;
    anything else (no manifest, a file edited or gone) and they are all written again.
    """
    if previous is None or digest is None:
        return False
    try:
        listed = json.loads((previous / _VILLAGE_MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(listed, dict) or listed.get("format") != _VILLAGE_FORMAT or listed.get("digest") != digest:
        return False
    files = listed.get("files")
    if not isinstance(files, dict):
        return False
    from ews.store.artifacts import link_or_copy

    for name, stat in files.items():
        if name not in _VILLAGE_FILES or file_stat(previous / name) != stat:
            return False
    for name in files:
        if not link_or_copy(previous / name, staging / name):  # gone meanwhile: write them all again
            for done in files:
                (staging / done).unlink(missing_ok=True)
            return False
    _write_village_manifest(staging, digest, exercise=exercise)
    return True


def _write_village_manifest(staging: Path, digest: str | None, *, exercise: bool) -> None:
    """``village_files.json``; an exercise run's says so (``"exercise": "LATIHAN"``), as every output of it does."""
    if digest is None:
        return
    files = {name: file_stat(staging / name) for name in _VILLAGE_FILES if (staging / name).exists()}
    document: dict[str, object] = {"format": _VILLAGE_FORMAT, "digest": digest, "files": files}
    if exercise:
        document["exercise"] = "LATIHAN"
    write_text_atomic(staging / _VILLAGE_MANIFEST, json.dumps(document, indent=1))


def run_slice(
    config: RegionConfig,
    source: str | None,
    out_dir: Path,
    *,
    now: datetime,
    base_url: str = DEFAULT_BASE_URL,
    store: Store,
    channel: Channel | None,
    templates_dir: Path = TEMPLATES_DIR,
    progress: Progress = _quiet,
    sources: HazardSources | None = None,
    cache_dir: Path | None = None,
    quake_base_url: str | None = None,
    forecast_url_template: str | None = None,
    adm4_base_url: str | None = None,
) -> RunReport:
    """Fetch, assess and publish in one go (what ``ews run`` and ``ews demo`` do).

    ``source`` is BMKG's CAP warnings (None: none this run); ``sources`` the rain rasters, forecasts and
    earthquake feeds.
    """
    with tempfile.TemporaryDirectory(prefix="ews-run-") as tmp:
        run_dir = Path(tmp)
        if source is not None:
            progress(f"reading warnings from {source}")
            fetch_warnings(source, run_dir, base_url=base_url, allowed_hosts=config.fetch.allowed_redirect_hosts)
        else:
            no_warnings(run_dir)
        if sources:
            progress("staging rain, forecast and earthquake sources")
            fetch_sources(
                sources, run_dir, province=config.name, quake_base_url=quake_base_url,
                forecast_url_template=forecast_url_template, allowed_hosts=config.fetch.allowed_redirect_hosts,
                config=config, now=now, cache_dir=cache_dir, adm4_base_url=adm4_base_url,
            )  # fmt: skip
        region = open_region_data(config, progress, store=store, cache_dir=cache_dir)
        # The subscribers file goes into the store at once and its parse is let go: a national file's million
        # records would otherwise stay in memory through the assessment (a cold cycle's memory peak).
        sync_region_contacts(store, config, region)
        region = replace(region, subscriber_file=None, subscribers_unchanged=True)
        assess_villages(config, run_dir, progress, region=region, now=now, cache_dir=cache_dir)
        report = publish_outputs(
            config, run_dir, out_dir, now=now, store=store, channel=channel, templates_dir=templates_dir,
            progress=progress, region=region, cache_dir=cache_dir,
        )  # fmt: skip
    return report


def decide_review(
    store: Store,
    config: RegionConfig,
    status: str,
    by: str,
    *,
    threads: Sequence[str] = (),
    ids: Sequence[int] = (),
    every: bool = False,
    templates_dir: Path = TEMPLATES_DIR,
) -> tuple[list[AlertVersionRecord], int]:
    """Approve or reject what the review gate holds (``ews alerts approve|reject``, the ``ews_review`` DAG).

    Approved versions are queued in the send ledger at once, merged into their villages' situations; returns the
    versions decided and the messages queued. A version decided already (by the other way in) stays as it was:
    a decision is taken once.
    """
    from ews.alerting import dispatch_approved, renderer_for

    decided = store.decide_pending(config.id, status, by, threads=threads, ids=ids, every=every)
    if status != "approved" or not decided:
        return decided, 0
    region = open_region_data(config, subscribers=False)  # the residents to alert are read from the store
    report = dispatch_approved(
        store, config, region.villages, decided,
        units=[*region.tagana, *placeholder_units(region.villages, region.tagana)],
        exercise_list=region.exercise_list, estimated=region.population_estimated,
        renderer=renderer_for(config, templates_dir),
    )  # fmt: skip
    return decided, report.queued

"""One function per pipeline step; the CLI and the Airflow DAG only call these.

Steps pass file paths (never arrays or phone numbers): ``fetch_warnings`` writes ``warnings.json``
into a run folder, ``assess_villages`` writes ``impacts.csv`` beside it, and ``publish_outputs``
renders messages and writes the review outputs atomically. :func:`run_slice` runs all three.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from ews.codes import local_zone, parent_code
from ews.config import RegionConfig
from ews.contacts import mask_phone
from ews.errors import DataValidationError
from ews.exposure.coverage import VillageLayer
from ews.impact.assess import exposed_total, impacts, level_counts, village_levels
from ews.ingest.bmkg_cap import DEFAULT_BASE_URL, read_warnings
from ews.ingest.boundaries import read_boundaries
from ews.ingest.contacts import read_subscribers, read_tagana
from ews.ingest.population import attach_population
from ews.messages.render import MessageRenderer
from ews.store.artifacts import atomic_folder, write_bytes_atomic, write_text_atomic
from ews.store.records import warning_from_record, warning_to_record
from ews.types import Level, Recipient, RenderedMessage, TaganaUnit, VillageAlert, Warning

log = logging.getLogger(__name__)
Progress = Callable[[str], None]
TEMPLATES_DIR = Path(__file__).resolve().parents[1] / "alert_templates"


def _quiet(_: str) -> None:
    return None


@dataclass
class RegionData:
    """A region's villages (with names and population), index, subscribers and Tagana units."""

    config: RegionConfig
    villages: gpd.GeoDataFrame
    layer: VillageLayer
    subscribers: list[Recipient]
    tagana: list[TaganaUnit]
    population_estimated: bool
    notes: list[str] = field(default_factory=list)


def _area_names(paths: Sequence[Path]) -> dict[str, str]:
    names: dict[str, str] = {}
    for path in paths:
        try:
            with path.open(newline="", encoding="utf-8") as handle:
                reader = csv.DictReader(handle)
                if not {"code", "name"} <= set(reader.fieldnames or []):
                    raise DataValidationError(f"{path}: area names need columns 'code' and 'name'")
                for row in reader:
                    names[row["code"].strip()] = row["name"].strip()
        except OSError as exc:
            raise DataValidationError(f"{path}: cannot read area names ({exc.strerror})") from None
    return names


def open_region_data(config: RegionConfig, progress: Progress = _quiet) -> RegionData:
    """Read everything a region configures: boundaries, population, names, subscribers, Tagana."""
    b = config.boundaries
    keep = (config.population.column,) if config.population.method == "column" and config.population.column else ()
    progress(f"reading boundaries {b.path}")
    villages = read_boundaries(b.path, id_field=b.id_field, name_field=b.name_field, layer=b.layer, keep=keep)
    notes = []
    repaired = villages.attrs.get("repaired", [])
    if repaired:
        notes.append(f"{len(repaired)} boundary geometries were invalid and repaired: {', '.join(repaired[:10])}")
    outside = villages[villages["province"] != config.province_code]
    if len(outside):
        notes.append(f"{len(outside)} areas are outside province {config.province_code}: {outside['code'].iloc[0]} …")
    layer = VillageLayer.from_villages(villages)
    villages = attach_population(layer.table, layer.area_km2, config.population)
    missing = villages.attrs.get("population_missing", [])
    if missing:
        notes.append(f"no population total for kab/kota {', '.join(missing)}: people exposed unknown there")
    names = _area_names(config.area_names)
    # An area names itself when it is at that level (a kecamatan-level region needs no names file).
    own = dict(zip(villages["code"], villages["name"], strict=True))
    villages["kecamatan_name"] = villages["kecamatan"].map(lambda c: names.get(c) or own.get(c, c))
    villages["kabkota_name"] = villages["kabkota"].map(lambda c: names.get(c) or own.get(c, c))
    villages["area_km2"] = layer.area_km2
    estimated = bool(villages.attrs.get("population_estimated", False))
    layer = VillageLayer(villages, layer.projected, layer.area_km2, layer.tree)
    subscribers = read_subscribers(config.subscribers) if config.subscribers else []
    tagana = read_tagana(config.tagana) if config.tagana else []
    return RegionData(config, villages, layer, subscribers, tagana, estimated, notes)


# -- step 1 ---------------------------------------------------------------------------------------


def fetch_warnings(source: str, run_dir: Path, *, base_url: str = DEFAULT_BASE_URL) -> dict[str, object]:
    """Read warnings from ``source`` and write ``run_dir/warnings.json`` (with the problems met).

    Returns a small summary (counts and the file path) that is safe for XCom.
    """
    batch = read_warnings(source, base_url=base_url)
    record = {
        "source": source,
        "warnings": [warning_to_record(w) for w in batch.warnings],
        "problems": [{"source": p.source, "message": p.message} for p in batch.problems],
        "duplicates": batch.duplicates,
    }
    path = run_dir / "warnings.json"
    write_text_atomic(path, json.dumps(record, ensure_ascii=False, indent=1))
    return {"path": str(path), "warnings": len(batch.warnings), "problems": len(batch.problems)}


def _load_warnings(run_dir: Path) -> tuple[list[Warning], list[dict[str, str]]]:
    path = run_dir / "warnings.json"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataValidationError(f"{path}: cannot read the warnings of this run ({exc}); run fetch first") from None
    return [warning_from_record(r) for r in record["warnings"]], list(record["problems"])


# -- step 2 ---------------------------------------------------------------------------------------


def assess_villages(
    config: RegionConfig, run_dir: Path, progress: Progress = _quiet, *, region: RegionData | None = None
) -> dict[str, object]:
    """Intersect this run's warnings with the region's villages; write ``run_dir/impacts.csv``.

    ``region`` may be passed when the caller has already read it (one process running every step).
    """
    region = region or open_region_data(config, progress)
    warnings, _ = _load_warnings(run_dir)
    located = [w for w in warnings if not w.geometry.is_empty]
    progress(f"intersecting {len(located)} warning(s) with {len(region.villages):,} villages")
    rows = impacts(region.layer, located, config.levels)
    path = run_dir / "impacts.csv"
    write_text_atomic(path, rows.to_csv(index=False))
    return {"path": str(path), "rows": len(rows), "villages": int(rows["code"].nunique()) if len(rows) else 0}


# -- step 3 ---------------------------------------------------------------------------------------


@dataclass
class RunReport:
    """What a run did, for the CLI table and the DAG's logs (no personal data)."""

    out_dir: Path
    region: str
    warnings: int
    problems: list[dict[str, str]]
    notes: list[str]
    levels: dict[str, int]
    people_exposed: float | None
    population_estimated: bool
    messages: dict[str, int]
    unreachable_tagana: list[str]

    def to_json(self) -> dict[str, object]:
        """A JSON-safe dict."""
        return {
            "out_dir": str(self.out_dir),
            "region": self.region,
            "warnings": self.warnings,
            "problems": self.problems,
            "notes": self.notes,
            "levels": self.levels,
            "people_exposed": self.people_exposed,
            "population_estimated": self.population_estimated,
            "messages": self.messages,
            "unreachable_tagana": self.unreachable_tagana,
        }


def village_alerts(per_village: pd.DataFrame, warnings: dict[str, Warning], estimated: bool) -> list[VillageAlert]:
    """One :class:`VillageAlert` per village with a level, times in the village's local zone."""
    alerts = []
    for row in per_village[per_village["level"] > 0].itertuples(index=False):
        w = warnings[str(row.warning_id)]
        tz, zone = local_zone(str(row.code))
        exposed = float(row.population_exposed)
        alerts.append(
            VillageAlert(
                village_code=str(row.code),
                village_name=str(row.name),
                kecamatan_name=str(row.kecamatan_name),
                kabkota_name=str(row.kabkota_name),
                level=Level(int(row.level)),
                event=w.event,
                headline=w.headline,
                effective=w.effective.astimezone(tz) if w.effective else None,
                expires=w.expires.astimezone(tz) if w.expires else None,
                zone_name=zone,
                warning_id=w.identifier,
                web=w.web,
                fraction=float(row.fraction),
                population_exposed=None if np.isnan(exposed) else exposed,
                population_estimated=estimated,
            )
        )
    return alerts


def render_messages(
    renderer: MessageRenderer,
    alerts: Sequence[VillageAlert],
    subscribers: Sequence[Recipient],
    units: Sequence[TaganaUnit],
    tagana_min_level: Level,
) -> tuple[list[RenderedMessage], list[str]]:
    """Messages for residents of villages with a level and for the Tagana units covering them.

    Returns the messages and the kab/kota codes whose villages need Tagana but have no unit with a
    contact (those notices are still rendered, with an empty recipient, so nobody is silently skipped).
    """
    by_village: dict[str, list[Recipient]] = {}
    for r in subscribers:
        by_village.setdefault(r.village_code, []).append(r)
    messages = [renderer.render_resident(a, r) for a in alerts for r in by_village.get(a.village_code, [])]
    needing = [a for a in alerts if a.level >= tagana_min_level]
    unreachable: list[str] = []
    covered: set[str] = set()
    for unit in units:
        mine = [
            a
            for a in needing
            if parent_code(a.village_code, 2) == unit.kabkota_code
            and (not unit.kecamatan_codes or parent_code(a.village_code, 3) in unit.kecamatan_codes)
        ]
        if mine:
            messages.append(renderer.render_tagana(unit, mine))
            if unit.phone:
                covered.update(a.village_code for a in mine)
    orphans: dict[str, list[VillageAlert]] = {}
    for a in needing:
        if a.village_code not in covered:
            orphans.setdefault(parent_code(a.village_code, 2), []).append(a)
    for kabkota, mine in sorted(orphans.items()):
        unreachable.append(kabkota)
        placeholder = TaganaUnit(f"TAGANA-{kabkota}", f"Tagana {mine[0].kabkota_name}", kabkota, (), "", None, "sms")
        messages.append(renderer.render_tagana(placeholder, mine))
    return messages, unreachable


def _outbox_line(m: RenderedMessage) -> dict[str, object]:
    return {
        "audience": m.audience,
        "channel": m.channel,
        "language": m.language,
        "to": mask_phone(m.to) if m.to else None,
        "recipient_id": m.recipient_id,
        "village_code": m.village_code,
        "level": m.level.label,
        "warning_id": m.warning_id,
        "segments": m.segments,
        "shortened": m.shortened,
        "dedup_key": f"{m.warning_id}|{m.audience}|{m.recipient_id}|{m.channel}|{m.level.label}",
        "text": m.text,
        "status": "dry-run" if m.to else "no-contact",
    }


def publish_outputs(
    config: RegionConfig,
    run_dir: Path,
    out_dir: Path,
    *,
    now: datetime,
    templates_dir: Path = TEMPLATES_DIR,
    progress: Progress = _quiet,
    region: RegionData | None = None,
) -> RunReport:
    """Render messages and write every review output of a run into ``out_dir``, atomically.

    ``now`` decides which warnings are still in force: nothing is rendered for an expired warning,
    for a Test/Exercise/Draft one, or for a Cancel (reported in ``notes``).
    """
    from ews.review.riskmap import MapTitle, risk_map_html, risk_map_png  # matplotlib only when publishing

    region = region or open_region_data(config, progress)
    warnings, problems = _load_warnings(run_dir)
    rows = pd.read_csv(run_dir / "impacts.csv", dtype={"code": str, "kecamatan": str, "kabkota": str})
    by_id = {w.identifier: w for w in warnings}
    notes = list(region.notes)
    live: set[str] = set()
    for w in warnings:
        notes.extend(f"{w.identifier}: {n}" for n in w.notes)
        if w.status != "Actual":
            notes.append(f"{w.identifier}: status {w.status}, shown on the map, not sent to residents")
        elif w.msg_type == "Cancel":
            notes.append(f"{w.identifier}: Cancel of {' '.join(w.references)}; cancels are sent from the ledger")
        elif w.expires is not None and w.expires <= now:
            notes.append(f"{w.identifier}: expired at {w.expires.isoformat()}, nothing sent")
        else:
            live.add(w.identifier)
        if w.named_areas and not rows.empty:
            mine = rows.loc[rows["warning_id"] == w.identifier]
            touched = {str(n).upper() for n in (*mine["kecamatan_name"], *mine["name"])}
            not_found = [a for a in w.named_areas if a not in touched]
            if not_found:
                notes.append(f"{w.identifier}: named area(s) not among touched villages: {', '.join(not_found)}")
    per_village = village_levels(rows)
    progress("rendering messages")
    renderer = MessageRenderer(templates_dir)
    sending = per_village[per_village["warning_id"].isin(live)] if len(per_village) else per_village
    alerts = village_alerts(sending, by_id, region.population_estimated)
    messages, unreachable = render_messages(
        renderer, alerts, region.subscribers, region.tagana, config.levels.tagana_min_level
    )
    if unreachable:
        notes.append(f"NO TAGANA CONTACT for kab/kota {', '.join(unreachable)}: configure 'tagana' in the region")

    progress("drawing risk maps and writing outputs")
    table = region.villages
    result = table[["code", "geometry"]].merge(per_village, on="code", how="inner")
    result = gpd.GeoDataFrame(result, geometry="geometry", crs=table.crs)
    tz, zone = local_zone(config.province_code)
    live_warnings = [w for w in warnings if not w.geometry.is_empty]
    warn_frame = gpd.GeoDataFrame(
        {"identifier": [w.identifier for w in live_warnings], "event": [w.event for w in live_warnings]},
        geometry=[w.geometry for w in live_warnings],
        crs="EPSG:4326",
    )
    # Draw touched villages and their neighbours in the warnings' extent.
    if len(warn_frame):
        minx, miny, maxx, maxy = warn_frame.total_bounds
        pad = 0.1 * max(maxx - minx, maxy - miny, 0.05)
        nearby = table.cx[minx - pad : maxx + pad, miny - pad : maxy + pad]
    else:
        nearby = table.iloc[0:0]
    drawn = nearby[["code", "name", "kecamatan_name", "geometry"]].rename(columns={"kecamatan_name": "kecamatan"})
    lv = per_village.set_index("code") if len(per_village) else pd.DataFrame(columns=["level", "fraction"])
    drawn = drawn.assign(
        level=drawn["code"].map(lv["level"] if len(lv) else {}).fillna(0).astype(int),
        fraction=drawn["code"].map(lv["fraction"] if len(lv) else {}).fillna(0.0).astype(float),
        population_exposed=drawn["code"].map(lv["population_exposed"] if len(lv) else {}).astype(float),
    )
    first = min(live_warnings, key=lambda w: w.sent) if live_warnings else None
    title = MapTitle(
        event=first.event if first else "Tidak ada peringatan",
        area_desc=first.area_desc if first else config.name,
        warning_ids=tuple(w.identifier for w in live_warnings),
        valid_from=first.effective.astimezone(tz) if first and first.effective else None,
        valid_until=first.expires.astimezone(tz) if first and first.expires else None,
        zone_name=zone,
        population_note=(
            "Penduduk terpapar: ESTIMASI dari total kab/kota dibagi menurut luas desa" if region.population_estimated
            else None
        ),
    )  # fmt: skip
    counts = level_counts(per_village)
    exposed = exposed_total(per_village)
    by_audience: dict[str, int] = {}
    for m in messages:
        key = f"{m.audience} {m.channel}" + ("" if m.to else " NO CONTACT")
        by_audience[key] = by_audience.get(key, 0) + 1
    report = RunReport(
        out_dir=out_dir,
        region=config.id,
        warnings=len(warnings),
        problems=problems,
        notes=notes,
        levels=counts,
        people_exposed=exposed,
        population_estimated=region.population_estimated,
        messages=by_audience,
        unreachable_tagana=unreachable,
    )
    with atomic_folder(out_dir) as staging:
        if len(result):
            result.to_file(staging / "villages.gpkg", layer="villages", driver="GPKG", engine="pyogrio")
            result.to_file(staging / "villages.geojson", driver="GeoJSON", engine="pyogrio")
        else:
            notes.append("no village is touched by any warning: no village files written")
        summary = per_village.drop(columns=["kecamatan_name", "kabkota_name"], errors="ignore")
        summary = summary.assign(population_estimated=region.population_estimated)
        write_text_atomic(staging / "summary.csv", summary.to_csv(index=False, float_format="%.4f"))
        if len(warn_frame):
            warn_frame.to_file(staging / "warnings.geojson", driver="GeoJSON", engine="pyogrio")
        write_bytes_atomic(staging / "risk_map.png", risk_map_png(drawn, warn_frame, title))
        write_text_atomic(staging / "risk_map.html", risk_map_html(drawn, warn_frame, title))
        outbox = io.StringIO()
        for m in messages:
            outbox.write(json.dumps(_outbox_line(m), ensure_ascii=False) + "\n")
        write_text_atomic(staging / "outbox.jsonl", outbox.getvalue())
        write_text_atomic(staging / "report.json", json.dumps(report.to_json(), ensure_ascii=False, indent=1))
    for note in notes:
        log.warning("%s", note)
    return report


def run_slice(
    config: RegionConfig,
    source: str,
    out_dir: Path,
    *,
    now: datetime,
    base_url: str = DEFAULT_BASE_URL,
    templates_dir: Path = TEMPLATES_DIR,
    progress: Progress = _quiet,
) -> RunReport:
    """Fetch, assess and publish in one go (what ``ews run`` and ``ews demo`` do)."""
    with tempfile.TemporaryDirectory(prefix="ews-run-") as tmp:
        run_dir = Path(tmp)
        progress(f"reading warnings from {source}")
        fetch_warnings(source, run_dir, base_url=base_url)
        region = open_region_data(config, progress)
        assess_villages(config, run_dir, progress, region=region)
        report = publish_outputs(
            config, run_dir, out_dir, now=now, templates_dir=templates_dir, progress=progress, region=region
        )
    return report

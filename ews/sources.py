"""Satellite rainfall, BMKG forecasts and earthquake feeds -> hazard messages for a region (edge).

Composition only: readers in :mod:`ews.ingest`, rules in :mod:`ews.hazard` and :mod:`ews.exposure.zonal`.
Two pipeline steps use it, passing file paths between them like the CAP warnings do:

- :func:`stage_sources` (fetch): downloads what is remote (BMKG's earthquake feeds, forecast URLs, the
  steps of a satellite product named by a URL template, cached between runs) into the run folder and
  records every source in ``sources.json``. Other rasters are local files or folders (e.g. a drop folder
  that a download job or a sensor fills).
- :func:`assess_hazards` (assess): turns the staged sources into hazard messages
  (one standing rain thread, one standing forecast thread, one thread per earthquake) and says which
  sources could not be used. A stale or broken source never stops the other sources or BMKG's CAP
  warnings: it is reported as a problem and the run is marked degraded.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import numpy as np
import pandas as pd
import shapely
import xarray as xr

from ews.errors import BoundaryError, ConfigError, DataValidationError, EwsError, FetchError, StaleSourceError
from ews.exposure.zonal import Grid, StatRequest, zonal_stats
from ews.hazard.earthquake import coast_key, coastal_villages, quake_message, surrounding_land
from ews.hazard.forecast import (
    ForecastLevels,
    adm4_levels,
    digitalforecast_levels,
    forecast_message,
    match_areas,
    merge_levels,
)
from ews.hazard.rainfall import rain_accumulation, rain_message
from ews.ingest.bmkg_forecast import (
    ADM4_URL,
    DIGITALFORECAST_URL,
    check_forecast_fresh,
    fetch_adm4,
    read_adm4,
    read_digitalforecast,
)
from ews.ingest.bmkg_quake import DEFAULT_BASE_URL as QUAKE_BASE_URL
from ews.ingest.bmkg_quake import FEEDS, merge_quakes, read_coastal_codes, read_quakes
from ews.ingest.boundaries import digest_land_files, list_land_files, read_land
from ews.ingest.http import fetch_bytes
from ews.ingest.rain_urls import DAY_HOURS, is_rain_url, parse_rain_url, stage_rain_url, without_credentials
from ews.ingest.rainfall import check_fresh, open_rainfall, step_end
from ews.store.artifacts import write_bytes_atomic, write_text_atomic
from ews.store.coast_cache import Coast, cached_coast
from ews.store.records import hazard_from_record, hazard_to_record
from ews.store.zonal_cache import cached_weights
from ews.types import HazardMessage

if TYPE_CHECKING:  # ews.pipeline imports this module
    from ews.pipeline import RegionData

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HazardSources:
    """What a run reads besides BMKG's CAP warnings (each entry a path, a URL, or ``bmkg`` for quakes)."""

    rain: tuple[str, ...] = ()
    forecast: tuple[str, ...] = ()
    quakes: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.rain or self.forecast or self.quakes)


@dataclass
class HazardAssessment:
    """The hazard messages of a run, the problems that degrade it, and notes for operators."""

    messages: list[HazardMessage] = field(default_factory=list)
    problems: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def degraded(self, source: str, message: str) -> None:
        """Record a source that could not be used (the run reports itself degraded)."""
        self.problems.append({"source": source, "message": f"DEGRADED: {message}"})
        log.error("DEGRADED: %s: %s", source, message)


# -- fetch --------------------------------------------------------------------------------------------


def _is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def stage_sources(
    sources: HazardSources,
    run_dir: Path,
    *,
    quake_base_url: str = QUAKE_BASE_URL,
    province: str | None = None,
    forecast_url_template: str = DIGITALFORECAST_URL,
    allowed_hosts: Sequence[str] = (),
    now: datetime | None = None,
    cache_dir: Path | None = None,
    rain_lookback: timedelta = timedelta(hours=DAY_HOURS, minutes=180),
    adm4_villages: Sequence[str] = (),
    adm4_base_url: str = ADM4_URL,
    adm4_interval_s: float = 1.0,
) -> dict[str, object]:
    """Download the remote sources into ``run_dir/sources/`` and write ``run_dir/sources.json``.

    ``bmkg`` as a quake source fetches BMKG's three TEWS feeds under ``quake_base_url``; as a forecast
    source, the DigitalForecast of ``province`` (BMKG's file name: the province's name without spaces,
    e.g. ``JawaTimur``) from ``forecast_url_template``. A rain source ``<product>:<URL>`` (e.g.
    ``gsmap-nrt:https://mirror/realtime``, see :mod:`ews.ingest.rain_urls`) downloads the product's steps
    of ``rain_lookback`` before ``now`` (24 h plus ``rain.max_age_minutes``), caching them in
    ``cache_dir/rain/`` (default ``run_dir/cache``) so the next run fetches only new steps. ``adm4`` as a
    forecast source fetches BMKG's village forecasts of ``adm4_villages`` (``forecast.adm4_villages``) from
    ``adm4_base_url`` (BMKG's endpoint or a ``{code}`` template), one request every ``adm4_interval_s``
    seconds, and saves each payload BMKG answered for the village asked into ``sources/forecast/``; a
    village that fails is a problem naming its code and URL. Returns a
    summary safe for XCom (counts and problems). A feed that cannot be fetched is a problem of this run, not
    an exception: the other sources still count.
    """
    staged: dict[str, list[str]] = {"rain": [], "forecast": [], "quakes": []}
    problems: list[dict[str, str]] = []
    folder = run_dir / "sources"
    rain_counts = {"downloaded": 0, "cached": 0, "not_published": 0}

    def download(kind: str, url: str, name: str) -> None:
        hint = {"quakes": "EWS_BMKG_TEWS_URL", "forecast": "EWS_BMKG_DIGITALFORECAST_URL"}.get(kind, "")
        try:
            data = fetch_bytes(url, allowed_hosts=allowed_hosts)  # redirects only within the origin or these
        except FetchError as exc:
            text = str(exc).replace("check the URL/EWS_BMKG_BASE_URL", f"check the URL/{hint}" if hint else "check it")
            if hint and hint not in text:
                text += f" (to use a mirror, set {hint})"
            problems.append({"source": url, "message": f"DEGRADED: cannot fetch: {text}"})
            return
        except Exception as exc:  # one feed fails alone
            problems.append({"source": url, "message": f"DEGRADED: cannot fetch: internal error {type(exc).__name__}: "
                             f"{exc} (please report it)"})  # fmt: skip
            return
        path = folder / kind / name
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, data)
        staged[kind].append(str(path))

    def stage_adm4(i: int) -> None:
        if not adm4_villages:
            problems.append({"source": "adm4", "message": "DEGRADED: forecast source adm4 but the region lists no "
                             "villages: set forecast.adm4_villages in the region file"})  # fmt: skip
            return
        bodies: dict[str, bytes] = {}

        def keep(url: str) -> bytes:
            bodies[url] = fetch_bytes(url, allowed_hosts=allowed_hosts)
            return bodies[url]

        batch = fetch_adm4(adm4_villages, base_url=adm4_base_url, min_interval_s=adm4_interval_s, fetch=keep)
        for problem in batch.problems:
            problems.append({"source": problem.source, "message": f"DEGRADED: village forecast not fetched: "
                             f"{problem.message} (to use a mirror, set EWS_BMKG_ADM4_URL)"})  # fmt: skip
        target = folder / "forecast" / f"{i:02d}-adm4"
        for forecast in batch.forecasts:
            write_bytes_atomic(target / f"{forecast.code}.json", bodies[forecast.source])
        if batch.forecasts:
            staged["forecast"].append(str(target))
        log.info("adm4: %d of %d village forecasts fetched", len(batch.forecasts), len(adm4_villages))

    for i, src in enumerate(sources.rain):
        if not is_rain_url(src):
            staged["rain"].append(src)
            continue
        try:
            product = parse_rain_url(src)
        except ConfigError as exc:
            problems.append({"source": without_credentials(src), "message": f"DEGRADED: {exc}"})
            continue
        if now is None:  # a caller's mistake, reported like any source that cannot be staged
            problems.append({"source": product.shown, "message": "DEGRADED: internal error: no run time to choose "
                             "the rain steps by (please report it)"})  # fmt: skip
            continue
        got = stage_rain_url(
            product, now=now, lookback=rain_lookback, cache_dir=cache_dir or run_dir / "cache",
            dest=folder / "rain" / f"{i:02d}-{product.key}",
        )  # fmt: skip
        problems.extend(got.problems)
        for name in rain_counts:
            rain_counts[name] += getattr(got, name)
        log.info("rain %s: %d file(s) downloaded, %d cached, %d step(s) not published yet", product.shown,
                 got.downloaded, got.cached, got.not_published)  # fmt: skip
        if got.files:
            staged["rain"].append(str(got.files[0].parent))
    for i, src in enumerate(sources.forecast):
        if src == "adm4":
            try:
                stage_adm4(i)
            except Exception as exc:  # the village forecasts fail alone
                log.exception("staging adm4 forecasts failed")
                problems.append({"source": adm4_base_url, "message": f"DEGRADED: village forecasts not fetched: "
                                 f"internal error {type(exc).__name__}: {exc} (please report it)"})  # fmt: skip
            continue
        if src == "bmkg":
            if not province:
                problems.append({"source": src, "message": "DEGRADED: no province name to fetch its DigitalForecast"})
                continue
            name = province.replace(" ", "")
            download(
                "forecast", forecast_url_template.format(province=quote(name)), f"{i:02d}-DigitalForecast-{name}.xml"
            )
        elif _is_url(src):
            download("forecast", src, f"{i:02d}-{Path(src.split('?')[0]).name or 'forecast'}")
        else:
            staged["forecast"].append(src)
    for i, src in enumerate(sources.quakes):
        if src == "bmkg":
            base = quake_base_url if quake_base_url.endswith("/") else quake_base_url + "/"
            for feed in FEEDS:
                download("quakes", base + feed, f"{i:02d}-{feed}")
        elif _is_url(src):
            download("quakes", src, f"{i:02d}-{Path(src).name or 'feed.json'}")
        else:
            staged["quakes"].append(src)
    record = {"sources": staged, "problems": problems}
    write_text_atomic(run_dir / "sources.json", json.dumps(record, ensure_ascii=False, indent=1))
    summary: dict[str, object] = {"rain": len(staged["rain"]), "forecast": len(staged["forecast"]),
                                  "quakes": len(staged["quakes"]), "problems": len(problems)}  # fmt: skip
    if any(is_rain_url(src) for src in sources.rain):
        summary["rain_files"] = rain_counts
    return summary


def load_staged(run_dir: Path) -> tuple[dict[str, list[str]], list[dict[str, str]]]:
    """The sources recorded by :func:`stage_sources` (none when the run has no such file)."""
    path = run_dir / "sources.json"
    if not path.exists():
        return {"rain": [], "forecast": [], "quakes": []}, []
    record = json.loads(path.read_text(encoding="utf-8"))
    return dict(record["sources"]), list(record["problems"])


# -- assess -------------------------------------------------------------------------------------------


def _grid_of(da: xr.DataArray) -> Grid:
    t = [float(v) for v in da.attrs["transform"]]
    return Grid((t[0], t[1], t[2], t[3], t[4], t[5]), (int(da.sizes["y"]), int(da.sizes["x"])), str(da.attrs["crs"]))


def _lowest_level_bound(table: dict[str, float], rules_levels: dict[str, object]) -> float | None:
    """The smallest amount that gives a level in a category table (e.g. lebat's 10 mm/h)."""
    bounds = [table[c] for c in rules_levels if c in table]
    return min(bounds) if bounds else None


def _rain(
    config_id: str, region: RegionData, paths: Sequence[str], now: datetime, cache_dir: Path | None,
    out: HazardAssessment, run_dir: Path,
) -> None:  # fmt: skip
    """One rain message from every usable raster product (each village takes the highest value).

    What a raster does not say itself (units, times, step) comes from the region's ``rain.products``.
    """
    from ews.ingest.rainfall import RasterHints, product_hints

    rules = region.config.rain

    def hints(file: Path) -> RasterHints:
        return product_hints(rules, file, region.config.source_file)

    codes = region.villages["code"].astype(str).tolist()
    geoms = region.villages.geometry.values.to_numpy()
    west, south, east, north = (float(v) for v in region.villages.total_bounds)
    pad = 0.25  # degrees of margin around the region: cells on its edge must be read whole
    hourly_bound = _lowest_level_bound(rules.hourly_mm, dict(rules.levels))
    daily_bound = _lowest_level_bound(rules.daily_mm, dict(rules.levels))
    results: list[tuple[np.ndarray, np.ndarray | None, np.ndarray]] = []  # hourly, daily, share above a level
    ends: list[datetime] = []
    used: list[str] = []
    for path in paths:
        try:
            da = open_rainfall(path, bbox=(west - pad, south - pad, east + pad, north + pad), hints=hints)
            check_fresh(da, now, timedelta(minutes=rules.max_age_minutes))
            end = step_end(da)
            if end > now + timedelta(minutes=5):
                raise DataValidationError(f"{path}: newest rain step ends {end.isoformat()}, after the run time")
            weights = cached_weights(cache_dir, _grid_of(da), codes, geoms, boundary_key=region.boundary_key)
            hourly = rain_accumulation(da, 1.0)
            stats = [StatRequest(rules.statistic)]
            if hourly_bound is not None:
                stats.append(StatRequest("frac_above", hourly_bound))
            h = zonal_stats(weights, hourly.values, stats)
            share = h.get(stats[-1].column, np.zeros(len(codes))) if hourly_bound is not None else np.zeros(len(codes))
            daily_values: np.ndarray | None = None
            shown = hourly
            try:
                daily = rain_accumulation(da, 24.0)
            except DataValidationError as exc:
                out.notes.append(f"{path}: no 24-hour accumulation, hourly categories only ({exc})")
            else:
                d_stats = [StatRequest(rules.statistic)]
                if daily_bound is not None:
                    d_stats.append(StatRequest("frac_above", daily_bound))
                d = zonal_stats(weights, daily.values, d_stats)
                daily_values = d[rules.statistic]
                if daily_bound is not None:
                    share = np.fmax(share, d[d_stats[-1].column])
                shown = daily
            _save_underlay(run_dir, shown, f"Hujan {float(shown.attrs['window_hours']):g} jam (mm)")
        except StaleSourceError as exc:
            out.degraded(path, f"stale source: {exc}")
            continue
        except (EwsError, OSError) as exc:
            out.degraded(path, f"rain raster not used: {exc}")
            continue
        except Exception as exc:  # one broken raster must never stop the run: it is reported, not hidden
            log.debug("rain raster %s: internal error", path, exc_info=True)
            out.degraded(path, f"rain raster not used: internal error reading {path}: {type(exc).__name__}: {exc}")
            continue
        results.append((h[rules.statistic], daily_values, share))
        ends.append(end)
        used.append(path)
    if not used:
        return
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN villages stay NaN
        hourly_v = np.nanmax(np.vstack([r[0] for r in results]), axis=0)
        dailies = [r[1] for r in results if r[1] is not None]
        daily_v = np.nanmax(np.vstack(dailies), axis=0) if len(dailies) == len(results) else None
        share_v = np.nan_to_num(np.nanmax(np.vstack([r[2] for r in results]), axis=0), nan=0.0)
    if len(used) > 1:
        out.notes.append(f"rain from {len(used)} products; each village takes the highest value")
    message = rain_message(config_id, codes, hourly_v, daily_v, max(ends), "; ".join(used), rules, fractions=share_v)
    without = int(message.details.get("villages_without_data") or 0)
    if without:
        out.notes.append(
            f"rain: {without} village(s) have no valid raster cell; their alerts are kept as they are "
            "(missing rain is not 'no rain')"
        )
    out.messages.append(message)


def _save_underlay(run_dir: Path, da: xr.DataArray, label: str) -> None:
    """Keep the raster shown under the village levels on the risk map (an .npz beside the run's files).

    Stored uncompressed: the file lives for one run, and deflating a national raster (4,620 x 1,720 float32)
    took 0.75 s a run against 0.02 s for the plain write (issue 14).
    """
    t = [float(v) for v in da.attrs["transform"]]
    path = run_dir / "rain_underlay.npz"
    import io

    buffer = io.BytesIO()
    np.savez(buffer, values=np.asarray(da.values, dtype=np.float32), transform=np.array(t), label=np.array(label))
    write_bytes_atomic(path, buffer.getvalue())


def load_underlay(run_dir: Path) -> tuple[np.ndarray, tuple[float, ...], str] | None:
    """The raster saved by the rain assessment, if any: values, transform, label."""
    path = run_dir / "rain_underlay.npz"
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as data:
        return np.array(data["values"]), tuple(float(v) for v in data["transform"]), str(data["label"])


def _kabkota_polygons(region: RegionData) -> pd.DataFrame:
    """Kab/kota shapes from the villages (their polygons collected, not dissolved) with code and name.

    A dissolve of real boundaries is slow and fails on badly noded edges; point-in-polygon and distance,
    which is all the area matching needs, work the same on the collected parts.
    """
    table = region.villages
    rows = []
    for code, group in table.groupby("kabkota", sort=True):
        geom = shapely.multipolygons(shapely.get_parts(group.geometry.values.to_numpy()))
        rows.append({"code": str(code), "name": str(group["kabkota_name"].iloc[0]), "geometry": geom})
    import geopandas as gpd

    return gpd.GeoDataFrame(rows, geometry="geometry", crs=table.crs)


def _forecast(config_id: str, region: RegionData, paths: Sequence[str], now: datetime, out: HazardAssessment) -> None:
    config = region.config
    codes = region.villages["code"].astype(str).tolist()
    adm4_files: list[Path] = []
    xml_files: list[Path] = []
    for src in paths:
        p = Path(src)
        files = sorted(f for f in p.iterdir() if f.is_file()) if p.is_dir() else [p]
        for f in files:
            try:
                with f.open("rb") as handle:  # the first bytes tell XML from JSON: no need to read it all
                    head = handle.read(64).lstrip()
            except OSError as exc:
                out.degraded(str(f), f"forecast not read ({exc.strerror})")
                continue
            (xml_files if head.startswith(b"<") else adm4_files).append(f)
    adm4 = ForecastLevels(villages={})
    digital = ForecastLevels(villages={})
    issued: list[datetime] = []
    used: list[str] = []
    if adm4_files:
        try:
            batch = read_adm4(adm4_files)
        except Exception as exc:  # the village forecasts fail alone: the DigitalForecast files still count
            log.exception("reading adm4 forecasts failed")
            out.degraded(", ".join(map(str, adm4_files)), f"village forecasts not used: internal error "
                         f"({type(exc).__name__}: {exc}); please report it")  # fmt: skip
            adm4_files = []
    if adm4_files:
        for problem in batch.problems:
            out.degraded(problem.source, f"village forecast not used: {problem.message}")
        fresh = []
        for fc in batch.forecasts:
            try:
                check_forecast_fresh(fc.analysis, now, config.forecast, fc.source)
            except StaleSourceError as exc:
                out.degraded(fc.source, f"stale source: {exc}")
                continue
            fresh.append(fc)
            if fc.analysis is not None:
                issued.append(fc.analysis)
            used.append(fc.source)
        if fresh:
            adm4 = adm4_levels(fresh, now, config.rain, config.forecast, villages=codes)
    if xml_files:
        kabkota = _kabkota_polygons(region)
        for f in xml_files:
            try:
                df = read_digitalforecast(f)
                check_forecast_fresh(df.issued, now, config.forecast, str(f))
            except StaleSourceError as exc:
                out.degraded(str(f), f"stale source: {exc}")
                continue
            except EwsError as exc:
                out.degraded(str(f), f"DigitalForecast not used: {exc}")
                continue
            except Exception as exc:  # one file fails alone
                log.exception("reading %s failed", f)
                out.degraded(str(f), f"DigitalForecast not used: internal error ({type(exc).__name__}: {exc}); "
                             "please report it")  # fmt: skip
                continue
            matches = match_areas(df, kabkota)
            found = digitalforecast_levels(df, matches, codes, now, config.rain, config.forecast)
            digital = merge_levels(digital, found)  # with two files, the first listed wins per village
            issued.append(df.issued)
            used.append(str(f))
    if not used:
        return
    merged = merge_levels(adm4, digital)  # a village's own forecast beats its kab/kota's
    out.notes.extend(merged.notes)
    when = max(issued) if issued else now
    out.messages.append(
        forecast_message(config_id, merged.villages, when, now, "; ".join(used), config.rain, config.forecast)
    )


def _coast(region: RegionData, cache_dir: Path | None, out: HazardAssessment) -> set[str]:
    """The coastal villages of a region: the outline of its villages and ``earthquake.land`` (cached).

    Without ``land`` (or when a land file cannot be used) the coast is the outline of the villages alone
    and the run says, DEGRADED, that land borders count as coast.
    """
    config = region.config
    rules = config.earthquake
    where = f"{config.source_file or config.id} [earthquake.land]"
    layer = region.layer
    codes = layer.table["code"].astype(str).tolist()
    geometries = layer.table.geometry.values
    files: list[Path] | None = None
    land_key = "none"
    if rules.land is None:
        out.degraded(
            where,
            "tsunami coast taken from the outline of the region's boundaries alone: villages on a land border "
            "with a neighbouring province count as coastal and get tsunami alerts; set 'earthquake.land' to the "
            "neighbours' boundary files (or 'land: []' for an island region), or give 'earthquake.coastal'",
        )
    else:
        try:
            files = list_land_files(rules.land)
            land_key = f"{rules.land_id_field}:{digest_land_files(files)}"
        except BoundaryError as exc:
            out.degraded(where, f"land around the region not used, land borders count as coast this run: {exc}")
            files = None

    def derive(land_files: list[Path] | None) -> Coast:
        if not land_files:
            return Coast(frozenset(coastal_villages(layer)))
        around = surrounding_land(read_land(land_files, id_field=rules.land_id_field), codes)
        coast = coastal_villages(layer, land=around.land.geometry)
        return Coast(frozenset(coast), len(around.land), len(around.own))

    try:
        found = cached_coast(cache_dir, coast_key(codes, geometries, land_key), lambda: derive(files))
    except BoundaryError as exc:  # a land file that exists but is not usable boundaries
        out.degraded(where, f"land around the region not used, land borders count as coast this run: {exc}")
        files = None
        found = cached_coast(cache_dir, coast_key(codes, geometries, "none"), lambda: derive(None))
    coast = found.coast
    if files is None:
        source = "the outline of the boundaries alone"
    elif not files:
        source = "the outline of the boundaries (earthquake.land: [], no land border)"
    else:
        source = f"the villages and {len(files)} land file(s)"
    detail = ""
    if coast.land_kept is not None:
        detail = f"; {coast.land_kept} land feature(s) kept, {coast.land_own} of the region itself left out"
        if coast.land_kept == 0:
            out.degraded(
                where,
                f"the land files hold only the region's own areas ({coast.land_own} features): land borders "
                "count as coast; give the neighbouring provinces' boundaries",
            )
    out.notes.append(
        f"gempa: tsunami coast: {len(coast.codes)} of {len(codes)} villages, from {source} ({found.origin}{detail})"
    )
    return set(coast.codes)


def _quakes(
    config_id: str,
    region: RegionData,
    paths: Sequence[str],
    now: datetime,
    out: HazardAssessment,
    cache_dir: Path | None = None,
) -> None:
    rules = region.config.earthquake
    events = []
    for src in paths:
        bad: list[str] = []
        try:
            events.extend(read_quakes(src, problems=bad))
        except EwsError as exc:
            out.degraded(src, f"earthquake feed not used: {exc}")
        except Exception as exc:  # one feed fails alone
            log.exception("reading %s failed", src)
            out.degraded(src, f"earthquake feed not used: internal error ({type(exc).__name__}: {exc}); "
                         "please report it")  # fmt: skip
        for message in bad:
            out.degraded(src, f"earthquake input skipped: {message}")
    if not events:
        return
    # Copies of one event from several feeds merge as within one feed: BMKG's end notice in any copy ends it, one
    # copy saying tsunami warns; a copy that says nothing (gempadirasakan has no Potensi) never lowers it.
    unique = {e.event_id: e for e in merge_quakes(events)}
    coastal: set[str] | None = None
    old: list[str] = []  # BMKG's feeds list the last 15 events for days: one line for all of them
    small: list[str] = []
    for event in unique.values():
        if now - event.time > timedelta(hours=rules.max_age_hours):
            old.append(event.event_id)
            continue
        if event.magnitude < rules.min_magnitude:
            small.append(event.event_id)
            continue
        if event.tsunami and coastal is None:
            coastal = read_coastal_codes(rules.coastal) if rules.coastal else _coast(region, cache_dir, out)
        try:
            outcome = quake_message(config_id, event, region.layer, rules, coastal or set(), now)
        except Exception as exc:  # one event fails alone
            log.exception("assessing earthquake %s failed", event.event_id)
            out.degraded(event.source or "earthquake feed",
                         f"earthquake {event.event_id} not assessed: internal error ({type(exc).__name__}: {exc}); "
                         "please report it")  # fmt: skip
            continue
        if outcome.message is None:
            out.notes.append(f"gempa {event.event_id} (M{event.magnitude:g} {event.region}): {outcome.reason}")
        else:
            out.messages.append(outcome.message)
        out.notes.extend(f"gempa {event.event_id}: {n}" for n in event.notes)
    if old:
        out.notes.append(
            f"gempa: {len(old)} event(s) older than {rules.max_age_hours:g} h not alerted (late or replayed "
            f"by the feeds; newest {max(old)})"
        )
    if small:
        out.notes.append(f"gempa: {len(small)} event(s) below M{rules.min_magnitude:g} not alerted")


def assess_hazards(
    region: RegionData, run_dir: Path, now: datetime, *, cache_dir: Path | None = None
) -> HazardAssessment:
    """Hazard messages from the sources staged in ``run_dir``; write ``run_dir/hazards.json``."""
    staged, problems = load_staged(run_dir)
    out = HazardAssessment(problems=list(problems))
    config_id = region.config.id
    steps: list[tuple[str, Callable[[], None]]] = [
        ("rain", lambda: _rain(config_id, region, staged["rain"], now, cache_dir, out, run_dir)),
        ("forecast", lambda: _forecast(config_id, region, staged["forecast"], now, out)),
        ("quakes", lambda: _quakes(config_id, region, staged["quakes"], now, out, cache_dir)),
    ]
    for kind, step in steps:
        if not staged[kind]:
            continue
        # Each kind of source fails alone: whatever goes wrong in one, the others and BMKG's warnings go out.
        try:
            step()
        except Exception as exc:
            log.exception("assessing %s sources failed", kind)
            out.degraded(
                ", ".join(staged[kind]),
                f"{kind} sources not used: internal error while assessing them ({type(exc).__name__}: {exc}); "
                "please report it",
            )
    record = {
        "messages": [hazard_to_record(m) for m in out.messages],
        "problems": out.problems,
        "notes": out.notes,
    }
    write_text_atomic(run_dir / "hazards.json", json.dumps(record, ensure_ascii=False, indent=1))
    return out


def load_hazards(run_dir: Path) -> HazardAssessment:
    """What :func:`assess_hazards` wrote (an empty assessment when the run had no other sources)."""
    path = run_dir / "hazards.json"
    if not path.exists():
        return HazardAssessment()
    record = json.loads(path.read_text(encoding="utf-8"))
    return HazardAssessment(
        messages=[hazard_from_record(r) for r in record["messages"]],
        problems=list(record["problems"]),
        notes=list(record["notes"]),
    )


__all__ = [
    "HazardAssessment",
    "HazardSources",
    "assess_hazards",
    "load_hazards",
    "load_staged",
    "load_underlay",
    "stage_sources",
]

"""The ``ews`` command: ``demo``, ``run``, ``worker``, ``alerts``, ``affected``, ``zonal``, ``send``, ``serve``, ….

``ews users`` manages the command center's accounts (``ews serve`` serves its login, API and dashboard).

The front door: it reads the environment and the clock and hands them to :mod:`ews.pipeline`.
Exit status: 0 success; 1 finished, but some inputs were rejected or degraded (each named on stderr);
2 refused: a configuration or input error (the message names the file, field or key and what to do);
3 internal error: a bug in ews (one line names it; ``-v`` shows the traceback).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from ews.errors import (
    EXIT_ERROR,
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_PARTIAL,
    ConfigError,
    DataValidationError,
    EwsError,
    mask_phone_like,
)

if TYPE_CHECKING:
    from ews.channels.base import Channel
    from ews.channels.outbox import FileOutbox
    from ews.config import RegionConfig
    from ews.store.repository import Store
    from ews.store.warnings import AliasRecord


class _Progress:
    """Timed progress lines on stderr, so long steps show they are alive."""

    def __init__(self, enabled: bool = True) -> None:
        self.start = time.monotonic()
        self.enabled = enabled

    def __call__(self, message: str) -> None:
        if self.enabled:
            print(f"[{time.monotonic() - self.start:6.1f}s] {message}", file=sys.stderr, flush=True)


def _base_url() -> str:
    from ews.ingest.bmkg_cap import DEFAULT_BASE_URL

    return os.environ.get("EWS_BMKG_BASE_URL", DEFAULT_BASE_URL)


def _parse_time(text: str | None) -> datetime:
    from ews.config import parse_instant

    return parse_instant(text, "--at") if text else datetime.now(UTC)


def _print_report(report: object) -> None:
    from ews.pipeline import RunReport

    assert isinstance(report, RunReport)  # noqa: S101
    people = "unknown" if report.people_exposed is None else f"{report.people_exposed:,.0f}"
    if report.population_estimated and report.people_exposed is not None:
        people += " (ESTIMATE: kab/kota totals spread by area)"
    lines = [
        "",
        f"ews run: region {report.region}, {report.warnings} warning(s)",
        "  villages per level",
        *(f"    {label:<8} {n:>6}" for label, n in report.levels.items()),
        f"  people exposed      {people}",
    ]
    if any(report.ended.values()):
        ended = ", ".join(f"{word} {n}" for word, n in report.ended.items())
        lines.append(f"  ended this run: {ended} (summary.csv status)")
    if report.queued is not None:
        lines.append(f"  messages queued for `ews send`: {report.queued}")
    else:
        lines.append("  messages rendered (dry run, outbox.jsonl)")
        lines.extend(f"    {k:<18} {n:>6}" for k, n in sorted(report.messages.items()))
        if any(n.startswith("NOBODY REACHED") for n in report.notes):
            lines.append("    NOBODY REACHED: no subscriber or Tagana contact in the alerted villages (see NOTE)")
        elif not report.messages:
            lines.append("    (none)")
    if report.transitions:
        lines.append("  decisions: " + ", ".join(f"{k} {n}" for k, n in sorted(report.transitions.items())))
    if report.pending_review:
        lines.append(f"  PENDING REVIEW ({len(report.pending_review)} thread(s), until an analyst decides):")
        lines.extend(f"    {line}" for line in report.pending_review)
        lines.append(f"    ews alerts approve THREAD --region {report.region}   (or reject; ews alerts list)")
    if report.latency:
        from ews.latency import latency_lines

        lines.append("  latency of this run's messages (from the source's <sent>):")
        lines.extend(f"    {line}" for line in latency_lines(report.latency))
    lines.append(f"  CAP 1.2 files written: {report.cap_files} (cap/, index.atom)")
    for p in report.problems:
        lines.append(f"  REJECTED {p['source']}: {p['message']}")
    for note in report.notes:
        lines.append(f"  NOTE {note}")
    lines.append(f"  outputs in {report.out_dir}")
    for name in (
        "risk_map.png",
        "risk_map.html",
        "summary.csv",
        "villages.gpkg",
        "villages.geojson",
        "outbox.jsonl",
    ):
        if (report.out_dir / name).exists():
            lines.append(f"    {report.out_dir / name}")
    print("\n".join(lines))


def _open_store(url: str, config: RegionConfig) -> Store:
    """Open (and migrate) the store."""
    from ews.store.repository import Store

    return Store.from_url(url)


def _outbox(args: argparse.Namespace, region_id: str) -> FileOutbox:
    from ews.channels.outbox import FileOutbox

    return FileOutbox(_outbox_path(args, region_id))


def _outbox_path(args: argparse.Namespace, region_id: str) -> Path:
    return Path(args.outbox) if args.outbox else Path(".ews") / "outbox" / f"{region_id}.jsonl"


def cmd_demo(args: argparse.Namespace) -> int:
    """Generate the synthetic region and warning, run once on a fresh store, print the summary."""
    from ews.config import open_region
    from ews.pipeline import run_slice
    from ews.sources import HazardSources
    from ews.synthetic import synthetic_bounds, write_synthetic_region, write_synthetic_warning
    from ews.synthetic_rain import write_synthetic_rain

    progress = _Progress(not args.quiet)
    now = _parse_time(args.at)
    work = Path(args.work)
    progress(f"generating the synthetic demo region in {work}")
    region_file = write_synthetic_region(work / "region")
    warning = write_synthetic_warning(work / "warnings", now)
    config = open_region(region_file, os.environ)
    # 24 hours of synthetic satellite rain (GeoTIFF, hourly, 0.01 degree) over the region, ending now.
    hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    rain = write_synthetic_rain(
        work / "rain", region_bounds=synthetic_bounds(), start=hour - timedelta(hours=24), hours=24,
        formats=("geotiff",),
    )["geotiff"]  # fmt: skip
    # The demo shows the whole path every time: a fresh store, so its alerts are new again.
    for stale in (work / "ews.db", work / "ews.db-wal", work / "ews.db-shm", work / "outbox.jsonl"):
        stale.unlink(missing_ok=True)
    store = _open_store(f"sqlite:///{work / 'ews.db'}", config)
    try:
        report = run_slice(
            config, str(warning), Path(args.out), now=now, store=store,
            channel=_outbox(argparse.Namespace(outbox=str(work / "outbox.jsonl")), config.id), progress=progress,
            sources=HazardSources(rain=(str(rain),)), cache_dir=work / "cache",
        )  # fmt: skip
        password = _seed_demo_center(store, config, now)
    finally:
        store.close()
    _print_report(report)
    print(
        "\nThe command center on the demo data (Ctrl-C stops it):\n"
        f"  {Path(sys.argv[0]).parent / 'ews'} serve --database sqlite:///{(work / 'ews.db').resolve()} "
        f"--region {region_file.resolve()} --insecure-cookies\n"
        f"  then open http://127.0.0.1:8080/ and log in as 'demo' with the password {password}\n"
        "  (a user of this demo database only; every `make demo` makes a new one)"
    )
    return EXIT_PARTIAL if report.problems else EXIT_OK


def _seed_demo_center(store: Store, config: RegionConfig, now: datetime) -> str:
    """Give the demo's command center an admin user and three reports; return the user's new password.

    The reports are what an operator might type in from phone calls: a rescue, a need for food, and one no
    rule recognises (it goes to the duty operator), each in a village under the demo's warning.
    """
    import secrets

    from ews.center.reports import intake_report
    from ews.web.auth import hash_password

    password = secrets.token_urlsafe(12)
    store.create_user("demo", hash_password(password), "admin", ["*"], "id", at=now)
    villages: list[str | None] = [s.village_code for s in store.active_alerts(config.id)] or [None]
    texts = (
        "Warga terjebak banjir di atap rumah, butuh perahu untuk evakuasi",
        "Pengungsi di balai desa butuh makanan dan selimut",
        "Mohon info jalur aman ke kota",
    )
    for n, text in enumerate(texts):
        intake_report(
            store, source="operator", source_ref=f"demo-{n + 1}", body=text, at=now, region=config.id,
            village_code=villages[n % len(villages)], rules=config.routing, reporter_label="telepon (demo)",
            actor="demo", role="operator",
        )  # fmt: skip
    return password


def _region_file(value: str) -> Path:
    """``--region`` as given: a region file (``regions/jawa-timur.yaml``) or a region id (``jawa-timur``).

    An id is looked up as ``<id>.yaml`` in ``$EWS_REGIONS_DIR`` (default ``regions``).
    """
    path = Path(value)
    if path.suffix in (".yaml", ".yml") or path.is_file() or "/" in value or "\\" in value:
        return path
    folder = Path(os.environ.get("EWS_REGIONS_DIR", "regions"))
    found = folder / f"{value}.yaml"
    if not found.is_file():
        raise EwsError(
            f"--region {value!r}: there is no region file {found}; give the file (regions/<id>.yaml) or the id of "
            "one in $EWS_REGIONS_DIR (default ./regions)"
        )
    return found


def _region_id(value: str | None) -> str | None:
    """The region id of ``--region`` (a file is read for its ``id``; an id is taken as it is)."""
    if value is None:
        return None
    path = Path(value)
    if path.suffix in (".yaml", ".yml") or path.is_file() or "/" in value:
        from ews.config import open_region

        return open_region(path, os.environ).id
    return value


def cmd_run(args: argparse.Namespace) -> int:
    """Run the slice for a configured region on real warnings, rain rasters, forecasts and earthquakes.

    With ``--worker URL`` (or ``$EWS_WORKER_URL``) the cycle runs in that ``ews worker``, warm (:mod:`ews.worker`).
    """
    from ews.config import open_region
    from ews.sources import HazardSources
    from ews.worker import run_cycle

    progress = _Progress(not args.quiet)
    region_file = _region_file(args.region)
    config = open_region(region_file, os.environ)
    now = _parse_time(args.at)
    out = Path(args.out) if args.out else Path("out") / config.id
    sources = HazardSources(tuple(args.rain), tuple(args.forecast), tuple(args.quakes))
    if not args.cap and not sources:
        raise ConfigError("nothing to run on: give --cap, --rain, --forecast and/or --quakes")
    cache = Path(args.cache_dir or os.environ.get("EWS_CACHE_DIR") or ".ews/cache")
    outbox = None if args.queue_only else _outbox_path(args, config.id)
    worker = args.worker or os.environ.get("EWS_WORKER_URL")
    if worker:
        return _run_in_worker(args, worker, region_file, now=now, out=out, cache=cache, outbox=outbox)
    store = _open_store(_database_url(args), config)
    try:
        reports, exit_code = run_cycle(
            config, store, caps=tuple(args.cap), sources=sources, now=now, out=out, cache_dir=cache, outbox=outbox,
            progress=progress,
        )  # fmt: skip
    finally:
        store.close()
    for report in reports:
        _print_report(report)
    return exit_code


def _local(value: str) -> str:
    """A source as a worker elsewhere reads it: a local file or folder made absolute, anything else as given."""
    return str(Path(value).resolve()) if Path(value).exists() else value


def _run_in_worker(
    args: argparse.Namespace, url: str, region_file: Path, *, now: datetime, out: Path, cache: Path,
    outbox: Path | None,
) -> int:  # fmt: skip
    from ews.pipeline import RunReport
    from ews.worker import call, database_digest

    body = {
        "region": str(region_file.resolve()), "cap": [_local(c) for c in args.cap],
        "rain": [_local(r) for r in args.rain], "forecast": [_local(f) for f in args.forecast],
        "quakes": [_local(q) for q in args.quakes], "at": now.isoformat(), "out": str(out.resolve()),
        "queue_only": outbox is None, "outbox": str(outbox.resolve()) if outbox is not None else None,
        "database": database_digest(_database_url(args)), "cache_dir": str(cache.resolve()),
    }  # fmt: skip
    answer = call(url, "/run", body, timeout=args.worker_timeout)
    for report in answer.get("reports", []):
        _print_report(RunReport.from_json(report))
    if not args.quiet:
        done = f"cycle {answer.get('cycle')} of the worker at {url}, {answer.get('seconds')} s"
        print(f"ews run: {done}", file=sys.stderr)
    return int(answer.get("exit_code", EXIT_INTERNAL))


def cmd_worker(args: argparse.Namespace) -> int:
    """Serve cycles warm (``ews worker``): see :mod:`ews.worker`."""
    from ews.worker import Worker, serve

    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.any_host:
        raise ConfigError(
            f"--host {args.host}: the worker runs cycles for anyone who can reach it; it listens on the loopback "
            "interface (127.0.0.1) unless --any-host says that this network is trusted"
        )
    cache = Path(args.cache_dir or os.environ.get("EWS_CACHE_DIR") or ".ews/cache").resolve()
    worker = Worker(_database_url(args), cache, progress=_Progress(not args.quiet))
    worker.store()  # open (and migrate) it now: a wrong URL fails at start, not at the first cycle
    serve(worker, args.host, args.port)
    return EXIT_OK


def cmd_alerts_list(args: argparse.Namespace) -> int:
    """Active alerts, what waits for review (by thread), and counts."""
    from ews.store.repository import Store

    region_id = _region_id(args.region)
    store = Store.from_url(_database_url(args))
    try:
        pending = store.pending_threads(region_id)
        regions = [region_id] if region_id else sorted({t.region for t in pending}) or []
        versions = sum(t.versions for t in pending)
        print(f"pending review: {versions} version(s) in {len(pending)} thread(s)")
        for t in pending:
            print(f"  {t.region} {t.line()}")
            print(f"    ews alerts approve {t.thread_id} --region {t.region}   (or: reject)")
        for region in regions:
            active = store.active_alerts(region)
            print(f"active alerts in {region}: {len(active)}")
            for s in sorted(active, key=lambda s: (-int(s.level), s.village_code)):
                until = s.expires.isoformat() if s.expires else "until further notice"
                print(
                    f"  {s.village_code} {s.level.label:<8} v{s.seq} thread {s.thread_id} "
                    f"warning {s.warning_id} until {until}"
                )
            for key, n in sorted(store.counts(region).items()):
                print(f"  {key:<24} {n}")
            _print_aliases(store.warning_aliases(store.region_threads(region)), f"in {region}")
        if not regions:
            _print_aliases(store.warning_aliases(), "")
    finally:
        store.close()
    return EXIT_OK


def _print_aliases(aliases: Sequence[AliasRecord], where: str) -> None:
    """The copies of warnings that were recognised and sent nothing (BMKG re-served them, other editions)."""
    print(f"aliases{' ' + where if where else ''} (the same warning under another identifier: nothing sent): "
          f"{len(aliases)}")  # fmt: skip
    for a in aliases:
        print(
            f"  {a.identifier} = {a.canonical} ({a.reason}, {a.language or '?'}) thread {a.thread_id}, "
            f"seen {a.times_seen}x, first {a.first_seen.isoformat()}, last {a.last_seen.isoformat()}, from {a.source}"
        )


def cmd_alerts_show(args: argparse.Namespace) -> int:
    """One thread: its warnings, its villages' alert states, its deliveries, latency and every failed message."""
    from ews.latency import latency_lines, summarise
    from ews.store.repository import Store

    region = _region_id(args.region)
    assert region is not None  # noqa: S101 - required by the parser
    args.region = region
    store = Store.from_url(_database_url(args))
    try:
        headers = store.warning_headers(args.thread)
        states = [s for s in store.village_states(args.region) if s.thread_id == args.thread]
        deliveries = store.thread_deliveries(args.region, args.thread)
        if not headers and not states and not deliveries:
            raise EwsError(f"thread {args.thread!r} is unknown in region {args.region} (see ews alerts list)")
        print(f"thread {args.thread} in {args.region}")
        for h in headers:
            until = h.expires.isoformat() if h.expires else "-"
            print(f"  {h.msg_type:<6} {h.identifier} sent {h.sent.isoformat()} until {until} ({h.event})")
        active = [s for s in states if s.active]
        print(f"  villages: {len(states)} alerted, {len(active)} active")
        print("  messages: " + (", ".join(f"{k} {n}" for k, n in sorted(deliveries.items())) or "none"))
        latency = latency_lines(summarise(store.message_timelines(args.region, args.thread, grouped=True)))
        if latency:
            print("  latency (from the source's <sent>):")
            for line in latency:
                print(f"    {line}")
        failed = store.failed_rows(args.region, args.thread)
        if failed:
            print(f"  FAILED ({len(failed)}), never to be retried:")
        for row in failed:
            print(f"    ledger {row['id']} {row['village_code']} v{row['seq']} {row['audience']} {row['channel']} "
                  f"{row['recipient_id']}: {row['error'] or 'failed'}")  # fmt: skip
        for alias in store.warning_aliases([args.thread]):
            print(f"  alias {alias.identifier} = {alias.canonical} ({alias.reason})")
    finally:
        store.close()
    return EXIT_OK


def cmd_alerts_decide(args: argparse.Namespace) -> int:
    """Approve (and send at once) or reject what the review gate holds: whole threads, versions, or all."""
    from ews.config import open_region
    from ews.dispatch import Dispatcher
    from ews.pipeline import decide_review
    from ews.store.repository import Store

    status = "approved" if args.action == "approve" else "rejected"
    if not args.targets and not args.all:
        raise EwsError(f"say what to {args.action}: a thread id, a version id, or --all (see ews alerts list)")
    if args.targets and args.all:
        raise EwsError(f"{args.action}: give thread or version ids, or --all, not both")
    ids = [int(t.lstrip("#")) for t in args.targets if t.lstrip("#").isdigit()]
    threads = [t for t in args.targets if not t.lstrip("#").isdigit()]
    config = open_region(_region_file(args.region), os.environ)
    store = Store.from_url(_database_url(args))
    try:
        decided, queued = decide_review(store, config, status, args.by, threads=threads, ids=ids, every=args.all)
        by_thread: dict[str, int] = {}
        for v in decided:
            by_thread[v.thread_id] = by_thread.get(v.thread_id, 0) + 1
        for thread, n in sorted(by_thread.items()):
            print(f"{thread}: {n} alert version(s) {status} by {args.by}")
        if status == "approved":
            print(f"  queued {queued} message(s)")
            if not args.queue_only:
                outbox = _outbox(args, config.id)
                sent = Dispatcher(store, {"sms": outbox, "whatsapp": outbox}, worker="ews-approve").run()
                print(
                    f"  sent {sent.sent} (dry-run outbox {outbox.path}); failed {sent.failed}, expired {sent.expired}"
                )
        left = store.pending_threads(config.id)
        print(f"still pending in {config.id}: {sum(t.versions for t in left)} version(s) in {len(left)} thread(s)")
    finally:
        store.close()
    return EXIT_OK


def cmd_alerts_cancel(args: argparse.Namespace) -> int:
    """Cancel every active alert of one thread (e.g. a satellite artefact): everyone alerted is told."""
    import tempfile

    import shapely

    from ews.config import open_region
    from ews.impact.assess import IMPACT_COLUMNS
    from ews.pipeline import publish_outputs
    from ews.store.artifacts import write_text_atomic
    from ews.store.records import warning_to_record
    from ews.types import Warning

    config = open_region(_region_file(args.region), os.environ)
    now = _parse_time(args.at)
    store = _open_store(_database_url(args), config)
    try:
        active = [s for s in store.active_alerts(config.id) if s.thread_id == args.thread]
        if not active:
            threads = sorted({s.thread_id for s in store.active_alerts(config.id)})
            raise EwsError(
                f"thread {args.thread!r} has no active alert in region {config.id}; active threads: "
                f"{', '.join(threads) or 'none'} (see ews alerts list)"
            )
        headers = store.warning_headers(args.thread)
        event = headers[-1].event if headers else "Peringatan"
        cancel = Warning(
            identifier=f"{args.thread}.cancel.{now.astimezone(UTC):%Y%m%dT%H%M%SZ}",
            sender="ews",
            sent=now,
            status="Actual",
            msg_type="Cancel",
            references=(args.thread,),
            language="id",
            event=event,
            urgency="Past",
            severity="Minor",
            certainty="Observed",
            effective=now,
            expires=None,
            headline=f"Dicabut oleh {args.by}: {args.reason}",
            description=args.reason,
            web="",
            area_desc=config.name,
            geometry=shapely.Polygon(),
            polygon_count=0,
            source=f"ews alerts cancel by {args.by}",
        )
        out = Path(args.out) if args.out else Path("out") / config.id
        with tempfile.TemporaryDirectory(prefix="ews-cancel-") as tmp:
            run_dir = Path(tmp)
            record = {"source": cancel.source, "warnings": [warning_to_record(cancel)], "problems": [], "duplicates": 0}
            write_text_atomic(run_dir / "warnings.json", json.dumps(record, ensure_ascii=False))
            write_text_atomic(run_dir / "impacts.csv", ",".join(IMPACT_COLUMNS) + "\n")
            report = publish_outputs(
                config, run_dir, out, now=now, store=store,
                channel=None if args.queue_only else _outbox(args, config.id),
            )  # fmt: skip
        print(f"thread {args.thread}: {report.transitions.get('cancel', 0)} village alert(s) cancelled by {args.by}")
        _print_report(report)
    finally:
        store.close()
    return EXIT_OK


def cmd_affected(args: argparse.Namespace) -> int:
    """Print the areas of a boundary file that the warnings touch, largest fraction first."""
    import pandas as pd

    from ews.exposure.coverage import VillageLayer, village_coverage
    from ews.ingest.bmkg_cap import read_warnings
    from ews.ingest.boundaries import read_boundaries

    keep = (args.population_field,) if args.population_field else ()
    areas = read_boundaries(args.boundaries, id_field=args.id_field, name_field=args.name_field, keep=keep)
    layer = VillageLayer.from_villages(areas)
    batch = read_warnings(args.cap, base_url=_base_url())
    for p in batch.problems:
        print(f"ews affected: rejected {p.source}: {p.message}", file=sys.stderr)
    for w in batch.warnings:
        for note in w.notes:
            print(f"ews affected: warning {w.identifier}: {note}", file=sys.stderr)
    frames = []
    for w in batch.warnings:
        cover = village_coverage(layer, w.geometry)
        cover = cover[cover["fraction"] >= args.min_fraction]
        cover = cover.assign(warning_id=w.identifier)
        if args.population_field:
            population = pd.to_numeric(areas[args.population_field], errors="coerce").to_numpy(dtype=float)
            cover = cover.assign(population_exposed=population[cover["index"].to_numpy()] * cover["fraction"])
        frames.append(cover)
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["index", "code", "name"])
    if len(rows):
        rows = rows.sort_values(["fraction", "code"], ascending=[False, True], kind="stable")
    rows = rows.rename(columns={"code": "id"})
    columns = ["id", "name", "fraction", "area_km2", "covered_km2", "warning_id"]
    if args.population_field:
        columns.append("population_exposed")
    if args.format == "geojson":
        geo = areas.iloc[rows["index"].to_numpy(dtype=int)][["geometry"]].reset_index(drop=True)
        out = geo.assign(**{c: rows[c].to_numpy() for c in columns}) if len(rows) else geo
        out = out[[*columns, "geometry"]] if len(rows) else out
        sys.stdout.write(
            out.to_json(drop_id=True) if len(rows) else json.dumps({"type": "FeatureCollection", "features": []})
        )
        sys.stdout.write("\n")
    else:
        sys.stdout.write(rows.reindex(columns=columns).to_csv(index=False, float_format="%.6g"))
    if not batch.warnings:
        print("ews affected: no usable warning in the input", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_PARTIAL if batch.problems else EXIT_OK


def cmd_zonal(args: argparse.Namespace) -> int:
    """Print exact zonal statistics of one raster band, or of an N-hour rain total, per area (one row per area).

    Plain statistics (``--band``) work on any raster: any units (shown empty when the file has none and
    ``--units`` is not given), no time needed (shown empty), and a GeoTIFF in any CRS (the areas are
    reprojected to it). ``--hours`` reads the raster as rain: units, band times and the step come from
    the file or its name, else from ``--units``, ``--time``/``--time-pattern`` and ``--step-hours``.
    """
    import math

    import numpy as np
    import pandas as pd

    from ews.config import TIME_PATTERN_PRODUCTS, parse_instant, time_pattern_regex
    from ews.errors import RasterError
    from ews.exposure.zonal import Grid, parse_stats, zonal_stats
    from ews.hazard.rainfall import rain_accumulation
    from ews.ingest.boundaries import read_boundaries
    from ews.ingest.rainfall import WGS84, RasterHints, open_rainfall, open_raster
    from ews.store.zonal_cache import cached_weights

    try:
        stats = parse_stats(args.stats)
    except ValueError as exc:
        raise ConfigError(f"--stats: {exc}") from None
    for flag, value in (("--hours", args.hours), ("--step-hours", args.step_hours)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ConfigError(f"{flag} {value:g}: give a positive number of hours")
    if args.time is not None and args.time_pattern is not None:
        raise ConfigError("give --time (the start of one file) or --time-pattern (times in the file names), not both")
    if args.time_pattern is not None and args.time_pattern not in TIME_PATTERN_PRODUCTS:
        try:
            time_pattern_regex(args.time_pattern)
        except ValueError as exc:
            raise ConfigError(f"--time-pattern: {exc}") from None
    hints = RasterHints(
        units=args.units or None,
        time=parse_instant(args.time, "--time") if args.time is not None else None,
        step_hours=args.step_hours,
        time_pattern=args.time_pattern,
        variable=args.variable,
        origin="flags",
    )
    keep = (args.population_field,) if args.population_field else ()
    areas = read_boundaries(args.boundaries, id_field=args.id_field, name_field=args.name_field, keep=keep)
    west, south, east, north = (float(v) for v in areas.total_bounds)
    pad = 0.01  # degrees: only the window around the areas is read
    bbox = (west - pad, south - pad, east + pad, north + pad)
    if args.hours is not None:
        raster = open_rainfall(args.raster, bbox=bbox, hints=hints)
        band = rain_accumulation(raster, args.hours)
        values = band.values
        units = "mm"
        when = pd.Timestamp(str(band.attrs["end"]).rstrip("Z")).strftime("%Y-%m-%dT%H:%M:%SZ")  # end of the window
    else:
        raster = open_raster(args.raster, bbox=bbox, hints=hints)
        steps = raster.sizes["band"]
        if not 1 <= args.band <= steps:
            raise ConfigError(f"--band {args.band}: {args.raster} has {steps} band(s)/time step(s); use 1..{steps}")
        layer = raster.isel(band=args.band - 1)
        values = layer.values
        units = str(raster.attrs.get("units", ""))
        start = layer["time"].values
        when = "" if np.isnat(start) else str(start.astype("datetime64[s]")) + "Z"
    crs = str(raster.attrs["crs"])
    geometries = areas.geometry
    if crs != WGS84:
        try:
            geometries = geometries.to_crs(crs)
        except (ValueError, RuntimeError) as exc:
            raise RasterError(
                f"{args.raster}: cannot bring the areas into the raster's CRS ({exc}); "
                "reproject the raster to EPSG:4326 (e.g. gdalwarp -t_srs EPSG:4326)"
            ) from None
    t = tuple(float(v) for v in raster.attrs["transform"])
    grid = Grid((t[0], t[1], t[2], t[3], t[4], t[5]), (raster.sizes["y"], raster.sizes["x"]), crs)
    cache = Path(args.cache_dir) if args.cache_dir else None
    weights = cached_weights(cache, grid, areas["code"].tolist(), geometries.values.to_numpy())
    result = zonal_stats(weights, values, stats)
    out = pd.DataFrame({"id": areas["code"].to_numpy(), "name": areas["name"].to_numpy(), **result})
    if args.population_field:
        population = pd.to_numeric(areas[args.population_field], errors="coerce").to_numpy(dtype=float)
        for req in stats:
            if req.name == "frac_above":
                out[f"population_{req.column}"] = population * out[req.column].to_numpy()
    out.insert(2, "time", when)
    out.insert(3, "units", units)
    if args.format == "geojson":
        geo = areas[["geometry"]].reset_index(drop=True).assign(**{c: out[c].to_numpy() for c in out.columns})
        sys.stdout.write(geo.to_json(drop_id=True, na="null") + "\n")
    else:
        sys.stdout.write(out.to_csv(index=False, float_format="%.9g"))
    missing = int(out[stats[0].column].isna().sum()) if stats[0].name != "count" else 0
    if missing:
        print(f"ews zonal: {missing} area(s) have no valid raster cell (NaN, not 0)", file=sys.stderr)
    return EXIT_OK


def _database_url(args: argparse.Namespace) -> str:
    from ews.store.db import DEFAULT_URL

    return str(args.database or os.environ.get("EWS_DATABASE_URL") or DEFAULT_URL)


def cmd_tagana_escalate(args: argparse.Namespace) -> int:
    """Page the due escalation steps once (the ``ews_command`` DAG does it every minute); ``ews send`` delivers."""
    from ews.center.mobilise import AckLinks, escalate_due
    from ews.store.repository import Store

    store = Store.from_url(_database_url(args))
    try:
        done = escalate_due(store, at=datetime.now(UTC), links=AckLinks.from_env(os.environ))
    finally:
        store.close()
    for mid, step in done.no_contact:
        print(f"mobilisation #{mid}: step {step} has no contact in tagana.csv: nobody paged", file=sys.stderr)
    print(f"ews tagana escalate: {done.pages} page(s) queued for {len(done.mobilisations)} mobilisation(s)")
    return EXIT_OK


def cmd_tagana_board(args: argparse.Namespace) -> int:
    """Print the Tagana board (no phone numbers)."""
    from ews.center.mobilise import board_lines
    from ews.store.repository import Store

    store = Store.from_url(_database_url(args))
    try:
        print("\n".join(board_lines(store, args.region, at=datetime.now(UTC))))
    finally:
        store.close()
    return EXIT_OK


def cmd_subscribers_import(args: argparse.Namespace) -> int:
    """Validate a subscribers CSV and import it all or nothing; the report never shows a phone number."""
    from ews.store.repository import Store
    from ews.subscribers import format_import_report, import_subscriber_file, region_village_codes

    path = Path(args.file)
    codes, region_name = None, "?"
    if args.region:
        region_name, codes = region_village_codes(_region_file(args.region), dict(os.environ))
    store = Store.from_url(_database_url(args))
    try:
        report = import_subscriber_file(store, path, codes, region_name)
    finally:
        store.close()
    text = format_import_report(path, report)
    if not report.ok:
        print(text, file=sys.stderr)
        return EXIT_ERROR
    print(text)
    return EXIT_OK


def cmd_subscribers_export(args: argparse.Namespace) -> int:
    """Write every subscription with its consent and opt-out state as CSV, for the data owner."""
    from ews.store.repository import Store
    from ews.subscribers import export_subscriber_file, subscribers_csv

    store = Store.from_url(_database_url(args))
    try:
        if args.out:
            n = export_subscriber_file(store, Path(args.out))
            print(f"ews subscribers export: {n} subscription(s) written to {args.out}", file=sys.stderr)
        else:
            sys.stdout.write(subscribers_csv(store))
    finally:
        store.close()
    return EXIT_OK


def cmd_subscribers_opt_out(args: argparse.Namespace) -> int:
    """Record opt-outs for the numbers in a file (one per line; ``-`` reads standard input).

    Numbers are read from a file, not the command line, so they stay out of shell history and process
    lists. Lines that are not valid numbers are reported by line number only.
    """
    from datetime import UTC, datetime

    from ews.store.repository import Store

    try:
        source = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataValidationError(
            f"{args.file}: not UTF-8 (byte {exc.start}); save it as UTF-8 and run the opt-out again"
        ) from None
    now = datetime.now(UTC)
    changed = unknown = 0
    bad: list[int] = []
    store = Store.from_url(_database_url(args))
    try:
        for line_no, line in enumerate(source.splitlines(), start=1):
            number = line.strip()
            if not number or number.startswith("#"):
                continue
            try:
                if store.opt_out(number, args.source, now):
                    changed += 1
                else:
                    unknown += 1
            except EwsError:
                bad.append(line_no)
    finally:
        store.close()
    print(f"ews subscribers opt-out: {changed} number(s) opted out, {unknown} unknown or already out")
    if bad:
        print(f"  not a valid number on line(s) {', '.join(map(str, bad))}: nothing recorded for them", file=sys.stderr)
        return EXIT_PARTIAL
    return EXIT_OK


def send_channels(args: argparse.Namespace) -> tuple[dict[str, Channel], str]:
    """Twilio SMS/WhatsApp when TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN are set, else the dry-run outbox."""
    from ews.channels.setup import TwilioSettings, delivery_channels

    outbox = Path(args.outbox) if args.outbox else Path(".ews") / "outbox" / "send.jsonl"
    channels, where = delivery_channels(TwilioSettings.from_env(os.environ), outbox=outbox, timeout=args.timeout)
    if "dry-run" in where:
        where = f"dry-run outbox {outbox} (no TWILIO_ACCOUNT_SID/AUTH_TOKEN)"
    return channels, where


def cmd_send(args: argparse.Namespace) -> int:
    """Deliver queued messages: once until the queue is empty (``--once``), or keep polling."""
    import time

    from ews.dispatch import DEFAULT_BATCH, Dispatcher
    from ews.store.repository import Store

    if args.lease < 2 * args.timeout:
        raise EwsError(
            f"--lease {args.lease} must be at least twice --timeout {args.timeout}: a send must finish inside its "
            "lease, or another worker could take the row over and send it again"
        )
    if args.settle < args.timeout:
        raise EwsError(
            f"--settle {args.settle} must be at least --timeout {args.timeout}: Twilio may complete a create after "
            "the client gave up, and a reconciliation before then would send the message twice"
        )
    if args.batch is not None and args.batch < 1:
        raise EwsError(f"--batch {args.batch} must be a positive number of rows")
    channels, where = send_channels(args)
    rates = {"sms": args.rate_sms, "whatsapp": args.rate_whatsapp}
    store = Store.from_url(_database_url(args))
    failed = 0
    try:
        dispatcher = Dispatcher(
            store, channels, worker=args.worker, lease_seconds=args.lease, settle_seconds=args.settle,
            batch=DEFAULT_BATCH if args.batch is None else args.batch, rates=rates, max_backoff=args.max_backoff,
        )  # fmt: skip
        print(f"ews send: worker {args.worker} -> {where}", file=sys.stderr)
        while True:
            report = dispatcher.run(until_empty=args.once, max_wait=args.max_wait)
            failed += report.failed
            if report.sent or report.failed or report.expired or report.opted_out or report.unsure or args.once:
                print(
                    f"ews send: sent {report.sent}, failed {report.failed}, expired {report.expired}, "
                    f"opted out {report.opted_out}, retried {report.retried}, outcome unknown {report.unsure}, "
                    f"reconciled {report.reconciled_sent} sent / {report.reconciled_requeued} requeued"
                    + (f", {report.pending} still waiting" if report.pending else ""),
                    file=sys.stderr,
                )
            if args.once:
                if failed:
                    print(f"ews send: {failed} message(s) failed for good: see ews alerts show", file=sys.stderr)
                return EXIT_PARTIAL if failed or report.pending else EXIT_OK
            time.sleep(args.poll)
    finally:
        store.close()


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the Twilio webhooks, the command center's login, JSON API and dashboard until interrupted."""
    import uvicorn

    from ews.center.reports import ReportIntake
    from ews.config import open_region
    from ews.store.repository import Store
    from ews.web.app import create_app
    from ews.web.auth import WebSettings

    token = os.environ.get("TWILIO_AUTH_TOKEN", "")
    public = os.environ.get("EWS_PUBLIC_URL", "")
    if bool(token) != bool(public):
        raise EwsError(
            "ews serve: the Twilio webhooks need both TWILIO_AUTH_TOKEN (to verify signatures) and EWS_PUBLIC_URL "
            "(the URL Twilio calls); set both, or neither to serve only the dashboard and API"
        )
    if not token:
        print(
            "ews serve: WARNING: TWILIO_AUTH_TOKEN and EWS_PUBLIC_URL are not set: the Twilio webhooks refuse every "
            "request (no delivery statuses, replies, acknowledgements or reports by WhatsApp/SMS are received)",
            file=sys.stderr,
        )
        public = f"http://{args.host}:{args.port}"
    if args.insecure_cookies and args.host not in ("127.0.0.1", "localhost", "::1"):
        raise EwsError(
            f"--insecure-cookies sends the session cookie over plain http: only for --host 127.0.0.1, not {args.host}"
        )
    settings = WebSettings.from_env(os.environ, secure_cookies=not args.insecure_cookies)
    if settings.secret_generated:
        print(
            "ews serve: WARNING: EWS_SECRET_KEY is not set; a random key is used, so signed links and login limits "
            "do not survive a restart",
            file=sys.stderr,
        )
    configs = {}
    for value in args.regions or []:
        config = open_region(_region_file(value), os.environ)
        if config.id in configs:
            raise EwsError(f"--region {value}: region {config.id!r} is given twice")
        configs[config.id] = config
    # The report desks: each region's routing rules and its villages (read once) to place reports.
    reports = ReportIntake.from_configs(configs.values()) if configs else None
    store = Store.from_url(_database_url(args))
    try:
        app = create_app(store, token or None, public, settings=settings, region_configs=configs, reports=reports)
        uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    finally:
        store.close()
    return EXIT_OK


def _read_password(args: argparse.Namespace) -> str:
    """The new password: one line of standard input (--password-stdin) or typed twice, never an argument."""
    import getpass

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise EwsError("the two passwords differ; nothing was changed")
    if len(password) < 12:
        raise EwsError("a password needs at least 12 characters; nothing was changed")
    return password


def cmd_users(args: argparse.Namespace) -> int:
    """Command-center users: add, list, change a password, disable (each change in the audit log)."""
    from ews.store.repository import Store
    from ews.web.auth import hash_password

    store = Store.from_url(_database_url(args))
    actor = os.environ.get("USER", "cli")
    try:
        if args.action == "list":
            for u in store.users():
                state = "active" if u.active else "disabled"
                print(f"{u.username}\t{u.role}\t{','.join(u.regions)}\t{u.language}\t{state}")
            return EXIT_OK
        if args.action == "add":
            regions = [r.strip() for r in args.regions.split(",") if r.strip()]
            password = _read_password(args)
            user = store.create_user(
                args.name, hash_password(password), args.role, regions, args.language, at=datetime.now(UTC)
            )
            detail = {"role": user.role, "regions": list(user.regions), "via": "cli"}
            store.record_audit(actor, "admin", "user.add", f"user:{user.username}", detail=detail)
            print(f"user {user.username} added: {user.role}, regions {','.join(user.regions)}")
        elif args.action == "passwd":
            if store.user_by_name(args.name) is None:
                raise EwsError(f"there is no user {args.name!r} (ews users list)")
            store.set_password(args.name, hash_password(_read_password(args)))
            store.record_audit(actor, "admin", "user.passwd", f"user:{args.name}", detail={"via": "cli"})
            print(f"user {args.name}: password changed, every session of the user ended")
        else:
            store.deactivate(args.name)
            store.record_audit(actor, "admin", "user.disable", f"user:{args.name}", detail={"via": "cli"})
            print(f"user {args.name} disabled, every session of the user ended")
    finally:
        store.close()
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``ews``."""
    parser = argparse.ArgumentParser(prog="ews", description="Impact-based early warning for Indonesia.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details (never phone numbers)")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run once on the synthetic demo region and warning")
    demo.add_argument("--out", default="out/demo", help="output folder (replaced atomically)")
    demo.add_argument("--work", default=".ews/demo", help="where the synthetic inputs are generated")
    demo.add_argument("--at", help="pretend the time is this ISO 8601 instant (default: now)")
    demo.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    demo.set_defaults(func=cmd_demo)

    run = sub.add_parser("run", help="run for a region on BMKG warnings, rain rasters, forecasts and earthquakes")
    run.add_argument("--region", required=True, help="regions/<id>.yaml or the region id")
    run.add_argument(
        "--cap",
        nargs="+",
        default=[],
        help="CAP file, RSS index, folder, URL, or 'bmkg' / 'bmkg:en' (live)",
    )
    run.add_argument(
        "--rain", nargs="+", default=[],
        help="rain raster(s): GeoTIFF/COG, NetCDF, GSMaP .dat.gz, IMERG HDF5, a folder of one product, or a product "
        "on a server: gsmap-nrt:<base URL>, imerg-early:<base URL> or <N>min:<URL template> (the steps of the last "
        "24 h are downloaded and cached in --cache-dir)",
    )  # fmt: skip
    run.add_argument(
        "--forecast", nargs="+", default=[],
        help="BMKG forecasts: adm4 JSON or DigitalForecast XML files, folders, URLs, 'bmkg' (the region's "
        "DigitalForecast, live) or 'adm4' (the village forecasts of forecast.adm4_villages, live, paced; "
        "$EWS_BMKG_ADM4_URL for a mirror)",
    )  # fmt: skip
    run.add_argument(
        "--quakes", nargs="+", default=[],
        help="BMKG earthquake feeds: files, folders, URLs, or 'bmkg' (live autogempa, gempaterkini, gempadirasakan)",
    )  # fmt: skip
    run.add_argument(
        "--cache-dir", help="zonal weights and downloaded rain steps (default: $EWS_CACHE_DIR or .ews/cache)"
    )
    run.add_argument("--out", help="output folder (default out/<region id>)")
    run.add_argument("--at", help="evaluate as of this ISO 8601 instant (default: now); for replaying old alerts")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    run.add_argument("--database", help="SQLAlchemy URL (default: $EWS_DATABASE_URL or sqlite:///.ews/ews.db)")
    run.add_argument("--outbox", help="dry-run channel file (default .ews/outbox/<region>.jsonl)")
    run.add_argument("--queue-only", action="store_true", help="queue messages for `ews send` instead of the outbox")
    run.add_argument(
        "--worker", help="run the cycle in the `ews worker` at this URL, warm (default: $EWS_WORKER_URL; none: here)"
    )
    run.add_argument(
        "--worker-timeout", type=float, default=1800.0, help="seconds to wait for the worker's answer (default 1800)"
    )
    run.set_defaults(func=cmd_run)

    worker = sub.add_parser(
        "worker", help="serve cycles on request, keeping the prepared region, caches and store between them"
    )
    worker.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    worker.add_argument("--port", type=int, default=8790, help="port (default 8790)")
    worker.add_argument("--any-host", action="store_true", help="allow a --host other than the loopback interface")
    worker.add_argument("--database", help="SQLAlchemy URL (default: $EWS_DATABASE_URL or sqlite:///.ews/ews.db)")
    worker.add_argument("--cache-dir", help="zonal weights and other caches (default: $EWS_CACHE_DIR or .ews/cache)")
    worker.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    worker.set_defaults(func=cmd_worker)

    alerts = sub.add_parser("alerts", help="list alerts; approve or reject those held for review")
    alerts_sub = alerts.add_subparsers(dest="action", required=True)
    lst = alerts_sub.add_parser("list", help="active alerts, pending reviews and counts")
    lst.add_argument("--region", help="region id or file (default: the regions with pending reviews)")
    lst.add_argument("--database", help="SQLAlchemy URL (default: $EWS_DATABASE_URL or sqlite:///.ews/ews.db)")
    lst.set_defaults(func=cmd_alerts_list)
    show = alerts_sub.add_parser("show", help="one thread: warnings, villages, deliveries and failed messages")
    show.add_argument("thread", help="thread id (see ews alerts list)")
    show.add_argument("--region", required=True, help="region id (jawa-timur) or file (regions/jawa-timur.yaml)")
    show.add_argument("--database", help="SQLAlchemy URL (default: $EWS_DATABASE_URL or sqlite:///.ews/ews.db)")
    show.set_defaults(func=cmd_alerts_show)
    for action in ("approve", "reject"):
        dec = alerts_sub.add_parser(action, help=f"{action} what the review gate holds: threads, versions or all")
        dec.add_argument(
            "targets", nargs="*", metavar="THREAD|ID",
            help="thread ids (all their pending villages at once) or alert version ids (see ews alerts list)",
        )  # fmt: skip
        dec.add_argument("--all", action="store_true", help=f"{action} everything pending in the region")
        dec.add_argument(
            "--region", required=True, help="regions/<id>.yaml or the region id (an approved alert is sent at once)"
        )
        dec.add_argument("--by", default=os.environ.get("USER", "analyst"), help="who decides (kept in the store)")
        dec.add_argument("--database", help="SQLAlchemy URL (default: $EWS_DATABASE_URL or sqlite:///.ews/ews.db)")
        dec.add_argument("--outbox", help="dry-run channel file (default .ews/outbox/<region>.jsonl)")
        dec.add_argument("--queue-only", action="store_true", help="queue for `ews send` instead of the outbox")
        dec.set_defaults(func=cmd_alerts_decide)
    can = alerts_sub.add_parser("cancel", help="cancel the active alerts of a thread; everyone alerted is told")
    can.add_argument("thread", help="thread id (see ews alerts list), e.g. ews.rain.jawa-timur")
    can.add_argument("--region", required=True, help="regions/<id>.yaml or the region id")
    can.add_argument("--reason", required=True, help="why (kept in the store and the CAP Cancel)")
    can.add_argument("--by", default=os.environ.get("USER", "analyst"), help="who cancels (kept in the store)")
    can.add_argument("--at", help="ISO 8601 instant of the cancel (default: now)")
    can.add_argument("--out", help="output folder (default out/<region id>)")
    can.add_argument("--database", help="SQLAlchemy URL (default: $EWS_DATABASE_URL or sqlite:///.ews/ews.db)")
    can.add_argument("--outbox", help="dry-run channel file (default .ews/outbox/<region>.jsonl)")
    can.add_argument("--queue-only", action="store_true", help="queue for `ews send` instead of the outbox")
    can.set_defaults(func=cmd_alerts_cancel)

    aff = sub.add_parser("affected", help="list the areas a warning touches")
    aff.add_argument("--cap", required=True, help="CAP file, RSS index, folder or URL")
    aff.add_argument("--boundaries", required=True, help="GeoJSON, GeoPackage, Shapefile, GeoParquet or a folder")
    aff.add_argument("--id-field", default="kode")
    aff.add_argument("--name-field", default="nama")
    aff.add_argument("--population-field", help="field with people per area, to print population_exposed")
    aff.add_argument("--min-fraction", type=float, default=0.0, help="hide areas covered less than this (0-1)")
    aff.add_argument("--format", choices=("csv", "geojson"), default="csv")
    aff.set_defaults(func=cmd_affected)

    zon = sub.add_parser("zonal", help="exact zonal statistics of a raster per village (one row per village)")
    zon.add_argument("raster", help="GeoTIFF/COG, NetCDF, GSMaP .dat.gz or IMERG HDF5 (or a folder of one product)")
    zon.add_argument("--boundaries", required=True, help="GeoJSON, GeoPackage, Shapefile, GeoParquet or a folder")
    zon.add_argument("--id-field", default="kode")
    zon.add_argument("--name-field", default="nama")
    zon.add_argument("--stats", default="mean,max", help="comma-separated: mean, max, min, sum, count, "
                     "valid_fraction, frac_above:<value> (default mean,max)")  # fmt: skip
    zon.add_argument("--band", type=int, default=1, help="band / time step, from 1 (default 1); any raster")
    zon.add_argument("--hours", type=float, help="instead of a band: the rain total (mm) of the last N hours "
                     "(1, 3, 6, 24) ending at the file's last step; needs rain units, times and a step")  # fmt: skip
    zon.add_argument("--units", help="units of the values when the file has none (rain: mm/h, mm/hr, kg m-2 s-1, "
                     "mm/3h, mm/day; plain statistics: any label)")  # fmt: skip
    zon.add_argument("--time", help="ISO 8601 start of the first band/step when the file has none "
                     "(e.g. 2026-09-28T09:30Z)")  # fmt: skip
    zon.add_argument("--time-pattern", help="read the start from the file name: gsmap, imerg (both also found "
                     "without this flag) or a strftime pattern such as 'hujan_%%Y%%m%%d_%%H%%M' (UTC)")  # fmt: skip
    zon.add_argument("--step-hours", type=float, help="length of each time step when the file does not say")
    zon.add_argument("--variable", help="the variable to read from a NetCDF/HDF5 file")
    zon.add_argument("--population-field", help="field with people per area: adds population_frac_above_*")
    zon.add_argument("--cache-dir", help="keep the coverage weights here for the next raster on the same grid")
    zon.add_argument("--format", choices=("csv", "geojson"), default="csv")
    zon.set_defaults(func=cmd_zonal)

    subs = sub.add_parser("subscribers", help="import or export residents' subscriptions (personal data)")
    subs_sub = subs.add_subparsers(dest="action", required=True)
    database_help = "SQLAlchemy URL of the ews database (default: $EWS_DATABASE_URL or sqlite:///.ews/ews.db)"
    imp = subs_sub.add_parser("import", help="import a subscribers CSV, all rows or none")
    imp.add_argument("file", metavar="FILE.csv", help="columns phone, village_code, language, channel, consent_*")
    imp.add_argument("--region", help="regions/<id>.yaml or id: reject villages outside its boundaries")
    imp.add_argument("--database", help=database_help)
    imp.set_defaults(func=cmd_subscribers_import)
    exp = subs_sub.add_parser("export", help="write every subscription with its opt-out state as CSV")
    exp.add_argument("--out", help="CSV file to write (atomically); default: standard output")
    exp.add_argument("--database", help=database_help)
    exp.set_defaults(func=cmd_subscribers_export)
    out = subs_sub.add_parser("opt-out", help="record opt-outs (numbers read from a file, one per line)")
    out.add_argument("file", help="file with one number per line, or - for standard input")
    out.add_argument("--source", required=True, help="how they opted out, kept as evidence (e.g. 'call to BPBD')")
    out.add_argument("--database", help=database_help)
    out.set_defaults(func=cmd_subscribers_opt_out)

    send = sub.add_parser("send", help="deliver queued messages (Twilio when configured, else the dry-run outbox)")
    send.add_argument("--once", action="store_true", help="stop when the queue is empty (default: keep polling)")
    send.add_argument("--worker", default=f"ews-send-{os.getpid()}", help="this worker's name (kept on its leases)")
    send.add_argument("--lease", type=float, default=120.0, help="seconds a worker holds a row before it is taken over")
    send.add_argument(
        "--settle",
        type=float,
        default=120.0,
        help="seconds after an unknown outcome (time-out, crash) before Twilio is asked whether the "
        "message exists: a create can complete after the client gave up (default 120)",
    )
    send.add_argument(
        "--max-backoff",
        type=float,
        default=300.0,
        help="longest wait between retries of a message (Retry-After is honoured beyond it)",
    )
    send.add_argument(
        "--max-wait",
        type=float,
        default=None,
        help="with --once: stop waiting for retries and settles after this many seconds",
    )
    send.add_argument("--batch", type=int, default=None, help="rows leased at a time (default: the dispatcher's, 200)")
    send.add_argument("--timeout", type=float, default=15.0, help="seconds per Twilio request")
    send.add_argument("--rate-sms", type=float, default=None, help="SMS per second (default: no limit)")
    send.add_argument("--rate-whatsapp", type=float, default=None, help="WhatsApp messages per second")
    send.add_argument("--poll", type=float, default=2.0, help="seconds between polls without --once")
    send.add_argument("--outbox", help="dry-run outbox file when Twilio is not configured")
    send.add_argument("--database", help=database_help)
    send.set_defaults(func=cmd_send)

    serve = sub.add_parser("serve", help="serve the Twilio webhooks and the command center (login, API, dashboard)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--database", help=database_help)
    serve.add_argument(
        "--region", "--region-file", dest="regions", action="append", metavar="REGION",
        help="a region to serve (regions/<id>.yaml or the id); repeat for several. Approvals and the dashboard's "
        "map need it",
    )  # fmt: skip
    serve.add_argument(
        "--insecure-cookies", action="store_true",
        help="session cookies without Secure, for plain http on 127.0.0.1 only (the demo: open "
        "http://127.0.0.1:8080/login); behind https never use it",
    )  # fmt: skip
    serve.set_defaults(func=cmd_serve)

    users = sub.add_parser("users", help="command-center users: add, list, passwd, disable")
    users_sub = users.add_subparsers(dest="action", required=True)
    u_add = users_sub.add_parser("add", help="add a user (the password is read from stdin or typed twice)")
    u_add.add_argument("name", help="user name (1-64 characters)")
    u_add.add_argument("--role", required=True, choices=("viewer", "operator", "analyst", "admin"))
    u_add.add_argument(
        "--regions", required=True,
        help="comma-separated code prefixes the user sees (35.78,35.15; 35 for a province) or region ids, or *",
    )  # fmt: skip
    u_add.add_argument("--language", choices=("id", "en"), default="id")
    u_list = users_sub.add_parser("list", help="every user with role, regions, language and state")
    u_pw = users_sub.add_parser("passwd", help="set a new password (ends the user's sessions)")
    u_pw.add_argument("name")
    u_off = users_sub.add_parser("disable", help="disable a user (kept for the audit log; ends its sessions)")
    u_off.add_argument("name")
    for p in (u_add, u_pw):
        p.add_argument("--password-stdin", action="store_true", help="read the password from one line of stdin")
    for p in (u_add, u_list, u_pw, u_off):
        p.add_argument("--database", help=database_help)
        p.set_defaults(func=cmd_users)

    tagana = sub.add_parser("tagana", help="Tagana mobilisations: page the due escalation steps, print the board")
    tagana_sub = tagana.add_subparsers(dest="action", required=True)
    t_esc = tagana_sub.add_parser("escalate", help="page every due step of open mobilisations, once")
    t_board = tagana_sub.add_parser("board", help="the Tagana board: counts and every live mobilisation")
    t_board.add_argument("--region", action="append", help="only this region id or code prefix (repeatable)")
    for p in (t_esc, t_board):
        p.add_argument("--database", help=database_help)
    t_esc.set_defaults(func=cmd_tagana_escalate)
    t_board.set_defaults(func=cmd_tagana_board)

    from ews.center.commands import add_report_commands  # the command group of the report queue

    add_report_commands(sub, database_help)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ews`` command (exit status: see the module docstring)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        code: int = args.func(args)
    except EwsError as exc:
        print(f"ews {args.command}: error: {exc}", file=sys.stderr)
        code = getattr(exc, "exit_code", EXIT_ERROR)  # a worker's error: as the run there would have exited
        return code if isinstance(code, int) else EXIT_ERROR
    except OSError as exc:  # the machine refused: a path that cannot be written, a full disk
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"ews {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"ews {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        text = mask_phone_like(f"{type(exc).__name__}: {exc}").splitlines()
        print(
            f"ews {args.command}: internal error: {text[0] if text else type(exc).__name__}: this is a bug in ews, "
            "please report it" + ("" if args.verbose else " (run with -v for the traceback)"),
            file=sys.stderr,
        )
        if args.verbose:
            print(mask_phone_like(traceback.format_exc()), file=sys.stderr)
        return EXIT_INTERNAL
    return code


if __name__ == "__main__":
    sys.exit(main())

"""The demo's data for the dashboard tests: the synthetic region run once with an Awas review gate, and users.

``ews demo`` sends everything at once; the dashboard's review queue needs something held, so the same inputs
run through the same pipeline with ``alerts: {review_levels: [Awas]}`` added to the demo's region file.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi import FastAPI

from ews.channels.outbox import FileOutbox
from ews.config import open_region
from ews.pipeline import run_slice
from ews.sources import HazardSources
from ews.store.repository import Store
from ews.synthetic import synthetic_bounds, write_synthetic_region, write_synthetic_warning
from ews.synthetic_rain import write_synthetic_rain
from ews.web.app import create_app
from ews.web.auth import WebSettings

NOW = datetime(2026, 12, 2, 13, 40, tzinfo=UTC)


@dataclass(frozen=True)
class DemoData:
    """Where the demo run left its region file and database."""

    region_file: Path
    database_url: str
    now: datetime


def demo_data(work: Path, now: datetime = NOW) -> DemoData:
    """Generate the demo region, warning and rain into ``work`` and run them once into ``work/ews.db``."""
    region_file = write_synthetic_region(work / "region")
    with region_file.open("a", encoding="utf-8") as f:
        f.write("alerts: {review_levels: [Awas]}\n")
    warning = write_synthetic_warning(work / "warnings", now)
    hour = now.replace(minute=0, second=0, microsecond=0)
    rain = write_synthetic_rain(
        work / "rain", region_bounds=synthetic_bounds(), start=hour - timedelta(hours=24), hours=24,
        formats=("geotiff",),
    )["geotiff"]  # fmt: skip
    url = f"sqlite:///{work / 'ews.db'}"
    config = open_region(region_file, {})
    store = Store.from_url(url)
    try:
        run_slice(
            config, str(warning), work / "out", now=now, store=store,
            channel=FileOutbox(work / "outbox.jsonl"), sources=HazardSources(rain=(str(rain),)),
            cache_dir=work / "cache",
        )  # fmt: skip
    finally:
        store.close()
    return DemoData(region_file, url, now)


def dashboard_app(store: Store, region_files: list[Path]) -> FastAPI:
    """``ews serve``'s application over ``store`` for the regions' files (plain-http cookies: loopback only)."""
    configs = {c.id: c for c in (open_region(f, {}) for f in region_files)}
    settings = WebSettings(b"browser-test-secret-key-0123456789abcdef", secure_cookies=False)
    return create_app(store, "twilio-token", "http://127.0.0.1", settings=settings, region_configs=configs)

"""Rain from a URL template: GSMaP NRT and IMERG Early served on loopback in their producers' layouts.

The servers hold synthetic files written in the real formats (GSMaP NRT hourly gzip, NASA's IMERG GIS
GeoTIFFs) under the real folder layouts (JAXA ``realtime/hourly/YYYY/MM/DD/``, NASA ``imerg/gis/early/YYYY/MM/``),
with the newest steps not published yet, as in real life (these products appear hours late).
"""

from __future__ import annotations

import http.server
import json
import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import pytest

from ews.config import open_region
from ews.ingest.rain_urls import parse_rain_url, rain_steps
from ews.pipeline import fetch_sources, open_region_data
from ews.sources import HazardSources, assess_hazards, load_staged
from ews.synthetic import synthetic_bounds, write_synthetic_region
from ews.synthetic_rain import gsmap_name, imerg_gis_name, write_synthetic_rain

NOW = datetime(2026, 11, 28, 15, 7, tzinfo=UTC)
LOOKBACK = timedelta(hours=27)  # 24 h plus the default rain.max_age_minutes (180)
# The first step the run wants: the one holding NOW - 27 h (12:07 the day before) -> 12:00; the newest: 14:00-15:00.
FIRST = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


class Producer(http.server.BaseHTTPRequestHandler):
    """A loopback product server: ``files`` by path, ``status`` answers for some paths, every request seen."""

    files: ClassVar[dict[str, bytes]] = {}
    status: ClassVar[dict[str, int]] = {}
    seen: ClassVar[list[str]] = []
    auth: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        self.seen.append(self.path)
        self.auth.append(self.headers.get("Authorization"))
        code = self.status.get(self.path, 200 if self.path in self.files else 404)
        body = self.files.get(self.path, b"") if code == 200 else b"error"
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def producer() -> Iterator[tuple[str, type[Producer]]]:
    handler = type("P", (Producer,), {"files": {}, "status": {}, "seen": [], "auth": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def rain_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """27 hours of synthetic storms over the demo region: GSMaP hourly files and IMERG GIS half-hourly files."""
    folder = tmp_path_factory.mktemp("rain")
    return write_synthetic_rain(
        folder, region_bounds=synthetic_bounds(), start=FIRST, hours=27, formats=("gsmap", "imerg-gis")
    )


@pytest.fixture
def region(tmp_path: Path) -> Path:
    path = write_synthetic_region(tmp_path / "region")
    # NASA's IMERG GIS files carry no units: the rate in 0.1 mm/h (PPS README.GIS) is said in the region file.
    with path.open("a", encoding="utf-8") as handle:
        handle.write('rain:\n  products:\n    - {match: "3B-HHR-E*.30min.tif", units: "0.1 mm/hr"}\n')
    return path


def stage(source: str, run_dir: Path, cache: Path, now: datetime, region: Path) -> dict[str, object]:
    config = open_region(region)
    return fetch_sources(HazardSources(rain=(source,)), run_dir, config=config, now=now, cache_dir=cache)


def levels(run_dir: Path, region: Path, now: datetime, cache: Path) -> tuple[dict[str, str], list[dict[str, str]]]:
    """Each village's rain level, and the problems, from what a run staged."""
    config = open_region(region)
    out = assess_hazards(open_region_data(config), run_dir, now, cache_dir=cache)
    rain = [m for m in out.messages if "rain" in m.warning.identifier]
    assert len(rain) <= 1, out
    return ({v.code: v.level.name for v in rain[0].villages} if rain else {}), out.problems


def publish_gsmap(handler: type[Producer], files: Path, until: datetime) -> None:
    """JAXA's layout: /realtime/hourly/YYYY/MM/DD/gsmap_nrt.YYYYMMDD.HH00.dat.gz, for the hours before ``until``."""
    for path in sorted(files.iterdir()):
        start = datetime.strptime(path.name[10:23], "%Y%m%d.%H%M").replace(tzinfo=UTC)
        if start < until:
            handler.files[f"/realtime/hourly/{start:%Y/%m/%d}/{path.name}"] = path.read_bytes()


def test_gsmap_steps_are_fetched_once_cached_and_read_as_the_same_files_on_disk(
    producer: tuple[str, type[Producer]], rain_files: dict[str, Path], region: Path, tmp_path: Path
) -> None:
    url, handler = producer
    # Published up to the 13:00-14:00 file; 14:00-15:00 (ended 7 min ago) is not out yet: 404, not an error.
    publish_gsmap(handler, rain_files["gsmap"], until=datetime(2026, 11, 28, 14, 0, tzinfo=UTC))
    cache = tmp_path / "cache"
    summary = stage(f"gsmap-nrt:{url}/realtime", tmp_path / "run1", cache, NOW, region)

    wanted = [FIRST + timedelta(hours=h) for h in range(27)]  # 12:00 the day before .. 14:00 today
    assert handler.seen == [f"/realtime/hourly/{t:%Y/%m/%d}/{gsmap_name(t)}" for t in wanted]
    assert summary["rain_files"] == {"downloaded": 26, "cached": 0, "not_published": 1}
    staged, problems = load_staged(tmp_path / "run1")
    assert problems == []
    (folder,) = staged["rain"]
    assert sorted(p.name for p in Path(folder).iterdir()) == sorted(gsmap_name(t) for t in wanted[:-1])

    # Ten minutes later the same steps are wanted: only the one not published yet is asked for again.
    handler.seen.clear()
    later = NOW + timedelta(minutes=10)
    summary2 = stage(f"gsmap-nrt:{url}/realtime", tmp_path / "run2", cache, later, region)
    assert handler.seen == [f"/realtime/hourly/2026/11/28/{gsmap_name(wanted[-1])}"]
    assert summary2["rain_files"] == {"downloaded": 0, "cached": 26, "not_published": 1}

    # The same files dropped in a folder give every village the same level.
    on_disk = tmp_path / "drop"
    on_disk.mkdir()
    for t in wanted[:-1]:
        shutil.copyfile(rain_files["gsmap"] / gsmap_name(t), on_disk / gsmap_name(t))
    fetch_sources(HazardSources(rain=(str(on_disk),)), tmp_path / "disk", config=open_region(region), now=later)
    by_url, url_problems = levels(tmp_path / "run2", region, later, cache)
    by_disk, _ = levels(tmp_path / "disk", region, later, cache)
    assert url_problems == []
    assert by_url == by_disk
    assert {"WASPADA", "SIAGA"} & set(by_url.values())  # the storms reach levels: the comparison is not all NONE


def test_an_old_newest_file_is_degraded_and_nothing_published_is_degraded(
    producer: tuple[str, type[Producer]], rain_files: dict[str, Path], region: Path, tmp_path: Path
) -> None:
    url, handler = producer
    publish_gsmap(handler, rain_files["gsmap"], until=datetime(2026, 11, 28, 11, 0, tzinfo=UTC))
    # At 15:07 the newest published hour ended at 11:00: 4 h 07 min, more than the 180 min allowed.
    stage(f"gsmap-nrt:{url}/realtime", tmp_path / "run", tmp_path / "cache", NOW, region)
    assert load_staged(tmp_path / "run")[1] == []  # 404s are not problems of the fetch ...
    by_village, problems = levels(tmp_path / "run", region, NOW, tmp_path / "cache")
    assert by_village == {}
    (stale,) = problems  # ... but the newest file is too old: the run is degraded
    assert stale["message"].startswith("DEGRADED: stale source")
    assert "gsmap_nrt.20261128.1000.dat.gz: newest rain ends 2026-11-28T11:00Z" in stale["message"]
    assert "4 h 07 min" in stale["message"]

    handler.files.clear()  # nothing at all under the URL: said, with the URL to check
    stage(f"gsmap-nrt:{url}/realtime", tmp_path / "run-none", tmp_path / "cache-none", NOW, region)
    staged, problems = load_staged(tmp_path / "run-none")
    assert staged["rain"] == []
    (none,) = problems
    assert "no rain file published" in none["message"]
    assert f"{url}/realtime/hourly/2026/11/27/gsmap_nrt.20261127.1200.dat.gz" in none["message"]


def test_imerg_early_steps_that_fail_are_reported_by_url_and_the_others_count(
    producer: tuple[str, type[Producer]], rain_files: dict[str, Path], region: Path, tmp_path: Path
) -> None:
    url, handler = producer
    published = datetime(2026, 11, 28, 13, 30, tzinfo=UTC)  # newest: 13:00-13:30; 13:30, 14:00, 14:30 not out yet
    for path in sorted(rain_files["imerg-gis"].iterdir()):
        start = datetime.strptime(path.name[23:38], "%Y%m%d-S%H%M%S").replace(tzinfo=UTC)
        if start < published:
            handler.files[f"/imerg/gis/early/{start:%Y/%m}/{path.name}"] = path.read_bytes()
    steps = rain_steps(timedelta(minutes=30), NOW, LOOKBACK)
    assert len(steps) == 54
    assert steps[0] == FIRST
    assert steps[-1] == datetime(2026, 11, 28, 14, 30, tzinfo=UTC)
    broken, garbage = (f"/imerg/gis/early/2026/11/{imerg_gis_name(t)}" for t in steps[:2])
    handler.status[broken] = 500
    handler.files[garbage] = b"<!DOCTYPE html><html><body>Please log in</body></html>"
    # NASA's PPS asks for the registered e-mail as user and password: sent as Basic auth, never shown.
    source = f"imerg-early:http://ops%40bpbd.example:ops%40bpbd.example@{url.removeprefix('http://')}/imerg/gis/early"
    summary = stage(source, tmp_path / "run", tmp_path / "cache", NOW, region)

    staged, problems = load_staged(tmp_path / "run")
    assert sorted(p["source"] for p in problems) == sorted(url + p for p in (broken, garbage))
    assert all(p["message"].startswith("DEGRADED: rain step not") for p in problems)
    by_source = {p["source"]: p["message"] for p in problems}
    assert "HTTP 500" in by_source[url + broken]
    assert "not a raster" in by_source[url + garbage]
    assert "<!DOCTYPE html>" in by_source[url + garbage]
    record = (tmp_path / "run" / "sources.json").read_text(encoding="utf-8")
    assert "bpbd.example" not in record
    assert "bpbd.example" not in json.dumps(summary)
    assert set(handler.auth) == {"Basic b3BzQGJwYmQuZXhhbXBsZTpvcHNAYnBiZC5leGFtcGxl"}  # base64 of user:password
    assert summary["rain_files"] == {"downloaded": 49, "cached": 0, "not_published": 3}  # 54 = 49 + 2 failed + 3

    # The others count: 49 half hours (the last 24 h whole), levels as from the same files on disk.
    by_url, url_problems = levels(tmp_path / "run", region, NOW, tmp_path / "cache")
    assert [p["source"] for p in url_problems] == [p["source"] for p in problems]
    on_disk = tmp_path / "drop"
    on_disk.mkdir()
    for path in Path(staged["rain"][0]).iterdir():
        shutil.copyfile(path, on_disk / path.name)
    fetch_sources(HazardSources(rain=(str(on_disk),)), tmp_path / "disk", config=open_region(region), now=NOW)
    by_disk, _ = levels(tmp_path / "disk", region, NOW, tmp_path / "cache")
    assert by_url == by_disk
    assert {"WASPADA", "SIAGA"} & set(by_url.values())

    # A failed or garbage step was not cached: the next run asks for it again (the 500 with its one retry), and for
    # the unpublished ones; nothing else.
    handler.seen.clear()
    stage(source, tmp_path / "run2", tmp_path / "cache", NOW + timedelta(minutes=10), region)
    assert sorted(handler.seen) == sorted([broken, broken, garbage] + [
        f"/imerg/gis/early/2026/11/{imerg_gis_name(t)}" for t in steps[-3:]
    ])  # fmt: skip


def test_rain_url_sources_are_checked_before_anything_is_fetched() -> None:
    with pytest.raises(ValueError, match=r"needs its product or step in front"):
        parse_rain_url("https://user:pw@host/gsmap/{time:%Y%m%d%H}.dat.gz")
    with pytest.raises(ValueError, match=r"unknown template field\(s\) hour") as info:
        parse_rain_url("60min:https://user:pw@host/{hour}/{time:%Y%m%d%H}.tif")
    assert "pw" not in str(info.value)
    with pytest.raises(ValueError, match=r"must change with every 60 min step"):
        parse_rain_url("60min:https://host/{time:%Y%m%d}/latest.tif")
    with pytest.raises(ValueError, match=r"does not divide a day"):
        parse_rain_url("7min:https://host/{time:%Y%m%d%H%M}.tif")
    with pytest.raises(ValueError, match=r"unknown rain product 'gsmap'"):
        parse_rain_url("gsmap:https://host/realtime")
    one = parse_rain_url("imerg-early:https://host/early")
    # 23:30 UTC is minute 1410 of the day; the file ends at 23:59:59.
    assert one.url(datetime(2026, 11, 28, 23, 30, tzinfo=UTC)) == (
        "https://host/early/2026/11/3B-HHR-E.MS.MRG.3IMERG.20261128-S233000-E235959.1410.V07B.30min.tif"
    )

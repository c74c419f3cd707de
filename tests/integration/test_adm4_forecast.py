"""BMKG's adm4 village forecasts fetched for the villages a region lists, paced, from a loopback BMKG API.

The server answers in BMKG's URL layout (``/publik/prakiraan-cuaca?adm4=<code>``) with the recorded Kota Bandung
payload (2026-09-24) made into each asked village's: ``lokasi.adm4`` rewritten, and (so that the forecast
reaches a level) its first steps turned into BMKG's thunderstorm, 40 mm in 3 h. The villages are real Kota
Surabaya kelurahan.
"""

from __future__ import annotations

import copy
import http.server
import itertools
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest

from ews.config import open_region
from ews.pipeline import fetch_sources, open_region_data
from ews.sources import HazardSources, assess_hazards, load_staged

AT = datetime(2026, 9, 24, 3, 0, tzinfo=UTC)  # three hours after the recorded payload's analysis (00 UTC)
INTERVAL = 0.05
MISSING = "35.78.12.1006"  # a Kepmendagri code of Pabean Cantian with no polygon in the 2025 boundary files


class BmkgApi(http.server.BaseHTTPRequestHandler):
    """``/publik/prakiraan-cuaca?adm4=<code>``: the payload made for ``code``; codes in ``failing`` answer 500."""

    payload: ClassVar[dict[str, Any]] = {}
    failing: ClassVar[set[str]] = set()
    seen: ClassVar[list[tuple[float, str]]] = []

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        code = parse_qs(parts.query).get("adm4", [""])[0]
        self.seen.append((time.monotonic(), code))
        if parts.path != "/publik/prakiraan-cuaca" or not code:
            self.reply(404, b'{"message": "not found"}')
        elif code in self.failing:
            self.reply(500, b"Internal Server Error")
        else:
            body = copy.deepcopy(self.payload)
            body["lokasi"]["adm4"] = body["data"][0]["lokasi"]["adm4"] = code
            self.reply(200, json.dumps(body).encode())

    def reply(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def bmkg_api(shared_data: Path) -> Iterator[tuple[str, type[BmkgApi]]]:
    recorded = shared_data / "bmkg" / "prakiraan" / "siaga_prakiraan-cuaca_adm4-32.73.01.1001_2026-09-24.json"
    payload = json.loads(recorded.read_text(encoding="utf-8"))
    for step in payload["data"][0]["cuaca"][0][:3]:  # 07:00-16:00 WIB on the 24th: a thunderstorm, 40 mm per 3 h
        step.update(weather=95, weather_desc="Hujan Petir", weather_desc_en="Thunderstorm", tp=40.0)
    handler = type("B", (BmkgApi,), {"payload": payload, "failing": set(), "seen": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/publik/prakiraan-cuaca", handler
    server.shutdown()
    server.server_close()


def test_adm4_villages_are_fetched_paced_and_a_failing_one_is_reported(
    bmkg_api: tuple[str, type[BmkgApi]], jatim_villages_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, handler = bmkg_api
    # When each village's request starts, on the client's monotonic clock (the one the pacing reads): the
    # server's arrival times also carry the scheduler's delays, which a loaded machine makes arbitrary.
    import ews.sources

    real_fetch_adm4 = ews.sources.fetch_adm4
    started: list[float] = []

    def timed_fetch_adm4(codes: Any, *, fetch: Any, **kwargs: Any) -> Any:
        def timed(*args: Any, **kw: Any) -> Any:
            started.append(time.monotonic())
            return fetch(*args, **kw)

        return real_fetch_adm4(codes, fetch=timed, **kwargs)

    monkeypatch.setattr(ews.sources, "fetch_adm4", timed_fetch_adm4)
    layer = jatim_villages_dir / "wilayah_boundaries_kel_35.78.geojson"
    codes = [f["properties"]["kode"] for f in json.loads(layer.read_text(encoding="utf-8"))["features"]][:3]
    ok1, ok2, broken = codes
    handler.failing.add(broken)
    region = tmp_path / "surabaya.yaml"
    region.write_text(
        f"id: surabaya\nname: Jawa Timur\nprovince_code: '35'\nboundaries: {{path: {json.dumps(str(layer))}}}\n"
        f"forecast: {{adm4_villages: [{ok1}, {broken}, {ok2}, '{MISSING}'], adm4_interval_s: {INTERVAL}}}\n",
        encoding="utf-8",
    )
    config = open_region(region)
    summary = fetch_sources(HazardSources(forecast=("adm4",)), tmp_path / "run", config=config, now=AT,
                            adm4_base_url=url)  # fmt: skip

    # Every village asked for in the listed order; the broken one 4 times (fetch_bytes retries a 500 three times).
    firsts = {}
    for when, code in handler.seen:
        firsts.setdefault(code, when)
    assert list(firsts) == [ok1, broken, ok2, MISSING]
    assert [c for _, c in handler.seen].count(broken) == 4
    # Paced: the request for each village starts at least the interval after the previous one started.
    assert len(started) == 4  # one start per village (the broken one's retries are the fetcher's own)
    assert all(b - a >= INTERVAL for a, b in itertools.pairwise(started))

    staged, problems = load_staged(tmp_path / "run")
    assert summary["forecast"] == 1
    assert sorted(p.name for p in Path(staged["forecast"][0]).iterdir()) == sorted(
        f"{c}.json" for c in (ok1, ok2, MISSING)
    )
    (failed,) = problems
    assert failed["source"] == f"{url}?adm4={broken}"
    assert failed["message"].startswith("DEGRADED: village forecast not fetched")
    assert "HTTP 500" in failed["message"]
    assert broken in failed["message"]

    out = assess_hazards(open_region_data(config), tmp_path / "run", AT)
    (message,) = out.messages
    levels = {v.code: v.level.name for v in message.villages}
    # 40 mm / 3 h = 13.3 mm/h is lebat by the hour, but three such steps make 120 mm in 24 h: sangat lebat, Siaga.
    assert levels[ok1] == levels[ok2] == "SIAGA"
    assert broken not in levels
    assert MISSING not in levels  # not in the boundaries: left out, and said so
    assert any(MISSING in n and "not in the region's boundaries" in n for n in out.notes)
    assert [p["source"] for p in out.problems] == [failed["source"]]


def test_a_region_cannot_list_all_villages_or_more_than_a_run_can_fetch(tmp_path: Path) -> None:
    from ews.config import ForecastRules

    with pytest.raises(ValueError, match=r"'all' is not allowed: BMKG allows about 60 requests a minute"):
        ForecastRules(adm4_villages="all")  # type: ignore[arg-type]
    many = [f"35.78.01.{1001 + k}" for k in range(1501)]
    with pytest.raises(ValueError, match=r"1501 villages at 1 s each take 25 min, more than the 25 min"):
        ForecastRules(adm4_villages=many)
    with pytest.raises(ValueError, match=r"'35.78.01' is not a village"):
        ForecastRules(adm4_villages=["35.78.01"])
    assert ForecastRules(adm4_villages=["3578011001", "35.78.01.1001"]).adm4_villages == ("35.78.01.1001",)

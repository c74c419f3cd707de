"""Hardening: hostile feeds, forecasts, redirects, region files and webhook bodies (issue 9, point 8).

Each test feeds ews one input built to crash, hang or mislead it, and checks that the run says so in one
line naming the file (and record), and that everything else of the run still happens: the CAP warning
of the same ``ews run`` is published, the store is unchanged by a refused request.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient
from tests_support import Site, minimal_cap
from twilio.request_validator import RequestValidator

from ews.store.repository import Store, SubscriberRecord
from ews.web.app import create_app
from ews.web.body_limit import MAX_BODY_BYTES

from .conftest import REPO, SURABAYA_BOX, CliResult, write_region

AT = "2026-11-28T18:00:00+07:00"  # inside the CAP warning of minimal_cap (17:00-20:00 WIB)
CAP_ID = "2.49.0.1.360.0.2026.11.28.10.35.001"  # minimal_cap's identifier
TOKEN = "test-auth-token-not-a-secret"  # noqa: S105 - a token for loopback tests only
PUBLIC = "https://ews.example.invalid"
RESIDENT = "+62899900000011"  # fictional: ews reserves +62 8999 00xx xxxx

# A felt M6.0 near Surabaya ten minutes before AT: a record that the run alerts on.
SURABAYA_QUAKE = {
    "Tanggal": "28 Nov 2026",
    "Jam": "17:50:00 WIB",
    "DateTime": "2026-11-28T10:50:00+00:00",
    "Coordinates": "-7.30,112.75",
    "Lintang": "7.30 LS",
    "Bujur": "112.75 BT",
    "Magnitude": "6.0",
    "Kedalaman": "10 km",
    "Wilayah": "Pusat gempa berada di darat Surabaya",
    "Potensi": "Tidak berpotensi tsunami",
}
GOOD_QUAKE_ID = "20261128T105000Z_7.30S_112.75E"
HUGE_NUMBER = "1" * 5001  # Python's int() refuses more than 4,300 digits with a ValueError
DEEP_JSON = "[" * 100_000 + "]" * 100_000  # json.loads raises RecursionError on this


def quake_feed(*records: str) -> str:
    """A gempaterkini-shaped feed from records written as JSON text (so that they can repeat a key)."""
    return '{"Infogempa": {"gempa": [' + ", ".join(records) + "]}}"


def adm4_forecast(code: str, tp: str = "0.4") -> str:
    """A one-step adm4 payload for village ``code``, issued at 00 UTC on the day of AT (fresh at AT)."""
    step = (
        '{"datetime": "2026-11-28T12:00:00Z", "local_datetime": "2026-11-28 19:00:00", "tp": ' + tp + ", "
        '"weather": 3, "analysis_date": "2026-11-28T00:00:00"}'
    )
    return (
        '{"lokasi": {"adm4": "' + code + '", "timezone": "Asia/Jakarta"}, '
        '"data": [{"lokasi": {"adm4": "' + code + '", "timezone": "+0700"}, "cuaca": [[' + step + "]]}]}"
    )


@pytest.fixture
def region(tmp_path: Path, shared_data: Path) -> Path:
    return write_region(tmp_path / "region", shared_data)


@pytest.fixture
def cap_file(tmp_path: Path) -> Path:
    path = tmp_path / "cap" / "surabaya.xml"
    path.parent.mkdir(parents=True)
    path.write_bytes(minimal_cap(SURABAYA_BOX))
    return path


@pytest.fixture
def run_ews(
    ews_cli: Callable[..., CliResult], region: Path, cap_file: Path, tmp_path: Path
) -> Callable[..., tuple[CliResult, Path]]:
    """``run_ews("--quakes", feed)``: ``ews run`` on the Surabaya region and CAP file, at AT; returns (result, out)."""
    runs = iter(range(1000))

    def run(*extra: str | Path) -> tuple[CliResult, Path]:
        n = next(runs)
        out = tmp_path / f"out-{n}"
        result = ews_cli(
            "run", "--region", region, "--cap", cap_file, *extra, "--at", AT, "--out", out, "--quiet",
            "--database", f"sqlite:///{tmp_path / f'ews-{n}.db'}", "--outbox", tmp_path / f"outbox-{n}.jsonl",
            "--cache-dir", tmp_path / "cache",
        )  # fmt: skip
        return result, out

    return run


def assert_cap_warning_published(out: Path) -> None:
    """The CAP warning of the run reached its outputs: report, warning polygons, CAP files, villages."""
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["warnings"] >= 1
    assert CAP_ID in (out / "warnings.geojson").read_text(encoding="utf-8")
    assert any(CAP_ID in f.read_text(encoding="utf-8") for f in (out / "cap").glob("*.xml"))
    rows = (out / "summary.csv").read_text(encoding="utf-8").splitlines()
    assert len(rows) > 1, "summary.csv lists no village"


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


# -- A. parser limits: earthquake feeds -------------------------------------------------------------


def test_a_quake_feed_with_a_5001_digit_number_degrades_the_run_and_the_cap_warning_goes_out(
    run_ews: Callable[..., tuple[CliResult, Path]], tmp_path: Path
) -> None:
    feed = write(tmp_path / "feeds" / "gempaterkini.json", quake_feed('{"Magnitude": ' + HUGE_NUMBER + "}"))
    result, out = run_ews("--quakes", feed)
    assert result.code == 1
    line = result.line_with("DEGRADED", str(feed), "record 0", "Magnitude", "5,001 characters")
    assert "40 characters" in line
    assert_cap_warning_published(out)


def test_a_quake_feed_of_100000_nested_arrays_degrades_the_run_and_the_cap_warning_goes_out(
    run_ews: Callable[..., tuple[CliResult, Path]], tmp_path: Path
) -> None:
    feed = write(tmp_path / "feeds" / "autogempa.json", '{"Infogempa": {"gempa": ' + DEEP_JSON + "}}")
    result, out = run_ews("--quakes", feed)
    assert result.code == 1
    result.line_with("DEGRADED", str(feed), "nested more than 32 levels deep")
    assert_cap_warning_published(out)


def test_a_quake_record_repeating_a_key_is_skipped_and_the_other_records_are_used(
    run_ews: Callable[..., tuple[CliResult, Path]], tmp_path: Path
) -> None:
    good = json.dumps(SURABAYA_QUAKE)
    # Ten minutes earlier, with Magnitude twice: json.loads would keep 9.5 silently.
    other = json.dumps({**SURABAYA_QUAKE, "Jam": "17:40:00 WIB", "DateTime": "2026-11-28T10:40:00+00:00"})
    twice = other.replace('"Magnitude": "6.0"', '"Magnitude": "6.0", "Magnitude": "9.5"')
    feed = write(tmp_path / "feeds" / "gempaterkini.json", quake_feed(good, twice))
    result, out = run_ews("--quakes", feed)
    assert result.code == 1
    line = result.line_with("DEGRADED", str(feed), "record 1")
    assert "key 'Magnitude' appears twice; BMKG's feeds never repeat a key" in line
    assert "skipped" in line
    summary = (out / "summary.csv").read_text(encoding="utf-8")
    assert f"ews.gempa.{GOOD_QUAKE_ID}" in summary  # record 0 was assessed and alerted
    assert "20261128T104000Z" not in summary  # record 1 was not
    assert_cap_warning_published(out)


# -- A. parser limits: forecasts ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "needles"),
    [
        ("adm4-huge.json", adm4_forecast("35.78.01.1001", tp=HUGE_NUMBER), ("data[0].cuaca[0][0].tp", "5,001")),
        ("adm4-deep.json", '{"data": ' + DEEP_JSON + "}", ("nested more than 32 levels deep",)),
        (
            "DigitalForecast-deep.xml",
            "<data><forecast>" + "<a>" * 100_000 + "</a>" * 100_000 + "</forecast></data>",
            ("elements nested more than 32 levels deep",),
        ),
        (
            "DigitalForecast-huge.xml",
            '<data><forecast><issue><timestamp>20261128000000</timestamp></issue><area id="501306" '
            f'latitude="{HUGE_NUMBER}" longitude="112.7"/></forecast></data>',
            ("area 501306", "latitude", "5,001 characters"),
        ),
    ],
)
def test_a_hostile_forecast_file_degrades_the_run_and_the_cap_warning_goes_out(
    run_ews: Callable[..., tuple[CliResult, Path]], tmp_path: Path, name: str, content: str, needles: tuple[str, ...]
) -> None:
    forecast = write(tmp_path / "forecasts" / name, content)
    result, out = run_ews("--forecast", forecast)
    assert result.code == 1
    result.line_with("DEGRADED", str(forecast), *needles)
    assert_cap_warning_published(out)


def test_a_forecast_repeating_a_key_is_not_used_and_the_other_forecasts_are(
    run_ews: Callable[..., tuple[CliResult, Path]], tmp_path: Path
) -> None:
    folder = tmp_path / "forecasts"
    good = write(folder / "a-35.78.01.1001.json", adm4_forecast("35.78.01.1001"))
    twice = adm4_forecast("35.78.01.1002").replace('"tp": 0.4', '"tp": 0.4, "tp": 80')
    bad = write(folder / "b-35.78.01.1002.json", twice)
    result, out = run_ews("--forecast", good, bad)
    assert result.code == 1
    line = result.line_with("DEGRADED", str(bad), "data[0].cuaca[0][0]")
    assert "key 'tp' appears twice" in line
    assert not any(str(good) in p["source"] for p in json.loads((out / "report.json").read_text())["problems"])
    assert_cap_warning_published(out)


# -- B. redirects ---------------------------------------------------------------------------------------


def test_a_feed_redirected_to_another_origin_is_refused_and_the_cap_warning_goes_out(
    run_ews: Callable[..., tuple[CliResult, Path]], sites: Callable[[], tuple[str, type[Site]]]
) -> None:
    mirror, mirror_site = sites()
    elsewhere, elsewhere_site = sites()  # same host, another port: another origin
    elsewhere_site.files["/autogempa.json"] = quake_feed(json.dumps(SURABAYA_QUAKE)).encode()
    mirror_site.moved["/autogempa.json"] = f"{elsewhere}/autogempa.json"
    result, out = run_ews("--quakes", f"{mirror}/autogempa.json")
    assert result.code == 1
    line = result.line_with("DEGRADED", f"{mirror}/autogempa.json", f"{elsewhere}/autogempa.json")
    assert "refused" in line
    assert "fetch.allowed_redirect_hosts" in line
    assert elsewhere_site.seen == []  # never contacted
    assert GOOD_QUAKE_ID not in (out / "summary.csv").read_text(encoding="utf-8")
    assert_cap_warning_published(out)


# -- C. region files --------------------------------------------------------------------------------------

# "Billion laughs": 9 aliases of 9 aliases ... 9 levels deep expand to 9**9 (387 million) strings.
ALIAS_BOMB = "\n".join(
    [
        'lol0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
        *(f"lol{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)),
    ]
)


def test_a_yaml_alias_bomb_in_a_region_file_is_refused_at_once(tmp_path: Path, shared_data: Path) -> None:
    region = write_region(tmp_path / "bomb", shared_data, extra=ALIAS_BOMB + "\n")
    bomb_line = region.read_text(encoding="utf-8").splitlines().index(ALIAS_BOMB.splitlines()[1]) + 1
    # A subprocess, so that a loader that expands aliases again fails this test by its timeout, not by hanging.
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "ews.cli", "run", "--region", str(region), "--cap", str(tmp_path / "none.xml")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path, check=False)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"region file {region} line {bomb_line}: YAML aliases (*l0) are not allowed in region files" in lines[0]
    assert "write the value out" in lines[0]


# -- D. ews serve: request bodies ------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.from_url(f"sqlite:///{tmp_path / 'serve.db'}")
    at = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    s.import_subscribers([SubscriberRecord(RESIDENT, "35.78.01.1001", "id", "whatsapp", "test", at)])
    yield s
    s.close()


def stop_form(padding: int) -> tuple[dict[str, str], dict[str, str]]:
    """A correctly signed STOP from RESIDENT, padded to about ``padding`` bytes: (params, headers)."""
    params = {"MessageSid": "SMbig", "From": f"whatsapp:{RESIDENT}", "Body": "STOP", "Padding": "x" * padding}
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC + "/twilio/inbound", params)
    return params, {"X-Twilio-Signature": signature}


def assert_store_unchanged(store: Store) -> None:
    assert store.inbound() == []
    assert [r.phone for r in store.subscribers()] == [RESIDENT]  # the STOP was not honoured


def test_a_webhook_body_over_the_limit_gets_413_and_changes_nothing(store: Store) -> None:
    client = TestClient(create_app(store, TOKEN, PUBLIC), base_url="http://testserver")
    params, headers = stop_form(2 * MAX_BODY_BYTES)
    answer = client.post("/twilio/inbound", data=params, headers=headers)  # with Content-Length
    assert answer.status_code == 413
    assert "larger than 65536 bytes" in answer.text
    assert_store_unchanged(store)

    def chunks() -> Iterator[bytes]:  # no Content-Length: the body is counted as it arrives
        yield b"MessageSid=SMbig&From=whatsapp%3A%2B62899900000011&Body=STOP&Padding="
        for _ in range(200):
            yield b"x" * 1024

    headers["Content-Type"] = "application/x-www-form-urlencoded"
    answer = client.post("/twilio/inbound", content=chunks(), headers=headers)
    assert answer.status_code == 413
    assert_store_unchanged(store)
    # A webhook of normal size still works.
    small, small_headers = stop_form(10)
    assert client.post("/twilio/inbound", data=small, headers=small_headers).status_code == 200
    assert store.subscribers() == []


@pytest.fixture
def live_server(store: Store) -> Iterator[int]:
    """``ews serve``'s app under a real uvicorn on a loopback port; yields the port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(store, TOKEN, PUBLIC), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(1000):  # up to ~10 s for the server to start listening
        if server.started:
            break
        time.sleep(0.01)
    assert server.started, "uvicorn did not start"
    yield sock.getsockname()[1]
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


def raw_request(port: int, head: bytes, body_chunks: Iterator[bytes]) -> bytes:
    """Send a request over a plain socket (as an attacker would) and return what the server answered."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(head)
        try:
            for chunk in body_chunks:
                conn.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading: what we want
        answer = b""
        try:
            while data := conn.recv(65536):
                answer += data
        except ConnectionResetError:
            pass
    return answer


def test_a_huge_content_length_gets_413_from_uvicorn_before_the_body_is_sent(live_server: int, store: Store) -> None:
    head = (
        b"POST /twilio/inbound HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 10737418240\r\n\r\n"
    )
    answer = raw_request(live_server, head, iter([b"From=whatsapp%3A%2B62899900000011&Body=STOP"]))
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert_store_unchanged(store)


def test_a_chunked_body_over_the_limit_is_cut_off_with_413_by_uvicorn(live_server: int, store: Store) -> None:
    head = (
        b"POST /twilio/inbound HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"x" * 8192
    chunks = iter([b"%x\r\n%s\r\n" % (len(chunk), chunk)] * 64 + [b"0\r\n\r\n"])  # 512 KiB
    answer = raw_request(live_server, head, chunks)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert_store_unchanged(store)

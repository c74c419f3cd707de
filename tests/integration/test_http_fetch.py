"""Every request has a timeout and bounded retries: checked against a loopback server that misbehaves."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from typing import ClassVar

import pytest

from ews.errors import FetchError
from ews.ingest.http import fetch_bytes


class Flaky(http.server.BaseHTTPRequestHandler):
    """Answers from a script: a list of (status, body, delay_seconds), one per request."""

    script: ClassVar[list[tuple[int, bytes, float]]] = []
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        status, body, delay = self.script.pop(0) if self.script else (200, b"late", 0.0)
        self.seen.append(self.path)
        time.sleep(delay)
        try:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting: that is what the timeout test wants

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def flaky() -> Iterator[tuple[str, type[Flaky]]]:
    handler = type("Script", (Flaky,), {"script": [], "seen": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def test_retries_transient_errors_then_succeeds(flaky: tuple[str, type[Flaky]]) -> None:
    url, handler = flaky
    handler.script.extend([(503, b"busy", 0.0), (429, b"slow down", 0.0), (200, b"<rss/>", 0.0)])
    waits: list[float] = []
    assert fetch_bytes(f"{url}/alerts/nowcast/id/rss.xml", retries=3, backoff=0.5, sleep=waits.append) == b"<rss/>"
    assert waits == [0.5, 1.0]  # exponential back-off between the three attempts
    assert len(handler.seen) == 3


def test_gives_up_after_the_last_retry(flaky: tuple[str, type[Flaky]]) -> None:
    url, handler = flaky
    handler.script.extend([(502, b"", 0.0)] * 3)
    with pytest.raises(FetchError, match=r"/x\.xml: failed after 3 attempts \(HTTP 502\)"):
        fetch_bytes(f"{url}/x.xml", retries=2, sleep=lambda _: None)


def test_permanent_error_fails_at_once(flaky: tuple[str, type[Flaky]]) -> None:
    url, handler = flaky
    handler.script.append((404, b"", 0.0))
    with pytest.raises(FetchError, match=r"HTTP 404"):
        fetch_bytes(f"{url}/gone.xml", retries=3, sleep=lambda _: None)
    assert len(handler.seen) == 1


def test_a_hanging_server_times_out(flaky: tuple[str, type[Flaky]]) -> None:
    url, handler = flaky
    handler.script.extend([(200, b"too late", 1.0), (200, b"too late", 1.0)])
    with pytest.raises(FetchError, match=r"failed after 2 attempts \(.*timed out"):
        fetch_bytes(f"{url}/slow.xml", timeout=0.2, retries=1, sleep=lambda _: None)


def test_only_http_urls() -> None:
    with pytest.raises(FetchError, match="only http"):
        fetch_bytes("file:///etc/passwd")

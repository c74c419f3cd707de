"""Fixtures shared by every test folder: the real data, a loopback BMKG server, tiny factories."""

from __future__ import annotations

import functools
import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from tests_support import Site

from ews.testing.databases import scratch_schema

REPO = Path(__file__).resolve().parents[1]


def require(condition: bool, reason: str) -> None:
    """Skip with ``reason`` when ``condition`` fails; in CI (EWS_REQUIRE_SERVICES=1) fail instead."""
    if condition:
        return
    if os.environ.get("EWS_REQUIRE_SERVICES") == "1":
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


def shared_root() -> Path:
    """The real public data (EWS_SHARED_DATA, default ../shared/data from the repo root)."""
    root = Path(os.environ.get("EWS_SHARED_DATA", "../shared/data"))
    return root if root.is_absolute() else (REPO / root).resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder, or a skip naming where it was looked for."""
    root = shared_root()
    require((root / "PROVENANCE.md").is_file(), f"shared data not found at {root}: set EWS_SHARED_DATA")
    return root


@pytest.fixture(scope="session")
def cap_dir(shared_data: Path) -> Path:
    return shared_data / "bmkg" / "cap"


@pytest.fixture(scope="session")
def kec_dir(shared_data: Path) -> Path:
    return shared_data / "boundaries" / "wilayah_boundaries_geojson" / "kec"


@pytest.fixture(scope="session")
def jatim_villages_dir(shared_data: Path) -> Path:
    return shared_data / "boundaries" / "wilayah_boundaries_geojson" / "kel" / "35"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def serve_dir() -> Iterator[object]:
    """Start a loopback HTTP server for a folder: ``url = serve_dir(folder)``; stopped after the test."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(folder: Path) -> str:
        handler = functools.partial(_Quiet, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def sites() -> Iterator[object]:
    """``url, handler = sites()`` starts a loopback :class:`tests_support.Site` on a port of its own (an origin)."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start() -> tuple[str, type[Site]]:
        handler = type("S", (Site,), {"files": {}, "moved": {}, "seen": []})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}", handler

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def bmkg_site(tmp_path: Path, shared_data: Path, serve_dir: object) -> str:
    """A loopback stand-in for www.bmkg.go.id serving the recorded RSS index and CAP files.

    The recorded index (2026-09-24) lists 11 alerts; only the Gorontalo one (CGT20260924002) was
    recorded, so the others answer 404, as a half-published feed would.
    """
    site = tmp_path / "bmkg-site" / "alerts" / "nowcast"
    for lang in ("id", "en"):
        (site / lang).mkdir(parents=True)
        cap = shared_data / "bmkg" / "cap" / f"siaga_cap-{lang}-CGT20260924002_alert.xml"
        (site / lang / "CGT20260924002_alert.xml").write_bytes(cap.read_bytes())
    rss = shared_data / "bmkg" / "rss" / "siaga_nowcast-rss-id_2026-09-24.xml"
    (site / "id" / "rss.xml").write_bytes(rss.read_bytes())
    return serve_dir(tmp_path / "bmkg-site")  # type: ignore[operator, no-any-return]


# -- databases: every store-backed test runs on SQLite (a temp file) and PostgreSQL (a fresh schema) ----

POSTGRES_URL = os.environ.get("EWS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def postgres_admin() -> str:
    """The PostgreSQL URL, after checking once that the server answers."""
    engine = create_engine(POSTGRES_URL)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as exc:
        engine.dispose()
        shown = make_url(POSTGRES_URL).render_as_string(hide_password=True)
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        require(False, f"PostgreSQL not reachable at {shown}: {reason} (set EWS_TEST_POSTGRES_URL)")
    engine.dispose()
    return POSTGRES_URL


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a SQLite file in tmp_path, or a fresh PostgreSQL schema dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ews.db'}"
        return
    admin_url: str = request.getfixturevalue("postgres_admin")
    with scratch_schema(admin_url, "ews_test") as url:
        yield url

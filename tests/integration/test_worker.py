"""``ews worker``: cycles run warm in one process, as ``ews run`` would run them, and refused requests are named."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ews.cli import main
from ews.store import region_cache
from ews.synthetic import synthetic_bounds, write_synthetic_region
from ews.synthetic_rain import write_synthetic_rain
from ews.worker import Worker, WorkerError, call, make_server

T = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[tuple[str, Worker]]:
    served = Worker(f"sqlite:///{tmp_path / 'worker.db'}", tmp_path / "cache")
    server = make_server(served, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", served
    finally:
        server.shutdown()
        server.server_close()
        served.close()


def _health(url: str) -> dict[str, object]:
    with urllib.request.urlopen(f"{url}/health", timeout=10) as response:
        return dict(json.loads(response.read()))


def _rain(tmp_path: Path) -> Path:
    return write_synthetic_rain(
        tmp_path / "rain", region_bounds=synthetic_bounds(), start=T - timedelta(hours=3), hours=3,
        formats=("geotiff",),
    )["geotiff"]  # fmt: skip


def test_cycles_run_warm_in_the_worker_as_ews_run_runs_them(
    tmp_path: Path, worker: tuple[str, Worker], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url, served = worker
    region = write_synthetic_region(tmp_path / "region")
    rain = _rain(tmp_path)
    loads: list[str] = []
    for name in ("_load", "read_boundaries"):  # from the cache folder, or the boundary file itself
        real = getattr(region_cache, name)

        def counted(*args: object, _real: object = real, _name: str = name, **kwargs: object) -> object:
            loads.append(_name)
            return _real(*args, **kwargs)  # type: ignore[operator]

        monkeypatch.setattr(region_cache, name, counted)
    monkeypatch.setattr(region_cache, "_MEMORY", {})  # this process's earlier tests must not have warmed it

    def run(database: Path, out: str, at: datetime, *, via: str | None) -> int:
        argv = ["run", "--region", str(region), "--rain", str(rain), "--queue-only", "--out", str(tmp_path / out),
                "--cache-dir", str(tmp_path / "cache"), "--database", f"sqlite:///{database}", "--at", at.isoformat(),
                "-q"]  # fmt: skip
        return main([*argv, "--worker", via] if via else argv)

    assert run(tmp_path / "worker.db", "out", T, via=url) == 0
    first = json.loads((tmp_path / "out" / "report.json").read_text())
    assert first["queued"] > 0
    assert first["levels"]
    assert loads  # the first cycle read the villages (file, then prepared into the cache)
    loads.clear()
    # The same cycle in its own process's way, on another store: the same outcome.
    assert run(tmp_path / "alone.db", "alone", T, via=None) == 0
    alone = json.loads((tmp_path / "alone" / "report.json").read_text())
    assert {k: first[k] for k in ("levels", "queued", "transitions", "cap_files")} == {
        k: alone[k] for k in ("levels", "queued", "transitions", "cap_files")
    }
    loads.clear()
    # Ten minutes later, the same raster: nothing new is queued, and the villages come from the worker's memory.
    capsys.readouterr()
    assert run(tmp_path / "worker.db", "out", T + timedelta(minutes=10), via=url) == 0
    assert "messages queued for `ews send`: 0" in capsys.readouterr().out
    assert loads == []
    health = _health(url)
    assert (health["cycles"], health["failed"], health["busy"]) == (2, 0, False)
    assert served.cycles == 2


def test_a_request_for_another_database_or_a_bad_region_is_refused_and_the_worker_goes_on(
    tmp_path: Path, worker: tuple[str, Worker], capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = worker
    region = write_synthetic_region(tmp_path / "region")
    rain = _rain(tmp_path)
    base = ["run", "--rain", str(rain), "--queue-only", "--cache-dir", str(tmp_path / "cache"), "--worker", url,
            "--at", T.isoformat(), "-q"]  # fmt: skip
    other = ["--database", "postgresql://ews:secret-password@db.example/ews"]
    assert main([*base, "--region", str(region), *other]) == 2
    err = capsys.readouterr().err
    assert "serves another database" in err
    assert "secret-password" not in err
    assert main([*base, "--region", str(region), "--database", f"sqlite:///{tmp_path / 'worker.db'}",
                 "--out", str(tmp_path / "o")]) == 0  # fmt: skip
    broken = tmp_path / "broken.yaml"
    broken.write_text(region.read_text(encoding="utf-8") + "\nno_such_key: 1\n", encoding="utf-8")
    assert main([*base, "--region", str(broken),
                 "--database", f"sqlite:///{tmp_path / 'worker.db'}"]) == 2  # fmt: skip
    assert "no_such_key" in capsys.readouterr().err  # refused before the request left
    with pytest.raises(WorkerError, match="no_such_key") as refused:  # the worker reads the region file itself
        call(url, "/run", {"region": str(broken), "rain": [str(rain)], "queue_only": True}, timeout=60)
    assert refused.value.exit_code == 2
    with pytest.raises(WorkerError, match="absolute path"):
        call(url, "/run", {"region": "regions/demo.yaml", "rain": [str(rain)], "queue_only": True}, timeout=60)
    health = _health(url)
    assert (health["status"], health["cycles"], health["failed"]) == ("ok", 1, 2)


def test_no_worker_at_the_url_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    region = write_synthetic_region(tmp_path / "region")
    code = main(["run", "--region", str(region), "--rain", str(_rain(tmp_path)), "--queue-only", "-q",
                 "--worker", f"http://127.0.0.1:{port}", "--database", f"sqlite:///{tmp_path / 'ews.db'}"])  # fmt: skip
    assert code == 2
    assert "no ews worker at" in capsys.readouterr().err

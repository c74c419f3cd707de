"""One bad input never hides the others; the exit code tells a finished-but-degraded run from a refusal and a bug."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from tests_support import minimal_cap

import ews.pipeline
from hostile.conftest import SURABAYA_BOX, CliResult, write_region

AT = "2026-11-28T17:30+07:00"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_args(tmp_path: Path, region: Path, *extra: str | Path) -> list[str | Path]:
    db = f"sqlite:///{tmp_path / 'ews.db'}"
    return ["run", "--region", region, "--out", tmp_path / "out", "--at", AT, "-q", "--database", db,
            "--outbox", tmp_path / "outbox.jsonl", *extra]  # fmt: skip


def test_rss_item_without_link_rejects_only_that_item(
    tmp_path: Path, shared_data: Path, ews_cli: Callable[..., CliResult]
) -> None:
    feed = tmp_path / "feed"
    feed.mkdir()
    (feed / "CJT20261128001_alert.xml").write_bytes(minimal_cap(SURABAYA_BOX))
    (feed / "rss.xml").write_text(
        '<?xml version="1.0"?><rss version="2.0"><channel><title>BMKG</title>'
        "<item><title>Jawa Timur</title><link>https://www.bmkg.go.id/alerts/nowcast/id/CJT20261128001_alert.xml</link>"
        "<guid>2.49.0.1.360.0.2026.11.28.10.35.001</guid></item>"
        "<item><title>Bali</title><guid>2.49.0.1.360.0.2026.11.28.10.51.001</guid></item>"
        "</channel></rss>"
    )
    region = write_region(tmp_path / "region", shared_data)
    result = ews_cli(*run_args(tmp_path, region, "--cap", feed / "rss.xml"))
    assert result.code == 1
    assert result.line_with("REJECTED", "rss.xml", "item 2", "has no <link>")
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["warnings"] == 1  # the other item's warning was read and published
    assert list((tmp_path / "out" / "cap").glob("*.xml"))


def test_unreachable_bmkg_index_degrades_and_the_other_sources_publish(
    tmp_path: Path, shared_data: Path, ews_cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EWS_BMKG_BASE_URL", f"http://127.0.0.1:{closed_port()}")
    quakes = shared_data / "bmkg/gempa/disaster-season_gempaterkini_2026-09-22.json"
    region = write_region(tmp_path / "region", shared_data)
    result = ews_cli(*run_args(tmp_path, region, "--cap", "bmkg", "--quakes", quakes))
    assert result.code == 1
    assert result.line_with("DEGRADED: BMKG nowcast index (EWS_BMKG_BASE_URL) not fetched", "rss.xml")
    assert (tmp_path / "out" / "report.json").is_file()  # the run still published its outputs
    assert (tmp_path / "out" / "risk_map.png").is_file()


def test_unreachable_quake_feed_hint_names_its_variable(
    tmp_path: Path, shared_data: Path, ews_cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EWS_BMKG_TEWS_URL", f"http://127.0.0.1:{closed_port()}/")
    cap = tmp_path / "cap.xml"
    cap.write_bytes(minimal_cap(SURABAYA_BOX))
    region = write_region(tmp_path / "region", shared_data)
    result = ews_cli(*run_args(tmp_path, region, "--cap", cap, "--quakes", "bmkg"))
    assert result.code == 1
    line = result.line_with("DEGRADED: cannot fetch", "autogempa.json")
    assert "EWS_BMKG_TEWS_URL" in line
    assert "EWS_BMKG_BASE_URL" not in line
    assert list((tmp_path / "out" / "cap").glob("*.xml"))  # the CAP warning of the same run went out


def test_internal_error_has_its_own_exit_code_and_one_line(
    tmp_path: Path, shared_data: Path, ews_cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("unexpected state for +6289990000123")  # a bug whose text holds a number

    monkeypatch.setattr(ews.pipeline, "run_slice", broken)
    cap = tmp_path / "cap.xml"
    cap.write_bytes(minimal_cap(SURABAYA_BOX))
    region = write_region(tmp_path / "region", shared_data)
    result = ews_cli(*run_args(tmp_path, region, "--cap", cap))  # also checks: no traceback, no full number
    assert result.code == 3
    line = result.line_with("ews run: internal error: RuntimeError", "please report it", "-v")
    assert "[number]" in line
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_refused_configuration_is_exit_2(tmp_path: Path, ews_cli: Callable[..., CliResult]) -> None:
    region = tmp_path / "r.yaml"
    region.write_text("id: x\nname: X\nprovince_code: '35'\nboundaries: {path: nowhere}\nbogus_key: 1\n")
    result = ews_cli("run", "--region", region, "--cap", "bmkg", "--out", tmp_path / "out")
    assert result.code == 2
    assert result.line_with("ews run: error:", "r.yaml")
    assert not (tmp_path / "out").exists()


def test_queue_only_says_it_queues(tmp_path: Path, shared_data: Path, ews_cli: Callable[..., CliResult]) -> None:
    cap = tmp_path / "cap.xml"
    cap.write_bytes(minimal_cap(SURABAYA_BOX))
    region = write_region(tmp_path / "region", shared_data)
    result = ews_cli(*run_args(tmp_path, region, "--cap", cap, "--queue-only"))
    assert result.code == 0
    assert result.line_with("messages queued for `ews send`:")
    assert "dry run" not in result.out
    assert "(none)" not in result.out

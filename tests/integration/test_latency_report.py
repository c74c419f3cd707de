"""`ews alerts show THREAD` gives the latency of the thread's messages, stage by stage, from the store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from test_review_gate import region_with, run

from ews.cli import main
from ews.store.repository import Store
from ews.synthetic import write_synthetic_warning


def test_alerts_show_gives_the_latency_of_a_thread(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    region = region_with(tmp_path, "")
    now = datetime.now(UTC).replace(microsecond=0)
    warning = write_synthetic_warning(tmp_path / "w", now)
    db = f"sqlite:///{tmp_path / 'ews.db'}"
    run(region, warning, tmp_path, db, now)  # dry-run outbox: accepted at once
    store = Store.from_url(db)
    try:
        (thread,) = store.active_threads("demo")
        rows = store.message_timelines("demo", thread)
    finally:
        store.close()
    assert rows
    assert all(r["sent"] is not None and r["seen"] is not None and r["accepted"] is not None for r in rows)
    assert all(r["sent"] <= r["decided"] <= r["queued"] <= r["accepted"] for r in rows)
    assert all(r["delivered"] is None for r in rows)  # the dry-run outbox reports no delivery
    assert main(["alerts", "show", thread, "--region", "demo", "--database", db]) == 0
    out = capsys.readouterr().out
    assert "latency (from the source's <sent>):" in out
    assert "source sent -> accepted by the provider: median" in out
    assert f"(n={len(rows)})" in out
    assert "+62" not in out

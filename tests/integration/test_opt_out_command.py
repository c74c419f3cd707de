"""`ews subscribers opt-out`: numbers from a file; later runs never message them; nothing personal printed."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from ews.channels.outbox import FileOutbox
from ews.cli import main
from ews.config import open_region
from ews.pipeline import run_slice
from ews.store.repository import Store
from ews.synthetic import write_synthetic_region, write_synthetic_warning

NOW = datetime.fromisoformat("2026-11-28T18:00:00+07:00")


def test_opted_out_numbers_are_never_messaged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    region = write_synthetic_region(tmp_path / "region")
    db = f"sqlite:///{tmp_path / 'ews.db'}"
    store = Store.from_url(db)
    store.close()
    assert main(["subscribers", "import", str(tmp_path / "region" / "subscribers.csv"), "--database", db]) == 0
    capsys.readouterr()
    # Opt out the first two demo numbers, written the way people write them (08...), plus a bad line.
    numbers = tmp_path / "stop.txt"
    numbers.write_text("# from the call centre\n0899900000001\n+62 8999 0000 0002\nnot a number\n")
    assert main(["subscribers", "opt-out", str(numbers), "--source", "call to BPBD", "--database", db]) == 1
    printed = capsys.readouterr()
    assert "2 number(s) opted out" in printed.out
    assert "line(s) 4" in printed.err
    assert "8999" not in printed.out + printed.err  # the numbers are never echoed

    store = Store.from_url(db)
    try:
        warning = write_synthetic_warning(tmp_path / "w", NOW)
        run_slice(open_region(region), str(warning), tmp_path / "out", now=NOW, store=store,
                  channel=FileOutbox(tmp_path / "outbox.jsonl"))  # fmt: skip
        exported = store.export_subscribers()
    finally:
        store.close()
    sent_to = {json.loads(x)["recipient_id"] for x in (tmp_path / "outbox.jsonl").read_text().splitlines()}
    from ews.contacts import recipient_id

    assert recipient_id("+62899900000001") not in sent_to
    assert recipient_id("+62899900000002") not in sent_to
    assert sent_to  # everyone else still hears it
    out = {r["phone"]: r for r in exported}
    assert out["+62899900000001"]["opt_out_source"] == "call to BPBD"
    assert out["+62899900000001"]["opted_out_at"]

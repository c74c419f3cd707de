"""A cycle's CAP folder: rendered once, unchanged alerts hard-linked, a manifest, no store query per village.

Two or eight small villages in Kota Surabaya under one thread, a store on SQLite and on PostgreSQL, each cycle
inside ``atomic_folder`` like ``publish_outputs``.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from shapely.geometry import box
from sqlalchemy import event

from ews.alerts.model import Decision, Transition, VillageState
from ews.cap.validate import CapValidator
from ews.cap.writer import cap_identifier
from ews.cap_output import MANIFEST, publish_cap
from ews.config import RegionConfig, open_region
from ews.store import artifacts
from ews.store import cap_cache as cap_cache_module
from ews.store.artifacts import atomic_folder
from ews.store.repository import Store
from ews.types import Level

THREAD = "2.49.0.1.360.0.2026.11.28.10.35.001"
T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
CODES = [f"35.78.01.{1001 + i}" for i in range(8)]


@pytest.fixture(autouse=True)
def _fresh_polygon_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts like a new process (no polygon texts in memory)."""
    monkeypatch.setattr(cap_cache_module, "_MEMORY", {})


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store.from_url(database_url)
    yield s
    s.close()


@pytest.fixture
def config(tmp_path: Path) -> RegionConfig:
    path = tmp_path / "t.yaml"
    path.write_text('id: t\nname: T\nprovince_code: "35"\nboundaries: {path: v.geojson}\n')
    return open_region(path)


@pytest.fixture
def villages() -> pd.DataFrame:
    # 0.01 degree squares (about 1 km) side by side south of Surabaya.
    return pd.DataFrame(
        {
            "code": CODES,
            "name": [f"Desa {i}" for i in range(len(CODES))],
            "kecamatan_name": "Wonokromo",
            "kabkota_name": "Kota Surabaya",
            "geometry": [box(112.70 + 0.01 * i, -7.31, 112.71 + 0.01 * i, -7.30) for i in range(len(CODES))],
        }
    )


def announce(store: Store, codes: list[str], seq: int, level: Level, at: datetime) -> list[int]:
    """Store version ``seq`` of each village's alert (NEW at 1, then ESCALATE) and its active state."""
    ids = []
    for code in codes:
        d = Decision(
            region="t", village_code=code, thread_id=THREAD,
            transition=Transition.NEW if seq == 1 else Transition.ESCALATE,
            level_before=Level.NONE if seq == 1 else Level.WASPADA, level=level, seq=seq, warning_id=THREAD,
            warning_sent=at, expires=None, fraction=0.6, send=True, exercise=False, reason="test",
        )  # fmt: skip
        ids.append(store.add_alert_version(d, cap_identifier("t", THREAD, code, seq), "auto", at=at))
    states = [VillageState("t", c, THREAD, level, seq, THREAD, at, None, 0.6, True) for c in codes]
    store.save_states("t", states, at=at)
    return ids


def cycle(
    store: Store, config: RegionConfig, villages: pd.DataFrame, written: list[int], out: Path, now: datetime
) -> int:
    with atomic_folder(out) as staging:
        previous = out / "cap" if (out / "cap").is_dir() else None
        return publish_cap(
            store, config, villages, written, {}, now, staging / "cap", previous, cache_dir=out.parent / "cache"
        )


def identifier(code: str, seq: int) -> str:
    return cap_identifier("t", THREAD, code, seq)


def test_unchanged_alerts_are_linked_from_the_last_snapshot_and_listed_in_its_manifest(
    store: Store, config: RegionConfig, villages: pd.DataFrame, tmp_path: Path, shared_data: Path
) -> None:
    out = tmp_path / "out"
    codes = CODES[:4]
    assert cycle(store, config, villages, announce(store, codes, 1, Level.WASPADA, T0), out, T0) == 4
    inode = {c: (out / "cap" / f"{identifier(c, 1)}.xml").stat().st_ino for c in codes}
    t1 = T0 + timedelta(minutes=10)
    # Two villages escalate; the other two keep their Waspada alert, whose files are the same inodes.
    assert cycle(store, config, villages, announce(store, codes[:2], 2, Level.SIAGA, t1), out, t1) == 2
    cap = out / "cap"
    assert sorted(p.name for p in cap.glob("*.xml")) == sorted(
        [f"{identifier(c, 2)}.xml" for c in codes[:2]] + [f"{identifier(c, 1)}.xml" for c in codes[2:]]
    )
    assert {c: (cap / f"{identifier(c, 1)}.xml").stat().st_ino for c in codes[2:]} == {c: inode[c] for c in codes[2:]}
    manifest = json.loads((cap / MANIFEST).read_bytes())["files"]
    assert sorted(manifest) == sorted(p.stem for p in cap.glob("*.xml"))
    for ident, entry in manifest.items():
        data = (cap / f"{ident}.xml").read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert f"<sent>{entry['sent']}</sent>".encode() in data
    validator = CapValidator(shared_data / "cap_schema" / "CAP-v1.2.xsd")
    for path in cap.glob("*.xml"):
        assert validator.problems(path.read_bytes()) == [], path.name
    # The escalation references the version it replaces (from the bulk read of the village's versions).
    escalated = (cap / f"{identifier(codes[0], 2)}.xml").read_text()
    assert f"<references>ews.t,{identifier(codes[0], 1)},2026-11-28T17:00:00+07:00</references>" in escalated
    feed = (cap / "index.atom").read_text()
    assert all(f"urn:ews:cap:{p.stem}<" in feed for p in cap.glob("*.xml"))


def test_a_file_the_manifest_does_not_vouch_for_is_rendered_again_with_the_same_bytes(
    store: Store, config: RegionConfig, villages: pd.DataFrame, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    codes = CODES[:4]
    cycle(store, config, villages, announce(store, codes, 1, Level.WASPADA, T0), out, T0)
    cap = out / "cap"
    before = {p.name: (p.read_bytes(), p.stat().st_ino) for p in cap.glob("*.xml")}
    # Held by a second name, so that no inode of the first folder is freed and handed to a file written later
    # (a re-rendered file must not look linked merely because the filesystem reused its predecessor's inode).
    (tmp_path / "held").mkdir()
    for p in cap.glob("*.xml"):
        os.link(p, tmp_path / "held" / p.name)
    document = json.loads((cap / MANIFEST).read_bytes())
    # The same identifier sent at another time: a file of another store (a database reset), not this one's.
    document["files"][identifier(codes[0], 1)]["sent"] = "2026-01-01T00:00:00+07:00"
    (cap / MANIFEST).write_text(json.dumps(document))
    (cap / f"{identifier(codes[1], 1)}.xml").unlink()  # listed but gone
    edited = cap / f"{identifier(codes[2], 1)}.xml"  # edited in place, to the same size
    edited.write_bytes(edited.read_bytes().replace(b"Waspada", b"WASPADA"))
    t1 = T0 + timedelta(minutes=10)
    cycle(store, config, villages, [], out, t1)
    after = {p.name: (p.read_bytes(), p.stat().st_ino) for p in cap.glob("*.xml")}
    assert {n: b for n, (b, _) in after.items()} == {n: b for n, (b, _) in before.items()}
    relinked = {n for n in after if after[n][1] == before[n][1]}
    assert relinked == {f"{identifier(codes[3], 1)}.xml"}
    feed = (cap / "index.atom").read_bytes()  # one entry from the manifest, three just written
    # Without a manifest (a folder of an older ews) everything is rendered, to the same bytes, feed included.
    (cap / MANIFEST).unlink()
    cycle(store, config, villages, [], out, t1)
    assert {p.name: p.read_bytes() for p in cap.glob("*.xml")} == {n: b for n, (b, _) in before.items()}
    assert (cap / "index.atom").read_bytes() == feed


def test_files_are_copied_where_a_hard_link_cannot_be_made(
    store: Store, config: RegionConfig, villages: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    cycle(store, config, villages, announce(store, CODES[:2], 1, Level.SIAGA, T0), out, T0)
    before = {p.name: (p.read_bytes(), p.stat().st_ino) for p in (out / "cap").glob("*.xml")}

    def cross_device(src: Any, dst: Any) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(artifacts.os, "link", cross_device)
    cycle(store, config, villages, [], out, T0 + timedelta(minutes=10))
    after = {p.name: (p.read_bytes(), p.stat().st_ino) for p in (out / "cap").glob("*.xml")}
    assert {n: b for n, (b, _) in after.items()} == {n: b for n, (b, _) in before.items()}
    assert all(after[n][1] != before[n][1] for n in after)


def test_a_cycle_makes_as_many_store_queries_for_eight_villages_as_for_two(
    store: Store, config: RegionConfig, villages: pd.DataFrame, tmp_path: Path
) -> None:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(store.engine, "before_cursor_execute", count)
    queries = []
    for n, codes in enumerate((CODES[:2], CODES)):
        out, t = tmp_path / f"out{n}", T0 + timedelta(hours=n)
        announce(store, codes, 2 * n + 1, Level.WASPADA, t)
        written = announce(store, codes, 2 * n + 2, Level.SIAGA, t)  # with references to the earlier version
        statements.clear()
        assert cycle(store, config, villages, written, out, t) == len(codes)
        queries.append(len(statements))
    event.remove(store.engine, "before_cursor_execute", count)
    assert queries[0] == queries[1]


def test_polygon_text_is_computed_once_per_outline_and_kept_on_disk(
    store: Store,
    config: RegionConfig,
    villages: pd.DataFrame,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "out"
    cycle(store, config, villages, announce(store, CODES[:2], 1, Level.SIAGA, T0), out, T0)
    first = {p.name: p.read_bytes() for p in (out / "cap").glob("*.xml")}
    assert list((tmp_path / "cache").glob("cap-polygons-v*.sqlite"))
    # A new process: nothing in memory, and polygon_rings must not be needed again.
    monkeypatch.setattr(cap_cache_module, "_MEMORY", {})
    import ews.cap_output

    def refuse(*args: Any) -> list[str]:
        raise AssertionError("polygon text recomputed")

    monkeypatch.setattr(ews.cap_output, "polygon_rings", refuse)
    (out / "cap" / MANIFEST).unlink()  # render every file again
    cycle(store, config, villages, [], out, T0 + timedelta(minutes=10))
    assert {p.name: p.read_bytes() for p in (out / "cap").glob("*.xml")} == first


def test_the_folder_swap_flushes_the_filesystem_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []
    real = artifacts._syncfs
    monkeypatch.setattr(artifacts, "_syncfs", lambda folder: (calls.append(folder), real(folder))[0])
    with atomic_folder(tmp_path / "out") as staging:
        for i in range(3):
            artifacts.write_bytes_staged(staging / "cap" / f"{i}.xml", b"<alert/>")
        assert not (tmp_path / "out").exists()
    assert len(calls) == 1
    assert sorted(p.name for p in (tmp_path / "out" / "cap").iterdir()) == ["0.xml", "1.xml", "2.xml"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert os.stat(tmp_path / "out" / "cap" / "0.xml").st_size == len(b"<alert/>")


def test_a_folder_that_cannot_be_made_durable_is_not_swapped_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    with atomic_folder(out) as staging:
        artifacts.write_bytes_staged(staging / "a.xml", b"old")

    def fail(folder: Path) -> None:
        raise OSError(errno.EIO, "syncfs failed")

    monkeypatch.setattr(artifacts, "_syncfs", fail)
    with pytest.raises(OSError, match="syncfs failed"), atomic_folder(out) as staging:
        artifacts.write_bytes_staged(staging / "a.xml", b"new")
    assert (out / "a.xml").read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []

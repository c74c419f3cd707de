"""A cycle's CAP folder: one alert per area, unchanged areas hard-linked, a manifest, no store query per village.

Two or eight small villages in Kota Surabaya under one thread, a store on SQLite and on PostgreSQL, each cycle
inside ``atomic_folder`` like ``publish_outputs``.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from shapely.geometry import box
from sqlalchemy import event

import ews.cap_output
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


def announce(
    store: Store,
    codes: list[str],
    seq: int,
    level: Level,
    at: datetime,
    transition: Transition | None = None,
    status: str = "auto",
) -> list[int]:
    """Store version ``seq`` of each village's alert (NEW at 1, then ESCALATE, or ``transition``) and its state."""
    ids = []
    ends = transition is not None and transition.ends
    for code in codes:
        d = Decision(
            region="t", village_code=code, thread_id=THREAD,
            transition=transition or (Transition.NEW if seq == 1 else Transition.ESCALATE),
            level_before=Level.NONE if seq == 1 else Level.WASPADA, level=Level.NONE if ends else level, seq=seq,
            warning_id=THREAD, warning_sent=at, expires=None, fraction=0.6, send=True, exercise=False, reason="test",
        )  # fmt: skip
        if ends:
            d = replace(d, level_before=level)
        ids.append(store.add_alert_version(d, cap_identifier("t", THREAD, code, seq), status, at=at))
    states = [
        VillageState("t", c, THREAD, Level.NONE if ends else level, seq, THREAD, at, None, 0.6, not ends) for c in codes
    ]
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


def areas(cap: Path) -> dict[tuple[str, ...], Path]:
    """The folder's CAP files by the villages they name (their KEMENDAGRI geocodes)."""
    out = {}
    for path in cap.glob("*.xml"):
        text = path.read_text()
        info = text.split("</info>")[0]
        out[tuple(re.findall(r"<valueName>KEMENDAGRI</valueName>\s*<value>([0-9.]+)</value>", info))] = path
    return out


def test_one_alert_per_contiguous_area_of_one_level_and_kecamatan(
    store: Store, config: RegionConfig, villages: pd.DataFrame, tmp_path: Path, shared_data: Path
) -> None:
    out = tmp_path / "out"
    written = announce(store, CODES[:3] + CODES[4:], 1, Level.SIAGA, T0)
    written += announce(store, CODES[3:4], 1, Level.AWAS, T0)
    assert cycle(store, config, villages, written, out, T0) == 3
    found = areas(out / "cap")
    # Siaga on both sides of an Awas village: two Siaga areas, not one alert with disjoint parts.
    assert sorted(found) == [tuple(CODES[:3]), (CODES[3],), tuple(CODES[4:])]
    validator = CapValidator(shared_data / "cap_schema" / "CAP-v1.2.xsd")
    for path in found.values():
        assert validator.problems(path.read_bytes()) == [], path.name
    big = found[tuple(CODES[4:])].read_text()
    assert "<areaDesc>Kec. Wonokromo, Kota Surabaya</areaDesc>" in big
    assert "4 desa/kelurahan di Kec. Wonokromo, Kota Surabaya (Desa 4, Desa 5, Desa 6, Desa 7)" in big
    assert big.count("<polygon>") == 2  # one outline (the union), in each of the two <info> blocks
    assert "<msgType>Alert</msgType>" in big
    assert "<areaDesc>Desa 3, Kec. Wonokromo</areaDesc>" in found[(CODES[3],)].read_text()
    feed = (out / "cap" / "index.atom").read_text()
    assert all(f"urn:ews:cap:{p.stem}<" in feed for p in found.values())


def test_unchanged_areas_are_linked_and_changed_ones_reference_what_they_replace(
    store: Store,
    config: RegionConfig,
    villages: pd.DataFrame,
    tmp_path: Path,
    shared_data: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "out"
    west, east = CODES[:2], CODES[5:7]  # two areas: villages 2-4 lie between them
    assert cycle(store, config, villages, announce(store, west + east, 1, Level.WASPADA, T0), out, T0) == 2
    first = areas(out / "cap")
    inode = first[tuple(east)].stat().st_ino
    t1 = T0 + timedelta(minutes=10)
    assert cycle(store, config, villages, announce(store, west, 2, Level.SIAGA, t1), out, t1) == 1
    cap = out / "cap"
    now = areas(cap)
    assert sorted(now) == [tuple(west), tuple(east)]
    assert now[tuple(east)] == first[tuple(east)]
    assert now[tuple(east)].stat().st_ino == inode
    escalated = now[tuple(west)].read_text()
    assert f"<references>ews.t,{first[tuple(west)].stem},2026-11-28T17:00:00+07:00</references>" in escalated
    assert "<msgType>Update</msgType>" in escalated
    assert "Tingkat peringatan naik menjadi SIAGA" in escalated
    manifest = json.loads((cap / MANIFEST).read_bytes())["files"]
    assert sorted(manifest) == sorted(p.stem for p in cap.glob("*.xml"))
    for ident, entry in manifest.items():
        data = (cap / f"{ident}.xml").read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert f"<sent>{entry['sent']}</sent>".encode() in data
    validator = CapValidator(shared_data / "cap_schema" / "CAP-v1.2.xsd")
    for path in cap.glob("*.xml"):
        assert validator.problems(path.read_bytes()) == [], path.name

    # The same cycle again (a retry): nothing new, the same files, and the stored partition reused as it is.
    def no_grouping(*_: object) -> None:
        raise AssertionError("an unchanged cycle grouped the villages into areas again")

    monkeypatch.setattr(ews.cap_output, "components", no_grouping)
    assert cycle(store, config, villages, [], out, t1 + timedelta(minutes=1)) == 0
    assert sorted(p.name for p in cap.glob("*.xml")) == sorted(p.name for p in now.values())


def test_an_ending_is_one_all_clear_per_area_referencing_the_area_it_ends(
    store: Store, config: RegionConfig, villages: pd.DataFrame, tmp_path: Path, shared_data: Path
) -> None:
    out = tmp_path / "out"
    cycle(store, config, villages, announce(store, CODES[:4], 1, Level.SIAGA, T0), out, T0)
    (before,) = areas(out / "cap").values()
    t1 = T0 + timedelta(minutes=10)
    ended = announce(store, CODES[:2], 2, Level.SIAGA, t1, Transition.ALL_CLEAR)
    assert cycle(store, config, villages, ended, out, t1) == 2  # the all-clear, and what is left in force
    found = areas(out / "cap")
    assert sorted(found) == [tuple(CODES[:2]), tuple(CODES[2:4])]
    clear, rest = found[tuple(CODES[:2])].read_text(), found[tuple(CODES[2:4])].read_text()
    for text in (clear, rest):
        assert f"<references>ews.t,{before.stem},2026-11-28T17:00:00+07:00</references>" in text
    assert "<responseType>AllClear</responseType>" in clear
    assert "<msgType>Update</msgType>" in clear
    feed = (out / "cap" / "index.atom").read_text()
    assert f"urn:ews:cap:{found[tuple(CODES[2:4])].stem}<" in feed
    assert f"urn:ews:cap:{found[tuple(CODES[:2])].stem}<" not in feed  # an ending is not in force
    validator = CapValidator(shared_data / "cap_schema" / "CAP-v1.2.xsd")
    for path in found.values():
        assert validator.problems(path.read_bytes()) == [], path.name
    assert [r.identifier for r in store.live_cap_areas("t")] == [found[tuple(CODES[2:4])].stem]


def test_a_version_held_for_review_leaves_the_published_one_in_force_until_it_is_decided(
    store: Store, config: RegionConfig, villages: pd.DataFrame, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert cycle(store, config, villages, announce(store, CODES[:4], 1, Level.WASPADA, T0), out, T0) == 1
    (first,) = areas(out / "cap")
    # An escalation of village 1 and an all-clear of village 3 wait for a reviewer: CAP still says Waspada.
    t1 = T0 + timedelta(minutes=10)
    (held,) = announce(store, CODES[1:2], 2, Level.SIAGA, t1, status="pending")
    (clear,) = announce(store, CODES[3:4], 2, Level.WASPADA, t1, Transition.ALL_CLEAR, status="pending")
    assert cycle(store, config, villages, [], out, t1) == 0
    assert sorted(areas(out / "cap")) == [first]
    # Approved (ews alerts approve; the next cycle publishes): village 1 at Siaga, village 3's all-clear.
    store.decide_pending("t", "approved", "analyst", ids=[held, clear])
    t2 = t1 + timedelta(minutes=10)
    assert cycle(store, config, villages, [], out, t2) == 4
    found = areas(out / "cap")
    assert sorted(found) == [(CODES[0],), (CODES[1],), (CODES[2],), (CODES[3],)]
    assert "SIAGA" in found[(CODES[1],)].read_text()
    assert "<responseType>AllClear</responseType>" in found[(CODES[3],)].read_text()
    assert sorted(r.members for r in store.live_cap_areas("t")) == [
        ((CODES[0], 1),),
        ((CODES[1], 2),),
        ((CODES[2], 1),),
    ]
    # A rejected version: the village stays as it was last published.
    t3 = t2 + timedelta(minutes=10)
    (rejected,) = announce(store, CODES[2:3], 2, Level.SIAGA, t3, status="pending")
    store.decide_pending("t", "rejected", "analyst", ids=[rejected])
    assert cycle(store, config, villages, [], out, t3) == 0


def test_an_ending_whose_cycle_published_no_cap_goes_out_with_the_next_cycle(
    store: Store, config: RegionConfig, villages: pd.DataFrame, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert cycle(store, config, villages, announce(store, CODES[:3], 1, Level.SIAGA, T0), out, T0) == 1
    (first,) = areas(out / "cap").values()
    # The all-clear is stored and sent, but the cycle fails before its CAP step: the next one publishes it.
    t1 = T0 + timedelta(minutes=10)
    announce(store, CODES[:3], 2, Level.SIAGA, t1, Transition.ALL_CLEAR)
    assert cycle(store, config, villages, [], out, t1 + timedelta(minutes=10)) == 1
    (clear,) = areas(out / "cap").values()
    text = clear.read_text()
    assert "<responseType>AllClear</responseType>" in text
    assert f"<references>ews.t,{first.stem},2026-11-28T17:00:00+07:00</references>" in text
    assert store.live_cap_areas("t") == []


def test_a_lost_folder_is_rendered_again_to_the_same_bytes(
    store: Store, config: RegionConfig, villages: pd.DataFrame, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    cycle(store, config, villages, announce(store, CODES[:4], 1, Level.WASPADA, T0), out, T0)
    t1 = T0 + timedelta(minutes=10)
    cycle(store, config, villages, announce(store, CODES[:1], 2, Level.SIAGA, t1), out, t1)
    before = {p.name: p.read_bytes() for p in (out / "cap").glob("*.xml")}
    assert len(before) == 2
    shutil.rmtree(out)
    assert cycle(store, config, villages, [], out, T0 + timedelta(hours=1)) == 0
    assert {p.name: p.read_bytes() for p in (out / "cap").glob("*.xml")} == before


def test_a_file_the_manifest_does_not_vouch_for_is_rendered_again_with_the_same_bytes(
    store: Store, config: RegionConfig, villages: pd.DataFrame, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    codes = CODES[::2]  # four villages none of which touch: four areas
    cycle(store, config, villages, announce(store, codes, 1, Level.WASPADA, T0), out, T0)
    cap = out / "cap"
    before = {p.name: (p.read_bytes(), p.stat().st_ino) for p in cap.glob("*.xml")}
    name = {code: path.stem for (code,), path in areas(cap).items()}
    # Held by a second name, so that no inode of the first folder is freed and handed to a file written later
    # (a re-rendered file must not look linked merely because the filesystem reused its predecessor's inode).
    (tmp_path / "held").mkdir()
    for p in cap.glob("*.xml"):
        os.link(p, tmp_path / "held" / p.name)
    document = json.loads((cap / MANIFEST).read_bytes())
    # The same identifier sent at another time: a file of another store (a database reset), not this one's.
    document["files"][name[codes[0]]]["sent"] = "2026-01-01T00:00:00+07:00"
    (cap / MANIFEST).write_text(json.dumps(document))
    (cap / f"{name[codes[1]]}.xml").unlink()  # listed but gone
    edited = cap / f"{name[codes[2]]}.xml"  # edited in place, to the same size
    edited.write_bytes(edited.read_bytes().replace(b"Waspada", b"WASPADA"))
    t1 = T0 + timedelta(minutes=10)
    cycle(store, config, villages, [], out, t1)
    after = {p.name: (p.read_bytes(), p.stat().st_ino) for p in cap.glob("*.xml")}
    assert {n: b for n, (b, _) in after.items()} == {n: b for n, (b, _) in before.items()}
    relinked = {n for n in after if after[n][1] == before[n][1]}
    assert relinked == {f"{name[codes[3]]}.xml"}
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
    cycle(store, config, villages, announce(store, CODES[::2], 1, Level.SIAGA, T0), out, T0)
    before = {p.name: (p.read_bytes(), p.stat().st_ino) for p in (out / "cap").glob("*.xml")}
    assert len(before) == 4

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
        cycle(store, config, villages, announce(store, codes, 2 * n + 1, Level.WASPADA, t), out, t)
        written = announce(store, codes, 2 * n + 2, Level.SIAGA, t)  # replaces the Waspada area
        statements.clear()
        assert cycle(store, config, villages, written, out, t) == 1
        queries.append(len(statements))
    event.remove(store.engine, "before_cursor_execute", count)
    assert queries[0] == queries[1]


def test_polygon_text_is_computed_once_per_area_and_kept_on_disk(
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
    # A new process: nothing in memory, and the area's outline must not be needed again.
    monkeypatch.setattr(cap_cache_module, "_MEMORY", {})

    def refuse(*args: Any) -> list[str]:
        raise AssertionError("polygon text recomputed")

    monkeypatch.setattr(ews.cap_output, "area_polygons", refuse)
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

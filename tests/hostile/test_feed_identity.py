"""BMKG re-serves warnings, publishes two editions and issues successors without references: each alerts once.

The CAP files are built the way BMKG makes them: the real Gorontalo nowcast of 2026-09-24 as the template
(same elements, same eventCode, the real Indonesian and English texts), its polygons replaced by real Kota
Surabaya kecamatan outlines written as BMKG writes them (``lat,lon``, 3 decimals). A re-served copy differs
from the original only in the identifier's hour field or sequence number; the English edition only in its
language's text and an identifier with another hour field; a successor repeats the polygons, adds one
kecamatan and has no ``<references>``. Every scenario runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ews.channels.outbox import FileOutbox
from ews.config import open_region
from ews.ingest.bmkg_cap import content_key, parse_cap, read_warnings
from ews.pipeline import RunReport, run_slice
from ews.store.repository import Store
from hostile.conftest import CliResult, write_region

ORIGINAL = "2.49.0.1.360.0.2026.11.28.10.35.001"
RESERVED_HOUR = "2.49.0.1.360.0.2026.11.28.11.35.001"  # the hour field differs
RESERVED_SEQ = "2.49.0.1.360.0.2026.11.28.10.35.002"  # the sequence number differs
ENGLISH = "2.49.0.1.360.0.2026.11.28.12.35.001"  # the other edition: another hour field too
SUCCESSOR = "2.49.0.1.360.0.2026.11.28.10.35.007"
# Kota Surabaya kecamatan: Wonocolo and Gayungan under the warning; Jambangan added by the successor.
NAMED = {"35.78.02": "WONOCOLO", "35.78.22": "GAYUNGAN"}
ADDED = {"35.78.23": "JAMBANGAN"}


def t(hhmm: str) -> datetime:
    return datetime.fromisoformat(f"2026-11-28T{hhmm}:00+07:00")


def bmkg_polygon(geometry: Any) -> str:
    """A kecamatan's outer ring as BMKG writes it: 'lat,lon' pairs, 3 decimals, closed."""
    from shapely.geometry import MultiPolygon

    polygon = max(geometry.geoms, key=lambda g: g.area) if isinstance(geometry, MultiPolygon) else geometry
    return " ".join(f"{lat:.3f},{lon:.3f}" for lon, lat in polygon.exterior.coords)


@pytest.fixture(scope="module")
def kecamatan(shared_data: Path) -> dict[str, str]:
    import geopandas as gpd

    kec = gpd.read_file(shared_data / "boundaries/wilayah_boundaries_geojson/kec/wilayah_boundaries_kec_35.geojson")
    wanted = {**NAMED, **ADDED}
    rows = kec[kec["kode"].isin(wanted)]
    assert set(rows["kode"]) == set(wanted), "Surabaya kecamatan codes changed in the shared data"
    return {code: bmkg_polygon(geom) for code, geom in zip(rows["kode"], rows.geometry, strict=True)}


def build(
    template: bytes,
    identifier: str,
    polygons: list[str],
    names: list[str],
    *,
    sent: str = "2026-11-28T17:00:00+07:00",
    effective: str = "2026-11-28T17:20:00+07:00",
    expires: str = "2026-11-28T19:20:00+07:00",
) -> bytes:
    """The real BMKG template with this identifier, times, Jawa Timur polygons and named kecamatan."""
    text = template.decode()
    text = re.sub(r"<identifier>[^<]+</identifier>", f"<identifier>{identifier}</identifier>", text)
    text = re.sub(r"<sent>[^<]+</sent>", f"<sent>{sent}</sent>", text)
    text = re.sub(r"<effective>[^<]+</effective>", f"<effective>{effective}</effective>", text)
    text = re.sub(r"<expires>[^<]+</expires>", f"<expires>{expires}</expires>", text)
    text = text.replace("Gorontalo", "Jawa Timur").replace("WITA", "WIB")
    text = re.sub(r"(khususnya di|especially in:) [A-Z, ]+\.", lambda m: f"{m.group(1)} {', '.join(names)}.", text)
    shapes = "\n".join(f"      <polygon>{p}</polygon>" for p in polygons)
    text = re.sub(r"(\s*<polygon>[^<]+</polygon>)+", "\n" + shapes, text, count=1)
    return text.encode()


@pytest.fixture
def templates(shared_data: Path) -> dict[str, bytes]:
    cap = shared_data / "bmkg" / "cap"
    return {lang: (cap / f"siaga_cap-{lang}-CGT20260924002_alert.xml").read_bytes() for lang in ("id", "en")}


@pytest.fixture
def region(tmp_path: Path, shared_data: Path) -> Path:
    """Surabaya with one fictional subscriber per kelurahan (+62 8999 00xx xxxx), every other one in English."""
    features = json.loads(
        (shared_data / "boundaries/wilayah_boundaries_geojson/kel/35/wilayah_boundaries_kel_35.78.geojson").read_text()
    )["features"]
    rows = [
        (
            f"+628999000{n:05d}",
            f["properties"]["kode"],
            "en" if n % 2 else "id",
            "sms",
            "test",
            "2026-01-01T00:00:00+07:00",
        )
        for n, f in enumerate(features)
    ]
    return write_region(tmp_path / "region", shared_data, subscribers=rows)


class Cycles:
    """Runs on one store and one channel; each cycle reads its own folder of CAP files."""

    def __init__(self, region: Path, shared_data: Path, tmp_path: Path, database_url: str) -> None:
        self.config = open_region(region, {"EWS_SHARED_DATA": str(shared_data)})
        self.store = Store.from_url(database_url)
        self.tmp = tmp_path
        self.channel = FileOutbox(tmp_path / "channel.jsonl")

    def run(self, name: str, files: dict[str, bytes], now: str) -> RunReport:
        folder = self.tmp / "feeds" / name
        folder.mkdir(parents=True)
        for file, data in files.items():
            (folder / file).write_bytes(data)
        return run_slice(self.config, str(folder), self.tmp / "out" / name, now=t(now), store=self.store,
                         channel=self.channel)  # fmt: skip

    def threads(self) -> set[str]:
        return {s.thread_id for s in self.store.village_states(self.config.id)}

    def residents(self, report: RunReport) -> list[dict[str, object]]:
        lines = (report.out_dir / "outbox.jsonl").read_text().splitlines()
        return [m for m in map(json.loads, lines) if m["audience"] == "resident"]


@pytest.fixture
def cycles(region: Path, shared_data: Path, tmp_path: Path, database_url: str) -> Iterator[Cycles]:
    c = Cycles(region, shared_data, tmp_path, database_url)
    yield c
    c.store.close()


def alerted_kecamatan(messages: list[dict[str, object]]) -> set[str]:
    return {str(m["village_code"])[:8] for m in messages}


@pytest.mark.parametrize("copy_id", [RESERVED_HOUR, RESERVED_SEQ], ids=["hour-field", "sequence"])
def test_reserved_copy_sends_nothing_and_is_an_alias(
    cycles: Cycles,
    templates: dict[str, bytes],
    kecamatan: dict[str, str],
    copy_id: str,
    ews_cli: Callable[..., CliResult],
) -> None:
    polygons, names = [kecamatan[c] for c in NAMED], list(NAMED.values())
    first = cycles.run("1", {"CJT_a.xml": build(templates["id"], ORIGINAL, polygons, names)}, "17:25")
    alerted = cycles.residents(first)
    assert set(NAMED) <= alerted_kecamatan(alerted)  # the named kecamatan, and neighbours the polygons touch
    assert len({m["to"] for m in alerted}) == len(alerted)  # one message per resident
    # BMKG serves the same warning again an hour later under another identifier (and another file name).
    again = cycles.run("2", {"CJT_b.xml": build(templates["id"], copy_id, polygons, names)}, "17:40")
    assert cycles.residents(again) == []
    assert again.transitions.get("new", 0) == 0
    assert cycles.threads() == {ORIGINAL}
    assert any(copy_id in n and f"the same warning as {ORIGINAL}" in n for n in again.notes)
    aliases = cycles.store.warning_aliases()
    assert [(a.identifier, a.canonical, a.reason) for a in aliases] == [(copy_id, ORIGINAL, "re-served")]
    # ... and a third time: the alias is seen twice, still nothing sent.
    third = cycles.run("3", {"CJT_c.xml": build(templates["id"], copy_id, polygons, names)}, "17:50")
    assert cycles.residents(third) == []
    assert cycles.store.warning_aliases()[0].times_seen == 2
    url = cycles.store.engine.url.render_as_string(hide_password=False)
    listed = ews_cli("alerts", "list", "--region", cycles.config.id, "--database", url)
    assert listed.code == 0
    assert listed.line_with(copy_id, f"= {ORIGINAL}", "re-served")


def test_both_editions_in_one_cycle_and_across_cycles_alert_once(
    cycles: Cycles, templates: dict[str, bytes], kecamatan: dict[str, str]
) -> None:
    polygons, names = [kecamatan[c] for c in NAMED], list(NAMED.values())
    english = build(templates["en"], ENGLISH, polygons[::-1], names)  # BMKG may list the polygons in another order
    indonesian = build(templates["id"], ORIGINAL, polygons, names)
    first = cycles.run("1", {"en.xml": english}, "17:25")
    assert set(NAMED) <= alerted_kecamatan(cycles.residents(first))
    # The next cycle reads both feeds: the Indonesian edition (and the English one again) are the same warning.
    both = cycles.run("2", {"en.xml": english, "id.xml": indonesian}, "17:35")
    assert cycles.residents(both) == []
    assert cycles.threads() == {ENGLISH}
    reasons = {a.identifier: a.reason for a in cycles.store.warning_aliases()}
    assert reasons == {ORIGINAL: "edition"}


def test_editions_read_together_are_one_warning_in_the_preferred_language(
    templates: dict[str, bytes], kecamatan: dict[str, str], tmp_path: Path
) -> None:
    polygons, names = [kecamatan[c] for c in NAMED], list(NAMED.values())
    (tmp_path / "a.xml").write_bytes(build(templates["en"], ENGLISH, polygons, names))
    (tmp_path / "b.xml").write_bytes(build(templates["id"], ORIGINAL, polygons[::-1], names))
    batch = read_warnings(str(tmp_path))
    (warning,) = batch.warnings
    assert (warning.identifier, warning.language) == (ORIGINAL, "id")
    assert [(a.identifier, a.language, a.event) for a in warning.aliases] == [(ENGLISH, "en", "Thunderstorm")]


def test_successor_without_references_alerts_only_the_new_area(
    cycles: Cycles, templates: dict[str, bytes], kecamatan: dict[str, str]
) -> None:
    polygons, names = [kecamatan[c] for c in NAMED], list(NAMED.values())
    first = cycles.run("1", {"a.xml": build(templates["id"], ORIGINAL, polygons, names)}, "17:25")
    before = {m["village_code"] for m in cycles.residents(first)}
    successor = build(
        templates["id"], SUCCESSOR, [*polygons, kecamatan["35.78.23"]], [*names, "JAMBANGAN"],
        sent="2026-11-28T17:30:00+07:00", effective="2026-11-28T17:30:00+07:00",
    )  # fmt: skip
    second = cycles.run("2", {"a.xml": build(templates["id"], ORIGINAL, polygons, names), "b.xml": successor}, "17:35")
    messages = cycles.residents(second)
    heard = {str(m["village_code"]) for m in messages}
    covered = set(pd.read_csv(second.out_dir / "summary.csv", dtype={"code": str}).query("level > 0")["code"])
    jambangan = {c for c in covered if c.startswith("35.78.23.")}
    assert jambangan
    assert jambangan <= heard  # the newly covered kecamatan is alerted
    assert heard == covered - before  # ... and only what is newly covered: nobody hears "new alert" again
    assert all(m["level"] != "none" for m in messages)
    assert cycles.threads() == {ORIGINAL}
    assert any(SUCCESSOR in n and "continues that thread" in n for n in second.notes)


def test_identity_ignores_polygon_order_start_and_direction(
    templates: dict[str, bytes], kecamatan: dict[str, str]
) -> None:
    polygons, names = [kecamatan[c] for c in NAMED], list(NAMED.values())

    def backwards(ring: str) -> str:  # the same ring, drawn the other way round from another point
        points = ring.split()[:-1][::-1]
        return " ".join([*points, points[0]])

    flipped = [backwards(p) for p in polygons[::-1]]
    a = parse_cap(build(templates["id"], ORIGINAL, polygons, names), "a.xml")
    b = parse_cap(build(templates["id"], RESERVED_HOUR, flipped, names), "b.xml")
    c = parse_cap(build(templates["id"], RESERVED_SEQ, polygons[:1], names), "c.xml")
    assert a.content_key == b.content_key != c.content_key
    d = parse_cap(build(templates["id"], ORIGINAL, polygons, names, expires="2026-11-28T20:20:00+07:00"), "d.xml")
    assert d.content_key != a.content_key  # a new expiry is news, not a copy
    assert content_key  # the rule is documented on the function


def test_real_gorontalo_editions_under_different_identifiers_are_one_warning(shared_data: Path, tmp_path: Path) -> None:
    # The recorded pair shares an identifier; BMKG also serves the editions with another hour field.
    cap = shared_data / "bmkg" / "cap"
    (tmp_path / "id.xml").write_bytes((cap / "siaga_cap-id-CGT20260924002_alert.xml").read_bytes())
    english = (cap / "siaga_cap-en-CGT20260924002_alert.xml").read_bytes()
    (tmp_path / "en.xml").write_bytes(english.replace(b"2026.09.24.07.75.002", b"2026.09.24.08.75.002"))
    batch = read_warnings(str(tmp_path))
    (warning,) = batch.warnings
    assert warning.identifier == "2.49.0.1.360.0.2026.09.24.07.75.002"
    assert [a.identifier for a in warning.aliases] == ["2.49.0.1.360.0.2026.09.24.08.75.002"]


def test_cancel_that_references_a_reserved_copy_cancels_the_thread(
    cycles: Cycles, templates: dict[str, bytes], kecamatan: dict[str, str]
) -> None:
    polygons, names = [kecamatan[c] for c in NAMED], list(NAMED.values())
    first = cycles.run("1", {"a.xml": build(templates["id"], ORIGINAL, polygons, names)}, "17:25")
    alerted = {m["to"] for m in cycles.residents(first)}
    cycles.run("2", {"b.xml": build(templates["id"], RESERVED_HOUR, polygons, names)}, "17:40")
    # BMKG cancels, naming the identifier it served last: the copy's. Everyone alerted must hear it.
    reference = f"cuaca.ekstrem@bmkg.go.id,{RESERVED_HOUR},2026-11-28T17:00:00+07:00"
    cancel = build(templates["id"], "2.49.0.1.360.0.2026.11.28.11.35.009", polygons, names,
                   sent="2026-11-28T17:50:00+07:00")  # fmt: skip
    cancel = cancel.replace(b"<msgType>Alert</msgType>", f"<msgType>Cancel</msgType>\n  <references>{reference}"
                            "</references>".encode())  # fmt: skip
    ended = cycles.run("3", {"c.xml": cancel}, "17:55")
    assert ended.transitions.get("cancel", 0) > 0
    assert {m["to"] for m in cycles.residents(ended)} == alerted
    assert cycles.threads() == {ORIGINAL}
    assert cycles.store.active_alerts(cycles.config.id) == []


def test_each_language_hears_bmkg_s_own_words_when_both_editions_are_read(
    cycles: Cycles, templates: dict[str, bytes], kecamatan: dict[str, str]
) -> None:
    polygons, names = [kecamatan[c] for c in NAMED], list(NAMED.values())
    both = {
        "id.xml": build(templates["id"], ORIGINAL, polygons, names),
        "en.xml": build(templates["en"], ENGLISH, polygons, names),
    }
    messages = cycles.residents(cycles.run("1", both, "17:25"))
    by_language = {lang: [m["text"] for m in messages if m["language"] == lang] for lang in ("id", "en")}
    assert by_language["id"]
    assert by_language["en"]
    assert all("Hujan Lebat dan Petir" in t for t in by_language["id"])
    assert all("Thunderstorm" in t for t in by_language["en"])  # the English edition's event, not a translation
    assert len({m["to"] for m in messages}) == len(messages)  # still one message per resident

"""CAP 1.2 / RSS parsing: real BMKG files and every kind of bad input."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from tests_support import minimal_cap

from ews.errors import CapError, FetchError
from ews.ingest.bmkg_cap import canonical_ring, named_areas, parse_cap, parse_rss, read_polygon, read_warnings, rebase

GOOD_POLYGON = "-7.30,112.70 -7.30,112.80 -7.20,112.80 -7.20,112.70 -7.30,112.70"


def cap(
    polygons: tuple[str, ...] = (GOOD_POLYGON,),
    *,
    msg_type: str = "Alert",
    identifier: str = "2.49.0.1.360.0.2026.11.28.10.35.001",
    extra_alert: str = "",
    severity: str = "Severe",
    expires: str = "2026-11-28T20:00:00+07:00",
) -> bytes:
    """A minimal BMKG-shaped CAP 1.2 alert (see tests_support.minimal_cap)."""
    return minimal_cap(
        polygons, msg_type=msg_type, identifier=identifier, extra_alert=extra_alert, severity=severity, expires=expires
    )


def test_parses_real_gorontalo_alert(cap_dir: Path) -> None:
    w = parse_cap((cap_dir / "siaga_cap-id-CGT20260924002_alert.xml").read_bytes(), "cgt.xml")
    assert w.identifier == "2.49.0.1.360.0.2026.09.24.07.75.002"
    assert (w.msg_type, w.status, w.language) == ("Alert", "Actual", "id")
    assert (w.urgency, w.severity, w.certainty) == ("Immediate", "Moderate", "Observed")
    assert w.polygon_count == 4
    assert w.named_areas == ("DENGILO", "MANANGGU")
    # BMKG's local offset is kept and instants compare correctly: 15:27 WITA is 07:27 UTC.
    assert w.effective is not None
    assert w.effective.utcoffset().total_seconds() == 8 * 3600
    assert w.effective.isoformat() == "2026-09-24T15:27:00+08:00"
    assert w.expires is not None
    assert (w.expires - w.effective).total_seconds() == 2 * 3600
    # lat,lon in CAP -> lon,lat in the geometry: Gorontalo is at lon ~122, lat ~0.7
    minx, miny, maxx, maxy = w.geometry.bounds
    assert 121.9 < minx < maxx < 122.3
    assert 0.3 < miny < maxy < 1.0
    assert w.web.startswith("https://nowcasting.bmkg.go.id/")
    assert w.notes == ()


def test_parses_english_alert_and_named_areas(cap_dir: Path) -> None:
    w = parse_cap((cap_dir / "rallsix66_CKT20261010004_alert_en.xml").read_bytes(), "ckt.xml")
    assert w.language == "en"
    assert w.event == "Thunderstorm"
    assert w.named_areas == (
        "BUSANG",
        "GUNUNG TABUR",
        "LONG BAGUN",
        "MUARA MUNTAI",
        "MUARA WIS",
        "SEGAH",
        "TABALAR",
        "TABANG",
    )
    assert w.polygon_count == 9


def test_named_areas_with_dan() -> None:
    assert named_areas("… khususnya di Wiradesa, Kajen dan Karanganyar.\nKondisi …") == (
        "WIRADESA",
        "KAJEN",
        "KARANGANYAR",
    )
    assert named_areas("no list here") == ()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty file"),
        (b"   \n", "empty file"),
        (b"this is not xml", "not well-formed XML"),
        (b"<alert><unclosed></alert>", "not well-formed XML"),
        (
            b'<?xml version="1.0"?><!DOCTYPE alert [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
            b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&xxe;</identifier></alert>',
            "refused",
        ),
        (
            b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">'
            b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;">]><alert>&lol3;</alert>',
            "refused",
        ),
        (b"<alert xmlns='urn:oasis:names:tc:emergency:cap:1.1'/>", "expected CAP 1.2 <alert>"),
        (b"<rss version='2.0'><channel/></rss>", "expected CAP 1.2 <alert>"),
    ],
    ids=["empty", "blank", "not-xml", "malformed", "xxe", "entity-bomb", "cap-1.1", "rss-as-cap"],
)
def test_unusable_documents_are_refused_with_the_file_named(data: bytes, message: str) -> None:
    with pytest.raises(CapError, match=message) as info:
        parse_cap(data, "incoming/bad.xml")
    assert "incoming/bad.xml" in str(info.value)
    assert "root:" not in str(info.value)  # nothing of /etc/passwd leaks into the message


def unnamed(body: bytes) -> bytes:
    """The same alert with a description that names no kecamatan."""
    return body.replace(b", khususnya di WONOCOLO.", b".")


def test_cap_without_polygon_or_named_area_is_rejected() -> None:
    with pytest.raises(CapError, match=r"no usable <polygon> or <circle> .* and no kecamatan named"):
        parse_cap(unnamed(cap(polygons=())), "nopoly.xml")


def test_cap_without_polygon_is_located_by_its_named_kecamatan() -> None:
    w = parse_cap(cap(polygons=()), "nopoly.xml")
    assert w.geometry.is_empty
    assert w.named_areas == ("WONOCOLO",)
    assert any(n.startswith("LOCATED BY NAME") for n in w.notes)


def test_polygon_not_closed_is_unusable() -> None:
    open_ring = "-7.30,112.70 -7.30,112.80 -7.20,112.80 -7.20,112.70"
    with pytest.raises(CapError, match=r"open.xml: not closed: first point -7.3,112.7 differs from last"):
        read_polygon(open_ring, "open.xml")


def test_self_crossing_polygon_is_repaired_and_noted() -> None:
    # A bow-tie: two triangles meeting at (lat -7.25, lon 112.75), each 0.1 x 0.05 / 2 = 0.0025 square degrees.
    bowtie = "-7.30,112.70 -7.20,112.80 -7.30,112.80 -7.20,112.70 -7.30,112.70"
    w = parse_cap(cap(polygons=(GOOD_POLYGON, bowtie)), "bowtie.xml")
    assert w.polygon_count == 2
    assert w.unusable_polygons == 0
    (note,) = w.notes
    assert "polygon 2: outline crosses itself (Self-intersection" in note
    assert "repaired (shapely.make_valid" in note
    repaired = read_polygon(bowtie, "bowtie").geometry
    assert repaired.is_valid
    assert repaired.area == pytest.approx(0.005)


def test_tiny_bow_tie_near_a_vertex_changes_the_area_by_a_trace() -> None:
    # BMKG's real defect: the outline crosses itself in a tiny loop at one corner of a 0.1 x 0.1 degree box.
    ring = "-7.30,112.70 -7.30,112.80 -7.20,112.80 -7.2,112.7001 -7.2001,112.7 -7.1999,112.7 -7.30,112.70"
    reading = read_polygon(ring, "corner")
    assert reading.geometry.area == pytest.approx(0.01, rel=1e-3)
    assert reading.note is not None
    change = float(reading.note.split("area change ")[1].split(" %")[0])
    assert abs(change) < 0.01


def test_a_bad_polygon_drops_only_itself() -> None:
    line = "-7.3,112.7 -7.3,112.8 -7.3,112.9 -7.3,112.7"
    w = parse_cap(cap(polygons=(line, GOOD_POLYGON)), "two.xml")
    assert w.polygon_count == 1
    assert w.unusable_polygons == 1
    assert w.geometry.area == pytest.approx(0.01)
    assert any("polygon 1: " in n and "encloses no area" in n and "polygon dropped" in n for n in w.notes)


def test_degenerate_only_polygon_is_located_by_name(cap_dir: Path) -> None:
    # The real Jawa Tengah fixture has one 3-point polygon on a straight line and names four kecamatan.
    path = cap_dir / "dhanyyudi_cap_jateng.xml"
    w = parse_cap(path.read_bytes(), str(path))
    assert w.geometry.is_empty
    assert w.unusable_polygons == 1
    assert w.named_areas == ("WIRADESA", "KAJEN", "KARANGANYAR", "PEKALONGAN")
    assert any("polygon 1: " in n and "encloses no area" in n for n in w.notes)
    assert any(n.startswith("LOCATED BY NAME: all 1 polygon(s)") for n in w.notes)


@pytest.mark.parametrize(
    ("polygon", "message"),
    [
        ("-7.3,112.7 -7.3,112.8 -7.3,112.7", "3 points; a CAP polygon needs at least 4"),
        ("-7.3;112.7 -7.3,112.8 -7.2,112.8 -7.3;112.7", r"point 1 '-7.3;112.7' is not 'lat,lon'"),
        ("-97.3,112.7 -7.3,112.8 -7.2,112.8 -97.3,112.7", "out of range"),
        # Surabaya written lon,lat: latitude 112.7 is impossible.
        ("112.70,-7.30 112.80,-7.30 112.80,-7.20 112.70,-7.20 112.70,-7.30", r"'112.70,-7.30' looks swapped"),
    ],
)
def test_bad_points_are_named(polygon: str, message: str) -> None:
    with pytest.raises(CapError, match=message):
        read_polygon(polygon, "pts.xml")
    w = parse_cap(cap(polygons=(polygon, GOOD_POLYGON)), "pts.xml")  # in an alert: only that polygon is dropped
    assert w.polygon_count == 1
    assert any("polygon 1:" in n and "polygon dropped" in n for n in w.notes)


def test_canonical_ring_ignores_start_point_direction_and_trailing_digits() -> None:
    a = [(112.7, -7.3), (112.8, -7.3), (112.8, -7.2), (112.7, -7.2), (112.7, -7.3)]
    rotated = [*a[2:-1], *a[:2], a[2]]
    reversed_ = a[::-1]
    written = [(x + 0.0001, y) for x, y in a]  # the same point written with more digits
    assert canonical_ring(a) == canonical_ring(rotated) == canonical_ring(reversed_) == canonical_ring(written)
    assert canonical_ring(a) != canonical_ring([(112.7, -7.3), (112.9, -7.3), (112.8, -7.2), (112.7, -7.3)])


def test_polygon_outside_indonesia_warns_and_is_kept(caplog: pytest.LogCaptureFixture) -> None:
    # A valid polygon in the Gulf of Guinea (lat 5..6, lon 10..11): parsed, kept, and flagged loudly.
    elsewhere = "5.0,10.0 5.0,11.0 6.0,11.0 6.0,10.0 5.0,10.0"
    with caplog.at_level(logging.WARNING):
        w = parse_cap(cap(polygons=(elsewhere,)), "elsewhere.xml")
    assert w.polygon_count == 1
    assert not w.geometry.is_empty
    assert len(w.notes) == 1
    assert "outside Indonesia (lon 10.00..11.00, lat 5.00..6.00)" in w.notes[0]
    assert "outside Indonesia" in caplog.text


def test_expires_before_effective_is_rejected() -> None:
    with pytest.raises(CapError, match=r"<expires> .* is not after <effective>"):
        parse_cap(cap(expires="2026-11-28T16:00:00+07:00"), "times.xml")


def test_bad_enumeration_is_named() -> None:
    with pytest.raises(CapError, match=r"<severity> 'Huge' is not one of"):
        parse_cap(cap(severity="Huge"), "enum.xml")


def test_update_needs_references() -> None:
    with pytest.raises(CapError, match="without <references>"):
        parse_cap(cap(msg_type="Update"), "upd.xml")
    ref = "cuaca.ekstrem@bmkg.go.id,2.49.0.1.360.0.2026.11.28.10.35.001,2026-11-28T17:00:00+07:00"
    w = parse_cap(cap(msg_type="Update", identifier="x.2", extra_alert=f"<references>{ref}</references>"), "upd.xml")
    assert w.references == (ref,)


def test_circle_becomes_a_polygon_of_the_right_size() -> None:
    body = cap().replace(f"<polygon>{GOOD_POLYGON}</polygon>".encode(), b"<circle>-7.25,112.75 10</circle>")
    w = parse_cap(body, "circle.xml")
    # A 10 km radius spans ~0.18 degrees of latitude (2 * 10 / 110.6).
    _minx, miny, _maxx, maxy = w.geometry.bounds
    assert maxy - miny == pytest.approx(20 / 110.6, rel=0.01)


def test_batch_keeps_going_past_a_bad_file(tmp_path: Path, cap_dir: Path) -> None:
    (tmp_path / "a_good.xml").write_bytes((cap_dir / "siaga_cap-id-CGT20260924002_alert.xml").read_bytes())
    (tmp_path / "b_broken.xml").write_bytes(b"<alert")
    (tmp_path / "c_empty.xml").write_bytes(b"")
    (tmp_path / "d_good.xml").write_bytes(cap())
    batch = read_warnings(str(tmp_path))
    assert [w.identifier for w in batch.warnings] == [
        "2.49.0.1.360.0.2026.09.24.07.75.002",
        "2.49.0.1.360.0.2026.11.28.10.35.001",
    ]
    assert [Path(p.source).name for p in batch.problems] == ["b_broken.xml", "c_empty.xml"]
    assert "not well-formed" in batch.problems[0].message
    assert "empty file" in batch.problems[1].message


def test_same_identifier_twice_is_kept_once_in_the_preferred_language(cap_dir: Path) -> None:
    batch = read_warnings(str(cap_dir))
    ids = [w.identifier for w in batch.warnings]
    assert len(ids) == len(set(ids))
    gorontalo = next(w for w in batch.warnings if w.identifier.endswith(".75.002"))
    assert gorontalo.language == "id"  # id and en files share the identifier; id is preferred
    assert batch.duplicates == 1


def test_rss_index_links_are_followed_on_the_base_url(shared_data: Path) -> None:
    rss = (shared_data / "bmkg" / "rss" / "siaga_nowcast-rss-id_2026-09-24.xml").read_bytes()
    items = parse_rss(rss, "rss.xml")
    assert len(items) == 11
    assert items[0].guid == "2.49.0.1.360.0.2026.09.24.07.75.002"
    assert (
        rebase(items[0].link, "http://127.0.0.1:9/") == "http://127.0.0.1:9/alerts/nowcast/id/CGT20260924002_alert.xml"
    )


def test_live_index_over_loopback_records_missing_files(bmkg_site: str) -> None:
    batch = read_warnings("bmkg", base_url=bmkg_site, fetch=None)
    assert [w.identifier for w in batch.warnings] == ["2.49.0.1.360.0.2026.09.24.07.75.002"]
    assert len(batch.problems) == 10
    assert all("HTTP 404" in p.message for p in batch.problems)


def test_unreachable_index_is_a_degraded_source() -> None:
    def down(url: str) -> bytes:
        raise FetchError(f"{url}: connection refused")

    batch = read_warnings("bmkg", base_url="http://127.0.0.1:9", fetch=down)
    assert batch.warnings == []
    (problem,) = batch.problems
    assert problem.message.startswith("DEGRADED: BMKG nowcast index (EWS_BMKG_BASE_URL) not fetched")
    assert "rss.xml: connection refused" in problem.message


def test_rss_item_without_link_skips_only_that_item(shared_data: Path) -> None:
    rss = (shared_data / "bmkg" / "rss" / "siaga_nowcast-rss-id_2026-09-24.xml").read_bytes()
    first_link = rss.index(b"<link>", rss.index(b"<item>"))
    broken = rss[:first_link] + rss[rss.index(b"</link>", first_link) + len(b"</link>") :]
    with pytest.raises(CapError, match=r"item 1 .* has no <link>"):
        parse_rss(broken, "rss.xml")
    problems: list = []
    assert len(parse_rss(broken, "rss.xml", problems)) == 10
    assert "item 1 (2.49.0.1.360.0.2026.09.24.07.75.002) has no <link>" in problems[0].message


def test_missing_source_is_named() -> None:
    with pytest.raises(CapError, match=r"no/such/file\.xml: no such file or folder"):
        read_warnings("no/such/file.xml")


@pytest.mark.parametrize(
    ("description", "names"),
    [
        (
            "… khususnya di Bl. Limbangan, Cibatu dan Leles. Kondisi ini berpotensi …",
            ("BL. LIMBANGAN", "CIBATU", "LELES"),
        ),
        ("… khususnya di Wonocolo, Kec. GAJUNGAN.\n Kondisi …", ("WONOCOLO", "KEC. GAJUNGAN")),
        ("… especially in: BUSANG, GUNUNG TABUR and TABANG.\n These …", ("BUSANG", "GUNUNG TABUR", "TABANG")),
    ],
)
def test_named_areas_keep_abbreviations_with_a_period(description: str, names: tuple[str, ...]) -> None:
    assert named_areas(description) == names

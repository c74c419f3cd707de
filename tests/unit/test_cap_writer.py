"""ews' CAP 1.2 writer and validator: every level x transition x status, the extra rules, the Atom index."""

from __future__ import annotations

import dataclasses
import itertools
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from shapely.geometry import MultiPolygon, Point, Polygon

from ews.alerts.model import Transition
from ews.cap import CapArea, CapMessage, CapReference, atom_feed, cap_identifier, level_to_cap, to_cap_xml
from ews.cap.validate import CapValidator
from ews.cap.writer import (
    END_VALIDITY,
    HEADLINE_MAX,
    atom_feed_of,
    cap_time,
    event_in_english,
    feed_entry,
    msg_types_for,
    polygon_rings,
)
from ews.config import LevelRules
from ews.errors import CapError, DataValidationError
from ews.impact.levels import village_level
from ews.ingest.bmkg_cap import parse_cap, polygon_from_cap
from ews.types import Level

CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"
ATOM = "{http://www.w3.org/2005/Atom}"
WIB = timezone(timedelta(hours=7))
WITA = timezone(timedelta(hours=8))
BMKG_ID = "2.49.0.1.360.0.2026.11.28.10.35.001"
SENDER = "ews@bpbd-jatim.example.id"

# A small, real-looking kelurahan outline south-west of Surabaya (about 1.5 km across), lon/lat.
KEBRAON = Polygon(
    [
        (112.70123, -7.33305),
        (112.70588, -7.33187),
        (112.71012, -7.33291),
        (112.71154, -7.33702),
        (112.71047, -7.34215),
        (112.70611, -7.34480),
        (112.70180, -7.34331),
        (112.69978, -7.33904),
        (112.70123, -7.33305),
    ]
)
# Two parts: a 0.01 x 0.01 degree square with a 0.004 x 0.004 hole, and a 0.005 x 0.004 rectangle.
# CAP has no holes, so the written area is 1e-4 + 2e-5 = 1.2e-4 square degrees (the hole is filled),
# while the input covers 1e-4 - 1.6e-5 + 2e-5 = 1.04e-4.
WITH_HOLE = MultiPolygon(
    [
        Polygon(
            [(112.70, -7.30), (112.71, -7.30), (112.71, -7.29), (112.70, -7.29)],
            [[(112.703, -7.297), (112.707, -7.297), (112.707, -7.293), (112.703, -7.293)]],
        ),
        Polygon([(112.72, -7.30), (112.725, -7.30), (112.725, -7.296), (112.72, -7.296)]),
    ]
)

LEVELS = [Level.WASPADA, Level.SIAGA, Level.AWAS]
TRANSITIONS = [
    Transition.NEW,
    Transition.ESCALATE,
    Transition.UPDATE,
    Transition.DEESCALATE,
    Transition.ALL_CLEAR,
    Transition.EXPIRE,
    Transition.CANCEL,
]
REFS = (
    CapReference(SENDER, "ews.jawa-timur.d6e31b009118.35.78.01.1001.1", datetime(2026, 11, 28, 16, 5, tzinfo=WIB)),
    CapReference(SENDER, "ews.jawa-timur.d6e31b009118.35.78.01.1001.2", datetime(2026, 11, 28, 16, 35, tzinfo=WIB)),
)
REFS_TEXT = (
    f"{SENDER},ews.jawa-timur.d6e31b009118.35.78.01.1001.1,2026-11-28T16:05:00+07:00",
    f"{SENDER},ews.jawa-timur.d6e31b009118.35.78.01.1001.2,2026-11-28T16:35:00+07:00",
)


def message(**changes: object) -> CapMessage:
    """A SIAGA escalation for Kebraon, sent 17:05 WIB for a warning valid 17:00-20:00 WIB."""
    base = CapMessage(
        identifier="ews.jawa-timur.d6e31b009118.35.78.01.1001.3",
        sender=SENDER,
        sent=datetime(2026, 11, 28, 17, 5, tzinfo=WIB),
        status="Actual",
        msg_type="Update",
        references=REFS,
        level=Level.SIAGA,
        transition=Transition.ESCALATE,
        event="Hujan Lebat dan Petir",
        effective=datetime(2026, 11, 28, 17, 0, tzinfo=WIB),
        expires=datetime(2026, 11, 28, 20, 0, tzinfo=WIB),
        source_warning_id=BMKG_ID,
        source_web="https://nowcasting.bmkg.go.id/",
        area=CapArea("35.78.01.1001", "Kebraon", "Karang Pilang", "Kota Surabaya", KEBRAON),
        zone_name="WIB",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def infos(xml: bytes) -> dict[str, ET.Element]:
    root = ET.fromstring(xml)  # noqa: S314 - our own output
    return {i.findtext(f"{CAP}language", ""): i for i in root.findall(f"{CAP}info")}


def param(info: ET.Element, tag: str, name: str) -> list[str]:
    return [p.findtext(f"{CAP}value", "") for p in info.findall(f"{CAP}{tag}") if p.findtext(f"{CAP}valueName") == name]


@pytest.fixture(scope="module")
def validator(shared_data: Path) -> CapValidator:
    return CapValidator(shared_data / "cap_schema" / "CAP-v1.2.xsd")


# --- every combination is valid CAP and round-trips through our own parser -------------------------------


@pytest.mark.parametrize("geometry", [KEBRAON, WITH_HOLE], ids=["polygon", "multipolygon-with-hole"])
@pytest.mark.parametrize("status", ["Actual", "Exercise"])
@pytest.mark.parametrize("transition", TRANSITIONS, ids=[t.value for t in TRANSITIONS])
@pytest.mark.parametrize("level", LEVELS, ids=[lv.label for lv in LEVELS])
def test_every_combination_validates_and_round_trips(
    validator: CapValidator, level: Level, transition: Transition, status: str, geometry: Polygon
) -> None:
    msg_type = msg_types_for(transition)[0]
    references = () if msg_type == "Alert" else REFS
    area = CapArea("35.78.01.1001", "Kebraon", "Karang Pilang", "Kota Surabaya", geometry)
    m = message(level=level, transition=transition, status=status, msg_type=msg_type, references=references, area=area)
    xml = to_cap_xml(m)

    assert validator.problems(xml) == []
    w = parse_cap(xml, "ews.xml")
    assert (w.identifier, w.msg_type, w.status, w.language) == (m.identifier, msg_type, status, "id")
    assert w.references == (() if msg_type == "Alert" else REFS_TEXT)
    # Holes are filled in CAP: 1.2e-4 square degrees for WITH_HOLE (see above), the outline for KEBRAON.
    expected_area = KEBRAON.area if geometry is KEBRAON else 1.2e-4
    assert w.geometry.area == pytest.approx(expected_area, rel=0.01)
    assert w.polygon_count == (1 if geometry is KEBRAON else 2)
    if transition.ends:
        assert (w.severity, w.urgency, w.certainty) == ("Minor", "Past", "Observed")
    else:
        assert (w.severity, w.urgency, w.certainty) == level_to_cap(level)
    both = infos(xml)
    assert list(both) == ["id", "en"]
    for info in both.values():
        assert param(info, "eventCode", "ews:level") == [level.label]
        assert param(info, "parameter", "ews:transition") == [transition.value]
        assert param(info, "parameter", "ews:sourceIdentifier") == [BMKG_ID]
        area_node = info.find(f"{CAP}area")
        assert area_node is not None
        assert param(area_node, "geocode", "KEMENDAGRI") == ["35.78.01.1001"]
        assert len(info.findtext(f"{CAP}headline", "")) <= HEADLINE_MAX


# --- level mapping ---------------------------------------------------------------------------------------


def test_level_mapping_table() -> None:
    assert level_to_cap(Level.WASPADA) == ("Moderate", "Expected", "Likely")
    assert level_to_cap(Level.SIAGA) == ("Severe", "Expected", "Likely")
    assert level_to_cap(Level.AWAS) == ("Extreme", "Immediate", "Likely")


def test_level_mapping_is_monotonic() -> None:
    severity = ["Unknown", "Minor", "Moderate", "Severe", "Extreme"]
    urgency = ["Past", "Unknown", "Future", "Expected", "Immediate"]
    certainty = ["Unlikely", "Unknown", "Possible", "Likely", "Observed"]
    ranks = [
        (severity.index(s), urgency.index(u), certainty.index(c)) for s, u, c in (level_to_cap(lv) for lv in LEVELS)
    ]
    for lower, higher in itertools.pairwise(ranks):
        assert all(a <= b for a, b in zip(lower, higher, strict=True)), (lower, higher)
    assert [r[0] for r in ranks] == sorted({r[0] for r in ranks})  # severity strictly rises


@pytest.mark.parametrize("level", LEVELS)
def test_level_mapping_reads_back_to_the_same_level(level: Level) -> None:
    # ews' own reading of a CAP warning over a whole village gives back the level that was written.
    assert village_level(*level_to_cap(level), 1.0, LevelRules()) == level


def test_level_none_is_not_announced() -> None:
    with pytest.raises(CapError, match="only Waspada, Siaga and Awas"):
        level_to_cap(Level.NONE)
    with pytest.raises(CapError, match="only Waspada, Siaga and Awas"):
        to_cap_xml(message(level=Level.NONE))


# --- contents of the two info blocks ----------------------------------------------------------------------


def test_headlines_events_and_instructions() -> None:
    both = infos(to_cap_xml(message()))
    assert both["id"].findtext(f"{CAP}headline") == "SIAGA: Hujan Lebat dan Petir di Kebraon, Karang Pilang"
    assert both["en"].findtext(f"{CAP}headline") == "SIAGA: Heavy Rain and Thunderstorms in Kebraon, Karang Pilang"
    assert both["id"].findtext(f"{CAP}event") == "Hujan Lebat dan Petir"
    assert both["en"].findtext(f"{CAP}event") == "Heavy Rain and Thunderstorms"
    assert [i.findtext(f"{CAP}responseType") for i in both.values()] == ["Prepare", "Prepare"]
    assert both["id"].findtext(f"{CAP}instruction", "").startswith("Bersiap mengungsi")
    assert both["en"].findtext(f"{CAP}instruction", "").startswith("Prepare to evacuate")
    assert both["id"].findtext(f"{CAP}senderName") == "ews (data: BMKG)"
    assert both["id"].findtext(f"{CAP}web") == "https://nowcasting.bmkg.go.id/"
    for info in both.values():
        area = info.find(f"{CAP}area")
        assert area is not None
        assert area.findtext(f"{CAP}areaDesc") == "Kebraon, Kec. Karang Pilang, Kota Surabaya"
    description = both["id"].findtext(f"{CAP}description", "")
    assert "Tingkat peringatan naik menjadi SIAGA" in description
    assert "28 Nov 2026 17:00 WIB sampai 28 Nov 2026 20:00 WIB" in description


@pytest.mark.parametrize(
    ("level", "response"), [(Level.WASPADA, "Monitor"), (Level.SIAGA, "Prepare"), (Level.AWAS, "Evacuate")]
)
def test_response_type_per_level(level: Level, response: str) -> None:
    both = infos(to_cap_xml(message(level=level)))
    assert {i.findtext(f"{CAP}responseType") for i in both.values()} == {response}


@pytest.mark.parametrize(
    ("transition", "msg_type", "id_text", "en_text", "id_word"),
    [
        (Transition.ALL_CLEAR, "Update", "Peringatan telah berakhir", "The warning is over", "BERAKHIR"),
        (Transition.EXPIRE, "Update", "Peringatan telah berakhir", "The warning is over", "BERAKHIR"),
        (Transition.CANCEL, "Cancel", "Peringatan telah dicabut", "The warning has been cancelled", "DICABUT"),
    ],
)
def test_ending_messages(transition: Transition, msg_type: str, id_text: str, en_text: str, id_word: str) -> None:
    xml = to_cap_xml(message(transition=transition, msg_type=msg_type))
    both = infos(xml)
    for info in both.values():
        assert info.findtext(f"{CAP}responseType") == "AllClear"
        assert info.findtext(f"{CAP}urgency") == "Past"
    assert both["id"].findtext(f"{CAP}instruction", "").startswith(id_text)
    assert both["en"].findtext(f"{CAP}instruction", "").startswith(en_text)
    assert both["id"].findtext(f"{CAP}headline") == f"{id_word}: SIAGA Hujan Lebat dan Petir di Kebraon, Karang Pilang"
    # An ending takes effect when sent (17:05) and lasts with the source warning (20:00), which is later
    # than sent + END_VALIDITY (18:05).
    assert both["id"].findtext(f"{CAP}effective") == "2026-11-28T17:05:00+07:00"
    assert both["id"].findtext(f"{CAP}expires") == "2026-11-28T20:00:00+07:00"


def test_expire_sent_after_the_warning_ended_stays_valid_for_an_hour() -> None:
    sent = datetime(2026, 11, 28, 20, 10, tzinfo=WIB)  # the warning ended at 20:00
    xml = to_cap_xml(message(transition=Transition.EXPIRE, sent=sent))
    info = infos(xml)["id"]
    assert END_VALIDITY == timedelta(hours=1)
    assert info.findtext(f"{CAP}expires") == "2026-11-28T21:10:00+07:00"


def test_exercise_is_marked() -> None:
    xml = to_cap_xml(message(status="Exercise"))
    root = ET.fromstring(xml)  # noqa: S314 - our own output
    assert root.findtext(f"{CAP}note", "").startswith("Exercise")
    both = infos(xml)
    assert both["id"].findtext(f"{CAP}headline", "").startswith("LATIHAN - SIAGA:")
    assert both["en"].findtext(f"{CAP}headline", "").startswith("EXERCISE - SIAGA:")


def test_expires_omitted_when_unknown(validator: CapValidator) -> None:
    xml = to_cap_xml(message(expires=None))
    assert all(i.find(f"{CAP}expires") is None for i in infos(xml).values())
    assert validator.problems(xml) == []


def test_long_headline_is_cut_to_160() -> None:
    area = CapArea("35.78.01.1001", "Kebraon " * 30, "Karang Pilang", "Kota Surabaya", KEBRAON)
    headline = infos(to_cap_xml(message(area=area)))["id"].findtext(f"{CAP}headline", "")
    assert len(headline) == HEADLINE_MAX
    assert headline.endswith("…")


def test_xml_special_and_control_characters_are_safe(validator: CapValidator) -> None:
    area = CapArea("35.78.01.1001", "Kebraon <&> \x01", "Karang \"Pilang'", "Kota Surabaya", KEBRAON)
    xml = to_cap_xml(message(area=area, event="Hujan & Petir <lebat>"))
    assert validator.problems(xml) == []
    info = infos(xml)["id"]
    assert info.findtext(f"{CAP}event") == "Hujan & Petir <lebat>"
    assert info.findtext(f"{CAP}area/{CAP}areaDesc") == "Kebraon <&> , Kec. Karang \"Pilang', Kota Surabaya"


def test_english_event_names() -> None:
    assert event_in_english("Hujan Lebat") == "Heavy Rain"
    assert event_in_english("hujan  lebat DISERTAI petir") == "Heavy Rain with Thunderstorms"
    assert event_in_english("Angin Kencang") == "Strong Winds"
    assert event_in_english("Thunderstorm") == "Thunderstorm"
    assert event_in_english("Kabut Tebal") == "Kabut Tebal"  # unknown: kept as BMKG wrote it


# --- times -----------------------------------------------------------------------------------------------


def test_times_keep_their_offset_and_drop_fractions() -> None:
    assert cap_time(datetime(2026, 9, 24, 15, 27, 0, 999_999, tzinfo=WITA)) == "2026-09-24T15:27:00+08:00"
    assert cap_time(datetime(2026, 9, 24, 7, 27, tzinfo=UTC)) == "2026-09-24T07:27:00-00:00"
    assert cap_time(datetime(2026, 9, 24, 7, 27, tzinfo=timezone(timedelta(hours=-3, minutes=-30)))) == (
        "2026-09-24T07:27:00-03:30"
    )
    xml = to_cap_xml(message(sent=datetime(2026, 11, 28, 17, 5, 3, 250_000, tzinfo=WIB)))
    root = ET.fromstring(xml)  # noqa: S314 - our own output
    assert root.findtext(f"{CAP}sent") == "2026-11-28T17:05:03+07:00"
    assert root.findtext(f"{CAP}references") == " ".join(REFS_TEXT)


def test_naive_times_are_refused() -> None:
    with pytest.raises(CapError, match="no timezone"):
        to_cap_xml(message(sent=datetime(2026, 11, 28, 17, 5)))
    with pytest.raises(CapError, match="no timezone"):
        cap_time(datetime(2026, 11, 28, 17, 5))


def test_an_expired_warning_is_not_announced() -> None:
    with pytest.raises(CapError, match="is not after sent"):
        to_cap_xml(message(sent=datetime(2026, 11, 28, 20, 0, tzinfo=WIB)))
    with pytest.raises(CapError, match="is not after effective"):
        to_cap_xml(message(effective=datetime(2026, 11, 28, 20, 0, tzinfo=WIB)))


# --- inconsistent input ----------------------------------------------------------------------------------


def test_msg_type_must_fit_the_transition() -> None:
    with pytest.raises(CapError, match="does not fit transition 'cancel'; use Cancel"):
        to_cap_xml(message(transition=Transition.CANCEL, msg_type="Update"))
    with pytest.raises(CapError, match="needs <references>"):
        to_cap_xml(message(references=()))
    with pytest.raises(CapError, match="sends no message"):
        to_cap_xml(message(transition=Transition.UNCHANGED))
    with pytest.raises(CapError, match="empty event"):
        to_cap_xml(message(event=" \x01 "))
    with pytest.raises(CapError, match="status 'Draft'"):
        to_cap_xml(message(status="Draft"))


def test_bad_identifiers_and_links_are_refused() -> None:
    with pytest.raises(CapError, match="without spaces, commas"):
        to_cap_xml(message(identifier="ews jatim 1"))
    with pytest.raises(CapError, match="referenced sender"):
        to_cap_xml(message(references=(CapReference("a,b", "x", datetime(2026, 11, 28, 16, 0, tzinfo=WIB)),)))
    with pytest.raises(CapError, match="not an absolute URL"):
        to_cap_xml(message(source_web="/alerts/nowcast"))


# --- identifiers -----------------------------------------------------------------------------------------


def test_cap_identifier_shape() -> None:
    # sha1("2.49.0.1.360.0.2026.11.28.10.35.001")[:12] == "d6e31b009118"
    assert cap_identifier("jawa-timur", BMKG_ID, "35.78.01.1001", 2) == "ews.jawa-timur.d6e31b009118.35.78.01.1001.2"
    assert cap_identifier("jawa-timur", BMKG_ID, "35.78.01.1001", 2) == cap_identifier(
        "jawa-timur", BMKG_ID, "35.78.01.1001", 2
    )
    assert cap_identifier("jawa-timur", BMKG_ID, "35.78.01.1001", 3) != cap_identifier(
        "jawa-timur", BMKG_ID, "35.78.01.1001", 2
    )


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("Jawa Timur", BMKG_ID, "35.78.01.1001", 1), "region id"),
        (("jawa-timur", BMKG_ID, "3578011001", 1), "is not a Kemendagri code"),
        (("jawa-timur", BMKG_ID, "35.78.01.100\u0660", 1), "is not a Kemendagri code"),  # Arabic-Indic zero
        (("jawa-timur", BMKG_ID, "35.78.01.1001\n", 1), "is not a Kemendagri code"),
        (("jawa-timur\n", BMKG_ID, "35.78.01.1001", 1), "region id"),
        (("jawa-timur", "", "35.78.01.1001", 1), "empty thread id"),
        (("jawa-timur", BMKG_ID, "35.78.01.1001", -1), "non-negative"),
    ],
)
def test_cap_identifier_refuses_bad_parts(args: tuple[str, str, str, int], match: str) -> None:
    with pytest.raises(CapError, match=match):
        cap_identifier(*args)


# --- polygons --------------------------------------------------------------------------------------------


def test_polygons_are_lat_lon_rounded_and_one_per_exterior_ring() -> None:
    assert polygon_rings(WITH_HOLE) == [
        "-7.3,112.7 -7.3,112.71 -7.29,112.71 -7.29,112.7 -7.3,112.7",
        "-7.3,112.72 -7.3,112.725 -7.296,112.725 -7.296,112.72 -7.3,112.72",
    ]
    # 112.70001 and 112.70002 both round to 112.7: the duplicate is merged, the ring closed again.
    square = Polygon([(112.70001, -7.3), (112.70002, -7.3), (112.71, -7.3), (112.71, -7.29), (112.7, -7.29)])
    assert polygon_rings(square) == ["-7.3,112.7 -7.3,112.71 -7.29,112.71 -7.29,112.7 -7.3,112.7"]


def test_a_ring_that_collapses_at_4_decimals_keeps_more() -> None:
    # Every corner rounds to -7.3,112.7 at 4 decimals; 5 decimals keep a valid triangle (4.5e-10 deg²).
    tiny = Polygon([(112.70001, -7.30001), (112.70004, -7.30001), (112.70001, -7.30004)])
    assert polygon_rings(tiny) == ["-7.30001,112.70001 -7.30001,112.70004 -7.30004,112.70001 -7.30001,112.70001"]


def test_a_spike_that_rounding_folds_is_written_exactly() -> None:
    # The spike's tip lies 4e-13 degrees from the first corner: at any fixed number of decimals the ring
    # touches itself, so the ring is written with its exact coordinates (still a valid CAP polygon).
    spike = Polygon(
        [
            (112.50390625, -7.25),
            (112.501953125, -7.25),
            (112.50390625, -7.249999999999609),
            (112.5021105558823, -7.246713003965594),
            (112.497446704606, -7.252956259747297),
        ]
    )
    (text,) = polygon_rings(spike)
    assert text.split()[:3] == ["-7.25,112.50390625", "-7.25,112.501953125", "-7.249999999999609,112.50390625"]
    assert polygon_from_cap(text, "spike").equals(spike)


def test_geometry_must_be_lon_lat_polygons() -> None:
    with pytest.raises(CapError, match="Point; a CAP area needs a Polygon"):
        polygon_rings(Point(112.7, -7.3))
    with pytest.raises(CapError, match="EPSG:4326"):
        polygon_rings(Polygon([(690000, 9190000), (691000, 9190000), (691000, 9191000)]))
    with pytest.raises(CapError, match="empty geometry"):
        polygon_rings(Polygon())
    bowtie = Polygon([(112.70, -7.30), (112.71, -7.29), (112.71, -7.30), (112.70, -7.29)])
    with pytest.raises(CapError, match="not a simple polygon"):
        polygon_rings(bowtie, "village 35.78.01.1001")


# --- the validator ---------------------------------------------------------------------------------------


def test_validator_needs_the_schema(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match="EWS_SHARED_DATA"):
        CapValidator(tmp_path / "missing.xsd")


def test_validator_accepts_the_oasis_and_google_examples(validator: CapValidator, shared_data: Path) -> None:
    files = sorted((shared_data / "cap_schema" / "examples_valid").glob("*.xml"))
    assert len(files) == 4
    for file in files:
        assert validator.problems(file.read_bytes()) == [], file.name


def test_validator_rejects_the_missing_scope_example(validator: CapValidator, shared_data: Path) -> None:
    file = shared_data / "cap_schema" / "examples_invalid" / "google-cap-library_invalid_missing-scope.cap.xml"
    problems = validator.problems(file.read_bytes())
    assert len(problems) == 1
    assert re.search(r"^line 9: .*info.*not expected.*scope", problems[0])


def _first_polygon(xml: bytes, text: str) -> bytes:
    return re.sub(rb"<polygon>[^<]*</polygon>", f"<polygon>{text}</polygon>".encode(), xml, count=1)


@pytest.mark.parametrize(
    ("breakage", "match"),
    [
        (
            lambda x: x.replace(b"<identifier>ews.jawa-timur", b"<identifier>ews jawa-timur"),
            r"<identifier> 'ews jawa-timur.*must not contain spaces, commas",
        ),
        (
            lambda x: re.sub(rb"<references>[^<]*</references>", b"<references>ews@x.id,only-two</references>", x),
            r"references entry 1 'ews@x.id,only-two' has 2 comma-separated parts",
        ),
        (
            lambda x: x.replace(b"<sent>2026-11-28T17:05:00+07:00", b"<sent>2026-11-28T21:00:00+07:00"),
            r"<expires> 2026-11-28T20:00:00\+07:00 is not after <sent>",
        ),
        (
            lambda x: x.replace(b"<expires>2026-11-28T20:00:00+07:00", b"<expires>2026-11-28T16:00:00+07:00", 1),
            r"info 1: <expires> 2026-11-28T16:00:00\+07:00 is not after <sent>",
        ),
        (
            lambda x: _first_polygon(x, "-7.30,112.70 -7.30,112.71 -7.29,112.71 -7.29,112.70"),
            r"info 1 area 1 polygon 1: polygon is not closed",
        ),
        (
            lambda x: _first_polygon(x, "-7.30,112.70 -7.29,112.71 -7.30,112.71 -7.29,112.70 -7.30,112.70"),
            r"polygon 1: polygon is not a simple ring \(Self-intersection",
        ),
        (
            lambda x: _first_polygon(x, "-7.30,112.70 -7.30,112.71 -7.30,112.70"),
            r"3 points; a CAP polygon needs at least 4",
        ),
        (
            lambda x: _first_polygon(x, "112.70,-7.30 112.71,-7.30 112.71,-7.29 112.70,-7.30"),
            r"point 1 '112.70,-7.30' is out of range",
        ),
        (
            lambda x: x.replace(b"<sent>2026-11-28T17:05:00+07:00", b"<sent>2026-11-28T10:05:00Z"),
            r"<sent> '2026-11-28T10:05:00Z' uses 'Z'",
        ),
        (
            lambda x: x.replace(b"<sent>2026-11-28T17:05:00+07:00", b"<sent>2026-11-28T17:05:00.5+07:00"),
            r"<sent> '2026-11-28T17:05:00.5\+07:00' has fractional seconds",
        ),
        (
            lambda x: x.replace(b",2026-11-28T16:05:00+07:00", b",2026-11-28T16:05:00"),
            r"<references sent> '2026-11-28T16:05:00' has no UTC offset",
        ),
        (
            lambda x: re.sub(rb"\s*<references>[^<]*</references>", b"", x),
            r"msgType Update without <references>",
        ),
        (
            lambda x: re.sub(rb"<info>.*</info>", b"", x, flags=re.DOTALL),
            r"msgType Update without <info>",
        ),
        (
            lambda x: x.replace(b"<web>https://nowcasting.bmkg.go.id/", b"<web>nowcasting", 1),
            r"<web> 'nowcasting' is not an absolute URI",
        ),
        (
            lambda x: x.replace(b"<scope>Public</scope>", b"<scope>Public</scope><restriction>BPBD</restriction>"),
            r"<restriction> is only for scope Restricted",
        ),
        (
            lambda x: x.replace(b"<scope>Public</scope>", b""),
            r"Expected is one of .*scope",
        ),
        (lambda x: x[: len(x) // 2], r"not well-formed XML"),
        (
            lambda x: x.replace(b"<alert", b"<!DOCTYPE alert [<!ENTITY e 'x'>]><alert", 1),
            r"declares a DTD",
        ),
    ],
    ids=[
        "identifier-with-space",
        "reference-with-2-parts",
        "sent-after-expires",
        "expires-before-sent",
        "unclosed-polygon",
        "self-crossing-polygon",
        "polygon-3-points",
        "polygon-lon-lat-swapped",
        "time-with-Z",
        "fractional-seconds",
        "reference-time-without-offset",
        "update-without-references",
        "update-without-info",
        "relative-web",
        "restriction-with-public-scope",
        "missing-scope",
        "truncated",
        "dtd",
    ],
)
def test_validator_rejects_broken_variants(validator: CapValidator, breakage: object, match: str) -> None:
    good = to_cap_xml(message())
    assert validator.problems(good) == []
    broken = breakage(good)  # type: ignore[operator]
    problems = validator.problems(broken)
    assert any(re.search(match, p) for p in problems), problems
    assert all(re.match(r"^line (\d+|\?): ", p) for p in problems), problems


# --- Atom index ------------------------------------------------------------------------------------------


def test_atom_feed_lists_entries_newest_first_then_by_identifier() -> None:
    # a and b are sent at the same instant (17:00 WIB = 18:00 WITA = 10:00 UTC): identifier order decides.
    a = message(identifier="ews.x.aaa.35.78.01.1001.1", sent=datetime(2026, 11, 28, 17, 0, tzinfo=WIB))
    b = message(identifier="ews.x.bbb.35.78.01.1001.1", sent=datetime(2026, 11, 28, 18, 0, tzinfo=WITA))
    c = message(identifier="ews.x.ccc.35.78.01.1001.1", sent=datetime(2026, 11, 28, 16, 30, tzinfo=WIB))
    d = message(identifier="ews.x.ddd.35.78.01.1001.1", sent=datetime(2026, 11, 28, 17, 30, tzinfo=WIB))
    feed = atom_feed(
        [c, b, a, d],
        feed_id="https://ews.example.id/cap/jawa-timur/index.atom",
        title="ews: peringatan aktif Jawa Timur",
        updated=datetime(2026, 11, 28, 17, 40, tzinfo=WIB),
        link_for=lambda m: f"https://ews.example.id/cap/{m.identifier}.xml",
    )
    root = ET.fromstring(feed)  # noqa: S314 - our own output
    assert root.tag == f"{ATOM}feed"
    assert root.findtext(f"{ATOM}id") == "https://ews.example.id/cap/jawa-timur/index.atom"
    assert root.findtext(f"{ATOM}title") == "ews: peringatan aktif Jawa Timur"
    assert root.findtext(f"{ATOM}updated") == "2026-11-28T17:40:00+07:00"
    entries = root.findall(f"{ATOM}entry")
    assert [e.findtext(f"{ATOM}id") for e in entries] == [
        "urn:ews:cap:ews.x.ddd.35.78.01.1001.1",
        "urn:ews:cap:ews.x.aaa.35.78.01.1001.1",
        "urn:ews:cap:ews.x.bbb.35.78.01.1001.1",
        "urn:ews:cap:ews.x.ccc.35.78.01.1001.1",
    ]
    first = entries[0]
    assert first.findtext(f"{ATOM}title") == "SIAGA: Hujan Lebat dan Petir di Kebraon, Karang Pilang"
    assert first.findtext(f"{ATOM}updated") == "2026-11-28T17:30:00+07:00"
    link = first.find(f"{ATOM}link")
    assert link is not None
    assert link.attrib == {
        "href": "https://ews.example.id/cap/ews.x.ddd.35.78.01.1001.1.xml",
        "type": "application/cap+xml",
    }
    assert "Kebraon" in first.findtext(f"{ATOM}summary", "")
    assert entries[2].findtext(f"{ATOM}updated") == "2026-11-28T18:00:00+08:00"


def test_atom_feed_needs_aware_times() -> None:
    with pytest.raises(CapError, match="no timezone"):
        atom_feed([], feed_id="urn:x", title="t", updated=datetime(2026, 11, 28), link_for=str)


@pytest.mark.parametrize(
    ("hazard", "transition", "expected_id", "expected_en"),
    [
        ("tsunami", Transition.NEW, "JAUHI PANTAI", "LEAVE THE COAST"),
        ("tsunami", Transition.EXPIRE, "Kembali ke pantai hanya bila", "Return to the coast only when"),
        ("gempa", Transition.NEW, "gempa susulan", "aftershocks"),
        ("gempa", Transition.ALL_CLEAR, "gempa susulan", "aftershocks"),
    ],
)
def test_cap_advice_category_and_issuer_follow_the_hazard(
    hazard: str, transition: Transition, expected_id: str, expected_en: str
) -> None:
    kind = "Alert" if transition is Transition.NEW else "Update"
    xml = to_cap_xml(message(hazard=hazard, transition=transition, msg_type=kind, event="Gempabumi Berpotensi Tsunami",
                             references=() if kind == "Alert" else REFS))  # fmt: skip
    for language, info in infos(xml).items():
        instruction = info.findtext(f"{CAP}instruction", "")
        assert (expected_id if language == "id" else expected_en) in instruction, instruction
        assert not any(w in instruction.lower() for w in ("sungai", "river", "genangan", "standing water"))
        assert info.findtext(f"{CAP}category") == "Geo"


def test_cap_of_ews_own_alert_never_credits_bmkg() -> None:
    xml = to_cap_xml(message(issuer="BPBD Jatim", msg_type="Alert", references=(), transition=Transition.NEW))
    for info in infos(xml).values():
        assert "BMKG memperingatkan" not in info.findtext(f"{CAP}description", "")
        assert "BMKG warns" not in info.findtext(f"{CAP}description", "")
        assert "BPBD Jatim" in info.findtext(f"{CAP}description", "")
        assert info.findtext(f"{CAP}senderName") == "ews (BPBD Jatim)"
        assert info.findtext(f"{CAP}category") == "Met"


# --- ews's XML writer gives ElementTree's bytes ----------------------------------------------------------


def _element_tree_bytes(root: ET.Element) -> bytes:
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def test_documents_are_byte_for_byte_what_element_tree_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    # The writer serialises its trees itself (ElementTree's writer was most of a file's cost); any difference
    # in a published byte would change files consumers already hold, so compare against ElementTree directly.
    odd = CapArea("35.78.01.1001", 'Kebraon <&> "x" \x01 \t é 東', "Karang \"Pilang'", "Kota Surabaya", WITH_HOLE)
    messages = [
        message(level=level, transition=transition, status=status, msg_type=msg_types_for(transition)[0],
                references=() if msg_types_for(transition)[0] == "Alert" else REFS, area=area)
        for level, transition, status, area in itertools.product(
            LEVELS, TRANSITIONS, ["Actual", "Exercise"], [message().area, odd]
        )
    ]  # fmt: skip
    messages.append(message(event='Hujan & Petir <lebat> "x"', source_web="https://x.example/?a=1&b=<2>"))
    feed = {
        "feed_id": 'https://ews.example.id/cap/index.atom?x="1"&y=<2>',
        "title": "ews: peringatan aktif",
        "updated": datetime(2026, 11, 28, 17, 40, tzinfo=WIB),
        "link_for": lambda m: f'https://ews.example.id/cap/{m.identifier}.xml?a=1&b="2"\n',
    }
    ours = [to_cap_xml(m) for m in messages]
    feeds = [atom_feed(messages, **feed), atom_feed([], **feed)]  # type: ignore[arg-type]
    monkeypatch.setattr("ews.cap.writer._document", _element_tree_bytes)
    assert ours == [to_cap_xml(m) for m in messages]
    # The feed is assembled from entries written once (kept across cycles): read back and written by ElementTree,
    # it is the same bytes.
    for document in feeds:
        root = ET.fromstring(document)  # noqa: S314 - our own output
        for node in root.iter():
            node.tag = node.tag.removeprefix(ATOM)  # the tree as the writer builds it: plain tags, xmlns on the root
        root.attrib = {"xmlns": ATOM[1:-1], **root.attrib}
        assert _element_tree_bytes(root) == document


def test_a_feed_from_kept_entries_is_the_feed_of_the_messages() -> None:
    messages = [
        message(identifier=f"ews.x.{n}.35.78.01.1001.1", sent=datetime(2026, 11, 28, 17, n % 3, tzinfo=WIB))
        for n in range(6)
    ]
    feed = {"feed_id": "urn:ews:feed:cap", "title": "t", "updated": datetime(2026, 11, 28, 17, 40, tzinfo=WIB)}
    entries = [feed_entry(m, f"{m.identifier}.xml") for m in reversed(messages)]
    assert atom_feed_of(entries, **feed) == atom_feed(messages, link_for=lambda m: f"{m.identifier}.xml", **feed)  # type: ignore[arg-type]

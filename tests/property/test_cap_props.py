"""Hypothesis invariants of ews.cap: identifiers, polygon rounding, and valid CAP for any text."""

from __future__ import annotations

import itertools
import math
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from shapely.geometry import Polygon

from ews.alerts.model import Transition
from ews.cap import CapArea, CapMessage, CapReference, cap_identifier, level_to_cap, to_cap_xml
from ews.cap.validate import CapValidator
from ews.cap.writer import HEADLINE_MAX, msg_types_for, polygon_rings
from ews.ingest.bmkg_cap import parse_cap, polygon_from_cap
from ews.types import Level

WIB = timezone(timedelta(hours=7))
ALLOWED = re.compile(r"^[A-Za-z0-9._-]+$")

region_ids = st.from_regex(r"\A[a-z0-9][a-z0-9_-]{0,20}\Z")
thread_ids = st.text(min_size=1, max_size=60)
village_codes = st.from_regex(r"\A[0-9]{2}\.[0-9]{2}\.[0-9]{2}\.[0-9]{4}\Z")
seqs = st.integers(min_value=0, max_value=10**6)
identifier_parts = st.tuples(region_ids, thread_ids, village_codes, seqs)
levels = st.sampled_from([Level.WASPADA, Level.SIAGA, Level.AWAS])
# Printable text, including XML specials and characters XML cannot carry (the writer drops the latter).
texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=80)


@given(identifier_parts)
def test_identifier_is_deterministic_and_uses_allowed_characters(parts: tuple[str, str, str, int]) -> None:
    identifier = cap_identifier(*parts)
    assert identifier == cap_identifier(*parts)
    assert ALLOWED.match(identifier), identifier
    assert identifier.startswith(f"ews.{parts[0]}.")
    assert identifier.endswith(f".{parts[2]}.{parts[3]}")


@given(identifier_parts, identifier_parts)
def test_different_inputs_give_different_identifiers(
    a: tuple[str, str, str, int], b: tuple[str, str, str, int]
) -> None:
    assume(a != b)
    assert cap_identifier(*a) != cap_identifier(*b)


@given(levels, levels)
def test_level_mapping_is_monotonic(a: Level, b: Level) -> None:
    order = {
        0: ["Unknown", "Minor", "Moderate", "Severe", "Extreme"],
        1: ["Past", "Unknown", "Future", "Expected", "Immediate"],
        2: ["Unlikely", "Unknown", "Possible", "Likely", "Observed"],
    }
    lo, hi = sorted((a, b))
    for axis, ranking in order.items():
        assert ranking.index(level_to_cap(lo)[axis]) <= ranking.index(level_to_cap(hi)[axis])


@st.composite
def star_polygons(draw: st.DrawFn) -> Polygon:
    """Simple polygons near Surabaya from 11 m to 1 km across: points sorted by angle around a centre."""
    lon = draw(st.floats(112.5, 112.9))
    lat = draw(st.floats(-7.4, -7.2))
    radius = draw(st.floats(1e-4, 1e-2))
    n = draw(st.integers(3, 24))
    angles = sorted(draw(st.lists(st.floats(0, 2 * math.pi, exclude_max=True), min_size=n, max_size=n, unique=True)))
    radii = draw(st.lists(st.floats(0.3, 1.0), min_size=n, max_size=n))
    polygon = Polygon(
        [(lon + radius * r * math.cos(t), lat + radius * r * math.sin(t)) for t, r in zip(angles, radii, strict=True)]
    )
    assume(polygon.is_valid and polygon.area >= 1e-9)
    return polygon


@given(star_polygons())
@settings(max_examples=300)
def test_written_polygons_are_valid_and_close_to_the_input(polygon: Polygon) -> None:
    (text,) = polygon_rings(polygon)
    written = polygon_from_cap(text, "property")  # closed, >= 4 points, simple, in range
    points = text.split()
    assert points[0] == points[-1]
    assert all(a != b for a, b in itertools.pairwise(points))  # no consecutive duplicates
    # Rounding moves a vertex by at most 0.5e-4 per axis (0.71e-4 diagonally), merging a point with its
    # neighbour by at most twice that: the outlines stay within 2e-4 degrees (about 22 m).
    assert written.hausdorff_distance(polygon) <= 2e-4


@pytest.fixture(scope="module")
def validator(shared_data: Path) -> CapValidator:
    return CapValidator(shared_data / "cap_schema" / "CAP-v1.2.xsd")


@given(
    village=texts,
    kecamatan=texts,
    event=texts.filter(lambda t: any(c.isalnum() for c in t)),
    level=levels,
    transition=st.sampled_from([t for t in Transition if t not in (Transition.UNCHANGED, Transition.IGNORED)]),
    sent_minutes=st.integers(0, 170),
    micro=st.integers(0, 999_999),
)
@settings(max_examples=150, deadline=None)
def test_any_names_give_valid_cap_that_parses(
    validator: CapValidator,
    village: str,
    kecamatan: str,
    event: str,
    level: Level,
    transition: Transition,
    sent_minutes: int,
    micro: int,
) -> None:
    msg_type = msg_types_for(transition)[0]
    sent = datetime(2026, 11, 28, 17, 0, tzinfo=WIB) + timedelta(minutes=sent_minutes, microseconds=micro)
    m = CapMessage(
        identifier=cap_identifier("jawa-timur", "2.49.0.1.360.0.2026.11.28.10.35.001", "35.78.01.1001", 1),
        sender="ews@bpbd-jatim.example.id",
        sent=sent,
        status="Actual",
        msg_type=msg_type,
        references=()
        if msg_type == "Alert"
        else (CapReference("ews@bpbd-jatim.example.id", "ews.x.1", datetime(2026, 11, 28, 16, 0, tzinfo=WIB)),),
        level=level,
        transition=transition,
        event=event,
        effective=datetime(2026, 11, 28, 17, 0, tzinfo=WIB),
        expires=datetime(2026, 11, 28, 20, 0, tzinfo=WIB),
        source_warning_id="2.49.0.1.360.0.2026.11.28.10.35.001",
        source_web="",
        area=CapArea(
            "35.78.01.1001",
            village,
            kecamatan,
            "Kota Surabaya",
            Polygon([(112.70, -7.30), (112.71, -7.30), (112.71, -7.29), (112.70, -7.29)]),
        ),
        zone_name="WIB",
    )
    xml = to_cap_xml(m)
    assert validator.problems(xml) == []
    w = parse_cap(xml, "property")
    assert (w.identifier, w.msg_type) == (m.identifier, msg_type)
    assert len(w.headline) <= HEADLINE_MAX
    assert w.geometry.area == pytest.approx(1e-4, rel=0.01)

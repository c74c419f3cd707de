"""The demo's generated warning is valid CAP 1.2 (OASIS XSD) and round-trips through the parser."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from lxml import etree

from ews.ingest.bmkg_cap import parse_cap
from ews.synthetic import synthetic_villages, synthetic_warning_xml

NOW = datetime.fromisoformat("2026-11-28T18:00:00+07:00")


def test_demo_warning_validates_against_the_cap_schema(shared_data: Path) -> None:
    schema = etree.XMLSchema(etree.parse(str(shared_data / "cap_schema" / "CAP-v1.2.xsd")))
    document = etree.fromstring(synthetic_warning_xml(NOW, synthetic_villages()))
    assert schema.validate(document), schema.error_log


def test_the_schema_check_can_fail(shared_data: Path) -> None:
    schema = etree.XMLSchema(etree.parse(str(shared_data / "cap_schema" / "CAP-v1.2.xsd")))
    invalid = shared_data / "cap_schema" / "examples_invalid" / "google-cap-library_invalid_missing-scope.cap.xml"
    assert not schema.validate(etree.parse(str(invalid)))


def test_demo_warning_parses() -> None:
    w = parse_cap(synthetic_warning_xml(NOW, synthetic_villages()), "demo.xml")
    assert (w.severity, w.urgency, w.certainty) == ("Severe", "Immediate", "Observed")
    assert w.effective == NOW
    assert w.expires is not None
    assert (w.expires - NOW).total_seconds() == 3 * 3600
    assert w.named_areas == ("SUMBERJAYA", "KARANGREJO")

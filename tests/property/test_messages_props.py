"""Hypothesis invariants of ews.messages: GSM-7 transliteration, SMS fitting, segment counting."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ews.messages import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    WHATSAPP_MAX_CHARS,
    MessageRenderer,
    is_gsm7,
    sms_segments,
    to_gsm7,
)
from ews.types import Level, Recipient, TaganaUnit, VillageAlert

TEMPLATES = Path(__file__).resolve().parents[2] / "alert_templates"
WIB = timezone(timedelta(hours=7), "WIB")

# Printable text: no control characters and no lone surrogates (which cannot be encoded at all).
names = st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=60)
levels = st.sampled_from([Level.WASPADA, Level.SIAGA, Level.AWAS])
languages = st.sampled_from(["id", "en"])
expiries = st.one_of(st.none(), st.just(datetime(2026, 9, 24, 17, 27, tzinfo=WIB)))
gsm7_text = st.text(st.sampled_from(sorted(GSM7_BASIC | GSM7_EXTENSION)), max_size=400)


@pytest.fixture(scope="module")
def renderer() -> MessageRenderer:
    return MessageRenderer(TEMPLATES)


def village_alert(
    village: str,
    level: Level,
    *,
    kecamatan: str = "Pagak",
    event: str = "Hujan Lebat dan Petir",
    expires: datetime | None = None,
    hazard: str = "cuaca",
    issuer: str = "BMKG",
) -> VillageAlert:
    return VillageAlert(
        village_code="35.07.01.2001",
        village_name=village,
        kecamatan_name=kecamatan,
        kabkota_name="Kabupaten Malang",
        level=level,
        event=event,
        headline="",
        effective=None,
        expires=expires,
        zone_name="WIB",
        warning_id="2.49.0.1.360.0.2026.09.24.14.30.004",
        web="",
        fraction=0.5,
        population_exposed=None,
        population_estimated=True,
        hazard=hazard,
        issuer=issuer,
    )


hazards = st.sampled_from(["cuaca", "gempa", "tsunami"])
issuers = st.sampled_from(["BMKG", "EWS"])


@given(st.text())
def test_to_gsm7_output_is_gsm7_and_stable(text: str) -> None:
    out = to_gsm7(text)
    assert is_gsm7(out)
    assert to_gsm7(out) == out


@given(gsm7_text)
def test_to_gsm7_keeps_gsm7_text(text: str) -> None:
    assert to_gsm7(text) == text


@given(st.text(max_size=400))
def test_sms_segments_never_drop_as_text_grows(text: str) -> None:
    counts = [sms_segments(text[:end]) for end in range(len(text) + 1)]
    assert counts == sorted(counts)
    assert counts[0] == 1


@given(gsm7_text, gsm7_text)
def test_sms_segments_of_gsm7_text_grow_with_septets(a: str, b: str) -> None:
    # For GSM-7 text, appending text never needs fewer parts.
    assert sms_segments(a) <= sms_segments(a + b)


@settings(deadline=None)
@given(village=names, level=levels, language=languages, expires=expiries)
def test_resident_sms_always_fits(
    renderer: MessageRenderer, village: str, level: Level, language: str, expires: datetime | None
) -> None:
    recipient = Recipient("r-1", "+6281234567890", "35.07.01.2001", language, "sms")
    message = renderer.render_resident(village_alert(village, level, expires=expires), recipient)
    assert is_gsm7(message.text)
    assert message.segments == sms_segments(message.text) <= 2


@settings(deadline=None)
@given(
    village=names, kecamatan=names, event=names, level=levels, language=languages, expires=expiries,
    hazard=hazards, issuer=issuers,
)  # fmt: skip
def test_resident_messages_fit_with_arbitrary_parts(
    renderer: MessageRenderer,
    village: str,
    kecamatan: str,
    event: str,
    level: Level,
    language: str,
    expires: datetime | None,
    hazard: str,
    issuer: str,
) -> None:
    alert = village_alert(village, level, kecamatan=kecamatan, event=event, expires=expires, hazard=hazard,
                          issuer=issuer)  # fmt: skip
    sms = renderer.render_resident(alert, Recipient("r-1", "+62811", "35.07.01.2001", language, "sms"))
    assert is_gsm7(sms.text)
    assert sms.segments <= 2
    whatsapp = renderer.render_resident(alert, Recipient("r-1", "+62811", "35.07.01.2001", language, "whatsapp"))
    assert len(whatsapp.text) <= WHATSAPP_MAX_CHARS


@settings(deadline=None)
@given(unit_name=names, villages=st.lists(st.tuples(names, levels), min_size=1, max_size=15))
def test_tagana_sms_always_fits(renderer: MessageRenderer, unit_name: str, villages: list[tuple[str, Level]]) -> None:
    alerts = [
        VillageAlert(
            f"35.07.01.{i:04d}",
            name,
            "Pagak",
            "Kabupaten Malang",
            level,
            "Hujan Lebat",
            "",
            None,
            None,
            "WIB",
            "w-1",
            "",
            0.5,
            10.0,
            False,
        )
        for i, (name, level) in enumerate(villages)
    ]
    for channel in ("sms", "whatsapp"):
        unit = TaganaUnit("tgn-1", unit_name, "35.07", (), "Budi", None, channel)
        message = renderer.render_tagana(unit, alerts)
        assert "SIAP tgn-1" in message.text
        if channel == "sms":
            assert is_gsm7(message.text)
            assert message.segments <= 2
        else:
            assert len(message.text) <= WHATSAPP_MAX_CHARS

"""Every template combination: hazard x transition x audience x channel x language x issuer, with and without the
event text and an earthquake's facts. Each text must be whole (no empty field), name its issuer, give only its
hazard's advice and, on SMS, fit 2 GSM-7 segments."""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ews.messages import MessageRenderer, is_gsm7, sms_segments
from ews.messages.gsm7 import to_gsm7
from ews.messages.render import TaganaContact
from ews.types import AlsoWarning, Level, Recipient, TaganaUnit, VillageAlert

TEMPLATES = Path(__file__).resolve().parents[2] / "alert_templates"
WIB = timezone(timedelta(hours=7), "WIB")
TRANSITIONS = ("new", "update", "escalate", "de-escalate", "cancel", "expire", "all-clear")
ENDS = {"cancel", "expire", "all-clear"}
QUAKE = (("magnitude", "6.1"), ("depth_km", "12"), ("epicentre", "laut 95 km BaratDaya Kab-Malang"), ("tsunami", "no"))
# Words of one hazard's advice that must never appear in another's.
FOREIGN = {
    "cuaca": ("pantai", "coast", "susulan", "aftershock", "tsunami"),
    "gempa": ("genangan", "standing water", "sungai", "river", "hujan", "rain", "pantai", "coast"),
    "tsunami": ("genangan", "standing water", "sungai", "river", "hujan", "rain"),
    "banjir": ("pantai", "coast", "susulan", "aftershock", "tsunami", "tebing", "cliff"),
    "longsor": ("pantai", "coast", "aftershock", "tsunami", "arus banjir", "flood water"),
}
EVENTS = {
    "cuaca": "Hujan Lebat disertai Petir", "gempa": "Gempabumi", "tsunami": "Gempabumi Berpotensi Tsunami",
    "banjir": "Banjir", "longsor": "Tanah Longsor",
}  # fmt: skip
# The words of each hazard's own advice: an active alert gives them (the advice fits the hazard).
OWN = {
    "banjir": ("bantaran", "arus banjir", "riverbank", "flood water"),
    "longsor": ("lereng", "slope"),
    "tsunami": ("pantai", "coast"),
}
BROKEN = re.compile(r"\(\s*\)|\s,|:\s*\.|\bdi\s*,|Sumber:\s*$|Source:\s*$|\s{3,}|None|\{\{|\}\}", re.MULTILINE)


def alert(hazard: str, transition: str, issuer: str, event: bool, facts: bool) -> VillageAlert:
    return VillageAlert(
        village_code="35.07.18.2004", village_name="Tambakrejo", kecamatan_name="Sumbermanjing Wetan",
        kabkota_name="Kabupaten Malang", level=Level.AWAS if hazard == "tsunami" else Level.SIAGA,
        event=EVENTS[hazard] if event else "", headline="",
        effective=datetime(2026, 12, 2, 14, 0, tzinfo=WIB) if event else None,  # a source that gave neither
        expires=None if hazard in ("gempa", "tsunami") else datetime(2026, 12, 2, 17, 30, tzinfo=WIB), zone_name="WIB",
        warning_id="2.49.0.1.360.0.2026.12.02.07.00.001", web="", fraction=0.7, population_exposed=1234.0,
        population_estimated=False, transition=transition, issuer=issuer, hazard=hazard, source_label=issuer,
        quake=(replace_tsunami(QUAKE, hazard) if facts and hazard in ("gempa", "tsunami") else ()),
    )  # fmt: skip


def replace_tsunami(facts: tuple[tuple[str, str], ...], hazard: str) -> tuple[tuple[str, str], ...]:
    return tuple((k, "yes" if k == "tsunami" and hazard == "tsunami" else v) for k, v in facts)


@pytest.fixture(scope="module")
def renderer() -> MessageRenderer:
    return MessageRenderer(TEMPLATES)


def check(text: str, channel: str, hazard: str, where: str) -> None:
    assert not BROKEN.search(text), f"{where}: broken text {BROKEN.search(text)!r}:\n{text}"
    lowered = text.lower()
    wrong = [w for w in FOREIGN[hazard] if w in lowered]
    assert not wrong, f"{where}: advice of another hazard {wrong}:\n{text}"
    if channel == "sms":
        assert is_gsm7(text), where
        assert sms_segments(text) <= 2, f"{where}: {sms_segments(text)} segments"


HAZARDS = ("cuaca", "banjir", "longsor", "gempa", "tsunami")
CASES = list(itertools.product(HAZARDS, TRANSITIONS, ("BMKG", "BPBD Contoh"), (True, False), (True, False)))


@pytest.mark.parametrize(("hazard", "transition", "issuer", "event", "facts"), CASES)
def test_every_resident_combination(
    renderer: MessageRenderer, hazard: str, transition: str, issuer: str, event: bool, facts: bool
) -> None:
    a = alert(hazard, transition, issuer, event, facts)
    for channel, language in itertools.product(("sms", "whatsapp"), ("id", "en")):
        person = Recipient("r-0123456789abcdef", "+6289990000001", a.village_code, language, channel)
        text = renderer.render_resident(a, person).text
        where = f"resident {hazard} {transition} {channel} {language} issuer={issuer} event={event} facts={facts}"
        check(text, channel, hazard, where)
        if transition not in ENDS or transition == "cancel":
            assert issuer in text, f"{where}: the issuer is not named:\n{text}"
        if hazard in OWN and transition not in ENDS:
            assert any(w in text.lower() for w in OWN[hazard]), f"{where}: not the hazard's own advice:\n{text}"


@pytest.mark.parametrize(("hazard", "transition", "issuer", "event", "facts"), CASES)
def test_every_tagana_combination(
    renderer: MessageRenderer, hazard: str, transition: str, issuer: str, event: bool, facts: bool
) -> None:
    a = alert(hazard, transition, issuer, event, facts)
    by = datetime(2026, 12, 2, 14, 30, tzinfo=WIB)
    contact = TaganaContact("Pusdalops Jatim", "031 000 0000", "+6289990000999", by)
    for channel in ("sms", "whatsapp"):
        unit = TaganaUnit("TGN-3507", "Tagana Kab. Malang", "35.07", (), "Koordinator", "+6289990000002", channel)
        text = renderer.render_tagana(unit, [a], contact).text
        where = f"tagana {hazard} {transition} {channel} issuer={issuer} event={event} facts={facts}"
        check(text, channel, hazard, where)
        if transition not in ENDS or transition == "cancel":
            assert issuer in text, f"{where}: the issuer is not named:\n{text}"


@pytest.mark.shared_data
def test_every_sms_template_fits_the_longest_jawa_timur_names(jatim_villages_dir: Path) -> None:
    """Resident SMS (alerts and endings, every hazard, naming two other warnings) and Tagana SMS: 2 segments."""
    layers = [json.loads(p.read_text())["features"] for p in jatim_villages_dir.glob("*.geojson")]
    names = sorted({f["properties"]["nama"] for features in layers for f in features}, key=lambda n: (-len(n), n))[:20]
    renderer = MessageRenderer(TEMPLATES, info="0800-1-112-112", stop_whatsapp="+6281100000112")
    others = (
        AlsoWarning("Hujan Lebat disertai Petir dan Angin Kencang", "BMKG", "cuaca", Level.SIAGA,
                    datetime(2026, 12, 2, 19, 0, tzinfo=WIB), "WIB"),
        AlsoWarning("Hujan Lebat", "EWS", "cuaca", Level.WASPADA, None, "WIB", ended=True),
    )  # fmt: skip
    contact = TaganaContact(
        "Pusdalops Jatim", "031 000 0000", "+6289990000999", datetime(2026, 12, 2, 14, 30, tzinfo=WIB)
    )
    for name in names:
        for hazard, transition in itertools.product(HAZARDS, TRANSITIONS):
            a = replace(alert(hazard, transition, "BMKG", True, True), village_name=name, also=others)
            for language in ("id", "en"):
                person = Recipient("r-0123456789abcdef", "+6289990000001", a.village_code, language, "sms")
                message = renderer.render_resident(a, person)
                where = f"{name} {hazard} {transition} {language}"
                assert is_gsm7(message.text), where
                assert message.segments <= 2, where
                assert to_gsm7(name) in message.text, f"{where}: the village name was cut:\n{message.text}"
            unit = TaganaUnit("TGN-3507", "Tagana Kab. Malang", "35.07", (), "Koordinator", "+6289990000002", "sms")
            notice = renderer.render_tagana(unit, [a], contact, ended=3)
            assert is_gsm7(notice.text), name
            assert notice.segments <= 2, name

"""Messages along an alert's life: raised, updated, lowered, cancelled, expired, all-clear."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ews.messages.gsm7 import is_gsm7
from ews.messages.render import MessageRenderer
from ews.types import Level, Recipient, TaganaUnit, VillageAlert

TEMPLATES = Path(__file__).resolve().parents[2] / "alert_templates"
WIB = timezone(timedelta(hours=7), "WIB")
TRANSITIONS = ["new", "escalate", "update", "de-escalate", "cancel", "all-clear", "expire"]
MARK = {
    ("escalate", "id"): "NAIK ke SIAGA",
    ("escalate", "en"): "RAISED to SIAGA",
    ("update", "id"): "(pembaruan)",
    ("update", "en"): "(update)",
    ("de-escalate", "id"): "TURUN ke SIAGA",
    ("de-escalate", "en"): "LOWERED to SIAGA",
    ("cancel", "id"): "DICABUT",
    ("cancel", "en"): "CANCELLED",
    ("expire", "id"): "BERAKHIR",
    ("expire", "en"): "OVER",
    ("all-clear", "id"): "tidak lagi",
    ("all-clear", "en"): "no longer",
}


@pytest.fixture(scope="module")
def renderer() -> MessageRenderer:
    return MessageRenderer(TEMPLATES)


def alert(transition: str, name: str = "Kebraon") -> VillageAlert:
    return VillageAlert(
        village_code="35.78.01.1002", village_name=name, kecamatan_name="Karang Pilang",
        kabkota_name="Kota Surabaya", level=Level.SIAGA, event="Hujan Lebat disertai Petir",
        headline="h", effective=datetime(2026, 11, 28, 17, tzinfo=WIB), expires=datetime(2026, 11, 28, 20, tzinfo=WIB),
        zone_name="WIB", warning_id="2.49.0.1.360.0.2026.11.28.10.35.001", web="", fraction=0.8,
        population_exposed=1200.0, population_estimated=True, transition=transition,
    )  # fmt: skip


def resident(language: str, channel: str) -> Recipient:
    return Recipient("r-1", "+628999000000012", "35.78.01.1002", language, channel)


@pytest.mark.parametrize("transition", TRANSITIONS)
@pytest.mark.parametrize("language", ["id", "en"])
@pytest.mark.parametrize("channel", ["sms", "whatsapp"])
def test_every_transition_renders(renderer: MessageRenderer, transition: str, language: str, channel: str) -> None:
    message = renderer.render_resident(alert(transition), resident(language, channel))
    assert "Kebraon" in message.text
    if (transition, language) in MARK:
        assert MARK[(transition, language)] in message.text
    if transition == "new":
        assert "(" not in message.text.split(":")[0].replace("(be ready)", "")  # no change marker
    if channel == "sms":
        assert is_gsm7(message.text)
        assert message.segments <= 2


@pytest.mark.parametrize("transition", ["cancel", "expire", "all-clear"])
def test_tagana_is_stood_down(renderer: MessageRenderer, transition: str) -> None:
    unit = TaganaUnit("TGN-3578", "Tagana Kota Surabaya", "35.78", (), "Koordinator", "+628999000009001", "sms")
    for channel in ("sms", "whatsapp"):
        text = renderer.render_tagana(replace(unit, channel=channel), [alert(transition)]).text
        assert ("DICABUT" if transition == "cancel" else "BERAKHIR") in text
        assert "SIAP" not in text  # nothing to acknowledge when standing down


def test_endings_fit_for_the_longest_real_names(renderer: MessageRenderer, jatim_villages_dir: Path) -> None:
    names = sorted(
        {
            f["properties"]["nama"]
            for p in jatim_villages_dir.glob("*.geojson")
            for f in json.loads(p.read_text())["features"]
        },
        key=len,
        reverse=True,
    )[:20]
    for name in names:
        for transition in TRANSITIONS:
            for language in ("id", "en"):
                message = renderer.render_resident(alert(transition, name), resident(language, "sms"))
                assert message.segments <= 2, (name, transition, language)
                assert name in message.text, (name, transition, language)
                assert not message.shortened

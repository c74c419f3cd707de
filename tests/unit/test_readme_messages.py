"""The README shows the texts residents really get: each example is rendered here and must appear verbatim.

Regenerate the README block with ``python tests/unit/test_readme_messages.py`` after changing a template.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from ews.messages.gsm7 import sms_segments
from ews.messages.render import MessageRenderer
from ews.types import AlsoWarning, Level, Recipient, VillageAlert

ROOT = Path(__file__).resolve().parents[2]
WIB = timezone(timedelta(hours=7), "WIB")
QUAKE = (("magnitude", "5.6"), ("depth_km", "10"), ("epicentre", "laut 80 km BaratDaya Kab-Malang"), ("tsunami", "no"))
TSUNAMI = (
    ("magnitude", "7.4"),
    ("depth_km", "10"),
    ("epicentre", "laut 120 km Selatan Kab-Malang"),
    ("tsunami", "yes"),
)


def _alert(**kw: object) -> VillageAlert:
    base: dict[str, object] = {
        "village_code": "35.78.04.1001", "village_name": "Wonokromo", "kecamatan_name": "Wonokromo",
        "kabkota_name": "Kota Surabaya", "level": Level.SIAGA, "event": "Hujan Lebat disertai Petir", "headline": "",
        "effective": datetime(2026, 12, 2, 14, 0, tzinfo=WIB), "expires": datetime(2026, 12, 2, 17, 30, tzinfo=WIB),
        "zone_name": "WIB", "warning_id": "x", "web": "", "fraction": 1.0, "population_exposed": None,
        "population_estimated": False,
    }  # fmt: skip
    base.update(kw)
    return VillageAlert(**base)  # type: ignore[arg-type]


RAIN_ALSO = AlsoWarning("Hujan Lebat", "EWS", "cuaca", Level.WASPADA, None, "WIB")
SLIDE = {"village_code": "35.07.18.2004", "village_name": "Tambakrejo", "kecamatan_name": "Sumbermanjing Wetan",
         "kabkota_name": "Kabupaten Malang"}  # fmt: skip
EXAMPLES: list[tuple[str, VillageAlert]] = [
    ("Hujan lebat, SIAGA", _alert()),
    (
        "Hujan lebat: BMKG AWAS and ews's satellite rain WASPADA over the same kelurahan (one message)",
        _alert(level=Level.AWAS, also=(RAIN_ALSO,)),
    ),
    (
        "The BMKG warning cancelled, the rain remains: TURUN ke WASPADA",
        _alert(
            level=Level.WASPADA,
            event="Hujan Lebat",
            issuer="EWS",
            transition="de-escalate",
            expires=None,
            also=(AlsoWarning("Hujan Lebat disertai Petir", "BMKG", "cuaca", Level.AWAS, None, "WIB", ended=True),),
        ),
    ),
    ("Banjir, AWAS", _alert(level=Level.AWAS, event="Banjir", hazard="banjir")),
    ("Tanah longsor, SIAGA", _alert(**SLIDE, event="Tanah Longsor", hazard="longsor")),
    (
        "Gempa tanpa potensi tsunami, SIAGA",
        _alert(event="Gempabumi", hazard="gempa", quake=QUAKE, expires=None),
    ),
    (
        "Tsunami, AWAS",
        _alert(
            **{**SLIDE, "village_name": "Tambakrejo"},
            level=Level.AWAS,
            event="Gempabumi Berpotensi Tsunami",
            hazard="tsunami",
            quake=TSUNAMI,
            expires=None,
        ),
    ),
    (
        "Tsunami, ended by its maximum duration",
        _alert(
            **SLIDE,
            level=Level.AWAS,
            event="Gempabumi Berpotensi Tsunami",
            hazard="tsunami",
            transition="expire",
            expires=None,
        ),
    ),
]


def block() -> str:
    renderer = MessageRenderer(ROOT / "alert_templates", info="bmkg.go.id", stop_whatsapp="+6281100000112")
    out: list[str] = []
    for title, alert in EXAMPLES:
        for language in ("id", "en"):
            person = Recipient("r-0123456789abcdef", "+6289990000001", alert.village_code, language, "sms")
            text = renderer.render_resident(alert, person).text
            body = "\n".join(f"  {line}" for line in text.splitlines())
            out.append(f"- {title} ({language}, SMS, {sms_segments(text)} segments):\n\n  ```text\n{body}\n  ```\n")
    return "\n".join(out)


def test_the_readme_shows_the_rendered_texts() -> None:
    readme = (ROOT / "README.md").read_text()
    assert block() in readme, "README message examples are stale: run python tests/unit/test_readme_messages.py"


if __name__ == "__main__":
    sys.stdout.write(block())

"""A village's text from its situation's text with the names put in is the text rendered for the village.

``MessageRenderer`` renders a situation (level, transition, warning, times, hazard, languages, channels) once and
puts each village's names into it (issue 14: ~54,000 renders a national cycle). These tests compare one
renderer that has seen the situation before with a fresh renderer, for any names (long ones that need cutting,
empty ones, non-GSM-7 letters, combining marks, the place-holders' own text) and for templates that use the
names other than as plain output, where the shortcut must not be taken.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ews.messages import MessageRenderer
from ews.types import AlsoWarning, Level, Recipient, VillageAlert

TEMPLATES = Path(__file__).resolve().parents[2] / "alert_templates"
WIB = timezone(timedelta(hours=7), "WIB")

_BASE = VillageAlert(
    village_code="35.78.01.1001",
    village_name="Wonokromo",
    kecamatan_name="Wonokromo",
    kabkota_name="Kota Surabaya",
    level=Level.SIAGA,
    event="Hujan Lebat disertai Petir dan Angin Kencang",
    headline="",
    effective=datetime(2026, 12, 3, 14, 0, tzinfo=WIB),
    expires=datetime(2026, 12, 3, 17, 0, tzinfo=WIB),
    zone_name="WIB",
    warning_id="ews.rain.35.2026-12-03T07",
    web="https://nowcasting.bmkg.go.id",
    fraction=0.4,
    population_exposed=1200.0,
    population_estimated=False,
    issuer="EWS",
)

_names = st.one_of(
    st.sampled_from(["Wonokromo", "Ngagel Rejo", "Kec. Tegal-sari", "Pulau Sapeken Kepulauan", "Désa Élok"]),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60),
    st.text(alphabet="ab @-\u0301\u00a0\t\nЖ\u200b", max_size=140),
    st.just("@@ews-kecamatan@@"),
    st.just("x" * 200),
)
_situations = st.tuples(
    st.sampled_from(list(Level)[1:]),
    st.sampled_from(["new", "escalate", "update", "de-escalate", "all-clear", "cancel", "expire"]),
    st.sampled_from(["cuaca", "banjir", "longsor", "gempa", "tsunami"]),
    st.sampled_from(["id", "en"]),
    st.sampled_from(["sms", "whatsapp"]),
    st.booleans(),
)


def _alert(situation: tuple[Level, str, str, str, str, bool], **names: str) -> VillageAlert:
    level, transition, hazard, _, _, also = situation
    facts = (("magnitude", "5.6"), ("depth_km", "10"), ("epicentre", "24 km BaratDaya KAB-MALANG"))
    quake = facts if hazard == "gempa" else ()
    return replace(
        _BASE, level=level, transition=transition, hazard=hazard, quake=quake,
        also=(AlsoWarning("Angin kencang", "BMKG", "cuaca", Level.WASPADA, None, "WIB"),) if also else (), **names,
    )  # fmt: skip


@settings(max_examples=250, deadline=None)
@given(situation=_situations, village=_names, kecamatan=_names, kabkota=_names)
def test_a_village_s_text_is_the_text_rendered_for_it(
    situation: tuple[Level, str, str, str, str, bool], village: str, kecamatan: str, kabkota: str
) -> None:
    language, channel = situation[3], situation[4]
    seen = MessageRenderer(TEMPLATES, info="bmkg.go.id", stop_whatsapp="+62899900000001")
    someone = Recipient("r", "", _BASE.village_code, language, channel)
    seen.render_resident(_alert(situation), someone)  # the situation, rendered for another village first
    alert = _alert(situation, village_name=village, kecamatan_name=kecamatan, kabkota_name=kabkota)
    fresh = MessageRenderer(TEMPLATES, info="bmkg.go.id", stop_whatsapp="+62899900000001")
    assert seen.render_resident(alert, someone) == fresh.render_resident(alert, someone)
    # and the other way round: a village seen first does not change the next one's text
    assert seen.render_resident(_alert(situation), someone) == fresh.render_resident(_alert(situation), someone)


@pytest.mark.parametrize(
    "template",
    [
        "{{ level }}: {{ village|upper }}, {{ kecamatan }}, {{ kabkota }}, {{ event }}\n",
        "{% if village|length > 12 %}{{ kecamatan }}{% else %}{{ village }}{% endif %} {{ kabkota }} {{ level }}\n",
        "{% set v = village %}{{ v }}, {{ kecamatan }} {{ kabkota }} {{ level }}\n",
        "{{ level }} {{ village ~ '!' }} {{ kecamatan }} {{ kabkota }}\n",
        "{% macro name(x) %}<{{ x }}>{% endmacro %}{{ name(village) }} {{ kecamatan }} {{ kabkota }}\n",
    ],
)
def test_a_template_that_does_more_with_a_name_is_rendered_for_each_village(tmp_path: Path, template: str) -> None:
    (tmp_path / "resident_sms.id.j2").write_text(template, encoding="utf-8")
    seen = MessageRenderer(tmp_path)
    fresh = MessageRenderer(tmp_path)
    someone = Recipient("r", "", _BASE.village_code, "id", "sms")
    for name in ("Wonokromo", "Ngagel Rejo Baru Sekali", "Ab", "Kupang Krajan"):
        alert = replace(_BASE, village_name=name)
        assert seen.render_resident(alert, someone).text == fresh.render_resident(alert, someone).text
        fresh = MessageRenderer(tmp_path)


def test_the_shortcut_is_taken_for_the_shipped_templates() -> None:
    # Without this, the property above would hold vacuously (every text rendered in full).
    renderer = MessageRenderer(TEMPLATES)
    for language in ("id", "en"):
        for channel in ("sms", "whatsapp"):
            for end in ("", "end_"):
                assert renderer._substitutable(f"resident_{end}{channel}.{language}.j2")
    someone = Recipient("r", "", _BASE.village_code, "id", "sms")
    renderer.render_resident(_BASE, someone)
    renderer.render_resident(replace(_BASE, village_name="Ngagel"), someone)
    (skeletons,) = renderer._skeletons.values()
    assert skeletons["full"] is not None
    assert "@@ews-village@@" in skeletons["full"]


def test_the_same_instant_in_another_zone_is_another_situation() -> None:
    renderer = MessageRenderer(TEMPLATES)
    someone = Recipient("r", "", _BASE.village_code, "id", "sms")
    wita = timezone(timedelta(hours=8), "WITA")
    east = replace(_BASE, expires=_BASE.expires.astimezone(wita), effective=_BASE.effective.astimezone(wita))  # type: ignore[union-attr]
    west_text = renderer.render_resident(_BASE, someone).text
    east_text = renderer.render_resident(east, someone).text
    assert "17:00 WIB" in west_text
    assert "18:00 WIB" in east_text  # the same zone name, another clock: never the first village's text
    assert east_text == MessageRenderer(TEMPLATES).render_resident(east, someone).text

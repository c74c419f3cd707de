"""Unit tests for ews.messages: GSM-7 counting and transliteration, templates and the renderer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ews.errors import TemplateError
from ews.messages import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    WHATSAPP_MAX_CHARS,
    MessageRenderer,
    gsm7_length,
    is_gsm7,
    sms_segments,
    to_gsm7,
)
from ews.messages.render import TaganaContact
from ews.types import Level, Recipient, TaganaUnit, VillageAlert

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = REPO_ROOT / "alert_templates"
WITA = timezone(timedelta(hours=8), "WITA")
LEVELS = (Level.WASPADA, Level.SIAGA, Level.AWAS)
GLOSS = {Level.WASPADA: "WASPADA (be alert)", Level.SIAGA: "SIAGA (be ready)", Level.AWAS: "AWAS (danger)"}
LONG_EVENT = "Hujan Lebat disertai Petir dan Angin Kencang"
KECAMATAN_40 = "Kecamatan Dengan Nama Yang Panjang Sekal"  # exactly 40 characters


def make_alert(**overrides: object) -> VillageAlert:
    alert = VillageAlert(
        village_code="35.13.01.2001",
        village_name="Sumbermanjing Kulon",
        kecamatan_name="Pagak",
        kabkota_name="Kabupaten Malang",
        level=Level.SIAGA,
        event="Hujan Lebat dan Petir",
        headline="Hujan lebat disertai petir di Jawa Timur",
        effective=datetime(2026, 9, 24, 14, 30, tzinfo=WITA),
        expires=datetime(2026, 9, 24, 17, 27, tzinfo=WITA),
        zone_name="WITA",
        warning_id="2.49.0.1.360.0.2026.09.24.14.30.004",
        web="https://nowcasting.bmkg.go.id/infografis/CJI/2026/09/24/infografis.jpg",
        fraction=0.5,
        population_exposed=1234.0,
        population_estimated=False,
    )
    return replace(alert, **overrides)  # type: ignore[arg-type]


def make_recipient(**overrides: object) -> Recipient:
    recipient = Recipient(
        recipient_id="r-0001",
        phone="+6281234567890",
        village_code="35.13.01.2001",
        language="id",
        channel="sms",
    )
    return replace(recipient, **overrides)  # type: ignore[arg-type]


def make_unit(**overrides: object) -> TaganaUnit:
    unit = TaganaUnit(
        unit_id="tgn-3507",
        name="Tagana Kabupaten Malang",
        kabkota_code="35.07",
        kecamatan_codes=(),
        coordinator="Budi",
        phone="+6281300000000",
        channel="sms",
    )
    return replace(unit, **overrides)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def renderer() -> MessageRenderer:
    return MessageRenderer(TEMPLATES)


# --- GSM-7 alphabet and counting -------------------------------------------------------------------


def test_alphabet_sizes() -> None:
    # 128 code points in the default table minus the escape 0x1B; 9 extension characters + form feed.
    assert len(GSM7_BASIC) == 127
    assert len(GSM7_EXTENSION) == 10
    assert not GSM7_BASIC & GSM7_EXTENSION


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Awas! Banjir @ 17:27, hubungi 112.", True),
        ("é ü ñ Ç Ø Δ ¿ ¡ § £ ¥ ¤", True),  # all in the default table
        ("{[~]}|^\\€\f", True),  # the extension table
        ("", True),
        ("ê", False),  # Indonesian uses no accents, but names typed with them must be caught
        ("“Siaga”", False),
        ("\x1b", False),  # the escape is not a character of its own
        ("`", False),
    ],
)
def test_is_gsm7(text: str, expected: bool) -> None:
    assert is_gsm7(text) is expected


@pytest.mark.parametrize(
    ("text", "septets"),
    [
        ("SIAGA", 5),
        ("a€", 3),  # 1 + 2
        ("{}", 4),  # each brace costs escape + code
        ("[x]\f", 7),  # 2 + 1 + 2 + 2
        ("éà\n", 3),  # default-table letters and the line feed cost one each
    ],
)
def test_gsm7_length(text: str, septets: int) -> None:
    assert gsm7_length(text) == septets


def test_gsm7_length_rejects_non_gsm7() -> None:
    with pytest.raises(ValueError, match=r"'ê' \(U\+00EA\) at position 2 is not GSM-7; pass the text through to_gsm7"):
        gsm7_length("abê")


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("", 1),  # an empty body still costs one message
        ("a" * 160, 1),  # a single SMS holds 160 septets
        ("a" * 161, 2),  # one more and it is concatenated: parts of 153
        ("a" * 306, 2),  # 2 x 153
        ("a" * 307, 3),
        ("€" * 80, 1),  # 80 x 2 = 160 septets
        ("€" * 81, 2),  # 162 septets: 76 pairs (152) in part 1, 5 pairs in part 2
        # 306 septets, yet 3 parts: part 1 takes 152 "a" and has 1 septet left, too few for the escape
        # pair of "€", which moves to part 2 (2 + 151 "a" = 153), and the last "a" needs part 3.
        ("a" * 152 + "€" + "a" * 152, 3),
        ("a" * 153 + "€" + "a" * 151, 2),  # the same 306 septets, aligned: 153 | 2 + 151
        ("ê" * 70, 1),  # not GSM-7: UCS-2, 70 code units in one SMS
        ("ê" * 71, 2),  # then parts of 67
        ("😀" * 35, 1),  # each emoji is a surrogate pair: 70 units
        ("😀" * 36, 2),
    ],
)
def test_sms_segments(text: str, segments: int) -> None:
    assert sms_segments(text) == segments


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("“Siaga” – segera…", '"Siaga" - segera...'),
        ("‘Awas’ — banjir", "'Awas' - banjir"),
        ("17:27\u00a0WITA", "17:27 WITA"),  # non-breaking space
        ("Désa Kêbon", "Désa Kebon"),  # é is GSM-7 and stays; ê loses its accent
        ("e\u0301", "é"),  # a combining accent is composed first, into a GSM-7 letter
        ("ç Ç", "c Ç"),  # only the capital is in the default table
        ("ﬁ Ａ ²", "fi A 2"),  # ligature, full-width and superscript unfold (NFKD)
        ("±5 °C", "+/-5 C"),
        ("a\u200bb\u00adc", "abc"),  # invisible characters are dropped
        ("Ω ω", "Ω ?"),  # capital omega is in the table, small omega is not
        ("中文 😀", "?? ?"),
        ("{Awas} €", "{Awas} €"),  # extension characters are GSM-7 already
    ],
)
def test_to_gsm7(text: str, expected: str) -> None:
    assert to_gsm7(text) == expected
    assert is_gsm7(to_gsm7(text))


# --- Resident messages -----------------------------------------------------------------------------


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("language", ["id", "en"])
@pytest.mark.parametrize("channel", ["sms", "whatsapp"])
def test_resident_templates_render(renderer: MessageRenderer, level: Level, language: str, channel: str) -> None:
    alert = make_alert(level=level)
    message = renderer.render_resident(alert, make_recipient(language=language, channel=channel))

    assert (message.audience, message.channel, message.language) == ("resident", channel, language)
    assert (message.to, message.recipient_id) == ("+6281234567890", "r-0001")
    assert (message.village_code, message.level, message.warning_id) == (
        "35.13.01.2001",
        level,
        "2.49.0.1.360.0.2026.09.24.14.30.004",
    )
    assert not message.shortened
    text = message.text
    for needle in (
        "BMKG",
        "112",
        "Sumbermanjing Kulon",
        "Hujan Lebat dan Petir",
        "17:27 WITA",
        "24 Sep 2026",
    ):
        assert needle in text
    if language == "id":
        assert level.name in text
        assert "s.d." in text
    else:
        assert GLOSS[level] in text  # the Indonesian word stays, glossed
        assert "until" in text
    if channel == "sms":
        assert is_gsm7(text)
        assert message.segments == sms_segments(text) <= 2
    else:
        assert message.segments == 1
        assert len(text) <= WHATSAPP_MAX_CHARS
        assert "https://nowcasting.bmkg.go.id/" in text
    assert text == text.strip()
    assert "  " not in text


def test_resident_sms_full_text(renderer: MessageRenderer) -> None:
    # The whole full variant, to pin wording and whitespace: 103 + 1 + 69 + 1 + 30 = 204 septets, 2 parts.
    message = renderer.render_resident(make_alert(), make_recipient())
    assert message.text == (
        "BMKG SIAGA: Hujan Lebat dan Petir di Sumbermanjing Kulon, Kec. Pagak, Kabupaten Malang, "
        "s.d. 24 Sep 2026 17:27 WITA.\n"
        "Bersiap mengungsi, amankan dokumen penting, ikuti arahan BPBD/Tagana.\n"
        "Info: bmkg.go.id. Darurat: 112"
    )
    assert message.segments == 2


def test_resident_sms_names_the_info_contact_and_how_to_stop() -> None:
    # With the command center's info line and WhatsApp number, an SMS says where to ask and how to stop.
    renderer = MessageRenderer(TEMPLATES, info="0800-1-112-112", stop_whatsapp="+6281100000000")
    stops = {"id": "Stop: WA BERHENTI ke +6281100000000", "en": "Stop: WhatsApp STOP to +6281100000000"}
    for language, stop in stops.items():
        message = renderer.render_resident(make_alert(), make_recipient(language=language))
        assert "0800-1-112-112" in message.text
        assert stop in message.text
        assert message.segments <= 2


@pytest.mark.parametrize(
    ("level", "language", "advice"),
    [
        (Level.WASPADA, "id", "batasi aktivitas di luar"),
        (Level.SIAGA, "id", "amankan dokumen penting"),
        (Level.AWAS, "id", "SEGERA MENGUNGSI"),
        (Level.WASPADA, "en", "limit outdoor activities"),
        (Level.SIAGA, "en", "secure important documents"),
        (Level.AWAS, "en", "EVACUATE NOW"),
    ],
)
def test_resident_advice_per_level(renderer: MessageRenderer, level: Level, language: str, advice: str) -> None:
    for channel in ("sms", "whatsapp"):
        message = renderer.render_resident(make_alert(level=level), make_recipient(language=language, channel=channel))
        assert advice.lower() in message.text.lower()  # WhatsApp bullets start with a capital


@pytest.mark.parametrize(
    ("language", "channel", "phrase"),
    [
        ("id", "sms", "hingga pemberitahuan berikutnya"),
        ("en", "sms", "until further notice"),
        ("id", "whatsapp", "hingga pemberitahuan berikutnya"),
        ("en", "whatsapp", "until further notice"),
    ],
)
def test_missing_expiry(renderer: MessageRenderer, language: str, channel: str, phrase: str) -> None:
    message = renderer.render_resident(make_alert(expires=None), make_recipient(language=language, channel=channel))
    assert phrase in message.text
    assert "17:27" not in message.text


@pytest.mark.parametrize(("language", "month"), [("id", "9 Agu 2026"), ("en", "9 Aug 2026")])
def test_month_names_per_language(renderer: MessageRenderer, language: str, month: str) -> None:
    august = make_alert(
        effective=datetime(2026, 8, 9, 6, 5, tzinfo=WITA), expires=datetime(2026, 8, 9, 9, 0, tzinfo=WITA)
    )
    message = renderer.render_resident(august, make_recipient(language=language, channel="whatsapp"))
    assert f"{month} 06:05 WITA" in message.text
    assert f"{month} 09:00 WITA" in message.text


@pytest.mark.parametrize(("requested", "used"), [("fr", "id"), ("", "id"), ("EN", "en"), ("en-GB", "en")])
def test_language_fallback(renderer: MessageRenderer, requested: str, used: str) -> None:
    message = renderer.render_resident(make_alert(), make_recipient(language=requested))
    assert message.language == used
    assert ("SIAGA (be ready)" in message.text) is (used == "en")


def test_long_kecamatan_and_event_fall_back_to_a_shorter_variant(renderer: MessageRenderer) -> None:
    # The full Indonesian AWAS text would be "BMKG AWAS: " 11 + event 44 + " di " 4 + village 24 + ", Kec. " 7
    # + kecamatan 40 + ", " 2 + kabkota 38 + ", s.d. 24 Sep 2026 17:27 WITA." 30 + "\n" 1 + advice 97
    # + "\nDarurat: 112" 13 = 311 > 306 septets, so the short variant is used and no name is cut.
    alert = make_alert(
        level=Level.AWAS,
        village_name="Ambeng-ambeng Watangrejo",
        kecamatan_name=KECAMATAN_40,
        kabkota_name="Kabupaten Pasuruan Bagian Paling Utara",
        event=LONG_EVENT,
    )
    message = renderer.render_resident(alert, make_recipient())
    assert not message.shortened
    assert message.segments <= 2
    assert "Ambeng-ambeng Watangrejo" in message.text
    assert LONG_EVENT in message.text
    assert "24 Sep 2026" not in message.text  # the date only appears in the full variant


@pytest.mark.parametrize("language", ["id", "en"])
def test_absurd_village_name_is_shortened_at_a_word_boundary(renderer: MessageRenderer, language: str) -> None:
    words = [f"Kampung{i:02d}" for i in range(20)]
    name = " ".join(words) + "X"  # 20 x 9 + 19 spaces + 1 = 200 characters; the last word is "Kampung19X"
    assert len(name) == 200
    # Even the minimal variant is too long. Indonesian: "BMKG AWAS: " 11 + event 44 + ", " 2 + 200
    # + ", hingga pemberitahuan berikutnya." 34 + "\n" 1 + "Segera mengungsi! 112" 21 = 313 > 306 septets.
    # English: 20 + 44 + 2 + 200 + ", until further notice." 23 + 1 + "Evacuate now! 112" 17 = 307 > 306.
    alert = make_alert(level=Level.AWAS, village_name=name, event=LONG_EVENT, expires=None)
    message = renderer.render_resident(alert, make_recipient(language=language))

    assert message.shortened
    assert is_gsm7(message.text)
    assert message.segments == sms_segments(message.text) <= 2
    assert name not in message.text
    # The village name, the longest part, is cut to whole words followed by "..": "Kampung00 ... KampungNN..".
    # Words are unique, so a cut inside a word ("Kampung1..") would match none of these prefixes.
    cuts = [" ".join(words[:k]) + ".." for k in range(1, len(words))]
    assert sum(cut in message.text for cut in cuts) == 1
    assert LONG_EVENT in message.text  # the event, much shorter, is left alone


def test_single_huge_word_is_cut_as_a_last_resort(renderer: MessageRenderer) -> None:
    # No word boundary to cut at: the only case where a name is cut inside a word.
    message = renderer.render_resident(make_alert(village_name="X" * 400), make_recipient())
    assert message.shortened
    assert message.segments <= 2
    assert "XXXX.." in message.text


def test_whatsapp_is_not_transliterated(renderer: MessageRenderer) -> None:
    message = renderer.render_resident(make_alert(village_name="Kêbon “Lama”"), make_recipient(channel="whatsapp"))
    assert "Kêbon “Lama”" in message.text
    sms = renderer.render_resident(make_alert(village_name="Kêbon “Lama”"), make_recipient())
    assert 'Kebon "Lama"' in sms.text


def test_names_cannot_inject_lines(renderer: MessageRenderer) -> None:
    message = renderer.render_resident(make_alert(village_name="Desa\n\nBaru\t  Timur"), make_recipient())
    assert "Desa Baru Timur" in message.text


def test_level_none_has_no_message(renderer: MessageRenderer) -> None:
    with pytest.raises(TemplateError, match=r"village 35\.13\.01\.2001 has level none"):
        renderer.render_resident(make_alert(level=Level.NONE), make_recipient())


def test_recipient_of_another_village_is_refused(renderer: MessageRenderer) -> None:
    with pytest.raises(TemplateError, match=r"recipient r-0001 is subscribed to village 35\.13\.01\.2002"):
        renderer.render_resident(make_alert(), make_recipient(village_code="35.13.01.2002"))


def test_unknown_channel(renderer: MessageRenderer) -> None:
    with pytest.raises(TemplateError, match=r"channel 'fax', which has no alert template; use one of sms"):
        renderer.render_resident(make_alert(), make_recipient(channel="fax"))


# --- Template errors -------------------------------------------------------------------------------


def test_missing_template_dir(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match=r"alert template folder .*nowhere does not exist"):
        MessageRenderer(tmp_path / "nowhere")


def test_missing_template(tmp_path: Path) -> None:
    renderer = MessageRenderer(tmp_path)
    with pytest.raises(TemplateError, match=r"resident_sms\.id\.j2 not found; add it"):
        renderer.render_resident(make_alert(), make_recipient())


def test_undefined_variable(tmp_path: Path) -> None:
    (tmp_path / "resident_sms.id.j2").write_text("{{ level }} {{ village }} {{ no_such_variable }}\n")
    renderer = MessageRenderer(tmp_path)
    with pytest.raises(
        TemplateError,
        match=r"resident_sms\.id\.j2 uses an undefined variable: 'no_such_variable' is undefined",
    ):
        renderer.render_resident(make_alert(), make_recipient())


def test_template_syntax_error(tmp_path: Path) -> None:
    (tmp_path / "tagana_sms.id.j2").write_text("line one\n{% if level %}never closed\n")
    renderer = MessageRenderer(tmp_path)
    with pytest.raises(TemplateError, match=r"tagana_sms\.id\.j2 line \d+: .*fix its syntax"):
        renderer.render_tagana(make_unit(), [make_alert()])


def test_template_that_cannot_fit(tmp_path: Path) -> None:
    (tmp_path / "resident_sms.id.j2").write_text("{{ village }} " + "x" * 400 + "\n")
    renderer = MessageRenderer(tmp_path)
    with pytest.raises(TemplateError, match=r"does not fit sms .* shorten the template's fixed text"):
        renderer.render_resident(make_alert(), make_recipient())


# --- Tagana notices --------------------------------------------------------------------------------


def tagana_alerts(*, estimated: bool = False) -> list[VillageAlert]:
    # Ranked by level, then fraction: Tinggi (AWAS 0.8), Rendah (AWAS 0.2), Tengah (SIAGA 0.9), Jauh.
    return [
        make_alert(village_code="1", village_name="Rendah", level=Level.AWAS, fraction=0.2, population_exposed=5.3),
        make_alert(
            village_code="2",
            village_name="Tengah",
            level=Level.SIAGA,
            fraction=0.9,
            population_exposed=2340.0,
            population_estimated=estimated,
        ),
        make_alert(
            village_code="3",
            village_name="Tinggi",
            level=Level.AWAS,
            fraction=0.8,
            population_exposed=10000.4,
        ),
        make_alert(village_code="4", village_name="Jauh", level=Level.WASPADA, fraction=1.0, population_exposed=0.0),
        make_alert(village_code="5", village_name="Aman", level=Level.NONE, population_exposed=99999.0),
        # The same village under a second, weaker warning counts once, at its highest level.
        make_alert(village_code="3", village_name="Tinggi", level=Level.WASPADA, fraction=0.1, warning_id="other"),
    ]


def test_tagana_sms(renderer: MessageRenderer) -> None:
    message = renderer.render_tagana(make_unit(), tagana_alerts())
    text = message.text
    assert (message.audience, message.channel, message.language) == ("tagana", "sms", "id")
    assert (message.recipient_id, message.to) == ("tgn-3507", "+6281300000000")
    assert (message.level, message.village_code) == (Level.AWAS, "3")
    assert is_gsm7(text)
    assert message.segments == sms_segments(text) <= 2
    assert "Tagana Kabupaten Malang" in text
    assert "4 desa/kel. (AWAS 2, SIAGA 1, WASPADA 1)" in text  # "Aman" (level none) is not counted
    assert "Tinggi, Rendah, Tengah, Jauh" in text
    # 10000.4 + 5.3 + 2340.0 + 0.0 = 12345.7 -> 12.346 (Indonesian thousands separator); none estimated.
    assert "sekitar 12.346 jiwa." in text
    assert "estimasi" not in text
    assert "s.d. 24 Sep 2026 17:27 WITA" in text
    # No command center configured: the coordinator is told to confirm, never to "reply on WhatsApp" to nowhere.
    assert "Konfirmasi SIAP tgn-3507 ke BPBD/Pusdalops." in text
    assert "WhatsApp" not in text
    assert "Ref: 2.49.0.1.360.0.2026.09.24.14.30.004" in text


def test_tagana_notices_say_how_and_by_when_to_acknowledge_on_their_channel(renderer: MessageRenderer) -> None:
    wita = timezone(timedelta(hours=8), "WITA")
    contact = TaganaContact(
        "Pusdalops Jatim", "031 000 0000", "+6289990000999", datetime(2026, 9, 24, 15, 5, tzinfo=wita)
    )
    sms = renderer.render_tagana(make_unit(), tagana_alerts(), contact).text
    assert is_gsm7(sms)
    assert sms_segments(sms) <= 2
    # SMS has no replies in Indonesia: the coordinator confirms on WhatsApp, to a number, by a time.
    assert 'Konfirmasi: WA "SIAP tgn-3507" ke +6289990000999 s.d. 15:05 WITA.' in sms
    whatsapp = renderer.render_tagana(replace(make_unit(), channel="whatsapp"), tagana_alerts(), contact).text
    assert "membalas pesan ini: SIAP tgn-3507 paling lambat 15:05 WITA." in whatsapp
    assert "Pusdalops Jatim (pusat komando): 031 000 0000" in whatsapp
    without_whatsapp = replace(contact, whatsapp=None)
    sms = renderer.render_tagana(make_unit(), tagana_alerts(), without_whatsapp).text
    assert "Konfirmasi SIAP tgn-3507 ke Pusdalops Jatim 031 000 0000 s.d. 15:05 WITA." in sms
    assert 'WA "SIAP' not in sms


def test_tagana_estimated_population_and_whatsapp(renderer: MessageRenderer) -> None:
    unit = make_unit(phone=None, channel="whatsapp", name="Kabupaten Malang")
    message = renderer.render_tagana(unit, tagana_alerts(estimated=True))
    text = message.text
    assert (message.to, message.segments, message.channel) == ("", 1, "whatsapp")
    assert "Tagana Kabupaten Malang" in text  # "Tagana" is added when the unit name lacks it
    assert "sekitar 12.346 jiwa (estimasi)" in text
    assert "- Tinggi, Kec. Pagak (AWAS)\n- Rendah, Kec. Pagak (AWAS)\n- Tengah, Kec. Pagak (SIAGA)" in text
    assert "SIAP tgn-3507" in text
    assert len(text) <= WHATSAPP_MAX_CHARS


def test_tagana_unknown_population_is_estimated(renderer: MessageRenderer) -> None:
    alerts = [make_alert(population_exposed=None), make_alert(village_code="9", population_exposed=100.0)]
    text = renderer.render_tagana(make_unit(), alerts).text
    assert "sekitar 100 jiwa (estimasi)" in text  # a lower bound: one village's population is unknown


def test_tagana_many_villages_and_long_names_fit(renderer: MessageRenderer) -> None:
    alerts = [
        make_alert(
            village_code=f"35.07.{i:02d}",
            village_name=f"Sumbermanjing Wetan Nomor {i}",
            kecamatan_name=KECAMATAN_40,
            event=LONG_EVENT,
            level=LEVELS[i % 3],
        )
        for i in range(40)
    ]
    for channel in ("sms", "whatsapp"):
        message = renderer.render_tagana(make_unit(channel=channel), alerts)
        assert not message.shortened  # fewer villages are listed instead
        assert "SIAP tgn-3507" in message.text
        assert "Sumbermanjing Wetan Nomor 11" in message.text  # the first AWAS village by name
        if channel == "sms":
            # Only the minimal variant fits: the count and one village ("a.l." = "among others").
            assert "40 desa/kel.\n(AWAS 13, SIAGA 13, WASPADA 14) a.l. Sumbermanjing Wetan Nomor 11," in message.text
            assert is_gsm7(message.text)
            assert message.segments <= 2
        else:
            assert "terdampak: 40 (AWAS 13, SIAGA 13, WASPADA 14)" in message.text
            assert "lainnya" in message.text
            assert len(message.text) <= WHATSAPP_MAX_CHARS


def test_tagana_without_alerts(renderer: MessageRenderer) -> None:
    with pytest.raises(TemplateError, match=r"no alert of level Waspada or above for Tagana unit tgn-3507"):
        renderer.render_tagana(make_unit(), [make_alert(level=Level.NONE)])


# --- Real Jawa Timur village names -----------------------------------------------------------------


@pytest.fixture(scope="module")
def jatim_village_names(jatim_villages_dir: Path) -> list[str]:
    folder = jatim_villages_dir
    names: set[str] = set()
    for path in sorted(folder.glob("*.geojson")):
        collection = json.loads(path.read_text(encoding="utf-8"))
        names.update(feature["properties"]["nama"] for feature in collection["features"])
    assert len(names) > 1000, f"expected thousands of Jawa Timur villages in {folder}"
    return sorted(names, key=lambda name: (-len(name), name))


def real_name_messages(renderer: MessageRenderer, name: str) -> Iterator[tuple[str, str, bool, int]]:
    for language in ("id", "en"):
        for level in LEVELS:
            alert = make_alert(village_name=name, kecamatan_name=KECAMATAN_40, event=LONG_EVENT, level=level)
            message = renderer.render_resident(alert, make_recipient(language=language))
            yield f"{language}/{level.name}", message.text, message.shortened, message.segments


@pytest.mark.shared_data
def test_longest_real_village_name_fits(renderer: MessageRenderer, jatim_village_names: list[str]) -> None:
    longest = jatim_village_names[0]
    for case, text, shortened, segments in real_name_messages(renderer, longest):
        assert is_gsm7(text), case
        assert segments <= 2, case
        assert to_gsm7(longest) in text, case
        assert not shortened, case


@pytest.mark.shared_data
def test_twenty_longest_real_village_names_fit(renderer: MessageRenderer, jatim_village_names: list[str]) -> None:
    for name in jatim_village_names[:20]:
        for case, text, shortened, segments in real_name_messages(renderer, name):
            assert is_gsm7(text), (name, case)
            assert segments <= 2, (name, case)
            assert to_gsm7(name) in text, (name, case)
            assert not shortened, (name, case)


@pytest.mark.parametrize(
    ("hazard", "level", "language", "advice"),
    [
        ("tsunami", Level.AWAS, "id", "JAUHI PANTAI"),
        ("tsunami", Level.AWAS, "en", "LEAVE THE COAST"),
        ("gempa", Level.AWAS, "id", "gempa susulan"),
        ("gempa", Level.WASPADA, "en", "aftershocks"),
        ("cuaca", Level.AWAS, "id", "MENGUNGSI"),
    ],
)
def test_advice_follows_the_hazard(hazard: str, level: Level, language: str, advice: str) -> None:
    renderer = MessageRenderer(TEMPLATES)
    base = replace(_HAZARD_ALERT, level=level, hazard=hazard)
    for channel in ("sms", "whatsapp"):
        message = renderer.render_resident(base, Recipient("r-1", "+62811", base.village_code, language, channel))
        assert advice in message.text, message.text
        if hazard != "cuaca":
            assert "MENGUNGSI ke tempat yang lebih tinggi" not in message.text  # flood advice is wrong here


_HAZARD_ALERT = VillageAlert(
    village_code="51.07.01",
    village_name="Abang",
    kecamatan_name="Abang",
    kabkota_name="Kabupaten Karangasem",
    level=Level.AWAS,
    event="Gempabumi Berpotensi Tsunami",
    headline="",
    effective=None,
    expires=None,
    zone_name="WITA",
    warning_id="ews.gempa.20211214T032023Z_7.59S_122.24E",
    web="",
    fraction=1.0,
    population_exposed=None,
    population_estimated=False,
)


def test_an_exercise_mark_is_counted_in_the_sms_budget(renderer: MessageRenderer) -> None:
    long_names = make_alert(village_name="Sumbermanjing Kulon Wetan Lor Kidul", kecamatan_name="Sumbermanjing Wetan")
    mark = "LATIHAN/EXERCISE (+21 desa/kel.): "
    for language in ("id", "en"):
        plain = renderer.render_resident(long_names, make_recipient(language=language)).text
        marked = renderer.render_resident(long_names, make_recipient(language=language), prefix=mark).text
        assert marked.startswith(mark)
        assert sms_segments(marked) <= 2
        assert len(marked) - len(mark) <= len(plain)  # made to fit with the mark, not cut by the carrier
    notice = renderer.render_tagana(make_unit(), tagana_alerts(), prefix="LATIHAN/EXERCISE: ").text
    assert notice.startswith("LATIHAN/EXERCISE: MOBILISASI")
    assert sms_segments(notice) <= 2


@pytest.mark.parametrize(
    ("tsunami", "words_id", "words_en"),
    [("no", "Tidak berpotensi tsunami", "No tsunami potential"), ("yes", "BERPOTENSI TSUNAMI", "TSUNAMI POSSIBLE")],
)
def test_an_earthquake_message_gives_bmkgs_facts_first(
    renderer: MessageRenderer, tsunami: str, words_id: str, words_en: str
) -> None:
    wib = timezone(timedelta(hours=7), "WIB")
    quake = (("magnitude", "7.4"), ("depth_km", "10"), ("epicentre", "113 km BaratLaut LARANTUKA-NTT"),
             ("tsunami", tsunami))  # fmt: skip
    alert = make_alert(
        event="Gempabumi", hazard="tsunami" if tsunami == "yes" else "gempa", level=Level.AWAS, quake=quake,
        effective=datetime(2021, 12, 14, 10, 20, tzinfo=wib), zone_name="WIB", expires=None,
    )  # fmt: skip
    for channel in ("sms", "whatsapp"):
        text_id = renderer.render_resident(alert, make_recipient(channel=channel)).text
        text_en = renderer.render_resident(alert, make_recipient(channel=channel, language="en")).text
        for text, words in ((text_id, words_id), (text_en, words_en)):
            assert "M7.4" in text
            assert "10:20 WIB" in text
            assert "113 km BaratLaut LARANTUKA-NTT" in text
            assert "10 km" in text
            assert words in text
            assert "Gempabumi di" not in text  # the village is where it is felt, not the epicentre
            if channel == "sms":
                assert sms_segments(text) <= 2
        assert "Guncangan" in text_id
        assert "haking" in text_en


def test_whatsapp_residents_are_told_how_to_stop(renderer: MessageRenderer) -> None:
    for transition in ("new", "expire"):
        for language, words in (("id", "balas BERHENTI"), ("en", "reply STOP")):
            recipient = make_recipient(channel="whatsapp", language=language)
            text = renderer.render_resident(make_alert(transition=transition), recipient).text
            assert words in text


@pytest.mark.parametrize(
    ("event", "hazard"),
    [
        ("Hujan Lebat disertai Petir", "cuaca"),
        ("Potensi Banjir di Jawa Timur", "banjir"),
        ("Flood warning", "banjir"),
        ("Waspada Tanah Longsor", "longsor"),
        ("Gerakan tanah tinggi", "longsor"),
        ("Gempabumi Berpotensi Tsunami", "tsunami"),
        ("Gempabumi", "gempa"),
        ("", "cuaca"),
    ],
)
def test_the_warning_s_own_words_name_its_hazard(event: str, hazard: str) -> None:
    from ews.messages.render import hazard_from_event

    assert hazard_from_event(event) == hazard


def test_flood_and_landslide_alerts_give_their_own_advice(renderer: MessageRenderer) -> None:
    flood = renderer.render_resident(make_alert(level=Level.AWAS, hazard="banjir"), make_recipient()).text
    assert "arus banjir" in flood
    assert "lereng" not in flood
    slide = renderer.render_resident(make_alert(level=Level.SIAGA, hazard="longsor"), make_recipient()).text
    assert "retakan tanah" in slide
    assert "banjir" not in slide.lower()

"""The built-in routing keywords, units and response deadlines, per report category.

These are the defaults a region's ``routing:`` block extends or replaces (see
:class:`ews.command.rules.RoutingRules` and docs/routing.md). A keyword is one word or a phrase of a few
words, written as people write it; texts and keywords are compared in :func:`ews.command.text.normal_form`
and a keyword word matches a text word when it is one of that word's :func:`ews.command.text.word_forms`. So
a keyword written as a root (``jebak``) matches its affixed forms (``terjebak``, ``kejebak``, ``dijebak``), and
one written affixed (``pengungsi``) matches that form and its suffixed forms only. Keyword words of seven
letters or more also match a word one typing slip away that starts with the same letter (``jembtan`` ->
``jembatan``).

Choices that are not obvious:

- ``pengungsi``/``pengungsian`` (the displaced, their shelter) are relief. ``mengungsi`` (to flee) alone is in
  no list: "warga sudah mengungsi ke masjid, butuh makan" is a relief report; fleeing that is starting or
  needed (``mulai/mau/harus/perlu/belum mengungsi``) is a rescue, as is rising water (``air naik``).
- ``hanyut`` (swept away) is a rescue only with a person before it (``anak hanyut``); "obatnya hanyut" is not.
  ``hilang`` (lost) likewise: ``orang hilang``, ``belum ditemukan``, ``missing``.
- ``tolong``/``help`` alone, hazard words (``banjir``, ``gempa``, ``hujan``) and deaths (``meninggal``) classify
  nothing: such a text goes to the duty operator, who reads every unclassified report.
- ``bantuan`` (aid) is relief: in a disaster chat it means relief goods; with a rescue or health word the
  precedence routes the text there.
- ``evacuation center``/``shelter``, ``tempat evakuasi`` are relief (a shelter), matched before the single word.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class Category(StrEnum):
    """What a report asks for; the value is the key of the region file's ``routing:`` block."""

    RESCUE = "rescue"
    HEALTH = "health"
    RELIEF = "relief"
    INFRASTRUCTURE = "infrastructure"
    UNCLASSIFIED = "unclassified"


PRECEDENCE: tuple[Category, ...] = (Category.RESCUE, Category.HEALTH, Category.RELIEF, Category.INFRASTRUCTURE)
"""Life safety first: a life in danger now (rescue), then harm to a body (health), then what people need to
live through the days after (relief), then structures (infrastructure). The first matched category is the
primary; :data:`Category.UNCLASSIFIED` is what no keyword matched."""

DEFAULT_UNITS: Mapping[Category, str] = {
    Category.RESCUE: "Tagana",
    Category.HEALTH: "Dinas Kesehatan",
    Category.RELIEF: "Dinas Sosial / Direktorat PSKBA (Ditjen Linjamsos, Kemensos)",
    Category.INFRASTRUCTURE: "BPBD / Dinas PUPR",
    Category.UNCLASSIFIED: "Operator piket",
}
"""Who acts on each category. PSKBA: Direktorat Perlindungan Sosial Korban Bencana Alam."""

DEFAULT_DEADLINE_MINUTES: Mapping[Category, int] = {
    Category.RESCUE: 15,
    Category.HEALTH: 30,
    Category.RELIEF: 180,
    Category.INFRASTRUCTURE: 240,
    Category.UNCLASSIFIED: 30,
}
"""Minutes from receipt by which the unit must take a report in hand (Tagana's target is to *arrive* within
an hour, so it must move within a quarter of one); an unclassified report must be read and routed by the duty
operator within half an hour."""

# One line per group of related keywords reads better than one keyword per line.
# fmt: off
DEFAULT_KEYWORDS: Mapping[Category, tuple[str, ...]] = {
    Category.RESCUE: (
        # trapped, drowning, swept away, buried
        "jebak", "terperangkap", "terkurung", "terjepit", "tenggelam", "kelelep", "terseret", "keseret",
        "terseret arus", "terbawa arus", "kebawa arus", "anak hanyut", "orang hanyut", "warga hanyut",
        "korban hanyut", "tertimbun", "tertimpa", "terkubur",
        # cannot get out, water at the roof or the chest
        "tidak bisa keluar", "belum bisa keluar", "sampai atap", "di atap", "naik ke atap", "atas genteng",
        "sampai leher", "sampai dada", "setinggi dada", "setinggi leher", "masih di dalam",
        # water still rising; people starting to flee (not "sudah mengungsi": already safe, see above)
        "air naik", "air makin tinggi", "water rising", "water is rising", "mulai mengungsi", "mau mengungsi",
        "harus mengungsi", "perlu mengungsi", "belum mengungsi", "bantu mengungsi",
        # missing people
        "orang hilang", "belum ditemukan", "hilang terbawa", "dicari", "missing",
        # the act of rescue
        "evakuasi", "selamatkan", "jemput", "perahu", "perahu karet", "tim sar", "basarnas", "sos",
        "evacuate", "evacuation", "rescue", "trapped", "stranded", "stuck", "drowning", "drowned", "buried",
        "swept away", "boat", "on the roof", "up to my chest", "up to my neck", "chest deep", "still inside",
        "can not get out", "cannot get out",
    ),
    Category.HEALTH: (
        "luka", "berdarah", "darah", "pendarahan", "perdarahan", "patah tulang", "bengkak", "infeksi", "tetanus",
        "sakit", "rumah sakit", "demam", "panas tinggi", "diare", "mencret", "muntah", "batuk", "pilek", "gatal",
        "ispa", "flu", "pingsan", "kejang", "pusing", "sesak", "sesak napas", "sesak nafas", "napas", "nafas",
        "keracunan", "digigit", "dbd", "demam berdarah", "gizi buruk", "hamil", "melahirkan", "persalinan", "bidan",
        "obat", "dokter", "medis", "tenaga medis", "perawat", "ambulans", "ambulan", "puskesmas", "klinik", "kesehatan",
        "injured", "injury", "hurt", "wounded", "bleeding", "broken bone", "broken leg", "broken arm",
        "sick", "ill", "fever", "diarrhea", "diarrhoea", "vomiting", "cough", "fainted", "unconscious", "breathe",
        "breathing", "pregnant", "giving birth", "medicine", "insulin", "diabetic", "doctor", "nurse", "midwife",
        "medical", "ambulance", "clinic", "hospital", "poisoning",
    ),
    Category.RELIEF: (
        "makan", "makanan", "nasi", "nasi bungkus", "beras", "sembako", "mie instan", "logistik", "dapur umum", "lapar",
        "air bersih", "air minum", "air mineral", "susu", "susu formula", "popok", "pembalut", "selimut", "tikar",
        "pakaian", "baju", "dingin", "tenda", "terpal", "pengungsi", "pengungsian", "posko", "tempat evakuasi",
        "tempat pengungsian", "tempat tinggal", "huntara", "hunian sementara", "numpang", "bansos", "bantuan",
        "bantuan sosial", "santunan", "jadup", "kemensos", "dinsos", "dinas sosial", "food", "rice", "drinking water",
        "clean water", "blanket", "clothes", "diapers", "tent", "shelter", "evacuation center",
        "evacuation centre", "evacuation shelter", "evacuation site", "refugees", "displaced", "hungry", "aid",
        "relief",
    ),
    Category.INFRASTRUCTURE: (
        "jalan", "akses jalan", "jembatan", "tidak bisa lewat", "tidak bisa dilewati", "tidak bisa dilalui", "putus",
        "ambruk", "roboh", "rusak", "retak", "jebol", "tanggul", "bendungan", "pintu air", "pompa", "rumah pompa",
        "longsor", "tebing", "tumbang", "pohon tumbang", "listrik", "padam", "mati lampu", "lampu mati", "pln",
        "tiang listrik", "kabel", "gardu", "pdam", "gorong", "drainase", "selokan", "saluran", "mampet",
        "genang", "sinyal", "tower", "road", "street", "bridge", "levee", "dam", "landslide", "power", "electricity",
        "blackout", "cracked", "collapsed", "blocked", "impassable", "fallen tree", "water supply",
    ),
}
# fmt: on
"""Built-in keywords per category (a category's list is checked for collisions with the others)."""

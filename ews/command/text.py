"""Chat text as the routing rules read it: a normal form, word forms (stems) and run-together words.

Reports arrive as WhatsApp messages typed in a hurry, in Bahasa Indonesia, English or both: "tlg ada yg
kejebak dirumah!!!", "butuhmakanan", "tolonggg". Everything here is a plain function of its arguments,
explainable word by word; there is no model and no dictionary beyond the small tables below.

:func:`normal_form` (applied to texts and to keywords alike, so the two always meet on the same spelling):

1. lower case (``casefold``), accents and other combining marks dropped (``tolóng`` -> ``tolong``);
2. English contractions opened (``can't`` -> ``can not``, ``isn't`` -> ``is not``);
3. everything that is not a letter or a digit becomes a space (punctuation, emoji, ``_``);
4. the reduplication marker ``2`` after a word of three or more letters is dropped (``luka2`` -> ``luka``,
   ``obat2an`` -> ``obat``); short codes keep their number (``rt2`` -> ``rt 2``, ``lt2`` -> ``lt 2``);
5. letters and digits are split apart (``2hari`` -> ``2 hari``, ``rt03`` -> ``rt 03``);
6. every run of one repeated letter becomes one letter (``tolonggg`` -> ``tolong``, ``tanggul`` -> ``tangul``):
   stretching letters is how chat shouts, and Indonesian loses no distinction by it; digits are kept;
7. chat abbreviations are written out (:data:`ABBREVIATIONS`: ``yg`` -> ``yang``, ``gak`` -> ``tidak``).

The result is words separated by single spaces; it is idempotent (applying it again changes nothing).

:func:`word_forms` gives a word and its possible roots under simple Indonesian affix rules (and a few English
endings); a keyword matches a word when it is one of these forms. :func:`split_run_together` splits a word
typed without spaces (``kejebakbanjir``) into known words.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from functools import lru_cache

_ABBREVIATIONS_AS_TYPED: Mapping[str, str] = {
    # negation: gak, ga, gk, nggak, ngga, enggak, tdk, tak, ndak, gx all mean "tidak"
    "gak": "tidak",
    "ga": "tidak",
    "gk": "tidak",
    "gx": "tidak",
    "nggak": "tidak",
    "ngga": "tidak",
    "enggak": "tidak",
    "engga": "tidak",
    "tdk": "tidak",
    "tak": "tidak",
    "ndak": "tidak",
    "gaada": "tidak ada",
    "gada": "tidak ada",
    "blm": "belum",
    "blum": "belum",
    "belom": "belum",
    "sdh": "sudah",
    "udh": "sudah",
    "udah": "sudah",
    "sudh": "sudah",
    "dah": "sudah",
    "yg": "yang",
    "tlg": "tolong",
    "tlng": "tolong",
    "utk": "untuk",
    "untk": "untuk",
    "dgn": "dengan",
    "dg": "dengan",
    "bgt": "banget",
    "org": "orang",
    "rmh": "rumah",
    "jln": "jalan",
    "jl": "jalan",
    "bs": "bisa",
    "bsa": "bisa",
    "krn": "karena",
    "karna": "karena",
    "tp": "tapi",
    "sm": "sama",
    "lg": "lagi",
    "msh": "masih",
    "skrg": "sekarang",
    "jg": "juga",
    "aja": "saja",
    "dr": "dari",
    "kmi": "kami",
    "sy": "saya",
    "sya": "saya",
    "n": "dan",
    "bnyk": "banyak",
    "byk": "banyak",
    "mkn": "makan",
    "mkan": "makan",
    "obt": "obat",
    "pls": "please",
    "plz": "please",
    "ppl": "people",
}
"""Chat abbreviations as people type them -> the words they stand for (keys and values are normalised on
import by the same steps as a text, so ``nggak`` is looked up as ``ngak``). ``asap`` is not expanded: in
Indonesian it is "smoke"."""

NEGATIONS = frozenset({"tidak", "bukan", "tanpa", "no", "not", "nobody", "none", "never", "zero"})
"""Words that cancel a rescue or health term right after them (see :mod:`ews.command.routing`)."""

_CONTRACTIONS = (
    (re.compile(r"\bcan[’']t\b"), "can not"),
    (re.compile(r"\bwon[’']t\b"), "will not"),
    (re.compile(r"n[’']t\b"), " not"),
)
_NOT_WORD = re.compile(r"[\W_]+")
_REDUPLICATION = re.compile(r"([^\W\d_]{3,})2(?:an|nya)?\b")
_LETTER_DIGIT = re.compile(r"(?<=[^\W\d_])(?=\d)|(?<=\d)(?=[^\W\d_])")
_REPEATED_LETTER = re.compile(r"([^\W\d_])\1+")


def _characters(text: str) -> str:
    """Steps 1-6 of :func:`normal_form` on a text."""
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = unicodedata.normalize("NFKC", text).casefold()
    for pattern, replacement in _CONTRACTIONS:
        text = pattern.sub(replacement, text)
    text = _NOT_WORD.sub(" ", text)
    text = _REDUPLICATION.sub(r"\1", text)
    text = _LETTER_DIGIT.sub(" ", text)
    return _REPEATED_LETTER.sub(r"\1", text)


ABBREVIATIONS: Mapping[str, str] = {
    " ".join(_characters(k).split()): " ".join(_characters(v).split()) for k, v in _ABBREVIATIONS_AS_TYPED.items()
}
"""The abbreviations in normal form (what :func:`normal_form` looks up)."""


def normal_form(text: str) -> str:
    """The normal form of a chat text: lower-case words of letters and digits, one space apart.

    Parameters
    ----------
    text
        Any text (a WhatsApp message, a keyword from a region file).

    Returns
    -------
    str
        The words after the steps in the module docstring; ``""`` when the text has no letters or digits.
    """
    words: list[str] = []
    for word in _characters(text).split():
        words.extend(ABBREVIATIONS.get(word, word).split())
    return " ".join(words)


_PARTICLES = ("lah", "kah", "pun")
_POSSESSIVES = ("nya", "ku", "mu")
_DERIVATIONAL = ("kan", "an", "in", "i")  # "-in" is colloquial (Jakarta) "-kan": tolongin, bantuin
_ENGLISH = ("ing", "ed", "es", "s")
_PREFIXES = ("di", "ter", "ke", "ber")
_MIN_ROOT = 3


def _suffix_forms(word: str) -> set[str]:
    forms = {word}
    for group in (_PARTICLES, _POSSESSIVES, _DERIVATIONAL):
        for form in list(forms):
            forms.update(form[: -len(s)] for s in group if form.endswith(s) and len(form) - len(s) >= _MIN_ROOT)
    forms.update(word[: -len(s)] for s in _ENGLISH if word.endswith(s) and len(word) - len(s) >= _MIN_ROOT + 1)
    return forms


def _nasal_forms(word: str) -> set[str]:
    """Roots behind the ``me-`` prefix, whose nasal replaces the root's first letter (``menolong`` <- ``tolong``)."""
    forms: set[str] = set()
    vowel = "aeiou"
    if word.startswith("meny") and word[4:5] in vowel:
        forms.add("s" + word[4:])  # menyelamatkan <- selamat
    if word.startswith("meng"):
        forms.add(word[4:])  # mengirim <- kirim is below; menggali <- gali
        if word[4:5] in vowel:
            forms.add("k" + word[4:])
    if word.startswith("mem"):
        forms.add(word[3:])  # membawa <- bawa
        if word[3:4] in vowel:
            forms.add("p" + word[3:])  # memutus <- putus
    if word.startswith("men"):
        forms.add(word[3:])  # mendata <- data
        if word[3:4] in vowel:
            forms.add("t" + word[3:])  # menolong <- tolong
    if word.startswith("me"):
        forms.add(word[2:])  # melapor <- lapor
    return {f for f in forms if len(f) >= _MIN_ROOT}


@lru_cache(maxsize=65536)
def word_forms(word: str) -> frozenset[str]:
    """A word and its possible roots: the forms a keyword may take to match it.

    The rules strip, in this order and each at most once, a particle (``-lah -kah -pun``), a possessive
    (``-nya -ku -mu``), a derivational suffix (``-kan -an -in -i``), and then one prefix: ``di- ter- ke-
    ber-``, or ``me-`` with its nasal ``meng-/meny-/mem-/men-``, whose lost first letter is put back
    (``menolong`` -> ``tolong``); with ``ke-`` and ``-an`` this is the confix ``ke-…-an`` (``kebanjiran`` ->
    ``banjir``). Every intermediate form is kept and a root keeps at least three letters, so a wrong strip
    only adds a form that no keyword has. English endings ``-ing -ed -es -s`` are stripped too, leaving four
    letters or more.

    Parameters
    ----------
    word
        One word in normal form.

    Returns
    -------
    frozenset of str
        ``word`` itself and every form the rules give, e.g. ``terjebak`` -> {terjebak, jebak}.
    """
    forms = _suffix_forms(word)
    for form in list(forms):
        for prefix in _PREFIXES:
            if form.startswith(prefix) and len(form) - len(prefix) >= _MIN_ROOT:
                forms.add(form[len(prefix) :])
        forms |= _nasal_forms(form)
    return frozenset(forms)


_MAX_SPLIT_LENGTH = 40


def split_run_together(word: str, is_word: Callable[[str], bool]) -> tuple[str, ...] | None:
    """Split a word typed without spaces into known words, or None.

    Parameters
    ----------
    word
        One word in normal form, e.g. ``butuhmakanan``.
    is_word
        Whether a piece (two letters or more) is a known word: for routing, a keyword word, an abbreviation,
        one of :data:`CHAT_WORDS`, or a word with a keyword among its forms. Abbreviations among the pieces
        are written out.

    Returns
    -------
    tuple of str or None
        The split with the fewest pieces (at least two), e.g. (``butuh``, ``makanan``); None when the word
        is shorter than four or longer than 40 letters, or cannot be split into known words.
    """
    n = len(word)
    if n > _MAX_SPLIT_LENGTH or n < 4:
        return None
    # fewest[i]: the fewest known pieces that spell word[:i]; start[i]: where the last of them begins.
    fewest: list[int | None] = [0] + [None] * n
    start = [0] * (n + 1)
    for end in range(2, n + 1):
        for begin in range(end - 2, -1, -1):
            before = fewest[begin]
            if before is None or not is_word(word[begin:end]):
                continue
            current = fewest[end]
            if current is None or before + 1 < current:
                fewest[end] = before + 1
                start[end] = begin
    count = fewest[n]
    if count is None or count < 2:
        return None
    pieces: list[str] = []
    end = n
    while end > 0:
        pieces.append(word[start[end] : end])
        end = start[end]
    expanded: list[str] = []
    for piece in reversed(pieces):
        expanded.extend(ABBREVIATIONS.get(piece, piece).split())
    return tuple(expanded)


def within_one_edit(a: str, b: str) -> bool:
    """Whether ``a`` becomes ``b`` by at most one insertion, deletion, substitution or swap of neighbours."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    i = 0
    while i < min(la, lb) and a[i] == b[i]:
        i += 1
    if la == lb:
        if a[i + 1 :] == b[i + 1 :]:
            return True
        return a[i : i + 2] == b[i : i + 2][::-1] and a[i + 2 :] == b[i + 2 :]
    if la > lb:
        return a[i + 1 :] == b[i:]
    return a[i:] == b[i + 1 :]


CHAT_WORDS = frozenset(
    normal_form(word)
    for word in (
        "ada yang di ke dari dan atau tidak bisa sudah belum masih lagi kami saya kita warga orang anak ibu bapak "
        "pak bu rumah air banjir hujan gempa tolong mohon butuh perlu minta segera cepat sangat banget total sini "
        "sana ini itu untuk dengan buat karena tapi juga sekarang desa dusun kampung rt rw gang lantai kk jiwa "
        "korban "
        "help need please the and my our is are no not water flood here there"
    ).split()
)
"""Common chat words that :func:`split_run_together` may find inside a word typed without spaces, besides
the routing keywords and the abbreviations."""

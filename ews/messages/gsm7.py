"""The GSM 03.38 (3GPP TS 23.038) default alphabet: membership, septet counts, SMS segments, transliteration.

Indonesian networks handle Unicode (UCS-2) and long concatenated messages poorly, so every SMS ews sends is
plain GSM-7. These functions are pure and work on ``str``.
"""

from __future__ import annotations

import unicodedata

__all__ = [
    "GSM7_BASIC",
    "GSM7_EXTENSION",
    "SEPTETS_PER_PART",
    "SEPTETS_SINGLE",
    "UCS2_UNITS_PER_PART",
    "UCS2_UNITS_SINGLE",
    "gsm7_length",
    "is_gsm7",
    "sms_segments",
    "to_gsm7",
]

SEPTETS_SINGLE = 160
"""Septets in a single (unconcatenated) GSM-7 SMS."""

SEPTETS_PER_PART = 153
"""Septets per part of a concatenated GSM-7 SMS (7 septets go to the user data header)."""

UCS2_UNITS_SINGLE = 70
"""UTF-16 code units in a single UCS-2 SMS."""

UCS2_UNITS_PER_PART = 67
"""UTF-16 code units per part of a concatenated UCS-2 SMS."""

# The default alphabet in code order 0x00-0x7F, without 0x1B (the escape to the extension table,
# which is not a character of its own).
GSM7_BASIC: frozenset[str] = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
"""Characters of the GSM-7 default alphabet; each costs one septet."""

GSM7_EXTENSION: frozenset[str] = frozenset("\f^{}\\[~]|€")
"""Characters of the GSM-7 extension table; each costs two septets (escape + code)."""

_GSM7_ALL = GSM7_BASIC | GSM7_EXTENSION

# Replacements tried before Unicode decomposition. Every value is GSM-7 (a unit test checks it).
_REPLACEMENTS: dict[str, str] = {
    **dict.fromkeys("‘’‚‛′`´", "'"),
    **dict.fromkeys("“”„‟″«»", '"'),
    **dict.fromkeys("‐‑‒–—―−", "-"),
    "…": "...",
    **dict.fromkeys("\t\v\u00a0\u1680\u202f\u205f\u3000", " "),
    **dict.fromkeys("\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a", " "),
    **dict.fromkeys("\u2028\u2029", "\n"),
    # Invisible characters: soft hyphen, zero-width (non-)joiners and spaces, word joiner, BOM.
    **dict.fromkeys("\u00ad\u200b\u200c\u200d\u2060\ufeff", ""),
    "•": "-",
    "·": ".",
    "±": "+/-",
    "×": "x",
    "÷": "/",
    "°": "",
    "©": "(c)",
    "®": "(R)",
}


def is_gsm7(text: str) -> bool:
    """Whether every character of ``text`` is in the GSM-7 default alphabet or its extension table.

    Parameters
    ----------
    text : str
        Any text.

    Returns
    -------
    bool
        ``True`` when the text can be sent as a GSM-7 SMS without loss; ``True`` for ``""``.
    """
    return _GSM7_ALL.issuperset(text)


def gsm7_length(text: str) -> int:
    """Length of ``text`` in septets: one per basic character, two per extension character.

    Parameters
    ----------
    text : str
        GSM-7 text (see :func:`is_gsm7`).

    Returns
    -------
    int
        Number of septets.

    Raises
    ------
    ValueError
        If ``text`` holds a character outside GSM-7; the message names it and its position.
    """
    septets = 0
    for position, char in enumerate(text):
        if char in GSM7_BASIC:
            septets += 1
        elif char in GSM7_EXTENSION:
            septets += 2
        else:
            raise ValueError(
                f"character {char!r} (U+{ord(char):04X}) at position {position} is not GSM-7; "
                "pass the text through to_gsm7() first"
            )
    return septets


def _parts(costs: list[int], single: int, per_part: int) -> int:
    # One message when everything fits; otherwise fill parts greedily without splitting a unit
    # (an escape pair or a surrogate pair), as handsets and SMSCs do.
    if sum(costs) <= single:
        return 1
    parts, used = 1, 0
    for cost in costs:
        if used + cost > per_part:
            parts, used = parts + 1, 0
        used += cost
    return parts


def sms_segments(text: str) -> int:
    """Number of SMS parts needed to send ``text``.

    GSM-7 text: one part up to 160 septets, otherwise parts of 153 septets, never splitting the two
    septets of an extension character across parts. Text that is not GSM-7 would go out as UCS-2: one part
    up to 70 UTF-16 code units, otherwise parts of 67, never splitting a surrogate pair.

    Parameters
    ----------
    text : str
        The message body.

    Returns
    -------
    int
        Number of parts, at least 1 (an empty body still costs one message).
    """
    if is_gsm7(text):
        if len(text) <= SEPTETS_SINGLE // 2 or (len(text) <= SEPTETS_SINGLE and GSM7_EXTENSION.isdisjoint(text)):
            return 1  # fits one part whatever it holds (the common case, decided without a loop)
        if GSM7_EXTENSION.isdisjoint(text):  # one septet per character: whole parts of 153, no loop
            return -(-len(text) // SEPTETS_PER_PART)
        costs = [2 if char in GSM7_EXTENSION else 1 for char in text]
        return _parts(costs, SEPTETS_SINGLE, SEPTETS_PER_PART)
    units = [2 if ord(char) > 0xFFFF else 1 for char in text]
    return _parts(units, UCS2_UNITS_SINGLE, UCS2_UNITS_PER_PART)


def _transliterate(char: str) -> str:
    if char in _GSM7_ALL:
        return char
    if char in _REPLACEMENTS:
        return _REPLACEMENTS[char]
    # Compatibility decomposition splits accents from base letters ("ê" -> "e" + U+0302) and unfolds
    # ligatures, full-width forms and superscripts ("ﬁ" -> "fi", "Ａ" -> "A", "²" -> "2").
    out: list[str] = []
    for part in unicodedata.normalize("NFKD", char):
        if unicodedata.combining(part):
            continue
        if part in _GSM7_ALL:
            out.append(part)
        else:
            out.append(_REPLACEMENTS.get(part, "?"))
    return "".join(out)


def to_gsm7(text: str) -> str:
    """Transliterate ``text`` into the GSM-7 alphabet so that it never goes out as UCS-2.

    Characters already in GSM-7 are kept (including ``é``, ``ü``, ``ñ``). Curly quotes become straight ones,
    dashes ``-``, the ellipsis ``...``, non-breaking and other spaces a plain space; invisible characters are
    dropped; accented letters outside GSM-7 lose their accent (``ê`` -> ``e``); anything else that cannot be
    represented becomes ``?``.

    Parameters
    ----------
    text : str
        Any text.

    Returns
    -------
    str
        Text for which :func:`is_gsm7` is ``True``; ``to_gsm7`` of its own output returns it unchanged.
    """
    # NFC first so that "e" + combining acute becomes "é", which GSM-7 has.
    text = unicodedata.normalize("NFC", text)
    if _GSM7_ALL.issuperset(text):  # the common case: nothing to replace (one pass in C)
        return text
    return "".join(_transliterate(char) for char in text)

"""Phone numbers as personal data: normalisation to E.164, masking and stable pseudonymous ids (pure)."""

from __future__ import annotations

import hashlib
import re

import phonenumbers

# Indonesia has no officially reserved fictional mobile range. ews reserves +62 8999 00xx xxxx for
# synthetic data (demo region, tests, benchmarks): channels refuse to send there, so a demo can never reach a
# person. Six free digits hold a million distinct numbers of one length (a national-scale bench needs them);
# the former +62 8999 0000 xxxx range is its first 10,000 (fictional_phone(n) for n < 10,000 gives the same
# numbers as before).
FICTIONAL_PREFIX = "+62899900"
FICTIONAL_DIGITS = 6
FICTIONAL_SIZE = 10**FICTIONAL_DIGITS


# What a written phone number may hold besides digits: spaces, dashes, dots, parentheses and one leading
# "+" (also as "(+62)"). phonenumbers is lenient on purpose: it reads letters as keypad digits, drops a
# trailing letter and takes ";" or "#" as an extension, so "0899-9000-0101O" (letter O for zero) or
# "0899-9000-01;03" become other, valid numbers: someone else's phone would get that resident's alerts.
_WRITTEN = re.compile(r"^(?:\+|\(\+)?[0-9 \t\u00a0().\-]+$")
_SEPARATORS = re.compile(r"[\s().\-]")
# An Indonesian mobile number once its separators are removed (0812..., 62812..., +62812...).
_MOBILE = re.compile(r"^(?:\+?62|0)8\d{7,11}$")


def normalize_phone(raw: str, region: str = "ID") -> str:
    """Normalise an Indonesian number (``08…``, ``628…``, ``+628…``) to E.164 (``+628…``), strictly.

    Digits may be grouped with spaces, dashes, dots and parentheses, and the number may start with
    ``+`` (``+62 899-9000-0123``, ``(+62) 899 9000 0123``, ``0899.9000.0123``). Anything else is refused
    rather than guessed at: letters (``O`` for ``0``), extensions (``;``, ``#``, ``ext``), other
    separators (``/``, ``,``), a ``+`` inside the number, or non-ASCII digits.

    Raises
    ------
    ValueError
        The text is not a valid number. The message is a phrase to put after the column name
        (``"has letters ..."``) and never repeats the number (personal data); the caller adds where.
    """
    text = raw.strip()
    if not text:
        raise ValueError("is empty")
    if any(c.isalpha() for c in text):
        raise ValueError("has letters (an O for a zero?); write the number in digits")
    if not _WRITTEN.match(text):
        raise ValueError(
            "has characters other than digits, spaces, '-', '.', '(', ')' and a leading '+'; "
            "write one number per cell, without an extension"
        )
    digits = _SEPARATORS.sub("", text)
    if digits.startswith("62"):
        digits = "+" + digits
    try:
        number = phonenumbers.parse(digits, region)
    except phonenumbers.NumberParseException:
        raise ValueError("is not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("is not a valid number for its country (check the number of digits)")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def can_receive_messages(e164: str) -> bool:
    """Whether a normalised number can be a mobile one (SMS, WhatsApp), not a landline only.

    A Kemendagri code typed into the phone column (``35.78.01.1001``) reads as a valid Surabaya landline.
    """
    kind = phonenumbers.number_type(phonenumbers.parse(e164))
    return kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)


def looks_like_phone(text: str) -> bool:
    """Whether ``text`` could be an Indonesian mobile number (with or without separators).

    Used before echoing a value in an error message: a number typed into the wrong column must not be
    printed.
    """
    return bool(_MOBILE.match(_SEPARATORS.sub("", text.strip())))


def mask_phone(e164: str) -> str:
    """Show a number without revealing it: ``+6281234567890`` -> ``+62812*****890``."""
    if not e164:
        return ""
    keep_head, keep_tail = 6, 3
    if len(e164) <= keep_head + keep_tail:
        return "*" * len(e164)
    return e164[:keep_head] + "*" * (len(e164) - keep_head - keep_tail) + e164[-keep_tail:]


def recipient_id(e164: str) -> str:
    """A stable pseudonymous id for a number, safe to log and to put in XCom."""
    return "r-" + hashlib.sha256(e164.encode()).hexdigest()[:16]


def fictional_phone(n: int) -> str:
    """The ``n``-th number of ews's reserved fictional range in E.164 (``0 <= n < FICTIONAL_SIZE``).

    ``fictional_phone(123)`` is ``+62899900000123``; every one is a valid Indonesian mobile number for
    :func:`normalize_phone` and :func:`can_receive_messages`, and :func:`is_fictional`.

    Raises
    ------
    ValueError
        ``n`` is outside the range (the message says how large it is).
    """
    if not 0 <= n < FICTIONAL_SIZE:
        raise ValueError(
            f"fictional number {n} is outside ews's reserved range of {FICTIONAL_SIZE:,} (0 to {FICTIONAL_SIZE - 1:,})"
        )
    return f"{FICTIONAL_PREFIX}{n:0{FICTIONAL_DIGITS}d}"


def is_fictional(e164: str) -> bool:
    """Whether a number is in ews's reserved synthetic range."""
    return e164.startswith(FICTIONAL_PREFIX)

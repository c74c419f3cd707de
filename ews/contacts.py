"""Phone numbers as personal data: normalisation to E.164, masking and stable pseudonymous ids (pure)."""

from __future__ import annotations

import hashlib

import phonenumbers

# Indonesia has no officially reserved fictional mobile range. ews reserves +62 8999 0000 xxxx for
# synthetic data (demo region, tests): channels refuse to send there, so a demo can never reach a person.
FICTIONAL_PREFIX = "+6289990000"


def normalize_phone(raw: str, region: str = "ID") -> str:
    """Normalise an Indonesian number (``08…``, ``628…``, ``+628…``) to E.164 (``+628…``).

    Raises
    ------
    ValueError
        The text is not a valid number; the message never repeats the number (personal data).
    """
    text = raw.strip()
    if text.startswith("62") and not text.startswith("+"):
        text = "+" + text
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise ValueError("not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid number for its country")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


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


def is_fictional(e164: str) -> bool:
    """Whether a number is in ews's reserved synthetic range."""
    return e164.startswith(FICTIONAL_PREFIX)

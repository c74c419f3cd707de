"""Messages: SMS and WhatsApp texts for residents and Tagana units; SMS stays within GSM-7."""

from __future__ import annotations

from ews.messages.gsm7 import GSM7_BASIC, GSM7_EXTENSION, gsm7_length, is_gsm7, sms_segments, to_gsm7
from ews.messages.render import (
    SMS_MAX_SEGMENTS,
    VARIANTS,
    WHATSAPP_MAX_CHARS,
    MessageRenderer,
)

__all__ = [
    "GSM7_BASIC",
    "GSM7_EXTENSION",
    "SMS_MAX_SEGMENTS",
    "VARIANTS",
    "WHATSAPP_MAX_CHARS",
    "MessageRenderer",
    "gsm7_length",
    "is_gsm7",
    "sms_segments",
    "to_gsm7",
]

"""What an inbound WhatsApp message means (pure): an opt-out, a Tagana acknowledgement, or a report."""

from __future__ import annotations

import re
from dataclasses import dataclass

OPT_OUT_WORDS = frozenset({"STOP", "BERHENTI", "UNSUBSCRIBE", "STOPALL", "CANCEL", "END", "QUIT"})
_ACK = re.compile(r"^\s*(SIAP|YA)\s+([A-Za-z0-9][A-Za-z0-9._-]*)\s*[.!]*\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Meaning:
    """``kind`` is ``opt-out``, ``ack`` or ``report``; ``code`` the unit code of an acknowledgement."""

    kind: str
    code: str | None = None


def classify(body: str) -> Meaning:
    """Read a reply: ``STOP``/``BERHENTI``/``UNSUBSCRIBE`` (alone) opt out; ``SIAP <code>``/``YA <code>`` acknowledge.

    Anything else is a report for the command center. Matching ignores case and surrounding punctuation.
    """
    word = re.sub(r"[^A-Za-z]", "", body).upper()
    if word in OPT_OUT_WORDS:
        return Meaning("opt-out")
    match = _ACK.match(body)
    if match:
        return Meaning("ack", match.group(2).upper())
    return Meaning("report")

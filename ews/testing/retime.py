"""Recorded BMKG CAP files as if BMKG had just sent them: for loopback sites in tests and benchmarks."""

from __future__ import annotations

import re
from datetime import datetime

STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}")
"""A CAP date-time with its offset, as BMKG writes them (``2026-09-24T15:07:00+08:00``)."""


def retimed_cap(cap: bytes, sent: datetime) -> bytes:
    """``cap`` with its ``<sent>`` at ``sent`` and every other instant in it shifted by the same amount.

    Offsets are kept (BMKG's local ``+07:00``/``+08:00``); ``sent`` must be aware. Raises ValueError when the
    file has no ``<sent>``.
    """
    text = cap.decode()
    found = re.search(r"<sent>([^<]+)</sent>", text)
    if found is None:
        raise ValueError("the CAP has no <sent>: cannot retime it")
    original = datetime.fromisoformat(found.group(1))
    shift = sent.astimezone(original.tzinfo) - original

    def moved(match: re.Match[str]) -> str:
        return (datetime.fromisoformat(match.group(0)) + shift).isoformat(timespec="seconds")

    return STAMP.sub(moved, text).encode()

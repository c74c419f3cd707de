"""CAP 1.2 output: ews' alerts as CAP documents and an Atom index (pure).

The validator lives in :mod:`ews.cap.validate` and is not imported here, because it needs lxml.
"""

from __future__ import annotations

from ews.cap.writer import (
    CapArea,
    CapMessage,
    CapReference,
    atom_feed,
    cap_identifier,
    level_to_cap,
    msg_types_for,
    to_cap_xml,
)

__all__ = [
    "CapArea",
    "CapMessage",
    "CapReference",
    "atom_feed",
    "cap_identifier",
    "level_to_cap",
    "msg_types_for",
    "to_cap_xml",
]

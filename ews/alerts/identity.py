"""Which warning a BMKG message really is: aliases by content, and successors of an active thread (pure).

BMKG's feeds do not keep one identifier per warning:

- the same nowcast is **re-served** under a new ``<identifier>`` (another hour field or sequence number),
  and its Indonesian and English **editions** carry identifiers of their own. Their content is the same, so
  :func:`ews.ingest.bmkg_cap.content_key` is too: such a message is an *alias* of the first one seen and
  never alerts anyone;
- a later ``Alert`` from the same sender for the same event may repeat the polygons of a still-valid
  warning and add an area, **without** ``<references>``. It *continues* the active thread its area overlaps
  (an Update in ews's lifecycle): villages already alerted hear again only under the usual rules (level
  up, expiry moved), newly covered villages are alerted, villages no longer covered get their all-clear.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from shapely.geometry.base import BaseGeometry

from ews.types import Warning

# An overlap smaller than this (square degrees, about 100 m x 100 m) is two areas touching, not one threat.
MIN_OVERLAP_DEG2 = 1e-6


@dataclass(frozen=True)
class ActiveThread:
    """The newest message of a thread that still has active alerts (what a successor is compared with)."""

    thread_id: str
    identifier: str
    sender: str
    status: str
    event: str
    event_code: str
    sent: datetime
    expires: datetime | None
    geometry: BaseGeometry


def same_event(a_code: str, a_event: str, b_code: str, b_event: str) -> bool:
    """Whether two messages announce the same kind of event: by BMKG's OET code when both have one, else by name."""
    if a_code and b_code:
        return a_code == b_code
    return a_event.strip().casefold() == b_event.strip().casefold()


def alias_of(warning: Warning, known: Mapping[str, tuple[str, ...]]) -> str | None:
    """The identifier ``warning`` is a copy of (``known``: content key -> (identifier, ...)), or None."""
    if warning.sender == "ews" or not warning.content_key:
        return None  # ews's own threads have identities of their own
    found = known.get(warning.content_key)
    if found is None or found[0] == warning.identifier:
        return None
    return found[0]


def continued_thread(warning: Warning, active: Iterable[ActiveThread], now: datetime) -> ActiveThread | None:
    """The active thread a referenceless Alert continues: same sender, status and event, overlapping area.

    Only a BMKG ``Alert`` without ``<references>`` is a candidate, sent no earlier than the thread's newest
    message, while that thread has not expired. With several candidates the largest overlap wins.
    """
    if warning.msg_type != "Alert" or warning.references or warning.sender == "ews" or warning.geometry.is_empty:
        return None
    best: tuple[float, ActiveThread] | None = None
    for thread in active:
        if thread.sender != warning.sender or thread.status != warning.status:
            continue
        if not same_event(thread.event_code, thread.event, warning.event_code, warning.event):
            continue
        if warning.sent < thread.sent or (thread.expires is not None and thread.expires <= now):
            continue
        if thread.geometry.is_empty or not thread.geometry.intersects(warning.geometry):
            continue
        overlap = float(thread.geometry.intersection(warning.geometry).area)
        if overlap < MIN_OVERLAP_DEG2:
            continue
        if best is None or overlap > best[0]:
            best = (overlap, thread)
    return best[1] if best else None


def edition_reason(kept_language: str, alias_language: str) -> str:
    """``edition`` when the alias is the other language's edition, else ``re-served``."""
    same = not kept_language or kept_language.split("-")[0].lower() == alias_language.split("-")[0].lower()
    return "re-served" if same else "edition"

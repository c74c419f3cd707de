"""The CAP area alerts a region published: which are in force, and which one a new alert replaces.

A cycle publishes one CAP alert per contiguous group of villages of one kecamatan at one level in one thread
(:mod:`ews.cap.areas`). The store keeps each of them (:class:`ews.store.models.CapAreaRow`) so that the next
cycle, in a new process or after the output folder was lost, knows the partition it published: an unchanged area
(same digest of its members' versions, level and kind) keeps its identifier and file; a changed one is replaced
by new area alerts whose ``<references>`` name it. Reads and writes are set-based: the region's live areas in one
query, areas by digest in one query per chunk, a cycle's new areas in one insert and the retired ones in one
update per chunk.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from ews.store.base import StoreBase, _chunks
from ews.store.models import CapAreaRow


@dataclass(frozen=True)
class CapAreaRecord:
    """One stored CAP area alert (see :class:`ews.store.models.CapAreaRow`).

    ``members``: ``(village_code, seq)`` of the village alert versions it publishes, sorted; ``refs``: the
    ``(identifier, sent)`` of the area alerts it replaced, as written in its ``<references>``.
    """

    region: str
    thread_id: str
    identifier: str
    digest: str
    kind: str
    sent: datetime
    live: bool
    members: tuple[tuple[str, int], ...]
    refs: tuple[tuple[str, datetime], ...]


class CapAreaRepository(StoreBase):
    """CAP area alerts: the live ones of a region, look-up by digest, and a cycle's changes in one transaction."""

    def live_cap_areas(self, region: str) -> list[CapAreaRecord]:
        """The area alerts of ``region`` in force after the last cycle (one query)."""
        a = CapAreaRow
        with self.engine.connect() as connection:
            rows = connection.execute(select(a).where(a.region == region, a.live.is_(True)).order_by(a.id))
            return [_record(r) for r in rows.mappings()]

    def cap_areas_by_digest(self, region: str, digests: Iterable[str]) -> dict[str, CapAreaRecord]:
        """Digest -> the newest stored area alert of ``region`` with that digest (one query per chunk)."""
        a = CapAreaRow
        out: dict[str, CapAreaRecord] = {}
        with self.engine.connect() as connection:
            for chunk in _chunks(sorted(set(digests))):
                stmt = select(a).where(a.region == region, a.digest.in_(chunk)).order_by(a.id)
                for row in connection.execute(stmt).mappings():
                    out[row["digest"]] = _record(row)
        return out

    def record_cap_areas(self, region: str, new: Sequence[CapAreaRecord], retired: Sequence[str]) -> None:
        """Store a cycle's new area alerts and mark the ``retired`` identifiers as no longer in force, atomically.

        A new area whose identifier is already stored (a repeated cycle) is left as it is.
        """
        rows: list[dict[str, Any]] = [
            {
                "region": region, "thread_id": r.thread_id, "identifier": r.identifier, "digest": r.digest,
                "kind": r.kind, "sent": r.sent, "live": r.live, "members": [list(m) for m in r.members],
                "refs": [[i, s.isoformat()] for i, s in r.refs],
            }
            for r in new
        ]  # fmt: skip
        a = CapAreaRow
        with self._tx(f"CAP areas of region {region}") as connection:
            self._insert_new(connection, a, rows, conflict=["identifier"], returning=["id"])
            for chunk in _chunks(sorted(set(retired))):
                connection.execute(update(a).where(a.region == region, a.identifier.in_(chunk)).values(live=False))


def _record(row: Any) -> CapAreaRecord:
    return CapAreaRecord(
        region=row["region"],
        thread_id=row["thread_id"],
        identifier=row["identifier"],
        digest=row["digest"],
        kind=row["kind"],
        sent=row["sent"],
        live=bool(row["live"]),
        members=tuple((str(c), int(s)) for c, s in row["members"]),
        refs=tuple((str(i), datetime.fromisoformat(s)) for i, s in row["refs"]),
    )

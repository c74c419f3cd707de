"""The warnings aggregate: fetched documents, BMKG warnings and their threads, and aliases of a warning.

A BMKG warning's identity is its content (:func:`ews.ingest.bmkg_cap.content_key`): a copy re-served under
another identifier, or the other language's edition, is recorded as an *alias* of the first one seen
(which identifiers, from where, first and last seen) and never becomes a warning of its own.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import shapely
from sqlalchemy import select

from ews.alerts.identity import ActiveThread
from ews.store.base import StoreBase, _chunks, _now
from ews.store.models import SourceDocument, WarningAliasRow, WarningRow
from ews.types import Warning

ANNOUNCED = "announced:"
"""The hash prefix of a source document that records a poll's announcement of a warning's content."""


@dataclass(frozen=True)
class WarningHeader:
    """A stored BMKG warning without its area (see :meth:`Store.warning_headers`)."""

    identifier: str
    thread_id: str
    sender: str
    sent: datetime
    msg_type: str
    status: str
    references: tuple[str, ...]
    event: str
    severity: str
    urgency: str
    certainty: str
    effective: datetime | None
    expires: datetime | None
    source: str


@dataclass(frozen=True)
class AliasRecord:
    """A stored alias: another identifier under which a warning was served (see the module docstring)."""

    identifier: str
    canonical: str
    thread_id: str
    reason: str  # "re-served" | "edition" (the other language's)
    language: str
    source: str
    first_seen: datetime
    last_seen: datetime
    times_seen: int


class WarningRepository(StoreBase):
    """Queries of the warnings aggregate (mixed into :class:`ews.store.repository.Store`)."""

    # -- source documents and warnings ------------------------------------------------------------------

    def record_source(self, identifier: str, source: str, content_hash: str, received_at: datetime) -> bool:
        """Remember a fetched document; ``True`` if this (identifier, content hash) is new, ``False`` if a replay.

        Parameters
        ----------
        identifier
            The document's identifier (a CAP identifier, an RSS index name).
        source
            Where it came from (URL or path).
        content_hash
            A hash of its bytes (e.g. SHA-256 hex).
        received_at
            When it was fetched (aware).
        """
        stmt = (
            self._insert(SourceDocument)
            .values(identifier=identifier, source=source, content_hash=content_hash, received_at=received_at)
            .on_conflict_do_nothing(index_elements=["identifier", "content_hash"])
            .returning(SourceDocument.id)
        )
        with self._tx(f"source document {identifier}") as connection:
            return connection.execute(stmt).scalar_one_or_none() is not None

    def mark_announced(self, warnings: Sequence[tuple[str, str, str]], at: datetime) -> None:
        """Remember that a poll announced these warnings, ``(identifier, source, content key)`` each.

        The next poll does not announce their content again while the first is being processed (one statement
        per chunk). Kept as source documents whose hash is ``announced:<content key>``; their ``received_at`` is
        when ews first saw the warning (the latency's ``seen``).
        """
        rows = [
            {"identifier": ident, "source": source, "content_hash": ANNOUNCED + key, "received_at": at}
            for ident, source, key in warnings
        ]
        with self._tx("announced warnings") as connection:
            for chunk in _chunks(rows):
                stmt = self._insert(SourceDocument).values(chunk)
                connection.execute(stmt.on_conflict_do_nothing(index_elements=["identifier", "content_hash"]))

    def announced_since(self, content_keys: Collection[str], since: datetime) -> set[str]:
        """Which of ``content_keys`` a poll announced at or after ``since`` (chunked queries, not a scan)."""
        s = SourceDocument
        found: set[str] = set()
        with self.engine.connect() as connection:
            for chunk in _chunks(sorted(ANNOUNCED + k for k in set(content_keys) if k)):
                stmt = select(s.content_hash).where(s.content_hash.in_(chunk), s.received_at >= since)
                found.update(h.removeprefix(ANNOUNCED) for h in connection.execute(stmt).scalars())
        return found

    def save_warning(self, warning: Warning, thread_id: str) -> None:
        """Insert or replace a warning (by CAP identifier) as a member of the thread ``thread_id``."""
        values: dict[str, Any] = {
            "identifier": warning.identifier,
            "thread_id": thread_id,
            "sender": warning.sender,
            "sent": warning.sent,
            "msg_type": warning.msg_type,
            "status": warning.status,
            "references": list(warning.references),
            "event": warning.event,
            "severity": warning.severity,
            "urgency": warning.urgency,
            "certainty": warning.certainty,
            "effective": warning.effective,
            "expires": warning.expires,
            "geometry_wkt": shapely.to_wkt(warning.geometry, rounding_precision=-1),
            "source": warning.source,
            "content_key": warning.content_key or None,
            "event_code": warning.event_code or None,
            "language": warning.language or None,
        }
        stmt = self._insert(WarningRow).values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["identifier"], set_={k: stmt.excluded[k] for k in values if k != "identifier"}
        )
        with self._tx(f"warning {warning.identifier}") as connection:
            connection.execute(stmt)

    def warning_threads(self) -> dict[str, str]:
        """Every known warning identifier, and every alias of one, with the thread it belongs to.

        An alias belongs to its warning's thread: an Update or Cancel that references the identifier of a
        re-served copy continues (or cancels) the thread of the warning it repeats.
        """
        w, a = WarningRow, WarningAliasRow
        with self.engine.connect() as connection:
            rows = connection.execute(select(w.identifier, w.thread_id)).all()
            aliases = connection.execute(select(a.identifier, w.thread_id).join(w, w.identifier == a.canonical)).all()
        return {**{i: t for i, t in aliases}, **{i: t for i, t in rows}}

    def known_identifiers(self, identifiers: Collection[str]) -> set[str]:
        """Which of ``identifiers`` ews has stored, as a warning or as an alias of one (chunked queries, not a scan)."""
        w, a = WarningRow, WarningAliasRow
        found: set[str] = set()
        with self.engine.connect() as connection:
            for chunk in _chunks(sorted(set(identifiers))):
                found.update(connection.execute(select(w.identifier).where(w.identifier.in_(chunk))).scalars())
                found.update(connection.execute(select(a.identifier).where(a.identifier.in_(chunk))).scalars())
        return found

    def warning_headers(self, thread_id: str) -> list[WarningHeader]:
        """The warnings of a thread, oldest ``sent`` first (without their areas)."""
        w = WarningRow
        stmt = (
            select(
                w.identifier,
                w.thread_id,
                w.sender,
                w.sent,
                w.msg_type,
                w.status,
                w.references,
                w.event,
                w.severity,
                w.urgency,
                w.certainty,
                w.effective,
                w.expires,
                w.source,
            )
            .where(w.thread_id == thread_id)
            .order_by(w.sent, w.identifier)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(stmt).all()
        return [
            WarningHeader(
                identifier=r.identifier,
                thread_id=r.thread_id,
                sender=r.sender,
                sent=r.sent,
                msg_type=r.msg_type,
                status=r.status,
                references=tuple(r.references),
                event=r.event,
                severity=r.severity,
                urgency=r.urgency,
                certainty=r.certainty,
                effective=r.effective,
                expires=r.expires,
                source=r.source,
            )
            for r in rows
        ]

    # -- identity by content ------------------------------------------------------------------------------

    def warnings_by_content(self, keys: Collection[str]) -> dict[str, tuple[str, str, str]]:
        """Content key -> (identifier, thread, language) of the first stored warning with that content."""
        w = WarningRow
        found: dict[str, tuple[str, str, str]] = {}
        with self.engine.connect() as connection:
            for chunk in _chunks(sorted(k for k in keys if k)):
                stmt = (
                    select(w.content_key, w.identifier, w.thread_id, w.language)
                    .where(w.content_key.in_(chunk))
                    .order_by(w.sent, w.identifier)
                )
                for key, identifier, thread, language in connection.execute(stmt):
                    found.setdefault(str(key), (identifier, thread, language or ""))
        return found

    def save_aliases(self, aliases: Sequence[tuple[str, str, str, str, str]], *, at: datetime | None = None) -> None:
        """Record aliases ``(identifier, canonical, reason, language, source)``, seen at ``at``, in one statement.

        An alias seen again keeps its first sighting; its last sighting and count move on.
        """
        if not aliases:
            return
        when = at or _now()
        unique = {a[0]: a for a in aliases}
        rows = [
            {"identifier": i, "canonical": c, "reason": r, "language": lang, "source": src, "first_seen": when,
             "last_seen": when, "times_seen": 1}
            for i, c, r, lang, src in unique.values()
        ]  # fmt: skip
        a = WarningAliasRow
        stmt = self._insert(a).values(rows)
        stmt = stmt.on_conflict_do_update(
            index_elements=["identifier"],
            set_={"last_seen": stmt.excluded.last_seen, "source": stmt.excluded.source, "times_seen": a.times_seen + 1},
        )
        with self._tx(f"{len(rows)} warning alias(es)") as connection:
            connection.execute(stmt)

    def warning_aliases(self, thread_ids: Iterable[str] | None = None) -> list[AliasRecord]:
        """Stored aliases (of the warnings of ``thread_ids``, or all), newest sighting first."""
        a, w = WarningAliasRow, WarningRow
        stmt = (
            select(a.identifier, a.canonical, w.thread_id, a.reason, a.language, a.source, a.first_seen, a.last_seen,
                   a.times_seen)
            .join(w, w.identifier == a.canonical)
            .order_by(a.last_seen.desc(), a.identifier)
        )  # fmt: skip
        threads = None if thread_ids is None else sorted(set(thread_ids))
        statements = [stmt] if threads is None else [stmt.where(w.thread_id.in_(c)) for c in _chunks(threads)]
        out: list[AliasRecord] = []
        with self.engine.connect() as connection:
            for statement in statements:
                out.extend(AliasRecord(*r) for r in connection.execute(statement))
        return out

    def thread_heads(self, thread_ids: Collection[str]) -> list[ActiveThread]:
        """The newest stored warning of each of ``thread_ids`` with its area, in one query per 500 threads."""
        w = WarningRow
        heads: dict[str, ActiveThread] = {}
        with self.engine.connect() as connection:
            for chunk in _chunks(sorted(set(thread_ids))):
                stmt = (
                    select(
                        w.thread_id, w.identifier, w.sender, w.status, w.event, w.event_code, w.sent, w.expires,
                        w.geometry_wkt,
                    )
                    .where(w.thread_id.in_(chunk))
                    .order_by(w.sent.desc(), w.identifier.desc())
                )  # fmt: skip
                for r in connection.execute(stmt):
                    if r.thread_id in heads:
                        continue
                    heads[r.thread_id] = ActiveThread(
                        r.thread_id, r.identifier, r.sender, r.status, r.event, r.event_code or "", r.sent, r.expires,
                        shapely.from_wkt(r.geometry_wkt),
                    )  # fmt: skip
        return list(heads.values())

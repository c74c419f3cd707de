"""Audiences: who the send ledger says heard an alert (a thread, one village, many villages at once).

This is who must hear a cancel or an all-clear; each answer is (recipient id, audience, channel), no number.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

from sqlalchemy import select

from ews.store.base import StoreBase, _chunks
from ews.store.models import AlertVersion, LedgerEntry


class AudienceRepository(StoreBase):
    """Recipients of alert versions, from the send ledger (mixed into :class:`ews.store.repository.Store`)."""

    def thread_recipients(self, region: str, thread_id: str) -> list[tuple[str, str, str]]:
        """Everyone in the ledger for any version of a thread: ``(recipient_id, audience, channel)``, sorted.

        This is who must hear a cancel or an all-clear (every ledger status is included).
        """
        e, a = LedgerEntry, AlertVersion
        stmt = (
            select(e.recipient_id, e.audience, e.channel)
            .join(a, a.id == e.alert_version_id)
            .where(a.region == region, a.thread_id == thread_id)
            .distinct()
            .order_by(e.recipient_id, e.audience, e.channel)
        )
        with self.engine.connect() as connection:
            return [(r, aud, ch) for r, aud, ch in connection.execute(stmt)]

    def version_recipients(self, region: str, thread_id: str, village_code: str) -> list[tuple[str, str, str]]:
        """Like :meth:`thread_recipients`, for one village: who heard any version of its alert in the thread."""
        e, a = LedgerEntry, AlertVersion
        stmt = (
            select(e.recipient_id, e.audience, e.channel)
            .join(a, a.id == e.alert_version_id)
            .where(a.region == region, a.thread_id == thread_id, a.village_code == village_code)
            .distinct()
            .order_by(e.recipient_id, e.audience, e.channel)
        )
        with self.engine.connect() as connection:
            return [(r, aud, ch) for r, aud, ch in connection.execute(stmt)]

    def heard_by(
        self,
        region: str,
        pairs: Iterable[tuple[str, str]],
        *,
        audiences: Collection[str] | None = None,
        recipients: Collection[str] | None = None,
    ) -> dict[tuple[str, str], set[tuple[str, str, str]]]:
        """(thread, village) -> who heard any version of that village's alert in that thread.

        Like :meth:`version_recipients` for many pairs at once: one query per chunk of villages (not one per
        village), for the endings of a whole cycle. Each value holds (recipient, audience, channel).
        ``audiences`` / ``recipients``: only those (a cycle reaches the residents who heard an ending in the
        database, :meth:`ews.store.fanout.FanOutRepository.fan_out`, and asks here only of the others).
        """
        wanted = set(pairs)
        e, a = LedgerEntry, AlertVersion
        out: dict[tuple[str, str], set[tuple[str, str, str]]] = {}
        if recipients is not None and not recipients:
            return out
        people: list[Sequence[str] | None] = [None] if recipients is None else list(_chunks(sorted(set(recipients))))
        with self.engine.connect() as connection:
            for chunk, who in ((c, w) for c in _chunks(sorted({v for _, v in wanted})) for w in people):
                stmt = (
                    select(a.thread_id, a.village_code, e.recipient_id, e.audience, e.channel)
                    .join(a, a.id == e.alert_version_id)
                    .where(a.region == region, a.village_code.in_(chunk))
                    .distinct()
                )
                if audiences is not None:
                    stmt = stmt.where(e.audience.in_(sorted(audiences)))
                if who is not None:
                    stmt = stmt.where(e.recipient_id.in_(who))
                for thread, village, recipient, audience, channel in connection.execute(stmt):
                    if (thread, village) in wanted:
                        out.setdefault((thread, village), set()).add((recipient, audience, channel))
        return out

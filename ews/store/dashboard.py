"""Read-only, set-based queries behind the command center's dashboard (mixed into the store).

Nothing here writes. Each method is one query over a whole region (never one query per alert), returns plain
numbers or records and no personal data: no address, no message text.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, case, exists, func, or_, select

from ews.store.base import StoreBase, _chunks
from ews.store.models import AlertVersion, Delivery, LedgerEntry, carries_message

OPTED_OUT_ERROR = "opted out"
"""The ledger error of a message not sent because its recipient opted out (see :mod:`ews.dispatch`)."""


@dataclass(frozen=True)
class DeliveryCounts:
    """Messages of one warning thread by how far they went.

    ``queued`` waits to leave (queued, sending, or unsure whether the provider took it); ``sent`` was accepted by
    the provider or written to the dry-run outbox; ``delivered`` was reported delivered (or read) by the provider,
    a subset of ``sent``; ``failed`` failed for good or expired before it could leave; ``opted_out`` was not sent
    because its recipient had opted out. One message covers every village version it was grouped with.
    """

    queued: int = 0
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    opted_out: int = 0

    @property
    def total(self) -> int:
        """Every message counted (``delivered`` is part of ``sent``)."""
        return self.queued + self.sent + self.failed + self.opted_out


class DashboardQueries(StoreBase):
    """The dashboard's read-only queries (mixed into :class:`ews.store.repository.Store`)."""

    def delivery_counts(self, region: str, thread_ids: Collection[str] | None = None) -> dict[str, DeliveryCounts]:
        """Thread -> :class:`DeliveryCounts` of the region's messages (of ``thread_ids``, or every thread).

        One query per 500 threads. A message counts under the thread of the alert version that leads it
        (``grouped_into`` is null); threads without a message are absent.
        """
        e, a, d = LedgerEntry, AlertVersion, Delivery
        arrived = exists().where(d.ledger_id == e.id, d.status.in_(("delivered", "read")))
        opted = and_(e.status == "failed", e.error == OPTED_OUT_ERROR)

        def n(condition: ColumnElement[bool]) -> ColumnElement[int]:
            return func.sum(case((condition, 1), else_=0))

        stmt = (
            select(
                a.thread_id,
                n(e.status.in_(("queued", "sending", "unsure"))),
                n(e.status.in_(("sent", "dry-run"))),
                n(and_(e.status.in_(("sent", "dry-run")), arrived)),
                n(and_(or_(e.status == "expired", e.status == "failed"), ~opted)),
                n(opted),
            )
            .join(a, a.id == e.alert_version_id)
            .where(a.region == region, e.grouped_into.is_(None), carries_message())
            .group_by(a.thread_id)
        )
        threads = None if thread_ids is None else sorted(set(thread_ids))
        statements = [stmt] if threads is None else [stmt.where(a.thread_id.in_(c)) for c in _chunks(threads)]
        out: dict[str, DeliveryCounts] = {}
        with self.engine.connect() as connection:
            for statement in statements:
                for thread, queued, sent, delivered, failed, opted_out in connection.execute(statement):
                    out[str(thread)] = DeliveryCounts(
                        int(queued or 0), int(sent or 0), int(delivered or 0), int(failed or 0), int(opted_out or 0)
                    )
        return out

"""Deliveries: the providers' status reports on sent messages, and the SMS fail-over of a failed WhatsApp.

A delivery only moves forward (:data:`STATUS_RANK`): status callbacks arrive late, twice or out of order.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from ews.errors import StoreError
from ews.store.base import _now
from ews.store.ledger import LedgerRepository
from ews.store.models import Delivery, LedgerEntry, MessageText

# How far a delivery has gone, per Twilio status: reports only ever move it forward.
STATUS_RANK = {
    "accepted": 1, "scheduled": 1, "queued": 1, "sending": 2, "sent": 3, "canceled": 4, "failed": 4,
    "undelivered": 4, "delivered": 5, "read": 6,
}  # fmt: skip


class DeliveryRepository(LedgerRepository):
    """Provider status reports (mixed into :class:`ews.store.repository.Store`).

    Over :class:`~ews.store.ledger.LedgerRepository`: :meth:`fail_over` queues the SMS through the send ledger.
    """

    def record_status(self, provider_id: str, status: str, detail: str = "", *, at: datetime | None = None) -> bool:
        """A provider's status report, kept only if it moves that delivery forward.

        Status callbacks arrive late, twice or out of order; a delivery never goes backwards (a late "sent"
        after "delivered" changes nothing) and a repeated one is not stored twice. Returns ``False`` for
        those and for a ``provider_id`` no send carries.
        """
        rank = STATUS_RANK.get(status.lower())
        if rank is None:
            raise StoreError(f"record_status: unknown provider status {status!r}; one of {', '.join(STATUS_RANK)}")
        with self._tx(f"status report {provider_id}") as connection:
            ledger_id = connection.execute(
                select(Delivery.ledger_id).where(Delivery.provider_id == provider_id).limit(1)
            ).scalar_one_or_none()
            if ledger_id is None:
                return False
            seen = connection.execute(select(Delivery.status).where(Delivery.ledger_id == ledger_id)).scalars().all()
            if any(STATUS_RANK.get(s.lower(), 0) >= rank for s in seen):
                return False
            connection.execute(
                self._insert(Delivery).values(
                    ledger_id=ledger_id, provider_id=provider_id, status=status.lower(), detail=detail,
                    updated_at=at or _now(),
                )
            )  # fmt: skip
        return True

    def fail_over(self, provider_id: str, *, at: datetime | None = None) -> int | None:
        """Queue the SMS text of a WhatsApp message the provider reported failed after accepting it.

        Real Twilio accepts a WhatsApp message and reports "outside the 24-hour window" (63016) later, by
        status callback. Returns the new SMS ledger row, or ``None`` when there is nothing to do (not a
        WhatsApp row of ours, no SMS text stored because the region has no fallback, or already queued).
        """
        e = LedgerEntry
        with self.engine.connect() as connection:
            row = connection.execute(
                select(e, MessageText.fallback_body.label("shared_fallback"))
                .outerjoin(MessageText, MessageText.id == e.text_id)
                .where(e.provider_id == provider_id, e.channel == "whatsapp", e.grouped_into.is_(None))
            ).first()
        fallback = None if row is None else row.fallback_body if row.body is not None else row.shared_fallback
        if row is None or not fallback:
            return None
        return self.enqueue(
            row.alert_version_id, row.recipient_id, row.audience, "sms", address=row.address or "",
            body=fallback, language=row.language or "id", priority=row.priority,
            valid_until=row.valid_until, topic=row.topic, at=at,
        )  # fmt: skip

    def delivery_status(self, provider_id: str) -> str | None:
        """The furthest status reached by the send with this provider id (``None``: unknown)."""
        with self.engine.connect() as connection:
            ledger_id = connection.execute(
                select(Delivery.ledger_id).where(Delivery.provider_id == provider_id).limit(1)
            ).scalar_one_or_none()
            if ledger_id is None:
                return None
            seen = connection.execute(select(Delivery.status).where(Delivery.ledger_id == ledger_id)).scalars().all()
        return max(seen, key=lambda s: STATUS_RANK.get(s.lower(), 0)) if seen else None

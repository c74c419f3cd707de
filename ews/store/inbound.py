"""Inbound messages: what residents and Tagana coordinators sent us, under a pseudonymous sender id only."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import select

from ews.errors import StoreError
from ews.store.base import StoreBase, _now
from ews.store.models import InboundMessage

_RECIPIENT_ID = re.compile(r"r-[0-9a-f]{16}")


class InboundRepository(StoreBase):
    """Queries of inbound messages (mixed into :class:`ews.store.repository.Store`)."""

    # -- inbound ----------------------------------------------------------------------------------------

    def record_inbound(
        self,
        provider_sid: str,
        channel: str,
        sender_id: str,
        kind: str,
        body: str,
        *,
        unit_id: str | None = None,
        alert_version_id: int | None = None,
        at: datetime | None = None,
    ) -> bool:
        """Store a message someone sent us; ``False`` if this provider sid was stored already (a replay)."""
        if not _RECIPIENT_ID.fullmatch(sender_id):
            raise StoreError("record_inbound: sender_id must be a pseudonymous recipient id, never a phone number")
        stmt = (
            self._insert(InboundMessage)
            .values(
                provider_sid=provider_sid, channel=channel, sender_id=sender_id, kind=kind, body=body,
                unit_id=unit_id, alert_version_id=alert_version_id, received_at=at or _now(),
            )
            .on_conflict_do_nothing(index_elements=["provider_sid"])
            .returning(InboundMessage.id)
        )  # fmt: skip
        with self._tx(f"inbound message {provider_sid}") as connection:
            return connection.execute(stmt).scalar_one_or_none() is not None

    def inbound(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Stored inbound messages (newest first), optionally of one kind, for the command center."""
        stmt = select(InboundMessage).order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc())
        if kind is not None:
            stmt = stmt.where(InboundMessage.kind == kind)
        with self.engine.connect() as connection:
            return [dict(r) for r in connection.execute(stmt).mappings()]

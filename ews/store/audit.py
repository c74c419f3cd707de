"""The audit aggregate: every state change made through the command center, who made it and when.

Entries are only ever added. They name people by user name (or ``ews`` for automatic changes, or a Tagana
coordinator's pseudonymous id), never by phone number.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select

from ews.errors import StoreError
from ews.store.base import StoreBase, _now
from ews.store.models import AuditEntry


@dataclass(frozen=True)
class AuditRecord:
    """One audit entry (see :class:`ews.store.models.AuditEntry`)."""

    id: int
    at: datetime
    actor: str
    role: str
    action: str
    subject: str
    region: str | None
    detail: Mapping[str, Any]


@dataclass(frozen=True)
class AuditItem:
    """An audit entry to add with :meth:`AuditRepository.record_audit_many`."""

    actor: str
    role: str
    action: str
    subject: str
    region: str | None = None
    detail: Mapping[str, Any] | None = None


class AuditRepository(StoreBase):
    """Queries of the audit log (mixed into :class:`ews.store.repository.Store`)."""

    def record_audit(
        self,
        actor: str,
        role: str,
        action: str,
        subject: str,
        *,
        region: str | None = None,
        detail: Mapping[str, Any] | None = None,
        at: datetime | None = None,
    ) -> None:
        """Add one entry: ``actor`` (user name, ``ews``) with ``role`` did ``action`` on ``subject``."""
        self.record_audit_many([AuditItem(actor, role, action, subject, region, detail)], at=at)

    def record_audit_many(self, items: Sequence[AuditItem], *, at: datetime | None = None) -> None:
        """Add several entries in one statement (one per state change, e.g. every page of an escalation)."""
        if not items:
            return
        for item in items:
            if not item.actor or not item.action or not item.subject:
                raise StoreError("audit: every entry needs an actor, an action and a subject")
        when = at or _now()
        rows = [
            {"at": when, "actor": i.actor, "role": i.role, "action": i.action, "subject": i.subject,
             "region": i.region, "detail": dict(i.detail or {})}
            for i in items
        ]  # fmt: skip
        with self._statement(f"audit {items[0].action}") as connection:
            connection.execute(insert(AuditEntry), rows)

    def audit_entries(
        self,
        *,
        regions: Collection[str] | None = None,
        subject: str | None = None,
        limit: int = 200,
    ) -> list[AuditRecord]:
        """The newest entries first, optionally only of some regions (``35`` covers ``35.78``, not ``351``)."""
        a = AuditEntry
        stmt = select(a).order_by(a.at.desc(), a.id.desc()).limit(limit)
        if subject is not None:
            stmt = stmt.where(a.subject == subject)
        with self.engine.connect() as connection:
            rows = connection.execute(stmt).all()
        out = [AuditRecord(r.id, r.at, r.actor, r.role, r.action, r.subject, r.region, r.detail) for r in rows]
        if regions is None or "*" in regions:
            return out
        return [r for r in out if r.region is None or any(_under(r.region, p) for p in regions)]


def _under(code: str, prefix: str) -> bool:
    """``35.78.01`` is under ``35.78`` and ``35``, not under ``35.7`` (prefixes end on a dot boundary)."""
    return code == prefix or code.startswith(prefix + ".")

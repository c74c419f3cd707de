"""The Tagana aggregate: volunteer units, their coordinators (personal data: phone numbers) and what they heard."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, select

from ews.contacts import recipient_id
from ews.store.base import StoreBase
from ews.store.models import LedgerEntry, TaganaCoordinator, TaganaUnitRow
from ews.types import TaganaUnit


class TaganaRepository(StoreBase):
    """Queries of Tagana units and coordinators (mixed into :class:`ews.store.repository.Store`)."""

    # -- Tagana -----------------------------------------------------------------------------------------

    def save_tagana(self, units: Sequence[TaganaUnit]) -> None:
        """Replace every Tagana unit and coordinator with ``units`` (one row per unit and coordinator).

        Set-based: nothing is written when the store already holds exactly these units (every cycle re-reads the
        region's file; it rarely changes), otherwise two multi-row inserts in the replacing transaction.
        """
        seen: set[str] = set()
        unit_rows: list[dict[str, Any]] = []
        contact_rows: list[dict[str, Any]] = []
        for u in units:
            if u.unit_id not in seen:
                seen.add(u.unit_id)
                unit_rows.append({"unit_id": u.unit_id, "name": u.name, "kabkota_code": u.kabkota_code,
                                  "kecamatan_codes": list(u.kecamatan_codes)})  # fmt: skip
            if u.coordinator or u.phone:
                contact_rows.append({"unit_id": u.unit_id, "name": u.coordinator, "phone_e164": u.phone,
                                     "channel": u.channel, "step": u.step, "role": u.role})  # fmt: skip
        stored_units, stored_contacts = self._tagana_rows()
        if stored_contacts == contact_rows and stored_units == sorted(unit_rows, key=lambda r: str(r["unit_id"])):
            return
        with self._tx("Tagana units") as connection:
            connection.execute(delete(TaganaCoordinator))
            connection.execute(delete(TaganaUnitRow))
            if unit_rows:
                connection.execute(self._insert(TaganaUnitRow), unit_rows)
            if contact_rows:
                connection.execute(self._insert(TaganaCoordinator), contact_rows)

    def _tagana_rows(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The stored units (by id) and coordinators (in the order written), as :meth:`save_tagana` writes them."""
        u, c = TaganaUnitRow, TaganaCoordinator
        with self.engine.connect() as connection:
            stmt = select(u.unit_id, u.name, u.kabkota_code, u.kecamatan_codes).order_by(u.unit_id)
            units = [
                {"unit_id": i, "name": n, "kabkota_code": k, "kecamatan_codes": list(kec)}
                for i, n, k, kec in connection.execute(stmt)
            ]
            contacts = [
                {"unit_id": i, "name": n, "phone_e164": p, "channel": ch, "step": st, "role": r}
                for i, n, p, ch, st, r in connection.execute(
                    select(c.unit_id, c.name, c.phone_e164, c.channel, c.step, c.role).order_by(c.id)
                )
            ]
        return units, contacts

    def tagana_units(self) -> list[TaganaUnit]:
        """Tagana units, one entry per coordinator (a unit without one has ``coordinator=""``, ``phone=None``)."""
        u, c = TaganaUnitRow, TaganaCoordinator
        stmt = (
            select(
                u.unit_id, u.name, u.kabkota_code, u.kecamatan_codes, c.name, c.phone_e164, c.channel, c.step, c.role
            )
            .outerjoin(c, c.unit_id == u.unit_id)
            .order_by(u.unit_id, c.id)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(stmt).all()
        return [
            TaganaUnit(
                unit, name, kab, tuple(kec), coord or "", phone, channel or "whatsapp", step or 1, role or "coordinator"
            )
            for unit, name, kab, kec, coord, phone, channel, step, role in rows
        ]

    def coordinator_units(self, sender_id: str) -> list[str]:
        """Tagana units whose coordinator has this (pseudonymous) number."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(TaganaCoordinator.unit_id, TaganaCoordinator.phone_e164).where(
                    TaganaCoordinator.phone_e164.is_not(None)
                )
            ).all()
        return sorted({unit for unit, phone in rows if phone and recipient_id(phone) == sender_id})

    def latest_tagana_version(self, sender_id: str) -> int | None:
        """The newest alert version sent to this Tagana coordinator (what a 'SIAP' acknowledges)."""
        e = LedgerEntry
        stmt = select(func.max(e.alert_version_id)).where(e.recipient_id == sender_id, e.audience == "tagana")
        with self.engine.connect() as connection:
            found = connection.execute(stmt).scalar_one_or_none()
        return int(found) if found is not None else None

"""The reports aggregate: reports to the command center, their routing, status changes and reporters."""

from __future__ import annotations

from ews.store.base import StoreBase


class ReportRepository(StoreBase):
    """Mixed into :class:`ews.store.repository.Store`; see the module docstring."""

"""The mobilisations aggregate: Tagana mobilisations, their frozen policies and every recorded step."""

from __future__ import annotations

from ews.store.base import StoreBase


class MobilisationRepository(StoreBase):
    """Mixed into :class:`ews.store.repository.Store`; see the module docstring."""

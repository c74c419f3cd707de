"""The users aggregate: command-center users, web sessions and login attempts."""

from __future__ import annotations

from ews.store.base import StoreBase


class UserRepository(StoreBase):
    """Mixed into :class:`ews.store.repository.Store`; see the module docstring."""

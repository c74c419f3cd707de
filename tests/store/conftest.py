"""Store fixtures: every store test runs on SQLite and on PostgreSQL (``database_url`` in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ews.store.repository import Store


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """A migrated :class:`Store` on each database."""
    s = Store.from_url(database_url)
    yield s
    s.close()

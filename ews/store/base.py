"""What every repository of the ews store shares: one engine, one transaction helper, dialect-aware inserts.

Each aggregate has its repository module, a mixin over :class:`StoreBase`: :mod:`ews.store.warnings` (warnings,
threads and their aliases), :mod:`ews.store.versions` (village states, alert versions and their review),
:mod:`ews.store.ledger` and :mod:`ews.store.deliveries` (the send ledger, provider status reports),
:mod:`ews.store.audiences` (who heard an alert), :mod:`ews.store.subscribers`, :mod:`ews.store.inbound`,
:mod:`ews.store.tagana`, :mod:`ews.store.runs`, and the command center's (:mod:`ews.store.command`).
:class:`ews.store.repository.Store` combines them over one engine, so a caller holds one object and every
method runs its own transaction.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Self, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError, StatementError

from ews.errors import StoreError
from ews.store.db import open_store, safe_url
from ews.store.models import Base

_CHUNK = 500  # bound parameters per IN (...): well under SQLite's and PostgreSQL's limits
_M = TypeVar("_M", bound=Base)
_T = TypeVar("_T")


def _now() -> datetime:
    return datetime.now(UTC)


def _chunks(items: Sequence[_T], size: int = _CHUNK) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _first_line(exc: IntegrityError) -> str:
    text = str(exc.orig).strip().splitlines()
    return text[0] if text else "constraint violated"


class StoreBase:
    """The engine and the plumbing shared by the repositories (see the module docstring)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._postgres = engine.dialect.name == "postgresql"

    @classmethod
    def from_url(cls, url: str) -> Self:
        """Open (and migrate) the database at ``url``; see :func:`ews.store.db.open_store`."""
        return cls(open_store(url))

    def close(self) -> None:
        """Release the engine's connections."""
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Store({safe_url(self.engine.url)})"

    # -- plumbing ---------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _tx(self, what: str) -> Iterator[Connection]:
        """One transaction; a constraint violation becomes a :class:`StoreError` naming ``what``."""
        try:
            with self.engine.begin() as connection:
                yield connection
        except IntegrityError as exc:
            raise StoreError(f"{what}: the database refused it ({_first_line(exc)})") from None
        except StatementError as exc:
            # A value refused before it reached the database (e.g. a naive datetime, see UtcDateTime).
            if isinstance(exc, DBAPIError) or not isinstance(exc.orig, ValueError):
                raise
            raise StoreError(f"{what}: {exc.orig}") from None

    @contextlib.contextmanager
    def _statement(self, what: str) -> Iterator[Connection]:
        """For one statement that is atomic by itself: :meth:`_tx` on SQLite, autocommit on PostgreSQL.

        On PostgreSQL a single statement is its own transaction; autocommit saves the BEGIN and COMMIT
        round trips (the statement's commit is as durable as any other).
        """
        if not self._postgres:
            with self._tx(what) as connection:
                yield connection
            return
        try:
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                yield connection
        except IntegrityError as exc:
            raise StoreError(f"{what}: the database refused it ({_first_line(exc)})") from None

    def _insert(self, model: type[_M]) -> postgresql.Insert | sqlite.Insert:
        return postgresql.insert(model) if self._postgres else sqlite.insert(model)

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
from typing import Any, Self, TypeVar, cast

from sqlalchemy import JSON, Connection, Engine, Table, TypeDecorator
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError, StatementError

from ews.errors import StoreError
from ews.store.db import open_store, safe_url
from ews.store.models import Base, UtcDateTime

_CHUNK = 500  # bound parameters per IN (...): well under SQLite's and PostgreSQL's limits
_ANALYZE_AFTER = 5000  # new rows of one bulk insert after which PostgreSQL's statistics of the table are refreshed
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

    def _insert_new(
        self,
        connection: Connection,
        model: type[_M],
        rows: Sequence[dict[str, Any]],
        *,
        conflict: Sequence[str],
        returning: Sequence[str],
    ) -> list[tuple[Any, ...]]:
        """Insert ``rows`` (dicts with the same keys), skipping each whose ``conflict`` key exists; return the new ones.

        Set-based on each database, in the caller's transaction: on PostgreSQL the rows are streamed by ``COPY``
        into a temporary table and moved by one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING``; on
        SQLite one multi-row ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` per batch (``executemany``).
        ``returning`` names the columns returned for each new row.
        """
        if not rows:
            return []
        if not self._postgres:
            stmt = (
                self._insert(model)
                .on_conflict_do_nothing(index_elements=list(conflict))
                .returning(*(getattr(model, c) for c in returning))
            )
            return [tuple(r) for r in connection.execute(stmt, list(rows))]
        import psycopg
        from psycopg import sql
        from psycopg.types.json import Json

        table = cast(Table, model.__table__)
        columns = list(rows[0])
        json_columns = {c for c in columns if isinstance(table.c[c].type, JSON)}
        # What SQLAlchemy does on bind for a decorated type (UtcDateTime refuses a naive datetime), done here too.
        dialect = connection.dialect
        decorated = {c: t for c in columns if isinstance(t := table.c[c].type, TypeDecorator)}

        def value(row: dict[str, Any], c: str) -> Any:
            v = row[c]
            if c in decorated:
                v = decorated[c].process_bind_param(v, dialect)
            return Json(v) if c in json_columns and v is not None else v

        def idents(names: Sequence[str]) -> sql.Composed:
            return sql.SQL(", ").join(map(sql.Identifier, names))

        target, scratch = sql.Identifier(table.name), sql.Identifier(f"ews_bulk_{table.name}")
        driver = connection.connection.driver_connection
        if driver is None:  # pragma: no cover - a connection in a transaction always has one
            raise StoreError(f"bulk insert into {table.name}: the database connection is closed")
        try:
            with driver.cursor() as cursor:
                cursor.execute(
                    sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA").format(
                        scratch, idents(columns), target
                    )
                )
                with cursor.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(scratch, idents(columns))) as copy:
                    for row in rows:
                        copy.write_row([value(row, c) for c in columns])
                cursor.execute(
                    sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT ({}) DO NOTHING RETURNING {}").format(
                        target, idents(columns), idents(columns), scratch, idents(conflict), idents(returning)
                    )
                )
                found = [tuple(r) for r in cursor.fetchall()]
                cursor.execute(sql.SQL("DROP TABLE {}").format(scratch))
                if len(found) >= _ANALYZE_AFTER:
                    # Fresh statistics at once: the next cycle's plans must not take a grown table for an empty
                    # one (autovacuum's analyze comes later, and a plan on stale counts can scan the ledger).
                    cursor.execute(sql.SQL("ANALYZE {}").format(target))
        except psycopg.IntegrityError as exc:
            # As SQLAlchemy raises it, so the caller's transaction names what was refused (first line only: a
            # row's values, phone numbers among them, are in the later lines and never shown).
            raise IntegrityError(f"bulk insert into {table.name}", None, exc) from None
        except psycopg.Error as exc:
            first = (str(exc).strip().splitlines() or ["database error"])[0]
            raise StoreError(f"bulk insert into {table.name}: {first}") from None
        return found

    def _fill_temp(
        self,
        connection: Connection,
        name: str,
        columns: Sequence[tuple[str, str]],
        rows: Sequence[Sequence[Any]],
        *,
        key: Sequence[str] = (),
    ) -> None:
        """A temporary table ``name`` of ``columns`` (name, SQL type) holding ``rows``, for the caller's transaction.

        On PostgreSQL it is created ``ON COMMIT DROP``, filled by ``COPY`` and analysed (a temporary table has no
        statistics otherwise); on SQLite created if missing, emptied and filled by ``executemany`` (datetimes
        stored as :class:`~ews.store.models.UtcDateTime` stores them). ``key``: its primary key (an index).
        """
        spec = ", ".join(f"{c} {t}" for c, t in columns) + (f", PRIMARY KEY ({', '.join(key)})" if key else "")
        names = [c for c, _ in columns]
        if self._postgres:
            driver = connection.connection.driver_connection
            if driver is None:  # pragma: no cover - a connection in a transaction always has one
                raise StoreError(f"temporary table {name}: the database connection is closed")
            connection.exec_driver_sql(f"CREATE TEMP TABLE {name} ({spec}) ON COMMIT DROP")
            with driver.cursor() as cursor, cursor.copy(f"COPY {name} ({', '.join(names)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            connection.exec_driver_sql(f"ANALYZE {name}")
            return
        connection.exec_driver_sql(f"CREATE TEMP TABLE IF NOT EXISTS {name} ({spec})")
        connection.exec_driver_sql(f"DELETE FROM {name}")  # noqa: S608 - the caller's fixed table name
        if not rows:
            return
        stamp = UtcDateTime().bind_processor(connection.dialect)
        values = [tuple(stamp(v) if isinstance(v, datetime) and stamp is not None else v for v in row) for row in rows]
        insert = f"INSERT INTO {name} ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})"  # noqa: S608
        connection.exec_driver_sql(insert, values)

    def _insert(self, model: type[_M]) -> postgresql.Insert | sqlite.Insert:
        return postgresql.insert(model) if self._postgres else sqlite.insert(model)

"""Open the ews database: connect, bring the schema to the latest Alembic revision, hand out the Engine.

SQLite (a file, for one machine) and PostgreSQL (for the Airflow deployment) are supported. The Alembic
configuration is built in code and points at the ``migrations`` folder of this package, so no
``alembic.ini`` is needed and an installed (or editable) ews finds its own revisions.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.util.exc import CommandError
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ews.errors import StoreError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
"""The Alembic script folder shipped inside the package."""

DEFAULT_URL = "sqlite:///.ews/ews.db"
"""Where the CLI keeps its database when neither ``--database`` nor ``EWS_DATABASE_URL`` is given."""

# An arbitrary constant: PostgreSQL advisory lock held while migrating, so that two tasks starting at once
# do not both try to create the tables.
_MIGRATION_LOCK = 0x65777301

_HINT = "check the URL (--database or EWS_DATABASE_URL) and that the database server is running and reachable"

log = logging.getLogger(__name__)


def safe_url(url: str | URL) -> str:
    """The URL as it may be shown in messages and logs: the password replaced by ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(a database URL that cannot be parsed)"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration for the packaged migrations.

    Parameters
    ----------
    connection
        When given, migrations run on this connection (inside its transaction).
    """
    config = Config(attributes={"connection": connection} if connection is not None else {})
    # ConfigParser interpolation treats "%" specially; a path may contain one.
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    return config


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy emit BEGIN itself (see _sqlite_on_begin): the sqlite3 module's legacy mode skips BEGIN
    # before SELECT and DDL, which breaks transactional migrations and repeatable reads.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
    finally:
        cursor.close()


def _sqlite_on_begin(connection: Connection) -> None:
    # IMMEDIATE takes the write lock up front: a transaction that reads then writes cannot fail half-way
    # with "database is locked" when another process wrote in between; it waits (busy_timeout) instead.
    # Autocommit connections (single reads, e.g. the opt-out check) run no transaction and take no lock.
    if connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
        return
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _first_line(exc: BaseException, url: URL) -> str:
    original = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(original).splitlines() if line.strip()]
    reason = lines[0] if lines else type(original).__name__
    if url.password:
        reason = reason.replace(str(url.password), "***")
    return reason


def open_store(url: str) -> Engine:
    """Connect to the ews database and upgrade its schema to the latest revision.

    Running it on an up-to-date database changes nothing. For SQLite the folder of the file is created,
    and foreign keys and write-ahead logging are switched on for every connection.

    Parameters
    ----------
    url
        A SQLAlchemy URL: ``sqlite:///path/ews.db`` or ``postgresql://user:password@host:5432/db``
        (``postgresql://`` uses psycopg 3).

    Returns
    -------
    sqlalchemy.Engine
        An engine on the upgraded database; :class:`ews.store.repository.Store` wraps it.

    Raises
    ------
    StoreError
        The URL is not valid, names an unsupported database or a missing driver, the database cannot be
        reached, or its schema is from a newer ews. The message names the URL without its password.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(
            "the database URL cannot be parsed; use e.g. sqlite:///.ews/ews.db or postgresql://user@host:5432/ews"
        ) from None
    shown = parsed.render_as_string(hide_password=True)
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise StoreError(
            f"database {shown}: ews supports SQLite and PostgreSQL URLs only (sqlite:///…, postgresql://…)"
        )
    if (
        backend == "sqlite"
        and parsed.database
        and parsed.database != ":memory:"
        and not parsed.database.startswith("file:")
    ):
        try:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"database {shown}: cannot create its folder ({exc.strerror}); choose a writable path"
            ) from None
    try:
        # hide_parameters: a statement's bound values (phone numbers among them) never reach an error's text.
        engine = create_engine(parsed, hide_parameters=True)
    except (NoSuchModuleError, ModuleNotFoundError, ArgumentError) as exc:
        raise StoreError(
            f"database {shown}: cannot load its driver ({exc}); install it, e.g. psycopg[binary]"
        ) from None
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
    try:
        with engine.begin() as connection:
            if backend == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
            command.upgrade(alembic_config(connection), "head")
    except DBAPIError as exc:
        engine.dispose()
        raise StoreError(f"cannot open the database {shown}: {_first_line(exc, parsed)}; {_HINT}") from None
    except CommandError as exc:
        engine.dispose()
        raise StoreError(
            f"database {shown}: cannot apply the ews migrations ({exc}); was it created by a newer ews? "
            "Upgrade ews or point --database at another database"
        ) from None
    except SQLAlchemyError as exc:
        engine.dispose()
        raise StoreError(f"database {shown}: {_first_line(exc, parsed)}; {_HINT}") from None
    log.info("database %s is at the latest schema revision", shown)
    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory bound to ``engine`` (objects stay readable after commit)."""
    return sessionmaker(engine, expire_on_commit=False)

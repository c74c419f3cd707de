"""The packaged Alembic revisions: found from the installed package, complete, idempotent, reversible."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from ews.errors import StoreError
from ews.store.db import MIGRATIONS, alembic_config, open_store, safe_url
from ews.store.models import Base
from ews.store.repository import Store

from .factories import T0

TABLES = {
    "source_documents",
    "warnings",
    "village_states",
    "alert_versions",
    "cap_areas",
    "subscribers",
    "tagana_units",
    "tagana_coordinators",
    "send_ledger",
    "deliveries",
    "run_log",
    "inbound_messages",
    "warning_aliases",
    "mobilisations",
    "mobilisation_events",
    "reporters",
    "reports",
    "report_events",
    "users",
    "web_sessions",
    "login_attempts",
    "audit_log",
    "contact_files",
    "message_texts",
}


def test_migrations_ship_inside_the_package() -> None:
    assert (MIGRATIONS / "env.py").is_file()
    assert (MIGRATIONS / "script.py.mako").is_file()
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert heads == ["0010"]


def test_models_declare_exactly_the_tables() -> None:
    assert set(Base.metadata.tables) == TABLES


def test_open_store_creates_every_table(database_url: str) -> None:
    engine = open_store(database_url)
    try:
        assert set(inspect(engine).get_table_names()) == TABLES | {"alembic_version"}
        with engine.connect() as connection:
            assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "0010"
    finally:
        engine.dispose()


def test_open_store_twice_is_a_no_op(database_url: str) -> None:
    first = Store.from_url(database_url)
    assert first.record_source("CGT1", "file:a.xml", "abc", T0)
    first.close()
    second = Store.from_url(database_url)
    try:
        # Data survive, and the document is still known.
        assert not second.record_source("CGT1", "file:a.xml", "abc", T0)
        with second.engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
    finally:
        second.close()


def test_migration_matches_the_models(database_url: str) -> None:
    engine = open_store(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_downgrade_to_base_and_upgrade_again(database_url: str) -> None:
    engine = open_store(database_url)
    try:
        with engine.begin() as connection:
            command.downgrade(alembic_config(connection), "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()
    engine = open_store(database_url)
    try:
        assert TABLES <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_sqlite_connections_enforce_foreign_keys_and_use_wal(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path}/ews.db")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
    finally:
        engine.dispose()


def test_sqlite_folder_is_created(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path}/deeper/still/ews.db")
    engine.dispose()


def test_unreachable_database_names_the_url_without_its_password() -> None:
    url = "postgresql://u:secret@127.0.0.1:1/x"
    with pytest.raises(StoreError, match=r"postgresql://u:\*\*\*@127\.0\.0\.1:1/x") as info:
        open_store(url)
    assert "secret" not in str(info.value)
    assert "EWS_DATABASE_URL" in str(info.value)  # says what to do
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


def test_unsupported_database_is_refused() -> None:
    with pytest.raises(StoreError, match="SQLite and PostgreSQL"):
        open_store("mysql://u:secret@127.0.0.1:1/x")


def test_unparseable_url_is_refused_without_echoing_it() -> None:
    with pytest.raises(StoreError, match="cannot be parsed") as info:
        open_store("not a url secret")
    assert "secret" not in str(info.value)


def test_safe_url_hides_the_password() -> None:
    assert safe_url("postgresql://ews:hunter2@db:5432/ews") == "postgresql://ews:***@db:5432/ews"

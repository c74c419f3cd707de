"""The dispatcher's opt-out read (:class:`ews.store.repository.OptOutChecker`): asked early, answered late, never wrong.

``ask`` sends the question at once and reads the answer when it is called; whatever happens in between (another
question, a plain read, the checker closed, the database connection killed), the answer is the database's.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, text

from ews.store.repository import Store, SubscriberRecord
from ews.testing.databases import scratch_schema

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
STAYS, LEAVES, OTHER = "+62899900000101", "+62899900000102", "+62899900000103"  # ews's fictional range


def _store(url: str) -> Store:
    s = Store.from_url(url)
    s.import_subscribers(
        [SubscriberRecord(to, "35.78.01.1001", "id", "sms", "test import", T0) for to in (STAYS, LEAVES, OTHER)], at=T0
    )
    assert s.opt_out(LEAVES, "sms STOP", T0)
    return s


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = _store(database_url)
    yield s
    s.close()


@pytest.fixture
def postgres_url(postgres_admin: str) -> Iterator[str]:
    with scratch_schema(postgres_admin, "ews_test") as url:
        yield url


def test_answers_are_the_databases(store: Store) -> None:
    with store.opt_out_checker() as checker:
        assert [checker.ask(a)() for a in (STAYS, LEAVES, OTHER)] == [False, True, False]
        assert [checker(a) for a in (STAYS, LEAVES, OTHER)] == [False, True, False]
        staying = checker.ask(STAYS)
        assert store.opt_out(STAYS, "sms STOP", T0)  # committed after the question went out: either answer is
        assert staying() in (False, True)  # the database's as of its read; the next question sees it
        assert checker.ask(STAYS)() is True


def test_an_answer_survives_whatever_happens_before_it_is_read(store: Store) -> None:
    with store.opt_out_checker() as checker:
        leaving, staying = checker.ask(LEAVES), checker.ask(STAYS)  # the second settles the first
        assert checker(OTHER) is False  # a plain read in between
        assert (staying(), leaving(), staying()) == (False, True, False)  # read once, then kept

        unread = checker.ask(LEAVES)
        checker.close()  # its connection gone before the answer was read: asked again, never assumed
        assert unread() is True
        assert checker.ask(LEAVES)() is True  # and the checker reconnects


def test_a_killed_postgresql_connection_is_replaced_and_the_answer_still_true(postgres_url: str) -> None:
    store = _store(postgres_url)
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    try:
        with store.opt_out_checker() as checker:
            assert checker(STAYS) is False  # connected
            for when in ("after the question", "before the question"):
                pid = checker._connection.connection.driver_connection.info.backend_pid  # type: ignore[union-attr]
                if when == "after the question":
                    pending = checker.ask(LEAVES)
                    with admin.connect() as connection:
                        connection.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
                else:
                    with admin.connect() as connection:
                        connection.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
                    pending = checker.ask(LEAVES)
                assert pending() is True, when
                assert checker.ask(STAYS)() is False, when
    finally:
        admin.dispose()
        store.close()

"""Fan-out in the database: one stored text, the ledger rows of all subscribers of a village by one statement.

A resident's message depends on their village's situation, language and channel, not on the person
(:mod:`ews.alerts.situation`). :meth:`FanOutRepository.fan_out` therefore takes one rendered text per (village,
language, channel), stores each distinct text once (``message_texts``, by digest) and creates, in one
transaction, the claims of every current subscriber of those villages with one ``INSERT ... SELECT`` over
``subscribers`` that references it. The claims are the ledger's own (:mod:`ews.store.ledger`): the unique key
(version, recipient, channel, topic) keeps a message from being queued twice, whoever races; a person's several
new versions of one village make one message (the first new row carries the text, the others are grouped into
it); an older message to the same person about the same village still waiting is withdrawn. Nothing here
reads a subscriber into Python: a million subscriptions are moved inside the database.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select, text, update

from ews.store.base import StoreBase, _chunks, _now
from ews.store.ledger import withdraw_stale
from ews.store.models import LedgerEntry, MessageText, Subscriber, UtcDateTime


@dataclass(frozen=True)
class FanOut:
    """One text for every current subscriber of a village on one language and channel.

    ``version_ids`` are the versions the message covers, the lead's first (:class:`ews.store.ledger.Claim`).
    ``heard``: only the subscribers the ledger says heard one of these threads in the village (an ending goes
    to whoever heard the alert, not to everyone subscribed since); empty: every subscriber.
    """

    village_code: str
    version_ids: tuple[int, ...]
    language: str
    channel: str
    body: str
    priority: int
    valid_until: datetime | None
    fallback_body: str | None = None
    heard: tuple[str, ...] = ()


@dataclass(frozen=True)
class FannedOut:
    """What :meth:`FanOutRepository.fan_out` did: messages queued, subscriptions reached, older ones withdrawn.

    ``reached - queued`` subscriptions had nothing new (every version claimed before: a repeated cycle).
    """

    queued: int
    reached: int
    withdrawn: int


_TEXTS = "ews_fan_texts"
_VERSIONS = "ews_fan_versions"
_SKIP = "ews_fan_skip"
_HEARD = "ews_fan_heard"
_NEW = "ews_fan_new"

# Every current subscription of a village with a text for its language and channel, but the people told
# individually (a person of several villages gets one message naming them all).
_TARGETS = f"""
    FROM {_TEXTS} t
    JOIN subscribers s ON s.village_code = t.village_code AND s.language = t.language AND s.channel = t.channel
    WHERE s.opted_out_at IS NULL
      AND NOT EXISTS (SELECT 1 FROM {_SKIP} k WHERE k.recipient_id = s.recipient_id AND k.channel = s.channel)
      AND (t.heard = 0 OR EXISTS (
          SELECT 1 FROM {_HEARD} h
          JOIN alert_versions hv ON hv.region = :region AND hv.village_code = h.village_code
                                AND hv.thread_id = h.thread_id
          JOIN send_ledger he ON he.alert_version_id = hv.id AND he.recipient_id = s.recipient_id
                             AND he.channel = s.channel AND he.audience = 'resident'
          WHERE h.village_code = s.village_code))
"""  # noqa: S608 - fixed table names only
_CLAIM = f"""
    INSERT INTO send_ledger (alert_version_id, recipient_id, audience, channel, topic, created_at, status, address,
                             language, priority, valid_until, attempts, lease_version, text_id)
    SELECT v.version_id, s.recipient_id, 'resident', s.channel, '', :when, 'queued', s.phone_e164, s.language,
           t.priority, t.valid_until, 0, 0, t.text_id
    {_TARGETS.replace("WHERE", "JOIN " + _VERSIONS + " v ON v.village_code = t.village_code WHERE", 1)}
    ON CONFLICT (alert_version_id, recipient_id, channel, topic) DO NOTHING
"""
# A person's several new rows of one village are one message: the lowest-ranked new row leads, the others are
# grouped into it (they settle with it).
_GROUPED = f"""
    SELECT id, lead FROM (
        SELECT n.id, FIRST_VALUE(n.id) OVER (
            PARTITION BY n.recipient_id, n.channel, v.village_code ORDER BY v.rank) AS lead
        FROM {_NEW} n JOIN {_VERSIONS} v ON v.version_id = n.version_id
        WHERE v.village_code IN (SELECT village_code FROM {_VERSIONS} GROUP BY village_code HAVING count(*) > 1)
    ) ranked WHERE id <> lead
"""  # noqa: S608 - fixed table names only
# Older queued resident messages to the same person and channel about a village that a new row speaks for.
_STALE_FANNED = f"""
    SELECT DISTINCT e.id FROM send_ledger e
    JOIN alert_versions ov ON ov.id = e.alert_version_id
    JOIN {_VERSIONS} v ON v.village_code = ov.village_code
    JOIN alert_versions nv ON nv.id = v.version_id AND nv.region = ov.region
    JOIN {_NEW} n ON n.version_id = v.version_id AND n.recipient_id = e.recipient_id AND n.channel = e.channel
    WHERE e.status = 'queued' AND e.audience = 'resident' AND e.grouped_into IS NULL
      AND NOT EXISTS (SELECT 1 FROM {_NEW} m WHERE m.id = e.id)
"""  # noqa: S608 - fixed table names only


def text_digest(body: str, fallback_body: str | None) -> str:
    """The key a message text is stored under (its text and its SMS fallback)."""
    h = hashlib.sha256(body.encode())
    h.update(b"\x00" if fallback_body is None else b"\x01" + fallback_body.encode())
    return h.hexdigest()


class FanOutRepository(StoreBase):
    """The set-based fan-out of village messages (mixed into :class:`ews.store.repository.Store`)."""

    def fan_out(
        self,
        items: Sequence[FanOut],
        *,
        skip: Collection[tuple[str, str]] = (),
        region: str = "",
        at: datetime | None = None,
    ) -> FannedOut:
        """Queue each item's text to every current subscriber of its village on its language and channel.

        In one transaction, set-based: the distinct texts stored once; a claim per (version, subscriber) not
        claimed before, by one ``INSERT ... SELECT`` over the subscribers (``ON CONFLICT DO NOTHING``: a repeat
        queues nothing, two racing workers queue each message once); a person's several new versions of one
        village grouped into one message; their older waiting message about the village withdrawn. ``skip``:
        (recipient_id, channel) pairs told individually (:meth:`~ews.store.ledger.LedgerRepository.enqueue_many`),
        left out here. Opted-out subscriptions are never reached. ``region``: whose alert versions an item's
        ``heard`` threads are (required with them).
        """
        if not items:
            return FannedOut(0, 0, 0)
        seen: set[tuple[str, str, str]] = set()
        for f in items:
            key = (f.village_code, f.language, f.channel)
            if key in seen:
                raise ValueError(f"fan_out: village {f.village_code} has two texts for {f.language}/{f.channel}")
            seen.add(key)
            if not f.version_ids:
                raise ValueError(f"fan_out: the text for village {f.village_code} covers no alert version")
            if f.heard and not region:
                raise ValueError(f"fan_out: village {f.village_code}'s text goes to who heard it: name the region")
        when = at or _now()
        versions: dict[str, tuple[int, ...]] = {}
        heard: dict[str, tuple[str, ...]] = {}
        for f in items:
            if versions.setdefault(f.village_code, f.version_ids) != f.version_ids:
                raise ValueError(f"fan_out: village {f.village_code}'s texts cover different versions")
            if heard.setdefault(f.village_code, f.heard) != f.heard:
                raise ValueError(f"fan_out: village {f.village_code}'s texts go to different listeners")
        with self._tx(f"fan out {len(items)} village text(s)") as connection:
            text_ids = self._store_texts(connection, items, when)
            self._fill_temp(
                connection, _TEXTS,
                [("village_code", "VARCHAR(16)"), ("language", "VARCHAR(8)"), ("channel", "VARCHAR(16)"),
                 ("text_id", "INTEGER"), ("priority", "INTEGER"), ("valid_until", self._timestamp()),
                 ("heard", "INTEGER")],
                [(f.village_code, f.language, f.channel, text_ids[text_digest(f.body, f.fallback_body)], f.priority,
                  f.valid_until, 1 if f.heard else 0) for f in items],
                key=("village_code", "language", "channel"),
            )  # fmt: skip
            self._fill_temp(
                connection, _VERSIONS,
                [("village_code", "VARCHAR(16)"), ("version_id", "INTEGER"), ("rank", "INTEGER")],
                [(village, v, n) for village, ids in versions.items() for n, v in enumerate(dict.fromkeys(ids))],
                key=("village_code", "version_id"),  # the claim joins it by village: an index, whatever the plan
            )  # fmt: skip
            self._fill_temp(
                connection, _HEARD, [("village_code", "VARCHAR(16)"), ("thread_id", "VARCHAR(255)")],
                sorted({(village, thread) for village, threads in heard.items() for thread in threads}),
                key=("village_code", "thread_id"),
            )  # fmt: skip
            self._fill_temp(
                connection, _SKIP, [("recipient_id", "VARCHAR(64)"), ("channel", "VARCHAR(16)")], sorted(set(skip)),
                key=("recipient_id", "channel"),
            )  # fmt: skip
            self._fill_recipient_ids(connection)
            reached = int(connection.execute(text("SELECT count(*) " + _TARGETS), {"region": region}).scalar_one())
            self._claim(connection, when, region)
            grouped = [{"row": int(i), "lead": int(lead)} for i, lead in connection.execute(text(_GROUPED))]
            new = int(connection.exec_driver_sql(f"SELECT count(*) FROM {_NEW}").scalar_one())  # noqa: S608
            if grouped:
                e = LedgerEntry
                connection.execute(
                    update(e).where(e.id == bindparam("row")).values(grouped_into=bindparam("lead"), text_id=None),
                    grouped,
                )
            withdrawn = withdraw_stale(connection, _STALE_FANNED, when, postgres=self._postgres)
            connection.exec_driver_sql(f"DROP TABLE {_NEW}")
        return FannedOut(new - len(grouped), reached, withdrawn)

    def _timestamp(self) -> str:
        return "TIMESTAMP WITH TIME ZONE" if self._postgres else "DATETIME"

    def _store_texts(self, connection: Connection, items: Sequence[FanOut], when: datetime) -> dict[str, int]:
        """Each distinct text stored once (a text stored by an earlier cycle is reused); digest -> id."""
        rows = {
            text_digest(f.body, f.fallback_body): {"digest": text_digest(f.body, f.fallback_body), "body": f.body,
                                                  "fallback_body": f.fallback_body, "created_at": when}
            for f in items
        }  # fmt: skip
        found = self._insert_new(connection, MessageText, list(rows.values()), conflict=("digest",),
                                 returning=("id", "digest"))  # fmt: skip
        ids = {d: int(i) for i, d in found}
        missing = sorted(set(rows) - set(ids))
        m = MessageText
        for chunk in _chunks(missing):
            ids.update((d, int(i)) for i, d in connection.execute(select(m.id, m.digest).where(m.digest.in_(chunk))))
        return ids

    def _fill_recipient_ids(self, connection: Connection) -> None:
        """Subscriptions stored without their pseudonymous id (before it was kept) get it, before the claims."""
        from ews.contacts import recipient_id

        s = Subscriber
        rows = connection.execute(
            text(f"SELECT s.id, s.phone_e164 FROM {_TEXTS} t JOIN subscribers s ON s.village_code = t.village_code "  # noqa: S608
                 "AND s.language = t.language AND s.channel = t.channel WHERE s.recipient_id IS NULL")
        ).all()  # fmt: skip
        if rows:
            connection.execute(
                update(s).where(s.id == bindparam("row")).values(recipient_id=bindparam("rid")),
                [{"row": i, "rid": recipient_id(phone)} for i, phone in rows],
            )

    def _claim(self, connection: Connection, when: datetime, region: str) -> None:
        """The claims, by one statement; their ids (with version, recipient, channel) into a temporary table."""
        columns = "id INTEGER PRIMARY KEY, version_id INTEGER, recipient_id VARCHAR(64), channel VARCHAR(16)"
        claim = text(_CLAIM).bindparams(bindparam("when", type_=UtcDateTime()))
        params: dict[str, Any] = {"when": when, "region": region}
        if self._postgres:
            connection.exec_driver_sql(f"CREATE TEMP TABLE {_NEW} ({columns}) ON COMMIT DROP")
            connection.execute(
                text(
                    f"WITH new AS ({claim.text} RETURNING id, alert_version_id, recipient_id, channel) "  # noqa: S608
                    f"INSERT INTO {_NEW} SELECT * FROM new"
                ).bindparams(bindparam("when", type_=UtcDateTime())),
                params,
            )
            connection.exec_driver_sql(f"CREATE INDEX ix_{_NEW}_person ON {_NEW} (recipient_id, channel)")
            connection.exec_driver_sql(f"ANALYZE {_NEW}")
            return
        # SQLite: the transaction holds the write lock from its start (BEGIN IMMEDIATE), so the new rows are
        # exactly those above the highest id before the statement.
        before = int(connection.exec_driver_sql("SELECT coalesce(max(id), 0) FROM send_ledger").scalar_one())
        connection.execute(claim, params)
        connection.exec_driver_sql(f"CREATE TEMP TABLE IF NOT EXISTS {_NEW} ({columns})")
        connection.exec_driver_sql(f"DELETE FROM {_NEW}")  # noqa: S608 - a fixed table name
        connection.exec_driver_sql(
            f"INSERT INTO {_NEW} SELECT id, alert_version_id, recipient_id, channel FROM send_ledger WHERE id > ?",  # noqa: S608
            (before,),
        )
        connection.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS ix_{_NEW}_person ON {_NEW} (recipient_id, channel)")

"""Fan-out in the database: one stored text per village, language and channel; a ledger row per subscriber."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from ews.contacts import recipient_id
from ews.latency import summarise
from ews.store.models import LedgerEntry, MessageText
from ews.store.repository import Claim, FanOut, NewVersion, Store, SubscriberRecord

from .factories import T0, decision, phone, race
from .test_repository import warning

V1, V2, V3 = "35.78.01.1001", "35.78.01.1002", "35.78.01.1003"


def _subscribe(store: Store, rows: list[tuple[int, str, str, str]]) -> None:
    store.import_subscribers([SubscriberRecord(phone(n), v, lang, ch, "form", T0) for n, v, lang, ch in rows])


def _versions(store: Store, villages: list[str], thread: str = "T1", seq: int = 1) -> list[int]:
    rows = [NewVersion(decision(v, seq=seq, thread=thread), f"cap-{thread}-{v}-{seq}", "auto") for v in villages]
    return store.add_alert_versions(rows, at=T0)


def _fan(village: str, ids: tuple[int, ...], lang: str = "id", ch: str = "sms", body: str = "", **kw: object) -> FanOut:
    return FanOut(village, ids, lang, ch, body or f"Siaga banjir {village} {lang} {ch}", kw.pop("priority", 1),  # type: ignore[arg-type]
                  kw.pop("valid_until", None), **kw)  # type: ignore[arg-type]  # fmt: skip


def _ledger(store: Store) -> list[LedgerEntry]:
    with store.engine.connect() as connection:
        return list(connection.execute(select(LedgerEntry).order_by(LedgerEntry.id)).all())  # type: ignore[arg-type]


def test_each_subscriber_gets_the_text_of_their_language_and_channel_once(store: Store) -> None:
    _subscribe(store, [(1, V1, "id", "sms"), (2, V1, "en", "sms"), (3, V1, "id", "whatsapp"), (4, V2, "id", "sms"),
                       (5, V3, "id", "sms")])  # fmt: skip
    store.opt_out(phone(4), "sms STOP", T0)
    a, b = _versions(store, [V1, V2])
    items = [_fan(V1, (a,)), _fan(V1, (a,), "en"), _fan(V1, (a,), ch="whatsapp", fallback_body="sms text"),
             _fan(V2, (b,))]  # fmt: skip
    done = store.fan_out(items, at=T0)
    assert (done.queued, done.reached, done.withdrawn) == (3, 3, 0)
    sent = {q.recipient_id: q for q in store.lease("w", T0, limit=100)}
    assert set(sent) == {recipient_id(phone(n)) for n in (1, 2, 3)}  # 4 opted out, 5's village has no alert
    assert sent[recipient_id(phone(2))].body == f"Siaga banjir {V1} en sms"
    assert sent[recipient_id(phone(3))].fallback_body == "sms text"
    assert sent[recipient_id(phone(1))].address == phone(1)
    assert sent[recipient_id(phone(1))].village_code == V1
    # The same cycle again: every version claimed before, nothing new to say.
    again = store.fan_out(items, at=T0 + timedelta(minutes=10))
    assert (again.queued, again.reached) == (0, 3)
    with store.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(MessageText)).scalar_one() == 4  # stored once


def test_texts_are_stored_once_and_people_told_individually_are_left_out(store: Store) -> None:
    _subscribe(store, [(n, V1, "id", "sms") for n in range(1, 6)] + [(1, V2, "id", "sms")])
    a, b = _versions(store, [V1, V2])
    # Person 1 is subscribed to both villages: told individually, with one message naming both.
    store.enqueue_many([Claim((a, b), recipient_id(phone(1)), "resident", "sms", address=phone(1),
                              body="both villages", language="id", priority=1, valid_until=None)], at=T0)  # fmt: skip
    done = store.fan_out([_fan(V1, (a,), body="same"), _fan(V2, (b,), body="same")],
                         skip=[(recipient_id(phone(1)), "sms")], at=T0)  # fmt: skip
    assert (done.queued, done.reached) == (4, 4)
    rows = _ledger(store)
    assert len(rows) == 2 + 4  # person 1's two claims (one grouped) and four fanned rows
    assert len({r.text_id for r in rows if r.text_id is not None}) == 1  # one text, stored once
    assert all(r.body is None for r in rows if r.text_id is not None)
    bodies = sorted(q.body for q in store.lease("w", T0, limit=100))
    assert bodies == ["both villages"] + ["same"] * 4


def test_several_new_versions_of_a_village_are_one_message(store: Store) -> None:
    _subscribe(store, [(1, V1, "id", "sms"), (2, V1, "id", "sms")])
    (a,) = _versions(store, [V1], thread="T1")
    (b,) = _versions(store, [V1], thread="T2")
    store.fan_out([_fan(V1, (a,), body="first")], at=T0)
    store.lease("w", T0, limit=1)  # person 1's first message leaves; person 2's still waits
    done = store.fan_out([_fan(V1, (b, a), body="both")], at=T0 + timedelta(minutes=10))
    assert done.queued == 2  # b is new for both; a was claimed before
    rows = _ledger(store)
    assert len(rows) == 4
    # Person 2's older message, still queued, is out of date now: withdrawn, not sent after the newer one.
    assert done.withdrawn == 1
    statuses = sorted(r.status for r in rows)
    assert statuses == ["expired", "queued", "queued", "sending"]
    sent = store.lease("w", T0 + timedelta(minutes=10), limit=100)
    assert sorted(q.body for q in sent) == ["both", "both"]


def test_grouping_when_the_lead_version_is_new_too(store: Store) -> None:
    _subscribe(store, [(1, V1, "id", "sms")])
    (a,) = _versions(store, [V1], thread="T1")
    (b,) = _versions(store, [V1], thread="T2")
    done = store.fan_out([_fan(V1, (a, b), body="both")], at=T0)
    assert done.queued == 1
    rows = _ledger(store)
    lead = next(r for r in rows if r.alert_version_id == a)
    other = next(r for r in rows if r.alert_version_id == b)
    assert lead.text_id is not None
    assert other.text_id is None
    assert other.grouped_into == lead.id
    (message,) = store.lease("w", T0, limit=10)
    assert message.ledger_id == lead.id


def test_refuses_two_texts_for_one_village_language_and_channel(store: Store) -> None:
    (a,) = _versions(store, [V1])
    with pytest.raises(ValueError, match=r"35\.78\.01\.1001 has two texts"):
        store.fan_out([_fan(V1, (a,)), _fan(V1, (a,), body="other")], at=T0)
    assert _ledger(store) == []


def test_racing_workers_queue_each_message_once(store: Store) -> None:
    _subscribe(store, [(n, V1 if n % 2 else V2, "id", "sms") for n in range(1, 41)])
    a, b = _versions(store, [V1, V2])
    items = [_fan(V1, (a,)), _fan(V2, (b,))]
    results = race(lambda: store.fan_out(items, at=T0))
    assert sum(r.queued for r in results) == 40
    assert len(_ledger(store)) == 40


def test_expiry_and_priority_reach_the_dispatcher(store: Store) -> None:
    _subscribe(store, [(1, V1, "id", "sms"), (2, V2, "id", "sms")])
    a, b = _versions(store, [V1, V2])
    until = T0 + timedelta(hours=3)
    store.fan_out([_fan(V1, (a,), valid_until=until), _fan(V2, (b,), priority=0)], at=T0)
    first, second = store.lease("w", T0, limit=10)
    assert (first.village_code, first.priority, first.valid_until) == (V2, 0, None)  # an ending goes first
    assert (second.village_code, second.priority, second.valid_until) == (V1, 1, until)
    assert second.valid_until is not None
    assert second.valid_until.tzinfo is not None


def test_an_ending_reaches_only_who_heard_the_alert(store: Store) -> None:
    # 1 heard the alert; 2 subscribed after it went out; 3 heard it and opted out since; 4 heard another thread.
    _subscribe(store, [(1, V1, "id", "sms"), (3, V1, "id", "sms"), (4, V1, "id", "sms")])
    (a,) = _versions(store, [V1], thread="T1")
    (other,) = _versions(store, [V1], thread="T9")
    store.enqueue_many([Claim((a,), recipient_id(phone(n)), "resident", "sms", address=phone(n), body="alert",
                              language="id", priority=1, valid_until=None) for n in (1, 3)], at=T0)  # fmt: skip
    store.enqueue_many([Claim((other,), recipient_id(phone(4)), "resident", "sms", address=phone(4), body="other",
                              language="id", priority=1, valid_until=None)], at=T0)  # fmt: skip
    _subscribe(store, [(2, V1, "id", "sms")])
    store.opt_out(phone(3), "sms STOP", T0)
    (end,) = _versions(store, [V1], thread="T1", seq=2)
    with pytest.raises(ValueError, match="name the region"):
        store.fan_out([_fan(V1, (end,), body="aman", priority=0, heard=("T1",))], at=T0)
    done = store.fan_out([_fan(V1, (end,), body="aman", priority=0, heard=("T1",))], region="jawa-timur", at=T0)
    assert (done.queued, done.reached) == (1, 1)
    ended = [q for q in store.lease("w", T0, limit=100) if q.body == "aman"]
    assert [q.recipient_id for q in ended] == [recipient_id(phone(1))]
    # Another region's versions of the same thread and village are not this region's listeners.
    (again,) = _versions(store, [V1], thread="T1", seq=3)
    assert store.fan_out([_fan(V1, (again,), body="x", heard=("T1",))], region="elsewhere", at=T0).reached == 0


def test_a_cycle_s_messages_are_read_as_a_few_timelines_with_their_counts(store: Store) -> None:
    # A village's subscribers, queued by one statement, share every instant: the run's latency reads the
    # distinct timelines with their counts, and gets the figures of reading every message.
    _subscribe(store, [(n, V1, "id", "sms") for n in range(1, 8)] + [(n, V2, "id", "sms") for n in range(8, 11)])
    store.save_warning(warning("T1", T0 - timedelta(minutes=2)), "T1")  # the versions' warning: its <sent>
    a, b = _versions(store, [V1, V2])
    last = store.last_ledger_id()
    store.fan_out([_fan(V1, (a,)), _fan(V2, (b,))], at=T0)
    each = store.message_timelines("jawa-timur", after_ledger_id=last)
    grouped = store.message_timelines("jawa-timur", after_ledger_id=last, grouped=True)
    assert len(each) == 10
    assert sum(g["count"] for g in grouped) == 10
    assert len(grouped) < len(each)
    assert summarise(grouped) == summarise(each)
    assert summarise(each)["queued"]["n"] == 10.0
    assert {r["audience"] for r in grouped} == {"resident"}
    assert store.message_timelines("jawa-timur", "T1", grouped=True) == grouped

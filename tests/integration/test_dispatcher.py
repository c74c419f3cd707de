"""The dispatcher's rules on both databases, through the dry-run outbox (fast; no network)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from ews.alerts.model import Decision, Transition
from ews.channels.outbox import FileOutbox
from ews.contacts import recipient_id
from ews.dispatch import Dispatcher, to_message
from ews.store.repository import Store, SubscriberRecord
from ews.types import Level

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store.from_url(database_url)
    yield s
    s.close()


def version(store: Store, village: str, transition: Transition = Transition.NEW, seq: int = 1) -> int:
    d = Decision("r", village, "A1", transition, Level.NONE, Level.SIAGA, seq, "A1", T0, None, 0.9, True, False, "t")
    return store.add_alert_version(d, f"ews.r.x.{village}.{seq}", "auto", at=T0)


def phone(n: int) -> str:
    return f"+628999{n:08d}"


def queue(store: Store, v: int, n: int, *, priority: int = 1, valid_until: datetime | None = None) -> int | None:
    return store.enqueue(
        v,
        recipient_id(phone(n)),
        "resident",
        "sms",
        address=phone(n),
        body=f"pesan {n}",
        language="id",
        priority=priority,
        valid_until=valid_until,
    )


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def dispatcher(store: Store, outbox: FileOutbox, now: datetime = T0, **kw: object) -> Dispatcher:
    kw.setdefault("settle_seconds", 0)  # the outbox knows at once what it holds: no late creates to wait for
    return Dispatcher(store, {"sms": outbox, "whatsapp": outbox}, clock=lambda: now, sleep=lambda _: None, **kw)  # type: ignore[arg-type]


def test_each_message_once_and_endings_first(store: Store, tmp_path: Path) -> None:
    outbox = FileOutbox(tmp_path / "out.jsonl")
    new, cancel = version(store, "35.78.01.1001"), version(store, "35.78.01.1002", Transition.CANCEL, 2)
    for n in range(5):
        queue(store, new, n)
    queue(store, cancel, 9, priority=0)
    assert queue(store, new, 0) is None  # the same version to the same person: claimed already
    report = dispatcher(store, outbox).run()
    sent = lines(outbox.path)
    assert report.sent == 6
    assert sent[0]["text"] == "pesan 9"  # the cancel went first
    assert sorted(str(m["dedup_key"]) for m in sent) == sorted({str(m["dedup_key"]) for m in sent})
    assert dispatcher(store, outbox).run().sent == 0  # nothing left, nothing twice
    assert store.queue_counts() == {"dry-run": 6}


def test_expired_and_opted_out_are_not_sent(store: Store, tmp_path: Path) -> None:
    outbox = FileOutbox(tmp_path / "out.jsonl")
    v = version(store, "35.78.01.1001")
    queue(store, v, 1, valid_until=T0 - timedelta(minutes=1))
    queue(store, v, 2, valid_until=T0 + timedelta(hours=1))
    queue(store, v, 3)
    store.import_subscribers([SubscriberRecord(phone(3), "35.78.01.1001", "id", "sms", "test", T0)])
    store.opt_out(phone(3), "whatsapp STOP", T0)
    report = dispatcher(store, outbox).run()
    assert (report.sent, report.expired, report.opted_out) == (1, 1, 1)
    assert [m["text"] for m in lines(outbox.path)] == ["pesan 2"]
    assert store.queue_counts() == {"dry-run": 1, "expired": 1, "failed": 1}


def test_grouped_tagana_notice_settles_all_its_villages(store: Store, tmp_path: Path) -> None:
    outbox = FileOutbox(tmp_path / "out.jsonl")
    versions = [version(store, f"35.78.01.100{i}") for i in range(1, 4)]
    coordinator = phone(900)
    lead = store.enqueue_group(
        versions,
        recipient_id(coordinator),
        "tagana",
        "whatsapp",
        address=coordinator,
        render=lambda new: f"notice for {len(new)} villages",
        language="id",
        priority=1,
        valid_until=None,
    )
    assert lead is not None
    # Asking again for the same villages claims nothing new and renders nothing.
    again = store.enqueue_group(
        versions,
        recipient_id(coordinator),
        "tagana",
        "whatsapp",
        address=coordinator,
        render=lambda new: pytest.fail("rendered twice"),
        language="id",
        priority=1,
        valid_until=None,
    )
    assert again is None
    dispatcher(store, outbox).run()
    assert [m["text"] for m in lines(outbox.path)] == ["notice for 3 villages"]
    assert store.counts("r")["ledger_dry-run"] == 3


def test_a_send_abandoned_mid_flight_is_reconciled_not_repeated(store: Store, tmp_path: Path) -> None:
    outbox = FileOutbox(tmp_path / "out.jsonl")
    v = version(store, "35.78.01.1001")
    queue(store, v, 1)
    queue(store, v, 2)
    # A worker leased both, delivered the first, and died before recording anything.
    leased = store.lease("dead-worker", T0, limit=10)
    outbox.send(to_message(leased[0]), f"{v}|{recipient_id(phone(1))}|sms")
    later = T0 + timedelta(minutes=5)
    report = dispatcher(store, outbox, now=later, lease_seconds=60).run()
    assert report.reconciled_sent == 1  # found in the outbox: recorded as sent, not sent again
    assert report.reconciled_requeued == 1  # not found: queued again and sent once
    assert sorted(m["text"] for m in lines(outbox.path)) == ["pesan 1", "pesan 2"]


def test_a_live_lease_is_not_taken_over(store: Store, tmp_path: Path) -> None:
    v = version(store, "35.78.01.1001")
    queue(store, v, 1)
    (held,) = store.lease("busy-worker", T0, limit=10)
    assert store.expire_leases(T0 + timedelta(seconds=30), lease_seconds=60, settle_seconds=0) == 0
    assert store.expire_leases(T0 + timedelta(seconds=61), lease_seconds=60, settle_seconds=0) == 1
    # The row is 'unsure' now, fenced: the worker that lost it can neither renew, record nor requeue it.
    assert not store.touch(held, "busy-worker", T0 + timedelta(seconds=62))
    assert not store.finish(held.ledger_id, "sent", provider_id="SM1", worker="busy-worker", lease=held.lease)
    assert not store.requeue(held, T0, "late", worker="busy-worker")
    (taken,) = store.take_unsure("other", T0 + timedelta(seconds=62))
    assert taken.reconcile
    assert taken.leased_at == held.leased_at  # the episode's start survives the take-over
    assert taken.lease > held.lease


class _WhatsAppClosed:
    """A WhatsApp channel whose every send fails for good (no template, window closed)."""

    name = "whatsapp-closed"

    def __init__(self) -> None:
        self.calls = 0

    def send(self, message, ledger_key, *, valid_until=None):
        from ews.channels.base import SendResult

        self.calls += 1
        return SendResult("failed", detail="twilio 63016: outside the WhatsApp 24-hour session window")

    def find_sent(self, message, ledger_key, since):
        return None


def test_whatsapp_that_fails_for_good_goes_again_by_sms_once(store: Store, tmp_path: Path) -> None:
    sms = FileOutbox(tmp_path / "sms.jsonl")
    whatsapp = _WhatsAppClosed()
    v = version(store, "35.78.01.1001")
    store.enqueue(
        v,
        recipient_id(phone(1)),
        "resident",
        "whatsapp",
        address=phone(1),
        body="long whatsapp text",
        language="id",
        priority=1,
        valid_until=None,
        fallback_body="short sms text",
    )
    store.enqueue(
        v,
        recipient_id(phone(2)),
        "resident",
        "whatsapp",
        address=phone(2),
        body="no fallback",
        language="id",
        priority=1,
        valid_until=None,
    )
    d = Dispatcher(store, {"sms": sms, "whatsapp": whatsapp}, clock=lambda: T0, sleep=lambda _: None)  # type: ignore[dict-item]
    report = d.run()
    assert (report.failed, report.failovers, report.sent) == (2, 1, 1)
    assert [m["text"] for m in lines(sms.path)] == ["short sms text"]
    assert d.run().sent == 0  # the fallback is queued once, whatever happens later
    assert whatsapp.calls == 2


def test_a_long_batch_renews_its_rows_at_once_and_skips_one_taken_over(store: Store, tmp_path: Path) -> None:
    v = version(store, "35.78.01.1001")
    for n in range(10):
        queue(store, v, n)
    clock = [T0]
    outbox = FileOutbox(tmp_path / "out.jsonl")
    taken_over: list[int] = []

    class Slow:
        """The outbox, each send taking 10 s of the dispatcher's clock; after the second, a row is taken over."""

        name = "slow"

        def send(self, message, ledger_key, *, valid_until=None):  # type: ignore[no-untyped-def]
            clock[0] += timedelta(seconds=10)
            result = outbox.send(message, ledger_key, valid_until=valid_until)
            if len(lines(outbox.path)) == 2:
                with store.engine.begin() as connection:  # another worker's take-over of the 6th row
                    (row,) = connection.execute(text("SELECT id FROM send_ledger WHERE body = 'pesan 5'")).scalars()
                    connection.execute(
                        text(
                            "UPDATE send_ledger SET worker = 'other', lease_version = lease_version + 1 WHERE id = :i"
                        ),
                        {"i": row},
                    )
                taken_over.append(row)
            return result

        def find_sent(self, message, ledger_key, since):  # type: ignore[no-untyped-def]
            return outbox.find_sent(message, ledger_key, since)

    renewals: list[int] = []
    touch_many = store.touch_many

    def counted(rows, worker, now):  # type: ignore[no-untyped-def]
        renewals.append(len(rows))
        return touch_many(rows, worker, now)

    store.touch_many = counted  # type: ignore[method-assign]
    d = Dispatcher(store, {"sms": Slow()}, clock=lambda: clock[0], sleep=lambda _: None, lease_seconds=60,
                   settle_seconds=0, batch=10)  # type: ignore[dict-item]  # fmt: skip
    report = d.run(until_empty=False)
    # Renewed once more than 30 s (half the lease) went by, each time the rest of the batch in one statement:
    # before the 5th send (40 s: rows 5-10) and before the 10th (the taken-over row costs no time): never row by row.
    assert renewals == [6, 1]
    # The taken-over row was not sent in its turn; once the other worker's lease ran out too (it never renewed
    # it), the row was reconciled (not in the outbox) and sent, once, last.
    sent = [str(m["text"]) for m in lines(outbox.path)]
    assert sent == [f"pesan {n}" for n in range(10) if n != 5] + ["pesan 5"]
    assert (report.sent, report.reconciled_requeued) == (10, 1)
    assert taken_over

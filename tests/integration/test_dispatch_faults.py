"""The dispatcher against a faulty Twilio (issue 4 acceptance), on SQLite and PostgreSQL.

1. With 429s, 500s and hangs injected at 20% of message creates, every queued message is delivered exactly
   once (a hang creates the message and times out the client: the dispatcher must reconcile, not resend) and
   the next request for a message answered 429 comes at least Retry-After seconds later, measured on the
   stub's own request log.
2. A STOP recorded while a batch is being sent: nothing more goes to that number, its row fails "opted out".

The dispatcher runs on the real clock (so the Retry-After gaps on the stub's log mean something) with a tiny
backoff for 500s; rows answered 429 wait their second while the rest of the queue is sent.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise

import pytest
from sqlalchemy import select

from ews.alerts.model import Decision, Transition
from ews.channels.base import SendResult
from ews.channels.twilio import TwilioSms, twilio_client
from ews.contacts import recipient_id
from ews.dispatch import Dispatcher
from ews.store.models import LedgerEntry
from ews.store.repository import Store, SubscriberRecord
from ews.testing.twilio_server import RequestRecord, TwilioStub
from ews.types import Level, RenderedMessage

SID = "AC" + "1" * 32
TOKEN = "dispatch-fault-token-not-a-secret"  # noqa: S105 - the loopback stub's fake credential
SENDER = "+15005550006"
T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
VILLAGE = "35.78.01.1001"
RETRY_AFTER = 1
CLIENT_TIMEOUT = 0.4  # a "hang" (answered after HANG_SECONDS) times the client out: the ambiguous case
HANG_SECONDS = 1.0


def number(n: int) -> str:
    """A number of ews's reserved fictional range (+62 8999 00xx xxxx), never a person."""
    return f"+628999{n:08d}"


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store.from_url(database_url)
    yield s
    s.close()


def queue_messages(store: Store, count: int, *, thread: str) -> dict[str, int]:
    """One alert version and ``count`` queued SMS rows with unique bodies; number -> ledger id."""
    decision = Decision(
        region="jawa-timur",
        village_code=VILLAGE,
        thread_id=thread,
        transition=Transition.NEW,
        level_before=Level.NONE,
        level=Level.SIAGA,
        seq=1,
        warning_id=thread,
        warning_sent=T0,
        expires=None,
        fraction=0.9,
        send=True,
        exercise=False,
        reason="test",
    )
    version = store.add_alert_version(decision, f"ews.jawa-timur.{thread}.{VILLAGE}.1", "auto", at=T0)
    ids: dict[str, int] = {}
    for n in range(1, count + 1):
        to = number(n)
        ledger_id = store.enqueue(
            version, recipient_id(to), "resident", "sms", address=to, body=f"SIAGA banjir {thread} pesan #{n:04d}",
            language="id", priority=1, valid_until=None,
        )  # fmt: skip
        assert ledger_id is not None
        ids[to] = ledger_id
    return ids


def ledger(store: Store) -> dict[int, tuple[str, str | None, str | None]]:
    """Ledger id -> (status, provider id, error)."""
    e = LedgerEntry
    with store.engine.connect() as connection:
        rows = connection.execute(select(e.id, e.status, e.provider_id, e.error).where(e.body.is_not(None)))
        return {r.id: (r.status, r.provider_id, r.error) for r in rows}


@dataclass(frozen=True)
class Call:
    """One ``send`` call of the dispatcher, on ``time.monotonic()`` like the stub's request log."""

    to: str
    body: str
    start: float
    end: float


class Recording:
    """The SMS channel, recording when each send began and ended and calling ``after_send`` after each one."""

    def __init__(
        self, inner: TwilioSms, after_send: Callable[[SendResult], None] | None = None, *, at_the_wire: bool = True
    ) -> None:
        self.inner, self.after_send = inner, after_send
        self.name = inner.name
        # True: the dispatcher's opt-out answer is awaited inside the inner channel, as its request leaves;
        # False: the dispatcher reads it before calling send.
        self.checks_at_the_wire = at_the_wire and inner.checks_at_the_wire
        self.calls: list[Call] = []

    def send(self, message: RenderedMessage, ledger_key: str, *, valid_until: datetime | None = None) -> SendResult:
        start = time.monotonic()
        try:
            result = self.inner.send(message, ledger_key, valid_until=valid_until)
        finally:
            self.calls.append(Call(message.to, message.text, start, time.monotonic()))
        if self.after_send is not None:
            self.after_send(result)
        return result

    def find_sent(self, message: RenderedMessage, ledger_key: str, since: datetime) -> str | None:
        return self.inner.find_sent(message, ledger_key, since)


def sms(stub: TwilioStub) -> TwilioSms:
    client = twilio_client(SID, TOKEN, base_url=stub.url, timeout=CLIENT_TIMEOUT)
    return TwilioSms(client, from_number=SENDER, messaging_service_sid=None, status_callback=None)


def creates(stub: TwilioStub, expected: int, timeout: float = 10.0) -> list[RequestRecord]:
    """The stub's message-create requests, once all ``expected`` are logged (a hang is logged when it answers)."""
    deadline = time.monotonic() + timeout
    while True:
        posts = [r for r in stub.requests if r.method == "POST"]
        if len(posts) >= expected or time.monotonic() > deadline:
            return posts
        time.sleep(0.05)


def drain(dispatcher: Dispatcher, store: Store, *, rounds: int = 20) -> None:
    for _ in range(rounds):
        dispatcher.run(idle_sleep=0.05)
        counts = store.queue_counts()
        if not counts.get("queued") and not counts.get("sending"):
            return
    pytest.fail(f"queue not drained after {rounds} dispatcher runs: {store.queue_counts()}")


def test_faults_at_20_percent_deliver_everything_once_and_honour_retry_after(store: Store) -> None:
    count = 240
    ids = queue_messages(store, count, thread="CGT20261128001")
    with TwilioStub(
        SID, TOKEN, seed=4, fault_rate=0.2, fault_kinds=("429", "500", "hang"), retry_after=RETRY_AFTER,
        hang_seconds=HANG_SECONDS,
    ) as stub:  # fmt: skip
        channel = Recording(sms(stub))
        # Settle just past the stub's hang: a hung create has been recorded by the time it is reconciled.
        dispatcher = Dispatcher(
            store, {"sms": channel}, lease_seconds=5.0, batch=50, backoff=0.05, settle_seconds=HANG_SECONDS + 0.5
        )
        drain(dispatcher, store)
        posts = creates(stub, len(channel.calls))
        messages = stub.messages

    # Exactly one accepted message per queued body, to the right number, recorded in the ledger.
    bodies = Counter(m["body"] for m in messages)
    assert len(bodies) == count
    assert max(bodies.values()) == 1, f"sent twice: {[b for b, n in bodies.items() if n > 1][:5]}"
    by_number = {m["to"]: m for m in messages}
    assert set(by_number) == set(ids)
    rows = ledger(store)
    assert {rows[i][0] for i in ids.values()} == {"sent"}
    assert all(rows[ids[to]][1] == m["sid"] for to, m in by_number.items())
    assert store.queue_counts() == {"sent": count}

    # The faults really happened, each kind several times (seed 4), and every create is one send call.
    faults = Counter(r.fault for r in posts if r.fault)
    assert min(faults[kind] for kind in ("429", "500", "hang")) >= 5, faults
    assert len(posts) == len(channel.calls)
    hung = [
        m for m in messages if any(c.body == m["body"] and c.end - c.start >= CLIENT_TIMEOUT for c in channel.calls)
    ]
    assert hung, "no send timed out: the reconcile path was not exercised"

    # Retry-After, on the stub's clock: attribute each create to the send call it arrived during.
    starts = [c.start for c in channel.calls]
    attempts: dict[str, list[RequestRecord]] = defaultdict(list)
    for record in posts:
        call = channel.calls[bisect.bisect_right(starts, record.time) - 1]
        assert call.start <= record.time <= call.end
        attempts[call.body].append(record)
    checked = 0
    for body, records in attempts.items():
        assert [r.status for r in records][-1] == 201, body
        for answered, following in pairwise(records):
            if answered.status == 429:
                gap = following.time - answered.time
                assert gap >= RETRY_AFTER, f"retried {gap:.3f}s after a 429 with Retry-After {RETRY_AFTER}"
                checked += 1
    assert checked == faults["429"]


@pytest.mark.parametrize("at_the_wire", [True, False], ids=["checked-at-the-wire", "checked-before-send"])
def test_stop_during_a_batch_stops_the_rest_of_it(store: Store, at_the_wire: bool) -> None:
    count, accepted_before_stop = 50, 20
    ids = queue_messages(store, count, thread="CGT20261128002")
    numbers = list(ids)
    store.import_subscribers([SubscriberRecord(to, VILLAGE, "id", "sms", "test import", T0) for to in numbers], at=T0)
    stopping = numbers[accepted_before_stop]  # the very next row of the batch already leased
    later = numbers[-1]  # and one at the end of it
    opted_out_at: dict[str, float] = {}
    accepted = 0
    lock = threading.Lock()

    def after_send(result: SendResult) -> None:
        nonlocal accepted
        with lock:
            accepted += result.status == "sent"
            if accepted == accepted_before_stop and not opted_out_at:
                for to in (stopping, later):
                    assert store.opt_out(to, "whatsapp STOP", datetime.now(UTC))
                    opted_out_at[to] = time.monotonic()

    with TwilioStub(SID, TOKEN) as stub:
        channel = Recording(sms(stub), after_send, at_the_wire=at_the_wire)
        assert channel.checks_at_the_wire is at_the_wire
        dispatcher = Dispatcher(
            store, {"sms": channel}, lease_seconds=60.0, batch=count, settle_seconds=HANG_SECONDS + 0.5
        )
        report = dispatcher.run(idle_sleep=0.05)
        messages = stub.messages

    assert set(opted_out_at) == {stopping, later}
    # The stub received a create for every number before the STOP, and never one for the opted-out numbers.
    assert len([r for r in stub.requests if r.method == "POST"]) == count - 2
    for to, at in opted_out_at.items():
        assert not [m for m in messages if m["to"] == to and m["created_monotonic"] >= at]
        assert not [m for m in messages if m["to"] == to]
    assert len(messages) == count - 2
    assert (report.sent, report.opted_out) == (count - 2, 2)
    rows = ledger(store)
    for to in (stopping, later):
        status, provider_id, error = rows[ids[to]]
        assert (status, provider_id, error) == ("failed", None, "opted out")
    assert {rows[ids[to]][0] for to in numbers if to not in opted_out_at} == {"sent"}

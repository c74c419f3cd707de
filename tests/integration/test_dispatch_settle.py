"""Issue 10: unknown outcomes settle only when they can, leases are fenced, retries last as long as the warning.

Against the loopback Twilio stand-in through the real ``twilio`` client, on SQLite and PostgreSQL:

- a *late create* (the provider records the message only after the client timed out) is reconciled after
  the settle delay and never sent twice, whether it lands within the lease or after it;
- a worker that died mid-queue is taken over behind a long queue: its rows are reconciled over their whole
  sending episode, however long after the take-over that happens;
- list calls failing (429, 500) during reconciliation leave those rows for later while the queue is sent;
- more 429s than any attempt budget: still delivered, every retry at least Retry-After later;
- the provider down for a while with a warning valid for hours: nothing fails, all delivered after;
- bad credentials: the same one-line message every run, no traceback, nothing left 'sending'; delivered
  once the credentials are right.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from test_dispatch_faults import SENDER, SID, TOKEN, ledger, number, queue_messages, sms

from ews.dispatch import Dispatcher, ledger_key, to_message
from ews.store.repository import Store
from ews.testing.twilio_server import RequestRecord, TwilioStub

REPO = Path(__file__).resolve().parents[2]
LATE = 1.0  # the stub records a late create this long after the request arrived
SETTLE = LATE + 0.6  # reconcile only once a late create has surely landed


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store.from_url(database_url)
    yield s
    s.close()


def drain(dispatcher: Dispatcher, store: Store, *, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        dispatcher.run(idle_sleep=0.05, max_wait=seconds)
        counts = store.queue_counts()
        if not counts.get("queued") and not counts.get("sending") and not counts.get("unsure"):
            return
    pytest.fail(f"queue not drained in {seconds} s: {store.queue_counts()}")


def once_each(stub: TwilioStub, ids: dict[str, int]) -> None:
    counts = stub.sent_counts()
    assert {to for to, _ in counts} == set(ids), "missing recipients"
    assert max(counts.values()) == 1, f"sent twice: {[k for k, n in counts.items() if n > 1][:3]}"


@pytest.mark.parametrize("lease", [5.0, 0.6], ids=["within-lease", "beyond-lease"])
def test_a_late_create_is_reconciled_after_it_lands_not_resent(store: Store, lease: float) -> None:
    ids = queue_messages(store, 6, thread="CJT20261128001")
    with TwilioStub(SID, TOKEN, late_seconds=LATE) as stub:
        stub.fail_next("late", 3)  # the first three creates time the client out and land a second later
        dispatcher = Dispatcher(store, {"sms": sms(stub)}, lease_seconds=lease, settle_seconds=SETTLE, batch=10)
        drain(dispatcher, store)
        stub.wait_for_late(5.0)
        once_each(stub, ids)
    assert {status for status, _, _ in ledger(store).values()} == {"sent"}


def test_a_worker_killed_mid_queue_is_taken_over_behind_a_long_queue(store: Store) -> None:
    ids = queue_messages(store, 60, thread="CJT20261128002")
    with TwilioStub(SID, TOKEN) as stub:
        channel = sms(stub)
        # The dead worker leased 10 rows, sent 5 of them, and was killed before it recorded anything.
        dead = store.lease("dead", datetime.now(UTC), limit=10)
        for q in dead[:5]:
            channel.send(to_message(q), ledger_key(q))
        time.sleep(0.3)
        # The next worker starts well after, behind the other 50 rows; rate-limited so the queue is long.
        survivor = Dispatcher(store, {"sms": channel}, lease_seconds=0.2, settle_seconds=0.5, batch=5,
                              rates={"sms": 40.0})  # fmt: skip
        drain(survivor, store)
        once_each(stub, ids)
    assert {status for status, _, _ in ledger(store).values()} == {"sent"}


def test_failing_list_calls_leave_those_rows_for_later_and_the_queue_goes_on(store: Store) -> None:
    ids = queue_messages(store, 20, thread="CJT20261128003")
    with TwilioStub(SID, TOKEN, hang_seconds=0.6, retry_after=1) as stub:
        stub.fail_next("hang", 2)  # two unknown outcomes to reconcile...
        stub.fail_next_list("500", 2)  # ...whose first list calls fail (twilio raises TwilioException)
        stub.fail_next_list("429", 1)
        dispatcher = Dispatcher(store, {"sms": sms(stub)}, lease_seconds=5.0, settle_seconds=0.8, backoff=0.2,
                                max_backoff=0.5, batch=5)  # fmt: skip
        drain(dispatcher, store)
        once_each(stub, ids)
        lists = [r for r in stub.requests if r.method == "GET"]
        assert len(lists) >= 4  # the failed ones were asked again
    assert {status for status, _, _ in ledger(store).values()} == {"sent"}


def test_more_429s_than_any_attempt_budget_still_deliver_honouring_retry_after(store: Store) -> None:
    ids = queue_messages(store, 2, thread="CJT20261128004")
    with TwilioStub(SID, TOKEN, retry_after=1) as stub:
        stub.fail_next("429", 12)  # the old dispatcher gave up after 10 attempts
        dispatcher = Dispatcher(store, {"sms": sms(stub)}, lease_seconds=5.0, settle_seconds=SETTLE)
        drain(dispatcher, store, seconds=90)
        once_each(stub, ids)
        posts = [r for r in stub.requests if r.method == "POST"]
    by_recipient: dict[str, list[RequestRecord]] = {}
    for r in sorted(posts, key=lambda r: r.time):
        by_recipient.setdefault(str(r.to), []).append(r)
    for to, calls in by_recipient.items():
        # Every retry after a 429 comes at least Retry-After after that answer (on the stub's own clock).
        gaps = [(b.time - (a.answered or a.time), a.retry_after) for a, b in pairwise(calls) if a.status == 429]
        assert gaps, to
        assert all(gap >= (after or 0) - 0.05 for gap, after in gaps), (to, gaps)
    assert {status for status, _, _ in ledger(store).values()} == {"sent"}


def test_provider_down_for_a_while_fails_nothing_and_delivers_after(store: Store) -> None:
    ids = queue_messages(store, 10, thread="CJT20261128005")
    with TwilioStub(SID, TOKEN) as stub:
        stub.pause(2.0)  # connection refused for 2 s: nothing can have been created
        dispatcher = Dispatcher(store, {"sms": sms(stub)}, lease_seconds=5.0, settle_seconds=SETTLE, backoff=0.2,
                                max_backoff=0.5)  # fmt: skip
        drain(dispatcher, store)
        once_each(stub, ids)
    statuses = [status for status, _, _ in ledger(store).values()]
    assert statuses == ["sent"] * len(ids)


def send_once(url: str, stub: TwilioStub, token: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin", "TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": token,
        "EWS_TWILIO_SMS_FROM": SENDER, "EWS_TWILIO_BASE_URL": stub.url,
    }  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "ews.cli", "send", "--once", "--database", url, "--timeout", "2", "--lease", "5",
         "--settle", "2"],
        capture_output=True, text=True, timeout=120, env=env, cwd=REPO, check=False,
    )  # fmt: skip


def test_bad_credentials_stop_every_run_with_the_same_line_and_resume(store: Store, database_url: str) -> None:
    ids = queue_messages(store, 5, thread="CJT20261128006")
    with TwilioStub(SID, TOKEN) as stub:
        runs = [send_once(database_url, stub, "wrong-token") for _ in range(2)]
        for run in runs:
            assert run.returncode == 2, run.stderr
            assert "Traceback" not in run.stderr
        lines = [[x for x in r.stderr.splitlines() if "error" in x] for r in runs]
        assert lines[0] == lines[1]
        assert len(lines[0]) == 1
        assert "Twilio refused the account or sender (HTTP 401" in lines[0][0]
        assert store.queue_counts() == {"queued": 5}  # nothing left 'sending', nothing failed
        good = send_once(database_url, stub, TOKEN)
        assert good.returncode == 0, good.stderr
        once_each(stub, ids)


def test_send_once_exits_1_when_a_message_failed_for_good(store: Store, database_url: str) -> None:
    queue_messages(store, 2, thread="CJT20261128007")
    with TwilioStub(SID, TOKEN, opted_out={number(1)}) as stub:  # 21610: unsubscribed at the carrier
        run = send_once(database_url, stub, TOKEN)
    assert run.returncode == 1, run.stderr
    assert "1 message(s) failed for good" in run.stderr
    rows = ledger(store)
    assert sorted(status for status, _, _ in rows.values()) == ["failed", "sent"]
    assert any(error and "21610" in error for _, _, error in rows.values())
    sent = [json.dumps(r) for r in rows.values()]
    assert not any("+62" in s for s in sent)
    # The failed row is visible to the operator, with the provider's reason and no number.
    shown = subprocess.run(
        [sys.executable, "-m", "ews.cli", "alerts", "show", "CJT20261128007", "--region", "jawa-timur",
         "--database", database_url],
        capture_output=True, text=True, timeout=60, cwd=REPO, check=False,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert "messages: failed 1, sent 1" in shown.stdout
    assert "FAILED (1)" in shown.stdout
    assert "21610" in shown.stdout
    assert "+62" not in shown.stdout


def test_fencing_refuses_a_worker_that_lost_its_lease(store: Store) -> None:
    queue_messages(store, 1, thread="CJT20261128008")
    t0 = datetime.now(UTC)
    (mine,) = store.lease("slow", t0)
    store.expire_leases(t0 + timedelta(seconds=10), lease_seconds=5, settle_seconds=0)
    (theirs,) = store.take_unsure("fast", t0 + timedelta(seconds=11))
    # The slow worker wakes up: whatever it tries on the row is refused by the database.
    assert not store.touch(mine, "slow", t0 + timedelta(seconds=12))
    assert not store.finish(mine.ledger_id, "sent", provider_id="SMx", worker="slow", lease=mine.lease)
    assert not store.mark_unsure(mine, t0, "late", worker="slow")
    assert store.release([mine], worker="slow", now=t0) == 0
    assert store.finish(theirs.ledger_id, "sent", provider_id="SMy", worker="fast", lease=theirs.lease)

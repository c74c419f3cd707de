"""The dispatcher (``ews send``): delivers queued ledger rows through the channels, exactly once.

Twilio's create call has no idempotency key. This is how ews still sends each message once:

1. A row is leased and marked ``sending`` in a committed transaction *before* the provider is called
   (PostgreSQL hands disjoint batches to concurrent workers with ``FOR UPDATE SKIP LOCKED``). The lease
   carries a fencing token: every later change names it, and the database refuses a change from a worker
   that lost the row (:mod:`ews.store.ledger`).
2. After the call the outcome is recorded: ``sent`` with the provider id and status, ``failed`` with the
   provider's code (permanent: invalid number, unsubscribed, blocked), or back to ``queued`` with a due time
   (429 honouring ``Retry-After``, 5xx, no connection: nothing was created), retried with capped back-off
   for as long as the warning is valid.
3. A send whose outcome is unknown (a time-out after the request left, a reset, a worker killed or its lease
   lost) becomes ``unsure``. It is never sent again before a reconciliation that runs ``settle_seconds``
   later, so that a create the provider completes after the client gave up has appeared, and that lists the
   provider's messages to that number over the row's whole sending episode (from ``leased_at``, which a
   take-over never moves), matching sender and text. Found: ``sent``. Not found: queued again. A list call
   that fails leaves the row ``unsure`` for a later pass, backed off, while the rest of the queue is sent.
4. Lost leases are taken over on every pass, not only when the queue is empty.

Account or sender errors (401, a wrong ``From``) stop the worker with the same one-line message every time;
the rows it held go back to where the next run resumes them. At send time a number that opted out is sent
nothing, a message whose warning expired is not sent (``expired``), Twilio's ``ValidityPeriod`` follows the
warning's expiry, cancels and all-clears go first, and a token bucket keeps each channel under its rate.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ews.channels.base import Channel, TransientChannelError, Withheld, last_check
from ews.errors import ConfigError, EwsError
from ews.messages.gsm7 import sms_segments
from ews.store.repository import Outcome, QueuedMessage, Store
from ews.types import RenderedMessage

log = logging.getLogger(__name__)

DEFAULT_BATCH = 200
"""Rows a worker leases at a time: two statements (lease, finish) per this many sends; a crashed worker's
batch waits for the settle delay and one reconciliation each. A long batch renews its lease in one statement."""


@dataclass
class DispatchReport:
    """Counts of one dispatcher pass (no personal data)."""

    sent: int = 0
    failed: int = 0
    expired: int = 0
    opted_out: int = 0
    no_contact: int = 0
    retried: int = 0
    reconciled_sent: int = 0
    reconciled_requeued: int = 0
    unsure: int = 0  # sends whose outcome was unknown, left to a reconciliation after the settle delay
    reconcile_deferred: int = 0  # reconciliations put off because the provider could not be asked
    failovers: int = 0
    pending: int = 0  # rows still waiting (a retry or a settle) when the pass ended
    errors: dict[str, int] = field(default_factory=dict)  # transient errors by kind
    failures: dict[str, int] = field(default_factory=dict)  # permanent failures by the provider's reason


class TokenBucket:
    """At most ``rate`` sends per second on average, bursts of ``burst``; ``None`` rate: no limit."""

    def __init__(self, rate: float | None, burst: int = 1, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:  # fmt: skip
        self.rate, self.burst, self.clock, self.sleep = rate, burst, clock, sleep
        self.tokens = float(burst)
        self.at = clock()

    def take(self) -> None:
        """Wait until a send is allowed."""
        if self.rate is None:
            return
        while True:
            now = self.clock()
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
            self.at = now
            if self.tokens >= 1:
                self.tokens -= 1
                return
            self.sleep((1 - self.tokens) / self.rate)


def to_message(q: QueuedMessage) -> RenderedMessage:
    """The message a queued ledger row carries, as channels take it."""
    segments = sms_segments(q.body) if q.channel == "sms" else 1
    return RenderedMessage(
        audience=q.audience, channel=q.channel, language=q.language, to=q.address, village_code=q.village_code,
        level=q.level, warning_id=q.warning_id, text=q.body, segments=segments, shortened=False,
        recipient_id=q.recipient_id,
    )  # fmt: skip


def ledger_key(q: QueuedMessage) -> str:
    """The de-duplication key of a ledger row: alert version, recipient, channel (and topic, where it has one)."""
    key = f"{q.alert_version_id}|{q.recipient_id}|{q.channel}"
    return f"{key}|{q.topic}" if q.topic else key


# The provider's clock and ours may differ: a reconciliation looks this much before the episode began.
CLOCK_MARGIN = timedelta(seconds=60)


class Dispatcher:
    """Drains the send queue of a store through channels keyed by channel name (``sms``, ``whatsapp``).

    Parameters
    ----------
    lease_seconds
        How long a worker holds a row; a row held longer is taken over (its send may have happened).
    settle_seconds
        How long after an unknown outcome before it is reconciled: long enough for a create the provider
        completes after the client gave up to show in its list (default 120 s, see the README).
    backoff, max_backoff
        Exponential back-off for transient failures, capped (``Retry-After`` is honoured even if longer).
    """

    def __init__(
        self,
        store: Store,
        channels: Mapping[str, Channel],
        *,
        worker: str = "ews-send",
        lease_seconds: float = 120.0,
        settle_seconds: float = 120.0,
        batch: int = DEFAULT_BATCH,
        rates: Mapping[str, float | None] | None = None,
        backoff: float = 2.0,
        max_backoff: float = 300.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store, self.channels, self.worker = store, dict(channels), worker
        self.lease_seconds, self.settle_seconds, self.batch = lease_seconds, settle_seconds, batch
        self.backoff, self.max_backoff = backoff, max_backoff
        self.clock, self.sleep = clock, sleep
        # A send must end well inside its lease, or another worker could take the row over mid-send.
        # (The channels' request timeout must stay below lease_seconds / 2: checked by `ews send`.)
        self.buckets = {name: TokenBucket((rates or {}).get(name), sleep=sleep) for name in self.channels}
        self._opted_out: Callable[[str], bool] = store.is_opted_out  # a held connection while running
        self._ask_opted_out: Callable[[str], Callable[[], bool]] = lambda address: lambda: store.is_opted_out(address)

    def _channel(self, q: QueuedMessage) -> Channel:
        try:
            return self.channels[q.channel]
        except KeyError:
            raise EwsError(f"no channel configured for {q.channel!r} (ledger row {q.ledger_id})") from None

    def _delay(self, attempts: int) -> float:
        return float(min(self.max_backoff, self.backoff * 2 ** max(0, attempts)))

    def reconcile(self, rows: Sequence[QueuedMessage], report: DispatchReport) -> None:
        """Settle rows whose outcome was unknown: sent if the provider has them, else queued again."""
        for i, q in enumerate(rows):
            since = (q.leased_at or q.claimed_at or self.clock()) - CLOCK_MARGIN
            try:
                found = self._channel(q).find_sent(to_message(q), ledger_key(q), since)
            except TransientChannelError as exc:
                # The provider cannot be asked now: the row stays unsure, asked again later; the queue goes on.
                log.warning("cannot reconcile ledger row %s yet: %s", q.ledger_id, exc)
                later = self.clock() + timedelta(seconds=self._delay(q.attempts))
                self.store.mark_unsure(q, later, f"reconciliation deferred: {exc}", worker=self.worker)
                report.reconcile_deferred += 1
                continue
            except ConfigError:
                self.store.release(rows[i:], worker=self.worker, now=self.clock())
                raise
            if found is not None:
                if self.store.finish(q.ledger_id, "sent", provider_id=found, worker=self.worker, lease=q.lease,
                                     provider_status="reconciled"):  # fmt: skip
                    report.reconciled_sent += 1
            elif self.store.requeue(q, self.clock(), "not at the provider after an unknown outcome: resend",
                                    worker=self.worker, attempt=False):  # fmt: skip
                report.reconciled_requeued += 1

    def send_one(self, q: QueuedMessage, report: DispatchReport) -> Outcome | None:
        """Deliver one leased row; return its outcome to record, or ``None`` if it was settled already.

        Retries and unknown outcomes are written at once; final outcomes are returned so that a batch's
        are written in one transaction (a crash before that leaves the rows 'sending', to be taken over).
        """
        now = self.clock()
        if q.valid_until is not None and q.valid_until <= now:
            if self._opted_out(q.address):
                return self._withheld(q, report)
            report.expired += 1
            return Outcome(q.ledger_id, "expired", error=f"warning expired at {q.valid_until.isoformat()}",
                           lease=q.lease)  # fmt: skip
        channel = self._channel(q)
        self.buckets[q.channel].take()
        # The opt-out is read after every wait, so a STOP recorded before this send began always stops it. Asked
        # now, its answer is awaited where the request leaves (a channel that says it calls at_the_wire), or here.
        opted_out = self._ask_opted_out(q.address)
        try:
            if getattr(channel, "checks_at_the_wire", False):
                with last_check(lambda: "opted out" if opted_out() else None):
                    result = channel.send(to_message(q), ledger_key(q), valid_until=q.valid_until)
            elif opted_out():
                return self._withheld(q, report)
            else:
                result = channel.send(to_message(q), ledger_key(q), valid_until=q.valid_until)
        except Withheld:
            return self._withheld(q, report)
        except TransientChannelError as exc:
            name = type(exc).__name__
            report.errors[name] = report.errors.get(name, 0) + 1
            if exc.ambiguous:
                settle = self.clock() + timedelta(seconds=self.settle_seconds)
                if self.store.mark_unsure(q, settle, f"outcome unknown: {exc}", worker=self.worker):
                    report.unsure += 1
                return None
            report.retried += 1
            # From when the answer came back: Retry-After counts from the response, not the request.
            delay = exc.retry_after if exc.retry_after is not None else self._delay(q.attempts)
            when = self.clock() + timedelta(seconds=delay)
            if q.valid_until is not None and when >= q.valid_until:
                report.expired += 1
                return Outcome(q.ledger_id, "expired", error=f"warning expired before the provider took it: {exc}",
                               lease=q.lease)  # fmt: skip
            self.store.requeue(q, when, str(exc), worker=self.worker, attempt=True)
            return None
        status = {"sent": "sent", "dry-run": "dry-run", "expired": "expired"}.get(result.status, "failed")
        if status in ("sent", "dry-run"):
            report.sent += 1
        elif status == "expired":
            report.expired += 1
        error = None if status in ("sent", "dry-run") else (result.detail or result.status)
        if result.status == "no-contact":
            report.no_contact += 1  # nobody to send to (a Tagana unit without a number): reported by the run
        elif status == "failed":
            report.failed += 1
            report.failures[error or "failed"] = report.failures.get(error or "failed", 0) + 1
        return Outcome(q.ledger_id, status, result.provider_id, error, result.provider_status or None, q.lease)

    def _withheld(self, q: QueuedMessage, report: DispatchReport) -> Outcome:
        report.opted_out += 1  # their wish, not a failure to report
        return Outcome(q.ledger_id, "failed", error="opted out", lease=q.lease)

    def _flush(self, batch: list[tuple[QueuedMessage, Outcome]], report: DispatchReport) -> None:
        settled = set(self.store.finish_many([o for _, o in batch], worker=self.worker))
        for q, o in batch:
            if o.ledger_id in settled and o.status == "failed" and q.channel == "whatsapp" and q.fallback_body:
                if o.error != "opted out":
                    self._fail_over(q, o.error or "", report)
        batch.clear()

    def _fail_over(self, q: QueuedMessage, why: str, report: DispatchReport) -> None:
        """Queue the stored SMS text for a WhatsApp message that failed for good (the ledger allows it once)."""
        queued = self.store.enqueue(
            q.alert_version_id, q.recipient_id, q.audience, "sms", address=q.address, body=q.fallback_body or "",
            language=q.language, priority=q.priority, valid_until=q.valid_until, topic=q.topic,
        )  # fmt: skip
        if queued is not None:
            report.failovers += 1
            log.info("ledger row %s: WhatsApp failed (%s), SMS queued as row %s", q.ledger_id, why, queued)

    def run(
        self, *, until_empty: bool = True, idle_sleep: float = 0.5, max_wait: float | None = None
    ) -> DispatchReport:
        """Send due rows and settle unknown outcomes until nothing is due.

        With ``until_empty``, also wait for rows due later (a retry, a settle delay) until none is left, or
        for at most ``max_wait`` seconds (``report.pending`` then counts what still waits).
        """
        report = DispatchReport()
        with self.store.opt_out_checker() as checker:
            self._opted_out, self._ask_opted_out = checker, checker.ask
            return self._run(report, until_empty=until_empty, idle_sleep=idle_sleep, max_wait=max_wait)

    def _run(
        self, report: DispatchReport, *, until_empty: bool, idle_sleep: float, max_wait: float | None
    ) -> DispatchReport:
        started = time.monotonic()
        waited_at: datetime | None = None
        # Lost leases are looked for on every pass, but not more often than this: prompt, and cheap.
        every = min(self.lease_seconds / 4, 5.0)
        looked = -every
        while True:
            unsure: list[QueuedMessage] = []
            fresh = time.monotonic() - looked >= every
            if fresh:
                looked = time.monotonic()
                self.store.expire_leases(self.clock(), self.lease_seconds, self.settle_seconds)
                unsure = self.store.take_unsure(self.worker, self.clock(), self.batch)
                if unsure:
                    self.reconcile(unsure, report)
            rows = self.store.lease(self.worker, self.clock(), self.batch)
            done: list[tuple[QueuedMessage, Outcome]] = []
            flushed = self.clock()
            renewed = min((q.claimed_at for q in rows if q.claimed_at is not None), default=flushed)
            lost: set[int] = set()
            try:
                for i, q in enumerate(rows):
                    # Record what was sent before those rows could outlive the lease (another worker would
                    # then have to reconcile them); usually once per batch.
                    if done and (self.clock() - flushed).total_seconds() > self.lease_seconds / 4:
                        self._flush(done, report)
                        flushed = self.clock()
                    # A long batch renews the lease on the rows it has still to send, in one statement; a row
                    # lost meanwhile (taken over after a stall) is not sent: its new holder settles it.
                    now = self.clock()
                    if (now - renewed).total_seconds() > self.lease_seconds / 2:
                        rest = rows[i:]
                        lost |= {r.ledger_id for r in rest} - self.store.touch_many(rest, self.worker, now)
                        renewed = now
                    if q.ledger_id in lost:
                        log.warning("ledger row %s: lease lost to another worker, not sending", q.ledger_id)
                        continue
                    outcome = self.send_one(q, report)
                    if outcome is not None:
                        done.append((q, outcome))
            except ConfigError:
                # The account or sender is wrong: give back every row of the batch still held (the failing one
                # too: its request was refused), so the next run starts from them. Settled rows are fenced off.
                self._flush(done, report)
                self.store.release(rows, worker=self.worker, now=self.clock())
                raise
            finally:
                self._flush(done, report)
            if rows or unsure:
                continue
            if not fresh:  # before deciding that nothing is due, look for lost leases and settled rows now
                looked = -every
                continue
            waiting = self.store.queue_counts()
            report.pending = sum(waiting.get(s, 0) for s in ("queued", "sending", "unsure"))
            if not until_empty or report.pending == 0:
                return report
            if max_wait is not None and time.monotonic() - started > max_wait:
                return report
            now = self.clock()
            if waited_at is not None and now <= waited_at:
                return report  # a clock that stands still (a replay at a fixed time): waiting would never end
            waited_at = now
            due = self.store.next_due()
            pause = idle_sleep
            if due is not None:
                pause = min(max(idle_sleep, (due - self.clock()).total_seconds()), 5.0)
            self.sleep(pause)

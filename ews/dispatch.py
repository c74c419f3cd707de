"""The dispatcher (``ews send``): delivers queued ledger rows through the channels, exactly once.

Why it can promise "never twice, never lost" although Twilio's create call has no idempotency key:

1. A row is leased and marked ``sending`` in a committed transaction *before* the provider is called
   (PostgreSQL hands disjoint batches to concurrent workers with ``FOR UPDATE SKIP LOCKED``).
2. After the call the outcome is recorded: ``sent``/``dry-run`` with the provider id, ``failed`` with the
   provider's code (permanent: never retried), or back to ``queued`` with a due time (transient, 429).
3. A row still ``sending`` after its lease ran out belonged to a worker that died mid-send. Before
   anything is resent it is *reconciled*: the channel is asked whether it already accepted that body for
   that number since the lease began (:meth:`find_sent`). Found: recorded as sent. Not found: queued
   again. A call that timed out (Twilio may or may not have accepted it) is reconciled the same way.

Also, at send time: a number that opted out is sent nothing (endings included); a message whose warning
expired is not sent (``expired``); Twilio's ``ValidityPeriod`` follows the warning's expiry; cancels and
all-clears go first; a token bucket keeps each channel under its configured rate.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ews.channels.base import Channel, TransientChannelError
from ews.errors import EwsError
from ews.messages.gsm7 import sms_segments
from ews.store.repository import Outcome, QueuedMessage, Store
from ews.types import RenderedMessage

log = logging.getLogger(__name__)


@dataclass
class DispatchReport:
    """Counts of one dispatcher pass (no personal data)."""

    sent: int = 0
    failed: int = 0
    expired: int = 0
    opted_out: int = 0
    retried: int = 0
    reconciled_sent: int = 0
    reconciled_requeued: int = 0
    failovers: int = 0
    errors: dict[str, int] = field(default_factory=dict)


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
    """The de-duplication key of a ledger row: alert version, recipient, channel."""
    return f"{q.alert_version_id}|{q.recipient_id}|{q.channel}"


class Dispatcher:
    """Drains the send queue of a store through channels keyed by channel name (``sms``, ``whatsapp``)."""

    def __init__(
        self,
        store: Store,
        channels: Mapping[str, Channel],
        *,
        worker: str = "ews-send",
        lease_seconds: float = 120.0,
        batch: int = 100,
        rates: Mapping[str, float | None] | None = None,
        max_attempts: int = 10,
        backoff: float = 2.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store, self.channels, self.worker = store, dict(channels), worker
        self.lease_seconds, self.batch, self.max_attempts, self.backoff = lease_seconds, batch, max_attempts, backoff
        self.clock, self.sleep = clock, sleep
        # A send must end well inside its lease, or another worker could take the row over mid-send.
        # (The channels' request timeout must stay below lease_seconds / 2: checked by `ews send`.)
        self.buckets = {name: TokenBucket((rates or {}).get(name), sleep=sleep) for name in self.channels}
        self._opted_out: Callable[[str], bool] = store.is_opted_out  # a held connection while running

    def _channel(self, q: QueuedMessage) -> Channel:
        try:
            return self.channels[q.channel]
        except KeyError:
            raise EwsError(f"no channel configured for {q.channel!r} (ledger row {q.ledger_id})") from None

    def reconcile(self, report: DispatchReport) -> None:
        """Settle rows left 'sending' by a dead worker: sent if the provider has them, else queued again."""
        while rows := self.store.take_abandoned(self.worker, self.clock(), self.lease_seconds, self.batch):
            for q in rows:
                self._settle_ambiguous(q, report, "worker died mid-send")

    def _settle_ambiguous(self, q: QueuedMessage, report: DispatchReport, why: str) -> None:
        since = (q.claimed_at or self.clock()) - timedelta(seconds=self.lease_seconds + 60)
        try:
            found = self._channel(q).find_sent(to_message(q), ledger_key(q), since)
        except TransientChannelError as exc:
            # The provider cannot tell us now: leave the row 'sending'; its lease runs out and it is retried.
            log.warning("cannot reconcile ledger row %s yet: %s", q.ledger_id, exc)
            return
        if found is not None:
            self.store.finish(q.ledger_id, "sent", provider_id=found, error=f"reconciled: {why}", worker=self.worker)
            report.reconciled_sent += 1
        else:
            self.store.retry_later(q.ledger_id, self.clock(), f"not at provider after: {why}", worker=self.worker)
            report.reconciled_requeued += 1

    def send_one(self, q: QueuedMessage, report: DispatchReport) -> Outcome | None:
        """Deliver one leased row; return its outcome to record, or ``None`` if it was settled already.

        Retries and reconciliations are written at once; final outcomes are returned so that a batch's
        are written in one transaction (a crash before that leaves the rows 'sending', to be reconciled).
        """
        now = self.clock()
        if self._opted_out(q.address):
            report.opted_out += 1
            return Outcome(q.ledger_id, "failed", error="opted out")
        if q.valid_until is not None and q.valid_until <= now:
            report.expired += 1
            return Outcome(q.ledger_id, "expired", error=f"warning expired at {q.valid_until.isoformat()}")
        # A row leased long ago (a long batch) renews its lease first, so nobody takes it over mid-send.
        stale = q.claimed_at is not None and (now - q.claimed_at).total_seconds() > self.lease_seconds / 2
        if stale and not self.store.touch(q.ledger_id, self.worker, now):
            log.warning("ledger row %s: lease lost to another worker, not sending", q.ledger_id)
            return None
        channel = self._channel(q)
        self.buckets[q.channel].take()
        try:
            result = channel.send(to_message(q), ledger_key(q), valid_until=q.valid_until)
        except TransientChannelError as exc:
            if exc.ambiguous:
                self._settle_ambiguous(q, report, str(exc))
                return None
            report.retried += 1
            name = type(exc).__name__
            report.errors[name] = report.errors.get(name, 0) + 1
            if q.attempts >= self.max_attempts:
                report.failed += 1
                return Outcome(q.ledger_id, "failed", error=f"gave up after {q.attempts} attempts: {exc}")
            delay = exc.retry_after if exc.retry_after is not None else self.backoff * 2 ** (q.attempts - 1)
            # From when the answer came back: Retry-After counts from the response, not the request.
            self.store.retry_later(q.ledger_id, self.clock() + timedelta(seconds=delay), str(exc), worker=self.worker)
            return None
        status = {"sent": "sent", "dry-run": "dry-run", "expired": "expired"}.get(result.status, "failed")
        if status in ("sent", "dry-run"):
            report.sent += 1
        elif status == "expired":
            report.expired += 1
        else:
            report.failed += 1
        return Outcome(q.ledger_id, status, result.provider_id, result.detail or None)

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
            language=q.language, priority=q.priority, valid_until=q.valid_until,
        )  # fmt: skip
        if queued is not None:
            report.failovers += 1
            log.info("ledger row %s: WhatsApp failed (%s), SMS queued as row %s", q.ledger_id, why, queued)

    def run(self, *, until_empty: bool = True, idle_sleep: float = 0.5) -> DispatchReport:
        """Reconcile, then send due rows until none is due (and none waits for a retry, if ``until_empty``)."""
        report = DispatchReport()
        with self.store.opt_out_checker() as checker:
            self._opted_out = checker
            return self._run(report, until_empty=until_empty, idle_sleep=idle_sleep)

    def _run(self, report: DispatchReport, *, until_empty: bool, idle_sleep: float) -> DispatchReport:
        self.reconcile(report)
        while True:
            rows = self.store.lease(self.worker, self.clock(), self.batch)
            done: list[tuple[QueuedMessage, Outcome]] = []
            flushed = self.clock()
            try:
                for q in rows:
                    # Record what was sent before those rows could outlive the lease (another worker would
                    # then have to reconcile them); usually once per batch.
                    if done and (self.clock() - flushed).total_seconds() > self.lease_seconds / 4:
                        self._flush(done, report)
                        flushed = self.clock()
                    outcome = self.send_one(q, report)
                    if outcome is not None:
                        done.append((q, outcome))
            finally:
                self._flush(done, report)
            if rows:
                continue
            self.reconcile(report)
            waiting = self.store.queue_counts()
            if not until_empty or (waiting.get("queued", 0) == 0 and waiting.get("sending", 0) == 0):
                return report
            self.sleep(idle_sleep)

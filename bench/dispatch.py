"""Dispatcher throughput: ews send vs a bare loop of the same ``twilio`` client calls, at concurrency 1.

Both sides send ``--n`` SMS (default 10,000) to a loopback Twilio stub (:class:`~ews.testing.twilio_server.
TwilioStub`, no faults, a fresh one per side, in a process of its own as a real provider is: in-process, its
threads would take the GIL at every database wait of ews's) through the same official client
(:func:`ews.channels.twilio.twilio_client`):

- bare: ``client.messages.create(to=..., from_=..., body=...)`` in a plain loop;
- ews: the rows are queued in a SQLite store in a temp dir first (that is the alert step's cost, not timed),
  then ``Dispatcher(...).run()`` with one worker is timed: lease, opt-out check, send, finish per row, i.e.
  everything the ledger costs. ``--postgres`` also times it on PostgreSQL (a fresh schema, dropped after).

The sides run in ``--rounds`` interleaved rounds (default 5, the order rotating), so that the machine's drift
falls on every side alike; the ratio is of the totals, and each round's is printed too.

Acceptance (issues 4 and 10): ews's rate is at least 80% of the bare loop's. ``--profile`` prints where ews's
time goes (cProfile, top functions by cumulative and own time); a per-step breakdown (ms per message in the
Twilio call, finish, the opt-out question, lease and the rest) is always printed. On PostgreSQL the opt-out
answer is awaited inside the Twilio call, as its request leaves (``ews.channels.base.at_the_wire``).

Run:  .venv/bin/python bench/dispatch.py [--n 10000] [--rounds 5] [--postgres [URL]] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import multiprocessing
import os
import pstats
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ews.alerts.model import Decision, Transition
from ews.channels.twilio import TwilioSms, twilio_client
from ews.contacts import recipient_id
from ews.dispatch import Dispatcher
from ews.store.repository import Store
from ews.testing.twilio_server import TwilioStub
from ews.types import Level

SID = "AC" + "2" * 32
TOKEN = "bench-token-not-a-secret"  # noqa: S105 - the loopback stub's fake credential
SENDER = "+15005550006"
TIMEOUT = 10.0
THRESHOLD = 0.8
T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
DEFAULT_POSTGRES = os.environ.get("EWS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def number(n: int) -> str:
    return f"+628999{n:08d}"  # ews's reserved fictional range


def body(n: int) -> str:
    return f"SIAGA banjir Kec. Wonokromo: air naik, siapkan evakuasi. Pesan uji #{n:05d}"


def _serve_stub(pipe: Connection) -> None:
    """The stub's own process: send its URL, then answer each request on ``pipe`` with its message count."""
    with TwilioStub(SID, TOKEN) as stub:
        pipe.send(stub.url)
        while pipe.recv() == "count":
            pipe.send(len(stub.messages))


class StubProcess:
    """A :class:`TwilioStub` in a process of its own, as Twilio is: its threads never take this one's GIL.

    (In-process, every wait of ews's on its database hands the GIL to the stub's threads, a cost no real
    provider imposes; both sides use a fresh one of these.)
    """

    def __enter__(self) -> StubProcess:
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(target=_serve_stub, args=(child,), daemon=True)
        self._process.start()
        self.url: str = self._pipe.recv()
        return self

    def count(self) -> int:
        """Messages the stub has accepted."""
        self._pipe.send("count")
        return int(self._pipe.recv())

    def __exit__(self, *exc: object) -> None:
        self._pipe.send("stop")
        self._process.join(10)


def bare_loop(n: int) -> float:
    """Seconds for ``n`` creates with the client alone."""
    with StubProcess() as stub:
        client = twilio_client(SID, TOKEN, base_url=stub.url, timeout=TIMEOUT)
        client.messages.create(to=number(0), from_=SENDER, body="warm-up")  # connection and imports, untimed
        t0 = time.perf_counter()
        for i in range(1, n + 1):
            client.messages.create(to=number(i), from_=SENDER, body=body(i))
        elapsed = time.perf_counter() - t0
        assert stub.count() == n + 1
    return elapsed


def fill(store: Store, n: int) -> None:
    decision = Decision(
        region="jawa-timur", village_code="35.78.01.1001", thread_id="BENCH1", transition=Transition.NEW,
        level_before=Level.NONE, level=Level.SIAGA, seq=1, warning_id="BENCH1", warning_sent=T0, expires=None,
        fraction=0.9, send=True, exercise=False, reason="bench",
    )  # fmt: skip
    version = store.add_alert_version(decision, "ews.jawa-timur.BENCH1.35.78.01.1001.1", "auto", at=T0)
    for i in range(1, n + 1):
        to = number(i)
        store.enqueue(
            version, recipient_id(to), "resident", "sms", address=to, body=body(i), language="id", priority=1,
            valid_until=None,
        )  # fmt: skip


class Steps:
    """Seconds spent in each wrapped call (a per-step breakdown much lighter than cProfile)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def wrap(self, owner: object, method: str, label: str) -> None:
        inner = getattr(owner, method)

        def timed(*args: object, **kwargs: object) -> object:
            t0 = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - t0
                self.calls[label] = self.calls.get(label, 0) + 1

        setattr(owner, method, timed)

    def report(self, total: float, n: int) -> str:
        parts = [f"{label} {self.seconds[label] / n * 1000:.2f}" for label in self.seconds]
        other = total - sum(self.seconds.values())
        return "ms/msg: " + ", ".join([*parts, f"other {other / n * 1000:.2f}"])


def with_ews(url: str, n: int, profile: cProfile.Profile | None, steps: Steps, batch: int | None = None) -> float:
    """Seconds for the dispatcher to drain ``n`` queued rows of the store at ``url``."""
    store = Store.from_url(url)
    try:
        fill(store, n)
        with StubProcess() as stub:
            client = twilio_client(SID, TOKEN, base_url=stub.url, timeout=TIMEOUT)
            client.messages.create(to=number(0), from_=SENDER, body="warm-up")
            channel = TwilioSms(client, from_number=SENDER, messaging_service_sid=None, status_callback=None)
            dispatcher = Dispatcher(store, {"sms": channel}, worker="bench", **({"batch": batch} if batch else {}))
            steps.wrap(channel, "send", "twilio send")
            for method in ("finish_many", "lease", "take_unsure", "expire_leases"):
                steps.wrap(store, method, method)
            make_checker = store.opt_out_checker

            def timed_checker() -> object:
                checker = make_checker()
                steps.wrap(checker, "ask", "opt-out ask")
                return checker

            store.opt_out_checker = timed_checker  # type: ignore[method-assign]
            t0 = time.perf_counter()
            if profile is not None:
                profile.enable()
            report = dispatcher.run()
            if profile is not None:
                profile.disable()
            elapsed = time.perf_counter() - t0
            assert report.sent == n, report
            assert stub.count() == n + 1
        assert store.queue_counts() == {"sent": n}
    finally:
        store.close()
    return elapsed


@contextmanager
def sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="ews-bench-") as folder:
        yield f"sqlite:///{Path(folder) / 'ews.db'}"


@contextmanager
def postgres_url(admin_url: str) -> Iterator[str]:
    schema = f"ews_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield (
            make_url(admin_url)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def print_profile(profile: cProfile.Profile, label: str) -> None:
    for key in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(profile, stream=out).strip_dirs().sort_stats(key).print_stats(18)
        print(f"\n--- ews on {label}: top functions by {key} ---")
        print("\n".join(line for line in out.getvalue().splitlines() if line.strip()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="messages per side (default 10000)")
    parser.add_argument(
        "--rounds", type=int, default=5,
        help="interleaved rounds, each sending n/rounds per side in a rotating order (default 5)",
    )  # fmt: skip
    parser.add_argument(
        "--postgres", nargs="?", const=DEFAULT_POSTGRES, default=None, metavar="URL",
        help=f"also run ews on PostgreSQL (default URL: EWS_TEST_POSTGRES_URL or {DEFAULT_POSTGRES})",
    )  # fmt: skip
    parser.add_argument("--profile", action="store_true", help="print a cProfile summary of each ews run")
    parser.add_argument("--batch", type=int, default=None, help="rows leased at a time (default: the Dispatcher's)")
    args = parser.parse_args()
    if args.n < 1 or args.rounds < 1 or args.n < args.rounds:
        parser.error("--n and --rounds must be positive, and --n at least --rounds")

    backends: list[tuple[str, Callable[[], object]]] = [("SQLite", sqlite_url)]
    if args.postgres:
        backends.append(("PostgreSQL", lambda: postgres_url(args.postgres)))

    per_round = args.n // args.rounds
    n = per_round * args.rounds
    print(
        f"{n:,} SMS per side to a loopback Twilio stub, one sender (concurrency 1), in {args.rounds} interleaved"
        f" rounds of {per_round:,} (the machine's drift hits every side alike)"
    )
    sides = ["bare", *(label for label, _ in backends)]
    seconds = dict.fromkeys(sides, 0.0)
    ratios: dict[str, list[float]] = {label: [] for label, _ in backends}
    profiles = {label: cProfile.Profile() if args.profile else None for label, _ in backends}
    steps = {label: Steps() for label, _ in backends}
    for r in range(args.rounds):
        took: dict[str, float] = {}
        for side in sides[r % len(sides) :] + sides[: r % len(sides)]:
            if side == "bare":
                took[side] = bare_loop(per_round)
                continue
            with dict(backends)[side]() as url:  # type: ignore[attr-defined]
                took[side] = with_ews(url, per_round, profiles[side], steps[side], args.batch)
        for side, elapsed in took.items():
            seconds[side] += elapsed
            if side != "bare":
                ratios[side].append(took["bare"] / elapsed)
    bare_rate = n / seconds["bare"]
    print(f"  bare twilio client loop            : {bare_rate:8.0f} msg/s  ({seconds['bare']:6.2f} s)")
    failed = False
    for label, _ in backends:
        rate = n / seconds[label]
        ratio = rate / bare_rate
        verdict = "PASS" if ratio >= THRESHOLD else "FAIL"
        failed |= verdict == "FAIL"
        rounds = " ".join(f"{x:.2f}" for x in ratios[label])
        print(
            f"  ews Dispatcher.run, {label:<10}     : {rate:8.0f} msg/s  ({seconds[label]:6.2f} s)"
            f"   ews/bare = {ratio:4.2f}  {verdict} (>= {THRESHOLD:.2f}); per round {rounds}"
        )
        print(f"      {steps[label].report(seconds[label], n)}")
        profile = profiles[label]
        if profile is not None:
            print_profile(profile, label)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

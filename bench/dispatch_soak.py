"""Soak: ``ews send`` under a real provider's faults and SIGKILLs (issue 10's acceptance run; not part of CI).

For each configuration (``sqlite-1``: SQLite, one worker; ``pg-1``: PostgreSQL, one worker; ``pg-2``: PostgreSQL,
two workers) and each repeat:

1. a fresh store (a SQLite file in a temp dir, or a fresh PostgreSQL schema dropped afterwards) is filled with
   ``--rows`` SMS ledger rows (20 fictional recipients ``+628999xxxxxxxx`` per alert version, one body per row,
   valid 6 hours ahead);
2. a loopback Twilio stand-in (:class:`~ews.testing.twilio_server.TwilioStub`, on 127.0.0.1) answers with the fault
   mix of the issue: 10 % 429 with ``Retry-After``, 5 % 500, 5 % answers held past the client's timeout (created at
   once, answered late), 2 % late creates (held, created only 1-3 s after the request, i.e. after the client's
   timeout and within or beyond the lease), 5 ms per call; optionally list-call faults (``--list-faults``);
3. ``ews send --once`` subprocesses (rate-limited so the queue outlasts the kills) are SIGKILLed at random moments,
   ``--kills`` times in all, and restarted; one kill, a third of the way in, is restarted only ~70 s later
   (``--scale`` scales that delay) while the queue behind it is long (with two workers the other keeps sending);
4. then the workers run unkilled and unthrottled until no row is queued, sending or waiting (bounded rounds);
5. the stub's record is compared with the queue: per ``(to, body)`` (one per ledger row) delivered once, twice or
   more (duplicates), never (missing); rows ``failed`` in the ledger; for every 429 the gap to the next create of
   the same message on the stub's clock, against its ``Retry-After``; runs whose output holds a traceback.

A table per run and per configuration is printed. Exit 1 if any run had a duplicate, a missing or unexpected
message, a retry sooner than ``Retry-After``, a traceback, or did not drain within ``--time-limit``; else 0.

``--server-down SECONDS`` runs the outage scenario instead: a few messages go out, then the stub is unreachable
(``--down-mode refuse``: port closed; ``reset``: connections reset) for SECONDS while ``ews send`` keeps polling
(restarted if it exits) and the warning is valid for hours; afterwards every message must be delivered once and no
row may ever have been ``failed``.

Everything talks to 127.0.0.1 only (the stub, and PostgreSQL given by ``--postgres``, which must be loopback);
every loop is bounded in count and time, child processes are killed by pid at the end.

Run (from the repository root)::

    .venv/bin/python bench/dispatch_soak.py --quick                 # ~1-2 min: 300 rows, 5 kills, 1 repeat, scale 0.1
    .venv/bin/python bench/dispatch_soak.py                         # acceptance: 3 x 2,100 rows, 24 kills, 70 s delay
    .venv/bin/python bench/dispatch_soak.py --configs pg-2 --repeats 1 --scale 0.2
    .venv/bin/python bench/dispatch_soak.py --server-down 1200      # the 20-minute outage (--server-down 20: quick)

``ews send`` options the dispatcher supports (``--settle``, ``--max-backoff``) are passed when its ``--help``
lists them; ``--send-arg=--flag=value`` adds others. ``--keep-logs`` keeps every worker's output (they are kept
anyway when a run fails, and their folder is printed).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

from sqlalchemy.engine import make_url

from ews.alerts.model import Decision, Transition
from ews.contacts import recipient_id
from ews.store.repository import Store
from ews.testing.databases import scratch_schema
from ews.testing.twilio_server import RequestRecord, TwilioStub
from ews.types import Level

REPO = Path(__file__).resolve().parents[1]
SID = "AC" + "5" * 32
TOKEN = "soak-token-not-a-secret"  # noqa: S105 - the loopback stub's fake credential
SENDER = "+15005550006"
CONFIGS: dict[str, tuple[str, int]] = {"sqlite-1": ("sqlite", 1), "pg-1": ("postgresql", 1), "pg-2": ("postgresql", 2)}
TERMINAL = frozenset({"sent", "failed", "expired", "dry-run"})
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
DEFAULT_POSTGRES = os.environ.get("EWS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
PER_VERSION = 20  # recipients per alert version
BANNER = b"ews send: worker"
TRACEBACK = b"Traceback (most recent call last)"
T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


def number(n: int) -> str:
    return f"+628999{n:08d}"  # ews's reserved fictional range


def body(n: int) -> str:
    return f"UJI {n:05d} SIAGA hujan lebat Kec. Wonokromo: siapkan evakuasi. Pesan uji soak dispatcher"


@dataclass(frozen=True)
class Settings:
    rows: int
    kills: int
    scale: float
    seed: int
    lease: float
    timeout: float
    batch: int
    rate: float | None
    retry_after: int
    hang: float
    late: tuple[float, float]
    late_rate: float
    list_faults: float
    settle: float
    max_backoff: float
    extra: tuple[str, ...]
    time_limit: float
    postgres: str
    keep_logs: bool


@dataclass
class Result:
    config: str
    repeat: int
    queued: int = 0
    once: int = 0
    duplicated: int = 0  # ledger rows delivered more than once
    extra: int = 0  # messages beyond the first of those rows
    missing: int = 0
    unexpected: int = 0
    failed: int = 0
    ledger: dict[str, int] = field(default_factory=dict)
    min_gap: float | None = None  # seconds from a 429 to the next create of the same message
    retry_after: int = 0
    early: int = 0  # retries sooner than Retry-After
    kills: int = 0
    sent_while_killing: int = 0  # messages the stub had when the kill phase ended
    exits: Counter[int] = field(default_factory=Counter)  # return codes of runs that ended by themselves
    tracebacks: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    seed_seconds: float = 0.0
    wall: float = 0.0
    drained: bool = False
    note: str = ""
    logs: Path | None = None

    @property
    def ok(self) -> bool:
        return (
            self.drained
            and not (self.duplicated or self.missing or self.unexpected or self.early or self.tracebacks)
            and self.queued > 0
        )


# -- the store ------------------------------------------------------------------------------------------------


def check_loopback(url: str) -> None:
    host = make_url(url).host
    if host not in LOOPBACK:
        raise SystemExit(f"dispatch_soak: PostgreSQL must be on loopback (127.0.0.1), got host {host!r}")


@contextmanager
def database(kind: str, postgres: str, workdir: Path) -> Iterator[str]:
    """A SQLite file in ``workdir`` or a fresh PostgreSQL schema (dropped afterwards)."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'ews.db'}"
        return
    with scratch_schema(postgres, "ews_soak") as url:
        yield url


def seed_queue(store: Store, rows: int, valid_until: datetime) -> dict[tuple[str, str], int]:
    """Queue ``rows`` SMS rows, ``PER_VERSION`` recipients per alert version; return (to, body) -> row number."""
    versions = [
        store.add_alert_version(
            Decision(
                region="soak", village_code=f"35.78.01.{1000 + v}", thread_id="SOAK1", transition=Transition.NEW,
                level_before=Level.NONE, level=Level.SIAGA, seq=1, warning_id="SOAK1", warning_sent=T0,
                expires=valid_until, fraction=1.0, send=True, exercise=False, reason="dispatch soak",
            ),
            f"ews-soak-{v}",
            "auto",
        )
        for v in range(-(-rows // PER_VERSION))
    ]  # fmt: skip
    expected: dict[tuple[str, str], int] = {}
    for n in range(rows):
        to = number(n)
        store.enqueue(
            versions[n // PER_VERSION], recipient_id(to), "resident", "sms", address=to, body=body(n), language="id",
            priority=1, valid_until=valid_until,
        )  # fmt: skip
        expected[(to, body(n))] = n
    return expected


def waiting(store: Store) -> int:
    """Rows not settled yet (queued, sending, or any other non-final status)."""
    return sum(n for status, n in store.queue_counts().items() if status not in TERMINAL)


# -- the workers ----------------------------------------------------------------------------------------------


def send_flags() -> set[str]:
    """The long options ``ews send --help`` lists (so options of a newer dispatcher are passed only if known)."""
    help_text = subprocess.run(
        [sys.executable, "-m", "ews.cli", "send", "--help"], capture_output=True, text=True, cwd=REPO, timeout=60,
        check=False, env={**os.environ, "PYTHONPATH": str(REPO)},
    ).stdout  # fmt: skip
    return {word.strip("[],") for word in help_text.split() if word.startswith("--")}


@dataclass
class Run:
    worker: str
    process: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_banner(self, limit: float = 60.0) -> bool:
        """Wait until the worker printed its banner (store open, about to send); False if it exited first."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if BANNER in self.log.read_bytes():
                return True
            if not self.alive():
                return False
            time.sleep(0.02)
        return self.alive()  # no banner (another dispatcher's wording?) but running: treat it as sending

    def kill(self) -> bool:
        """SIGKILL it; True if it was still running (a kill that hit)."""
        if not self.alive():
            return False
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        return self.process.returncode == -signal.SIGKILL

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s."""
        if not self.alive():
            return
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)


class Workers:
    """Starts ``ews send`` subprocesses on the store and the stub, each with a log file of its own."""

    def __init__(self, url: str, stub: TwilioStub, logs: Path, settings: Settings, flags: set[str]) -> None:
        self.url, self.logs, self.settings, self.flags = url, logs, settings, flags
        self.env = {
            **os.environ,
            "TWILIO_ACCOUNT_SID": stub.account_sid,
            "TWILIO_AUTH_TOKEN": stub.auth_token,
            "EWS_TWILIO_BASE_URL": stub.url,
            "EWS_TWILIO_SMS_FROM": SENDER,
            "PYTHONPATH": str(REPO),
        }
        for name in ("EWS_PUBLIC_URL", "EWS_TWILIO_MESSAGING_SERVICE_SID", "EWS_TWILIO_WHATSAPP_FROM"):
            self.env.pop(name, None)
        self.started = 0
        self.runs: list[Run] = []

    def start(self, worker: str, *, rate: float | None, once: bool = True) -> Run:
        s = self.settings
        self.started += 1
        log = self.logs / f"{self.started:03d}-{worker}.log"
        command = [
            sys.executable, "-m", "ews.cli", "send", "--database", self.url, "--worker", worker,
            "--lease", str(s.lease), "--timeout", str(s.timeout), "--batch", str(s.batch),
        ]  # fmt: skip
        command += ["--once"] if once else ["--poll", "1"]
        if rate is not None:
            command += ["--rate-sms", f"{rate:.2f}"]
        if "--settle" in self.flags:
            command += ["--settle", str(s.settle)]
        if "--max-backoff" in self.flags:
            command += ["--max-backoff", str(s.max_backoff)]
        command += list(s.extra)
        with log.open("wb") as out:
            process = subprocess.Popen(command, env=self.env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)  # noqa: S603
        run = Run(worker, process, log)
        self.runs.append(run)
        return run

    def kill_all(self) -> None:
        for run in self.runs:
            run.kill()

    def tracebacks(self) -> int:
        return sum(TRACEBACK in run.log.read_bytes() for run in self.runs)


def auto_rate(settings: Settings, workers: int, delay: float) -> float:
    """SMS/s per worker so that about 70 % of the queue goes out during the kill phase (it must outlast it)."""
    up = settings.kills * 1.1  # seconds of sending: kills x the mean 1.1 s between a start and its kill
    sending = up if workers == 1 else workers * (up + delay) - delay
    return min(max(0.7 * settings.rows / sending, 2.0), 200.0)


def kill_phase(
    workers: Workers, names: list[str], store: Store, rng: random.Random, rate: float, delay: float, deadline: float,
    result: Result,
) -> None:  # fmt: skip
    """Kill a random running worker at random moments, ``settings.kills`` times, restarting it (one ~delay late)."""
    kills_wanted = workers.settings.kills
    delayed_at = max(kills_wanted // 3, 1)
    running = {name: workers.start(name, rate=rate) for name in names}
    for run in running.values():
        run.wait_banner()
    restarts = 0
    while result.kills < kills_wanted and time.monotonic() < deadline and restarts < 3 * kills_wanted + 20:
        # The delayed one is killed after it sent a while (>= 1 s: tens of messages), the others at any moment.
        time.sleep(rng.uniform(1.0, 2.5) if result.kills + 1 == delayed_at else rng.uniform(0.05, 2.0))
        name = rng.choice(sorted(running))
        run = running[name]
        if run.kill():
            result.kills += 1
            if result.kills == delayed_at and delay > 0:
                time.sleep(min(delay, max(deadline - time.monotonic(), 0.0)))  # the others keep sending
        else:
            result.exits[run.process.returncode] += 1
        if not waiting(store):
            result.note = f"queue drained after {result.kills} kills"
            break
        restarts += 1
        running[name] = workers.start(name, rate=rate)
        running[name].wait_banner()
        for other, alive in list(running.items()):  # one that ended by itself is restarted too
            if other != name and not alive.alive():
                result.exits[alive.process.returncode] += 1
                running[other] = workers.start(other, rate=rate)
    for run in running.values():
        run.kill()  # the end of the kill phase, not one of the counted random kills
    if result.kills < kills_wanted and not result.note:
        result.note = f"only {result.kills} kills before the time limit"


def drain(workers: Workers, names: list[str], store: Store, deadline: float, result: Result, rounds: int = 50) -> None:
    """Run the workers unkilled and unthrottled (all at once) until no row waits, at most ``rounds`` times."""
    for _ in range(rounds):
        if not waiting(store) or time.monotonic() > deadline:
            break
        runs = [workers.start(name, rate=None) for name in names]
        for run in runs:
            try:
                run.process.wait(timeout=max(deadline - time.monotonic(), 1.0))
            except subprocess.TimeoutExpired:
                run.kill()
            result.exits[run.process.returncode] += 1
        time.sleep(0.2)
    result.drained = not waiting(store)


# -- what the stub saw ----------------------------------------------------------------------------------------


def retry_gaps(requests: list[RequestRecord]) -> tuple[float | None, int, int]:
    """Min seconds from a 429 to the next create of the same (to, body); retries sooner than Retry-After; 429s."""
    by_message: dict[tuple[str, str], list[RequestRecord]] = {}
    for record in requests:
        if record.method == "POST" and record.to is not None and record.body is not None:
            by_message.setdefault((record.to, record.body), []).append(record)
    gaps: list[float] = []
    early = refused = 0
    for records in by_message.values():
        records.sort(key=lambda r: r.time)
        for answered, following in pairwise(records):
            if answered.status != 429:
                continue
            refused += 1
            gap = following.time - answered.time
            gaps.append(gap)
            early += gap < (answered.retry_after or 0)
    return (min(gaps) if gaps else None), early, refused


def assess(result: Result, stub: TwilioStub, store: Store, expected: dict[tuple[str, str], int]) -> None:
    stub.wait_for_late(timeout=max(stub.late_seconds[1] + 5.0, 10.0))  # a late create may still be on its way
    counts = stub.sent_counts()
    result.queued = len(expected)
    result.once = sum(counts.get(key, 0) == 1 for key in expected)
    result.duplicated = sum(counts.get(key, 0) > 1 for key in expected)
    result.extra = sum(max(counts.get(key, 0) - 1, 0) for key in expected)
    result.missing = sum(counts.get(key, 0) == 0 for key in expected)
    result.unexpected = sum(n for key, n in counts.items() if key not in expected)
    result.ledger = store.queue_counts()
    result.failed = result.ledger.get("failed", 0)
    requests = stub.requests
    result.min_gap, result.early, _ = retry_gaps(requests)
    result.retry_after = stub.retry_after
    result.faults = Counter(f"{r.method or 'conn'} {r.fault}" for r in requests if r.fault)


# -- the scenarios --------------------------------------------------------------------------------------------


def stub_for(settings: Settings, seed: int, *, faults: bool) -> TwilioStub:
    mix = {"429": 0.10, "500": 0.05, "hang": 0.05, "late": settings.late_rate} if faults else {}
    return TwilioStub(
        SID, TOKEN, seed=seed, fault_mix=mix, retry_after=settings.retry_after, hang_seconds=settings.hang,
        late_seconds=settings.late, list_fault_rate=settings.list_faults if faults else 0.0, latency=0.005,
    )  # fmt: skip


def soak_once(config: str, repeat: int, settings: Settings, flags: set[str], root: Path) -> Result:
    kind, count = CONFIGS[config]
    names = [f"w{i + 1}" for i in range(count)]
    result = Result(config, repeat)
    seed = settings.seed * 1000 + repeat * 10 + list(CONFIGS).index(config)
    rng = random.Random(seed)  # noqa: S311 - reproducible kill moments, not security
    delay = 70.0 * settings.scale
    workdir = root / f"{config}-{repeat}"
    (workdir / "logs").mkdir(parents=True)
    result.logs = workdir / "logs"
    with database(kind, settings.postgres, workdir) as url:
        store = Store.from_url(url)
        try:
            began = time.monotonic()
            expected = seed_queue(store, settings.rows, datetime.now(UTC) + timedelta(hours=6))
            result.seed_seconds = time.monotonic() - began
            with stub_for(settings, seed, faults=True) as stub:
                workers = Workers(url, stub, workdir / "logs", settings, flags)
                start = time.monotonic()
                deadline = start + settings.time_limit
                rate = settings.rate or auto_rate(settings, count, delay)
                try:
                    kill_phase(workers, names, store, rng, rate, delay, deadline, result)
                    result.sent_while_killing = len(stub.sent_counts())
                    drain(workers, names, store, deadline, result)
                finally:
                    workers.kill_all()
                result.wall = time.monotonic() - start
                result.tracebacks = workers.tracebacks()
                assess(result, stub, store, expected)
        finally:
            store.close()
    return result


def server_down_once(config: str, repeat: int, seconds: float, mode: str, settings: Settings, flags: set[str],
                     root: Path) -> Result:  # fmt: skip
    kind, count = CONFIGS[config]
    names = [f"w{i + 1}" for i in range(count)]
    result = Result(config, repeat)
    workdir = root / f"down-{config}-{repeat}"
    (workdir / "logs").mkdir(parents=True)
    result.logs = workdir / "logs"
    with database(kind, settings.postgres, workdir) as url:
        store = Store.from_url(url)
        try:
            valid_until = datetime.now(UTC) + timedelta(seconds=max(5 * 3600.0, 3 * seconds))
            began = time.monotonic()
            expected = seed_queue(store, settings.rows, valid_until)
            result.seed_seconds = time.monotonic() - began
            with stub_for(settings, settings.seed + repeat, faults=False) as stub:
                workers = Workers(url, stub, workdir / "logs", settings, flags)
                start = time.monotonic()
                rate = settings.rate or max(settings.rows / 20.0, 2.0)  # about 20 s of sending, most after the outage
                running = {name: workers.start(name, rate=rate, once=False) for name in names}
                first = min(10, max(settings.rows // 10, 1))
                limit = start + 120.0
                while len(stub.messages) < first and time.monotonic() < limit:
                    time.sleep(0.02)
                stub.pause(seconds, mode=mode)
                failed_seen = 0
                deadline = time.monotonic() + seconds + min(settings.time_limit, 600.0) + 4 * settings.max_backoff
                restarts = 0
                try:
                    while time.monotonic() < deadline:
                        time.sleep(1.0)
                        failed_seen = max(failed_seen, store.queue_counts().get("failed", 0))
                        for name, run in list(running.items()):
                            if not run.alive() and restarts < 200:  # a supervisor restarts it, as systemd would
                                result.exits[run.process.returncode] += 1
                                restarts += 1
                                running[name] = workers.start(name, rate=rate, once=False)
                        if not stub.down and not waiting(store):
                            break
                    result.drained = not stub.down and not waiting(store)
                finally:
                    for run in running.values():
                        run.stop()
                    workers.kill_all()
                result.wall = time.monotonic() - start
                result.tracebacks = workers.tracebacks()
                assess(result, stub, store, expected)
                result.failed = max(result.failed, failed_seen)
                [outage] = stub.outages
                after = sum(m["created_monotonic"] >= (outage.end or 0.0) for m in stub.messages)
                result.note = f"down {seconds:.0f} s ({mode}); {after} delivered after it; failed ever {failed_seen}"
        finally:
            store.close()
    return result


# -- the report -----------------------------------------------------------------------------------------------

HEADER = (
    f"{'config':<9} {'rep':>3} {'queued':>6} {'once':>6} {'dup':>4} {'extra':>5} {'miss':>5} {'unexp':>5} "
    f"{'failed':>6} {'429->next min/RA':>16} {'early':>5} {'kills':>5} {'exits':>13} {'tb':>3} {'wall s':>7}  verdict"
)


def line(r: Result, rep: str) -> str:
    gap = "-" if r.min_gap is None else f"{r.min_gap:.2f}/{r.retry_after}"
    exits = ",".join(f"{code}x{n}" for code, n in sorted(r.exits.items())) or "-"
    verdict = "ok" if r.ok else "FAIL" + ("" if r.drained else " (not drained)")
    return (
        f"{r.config:<9} {rep:>3} {r.queued:>6} {r.once:>6} {r.duplicated:>4} {r.extra:>5} {r.missing:>5} "
        f"{r.unexpected:>5} {r.failed:>6} {gap:>16} {r.early:>5} {r.kills:>5} {exits:>13} {r.tracebacks:>3} "
        f"{r.wall:>7.1f}  {verdict}"
    )


def total(config: str, results: list[Result]) -> Result:
    gaps = [r.min_gap for r in results if r.min_gap is not None]
    summed = Result(config, 0, drained=all(r.drained for r in results))
    for r in results:
        for name in ("queued", "once", "duplicated", "extra", "missing", "unexpected", "failed", "early", "kills"):
            setattr(summed, name, getattr(summed, name) + getattr(r, name))
        summed.tracebacks += r.tracebacks
        summed.exits.update(r.exits)
        summed.wall += r.wall
        summed.retry_after = r.retry_after
    summed.min_gap = min(gaps) if gaps else None
    return summed


def settings_from(args: argparse.Namespace) -> Settings:
    quick = args.quick
    rows = args.rows or (300 if quick else (100 if args.server_down is not None else 2100))
    low, _, high = args.late.partition(",")
    late = (float(low), float(high or low))
    return Settings(
        rows=rows, kills=args.kills or (5 if quick else 24), scale=args.scale or (0.1 if quick else 1.0),
        seed=args.seed, lease=args.lease, timeout=args.timeout, batch=args.batch, rate=args.rate,
        retry_after=args.retry_after, hang=args.hang, late=late, late_rate=args.late_rate,
        list_faults=args.list_faults, settle=args.settle if args.settle is not None else late[1] + 1.0,
        max_backoff=args.max_backoff, extra=tuple(args.send_arg), time_limit=args.time_limit, postgres=args.postgres,
        keep_logs=args.keep_logs,
    )  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="~1 min: 300 rows, 5 kills, 1 repeat, --scale 0.1")
    parser.add_argument("--configs", default=",".join(CONFIGS), help=f"comma list of {', '.join(CONFIGS)}")
    parser.add_argument("--repeats", type=int, default=None, help="runs per configuration (default 3; quick 1)")
    parser.add_argument("--rows", type=int, default=None, help="queued SMS (default 2,100; quick 300; down 100)")
    parser.add_argument("--kills", type=int, default=None, help="SIGKILLs per run (default 24; quick 5)")
    parser.add_argument("--scale", type=float, default=None, help="factor on the 70 s delayed restart (quick 0.1)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the faults and the kill moments")
    parser.add_argument("--lease", type=float, default=2.0, help="ews send --lease (s)")
    parser.add_argument("--timeout", type=float, default=0.5, help="ews send --timeout (s): hangs last longer")
    parser.add_argument("--batch", type=int, default=20, help="ews send --batch")
    parser.add_argument("--rate", type=float, default=None, help="--rate-sms per worker while killing (default: auto)")
    parser.add_argument("--retry-after", type=int, default=2, help="Retry-After of the stub's 429s (s)")
    parser.add_argument("--hang", type=float, default=1.0, help="seconds a held answer waits (past --timeout)")
    parser.add_argument("--late", default="1.0,3.0", help="seconds after arrival a late create appears: LOW,HIGH")
    parser.add_argument("--late-rate", type=float, default=0.02, help="fraction of creates that are late")
    parser.add_argument("--list-faults", type=float, default=0.0, help="fraction of list calls answering 429/500")
    parser.add_argument("--settle", type=float, default=None, help="ews send --settle if known (default: late + 1)")
    parser.add_argument("--max-backoff", type=float, default=10.0, help="ews send --max-backoff if known (s)")
    parser.add_argument("--send-arg", action="append", default=[], help="extra ews send argument (repeatable)")
    parser.add_argument("--time-limit", type=float, default=1800.0, help="seconds per run before giving up")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="PostgreSQL admin URL on 127.0.0.1")
    parser.add_argument("--server-down", type=float, default=None, metavar="SECONDS", help="the outage scenario")
    parser.add_argument("--down-mode", choices=("refuse", "reset"), default="refuse", help="how the stub is down")
    parser.add_argument("--keep-logs", action="store_true", help="keep every worker's output")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.configs.split(",")) - set(CONFIGS))
    if unknown:
        parser.error(f"unknown configuration(s) {unknown}; use some of {', '.join(CONFIGS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = settings_from(args)
    configs = args.configs.split(",")
    repeats = args.repeats or (1 if args.quick or args.server_down is not None else 3)
    if any(CONFIGS[c][0] == "postgresql" for c in configs):
        check_loopback(settings.postgres)
    flags = send_flags()
    root = Path(tempfile.mkdtemp(prefix="ews-soak-"))
    passed = [f for f in ("--settle", "--max-backoff") if f in flags]
    if args.server_down is None:
        what = (
            f"{settings.kills} kills, scale {settings.scale} (delayed restart {70 * settings.scale:.0f} s), "
            f"late creates {settings.late} s, Retry-After {settings.retry_after} s, list faults {settings.list_faults}"
        )
    else:
        what = f"server down {args.server_down:.0f} s ({args.down_mode}), no other fault"
    print(
        f"dispatch soak: {settings.rows} rows, {what}, seed {settings.seed}, lease {settings.lease} s, timeout "
        f"{settings.timeout} s; ews send also gets {passed or 'no extra options'}; logs in {root}",
        flush=True,
    )
    print(HEADER, flush=True)
    results: dict[str, list[Result]] = {}
    try:
        for repeat in range(1, repeats + 1):
            for config in configs:
                if args.server_down is not None:
                    result = server_down_once(config, repeat, args.server_down, args.down_mode, settings, flags, root)
                else:
                    result = soak_once(config, repeat, settings, flags, root)
                results.setdefault(config, []).append(result)
                print(line(result, str(repeat)), flush=True)
                details = [result.note] if result.note else []
                details.append(f"ledger {dict(sorted(result.ledger.items()))}")
                details.append(f"faults {dict(sorted(result.faults.items()))}")
                if args.server_down is None:
                    details.append(f"{result.sent_while_killing} sent while killing")
                details.append(f"seeded in {result.seed_seconds:.1f} s")
                print("          " + "; ".join(details), flush=True)
    finally:
        print()
        print(HEADER)
        for config, runs in results.items():
            print(line(total(config, runs), "all"))
    ok = all(r.ok and (args.server_down is None or not r.failed) for runs in results.values() for r in runs)
    if ok and not settings.keep_logs:
        shutil.rmtree(root, ignore_errors=True)
    else:
        print(f"worker logs kept in {root}")
    print("PASS: no duplicate, none missing, Retry-After honoured" if ok else "FAIL: see the verdict column")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

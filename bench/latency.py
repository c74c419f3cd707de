"""Latency through the scheduled DAGs: a new BMKG CAP appearing on the (loopback) site -> first message accepted.

Airflow runs as `make airflow` (LocalExecutor, SQLite) and as `make airflow-celery` (CeleryExecutor, PostgreSQL
metadata and store, Redis broker, a Celery worker) start it, with the ews DAGs unpaused and nobody triggering
anything: Airflow's triggerer looks at the site's index every 15 s (``BmkgIndexTrigger``) and ``ews_bmkg_nowcast``
runs on what it sees (and every 2 minutes), ``ews_alerts`` runs on its asset event, ``ews_dispatch`` on the
ledger's, and the local Twilio-compatible server (the real ``twilio`` client talks to it) records when each
message is accepted.

The site is www.bmkg.go.id's layout on 127.0.0.1 (:class:`ews.testing.airflow_stack.NowcastSite`). ``--n``
warnings (default 10) are published one after another, ``--every`` seconds apart on average (default 75, with
a seeded jitter so that they fall at every phase of the 2-minute poll). Each is the recorded Gorontalo CAP
(CGT20260924002, shared data) re-sent now for one other kecamatan: BMKG draws its areas from a fixed library of
kecamatan shapes, so warning *k* carries kecamatan *k*'s outline and names it; one fictional subscriber lives
in each kecamatan. Warning *k*'s latency is from the moment its file and index appear to the first message
accepted for its kecamatan.

Each latency is split into:

- **poll wait**: from the appearance to the creation of the poll run that found it: the triggerer's next look
  (0-15 s) and the asset event it becomes, or the 2-minute tick, whichever came first;
- **Airflow**: the rest of the time no ews task was running: scheduling the runs, queueing, starting the task
  processes, the asset events between the three DAGs;
- **ews tasks**: the time ews's tasks (poll, staged/assess/publish/queued/announce, deliver up to the message's
  acceptance) were running, taken from the task instances' start and end in Airflow's REST API.

The named alternative, measured in the same run: **direct**, the same work without a scheduler: ``ews run`` on
the site's index as soon as the warning appears, then ``ews send --once``, as subprocesses (``--direct`` times,
default 3).

Goal (issue 12): at most 60 s from BMKG's appearance to the first accepted message on LocalExecutor.

Run:  .venv/bin/python bench/latency.py [--n 10] [--every 75] [--executors local,celery] [--direct 3]
      [--postgres postgresql://postgres@127.0.0.1:5432/postgres]  (Celery also needs Redis on 127.0.0.1:6379)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from shapely.geometry import shape

from ews.testing.airflow_stack import AirflowStack, Api, NowcastSite, redis_up, wait_for
from ews.testing.regions import write_subscribed_region
from ews.testing.retime import retimed_cap
from ews.testing.twilio_server import TwilioStub

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EWS_SHARED_DATA") or REPO.parent / "shared" / "data")
CAP = SHARED / "bmkg" / "cap" / "siaga_cap-id-CGT20260924002_alert.xml"
LAYER = SHARED / "boundaries" / "wilayah_boundaries_geojson" / "kec" / "wilayah_boundaries_kec_75.geojson"
WITA = timezone(timedelta(hours=8), "WITA")
SENDER = "+15005550006"
GOAL_S = 60.0
DEFAULT_POSTGRES = os.environ.get("EWS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@dataclass
class Kecamatan:
    code: str
    name: str
    polygon: str  # BMKG's "lat,lon lat,lon ..." with 3 decimals
    phone: str


@dataclass
class Sample:
    """One warning's way through: when it appeared, when its first message was accepted, and the split."""

    k: int
    appeared: float
    accepted: float | None = None
    split: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> float | None:
        return None if self.accepted is None else self.accepted - self.appeared


def kecamatan() -> list[Kecamatan]:
    """Gorontalo's kecamatan in code order, each with a simplified outline and one fictional subscriber; only
    those that touch none taken before, so that each warning is a threat of its own (BMKG's successor rule:
    a new warning over an active one's area continues it)."""
    out = []
    taken: list[Any] = []
    for i, feature in enumerate(
        sorted(json.loads(LAYER.read_text())["features"], key=lambda f: f["properties"]["kode"])
    ):
        geom = shape(feature["geometry"])
        if geom.geom_type == "MultiPolygon":
            geom = max(geom.geoms, key=lambda g: g.area)
        outline = geom.simplify(0.002)
        if any(outline.buffer(0.01).intersects(other) for other in taken):
            continue
        taken.append(outline)
        ring = list(outline.exterior.coords)
        text = " ".join(f"{lat:.3f},{lon:.3f}" for lon, lat in ring)
        props = feature["properties"]
        out.append(Kecamatan(props["kode"], props["nama"], text, f"+62899930{i:05d}"))
    return out


def region_file(folder: Path, places: list[Kecamatan]) -> Path:
    return write_subscribed_region(folder, LAYER, [(k.phone, k.code) for k in places])


def warning(template: str, place: Kecamatan, seq: int, now: datetime) -> tuple[str, bytes, str]:
    """The recorded CAP re-sent at ``now`` for ``place`` only: (file name, CAP bytes, title)."""
    local = now.astimezone(WITA).replace(microsecond=0)
    ident = f"2.49.0.1.360.0.{local:%Y.%m.%d.%H}.75.{seq:03d}"
    text = retimed_cap(template.encode(), local).decode()  # effective 20 min later, expires 2 h after that
    text = re.sub(r"<identifier>[^<]+</identifier>", f"<identifier>{ident}</identifier>", text)
    text = re.sub(r"khususnya di [^.]+\.", f"khususnya di {place.name.upper()}.", text)
    polygons = re.compile(r"(\s*<polygon>[^<]*</polygon>)+")
    text = polygons.sub(f"\n      <polygon>{place.polygon}</polygon>", text, count=1)
    return f"CGT{local:%Y%m%d}{seq:03d}_alert.xml", text.encode(), f"Hujan Lebat disertai Petir di {place.name}"


def watch_arrivals(stub: TwilioStub, first: dict[str, float], stop: threading.Event) -> None:
    """Note when the first message to each number is accepted (polling the stub every 50 ms)."""
    while not stop.is_set():
        for m in stub.messages:
            first.setdefault(m["to"], time.time())
        stop.wait(0.05)


def _instant(text: str | None) -> float | None:
    return None if not text else datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def union_within(intervals: list[tuple[float, float]], lo: float, hi: float) -> float:
    """Seconds of [lo, hi] covered by the union of ``intervals``."""
    clipped = sorted((max(a, lo), min(b, hi)) for a, b in intervals if min(b, hi) > max(a, lo))
    covered, end = 0.0, lo
    for a, b in clipped:
        if b > end:
            covered += b - max(a, end)
            end = b
    return covered


def split(api: Api, samples: list[Sample]) -> None:
    """Fill each sample's poll wait / Airflow / ews-task split from the DAG runs and task instances."""
    tis: dict[str, list[tuple[float, float, str]]] = {}
    ticks: list[float] = []
    for dag in ("ews_bmkg_nowcast", "ews_alerts", "ews_dispatch"):
        spans = []
        for run in api.runs(dag):
            if dag == "ews_bmkg_nowcast" and run.get("run_after"):
                ticks.append(_instant(run["run_after"]) or 0.0)
            for ti in api.task_instances(dag, run["dag_run_id"]):
                start, end = _instant(ti.get("start_date")), _instant(ti.get("end_date"))
                if start is not None:
                    spans.append((start, end if end is not None else time.time(), ti["task_id"]))
        tis[dag] = spans
    ticks.sort()
    for s in samples:
        if s.accepted is None:
            continue
        # The poll that found it: the first poll whose poll task began after the warning appeared.
        polls = sorted(a for a, _, task in tis["ews_bmkg_nowcast"] if task == "poll" and a >= s.appeared)
        began = polls[0] if polls else s.appeared
        tick = max([t for t in ticks if t <= began + 1e-6] or [s.appeared])
        wait = max(0.0, tick - s.appeared)
        window_start = s.appeared + wait
        running = union_within([(a, b) for spans in tis.values() for a, b, _ in spans], window_start, s.accepted)
        s.split = {"poll wait": wait, "Airflow": s.accepted - window_start - running, "ews tasks": running}


def describe(values: list[float]) -> str:
    return f"median {statistics.median(values):5.1f} s, worst {max(values):5.1f} s" if values else "no data"


def run_airflow(executor: str, args: argparse.Namespace, places: list[Kecamatan], template: str) -> list[Sample]:
    folder = Path(tempfile.mkdtemp(prefix=f"ews-latency-{executor}-"))
    site = NowcastSite(folder / "site")
    stub = TwilioStub().start()
    arrivals: dict[str, float] = {}
    stop = threading.Event()
    threading.Thread(target=watch_arrivals, args=(stub, arrivals, stop), daemon=True).start()
    samples: list[Sample] = []
    postgres = args.postgres if executor == "celery" else None
    try:
        with AirflowStack(
            REPO, folder, executor, postgres_admin=postgres, venv=Path(sys.executable).parents[1]
        ) as stack:
            stack.env.update(
                EWS_REGION=str(region_file(folder, places)), EWS_CAP_SOURCE="bmkg", EWS_BMKG_BASE_URL=site.url,
                EWS_BMKG_TEWS_URL=site.url + "/tews/", EWS_WORK_DIR=str(folder / "work"),
                EWS_OUT_DIR=str(folder / "out"),
                AIRFLOW_CONN_TWILIO_DEFAULT=stub.airflow_connection(SENDER),
            )  # fmt: skip
            stack.start()
            print(f"[{executor}] Airflow up at {stack.url}; publishing {args.n} warnings", flush=True)
            time.sleep(20)  # the first scheduled runs (empty index) settle
            rng = random.Random(f"latency/{executor}")  # noqa: S311 - jitter, not security
            for k in range(args.n):
                place = places[k]
                name, cap, title = warning(template, place, 100 + k, datetime.now(UTC))
                site.publish(name, cap, title, datetime.now(UTC))
                samples.append(Sample(k, time.time()))
                print(f"[{executor}] warning {k + 1}/{args.n} for {place.name} published", flush=True)
                if k + 1 < args.n:
                    time.sleep(args.every * rng.uniform(0.7, 1.3))
            wait_for(
                "the last warnings' first messages",
                lambda: all(places[s.k].phone in arrivals for s in samples),
                timeout=420,
                every=1,
            )
            for s in samples:
                s.accepted = arrivals.get(places[s.k].phone)
            split(stack.api(), samples)
    except AssertionError as exc:
        print(f"[{executor}] {exc}", flush=True)
        for s in samples:
            s.accepted = arrivals.get(places[s.k].phone)
    finally:
        stop.set()
        stub.stop()
        site.stop()
    return samples


def run_direct(args: argparse.Namespace, places: list[Kecamatan], template: str) -> list[float]:
    """``ews run`` on the index as soon as a warning appears, then ``ews send --once``: seconds to the first message."""
    folder = Path(tempfile.mkdtemp(prefix="ews-latency-direct-"))
    site = NowcastSite(folder / "site")
    stub = TwilioStub().start()
    region = region_file(folder, places)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "EWS_", "TWILIO_"))}
    env.update(
        EWS_DATABASE_URL=f"sqlite:///{folder / 'ews.db'}", TWILIO_ACCOUNT_SID=stub.account_sid,
        TWILIO_AUTH_TOKEN=stub.auth_token, EWS_TWILIO_BASE_URL=stub.url, EWS_TWILIO_SMS_FROM=SENDER,
        EWS_BMKG_BASE_URL=site.url,
    )  # fmt: skip
    ews = str(Path(sys.executable).parent / "ews")
    out = []
    try:
        for k in range(args.direct):
            place = places[len(places) - 1 - k]
            name, cap, title = warning(template, place, 200 + k, datetime.now(UTC))
            site.publish(name, cap, title, datetime.now(UTC))
            appeared = time.time()
            subprocess.run(  # noqa: S603 - ews itself
                [ews, "run", "--region", str(region), "--cap", "bmkg", "--queue-only",
                 "--out", str(folder / "out"), "--cache-dir", str(folder / "cache"), "-q"],
                env=env, check=True, capture_output=True,
            )  # fmt: skip
            send = [ews, "send", "--once", "--max-wait", "30"]
            subprocess.run(send, env=env, check=True, capture_output=True)  # noqa: S603 - ews itself
            firsts = [m for m in stub.messages if m["to"] == place.phone]
            if not firsts:
                raise SystemExit(f"direct run {k + 1}: no message for {place.name}; see {folder}")
            out.append(time.time() - appeared)  # an upper bound: the message was accepted before send returned
            print(f"[direct] warning {k + 1}/{args.direct}: {out[-1]:.1f} s", flush=True)
    finally:
        stub.stop()
        site.stop()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10, help="warnings per executor (default 10)")
    parser.add_argument("--every", type=float, default=75.0, help="mean seconds between warnings (default 75)")
    parser.add_argument("--executors", default="local,celery", help="local, celery or both (default)")
    parser.add_argument("--direct", type=int, default=3, help="direct (no scheduler) runs (default 3)")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="PostgreSQL admin URL for the Celery stack")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # a kill still stops Airflow and drops its databases
    for path in (CAP, LAYER):
        if not path.exists():
            raise SystemExit(f"{path} is missing: set EWS_SHARED_DATA to the shared data folder")
    executors = [e.strip() for e in args.executors.split(",") if e.strip()]
    if "celery" in executors and not redis_up():
        raise SystemExit("Redis is not running on 127.0.0.1:6379 (the Celery broker): start it or --executors local")
    places = kecamatan()
    if args.n > len(places) or args.direct > len(places) - args.n:
        raise SystemExit(f"at most {len(places)} warnings in all (one per Gorontalo kecamatan)")
    template = CAP.read_text(encoding="utf-8")
    direct = run_direct(args, places, template) if args.direct else []
    results = {e: run_airflow(e, args, places, template) for e in executors}
    print("\nBMKG <sent> on the site -> first message accepted by the local Twilio server")
    if direct:
        print(f"  direct (ews run + ews send --once, no scheduler): {describe(direct)}  (n={len(direct)})")
    for executor, samples in results.items():
        totals = [s.total for s in samples if s.total is not None]
        missing = sum(1 for s in samples if s.total is None)
        print(f"  {executor:6}: {describe(totals)}  (n={len(totals)}{f', {missing} never arrived' if missing else ''})")
        for part in ("poll wait", "Airflow", "ews tasks"):
            values = [s.split[part] for s in samples if s.split]
            print(f"      {part:10}: {describe(values)}")
        after_tick = [s.split["Airflow"] + s.split["ews tasks"] for s in samples if s.split]
        if after_tick:
            print(f"      after the poll's tick: {describe(after_tick)}")
        if direct and totals:
            ratio = statistics.median(totals) / statistics.median(direct)
            print(f"      ratio of medians {executor} / direct: {ratio:.1f}x")
        if executor == "local" and totals:
            verdict = (
                "met"
                if max(totals) <= GOAL_S
                else ("met by the median only" if statistics.median(totals) <= GOAL_S else "not met")
            )
            print(f"      goal <= {GOAL_S:.0f} s on LocalExecutor: {verdict}")
        for s in samples:
            shown = ", ".join(f"{k} {v:.1f}" for k, v in s.split.items())
            print(f"      #{s.k + 1}: {'-' if s.total is None else f'{s.total:.1f} s'}  {shown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The distributed engine, really run: kill the Celery worker in the middle of ``ews_dispatch``, start another one,
and every message is delivered exactly once.

`make airflow-celery`'s script starts the scheduler, dag-processor, triggerer and API server on PostgreSQL metadata
with a Redis broker, but no worker (``EWS_AIRFLOW_CELERY_WORKER=0``); the test starts the worker itself
(``scripts/airflow-celery.sh worker``, as on another machine) so that it can kill it with SIGKILL, as a machine
lost: the worker, its pool and the task process it runs. The local Twilio-compatible server answers each message
0.3 s after creating it, so the kill lands while sends are in flight: messages Twilio accepted but ews never
heard about. Airflow fails the dead task after its heartbeat timeout and retries it on the new worker; the
dispatcher takes over the lost leases and settles the unknown outcomes against Twilio's record before anything is
sent again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
from pathlib import Path
from typing import Any

import psutil
import pytest
from conftest import REPO
from sqlalchemy import func, select
from test_dag_delivery import SENDER, live_site
from test_dag_scheduler import airflow_services

from ews.store.models import LEDGER_STATUSES, LedgerEntry
from ews.store.repository import Store
from ews.testing.airflow_stack import Api, wait_for
from ews.testing.regions import write_subscribed_region
from ews.testing.twilio_server import TwilioStub

__all__ = ["live_site"]  # the fixture, imported for pytest

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

PER_KECAMATAN = 12
"""Fictional SMS subscribers per kecamatan: enough messages for a send that takes half a minute."""


@pytest.fixture
def crowded_gorontalo(tmp_path: Path, kec_dir: Path) -> tuple[Path, list[str]]:
    """The Gorontalo kecamatan, :data:`PER_KECAMATAN` fictional SMS subscribers each; the region file, numbers."""
    layer = kec_dir / "wilayah_boundaries_kec_75.geojson"
    codes = [f["properties"]["kode"] for f in json.loads(layer.read_text())["features"]]
    phones = [f"+628999{i:03d}{j:04d}" for i in range(len(codes)) for j in range(PER_KECAMATAN)]
    pairs = [(phone, codes[n // PER_KECAMATAN]) for n, phone in enumerate(phones)]
    return write_subscribed_region(tmp_path, layer, pairs), phones


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``scripts/airflow-celery.sh worker``: one Celery worker with the deployment's settings, in its own session."""
    return subprocess.Popen(
        ["bash", str(REPO / "scripts" / "airflow-celery.sh"), "worker"], env=env, cwd=REPO,
        stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def kill_hard(process: subprocess.Popen[bytes]) -> int:
    """SIGKILL a process and everything under it (a lost machine: no handler runs); returns how many died."""
    tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
    for p in tree:
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    psutil.wait_procs(tree, timeout=30)
    return len(tree)


def ledger(store: Store) -> dict[str, int]:
    """Messages to residents (ledger rows not grouped into another row's message) by status. (The region's Tagana
    notices are not counted: it lists no Tagana contact, so they fail at once as ``no-contact``, as reported.)"""
    e = LedgerEntry
    with store.engine.connect() as connection:
        mine = e.grouped_into.is_(None) & (e.audience == "resident")
        rows = connection.execute(select(e.status, func.count()).where(mine).group_by(e.status))
        return {status: 0 for status in LEDGER_STATUSES} | {status: int(n) for status, n in rows}


def not_sent(store: Store) -> list[tuple[str, str | None, int | None]]:
    e = LedgerEntry
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(e.status, e.error, e.grouped_into).where(e.status != "sent", e.audience == "resident")
        )
        return [(status, error, grouped) for status, error, grouped in rows]


def test_killing_the_celery_worker_mid_dispatch_delivers_every_message_once(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    live_site: str,
    crowded_gorontalo: tuple[Path, list[str]],
) -> None:
    region, phones = crowded_gorontalo
    stub = TwilioStub(latency=0.3).start()
    workers: list[subprocess.Popen[bytes]] = []
    try:
        with airflow_services(request, tmp_path, "celery") as (env, start):
            env.update(
                EWS_REGION=str(region), EWS_CAP_SOURCE="bmkg", EWS_BMKG_BASE_URL=live_site,
                EWS_BMKG_TEWS_URL=live_site + "/tews/", EWS_WORK_DIR=str(tmp_path / "work"),
                EWS_OUT_DIR=str(tmp_path / "out"), EWS_AIRFLOW_CELERY_WORKER="0",
                # A dead worker's task is failed after 20 s without a heartbeat (make airflow: 60 s), its rows'
                # leases end after 30 s and an unknown outcome is settled 10 s later (defaults: 120 s each).
                AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT="20",
                AIRFLOW_VAR_EWS_DISPATCH_LEASE_SECONDS="30", AIRFLOW_VAR_EWS_DISPATCH_SETTLE_SECONDS="10",
                AIRFLOW_CONN_TWILIO_DEFAULT=stub.airflow_connection(SENDER),
            )  # fmt: skip
            banner = start()
            url, password = banner.split()[3], banner.split()[-1].rstrip(")")
            workers.append(start_worker(env, tmp_path / "worker-1.log"))

            # The poll finds the CAP, ews_alerts queues its messages, ews_dispatch starts sending them.
            wait_for("the first messages at the Twilio stand-in", lambda: len(stub.messages) >= 5, timeout=420,
                     every=0.2)  # fmt: skip
            died = kill_hard(workers[0])
            accepted_before = len(stub.messages)
            store = Store.from_url(env["EWS_DATABASE_URL"])
            try:
                during = ledger(store)
                total = sum(during.values())
                assert during["queued"] + during["sending"] > 0, during  # killed in the middle, work left
                assert accepted_before < total, (accepted_before, during)
                time.sleep(3)
                assert len(stub.messages) == accepted_before  # nobody sends while no worker runs

                workers.append(start_worker(env, tmp_path / "worker-2.log"))

                def settled() -> dict[str, int] | None:
                    now = ledger(store)
                    return now if now["queued"] + now["sending"] + now["unsure"] == 0 else None

                after = wait_for("every ledger row settled after the restart", settled, timeout=480)
                leftovers = not_sent(store)
            finally:
                store.close()
            assert after["sent"] == total, (after, leftovers)
            assert sum(after.values()) == total  # nothing queued meanwhile, nothing lost
            counts = stub.sent_counts()
            assert len(stub.messages) == total, (len(stub.messages), after)
            assert max(counts.values()) == 1  # every message once: none lost, none twice
            assert {m["to"] for m in stub.messages} <= set(phones)

            # Airflow saw the loss: the task that died was failed by the scheduler and run again.
            api = Api(url, password)
            runs = api.call("GET", "/api/v2/dags/ews_dispatch/dagRuns?limit=100")["dag_runs"]
            tries: list[dict[str, Any]] = []
            for run in runs:
                tis = api.call("GET", f"/api/v2/dags/ews_dispatch/dagRuns/{run['dag_run_id']}/taskInstances")
                tries += [ti for ti in tis["task_instances"] if ti["task_id"] == "deliver"]
            assert any(ti["try_number"] > 1 for ti in tries), [(t["try_number"], t["state"]) for t in tries]
            reports = []
            for run in runs:
                try:
                    entry = api.call("GET", f"/api/v2/dags/ews_dispatch/dagRuns/{run['dag_run_id']}/taskInstances"
                                     "/deliver/xcomEntries/return_value")  # fmt: skip
                except urllib.error.HTTPError:
                    continue  # the killed try returned nothing
                value = entry["value"]
                reports.append(json.loads(value) if isinstance(value, str) else value)
            settled = {k: sum(r.get(k, 0) for r in reports) for k in ("sent", "reconciled_sent", "reconciled_requeued")}
            assert settled["sent"] + settled["reconciled_sent"] >= total - accepted_before
            print(f"killed {died} processes with {accepted_before} of {total} messages accepted; after the restart: "
                  f"{settled}; ledger: {after}")  # fmt: skip
    finally:
        for worker in workers:
            if worker.poll() is None:
                kill_hard(worker)
        stub.stop()

"""Through the scheduler (``make airflow``'s script, not ``dags test``), on LocalExecutor and on Celery.

A new BMKG CAP on a loopback site in BMKG's layout -> ``ews_bmkg_nowcast``'s poll -> ``ews_alerts`` -> Waspada
delivered by ``ews_dispatch`` at once, Siaga held -> ``ews_review`` asks an operator (Airflow human-in-the-loop) ->
the answer, given through Airflow's REST API, releases it -> delivered to the local Twilio-compatible server, once.
``ews alerts approve`` afterwards finds nothing left to decide.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from conftest import REPO, require
from test_dag_delivery import SENDER, live_site, subscribed_gorontalo
from test_dag_run import airflow_env

from ews.cli import main
from ews.testing.twilio_server import TwilioStub

__all__ = ["live_site", "subscribed_gorontalo"]  # fixtures, imported for pytest

pytestmark = [pytest.mark.airflow, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(what: str, check: Callable[[], Any], timeout: float = 240.0, every: float = 2.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class Api:
    """Airflow's REST API as the admin (simple auth manager), on loopback."""

    def __init__(self, base: str, password: str) -> None:
        self.base = base
        token = self.call("POST", "/auth/token", {"username": "admin", "password": password}, auth=False)
        self.token = token["access_token"]

    def call(self, method: str, path: str, body: object = None, *, auth: bool = True) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read().decode()
        return json.loads(text) if text else None


@pytest.fixture(params=["local", "celery"])
def airflow_up(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[dict[str, str], Callable[[], str]]]:
    """Start `make airflow`'s script (LocalExecutor, SQLite) or `make airflow-celery`'s (CeleryExecutor: PostgreSQL
    metadata, Redis broker, a Celery worker), each in its own AIRFLOW_HOME and databases; stop it afterwards."""
    with airflow_services(request, tmp_path, request.param) as up:
        yield up


@contextlib.contextmanager
def airflow_services(
    request: pytest.FixtureRequest, tmp_path: Path, executor: str
) -> Iterator[tuple[dict[str, str], Callable[[], str]]]:
    """``(env, start)``: the environment of `make airflow` (``local``) or `make airflow-celery` (``celery``) in
    tmp_path, and ``start()``, which starts it and returns its banner; everything is stopped and dropped after."""
    home = tmp_path / "airflow-home"
    env = airflow_env(home)
    env.update(EWS_AIRFLOW_PORT=str(free_port()), EWS_VENV=str(Path(sys.executable).parent.parent))
    script = "airflow-local.sh"
    created: list[str] = []
    postgres_admin = ""
    if executor == "celery":
        postgres_admin = request.getfixturevalue("postgres_admin")
        require(importlib.util.find_spec("airflow.providers.celery") is not None,
                "the celery provider is not installed: pip install -e '.[celery]'")  # fmt: skip
        require(redis_up(), "Redis is not running on 127.0.0.1:6379 (the Celery broker)")
        name = f"ews_test_{uuid.uuid4().hex[:10]}"
        created = [f"{name}_airflow", f"{name}_store"]
        base = postgres_admin.rsplit("/", 1)[0]
        env.update(
            EWS_AIRFLOW_DB=f"{base.replace('postgresql://', 'postgresql+psycopg://')}/{created[0]}",
            EWS_DATABASE_URL=f"{base}/{created[1]}", EWS_AIRFLOW_BROKER=f"redis://127.0.0.1:6379/{free_redis_db()}",
        )  # fmt: skip
        script = "airflow-celery.sh"
    else:
        env["EWS_DATABASE_URL"] = f"sqlite:///{tmp_path / 'work' / 'ews.db'}"
    log = tmp_path / "airflow-local.log"
    handle = log.open("w")
    process: subprocess.Popen[bytes] | None = None

    def start() -> str:
        nonlocal process
        process = subprocess.Popen(
            ["bash", str(REPO / "scripts" / script)], env=env, cwd=REPO, stdout=handle,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

        def ready() -> str | None:
            assert process is not None
            if process.poll() is not None:
                raise AssertionError(f"make airflow's script stopped:\n{log.read_text()[-4000:]}")
            lines = [x for x in log.read_text().splitlines() if x.startswith("Airflow for ews: ")]
            return lines[-1] if lines else None

        return str(wait_for("Airflow to start", ready, timeout=180))

    try:
        yield env, start
    finally:
        if process is not None and process.poll() is None:
            stop_group(process)
        handle.close()
        if created:
            admin = sqlalchemy.create_engine(postgres_admin, isolation_level="AUTOCOMMIT")
            with admin.connect() as connection:
                for db_name in created:
                    connection.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
            admin.dispose()


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """Stop a process started in its own session, and everything it started: TERM, then KILL after a minute."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def free_redis_db() -> int:
    """A Redis database number of its own (0-15) for this test's broker, so runs do not share queues."""
    return 1 + uuid.uuid4().int % 15


def test_the_scheduler_takes_a_warning_through_review_to_phones(
    airflow_up: tuple[dict[str, str], Callable[[], str]],
    tmp_path: Path,
    live_site: str,
    subscribed_gorontalo: tuple[Path, list[str]],
) -> None:
    env, start = airflow_up
    region, phones = subscribed_gorontalo
    region.write_text(region.read_text() + "alerts: {review_levels: [Siaga, Awas]}\n")
    stub = TwilioStub().start()
    try:
        env.update(
            EWS_REGION=str(region), EWS_CAP_SOURCE="bmkg", EWS_BMKG_BASE_URL=live_site,
            EWS_BMKG_TEWS_URL=live_site + "/tews/", EWS_WORK_DIR=str(tmp_path / "work"),
            EWS_OUT_DIR=str(tmp_path / "out"),
            AIRFLOW_CONN_TWILIO_DEFAULT=json.dumps(
                {"conn_type": "generic", "login": stub.account_sid, "password": stub.auth_token,
                 "extra": {"base_url": stub.url, "sms_from": SENDER}}
            ),
        )  # fmt: skip
        banner = start()
        url, password = banner.split()[3], banner.split()[-1].rstrip(")")
        assert url.startswith("http://127.0.0.1:")
        api = Api(url, password)
        paused = {d["dag_id"]: d["is_paused"] for d in api.call("GET", "/api/v2/dags?limit=50")["dags"]}
        assert paused == dict.fromkeys(
            (
                "ews_alerts",
                "ews_bmkg_nowcast",
                "ews_dispatch",
                "ews_forecast",
                "ews_nowcast",
                "ews_quakes",
                "ews_rain",
                "ews_review",
                "ews_watch",
            ),
            False,
        )  # every ews DAG unpaused, no example DAG

        # Nobody triggers anything: ews_bmkg_nowcast's poll (every 2 min) finds the new CAP and ews_alerts takes it.
        # Tolinggula's Waspada goes out at once (ews_dispatch on the ledger asset); Siaga waits for a person.
        first = wait_for("the Waspada message at the Twilio stand-in", lambda: stub.messages, timeout=360)
        assert all(m["body"].startswith("BMKG WASPADA") for m in first)

        def question() -> dict[str, Any] | None:
            runs = api.call("GET", "/api/v2/dags/ews_review/dagRuns?limit=10")["dag_runs"]
            for run in runs:
                details = api.call("GET", f"/api/v2/dags/ews_review/dagRuns/{run['dag_run_id']}/hitlDetails")
                for d in details.get("hitl_details", []):
                    # Answer only once the task waits for it: Airflow 3.3 loses an answer that lands while the
                    # task is still pausing (it runs the question again and waits for a second answer).
                    state = (d.get("task_instance") or {}).get("state")
                    if not d.get("response_received") and state in ("awaiting_input", "deferred"):
                        return {"run": run["dag_run_id"], **d}
            return None

        asked = wait_for("ews_review's question", question)
        time.sleep(2)  # a person reads before answering; the pause has settled in the metadata database
        assert "SIAGA" in asked["subject"]
        assert all(p not in json.dumps(asked) for p in phones)  # the question carries no personal data
        ti = asked["task_instance"]
        api.call(
            "PATCH",
            f"/api/v2/dags/ews_review/dagRuns/{asked['run']}/taskInstances/{ti['task_id']}/{ti['map_index']}"
            "/hitlDetails",
            {"chosen_options": ["Approve"]},
        )
        everyone = wait_for(
            "the approved Siaga messages", lambda: [m for m in stub.messages if m["body"].startswith("BMKG SIAGA")]
        )
        assert {m["to"] for m in everyone} <= set(phones)
        time.sleep(70)  # a minute of scheduled ews_dispatch runs: nothing is sent twice
        counts = stub.sent_counts()
        assert max(counts.values()) == 1
        # The poll ran again meanwhile and found nothing new: ews_alerts ran once, on the warning's one event.
        alerts = api.call("GET", "/api/v2/dags/ews_alerts/dagRuns?limit=20")["dag_runs"]
        assert len(alerts) == 1, alerts
        polls = api.call("GET", "/api/v2/dags/ews_bmkg_nowcast/dagRuns?limit=20")["dag_runs"]
        assert len(polls) >= 2
        # The other way in finds the thread decided: the decision is taken once.
        code = main(["alerts", "approve", "--all", "--region", str(region), "--database", env["EWS_DATABASE_URL"],
                     "--by", "analyst-late", "--queue-only"])  # fmt: skip
        assert code != 0
    finally:
        stub.stop()

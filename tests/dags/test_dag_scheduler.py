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
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, require
from test_dag_delivery import SENDER, live_site, subscribed_gorontalo

from ews.cli import main
from ews.testing.airflow_stack import AirflowStack, Api, redis_up, wait_for
from ews.testing.twilio_server import TwilioStub

__all__ = ["live_site", "subscribed_gorontalo"]  # fixtures, imported for pytest

pytestmark = [pytest.mark.airflow, pytest.mark.slow]


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
    postgres_admin = None
    if executor == "celery":
        postgres_admin = request.getfixturevalue("postgres_admin")
        require(importlib.util.find_spec("airflow.providers.celery") is not None,
                "the celery provider is not installed: pip install -e '.[celery]'")  # fmt: skip
        require(redis_up(), "Redis is not running on 127.0.0.1:6379 (the Celery broker)")
    stack = AirflowStack(REPO, tmp_path, executor, postgres_admin=postgres_admin, venv=Path(sys.executable).parents[1])
    with stack:
        yield stack.env, stack.start


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
            AIRFLOW_CONN_TWILIO_DEFAULT=stub.airflow_connection(SENDER),
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
                "ews_command",
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

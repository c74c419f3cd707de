"""The DAGs deliver: a new BMKG CAP on a loopback site -> ``ews_nowcast`` queues -> ``ews_dispatch`` sends it
through the real ``twilio`` client to the local Twilio-compatible server, exactly once; ``ews_watch`` fails loudly
on a stuck queue and calls its hook. No phone number appears in task logs, XCom or asset extras.
"""

from __future__ import annotations

import csv
import http.server
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from conftest import REPO
from test_dag_run import airflow, airflow_env, airflow_home, asset_events, last_json

from ews.testing.regions import write_subscribed_region
from ews.testing.retime import retimed_cap
from ews.testing.twilio_server import TwilioStub

__all__ = ["airflow_home"]  # the fixture, imported for pytest

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

SENDER = "+15005550006"
XCOMS = """
import json, sys
from sqlalchemy import select
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session

with create_session() as session:
    rows = session.execute(select(XComModel.dag_id, XComModel.task_id, XComModel.key, XComModel.value)).all()
print(sys.argv[1] + json.dumps([[d, t, k, str(v)] for d, t, k, v in rows]))
"""


@pytest.fixture
def live_site(tmp_path: Path, shared_data: Path, serve_dir: Any) -> str:
    """www.bmkg.go.id's layout on loopback: the recorded index, and the Gorontalo CAP sent a minute ago."""
    site = tmp_path / "bmkg-site" / "alerts" / "nowcast"
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    for lang in ("id", "en"):
        (site / lang).mkdir(parents=True)
        cap = shared_data / "bmkg" / "cap" / f"siaga_cap-{lang}-CGT20260924002_alert.xml"
        (site / lang / "CGT20260924002_alert.xml").write_bytes(retimed_cap(cap.read_bytes(), now))
    rss = shared_data / "bmkg" / "rss" / "siaga_nowcast-rss-id_2026-09-24.xml"
    (site / "id" / "rss.xml").write_bytes(rss.read_bytes())
    return str(serve_dir(tmp_path / "bmkg-site"))


@pytest.fixture
def subscribed_gorontalo(tmp_path: Path, kec_dir: Path) -> tuple[Path, list[str]]:
    """The Gorontalo kecamatan with one fictional SMS subscriber each; returns the region file and the numbers."""
    layer = kec_dir / "wilayah_boundaries_kec_75.geojson"
    codes = [f["properties"]["kode"] for f in json.loads(layer.read_text())["features"]]
    phones = [f"+62899920{i:05d}" for i in range(len(codes))]
    return write_subscribed_region(tmp_path, layer, zip(phones, codes, strict=True)), phones


class Hook(http.server.BaseHTTPRequestHandler):
    """The watch's callback URL: records what it is sent."""

    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        self.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def hook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    Hook.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", Hook.received
    server.shutdown()
    server.server_close()


def xcoms(env: dict[str, str]) -> list[list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", XCOMS, "@@x@@"], env=env, cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-4000:]
    (line,) = [x for x in done.stdout.splitlines() if x.startswith("@@x@@")]
    rows: list[list[str]] = json.loads(line[len("@@x@@") :])
    return rows


def test_a_new_warning_reaches_phones_once_through_the_dags(
    airflow_home: Path,
    tmp_path: Path,
    live_site: str,
    subscribed_gorontalo: tuple[Path, list[str]],
    hook: tuple[str, list[dict[str, Any]]],
) -> None:
    region, phones = subscribed_gorontalo
    stub = TwilioStub().start()
    try:
        env = airflow_env(airflow_home)
        env.update(
            EWS_BMKG_BASE_URL=live_site,
            EWS_WORK_DIR=str(tmp_path / "work"),
            EWS_OUT_DIR=str(tmp_path / "out"),
            AIRFLOW_CONN_TWILIO_DEFAULT=stub.airflow_connection(SENDER),
            AIRFLOW_VAR_EWS_WATCH_CALLBACK_URL=hook[0],
            AIRFLOW_VAR_EWS_WATCH_MAX_QUEUE_MINUTES="0",
        )
        logs: list[str] = []

        def run(dag_id: str, conf: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
            args = ["dags", "test", dag_id, *(["--conf", json.dumps(conf)] if conf else [])]
            done = airflow(*args, env=env)
            logs.append(done.stdout + done.stderr)
            return done

        done = run("ews_nowcast", {"region": str(region), "source": "bmkg"})
        assert done.returncode == 0, logs[-1][-6000:]
        assert stub.messages == []  # queued, not sent: that is ews_dispatch's job
        (ledger,) = [e for e in asset_events(env) if e[0] == "ews_ledger"]
        queued = ledger[2]["queued"]
        with (tmp_path / "out" / "gorontalo-kec" / "summary.csv").open(newline="") as handle:
            alerted = [row for row in csv.DictReader(handle) if int(row["level"]) > 0]
        assert len(alerted) >= 3  # Dengilo, Mananggu (Siaga) and Tolinggula (Waspada), a subscriber each
        assert queued >= len(alerted)  # and the Tagana notices (no contact configured: not sent)

        # The queue waits (limit 0 min): the watch fails loudly, naming it, and calls the hook.
        watch = run("ews_watch")
        assert watch.returncode != 0
        assert "STUCK QUEUE" in logs[-1]
        assert any("STUCK QUEUE" in p for body in hook[1] for p in body["problems"])

        done = run("ews_dispatch")
        assert done.returncode == 0, logs[-1][-6000:]
        sent = stub.messages
        assert len(sent) == len(alerted)  # one SMS per subscriber of each alerted kecamatan, nothing else
        assert {m["from"] for m in sent} == {SENDER}
        assert all(m["body"].startswith("BMKG ") for m in sent)
        assert {m["to"] for m in sent} <= set(phones)
        runs = last_json(airflow("dags", "list-runs", "ews_dispatch", "-o", "json", env=env).stdout)
        assert {r["state"] for r in runs} == {"success"}

        # Again: the same feed queues nothing new and a second dispatch sends nothing.
        assert run("ews_nowcast", {"region": str(region), "source": "bmkg"}).returncode == 0
        assert run("ews_dispatch").returncode == 0
        assert len(stub.messages) == len(alerted)
        watch = run("ews_watch")
        assert "STUCK QUEUE" not in logs[-1]

        # Personal data never leaves the store: not in task logs, XCom or asset extras.
        extras = json.dumps([e[2] for e in asset_events(env)])
        values = json.dumps(xcoms(env))
        for phone in phones:
            for where, text in (("task logs", "\n".join(logs)), ("asset extras", extras), ("XCom", values)):
                assert phone not in text, f"a subscriber's number is in the {where}"
                assert phone[1:] not in text, f"a subscriber's number is in the {where}"
        assert stub.auth_token not in "\n".join(logs)
    finally:
        stub.stop()

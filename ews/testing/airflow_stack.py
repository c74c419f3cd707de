"""Airflow for ews on this machine, as `make airflow` / `make airflow-celery` start it, for tests and benchmarks.

:class:`AirflowStack` runs ``scripts/airflow-local.sh`` (LocalExecutor, SQLite metadata) or
``scripts/airflow-celery.sh`` (CeleryExecutor: PostgreSQL metadata and store in databases of its own, a Redis
broker database of its own) in a folder of its own, waits for its banner, and stops everything it started
(and drops its databases) afterwards. :class:`Api` is Airflow's REST API as the admin. :class:`NowcastSite` is
www.bmkg.go.id's nowcast layout on loopback (``/alerts/nowcast/id/rss.xml`` and the CAP files it links), whose
warnings can be published while Airflow polls it. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from email.utils import format_datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from ews.store.artifacts import write_bytes_atomic

EXECUTORS = ("local", "celery")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_up(host: str = "127.0.0.1", port: int = 6379) -> bool:
    """Whether a Redis server answers PING there."""
    try:
        with socket.create_connection((host, port), timeout=2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def wait_for(what: str, check: Callable[[], Any], timeout: float = 240.0, every: float = 2.0) -> Any:
    """Call ``check`` every ``every`` seconds until it returns something true, and return that (else AssertionError)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def clean_env(home: Path, dags: Path, keep: tuple[str, ...] = ("EWS_SHARED_DATA",)) -> dict[str, str]:
    """The environment of this process without AIRFLOW* and EWS_* settings (but ``keep``), for Airflow in ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "EWS_")) or k in keep}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__LOGGING__COLORED_CONSOLE_LOG="False",
    )
    return env


class Api:
    """Airflow's REST API as the admin (simple auth manager), on loopback."""

    def __init__(self, base: str, password: str) -> None:
        self.base = base
        token = self.call("POST", "/auth/token", {"username": "admin", "password": password}, auth=False)
        self.token = token["access_token"]

    def call(self, method: str, path: str, body: object = None, *, auth: bool = True) -> Any:
        """``method path`` with a JSON ``body``; the JSON answer (None when empty)."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)  # noqa: S310
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback, http only
            text = response.read().decode()
        return json.loads(text) if text else None

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        """The DAG's runs, oldest first (up to 500)."""
        found = self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=500&order_by=start_date")["dag_runs"]
        return list(found)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """The task instances of one run."""
        found = self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        return list(found)


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """Stop a process started in its own session, and everything it started: TERM, then KILL after a minute."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


class AirflowStack:
    """`make airflow` (``executor="local"``) or `make airflow-celery` (``"celery"``) in ``folder``.

    ``env`` is the environment it will run with (add the ews settings before :meth:`start`); for Celery,
    ``postgres_admin`` is a PostgreSQL URL allowed to create databases, and a metadata database, an ews store
    and a Redis database of their own are used and dropped afterwards. Use as a context manager.
    """

    def __init__(
        self, repo: Path, folder: Path, executor: str, *, postgres_admin: str | None = None, venv: Path | None = None
    ) -> None:
        if executor not in EXECUTORS:
            raise ValueError(f"executor {executor!r}: use one of {', '.join(EXECUTORS)}")
        if executor == "celery" and not postgres_admin:
            raise ValueError("the celery stack needs postgres_admin (a PostgreSQL URL that may create databases)")
        self.repo, self.folder, self.executor = repo, folder, executor
        self.env = clean_env(folder / "airflow-home", repo / "dags")
        self.env.update(EWS_AIRFLOW_PORT=str(free_port()), EWS_VENV=str(venv or repo / ".venv"))
        self.postgres_admin = postgres_admin or ""
        self.created: list[str] = []
        self.script = "airflow-local.sh"
        if executor == "celery":
            name = f"ews_stack_{uuid.uuid4().hex[:10]}"
            self.created = [f"{name}_airflow", f"{name}_store"]
            base = self.postgres_admin.rsplit("/", 1)[0]
            self.env.update(
                EWS_AIRFLOW_DB=f"{base.replace('postgresql://', 'postgresql+psycopg://')}/{self.created[0]}",
                EWS_DATABASE_URL=f"{base}/{self.created[1]}",
                EWS_AIRFLOW_BROKER=f"redis://127.0.0.1:6379/{1 + uuid.uuid4().int % 15}",
            )
            self.script = "airflow-celery.sh"
        else:
            self.env["EWS_DATABASE_URL"] = f"sqlite:///{folder / 'work' / 'ews.db'}"
        self.log = folder / "airflow.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.password = ""

    def start(self) -> str:
        """Start it; return its banner (``Airflow for ews: <url>  (login: admin / <password>)``)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        handle = self.log.open("w")
        self.process = subprocess.Popen(  # noqa: S603 - our own script
            ["/bin/bash", str(self.repo / "scripts" / self.script)], env=self.env, cwd=self.repo, stdout=handle,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        handle.close()

        def ready() -> str | None:
            if self.process is None or self.process.poll() is not None:
                raise AssertionError(f"make airflow's script stopped:\n{self.log.read_text()[-4000:]}")
            lines = [x for x in self.log.read_text().splitlines() if x.startswith("Airflow for ews: ")]
            return lines[-1] if lines else None

        banner = str(wait_for("Airflow to start", ready, timeout=180))
        self.url, self.password = banner.split()[3], banner.split()[-1].rstrip(")")
        return banner

    def api(self) -> Api:
        """Its REST API, logged in as the admin (after :meth:`start`)."""
        return Api(self.url, self.password)

    def stop(self) -> None:
        """Stop every process it started and drop the databases it created."""
        if self.process is not None:
            stop_group(self.process)
        if self.created:
            import sqlalchemy

            admin = sqlalchemy.create_engine(self.postgres_admin, isolation_level="AUTOCOMMIT")
            with admin.connect() as connection:
                for db_name in self.created:
                    connection.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
            admin.dispose()
            self.created = []

    def __enter__(self) -> AirflowStack:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return None


class NowcastSite:
    """www.bmkg.go.id's nowcast layout on 127.0.0.1: ``/alerts/nowcast/id/rss.xml`` listing the CAP files published.

    :meth:`publish` writes a CAP file and then the index that lists it (each atomically), as BMKG's site
    changes: a poll sees either the old index or the new one with its file already there.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.nowcast = folder / "alerts" / "nowcast" / "id"
        self.nowcast.mkdir(parents=True, exist_ok=True)
        self.items: list[tuple[str, str, str]] = []  # (file name, title, pubDate)
        self._write_index()
        handler = functools.partial(_Quiet, directory=str(folder))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def publish(self, file_name: str, cap: bytes, title: str, published: Any) -> None:
        """Put ``cap`` at ``/alerts/nowcast/id/<file_name>`` and list it first in the index (``published``: aware)."""
        write_bytes_atomic(self.nowcast / file_name, cap)
        self.items.insert(0, (file_name, title, format_datetime(published)))
        self._write_index()

    def _write_index(self) -> None:
        from xml.sax.saxutils import escape

        items = "".join(
            f"<item><title>{escape(title)}</title>"
            f"<link>https://www.bmkg.go.id/alerts/nowcast/id/{name}</link>"
            f"<guid>https://www.bmkg.go.id/alerts/nowcast/id/{name}</guid><pubDate>{when}</pubDate></item>\n"
            for name, title, when in self.items
        )
        rss = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
            "<title>Peringatan Dini Cuaca BMKG</title><link>https://www.bmkg.go.id/alerts/nowcast/id/rss.xml</link>"
            f"<description>Peringatan Dini Cuaca dari BMKG</description><language>id</language>\n{items}"
            "</channel></rss>\n"
        )
        write_bytes_atomic(self.nowcast / "rss.xml", rss.encode())

    def stop(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()

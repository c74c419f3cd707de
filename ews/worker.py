"""``ews worker``: a long-lived process that runs cycles on request and keeps what they prepare between them.

A cycle run as its own process pays, every time, for starting Python and importing the geodata stack (~2 s),
for opening the region's prepared villages from their cache (~1 s at 84,000 villages: the geometry decoded) and
for loading the zonal weights and the maps' display geometry. A worker pays that once: the caches keep the
prepared region in this process's memory (:mod:`ews.store.region_cache`, :mod:`ews.store.zonal_cache`,
:mod:`ews.store.display_cache`, bounded per process), the store keeps its connection pool, and every cycle pays only
for what changed. A changed boundary file has a new key and is read again; a region file is read again every cycle,
and the contact files are checked (by their digest) every cycle, as a cycle of its own process would.

The worker schedules nothing: Airflow (or ``ews run --worker URL``, or cron) says when a cycle runs, and the worker
runs it in its process. Cycles run one at a time, in the order they arrive (a second request waits for the first);
a cycle that fails answers with the error and the worker goes on serving.

It listens on the loopback interface by default, over HTTP with JSON bodies (``POST``):

- ``/run``: what ``ews run`` does, with the same options as JSON (``region``, ``cap``, ``rain``, ``forecast``,
  ``quakes``, ``at``, ``out``, ``outbox``, ``queue_only``); answers ``{"exit_code", "reports"}``
  (:meth:`ews.pipeline.RunReport.to_json`);
- ``/assess`` and ``/publish``: the DAG tasks of the same names on a run folder that the DAG's ``fetch`` staged
  (``region``, ``run_dir``, ``now``, ``cache_dir``; ``/publish`` also ``out_dir`` and ``outbox``), so a pipeline
  DAG with ``EWS_WORKER_URL`` set runs its heavy steps warm (``ews_airflow``);
- ``GET /health``: ``{"status": "ok", "cycles", "failed", "busy", "started"}``.

The worker's own environment, database and cache folder are the ones used: a request that names another
database (by the SHA-256 of its URL: no password travels) or another cache folder is refused (409), never run
against the wrong store. Paths in a request are absolute (the client resolves them). Errors are answered with the
status of ``ews``'s exit codes: 400 a refused input (exit 2, the message names the file, field or key), 500 an
internal error (exit 3, its first line; phone numbers masked).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ews.errors import EXIT_ERROR, EXIT_INTERNAL, EXIT_OK, EXIT_PARTIAL, ConfigError, EwsError, mask_phone_like

if TYPE_CHECKING:
    from ews.store.repository import Store

log = logging.getLogger(__name__)

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8790
_MAX_BODY = 1 << 20  # a request is a few paths and options


class WorkerUnavailableError(EwsError):
    """No worker listens at the URL (connection refused): nothing was run there."""


class WorkerError(EwsError):
    """The worker answered with an error; ``exit_code`` is what ``ews`` exits with for it."""

    def __init__(self, message: str, exit_code: int, status: int | None = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.status = status  # the HTTP status (409: this worker serves another store: nothing ran)


def database_digest(url: str) -> str:
    """What a request says of its database: a SHA-256 of the URL, so that a password never leaves the client."""
    return hashlib.sha256(url.encode()).hexdigest()


def _strings(body: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = body.get(key) or ()
    if isinstance(value, str) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"worker request: {key!r} must be a list of strings")
    return tuple(value)


def _text(body: Mapping[str, Any], key: str, *, required: bool = False) -> str | None:
    value = body.get(key)
    if value is None or value == "":
        if required:
            raise ConfigError(f"worker request: {key!r} is missing")
        return None
    if not isinstance(value, str):
        raise ConfigError(f"worker request: {key!r} must be a string")
    return value


def _absolute(body: Mapping[str, Any], key: str, *, required: bool = False) -> Path | None:
    value = _text(body, key, required=required)
    if value is None:
        return None
    path = Path(value)
    if not path.is_absolute():
        raise ConfigError(f"worker request: {key!r} must be an absolute path, not {value!r} (the client resolves it)")
    return path


@dataclass
class Worker:
    """The state a worker keeps between cycles: its store, its cache folder, its counters."""

    database_url: str
    cache_dir: Path
    progress: Callable[[str], None] = lambda _: None
    cycles: int = 0
    failed: int = 0
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    _store: Store | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def busy(self) -> bool:
        """Whether a cycle is running now."""
        return self._lock.locked()

    def store(self) -> Store:
        """The worker's store, opened (and migrated) on first use, kept open between cycles."""
        if self._store is None:
            from ews.store.repository import Store

            self._store = Store.from_url(self.database_url)
        return self._store

    def close(self) -> None:
        """Close the store."""
        if self._store is not None:
            self._store.close()
            self._store = None

    def _check(self, body: Mapping[str, Any]) -> None:
        wanted = _text(body, "database")
        if wanted is not None and wanted != database_digest(self.database_url):
            raise _ConflictError(
                "this worker serves another database than the request's: start a worker with that --database, "
                "or send the request to the worker of this one"
            )
        cache = _absolute(body, "cache_dir")
        if cache is not None and cache.resolve() != self.cache_dir.resolve():
            raise _ConflictError(f"this worker's cache folder is {self.cache_dir}, not {cache}: one worker, one cache")

    def handle(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Run one request (``/run``, ``/assess`` or ``/publish``) after the one before it; the answer's JSON."""
        step = {"/run": self._run, "/assess": self._assess, "/publish": self._publish}.get(path)
        if step is None:
            raise _NotFoundError(f"no such worker request: POST {path} (POST /run, /assess or /publish; GET /health)")
        self._check(body)
        with self._lock:
            began = time.monotonic()
            try:
                answer = step(body)
            except BaseException:
                self.failed += 1
                raise
            self.cycles += 1
            answer["seconds"] = round(time.monotonic() - began, 3)
            answer["cycle"] = self.cycles
            return answer

    def _config(self, body: Mapping[str, Any]) -> Any:
        from ews.config import open_region

        return open_region(_absolute(body, "region", required=True), os.environ)  # type: ignore[arg-type]

    def _run(self, body: Mapping[str, Any]) -> dict[str, Any]:
        from ews.sources import HazardSources

        config = self._config(body)
        sources = HazardSources(_strings(body, "rain"), _strings(body, "forecast"), _strings(body, "quakes"))
        at = _text(body, "at")
        now = datetime.fromisoformat(at) if at else datetime.now(UTC)
        if now.tzinfo is None:
            raise ConfigError(f"worker request: 'at' {at!r} has no UTC offset (e.g. 2026-12-01T06:00:00+07:00)")
        reports, code = run_cycle(
            config, self.store(), caps=_strings(body, "cap"), sources=sources, now=now,
            out=_absolute(body, "out") or Path("out").resolve() / config.id, cache_dir=self.cache_dir,
            outbox=None if body.get("queue_only") else _absolute(body, "outbox", required=True),
            progress=self.progress,
        )  # fmt: skip
        return {"exit_code": code, "reports": [r.to_json() for r in reports]}

    def _assess(self, body: Mapping[str, Any]) -> dict[str, Any]:
        from ews.pipeline import assess_villages

        config = self._config(body)
        now = datetime.fromisoformat(_text(body, "now", required=True))  # type: ignore[arg-type]
        run_dir = _absolute(body, "run_dir", required=True)
        assert run_dir is not None  # noqa: S101 (required)
        return {"assessed": assess_villages(config, run_dir, self.progress, now=now, cache_dir=self.cache_dir)}

    def _publish(self, body: Mapping[str, Any]) -> dict[str, Any]:
        from ews.channels.outbox import FileOutbox
        from ews.pipeline import publish_outputs

        config = self._config(body)
        now = datetime.fromisoformat(_text(body, "now", required=True))  # type: ignore[arg-type]
        run_dir, out_dir = _absolute(body, "run_dir", required=True), _absolute(body, "out_dir", required=True)
        assert run_dir is not None  # noqa: S101 (required)
        assert out_dir is not None  # noqa: S101 (required)
        outbox = _absolute(body, "outbox")
        report = publish_outputs(
            config, run_dir, out_dir, now=now, store=self.store(), progress=self.progress,
            channel=FileOutbox(outbox) if outbox is not None else None, cache_dir=self.cache_dir,
        )  # fmt: skip
        return {"report": report.to_json()}


class _ConflictError(EwsError):
    pass


class _NotFoundError(EwsError):
    pass


def run_cycle(
    config: Any,
    store: Store,
    *,
    caps: tuple[str, ...],
    sources: Any,
    now: datetime,
    out: Path,
    cache_dir: Path,
    outbox: Path | None,
    progress: Callable[[str], None],
) -> tuple[list[Any], int]:
    """What ``ews run`` does once its options are read: the reports and the exit code (0, or 1: some input failed).

    Rain, forecasts and earthquakes go with the first CAP source (or run alone); several CAP sources each get their
    own ``out/source-N`` folder. ``outbox=None`` queues the messages for ``ews send``.
    """
    from ews.channels.outbox import FileOutbox
    from ews.pipeline import run_slice

    if not caps and not sources:
        raise ConfigError("nothing to run on: give --cap, --rain, --forecast and/or --quakes")
    code = EXIT_OK
    reports = []
    listed: list[str | None] = list(caps) or [None]
    for n, source in enumerate(listed):
        target = out if len(listed) == 1 else out / f"source-{n + 1}"
        report = run_slice(
            config, source, target, now=now, base_url=_env_url("EWS_BMKG_BASE_URL"), store=store,
            channel=None if outbox is None else FileOutbox(outbox), progress=progress,
            sources=sources if n == 0 else None, cache_dir=cache_dir,
            quake_base_url=os.environ.get("EWS_BMKG_TEWS_URL"),
            forecast_url_template=os.environ.get("EWS_BMKG_DIGITALFORECAST_URL"),
            adm4_base_url=os.environ.get("EWS_BMKG_ADM4_URL"),
        )  # fmt: skip
        reports.append(report)
        if report.problems:
            code = EXIT_PARTIAL
    return reports, code


def _env_url(name: str) -> str:
    from ews.ingest.bmkg_cap import DEFAULT_BASE_URL

    return os.environ.get(name) or DEFAULT_BASE_URL


# -- the HTTP side ----------------------------------------------------------------------------------------------


def _handler(worker: Worker) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "ews-worker"

        def log_message(self, format: str, *args: Any) -> None:
            log.info("%s %s", self.address_string(), format % args)

        def _answer(self, status: int, document: Mapping[str, Any]) -> None:
            data = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if urlsplit(self.path).path != "/health":
                self._answer(404, {"error": f"no such worker request: GET {self.path} (GET /health)"})
                return
            self._answer(200, {"status": "ok", "cycles": worker.cycles, "failed": worker.failed,
                               "busy": worker.busy, "started": worker.started.isoformat()})  # fmt: skip

        def do_POST(self) -> None:
            try:
                length = int(self.headers.get("Content-Length") or 0)
                if not 0 < length <= _MAX_BODY:
                    raise ConfigError(f"worker request: a JSON body of at most {_MAX_BODY} bytes is needed")
                body = json.loads(self.rfile.read(length))
                if not isinstance(body, dict):
                    raise ConfigError("worker request: the body must be a JSON object")
                answer = worker.handle(urlsplit(self.path).path, body)
            except _NotFoundError as exc:
                self._answer(404, {"error": str(exc), "exit_code": EXIT_ERROR})
            except _ConflictError as exc:
                self._answer(409, {"error": str(exc), "exit_code": EXIT_ERROR})
            except (EwsError, ValueError) as exc:  # a refused input: it names the file, field or key
                self._answer(400, {"error": mask_phone_like(str(exc)), "exit_code": EXIT_ERROR})
            except OSError as exc:  # the machine refused: a path that cannot be written, a full disk
                where = f"{exc.filename}: " if exc.filename else ""
                self._answer(400, {"error": f"{where}{exc.strerror or exc}", "exit_code": EXIT_ERROR})
            except Exception as exc:
                log.exception("worker request %s failed", self.path)
                first = mask_phone_like(f"{type(exc).__name__}: {exc}").splitlines()
                self._answer(500, {"error": f"internal error: {first[0] if first else type(exc).__name__}: this is "
                                            "a bug in ews, please report it", "exit_code": EXIT_INTERNAL})  # fmt: skip
            else:
                self._answer(200, answer)

    return Handler


def make_server(worker: Worker, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> ThreadingHTTPServer:
    """The worker's HTTP server (``port=0``: any free port, ``server.server_address`` says which)."""
    server = ThreadingHTTPServer((host, port), _handler(worker))
    server.daemon_threads = True
    return server


def call(url: str, path: str, body: Mapping[str, Any], *, timeout: float) -> dict[str, Any]:
    """POST ``body`` to the worker at ``url`` (``http://127.0.0.1:8790``) and return its answer.

    Raises
    ------
    WorkerUnavailableError
        Nothing listens there (connection refused): the request was not run.
    WorkerError
        The worker answered with an error (its message; ``exit_code`` as ``ews`` would exit), or its answer was
        lost (a time-out, a reset): then the cycle may have run, and must not be run again elsewhere at once.
    """
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ConfigError(f"worker URL {url!r}: give http://HOST:PORT (e.g. http://127.0.0.1:{DEFAULT_PORT})")
    connection = http.client.HTTPConnection(parts.hostname, parts.port or DEFAULT_PORT, timeout=timeout)
    data = json.dumps(dict(body)).encode()
    try:
        try:
            connection.connect()
        except ConnectionRefusedError as exc:
            raise WorkerUnavailableError(
                f"no ews worker at {url} ({exc.strerror or exc}): start one (`ews worker`) or run without it"
            ) from None
        try:
            connection.request("POST", path, body=data, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            answer = json.loads(response.read() or b"{}")
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise WorkerError(
                f"ews worker at {url}: {path} lost its answer ({type(exc).__name__}: {exc}); the cycle may have run "
                "there: see the worker's log and its outputs before running it again",
                EXIT_INTERNAL,
            ) from None
    finally:
        connection.close()
    if response.status != 200 or not isinstance(answer, dict):
        error = answer.get("error") if isinstance(answer, dict) else None
        code = answer.get("exit_code") if isinstance(answer, dict) else None
        raise WorkerError(f"ews worker at {url}: {error or f'HTTP {response.status}'}",
                          code if isinstance(code, int) else EXIT_INTERNAL, response.status)  # fmt: skip
    return answer


def serve(worker: Worker, host: str, port: int) -> None:
    """Serve until interrupted, then close the store."""
    server = make_server(worker, host, port)
    bound = server.server_address
    log.warning("ews worker: serving cycles on http://%s:%s (one at a time; GET /health)", bound[0], bound[1])
    try:
        server.serve_forever()
    finally:
        server.server_close()
        worker.close()

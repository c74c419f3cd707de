"""Shared wiring of the ews DAGs in ``dags/`` (installed with ews, so every scheduler and worker imports it).

Declarations and small helpers only: ``ews`` (and with it geopandas, matplotlib, twilio) is imported inside
the task bodies, and the environment, Airflow Variables and Connections are read there too, so parsing a DAG
file stays cheap and does not depend on the scheduler's environment.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import Asset, task
from airflow.sdk.exceptions import AirflowFailException

REPO = Path(__file__).resolve().parents[1]  # the repository (an editable install): regions/, shared data
DEFAULT_REGION = REPO / "regions" / "jawa-timur.yaml"

# Downstream DAGs schedule on these assets; each event's ``extra`` names the region, the output folder and
# the source identifiers it was made from (asset-triggered runs have no logical date, so consumers key their
# idempotency on those). The ``x-`` scheme is Airflow's convention for a custom URI: it is kept as is,
# with no provider needed to normalise it, and it names the product, not one machine's folder.
RISK_OUTPUTS = Asset(name="ews_risk_outputs", uri="x-ews://risk-outputs", group="ews")
QUAKE_OUTPUTS = Asset(name="ews_quake_outputs", uri="x-ews://quake-outputs", group="ews")
# BMKG nowcast warnings ews has not seen before, staged in a run folder by ews_bmkg_nowcast: ews_alerts runs on them.
BMKG_WARNINGS = Asset(name="ews_bmkg_warnings", uri="x-ews://bmkg-warnings", group="ews")
ALERT_OUTPUTS = Asset(name="ews_alert_outputs", uri="x-ews://alert-outputs", group="ews")
RAIN_OUTPUTS = Asset(name="ews_rain_outputs", uri="x-ews://rain-outputs", group="ews")
FORECAST_OUTPUTS = Asset(name="ews_forecast_outputs", uri="x-ews://forecast-outputs", group="ews")
# New rows in the send ledger: ews_dispatch runs on each event (and every minute as a safety net).
LEDGER = Asset(name="ews_ledger", uri="x-ews://send-ledger", group="ews")
# Alert versions newly held by the review gate: ews_review asks an operator (Airflow human-in-the-loop).
REVIEW = Asset(name="ews_review_queue", uri="x-ews://review-queue", group="ews")

TWILIO_CONN_ID = "twilio_default"
DRY_RUN_VARIABLE = "ews_dry_run"


START = datetime(2026, 1, 1, tzinfo=UTC)


def dag_settings(*, run_minutes: float, task_minutes: float, retries: int, retry_seconds: float) -> dict[str, Any]:
    """What every pipeline DAG shares: UTC start, no catch-up, one run at a time, timeouts, quick retries.

    Retries come within seconds: Airflow's 300 s default is too slow for warnings.
    """
    return {
        "start_date": START,
        "catchup": False,
        "max_active_runs": 1,
        "dagrun_timeout": timedelta(minutes=run_minutes),
        "default_args": {
            "owner": "ews",
            "retries": retries,
            "retry_delay": timedelta(seconds=retry_seconds),
            "execution_timeout": timedelta(minutes=task_minutes),
        },
    }


def work_dir() -> Path:
    """``EWS_WORK_DIR`` (per-run files, the default store and outbox), default ``<tmp>/ews-airflow``."""
    return Path(os.environ.get("EWS_WORK_DIR") or str(Path(tempfile.gettempdir()) / "ews-airflow")).resolve()


def database_url() -> str:
    """The ews store every DAG shares: ``EWS_DATABASE_URL``, default SQLite ``<EWS_WORK_DIR>/ews.db``."""
    return os.environ.get("EWS_DATABASE_URL") or f"sqlite:///{work_dir() / 'ews.db'}"


def outbox_path() -> Path:
    """The dry-run channel file: ``EWS_OUTBOX``, default ``<EWS_WORK_DIR>/outbox.jsonl``."""
    return Path(os.environ.get("EWS_OUTBOX") or work_dir() / "outbox.jsonl")


def dry_run() -> bool:
    """Whether the deployment says dry run: Airflow Variable ``ews_dry_run``, else ``EWS_DRY_RUN`` (default no).

    In a dry run ``publish`` renders messages into the dry-run outbox itself; otherwise it queues them in the
    send ledger for ``ews_dispatch``, which delivers through Twilio (or the outbox when no connection is set).
    """
    from airflow.sdk import Variable

    value = Variable.get(DRY_RUN_VARIABLE, default=None)
    if value is None:
        value = os.environ.get("EWS_DRY_RUN", "")
    text = str(value).strip().lower()
    if text in ("", "0", "false", "no", "off"):
        return False
    if text in ("1", "true", "yes", "on"):
        return True
    raise AirflowFailException(f"Airflow Variable {DRY_RUN_VARIABLE} / EWS_DRY_RUN is {value!r}: use true or false")


def cache_dir(run_dir: Path) -> Path:
    """``EWS_CACHE_DIR``, default ``cache`` beside the region's run folders: zonal weights, downloaded rain steps."""
    return Path(os.environ.get("EWS_CACHE_DIR") or run_dir.parent / "cache")


def in_worker(path: str, body: dict[str, Any]) -> dict[str, Any] | None:
    """Run a step in the ``ews worker`` at ``EWS_WORKER_URL`` (warm); ``None``: run it in this task.

    No URL, no worker listening there, or a worker of another database or cache folder (nothing ran there):
    ``None``, the step runs here, cold, and the log says why at WARNING (ERROR for a worker of another store).
    Any other failure of the worker fails the task: the step may have run there, and a retry asks it again.
    """
    import logging

    from ews.worker import WorkerError, WorkerUnavailableError, call, database_digest

    url = os.environ.get("EWS_WORKER_URL")
    if not url:
        return None
    log = logging.getLogger(__name__)
    request = {**body, "database": database_digest(database_url())}
    try:
        return call(url, path, request, timeout=float(os.environ.get("EWS_WORKER_TIMEOUT") or 1800))
    except WorkerUnavailableError as exc:
        log.warning("%s; running %s in this task (cold)", exc, path)
    except WorkerError as exc:
        if exc.exit_code == 2 and exc.status != 409:  # a refused input: a retry would be refused again
            raise AirflowFailException(str(exc)) from None
        if exc.status != 409:  # it may have run there: the retry asks the worker again (it runs one at a time)
            raise
        log.error("%s; running %s in this task (cold): fix EWS_WORKER_URL or the worker's options", exc, path)
    return None


def param_text(value: object) -> str | None:
    """A param's text, or None when it is unset or blank."""
    text = "" if value is None else str(value).strip()
    return text or None


def run_dir_for(region_id: str, run_id: str) -> Path:
    """``<EWS_WORK_DIR>/<region id>/<run id made safe for a file name>-<hash of the run id>``.

    Run ids hold ':' and '+' (``scheduled__2026-09-24T07:30:00+00:00``); the hash keeps two run ids that
    sanitise alike apart.
    """
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", run_id).strip("._")[:80] or "run"
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:8]
    return work_dir() / region_id / f"{safe}-{digest}"


def as_of(at: str | None) -> datetime:
    """The instant warnings are judged at (expired or in force): ``at`` if given, else now.

    "Now" is taken when ``fetch`` reads the warnings, not from the run's dates: in Airflow 3 a manual or
    asset-triggered run has no logical date (and the latter no data interval), and a cleared old run still
    reads today's live feed, so only the fetch time matches the data. It travels to ``publish`` through
    XCom, so a retried ``publish`` judges expiry exactly as the first try did.
    """
    if at is None:
        return datetime.now(UTC)
    from ews.config import parse_instant

    return parse_instant(at, "param 'at'")


@contextmanager
def config_errors_fail_fast() -> Iterator[None]:
    """A bad region file or param will not fix itself: fail the task at once instead of retrying 3 times."""
    from ews.errors import ConfigError

    try:
        yield
    except ConfigError as exc:
        raise AirflowFailException(str(exc)) from exc


def region_env() -> dict[str, str]:
    """The environment for ``${NAME}`` in region files; data next to this repository by default.

    The CLI resolves a relative ``EWS_SHARED_DATA`` against the folder it is run from; a worker's folder
    is arbitrary, so the DAG anchors the default on the repository instead.
    """
    env = dict(os.environ)
    env.setdefault("EWS_SHARED_DATA", str((REPO.parent / "shared" / "data").resolve()))
    return env


def pipeline(dag_id: str, asset: Asset, *, cap: bool, kinds: tuple[str, ...], quakes: str | None, suffix: str) -> None:
    """The three tasks of a pipeline DAG: fetch -> assess -> publish (each one ``ews.pipeline`` function).

    ``cap``: read BMKG's CAP warnings by default; ``kinds``: which other sources the DAG reads (``rain``,
    ``forecast``, ``quakes``); ``quakes``: the default quake source; ``suffix``: added to the region id in
    the output folder, so DAGs of one region do not replace each other's outputs.
    """

    # A dict return annotation would make TaskFlow push every key as its own XCom too; pass the dict whole.
    @task(multiple_outputs=False)
    def fetch(*, params: dict[str, Any] | None = None, run_id: str | None = None) -> dict[str, object]:
        from ews.config import open_region
        from ews.ingest.bmkg_cap import DEFAULT_BASE_URL
        from ews.pipeline import fetch_sources, fetch_warnings, no_warnings
        from ews.sources import HazardSources

        p = params or {}
        region = str(Path(param_text(p.get("region")) or os.environ.get("EWS_REGION") or DEFAULT_REGION).resolve())
        source = param_text(p.get("source")) or ((os.environ.get("EWS_CAP_SOURCE") or "bmkg") if cap else None)
        with config_errors_fail_fast():
            now = as_of(param_text(p.get("at")))
            config = open_region(region, region_env())
        run_dir = run_dir_for(config.id, f"{dag_id}:{run_id or 'manual'}")
        base_url = os.environ.get("EWS_BMKG_BASE_URL") or DEFAULT_BASE_URL
        fetched = (
            fetch_warnings(source, run_dir, base_url=base_url) if source and source != "none" else no_warnings(run_dir)
        )

        def listed(param: str, env: str, default: str | None = None) -> tuple[str, ...]:
            given = param_text(p.get(param)) or (os.environ.get(env) if param in kinds else None) or default or ""
            return tuple(x.strip() for x in given.split(",") if x.strip())

        sources = HazardSources(
            listed("rain", "EWS_RAIN_SOURCE"), listed("forecast", "EWS_FORECAST_SOURCE"),
            listed("quakes", "EWS_QUAKE_SOURCE", quakes),
        )  # fmt: skip
        staged = (
            fetch_sources(
                sources, run_dir, province=config.name, quake_base_url=os.environ.get("EWS_BMKG_TEWS_URL"),
                forecast_url_template=os.environ.get("EWS_BMKG_DIGITALFORECAST_URL"),
                allowed_hosts=config.fetch.allowed_redirect_hosts, config=config, now=now,
                cache_dir=cache_dir(run_dir), adm4_base_url=os.environ.get("EWS_BMKG_ADM4_URL"),
            )
            if sources
            else {}
        )  # fmt: skip
        return {
            **fetched,
            "staged": staged,
            "region": region,
            "region_id": config.id,
            "run_dir": str(run_dir),
            "now": now.isoformat(),
        }

    stages(dag_id, asset, suffix, fetch())


def stages(dag_id: str, asset: Asset, suffix: str, fetched: Any) -> None:
    """The tasks after a fetch: assess -> publish -> (queued -> announce) and (held -> ask_review).

    ``fetched`` is the XCom of the task that staged the run folder (``region``, ``region_id``, ``run_dir``,
    ``now``): a pipeline DAG's ``fetch``, or ``ews_alerts``'s ``staged`` (from ``ews_bmkg_nowcast``'s asset event).
    """

    @task(multiple_outputs=False)
    def assess(fetched: dict[str, Any]) -> dict[str, object]:
        from ews.config import open_region
        from ews.pipeline import assess_villages

        config = open_region(fetched["region"], region_env())
        run_dir = Path(fetched["run_dir"])
        cache = cache_dir(run_dir)
        now = datetime.fromisoformat(fetched["now"])
        where = {"region": str(Path(fetched["region"]).resolve()), "run_dir": str(run_dir.resolve()),
                 "now": now.isoformat(), "cache_dir": str(cache.resolve())}  # fmt: skip
        warm = in_worker("/assess", where)
        assessed = warm["assessed"] if warm else assess_villages(config, run_dir, now=now, cache_dir=cache)
        keep = ("region", "region_id", "run_dir", "now")
        return {**assessed, **{k: fetched[k] for k in keep}}

    @task(outlets=[asset], multiple_outputs=False)
    def publish(assessed: dict[str, Any], *, outlet_events: Any = None) -> dict[str, object]:
        import json
        import logging

        from ews.channels.outbox import FileOutbox
        from ews.config import open_region
        from ews.pipeline import RunReport, publish_outputs
        from ews.store.repository import Store

        config = open_region(assessed["region"], region_env())
        out_dir = Path(os.environ.get("EWS_OUT_DIR") or "out").resolve() / f"{config.id}{suffix}"
        now = datetime.fromisoformat(assessed["now"])
        # Messages go to the send ledger for ews_dispatch; only a deployment that says dry run renders them into
        # the dry-run outbox here (as `ews run` does without --queue-only).
        channel = FileOutbox(outbox_path()) if dry_run() else None
        run_dir = Path(assessed["run_dir"])
        warm = in_worker("/publish", {
            "region": str(Path(assessed["region"]).resolve()), "run_dir": str(run_dir.resolve()),
            "now": now.isoformat(), "cache_dir": str(cache_dir(run_dir).resolve()), "out_dir": str(out_dir),
            "outbox": str(outbox_path().resolve()) if channel is not None else None,
        })  # fmt: skip
        if warm:
            report = RunReport.from_json(warm["report"])
        else:
            store = Store.from_url(database_url())
            try:
                report = publish_outputs(
                    config, run_dir, out_dir, now=now, store=store, channel=channel, cache_dir=cache_dir(run_dir)
                )
            finally:
                store.close()
        log = logging.getLogger(__name__)
        for problem in report.problems:
            if problem["message"].startswith("DEGRADED"):
                log.error("%s: %s", problem["source"], problem["message"])
                continue
            log.warning(
                "REJECTED input %s: %s (the rest of the batch was processed)",
                problem["source"],
                problem["message"],
            )
        if report.pending_review:
            log.warning("PENDING REVIEW: %s", "; ".join(report.pending_review))
        warnings = json.loads((Path(assessed["run_dir"]) / "warnings.json").read_text(encoding="utf-8"))
        ids = sorted({w["identifier"] for w in warnings["warnings"]})
        if outlet_events is not None:
            outlet_events[asset].extra = {
                "region": config.id,
                "out_dir": str(out_dir),
                "at": now.isoformat(),
                "warning_ids": ids,
            }
        return {
            "region": config.id,
            "region_file": assessed["region"],
            "out_dir": str(out_dir),
            "held": len(report.pending_review),  # threads waiting for review (their versions: report.json)
            "newly_held": bool(report.pending),
            "warnings": report.warnings,
            "problems": len(report.problems),
            "degraded": sum(p["message"].startswith("DEGRADED") for p in report.problems),
            "levels": report.levels,
            "ended": report.ended,  # villages whose alert this run ended: {"DICABUT": n, "BERAKHIR": m}
            "messages": report.messages,
            "queued": report.queued or 0,  # new rows in the send ledger, for ews_dispatch
            "people_exposed": report.people_exposed,
            # Held for review until an analyst decides (ews alerts approve THREAD): in every run's summary.
            "pending_review": report.pending_review,
        }

    @task.short_circuit
    def queued(summary: dict[str, Any]) -> bool:
        """Go on (and announce the ledger) only when the run queued new messages."""
        return bool(summary.get("queued"))

    @task(outlets=[LEDGER], multiple_outputs=False)
    def announce(summary: dict[str, Any], *, outlet_events: Any = None) -> dict[str, object]:
        """An ``ews_ledger`` asset event for the new ledger rows: ews_dispatch delivers them at once."""
        extra = {"region": summary["region"], "queued": int(summary["queued"]), "source_dag": dag_id}
        if outlet_events is not None:
            outlet_events[LEDGER].extra = extra
        return extra

    @task.short_circuit
    def held(summary: dict[str, Any]) -> bool:
        """Go on (and ask for a review) only when the run held new alert versions."""
        return bool(summary.get("newly_held"))

    @task(outlets=[REVIEW], multiple_outputs=False)
    def ask_review(summary: dict[str, Any], *, outlet_events: Any = None) -> dict[str, object]:
        """An ``ews_review_queue`` asset event: ews_review asks an operator to approve or reject the held threads."""
        extra = {"region": summary["region"], "region_file": summary["region_file"], "source_dag": dag_id}
        if outlet_events is not None:
            outlet_events[REVIEW].extra = extra
        return extra

    summary = publish(assess(fetched))
    announce(summary).set_upstream(queued(summary))
    ask_review(summary).set_upstream(held(summary))

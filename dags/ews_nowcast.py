"""Airflow DAG ``ews_nowcast``: BMKG nowcast warnings -> affected villages -> risk map and outbox.

Top level holds declarations only: ``ews`` (and with it geopandas, matplotlib, twilio) is imported inside
the task bodies, and the environment is read there too, so parsing this file stays cheap and does not
depend on the scheduler's environment.
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

from airflow.sdk import Asset, Param, dag, task
from airflow.sdk.exceptions import AirflowFailException

REPO = Path(__file__).resolve().parents[1]
DEFAULT_REGION = REPO / "regions" / "jawa-timur.yaml"

# Downstream DAGs schedule on this asset; each event's ``extra`` names the region, the output folder and
# the BMKG identifiers it was made from (asset-triggered runs have no logical date, so consumers key their
# idempotency on those). The ``x-`` scheme is Airflow's convention for a custom URI: it is kept as is,
# with no provider needed to normalise it, and it names the product, not one machine's folder.
RISK_OUTPUTS = Asset(name="ews_risk_outputs", uri="x-ews://risk-outputs", group="ews")
QUAKE_OUTPUTS = Asset(name="ews_quake_outputs", uri="x-ews://quake-outputs", group="ews")

QUAKES_DOC_MD = """
### ews_quakes

Every 2 minutes: read BMKG's earthquake feeds (autogempa, gempaterkini, gempadirasakan under
`EWS_BMKG_TEWS_URL`, or `EWS_QUAKE_SOURCE`), estimate the shaking per village (Allen, Wald & Worden 2012),
put coastal villages at Awas when BMKG says a tsunami is possible, and alert through the same store and
send ledger as `ews_nowcast` (an event is alerted once, however often BMKG resends it). Outputs go to
`<EWS_OUT_DIR>/<region id>-gempa`; asset `ews_quake_outputs`. Same tasks and environment as `ews_nowcast`
(`EWS_REGION`, `EWS_DATABASE_URL`, `EWS_WORK_DIR`, `EWS_OUT_DIR`); a feed that cannot be fetched is logged
as DEGRADED and the others still count.
"""

DOC_MD = """
### ews_nowcast

Every 10 minutes: read the BMKG nowcast warnings, find the villages of a region they cover, and write the
review outputs (risk_map.png/html, summary.csv, villages.gpkg, outbox.jsonl with **dry-run** messages,
report.json). Same steps as `ews run`.

| task | calls | writes |
|---|---|---|
| `fetch` | `ews.pipeline.fetch_warnings` | `<work>/<region>/<run>/warnings.json` |
| `assess` | `ews.pipeline.assess_villages` | `<work>/<region>/<run>/impacts.csv` |
| `publish` | `ews.pipeline.publish_outputs` | `<out>/<region>/` (atomically); asset `ews_risk_outputs` |

**Params** (empty = take the environment variable, read when the task runs):

- `region`: region file; env `EWS_REGION`, default `regions/jawa-timur.yaml` of this repository.
- `source`: CAP file, RSS index, folder, URL, or `bmkg` / `bmkg:en` (the live index under
  `EWS_BMKG_BASE_URL`, default https://www.bmkg.go.id); env `EWS_CAP_SOURCE`, default `bmkg`.
- `at`: evaluate as of this ISO 8601 instant with an offset (for replaying recorded alerts);
  default: the time `fetch` read the warnings.
- `rain`, `forecast`, `quakes`: comma-separated sources besides CAP (env `EWS_RAIN_SOURCE`,
  `EWS_FORECAST_SOURCE`, `EWS_QUAKE_SOURCE`; default none). Rain: raster files or folders (a satellite
  download task or sensor drops them there); forecasts: adm4 JSON / DigitalForecast XML files, folders,
  URLs or `bmkg` (the region's DigitalForecast); quakes: feed files, folders, URLs or `bmkg` (the live
  TEWS feeds). A stale or broken source is
  logged as **DEGRADED** and the rest of the run goes on.

**Environment**: `EWS_DATABASE_URL` (the ews store: alert states, send ledger; default SQLite under the
work dir; use PostgreSQL with several workers), `EWS_OUTBOX` (the dry-run channel file, default
`<work>/<region>/outbox.jsonl`), `EWS_WORK_DIR` (per-run intermediate files, default `<tmp>/ews-airflow`),
`EWS_OUT_DIR` (outputs, default `./out`; each region writes `<EWS_OUT_DIR>/<region id>`),
`EWS_SHARED_DATA` (data used by region files, default `../shared/data` next to this repository),
`EWS_BMKG_BASE_URL`, `EWS_CACHE_DIR` (zonal weights per grid and boundary set, default `<work>/cache`).

A run whose inputs were partly rejected (e.g. a CAP file listed in the index but not published yet)
still succeeds with the rest of the batch; the rejected inputs are logged as warnings by `publish`.
A bad region file or `at` fails `fetch` at once (no retries); other errors are retried 3 times, 30 s apart.
"""


def _text(value: object) -> str | None:
    """A param's text, or None when it is unset or blank."""
    text = "" if value is None else str(value).strip()
    return text or None


def _run_dir(region_id: str, run_id: str) -> Path:
    """``<EWS_WORK_DIR>/<region id>/<run id made safe for a file name>-<hash of the run id>``.

    Run ids hold ':' and '+' (``scheduled__2026-09-24T07:30:00+00:00``); the hash keeps two run ids that
    sanitise alike apart.
    """
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", run_id).strip("._")[:80] or "run"
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:8]
    work = os.environ.get("EWS_WORK_DIR") or str(Path(tempfile.gettempdir()) / "ews-airflow")
    return Path(work).resolve() / region_id / f"{safe}-{digest}"


def _as_of(at: str | None) -> datetime:
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
def _config_errors_fail_fast() -> Iterator[None]:
    """A bad region file or param will not fix itself: fail the task at once instead of retrying 3 times."""
    from ews.errors import ConfigError

    try:
        yield
    except ConfigError as exc:
        raise AirflowFailException(str(exc)) from exc


def _region_env() -> dict[str, str]:
    """The environment for ``${NAME}`` in region files; data next to this repository by default.

    The CLI resolves a relative ``EWS_SHARED_DATA`` against the folder it is run from; a worker's folder
    is arbitrary, so the DAG anchors the default on the repository instead.
    """
    env = dict(os.environ)
    env.setdefault("EWS_SHARED_DATA", str((REPO.parent / "shared" / "data").resolve()))
    return env


def _pipeline(dag_id: str, asset: Asset, *, cap: bool, kinds: tuple[str, ...], quakes: str | None, suffix: str) -> None:
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
        region = str(Path(_text(p.get("region")) or os.environ.get("EWS_REGION") or DEFAULT_REGION).resolve())
        source = _text(p.get("source")) or ((os.environ.get("EWS_CAP_SOURCE") or "bmkg") if cap else None)
        with _config_errors_fail_fast():
            now = _as_of(_text(p.get("at")))
            config = open_region(region, _region_env())
        run_dir = _run_dir(config.id, f"{dag_id}:{run_id or 'manual'}")
        base_url = os.environ.get("EWS_BMKG_BASE_URL") or DEFAULT_BASE_URL
        fetched = (
            fetch_warnings(source, run_dir, base_url=base_url) if source and source != "none" else no_warnings(run_dir)
        )

        def listed(param: str, env: str, default: str | None = None) -> tuple[str, ...]:
            text = _text(p.get(param)) or (os.environ.get(env) if param in kinds else None) or default or ""
            return tuple(x.strip() for x in text.split(",") if x.strip())

        sources = HazardSources(
            listed("rain", "EWS_RAIN_SOURCE"), listed("forecast", "EWS_FORECAST_SOURCE"),
            listed("quakes", "EWS_QUAKE_SOURCE", quakes),
        )  # fmt: skip
        staged = (
            fetch_sources(
                sources, run_dir, province=config.name, quake_base_url=os.environ.get("EWS_BMKG_TEWS_URL"),
                forecast_url_template=os.environ.get("EWS_BMKG_DIGITALFORECAST_URL"),
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

    @task(multiple_outputs=False)
    def assess(fetched: dict[str, Any]) -> dict[str, object]:
        from ews.config import open_region
        from ews.pipeline import assess_villages

        config = open_region(fetched["region"], _region_env())
        run_dir = Path(fetched["run_dir"])
        cache = Path(os.environ.get("EWS_CACHE_DIR") or run_dir.parent / "cache")
        now = datetime.fromisoformat(fetched["now"])
        assessed = assess_villages(config, run_dir, now=now, cache_dir=cache)
        keep = ("region", "region_id", "run_dir", "now")
        return {**assessed, **{k: fetched[k] for k in keep}}

    @task(outlets=[asset], multiple_outputs=False)
    def publish(assessed: dict[str, Any], *, outlet_events: Any = None) -> dict[str, object]:
        import json
        import logging

        from ews.channels.outbox import FileOutbox
        from ews.config import open_region
        from ews.pipeline import publish_outputs
        from ews.store.repository import Store

        config = open_region(assessed["region"], _region_env())
        out_dir = Path(os.environ.get("EWS_OUT_DIR") or "out").resolve() / f"{config.id}{suffix}"
        now = datetime.fromisoformat(assessed["now"])
        work = Path(assessed["run_dir"]).parent
        store = Store.from_url(os.environ.get("EWS_DATABASE_URL") or f"sqlite:///{work / 'ews.db'}")
        outbox = FileOutbox(Path(os.environ.get("EWS_OUTBOX") or work / "outbox.jsonl"))
        try:
            report = publish_outputs(config, Path(assessed["run_dir"]), out_dir, now=now, store=store, channel=outbox)
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
            "out_dir": str(out_dir),
            "warnings": report.warnings,
            "problems": len(report.problems),
            "levels": report.levels,
            "ended": report.ended,  # villages whose alert this run ended: {"DICABUT": n, "BERAKHIR": m}
            "messages": report.messages,
            "people_exposed": report.people_exposed,
            # Held for review until an analyst decides (ews alerts approve THREAD): in every run's summary.
            "pending_review": report.pending_review,
        }

    publish(assess(fetch()))


@dag(
    dag_id="ews_nowcast",
    schedule="*/10 * * * *",  # BMKG nowcasts are valid for a few hours at most
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=30),
    tags=["ews", "bmkg", "nowcast"],
    doc_md=DOC_MD,
    default_args={
        "owner": "ews",
        "retries": 3,
        "retry_delay": timedelta(seconds=30),  # the 300 s default is too slow for warnings
        "execution_timeout": timedelta(minutes=10),
    },
    params={
        "region": Param(None, type=["null", "string"], description="regions/<id>.yaml; empty: EWS_REGION"),
        "source": Param(None, type=["null", "string"], description="CAP source; empty: EWS_CAP_SOURCE"),
        "at": Param(
            None,
            type=["null", "string"],
            description="ISO 8601 instant with offset; empty: time of the fetch",
        ),
        "rain": Param(None, type=["null", "string"], description="rain rasters (comma-separated); EWS_RAIN_SOURCE"),
        "forecast": Param(None, type=["null", "string"], description="BMKG forecasts; EWS_FORECAST_SOURCE"),
        "quakes": Param(None, type=["null", "string"], description="earthquake feeds or bmkg; EWS_QUAKE_SOURCE"),
    },
)
def ews_nowcast() -> None:
    _pipeline("ews_nowcast", RISK_OUTPUTS, cap=True, kinds=("rain", "forecast", "quakes"), quakes=None, suffix="")


@dag(
    dag_id="ews_quakes",
    schedule="*/2 * * * *",  # earthquakes need minutes, not hours: BMKG's TEWS feeds, polled often
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=10),
    tags=["ews", "bmkg", "gempa"],
    doc_md=QUAKES_DOC_MD,
    default_args={
        "owner": "ews",
        "retries": 2,
        "retry_delay": timedelta(seconds=15),
        "execution_timeout": timedelta(minutes=4),
    },
    params={
        "region": Param(None, type=["null", "string"], description="regions/<id>.yaml; empty: EWS_REGION"),
        "quakes": Param(None, type=["null", "string"], description="earthquake feeds; empty: EWS_QUAKE_SOURCE or bmkg"),
        "at": Param(None, type=["null", "string"], description="ISO 8601 instant with offset; empty: now"),
    },
)
def ews_quakes() -> None:
    _pipeline("ews_quakes", QUAKE_OUTPUTS, cap=False, kinds=("quakes",), quakes="bmkg", suffix="-gempa")


ews_nowcast()
ews_quakes()

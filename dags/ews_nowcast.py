"""Airflow DAG ``ews_nowcast``: BMKG nowcast warnings -> affected villages -> risk map and queued messages.

Top level holds declarations only (see ``ews_airflow``): parsing this file imports no geodata or messaging stack.
"""

from __future__ import annotations

from airflow.sdk import Param, dag

from ews_airflow import RISK_OUTPUTS, dag_settings, pipeline, run_dir_for

__all__ = ["run_dir_for"]  # the run-folder rule, checked by tests

DOC_MD = """
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
review outputs (risk_map.png/html, summary.csv, villages.gpkg, report.json) and queue the messages in the
send ledger, which `ews_dispatch` delivers. Same steps as `ews run --queue-only`.

| task | calls | writes |
|---|---|---|
| `fetch` | `ews.pipeline.fetch_warnings` | `<work>/<region>/<run>/warnings.json` |
| `assess` | `ews.pipeline.assess_villages` | `<work>/<region>/<run>/impacts.csv` |
| `publish` | `ews.pipeline.publish_outputs` | `<out>/<region>/`, ledger rows; asset `ews_risk_outputs` |
| `queued` | new ledger rows? (short circuit) | |
| `announce` | | asset `ews_ledger` (extra: region, queued): `ews_dispatch` runs at once |

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

**Environment**: `EWS_DATABASE_URL` (the ews store: alert states, send ledger, shared by every ews DAG; default
SQLite `<work>/ews.db`; use PostgreSQL with several workers), `EWS_DRY_RUN` or Airflow Variable `ews_dry_run`
(`true`: render messages into the dry-run outbox here instead of queueing them), `EWS_OUTBOX` (the dry-run
channel file, default `<work>/outbox.jsonl`), `EWS_WORK_DIR` (per-run intermediate files, default `<tmp>/ews-airflow`),
`EWS_OUT_DIR` (outputs, default `./out`; each region writes `<EWS_OUT_DIR>/<region id>`),
`EWS_SHARED_DATA` (data used by region files, default `../shared/data` next to this repository),
`EWS_BMKG_BASE_URL`, `EWS_CACHE_DIR` (zonal weights per grid and boundary set, default `<work>/cache`).

A run whose inputs were partly rejected (e.g. a CAP file listed in the index but not published yet)
still succeeds with the rest of the batch; the rejected inputs are logged as warnings by `publish`.
A bad region file or `at` fails `fetch` at once (no retries); other errors are retried 3 times, 30 s apart.
"""


@dag(
    dag_id="ews_nowcast",
    schedule="*/10 * * * *",  # BMKG nowcasts are valid for a few hours at most
    tags=["ews", "bmkg", "nowcast"],
    doc_md=DOC_MD,
    **dag_settings(run_minutes=30, task_minutes=10, retries=3, retry_seconds=30),
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
    pipeline("ews_nowcast", RISK_OUTPUTS, cap=True, kinds=("rain", "forecast", "quakes"), quakes=None, suffix="")


ews_nowcast()

"""Airflow DAG ``ews_forecast``: BMKG forecasts -> forecast levels per village -> queued messages.

Top level holds declarations only (see ``ews_airflow``): parsing this file imports no geodata or messaging stack.
"""

from __future__ import annotations

from airflow.sdk import Param, dag

from ews_airflow import FORECAST_OUTPUTS, dag_settings, pipeline

DOC_MD = """
### ews_forecast

Every 3 hours (BMKG updates its forecasts twice a day): read `EWS_FORECAST_SOURCE` (comma-separated: adm4
village JSON, DigitalForecast XML, files, folders, URLs; `bmkg` for the region's DigitalForecast under
`EWS_BMKG_DIGITALFORECAST_URL`; `adm4` for BMKG's village forecasts of the region's `forecast.adm4_villages`
from `EWS_BMKG_ADM4_URL`, default `https://api.bmkg.go.id/publik/prakiraan-cuaca`, or a `{code}` template)
and alert the villages whose forecast reaches a level.

`adm4` is paced in the task: one request every `forecast.adm4_interval_s` (1 s; BMKG allows about 60 a minute
per IP). One run at a time (`max_active_runs=1`) keeps this DAG to that rate. It uses no Airflow pool: a task in
a pool that does not exist is not scheduled until someone creates the pool, and a forgotten
`airflow pools set` must not silently stop forecasts. A region lists at most 1,500 villages (25 min of pacing,
within the 30 min task timeout); its other villages get their kab/kota's DigitalForecast. A village that fails
is DEGRADED with its code and URL; a forecast for a code not in the region's boundaries (BMKG uses the
Kepmendagri 2022 codes, the boundaries 2025) is named in the report's notes.
Outputs go to `<EWS_OUT_DIR>/<region id>-prakiraan`; asset `ews_forecast_outputs`. Same tasks, store, send ledger and
environment as `ews_nowcast` (`EWS_REGION`, `EWS_DATABASE_URL`, `EWS_WORK_DIR`, `EWS_OUT_DIR`): an alert is sent
once whichever DAG sees its hazard first, and a source that is stale or broken makes the run DEGRADED (ews_watch
fails on it).
"""


@dag(
    dag_id="ews_forecast",
    schedule="0 */3 * * *",
    tags=["ews", "bmkg", "prakiraan"],
    doc_md=DOC_MD,
    **dag_settings(run_minutes=60, task_minutes=30, retries=2, retry_seconds=30),
    params={
        "region": Param(None, type=["null", "string"], description="regions/<id>.yaml; empty: EWS_REGION"),
        "forecast": Param(
            None, type=["null", "string"], description="forecast files, URLs, bmkg or adm4; empty: EWS_FORECAST_SOURCE"
        ),
        "at": Param(None, type=["null", "string"], description="ISO 8601 instant with offset; empty: now"),
    },
)
def ews_forecast() -> None:
    pipeline("ews_forecast", FORECAST_OUTPUTS, cap=False, kinds=("forecast",), quakes=None, suffix="-prakiraan")


ews_forecast()

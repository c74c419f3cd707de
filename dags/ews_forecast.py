"""Airflow DAG ``ews_forecast``: BMKG forecasts -> forecast levels per village -> queued messages.

Top level holds declarations only (see ``ews_airflow``): parsing this file imports no geodata or messaging stack.
"""

from __future__ import annotations

from airflow.sdk import Param, dag

from ews_airflow import FORECAST_OUTPUTS, dag_settings, pipeline

DOC_MD = """
### ews_forecast

Every 3 hours (BMKG updates its forecasts twice a day): read `EWS_FORECAST_SOURCE` (adm4 village JSON,
DigitalForecast XML, files, folders, URLs, or `bmkg` for the region's DigitalForecast under
`EWS_BMKG_DIGITALFORECAST_URL`) and alert the villages whose forecast reaches a level.
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
            None, type=["null", "string"], description="forecast files, URLs or bmkg; empty: EWS_FORECAST_SOURCE"
        ),
        "at": Param(None, type=["null", "string"], description="ISO 8601 instant with offset; empty: now"),
    },
)
def ews_forecast() -> None:
    pipeline("ews_forecast", FORECAST_OUTPUTS, cap=False, kinds=("forecast",), quakes=None, suffix="-prakiraan")


ews_forecast()

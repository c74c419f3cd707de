"""Airflow DAG ``ews_quakes``: BMKG's earthquake feeds -> shaking and tsunami levels per village -> queued messages.

Top level holds declarations only (see ``ews_airflow``): parsing this file imports no geodata or messaging stack.
"""

from __future__ import annotations

from airflow.sdk import Param, dag

from ews_airflow import QUAKE_OUTPUTS, dag_settings, pipeline

QUAKES_DOC_MD = """
### ews_quakes

Every minute: read BMKG's earthquake feeds (autogempa, gempaterkini, gempadirasakan under
`EWS_BMKG_TEWS_URL`, or `EWS_QUAKE_SOURCE`), estimate the shaking per village (Allen, Wald & Worden 2012),
put coastal villages at Awas when BMKG says a tsunami is possible, and alert through the same store and
send ledger as `ews_nowcast` (an event is alerted once, however often BMKG resends it). Outputs go to
`<EWS_OUT_DIR>/<region id>-gempa`; asset `ews_quake_outputs`. Same tasks and environment as `ews_nowcast`
(`EWS_REGION`, `EWS_DATABASE_URL`, `EWS_WORK_DIR`, `EWS_OUT_DIR`); a feed that cannot be fetched is logged
as DEGRADED and the others still count.
"""


@dag(
    dag_id="ews_quakes",
    schedule="* * * * *",  # earthquakes need minutes, not hours: BMKG's TEWS feeds, polled every minute
    tags=["ews", "bmkg", "gempa"],
    doc_md=QUAKES_DOC_MD,
    **dag_settings(run_minutes=10, task_minutes=4, retries=2, retry_seconds=15),
    params={
        "region": Param(None, type=["null", "string"], description="regions/<id>.yaml; empty: EWS_REGION"),
        "quakes": Param(None, type=["null", "string"], description="earthquake feeds; empty: EWS_QUAKE_SOURCE or bmkg"),
        "at": Param(None, type=["null", "string"], description="ISO 8601 instant with offset; empty: now"),
    },
)
def ews_quakes() -> None:
    pipeline("ews_quakes", QUAKE_OUTPUTS, cap=False, kinds=("quakes",), quakes="bmkg", suffix="-gempa")


ews_quakes()

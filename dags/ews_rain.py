"""Airflow DAG ``ews_rain``: satellite rain rasters -> rain levels per village -> queued messages.

Top level holds declarations only (see ``ews_airflow``): parsing this file imports no geodata or messaging stack.
"""

from __future__ import annotations

from airflow.sdk import Param, dag

from ews_airflow import RAIN_OUTPUTS, dag_settings, pipeline

DOC_MD = """
### ews_rain

Every 10 minutes: read the rain rasters in `EWS_RAIN_SOURCE` (comma-separated), compute each village's
1-hour and 24-hour rainfall, and alert by BMKG's rain categories (README "Rain levels"). A source is either
a drop folder (or file) that a download job or a sensor fills with GSMaP NRT, IMERG, GeoTIFF or NetCDF files,
or a product on a server, downloaded by this DAG:

- `gsmap-nrt:<base>`: JAXA's hourly `<base>/hourly/YYYY/MM/DD/gsmap_nrt.YYYYMMDD.HH00.dat.gz`;
- `imerg-early:<base>`: NASA's half-hourly GIS GeoTIFFs
  `<base>/YYYY/MM/3B-HHR-E.MS.MRG.3IMERG.YYYYMMDD-SHHMMSS-EHHMMSS.MMMM.V07B.30min.tif`
  (`<base>` = `https://jsimpsonhttps.pps.eosdis.nasa.gov/imerg/gis/early`; PPS's e-mail login as
  `https://EMAIL:EMAIL@host/...`, `@` written `%40`, sent as Basic auth and never shown);
- `<N>min:<template>`: any product, one file every N minutes, `{time:%Y%m%d%H%M}` (start, UTC),
  `{end:%H%M%S}` and `{minutes:04d}` in the URL; `gsmap-nrt:`/`imerg-early:` take a whole template too.

Each run asks for the steps of the last 24 h plus `rain.max_age_minutes` that it has not downloaded yet
(cached in `EWS_CACHE_DIR`, default `<EWS_WORK_DIR>/<region>/cache`); a step not published yet (404) is
skipped, any other failure is DEGRADED naming the URL. A raster older than `rain.max_age_minutes` is stale.
Outputs go to `<EWS_OUT_DIR>/<region id>-hujan`; asset `ews_rain_outputs`. Same tasks, store, send ledger and
environment as `ews_nowcast` (`EWS_REGION`, `EWS_DATABASE_URL`, `EWS_WORK_DIR`, `EWS_OUT_DIR`): an alert is sent
once whichever DAG sees its hazard first, and a source that is stale or broken makes the run DEGRADED (ews_watch
fails on it).
"""


@dag(
    dag_id="ews_rain",
    schedule="*/10 * * * *",
    tags=["ews", "rain", "satelit"],
    doc_md=DOC_MD,
    **dag_settings(run_minutes=20, task_minutes=10, retries=2, retry_seconds=30),
    params={
        "region": Param(None, type=["null", "string"], description="regions/<id>.yaml; empty: EWS_REGION"),
        "rain": Param(
            None,
            type=["null", "string"],
            description="rain rasters, folders or gsmap-nrt:/imerg-early:/<N>min: URLs (comma-separated); "
            "empty: EWS_RAIN_SOURCE",
        ),
        "at": Param(None, type=["null", "string"], description="ISO 8601 instant with offset; empty: now"),
    },
)
def ews_rain() -> None:
    pipeline("ews_rain", RAIN_OUTPUTS, cap=False, kinds=("rain",), quakes=None, suffix="-hujan")


ews_rain()

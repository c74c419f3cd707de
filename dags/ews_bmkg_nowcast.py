"""Airflow DAG ``ews_bmkg_nowcast``: poll BMKG's nowcast index; announce only the warnings ews has not seen.

Top level holds declarations only (see ``ews_airflow``).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import Asset, AssetOrTimeSchedule, AssetWatcher, CronTriggerTimetable, Param, dag, task

from ews_airflow import (
    BMKG_WARNINGS,
    DEFAULT_REGION,
    as_of,
    config_errors_fail_fast,
    dag_settings,
    database_url,
    param_text,
    region_env,
    run_dir_for,
)
from ews_airflow.triggers import BmkgIndexTrigger

# BMKG's nowcast index, watched by Airflow's triggerer every 15 s (event-driven scheduling): a run starts within
# seconds of BMKG listing a new CAP file, and every 2 minutes regardless.
BMKG_INDEX = Asset(
    name="ews_bmkg_nowcast_index",
    uri="x-ews://bmkg-nowcast-index",
    group="ews",
    watchers=[AssetWatcher(name="ews_bmkg_index_watch", trigger=BmkgIndexTrigger(poll_seconds=15))],
)

REANNOUNCE_AFTER = timedelta(minutes=10)
"""A warning announced this long ago and still not stored by ews_alerts (its run failed) is announced again."""

DOC_MD = """
### ews_bmkg_nowcast

Within seconds of BMKG listing a new CAP file in its nowcast index (asset `ews_bmkg_nowcast_index`, watched by
Airflow's triggerer every 15 s: `ews_airflow.triggers.BmkgIndexTrigger`), and every 2 minutes as a safety net:
read BMKG's nowcast RSS index and the CAP files it lists (`EWS_CAP_SOURCE`, default `bmkg` under
`EWS_BMKG_BASE_URL`) into a run folder, and emit an `ews_bmkg_warnings` asset event **only when a warning is new to
ews** by its content (BMKG re-serves one warning under new identifiers: those are not new), and not already announced
by an earlier poll in the last 10 minutes (recorded in the store, so the watcher and the 2-minute tick never announce
one warning twice). The event's extra
carries the region, the run folder and the new warnings' identifiers; `ews_alerts` runs on it (impact, lifecycle,
queue). Idempotency is keyed on those identities, never on a logical date. `EWS_WORK_DIR` must be shared storage
when the two DAGs run on different workers.
"""


@dag(
    dag_id="ews_bmkg_nowcast",
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("*/2 * * * *", timezone="UTC"), assets=[BMKG_INDEX]),
    tags=["ews", "bmkg", "nowcast"],
    doc_md=DOC_MD,
    params={
        "region": Param(None, type=["null", "string"], description="regions/<id>.yaml; empty: EWS_REGION"),
        "source": Param(None, type=["null", "string"], description="CAP source; empty: EWS_CAP_SOURCE or bmkg"),
        "at": Param(None, type=["null", "string"], description="ISO 8601 instant with offset; empty: now"),
    },
    **dag_settings(run_minutes=5, task_minutes=3, retries=2, retry_seconds=10),
)
def ews_bmkg_nowcast() -> None:
    @task(multiple_outputs=False)
    def poll(*, params: dict[str, Any] | None = None, run_id: str | None = None) -> dict[str, Any]:
        import json

        from ews.config import open_region
        from ews.ingest.bmkg_cap import DEFAULT_BASE_URL
        from ews.pipeline import fetch_warnings
        from ews.store.repository import Store

        p = params or {}
        region = str(Path(param_text(p.get("region")) or os.environ.get("EWS_REGION") or DEFAULT_REGION).resolve())
        source = param_text(p.get("source")) or os.environ.get("EWS_CAP_SOURCE") or "bmkg"
        with config_errors_fail_fast():
            now = as_of(param_text(p.get("at")))
            config = open_region(region, region_env())
        run_dir = run_dir_for(config.id, f"ews_bmkg_nowcast:{run_id or 'manual'}")
        base_url = os.environ.get("EWS_BMKG_BASE_URL") or DEFAULT_BASE_URL
        fetched = fetch_warnings(source, run_dir, base_url=base_url)
        records = json.loads((run_dir / "warnings.json").read_text(encoding="utf-8"))["warnings"]
        store = Store.from_url(database_url())
        try:
            known_ids = store.known_identifiers({r["identifier"] for r in records})
            keys = {r["identifier"]: r.get("content_key") or f"id:{r['identifier']}" for r in records}
            known_content = set(store.warnings_by_content(set(keys.values())))
            # Announced by an earlier poll whose ews_alerts run has not stored it yet (the watcher and the 2-minute
            # tick can poll a minute apart): not new again, unless that was long ago (a failed run: announce again).
            seen = datetime.now(UTC)
            known_content |= store.announced_since(set(keys.values()), seen - REANNOUNCE_AFTER)
            fresh = [
                r for r in records if r["identifier"] not in known_ids and keys[r["identifier"]] not in known_content
            ]
            # One announcement per content (BMKG re-serves a warning under new identifiers, in one index too).
            first = {keys[r["identifier"]]: r for r in sorted(fresh, key=lambda r: r["identifier"])}
            store.mark_announced([(r["identifier"], r.get("source") or source, k) for k, r in first.items()], seen)
        finally:
            store.close()
        new = sorted(r["identifier"] for r in fresh)
        return {
            **fetched, "region": region, "region_id": config.id, "run_dir": str(run_dir), "now": now.isoformat(),
            "new": new,
        }  # fmt: skip

    @task.short_circuit
    def unseen(polled: dict[str, Any]) -> bool:
        """Go on only when BMKG published something ews has not seen."""
        return bool(polled["new"])

    @task(outlets=[BMKG_WARNINGS], multiple_outputs=False)
    def announce_warnings(polled: dict[str, Any], *, outlet_events: Any = None) -> dict[str, Any]:
        keep = ("region", "region_id", "run_dir", "now", "new")
        extra = {k: polled[k] for k in keep}
        if outlet_events is not None:
            outlet_events[BMKG_WARNINGS].extra = extra
        return extra

    polled = poll()
    announce_warnings(polled).set_upstream(unseen(polled))


ews_bmkg_nowcast()

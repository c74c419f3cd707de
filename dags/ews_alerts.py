"""Airflow DAG ``ews_alerts``: new BMKG warnings (from ``ews_bmkg_nowcast``) -> villages -> queued messages.

Top level holds declarations only (see ``ews_airflow``).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task

from ews_airflow import ALERT_OUTPUTS, BMKG_WARNINGS, dag_settings, stages

DOC_MD = """
### ews_alerts

On every `ews_bmkg_warnings` asset event (new BMKG nowcasts staged by `ews_bmkg_nowcast`): impact per village,
lifecycle, review gate and CAP output, messages queued in the send ledger, then `ews_ledger` (ews_dispatch delivers
at once) and, when versions were held, `ews_review_queue`. The same tasks and outputs as `ews_nowcast` after its
`fetch` (outputs `<EWS_OUT_DIR>/<region id>-bmkg`); idempotent on the warnings' identities, so an event seen twice sends
nothing twice.
"""


@dag(
    dag_id="ews_alerts",
    schedule=[BMKG_WARNINGS],
    tags=["ews", "bmkg", "alerts"],
    doc_md=DOC_MD,
    **dag_settings(run_minutes=30, task_minutes=10, retries=3, retry_seconds=30),
)
def ews_alerts() -> None:
    @task(multiple_outputs=False)
    def staged(*, triggering_asset_events: Any = None) -> dict[str, Any]:
        """The run folder of the newest triggering event (older ones of the same region are covered by it)."""
        events = [e for group in (triggering_asset_events or {}).values() for e in group]
        if not events:
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException("ews_alerts runs on ews_bmkg_warnings events; none triggered this run")
        newest = max(events, key=lambda e: str((e.extra or {}).get("now", "")))
        extra = dict(newest.extra or {})
        return {k: extra[k] for k in ("region", "region_id", "run_dir", "now")}

    stages("ews_alerts", ALERT_OUTPUTS, "-bmkg", staged())


ews_alerts()

"""Airflow DAG ``ews_reports``: escalate the command center's overdue reports every minute.

Top level holds declarations only (see ``ews_airflow``): parsing this file imports no messaging stack.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import dag, task

from ews_airflow import DEFAULT_REGION, LEDGER, config_errors_fail_fast, database_url, region_env

DOC_MD = """
### ews_reports

Every minute: every open report past its response deadline escalates once (`ews.center.reports.escalate_overdue`,
the same as `ews reports escalate`): an `escalated` event and an audit entry, its deadline pushed on by its
category's deadline, and a page to the region's duty number (`command_center.whatsapp`, else `.phone`) queued in
the send ledger, which `ews_dispatch` delivers (this task's outlet, `ews_ledger`). A late run escalates once, not
once per missed minute; two runs never escalate one report twice (guarded updates, one page per escalation).

**Region**: `EWS_REGION` (a region file; default `regions/jawa-timur.yaml`) gives the deadlines and the duty
number; reports of other regions escalate on the built-in deadlines, unpaged (the dashboard shows them first).
**Store**: `EWS_DATABASE_URL`, as the pipeline DAGs. The XCom summary holds counts only, never a number.
"""


@dag(
    dag_id="ews_reports",
    schedule="* * * * *",
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=5),
    tags=["ews", "command-center", "reports"],
    doc_md=DOC_MD,
    default_args={
        "owner": "ews",
        "retries": 2,
        "retry_delay": timedelta(seconds=10),
        "execution_timeout": timedelta(minutes=2),
    },
)
def ews_reports() -> None:
    @task(multiple_outputs=False, outlets=[LEDGER])
    def escalate() -> dict[str, Any]:
        import os

        from ews.center.reports import ReportIntake, escalate_overdue
        from ews.config import open_region
        from ews.store.repository import Store

        with config_errors_fail_fast():
            config = open_region(os.environ.get("EWS_REGION") or str(DEFAULT_REGION), region_env())
            intake = ReportIntake.from_configs([config], read_places=False)
        store = Store.from_url(database_url())
        try:
            done = escalate_overdue(store, at=datetime.now(UTC), intake=intake)
        finally:
            store.close()
        return {"escalated": len(done), "paged": sum(1 for e in done if e.page_ledger_id is not None)}

    escalate()


ews_reports()

"""Airflow DAG ``ews_command``: the command center's minute — Tagana escalations and overdue reports.

Top level holds declarations only (see ``ews_airflow``): parsing this file imports no messaging stack.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import dag, task

from ews_airflow import DEFAULT_REGION, LEDGER, config_errors_fail_fast, database_url, region_env

DOC_MD = """
### ews_command

Every minute, two independent tasks (one failing does not hold the other back):

- **`tagana`**: every open (unacknowledged) Tagana mobilisation pages its due escalation steps
  (`ews.center.mobilise.escalate_due`, the same as `ews tagana escalate`): step 2 (a second coordinator) and step 3
  (the kab/kota BPBD duty contact) after the delays of the unit's policy frozen when it opened (`mobilisation:` in
  the region file, docs/mobilisation.md), then repeat rounds. Each page is a send-ledger row (topic
  `mob:<id>:s<step>:r<round>`) and a `page` event. A step fires at most once per round and never after an
  acknowledgement; a late run skips missed rounds. With `EWS_PUBLIC_URL` and `EWS_SECRET_KEY`, SMS contacts get a
  signed acknowledgement link.
- **`reports`**: every open report past its response deadline escalates once (`ews.center.reports.escalate_overdue`,
  the same as `ews reports escalate`): an `escalated` event and an audit entry, its deadline pushed on by its
  category's deadline, and a page to the region's duty number (`command_center.whatsapp`, else `.phone`). A late run
  escalates once, not once per missed minute; two runs never escalate one report twice. `EWS_REGION` (a region
  file; default `regions/jawa-timur.yaml`) gives the deadlines and the duty number; reports of other regions
  escalate on the built-in deadlines, unpaged (the dashboard shows them first).

Both queue in the send ledger, which `ews_dispatch` delivers (their outlet, `ews_ledger`). **Store**:
`EWS_DATABASE_URL`, as the pipeline DAGs. The XCom summaries hold counts only, never a number.
"""


@dag(
    dag_id="ews_command",
    schedule="* * * * *",
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=5),
    tags=["ews", "command-center", "tagana", "reports"],
    doc_md=DOC_MD,
    default_args={
        "owner": "ews",
        "retries": 2,
        "retry_delay": timedelta(seconds=10),
        "execution_timeout": timedelta(minutes=2),
    },
)
def ews_command() -> None:
    @task(multiple_outputs=False, outlets=[LEDGER])
    def tagana() -> dict[str, Any]:
        import os

        from ews.center.mobilise import AckLinks, escalate_due
        from ews.store.repository import Store

        store = Store.from_url(database_url())
        try:
            done = escalate_due(store, at=datetime.now(UTC), links=AckLinks.from_env(os.environ))
        finally:
            store.close()
        return {"pages": done.pages, "mobilisations": len(done.mobilisations), "no_contact": len(done.no_contact)}

    @task(multiple_outputs=False, outlets=[LEDGER])
    def reports() -> dict[str, Any]:
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

    tagana()
    reports()


ews_command()

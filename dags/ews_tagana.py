"""Airflow DAG ``ews_tagana``: page the due escalation steps of open Tagana mobilisations every minute.

Top level holds declarations only (see ``ews_airflow``): parsing this file imports no messaging stack.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import dag, task

from ews_airflow import LEDGER, database_url

DOC_MD = """
### ews_tagana

Every minute: every open (unacknowledged) Tagana mobilisation pages its due escalation steps
(`ews.center.mobilise.escalate_due`, the same as `ews tagana escalate`): step 2 (a second coordinator) and step 3
(the kab/kota BPBD duty contact) after the delays of the unit's policy frozen when it opened (`mobilisation:` in
the region file, docs/mobilisation.md), then repeat rounds. Each page is a send-ledger row (topic
`mob:<id>:s<step>:r<round>`), which `ews_dispatch` delivers (this task's outlet, `ews_ledger`), and a `page` event.
A step fires at most once per round and never after an acknowledgement; a late run skips missed rounds.

**Store**: `EWS_DATABASE_URL`, as the pipeline DAGs. **Links**: with `EWS_PUBLIC_URL` and `EWS_SECRET_KEY`, SMS
contacts get a signed acknowledgement link. The XCom summary holds counts only, never a number.
"""


@dag(
    dag_id="ews_tagana",
    schedule="* * * * *",
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=5),
    tags=["ews", "command-center", "tagana"],
    doc_md=DOC_MD,
    default_args={
        "owner": "ews",
        "retries": 2,
        "retry_delay": timedelta(seconds=10),
        "execution_timeout": timedelta(minutes=2),
    },
)
def ews_tagana() -> None:
    @task(multiple_outputs=False, outlets=[LEDGER])
    def escalate() -> dict[str, Any]:
        import os

        from ews.center.mobilise import AckLinks, escalate_due
        from ews.store.repository import Store

        store = Store.from_url(database_url())
        try:
            done = escalate_due(store, at=datetime.now(UTC), links=AckLinks.from_env(os.environ))
        finally:
            store.close()
        return {"pages": done.pages, "mobilisations": len(done.mobilisations), "no_contact": len(done.no_contact)}

    escalate()


ews_tagana()

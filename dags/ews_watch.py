"""Airflow DAG ``ews_watch``: fail loudly when the warning chain is stuck, held or degraded.

Top level holds declarations only (see ``ews_airflow``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import Variable, dag, task
from airflow.sdk.exceptions import AirflowFailException

from ews_airflow import database_url

CALLBACK_VARIABLE = "ews_watch_callback_url"

DOC_MD = f"""
### ews_watch

Every minute: check the chain end to end (`ews.watch.check_health`) and **fail** when

- a message has waited longer than `ews_watch_max_queue_minutes` (Airflow Variable, default 5) to leave
  the send ledger (ews_dispatch down, Twilio refusing);
- an alert is held for review (`ews alerts approve|reject THREAD`);
- a region's newest pipeline run is older than `ews_watch_max_run_minutes` (default 30) or was DEGRADED
  (a source failed or was stale).

A failure logs each problem at ERROR and calls the on-failure hook: it POSTs `{{"dag_id", "run_id",
"problems"}}` as JSON to the URL in Airflow Variable `{CALLBACK_VARIABLE}` (a chat webhook, a pager), if set.
No personal data is in the problems. The check does not depend on Airflow's (experimental) Deadline Alerts.
"""

log = logging.getLogger(__name__)


def _minutes(name: str, default: float) -> timedelta:
    value = Variable.get(name, default=None)
    try:
        minutes = float(value) if value not in (None, "") else default
    except ValueError:
        raise AirflowFailException(f"Airflow Variable {name} is {value!r}: give a number of minutes") from None
    return timedelta(minutes=minutes)


def notify(context: dict[str, Any]) -> None:
    """The on-failure hook: log, and POST the problems to ``ews_watch_callback_url`` if one is set."""
    import json
    import urllib.request

    ti = context.get("ti")
    problems = (ti.xcom_pull(task_ids="check", key="problems") if ti is not None else None) or [
        str(context.get("exception") or "ews_watch failed")
    ]
    for problem in problems:
        log.error("EWS WATCH: %s", problem)
    url = Variable.get(CALLBACK_VARIABLE, default=None)
    if not url:
        return
    body = {"dag_id": "ews_watch", "run_id": context.get("run_id"), "problems": problems}
    request = urllib.request.Request(  # noqa: S310 - an operator-configured webhook URL
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310
            pass
    except OSError as exc:
        log.error("EWS WATCH: the callback %s failed: %s", CALLBACK_VARIABLE, exc)


@dag(
    dag_id="ews_watch",
    schedule="* * * * *",
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=5),
    tags=["ews", "watch"],
    doc_md=DOC_MD,
    default_args={
        "owner": "ews",
        "retries": 0,  # a failed check is the message: retrying would only delay it
        "execution_timeout": timedelta(minutes=2),
        "on_failure_callback": notify,
    },
)
def ews_watch() -> None:
    @task(multiple_outputs=False)
    def check(*, ti: Any = None) -> dict[str, Any]:
        from ews.store.repository import Store
        from ews.watch import WatchLimits, check_health

        limits = WatchLimits(
            max_queue_age=_minutes("ews_watch_max_queue_minutes", 5),
            max_run_age=_minutes("ews_watch_max_run_minutes", 30),
        )
        store = Store.from_url(database_url())
        try:
            problems = check_health(store, datetime.now(UTC), limits)
        finally:
            store.close()
        if problems:
            if ti is not None:
                ti.xcom_push(key="problems", value=problems)
            for problem in problems:
                log.error("EWS WATCH: %s", problem)
            raise AirflowFailException(f"{len(problems)} problem(s): " + " | ".join(problems))
        return {"healthy": True}

    check()


ews_watch()

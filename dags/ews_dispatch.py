"""Airflow DAG ``ews_dispatch``: deliver what the send ledger holds, through Twilio or the dry-run outbox.

Top level holds declarations only (see ``ews_airflow``): parsing this file imports no messaging stack.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, task

from ews_airflow import LEDGER, TWILIO_CONN_ID, config_errors_fail_fast, database_url, outbox_path

LEASE_VARIABLE = "ews_dispatch_lease_seconds"
SETTLE_VARIABLE = "ews_dispatch_settle_seconds"

DOC_MD = f"""
### ews_dispatch

On every `ews_ledger` asset event (a pipeline DAG queued messages) and every minute as a safety net: deliver
the queued messages of the send ledger with ews's crash-safe dispatcher (the same as `ews send --once`:
leases with fencing tokens, exactly once per recipient, retries with back-off, unknown outcomes reconciled).

**Twilio**: Airflow Connection `{TWILIO_CONN_ID}` (login: Account SID, password: auth token, extra: a JSON
object with `sms_from`, `messaging_service_sid`, `whatsapp_from`, `content_sids`, `public_url` for status
callbacks, `base_url` for a Twilio-compatible server). Without it every message goes to the dry-run outbox
(`EWS_OUTBOX`, default `<EWS_WORK_DIR>/outbox.jsonl`). **Store**: `EWS_DATABASE_URL`, as the pipeline DAGs.

One run at a time; a worker killed mid-run leaves its rows to the next run: their leases expire after
Airflow Variable `{LEASE_VARIABLE}` seconds (default 120), and a send whose outcome is unknown is settled
against Twilio's record `{SETTLE_VARIABLE}` seconds later (default 120) before anything is sent again. The
scheduler fails the killed task after `[scheduler] task_instance_heartbeat_timeout` (60 s with `make airflow`)
and retries it. The XCom summary holds counts only, never a number or a text.
"""


def _seconds(name: str, default: float, minimum: float) -> float:
    """Seconds (at least ``minimum``) from Airflow Variable ``name``, read inside the task; else ``default``."""
    from airflow.sdk import Variable
    from airflow.sdk.exceptions import AirflowFailException

    value = Variable.get(name, default=None)
    try:
        seconds = float(value) if value not in (None, "") else default
    except ValueError:
        seconds = -1.0
    if not seconds >= minimum:
        raise AirflowFailException(
            f"Airflow Variable {name} is {value!r}: give a number of seconds, at least {minimum:g}"
        )
    return seconds


@dag(
    dag_id="ews_dispatch",
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("* * * * *", timezone="UTC"), assets=[LEDGER]),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=10),
    tags=["ews", "dispatch", "twilio"],
    doc_md=DOC_MD,
    default_args={
        "owner": "ews",
        "retries": 2,
        "retry_delay": timedelta(seconds=10),
        "execution_timeout": timedelta(minutes=8),
    },
)
def ews_dispatch() -> None:
    @task(multiple_outputs=False)
    def deliver() -> dict[str, Any]:
        import os
        import socket

        from ews.channels.setup import delivery_channels
        from ews.dispatch import Dispatcher
        from ews.store.repository import Store

        with config_errors_fail_fast():
            settings = twilio_settings()
            channels, where = delivery_channels(settings, outbox=outbox_path())
        store = Store.from_url(database_url())
        try:
            worker = f"airflow-{socket.gethostname()}-{os.getpid()}"[:64]
            # Rows due later (a retry, a settle delay) are left to the next run: a run never waits for minutes.
            # A send (Twilio's 10 s timeout) must end well inside its lease; the settle delay lets a late create show.
            lease, settle = _seconds(LEASE_VARIABLE, 120.0, 30.0), _seconds(SETTLE_VARIABLE, 120.0, 5.0)
            report = Dispatcher(store, channels, worker=worker, lease_seconds=lease, settle_seconds=settle).run(
                until_empty=True, max_wait=60
            )
        finally:
            store.close()
        return {
            "where": where, "sent": report.sent, "failed": report.failed, "expired": report.expired,
            "opted_out": report.opted_out, "retried": report.retried, "unsure": report.unsure,
            "reconciled_sent": report.reconciled_sent, "reconciled_requeued": report.reconciled_requeued,
            "still_waiting": report.pending,
        }  # fmt: skip

    def twilio_settings() -> Any:
        """The ``twilio_default`` Connection as :class:`ews.channels.setup.TwilioSettings`; ``None`` without one."""
        from airflow.sdk import Connection
        from airflow.sdk.exceptions import AirflowNotFoundException

        from ews.channels.setup import TwilioSettings

        try:
            conn = Connection.get(TWILIO_CONN_ID)
        except AirflowNotFoundException:
            return None  # no connection: the dry-run outbox
        return TwilioSettings.from_connection(TWILIO_CONN_ID, conn.login, conn.password, conn.extra)

    deliver()


ews_dispatch()

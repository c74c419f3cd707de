"""Airflow DAG ``ews_review``: the review gate as an Airflow human-in-the-loop approval, one per held thread.

Top level holds declarations only (see ``ews_airflow``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import dag, task

from ews_airflow import LEDGER, REVIEW, config_errors_fail_fast, database_url, region_env

APPROVE, REJECT = "Approve", "Reject"

DOC_MD = """
### ews_review

On every `ews_review_queue` asset event (a pipeline run held alert versions for review: the region's
`alerts.review_levels` or `max_recipients`): one Airflow **human-in-the-loop** approval per held thread
(Approve / Reject, with the thread's villages, level and how long it has waited), then the decision is applied
exactly as `ews alerts approve|reject THREAD` applies it: approved versions are queued in the send ledger at once
(asset `ews_ledger`: ews_dispatch delivers them), rejected ones never go out. Either way in decides once: a
thread decided with `ews alerts` meanwhile is left as it is, and the Airflow answer is logged as moot.
A question unanswered for 12 hours times out without a decision (the thread stays held, and ews_watch says so).
"""


@dag(
    dag_id="ews_review",
    schedule=[REVIEW],
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=8,  # several holds may wait for people at once
    dagrun_timeout=timedelta(hours=13),
    tags=["ews", "review"],
    doc_md=DOC_MD,
    default_args={"owner": "ews", "retries": 1, "retry_delay": timedelta(seconds=15)},
)
def ews_review() -> None:
    @task(execution_timeout=timedelta(minutes=5))
    def held_threads(*, triggering_asset_events: Any = None) -> list[dict[str, Any]]:
        """The threads still held in the regions of the triggering events (no personal data)."""
        from ews.config import open_region
        from ews.store.repository import Store

        regions: dict[str, str] = {}
        for events in (triggering_asset_events or {}).values():
            for event in events:
                extra = event.extra or {}
                if extra.get("region") and extra.get("region_file"):
                    regions[str(extra["region"])] = str(extra["region_file"])
        store = Store.from_url(database_url())
        try:
            found = []
            for region_id, region_file in sorted(regions.items()):
                with config_errors_fail_fast():
                    config = open_region(region_file, region_env())
                for thread in store.pending_threads(config.id):
                    found.append({
                        "region": config.id, "region_file": region_file, "thread": thread.thread_id,
                        "subject": f"Kirim peringatan {thread.level.label.upper()} ({config.name})? {thread.thread_id}",
                        "body": f"**{config.name}** ({region_id}): {thread.line()}\\n\\n"
                                f"Approve: queue the alert for its villages now. Reject: it never goes out.",
                    })  # fmt: skip
        finally:
            store.close()
        return found

    @task
    def questions(found: list[dict[str, Any]]) -> list[dict[str, str]]:
        return [{"subject": f["subject"], "body": f["body"]} for f in found]

    @task(outlets=[LEDGER], execution_timeout=timedelta(minutes=10))
    def apply(item: Any, *, outlet_events: Any = None) -> dict[str, Any]:
        """Apply one operator's answer to one thread, once; queue what was approved."""
        import logging

        from ews.config import open_region
        from ews.pipeline import decide_review
        from ews.store.repository import Store

        log = logging.getLogger(__name__)
        held, answer = item
        chosen = (answer or {}).get("chosen_options") or []
        who = (answer or {}).get("responded_by_user") or {}
        by = f"airflow:{who.get('name') or who.get('id') or 'operator'}"
        status = "approved" if chosen == [APPROVE] else "rejected"
        with config_errors_fail_fast():
            config = open_region(held["region_file"], region_env())
        store = Store.from_url(database_url())
        try:
            pending = {t.thread_id for t in store.pending_threads(config.id)}
            if held["thread"] not in pending:
                log.warning("thread %s was decided already (ews alerts?): this answer (%s) changes nothing",
                            held["thread"], status)  # fmt: skip
                return {"thread": held["thread"], "status": "already decided", "queued": 0}
            decided, queued = decide_review(store, config, status, by, threads=[held["thread"]])
        finally:
            store.close()
        if outlet_events is not None:
            outlet_events[LEDGER].extra = {"region": config.id, "queued": queued, "source_dag": "ews_review"}
        return {"thread": held["thread"], "status": status, "versions": len(decided), "queued": queued}

    found = held_threads()
    review = HITLOperator.partial(
        task_id="review", options=[APPROVE, REJECT], multiple=False, response_timeout=timedelta(hours=12),
    ).expand_kwargs(questions(found))  # fmt: skip
    apply.expand(item=found.zip(review.output))


ews_review()

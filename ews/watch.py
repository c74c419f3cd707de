"""Is the early-warning chain healthy? The checks behind the ``ews_watch`` DAG (and ``ews watch``).

An early-warning system that is degraded says so loudly: each check returns what is wrong, in words an
operator acts on, and the caller fails (the DAG run goes red and calls its on-failure hook). No personal
data: counts, thread ids, region ids and source names only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ews.store.repository import Store


@dataclass(frozen=True)
class WatchLimits:
    """How long things may wait before the watch fails."""

    max_queue_age: timedelta = timedelta(minutes=5)  # a queued message older than this is stuck
    max_run_age: timedelta = timedelta(minutes=30)  # no pipeline run finished for this long: the schedule stalled


def check_health(store: Store, now: datetime, limits: WatchLimits | None = None) -> list[str]:
    """Everything wrong with the chain right now; empty when it is healthy.

    - a message waiting longer than ``max_queue_age`` (the dispatcher is down, Twilio refuses, a lease hangs);
    - an alert held for review (someone must decide: ``ews alerts approve|reject THREAD``);
    - the newest run of a region is older than ``max_run_age`` or said DEGRADED (a source failed or was stale).
    """
    limits = limits or WatchLimits()
    problems: list[str] = []
    oldest = store.oldest_waiting()
    if oldest is not None and now - oldest > limits.max_queue_age:
        minutes = (now - oldest).total_seconds() / 60
        problems.append(
            f"STUCK QUEUE: a message has waited {minutes:.0f} min to leave (limit {limits.max_queue_age}); is "
            "ews_dispatch running, and does Twilio accept its credentials? (ews alerts show THREAD)"
        )
    for held in store.pending_threads():
        problems.append(f"HELD FOR REVIEW: {held.line()}")
    for run in store.latest_runs():
        finished = run["finished_at"]
        if finished is not None and now - finished > limits.max_run_age:
            problems.append(
                f"NO RECENT RUN: region {run['region']} last finished a run {finished.isoformat()} "
                f"(limit {limits.max_run_age}); are the pipeline DAGs scheduled and unpaused?"
            )
        degraded = [p for p in run["problems"] or [] if str(p.get("message", "")).startswith("DEGRADED")]
        if degraded:
            sources = ", ".join(sorted({str(p.get("source", "?")) for p in degraded})[:5])
            problems.append(
                f"DEGRADED: the newest run of region {run['region']} could not use {len(degraded)} source(s) "
                f"({sources}); see its report.json problems"
            )
    return problems

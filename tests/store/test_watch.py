"""The checks behind the ews_watch DAG: a stuck queue, a held review, an old or degraded run."""

from __future__ import annotations

from datetime import timedelta

from ews.contacts import recipient_id
from ews.store.repository import Store
from ews.watch import WatchLimits, check_health

from .factories import T0, decision, phone


def test_a_healthy_store_has_nothing_to_say(store: Store) -> None:
    assert check_health(store, T0) == []


def test_a_message_waiting_too_long_is_a_stuck_queue(store: Store) -> None:
    version = store.add_alert_version(decision(), "cap-1", "auto", at=T0)
    store.enqueue_group(
        [version], recipient_id(phone(1)), "resident", "sms", address=phone(1), render=lambda ids: "teks",
        language="id", priority=1, valid_until=None, at=T0,
    )  # fmt: skip
    limits = WatchLimits(max_queue_age=timedelta(minutes=5))
    assert check_health(store, T0 + timedelta(minutes=4), limits) == []
    (problem,) = check_health(store, T0 + timedelta(minutes=6), limits)
    assert problem.startswith("STUCK QUEUE: a message has waited 6 min")
    assert phone(1) not in problem


def test_a_held_review_and_a_degraded_or_old_run_are_said(store: Store) -> None:
    store.add_alert_version(decision(level=decision().level), "cap-1", "pending", at=T0)
    run = store.start_run("jawa-timur", "bmkg", T0)
    store.finish_run(run, "partial", {}, [{"source": "gempaterkini.json", "message": "DEGRADED: 404"}], at=T0)
    problems = check_health(store, T0 + timedelta(hours=1), WatchLimits(max_run_age=timedelta(minutes=30)))
    assert [p.split(":")[0] for p in problems] == ["HELD FOR REVIEW", "NO RECENT RUN", "DEGRADED"]
    assert "gempaterkini.json" in problems[2]


def test_known_identifiers_looks_up_only_what_is_asked(store: Store) -> None:
    # The poll asks for the identifiers the index lists, never for the whole table.
    assert store.known_identifiers(["2.49.0.1.360.0.2026.09.24.07.75.002"]) == set()
    assert store.known_identifiers([]) == set()

"""A resident's message still waiting is withdrawn when a newer one for the same village replaces it."""

from __future__ import annotations

from datetime import timedelta

from ews.contacts import recipient_id
from ews.store.repository import Store

from .factories import T0, decision, phone


def _queue(store: Store, version: int, who: str, channel: str = "sms", audience: str = "resident") -> int:
    lid = store.enqueue_group(
        [version], who, audience, channel, address=phone(1), render=lambda ids: f"text {ids}", language="id",
        priority=1, valid_until=None, at=T0,
    )  # fmt: skip
    assert lid is not None
    return lid


def test_an_unsent_alert_is_withdrawn_by_the_newer_message_for_its_village(store: Store) -> None:
    alert = store.add_alert_version(decision(seq=1), "cap-1", "auto", at=T0)
    cancel = store.add_alert_version(decision(seq=2), "cap-2", "auto", at=T0)
    other_village = store.add_alert_version(decision(village="35.78.01.1002"), "cap-3", "auto", at=T0)
    me, you = recipient_id(phone(1)), recipient_id(phone(2))
    old = _queue(store, alert, me)
    untouched = [_queue(store, alert, you), _queue(store, other_village, me), _queue(store, alert, me, "whatsapp")]
    newer = _queue(store, cancel, me)
    assert store.supersede_queued([newer], at=T0 + timedelta(minutes=1)) == 1
    rows = {r.ledger_id: r for r in store.lease("w", T0 + timedelta(minutes=2), limit=50)}
    assert old not in rows  # withdrawn: it will never arrive after its cancel
    assert newer in rows
    assert set(untouched) <= set(rows)  # another person, another village, another channel: still going
    # Once in flight a row is never withdrawn (it may be at the provider already).
    store.release(list(rows.values()), worker="w", now=T0 + timedelta(minutes=2))
    in_flight = store.lease("w", T0 + timedelta(minutes=3), limit=50)
    later = store.add_alert_version(decision(seq=3), "cap-4", "auto", at=T0)
    assert store.supersede_queued([_queue(store, later, me)], at=T0 + timedelta(minutes=4)) == 0
    assert in_flight

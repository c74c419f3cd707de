"""Set-based writes of a cycle: alert versions and ledger claims in bulk, with the per-row methods' rules."""

from __future__ import annotations

import pytest

from ews.contacts import recipient_id
from ews.errors import StoreError
from ews.store.repository import Claim, NewVersion, Store

from .factories import T0, decision, phone, race


def _claim(version_ids: tuple[int, ...], n: int, body: str = "Siaga banjir", **kw: object) -> Claim:
    return Claim(
        version_ids, recipient_id(phone(n)), "resident", "sms", address=phone(n), body=body, language="id",
        priority=1, valid_until=None, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def _versions(store: Store, villages: list[str], thread: str = "T1", seq: int = 1) -> list[int]:
    rows = [NewVersion(decision(v, seq=seq, thread=thread), f"cap-{thread}-{v}-{seq}", "auto") for v in villages]
    return store.add_alert_versions(rows, at=T0)


def test_add_alert_versions_matches_the_per_row_method(store: Store) -> None:
    villages = [f"35.78.01.{1000 + i}" for i in range(1200)]  # more than one chunk
    ids = _versions(store, villages)
    assert len(set(ids)) == len(villages)
    assert [store.alert_version(i).village_code for i in ids[:3]] == villages[:3]
    # Idempotent: the same keys return the ids stored first, as add_alert_version does.
    assert _versions(store, villages) == ids
    assert store.add_alert_version(decision(villages[5], thread="T1"), "cap-T1-x-1", "auto", at=T0) == ids[5]
    assert [v.id for v in store.alert_versions(reversed(ids[:4]))] == list(reversed(ids[:4]))


def test_add_alert_versions_refuses_a_bad_status_and_a_used_cap_identifier(store: Store) -> None:
    with pytest.raises(StoreError, match=r"status 'sent'.*35\.78\.01\.1001"):
        store.add_alert_versions([NewVersion(decision("35.78.01.1001"), "cap-a", "sent")], at=T0)
    _versions(store, ["35.78.01.1001"])
    with pytest.raises(StoreError, match="alert version"):
        store.add_alert_versions(
            [NewVersion(decision("35.78.01.1002", thread="T1"), "cap-T1-35.78.01.1001-1", "auto")], at=T0
        )
    assert store.versions_by_village("jawa-timur", [("T1", "35.78.01.1002")]) == {}


def test_enqueue_many_claims_each_version_once_per_person(store: Store) -> None:
    a, b, c = _versions(store, ["35.78.01.1001", "35.78.01.1002", "35.78.01.1003"])
    leads = store.enqueue_many([_claim((a,), 1), _claim((a, b), 2), _claim((c,), 3, fallback_body="sms")], at=T0)
    assert all(isinstance(x, int) for x in leads)
    again = store.enqueue_many([_claim((a,), 1), _claim((a, b), 2), _claim((b, c), 3)], at=T0)
    # Person 3 had c: only b is new, and its row becomes the lead that carries the text.
    assert again[:2] == [None, None]
    assert again[2] is not None
    queued = {q.ledger_id: q for q in store.lease("w", T0, limit=100)}
    assert set(queued) == {leads[0], leads[1], leads[2], again[2]}  # grouped rows are not sent on their own
    assert queued[again[2]].body == "Siaga banjir"  # type: ignore[index]
    assert queued[leads[2]].fallback_body == "sms"  # type: ignore[index]
    assert store.queue_counts()["sending"] == 4


def test_enqueue_many_refuses_a_phone_number_as_recipient(store: Store) -> None:
    (a,) = _versions(store, ["35.78.01.1001"])
    bad = Claim((a,), phone(1), "resident", "sms", address=phone(1), body="x", language="id", priority=1,
                valid_until=None)  # fmt: skip
    with pytest.raises(StoreError, match="never a phone number") as info:
        store.enqueue_many([bad], at=T0)
    assert phone(1) not in str(info.value)


def test_enqueue_many_racing_workers_queue_each_message_once(store: Store) -> None:
    ids = _versions(store, [f"35.78.01.{1000 + i}" for i in range(50)])
    claims = [_claim((v,), n) for n, v in enumerate(ids)]
    results = race(lambda: store.enqueue_many(claims, at=T0))
    won = [lid for r in results for lid in r if lid is not None]
    assert len(won) == len(set(won)) == len(claims)


def test_save_tagana_writes_only_when_the_units_changed(store: Store) -> None:
    from sqlalchemy import event

    from ews.types import TaganaUnit

    writes: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.lstrip().upper().startswith(("DELETE", "INSERT")):
            writes.append(statement)

    event.listen(store.engine, "before_cursor_execute", seen)
    units = [
        TaganaUnit("sda", "Tagana Sidoarjo", "35.15", (), "Ani", phone(9), "sms"),
        TaganaUnit("sby", "Tagana Surabaya", "35.78", ("35.78.01",), "Budi", phone(7), "whatsapp"),
    ]
    store.save_tagana(units)
    assert len(writes) == 4  # two deletes, one multi-row insert per table
    store.save_tagana(units)  # the same file read again: nothing rewritten
    assert len(writes) == 4
    moved = [units[0], TaganaUnit("sby", "Tagana Surabaya", "35.78", ("35.78.01",), "Budi", phone(8), "whatsapp")]
    store.save_tagana(moved)
    assert len(writes) == 8
    assert {u.phone for u in store.tagana_units()} == {phone(9), phone(8)}


def test_tagana_notices_give_each_unit_its_latest_notice_of_each_thread(store: Store) -> None:
    unit = recipient_id(phone(9))

    def notice(version: int, body: str) -> Claim:
        return Claim(
            (version,), unit, "tagana", "sms", address=phone(9), body=body, language="id", priority=1,
            valid_until=None,
        )  # fmt: skip

    (v1,) = _versions(store, ["35.78.01.1001"], seq=1)
    (v2,) = _versions(store, ["35.78.01.1001"], seq=2)
    (w1,) = _versions(store, ["35.78.01.1002"], thread="T2")
    (first,) = store.enqueue_many([notice(v1, "SIAGA: mobilisasi")], at=T0)
    (second,) = store.enqueue_many([notice(v2, "AWAS: mobilisasi")], at=T0)
    (other,) = store.enqueue_many([notice(w1, "T2: mobilisasi")], at=T0)
    assert first is not None
    assert second is not None
    assert other is not None
    assert store.tagana_notices("jawa-timur", {"T1", "T2"}, {unit}) == {
        ("T1", unit): (second, "AWAS: mobilisasi", None, "sms"),
        ("T2", unit): (other, "T2: mobilisasi", None, "sms"),
    }
    assert store.tagana_notices("jawa-timur", {"T1"}, {recipient_id(phone(8))}) == {}

"""Store methods on SQLite and PostgreSQL: upserts, idempotency, the race-safe ledger, review, runs."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest
from shapely.geometry import Polygon
from sqlalchemy import func, select

from ews.alerts.model import VillageState
from ews.contacts import recipient_id
from ews.errors import StoreError
from ews.store.models import Delivery, LedgerEntry
from ews.store.repository import Outcome, Store
from ews.types import Level, TaganaUnit, Warning

from .factories import T0, decision, phone

WIB = timezone(timedelta(hours=7), "WIB")
WITA = timezone(timedelta(hours=8), "WITA")


def warning(identifier: str, sent: datetime, references: tuple[str, ...] = (), msg_type: str = "Alert") -> Warning:
    return Warning(
        identifier=identifier,
        sender="cuaca.ekstrem@bmkg.go.id",
        sent=sent,
        status="Actual",
        msg_type=msg_type,
        references=references,
        language="id",
        event="Hujan Lebat",
        urgency="Immediate",
        severity="Severe",
        certainty="Observed",
        effective=sent,
        expires=sent + timedelta(hours=3),
        headline="Hujan Lebat di Jawa Timur",
        description="",
        web="https://nowcasting.bmkg.go.id/",
        area_desc="Jawa Timur",
        geometry=Polygon([(112.0, -7.0), (113.0, -7.0), (113.0, -8.0)]),
        polygon_count=1,
        source="file:cap.xml",
    )


def state(village: str, level: Level = Level.SIAGA, active: bool = True, thread: str = "T1") -> VillageState:
    return VillageState(
        region="jawa-timur",
        village_code=village,
        thread_id=thread,
        level=level,
        seq=1,
        warning_id=thread,
        warning_sent=datetime(2026, 9, 24, 15, 30, tzinfo=WIB),
        expires=datetime(2026, 9, 24, 19, 30, tzinfo=WITA),
        fraction=0.4,
        active=active,
    )


def queue(store: Store, version: int, who: str, audience: str = "resident", channel: str = "sms") -> bool:
    """Queue one message (the send ledger's claim); True if this call created the row."""
    return (
        store.enqueue(version, who, audience, channel, address="+6289990000001", body="x", language="id", priority=1,
                      valid_until=None)
        is not None
    )  # fmt: skip


def settle(store: Store, status: str, provider_id: str | None = None) -> None:
    """Lease every queued row and record ``status`` for it, as the dispatcher does."""
    rows = store.lease("test", T0, limit=1000)
    store.finish_many([Outcome(q.ledger_id, status, provider_id) for q in rows], worker="test")


def ledger_rows(store: Store) -> int:
    with store.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(LedgerEntry)).scalar_one())


# -- times ------------------------------------------------------------------------------------------------


def test_aware_datetimes_round_trip_as_utc(store: Store) -> None:
    store.save_states("jawa-timur", [state("35.78.01.1001")], at=T0)
    (back,) = store.village_states("jawa-timur")
    # 15:30 WIB is 08:30 UTC; 19:30 WITA is 11:30 UTC: the same instants, now labelled UTC.
    assert back.warning_sent == datetime(2026, 9, 24, 8, 30, tzinfo=UTC)
    assert back.warning_sent.tzinfo is UTC
    assert back.expires == datetime(2026, 9, 24, 11, 30, tzinfo=UTC)
    assert back.expires is not None
    assert back.expires.tzinfo is UTC


def test_naive_datetime_is_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="naive datetime"):
        store.record_source("CGT1", "file:a.xml", "abc", datetime(2026, 9, 24, 8, 0))


# -- source documents and warnings --------------------------------------------------------------------


def test_record_source_is_true_once(store: Store) -> None:
    assert store.record_source("CGT1", "https://bmkg/a.xml", "h1", T0)
    assert not store.record_source("CGT1", "https://bmkg/a.xml", "h1", T0 + timedelta(minutes=5))
    assert store.record_source("CGT1", "https://bmkg/a.xml", "h2", T0)  # same id, new content


def test_warnings_upsert_and_threads(store: Store) -> None:
    sent = datetime(2026, 9, 24, 15, 0, tzinfo=WIB)
    store.save_warning(warning("A1", sent), "A1")
    store.save_warning(warning("A2", sent + timedelta(hours=1), ("A1",), "Update"), "A1")
    store.save_warning(warning("B1", sent), "B1")
    store.save_warning(warning("A2", sent + timedelta(hours=1), ("A1",), "Update"), "A1")  # again: no duplicate
    assert store.warning_threads() == {"A1": "A1", "A2": "A1", "B1": "B1"}
    headers = store.warning_headers("A1")
    assert [h.identifier for h in headers] == ["A1", "A2"]
    assert headers[1].references == ("A1",)
    assert headers[1].msg_type == "Update"
    assert headers[0].sent == sent
    assert headers[0].sent.tzinfo is UTC
    assert store.warning_headers("nothing") == []


# -- village states -------------------------------------------------------------------------------------


def test_village_states_upsert_and_active_alerts(store: Store) -> None:
    store.save_states("jawa-timur", [state("35.78.01.1001"), state("35.78.01.1002", Level.AWAS)], at=T0)
    store.save_states("jawa-timur", [state("35.78.01.1001", Level.NONE, active=False)], at=T0)
    states = {s.village_code: s for s in store.village_states("jawa-timur")}
    assert len(states) == 2
    assert states["35.78.01.1001"].active is False
    assert states["35.78.01.1001"].level is Level.NONE
    assert [s.village_code for s in store.active_alerts("jawa-timur")] == ["35.78.01.1002"]
    assert store.village_states("other") == []


def test_save_states_refuses_another_region(store: Store) -> None:
    with pytest.raises(StoreError, match=r"region 'demo'.*jawa-timur"):
        store.save_states("demo", [state("35.78.01.1001")])


# -- alert versions -------------------------------------------------------------------------------------


def test_add_alert_version_is_idempotent(store: Store) -> None:
    first = store.add_alert_version(decision(), "ews-1", "auto", at=T0)
    again = store.add_alert_version(decision(), "ews-1", "auto", at=T0)
    other = store.add_alert_version(decision(seq=2), "ews-2", "pending", at=T0)
    assert first == again
    assert other != first
    version = store.alert_version(first)
    assert (version.seq, version.level, version.status, version.cap_identifier) == (1, Level.SIAGA, "auto", "ews-1")
    assert version.created_at == T0


def test_cap_identifier_must_be_unique(store: Store) -> None:
    store.add_alert_version(decision(), "ews-1", "auto")
    with pytest.raises(StoreError, match="CAP ews-1"):
        store.add_alert_version(decision(village="35.78.01.1002"), "ews-1", "auto")


def test_unknown_version_status_is_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="unknown"):
        store.add_alert_version(decision(), "ews-1", "sent")


def test_pending_version_is_approved_once(store: Store) -> None:
    pending = store.add_alert_version(decision(), "ews-1", "pending")
    auto = store.add_alert_version(decision(seq=2), "ews-2", "auto")
    assert [v.id for v in store.pending_versions("jawa-timur")] == [pending]
    assert store.pending_versions("demo") == []
    store.set_version_status(pending, "approved", "BPBD duty officer", at=T0)
    version = store.alert_version(pending)
    assert (version.status, version.decided_by, version.decided_at) == ("approved", "BPBD duty officer", T0)
    assert store.pending_versions() == []
    with pytest.raises(StoreError, match="is 'approved', not 'pending'"):
        store.set_version_status(pending, "approved", "someone else")
    with pytest.raises(StoreError, match="is 'auto', not 'pending'"):
        store.set_version_status(auto, "rejected", "someone")


def test_reject_and_bad_status_transitions(store: Store) -> None:
    pending = store.add_alert_version(decision(), "ews-1", "pending")
    with pytest.raises(StoreError, match="'approved' or 'rejected'"):
        store.set_version_status(pending, "pending", "x")
    with pytest.raises(StoreError, match="no alert version 999"):
        store.set_version_status(999, "approved", "x")
    store.set_version_status(pending, "rejected", "x")
    with pytest.raises(StoreError, match="is 'rejected'"):
        store.set_version_status(pending, "approved", "x")


def test_the_gate_decides_whole_threads_in_one_statement(store: Store) -> None:
    a1 = store.add_alert_version(decision("35.78.01.1001", thread="A"), "a-1", "pending", at=T0)
    a2 = store.add_alert_version(decision("35.78.01.1002", thread="A", level=Level.AWAS), "a-2", "pending", at=T0)
    b1 = store.add_alert_version(decision("35.78.01.1003", thread="B"), "b-1", "pending", at=T0)
    store.add_alert_version(decision("35.78.01.1004", thread="C"), "c-1", "auto", at=T0)
    other = store.add_alert_version(decision("33.74.01.1001", thread="A", region="jawa-tengah"), "o-1", "pending")
    threads = {t.thread_id: t for t in store.pending_threads("jawa-timur")}
    assert set(threads) == {"A", "B"}
    assert (threads["A"].versions, threads["A"].villages, threads["A"].level) == (2, 2, Level.AWAS)
    assert threads["A"].since == T0
    assert not threads["A"].exercise
    assert {t.region for t in store.pending_threads()} == {"jawa-timur", "jawa-tengah"}

    decided = store.decide_pending("jawa-timur", "approved", "duty officer", threads=["A"], at=T0)
    assert [v.id for v in decided] == [a1, a2]  # the thread's villages, not jawa-tengah's version of it
    assert {(v.status, v.decided_by) for v in decided} == {("approved", "duty officer")}
    assert store.alert_version(other).status == "pending"
    with pytest.raises(StoreError, match="nothing pending in A of region jawa-timur \\(2 approved\\)"):
        store.decide_pending("jawa-timur", "rejected", "x", threads=["A"])
    with pytest.raises(StoreError, match=f"{other} \\(region jawa-tengah\\) do not belong to region jawa-timur"):
        store.decide_pending("jawa-timur", "approved", "x", ids=[b1, other])
    assert store.alert_version(b1).status == "pending"  # a refused selection changes nothing
    with pytest.raises(StoreError, match="no alert version of region jawa-timur matches Z"):
        store.decide_pending("jawa-timur", "approved", "x", threads=["Z"])
    with pytest.raises(StoreError, match="say which"):
        store.decide_pending("jawa-timur", "approved", "x")
    assert [v.id for v in store.decide_pending("jawa-timur", "rejected", "x", every=True)] == [b1]
    assert store.pending_threads("jawa-timur") == []


# -- send ledger ----------------------------------------------------------------------------------------


def test_claim_is_true_once_and_leaves_one_row(store: Store) -> None:
    version = store.add_alert_version(decision(), "ews-1", "auto")
    who = recipient_id(phone(1))
    assert queue(store, version, who)
    assert not queue(store, version, who)
    assert queue(store, version, who, channel="whatsapp")  # another channel is another send
    assert ledger_rows(store) == 2


def test_claim_is_race_safe_across_threads(store: Store) -> None:
    version = store.add_alert_version(decision(), "ews-1", "auto")
    threads_per_key, keys = 4, [recipient_id(phone(n)) for n in range(8)]
    results: dict[str, list[bool]] = {k: [] for k in keys}
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads_per_key * len(keys))
    lock = threading.Lock()

    def race(key: str) -> None:
        try:
            barrier.wait()
            won = queue(store, version, key)
            with lock:
                results[key].append(won)
        except BaseException as exc:  # collected and re-raised in the test thread
            errors.append(exc)

    workers = [threading.Thread(target=race, args=(k,)) for k in keys for _ in range(threads_per_key)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    assert all(sorted(r) == [False] * (threads_per_key - 1) + [True] for r in results.values()), results
    assert ledger_rows(store) == len(keys)


def test_claim_refuses_a_phone_number(store: Store) -> None:
    version = store.add_alert_version(decision(), "ews-1", "auto")
    with pytest.raises(StoreError, match="never a phone number") as info:
        queue(store, version, phone(1))
    assert phone(1) not in str(info.value)


def test_claim_checks_audience_and_version(store: Store) -> None:
    version = store.add_alert_version(decision(), "ews-1", "auto")
    with pytest.raises(StoreError, match="audience 'public'"):
        queue(store, version, recipient_id(phone(1)), audience="public")
    with pytest.raises(StoreError, match="alert version 12345"):
        queue(store, 12345, recipient_id(phone(1)))


def test_thread_recipients_cover_every_version_of_the_thread(store: Store) -> None:
    v1 = store.add_alert_version(decision(seq=1), "ews-1", "auto")
    v2 = store.add_alert_version(decision(seq=2), "ews-2", "auto")
    v3 = store.add_alert_version(decision(village="35.78.01.1002"), "ews-3", "auto")
    other = store.add_alert_version(decision(thread="OTHER"), "ews-4", "auto")
    a, b, c, d = (recipient_id(phone(n)) for n in range(4))
    queue(store, v1, a)
    queue(store, v2, a)  # heard twice, listed once
    queue(store, v2, b, "tagana", "whatsapp")
    queue(store, v3, c, channel="whatsapp")
    queue(store, other, d)
    settle(store, "dry-run")  # every ledger status counts: sent or not, they heard of it
    assert store.thread_recipients("jawa-timur", "CGT20260924002") == sorted(
        [(a, "resident", "sms"), (b, "tagana", "whatsapp"), (c, "resident", "whatsapp")]
    )
    assert store.thread_recipients("demo", "CGT20260924002") == []
    assert store.version_recipients("jawa-timur", "CGT20260924002", "35.78.01.1001") == sorted(
        [(a, "resident", "sms"), (b, "tagana", "whatsapp")]
    )
    assert store.version_recipients("jawa-timur", "CGT20260924002", "35.78.01.1002") == [(c, "resident", "whatsapp")]
    assert [v.id for v in store.versions_of("jawa-timur", "CGT20260924002", "35.78.01.1001")] == [v1, v2]
    assert store.versions_of("jawa-timur", "OTHER", "35.78.01.1002") == []


def test_settled_sends_and_provider_status_reports(store: Store) -> None:
    version = store.add_alert_version(decision(), "ews-1", "auto")
    queue(store, version, recipient_id(phone(1)))
    settle(store, "sent", "SM123")
    assert store.record_status("SM123", "delivered", at=T0 + timedelta(seconds=30))
    assert not store.record_status("SM123", "sent")  # late: never backwards
    assert not store.record_status("SM-unknown", "delivered")
    assert store.counts("jawa-timur")["ledger_sent"] == 1
    with store.engine.connect() as connection:
        statuses = connection.execute(select(Delivery.status).order_by(Delivery.id)).scalars().all()
    assert statuses == ["sent", "delivered"]


# -- counts, runs, Tagana -------------------------------------------------------------------------------


def test_counts(store: Store) -> None:
    store.save_states(
        "jawa-timur",
        [state("35.78.01.1001"), state("35.78.01.1002", Level.AWAS), state("35.78.01.1003", active=False)],
    )
    v = store.add_alert_version(decision(), "ews-1", "pending")
    queue(store, v, recipient_id(phone(1)))
    settle(store, "dry-run")
    counts = store.counts("jawa-timur")
    assert counts["active_villages"] == 2
    assert counts["villages_siaga"] == 1
    assert counts["villages_awas"] == 1
    assert counts["villages_waspada"] == 0
    assert counts["versions_pending"] == 1
    assert counts["versions_auto"] == 0
    assert counts["ledger_dry-run"] == 1
    assert counts["subscribers"] == 0


def test_run_log(store: Store) -> None:
    run = store.start_run("jawa-timur", "bmkg", T0)
    store.finish_run(run, "ok", {"warnings": 2}, [{"source": "x.xml", "message": "bad"}], at=T0 + timedelta(minutes=1))
    with pytest.raises(StoreError, match="no run 9999"):
        store.finish_run(9999, "ok", {}, [])


def test_tagana_units_round_trip(store: Store) -> None:
    units = [
        TaganaUnit("sby", "Tagana Surabaya", "35.78", ("35.78.01",), "Budi", phone(7), "whatsapp"),
        TaganaUnit("sby", "Tagana Surabaya", "35.78", ("35.78.01",), "Sari", None, "sms"),
        TaganaUnit("sda", "Tagana Sidoarjo", "35.15", (), "", None, "whatsapp"),
    ]
    store.save_tagana(units)
    store.save_tagana(units)  # replaces, does not add
    assert store.tagana_units() == units

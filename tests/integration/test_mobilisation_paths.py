"""Tagana mobilisation paths the acceptance scenario leaves out, on SQLite and PostgreSQL (issue 13, point 1).

Each test runs the pipeline on the synthetic demo region with its own ``tagana.csv`` and ``mobilisation:``
block, a CAP warning over the whole region (Severe/Expected/Likely: Siaga; Extreme: Awas; Moderate: Waspada,
below Tagana's level) and an injectable clock, then checks the exact mobilisation rows, events, ledger rows and
audit entries: repeat rounds that stop, quorum 2, re-notification when the level rises after the ack timeout,
re-opening when a stood-down warning comes back, a BPBD duty contact at step 3, a unit without contacts, the
``ews tagana`` commands, and that no phone number reaches logs, events, audit entries or errors.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select
from tests_support import minimal_cap
from twilio.request_validator import RequestValidator

from ews.center.mobilise import acknowledge, escalate_due
from ews.channels.outbox import FileOutbox
from ews.cli import main
from ews.config import MobilisationRules, open_region
from ews.contacts import FICTIONAL_PREFIX, fictional_phone, recipient_id
from ews.errors import StoreError
from ews.pipeline import RunReport, run_slice
from ews.store.mobilisations import MobilisationEventRecord, MobilisationRecord, NewPage
from ews.store.models import LedgerEntry
from ews.store.repository import Store
from ews.synthetic import write_synthetic_region
from ews.web.app import create_app

T = datetime(2026, 11, 28, 10, 5, tzinfo=UTC)  # 17:05 WIB
SENDER = "cuaca.ekstrem@bmkg.go.id"
A1, U1, U2, U3 = (f"2.49.0.1.360.0.2026.11.28.10.35.{n:03d}" for n in (1, 2, 3, 4))
WHOLE = "-8.97,110.08 -8.97,110.39 -8.81,110.39 -8.81,110.08 -8.97,110.08"  # every demo village, wholly
BARAT, TIMUR, BARE = "TGN-3599-01", "TGN-3599-02", "TGN-3599-09"
BARAT_1, TIMUR_1, TIMUR_2, BPBD = (fictional_phone(n) for n in (9001, 9002, 9003, 9004))
HEADER = "unit_id,name,kabkota_code,kecamatan_codes,coordinator,phone,channel,step,role\n"
TIMUR_LINES = (
    f"{TIMUR},Tagana Kab. Contoh Pos Timur,35.99,35.99.03,Koordinator Pos Timur,{TIMUR_1},sms,,\n"
    f"{TIMUR},Tagana Kab. Contoh Pos Timur,35.99,35.99.03,Wakil Pos Timur,{TIMUR_2},sms,2,coordinator\n"
    f"{TIMUR},Tagana Kab. Contoh Pos Timur,35.99,35.99.03,Piket BPBD Kab. Contoh,{BPBD},sms,3,bpbd\n"
)
BARAT_LINE = (
    f"{BARAT},Tagana Kab. Contoh Pos Barat,35.99,35.99.01;35.99.02,Koordinator Pos Barat,{BARAT_1},whatsapp,1,\n"
)
BARE_LINE = f"{BARE},Tagana Kab. Contoh Tanpa Kontak,35.99,35.99.03,,,,,\n"
TOKEN, PUBLIC = "mobilisation-paths-token-not-a-secret", "https://ews.example.invalid"


def cap_time(at: datetime) -> str:
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "+00:00"


def warning(identifier: str, severity: str, at: datetime, previous: list[tuple[str, datetime]] | None = None) -> bytes:
    """A CAP warning over the whole demo region from ``at`` for three hours; an Update of ``previous``."""
    refs = " ".join(f"{SENDER},{i},{cap_time(t)}" for i, t in previous or [])
    return minimal_cap(
        WHOLE, identifier=identifier, severity=severity, urgency="Expected", certainty="Likely",
        effective=cap_time(at), expires=cap_time(T + timedelta(hours=3)), msg_type="Update" if previous else "Alert",
        references=refs,
    )  # fmt: skip


class Demo:
    """The demo region with a given ``tagana.csv`` and ``mobilisation:`` block, one store, cycles by clock."""

    def __init__(self, folder: Path, database_url: str, tagana: str, policy: str = "") -> None:
        self.folder = folder
        region = write_synthetic_region(folder / "region")
        (folder / "region" / "tagana.csv").write_text(HEADER + tagana, encoding="utf-8")
        if policy:
            region.write_text(region.read_text(encoding="utf-8") + policy, encoding="utf-8")
        self.config = open_region(region)
        self.store = Store.from_url(database_url)
        self.runs = 0

    def cycle(self, cap: bytes | None, at: datetime) -> RunReport:
        self.runs += 1
        feed = None
        if cap is not None:
            path = self.folder / "feed" / f"{self.runs}.xml"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(cap)
            feed = str(path)
        return run_slice(self.config, feed, self.folder / f"out{self.runs}", now=at, store=self.store,
                         channel=FileOutbox(self.folder / "outbox.jsonl"))  # fmt: skip

    def one(self, unit_id: str, at: datetime = T) -> MobilisationRecord:
        """The unit's mobilisation as at ``at`` (its next page)."""
        [m] = [m for m in self.store.mobilisations(now=at) if m.unit_id == unit_id]
        return m

    def events(self, m: MobilisationRecord, kind: str | None = None) -> list[MobilisationEventRecord]:
        return [e for e in self.store.mobilisation_events(m.id) if kind is None or e.kind == kind]

    def pages(self, m: MobilisationRecord) -> list[tuple[int, int | None, str | None]]:
        """The page events as (round, step, recipient id), in order."""
        return [(e.round, e.step, e.recipient_id) for e in self.events(m, "page")]

    def audits(self, m: MobilisationRecord) -> list[str]:
        return sorted(a.action for a in self.store.audit_entries(subject=f"mobilisation:{m.id}"))

    def page_rows(self) -> list[tuple[str, str, str | None, str, str | None]]:
        """Escalation pages in the send ledger (lead rows): (topic, recipient id, address, channel, body)."""
        e = LedgerEntry
        stmt = (
            select(e.topic, e.recipient_id, e.address, e.channel, e.body)
            .where(e.topic.like("mob:%"), e.grouped_into.is_(None))
            .order_by(e.id)
        )
        with self.store.engine.connect() as connection:
            return [tuple(r) for r in connection.execute(stmt)]  # type: ignore[misc]


MakeDemo = Callable[..., Demo]


@pytest.fixture
def demo(tmp_path: Path, database_url: str) -> Iterator[MakeDemo]:
    """Make the demo (``tagana.csv`` lines, ``mobilisation:`` block) on this test's database; closed after it."""
    made: list[Demo] = []

    def make(tagana: str, policy: str = "") -> Demo:
        d = Demo(tmp_path, database_url, tagana, policy)
        made.append(d)
        return d

    yield make
    for d in made:
        d.store.close()


def r(phone: str) -> str:
    return recipient_id(phone)


# -- repeat rounds ----------------------------------------------------------------------------------------------


def test_nobody_acknowledges_rounds_repeat_and_stop(demo: MakeDemo) -> None:
    d = demo(TIMUR_LINES, "mobilisation:\n  steps: [{targets: 1, delay_minutes: 0}, {targets: 2, delay_minutes: 10}]\n"
                          "  repeat: 2\n  repeat_after_minutes: 15\n")  # fmt: skip
    d.cycle(warning(A1, "Severe", T), T)
    m = d.one(TIMUR)
    assert (m.status, m.level, m.round) == ("open", 2, 1)
    assert d.pages(m) == [(1, 1, r(TIMUR_1))]
    assert m.next_page_at == T + timedelta(minutes=10)
    steps = []
    for minutes in (9, 10, 11, 24, 25, 34, 35, 49, 50, 60, 61, 90, 600):
        done = escalate_due(d.store, at=T + timedelta(minutes=minutes))
        steps.append((minutes, done.pages))
    # Round 1: step 2 at 10; round 2 from 10 + 15 = 25; round 3 from 35 + 15 = 50; then no round 4.
    assert steps == [(9, 0), (10, 1), (11, 0), (24, 0), (25, 1), (34, 0), (35, 1), (49, 0), (50, 1), (60, 1),
                     (61, 0), (90, 0), (600, 0)]  # fmt: skip
    m = d.one(TIMUR, T + timedelta(minutes=600))
    assert (m.status, m.round, m.next_page_at) == ("open", 3, None)
    assert m.round_started_at is not None
    assert m.round_started_at.replace(tzinfo=UTC) == T + timedelta(minutes=50)
    assert d.pages(m) == [
        (1, 1, r(TIMUR_1)), (1, 2, r(TIMUR_2)),
        (2, 1, r(TIMUR_1)), (2, 2, r(TIMUR_2)),
        (3, 1, r(TIMUR_1)), (3, 2, r(TIMUR_2)),
    ]  # fmt: skip
    assert [(t, who, to) for t, who, to, _, _ in d.page_rows()] == [
        (f"mob:{m.id}:s2:r1", r(TIMUR_2), TIMUR_2),
        (f"mob:{m.id}:s1:r2", r(TIMUR_1), TIMUR_1),
        (f"mob:{m.id}:s2:r2", r(TIMUR_2), TIMUR_2),
        (f"mob:{m.id}:s1:r3", r(TIMUR_1), TIMUR_1),
        (f"mob:{m.id}:s2:r3", r(TIMUR_2), TIMUR_2),
    ]
    body = d.page_rows()[1][4] or ""
    assert body.startswith("ESKALASI tahap 1: Koordinator Pos Timur, Wakil Pos Timur belum menjawab.")
    assert d.audits(m) == ["mobilisation opened"] + ["mobilisation page"] * 6
    # An acknowledgement in round 3 counts for round 3.
    acked = acknowledge(d.store, unit_id=TIMUR, responder=r(TIMUR_1), via="sms", at=T + timedelta(minutes=70))
    assert acked.outcomes == ((m.id, "mobilised", 1, 1),)
    assert [(e.round, e.actor) for e in d.events(m, "ack")] == [(3, r(TIMUR_1))]


def test_a_late_check_skips_the_rounds_it_missed(demo: MakeDemo) -> None:
    d = demo(TIMUR_LINES, "mobilisation:\n  steps: [{targets: 1, delay_minutes: 0}, {targets: 2, delay_minutes: 10}]\n"
                          "  repeat: 2\n  repeat_after_minutes: 15\n")  # fmt: skip
    d.cycle(warning(A1, "Severe", T), T)
    # The first check after 52 minutes: round 3 began at 50; rounds 1 and 2 are not paged in a burst.
    done = escalate_due(d.store, at=T + timedelta(minutes=52))
    assert done.pages == 1
    m = d.one(TIMUR)
    assert d.pages(m) == [(1, 1, r(TIMUR_1)), (3, 1, r(TIMUR_1))]
    assert m.round == 3


# -- quorum -----------------------------------------------------------------------------------------------------


def test_quorum_two_needs_two_distinct_responders(demo: MakeDemo) -> None:
    d = demo(TIMUR_LINES, f"mobilisation:\n  units:\n    {TIMUR}: {{quorum: 2}}\n")
    d.cycle(warning(A1, "Severe", T), T)
    m = d.one(TIMUR)
    assert m.quorum == 2
    first = acknowledge(d.store, unit_id=TIMUR.lower(), responder=r(TIMUR_1), via="sms", at=T + timedelta(minutes=2))
    assert first.outcomes == ((m.id, "acknowledged", 1, 2),)
    assert (first.duplicate, first.mobilised) == (False, False)
    assert first.reply() == f"Terima kasih, kesiapan {TIMUR} tercatat (1/2 konfirmasi; menunggu yang lain)."
    again = acknowledge(d.store, unit_id=TIMUR, responder=r(TIMUR_1), via="whatsapp", at=T + timedelta(minutes=3))
    assert again.outcomes == ((m.id, "acknowledged", 1, 2),)
    assert again.duplicate
    m = d.one(TIMUR)
    assert (m.status, m.acks, m.mobilised_at, m.acked_level) == ("acknowledged", 1, None, 2)
    assert m.acknowledged_at is not None
    assert m.acknowledged_at.replace(tzinfo=UTC) == T + timedelta(minutes=2)
    # Acknowledged: the escalation stops, though the quorum is not reached.
    assert escalate_due(d.store, at=T + timedelta(minutes=30)).pages == 0
    assert m.next_page_at is None
    second = acknowledge(d.store, unit_id=TIMUR, responder="operator-ani", via="dashboard",
                         at=T + timedelta(minutes=5), mobilisation_id=m.id)  # fmt: skip
    assert second.outcomes == ((m.id, "mobilised", 2, 2),)
    assert second.mobilised
    m = d.one(TIMUR)
    assert (m.status, m.acks) == ("mobilised", 2)
    assert m.mobilised_at is not None
    assert m.mobilised_at.replace(tzinfo=UTC) == T + timedelta(minutes=5)
    assert m.acknowledged_at is not None
    assert m.acknowledged_at.replace(tzinfo=UTC) == T + timedelta(minutes=2)  # the first ack's time stays
    assert [(e.kind, e.actor, e.recipient_id, e.channel, e.detail) for e in d.events(m) if e.kind != "page"] == [
        ("opened", "ews", None, None, "level 2, 12 village(s)"),
        ("ack", r(TIMUR_1), r(TIMUR_1), "sms", "1/2 this round"),
        ("ack", "operator-ani", None, "dashboard", "2/2 this round"),
        ("mobilised", "ews", None, None, "quorum 2"),
    ]
    entries = d.store.audit_entries(subject=f"mobilisation:{m.id}")
    assert sorted((a.actor, a.role, a.action) for a in entries if "ack" in a.action or "mobilised" in a.action) == [
        ("ews", "system", "mobilisation mobilised"),
        ("operator-ani", "user", "mobilisation acknowledged"),
        (r(TIMUR_1), "tagana", "mobilisation acknowledged"),
    ]
    # A third responder adds an acknowledgement; the unit stays mobilised, with no second "mobilised" event.
    third = acknowledge(d.store, unit_id=TIMUR, responder=r(BPBD), via="sms", at=T + timedelta(minutes=6))
    assert third.outcomes == ((m.id, "mobilised", 3, 2),)
    assert [e.kind for e in d.events(m)].count("mobilised") == 1


def test_two_acknowledgements_counted_apart_still_reach_the_quorum(
    demo: MakeDemo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two servers each read the mobilisation before the other's ack was stored: the database's count decides."""
    d = demo(TIMUR_LINES, f"mobilisation:\n  units:\n    {TIMUR}: {{quorum: 2}}\n")
    d.cycle(warning(A1, "Severe", T), T)
    m = d.one(TIMUR)
    stale = d.store.mobilisations(ids=[m.id], now=T)  # what the second server read, before the first ack
    first = acknowledge(d.store, unit_id=TIMUR, responder=r(TIMUR_1), via="sms", at=T + timedelta(minutes=2))
    assert first.outcomes == ((m.id, "acknowledged", 1, 2),)
    monkeypatch.setattr(type(d.store), "mobilisations", lambda *_a, **_k: stale)
    second = acknowledge(d.store, unit_id=TIMUR, responder=r(TIMUR_2), via="sms", at=T + timedelta(minutes=2))
    monkeypatch.undo()
    assert second.outcomes == ((m.id, "mobilised", 1, 2),)  # it counted only itself, the store counted both
    m = d.one(TIMUR)
    assert (m.status, m.acks, m.mobilised_at) == ("mobilised", 2, T + timedelta(minutes=2))
    assert [e.detail for e in d.events(m, "mobilised")] == ["quorum, with another ack"]
    assert d.store.ratchet_mobilised([(m.id, m.round, 2)], at=T + timedelta(minutes=3)) == []  # once


# -- re-notification --------------------------------------------------------------------------------------------


def test_an_acknowledged_unit_is_renotified_when_the_level_rises_after_the_ack_timeout(demo: MakeDemo) -> None:
    d = demo(TIMUR_LINES, "mobilisation:\n  ack_timeout_minutes: 30\n")
    d.cycle(warning(A1, "Severe", T), T)
    m = d.one(TIMUR)
    acknowledge(d.store, unit_id=TIMUR, responder=r(TIMUR_1), via="sms", at=T + timedelta(minutes=5))
    # The level rises to Awas 15 minutes after the acknowledgement: within the ack timeout, only an update.
    rise = warning(U1, "Extreme", T + timedelta(minutes=20), [(A1, T)])
    report = d.cycle(rise, T + timedelta(minutes=20))
    assert report.levels["Awas"] == 36
    m = d.one(TIMUR)
    assert (m.status, m.level, m.acked_level, m.round) == ("mobilised", 3, 2, 1)
    assert [e.detail for e in d.events(m, "update")] == ["level 3, 12 village(s)"]
    assert escalate_due(d.store, at=T + timedelta(minutes=30)).pages == 0
    # 35 minutes after the acknowledgement (timeout 30), the next cycle re-notifies: a new round, a new pass.
    d.cycle(rise, T + timedelta(minutes=35))
    m = d.one(TIMUR)
    assert (m.status, m.level, m.acked_level, m.round, m.first_round, m.acks) == ("open", 3, None, 2, 2, 0)
    assert [(e.round, e.detail) for e in d.events(m, "renotify")] == [(2, "level rose 2 -> 3")]
    assert "mobilisation re-notified" in d.audits(m)
    [notified] = [a for a in d.store.audit_entries(subject=f"mobilisation:{m.id}") if a.action.endswith("re-notified")]
    assert (notified.actor, dict(notified.detail)) == ("ews", {"level": 3, "round": 2})
    # The new round pages from step 1, then step 2 after its delay.
    assert escalate_due(d.store, at=T + timedelta(minutes=35)).pages == 1
    assert escalate_due(d.store, at=T + timedelta(minutes=44)).pages == 0
    assert escalate_due(d.store, at=T + timedelta(minutes=45)).pages == 1
    assert d.pages(m) == [(1, 1, r(TIMUR_1)), (2, 1, r(TIMUR_1)), (2, 2, r(TIMUR_2))]
    assert [t for t, *_ in d.page_rows()] == [f"mob:{m.id}:s1:r2", f"mob:{m.id}:s2:r2"]
    # An acknowledgement of the new round records its level; the same level later does not re-notify.
    acked = acknowledge(d.store, unit_id=TIMUR, responder=r(TIMUR_2), via="sms", at=T + timedelta(minutes=46))
    assert acked.outcomes == ((m.id, "mobilised", 1, 1),)
    m = d.one(TIMUR)
    assert (m.status, m.acked_level) == ("mobilised", 3)
    d.cycle(rise, T + timedelta(minutes=120))
    assert d.one(TIMUR).round == 2
    assert len(d.events(m, "renotify")) == 1


def test_a_rise_after_the_ack_timeout_is_step_one_of_the_new_round_by_itself(demo: MakeDemo) -> None:
    """The cycle's own notice of the rise reaches the step-1 contact: no escalation page to them the same minute."""
    d = demo(TIMUR_LINES, "mobilisation:\n  ack_timeout_minutes: 30\n")
    d.cycle(warning(A1, "Severe", T), T)
    acknowledge(d.store, unit_id=TIMUR, responder=r(TIMUR_1), via="sms", at=T + timedelta(minutes=5))
    rise = warning(U1, "Extreme", T + timedelta(minutes=40), [(A1, T)])
    d.cycle(rise, T + timedelta(minutes=40))  # 35 minutes after the acknowledgement: re-notified at once
    m = d.one(TIMUR)
    assert (m.status, m.round) == ("open", 2)
    assert [(e.round, e.step, e.recipient_id, e.detail) for e in d.events(m, "page") if e.round == 2] == [
        (2, 1, r(TIMUR_1), "the pipeline's Tagana notice")
    ]
    assert escalate_due(d.store, at=T + timedelta(minutes=40)).pages == 0
    assert escalate_due(d.store, at=T + timedelta(minutes=50)).pages == 1  # step 2 after its delay
    assert [t for t, *_ in d.page_rows()] == [f"mob:{m.id}:s2:r2"]


# -- re-open ----------------------------------------------------------------------------------------------------


def test_a_stood_down_mobilisation_reopens_when_its_level_comes_back(demo: MakeDemo) -> None:
    d = demo(TIMUR_LINES)
    d.cycle(warning(A1, "Severe", T), T)
    m = d.one(TIMUR)
    acknowledge(d.store, unit_id=TIMUR, responder=r(TIMUR_1), via="sms", at=T + timedelta(minutes=5))
    # Lowered to Waspada, below Tagana's level: stood down.
    low = warning(U1, "Moderate", T + timedelta(minutes=20), [(A1, T)])
    report = d.cycle(low, T + timedelta(minutes=20))
    assert report.levels["Waspada"] == 36
    m = d.one(TIMUR)
    assert m.status == "stood-down"
    assert m.ended_at is not None
    assert m.ended_at.replace(tzinfo=UTC) == T + timedelta(minutes=20)
    late = acknowledge(d.store, unit_id=TIMUR, responder=r(TIMUR_2), via="sms", at=T + timedelta(minutes=21))
    assert late.outcomes == ()  # nothing live to acknowledge
    assert escalate_due(d.store, at=T + timedelta(minutes=30)).pages == 0
    # Back to Siaga in the same thread: the same mobilisation re-opens, a new round.
    back = warning(U2, "Severe", T + timedelta(minutes=40), [(A1, T), (U1, T + timedelta(minutes=20))])
    reopening = d.cycle(back, T + timedelta(minutes=40))
    told = [json.loads(x) for x in (reopening.out_dir / "outbox.jsonl").read_text().splitlines()]
    [notice] = {x["recipient_id"]: x for x in told if x["audience"] == "tagana"}.values()
    assert (notice["recipient_id"], notice["level"]) == (r(TIMUR_1), "Siaga")  # the pipeline's notice: step 1 heard it
    again = d.one(TIMUR)
    assert again.id == m.id
    assert (again.status, again.level, again.round, again.first_round, again.acks) == ("open", 2, 2, 2, 0)
    assert (again.ended_at, again.acknowledged_at, again.acked_level, again.mobilised_at) == (None, None, None, None)
    assert [(e.kind, e.round, e.detail) for e in d.events(again) if e.kind in ("stand-down", "renotify")] == [
        ("stand-down", 1, "the warning ended for its villages"),
        ("renotify", 2, "re-opened at level 2"),
    ]
    assert d.audits(again) == sorted(
        ["mobilisation opened", "mobilisation page", "mobilisation acknowledged", "mobilisation mobilised",
         "mobilisation stood down", "mobilisation re-opened", "mobilisation page"]
    )  # fmt: skip
    [reopened] = [a for a in d.store.audit_entries(subject=f"mobilisation:{m.id}") if a.action.endswith("re-opened")]
    assert (reopened.actor, dict(reopened.detail)) == ("ews", {"level": 2, "round": 2})
    # As at the opening, that notice is step 1 of the new round (recorded with its ledger row): step 1 is not
    # paged a second time the same minute; step 2 follows after its delay.
    [step_one] = [e for e in d.events(again, "page") if e.round == 2]
    assert (step_one.step, step_one.recipient_id, step_one.detail) == (1, r(TIMUR_1), "the pipeline's Tagana notice")
    assert step_one.ledger_id is not None
    assert step_one.ledger_id > d.events(again, "page")[0].ledger_id  # type: ignore[operator]
    assert escalate_due(d.store, at=T + timedelta(minutes=40)).pages == 0
    assert escalate_due(d.store, at=T + timedelta(minutes=49)).pages == 0
    assert escalate_due(d.store, at=T + timedelta(minutes=50)).pages == 1
    assert d.pages(again) == [(1, 1, r(TIMUR_1)), (2, 1, r(TIMUR_1)), (2, 2, r(TIMUR_2))]
    assert [t for t, *_ in d.page_rows()] == [f"mob:{m.id}:s2:r2"]
    done = acknowledge(d.store, unit_id=TIMUR, responder=r(TIMUR_2), via="sms", at=T + timedelta(minutes=51))
    assert done.outcomes == ((m.id, "mobilised", 1, 1),)


# -- the BPBD duty contact at step 3 ----------------------------------------------------------------------------


def test_the_bpbd_duty_contact_is_paged_at_step_three_and_hears_the_end(demo: MakeDemo) -> None:
    d = demo(TIMUR_LINES)
    first = d.cycle(warning(A1, "Severe", T), T)
    tagana = [json.loads(x) for x in (first.out_dir / "outbox.jsonl").read_text().splitlines()]
    assert {m["recipient_id"] for m in tagana if m["audience"] == "tagana"} == {r(TIMUR_1)}
    m = d.one(TIMUR)
    assert escalate_due(d.store, at=T + timedelta(minutes=10)).pages == 1
    assert escalate_due(d.store, at=T + timedelta(minutes=19)).pages == 0
    done = escalate_due(d.store, at=T + timedelta(minutes=20))
    assert (done.pages, done.no_contact) == (1, [])
    [bpbd] = [e for e in d.events(m, "page") if e.step == 3]
    assert (bpbd.round, bpbd.recipient_id, bpbd.channel, bpbd.target) == (
        1, r(BPBD), "sms", "Piket BPBD Kab. Contoh (bpbd, tahap 3)"
    )  # fmt: skip
    assert bpbd.ledger_id == done.ledger_ids[0]
    topic, who, to, channel, body = d.page_rows()[-1]
    assert (topic, who, to, channel) == (f"mob:{m.id}:s3:r1", r(BPBD), BPBD, "sms")
    assert (body or "").startswith(
        f"ESKALASI tahap 3: Koordinator Pos Timur, Wakil Pos Timur belum menjawab. Konfirmasi: balas SIAP {TIMUR}."
    )
    assert d.one(TIMUR).escalated
    assert d.one(TIMUR, T + timedelta(minutes=21)).next_page_at == T + timedelta(minutes=50)  # the repeat round
    # The duty contact acknowledges by SMS reply; the unit is mobilised.
    acked = acknowledge(d.store, unit_id=TIMUR, responder=r(BPBD), via="sms", at=T + timedelta(minutes=22))
    assert acked.outcomes == ((m.id, "mobilised", 1, 1),)
    # The warning expires: the end notice reaches every contact paged, the duty contact too.
    end = d.cycle(None, T + timedelta(hours=4))
    ended = [json.loads(x) for x in (end.out_dir / "outbox.jsonl").read_text().splitlines()]
    # (The pages this test queued but never dispatched go out with that run too; the end notices say BERAKHIR.)
    assert sorted(x["recipient_id"] for x in ended if x["audience"] == "tagana" and "BERAKHIR" in x["text"]) == sorted(
        [r(TIMUR_1), r(TIMUR_2), r(BPBD)]
    )
    assert d.one(TIMUR).status == "stood-down"


def test_a_first_step_other_than_the_alert_s_own_notice_is_refused() -> None:
    """The first step is the pipeline's notice to the step-1 contacts: a policy saying more would never page them."""
    with pytest.raises(ValueError, match="the first step is the alert's own Tagana notice"):
        MobilisationRules.model_validate(
            {"steps": [{"targets": [1, 2], "delay_minutes": 0}, {"targets": 3, "delay_minutes": 10}]}
        )
    with pytest.raises(ValueError, match=r"give them step 1 in tagana\.csv"):
        MobilisationRules.model_validate({"steps": [{"targets": 1, "delay_minutes": 5}]})
    with pytest.raises(ValueError, match="the first step is the alert's own Tagana notice"):
        MobilisationRules.model_validate({"units": {"TGN-1": {"steps": [{"targets": 2, "delay_minutes": 0}]}}})


# -- a unit without contacts ------------------------------------------------------------------------------------


def test_a_unit_without_contacts_is_reported_and_pages_nobody(demo: MakeDemo) -> None:
    d = demo(BARE_LINE, "mobilisation:\n  steps: [{targets: 1, delay_minutes: 0}, {targets: 2, delay_minutes: 10}]\n"
                        "  repeat: 1\n  repeat_after_minutes: 10\n")  # fmt: skip
    d.cycle(warning(A1, "Severe", T), T)
    m = d.one(BARE)
    assert (m.status, m.unit_name) == ("open", "Tagana Kab. Contoh Tanpa Kontak")
    [opening] = d.events(m, "page")
    nobody = recipient_id(f"tagana-unit:{BARE}")
    assert (opening.round, opening.step, opening.recipient_id, opening.channel, opening.target) == (
        1, 1, nobody, None, "tanpa kontak (coordinator, tahap 1)"
    )  # fmt: skip
    # Step 2: no line of step 2 at all.
    done = escalate_due(d.store, at=T + timedelta(minutes=10))
    assert (done.pages, done.no_contact, done.ledger_ids) == (0, [(m.id, 2)], [])
    [(_, _, none_detail)] = [(e.round, e.step, e.detail) for e in d.events(m, "page") if e.step == 2]
    assert none_detail == "no contact of step(s) (2,) in tagana.csv"
    # Round 2, step 1: a line without a number; recorded (no-contact), but nobody is paged.
    done = escalate_due(d.store, at=T + timedelta(minutes=20))
    assert (done.pages, done.no_contact) == (0, [(m.id, 1)])
    [(rnd, step, rid, channel, detail)] = [
        (e.round, e.step, e.recipient_id, e.channel, e.detail) for e in d.events(m, "page") if e.round == 2
    ]
    assert (rnd, step, rid, channel, detail) == (2, 1, nobody, None, "escalation page: no number for this contact")
    assert [(t, who, to) for t, who, to, _, _ in d.page_rows()] == [(f"mob:{m.id}:s1:r2", nobody, "")]
    done = escalate_due(d.store, at=T + timedelta(minutes=30))
    assert (done.pages, done.no_contact) == (0, [(m.id, 2)])
    assert escalate_due(d.store, at=T + timedelta(minutes=90)).no_contact == []
    assert d.one(BARE, T + timedelta(minutes=90)).next_page_at is None
    # Each step is in the audit log, the ones that reached nobody too (an operator sees the unit went unpaged).
    entries = d.store.audit_entries(subject=f"mobilisation:{m.id}")
    assert sorted((a.action, a.detail.get("round"), a.detail.get("step"), a.detail.get("recipient")) for a in entries
                  if a.action == "mobilisation page") == [
        ("mobilisation page", 1, 1, nobody),
        ("mobilisation page", 1, 2, None),
        ("mobilisation page", 2, 1, nobody),
        ("mobilisation page", 2, 2, None),
    ]  # fmt: skip
    assert [dict(a.detail) for a in entries if a.action == "mobilisation page" and a.detail.get("step") == 2] == [
        {"round": 2, "step": 2, "recipient": None, "nobody": "no contact of step(s) (2,) in tagana.csv"},
        {"round": 1, "step": 2, "recipient": None, "nobody": "no contact of step(s) (2,) in tagana.csv"},
    ]


# -- the command line -------------------------------------------------------------------------------------------


def test_tagana_escalate_and_board_commands(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # The commands read the wall clock: the warning began 11 minutes ago.
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(minutes=11)
    d = Demo(tmp_path, database_url, BARAT_LINE + TIMUR_LINES)
    try:
        cap = minimal_cap(WHOLE, identifier=A1, severity="Severe", urgency="Expected", certainty="Likely",
                          effective=cap_time(start), expires=cap_time(start + timedelta(hours=3)))  # fmt: skip
        d.cycle(cap, start)
        barat, timur = d.one(BARAT), d.one(TIMUR)
    finally:
        d.store.close()
    capsys.readouterr()
    assert main(["tagana", "escalate", "--database", database_url]) == 0
    printed = capsys.readouterr()
    assert printed.out.splitlines() == ["ews tagana escalate: 1 page(s) queued for 2 mobilisation(s)"]
    assert printed.err.splitlines() == [f"mobilisation #{barat.id}: step 2 has no contact in tagana.csv: nobody paged"]
    assert main(["tagana", "escalate", "--database", database_url]) == 0  # nothing due twice
    assert capsys.readouterr().out.splitlines() == ["ews tagana escalate: 0 page(s) queued for 0 mobilisation(s)"]

    assert main(["tagana", "board", "--database", database_url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "open: 2  acknowledged: 0  escalated: 2  mobilised: 0  stood-down: 0"
    step3 = start + timedelta(minutes=20)
    assert sorted(lines[1:]) == sorted([
        f"#{barat.id} {BARAT} (Tagana Kab. Contoh Pos Barat) open, level 2, 24 village(s), round 1, acks 0/1, "
        f"escalated, next page {step3:%Y-%m-%d %H:%M} UTC [{barat.thread_id}]",
        f"#{timur.id} {TIMUR} (Tagana Kab. Contoh Pos Timur) open, level 2, 12 village(s), round 1, acks 0/1, "
        f"escalated, next page {step3:%Y-%m-%d %H:%M} UTC [{timur.thread_id}]",
    ])  # fmt: skip
    # A region filter by code prefix, and one that matches nothing.
    assert main(["tagana", "board", "--region", "35.99.03", "--database", database_url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "open: 1  acknowledged: 0  escalated: 1  mobilised: 0  stood-down: 0"
    assert [x.split()[1] for x in lines[1:]] == [TIMUR]
    assert main(["tagana", "board", "--region", "11", "--database", database_url]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "open: 0  acknowledged: 0  escalated: 0  mobilised: 0  stood-down: 0"
    ]
    printed_all = printed.out + printed.err + "\n".join(lines)
    assert FICTIONAL_PREFIX not in printed_all
    assert FICTIONAL_PREFIX.lstrip("+") not in printed_all


# -- no phone number outside the ledger -------------------------------------------------------------------------


def test_no_phone_number_reaches_logs_events_audit_or_errors(demo: MakeDemo, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    d = demo(BARAT_LINE + TIMUR_LINES + BARE_LINE)
    clock = {"now": T}
    client = TestClient(create_app(d.store, TOKEN, PUBLIC, clock=lambda: clock["now"]), base_url="http://testserver")
    d.cycle(warning(A1, "Severe", T), T)
    # A coordinator acknowledges by WhatsApp: the audit entry's actor is the pseudonymous id.
    clock["now"] = T + timedelta(minutes=3)
    params = {"MessageSid": "SM-paths-1", "From": f"whatsapp:{BARAT_1}", "Body": f"SIAP {BARAT}"}
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC + "/twilio/inbound", params)
    answer = client.post("/twilio/inbound", data=params, headers={"X-Twilio-Signature": signature})
    assert answer.status_code == 200
    assert "TERMOBILISASI" in answer.text
    barat = d.one(BARAT)
    [ack] = [a for a in d.store.audit_entries(subject=f"mobilisation:{barat.id}") if "acknowledged" in a.action]
    assert (ack.actor, ack.role, dict(ack.detail)) == (
        r(BARAT_1),
        "tagana",
        {"via": "whatsapp", "acks": 1, "quorum": 1},
    )
    for minutes in (10, 20, 50, 60, 70):
        escalate_due(d.store, at=T + timedelta(minutes=minutes))
    with pytest.raises(ValueError, match="is not one of unit") as wrong:
        acknowledge(d.store, unit_id=TIMUR, responder=r(TIMUR_1), via="sms", at=T, mobilisation_id=barat.id)
    with pytest.raises(ValueError, match="acknowledgement via") as bad_via:
        acknowledge(d.store, unit_id=TIMUR, responder=r(TIMUR_1), via="carrier pigeon", at=T)
    d.cycle(warning(U1, "Moderate", T + timedelta(minutes=80), [(A1, T)]), T + timedelta(minutes=80))
    mobilisations = d.store.mobilisations()
    assert {m.status for m in mobilisations} == {"stood-down"}
    events = [e for m in mobilisations for e in d.store.mobilisation_events(m.id)]
    audits = d.store.audit_entries(limit=10_000)
    assert {a.action for a in audits if a.subject.startswith("mobilisation:")} == {
        "mobilisation opened", "mobilisation page", "mobilisation acknowledged", "mobilisation mobilised",
        "mobilisation stood down",
    }  # fmt: skip
    texts = [
        caplog.text,
        str(wrong.value),
        str(bad_via.value),
        repr(events),
        repr(mobilisations),
        json.dumps([(a.actor, a.role, a.action, a.subject, dict(a.detail or {})) for a in audits], default=str),
    ]
    numbers = [BARAT_1, TIMUR_1, TIMUR_2, BPBD]
    for text in texts:
        for number in numbers:
            assert number not in text
            assert number.lstrip("+") not in text
            assert "0" + number.removeprefix("+62") not in text
    assert any(e.kind == "page" and e.step == 3 for e in events)  # the checks saw every kind of page


# -- set-based at national scale --------------------------------------------------------------------------------


def test_statements_do_not_grow_with_villages_units_or_pages(demo: MakeDemo) -> None:
    barat_2 = fictional_phone(9005)
    d = demo(
        BARAT_LINE
        + f"{BARAT},Tagana Kab. Contoh Pos Barat,35.99,35.99.01;35.99.02,Wakil Pos Barat,{barat_2},whatsapp,2,\n"
        + TIMUR_LINES
        + BARE_LINE
    )
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(" ".join(statement.split()).upper())

    def inserts(table: str) -> int:
        return sum(s.startswith(f"INSERT INTO {table.upper()} ") for s in statements)

    event.listen(d.store.engine, "before_cursor_execute", count)
    try:
        d.cycle(warning(A1, "Severe", T), T)
        # Three units open, four step-1 pages recorded: one INSERT of mobilisations, two of events.
        assert len(d.store.mobilisations()) == 3
        assert (inserts("mobilisations"), inserts("mobilisation_events")) == (1, 2)
        statements.clear()
        # Step 2 of two units: 24 + 12 villages' versions, two pages, in one INSERT of ledger rows.
        done = escalate_due(d.store, at=T + timedelta(minutes=10))
        assert done.pages == 2
        assert inserts("send_ledger") == 1
        assert inserts("mobilisation_events") == 1
        assert inserts("audit_log") <= 1
        # The open mobilisations and their events, the contacts, the pages so far, the notices, the versions; the
        # ledger rows, their texts, their groups; the events; the audit entries: 11, whatever the number of pages.
        assert len([s for s in statements if not s.startswith("BEGIN")]) == 11, statements
    finally:
        event.remove(d.store.engine, "before_cursor_execute", count)
    # The pages cover every version of their thread: one lead row each, the others grouped into it.
    e = LedgerEntry
    with d.store.engine.connect() as connection:
        rows = connection.execute(select(e.topic, e.recipient_id, e.grouped_into, e.body).where(e.topic.like("mob:%")))
        by_topic: dict[tuple[str, str], list[tuple[int | None, str | None]]] = {}
        for topic, who, lead, body in rows:
            by_topic.setdefault((topic, who), []).append((lead, body))
    barat, timur = d.one(BARAT), d.one(TIMUR)
    assert sorted((t, who, len(v)) for (t, who), v in by_topic.items()) == sorted(
        [(f"mob:{barat.id}:s2:r1", r(barat_2), 24), (f"mob:{timur.id}:s2:r1", r(TIMUR_2), 12)]
    )
    for versions in by_topic.values():
        assert sum(lead is None for lead, _ in versions) == 1  # the lead
        assert sum(body is not None for _, body in versions) == 1


def test_a_database_error_while_paging_names_no_number(demo: MakeDemo, database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite does not check the length of a text column")
    d = demo(TIMUR_LINES)
    d.cycle(warning(A1, "Severe", T), T)
    m = d.one(TIMUR)
    assert m.alert_version_id is not None
    number = "+62" + "8" * 40  # longer than the ledger's address column: PostgreSQL refuses the row
    page = NewPage((m.alert_version_id,), r(TIMUR_2), "sms", number, "ESKALASI", None, f"mob:{m.id}:s2:r1")
    with pytest.raises(StoreError) as refused:
        d.store.queue_pages([page], at=T)
    assert "queue 1 Tagana escalation page(s)" in str(refused.value)
    assert number.lstrip("+") not in str(refused.value)
    assert (refused.value.__cause__, refused.value.__context__) == (None, None)  # nothing chained holds it
    assert d.page_rows() == []

"""How a tsunami alert ends: BMKG's end notice, the event re-served without tsunami, or the maximum.

On the real gempaterkini feed of 2021-12-14 (the M7.4 Flores Sea event, "Potensi tsunami untuk diteruskan
pada masyarakat", with BMKG's first solution M7.5 one second earlier) over the real Bali kecamatan. BMKG's
end notices are made here, in memory, by copying the real event records with another ``Potensi``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
import shapely
from pydantic import ValidationError

from ews.alerts.lifecycle import Outcome, ThreadMessage, decide, latest_per_thread, thread_of
from ews.alerts.model import Transition, VillageState
from ews.config import AlertRules, LevelRules, QuakeRules, open_region
from ews.errors import ConfigError
from ews.exposure.coverage import VillageLayer
from ews.hazard.earthquake import (
    END_AFTER,
    Earthquake,
    coastal_villages,
    link_revisions,
    parse_message_id,
    quake_message,
    quake_message_id,
)
from ews.ingest.bmkg_quake import parse_quakes
from ews.ingest.boundaries import read_boundaries
from ews.store.records import hazard_from_record, hazard_to_record, warning_to_record
from ews.types import HazardMessage, Level

FEED = "arraysyams_gempaterkini_2021-12-14_tsunami-potential.json"
FINAL = "20211214T032023Z_7.59S_122.24E"  # BMKG's final solution, M7.4 at 03:20:23 UTC
FIRST = "20211214T032022Z_7.59S_122.26E"  # its first solution, M7.5 one second earlier
NOW = datetime.fromisoformat("2021-12-14T04:00:00+00:00")
RULES = QuakeRules(tsunami_radius_km=1000)  # Bali is ~725 km from the epicentre
ENDED = "Peringatan dini tsunami telah berakhir"


@pytest.fixture(scope="module")
def records(shared_data: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((shared_data / "bmkg" / "gempa" / FEED).read_bytes())
    return doc


@pytest.fixture(scope="module")
def bali(kec_dir: Path) -> VillageLayer:
    return VillageLayer.from_villages(read_boundaries(kec_dir / "wilayah_boundaries_kec_51.geojson"))


@pytest.fixture(scope="module")
def coast(bali: VillageLayer) -> set[str]:
    return coastal_villages(bali)


FINAL_AT, FIRST_AT = "2021-12-14T03:20:23+00:00", "2021-12-14T03:20:22+00:00"


def reserved(doc: dict[str, Any], potensi: str, *, when: Sequence[str] = (FINAL_AT,), drop: str = "") -> bytes:
    """The real feed with the records of the solutions at ``when`` re-served with ``potensi`` (in memory).

    ``drop``: the time of a solution left out of the feed.
    """
    changed = copy.deepcopy(doc)
    changed["Infogempa"]["gempa"] = [r for r in changed["Infogempa"]["gempa"] if r["DateTime"] != drop]
    hit = 0
    for record in changed["Infogempa"]["gempa"]:
        if record["DateTime"] in when:
            record["Potensi"] = potensi
            hit += 1
    assert hit, f"no record at {when} in {FEED}"
    return json.dumps(changed).encode()


def shore(n: int, x0: float, y0: float, size: float = 0.1) -> VillageLayer:
    """``n`` square villages of ``size`` degrees in a row east of (x0, y0); codes 99.01.01.10<i>."""
    codes = [f"99.01.01.10{i:02d}" for i in range(n)]
    boxes = [shapely.box(x0 + i * size, y0, x0 + (i + 1) * size, y0 + size) for i in range(n)]
    return VillageLayer.from_villages(gpd.GeoDataFrame({"code": codes, "name": codes}, geometry=boxes, crs="EPSG:4326"))


def event(data: bytes, event_id: str = FINAL) -> Earthquake:
    return next(q for q in parse_quakes(data, FEED) if q.event_id == event_id)


def messages(data: bytes, layer: VillageLayer, coast: set[str], now: datetime = NOW) -> list[HazardMessage]:
    """Every message the feed gives for the region (as the assess step makes them), oldest first."""
    out = [quake_message("bali", q, layer, RULES, coast, now).message for q in parse_quakes(data, FEED)]
    return [m for m in out if m is not None]


class Cycle:
    """The alert step's threading and lifecycle, without the store: link, thread, decide, remember."""

    def __init__(self) -> None:
        self.known: dict[str, str] = {}  # identifier -> thread, as Store.warning_threads
        self.states: list[VillageState] = []

    def run(self, hazards: Sequence[HazardMessage], now: datetime) -> tuple[list[HazardMessage], Outcome]:
        linked = link_revisions(hazards, self.known)
        threads = dict(self.known)
        for h in sorted(linked, key=lambda h: (h.warning.sent, h.warning.identifier)):
            w = h.warning
            threads[w.identifier] = thread_of(w.identifier, w.msg_type, w.references, threads)
        view = [
            ThreadMessage(threads[w.identifier], w.identifier, w.sent, w.msg_type, w.status, w.severity, w.urgency,
                          w.certainty, w.expires)
            for w in (h.warning for h in linked)
        ]  # fmt: skip
        by_id = {h.warning.identifier: h for h in linked}
        latest = latest_per_thread(view)
        assessed = {t: {v.code: (v.level, v.held) for v in by_id[m.identifier].villages} for t, m in latest.items()}
        coverage = {t: {v.code: v.fraction for v in by_id[m.identifier].villages} for t, m in latest.items()}
        outcome = decide("bali", self.states, view, coverage, now, LevelRules(), AlertRules(), assessed)
        self.known = threads
        self.states = outcome.states
        return linked, outcome


def transitions(outcome: Outcome) -> dict[str, int]:
    counts: dict[str, int] = {}
    for d in outcome.decisions:
        counts[d.transition.value] = counts.get(d.transition.value, 0) + 1
    return counts


def told(outcome: Outcome) -> dict[str, Transition]:
    """What each village is told this cycle (decisions that send)."""
    return {d.village_code: d.transition for d in outcome.decisions if d.send}


# -- the configuration key -------------------------------------------------------------------------------


def test_tsunami_max_hours_defaults_to_12_and_is_validated(tmp_path: Path) -> None:
    assert QuakeRules().tsunami_max_hours == 12.0
    with pytest.raises(ValidationError, match="tsunami_max_hours"):
        QuakeRules(tsunami_max_hours=0)
    with pytest.raises(ValidationError, match=r"tsunami_max_hours \(30\) exceeds max_age_hours \(24\)"):
        QuakeRules(tsunami_max_hours=30)
    region = tmp_path / "r.yaml"
    region.write_text(
        'id: r\nname: R\nprovince_code: "51"\nboundaries: {path: v.geojson}\nearthquake: {tsunami_max_hours: -1}\n'
    )
    with pytest.raises(ConfigError, match=r"earthquake\.tsunami_max_hours"):
        open_region(region)


# -- the maximum -----------------------------------------------------------------------------------------


def test_the_flores_tsunami_message_expires_at_event_plus_tsunami_max_hours(
    records: dict[str, Any], bali: VillageLayer, coast: set[str]
) -> None:
    data = json.dumps(records).encode()
    flores = event(data)
    assert flores.tsunami
    assert not flores.tsunami_ended
    rules = QuakeRules(tsunami_radius_km=1000, tsunami_max_hours=9, valid_hours=6)
    message = quake_message("bali", flores, bali, rules, coast, NOW).message
    assert message is not None
    assert message.warning.identifier == quake_message_id(FINAL, "tsunami")
    assert message.warning.expires == flores.time + timedelta(hours=9)  # not valid_hours
    assert message.details["tsunami_ends"] == "max-hours"  # expiring, it ends without BMKG's end notice
    assert message.details["tsunami_max_hours"] == 9
    default = quake_message("bali", flores, bali, RULES, coast, NOW).message
    assert default is not None
    assert default.warning.expires == flores.time + timedelta(hours=12)
    # A shaking-only event of the same feed keeps valid_hours and says nothing of a tsunami end.
    aftershock = event(data, "20211214T034156Z_7.81S_122.34E")  # M5.6, "Tidak berpotensi tsunami"
    near = quake_message("flores", aftershock, bali, QuakeRules(min_magnitude=0, mmi={Level.WASPADA: 1.0}), set(), NOW)
    assert near.message is not None, near.reason
    assert near.message.warning.identifier == quake_message_id(aftershock.event_id)
    assert near.message.warning.expires == aftershock.time + timedelta(hours=6)
    assert near.message.details["tsunami_ends"] is None


def test_without_an_end_notice_the_alert_outlives_valid_hours_and_expires_at_the_maximum(
    records: dict[str, Any], bali: VillageLayer, coast: set[str]
) -> None:
    data = json.dumps(records).encode()
    cycle = Cycle()
    _, first = cycle.run(messages(data, bali, coast), NOW)
    alerted = transitions(first)["new"]
    assert alerted == len(coast)
    event_time = event(data).time
    _, later = cycle.run(messages(data, bali, coast, event_time + timedelta(hours=7)), event_time + timedelta(hours=7))
    assert "expire" not in transitions(later)  # past valid_hours (6): a tsunami alert stands
    _, ended = cycle.run(
        messages(data, bali, coast, event_time + timedelta(hours=13)), event_time + timedelta(hours=13)
    )
    assert transitions(ended) == {"expire": alerted}


# -- BMKG's end notice -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "potensi",
    [
        ENDED,
        "PERINGATAN DINI TSUNAMI TELAH BERAKHIR.",
        "Peringatan  dini tsunami   dinyatakan berakhir",
        "Peringatan dini tsunami (Flores) diakhiri",
        "Peringatan dini tsunami di-akhiri",
        "BMKG mengakhiri peringatan dini tsunami",
        "Pengakhiran peringatan dini tsunami",
        "Potensi tsunami telah berakhir",
    ],
)
def test_end_notices_are_recognised(records: dict[str, Any], potensi: str) -> None:
    flores = event(reserved(records, potensi))
    assert flores.tsunami_ended, potensi
    assert not flores.tsunami
    assert flores.potensi == potensi
    assert not any("unknown Potensi" in n for n in flores.notes)


@pytest.mark.parametrize(
    ("potensi", "tsunami"),
    [
        ("Potensi tsunami untuk diteruskan pada masyarakat", True),
        ("Peringatan dini tsunami belum berakhir", True),  # the warning stands
        ("Peringatan dini tsunami belum dinyatakan berakhir", True),
        ("Tidak berpotensi tsunami", False),
        ("TIDAK BERPOTENSI TSUNAMI.", False),
    ],
)
def test_texts_that_are_not_an_end(records: dict[str, Any], potensi: str, tsunami: bool) -> None:
    flores = event(reserved(records, potensi))
    assert not flores.tsunami_ended, potensi
    assert flores.tsunami is tsunami
    if "belum" in potensi:
        assert any("has not ended" in n for n in flores.notes)


def test_an_end_notice_in_one_copy_ends_the_event_whatever_the_stale_copies_say(records: dict[str, Any]) -> None:
    changed = copy.deepcopy(records)
    copies = [r for r in changed["Infogempa"]["gempa"] if r["DateTime"] == "2021-12-14T03:20:23+00:00"]
    assert len(copies) == 3  # the event appears 3 times in the real feed
    copies[1]["Potensi"] = ENDED
    flores = event(json.dumps(changed).encode())
    assert flores.tsunami_ended
    assert not flores.tsunami
    assert flores.potensi == ENDED
    assert any("taken as ended" in n for n in flores.notes)


def test_an_end_notice_is_a_cancel_of_the_alerted_thread(
    records: dict[str, Any], bali: VillageLayer, coast: set[str]
) -> None:
    cycle = Cycle()
    first, outcome = cycle.run(messages(json.dumps(records).encode(), bali, coast), NOW)
    # BMKG's two solutions are one thread, rooted at the first (M7.5); the final one is its Update.
    root = quake_message_id(FIRST, "tsunami")
    assert {h.warning.identifier: h.warning.msg_type for h in first if "T0320" in h.warning.identifier} == {
        root: "Alert",
        quake_message_id(FINAL, "tsunami"): "Update",
    }
    thread = cycle.known[root]
    alerted = {d.village_code for d in outcome.decisions if d.transition is Transition.NEW}
    assert alerted == coast
    assert {d.thread_id for d in outcome.decisions if d.transition is Transition.NEW} == {thread}

    later = NOW + timedelta(hours=2)
    hazards = messages(reserved(records, ENDED), bali, coast, later)
    end = next(h for h in hazards if h.warning.msg_type == "Cancel")
    assert end.warning.identifier == quake_message_id(FINAL, "end")
    assert end.villages == ()  # quiet: every village keeps the hazard it was told about
    assert end.details["tsunami_ends"] == "end-notice"
    assert end.details["end_notice"] == ENDED
    linked, ended = cycle.run(hazards, later)
    cancel = next(h for h in linked if h.warning.identifier == quake_message_id(FINAL, "end"))
    assert cancel.warning.references == (root,)
    # Sent after the thread's latest solution, so it is the thread's newest message whichever one BMKG names.
    assert cancel.warning.sent == event(json.dumps(records).encode()).time + END_AFTER
    assert cycle.known[cancel.warning.identifier] == thread
    assert told(ended) == dict.fromkeys(alerted, Transition.CANCEL)
    assert all(d.thread_id == thread and d.warning_id == cancel.warning.identifier for d in ended.decisions if d.send)


def test_the_event_re_served_without_tsunami_after_a_tsunami_reading_ends_it(
    records: dict[str, Any], bali: VillageLayer, coast: set[str]
) -> None:
    cycle = Cycle()
    _, outcome = cycle.run(messages(json.dumps(records).encode(), bali, coast), NOW)
    alerted = {d.village_code for d in outcome.decisions if d.transition is Transition.NEW}
    later = NOW + timedelta(hours=2)
    # Both solutions re-served as "Tidak berpotensi tsunami": BMKG's tsunami warning is over. At 725 km the
    # shaking alerts nobody in Bali, so each reading is a Cancel that holds only after a tsunami reading.
    data = reserved(records, "Tidak berpotensi tsunami", when=(FINAL_AT, FIRST_AT))
    hazards = [h for h in messages(data, bali, coast, later) if "T0320" in h.warning.identifier]
    assert [(h.warning.msg_type, h.details["end_if_tsunami"]) for h in hazards] == [("Cancel", True)] * 2
    linked, ended = cycle.run(hazards, later)
    cancels = [h for h in linked if h.warning.msg_type == "Cancel"]
    assert {h.warning.identifier for h in cancels} == {quake_message_id(FIRST, "end"), quake_message_id(FINAL, "end")}
    assert all(h.villages == () and h.details["tsunami_ends"] == "end-notice" for h in cancels)
    assert all(h.warning.references == (quake_message_id(FIRST, "tsunami"),) for h in cancels)
    assert told(ended) == dict.fromkeys(alerted, Transition.CANCEL)


def test_near_the_epicentre_the_shaking_reading_without_tsunami_becomes_the_cancel(records: dict[str, Any]) -> None:
    # Villages on the Flores coast (synthetic squares 30-60 km from the epicentre): shaken and tsunami-hit.
    flores = shore(3, x0=122.0, y0=-8.45)
    coast = set(flores.table["code"])
    cycle = Cycle()
    _, outcome = cycle.run(messages(json.dumps(records).encode(), flores, coast), NOW)
    alerted = {d.village_code for d in outcome.decisions if d.transition is Transition.NEW}
    assert alerted == coast
    later = NOW + timedelta(hours=2)
    data = reserved(records, "Tidak berpotensi tsunami", when=(FINAL_AT, FIRST_AT))
    hazards = [h for h in messages(data, flores, coast, later) if "T0320" in h.warning.identifier]
    assert {h.warning.msg_type for h in hazards} == {"Alert"}  # read alone: a shaking alert
    assert all(v.cause == "gempa" for h in hazards for v in h.villages)
    linked, ended = cycle.run(hazards, later)
    assert [h.warning.msg_type for h in linked] == ["Cancel", "Cancel"]
    assert all(h.villages == () for h in linked)  # no "gempa" cause overrides the tsunami advice announced
    assert told(ended) == dict.fromkeys(alerted, Transition.CANCEL)


def test_a_shaking_only_event_re_served_without_tsunami_is_not_an_end(
    records: dict[str, Any], bali: VillageLayer, coast: set[str]
) -> None:
    # The M5.6 aftershock, alerted for shaking (all Bali at a low threshold), re-served unchanged.
    rules = QuakeRules(min_magnitude=0, mmi={Level.WASPADA: 1.0})
    aftershock = event(json.dumps(records).encode(), "20211214T034156Z_7.81S_122.34E")
    message = quake_message("bali", aftershock, bali, rules, set(), NOW).message
    assert message is not None
    known = {message.warning.identifier: message.warning.identifier}
    assert link_revisions([message], known) == [message]
    # With the default thresholds it alerts nobody in Bali: its "Tidak berpotensi tsunami" ends nothing.
    quiet = quake_message("bali", aftershock, bali, RULES, coast, NOW).message
    assert quiet is not None
    assert quiet.details["end_if_tsunami"] is True
    assert link_revisions([quiet], {}) == []


def test_a_reading_that_does_not_say_never_ends_or_lowers_a_tsunami_alert(
    records: dict[str, Any], bali: VillageLayer, coast: set[str]
) -> None:
    cycle = Cycle()
    cycle.run(messages(json.dumps(records).encode(), bali, coast), NOW)
    # gempadirasakan carries no Potensi: the same event read from it says nothing about the tsunami.
    silent = copy.deepcopy(records)
    for record in silent["Infogempa"]["gempa"]:
        del record["Potensi"]
    hazards = messages(json.dumps(silent).encode(), bali, coast, NOW + timedelta(minutes=30))
    linked, outcome = cycle.run(hazards, NOW + timedelta(minutes=30))
    assert not [h for h in linked if "T0320" in h.warning.identifier]
    assert not [d for d in outcome.decisions if d.send]


def test_an_end_for_an_event_never_alerted_alerts_nobody(
    records: dict[str, Any], bali: VillageLayer, coast: set[str]
) -> None:
    # Only the end is served (BMKG's first solution has left the feed): it names a thread that does not exist.
    hazards = messages(reserved(records, ENDED, drop=FIRST_AT), bali, coast)
    linked, outcome = Cycle().run(hazards, NOW)
    end = next(h for h in linked if h.warning.identifier == quake_message_id(FINAL, "end"))
    assert end.warning.msg_type == "Cancel"
    assert end.villages == ()
    assert end.warning.references == (quake_message_id(FINAL, "tsunami"),)
    assert not [d for d in outcome.decisions if d.send]
    assert any(f"Cancel {end.warning.identifier}" in n and "nothing to cancel" in n for n in outcome.notes)
    # With BMKG's first solution still served as "tsunami" beside the end: one event, ended, alerted nowhere.
    linked, outcome = Cycle().run(messages(reserved(records, ENDED), bali, coast), NOW)
    end = next(h for h in linked if h.warning.identifier == quake_message_id(FINAL, "end"))
    assert end.warning.references == (quake_message_id(FIRST, "tsunami"),)
    assert not [d for d in outcome.decisions if d.send]


def test_a_re_served_end_notice_is_the_same_message_and_sends_nothing_twice(
    records: dict[str, Any], bali: VillageLayer, coast: set[str]
) -> None:
    cycle = Cycle()
    cycle.run(messages(json.dumps(records).encode(), bali, coast), NOW)
    data = reserved(records, ENDED)
    t1, t2 = NOW + timedelta(hours=2), NOW + timedelta(hours=2, minutes=10)
    once, first = cycle.run(messages(data, bali, coast, t1), t1)
    again, second = cycle.run(messages(data, bali, coast, t2), t2)
    end_id = quake_message_id(FINAL, "end")
    one, two = (next(h for h in hs if h.warning.identifier == end_id) for hs in (once, again))
    # The re-read: the same Cancel (the stale first solution beside it is dropped now that the end is stored).
    assert [h.warning.identifier for h in again if "T0320" in h.warning.identifier] == [end_id]
    assert warning_to_record(one.warning) == warning_to_record(two.warning)  # same content, not only same id
    assert hazard_from_record(hazard_to_record(one)) == hazard_from_record(hazard_to_record(two))
    assert transitions(first) == {"cancel": len(coast)}
    assert not [d for d in second.decisions if d.send]
    # A feed still serving the old tsunami text after the end alerts nobody again.
    late = NOW + timedelta(hours=3)
    stale, third = cycle.run(messages(json.dumps(records).encode(), bali, coast, late), late)
    assert not [h for h in stale if "T0320" in h.warning.identifier]
    assert not [d for d in third.decisions if d.send]


def test_message_identifiers_round_trip() -> None:
    for kind in ("", "tsunami", "end"):
        parsed = parse_message_id(quake_message_id(FINAL, kind))
        assert parsed is not None
        assert parsed[:2] == (FINAL, kind)
    assert parse_message_id("ews.gempa.not-an-event.end") is None
    assert parse_message_id("ews.rain.jawa-timur") is None
    with pytest.raises(ValueError, match="kind 'berakhir'"):
        quake_message_id(FINAL, "berakhir")

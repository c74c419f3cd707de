"""Tagana mobilisations through the JSON API: the list (viewer, scoped, times in UTC, never a number) and the
acknowledgement (operator, in the user's regions, once per user and round, audited)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from ews.command.escalation import Policy
from ews.store.mobilisations import NewMobilisation, NewMobilisationEvent
from ews.store.repository import Store
from ews.web.app import create_app
from ews.web.auth import WebSettings, hash_password

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
PASSWORD = "a-long-password-1"  # noqa: S105 - a test user's


@pytest.fixture
def client(database_url: str) -> Iterator[tuple[TestClient, Store, dict[str, int]]]:
    store = Store.from_url(database_url)
    hashed = hash_password(PASSWORD)
    for name, role, regions in (("omar", "operator", ["35"]), ("vera", "viewer", ["35.78"]),
                                ("jabar", "operator", ["32"])):  # fmt: skip
        store.create_user(name, hashed, role, regions, "id", at=T0)
    ids = store.open_mobilisations(
        [
            NewMobilisation("jawa-timur", "TGN-3578", "Tagana Kota Surabaya", "T1", 2, ("35.78.01.1001",),
                            Policy(quorum=2).to_json(), None),
            NewMobilisation("jawa-timur", "TGN-3515", "Tagana Sidoarjo", "T1", 3, ("35.15.01.2001",),
                            Policy().to_json(), None),
        ],
        at=T0,
    )  # fmt: skip
    surabaya, sidoarjo = ids[("TGN-3578", "T1")], ids[("TGN-3515", "T1")]
    store.add_mobilisation_events(
        [NewMobilisationEvent(surabaya, "page", 1, 1, "Koordinator (coordinator, tahap 1)", "r-0123456789abcdef",
                              "sms", None, "ews", "the pipeline's Tagana notice")],
        at=T0,
    )  # fmt: skip
    app = create_app(store, "twilio-token", "https://ews.example.invalid", clock=lambda: T0 + timedelta(minutes=4),
                     settings=WebSettings(b"s" * 32))  # fmt: skip
    yield TestClient(app, base_url="https://testserver"), store, {"surabaya": surabaya, "sidoarjo": sidoarjo}
    store.close()


def auth(client: TestClient, name: str) -> dict[str, str]:
    token = client.post("/api/session", json={"username": name, "password": PASSWORD}).json()["token"]
    return {"Authorization": f"Bearer {token}"}


def test_the_list_is_scoped_and_in_utc(client: tuple[TestClient, Store, dict[str, int]]) -> None:
    http, _, ids = client
    mine = http.get("/api/mobilisations", headers=auth(http, "vera"))
    assert mine.status_code == 200
    [one] = mine.json()
    assert (one["id"], one["unit_id"], one["status"], one["level"], one["acks"], one["quorum"]) == (
        ids["surabaya"], "TGN-3578", "open", "Siaga", 0, 2,
    )  # fmt: skip
    assert one["opened_at"].startswith("2026-11-28T10:00:00")
    assert one["opened_at"].endswith(("Z", "+00:00"))
    assert one["next_page_at"].startswith("2026-11-28T10:10:00")
    assert one["events"] is None
    [with_events] = http.get("/api/mobilisations?events=true", headers=auth(http, "vera")).json()
    page = next(e for e in with_events["events"] if e["kind"] == "page")
    assert (page["who"], page["channel"], page["step"]) == ("Koordinator (coordinator, tahap 1)", "sms", 1)
    both = http.get("/api/mobilisations", headers=auth(http, "omar")).json()
    assert {m["unit_id"] for m in both} == {"TGN-3578", "TGN-3515"}
    assert http.get("/api/mobilisations", headers=auth(http, "jabar")).json() == []
    assert http.get("/api/mobilisations?status=mobilised", headers=auth(http, "omar")).json() == []
    assert http.get("/api/mobilisations").status_code == 401


def test_an_operator_acknowledges_once_and_it_is_audited(client: tuple[TestClient, Store, dict[str, int]]) -> None:
    http, store, ids = client
    mid = ids["surabaya"]
    assert http.post(f"/api/mobilisations/{mid}/ack", headers=auth(http, "vera")).status_code == 403
    assert http.post(f"/api/mobilisations/{mid}/ack", headers=auth(http, "jabar")).status_code == 404
    assert http.post("/api/mobilisations/424242/ack", headers=auth(http, "omar")).status_code == 404
    assert store.mobilisation(mid).status == "open"
    omar = auth(http, "omar")
    done = http.post(f"/api/mobilisations/{mid}/ack", headers=omar)
    assert done.status_code == 200, done.text
    assert done.json() == {"mobilisation_id": mid, "unit_id": "TGN-3578", "status": "acknowledged", "acks": 1,
                           "quorum": 2, "duplicate": False}  # fmt: skip
    again = http.post(f"/api/mobilisations/{mid}/ack", headers=omar).json()
    assert (again["acks"], again["duplicate"]) == (1, True)
    assert [e.actor for e in store.audit_entries(subject=f"mobilisation:{mid}") if "acknowledged" in e.action] == [
        "omar"
    ]


def test_a_cookie_session_needs_the_csrf_header(client: tuple[TestClient, Store, dict[str, int]]) -> None:
    http, store, ids = client
    login = http.post("/api/session", json={"username": "omar", "password": PASSWORD}).json()
    cookie = TestClient(http.app, base_url="https://testserver")
    cookie.cookies.set("__Host-ews_session", login["token"])
    assert cookie.post(f"/api/mobilisations/{ids['sidoarjo']}/ack").status_code == 403
    csrf = cookie.get("/api/me").json()["csrf_token"]
    assert cookie.post(f"/api/mobilisations/{ids['sidoarjo']}/ack", headers={"X-CSRF-Token": csrf}).status_code == 200
    assert store.mobilisation(ids["sidoarjo"]).status == "mobilised"

"""Reports through the JSON API: an agency forwards one with its bearer token, an operator moves it on; roles,
region scope and the audit log as everywhere else."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from ews.store.repository import Store
from ews.web.app import create_app
from ews.web.auth import WebSettings, hash_password

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
PASSWORD = "a-long-password-1"  # noqa: S105 - a test user's


@pytest.fixture
def client(database_url: str) -> Iterator[tuple[TestClient, Store]]:
    store = Store.from_url(database_url)
    hashed = hash_password(PASSWORD)
    for name, role, regions in (
        ("bnpb", "operator", ["35"]),
        ("vera", "viewer", ["35"]),
        ("jabar", "operator", ["32"]),
    ):
        store.create_user(name, hashed, role, regions, "id", at=T0)
    app = create_app(store, "twilio-token", "https://ews.example.invalid", clock=lambda: T0,
                     settings=WebSettings(b"s" * 32))  # fmt: skip
    yield TestClient(app, base_url="https://testserver"), store
    store.close()


def auth(client: TestClient, name: str) -> dict[str, str]:
    token = client.post("/api/session", json={"username": name, "password": PASSWORD}).json()["token"]
    return {"Authorization": f"Bearer {token}"}


def test_an_agency_forwards_a_report_once_and_an_operator_resolves_it(client: tuple[TestClient, Store]) -> None:
    http, store = client
    agency = auth(http, "bnpb")
    report = {"reference": "BNPB-2026-0042", "text": "Butuh evakuasi warga lansia, air sudah sepinggang",
              "reporter": "BNPB Pusdalops", "village_code": "35.78.01.1001"}  # fmt: skip
    taken = http.post("/api/reports", json=report, headers=agency)
    assert taken.status_code == 201, taken.text
    body = taken.json()
    assert body["village_code"] == "35.78.01.1001"
    assert body["unit"]
    again = http.post("/api/reports", json=report, headers=agency)
    assert again.json()["report_id"] == body["report_id"]  # the same reference is taken once
    routed = store.audit_entries(subject=f"report:{body['report_id']}")
    assert [(e.actor, e.action) for e in routed] == [("bnpb", "report.routed")]

    viewer = http.post(
        f"/api/reports/{body['report_id']}/status", json={"status": "routed"}, headers=auth(http, "vera")
    )
    assert viewer.status_code == 403
    other = http.post(
        f"/api/reports/{body['report_id']}/status", json={"status": "routed"}, headers=auth(http, "jabar")
    )
    assert other.status_code == 404  # outside 32: as if it did not exist
    done = http.post(f"/api/reports/{body['report_id']}/status", json={"status": "resolved", "note": "Tim tiba"},
                     headers=agency)  # fmt: skip
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "resolved"
    assert store.report(body["report_id"]).status == "resolved"
    back = http.post(f"/api/reports/{body['report_id']}/status", json={"status": "routed"}, headers=agency)
    assert back.status_code == 409  # resolved is final
    latest = store.audit_entries(subject=f"report:{body['report_id']}")[0]
    assert (latest.actor, latest.action) == ("bnpb", "report.status")


def test_a_report_is_refused_outside_the_senders_regions_and_without_csrf(client: tuple[TestClient, Store]) -> None:
    http, store = client
    report = {"reference": "X-1", "text": "Jembatan putus", "village_code": "32.73.01.1001"}
    assert http.post("/api/reports", json=report, headers=auth(http, "bnpb")).status_code == 403
    assert http.post("/api/reports", json={**report, "text": "a\x00b", "village_code": None},
                     headers=auth(http, "bnpb")).status_code == 422  # fmt: skip
    cookie = http.post("/login", data={"username": "bnpb", "password": PASSWORD, "csrf_token": "x"})
    assert cookie.status_code == 403  # the login form without its token: no cookie session either
    assert store.reports() == []
    assert http.post("/api/reports", json={**report, "village_code": "35.78.01.1001"}).status_code == 401
    assert store.reports() == []

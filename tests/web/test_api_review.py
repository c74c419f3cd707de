"""An approval through the JSON API takes the path of ``ews alerts approve``: the messages are queued at once."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient

from ews.config import open_region
from ews.pipeline import run_slice
from ews.store.repository import Store
from ews.synthetic import write_synthetic_region, write_synthetic_warning
from ews.web.app import create_app
from ews.web.auth import WebSettings, hash_password


def test_an_analyst_approves_a_held_awas_version_and_its_messages_are_queued(tmp_path: Path) -> None:
    region_file = write_synthetic_region(tmp_path / "region")
    region_file.write_text(region_file.read_text() + "alerts: {review_levels: [Awas]}\n")
    config = open_region(region_file)
    now = datetime.now(UTC).replace(microsecond=0)  # decide_review queues for the warning in force now
    store = Store.from_url(f"sqlite:///{tmp_path / 'ews.db'}")
    try:
        report = run_slice(config, str(write_synthetic_warning(tmp_path / "w", now)), tmp_path / "out", now=now,
                           store=store, channel=None)  # fmt: skip
        held = store.pending_versions(config.id)
        assert report.pending
        assert held
        store.create_user("ana", hash_password("ana-password-1"), "analyst", ["35.99"], "id", at=now)
        app = create_app(store, "twilio-token", "https://ews.example.invalid", clock=lambda: now,
                         settings=WebSettings(b"s" * 32), region_configs={config.id: config})  # fmt: skip
        client = TestClient(app, base_url="https://testserver")
        token = client.post("/api/session", json={"username": "ana", "password": "ana-password-1"}).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        before = store.last_ledger_id()
        response = client.post(f"/api/alerts/{held[0].id}/decision", json={"decision": "approve"}, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "approved"
        assert response.json()["queued"] >= 1
        assert store.last_ledger_id() > before
        assert store.alert_version(held[0].id).status == "approved"
        assert store.alert_version(held[0].id).decided_by == "ana"
        entry = store.audit_entries(subject=f"alert_version:{held[0].id}")[0]
        assert (entry.actor, entry.action, entry.region) == ("ana", "review.approve", "35.99")
        assert entry.detail["queued"] == response.json()["queued"]
        left = client.get("/api/alerts/pending", headers=headers).json()["versions"]
        assert [v["id"] for v in left] == [v.id for v in held[1:]]
    finally:
        store.close()

"""Tagana acknowledgement links (``/ack/{token}``) over the demo's data: no login, the signed token is the credential.

GET shows the unit and warning with one SIAP button and changes nothing (link previewers fetch links); POST
acknowledges once however often it is sent; a tampered, forged or foreign-key token gets the same bare 404 and
changes nothing. The key is the one ``AckLinks.from_env`` signs with (``EWS_SECRET_KEY`` as UTF-8).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from browser.dashboard_site import DemoData, demo_data
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ews.center.mobilise import AckLinks, ack_token
from ews.config import open_region
from ews.store.repository import Store
from ews.web.app import create_app
from ews.web.auth import WebSettings

SIGNING_KEY = "ack-link-test-secret-0123456789abcdef"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoData:
    return demo_data(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def store(demo: DemoData) -> Iterator[Store]:
    s = Store.from_url(demo.database_url)
    yield s
    s.close()


@pytest.fixture(scope="module")
def app(demo: DemoData, store: Store) -> FastAPI:
    env = {"EWS_SECRET_KEY": SIGNING_KEY}
    return create_app(
        store, "twilio-token", "http://127.0.0.1:8080", clock=lambda: demo.now + timedelta(minutes=3),
        settings=WebSettings.from_env(env, secure_cookies=False),
        region_configs={"demo": open_region(demo.region_file, {})},
    )  # fmt: skip


def links() -> AckLinks:
    found = AckLinks.from_env({"EWS_PUBLIC_URL": "https://ews.example.invalid", "EWS_SECRET_KEY": SIGNING_KEY})
    assert found is not None
    return found


def paged(store: Store) -> list[tuple[int, str]]:
    """(mobilisation, recipient) of the demo's step-1 pages, one per open mobilisation."""
    out = []
    for m in sorted(store.mobilisations(["demo"]), key=lambda m: m.id):
        pages = store.paged_recipients([m.id]).get(m.id, [])
        if m.status == "open" and pages:
            out.append((m.id, pages[0][2]))
    assert len(out) >= 2, "the demo's run pages its Tagana units"
    return out


def state(store: Store, mobilisation_id: int) -> tuple[str, int, int, int]:
    m = store.mobilisation(mobilisation_id)
    assert m is not None
    events = store.mobilisation_events(mobilisation_id)
    return m.status, m.acks, len(events), len(store.audit_entries(subject=f"mobilisation:{mobilisation_id}"))


def test_the_web_app_checks_links_with_the_key_ack_links_sign_with(app: FastAPI) -> None:
    assert app.state.settings.secret_key == links().secret


def test_a_valid_link_shows_the_unit_and_warning_and_changes_nothing(app: FastAPI, store: Store) -> None:
    mid, recipient = paged(store)[0]
    before = state(store, mid)
    client = TestClient(app, follow_redirects=False)
    token = ack_token(mid, recipient, links().secret)
    for _ in range(3):  # a previewer, the SMS app, the coordinator
        page = client.get(f"/ack/{token}")
        assert page.status_code == 200
        assert "Tagana Kab. Contoh" in page.text
        assert "Siaga" in page.text
        assert "WIB" in page.text
        assert f'action="/ack/{token}"' in page.text
        assert ">SIAP</button>" in page.text
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["referrer-policy"] == "no-referrer"
        assert "noindex" in page.headers["x-robots-tag"]
        assert client.head(f"/ack/{token}").status_code in (200, 405)
    assert state(store, mid) == before
    assert not client.cookies  # no session, nothing to steal


def test_posting_the_link_acknowledges_once(app: FastAPI, store: Store) -> None:
    mid, recipient = paged(store)[0]
    token = ack_token(mid, recipient, links().secret)
    client = TestClient(app, follow_redirects=False)
    done = client.post(f"/ack/{token}")
    assert done.status_code == 200
    assert "Terima kasih" in done.text
    assert "TERMOBILISASI" in done.text  # the demo's quorum is 1
    record = store.mobilisation(mid)
    assert record is not None
    assert (record.status, record.acks, record.responders) == ("mobilised", 1, frozenset({recipient}))
    acks = [e for e in store.mobilisation_events(mid) if e.kind == "ack"]
    assert [(e.channel, e.recipient_id, e.actor) for e in acks] == [("link", recipient, recipient)]
    audited = {(e.actor, e.action) for e in store.audit_entries(subject=f"mobilisation:{mid}")}
    assert (recipient, "mobilisation acknowledged") in audited
    after = state(store, mid)
    again = client.post(f"/ack/{token}")
    assert again.status_code == 200
    assert "Sudah tercatat" in again.text
    assert state(store, mid) == after  # still one acknowledgement, no new event or audit entry


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # signature altered
        lambda t: "9" + t,  # another mobilisation id under the same signature
        lambda t: t.split(".")[0] + ".deadbeefdeadbeef." + t.split(".")[2],  # another coordinator
        lambda t: t.rsplit(".", 1)[0],  # no signature
        lambda t: "x" * 500,  # far too long
        lambda t: "not-a-token",
    ],
)
def test_a_tampered_token_is_a_bare_404_and_changes_nothing(app: FastAPI, store: Store, mangle: object) -> None:
    mid, recipient = paged(store)[-1]
    before = state(store, mid)
    client = TestClient(app, follow_redirects=False)
    bad = mangle(ack_token(mid, recipient, links().secret))  # type: ignore[operator]
    for response in (client.get(f"/ack/{bad}"), client.post(f"/ack/{bad}")):
        assert response.status_code == 404
        assert "Tautan tidak berlaku" in response.text
        assert "TGN" not in response.text
        assert "signature" not in response.text
    assert state(store, mid) == before


def test_a_token_signed_with_another_key_or_for_a_missing_mobilisation_is_refused(app: FastAPI, store: Store) -> None:
    mid, recipient = paged(store)[-1]
    before = state(store, mid)
    client = TestClient(app, follow_redirects=False)
    forged = ack_token(mid, recipient, b"another-key-entirely-0123456789abcdef")
    missing = ack_token(987654, recipient, links().secret)
    for token in (forged, missing):
        assert client.get(f"/ack/{token}").status_code == 404
        assert client.post(f"/ack/{token}").status_code == 404
    assert state(store, mid) == before


def test_the_ack_pages_are_not_in_the_api_schema(app: FastAPI) -> None:
    assert not [p for p in app.openapi()["paths"] if p.startswith("/ack")]

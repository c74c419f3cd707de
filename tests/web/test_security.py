"""The command center's security on SQLite and PostgreSQL: login and its rate limit, sessions that end, CSRF on
every state change, roles, region scope, the audit log, argon2 hashes that never reach a log, masked phones."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from ews.alerts.model import Decision, Transition, VillageState
from ews.store.repository import Store
from ews.types import Level
from ews.web.app import create_app
from ews.web.auth import User, WebSettings, hash_password, mask_phone, phone_for, verify_password

TOKEN = "test-auth-token-not-a-secret"  # noqa: S105 - the Twilio token of a loopback test
PUBLIC = "https://ews.example.invalid"
T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
SECRET = b"0123456789abcdef0123456789abcdef"  # a test key, 32 characters
PASSWORDS = {"vera": "vera-password-1", "omar": "omar-password-1", "ana": "ana-password-1",
             "adi": "adi-password-1", "jabar": "jabar-password-1"}  # fmt: skip
USERS = [("vera", "viewer", ["35.78"]), ("omar", "operator", ["35.78"]), ("ana", "analyst", ["35.78"]),
         ("adi", "admin", ["*"]), ("jabar", "analyst", ["32"])]  # fmt: skip


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Site:
    store: Store
    clock: Clock
    client: TestClient
    surabaya: int  # a pending alert version in 35.78 (jawa-timur)
    bandung: int  # one in 32.73 (jawa-barat)


def pending(store: Store, region: str, village: str) -> int:
    decision = Decision(region, village, "A1", Transition.NEW, Level.NONE, Level.AWAS, 1, "A1", T0, None, 0.9,
                        True, False, "test")  # fmt: skip
    return store.add_alert_version(decision, f"ews.{region}.A1.{village}.1", "pending", at=T0)


@pytest.fixture(scope="module")
def hashes() -> dict[str, str]:
    return {name: hash_password(password) for name, password in PASSWORDS.items()}  # argon2 is slow on purpose


@pytest.fixture
def site(database_url: str, hashes: dict[str, str]) -> Iterator[Site]:
    store = Store.from_url(database_url)
    for name, role, regions in USERS:
        store.create_user(name, hashes[name], role, regions, "id", at=T0)
    for region, village in (("jawa-timur", "35.78.01.1001"), ("jawa-barat", "32.73.01.1001")):
        state = VillageState(region, village, "A1", Level.SIAGA, 1, "A1", T0, None, 0.9, True)
        store.save_states(region, [state], at=T0)
    surabaya, bandung = pending(store, "jawa-timur", "35.78.01.1001"), pending(store, "jawa-barat", "32.73.01.1001")
    clock = Clock()
    app = create_app(store, TOKEN, PUBLIC, clock=clock, settings=WebSettings(SECRET))
    client = TestClient(app, base_url="https://testserver", follow_redirects=False)
    yield Site(store, clock, client, surabaya, bandung)
    store.close()


def form_token(client: TestClient) -> str:
    page = client.get("/login")
    assert page.status_code == 200
    found = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page.text)
    assert found, page.text
    return found.group(1)


def login(client: TestClient, name: str, password: str | None = None) -> str:
    """Log in through the form; returns the session's CSRF token (read from GET /api/me)."""
    response = client.post("/login", data={"username": name, "password": password or PASSWORDS[name],
                                           "csrf_token": form_token(client), "next": "/api/me"})  # fmt: skip
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/api/me"
    me = client.get("/api/me")
    assert me.status_code == 200
    token: str = me.json()["csrf_token"]
    return token


def bearer(client: TestClient, name: str) -> dict[str, str]:
    response = client.post("/api/session", json={"username": name, "password": PASSWORDS[name]})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def actions(store: Store) -> list[str]:
    return [e.action for e in store.audit_entries()]


# -- login ------------------------------------------------------------------------------------------------------


def test_login_sets_a_host_only_secure_http_only_cookie_and_is_audited(site: Site) -> None:
    csrf = login(site.client, "omar")
    assert csrf
    cookie = next(c for c in site.client.cookies.jar if c.name == "__Host-ews_session")
    assert cookie.secure
    assert cookie.path == "/"
    assert not cookie.domain_specified
    set_cookie = site.client.post(
        "/login", data={"username": "omar", "password": PASSWORDS["omar"], "csrf_token": form_token(site.client)}
    ).headers["set-cookie"]
    assert "HttpOnly" in set_cookie
    assert "SameSite=lax" in set_cookie
    assert site.client.get("/api/me").json()["username"] == "omar"
    entry = site.store.audit_entries(subject="user:omar")[0]
    assert entry.action == "auth.login"
    assert "testclient" not in str(entry.detail)  # the client address is kept only as a keyed hash
    assert PASSWORDS["omar"] not in str(site.store.audit_entries())


def test_a_wrong_password_or_unknown_name_is_refused_alike_and_audited(site: Site) -> None:
    for name, password in (("omar", "not-his-password"), ("nobody", "whatever-password")):
        response = site.client.post("/login", data={"username": name, "password": password,
                                                     "csrf_token": form_token(site.client)})  # fmt: skip
        assert response.status_code == 401
        assert "wrong user name or password" in response.text
    assert site.client.get("/api/me").status_code == 401
    failed = [e for e in site.store.audit_entries() if e.action == "auth.login_failed"]
    assert sorted(e.subject for e in failed) == ["user:omar", "user:unknown"]
    assert "whatever-password" not in str(failed)
    assert "nobody" not in str(failed)  # a name that is no user may be a mistyped password: not kept
    api = site.client.post("/api/session", json={"username": "omar", "password": "not-his-password"})
    assert api.status_code == 401


def test_the_login_form_needs_its_signed_token(site: Site) -> None:
    form_token(site.client)  # the pre-session cookie is set ...
    forged = site.client.post(
        "/login", data={"username": "omar", "password": PASSWORDS["omar"], "csrf_token": "0" * 64}
    )
    assert forged.status_code == 403  # ... but a token not signed for it is refused
    site.client.cookies.clear()
    token = form_token(site.client)
    site.client.cookies.clear()  # a cross-site form has the token of someone else's page but not the cookie
    no_cookie = site.client.post(
        "/login", data={"username": "omar", "password": PASSWORDS["omar"], "csrf_token": token}
    )
    assert no_cookie.status_code == 403
    assert not [e for e in site.store.audit_entries() if e.action == "auth.login"]


def test_five_failures_then_429_with_retry_after_even_for_the_right_password(site: Site) -> None:
    for _ in range(5):
        site.clock.now += timedelta(seconds=10)
        response = site.client.post("/api/session", json={"username": "ana", "password": "guess"})
        assert response.status_code == 401
    site.clock.now += timedelta(seconds=10)
    blocked = site.client.post("/api/session", json={"username": "ana", "password": PASSWORDS["ana"]})
    assert blocked.status_code == 429
    # The oldest failure (at +10 s) leaves the 15-minute window at +910 s; now is +60 s.
    assert blocked.headers["Retry-After"] == "850"
    form = site.client.post("/login", data={"username": "ana", "password": PASSWORDS["ana"],
                                            "csrf_token": form_token(site.client)})  # fmt: skip
    assert form.status_code == 429
    assert "Retry-After" in form.headers
    assert "auth.login_refused" in actions(site.store)
    assert site.client.post("/api/session", json={"username": "omar", "password": PASSWORDS["omar"]}).status_code == 200
    site.clock.now += timedelta(seconds=850)
    assert site.client.post("/api/session", json={"username": "ana", "password": PASSWORDS["ana"]}).status_code == 200


# -- sessions ---------------------------------------------------------------------------------------------------


def test_a_session_ends_after_30_idle_minutes_and_after_8_hours(site: Site) -> None:
    login(site.client, "vera")
    site.clock.now += timedelta(minutes=29)
    assert site.client.get("/api/me").status_code == 200  # used: the idle time starts again
    site.clock.now += timedelta(minutes=31)
    assert site.client.get("/api/me").status_code == 401
    login(site.client, "vera")
    opened = site.clock.now
    while site.clock.now + timedelta(minutes=15) < opened + timedelta(hours=8):
        site.clock.now += timedelta(minutes=15)  # used every 15 minutes, never idle ...
        assert site.client.get("/api/me").status_code == 200
    site.clock.now = opened + timedelta(hours=8)
    assert site.client.get("/api/me").status_code == 401  # ... but 8 hours after login it is over


def test_logout_needs_csrf_and_ends_the_session(site: Site) -> None:
    csrf = login(site.client, "omar")
    assert site.client.post("/logout").status_code == 403
    assert site.client.get("/api/me").status_code == 200
    response = site.client.post("/logout", data={"csrf_token": csrf})
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert site.client.get("/api/me").status_code == 401
    assert "auth.logout" in actions(site.store)


def test_without_a_session_pages_redirect_to_login_and_the_api_says_401(site: Site) -> None:
    page = site.client.post("/logout")
    assert page.status_code == 303
    assert page.headers["location"].startswith("/login?next=")
    for method, path in (("GET", "/api/me"), ("GET", "/api/alerts/pending"), ("GET", "/api/audit"),
                         ("POST", f"/api/alerts/{site.surabaya}/decision")):  # fmt: skip
        response = site.client.request(method, path, json={"decision": "approve"})
        assert response.status_code == 401, path
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert site.client.get("/api/me", headers={"Authorization": "Bearer not-a-token"}).status_code == 401
    assert site.store.alert_version(site.surabaya).status == "pending"


def test_a_disabled_user_or_a_changed_password_ends_the_sessions(site: Site) -> None:
    headers = bearer(site.client, "omar")
    site.store.set_password("omar", hash_password("a-new-password-2"))
    assert site.client.get("/api/me", headers=headers).status_code == 401
    headers = site.client.post("/api/session", json={"username": "omar", "password": "a-new-password-2"})
    assert headers.status_code == 200
    site.store.deactivate("omar")
    auth = {"Authorization": f"Bearer {headers.json()['token']}"}
    assert site.client.get("/api/me", headers=auth).status_code == 401
    refused = site.client.post("/api/session", json={"username": "omar", "password": "a-new-password-2"})
    assert refused.status_code == 401


def test_a_next_parameter_never_leaves_the_site(site: Site) -> None:
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        response = site.client.post("/login", data={"username": "vera", "password": PASSWORDS["vera"],
                                                    "csrf_token": form_token(site.client), "next": target})  # fmt: skip
        assert response.headers["location"] == "/"


# -- roles, CSRF, scope, audit ----------------------------------------------------------------------------------


def test_a_viewer_or_operator_cannot_decide_a_review(site: Site) -> None:
    for name in ("vera", "omar"):
        site.client.cookies.clear()
        csrf = login(site.client, name)
        response = site.client.post(f"/api/alerts/{site.surabaya}/decision", json={"decision": "reject"},
                                    headers={"X-CSRF-Token": csrf})  # fmt: skip
        assert response.status_code == 403, name
        assert "analyst" in response.json()["detail"]
    assert site.store.alert_version(site.surabaya).status == "pending"
    assert not [a for a in actions(site.store) if a.startswith("review.")]


def test_a_cookie_session_change_without_the_right_csrf_token_is_refused_and_changes_nothing(site: Site) -> None:
    csrf = login(site.client, "ana")
    path = f"/api/alerts/{site.surabaya}/decision"
    assert site.client.post(path, json={"decision": "reject"}).status_code == 403
    assert site.client.post(path, json={"decision": "reject"}, headers={"X-CSRF-Token": "x" + csrf}).status_code == 403
    assert site.client.delete("/api/session").status_code == 403
    assert site.store.alert_version(site.surabaya).status == "pending"
    assert not [a for a in actions(site.store) if a.startswith("review.")]
    done = site.client.post(path, json={"decision": "reject"}, headers={"X-CSRF-Token": csrf})
    assert done.status_code == 200
    assert done.json() == {"version_id": site.surabaya, "status": "rejected", "queued": 0}
    assert site.store.alert_version(site.surabaya).status == "rejected"
    assert site.store.alert_version(site.surabaya).decided_by == "ana"
    entry = site.store.audit_entries(subject=f"alert_version:{site.surabaya}")[0]
    assert (entry.actor, entry.role, entry.action, entry.region) == ("ana", "analyst", "review.reject", "35.78")
    again = site.client.post(path, json={"decision": "approve"}, headers={"X-CSRF-Token": csrf})
    assert again.status_code == 409  # a decision is taken once


def test_a_bearer_token_needs_no_csrf_and_a_cookie_does_not_ride_along(site: Site) -> None:
    headers = bearer(site.client, "ana")
    response = site.client.post(f"/api/alerts/{site.surabaya}/decision", json={"decision": "reject"}, headers=headers)
    assert response.status_code == 200
    assert site.client.delete("/api/session", headers=headers).status_code == 204
    assert site.client.get("/api/me", headers=headers).status_code == 401
    assert actions(site.store)[:2] == ["auth.logout", "review.reject"]


def test_a_user_of_35_78_neither_sees_nor_decides_32(site: Site) -> None:
    headers = bearer(site.client, "ana")
    queue = site.client.get("/api/alerts/pending", headers=headers).json()
    assert [v["id"] for v in queue["versions"]] == [site.surabaya]
    assert [t["region"] for t in queue["threads"]] == ["jawa-timur"]
    assert site.client.get("/api/regions/jawa-barat/villages", headers=headers).json() == []
    villages = site.client.get("/api/regions/jawa-timur/villages", headers=headers).json()
    assert [v["village_code"] for v in villages] == ["35.78.01.1001"]
    assert villages[0]["level"] == "Siaga"
    refused = site.client.post(f"/api/alerts/{site.bandung}/decision", json={"decision": "reject"}, headers=headers)
    assert refused.status_code == 404
    assert site.store.alert_version(site.bandung).status == "pending"
    other = bearer(site.client, "jabar")
    assert [v["id"] for v in site.client.get("/api/alerts/pending", headers=other).json()["versions"]] == [site.bandung]
    everything = bearer(site.client, "adi")
    assert len(site.client.get("/api/alerts/pending", headers=everything).json()["versions"]) == 2


def test_an_approval_for_a_region_this_server_does_not_serve_is_refused(site: Site) -> None:
    headers = bearer(site.client, "ana")
    response = site.client.post(f"/api/alerts/{site.surabaya}/decision", json={"decision": "approve"}, headers=headers)
    assert response.status_code == 409
    assert "--region jawa-timur" in response.json()["detail"]
    assert site.store.alert_version(site.surabaya).status == "pending"


def test_the_audit_log_is_for_admins_and_scoped(site: Site) -> None:
    headers = bearer(site.client, "ana")
    site.client.post(f"/api/alerts/{site.surabaya}/decision", json={"decision": "reject"}, headers=headers)
    assert site.client.get("/api/audit", headers=headers).status_code == 403
    log = site.client.get("/api/audit", headers=bearer(site.client, "adi")).json()
    assert [e["action"] for e in log][:2] == ["auth.login", "review.reject"]
    assert {e["actor"] for e in log} == {"ana", "adi"}


# -- passwords, phones ------------------------------------------------------------------------------------------


def test_passwords_are_argon2id_and_never_logged(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    stored = site.store.user_by_name("ana")
    assert stored is not None
    assert stored.password_hash.startswith("$argon2id$")
    assert verify_password(stored.password_hash, PASSWORDS["ana"])
    assert not verify_password(stored.password_hash, "something else")
    assert not verify_password("not a hash", PASSWORDS["ana"])
    with caplog.at_level(logging.DEBUG):
        for _ in range(6):
            site.client.post("/api/session", json={"username": "ana", "password": "wrong-" + PASSWORDS["ana"]})
        login(site.client, "omar")
    text = caplog.text + str(site.store.audit_entries())
    assert "password-1" not in text
    assert "$argon2" not in text
    assert "testclient" not in text


def test_phones_are_masked_for_operators_and_hidden_from_viewers() -> None:
    assert mask_phone("+6281234561234") == "+62 ••• •••• 1234"
    assert mask_phone("whatsapp:+6281234561234") == "+62 ••• •••• 1234"
    assert mask_phone("+31201234567") == "+31 ••• •••• 4567"
    assert mask_phone("+6221123") == "•••"  # too short to be a number: nothing of it shown
    assert mask_phone("not a number") == "•••"
    viewer = User(1, "vera", "viewer", ("35.78",), "id")
    operator = User(2, "omar", "operator", ("35.78",), "id")
    assert phone_for(viewer, "+6281234561234") is None
    assert phone_for(operator, "+6281234561234") == "+62 ••• •••• 1234"
    assert phone_for(operator, None) is None


def test_region_scope_and_role_order() -> None:
    user = User(1, "a", "analyst", ("35", "32.73"), "id")
    assert user.sees("35.78")
    assert user.sees("35.78.01.1001")
    assert user.sees("32.73.01.1001")
    assert not user.sees("32.74.01.1001")
    assert not user.sees("351.0")  # a prefix ends on a dot
    assert not user.sees(None)
    assert User(2, "b", "admin", ("*",), "en").sees(None)
    assert user.at_least("viewer")
    assert user.at_least("analyst")
    assert not user.at_least("admin")
    with pytest.raises(ValueError, match="unknown role"):
        user.at_least("root")


def test_settings_from_the_environment() -> None:
    assert WebSettings.from_env({"EWS_SECRET_KEY": "k" * 40}).secret_generated is False
    generated = WebSettings.from_env({})
    assert generated.secret_generated
    assert len(generated.secret_key) == 64
    assert WebSettings.from_env({}, secure_cookies=False).cookie_name == "ews_session"
    assert generated.cookie_name == "__Host-ews_session"
    with pytest.raises(ValueError, match="at least 32 characters"):
        WebSettings.from_env({"EWS_SECRET_KEY": "short"})


def test_a_name_with_a_nul_or_control_character_is_refused_like_any_wrong_name(site: Site) -> None:
    # PostgreSQL refuses NUL in a text: such a name must never reach the database (it would be a 500).
    for name in ("om\x00ar", "om\tar", "\x7f"):
        response = site.client.post("/api/session", json={"username": name, "password": PASSWORDS["omar"]})
        assert response.status_code == 401, name
    queue = site.client.get("/api/audit?subject=%00", headers=bearer(site.client, "adi"))
    assert queue.status_code == 422

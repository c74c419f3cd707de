"""The dashboard through FastAPI's TestClient over the demo's data (run once per module, held for review).

Pages render for each role and only within the user's regions; fragments are the live part alone; no served
page shows a phone number or points at another host; the map's geometry is served once and its levels apart.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from browser.dashboard_site import DemoData, demo_data
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ews.config import open_region
from ews.store.repository import Store
from ews.web import i18n
from ews.web.app import create_app
from ews.web.auth import WebSettings, hash_password, new_token, token_hash
from ews.web.dashboard import redact_numbers
from ews.web.views import LEVEL_COLOURS

WEB = Path(__file__).resolve().parents[2] / "ews" / "web"
USERS: dict[str, int] = {}
PHONE = re.compile(r"\+?62[\d ]{8,}|\b08\d{8,}|FICTIONAL|\+99")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoData:
    return demo_data(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def store(demo: DemoData) -> Iterator[Store]:
    s = Store.from_url(demo.database_url)
    yield s
    s.close()


@pytest.fixture(scope="module")
def report_id(store: Store, demo: DemoData) -> int:
    from ews.center.reports import intake_report

    result = intake_report(
        store, source="operator", source_ref="web-test-1", at=demo.now, region="demo",
        body="Rumah roboh, butuh evakuasi, hubungi 0812-3456-7890", village_code="35.99.01.2001",
    )  # fmt: skip
    return result.report_id


@pytest.fixture(scope="module")
def app(demo: DemoData, store: Store, report_id: int) -> FastAPI:
    app = create_app(
        store, "twilio-token", "http://127.0.0.1:8080", clock=lambda: demo.now + timedelta(minutes=5),
        settings=WebSettings(b"k" * 32, secure_cookies=False),
        region_configs={"demo": open_region(demo.region_file, {})},
    )  # fmt: skip
    for name, role, regions in [
        ("vera", "viewer", ["35.99"]),
        ("omar", "operator", ["35.99"]),
        ("ana", "analyst", ["demo"]),
        ("adi", "admin", ["*"]),
        ("lain", "analyst", ["36"]),  # another province: sees nothing of the demo
    ]:
        USERS[name] = store.create_user(name, hash_password("pw-" + name), role, regions, "id", at=demo.now).id
    return app


def client_for(app: FastAPI, store: Store, username: str) -> TestClient:
    """A client logged in as ``username`` (a session stored directly; the login form is tested elsewhere)."""
    token, now = new_token(), app.state.clock()
    store.create_session(USERS[username], token_hash(token), "csrf-" + username, now + timedelta(hours=8), now)
    client = TestClient(app, follow_redirects=False)
    client.cookies.set(app.state.settings.cookie_name, token)
    return client


PAGES = ["/dashboard", "/dashboard/map", "/dashboard/warnings", "/dashboard/tagana", "/dashboard/reports",
         "/dashboard/review"]  # fmt: skip


@pytest.mark.parametrize("username", ["vera", "omar", "ana", "adi"])
def test_every_page_renders_for_every_role_without_a_phone_number(app: FastAPI, store: Store, username: str) -> None:
    client = client_for(app, store, username)
    for page in PAGES:
        response = client.get(page)
        assert response.status_code == 200, (page, response.text[:300])
        assert "text/html" in response.headers["content-type"]
        assert not PHONE.search(response.text), (page, PHONE.search(response.text))
        assert "Kabupaten Contoh" in response.text


def test_overview_shows_counts_warnings_and_their_timeline(app: FastAPI, store: Store) -> None:
    html = client_for(app, store, "vera").get("/dashboard").text
    assert "Desa dengan peringatan aktif" in html
    assert 'class="warning l' in html
    for stage in ("dilihat ews", "disimpan", "diantrekan", "terkirim"):
        assert stage in html
    assert 'data-kind="sent"' in html


def test_a_degraded_run_is_shown_loudly(app: FastAPI, store: Store, demo: DemoData) -> None:
    run = store.start_run("demo", "bmkg-test", demo.now)
    store.finish_run(run, "partial", {}, [{"source": "bmkg", "message": "DEGRADED: index unreachable"}], at=demo.now)
    html = client_for(app, store, "vera").get("/dashboard?fragment=1").text
    assert 'class="degraded" role="alert"' in html
    assert "TERDEGRADASI" in html
    assert "DEGRADED: index unreachable" in html


def test_a_fragment_is_the_live_part_alone(app: FastAPI, store: Store) -> None:
    client = client_for(app, store, "ana")
    for page in ("/dashboard", "/dashboard/review", "/dashboard/reports", "/dashboard/warnings", "/dashboard/tagana"):
        full, part = client.get(page).text, client.get(page + "?fragment=1").text
        assert "<html" in full
        assert 'hx-trigger="every 15s"' in full
        assert "<html" not in part
        assert "<nav" not in part
        assert len(part) < len(full)
    assert "<html" not in client.get("/dashboard/review", headers={"HX-Request": "true"}).text


def test_without_a_session_pages_redirect_to_login_and_data_is_refused(app: FastAPI) -> None:
    client = TestClient(app, follow_redirects=False)
    for path in [*PAGES, "/dashboard/audit", "/dashboard/regions/demo/levels.json"]:
        response = client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next=")
    assert client.post("/dashboard/review/decide", data={"region": "demo", "thread": "x"}).status_code == 303


def test_a_user_of_another_region_sees_nothing_of_it(app: FastAPI, store: Store) -> None:
    client = client_for(app, store, "lain")
    html = client.get("/dashboard").text
    assert "Kabupaten Contoh" not in html
    assert "Akun Anda tidak mencakup" in html
    assert client.get("/dashboard/regions/demo/villages.geojson").status_code == 404
    assert client.get("/dashboard/regions/demo/levels.json").status_code == 404
    assert "review.none" not in client.get("/dashboard/review").text
    assert "Tidak ada yang menunggu tinjauan." in client.get("/dashboard/review").text


def test_audit_is_for_admins_only(app: FastAPI, store: Store) -> None:
    assert client_for(app, store, "ana").get("/dashboard/audit").status_code == 403
    assert client_for(app, store, "vera").get("/dashboard/audit").status_code == 403
    response = client_for(app, store, "adi").get("/dashboard/audit")
    assert response.status_code == 200
    assert "Log audit" in response.text
    assert 'href="/dashboard/audit"' not in client_for(app, store, "omar").get("/dashboard").text


def test_the_map_geometry_is_served_once_and_levels_apart(app: FastAPI, store: Store) -> None:
    client = client_for(app, store, "vera")
    first = client.get("/dashboard/regions/demo/villages.geojson")
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/geo+json"
    assert "max-age" in first.headers["cache-control"]
    geo = first.json()
    assert len(geo["features"]) == 36  # the demo's 9 x 4 villages
    coords = re.findall(r"-?\d+\.\d+", first.text)
    assert max(len(c.split(".")[1]) for c in coords) <= 5  # rounded to 5 decimals
    again = client.get("/dashboard/regions/demo/villages.geojson", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert not again.content
    levels = client.get("/dashboard/regions/demo/levels.json").json()
    assert "features" not in levels
    assert set(levels["levels"].values()) <= {1, 2, 3}
    assert {3, 2, 1} <= set(levels["levels"].values())  # the demo has villages at every level
    assert levels["colours"] == {str(k): v for k, v in LEVEL_COLOURS.items()}
    areas = client.get("/dashboard/regions/demo/warnings.geojson").json()
    assert areas["features"]
    assert all(f["properties"]["level"] >= 1 for f in areas["features"])


def test_pages_and_geometry_are_gzipped(app: FastAPI, store: Store) -> None:
    client = client_for(app, store, "vera")
    for path in (
        "/dashboard/regions/demo/villages.geojson",
        "/dashboard/warnings",
        "/static/vendor/leaflet/leaflet.js",
    ):
        response = client.get(path, headers={"Accept-Encoding": "gzip"})
        assert response.headers["content-encoding"] == "gzip", path


def test_viewer_and_operator_cannot_decide_the_review_queue(app: FastAPI, store: Store) -> None:
    thread = store.pending_threads("demo")[0].thread_id
    form = {"region": "demo", "thread": thread, "decision": "approve"}
    for name in ("vera", "omar"):
        client = client_for(app, store, name)
        assert client.post("/dashboard/review/decide", data={**form, "csrf_token": f"csrf-{name}"}).status_code == 403
    assert "data-decision" not in client_for(app, store, "omar").get("/dashboard/review").text
    assert store.pending_threads("demo"), "nothing was decided"


def test_a_state_change_without_the_csrf_token_is_refused(app: FastAPI, store: Store) -> None:
    thread = store.pending_threads("demo")[0].thread_id
    client = client_for(app, store, "ana")
    form = {"region": "demo", "thread": thread, "decision": "approve"}
    assert client.post("/dashboard/review/decide", data=form).status_code == 403
    assert client.post("/dashboard/review/decide", data={**form, "csrf_token": "csrf-adi"}).status_code == 403
    assert store.pending_threads("demo"), "nothing was decided"


def test_an_analyst_approves_a_pending_thread_as_ews_alerts_approve_does(app: FastAPI, store: Store) -> None:
    thread = store.pending_threads("demo")[0].thread_id
    client = client_for(app, store, "ana")
    page = client.get("/dashboard/review").text
    assert f'data-thread="{thread}"' in page
    assert 'data-decision="approve"' in page
    before = store.last_ledger_id()
    form = {"region": "demo", "thread": thread, "decision": "approve", "csrf_token": "csrf-ana"}
    response = client.post("/dashboard/review/decide", data=form, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "<html" not in response.text
    assert "15 versi disetujui" in response.text
    assert not store.pending_threads("demo")
    assert store.last_ledger_id() > before  # queued at once, for ews send / the dispatch DAG
    entry = store.audit_entries(subject=f"thread:{thread}")[0]
    assert (entry.actor, entry.action, entry.region) == ("ana", "review.approve", "35.99")
    again = client.post("/dashboard/review/decide", data=form)
    assert again.status_code == 409
    assert "decided already" in again.text


def test_the_report_queue_masks_numbers_and_only_operators_move_reports(
    app: FastAPI, store: Store, report_id: int
) -> None:
    viewer = client_for(app, store, "vera").get("/dashboard/reports").text
    assert f'id="report-{report_id}"' in viewer
    assert "[nomor]" in viewer
    assert "7890" not in viewer
    assert 'data-status="resolved"' not in viewer.split(f'id="report-{report_id}"')[1].split("</tr>")[0]
    operator = client_for(app, store, "omar")
    html = operator.get("/dashboard/reports").text
    assert "•••890" in html
    assert "0812" not in html
    form = {"status": "in-progress", "csrf_token": "csrf-omar"}
    response = operator.post(f"/dashboard/reports/{report_id}/status", data=form, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "ditangani" in response.text
    assert store.report(report_id).status == "in-progress"
    back = operator.post(f"/dashboard/reports/{report_id}/status", data={**form, "status": "routed"})
    assert back.status_code == 409
    assert store.report(report_id).status == "in-progress"
    assert client_for(app, store, "lain").post(
        f"/dashboard/reports/{report_id}/status", data={"status": "resolved", "csrf_token": "csrf-lain"}
    ).status_code in (403, 409)
    assert store.report(report_id).status == "in-progress"


def test_report_text_numbers_are_masked_for_operators_and_removed_for_viewers() -> None:
    text = "banjir di RT 3, hubungi 0812-3456-7890 atau +62 813 1111 2222"
    assert redact_numbers(text, masked=True) == "banjir di RT 3, hubungi •••890 atau •••222"
    assert redact_numbers(text, masked=False) == "banjir di RT 3, hubungi [nomor] atau [nomor]"


def test_language_follows_the_profile_and_switches_with_lang(app: FastAPI, store: Store) -> None:
    client = client_for(app, store, "vera")
    assert "Ringkasan" in client.get("/dashboard").text
    english = client.get("/dashboard?lang=en")
    assert "Overview" in english.text
    assert "Villages under an active alert" in english.text
    assert "Overview" in client.get("/dashboard/warnings").text  # remembered (cookie)
    assert "Ringkasan" in client.get("/dashboard?lang=id").text


def test_every_interface_string_has_both_languages_and_every_key_used_exists() -> None:
    assert all(len(pair) == 2 and all(pair) for pair in i18n.STRINGS.values())
    used = set()
    for template in (WEB / "templates").glob("*.html"):
        used |= set(re.findall(r"(?<![\w.])t\('([a-z_.0-9-]+)'\)", template.read_text()))
    assert len(used) > 50
    assert used <= set(i18n.STRINGS), sorted(used - set(i18n.STRINGS))


def test_static_files_are_served_with_caching_headers(app: FastAPI, store: Store) -> None:
    client = TestClient(app)
    for path in ("/static/vendor/htmx/htmx.min.js", "/static/vendor/leaflet/leaflet.js",
                 "/static/vendor/leaflet/leaflet.css", "/static/dashboard.js", "/static/dashboard.css"):  # fmt: skip
        response = client.get(path)
        assert response.status_code == 200, path
        assert "max-age=86400" in response.headers["cache-control"]
        assert response.headers["etag"]
        assert response.headers["last-modified"]
        assert client.get(path, headers={"If-None-Match": response.headers["etag"]}).status_code == 304


EXTERNAL = re.compile(r"(?:https?:)?//(?!127\.0\.0\.1|localhost)[a-z0-9.-]+\.[a-z]{2,}", re.IGNORECASE)


def test_no_page_or_own_asset_points_at_another_host(app: FastAPI, store: Store) -> None:
    own = [*(WEB / "templates").glob("*.html"), WEB / "static" / "dashboard.js", WEB / "static" / "dashboard.css"]
    for path in own:
        found = EXTERNAL.search(path.read_text())
        assert found is None, (path.name, found)
    client = client_for(app, store, "adi")
    for page in [*PAGES, "/dashboard/audit"]:
        html = client.get(page).text
        assert EXTERNAL.search(html) is None, (page, EXTERNAL.search(html))
        for src in re.findall(r'(?:src|href)="([^"]+)"', html):
            assert src.startswith(("/", "?", "#")), (page, src)


# -- a report typed in by an operator (a phone call) ---------------------------------------------------------

FORM_TOKEN = re.compile(r'name="form_token" value="([A-Za-z0-9_-]+)"')


def form_token(client: TestClient) -> str:
    found = FORM_TOKEN.search(client.get("/dashboard/reports").text)
    assert found, "the reports page has the operator's form"
    return found.group(1)


def stored_with(store: Store, text: str) -> list[int]:
    return [r.id for r in store.reports(limit=1000) if r.body == text]


def ledger_topics(store: Store, report_id: int) -> list[tuple[str, str, str]]:
    from sqlalchemy import text

    query = text("SELECT topic, audience, channel FROM send_ledger WHERE topic LIKE :t ORDER BY id")
    with store.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(query, {"t": f"report:{report_id}:%"})]


def test_an_operator_types_in_a_report_and_a_double_submit_stores_it_once(app: FastAPI, store: Store) -> None:
    client = client_for(app, store, "omar")
    token = form_token(client)
    text = "warga terjebak banjir butuh perahu"
    form = {"csrf_token": "csrf-omar", "form_token": token, "region": "demo", "village": "Wonojaya", "text": text,
            "label": "telepon dari Pak RT"}  # fmt: skip
    response = client.post("/dashboard/reports", data=form)
    assert response.status_code == 303  # PRG: the page then says what became of it
    [report_id] = stored_with(store, text)
    assert response.headers["location"] == f"/dashboard/reports?taken={report_id}"
    record = store.report(report_id)
    assert (record.source, record.unit, record.status) == ("operator", "Tagana", "routed")
    assert (record.village_code, record.located_by) == ("35.99.01.2003", "operator")
    assert record.reporter_label == "telepon dari Pak RT"
    assert record.reporter_id is None
    page = client.get(response.headers["location"]).text
    assert f"Laporan #{report_id} disimpan dan diteruskan ke Tagana" in page
    assert f'id="report-{report_id}"' in page  # in the queue
    entry = store.audit_entries(subject=f"report:{report_id}")[0]
    assert (entry.actor, entry.role, entry.action, entry.region) == (
        "omar",
        "operator",
        "report.routed",
        "35.99.01.2003",
    )
    # The same form sent again (a double click, a retry over a slow line): one report, the operator told so.
    again = client.post("/dashboard/reports", data=form, headers={"HX-Request": "true"})
    assert again.status_code == 200
    assert "<html" not in again.text
    assert "sudah pernah dikirim" in again.text
    assert f"Laporan #{report_id} disimpan" in again.text
    assert 'hx-swap-oob="innerHTML"' in again.text  # the queue comes along, out of band
    assert f'id="report-{report_id}"' in again.text
    assert FORM_TOKEN.search(again.text).group(1) != token  # type: ignore[union-attr]  # a fresh form
    assert stored_with(store, text) == [report_id]
    assert len(store.audit_entries(subject=f"report:{report_id}")) == 1


def test_a_viewer_gets_no_form_and_cannot_post_one(app: FastAPI, store: Store) -> None:
    client = client_for(app, store, "vera")
    html = client.get("/dashboard/reports").text
    assert 'name="form_token"' not in html
    assert 'action="/dashboard/reports"' not in html
    text = "viewer mencoba: pohon tumbang menutup jalan"
    form = {"csrf_token": "csrf-vera", "form_token": "v" * 32, "region": "demo", "text": text}
    assert client.post("/dashboard/reports", data=form).status_code == 403
    assert stored_with(store, text) == []


def test_a_typed_in_report_without_the_csrf_token_is_refused(app: FastAPI, store: Store) -> None:
    client = client_for(app, store, "omar")
    text = "tanpa token: pohon tumbang menutup jalan"
    form = {"form_token": form_token(client), "region": "demo", "village": "35.99.01.2005", "text": text}
    assert client.post("/dashboard/reports", data=form).status_code == 403
    assert client.post("/dashboard/reports", data={**form, "csrf_token": "csrf-vera"}).status_code == 403
    assert stored_with(store, text) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"village": "35.99.09.9999"}, "Desa: 35.99.09.9999 tidak ada di Kabupaten Contoh (sintetis)."),
        ({"village": "Atlantis"}, "Desa: Atlantis tidak ada di Kabupaten Contoh (sintetis)."),
        ({"village": ""}, "Desa: wajib diisi, karena akun Anda hanya mencakup sebagian"),  # omar sees 35.99 only
        ({"text": "   "}, "Isi laporan: wajib diisi."),
        ({"phone": "0899 ABC 0011"}, "Nomor ponsel pelapor: tidak terbaca"),
        ({"region": "elsewhere"}, "Wilayah: pilih salah satu wilayah Anda."),
        ({"form_token": "x"}, "Formulir kedaluwarsa atau rusak"),
    ],
)
def test_bad_input_gives_the_form_back_naming_the_field_and_stores_nothing(
    app: FastAPI, store: Store, change: dict[str, str], message: str
) -> None:
    client = client_for(app, store, "omar")
    form = {"csrf_token": "csrf-omar", "form_token": form_token(client), "region": "demo", "village": "35.99.01.2006",
            "text": "jembatan putus diterjang banjir", "phone": "0899-9000-0555"}  # fmt: skip
    before = len(store.reports(limit=1000))
    form.update(change)
    response = client.post("/dashboard/reports", data=form)
    assert response.status_code == 422
    assert "<html" in response.text  # the whole page, with the form open and the problem by its field
    assert message in response.text
    if set(change) <= {"village", "text", "phone"}:  # a field the operator typed (one region: no region field)
        assert 'aria-invalid="true" aria-describedby="problem-' in response.text
    assert "9000-0555" not in response.text  # the number is not echoed
    assert "90000555" not in response.text
    assert "ketik lagi" in response.text  # ... and the operator is told to type it again
    htmx = client.post("/dashboard/reports", data=form, headers={"HX-Request": "true"})
    assert htmx.status_code == 409  # swapped in place by the page's htmx config
    assert "<html" not in htmx.text
    assert message in htmx.text
    assert len(store.reports(limit=1000)) == before


def test_a_reporters_phone_is_never_shown_and_gets_each_status_once_by_sms(app: FastAPI, store: Store) -> None:
    number = "0899-9000-0777"
    shapes = ("0899-9000-0777", "089990000777", "+6289990000777", "6289990000777", "9000-0777", "90000777")
    client = client_for(app, store, "omar")
    text = "pengungsi butuh makanan dan selimut"
    form = {"csrf_token": "csrf-omar", "form_token": form_token(client), "region": "demo",
            "village": "35.99.01.2004", "text": text, "phone": number}  # fmt: skip
    taken = client.post("/dashboard/reports", data=form, headers={"HX-Request": "true"})
    assert taken.status_code == 200
    [report_id] = stored_with(store, text)
    assert store.report(report_id).unit.startswith("Dinas Sosial")
    assert "Pelapor menerima kabar status lewat SMS." in taken.text
    assert ledger_topics(store, report_id) == [(f"report:{report_id}:routed", "reporter", "sms")]
    for status in ("in-progress", "in-progress"):  # told once, even when the change is sent twice
        moved = client.post(
            f"/dashboard/reports/{report_id}/status", data={"status": status, "csrf_token": "csrf-omar"}
        )
        assert moved.status_code == 303
    assert store.report(report_id).status == "in-progress"
    assert ledger_topics(store, report_id) == [
        (f"report:{report_id}:routed", "reporter", "sms"),
        (f"report:{report_id}:in-progress", "reporter", "sms"),
    ]
    pages = [taken.text]
    for name in ("vera", "omar", "adi"):
        other = client_for(app, store, name)
        pages += [
            other.get(p).text
            for p in [*PAGES, "/dashboard/reports?fragment=1", f"/dashboard/reports?taken={report_id}"]
        ]
    pages.append(client_for(app, store, "adi").get("/dashboard/audit").text)
    for html in pages:
        assert not any(shape in html for shape in shapes)
        assert not PHONE.search(html), PHONE.search(html)


# -- the Tagana board ------------------------------------------------------------------------------------------


def open_mobilisations(store: Store) -> list[int]:
    return sorted(m.id for m in store.mobilisations(["demo"]) if m.status == "open")


def card(html: str, mobilisation_id: int) -> str:
    return html.split(f'id="mob-{mobilisation_id}"')[1].split('<div class="mob"')[0]


def test_the_board_shows_each_mobilisation_with_its_events_for_every_role(app: FastAPI, store: Store) -> None:
    ids = open_mobilisations(store)
    assert len(ids) >= 2, "the demo's run opens mobilisations"
    for name in ("vera", "omar", "ana", "adi"):
        html = client_for(app, store, name).get("/dashboard/tagana").text
        for mid in ids:
            one = card(html, mid)
            assert 'data-status="open"' in one
            assert "Siaga" in one
            assert "konfirmasi 0/1" in one
            assert "Dibuka 2026-12-02 20:40 WIB" in one  # 13:40 UTC, the demo's run, in the region's zone
            assert "Panggilan berikut 2026-12-02 20:50 WIB" in one  # step 2 after 10 minutes
            assert "dipanggil" in one
            assert "tahap 1" in one
            assert ("data-ack" in one) is (name != "vera"), name
        assert 'href="/dashboard/tagana" aria-current="page"' in html
        assert not PHONE.search(html), PHONE.search(html)
        assert "UTC" not in html
    overview = client_for(app, store, "vera").get("/dashboard").text
    assert f'data-kind="open-mobilisations">{len(ids)}<' in overview
    english = client_for(app, store, "vera").get("/dashboard/tagana?lang=en").text
    assert "Tagana board" in english
    assert "Next page due" in english


def test_a_viewer_cannot_acknowledge_nor_anyone_without_csrf_nor_outside_their_regions(
    app: FastAPI, store: Store
) -> None:
    mid = open_mobilisations(store)[-1]
    viewer = client_for(app, store, "vera")
    assert viewer.post(f"/dashboard/tagana/{mid}/ack", data={"csrf_token": "csrf-vera"}).status_code == 403
    operator = client_for(app, store, "omar")
    assert operator.post(f"/dashboard/tagana/{mid}/ack").status_code == 403
    assert operator.post(f"/dashboard/tagana/{mid}/ack", data={"csrf_token": "csrf-adi"}).status_code == 403
    other = client_for(app, store, "lain")
    outside = other.post(f"/dashboard/tagana/{mid}/ack", data={"csrf_token": "csrf-lain"})  # an analyst of 36
    assert outside.status_code == 404
    assert "TGN" not in outside.text
    assert f'id="mob-{mid}"' not in other.get("/dashboard/tagana").text
    assert operator.post("/dashboard/tagana/999999/ack", data={"csrf_token": "csrf-omar"}).status_code == 404
    assert store.mobilisation(mid).status == "open"
    assert all(e.action != "mobilisation acknowledged" for e in store.audit_entries(subject=f"mobilisation:{mid}"))


def test_an_operator_acknowledges_for_the_unit_and_the_board_shows_it_mobilised(app: FastAPI, store: Store) -> None:
    mid = open_mobilisations(store)[0]
    operator = client_for(app, store, "omar")
    response = operator.post(f"/dashboard/tagana/{mid}/ack", data={"csrf_token": "csrf-omar"},
                             headers={"HX-Request": "true"})  # fmt: skip
    assert response.status_code == 200
    assert "<html" not in response.text
    assert "dikonfirmasi: dimobilisasi, 1/1 konfirmasi" in response.text
    one = card(response.text, mid)
    assert 'data-status="mobilised"' in one
    assert "data-ack" not in one
    assert "Dimobilisasi 2026-12-02 20:45 WIB" in one
    assert "konfirmasi · omar · dashboard" in " ".join(one.split())
    record = store.mobilisation(mid)
    assert (record.status, record.acks) == ("mobilised", 1)
    actions = {(e.actor, e.role, e.action) for e in store.audit_entries(subject=f"mobilisation:{mid}")}
    assert {("omar", "operator", "mobilisation acknowledged"), ("ews", "system", "mobilisation mobilised")} <= actions
    again = operator.post(f"/dashboard/tagana/{mid}/ack", data={"csrf_token": "csrf-omar"})
    assert again.status_code == 303  # a plain form post goes back to the board (PRG)
    assert store.mobilisation(mid).acks == 1
    assert sum(e.kind == "ack" for e in store.mobilisation_events(mid)) == 1
    board = client_for(app, store, "vera").get("/dashboard/tagana").text
    assert 'data-column="mobilised"' in board
    assert f'id="mob-{mid}" data-status="mobilised"' in board

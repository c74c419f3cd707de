"""The dashboard in headless Chromium (Debian's ``chromium``, driven by Playwright) on a real uvicorn server.

Over the demo's data (run once, Awas held for review): an operator and an analyst log in through the login form,
see the map's villages coloured by level, approve the pending alert, acknowledge a Tagana mobilisation and resolve
a report, each through the page's buttons. A request without a session, a viewer on an operator's action and a
change without the CSRF token are refused. Screenshots go to ``out/test-artifacts/browser/``.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from browser.dashboard_site import DemoData, demo_data
from conftest import require

from ews.store.repository import Store
from ews.web.auth import hash_password

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "out" / "test-artifacts" / "browser"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]  # fmt: skip
# The demo's levels as the map draws them (ews.web.views.LEVEL_COLOURS).
FILLS = {"1": "#f7d038", "2": "#f28c28", "3": "#d7301f"}

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def chromium() -> Path:
    require(CHROMIUM.is_file(), f"{CHROMIUM} is missing: apt-get install chromium (.ci/run installs it)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        require(False, "playwright is not installed: pip install -e '.[dev]' (never `playwright install`)")
    return CHROMIUM


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoData:
    return demo_data(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def server(demo: DemoData) -> Iterator[tuple[str, Store]]:
    """A uvicorn server on a free loopback port over the demo's database, with one user per role."""
    from browser.dashboard_site import dashboard_app

    store = Store.from_url(demo.database_url)
    for name, role in [("vera", "viewer"), ("omar", "operator"), ("ana", "analyst")]:
        store.create_user(name, hash_password(f"pw-{name}-2026"), role, ["35.99"], "id", at=demo.now)
    app = dashboard_app(store, [demo.region_file])
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not running.started:
        assert time.monotonic() < deadline, "uvicorn did not start within 20 s"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", store
    running.should_exit = True
    thread.join(timeout=10)
    store.close()


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(chromium), args=ARGS, headless=True)
        yield b
        b.close()


def _log_in(browser: object, base: str, name: str) -> object:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="id-ID")  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(f"{base}/dashboard")
    assert "/login" in page.url  # no session: the login form first
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", f"pw-{name}-2026")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/dashboard*")
    return page


def _shot(page: object, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


def test_the_map_shows_the_villages_coloured_by_level(browser: object, server: tuple[str, Store]) -> None:
    base, store = server
    page = _log_in(browser, base, "vera")
    page.goto(f"{base}/dashboard/map")
    page.wait_for_selector("#map[data-loaded='1']", timeout=15000)
    paths = page.eval_on_selector_all(
        "path.village", "ps => ps.map(p => [p.dataset.code, p.dataset.level, p.getAttribute('fill')])"
    )
    assert len(paths) == 36  # the demo's villages, as SVG paths
    expected = {}
    for s in store.active_alerts("demo"):
        expected[s.village_code] = max(expected.get(s.village_code, 0), int(s.level))
    for code, level, fill in paths:
        want = expected.get(code, 0)
        assert level == str(want), code
        assert fill == FILLS.get(level, "#d9d9d9"), (code, level, fill)
    assert {p[1] for p in paths} >= {"1", "2", "3"}
    assert page.locator("path.leaflet-interactive").count() >= 36
    _shot(page, "map")


def test_an_analyst_approves_the_pending_alert(browser: object, server: tuple[str, Store]) -> None:
    base, store = server
    pending = store.pending_threads("demo")
    assert pending, "the demo run holds its Awas alerts for review"
    page = _log_in(browser, base, "ana")
    page.goto(f"{base}/dashboard/review")
    row = page.locator(f"tr.pending[data-thread='{pending[0].thread_id}']")
    _shot(page, "review-before")
    row.locator("button[data-decision=approve]").click()
    page.wait_for_selector("p.notice", timeout=10000)
    assert "disetujui" in page.inner_text("p.notice")
    assert not store.pending_threads("demo")
    _shot(page, "review-approved")


def test_an_operator_acknowledges_a_mobilisation(browser: object, server: tuple[str, Store]) -> None:
    base, store = server
    open_ones = sorted(m.id for m in store.mobilisations(["demo"]) if m.status == "open")
    assert open_ones, "the demo's run opens Tagana mobilisations"
    target = open_ones[0]
    page = _log_in(browser, base, "omar")
    page.goto(f"{base}/dashboard/tagana")
    card = page.locator(f"#mob-{target}")
    assert card.get_attribute("data-status") == "open"
    assert "WIB" in card.inner_text()
    _shot(page, "tagana-before")
    card.locator("button[data-ack]").click()
    page.wait_for_selector(f"#mob-{target}[data-status=mobilised]", timeout=10000)
    assert "dikonfirmasi" in page.inner_text("p.notice")
    assert page.locator(f"#mob-{target} button[data-ack]").count() == 0
    after = store.mobilisation(target)
    assert after is not None
    assert (after.status, after.acks) == ("mobilised", 1)
    page.locator(f"#mob-{target} details.events summary").click()
    assert "omar" in page.locator(f"#mob-{target} details.events").inner_text()
    _shot(page, "tagana-acknowledged")


def test_an_operator_resolves_a_report(browser: object, server: tuple[str, Store], demo: DemoData) -> None:
    from ews.center.reports import intake_report

    base, store = server
    result = intake_report(
        store, source="operator", source_ref="browser-test-1", body="Banjir setinggi lutut, warga butuh evakuasi",
        at=demo.now, region="demo", village_code="35.99.01.2001", reporter_label="operator",
    )  # fmt: skip
    report_id = result.report_id
    page = _log_in(browser, base, "omar")
    page.goto(f"{base}/dashboard/reports")
    row = page.locator(f"#report-{report_id}")
    _shot(page, "reports-before")
    row.locator("button[data-status=resolved]").click()
    page.wait_for_selector(f"#report-{report_id}[data-status=resolved]", timeout=10000)
    assert store.report(report_id).status == "resolved"
    _shot(page, "reports-resolved")


def test_refusals_without_session_for_a_viewer_and_without_csrf(browser: object, server: tuple[str, Store]) -> None:
    base, _store = server
    anonymous = browser.new_context().request  # type: ignore[attr-defined]
    response = anonymous.post(f"{base}/dashboard/reports/1/status", form={"status": "resolved"}, max_redirects=0)
    assert response.status == 303
    assert "/login" in response.headers["location"]

    viewer = _log_in(browser, base, "vera")
    token = viewer.eval_on_selector("input[name=csrf_token]", "e => e.value")
    refused = viewer.context.request.post(
        f"{base}/dashboard/reports/1/status", form={"status": "resolved", "csrf_token": token}
    )
    assert refused.status == 403

    operator = _log_in(browser, base, "omar")
    no_token = operator.context.request.post(f"{base}/dashboard/reports/1/status", form={"status": "in-progress"})
    assert no_token.status == 403

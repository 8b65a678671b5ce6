"""Every page at 390 px wide: nothing wider than the screen, the navigation reachable by
keyboard, every form control labelled; signing in and adding a scanner by keyboard alone."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from quipu.store import Store
from quipu.store.tables import Alarm
from tests.browser.conftest import new_context, shot, sign_in
from tests.servers import ADMIN_PASSWORD, RunningServer, register_secret, running_server

pytestmark = pytest.mark.browser

PAGES = ["/", "/jobs", "/scanners", "/alarms", "/credentials", "/sources", "/scans", "/reports"]
NAV = ["/", "/credentials", "/sources", "/scans", "/jobs", "/scanners", "/reports", "/alarms"]
LONG = "x" * 120


@pytest.fixture(scope="module")
def layout_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One server for the module, with a scanner and an alarm with long words to lay out."""
    data_dir: Path = tmp_path_factory.mktemp("ui-layout") / "data"
    with running_server(kind="sqlite", data_dir=data_dir) as running:
        with running.client() as api:
            body = api.post(
                "/api/v1/scanners/",
                json={
                    "name": "a-scanner-with-a-rather-long-name-0123456789",
                    "bind": [f"10.0.{n}.0/24" for n in range(8)],
                },
            ).json()
            register_secret(body["api_key"])
        store = Store.from_url(running.database_url)
        try:
            with store.transaction() as s:
                s.add(
                    Alarm(
                        kind="scan_stuck",
                        scan_job_id=None,
                        message=f"A message with a long word: {LONG}.",
                        created_at=datetime.now(UTC),
                    )
                )
        finally:
            store.dispose()
        yield running


@pytest.fixture(scope="module")
def narrow(browser: Browser, layout_server: RunningServer) -> Iterator[Page]:
    """A signed-in page 390 px wide."""
    context: BrowserContext = new_context(browser, layout_server, width=390)
    opened = context.new_page()
    sign_in(opened)
    expect(opened.get_by_role("heading", name="Overview")).to_be_visible()
    yield opened
    outside = context.outside  # type: ignore[attr-defined]
    context.close()
    assert not outside, f"the UI asked for files outside the server: {outside}"


def no_overflow(page: Page) -> None:
    # After a click or Enter the new page's elements answer before its stylesheet applies.
    page.wait_for_load_state("load")
    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, window.innerWidth, "
        "Array.from(document.querySelectorAll('body *')).filter(e => "
        "(e.getBoundingClientRect().right > window.innerWidth + 1 || "
        "e.scrollWidth > e.clientWidth + 1) && !e.closest('.scroll') && "
        "getComputedStyle(e).overflowX === 'visible')"
        ".slice(-3).map(e => e.tagName + '.' + e.className + ' ' + e.scrollWidth + '/' + "
        "e.clientWidth + ' ' + getComputedStyle(e).whiteSpace + ' ' + "
        "getComputedStyle(e).overflowWrap + ' ' + JSON.stringify(e.textContent.slice(0, 200)))]"
    )
    scroll_width, inner_width, wide = widths
    assert scroll_width <= inner_width, (
        f"{page.url}: the document is {scroll_width} px wide in {inner_width} px ({wide})"
    )


def unlabelled_controls(page: Page) -> list[str]:
    """Visible inputs, selects and textareas with neither a label nor an ARIA name."""
    missing = []
    controls = page.locator("input:visible, select:visible, textarea:visible")
    for n in range(controls.count()):
        control = controls.nth(n)
        labelled = control.evaluate(
            "e => (e.labels && Array.from(e.labels).some(l => l.textContent.trim() !== ''))"
            " || !!(e.getAttribute('aria-label') || '').trim()"
            " || !!(e.getAttribute('aria-labelledby') || '').trim()"
        )
        if not labelled:
            missing.append(control.evaluate("e => e.outerHTML.slice(0, 120)"))
    return missing


def nav_reached_by_tab(page: Page) -> set[str]:
    """The main navigation's links that Tab reaches from the top of the page."""
    page.locator("body").focus()
    page.evaluate("document.activeElement && document.activeElement.blur()")
    reached: set[str] = set()
    for _ in range(len(NAV) + 6):
        page.keyboard.press("Tab")
        href = page.evaluate(
            "() => { const e = document.activeElement;"
            " return e && e.closest('nav[aria-label=\"Main\"]') ? e.getAttribute('href') : null }"
        )
        if href:
            reached.add(href)
    return reached


@pytest.mark.parametrize("path", PAGES)
def test_a_page_fits_390_px_with_its_navigation_and_labels(narrow: Page, path: str) -> None:
    response = narrow.goto(path)
    assert response is not None
    assert response.status == 200, f"{path} answered {response.status}"
    no_overflow(narrow)
    nav = narrow.get_by_role("navigation", name="Main")
    expect(nav).to_be_visible()
    for link in nav.get_by_role("link").all():
        expect(link).to_be_in_viewport()
        box = link.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    assert nav_reached_by_tab(narrow) == set(NAV)
    assert unlabelled_controls(narrow) == [], f"{path}: controls without a label"
    if path == "/":
        shot(narrow, "overview-390")


def test_sign_in_by_keyboard_alone(browser: Browser, layout_server: RunningServer) -> None:
    context = new_context(browser, layout_server)
    page = context.new_page()
    try:
        page.goto("/jobs")
        expect(page).to_have_url(re.compile(r"/login\?next=(/|%2F)jobs$"))
        assert unlabelled_controls(page) == []
        page.evaluate("document.activeElement && document.activeElement.blur()")
        for _ in range(10):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.id") == "username":
                break
        assert page.evaluate("document.activeElement.id") == "username"
        page.keyboard.type("admin")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "password"
        page.keyboard.type(ADMIN_PASSWORD)
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Scan jobs")).to_be_visible()
    finally:
        context.close()


def test_a_scanner_is_added_by_keyboard_and_its_key_fits_390_px(narrow: Page) -> None:
    narrow.goto("/scanners")
    no_overflow(narrow)
    narrow.get_by_label("Name", exact=True).focus()
    narrow.keyboard.type("keyboard-scanner")
    narrow.keyboard.press("Tab")
    assert narrow.evaluate("document.activeElement.id") == "scanner-bind"
    narrow.keyboard.type("127.0.0.1, 10.1.0.0/16")
    narrow.keyboard.press("Tab")
    assert narrow.evaluate("document.activeElement.id") == "scanner-rate"
    narrow.keyboard.press("Control+A")
    narrow.keyboard.type("10")
    narrow.keyboard.press("Enter")
    expect(narrow.get_by_role("heading", name="Scanner keyboard-scanner added")).to_be_visible()
    register_secret((narrow.locator("#api-key").text_content() or "").strip())
    no_overflow(narrow)
    narrow.get_by_role("link", name="Back to the scanners").focus()
    narrow.keyboard.press("Enter")
    row = narrow.locator('#scanners tr[data-name="keyboard-scanner"]')
    expect(row.locator(".bind")).to_have_text("127.0.0.1/32, 10.1.0.0/16")
    no_overflow(narrow)
    # The enable/disable button takes the keyboard too.
    row.get_by_role("button", name="Disable scanner keyboard-scanner").focus()
    narrow.keyboard.press("Enter")
    expect(row.locator(".enabled")).to_have_text("disabled")

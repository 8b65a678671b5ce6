"""Browser tests: Debian's Chromium driven by Playwright against a real ``quipu server``.

Every page a test opens may be saved with :func:`shot` under ``build/ui-screenshots``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.servers import ADMIN_PASSWORD, RunningServer, running_server

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "build" / "ui-screenshots"
# As root in a closed network: no sandbox, and none of Chromium's own calls home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
]

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium for one test module: Playwright's sync API keeps an event loop running in
    this thread while it is open, which ``asyncio.run`` in later tests could not share."""
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: scripts/setup installs Debian's chromium package")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    """A server on SQLite; a test module may set ``SERVER_ENV``."""
    with running_server(
        kind="sqlite",
        data_dir=tmp_path / "data",
        env=getattr(request.module, "SERVER_ENV", None),
    ) as running:
        yield running


def new_context(browser: Browser, server: RunningServer, *, width: int = 1280) -> BrowserContext:
    context = browser.new_context(
        base_url=server.url, viewport={"width": width, "height": 800 if width > 600 else 844}
    )
    context.set_default_timeout(15_000)
    # Nothing outside the server: a request elsewhere fails the test.
    outside: list[str] = []

    def check(route, request) -> None:  # type: ignore[no-untyped-def]
        if request.url.startswith(server.url):
            route.continue_()
        else:
            outside.append(request.url)
            route.abort()

    context.route("**/*", check)
    context.outside = outside  # type: ignore[attr-defined]
    return context


def sign_in(
    page: Page, *, username: str = "admin", password: str = ADMIN_PASSWORD, goto: bool = True
) -> None:
    """Sign in on the sign-in page (``goto`` False: the one already open)."""
    if goto:
        page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


@pytest.fixture
def pg_server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    """The same on PostgreSQL, for the flows that run there too."""
    with running_server(
        kind="postgresql",
        data_dir=tmp_path / "pg-data",
        env=getattr(request.module, "SERVER_ENV", None),
    ) as running:
        yield running


@contextmanager
def signed_in(browser: Browser, server: RunningServer) -> Iterator[Page]:
    """A signed-in page of ``server`` at 1280x800; fails if the UI asked for anything
    outside the server."""
    context = new_context(browser, server)
    opened = context.new_page()
    sign_in(opened)
    expect(opened.get_by_role("heading", name="Overview")).to_be_visible()
    yield opened
    outside = context.outside  # type: ignore[attr-defined]
    context.close()
    assert not outside, f"the UI asked for files outside the server: {outside}"


@pytest.fixture
def page(browser: Browser, server: RunningServer) -> Iterator[Page]:
    """A signed-in page of ``server`` at 1280x800."""
    with signed_in(browser, server) as opened:
        yield opened


@pytest.fixture
def pg_page(browser: Browser, pg_server: RunningServer) -> Iterator[Page]:
    """A signed-in page of ``pg_server``."""
    with signed_in(browser, pg_server) as opened:
        yield opened


def shot(page: Page, name: str) -> Path:
    """Save what ``page`` shows as ``build/ui-screenshots/<name>.png``."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=path, full_page=True)
    return path

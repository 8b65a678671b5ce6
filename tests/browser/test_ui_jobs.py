"""Scan jobs in the browser: signing in and out, a job watched to the end without a reload,
pause and restart, cancel, approve, and the refusals (wrong password, no CSRF token)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from quipu.lab import Lab
from tests.browser.conftest import new_context, shot, sign_in
from tests.e2e.scans import add_lab_source, created
from tests.labs import running_lab
from tests.servers import RunningServer, register_secret

pytestmark = [pytest.mark.browser, pytest.mark.lab]

SERVER_ENV = {"QUIPU_DISPATCH_INTERVAL_S": "0.2", "QUIPU_SSH_CONNECT_TIMEOUT_S": "6"}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("ui-jobs-lab") / "lab"
    with running_lab(root=root, hosts=3, slow=1, net="127.0.236", port=2236) as lab:
        key = lab.sudo_key_path.read_text()
        register_secret(*(line for line in key.splitlines() if "PRIVATE KEY" not in line))
        yield lab


def add_lab_scan(
    api: httpx.Client, lab: Lab, *, name: str, slow: bool = False, mediated: bool = False
) -> int:
    hosts = [h.address for h in lab.hosts if slow or not h.slow]
    options: dict[str, Any] = {"scheduling_mode": "mediated"} if mediated else {}
    source_id = add_lab_source(
        api,
        lab,
        name=f"{name}-lab",
        credential_name=f"{name}-key",
        hosts=hosts,
        port=lab.hosts[0].port,
        **options,
    )
    scan = created(api.post("/api/v1/scans/", json={"name": name, "sources": [source_id]}))
    return int(scan["id"])


def start(api: httpx.Client, scan_id: int) -> int:
    return int(created(api.post(f"/api/v1/scans/{scan_id}/jobs/"))["id"])


def mark_page(page: Page) -> None:
    """A marker that a reload would wipe out."""
    page.evaluate("window.__notReloaded = true")


def not_reloaded(page: Page) -> bool:
    return bool(page.evaluate("window.__notReloaded === true"))


def watch_a_job_to_completed(page: Page, server: RunningServer, lab: Lab) -> int:
    with server.client() as api:
        job_id = start(api, add_lab_scan(api, lab, name="watched"))
    page.goto(f"/jobs/{job_id}")
    mark_page(page)
    status = page.locator("#job-status")
    expect(status).to_have_text("completed", timeout=60_000)
    assert not_reloaded(page), "the page was reloaded"
    expect(page.locator("#job-progress-text")).to_contain_text("100%")
    expect(page.locator("#tasks")).to_contain_text("inspection")
    expect(page.locator("#results")).to_contain_text(lab.hosts[0].address)
    # A finished job offers no move.
    expect(page.get_by_role("button", name="Pause")).to_have_count(0)
    expect(page.get_by_role("button", name="Cancel")).to_have_count(0)
    return job_id


def test_a_job_is_watched_to_completed_without_a_reload(
    page: Page, server: RunningServer, lab: Lab
) -> None:
    job_id = watch_a_job_to_completed(page, server, lab)
    shot(page, "job")
    page.get_by_role("link", name="Inspection", exact=True).click()
    expect(page.locator("#results")).to_contain_text("success")
    page.goto("/jobs?status=completed")
    expect(page.get_by_role("link", name=str(job_id), exact=True)).to_be_visible()
    shot(page, "jobs")
    page.goto("/")
    shot(page, "overview")


def test_on_postgresql_too(pg_page: Page, pg_server: RunningServer, lab: Lab) -> None:
    watch_a_job_to_completed(pg_page, pg_server, lab)


def test_pause_and_restart_from_the_page_and_the_job_resumes(
    page: Page, server: RunningServer, lab: Lab
) -> None:
    with server.client() as api:
        job_id = start(api, add_lab_scan(api, lab, name="paused", slow=True))
    page.goto(f"/jobs/{job_id}")
    status = page.locator("#job-status")
    expect(status).to_have_text("running", timeout=30_000)
    page.get_by_role("button", name="Pause").click()
    expect(page.locator(".flash")).to_contain_text("it is now paused")
    expect(status).to_have_text("paused")
    expect(page.get_by_role("button", name="Pause")).to_have_count(0)
    mark_page(page)
    page.get_by_role("button", name="Restart").click()
    expect(page.locator(".flash")).to_contain_text("restart done")
    mark_page(page)
    expect(status).to_have_text(re.compile("pending|running"))
    expect(status).to_have_text("completed", timeout=90_000)
    assert not_reloaded(page)
    expect(page.locator("#job-panel")).to_contain_text("unreachable")


def test_cancel_asks_first_and_a_canceled_job_offers_no_move(
    page: Page, server: RunningServer, lab: Lab
) -> None:
    with server.client() as api:
        job_id = start(api, add_lab_scan(api, lab, name="canceled", slow=True))
    page.goto(f"/jobs/{job_id}")
    expect(page.locator("#job-status")).to_have_text("running", timeout=30_000)
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("#job-status")).to_have_text("running")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator(".flash")).to_contain_text("it is now canceled")
    expect(page.locator("#job-status")).to_have_text("canceled")
    expect(page.locator(".moves button")).to_have_count(0)


def test_a_held_job_is_approved_and_a_refused_move_shows_the_sentence(
    page: Page, server: RunningServer, lab: Lab
) -> None:
    with server.client() as api:
        job_id = start(api, add_lab_scan(api, lab, name="held", mediated=True))
        page.goto(f"/jobs/{job_id}")
        expect(page.locator("#job-status")).to_have_text("held")
        expect(page.get_by_role("button", name="Restart")).to_have_count(0)
        # Approved elsewhere meanwhile: the stale button's move is refused, in the
        # server's words.
        assert api.put(f"/api/v1/jobs/{job_id}/approve/").status_code == 200
    page.get_by_role("button", name="Approve").click()
    expect(page.locator(".flash.error")).to_contain_text(f"Scan job {job_id}")
    expect(page.locator("#job-status")).to_have_text("completed", timeout=60_000)


def test_a_non_admin_is_offered_no_approve(page: Page, server: RunningServer, lab: Lab) -> None:
    server.add_user(username="viewer", password="viewer-password-1")
    with server.client() as api:
        job_id = start(api, add_lab_scan(api, lab, name="held-view", mediated=True))
    page.context.clear_cookies()
    sign_in(page, username="viewer", password="viewer-password-1")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    page.goto(f"/jobs/{job_id}")
    expect(page.locator("#job-status")).to_have_text("held")
    expect(page.get_by_role("button", name="Cancel")).to_have_count(1)
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)


def test_wrong_password_and_requests_without_a_csrf_token_are_refused(
    browser: Browser, server: RunningServer
) -> None:
    context = new_context(browser, server)
    page = context.new_page()
    sign_in(page, password="not-the-password")
    expect(page.get_by_role("alert")).to_have_text("Unable to log in with provided credentials.")
    expect(page).to_have_url(re.compile("/login"))
    page.goto("/jobs")
    expect(page).to_have_url(re.compile(r"/login\?next=/jobs"))
    sign_in(page, goto=False)
    expect(page).to_have_url(re.compile("/jobs$"))
    cookie = next(c for c in context.cookies() if c["name"] == "quipu_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    with server.client() as api:
        job_id = start(api, add_lab_scan_none(api))
    # The session cookie alone does not make a move: the CSRF token must come with it.
    jar = {"quipu_session": cookie["value"]}
    bare = httpx.post(f"{server.url}/jobs/{job_id}/cancel", cookies=jar, data={"x": "1"})
    assert bare.status_code == 403 and "no valid CSRF token" in bare.text
    forged = httpx.post(
        f"{server.url}/jobs/{job_id}/cancel", cookies=jar, data={"csrf_token": "0" * 64}
    )
    assert forged.status_code == 403
    with server.client() as api:
        assert api.get(f"/api/v1/jobs/{job_id}/").json()["status"] != "canceled"
    page.goto("/jobs/99999")
    expect(page.get_by_role("alert")).to_have_text("Scan job 99999 does not exist.")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile("/login"))
    page.goto("/")
    expect(page).to_have_url(re.compile("/login"))
    context.close()


def add_lab_scan_none(api: httpx.Client) -> int:
    """A scan of an address nothing listens on: a job that ends on its own."""
    source = created(
        api.post(
            "/api/v2/sources/",
            json={
                "name": "nowhere",
                "source_type": "network",
                "hosts": ["127.0.236.250"],
                "credentials": [_any_credential(api)],
            },
        )
    )
    return int(
        created(api.post("/api/v1/scans/", json={"name": "nowhere", "sources": [source["id"]]}))[
            "id"
        ]
    )


def _any_credential(api: httpx.Client) -> int:
    return int(
        created(
            api.post(
                "/api/v2/credentials/",
                json={
                    "name": "pw",
                    "cred_type": "network",
                    "username": "u",
                    "password": "pw-Secret-1",
                },
            )
        )["id"]
    )

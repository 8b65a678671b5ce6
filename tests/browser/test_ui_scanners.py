"""Scanners and alarms in the browser: a scanner added on the page, its key shown once and
used by a real remote scanner process, seen going online and (killed) offline without a
reload; disable, enable, key rotation; the alarms page with its advice, paged."""

from __future__ import annotations

import re
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

import quipu
from quipu.store import Store
from quipu.store.tables import Alarm
from tests.browser.conftest import shot, sign_in
from tests.e2e.scans import created
from tests.servers import RunningServer, free_port, register_secret, start_scanner

pytestmark = pytest.mark.browser

TIMEOUT_S = 3.0
VIEWER_PASSWORD = "viewer-Secret-123456"
SERVER_ENV = {
    "QUIPU_HEARTBEAT_S": "0.5",
    "QUIPU_HEARTBEAT_TIMEOUT_S": str(TIMEOUT_S),
    "QUIPU_DISPATCH_INTERVAL_S": "0.2",
}


def heartbeat(server: RunningServer, api_key: str) -> int:
    response = httpx.post(
        f"{server.url}/scanner/heartbeat",
        headers={"X-API-Key": api_key},
        json={"version": "test"},
        timeout=10,
    )
    return response.status_code


def row(page: Page, name: str) -> Locator:
    return page.locator(f'#scanners tr[data-name="{name}"]')


def read_key(page: Page) -> str:
    expect(page.locator("#api-key")).to_be_visible()
    key = (page.locator("#api-key").text_content() or "").strip()
    assert len(key) >= 40, key
    register_secret(key)
    return key


def test_a_scanner_added_on_the_page_goes_online_then_offline_without_a_reload(
    page: Page, server: RunningServer, tmp_path: Path
) -> None:
    page.goto("/scanners")
    expect(row(page, "local").locator(".state")).to_have_text("online")

    # Refused first: a bad address names itself and keeps what was typed.
    page.get_by_label("Name", exact=True).fill("edge-1")
    page.get_by_label("Bound IPs or CIDRs").fill("127.0.0.0/8, 10.0.0.300")
    page.get_by_label("Max probes per second").fill("25")
    page.get_by_role("button", name="Add scanner").click()
    expect(page.get_by_role("alert")).to_contain_text("10.0.0.300")
    expect(page.get_by_label("Name", exact=True)).to_have_value("edge-1")
    expect(page.get_by_label("Bound IPs or CIDRs")).to_have_attribute("aria-invalid", "true")
    expect(row(page, "edge-1")).to_have_count(0)

    page.get_by_label("Bound IPs or CIDRs").fill("127.0.0.0/8")
    page.get_by_role("button", name="Add scanner").click()
    expect(page.get_by_role("heading", name="Scanner edge-1 added")).to_be_visible()
    expect(page.locator("main")).to_contain_text("shown this once")
    key = read_key(page)
    page.get_by_role("link", name="Back to the scanners").click()
    edge = row(page, "edge-1")
    expect(edge.locator(".state")).to_have_text("offline")
    expect(edge.locator(".heartbeat")).to_have_text("never")
    expect(edge.locator(".bind")).to_have_text("127.0.0.0/8")
    expect(edge.locator(".rate")).to_have_text("25")
    assert key not in page.content()

    # The same name again is refused.
    page.get_by_label("Name", exact=True).fill("edge-1")
    page.get_by_role("button", name="Add scanner").click()
    expect(page.get_by_role("alert")).to_contain_text("already exists")

    page.goto("/scanners")
    page.evaluate("window.__notReloaded = true")
    process = start_scanner(server, concurrency=1, api_key=key, log=tmp_path / "scanner.log")
    try:
        expect(edge.locator(".state")).to_have_text("online", timeout=20_000)
        expect(edge.locator(".version")).to_have_text(quipu.__version__)
        expect(edge.locator(".heartbeat")).to_contain_text("UTC")
        expect(page.locator("#fleet-summary")).to_contain_text("2 online")
        shot(page, "scanners")
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        killed = time.monotonic()
        expect(edge.locator(".state")).to_have_text("offline", timeout=15_000)
        took = time.monotonic() - killed
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # Offline once the timeout passed since its last beat, seen at the next refresh.
    print(f"offline shown {took:.1f} s after the kill")
    assert took <= TIMEOUT_S + 2.5, f"offline shown {took:.1f} s after the kill"
    assert page.evaluate("window.__notReloaded === true"), "the page was reloaded"
    expect(row(page, "local").locator(".state")).to_have_text("online")

    # Disable: the scanner is refused; enable: it is let in again.
    edge.get_by_role("button", name="Disable scanner edge-1").click()
    expect(page.locator(".flash")).to_contain_text('"edge-1" is disabled')
    expect(edge.locator(".enabled")).to_have_text("disabled")
    assert heartbeat(server, key) == 403
    edge.get_by_role("button", name="Enable scanner edge-1").click()
    expect(page.locator(".flash")).to_contain_text('"edge-1" is enabled')
    expect(edge.locator(".enabled")).to_have_text("enabled")
    assert heartbeat(server, key) == 200
    expect(edge.locator(".state")).to_have_text("online")

    # Rotate: asked first; the new key is shown once; the old one gets 401.
    page.once("dialog", lambda dialog: dialog.dismiss())
    edge.get_by_role("button", name="Rotate the key of scanner edge-1").click()
    expect(page.get_by_role("heading", name="Scanners")).to_be_visible()
    assert heartbeat(server, key) == 200, "a dismissed rotation rotated"
    page.once("dialog", lambda dialog: dialog.accept())
    edge.get_by_role("button", name="Rotate the key of scanner edge-1").click()
    expect(page.get_by_role("heading", name="New API key of scanner edge-1")).to_be_visible()
    new_key = read_key(page)
    assert new_key != key
    assert heartbeat(server, key) == 401
    assert heartbeat(server, new_key) == 200

    # Neither key is ever in the list again, nor in its fragment.
    page.goto("/scanners")
    html = page.content()
    fragment = page.request.get("/scanners/list").text()
    for secret in (key, new_key):
        assert secret not in html
        assert secret not in fragment
    with server.client() as api:
        assert new_key not in api.get("/api/v1/scanners/").text


def test_a_non_admin_sees_the_fleet_but_cannot_change_it(page: Page, server: RunningServer) -> None:
    server.add_user(username="viewer", password=VIEWER_PASSWORD)
    page.context.clear_cookies()
    sign_in(page, username="viewer", password=VIEWER_PASSWORD)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    page.goto("/scanners")
    expect(row(page, "local").locator(".state")).to_have_text("online")
    expect(page.get_by_role("button", name=re.compile("Disable|Rotate"))).to_have_count(0)
    expect(page.locator("main")).to_contain_text("Only an administrator can add a scanner")
    # A request made by hand, with a good CSRF token, meets the API's rule all the same.
    csrf = page.locator('meta[name="csrf-token"]').get_attribute("content") or ""
    scanner_id = (row(page, "local").get_attribute("id") or "").removeprefix("scanner-")
    answer = page.request.post(
        f"/scanners/{scanner_id}/disable", form={"csrf_token": csrf}, max_redirects=0
    )
    assert answer.status == 303
    page.goto("/scanners")
    expect(page.locator(".flash.error")).to_contain_text("Only an administrator")
    expect(row(page, "local").locator(".enabled")).to_have_text("enabled")
    added = page.request.post("/scanners", form={"csrf_token": csrf, "name": "sneaky"})
    assert added.status == 403
    assert "sneaky" not in page.request.get("/scanners/list").text()


def add_scan_job(server: RunningServer) -> int:
    """A real scan job: one network source on a closed loopback port, so it ends quickly."""
    with server.client() as api:
        cred = created(
            api.post(
                "/api/v2/credentials/",
                json={
                    "name": "alarm-cred",
                    "cred_type": "network",
                    "username": "nobody",
                    "password": "alarm-Secret-123",
                },
            )
        )
        source = created(
            api.post(
                "/api/v2/sources/",
                json={
                    "name": "alarm-src",
                    "source_type": "network",
                    "hosts": ["127.0.0.1"],
                    "port": free_port(),
                    "credentials": [cred["id"]],
                },
            )
        )
        scan = created(
            api.post("/api/v1/scans/", json={"name": "stuck", "sources": [source["id"]]})
        )
        return int(created(api.post(f"/api/v1/scans/{scan['id']}/jobs/"))["id"])


def test_alarms_newest_first_with_their_advice_paged_and_linked_to_the_job(
    page: Page, server: RunningServer
) -> None:
    page.goto("/alarms")
    expect(page.locator("#alarm-count")).to_have_text("0 alarms.")
    expect(page.locator(".kinds")).to_contain_text("Scan stuck")

    # No cheap real path makes the dispatcher raise scan-stuck (it takes a job whose tasks
    # outlive their work), so the alarms are written as the dispatcher writes them.
    job_id = add_scan_job(server)
    store = Store.from_url(server.database_url)
    start = datetime.now(UTC) - timedelta(hours=1)
    message = (
        f"Scan job {job_id} was stuck: all its scanner jobs had ended but it was still "
        "running (its tasks did not end after their work did); it was finalized as failed."
    )
    try:
        with store.transaction() as s:
            s.add(Alarm(kind="scan_stuck", scan_job_id=job_id, message=message, created_at=start))
            s.add(
                Alarm(
                    kind="disk_full",
                    scan_job_id=None,
                    message="The data dir is full.",
                    created_at=start + timedelta(minutes=1),
                )
            )
            for n in range(25):
                s.add(
                    Alarm(
                        kind="scan_stuck",
                        scan_job_id=job_id,
                        message=f"Newer alarm {n}.",
                        created_at=start + timedelta(minutes=2 + n),
                    )
                )
    finally:
        store.dispose()

    page.goto("/alarms")
    expect(page.locator("#alarm-count")).to_have_text("27 alarms, newest first.")
    items = page.locator("li.alarm")
    expect(items).to_have_count(25)
    expect(items.first.locator(".message")).to_have_text("Newer alarm 24.")
    expect(items.last.locator(".message")).to_have_text("Newer alarm 0.")
    expect(items.first.locator(".meaning")).to_contain_text("finalized it as failed")
    expect(items.first.locator(".advice")).to_contain_text("start the scan again")
    shot(page, "alarms")

    page.get_by_role("link", name="Next").click()
    expect(page).to_have_url(re.compile(r"/alarms\?page_no=2$"))
    expect(items).to_have_count(2)
    unknown, stuck = items.nth(0), items.nth(1)
    expect(unknown.get_by_role("heading")).to_contain_text("Disk full")
    expect(unknown.locator(".meaning")).to_contain_text("does not describe")
    expect(stuck.locator(".message")).to_have_text(message)
    expect(stuck.locator(".advice")).to_contain_text("server log")
    stuck.get_by_role("link", name=f"Scan job {job_id}").click()
    expect(page).to_have_url(re.compile(rf"/jobs/{job_id}$"))
    expect(page.get_by_role("heading", name=re.compile(f"Scan job {job_id}"))).to_be_visible()

    page.goto("/alarms?page_no=9")
    expect(page.locator(".pager")).to_contain_text("Page 2 of 2")
    expect(items).to_have_count(2)
    page.goto("/")
    expect(page.get_by_role("link", name=re.compile("27 alarms"))).to_be_visible()

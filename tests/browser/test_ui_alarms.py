"""Alarms and draining in the browser: an operator sees a stalled job's alarm with its cause,
repairs it from the page (and the job then ends), and drains and undrains a scanner from the
scanners page."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import shot
from tests.e2e.scans import created
from tests.servers import RunningServer, TestClock, register_secret, running_server

pytestmark = pytest.mark.browser

NET = "127.0.251"
PORT = 2251  # nothing listens there: the job's connection ends at once once a scanner runs it
ENV = {
    "QUIPU_DISPATCH_INTERVAL_S": "0.2",
    "QUIPU_HEARTBEAT_S": "0.5",
    "QUIPU_HEARTBEAT_TIMEOUT_S": "3600",
}


@pytest.fixture
def clock(tmp_path: Path) -> TestClock:
    return TestClock(tmp_path / "clock")


@pytest.fixture
def server(tmp_path: Path, clock: TestClock) -> Iterator[RunningServer]:
    """A server on SQLite whose clock the test moves."""
    with running_server(
        kind="sqlite", data_dir=tmp_path / "data", env={**ENV, **clock.env}
    ) as running:
        yield running


def stalled_job(api: httpx.Client) -> int:
    """A scan job whose only source belongs to a scanner that never runs."""
    remote = created(api.post("/api/v1/scanners/", json={"name": "remote"}))
    register_secret(remote["api_key"])
    cred = created(
        api.post(
            "/api/v2/credentials/",
            json={
                "name": "c",
                "cred_type": "network",
                "username": "nobody",
                "password": "alarms-Secret-123",
            },
        )
    )
    source = created(
        api.post(
            "/api/v2/sources/",
            json={
                "name": "branch",
                "source_type": "network",
                "hosts": [f"{NET}.10"],
                "port": PORT,
                "credentials": [cred["id"]],
                "scanners": [remote["id"]],
            },
        )
    )
    scan = created(api.post("/api/v1/scans/", json={"name": "branch", "sources": [source["id"]]}))
    return int(created(api.post(f"/api/v1/scans/{scan['id']}/jobs/"))["id"])


def open_alarms(api: httpx.Client) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = api.get("/api/v1/alarms/", params={"resolved": "false"}).json()[
        "results"
    ]
    return results


def test_an_operator_sees_a_stalled_job_alarm_and_repairs_it_from_the_page(
    page: Page, server: RunningServer, clock: TestClock
) -> None:
    with server.client() as api:
        job_id = stalled_job(api)
        time.sleep(1)
        clock.advance(301)
        deadline = time.monotonic() + 15
        while not open_alarms(api):
            assert time.monotonic() < deadline, "no alarm was raised"
            time.sleep(0.2)
        (alarm,) = open_alarms(api)

        page.goto("/")
        expect(page.get_by_role("link", name=re.compile("1 alarms"))).to_be_visible()
        page.goto("/alarms")
        expect(page.locator("#alarm-count")).to_have_text("1 alarm, newest first.")
        item = page.locator(f"#alarm-{alarm['id']}")
        expect(item.get_by_role("heading")).to_contain_text("Work nobody claims")
        expect(item.locator(".message")).to_contain_text(
            "no scanner of the source is online ('remote')."
        )
        expect(item.locator(".scanner")).to_have_text("remote")
        expect(item.locator(".source")).to_have_text("branch")
        forms = item.locator("form.repair")
        expect(forms).to_have_count(2)
        expect(
            item.get_by_role("button", name=f"Re-assign the source (alarm {alarm['id']})")
        ).to_be_visible()
        shot(page, "alarms-open")

        item.get_by_label("Scanner for the source").select_option(label="local (online)")
        item.get_by_role("button", name=f"Re-assign the source (alarm {alarm['id']})").click()
        expect(page.locator(".flash")).to_contain_text(
            f"Alarm {alarm['id']} repaired: Source 'branch' now uses scanner 'local'"
        )
        expect(page.locator("#alarm-count")).to_have_text("0 alarms.")

        deadline = time.monotonic() + 60
        while api.get(f"/api/v1/jobs/{job_id}/").json()["status"] not in ("completed", "failed"):
            assert time.monotonic() < deadline, "the job never ended"
            time.sleep(0.2)
        assert open_alarms(api) == []

    page.get_by_role("link", name="Show resolved alarms too").click()
    expect(page).to_have_url(re.compile(r"/alarms\?show=all$"))
    resolved = page.locator(f"#alarm-{alarm['id']}")
    expect(resolved.locator(".state")).to_contain_text("resolved")
    expect(resolved.locator("form.repair")).to_have_count(0)


def test_an_operator_drains_and_undrains_a_scanner_from_the_scanners_page(
    page: Page, server: RunningServer
) -> None:
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto("/scanners")
    local = page.locator('#scanners tr[data-name="local"]')
    expect(local.locator(".state")).to_have_text("online")
    local.get_by_role("button", name="Drain scanner local").click()
    expect(page.locator(".flash")).to_contain_text(
        'Scanner "local" is draining: it takes no new work and finishes what it holds.'
    )
    expect(local.locator(".state")).to_contain_text("draining")
    with server.client() as api:
        listed = api.get("/api/v1/scanners/", params={"name": "local"}).json()["results"]
        assert listed[0]["draining"] is True
    shot(page, "scanners-draining")

    local.get_by_role("button", name="Undrain scanner local").click()
    expect(page.locator(".flash")).to_contain_text('Scanner "local" takes new work again.')
    expect(local.locator(".state")).not_to_contain_text("draining")
    with server.client() as api:
        listed = api.get("/api/v1/scanners/", params={"name": "local"}).json()["results"]
        assert listed[0]["draining"] is False

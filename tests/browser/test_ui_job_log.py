"""A scan job's log and progress on its page, in the browser: the newest entries first while
it runs, older ones a page away, who paused it, and the same progress as the API's."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from quipu.lab import Lab
from quipu.services.scanners import BUILTIN_NAME
from tests.browser.conftest import shot
from tests.e2e.scans import add_lab_source, created, wait_status
from tests.labs import running_lab
from tests.servers import RunningServer, register_secret

pytestmark = [pytest.mark.browser, pytest.mark.lab]

NET = "127.0.248"
PORT = 2248
UNREACHABLE = [f"{NET}.200", f"{NET}.201"]
SERVER_ENV = {
    "QUIPU_DISPATCH_INTERVAL_S": "0.2",
    "QUIPU_SYSTEMS_PER_JOB": "1",
    "QUIPU_SSH_CONNECT_TIMEOUT_S": "5",
}
PROGRESS = re.compile(r"(\d+) of (\d+) systems done \((\d+)%\)")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("ui-job-log-lab") / "lab"
    with running_lab(root=root, hosts=2, slow=1, net=NET, port=PORT) as lab:
        key = lab.sudo_key_path.read_text()
        register_secret(*(line for line in key.splitlines() if "PRIVATE KEY" not in line))
        yield lab


def start_scan(api: httpx.Client, lab: Lab, *, name: str, hosts: list[str]) -> int:
    """A network source of ``hosts``, a scan of it, and a started job of it; the job id."""
    source_id = add_lab_source(api, lab, name=name, hosts=hosts, port=PORT)
    scan = created(api.post("/api/v1/scans/", json={"name": name, "sources": [source_id]}))
    return int(created(api.post(f"/api/v1/scans/{scan['id']}/jobs/"))["id"])


def events(api: httpx.Client, job_id: int) -> list[dict[str, Any]]:
    body = api.get(f"/api/v1/jobs/{job_id}/events/", params={"page_size": 1000}).json()
    entries: list[dict[str, Any]] = body["results"]
    return entries


def rows(page: Page) -> list[list[str]]:
    """The log table's rows, as the cells' texts."""
    found: list[list[str]] = page.locator("#job-log tbody tr").evaluate_all(
        "rows => rows.map(r => Array.from(r.cells, c => c.textContent.trim()))"
    )
    return found


def watch_the_log_and_progress(page: Page, server: RunningServer, lab: Lab) -> None:
    hosts = [h.address for h in lab.hosts] + UNREACHABLE
    with server.client() as api:
        job_id = start_scan(api, lab, name="logged", hosts=hosts)
    page.goto(f"/jobs/{job_id}")
    # while the hung host holds the connection: its phase and its own count
    expect(page.locator("#job-phase")).to_contain_text(
        re.compile(r"Connection: \d+ of 5 systems"), timeout=30_000
    )
    expect(page.locator("#job-log")).to_contain_text("scanner job")
    expect(page.locator("#job-status")).to_have_text("completed", timeout=60_000)
    expect(page.locator("#job-phase")).to_have_count(0)
    text = page.locator("#job-progress-text").inner_text()
    with server.client() as api:
        progress = api.get(f"/api/v1/jobs/{job_id}/").json()["progress"]
        logged = events(api, job_id)
    found = PROGRESS.search(text)
    assert found, text
    assert (int(found.group(1)), int(found.group(2))) == (progress["done"], progress["total"])
    assert (progress["done"], progress["total"], found.group(3)) == (len(hosts), len(hosts), "100")
    assert page.locator("#job-progress").get_attribute("value") == str(len(hosts))

    # newest first, capped to a page: the job's end on top, its start a page away
    assert len(logged) > 20
    expect(page.get_by_text(re.compile(r"\d+ entries, newest first"))).to_have_text(
        f"{len(logged)} entries, newest first."
    )
    shown = rows(page)
    assert len(shown) == 20
    assert shown[0][1:5] == ["dispatcher", "scan job", "complete", "running → completed"]
    assert shown[0][0].endswith(" UTC")
    phases = {1: "connection", 2: "inspection"}
    assert [r[2] for r in shown] == [
        "scan job"
        if e["kind"] == "scan_job"
        else f"task {e['subject_id']} ({phases[e['subject_id']]} of 'logged')"
        if e["kind"] == "task"
        else f"scanner job {e['subject_id']}"
        for e in reversed(logged[-20:])
    ]
    assert any(r[1] == f"scanner:{BUILTIN_NAME}" and r[3] == "start" for r in shown), shown
    shot(page, "job-log")
    page.get_by_role("link", name="Older").click()
    expect(page.get_by_text("Log page 2 of 2")).to_be_visible()
    older = rows(page)
    assert len(older) == len(logged) - 20
    assert older[-1][1:5] == ["user:admin", "scan job", "create", "→ created"]
    assert older[-1][5] == "Scan 'logged' started."
    page.get_by_role("link", name="Newer").click()
    expect(page.get_by_text("Log page 1 of 2")).to_be_visible()

    # the list of jobs shows the same progress
    page.goto("/jobs")
    row = page.locator("tr", has=page.get_by_role("link", name=str(job_id), exact=True))
    expect(row).to_contain_text(f"{len(hosts)}/{len(hosts)}")


def test_the_job_page_shows_its_log_and_progress(
    page: Page, server: RunningServer, lab: Lab
) -> None:
    watch_the_log_and_progress(page, server, lab)


def test_on_postgresql_too(pg_page: Page, pg_server: RunningServer, lab: Lab) -> None:
    watch_the_log_and_progress(pg_page, pg_server, lab)


def test_pausing_from_the_page_shows_who_paused_it(
    page: Page, server: RunningServer, lab: Lab
) -> None:
    fast = [h.address for h in lab.hosts if not h.slow]
    hung = next(h.address for h in lab.hosts if h.slow)
    with server.client() as api:
        job_id = start_scan(api, lab, name="paused", hosts=[*fast, hung])
        deadline = time.monotonic() + 30
        while (
            sum(e["kind"] == "scanner_job" and e["action"] == "start" for e in events(api, job_id))
            < len(fast) + 1
        ):
            assert time.monotonic() < deadline, events(api, job_id)
            time.sleep(0.05)
    page.goto(f"/jobs/{job_id}")
    expect(page.locator("#job-status")).to_have_text("running")
    page.get_by_role("button", name="Pause").click()
    expect(page.locator("#job-status")).to_have_text("paused")
    paused = page.locator("#job-log tbody tr", has_text="running → paused")
    expect(paused).to_contain_text("user:admin")
    expect(paused).to_contain_text("Job is paused.")
    # the scanner, told to stop, gives the hung host's work back: the page shows it live
    given_back = page.locator("#job-log tbody tr", has_text="Given back")
    expect(given_back.first).to_contain_text("Given back: its scan job was paused.", timeout=15_000)
    expect(given_back.first).to_contain_text(f"scanner:{BUILTIN_NAME}")
    expect(given_back.first).to_contain_text("running → pending")
    page.get_by_role("button", name="Restart").click()
    expect(page.locator("#job-status")).to_have_text("completed", timeout=60_000)
    restarted = page.locator("#job-log tbody tr", has_text="paused → pending")
    expect(restarted).to_contain_text("user:admin")
    expect(restarted).to_contain_text("restart")
    with server.client() as api:
        job = wait_status(api, job_id, statuses=("completed",), timeout=5)
    expect(page.locator("#job-progress-text")).to_contain_text(
        f"{job['progress']['done']} of {job['progress']['total']} systems done (100%)"
    )

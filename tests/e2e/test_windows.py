"""Time windows: a job waits for its window, is deferred when it closes (its scanners stop
within 5 s) and resumes in the next one without logging into a done system twice; windows
that never open together are refused; sources take windows from qpc."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select

from quipu.lab import Lab
from quipu.store import Store
from quipu.store.tables import ScanJob, ScanJobEvent, ScannerJob, Task
from tests.e2e.qpc import logged_in
from tests.e2e.scans import add_lab_source, created
from tests.labs import running_lab
from tests.servers import RunningServer, TestClock, running_server

pytestmark = pytest.mark.lab

HOSTS = 12
NET = "127.0.245"
ENV = {"QUIPU_DISPATCH_INTERVAL_S": "0.2", "QUIPU_SYSTEMS_PER_JOB": "1"}
ACCEPTED = re.compile(r"Accepted publickey for (\S+)")
PARIS = ZoneInfo("Europe/Paris")
OFFICE = "mon-fri 08:00-18:00 Europe/Paris"


def paris(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=PARIS)  # type: ignore[misc]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("windows-lab") / "lab"
    with running_lab(root=root, hosts=HOSTS, net=NET, port=2245) as lab:
        yield lab


@pytest.fixture(params=["sqlite", "postgresql"])
def timed(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[RunningServer, TestClock, Store]]:
    """A server whose clock the test moves, and a store on its database."""
    clock = TestClock(tmp_path / "clock")
    with running_server(
        kind=request.param, data_dir=tmp_path / "server", env={**ENV, **clock.env}
    ) as server:
        store = Store.from_url(server.database_url)
        try:
            yield server, clock, store
        finally:
            store.dispose()


def logins(lab: Lab) -> Counter[str]:
    """Successful SSH logins per lab host, from each host's own sshd log."""
    counts: Counter[str] = Counter()
    for number, host in enumerate(lab.hosts, start=1):
        log = lab.root / "hosts" / f"{number:03d}" / "sshd.log"
        counts[host.address] = len(ACCEPTED.findall(log.read_text())) if log.exists() else 0
    return counts


def lab_scan(
    api: httpx.Client,
    lab: Lab,
    *,
    scan_windows: list[str] | None = None,
    source_windows: list[str] | None = None,
) -> dict[str, Any]:
    source_id = add_lab_source(
        api,
        lab,
        name="lab",
        credential_name="k",
        hosts=[f"{lab.hosts[0].address}-{lab.hosts[-1].address}"],
        port=lab.hosts[0].port,
        windows=source_windows,
    )
    return created(
        api.post(
            "/api/v1/scans/",
            json={"name": "s", "sources": [source_id], "windows": scan_windows},
        )
    )


def wait_for(api: httpx.Client, job_id: int, *statuses: str, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while (job := api.get(f"/api/v1/jobs/{job_id}/").json())["status"] not in statuses:
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
    return job


def test_a_job_started_outside_its_window_waits_then_runs_in_it(
    timed: tuple[RunningServer, TestClock, Store], lab: Lab
) -> None:
    server, clock, _ = timed
    clock.set(paris(2027, 1, 7, 7, 0))  # a Thursday, an hour before the window
    with server.client() as api:
        scan = lab_scan(api, lab, scan_windows=[OFFICE])
        job_id = api.post(f"/api/v1/scans/{scan['id']}/jobs/").json()["id"]
        job = wait_for(api, job_id, "pending", "running")
        time.sleep(1)  # several dispatcher ticks
        job = api.get(f"/api/v1/jobs/{job_id}/").json()
        assert job["status"] == "pending"
        assert job["status_message"] == (
            "Waiting for its time window: opens at 2027-01-07 08:00 Europe/Paris."
        )
        clock.set(paris(2027, 1, 7, 8, 0, 1))
        job = wait_for(api, job_id, "completed", "failed")
        assert job["status"] == "completed", job["status_message"]
        assert job["systems_scanned"] == HOSTS


def test_a_job_whose_window_closes_is_deferred_and_resumes_without_rescanning(
    timed: tuple[RunningServer, TestClock, Store], lab: Lab
) -> None:
    server, clock, store = timed
    before = logins(lab)
    clock.set(paris(2027, 1, 7, 17, 0))
    with server.client() as api:
        scan = lab_scan(api, lab, source_windows=[OFFICE])
        job_id = api.post(f"/api/v1/scans/{scan['id']}/jobs/").json()["id"]
        deadline = time.monotonic() + 60
        while (job := api.get(f"/api/v1/jobs/{job_id}/").json())["tasks"][1]["status"] != (
            "running"
        ):
            assert time.monotonic() < deadline, f"inspection never started: {job}"
            time.sleep(0.02)
        clock.set(paris(2027, 1, 7, 18, 0, 1))
        job = wait_for(api, job_id, "pending", "completed", "failed", timeout=10)
        deferred_at = time.monotonic()
        assert job["status"] == "pending", "the inspection finished before the window closed"
        assert job["status_message"] == (
            "Deferred: its time window closed; resumes at 2027-01-08 08:00 Europe/Paris."
        )

        def busy() -> int:
            with store.transaction() as s:
                return len(
                    s.scalars(
                        select(ScannerJob.id).where(
                            ScannerJob.scan_job_id == job_id,
                            ScannerJob.status.in_(["claimed", "running"]),
                        )
                    ).all()
                )

        while busy():
            assert time.monotonic() - deferred_at < 5, "the scanner kept working after the close"
            time.sleep(0.05)
        stopped_in = time.monotonic() - deferred_at
        assert stopped_in < 5
        done = {
            r["name"]
            for r in api.get(
                f"/api/v1/jobs/{job_id}/inspection/", params={"page_size": 100}
            ).json()["results"]
        }
        assert len(done) < HOSTS, "the close came after the inspection had finished"
        time.sleep(1)
        assert api.get(f"/api/v1/jobs/{job_id}/").json()["status"] == "pending"
        with store.transaction() as s:
            actors = s.scalars(
                select(ScanJobEvent.actor).where(
                    ScanJobEvent.scan_job_id == job_id, ScanJobEvent.action == "defer"
                )
            ).all()
        assert actors == ["window"]

        clock.set(paris(2027, 1, 8, 8, 0, 1))
        job = wait_for(api, job_id, "completed", "failed")
        assert job["status"] == "completed", job["status_message"]
        assert job["systems_scanned"] == HOSTS

    made = logins(lab) - before
    for host in lab.hosts:
        if host.address in done:
            # one login to connect, one to inspect: a done system is never visited again
            assert made[host.address] == 2, (host.address, made)
        else:
            # a session cut by the close is redone once in the next window
            assert 2 <= made[host.address] <= 3, (host.address, made)


def counts(store: Store) -> tuple[int, int, int]:
    with store.transaction() as s:
        return (
            s.scalar(select(func.count()).select_from(ScanJob)) or 0,
            s.scalar(select(func.count()).select_from(Task)) or 0,
            s.scalar(select(func.count()).select_from(ScanJobEvent)) or 0,
        )


def test_windows_that_never_open_together_are_refused(
    timed: tuple[RunningServer, TestClock, Store], lab: Lab
) -> None:
    server, _, store = timed
    with server.client() as api:
        scan = lab_scan(
            api, lab, scan_windows=["mon 08:00-10:00 UTC"], source_windows=["tue 08:00-10:00 UTC"]
        )
        before = counts(store)
        refused = api.post(f"/api/v1/scans/{scan['id']}/jobs/")
        assert refused.status_code == 400, refused.text
        message = refused.json()["windows"][0]
        assert 'scan "s" / source "lab" never open together' in message
        assert counts(store) == before
        listed = api.get("/api/v1/jobs/").json()
        assert listed["count"] == 0


def test_qpc_source_windows(timed: tuple[RunningServer, TestClock, Store], tmp_path: Path) -> None:
    server, _, _ = timed
    qpc = logged_in(server, config_home=tmp_path / "qpc")
    qpc.ok("cred", "add", "--name", "c", "--type", "network", "--username", "u", "--password",
           input="p\n")  # fmt: skip
    qpc.ok(
        "source", "add", "--name", "w", "--type", "network", "--hosts", f"{NET}.1",
        "--cred", "c", "--window", OFFICE, "--window", "sat,sun 22:00-06:00",
    )  # fmt: skip
    shown = qpc.ok("source", "show", "--name", "w").json()
    assert shown["windows"] == [
        {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "18:00",
         "timezone": "Europe/Paris"},
        {"days": ["sat", "sun"], "start": "22:00", "end": "06:00", "timezone": "UTC"},
    ]  # fmt: skip
    refused = qpc.fails("source", "edit", "--name", "w", "--window", "someday 08:00")
    assert "windows[0]" in refused.stderr
    qpc.ok("source", "edit", "--name", "w", "--window", "* 01:00-02:00 Asia/Tokyo")
    shown = qpc.ok("source", "show", "--name", "w").json()
    assert shown["windows"] == [
        {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "01:00",
         "end": "02:00", "timezone": "Asia/Tokyo"},
    ]  # fmt: skip
    qpc.ok("source", "edit", "--name", "w", "--window", "")
    assert "windows" not in qpc.ok("source", "show", "--name", "w").json()

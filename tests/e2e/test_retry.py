"""Retry when offline: a scan job whose sources answered nothing waits and tries again, on a
real server whose clock the test moves, with its built-in scanner."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from quipu.lab import Lab
from quipu.lab.accounts import SUDO_USER
from quipu.store import Store
from quipu.store.tables import ScanJob, ScanJobEvent
from tests.e2e.scans import add_api_source, created, start
from tests.labs import running_lab
from tests.servers import RunningServer, register_secret, running_server
from tests.servers import TestClock as ServerClock

pytestmark = pytest.mark.lab

NET = "127.0.249"
PORT = 2249  # nothing listens here until the lab is up: connections are refused at once
CLOSED_PORT = 2250  # never listened on
ENV = {"QUIPU_DISPATCH_INTERVAL_S": "0.2", "QUIPU_SSH_CONNECT_TIMEOUT_S": "3"}
WHEN = re.compile(r" at (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC\.$")


@pytest.fixture(params=["sqlite", "postgresql"])
def clocked(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[RunningServer, ServerClock]]:
    """A server whose time the test moves."""
    clock = ServerClock(tmp_path / "clock")
    with running_server(
        kind=request.param, data_dir=tmp_path / "data", env={**ENV, **clock.env}
    ) as server:
        yield server, clock


def network_scan(api: httpx.Client, *, hosts: list[str], credential: dict[str, Any]) -> int:
    cred = created(
        api.post("/api/v2/credentials/", json={"name": "c", "cred_type": "network", **credential})
    )
    source = created(
        api.post(
            "/api/v2/sources/",
            json={
                "name": "lab",
                "source_type": "network",
                "hosts": hosts,
                "port": PORT,
                "credentials": [cred["id"]],
            },
        )
    )
    scan_id: int = created(
        api.post("/api/v1/scans/", json={"name": "s", "sources": [source["id"]]})
    )["id"]
    return scan_id


def set_retry(api: httpx.Client, scan_id: int, retry: dict[str, Any]) -> None:
    response = api.patch(f"/api/v1/scans/{scan_id}/", json={"retry": retry})
    assert response.status_code == 200, response.text


def wait_job(
    api: httpx.Client, job_id: int, *, status: str, says: str = "", timeout: float = 60
) -> dict[str, Any]:
    """The job once it has ``status`` and its message contains ``says``."""
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = api.get(f"/api/v1/jobs/{job_id}/").json()
        if job["status"] == status and says in job["status_message"]:
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.1)


def next_try(job: dict[str, Any]) -> datetime:
    """When the job's message says its next try is."""
    found = WHEN.search(job["status_message"])
    assert found, job["status_message"]
    return datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def retry_moves(server: RunningServer, job_id: int) -> list[tuple[str, str, str, str]]:
    """The job's logged moves made by the retry rule: (kind, action, from, to)."""
    store = Store.from_url(server.database_url)
    try:
        with store.transaction() as s:
            rows = s.execute(
                select(
                    ScanJobEvent.kind,
                    ScanJobEvent.action,
                    ScanJobEvent.from_status,
                    ScanJobEvent.to_status,
                )
                .where(ScanJobEvent.scan_job_id == job_id, ScanJobEvent.actor == "retry")
                .order_by(ScanJobEvent.id)
            ).all()
            return [(str(k), str(a), str(f), str(t)) for k, a, f, t in rows]
    finally:
        store.dispose()


def attempts_spent(server: RunningServer, job_id: int) -> int:
    store = Store.from_url(server.database_url)
    try:
        with store.transaction() as s:
            return int(s.scalar(select(ScanJob.attempt).where(ScanJob.id == job_id)) or 0)
    finally:
        store.dispose()


def test_offline_hosts_are_retried_with_backoff_then_fail_as_without_retry(
    clocked: tuple[RunningServer, ServerClock],
) -> None:
    server, clock = clocked
    with server.client() as api:
        scan_id = network_scan(
            api,
            hosts=[f"{NET}.10", f"{NET}.11"],
            credential={"username": "nobody", "password": "retry-Secret-123"},
        )
        set_retry(api, scan_id, {"attempts": 2, "delay_s": 600, "backoff": 2})
        job_id = start(api, scan_id)

        job = wait_job(api, job_id, status="pending", says="retry 1 of 2")
        assert job["status_message"].startswith("No system of source 'lab' was reachable;")
        first = next_try(job)
        assert abs((first - clock.now()).total_seconds() - 600) < 10
        assert job["systems_unreachable"] == 0  # counted afresh on the next try

        clock.advance(590)
        time.sleep(1.5)
        assert api.get(f"/api/v1/jobs/{job_id}/").json()["status"] == "pending"

        clock.set(first)
        job = wait_job(api, job_id, status="pending", says="retry 2 of 2")
        second = next_try(job)  # twice the delay, from when the second try failed
        assert abs((second - clock.now()).total_seconds() - 1200) < 10
        assert (second - first).total_seconds() >= 1200

        clock.set(second)
        job = wait_job(api, job_id, status="failed")
        assert job["status_message"] == (
            "No system of source 'lab' could be reached and logged into (2 unreachable, "
            "0 failed); check hosts, port and credentials."
        )
        assert (job["systems_count"], job["systems_unreachable"]) == (2, 2)

    assert attempts_spent(server, job_id) == 2
    moves = retry_moves(server, job_id)
    assert moves.count(("scan_job", "retry", "running", "pending")) == 2
    assert moves.count(("task", "retry", "running", "pending")) == 2
    assert len(moves) == 4


def test_a_host_that_comes_up_before_the_retry_is_inspected(
    clocked: tuple[RunningServer, ServerClock], tmp_path: Path
) -> None:
    server, clock = clocked
    with server.client() as api:
        # The credential's key exists only once the lab is up; it is set before the retry,
        # which reads it when its scanner job is claimed.
        scan_id = network_scan(
            api,
            hosts=[f"{NET}.1"],
            credential={"username": SUDO_USER, "password": "placeholder-Secret-123"},
        )
        cred_id = api.get("/api/v2/credentials/").json()["results"][0]["id"]
        set_retry(api, scan_id, {"attempts": 3, "delay_s": 60})
        job_id = start(api, scan_id)
        job = wait_job(api, job_id, status="pending", says="retry 1 of 3")

        lab: Lab
        with running_lab(root=tmp_path / "lab", hosts=1, net=NET, port=PORT) as lab:
            key = lab.sudo_key_path.read_text()
            register_secret(*(line for line in key.splitlines() if "PRIVATE KEY" not in line))
            edited = api.patch(f"/api/v2/credentials/{cred_id}/", json={"ssh_key": key})
            assert edited.status_code == 200, edited.text
            clock.set(next_try(job))
            job = wait_job(api, job_id, status="completed", timeout=120)
        assert (job["systems_count"], job["systems_scanned"], job["systems_unreachable"]) == (
            1,
            1,
            0,
        )
    assert attempts_spent(server, job_id) == 1
    assert retry_moves(server, job_id) == [
        ("task", "retry", "running", "pending"),
        ("scan_job", "retry", "running", "pending"),
    ]


def test_a_vcenter_whose_port_is_closed_is_retried(
    clocked: tuple[RunningServer, ServerClock],
) -> None:
    server, clock = clocked
    with server.client() as api:
        source_id = add_api_source(
            api,
            name="vc",
            source_type="vcenter",
            port=CLOSED_PORT,
            credential={"username": "administrator", "password": "vc-Secret-123"},
            hosts=[f"{NET}.30"],
        )
        scan_id = created(api.post("/api/v1/scans/", json={"name": "s", "sources": [source_id]}))[
            "id"
        ]
        set_retry(api, scan_id, {"attempts": 1, "delay_s": 60})
        job_id = start(api, scan_id)
        job = wait_job(api, job_id, status="pending", says="retry 1 of 1")
        assert job["status_message"].startswith("No system of source 'vc' was reachable;")

        clock.set(next_try(job))
        job = wait_job(api, job_id, status="failed")
        assert job["status_message"].startswith(
            f"Connection to source 'vc' failed: vCenter {NET}.30:{CLOSED_PORT} refused the "
            "connection"
        ), job["status_message"]
    assert retry_moves(server, job_id) == [
        ("task", "retry", "running", "pending"),
        ("scan_job", "retry", "running", "pending"),
    ]

"""``GET /api/scans/{id}``: a scan's aggregate status (its newest job's state and counters,
its scanner jobs by status, its open alarms), as the scanner dispatch document tells
operators to check a stalled scan; on a real server scanning real lab hosts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from quipu.lab import Lab
from quipu.store import Store
from quipu.store.tables import ScannerJob
from tests.e2e.scans import add_lab_source, created, network_source, start
from tests.labs import running_lab
from tests.servers import RunningServer

pytestmark = pytest.mark.lab

NET = "127.0.252"
PORT = 2252
HOSTS = 3
SERVER_ENV = {"QUIPU_DISPATCH_INTERVAL_S": "0.2", "QUIPU_SYSTEMS_PER_JOB": "1"}
SCANNER_STATUSES = {"pending", "claimed", "running", "completed", "failed", "canceled"}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("aggregate-lab") / "lab"
    with running_lab(root=root, hosts=HOSTS, net=NET, port=PORT) as lab:
        yield lab


def lab_source(api: httpx.Client, lab: Lab) -> int:
    return add_lab_source(
        api,
        lab,
        name="lab",
        credential_name="k",
        hosts=[f"{lab.hosts[0].address}-{lab.hosts[-1].address}"],
        port=lab.hosts[0].port,
    )


def aggregate(api: httpx.Client, scan_id: int) -> dict[str, Any]:
    response = api.get(f"/api/scans/{scan_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_the_scan_status_follows_its_newest_job(server: RunningServer, lab: Lab) -> None:
    store = Store.from_url(server.database_url)
    try:
        with server.client() as api:
            # Authenticated like the rest of the API.
            anonymous = httpx.get(f"{server.url}/api/scans/1")
            assert anonymous.status_code == 401
            unknown = api.get("/api/scans/9999")
            assert unknown.status_code == 404
            assert unknown.json() == {"detail": "Scan 9999 does not exist."}

            source_id = lab_source(api, lab)
            scan_id = created(
                api.post("/api/v1/scans/", json={"name": "estate", "sources": [source_id]})
            )["id"]
            never = aggregate(api, scan_id)
            assert never == {
                "id": scan_id,
                "name": "estate",
                "status": None,
                "status_message": 'Scan "estate" has not been started yet.',
                "job_id": None,
                "jobs_count": 0,
                "trigger": None,
                "start_time": None,
                "end_time": None,
                "updated_at": None,
                "systems_count": 0,
                "systems_scanned": 0,
                "systems_failed": 0,
                "systems_unreachable": 0,
                "progress": None,
                "scanner_jobs": dict.fromkeys(SCANNER_STATUSES, 0),
                "alarms": [],
            }

            job_id = start(api, scan_id)
            seen: list[str] = []
            done_counts: list[int] = []
            deadline = time.monotonic() + 90
            while True:
                status = aggregate(api, scan_id)
                assert status["job_id"] == job_id
                seen.append(status["status"])
                done_counts.append(status["progress"]["done"])
                if status["status"] in ("completed", "failed", "canceled"):
                    break
                assert time.monotonic() < deadline, status
                time.sleep(0.05)
            assert status["status"] == "completed", status["status_message"]
            assert set(seen) <= {"created", "pending", "running", "completed"}
            assert done_counts == sorted(done_counts)
            job = api.get(f"/api/v1/jobs/{job_id}/").json()
            for key in (
                "status",
                "status_message",
                "start_time",
                "end_time",
                "systems_count",
                "systems_scanned",
                "systems_failed",
                "systems_unreachable",
                "trigger",
                "progress",
            ):
                assert status[key] == job[key], key
            assert (status["systems_count"], status["systems_scanned"]) == (HOSTS, HOSTS)
            assert status["jobs_count"] == 1
            with store.transaction() as s:
                made = s.scalar(select(func.count()).where(ScannerJob.scan_job_id == job_id))
            assert made == 2 * HOSTS  # one system per scanner job, in each phase
            assert status["scanner_jobs"] == {
                **dict.fromkeys(SCANNER_STATUSES, 0),
                "completed": made,
            }
            assert status["alarms"] == []
            assert api.get(f"/api/scans/{scan_id}/").json() == status

            # A newer job is what the scan's status follows: here one held for approval.
            api.patch(f"/api/v2/sources/{source_id}/", json={"scheduling_mode": "mediated"})
            second = start(api, scan_id)
            held = aggregate(api, scan_id)
            assert (held["job_id"], held["status"], held["jobs_count"]) == (second, "held", 2)
            assert held["status_message"].startswith("Waiting for an administrator's approval")
            assert held["scanner_jobs"] == dict.fromkeys(SCANNER_STATUSES, 0)
            assert held["progress"]["done"] == 0
            api.put(f"/api/v1/jobs/{second}/cancel/")
            assert aggregate(api, scan_id)["status"] == "canceled"
    finally:
        store.dispose()


def test_a_scan_that_cannot_reach_its_systems_reads_failed_with_the_reason(
    server: RunningServer,
) -> None:
    with server.client() as api:
        # Nobody listens on .200: refused at once.
        source = network_source(api, name="dark", hosts=[f"{NET}.200"], port=PORT)
        scan_id = created(
            api.post("/api/v1/scans/", json={"name": "d", "sources": [source["id"]]})
        )["id"]
        job_id = start(api, scan_id)
        deadline = time.monotonic() + 60
        while (status := aggregate(api, scan_id))["status"] not in ("completed", "failed"):
            assert time.monotonic() < deadline, status
            time.sleep(0.1)
        job = api.get(f"/api/v1/jobs/{job_id}/").json()
        assert status["status"] == "failed"
        assert status["status_message"] == job["status_message"] != ""
        assert status["systems_unreachable"] == 1

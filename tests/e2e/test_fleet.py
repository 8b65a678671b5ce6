"""A fleet for real: one server, two remote scanner processes, real lab hosts. One scanner is
killed mid-job; its work finishes on the other, every system exactly once."""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from quipu.lab import Lab
from quipu.store import Store
from quipu.store.tables import ScannerJob, SystemResult
from tests.labs import running_lab
from tests.servers import RunningServer, register_secret, start_scanner, start_server

pytestmark = pytest.mark.lab

HOSTS, SLOW = 8, 4
SERVER_ARGS = ("--no-builtin-scanner",)
SERVER_ENV = FAST_LIVENESS = {
    "QUIPU_HEARTBEAT_S": "1",
    "QUIPU_HEARTBEAT_TIMEOUT_S": "4",
    "QUIPU_SYSTEMS_PER_JOB": "2",
    "QUIPU_DISPATCH_INTERVAL_S": "0.2",
    "QUIPU_SSH_CONNECT_TIMEOUT_S": "6",
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("fleet-lab") / "lab"
    with running_lab(root=root, hosts=HOSTS, slow=SLOW, net="127.0.231", port=2231) as lab:
        yield lab


def wait_for(predicate, *, timeout: float, what: str) -> float:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_killed_scanner_work_finishes_elsewhere_once(
    server: RunningServer, lab: Lab, tmp_path: Path
) -> None:
    client = server.client()
    scanners = {}
    for name in ("a", "b"):
        body = client.post("/api/v1/scanners/", json={"name": name}).json()
        scanners[name] = body
    procs = {
        name: start_scanner(server, api_key=body["api_key"], log=tmp_path / f"scanner-{name}.log")
        for name, body in scanners.items()
    }
    store = Store.from_url(server.database_url)
    register_secret(
        *(line for line in lab.sudo_key_path.read_text().splitlines() if "KEY" not in line)
    )
    try:
        cred = client.post(
            "/api/v2/credentials/",
            json={
                "name": "lab",
                "cred_type": "network",
                "username": lab.sudo_user,
                "ssh_key": lab.sudo_key_path.read_text(),
            },
        )
        assert cred.status_code == 201, cred.text
        first, last = lab.hosts[0].address, lab.hosts[-1].address
        source = client.post(
            "/api/v2/sources/",
            json={
                "name": "lab",
                "source_type": "network",
                "hosts": [f"{first}-{last}"],
                "port": lab.hosts[0].port,
                "credentials": [cred.json()["id"]],
                "scanners": [scanners["a"]["id"], scanners["b"]["id"]],
            },
        )
        assert source.status_code == 201, source.text
        scan = client.post(
            "/api/v1/scans/", json={"name": "fleet", "sources": [source.json()["id"]]}
        )
        assert scan.status_code == 201, scan.text
        job_id = client.post(f"/api/v1/scans/{scan.json()['id']}/jobs/").json()["id"]

        def a_is_working() -> bool:
            with store.transaction() as s:
                return bool(
                    s.scalars(
                        select(ScannerJob.id).where(
                            ScannerJob.scanner_id == scanners["a"]["id"],
                            ScannerJob.status == "running",
                        )
                    ).first()
                )

        wait_for(a_is_working, timeout=60, what="scanner a to run a job")
        with store.transaction() as s:
            held = list(
                s.scalars(
                    select(ScannerJob.id).where(
                        ScannerJob.scanner_id == scanners["a"]["id"],
                        ScannerJob.status.in_(["claimed", "running"]),
                    )
                )
            )
        procs["a"].send_signal(signal.SIGKILL)
        procs["a"].wait()
        killed_at = time.monotonic()

        def all_moved() -> bool:
            with store.transaction() as s:
                rows = s.execute(
                    select(ScannerJob.scanner_id, ScannerJob.status).where(ScannerJob.id.in_(held))
                ).all()
            # a job scanner a finished just before the kill counts as done, not stranded
            return all(
                status in ("completed", "failed")
                or (sid == scanners["b"]["id"] and status == "running")
                for sid, status in rows
            )

        wait_for(all_moved, timeout=90, what="scanner a's jobs to run on scanner b")
        moved_after = time.monotonic() - killed_at
        print(
            f"\nre-assignment: {moved_after:.1f} s from SIGKILL to running elsewhere "
            f"(heartbeat timeout {FAST_LIVENESS['QUIPU_HEARTBEAT_TIMEOUT_S']} s)"
        )

        def finished() -> bool:
            status = client.get(f"/api/v1/jobs/{job_id}/").json()["status"]
            return status in ("completed", "failed", "canceled")

        wait_for(finished, timeout=180, what="the scan job to finish")
        job = client.get(f"/api/v1/jobs/{job_id}/").json()
        assert job["status"] == "completed", job["status_message"]
        assert (job["systems_count"], job["systems_scanned"], job["systems_unreachable"]) == (
            HOSTS + SLOW,
            HOSTS,
            SLOW,
        )
        with store.transaction() as s:
            per_task = Counter(
                (task, system)
                for task, system in s.execute(select(SystemResult.task_id, SystemResult.system))
            )
        assert set(per_task.values()) == {1}
        assert len(per_task) == (HOSTS + SLOW) + HOSTS
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
                proc.wait(20)
        store.dispose()
        client.close()


@pytest.fixture
def patient_server(tmp_path: Path) -> Iterator[RunningServer]:
    """A server whose heartbeat timeout (120 s) cannot be what releases a job in a test."""
    data_dir = tmp_path / "patient"
    running = start_server(
        data_dir=data_dir,
        database_url=f"sqlite:///{data_dir / 'quipu.db'}",
        env={**FAST_LIVENESS, "QUIPU_HEARTBEAT_TIMEOUT_S": "120"},
        args=("--no-builtin-scanner",),
    )
    try:
        yield running
    finally:
        running.stop()


def test_sigterm_releases_a_scanners_jobs_at_once(
    patient_server: RunningServer, lab: Lab, tmp_path: Path
) -> None:
    """A scanner stopped with SIGTERM hands its work back instead of waiting for a timeout."""
    server = patient_server
    with server.client() as client:
        scanner = client.post("/api/v1/scanners/", json={"name": "leaving"}).json()
        cred = client.post(
            "/api/v2/credentials/",
            json={
                "name": "lab",
                "cred_type": "network",
                "username": lab.sudo_user,
                "ssh_key": lab.sudo_key_path.read_text(),
            },
        ).json()
        slow = [h.address for h in lab.hosts if h.slow]
        source = client.post(
            "/api/v2/sources/",
            json={
                "name": "hung",
                "source_type": "network",
                "hosts": slow,
                "port": lab.hosts[0].port,
                "credentials": [cred["id"]],
                "scanners": [scanner["id"]],
            },
        ).json()
        scan = client.post("/api/v1/scans/", json={"name": "hung", "sources": [source["id"]]})
        client.post(f"/api/v1/scans/{scan.json()['id']}/jobs/").raise_for_status()
    proc = start_scanner(server, api_key=scanner["api_key"], log=tmp_path / "leaving.log")
    store = Store.from_url(server.database_url)
    try:

        def running() -> bool:
            with store.transaction() as s:
                return bool(
                    s.scalars(select(ScannerJob.id).where(ScannerJob.status == "running")).first()
                )

        wait_for(running, timeout=60, what="the scanner to run a job")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        with store.transaction() as s:
            statuses = Counter(s.scalars(select(ScannerJob.status)))
        # released well before the heartbeat timeout could have done it
        assert statuses["running"] == 0 and statuses["claimed"] == 0, statuses
        assert statuses["pending"] >= 1, statuses
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        store.dispose()

"""Pause stops the scanners within 5 s; restart resumes without logging into a done system
twice, counted from each lab host's own sshd log."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from quipu.lab import Lab
from quipu.store import Store
from quipu.store.tables import ScannerJob
from tests.labs import running_lab
from tests.servers import RunningServer, register_secret

pytestmark = pytest.mark.lab

HOSTS = 16
SERVER_ENV = ENV = {"QUIPU_DISPATCH_INTERVAL_S": "0.2", "QUIPU_SYSTEMS_PER_JOB": "1"}
ACCEPTED = re.compile(r"Accepted publickey for (\S+)")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("pause-lab") / "lab"
    with running_lab(root=root, hosts=HOSTS, net="127.0.234", port=2234) as lab:
        yield lab


def logins(lab: Lab) -> Counter[str]:
    """Successful SSH logins per lab host, from each host's own sshd log."""
    counts: Counter[str] = Counter()
    for number, host in enumerate(lab.hosts, start=1):
        log = lab.root / "hosts" / f"{number:03d}" / "sshd.log"
        counts[host.address] = len(ACCEPTED.findall(log.read_text())) if log.exists() else 0
    return counts


def test_pause_stops_within_5_s_and_restart_never_logs_into_a_done_system_twice(
    server: RunningServer, lab: Lab
) -> None:
    key = lab.sudo_key_path.read_text()
    register_secret(*(line for line in key.splitlines() if "PRIVATE KEY" not in line))
    before = logins(lab)
    store = Store.from_url(server.database_url)
    with server.client() as api:
        cred = api.post(
            "/api/v2/credentials/",
            json={"name": "k", "cred_type": "network", "username": lab.sudo_user, "ssh_key": key},
        ).json()
        source = api.post(
            "/api/v2/sources/",
            json={
                "name": "lab",
                "source_type": "network",
                "hosts": [f"{lab.hosts[0].address}-{lab.hosts[-1].address}"],
                "port": lab.hosts[0].port,
                "credentials": [cred["id"]],
            },
        ).json()
        scan = api.post("/api/v1/scans/", json={"name": "s", "sources": [source["id"]]}).json()
        job_id = api.post(f"/api/v1/scans/{scan['id']}/jobs/").json()["id"]

        deadline = time.monotonic() + 60
        while api.get(f"/api/v1/jobs/{job_id}/").json()["tasks"][1]["status"] != "running":
            assert time.monotonic() < deadline, "inspection never started"
            time.sleep(0.02)
        assert api.put(f"/api/v1/jobs/{job_id}/pause/").status_code == 200
        paused_at = time.monotonic()

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
            assert time.monotonic() - paused_at < 5, "the scanner kept working after a pause"
            time.sleep(0.05)
        done = {
            r["name"]
            for r in api.get(
                f"/api/v1/jobs/{job_id}/inspection/", params={"page_size": 100}
            ).json()["results"]
        }
        assert len(done) < HOSTS, "the pause came after the inspection had finished"
        time.sleep(1)
        assert api.get(f"/api/v1/jobs/{job_id}/").json()["status"] == "paused"

        assert api.put(f"/api/v1/jobs/{job_id}/restart/").status_code == 200
        deadline = time.monotonic() + 90
        while (job := api.get(f"/api/v1/jobs/{job_id}/").json())["status"] not in (
            "completed",
            "failed",
        ):
            assert time.monotonic() < deadline, job
            time.sleep(0.2)
        assert job["status"] == "completed", job["status_message"]
        assert job["systems_scanned"] == HOSTS
    store.dispose()

    made = logins(lab) - before
    for host in lab.hosts:
        if host.address in done:
            # one login to connect, one to inspect: a done system is never visited again
            assert made[host.address] == 2, (host.address, made)
        else:
            # a session cut by the pause is redone once on restart
            assert 2 <= made[host.address] <= 3, (host.address, made)

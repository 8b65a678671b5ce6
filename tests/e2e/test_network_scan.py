"""Network scans for real: a server with its built-in scanner scans lab hosts over SSH."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from quipu.lab import Lab
from tests.e2e.scans import results, start, wait_status
from tests.labs import running_lab
from tests.servers import RunningServer, register_secret, start_server

pytestmark = pytest.mark.lab

HOSTS, SLOW = 4, 1
SERVER_ENV = ENV = {
    "QUIPU_DISPATCH_INTERVAL_S": "0.2",
    "QUIPU_SYSTEMS_PER_JOB": "2",
    "QUIPU_SSH_CONNECT_TIMEOUT_S": "3",
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("scan-lab") / "lab"
    with running_lab(root=root, hosts=HOSTS, slow=SLOW, net="127.0.232", port=2232) as lab:
        yield lab


def make_scan(
    api: httpx.Client, lab: Lab, *, name: str, hosts: list[str], key: str | None = None
) -> int:
    key = key or lab.sudo_key_path.read_text()
    register_secret(*(line for line in key.splitlines() if "PRIVATE KEY" not in line))
    cred = api.post(
        "/api/v2/credentials/",
        json={
            "name": f"{name}-cred",
            "cred_type": "network",
            "username": lab.sudo_user,
            "ssh_key": key,
        },
    )
    assert cred.status_code == 201, cred.text
    source = api.post(
        "/api/v2/sources/",
        json={
            "name": f"{name}-source",
            "source_type": "network",
            "hosts": hosts,
            "port": lab.hosts[0].port,
            "credentials": [cred.json()["id"]],
        },
    )
    assert source.status_code == 201, source.text
    scan = api.post("/api/v1/scans/", json={"name": name, "sources": [source.json()["id"]]})
    assert scan.status_code == 201, scan.text
    scan_id: int = scan.json()["id"]
    return scan_id


def machine_facts() -> dict[str, Any]:
    meminfo = Path("/proc/meminfo").read_text()
    total_kib = int(
        next(line for line in meminfo.splitlines() if line.startswith("MemTotal")).split()[1]
    )
    release = dict(
        line.split("=", 1)
        for line in Path("/etc/os-release").read_text().splitlines()
        if "=" in line
    )
    return {
        "cpu_count": os.cpu_count(),
        "system_memory_bytes": total_kib * 1024,
        "etc_release_name": release["NAME"].strip('"'),
        "etc_release_version": release["VERSION_ID"].strip('"'),
    }


def test_a_lab_scan_finds_every_host_with_its_own_facts_and_reports_it_once(
    api: httpx.Client, lab: Lab
) -> None:
    first, last = lab.hosts[0].address, lab.hosts[-1].address
    job_id = start(api, make_scan(api, lab, name="lab", hosts=[f"{first}-{last}"]))
    job = wait_status(api, job_id, statuses=("completed", "failed"))
    assert job["status"] == "completed", job["status_message"]
    assert (
        job["systems_count"],
        job["systems_scanned"],
        job["systems_failed"],
        job["systems_unreachable"],
    ) == (HOSTS + SLOW, HOSTS, 0, SLOW)
    assert [t["status"] for t in job["tasks"]] == ["completed", "completed"]

    connection = {r["name"]: r for r in results(api, job_id, "connection")}
    slow = [h.address for h in lab.hosts if h.slow]
    assert {n for n, r in connection.items() if r["status"] == "unreachable"} == set(slow)

    expected = machine_facts()
    inspected = {r["name"]: r for r in results(api, job_id, "inspection")}
    assert set(inspected) == {h.address for h in lab.hosts if not h.slow}
    for host in lab.hosts:
        if host.slow:
            continue
        facts = inspected[host.address]["facts"]
        for name, value in expected.items():
            assert facts[name] == value, (host.address, name)
        assert facts["has_sudo"] is True
        assert facts["sshd_config"] is not None
        if lab.namespaces:
            assert facts["uname_hostname"] == host.hostname
            assert facts["etc_machine_id"] == host.machine_id

    report_id = job["report_id"]
    assert report_id is not None
    deployments = api.get(f"/api/v1/reports/{report_id}/deployments/").json()
    names = [s["name"] for s in deployments["system_fingerprints"]]
    if lab.namespaces:
        assert sorted(names) == sorted(h.hostname for h in lab.hosts if not h.slow)
    details = api.get(f"/api/v1/reports/{report_id}/details/").json()
    assert sum(len(s["facts"]) for s in details["sources"]) == HOSTS

    csv_text = api.get(
        f"/api/v1/reports/{report_id}/deployments/", headers={"Accept": "text/csv"}
    ).text
    assert csv_text.splitlines()[0].startswith("name,os_name")
    assert len(csv_text.strip().splitlines()) == len(names) + 1

    tarball = api.get(f"/api/v1/reports/{report_id}/download/").content
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        members = {m.name.split("/", 1)[1]: m for m in tar.getmembers() if m.isfile()}
        assert set(members) == {
            "aggregate.json", "details.json", "deployments.json", "details.csv",
            "deployments.csv", "insights.tar.gz", "SHA256SUM",
        }  # fmt: skip
        sums = tar.extractfile(members["SHA256SUM"]).read().decode()  # type: ignore[union-attr]
        for line in sums.splitlines():
            digest, name = line.split(maxsplit=1)
            body = tar.extractfile(members[name.lstrip("*")]).read()  # type: ignore[union-attr]
            assert hashlib.sha256(body).hexdigest() == digest
    assert api.get("/api/v1/reports/999999/details/").status_code == 404


def test_a_wrong_key_fails_systems_but_completes_the_connection_task(
    api: httpx.Client, lab: Lab
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    wrong = (
        ed25519.Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
        .decode()
    )
    host = lab.hosts[0].address
    job_id = start(api, make_scan(api, lab, name="wrong", hosts=[host], key=wrong))
    job = wait_status(api, job_id, statuses=("completed", "failed"))
    assert job["status"] == "failed"
    connect, inspect = job["tasks"]
    assert connect["status"] == "completed"
    assert (connect["systems_count"], connect["systems_failed"]) == (1, 1)
    assert inspect["status"] == "failed"
    row = results(api, job_id, "connection")[0]
    assert row["status"] == "failed" and row["message"]


def test_only_unreachable_hosts_fail_the_job_at_inspection_saying_so(
    api: httpx.Client, lab: Lab
) -> None:
    slow = [h.address for h in lab.hosts if h.slow]
    closed = "127.0.232.250"  # nothing listens there
    job_id = start(api, make_scan(api, lab, name="dark", hosts=[*slow, closed]))
    job = wait_status(api, job_id, statuses=("completed", "failed"))
    assert job["status"] == "failed"
    assert "could be reached" in job["status_message"]
    assert job["systems_unreachable"] == len(slow) + 1
    assert [t["status"] for t in job["tasks"]] == ["completed", "failed"]


def test_pause_during_inspection_then_restart_inspects_each_system_once(
    api: httpx.Client, lab: Lab
) -> None:
    hosts = [h.address for h in lab.hosts if not h.slow]
    job_id = start(api, make_scan(api, lab, name="pausing", hosts=hosts))

    def inspection_running() -> bool:
        tasks = api.get(f"/api/v1/jobs/{job_id}/").json()["tasks"]
        return tasks[1]["status"] == "running"

    deadline = time.monotonic() + 60
    while not inspection_running():
        assert time.monotonic() < deadline, "inspection never started"
        time.sleep(0.05)
    paused = api.put(f"/api/v1/jobs/{job_id}/pause/")
    assert paused.status_code == 200, paused.text
    time.sleep(2)
    assert api.get(f"/api/v1/jobs/{job_id}/").json()["status"] == "paused"
    assert api.put(f"/api/v1/jobs/{job_id}/restart/").status_code == 200
    job = wait_status(api, job_id, statuses=("completed", "failed"))
    assert job["status"] == "completed", job["status_message"]
    inspected = Counter(r["name"] for r in results(api, job_id, "inspection"))
    assert inspected == Counter(hosts)


def test_a_running_job_survives_a_server_restart(
    server: RunningServer, api: httpx.Client, lab: Lab
) -> None:
    hosts = [h.address for h in lab.hosts]
    job_id = start(api, make_scan(api, lab, name="restarting", hosts=hosts))
    wait_status(api, job_id, statuses=("running",))
    server.stop()
    again = start_server(
        data_dir=server.data_dir, database_url=server.database_url, env=ENV, port=server.port
    )
    try:
        with again.client() as api2:
            job = wait_status(api2, job_id, statuses=("completed", "failed"))
            assert job["status"] == "completed", job["status_message"]
            assert job["systems_scanned"] == HOSTS
    finally:
        again.stop()

"""qpc merges reports and uploads details reports against a real server that scanned lab hosts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from quipu.lab import Lab
from tests.e2e.qpc import (
    Qpc,
    add_lab_scan,
    start_scan,
    wait_job,
    with_lab_credential,
)
from tests.estates import established_details
from tests.labs import running_lab
from tests.servers import RunningServer

SERVER_ENV = {"QUIPU_DISPATCH_INTERVAL_S": "0.2"}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("merge-lab") / "lab"
    with running_lab(root=root, hosts=2, net="127.0.216", port=2216) as lab:
        yield lab


@pytest.fixture
def qpc(server: RunningServer, lab: Lab, tmp_path: Path) -> Qpc:
    return with_lab_credential(server, lab, config_home=tmp_path / "config")


def completed(qpc: Qpc, job_id: int, *, timeout: float = 90) -> dict[str, Any]:
    current = wait_job(qpc, job_id, "completed", "failed", "canceled", timeout=timeout)
    assert current["status"] == "completed", current
    return current


def merged(job_id: int) -> str:
    return (
        f"Report merge job {job_id} created. "
        f'To check processing status, run "qpc scan job --id {job_id}"\n'
    )


def uploaded(job_id: int) -> str:
    return (
        f"Report uploaded. Job {job_id} created. "
        f'To check processing status, run "qpc scan job --id {job_id}"\n'
    )


def job_id_in(message: str) -> int:
    return int(message.split("--id ")[1].rstrip('"\n'))


def report_of(qpc: Qpc, job_id: int) -> int:
    """The report of a job qpc just made, which is complete as soon as it exists."""
    report_id: int = completed(qpc, job_id, timeout=0)["report_id"]
    return report_id


def details(qpc: Qpc, report_id: int) -> dict[str, Any]:
    value: dict[str, Any] = qpc.ok("report", "details", "--report", str(report_id), "--json").json()
    return value


def report_count(server: RunningServer) -> int:
    with server.client() as api:
        count: int = api.get("/api/v1/reports/").json()["count"]
    return count


def systems(qpc: Qpc, report_id: int) -> list[dict[str, Any]]:
    deployments = qpc.ok("report", "deployments", "--report", str(report_id), "--json").json()
    found: list[dict[str, Any]] = deployments["system_fingerprints"]
    return found


@pytest.mark.lab
def test_merge_and_upload_through_qpc(
    server: RunningServer, qpc: Qpc, lab: Lab, tmp_path: Path
) -> None:
    first, second = (h.address for h in lab.hosts)
    add_lab_scan(qpc, lab, name="east", hosts=[first])
    add_lab_scan(qpc, lab, name="west", hosts=[first, second])
    east_job, west_job = start_scan(qpc, "east"), start_scan(qpc, "west")
    east, west = completed(qpc, east_job)["report_id"], completed(qpc, west_job)["report_id"]
    # Both scans saw the first host: every merge below holds it once.
    expected = systems(qpc, west)
    if lab.namespaces:
        assert len(expected) == 2
    names = sorted(s["name"] for s in expected)

    def check_merge(out: str, *, sources: list[str]) -> int:
        made = job_id_in(out)
        assert out == merged(made)
        report_id = report_of(qpc, made)
        merged_details = details(qpc, report_id)
        assert [s["source_name"] for s in merged_details["sources"]] == sources
        assert sorted(f["system"] for s in merged_details["sources"] for f in s["facts"]) == (
            sorted([first, first, second])
        )
        found = systems(qpc, report_id)
        assert sorted(s["name"] for s in found) == names
        seen_by = sorted([src["source_name"] for src in s["sources"]] for s in found)
        assert seen_by == [["east", "west"]] + [["west"]] * (len(found) - 1)
        return report_id

    by_jobs = qpc.ok("report", "merge", "--job-ids", str(east_job), str(west_job)).stdout
    check_merge(by_jobs, sources=["east", "west"])
    by_reports = qpc.ok("report", "merge", "--report-ids", str(west), str(east)).stdout
    check_merge(by_reports, sources=["west", "east"])

    files = tmp_path / "details"
    files.mkdir()
    for name, report_id in (("east", east), ("west", west)):
        written = qpc.ok(
            "report", "details", "--report", str(report_id), "--json",
            "--output-file", str(files / f"{name}.json"),
        )  # fmt: skip
        assert written.stdout == "Report written successfully.\n"
    east_file, west_file = files / "east.json", files / "west.json"
    by_files = qpc.ok("report", "merge", "--json-files", str(east_file), str(west_file))
    check_merge(by_files.stdout, sources=["east", "west"])

    (files / "notes.txt").write_text("not a report")
    (files / "broken.json").write_text('{"sources": [this is bad]')
    by_directory = qpc.ok("report", "merge", "--json-directory", str(files))
    assert by_directory.stderr == f"Failed: {files / 'broken.json'} is not a JSON details report.\n"
    check_merge(by_directory.stdout, sources=["east", "west"])

    out = qpc.ok("report", "upload", "--json-file", str(west_file)).stdout
    made = job_id_in(out)
    assert out == uploaded(made)
    assert systems(qpc, report_of(qpc, made)) == expected

    elsewhere = tmp_path / "established.json"
    elsewhere.write_text(json.dumps(established_details()))
    out = qpc.ok("report", "upload", "--json-file", str(elsewhere)).stdout
    assert out == uploaded(job_id_in(out))
    estate = systems(qpc, report_of(qpc, job_id_in(out)))
    assert sorted(s["name"] for s in estate) == [
        "app1.example.com",
        "clone-a",
        "clone-b",
        "db1",
        "web1",
    ]

    add_lab_scan(qpc, lab, name="held", hosts=[second], mediated=True)
    held = start_scan(qpc, "held")
    reports_before = report_count(server)
    refusals = [
        (("merge",), 2, "one of the arguments --job-ids --report-ids --json-files "
         "--json-directory is required"),
        (("merge", "--job-ids", str(east_job), "--report-ids", str(west)), 2,
         "argument --report-ids: not allowed with argument --job-ids"),
        (("merge", "--job-ids", str(east_job), "999"), 1,
         "The following scan jobs do not exist: ['999']."),
        (("merge", "--job-ids", str(east_job), str(held)), 1,
         f"The following scan jobs did not produce reports: ['{held}']."),
        (("merge", "--job-ids", str(east_job), str(east_job)), 1,
         "Two or more scan report ids are required."),
        (("merge", "--report-ids", str(east)), 1, "Two or more scan report ids are required."),
        (("merge", "--report-ids", str(east), str(east)), 1, "Set of ids must be unique."),
        (("merge", "--report-ids", str(east), "x"), 1, "Scan report ids must be integers."),
        (("merge", "--report-ids", str(east), "998", "999"), 1,
         "Not all scan report ids exist. Scan reports not found: 998, 999"),
        (("merge", "--json-files", str(east_file)), 1,
         "At least two json details report files are required to merge."),
        (("merge", "--json-directory", str(east_file)), 1, f"{east_file} is not a directory"),
        (("merge", "--json-directory", str(tmp_path / "config")), 1,
         f"No files with extension .json found in {tmp_path / 'config'}."),
        (("merge", "--json-files", str(files / "broken.json"), str(files / "notes.txt")), 1,
         f"Failed: {files / 'broken.json'} is not a JSON details report.\n"
         f"Failed: {files / 'notes.txt'} is not a JSON details report.\n"
         "No details reports were found."),
        (("upload", "--json-file", str(files / "missing.json")), 1,
         f"Input {files / 'missing.json'} was not found.\n"
         f"Failed: {files / 'missing.json'} is not a JSON details report."),
    ]  # fmt: skip
    for args, code, message in refusals:
        refused = qpc.fails("report", *args, code=code)
        assert refused.stderr.endswith(message + "\n"), (args, refused.stderr)
        if code == 1:
            assert refused.stderr == message + "\n", (args, refused.stderr)

    unknown = established_details()
    unknown["sources"][1]["source_type"] = "ldap"
    elsewhere.write_text(json.dumps(unknown))
    refused = qpc.fails("report", "upload", "--json-file", str(elsewhere))
    assert refused.stderr == (
        "Report could not be created.  Error: sources.1.source_type must be one of network, "
        "vcenter, satellite, openshift, ansible, rhacs (got 'ldap').\n"
    )
    assert report_count(server) == reports_before


def test_the_established_clients_requests_are_answered_as_its_server_does(
    server: RunningServer,
) -> None:
    with server.client() as api:
        uploads = [api.post("/api/v1/reports/", json=established_details()) for _ in range(2)]
        for answer in uploads:
            assert answer.status_code == 201, answer.text
        first, second = (answer.json() for answer in uploads)
        assert set(first) == {
            "job_id", "report_id", "scan_id", "scan_type", "status", "status_message",
        }  # fmt: skip
        assert (first["scan_id"], first["scan_type"], first["status"]) == (
            None,
            "fingerprint",
            "completed",
        )
        # Older established clients PUT the merge, and send report ids as strings.
        ids = [str(first["report_id"]), str(second["report_id"])]
        answer = api.put("/api/v1/reports/merge/", json={"reports": ids})
        assert answer.status_code == 201, answer.text
        merge = answer.json()
        assert merge["report_id"] not in (first["report_id"], second["report_id"])
        deployments = api.get(f"/api/v1/reports/{merge['report_id']}/deployments/").json()
        assert len(deployments["system_fingerprints"]) == 5
        job = api.get(f"/api/v1/jobs/{merge['job_id']}/").json()
        assert (job["status"], job["report_id"]) == ("completed", merge["report_id"])

        refused = api.post("/api/v1/reports/merge/", json={"reports": [first["report_id"]]})
        assert refused.status_code == 400
        message = "Two or more scan report ids are required."
        assert refused.json() == {"detail": message, "reports": [message]}
        broken = established_details()
        broken["sources"][0]["server_id"] = "8"
        refused = api.post("/api/v1/reports/", json=broken)
        assert refused.status_code == 400
        message = "sources.0.server_id must be a UUID (got '8')."
        assert refused.json() == {"detail": message, "sources.0.server_id": [message]}
        not_json = api.post(
            "/api/v1/reports/", content=b"{", headers={"Content-Type": "application/json"}
        )
        assert not_json.status_code == 400
        assert not_json.json()["detail"].startswith("The upload is not JSON: ")
        listed = api.get("/api/v1/reports/").json()
        assert listed["count"] == 3

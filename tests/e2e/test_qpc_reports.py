"""qpc reads every report of a real scan of lab hosts, with the established messages."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import tarfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from quipu.lab import Lab
from quipu.reports.aggregate import DIAGNOSTIC_FIELDS, INSTANCE_FIELDS, RESULT_FIELDS
from tests.e2e.qpc import Qpc, with_lab_credential
from tests.labs import running_lab
from tests.servers import RunningServer

pytestmark = pytest.mark.lab

SERVER_ENV = {"QUIPU_DISPATCH_INTERVAL_S": "0.2"}
HOSTS = 3
V2_FIELDS = {
    "id", "created_at", "updated_at", "report_version", "report_platform_id", "origin",
    "scan_id", "scan_name", "can_download", "cannot_download_reason", "can_publish",
    "cannot_publish_reason",
}  # fmt: skip
DOWNLOAD_FILES = [
    "SHA256SUM", "aggregate.json", "deployments.csv", "deployments.json", "details.csv",
    "details.json", "insights.tar.gz",
]  # fmt: skip


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("qpc-reports-lab") / "lab"
    with running_lab(root=root, hosts=HOSTS, net="127.0.215", port=2215) as lab:
        yield lab


@pytest.fixture
def qpc(server: RunningServer, lab: Lab, tmp_path: Path) -> Qpc:
    qpc = with_lab_credential(server, lab, config_home=tmp_path / "config")
    qpc.ok(
        "source", "add", "--name", "lab", "--type", "network",
        "--hosts", *(h.address for h in lab.hosts), "--port", str(lab.hosts[0].port),
        "--cred", "lab",
    )  # fmt: skip
    qpc.ok("scan", "add", "--name", "weekly", "--sources", "lab")
    return qpc


def scan(qpc: Qpc) -> dict[str, Any]:
    """Run the scan to its end; its job as ``qpc scan job`` prints it.

    Right after the start, before the job can have completed, its reports are asked for: a
    job without a report gets the established sentence (or, had it completed already, the
    report)."""
    started = qpc.ok("scan", "start", "--name", "weekly").stdout
    job_id = started.split('"')[1]
    early = qpc("report", "aggregate", "--scan-job", job_id)
    if early.code:
        assert early.stderr == f"No aggregate report available for scan job {job_id}.\n"
    deadline = time.monotonic() + 120
    while True:
        job: dict[str, Any] = qpc.ok("scan", "job", "--id", job_id).json()
        if job["status"] in ("completed", "failed", "canceled") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert job["status"] == "completed", job
    assert job["systems_scanned"] == HOSTS, job
    if not early.code:
        assert early.json()["diagnostics"]["inspect_result_status_success"] == HOSTS
    return job


def sha256sum_checks(directory: Path) -> str:
    tool = shutil.which("sha256sum")
    assert tool is not None, "sha256sum (coreutils) is missing"
    checked = subprocess.run(
        [tool, "-c", "SHA256SUM"], cwd=directory, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    return checked.stdout


def tar_json(path: Path | bytes) -> dict[str, Any]:
    """Each JSON member of a .tar.gz by name."""
    source = {"fileobj": io.BytesIO(path)} if isinstance(path, bytes) else {"name": str(path)}
    with tarfile.open(mode="r:gz", **source) as archive:  # type: ignore[call-overload]
        return {
            m.name: json.loads(archive.extractfile(m).read())
            for m in archive.getmembers()
            if m.isfile()
        }


def check_insights(files: dict[str, Any], *, report_id: int, systems: list[dict[str, Any]]) -> None:
    root = f"report_id_{report_id}"
    metadata = files.pop(f"{root}/metadata.json")
    slices = metadata["report_slices"]
    assert sorted(files) == sorted(f"{root}/{slice_id}.json" for slice_id in slices)
    hosts = []
    for slice_id, counted in slices.items():
        body = files[f"{root}/{slice_id}.json"]
        assert body["report_slice_id"] == slice_id
        assert len(body["hosts"]) == counted["number_hosts"]
        hosts.extend(body["hosts"])
    assert sum(c["number_hosts"] for c in slices.values()) == len(systems)
    assert sorted(h["display_name"] for h in hosts) == sorted(s["name"] for s in systems)
    assert metadata["source_metadata"]["qpc_server_report_id"] == report_id
    assert metadata["source_metadata"]["report_type"] == "insights"


def test_every_report_of_a_lab_scan_through_qpc(qpc: Qpc, tmp_path: Path) -> None:
    job = scan(qpc)
    job_id, report_id = str(job["id"]), job["report_id"]
    rid = str(report_id)

    # show and list: the established v2 fields, exactly
    shown = qpc.ok("report", "show", "--report", rid).json()
    assert set(shown) == V2_FIELDS
    assert shown["id"] == report_id
    scan_id = qpc.ok("scan", "show", "--name", "weekly").json()["id"]
    assert (shown["origin"], shown["scan_id"], shown["scan_name"]) == ("local", scan_id, "weekly")
    assert (shown["can_download"], shown["cannot_download_reason"]) == (True, None)
    assert (shown["can_publish"], shown["cannot_publish_reason"]) == (False, "auth_missing")
    assert qpc.ok("report", "list").json() == {
        "count": 1,
        "next": None,
        "previous": None,
        "results": [shown],
    }

    details = qpc.ok("report", "details", "--scan-job", job_id, "--json").json()
    assert sum(len(s["facts"]) for s in details["sources"]) == HOSTS
    deployments = qpc.ok("report", "deployments", "--report", rid, "--json").json()
    systems = deployments["system_fingerprints"]
    assert len(systems) == HOSTS

    # aggregate: instances add up to the successful inspections, OS counts to the systems
    aggregate = qpc.ok("report", "aggregate", "--scan-job", job_id).json()
    results, diagnostics = aggregate["results"], aggregate["diagnostics"]
    assert tuple(sorted(results)) == RESULT_FIELDS
    assert tuple(sorted(diagnostics)) == DIAGNOSTIC_FIELDS
    assert sum(results[f] for f in INSTANCE_FIELDS) == diagnostics[
        "inspect_result_status_success"
    ] == HOSTS  # fmt: skip
    assert diagnostics["inspect_result_status_failed"] == 0
    assert results["instances_not_redhat"] == sum(1 for s in systems if not s["is_redhat"])
    by_os = Counter((s["os_name"] or "unknown", s["os_version"] or "unknown") for s in systems)
    assert results["os_by_name_and_version"] == {
        name: {version: n for (o, version), n in by_os.items() if o == name} for name, _ in by_os
    }
    aggregate_file = tmp_path / "aggregate.json"
    assert qpc.ok(
        "report", "aggregate", "--report", rid, "--output-file", str(aggregate_file)
    ).stdout == "Report written successfully.\n"  # fmt: skip
    assert json.loads(aggregate_file.read_text()) == aggregate

    # files: the established message for each
    details_csv = tmp_path / "details.csv"
    assert qpc.ok(
        "report", "details", "--report", rid, "--csv", "--output-file", str(details_csv)
    ).stdout == "Report written successfully.\n"  # fmt: skip
    rows = list(csv.reader(io.StringIO(details_csv.read_text(), newline="")))
    assert rows[0] == [
        "Report ID", "Report Type", "Report Version", "Report Platform ID", "Number Sources",
    ]  # fmt: skip
    assert rows[1][0] == rid and rows[1][4] == "1"
    deployments_csv = tmp_path / "deployments.csv"
    assert qpc.ok(
        "report", "deployments", "--scan-job", job_id, "--csv",
        "--output-file", str(deployments_csv),
    ).stdout == "Report written successfully.\n"  # fmt: skip
    assert len(list(csv.DictReader(io.StringIO(deployments_csv.read_text())))) == HOSTS

    # insights: a tarball of slices whose metadata counts their hosts
    insights = tmp_path / "insights.tar.gz"
    assert qpc.ok(
        "report", "insights", "--scan-job", job_id, "--output-file", str(insights)
    ).stdout == "Report written successfully.\n"  # fmt: skip
    files = tar_json(insights)
    metadata = files[f"report_id_{rid}/metadata.json"]
    assert metadata["report_id"] == shown["report_platform_id"]
    check_insights(files, report_id=report_id, systems=systems)
    as_json = qpc.ok("report", "insights", "--report", rid).json()
    check_insights(as_json, report_id=report_id, systems=systems)

    # download: every file, each checksum verifying, the insights tarball inside
    download = tmp_path / "report.tar.gz"
    written = qpc.ok("report", "download", "--scan-job", job_id, "--output-file", str(download))
    assert written.stdout == f"Report {rid} successfully written to {download}.\n"
    with tarfile.open(download) as archive:
        archive.extractall(tmp_path / "out", filter="data")
    inside = tmp_path / "out" / f"report_id_{rid}"
    assert sorted(p.name for p in inside.iterdir()) == DOWNLOAD_FILES
    checked = sha256sum_checks(inside)
    assert sorted(line.split(":")[0] for line in checked.splitlines()) == DOWNLOAD_FILES[1:]
    assert json.loads((inside / "aggregate.json").read_text()) == aggregate
    assert json.loads((inside / "details.json").read_text()) == details
    assert json.loads((inside / "deployments.json").read_text()) == deployments
    assert (inside / "details.csv").read_bytes() == details_csv.read_bytes()
    assert (inside / "deployments.csv").read_bytes() == deployments_csv.read_bytes()
    check_insights(
        tar_json((inside / "insights.tar.gz").read_bytes()), report_id=report_id, systems=systems
    )

    # one scan serves the refusals too: a scan and a server per test is the slow part
    check_refusals(qpc, job_id=job_id, rid=rid, tmp_path=tmp_path)


def check_refusals(qpc: Qpc, *, job_id: str, rid: str, tmp_path: Path) -> None:
    """Argument errors exit 2; a report or scan job that is not there, or a file that cannot
    be written, is the established sentence on stderr with exit 1."""
    for command in ("details", "deployments", "aggregate", "insights"):
        qpc.fails("report", command, code=2)  # neither --scan-job nor --report
        qpc.fails("report", command, "--scan-job", job_id, "--report", rid, "--json", code=2)
    qpc.fails("report", "details", "--scan-job", job_id, code=2)  # neither --json nor --csv
    qpc.fails("report", "deployments", "--report", rid, "--json", "--csv", code=2)
    qpc.fails("report", "download", "--report", rid, code=2)  # --output-file is required
    qpc.fails("report", "show", code=2)

    missing = {
        ("details", "--json"): "No report detail available for report id 999.",
        ("deployments", "--json"): "The deployments report 999 does not exist.",
        ("aggregate",): "The aggregate report 999 does not exist.",
        ("insights",): "Insights report 999 does not exist.",
        ("download", "--output-file", str(tmp_path / "r.tar.gz")): "Report 999 not found.",
    }
    for args, message in missing.items():
        assert qpc.fails("report", args[0], "--report", "999", *args[1:]).stderr == message + "\n"
    for args in missing:
        assert qpc.fails("report", args[0], "--scan-job", "999", *args[1:]).stderr == (
            "Scan Job 999 does not exist.\n"
        )
    assert qpc.fails("report", "show", "--report", "999").stderr == "Report 999 does not exist.\n"

    wrong = qpc.fails(
        "report", "download", "--report", rid, "--output-file", str(tmp_path / "r.zip")
    )
    assert wrong.stderr == "The output file's extension is required to be tar.gz.\n"
    wrong = qpc.fails(
        "report", "insights", "--report", rid, "--output-file", str(tmp_path / "i.json")
    )
    assert wrong.stderr == "The output file's extension is required to be tar.gz.\n"
    no_dir = tmp_path / "no" / "r.tar.gz"
    assert qpc.fails(
        "report", "download", "--report", rid, "--output-file", str(no_dir)
    ).stderr == f"The directory {no_dir.parent} does not exist.  Cannot write here.\n"  # fmt: skip
    assert not no_dir.parent.exists()

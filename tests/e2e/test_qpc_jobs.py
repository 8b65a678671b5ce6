"""qpc drives scan jobs and reads reports against a real server scanning real lab hosts."""

from __future__ import annotations

import csv
import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from quipu.lab import Lab
from tests.e2e.qpc import (
    Qpc,
    add_lab_scan,
    scan_job,
    start_scan,
    wait_job,
    with_lab_credential,
)
from tests.labs import running_lab
from tests.servers import RunningServer

pytestmark = pytest.mark.lab

# a hung host keeps a job running for 60 s: long enough to act on it, never waited for
SERVER_ENV = ENV = {"QUIPU_DISPATCH_INTERVAL_S": "0.2", "QUIPU_SSH_CONNECT_TIMEOUT_S": "60"}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("qpc-lab") / "lab"
    with running_lab(root=root, hosts=3, slow=1, net="127.0.233", port=2233) as lab:
        yield lab


@pytest.fixture
def qpc(server: RunningServer, lab: Lab, tmp_path: Path) -> Qpc:
    return with_lab_credential(server, lab, config_home=tmp_path / "config")


def test_scan_job_lifecycle_through_qpc(qpc: Qpc, lab: Lab) -> None:
    fast = [h.address for h in lab.hosts if not h.slow]
    slow = [h.address for h in lab.hosts if h.slow]
    add_lab_scan(qpc, lab, name="long", hosts=[*fast, *slow])
    add_lab_scan(qpc, lab, name="queued", hosts=fast)
    add_lab_scan(qpc, lab, name="guarded", hosts=fast, mediated=True)

    first = start_scan(qpc, "long")
    wait_job(qpc, first, "running")
    second = start_scan(qpc, "queued")
    assert scan_job(qpc, second)["status"] == "pending"  # serial: behind the running one
    listed = qpc.ok("scan", "job", "--name", "queued").json()
    assert [(j["id"], j["status"]) for j in listed] == [(second, "pending")]
    assert listed[0]["sources"][0]["name"] == "queued"

    assert qpc.ok("scan", "pause", "--id", str(second)).stdout == f'Scan "{second}" paused.\n'
    assert scan_job(qpc, second)["status"] == "paused"
    assert qpc.ok("scan", "restart", "--id", str(second)).stdout == (
        f'Scan "{second}" restarted.\n'
    )
    assert qpc.ok("scan", "cancel", "--id", str(second)).stdout == (f'Scan "{second}" canceled.\n')
    before = scan_job(qpc, second)
    refused = qpc.fails("scan", "restart", "--id", str(second))
    assert refused.stderr == (
        "Error: Scan cannot be restarted. The scan must be paused for it to be restarted.\n"
    )
    assert scan_job(qpc, second) == before

    third = start_scan(qpc, "guarded")
    assert scan_job(qpc, third)["status"] == "held"
    refused = qpc.fails("scan", "approve", "--id", str(first))
    assert refused.stderr.strip() == f"Scan job {first} is running and cannot be approved."
    assert qpc.ok("scan", "cancel", "--id", str(first)).stdout == f'Scan "{first}" canceled.\n'
    assert qpc.ok("scan", "approve", "--id", str(third)).stdout == f'Scan "{third}" approved.\n'

    done = wait_job(qpc, third, "completed", "failed")
    assert done["status"] == "completed", done["status_message"]
    assert (done["systems_count"], done["systems_scanned"], done["systems_unreachable"]) == (
        len(fast),
        len(fast),
        0,
    )
    assert set(done) == {
        "id", "scan", "scan_type", "status", "status_message", "start_time", "end_time",
        "sources", "options", "report_id", "tasks", "systems_count", "systems_scanned",
        "systems_failed", "systems_unreachable", "system_fingerprint_count",
    }  # fmt: skip
    before = scan_job(qpc, third)
    refused = qpc.fails("scan", "pause", "--id", str(third))
    assert refused.stderr == (
        "Error: Scan cannot be paused. The scan must be running for it to be paused.\n"
    )
    assert scan_job(qpc, third) == before
    assert scan_job(qpc, first)["status"] == "canceled"
    unknown = qpc.fails("scan", "job", "--id", "9999")
    assert "9999" in unknown.stderr


def test_scan_start_wait_then_reports(qpc: Qpc, lab: Lab, tmp_path: Path) -> None:
    fast = [h.address for h in lab.hosts if not h.slow]
    add_lab_scan(qpc, lab, name="weekly", hosts=fast)
    waited = qpc.ok("scan", "start", "--name", "weekly", "--wait")
    assert waited.stdout.startswith('Scan "1" started.\n'), waited.stdout
    assert "completed" in waited.stdout

    deployments = qpc.ok("report", "deployments", "--scan-job", "1", "--json").json()
    systems = deployments["system_fingerprints"]
    if lab.namespaces:
        assert sorted(s["name"] for s in systems) == sorted(
            h.hostname for h in lab.hosts if not h.slow
        )
    details = qpc.ok("report", "details", "--scan-job", "1", "--json").json()
    assert sum(len(s["facts"]) for s in details["sources"]) == len(fast)

    as_csv = qpc.ok("report", "deployments", "--scan-job", "1", "--csv").stdout
    rows = list(csv.DictReader(io.StringIO(as_csv)))
    assert len(rows) == len(systems)
    from quipu.reports import DEPLOYMENT_CSV_COLUMNS

    assert list(rows[0]) == list(DEPLOYMENT_CSV_COLUMNS)

    table = qpc.ok("report", "deployments", "--scan-job", "1", "--table").stdout
    assert all(s["name"] in table for s in systems)

    out = tmp_path / "deployments.json"
    written = qpc.ok(
        "report", "deployments", "--scan-job", "1", "--json", "--output-file", str(out)
    )
    assert written.stdout == "Report written successfully.\n"
    assert out.read_text().startswith("{")

    report_id = scan_job(qpc, 1)["report_id"]
    tarball = tmp_path / "report.tar.gz"
    assert (
        qpc.ok(
            "report", "download", "--report", str(report_id), "--output-file", str(tarball)
        ).stdout
        == f"Report {report_id} successfully written to {tarball}.\n"
    )
    with tarfile.open(tarball) as tar:
        names = sorted(m.name.split("/", 1)[1] for m in tar.getmembers() if m.isfile())
    assert names == [
        "SHA256SUM", "aggregate.json", "deployments.csv", "deployments.json", "details.csv",
        "details.json", "insights.tar.gz",
    ]  # fmt: skip

    bad_name = qpc.fails(
        "report", "download", "--scan-job", "1", "--output-file", str(tmp_path / "r.zip")
    )
    assert "tar.gz" in bad_name.stderr
    no_dir = qpc.fails(
        "report", "download", "--scan-job", "1", "--output-file", str(tmp_path / "no/r.tar.gz")
    )
    assert "does not exist" in no_dir.stderr
    missing = qpc.fails("report", "show", "--report", "999")
    assert "Report 999 does not exist." in missing.stderr
    listed = qpc.ok("report", "list").json()
    assert [r["id"] for r in listed["results"]] == [report_id]
    shown = qpc.ok("report", "show", "--report", str(report_id)).json()
    assert shown == listed["results"][0]

"""qpc's scan and scan job commands print exactly what the established client prints.

Each test drives the real ``qpc`` against a real server (SQLite and PostgreSQL) and compares
whole outputs: every stdout and stderr string, and every JSON object with only its ids and
timestamps taken from the server. Real scan jobs run against real lab hosts.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from quipu.lab import Lab
from tests.e2e.qpc import Qpc, logged_in, with_lab_credential
from tests.labs import running_lab
from tests.servers import RunningServer, free_port

PASSWORD = "compat-Scan-Password-7713"
# a hung host keeps a job running for 60 s: long enough to act on it, never waited for
SERVER_ENV = {"QUIPU_DISPATCH_INTERVAL_S": "0.2", "QUIPU_SSH_CONNECT_TIMEOUT_S": "60"}
DIRS_ERROR = (
    "Error: {'enabled_extended_product_search': {'search_directories': "
    "['search_directories must be a JSON array of valid paths']}}\n"
)
CHOICES = "(choose from 'jboss_eap', 'jboss_fuse', 'jboss_ws')"
NOT_PAUSED = "Error: Scan cannot be restarted. The scan must be paused for it to be restarted.\n"
NOT_RUNNING = "Error: Scan cannot be paused. The scan must be running for it to be paused.\n"
NO_CANCEL = "Error: Scan cannot be canceled. The scan has already finished or been canceled.\n"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("compat-scans-lab") / "lab"
    with running_lab(root=root, hosts=2, slow=1, net="127.0.217", port=2217) as lab:
        yield lab


@pytest.fixture
def qpc(server: RunningServer, tmp_path: Path) -> Qpc:
    """qpc logged in, with a password credential "pw" and a network source "src"."""
    client = logged_in(server, config_home=tmp_path / "config", secrets=(PASSWORD,))
    client.ok(
        "cred", "add", "--name", "pw", "--type", "network", "--username", "root", "--password",
        input=PASSWORD + "\n",
    )  # fmt: skip
    client.ok("source", "add", "--name", "src", "--type", "network", "--hosts", "127.0.0.1",
              "--port", str(free_port()), "--cred", "pw")  # fmt: skip
    return client


def said(result: Any, *, out: str = "", err: str = "", code: int = 0) -> None:
    """``result`` printed exactly ``out`` and ``err`` and exited with ``code``."""
    assert (result.code, result.stdout, result.stderr) == (code, out, err), result


def source_ref(api: httpx.Client, name: str) -> dict[str, Any]:
    found = api.get("/api/v2/sources/", params={"name": name}).json()["results"][0]
    return {"id": found["id"], "name": name, "source_type": "network"}


def scan_id(api: httpx.Client, name: str) -> int:
    found: int = api.get("/api/v1/scans/", params={"name": name}).json()["results"][0]["id"]
    return found


def products(*on: str, directories: list[str] | None = None) -> dict[str, Any]:
    flags: dict[str, Any] = {p: p in on for p in ("jboss_eap", "jboss_fuse", "jboss_ws")}
    return flags if directories is None else {**flags, "search_directories": directories}


def test_scan_add_show_list_edit_and_clear(qpc: Qpc, api: httpx.Client) -> None:
    said(qpc("scan", "list"), err="No scans found.\n")
    said(qpc("scan", "add", "--name", "plain", "--sources", "src"), out='Scan "plain" was added.\n')
    src = source_ref(api, "src")
    plain = {
        "id": scan_id(api, "plain"),
        "name": "plain",
        "options": {"max_concurrency": 25},
        "scan_type": "inspect",
        "sources": [src],
    }
    assert qpc.ok("scan", "show", "--name", "plain").json() == plain

    said(
        qpc("scan", "add", "--name", "jboss", "--sources", "src", "--max-concurrency", "7",
            "--disabled-optional-products", "jboss_eap", "jboss_fuse",
            "--enabled-ext-product-search", "jboss_ws",
            "--ext-product-search-dirs", "/opt", "/srv"),
        out='Scan "jboss" was added.\n',
    )  # fmt: skip
    jboss = {
        "id": scan_id(api, "jboss"),
        "name": "jboss",
        "options": {
            "disabled_optional_products": products("jboss_eap", "jboss_fuse"),
            "enabled_extended_product_search": products("jboss_ws", directories=["/opt", "/srv"]),
            "max_concurrency": 7,
        },
        "scan_type": "inspect",
        "sources": [src],
    }
    assert qpc.ok("scan", "show", "--name", "jboss").json() == jboss
    assert qpc.ok("scan", "list").json() == [jboss, plain]

    # Products named on edit change, the others stay; directories alone replace directories.
    said(
        qpc("scan", "edit", "--name", "jboss", "--disabled-optional-products", "jboss_ws"),
        out='Scan "jboss" was updated.\n',
    )
    jboss["options"]["disabled_optional_products"] = products("jboss_eap", "jboss_fuse", "jboss_ws")
    assert qpc.ok("scan", "show", "--name", "jboss").json() == jboss
    qpc.ok("scan", "edit", "--name", "jboss", "--ext-product-search-dirs", "/data")
    jboss["options"]["enabled_extended_product_search"]["search_directories"] = ["/data"]
    assert qpc.ok("scan", "show", "--name", "jboss").json() == jboss
    # Options without values reset every product to false.
    said(
        qpc("scan", "edit", "--name", "jboss", "--disabled-optional-products",
            "--enabled-ext-product-search", "--ext-product-search-dirs",
            "--max-concurrency", "200"),
        out='Scan "jboss" was updated.\n',
    )  # fmt: skip
    jboss["options"] = {
        "disabled_optional_products": products(),
        "enabled_extended_product_search": products(directories=[]),
        "max_concurrency": 200,
    }
    assert qpc.ok("scan", "show", "--name", "jboss").json() == jboss
    # A first extended search on edit: its products, and no empty directory list.
    qpc.ok("scan", "edit", "--name", "plain", "--enabled-ext-product-search", "jboss_eap")
    plain["options"] = {
        "enabled_extended_product_search": products("jboss_eap"),
        "max_concurrency": 25,
    }
    assert qpc.ok("scan", "show", "--name", "plain").json() == plain

    everything = qpc.ok("scan", "show", "--name", "plain", "--all-fields").json()
    assert set(everything) == {*plain, "jobs", "most_recent", "most_recent_scanjob",
                               "created_at", "updated_at",
                               "schedule", "windows", "retry"}  # fmt: skip
    assert (everything["jobs"], everything["most_recent"]) == ([], None)
    assert api.get(f"/api/v1/scans/{plain['id']}/").json()["options"] == plain["options"]

    said(qpc("scan", "clear", "--name", "jboss"), out='Scan "jboss" was removed.\n')
    said(qpc("scan", "clear", "--name", "jboss"), err='Scan "jboss" was not found.\n', code=1)
    said(qpc("scan", "clear", "--all"), out="Successfully deleted 1 scans.\n")
    said(qpc("scan", "clear", "--all"), err="No scans exist to be removed.\n", code=1)
    said(qpc("scan", "list"), err="No scans found.\n")


def test_scan_errors(qpc: Qpc, api: httpx.Client) -> None:
    qpc.ok("scan", "add", "--name", "taken", "--sources", "src")
    before = api.get("/api/v1/scans/").json()
    add = ("scan", "add", "--name", "new", "--sources", "src")
    said(
        qpc(*add, "--max-concurrency", "0"),
        err="Error: {'max_concurrency': ['Ensure this value is greater than or equal to 1.']}\n",
        code=1,
    )
    said(
        qpc(*add, "--max-concurrency", "201"),
        err="Error: {'max_concurrency': ['Ensure this value is less than or equal to 200.']}\n",
        code=1,
    )
    said(
        qpc(*add, "--enabled-ext-product-search", "jboss_eap", "--ext-product-search-dirs", "opt"),
        err=DIRS_ERROR,
        code=1,
    )
    said(
        qpc("scan", "edit", "--name", "taken", "--ext-product-search-dirs", "/opt", "rel/dir"),
        err=DIRS_ERROR,
        code=1,
    )
    said(
        qpc("scan", "add", "--name", "taken", "--sources", "src"),
        err="name: Scan with name=taken already exists\n",
        code=1,
    )
    said(qpc(*add[:4], "--sources", "nope"), err='Source "nope" does not exist.\n', code=1)
    # Argument errors: usage errors, exit 2.
    said(
        qpc(*add, "--disabled-optional-products", "jboss_brms"),
        err="Error: argument --disabled-optional-products: invalid choice: 'jboss_brms' "
        f"{CHOICES}\n",
        code=2,
    )
    said(
        qpc(*add, "--disabled-optional-products"),
        err="Error: argument --disabled-optional-products: expected at least one argument\n",
        code=2,
    )
    said(
        qpc(*add, "--ext-product-search-dirs", "/opt"),
        err="Error: the following arguments are required: --enabled-ext-product-search\n",
        code=2,
    )
    said(
        qpc("scan", "edit", "--name", "taken"),
        err="Error: No arguments were provided to edit scan taken.\n",
        code=2,
    )
    said(qpc(*add, "--colour", "red"), err="Error: No such option: --colour\n", code=2)
    said(qpc("scan", "show", "--name", "nope"), err='Scan "nope" does not exist.\n', code=1)
    said(qpc("scan", "edit", "--name", "nope", "--sources", "src"),
         err='Scan "nope" does not exist.\n', code=1)  # fmt: skip
    said(qpc("scan", "start", "--name", "nope"), err='Scan "nope" does not exist.\n', code=1)
    assert api.get("/api/v1/scans/").json() == before

    # The API refuses the same, naming the option; an older client's jboss_brms is ignored.
    path = f"/api/v1/scans/{scan_id(api, 'taken')}/"
    refused = api.patch(path, json={"options": {"max_concurrency": 0}})
    assert (refused.status_code, refused.json()) == (
        400,
        {
            "detail": "Ensure this value is greater than or equal to 1.",
            "options.max_concurrency": ["Ensure this value is greater than or equal to 1."],
        },
    )
    patched = api.patch(
        path, json={"options": {"disabled_optional_products": {"jboss_brms": True}}}
    )
    assert (patched.status_code, patched.json()["options"]) == (200, {"max_concurrency": 25})


def test_a_failed_job_through_qpc_and_the_api(qpc: Qpc, api: httpx.Client) -> None:
    """A job of an unreachable source: its whole output, the refusals, the job paths."""
    qpc.ok("scan", "add", "--name", "down", "--sources", "src")
    said(qpc("scan", "job", "--name", "down"), err="No scans found.\n", code=1)
    said(qpc("scan", "start", "--name", "down"), out='Scan "1" started.\n')
    job = wait(api, 1, "failed")
    assert api.get("/api/v1/jobs/1").json() == job  # with and without the trailing slash
    assert job["report_id"] is None
    src = source_ref(api, "src")
    reason = job["status_message"]
    connect, inspect = job["tasks"]
    expected = {
        "end_time": job["end_time"],
        "id": 1,
        "options": {"max_concurrency": 25},
        "scan": {"id": scan_id(api, "down"), "name": "down"},
        "scan_type": "inspect",
        "sources": [src],
        "start_time": job["start_time"],
        "status": "failed",
        "status_message": reason,
        "system_fingerprint_count": 0,
        "systems_count": 1,
        "systems_failed": 0,
        "systems_scanned": 0,
        "systems_unreachable": 1,
        "tasks": [
            {
                "end_time": connect["end_time"],
                "scan_type": "connect",
                "sequence_number": 1,
                "source": src["id"],
                "start_time": connect["start_time"],
                "status": "completed",
                "status_message": "Task is complete.",
                "systems_count": 1,
                "systems_failed": 0,
                "systems_scanned": 0,
                "systems_unreachable": 1,
            },
            {
                "end_time": inspect["end_time"],
                "scan_type": "inspect",
                "sequence_number": 2,
                "source": src["id"],
                "status": "failed",
                "status_message": reason,
                "systems_count": 0,
                "systems_failed": 0,
                "systems_scanned": 0,
                "systems_unreachable": 0,
            },
            {
                "end_time": job["end_time"],
                "scan_type": "fingerprint",
                "sequence_number": 3,
                "status": "failed",
                "status_message": reason,
                "systems_count": 0,
                "systems_failed": 0,
                "systems_scanned": 0,
                "systems_unreachable": 0,
            },
        ],
    }
    assert qpc.ok("scan", "job", "--id", "1").json() == expected
    assert qpc.ok("scan", "job", "--name", "down").json() == [expected]
    assert qpc.ok("scan", "job", "--name", "down", "--status", "failed").json() == [expected]
    said(qpc("scan", "job", "--name", "down", "--status", "completed"),
         err="No scans found.\n", code=1)  # fmt: skip
    assert qpc.ok("scan", "show", "--name", "down").json() == {
        "id": scan_id(api, "down"),
        "jobs": [{"id": 1}],
        "most_recent": {
            "end_time": job["end_time"],
            "id": 1,
            "scan_type": "inspect",
            "start_time": job["start_time"],
            "status": "failed",
            "status_details": {
                "job_status_message": reason,
                f"task_{connect['id']}_status_message": "Task is complete.",
                f"task_{inspect['id']}_status_message": reason,
            },
            "system_fingerprint_count": 0,
            "systems_count": 1,
            "systems_failed": 0,
            "systems_scanned": 0,
            "systems_unreachable": 1,
        },
        "name": "down",
        "options": {"max_concurrency": 25},
        "scan_type": "inspect",
        "sources": [src],
    }

    for action, refusal in (("pause", NOT_RUNNING), ("restart", NOT_PAUSED), ("cancel", NO_CANCEL)):
        said(qpc("scan", action, "--id", "1"), err=refusal, code=1)
        answer = api.put(f"/api/v1/jobs/1/{action}")
        assert (answer.status_code, answer.json()["non_field_errors"]) == (400, [refusal[7:-1]])
    assert qpc.ok("scan", "job", "--id", "1").json() == expected

    for phase in ("connection", "inspection"):
        assert (
            api.get(f"/api/v1/jobs/1/{phase}").json() == api.get(f"/api/v1/jobs/1/{phase}/").json()
        )
    said(qpc("scan", "job", "--id", "9999"), err="Scan job 9999 does not exist.\n", code=1)
    said(qpc("scan", "job", "--id", "1", "--status", "failed"), code=2,
         err='Error: Provide the "--status" filter with a scan name to filter the list of '
         "related scan jobs.\n")  # fmt: skip
    said(qpc("scan", "job"), err="Error: one of the arguments --name --id is required\n", code=2)


def wait(api: httpx.Client, job_id: int, *statuses: str, timeout: float = 90) -> dict[str, Any]:
    """The job once in one of ``statuses`` (as the API shows it)."""
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = api.get(f"/api/v1/jobs/{job_id}/").json()
        if job["status"] in statuses:
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.2)


@pytest.mark.lab
def test_steering_and_a_completed_job_of_lab_hosts(
    server: RunningServer, lab: Lab, tmp_path: Path, api: httpx.Client
) -> None:
    qpc = with_lab_credential(server, lab, config_home=tmp_path / "config")
    fast = next(h for h in lab.hosts if not h.slow)
    slow = next(h for h in lab.hosts if h.slow)
    for name, host in (("hung", slow), ("lab", fast)):
        qpc.ok("source", "add", "--name", name, "--type", "network", "--hosts", host.address,
               "--port", str(host.port), "--cred", "lab")  # fmt: skip
        qpc.ok("scan", "add", "--name", name, "--sources", name)

    said(qpc("scan", "start", "--name", "hung"), out='Scan "1" started.\n')
    wait(api, 1, "running")
    said(qpc("scan", "start", "--name", "lab"), out='Scan "2" started.\n')
    assert api.get("/api/v1/jobs/2").json()["status"] == "pending"  # serial: behind job 1
    said(qpc("scan", "restart", "--id", "1"),
         err="Error: Scan cannot be restarted. The scan is already running.\n", code=1)  # fmt: skip
    said(qpc("scan", "pause", "--id", "2"), out='Scan "2" paused.\n')
    said(qpc("scan", "pause", "--id", "2"),
         err="Error: Scan cannot be paused. The scan is already paused.\n", code=1)  # fmt: skip
    paused = qpc.ok("scan", "job", "--id", "2").json()
    assert (paused["status"], paused["status_message"]) == ("paused", "Job is paused.")
    said(qpc("scan", "restart", "--id", "2"), out='Scan "2" restarted.\n')
    said(qpc("scan", "restart", "--id", "2"), err=NOT_PAUSED, code=1)
    said(qpc("scan", "cancel", "--id", "1"), out='Scan "1" canceled.\n')
    said(qpc("scan", "cancel", "--id", "1"), err=NO_CANCEL, code=1)
    canceled = qpc.ok("scan", "job", "--id", "1").json()
    assert (canceled["status"], canceled["status_message"]) == ("canceled", "Job is canceled.")
    assert canceled["tasks"][-1] == {
        "end_time": canceled["end_time"],
        "scan_type": "fingerprint",
        "sequence_number": 3,
        "status": "canceled",
        "status_message": "Task is canceled.",
        "systems_count": 0,
        "systems_failed": 0,
        "systems_scanned": 0,
        "systems_unreachable": 0,
    }

    job = wait(api, 2, "completed", "failed")
    assert job["status"] == "completed", job["status_message"]
    report_id = job["report_id"]
    assert isinstance(report_id, int)
    lab_ref = source_ref(api, "lab")
    connect, inspect = job["tasks"]

    def task(number: int, kind: str, found: dict[str, Any]) -> dict[str, Any]:
        return {
            "end_time": found["end_time"],
            "scan_type": kind,
            "sequence_number": number,
            "source": lab_ref["id"],
            "start_time": found["start_time"],
            "status": "completed",
            "status_message": "Task is complete.",
            "systems_count": 1,
            "systems_failed": 0,
            "systems_scanned": 1,
            "systems_unreachable": 0,
        }

    assert qpc.ok("scan", "job", "--id", "2").json() == {
        "end_time": job["end_time"],
        "id": 2,
        "options": {"max_concurrency": 25},
        "report_id": report_id,
        "scan": {"id": scan_id(api, "lab"), "name": "lab"},
        "scan_type": "inspect",
        "sources": [lab_ref],
        "start_time": job["start_time"],
        "status": "completed",
        "status_message": "Job is complete.",
        "system_fingerprint_count": 1,
        "systems_count": 1,
        "systems_failed": 0,
        "systems_scanned": 1,
        "systems_unreachable": 0,
        "tasks": [
            task(1, "connect", connect),
            task(2, "inspect", inspect),
            {
                "end_time": job["end_time"],
                "scan_type": "fingerprint",
                "sequence_number": 3,
                "status": "completed",
                "status_message": "Task is complete.",
                "system_fingerprint_count": 1,
                "systems_count": 0,
                "systems_failed": 0,
                "systems_scanned": 0,
                "systems_unreachable": 0,
            },
        ],
    }
    shown = qpc.ok("scan", "show", "--name", "lab").json()
    assert (shown["jobs"], shown["most_recent"]) == (
        [{"id": 2, "report_id": report_id}],
        {
            "end_time": job["end_time"],
            "id": 2,
            "report_id": report_id,
            "scan_type": "inspect",
            "start_time": job["start_time"],
            "status": "completed",
            "status_details": {"job_status_message": "Job is complete."},
            "system_fingerprint_count": 1,
            "systems_count": 1,
            "systems_failed": 0,
            "systems_scanned": 1,
            "systems_unreachable": 0,
        },
    )
    assert api.get("/api/v1/jobs/2").json()["report_id"] == report_id

    # A details report uploaded: a job of its own, shown as the established server shows one.
    details = api.get(f"/api/v1/reports/{report_id}/details/").json()
    uploaded = api.post("/api/v1/reports/", json=details)
    assert uploaded.status_code == 201, uploaded.text
    upload_id = uploaded.json()["job_id"]
    job = api.get(f"/api/v1/jobs/{upload_id}").json()
    assert qpc.ok("scan", "job", "--id", str(upload_id)).json() == {
        "end_time": job["end_time"],
        "id": upload_id,
        "report_id": uploaded.json()["report_id"],
        "scan": None,
        "scan_type": "fingerprint",
        "start_time": job["start_time"],
        "status": "completed",
        "status_message": "Job is complete.",
        "system_fingerprint_count": 1,
        "systems_count": 0,
        "systems_failed": 0,
        "systems_scanned": 0,
        "systems_unreachable": 0,
        "tasks": [
            {
                "end_time": job["end_time"],
                "scan_type": "fingerprint",
                "sequence_number": 1,
                "status": "completed",
                "status_message": "Task is complete.",
                "system_fingerprint_count": 1,
                "systems_count": 0,
                "systems_failed": 0,
                "systems_scanned": 0,
                "systems_unreachable": 0,
            }
        ],
    }

"""The job log and the job's progress, on a real server with a real remote scanner scanning
real lab hosts (some of them unreachable): who moved what and when, paged over the API and
printed by ``qpc scan job --log``, why a failed job failed, who paused a job, and
``qpc scan start --wait`` lines whose systems-done counts never fall."""

from __future__ import annotations

import itertools
import re
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from quipu.lab import Lab
from tests.e2e.qpc import Qpc, logged_in
from tests.e2e.scans import add_lab_source, created, wait_status
from tests.labs import running_lab
from tests.servers import RunningServer, register_secret, start_scanner

pytestmark = pytest.mark.lab

NET = "127.0.247"
PORT = 2247
UNREACHABLE = [f"{NET}.200", f"{NET}.201"]
"""Addresses of the lab's net where nothing listens: refused at once."""
SERVER_ARGS = ("--no-builtin-scanner",)
SERVER_ENV = {
    "QUIPU_DISPATCH_INTERVAL_S": "0.2",
    "QUIPU_HEARTBEAT_S": "1",
    "QUIPU_HEARTBEAT_TIMEOUT_S": "4",
    "QUIPU_SYSTEMS_PER_JOB": "1",
    # the lab's hung host holds its connection this long: the job's phases take a while
    "QUIPU_SSH_CONNECT_TIMEOUT_S": "5",
}
SCANNER = "edge"
DONE = re.compile(r"(\d+) of (\d+) systems done\.$")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("job-log-lab") / "lab"
    with running_lab(root=root, hosts=2, slow=1, net=NET, port=PORT) as lab:
        key = lab.sudo_key_path.read_text()
        register_secret(*(line for line in key.splitlines() if "PRIVATE KEY" not in line))
        yield lab


@pytest.fixture
def scanner(server: RunningServer, tmp_path: Path) -> Iterator[int]:
    """A remote scanner process, "edge", pulling work from ``server``; its id."""
    with server.client() as api:
        body = created(api.post("/api/v1/scanners/", json={"name": SCANNER}))
    process = start_scanner(server, api_key=body["api_key"], log=tmp_path / "scanner.log")
    try:
        yield int(body["id"])
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def qpc(server: RunningServer, tmp_path: Path) -> Qpc:
    return logged_in(server, config_home=tmp_path / "config")


def add_scan(api: httpx.Client, lab: Lab, *, name: str, hosts: list[str], scanner: int) -> int:
    """A network source of ``hosts`` scanned by the remote scanner, and a scan of it."""
    source_id = add_lab_source(api, lab, name=name, hosts=hosts, port=PORT, scanners=[scanner])
    scan_id: int = created(api.post("/api/v1/scans/", json={"name": name, "sources": [source_id]}))[
        "id"
    ]
    return scan_id


def log_of(api: httpx.Client, job_id: int) -> list[dict[str, Any]]:
    """Every entry of a job's log, oldest first, in one page."""
    response = api.get(f"/api/v1/jobs/{job_id}/events/", params={"page_size": 1000})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["count"] == len(body["results"])
    entries: list[dict[str, Any]] = body["results"]
    return entries


def moves(entries: list[dict[str, Any]]) -> list[tuple[str, str, str | None, str | None, str]]:
    """(kind, action, from, to, actor) of each entry."""
    return [(e["kind"], e["action"], e["from_status"], e["to_status"], e["actor"]) for e in entries]


def test_a_scan_logs_every_move_with_who_made_it_and_its_progress_only_grows(
    server: RunningServer, lab: Lab, scanner: int, qpc: Qpc
) -> None:
    hosts = [h.address for h in lab.hosts] + UNREACHABLE
    with server.client() as api:
        add_scan(api, lab, name="mixed", hosts=hosts, scanner=scanner)
    waited = qpc("scan", "start", "--name", "mixed", "--wait", timeout=120)
    assert waited.code == 0, waited
    lines = waited.stdout.splitlines()
    assert lines[0].startswith('Scan "') and lines[0].endswith('" started.'), lines
    job_id = int(lines[0].split('"')[1])
    assert lines[-1] == f"Scan job {job_id} completed: Job is complete.", lines
    counted = [DONE.search(line) for line in lines[1:-1]]
    assert all(counted), lines
    done = [int(m.group(1)) for m in counted if m]
    totals = {int(m.group(2)) for m in counted if m}
    assert done == sorted(done), f"systems done fell: {lines}"
    assert done[-1] == len(hosts), lines
    assert totals <= {0, len(hosts)}, lines
    # the hung host holds the connection phase long enough to be seen, with its own count
    connecting = [line for line in lines if "running: connection phase" in line]
    assert connecting, lines
    # a system the connection reached is done only once inspected: while connecting, only
    # the unreachable (and the hung host, once timed out) are
    for line in connecting:
        found = DONE.search(line)
        assert found and int(found.group(1)) <= len(UNREACHABLE) + 1, lines
    assert all(line.startswith(f"Scan job {job_id} ") for line in lines[1:]), lines

    with server.client() as api:
        job = api.get(f"/api/v1/jobs/{job_id}/").json()
        assert job["progress"] == {
            "phase": None,
            "phase_done": 0,
            "phase_total": 0,
            "done": len(hosts),
            "total": len(hosts),
        }
        entries = log_of(api, job_id)
        logged = moves(entries)
        admin = "user:admin"
        by_scanner = f"scanner:{SCANNER}"
        assert logged[:3] == [
            ("scan_job", "create", None, "created", admin),
            ("scan_job", "queue", "created", "pending", admin),
            ("scan_job", "start", "pending", "running", "dispatcher"),
        ]
        assert logged[-1] == ("scan_job", "complete", "running", "completed", "dispatcher")
        # each task's start and end, by the dispatcher: connection then inspection
        task_ids = [t["id"] for t in job["tasks"]]
        tasks = [(e["subject_id"], e["action"]) for e in entries if e["kind"] == "task"]
        assert tasks == [
            (task_ids[0], "start"),
            (task_ids[0], "complete"),
            (task_ids[1], "start"),
            (task_ids[1], "complete"),
        ]
        assert {e["actor"] for e in entries if e["kind"] == "task"} == {"dispatcher"}
        # every scanner job started and ended by the scanner that ran it: one per system
        # connected, one per reachable system inspected
        scanner_jobs: dict[int, list[tuple[str, str | None, str | None]]] = {}
        for e in entries:
            if e["kind"] == "scanner_job":
                assert e["actor"] == by_scanner, e
                scanner_jobs.setdefault(e["subject_id"], []).append(
                    (e["action"], e["from_status"], e["to_status"])
                )
        assert len(scanner_jobs) == len(hosts) + 2
        for history in scanner_jobs.values():
            assert history == [
                ("claim", "pending", "claimed"),
                ("start", "claimed", "running"),
                ("complete", "running", "completed"),
            ], history
        # in order, with times that never go back
        assert [e["id"] for e in entries] == sorted(e["id"] for e in entries)
        # an entry's time is when its cause decided (a dispatcher tick decides several moves
        # at one time), so entries written side by side may differ by a tick, never more
        times = [datetime.fromisoformat(e["at"].replace("Z", "+00:00")) for e in entries]
        for earlier, later in itertools.pairwise(times):
            assert (later - earlier).total_seconds() > -2, times
        assert times[0] <= times[-1]
        assert all(e["at"].endswith(("Z", "+00:00")) for e in entries)

        # paged like the other lists
        first = api.get(f"/api/v1/jobs/{job_id}/events/", params={"page_size": 4}).json()
        assert first["count"] == len(entries)
        assert first["previous"] is None and first["next"] is not None
        assert first["results"] == entries[:4]
        second = httpx.get(first["next"], headers=api.headers).json()
        assert second["results"] == entries[4:8]
        assert second["previous"] is not None
        last_page = -(-len(entries) // 4)
        tail = api.get(
            f"/api/v1/jobs/{job_id}/events", params={"page_size": 4, "page": last_page}
        ).json()
        assert tail["next"] is None and tail["results"] == entries[(last_page - 1) * 4 :]
        missing = api.get("/api/v1/jobs/9999/events/")
        assert missing.status_code == 404
        assert "Scan job 9999 does not exist." in missing.text
        bad = api.get(f"/api/v1/jobs/{job_id}/events/", params={"page_size": 0})
        assert bad.status_code == 400 or bad.status_code == 422, bad.text

    printed = qpc.ok("scan", "job", "--id", str(job_id), "--log").stdout.splitlines()
    assert len(printed) == len(entries)
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"
    assert re.fullmatch(
        rf"{stamp}  user:admin  scan job create  -> created  Scan 'mixed' started\.", printed[0]
    ), printed[0]
    assert re.fullmatch(rf"{stamp}  dispatcher  scan job start  pending -> running", printed[2])
    assert re.fullmatch(
        rf"{stamp}  dispatcher  scan job complete  running -> completed", printed[-1]
    ), printed[-1]
    assert any(
        re.fullmatch(rf"{stamp}  scanner:edge  scanner job \d+ start  claimed -> running", line)
        for line in printed
    ), printed

    usage = qpc("scan", "job", "--name", "mixed", "--log")
    assert usage.code == 2 and usage.stdout == "", usage
    assert usage.stderr == "Error: argument --log: only allowed with argument --id\n"
    unknown = qpc.fails("scan", "job", "--id", "9999", "--log")
    assert "Scan job 9999 does not exist." in unknown.stderr


def test_a_failed_jobs_last_entries_say_why(
    server: RunningServer, lab: Lab, scanner: int, qpc: Qpc
) -> None:
    with server.client() as api:
        scan_id = add_scan(api, lab, name="gone", hosts=UNREACHABLE, scanner=scanner)
        job_id = int(created(api.post(f"/api/v1/scans/{scan_id}/jobs/"))["id"])
        job = wait_status(api, job_id, statuses=("completed", "failed"), timeout=60)
        assert job["status"] == "failed"
        why = job["status_message"]
        assert "No system of source 'gone' could be reached" in why
        entries = log_of(api, job_id)
    inspect_task = job["tasks"][1]["id"]
    assert moves(entries)[-2:] == [
        ("task", "fail", "pending", "failed", "dispatcher"),
        ("scan_job", "fail", "running", "failed", "dispatcher"),
    ]
    assert entries[-2]["subject_id"] == inspect_task
    assert entries[-2]["message"] == why
    assert entries[-1]["message"] == why
    assert job["progress"]["done"] == job["progress"]["total"] == len(UNREACHABLE)
    printed = qpc.ok("scan", "job", "--id", str(job_id), "--log").stdout.splitlines()
    assert printed[-1].endswith(f"dispatcher  scan job fail  running -> failed  {why}")


def test_a_paused_and_restarted_jobs_log_says_who_paused_it(
    server: RunningServer, lab: Lab, scanner: int, qpc: Qpc
) -> None:
    hung = next(h.address for h in lab.hosts if h.slow)
    fast = [h.address for h in lab.hosts if not h.slow]
    with server.client() as api:
        scan_id = add_scan(api, lab, name="paused", hosts=[*fast, hung], scanner=scanner)
        job_id = int(created(api.post(f"/api/v1/scans/{scan_id}/jobs/"))["id"])

        def running_on_scanner() -> bool:
            """Every connection scanner job started: the hung host's holds the job 5 s."""
            starts = [
                e
                for e in log_of(api, job_id)
                if e["kind"] == "scanner_job" and e["action"] == "start"
            ]
            return len(starts) == len(fast) + 1

        deadline = time.monotonic() + 30
        while not running_on_scanner():
            assert time.monotonic() < deadline, log_of(api, job_id)
            time.sleep(0.05)
        before = api.get(f"/api/v1/jobs/{job_id}/").json()["progress"]
    assert qpc.ok("scan", "pause", "--id", str(job_id)).stdout == f'Scan "{job_id}" paused.\n'
    with server.client() as api:
        # the hung host's scanner job is given back by the scanner, told to stop
        deadline = time.monotonic() + 15
        while not any(
            e["kind"] == "scanner_job" and e["action"] == "release" for e in log_of(api, job_id)
        ):
            assert time.monotonic() < deadline, "\n".join(map(str, log_of(api, job_id)))
            time.sleep(0.1)
        paused = api.get(f"/api/v1/jobs/{job_id}/").json()
        assert paused["status"] == "paused"
        assert paused["progress"]["done"] >= before["done"]
    assert qpc.ok("scan", "restart", "--id", str(job_id)).stdout == (
        f'Scan "{job_id}" restarted.\n'
    )
    with server.client() as api:
        job = wait_status(api, job_id, statuses=("completed", "failed"), timeout=90)
        assert job["status"] == "completed", job["status_message"]
        assert job["progress"]["done"] == job["progress"]["total"] == len(fast) + 1
        entries = log_of(api, job_id)
    logged = moves(entries)
    pause = logged.index(("scan_job", "pause", "running", "paused", "user:admin"))
    restart = logged.index(("scan_job", "restart", "paused", "pending", "user:admin"))
    assert pause < restart
    assert (
        logged[restart + 1 :].count(("scan_job", "start", "pending", "running", "dispatcher")) == 1
    )
    released = [
        e for e in entries[pause:restart] if e["kind"] == "scanner_job" and e["action"] == "release"
    ]
    assert released, entries
    for e in released:
        assert (e["from_status"], e["to_status"], e["actor"]) == (
            "running",
            "pending",
            f"scanner:{SCANNER}",
        )
        assert e["message"] == "Given back: its scan job was paused."
    printed = qpc.ok("scan", "job", "--id", str(job_id), "--log").stdout
    assert "  user:admin  scan job pause  running -> paused  Job is paused.\n" in printed
    assert "  user:admin  scan job restart  paused -> pending\n" in printed


def test_a_canceled_jobs_log_ends_its_open_work_by_who_canceled_it(
    server: RunningServer, lab: Lab, scanner: int, qpc: Qpc
) -> None:
    hung = next(h.address for h in lab.hosts if h.slow)
    with server.client() as api:
        scan_id = add_scan(api, lab, name="dropped", hosts=[hung], scanner=scanner)
        job_id = int(created(api.post(f"/api/v1/scans/{scan_id}/jobs/"))["id"])
        deadline = time.monotonic() + 30
        while not any(e["kind"] == "scanner_job" for e in log_of(api, job_id)):
            assert time.monotonic() < deadline, log_of(api, job_id)
            time.sleep(0.05)
    assert qpc.ok("scan", "cancel", "--id", str(job_id)).stdout == f'Scan "{job_id}" canceled.\n'
    with server.client() as api:
        job = api.get(f"/api/v1/jobs/{job_id}/").json()
        deadline = time.monotonic() + 15
        # the scanner, told to stop, ends the hung host's work as canceled
        while not any(
            e["kind"] == "scanner_job" and e["action"] == "cancel" for e in log_of(api, job_id)
        ):
            assert time.monotonic() < deadline, log_of(api, job_id)
            time.sleep(0.1)
        entries = log_of(api, job_id)
    logged = moves(entries)
    cancel = logged.index(("scan_job", "cancel", "running", "canceled", "user:admin"))
    connect, inspect = (t["id"] for t in job["tasks"])
    ended = [
        (e["subject_id"], e["from_status"], e["actor"], e["message"])
        for e in entries[cancel + 1 :]
        if e["kind"] == "task"
    ]
    assert sorted(ended) == [
        (connect, "running", "user:admin", "Ended with its scan job."),
        (inspect, "pending", "user:admin", "Ended with its scan job."),
    ]
    stopped = [e for e in entries[cancel + 1 :] if e["kind"] == "scanner_job"]
    assert [(e["action"], e["from_status"], e["to_status"], e["actor"]) for e in stopped] == [
        ("cancel", "running", "canceled", f"scanner:{SCANNER}")
    ]
    assert job["progress"]["phase"] is None


def test_work_of_a_silent_scanner_is_reassigned_and_logged(
    server: RunningServer, lab: Lab, scanner: int
) -> None:
    """A scanner that heartbeats once, claims one job and falls silent: the sweep hands its
    running and its unclaimed work to the live scanner, and the log says so."""
    fast = [h.address for h in lab.hosts if not h.slow]
    with server.client() as api:
        silent = created(api.post("/api/v1/scanners/", json={"name": "silent"}))
        key = {"X-API-Key": silent["api_key"]}
        register_secret(silent["api_key"])
        beat = httpx.post(f"{server.url}/scanner/heartbeat", json={"version": "1"}, headers=key)
        assert beat.status_code == 200, beat.text
        source_id = add_lab_source(
            api,
            lab,
            name="both",
            hosts=[*fast, *UNREACHABLE],
            port=PORT,
            scanners=[silent["id"], scanner],
        )
        scan = created(api.post("/api/v1/scans/", json={"name": "both", "sources": [source_id]}))
        job_id = int(created(api.post(f"/api/v1/scans/{scan['id']}/jobs/"))["id"])
        deadline = time.monotonic() + 15
        while not (
            claimed := httpx.get(
                f"{server.url}/scanner/jobs", params={"limit": 1}, headers=key
            ).json()["jobs"]
        ):
            assert time.monotonic() < deadline, "the silent scanner was given no work"
            time.sleep(0.05)
        held = claimed[0]["jobId"]
        started = httpx.post(f"{server.url}/scanner/jobs/{held}/start", headers=key)
        assert started.status_code == 200, started.text
        job = wait_status(api, job_id, statuses=("completed", "failed"), timeout=60)
        assert job["status"] == "completed", job["status_message"]
        entries = log_of(api, job_id)
    by_silent = [e for e in entries if e["actor"] == "scanner:silent"]
    assert [(e["subject_id"], e["action"]) for e in by_silent] == [(held, "claim"), (held, "start")]
    taken = [
        e
        for e in entries
        if e["actor"] == "dispatcher" and e["kind"] in ("scanner_job", "reassign")
    ]
    assert taken, entries
    released = [e for e in taken if e["subject_id"] == held]
    assert [(e["kind"], e["action"], e["from_status"], e["to_status"]) for e in released] == [
        ("scanner_job", "release", "running", "pending")
    ]
    assert released[0]["message"] == (
        f"Scanner 'silent' went silent: scanner job {held} re-assigned to scanner '{SCANNER}'."
    )
    # its unclaimed work only changed hands: no move, one entry each
    assert any(e["kind"] == "reassign" for e in taken), taken
    for e in taken:
        if e["kind"] == "reassign":
            assert (e["action"], e["from_status"], e["to_status"]) == ("reassign", None, None)
            assert e["message"].startswith("Scanner 'silent' went silent: scanner job ")
    # then the live scanner ran it
    after = entries[entries.index(released[0]) + 1 :]
    assert (held, "start", f"scanner:{SCANNER}") in [
        (e["subject_id"], e["action"], e["actor"]) for e in after
    ]

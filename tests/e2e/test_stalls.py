"""Stalled jobs for real: a server whose clock the test moves, real and hand-driven scanners,
real lab hosts. Each stall raises one alarm with its cause and repairs; each repair works and
the job then finishes; bad repairs change nothing; a draining scanner finishes what it holds
and takes nothing new; alarms and repairs are in the job's log."""

from __future__ import annotations

import re
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from quipu.lab import Lab
from quipu.services.auth import hash_password
from quipu.store import Store
from quipu.store.tables import (
    Alarm,
    ScanJobEvent,
    ScannerJob,
    SourceScanner,
    SystemResult,
    User,
)
from tests.e2e.qpc import logged_in
from tests.e2e.scans import add_lab_source, created
from tests.labs import running_lab
from tests.servers import RunningServer, TestClock, running_server, start_scanner

pytestmark = pytest.mark.lab

NET = "127.0.246"
PORT = 2246
ENV = {
    "QUIPU_DISPATCH_INTERVAL_S": "0.2",
    "QUIPU_HEARTBEAT_S": "1",
    # Moving the clock by minutes must not make every scanner look silent.
    "QUIPU_HEARTBEAT_TIMEOUT_S": "3600",
    # A hung host holds its scanner job this long: long enough to act on it.
    "QUIPU_SSH_CONNECT_TIMEOUT_S": "15",
    "QUIPU_MAX_RUNNING_JOBS": "2",
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("stalls-lab") / "lab"
    with running_lab(root=root, hosts=2, slow=1, net=NET, port=PORT) as lab:
        yield lab


@dataclass
class World:
    server: RunningServer
    clock: TestClock
    store: Store
    api: httpx.Client
    lab: Lab
    tmp: Path
    procs: list[subprocess.Popen[bytes]]
    clients: list[httpx.Client]

    @property
    def fast(self) -> list[str]:
        return [h.address for h in self.lab.hosts if not h.slow]

    @property
    def slow(self) -> str:
        return next(h.address for h in self.lab.hosts if h.slow)

    def scanner(self, name: str) -> dict[str, Any]:
        return created(self.api.post("/api/v1/scanners/", json={"name": name}))

    def run_scanner(self, body: dict[str, Any], *, concurrency: int = 1) -> None:
        proc = start_scanner(
            self.server,
            api_key=body["api_key"],
            log=self.tmp / f"scanner-{body['name']}.log",
            concurrency=concurrency,
        )
        self.procs.append(proc)
        wait_until(lambda: self.get_scanner(body["id"])["online"], what="the scanner online")

    def get_scanner(self, scanner_id: int) -> dict[str, Any]:
        body: dict[str, Any] = self.api.get(f"/api/v1/scanners/{scanner_id}/").json()
        return body

    def local_id(self) -> int:
        results = self.api.get("/api/v1/scanners/", params={"name": "local"}).json()["results"]
        return int(results[0]["id"])

    def scan(self, name: str, *, hosts: list[str], scanners: list[int]) -> int:
        """A network source of ``hosts`` run by ``scanners``, and a scan of it, both ``name``."""
        source_id = add_lab_source(
            self.api, self.lab, name=name, hosts=hosts, port=PORT, scanners=scanners
        )
        scan = created(self.api.post("/api/v1/scans/", json={"name": name, "sources": [source_id]}))
        return int(scan["id"])

    def start(self, scan_id: int) -> int:
        return int(created(self.api.post(f"/api/v1/scans/{scan_id}/jobs/"))["id"])

    def job(self, job_id: int) -> dict[str, Any]:
        body: dict[str, Any] = self.api.get(f"/api/v1/jobs/{job_id}/").json()
        return body

    def wait_job(self, job_id: int, *statuses: str, timeout: float = 90) -> dict[str, Any]:
        wait_until(lambda: self.job(job_id)["status"] in statuses, timeout=timeout, what=statuses)
        return self.job(job_id)

    def scanner_jobs(self, job_id: int) -> list[tuple[int, str, int | None]]:
        with self.store.transaction() as s:
            rows = s.execute(
                select(ScannerJob.id, ScannerJob.status, ScannerJob.scanner_id)
                .where(ScannerJob.scan_job_id == job_id)
                .order_by(ScannerJob.id)
            ).all()
        return [(int(i), str(st), sc) for i, st, sc in rows]

    def open_alarms(self) -> list[dict[str, Any]]:
        body = self.api.get("/api/v1/alarms/", params={"resolved": "false"}).json()
        results: list[dict[str, Any]] = body["results"]
        return results

    def alarm(self, alarm_id: int) -> dict[str, Any]:
        body: dict[str, Any] = self.api.get(f"/api/v1/alarms/{alarm_id}/").json()
        return body

    def wait_alarm(self, kind: str, *, timeout: float = 15) -> dict[str, Any]:
        wait_until(
            lambda: any(a["kind"] == kind for a in self.open_alarms()),
            timeout=timeout,
            what=f"an open {kind} alarm",
        )
        (alarm,) = [a for a in self.open_alarms() if a["kind"] == kind]
        return alarm

    def repair(self, alarm_id: int, **body: Any) -> httpx.Response:
        return self.api.post(f"/api/v1/alarms/{alarm_id}/repair/", json=body)

    def events(self, job_id: int) -> list[dict[str, Any]]:
        body = self.api.get(f"/api/v1/jobs/{job_id}/events/", params={"page_size": 1000}).json()
        results: list[dict[str, Any]] = body["results"]
        return results

    def snapshot(self) -> list[tuple[Any, ...]]:
        """Everything a refused repair could change."""
        with self.store.transaction() as s:
            alarms = s.execute(
                select(Alarm.id, Alarm.key, Alarm.resolved_at, Alarm.actions).order_by(Alarm.id)
            ).all()
            jobs = s.execute(
                select(ScannerJob.id, ScannerJob.status, ScannerJob.scanner_id).order_by(
                    ScannerJob.id
                )
            ).all()
            links = s.execute(
                select(SourceScanner.source_id, SourceScanner.scanner_id).order_by(
                    SourceScanner.source_id, SourceScanner.scanner_id
                )
            ).all()
            events = s.scalars(select(ScanJobEvent.id).order_by(ScanJobEvent.id)).all()
        return [tuple(r) for r in [*alarms, *jobs, *links]] + [tuple(events)]


def wait_until(predicate: Callable[[], Any], *, timeout: float = 60, what: object = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.fixture(params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest, tmp_path: Path, lab: Lab) -> Iterator[World]:
    clock = TestClock(tmp_path / "clock")
    with running_server(
        kind=request.param, data_dir=tmp_path / "data", env={**ENV, **clock.env}
    ) as server:
        store = Store.from_url(server.database_url)
        procs: list[subprocess.Popen[bytes]] = []
        clients: list[httpx.Client] = []
        try:
            with server.client() as api:
                yield World(server, clock, store, api, lab, tmp_path, procs, clients)
        finally:
            for client in clients:
                client.close()
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(20)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
            store.dispose()


class HandScanner:
    """A scanner the test drives over the pull protocol, one call at a time."""

    def __init__(self, world: World, body: dict[str, Any]) -> None:
        self.id = int(body["id"])
        self.name = str(body["name"])
        self.http = httpx.Client(
            base_url=world.server.url, headers={"X-API-Key": body["api_key"]}, timeout=30
        )
        world.clients.append(self.http)
        self.agent = uuid.uuid4().hex

    def heartbeat(self) -> None:
        response = self.http.post(
            "/scanner/heartbeat", json={"version": "test", "capacity": 1, "agentId": self.agent}
        )
        assert response.status_code == 200, response.text

    def claim(self) -> list[dict[str, Any]]:
        response = self.http.get("/scanner/jobs", params={"limit": 10})
        assert response.status_code == 200, response.text
        jobs: list[dict[str, Any]] = response.json()["jobs"]
        return jobs

    def start(self, job_id: int) -> httpx.Response:
        return self.http.post(f"/scanner/jobs/{job_id}/start")


def kinds_of(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["kind"], e["action"]) for e in events if e["kind"] in ("alarm", "repair")]


def test_work_no_scanner_claims_raises_one_alarm_and_a_reassign_repairs_it(world: World) -> None:
    remote = world.scanner("remote")  # registered, never run: never online
    scan_id = world.scan("lab", hosts=world.fast[:1], scanners=[remote["id"]])
    job_id = world.start(scan_id)
    wait_until(lambda: world.scanner_jobs(job_id), what="a scanner job")
    time.sleep(1)
    assert world.open_alarms() == []  # not yet: only after stall_unclaimed_s

    world.clock.advance(301)
    alarm = world.wait_alarm("unclaimed")
    (sj_id, sj_status, sj_scanner) = world.scanner_jobs(job_id)[0]
    assert (sj_status, sj_scanner) == ("pending", remote["id"])
    assert alarm["scan_job_id"] == job_id
    assert alarm["scanner_job_id"] == sj_id
    assert (alarm["scanner_id"], alarm["scanner_name"]) == (remote["id"], "remote")
    assert alarm["source_name"] == "lab"
    assert alarm["actions"] == ["reassign", "fail"]
    assert alarm["message"].startswith(
        f"Scanner job {sj_id} (scan job {job_id}, source 'lab') has waited 5 min"
    )
    assert alarm["message"].endswith("no scanner of the source is online ('remote').")
    time.sleep(1)  # more ticks: still one alarm
    assert [a["id"] for a in world.open_alarms()] == [alarm["id"]]

    before = world.snapshot()
    bad = world.repair(alarm["id"], action="reboot")
    assert bad.status_code == 400
    assert bad.json()["action"] == [
        "Unknown repair action 'reboot'; allowed: redispatch, reassign, drain, fail."
    ]
    bad = world.repair(alarm["id"], action="drain")
    assert bad.status_code == 400
    assert bad.json()["action"] == [
        f"Alarm {alarm['id']} (unclaimed) does not offer repair 'drain'; allowed: reassign, fail."
    ]
    bad = world.repair(alarm["id"], action="reassign")
    assert bad.status_code == 400 and "scanner_id" in bad.json()
    bad = world.repair(alarm["id"], action="reassign", scanner_id=9999)
    assert bad.status_code == 400
    assert bad.json()["scanner_id"] == ["Scanner 9999 does not exist."]
    bad = world.repair(alarm["id"], action="fail", message="  ")
    assert bad.status_code == 400 and "message" in bad.json()
    assert world.repair(9999, action="fail", message="x").status_code == 404
    assert world.snapshot() == before

    local = world.local_id()
    done = world.repair(alarm["id"], action="reassign", scanner_id=local)
    assert done.status_code == 200, done.text
    assert done.json()["alarm"]["resolved_at"] is not None
    assert done.json()["done"] == (
        "source 'lab' now uses scanner 'local'; 1 scanner job re-dispatched to it."
    )
    job = world.wait_job(job_id, "completed", "failed")
    assert job["status"] == "completed", job["status_message"]
    source = world.api.get("/api/v2/sources/", params={"name": "lab"}).json()["results"][0]
    assert [s["id"] for s in source["scanners"]] == [local]
    assert world.open_alarms() == []
    assert world.repair(alarm["id"], action="fail", message="x").status_code == 409

    log = world.events(job_id)
    assert kinds_of(log) == [("alarm", "raise"), ("repair", "reassign"), ("alarm", "resolve")]
    raised = next(e for e in log if e["kind"] == "alarm")
    assert raised["actor"] == "dispatcher"
    assert "no scanner of the source is online" in raised["message"]
    repair = next(e for e in log if e["kind"] == "repair")
    assert repair["actor"] == "user:admin"
    assert any(
        e["kind"] == "scanner_job" and e["action"] == "redispatch" and e["subject_id"] == sj_id
        for e in log
    )


def test_a_draining_scanner_finishes_its_work_takes_no_more_and_the_alarm_says_why(
    world: World,
) -> None:
    r1 = world.scanner("r1")
    world.run_scanner(r1, concurrency=1)
    qpc = logged_in(world.server, config_home=world.tmp / "config")
    hung = world.scan("hung", hosts=[world.slow], scanners=[r1["id"]])
    first = world.start(hung)
    wait_until(
        lambda: [s for _, s, _ in world.scanner_jobs(first)] == ["running"],
        what="r1 working on the hung host",
    )
    drained = qpc.ok("scanner", "drain", "--name", "r1")
    assert drained.stdout == (
        'Scanner "r1" is draining: it takes no new work and finishes what it holds.\n'
    )
    assert world.get_scanner(r1["id"])["draining"] is True

    fast = world.scan("fast", hosts=world.fast[:1], scanners=[r1["id"]])
    second = world.start(fast)
    wait_until(lambda: world.scanner_jobs(second), what="the second job's work")
    # r1 finishes what it held (the hung host, unreachable) ...
    world.wait_job(first, "completed", "failed", timeout=60)
    assert [s for _, s, _ in world.scanner_jobs(first)] == ["completed"]
    time.sleep(2)  # ... and claims nothing new
    assert [(s, sc) for _, s, sc in world.scanner_jobs(second)] == [("pending", r1["id"])]

    world.clock.advance(301)
    alarm = world.wait_alarm("unclaimed")
    assert alarm["scan_job_id"] == second
    assert alarm["message"].endswith("every online scanner of the source is draining ('r1').")
    assert alarm["actions"] == ["reassign", "fail"]

    assert qpc.ok("scanner", "undrain", "--name", "r1").stdout == (
        'Scanner "r1" takes new work again.\n'
    )
    job = world.wait_job(second, "completed", "failed")
    assert job["status"] == "completed", job["status_message"]
    resolved = world.alarm(alarm["id"])
    assert resolved["resolved_at"] is not None
    assert kinds_of(world.events(second)) == [("alarm", "raise"), ("alarm", "resolve")]
    listed = qpc.ok("alarm", "list").json()
    assert listed == []
    every = qpc.ok("alarm", "list", "--all").json()
    assert [a["id"] for a in every] == [alarm["id"]]


def test_claimed_work_not_started_is_redispatched_to_another_scanner(world: World) -> None:
    hand = HandScanner(world, world.scanner("hand"))
    hand.heartbeat()
    real = world.scanner("real")
    world.run_scanner(real)
    scan_id = world.scan("lab", hosts=world.fast[:1], scanners=[hand.id, real["id"]])
    job_id = world.start(scan_id)
    wait_until(lambda: world.scanner_jobs(job_id), what="a scanner job")
    (claimed,) = hand.claim()
    # Draining, so that the inspection goes to the other scanner; what it holds stays its.
    assert world.api.post(f"/api/v1/scanners/{hand.id}/drain/").json()["draining"] is True
    time.sleep(1)
    assert world.open_alarms() == []

    world.clock.advance(121)
    alarm = world.wait_alarm("unstarted")
    assert alarm["scanner_job_id"] == claimed["jobId"]
    assert alarm["scanner_name"] == "hand"
    assert re.search(
        r"was claimed by scanner 'hand' 2 min \d+ s ago and has not started\.$", alarm["message"]
    ), alarm["message"]
    assert alarm["actions"] == ["redispatch", "reassign", "drain", "fail"]

    qpc = logged_in(world.server, config_home=world.tmp / "config")
    out = qpc.ok("alarm", "repair", "--id", str(alarm["id"]), "--action", "redispatch")
    assert out.stdout == (
        f'Alarm "{alarm["id"]}" repaired: Scanner job {claimed["jobId"]} was given back to the '
        "queue, for scanner 'real'.\n"
    )
    job = world.wait_job(job_id, "completed", "failed")
    assert job["status"] == "completed", job["status_message"]
    assert hand.start(claimed["jobId"]).status_code == 403  # no longer its work
    assert {sc for _, _, sc in world.scanner_jobs(job_id)} == {real["id"]}
    assert kinds_of(world.events(job_id)) == [
        ("alarm", "raise"),
        ("repair", "redispatch"),
        ("alarm", "resolve"),
    ]


def test_a_job_far_slower_than_its_progress_predicts_is_failed_by_the_operator(
    world: World,
) -> None:
    scan_id = world.scan("lab", hosts=[world.fast[0], world.slow], scanners=[])
    job_id = world.start(scan_id)

    def one_done() -> bool:
        with world.store.transaction() as s:
            return bool(
                s.scalars(select(SystemResult.id).where(SystemResult.scan_job_id == job_id)).all()
            )

    wait_until(one_done, timeout=10, what="the fast host's result")
    world.clock.advance(200)
    alarm = world.wait_alarm("overrun", timeout=5)
    assert alarm["scanner_name"] == "local"
    assert alarm["actions"] == ["redispatch", "drain", "fail"]
    assert "more than 3 times the" in alarm["message"]
    assert "its progress predicts (1 of 2 systems done, the last one " in alarm["message"]

    qpc = logged_in(world.server, config_home=world.tmp / "config")
    refused = qpc.fails("alarm", "repair", "--id", str(alarm["id"]), "--action", "fail")
    assert "message" in refused.stderr
    qpc.ok(
        "alarm", "repair", "--id", str(alarm["id"]), "--action", "fail",
        "--message", "Host hangs on SSH; fix it before the next scan.",
    )  # fmt: skip
    job = world.wait_job(job_id, "failed", timeout=5)
    assert job["status_message"] == "Host hangs on SSH; fix it before the next scan."
    assert [s for _, s, _ in world.scanner_jobs(job_id)] == ["canceled"]
    log = world.events(job_id)
    assert kinds_of(log) == [("alarm", "raise"), ("repair", "fail"), ("alarm", "resolve")]
    assert any(
        e["kind"] == "scan_job" and e["action"] == "fail" and e["actor"] == "user:admin"
        for e in log
    )


def test_a_silent_scanner_holding_work_raises_an_alarm_and_a_reassign_repairs_it(
    world: World,
) -> None:
    hand = HandScanner(world, world.scanner("hand"))
    hand.heartbeat()
    scan_id = world.scan("lab", hosts=world.fast[:1], scanners=[hand.id])
    job_id = world.start(scan_id)
    wait_until(lambda: world.scanner_jobs(job_id), what="a scanner job")
    (claimed,) = hand.claim()
    assert hand.start(claimed["jobId"]).status_code == 200

    world.clock.advance(3700)  # past the heartbeat timeout: the hand scanner is silent
    alarm = world.wait_alarm("scanner_silent")
    assert alarm["scanner_job_id"] == claimed["jobId"]
    assert alarm["scanner_name"] == "hand"
    assert alarm["actions"] == ["reassign", "fail"]
    assert alarm["message"].startswith("Scanner 'hand' stopped heartbeating (last heartbeat 1 h")
    assert alarm["message"].endswith(
        "no other scanner of the source can take it, so it waits for 'hand' to come back."
    )
    done = world.repair(alarm["id"], action="reassign", scanner_id=world.local_id())
    assert done.status_code == 200, done.text
    job = world.wait_job(job_id, "completed", "failed")
    assert job["status"] == "completed", job["status_message"]
    assert kinds_of(world.events(job_id)) == [
        ("alarm", "raise"),
        ("repair", "reassign"),
        ("alarm", "resolve"),
    ]


def test_work_of_a_silent_scanner_moved_to_another_is_said_by_an_alarm(world: World) -> None:
    hand = HandScanner(world, world.scanner("hand"))
    hand.heartbeat()
    real = world.scanner("real")
    world.run_scanner(real)
    scan_id = world.scan("lab", hosts=world.fast[:1], scanners=[hand.id, real["id"]])
    job_id = world.start(scan_id)
    wait_until(lambda: world.scanner_jobs(job_id), what="a scanner job")
    (claimed,) = hand.claim()
    assert hand.start(claimed["jobId"]).status_code == 200

    world.clock.advance(3700)  # the hand scanner goes silent; the real one keeps beating
    job = world.wait_job(job_id, "completed", "failed")
    assert job["status"] == "completed", job["status_message"]

    def silent() -> list[dict[str, Any]]:
        every = world.api.get("/api/v1/alarms/").json()["results"]
        return [a for a in every if a["kind"] == "scanner_silent"]

    # Resolved by the dispatcher's next watch (at most an interval after the work ended).
    wait_until(lambda: all(a["resolved_at"] for a in silent()), what="the alarm resolved")
    (alarm,) = silent()
    assert alarm["scanner_job_id"] == claimed["jobId"]
    assert alarm["scanner_name"] == "hand"
    assert alarm["message"] == (
        f"Scanner 'hand' stopped heartbeating; its scanner job {claimed['jobId']} (scan job "
        f"{job_id}, source 'lab') was re-assigned to scanner 'real'."
    )
    assert alarm["resolved_at"] is not None  # its work ended
    log = world.events(job_id)
    assert ("alarm", "raise") in kinds_of(log)
    assert kinds_of(log)[-1] == ("alarm", "resolve")
    assert any("went silent" in e["message"] and e["actor"] == "dispatcher" for e in log)


def test_only_an_admin_repairs_and_drains(world: World) -> None:
    with world.store.transaction() as s:
        s.add(
            User(
                username="viewer",
                password_hash=hash_password("viewer-Secret-123"),
                is_admin=False,
                created_at=datetime.now(UTC),
            )
        )
    token = world.server.token(username="viewer", password="viewer-Secret-123")
    with httpx.Client(
        base_url=world.server.url, headers={"Authorization": f"Token {token}"}, timeout=30
    ) as viewer:
        local = world.local_id()
        refused = viewer.post(f"/api/v1/scanners/{local}/drain/")
        assert refused.status_code == 403
        assert world.get_scanner(local)["draining"] is False
        assert viewer.get("/api/v1/alarms/", params={"resolved": "false"}).status_code == 200
        assert viewer.post("/api/v1/alarms/1/repair/", json={"action": "fail"}).status_code == 403

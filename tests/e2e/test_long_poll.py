"""Long polls (``GET /scanner/jobs?wait=S``) and the API-key cache, over real HTTP: a long poll
answers as soon as work for its scanner exists (on any node), a disabled or re-keyed scanner
is refused on every node within a second, and a stopping server answers its long polls."""

from __future__ import annotations

import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from quipu.domain.states import ScanJobStatus, TaskStatus
from quipu.store import Store
from quipu.store.tables import Scanner, ScannerJob
from tests.databases import pg_database
from tests.integration import factories
from tests.servers import RunningServer, pg_nodes, running_server, start_server

pytestmark = pytest.mark.timeout(180)


def add_scanner(server: RunningServer, name: str) -> tuple[int, str]:
    with server.client() as admin:
        body = admin.post("/api/v1/scanners/", json={"name": name}).json()
    return int(body["id"]), str(body["api_key"])


def scanner_client(server: RunningServer, key: str, *, timeout: float = 60) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"X-API-Key": key}, timeout=timeout)


def seed_work(store: Store, *, scanner_name: str, count: int) -> list[int]:
    """A running scan job with ``count`` pending scanner jobs for the scanner."""
    with store.transaction() as s:
        job = factories.scan_job(s, status=ScanJobStatus.RUNNING)
        task = factories.task(s, job=job)
        task.status = TaskStatus.RUNNING.value
        scanner = s.scalars(select(Scanner).where(Scanner.name == scanner_name)).one()
        rows = factories.scanner_jobs(s, task_row=task, scanner_row=scanner, count=count)
        s.flush()
        return [r.id for r in rows]


def status_of(store: Store, job_id: int) -> str:
    with store.transaction() as s:
        return s.get_one(ScannerJob, job_id).status


class LongPoll(threading.Thread):
    """One long poll in the background: its answer and how long it took."""

    def __init__(self, client: httpx.Client, *, wait: float, limit: int = 1) -> None:
        super().__init__(daemon=True)
        self.client, self.wait, self.limit = client, wait, limit
        self.answer: dict[str, Any] | None = None
        self.error: BaseException | None = None
        self.seconds = 0.0
        self.started = threading.Event()

    def run(self) -> None:
        began = time.monotonic()
        self.started.set()
        try:
            response = self.client.get(
                "/scanner/jobs", params={"limit": self.limit, "wait": self.wait}
            )
            self.answer = response.json()
        except BaseException as error:
            self.error = error
        self.seconds = time.monotonic() - began


def within(seconds: float, check: Callable[[], bool]) -> float:
    """How long until ``check`` holds (fails after ``seconds``)."""
    began = time.monotonic()
    while not check():
        assert time.monotonic() - began < seconds, f"not within {seconds} s"
        time.sleep(0.02)
    return time.monotonic() - began


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningServer]:
    with running_server(
        kind=request.param, data_dir=tmp_path / "data", args=("--no-builtin-scanner",)
    ) as running:
        yield running


def test_a_long_poll_without_work_answers_empty_after_its_wait(server: RunningServer) -> None:
    _, key = add_scanner(server, "idle")
    with scanner_client(server, key) as client:
        began = time.monotonic()
        response = client.get("/scanner/jobs", params={"wait": 1.5})
        took = time.monotonic() - began
    assert response.status_code == 200 and response.json() == {"jobs": []}
    assert 1.4 <= took < 10


def test_a_long_poll_answers_as_soon_as_work_is_given_back(server: RunningServer) -> None:
    _, key = add_scanner(server, "a")
    store = Store.from_url(server.database_url)
    try:
        [job_id] = seed_work(store, scanner_name="a", count=1)
        with scanner_client(server, key) as client, scanner_client(server, key) as other:
            [claimed] = client.get("/scanner/jobs").json()["jobs"]
            assert claimed["jobId"] == job_id
            poll = LongPoll(other, wait=30)
            poll.start()
            poll.started.wait()
            time.sleep(0.5)  # the poll is waiting: no work is pending
            assert poll.answer is None
            assert client.post(f"/scanner/jobs/{job_id}/release").status_code == 200
            poll.join(30)
        assert poll.error is None
        assert poll.answer is not None and [j["jobId"] for j in poll.answer["jobs"]] == [job_id]
        assert poll.seconds < 10, f"woken after {poll.seconds:.2f} s of a 30 s wait"
        assert status_of(store, job_id) == "claimed"
    finally:
        store.dispose()


def test_a_long_poll_whose_claim_passed_over_locked_work_takes_it_once_unlocked(
    server: RunningServer,
) -> None:
    """A sweep or another claim holding the rows an instant is no proof of no work: the
    poll does not wait out its whole wait for an announcement that never comes."""
    _, key = add_scanner(server, "a")
    store = Store.from_url(server.database_url)
    try:
        [job_id] = seed_work(store, scanner_name="a", count=1)
        with scanner_client(server, key) as client:
            poll = LongPoll(client, wait=30)
            with store.transaction() as s:
                s.execute(select(ScannerJob).where(ScannerJob.id == job_id).with_for_update())
                poll.start()
                poll.started.wait()
                time.sleep(1.0)  # the poll's claim met the locked row
            poll.join(30)
        assert poll.error is None
        assert poll.answer is not None and [j["jobId"] for j in poll.answer["jobs"]] == [job_id]
        assert poll.seconds < 10, f"claimed after {poll.seconds:.2f} s of a 30 s wait"
    finally:
        store.dispose()


def test_a_long_poll_gets_the_work_of_a_scan_started_meanwhile(server: RunningServer) -> None:
    scanner_id, key = add_scanner(server, "lab")
    with server.client() as admin:
        cred = admin.post(
            "/api/v2/credentials/",
            json={"name": "c", "cred_type": "network", "username": "u", "password": "p"},
        ).json()
        source = admin.post(
            "/api/v2/sources/",
            json={
                "name": "s",
                "source_type": "network",
                "hosts": ["127.0.254.1"],
                "credentials": [cred["id"]],
                "scanners": [scanner_id],
            },
        ).json()
        scan = admin.post("/api/v1/scans/", json={"name": "scan", "sources": [source["id"]]})
        with scanner_client(server, key) as client:
            client.post("/scanner/heartbeat", json={"version": "test"})
            poll = LongPoll(client, wait=30)
            poll.start()
            poll.started.wait()
            time.sleep(0.3)
            started = admin.post(f"/api/v1/scans/{scan.json()['id']}/jobs/")
            assert started.status_code == 201
            poll.join(30)
    assert poll.answer is not None, poll.error
    [job] = poll.answer["jobs"]
    assert (job["kind"], job["targets"]) == ("connect", [{"range": "127.0.254.1", "ports": [22]}])
    assert poll.seconds < 10


def test_wait_is_bounded_and_a_bad_wait_changes_nothing(server: RunningServer) -> None:
    _, key = add_scanner(server, "w")
    store = Store.from_url(server.database_url)
    try:
        [job_id] = seed_work(store, scanner_name="w", count=1)
        with scanner_client(server, key) as client:
            for bad in ("61", "-1", "soon"):
                response = client.get("/scanner/jobs", params={"wait": bad})
                assert response.status_code == 422, bad
                assert "wait" in response.text
        assert status_of(store, job_id) == "pending"
    finally:
        store.dispose()


def test_work_for_a_long_poll_that_went_away_stays_pending(server: RunningServer) -> None:
    _, key = add_scanner(server, "gone")
    store = Store.from_url(server.database_url)
    try:
        [job_id] = seed_work(store, scanner_name="gone", count=1)
        with scanner_client(server, key) as client:
            client.get("/scanner/jobs")
            with scanner_client(server, key, timeout=1) as impatient:
                with pytest.raises(httpx.ReadTimeout):
                    impatient.get("/scanner/jobs", params={"wait": 20})
            time.sleep(0.3)
            assert client.post(f"/scanner/jobs/{job_id}/release").status_code == 200
            time.sleep(1.5)
        assert status_of(store, job_id) == "pending"
    finally:
        store.dispose()


def test_a_stopping_server_answers_its_long_polls_at_once(tmp_path: Path) -> None:
    with running_server(
        kind="sqlite", data_dir=tmp_path / "data", args=("--no-builtin-scanner",)
    ) as server:
        _, key = add_scanner(server, "s")
        with scanner_client(server, key) as client:
            poll = LongPoll(client, wait=55)
            poll.start()
            poll.started.wait()
            time.sleep(0.5)
            began = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            poll.join(20)
            server.process.wait(20)
            stopped = time.monotonic() - began
    assert poll.answer == {"jobs": []}, poll.error
    assert stopped < 8, f"the server took {stopped:.1f} s to stop"


# Two ingest nodes on one PostgreSQL ---------------------------------------------------------


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[tuple[RunningServer, RunningServer, Store]]:
    with pg_nodes(tmp_path) as ((first, second), store):
        yield first, second, store


def test_work_given_back_on_one_node_wakes_a_long_poll_on_the_other(
    nodes: tuple[RunningServer, RunningServer, Store],
) -> None:
    first, second, store = nodes
    _, key = add_scanner(first, "n")
    [job_id] = seed_work(store, scanner_name="n", count=1)
    with scanner_client(first, key) as on_first, scanner_client(second, key) as on_second:
        assert [j["jobId"] for j in on_first.get("/scanner/jobs").json()["jobs"]] == [job_id]
        poll = LongPoll(on_second, wait=30)
        poll.start()
        poll.started.wait()
        time.sleep(0.5)
        assert on_first.post(f"/scanner/jobs/{job_id}/release").status_code == 200
        poll.join(30)
    assert poll.answer is not None and [j["jobId"] for j in poll.answer["jobs"]] == [job_id]
    assert poll.seconds < 10


def _heartbeat(client: httpx.Client) -> int:
    return client.post("/scanner/heartbeat", json={"version": "test"}).status_code


def test_a_disabled_scanner_is_refused_on_every_node_within_a_second(
    nodes: tuple[RunningServer, RunningServer, Store],
) -> None:
    first, second, _ = nodes
    scanner_id, key = add_scanner(first, "d")
    with scanner_client(first, key) as on_first, scanner_client(second, key) as on_second:
        # Both nodes have the key in their caches now.
        for _ in range(3):
            assert _heartbeat(on_first) == 200 and _heartbeat(on_second) == 200
        with first.client() as admin:
            assert admin.post(f"/api/v1/scanners/{scanner_id}/disable/").status_code == 200
            disabled = time.monotonic()
        took = within(1.0, lambda: _heartbeat(on_second) == 403)
        print(f"disabled on node 1: refused on node 2 after {took * 1000:.0f} ms")
        assert _heartbeat(on_first) == 403
        assert on_second.get("/scanner/jobs").status_code == 403
        assert time.monotonic() - disabled < 2
        with second.client() as admin:
            assert admin.post(f"/api/v1/scanners/{scanner_id}/enable/").status_code == 200
        within(1.0, lambda: _heartbeat(on_first) == 200)


def test_a_rotated_key_is_refused_on_every_node_within_a_second(
    nodes: tuple[RunningServer, RunningServer, Store],
) -> None:
    first, second, _ = nodes
    scanner_id, key = add_scanner(first, "r")
    with scanner_client(first, key) as on_first, scanner_client(second, key) as on_second:
        for _ in range(3):
            assert _heartbeat(on_first) == 200 and _heartbeat(on_second) == 200
        with second.client() as admin:
            rotated = admin.post(f"/api/v1/scanners/{scanner_id}/rotate-key/")
            assert rotated.status_code == 200
            new_key = rotated.json()["api_key"]
        took = within(1.0, lambda: _heartbeat(on_first) == 401)
        print(f"re-keyed on node 2: old key refused on node 1 after {took * 1000:.0f} ms")
        assert _heartbeat(on_second) == 401
    with scanner_client(first, new_key) as renewed:
        assert _heartbeat(renewed) == 200


def test_a_server_of_two_workers_serves_the_protocol_and_wakes_across_workers(
    tmp_path: Path,
) -> None:
    with pg_database() as url:
        server = start_server(
            data_dir=tmp_path / "data",
            database_url=url,
            args=("--no-builtin-scanner", "--workers", "2"),
        )
        store = Store.from_url(url)
        try:
            _, key = add_scanner(server, "w2")
            job_ids = seed_work(store, scanner_name="w2", count=4)
            claimed: list[int] = []
            with scanner_client(server, key) as client:
                for _ in range(4):  # new connections: both workers take part
                    with scanner_client(server, key) as fresh:
                        jobs = fresh.get("/scanner/jobs").json()["jobs"]
                        claimed += [j["jobId"] for j in jobs]
                assert sorted(claimed) == job_ids
                with ExitStack() as polling:
                    polls = [
                        LongPoll(polling.enter_context(scanner_client(server, key)), wait=30)
                        for _ in range(2)
                    ]
                    for poll in polls:
                        poll.start()
                        poll.started.wait()
                    time.sleep(0.5)
                    for job_id in job_ids[:2]:
                        assert client.post(f"/scanner/jobs/{job_id}/release").status_code == 200
                    for poll in polls:
                        poll.join(30)
            woken = sorted(j["jobId"] for p in polls if p.answer for j in p.answer["jobs"])
            assert woken == job_ids[:2]
            assert max(p.seconds for p in polls) < 10
        finally:
            store.dispose()
            server.stop()
        # One worker runs the node's dispatcher; both served.
        assert len(re.findall(r"dispatcher \S+ started", server.log())) == 1


def test_workers_above_one_need_postgresql(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="--workers above 1 needs PostgreSQL"):
        start_server(
            data_dir=tmp_path / "data",
            database_url=f"sqlite:///{tmp_path / 'q.db'}",
            args=("--workers", "2"),
        )

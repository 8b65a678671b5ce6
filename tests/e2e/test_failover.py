"""A scanner given two servers on one PostgreSQL keeps working when the first one dies."""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from quipu.domain.states import ScanJobStatus, TaskStatus
from quipu.store import Store
from quipu.store.tables import Scanner, ScannerJob
from tests.integration import factories
from tests.servers import RunningServer, pg_nodes, start_scanner

pytestmark = pytest.mark.timeout(180)

JOBS = 6
SYSTEMS_PER_JOB = 15
PROBES_PER_SECOND = 5
"""Each job takes about three seconds: the first server dies while the scanner works."""


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[tuple[RunningServer, RunningServer, Store]]:
    with pg_nodes(tmp_path) as ((first, second), store):
        yield first, second, store


def seed_slow_work(store: Store, *, scanner_id: int) -> None:
    """Pending connect jobs on unreachable loopback systems, probed slowly."""
    with store.transaction() as s:
        scanner = s.get_one(Scanner, scanner_id)
        job = factories.scan_job(s, status=ScanJobStatus.RUNNING)
        task = factories.task(s, job=job)
        task.status = TaskStatus.RUNNING.value
        rows = factories.scanner_jobs(s, task_row=task, scanner_row=scanner, count=JOBS)
        for n, row in enumerate(rows):
            first = n * SYSTEMS_PER_JOB + 1
            last = first + SYSTEMS_PER_JOB - 1
            row.targets = [{"range": f"127.0.100.{first}-127.0.100.{last}", "ports": [22]}]
            row.max_probes_per_second = PROBES_PER_SECOND


def statuses(store: Store) -> Counter[str]:
    with store.transaction() as s:
        return Counter(s.scalars(select(ScannerJob.status)))


def last_heartbeat(store: Store, scanner_id: int) -> datetime | None:
    with store.transaction() as s:
        beat = s.get_one(Scanner, scanner_id).last_heartbeat
    if beat is not None and beat.tzinfo is None:
        beat = beat.replace(tzinfo=UTC)
    return beat


def wait_for(check: Callable[[], bool], *, timeout: float, what: str) -> float:
    """Seconds until ``check`` holds."""
    began = time.monotonic()
    while not check():
        assert time.monotonic() - began < timeout, f"no {what} within {timeout} s"
        time.sleep(0.05)
    return time.monotonic() - began


def test_a_scanner_moves_to_the_second_server_when_the_first_dies(
    nodes: tuple[RunningServer, RunningServer, Store], tmp_path: Path
) -> None:
    first, second, store = nodes
    with first.client() as admin:
        body = admin.post("/api/v1/scanners/", json={"name": "roaming"}).json()
    scanner_id, key = int(body["id"]), str(body["api_key"])
    seed_slow_work(store, scanner_id=scanner_id)
    log = tmp_path / "scanner.log"
    proc = start_scanner(first, failover=(second,), api_key=key, log=log)
    try:
        wait_for(lambda: statuses(store)["running"] > 0, timeout=60, what="running job")
        killed_at = datetime.now(UTC)
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(10)
        switched = wait_for(
            lambda: (last_heartbeat(store, scanner_id) or killed_at) > killed_at,
            timeout=30,
            what="heartbeat on the second server",
        )
        print(
            f"first server killed: the scanner's heartbeat reached the second in {switched:.2f} s"
        )
        assert switched < 20
        wait_for(lambda: statuses(store)["completed"] == JOBS, timeout=90, what="end of every job")
        assert statuses(store) == {"completed": JOBS}
        output = log.read_text(errors="replace")
        assert f"server {first.url} failed" in output and f"switching to {second.url}" in output
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except Exception:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, log.read_text(errors="replace")

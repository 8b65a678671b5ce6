"""Two ingest nodes on one PostgreSQL: 32 claimers over HTTP never get the same job twice."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from quipu.domain.states import ScanJobStatus, TaskStatus
from quipu.store import Store
from quipu.store.tables import Scanner, ScannerJob
from tests.integration import factories
from tests.servers import RunningServer, pg_nodes

JOBS = 1200
CLAIMERS = 32
SCANNERS = 4


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[tuple[RunningServer, RunningServer, Store]]:
    with pg_nodes(tmp_path) as ((first, second), store):
        yield first, second, store


def test_32_claimers_on_two_nodes_claim_every_job_exactly_once(
    nodes: tuple[RunningServer, RunningServer, Store],
) -> None:
    first, second, store = nodes
    keys: list[str] = []
    with first.client() as admin:
        for n in range(SCANNERS):
            body = admin.post("/api/v1/scanners/", json={"name": f"s{n}"}).json()
            keys.append(body["api_key"])
    with store.transaction() as s:
        job = factories.scan_job(s, status=ScanJobStatus.RUNNING)
        task = factories.task(s, job=job)
        task.status = TaskStatus.RUNNING.value
        for n, scanner in enumerate(s.scalars(select(Scanner).order_by(Scanner.id))):
            factories.scanner_jobs(s, task_row=task, scanner_row=scanner, count=JOBS // SCANNERS)
            assert scanner.name == f"s{n}"

    claimed: list[int] = []
    refused: list[str] = []
    lock = threading.Lock()

    def claimer(index: int) -> None:
        server = (first, second)[index % 2]
        headers = {"X-API-Key": keys[index % SCANNERS]}
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
            while True:
                jobs = client.get("/scanner/jobs", params={"limit": 2}).json()["jobs"]
                if not jobs:
                    return
                for job in jobs:
                    job_id = job["jobId"]
                    started = client.post(f"/scanner/jobs/{job_id}/start")
                    done = client.post(
                        f"/scanner/jobs/{job_id}/complete", json={"status": "completed"}
                    )
                    with lock:
                        claimed.append(job_id)
                        if started.status_code != 200 or done.status_code != 200:
                            refused.append(f"{job_id}: {started.text} {done.text}")

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(CLAIMERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    doubles = [job_id for job_id, n in Counter(claimed).items() if n > 1]
    assert (doubles, refused) == ([], [])
    assert len(claimed) == JOBS
    with store.transaction() as s:
        statuses = Counter(s.scalars(select(ScannerJob.status)))
        attempts = s.scalar(select(func.max(ScannerJob.attempts)))
    assert statuses == {"completed": JOBS} and attempts == 1
